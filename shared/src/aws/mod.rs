//! Adapters: each port on the real AWS SDK client. Clients are built once per cold start
//! from the standard SDK configuration (so `AWS_ENDPOINT_URL`, `AWS_REGION`, credentials and
//! profiles all work as usual) and pinned to the region they serve.

pub mod autoscaling;
pub mod capacity;
pub mod cloudwatch;
pub mod ecs;
pub mod rds;
pub mod restore;
pub mod route53;
pub mod s3;
pub mod sns;

use crate::error::Error;
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{DateTime, Utc};

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
];

/// Maps an SDK error (after the SDK's own retries) to drpilot's error, keeping the AWS
/// error code so callers can recognise e.g. `DBSnapshotAlreadyExists`.
pub(crate) fn aws_error<E>(operation: &'static str, err: SdkError<E, aws_sdk_rds::config::http::HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_string).unwrap_or_else(|| match &err {
        SdkError::TimeoutError(_) => "Timeout".into(),
        SdkError::DispatchFailure(_) => "DispatchFailure".into(),
        _ => status.map(|s| format!("HTTP{s}")).unwrap_or_else(|| "Unknown".into()),
    });
    let retryable = matches!(err, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_))
        || THROTTLING.contains(&code.as_str())
        || status.is_some_and(|s| s >= 500);
    let message = err
        .message()
        .map(str::to_string)
        .unwrap_or_else(|| DisplayErrorContext(&err).to_string());
    Error::Aws {
        operation,
        code,
        message,
        retryable,
    }
}

pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
