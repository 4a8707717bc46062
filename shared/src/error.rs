//! One error type for drpilot. Each variant says whether a retry can fix it, and maps to a
//! Lambda `Diagnostic` whose `errorType` lets an alarm or a retry policy tell them apart.

use lambda_runtime::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A missing or invalid setting. Raised at cold start; always names the variable.
    #[error("invalid setting {var}: {reason}")]
    Config { var: &'static str, reason: String },

    /// An event drpilot does not accept. Nothing was changed.
    #[error("bad event: {0}")]
    BadEvent(String),

    /// An AWS call failed.
    #[error("{operation} failed: {code}: {message}")]
    Aws {
        operation: &'static str,
        code: String,
        message: String,
        retryable: bool,
    },

    /// drpilot refused an action that would break one of its safety rules.
    #[error("{0}")]
    Refused(String),

    /// A member account drpilot cannot get into (its role cannot be assumed).
    #[error("account {account} is unreachable: {reason}")]
    Unreachable { account: String, reason: String },

    /// The run finished, but part of it failed; the report says which part and why.
    #[error("{0}")]
    RunFailed(String),
}

impl Error {
    pub fn config(var: &'static str, reason: impl Into<String>) -> Self {
        Error::Config {
            var,
            reason: reason.into(),
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Aws { retryable: true, .. })
    }

    /// The AWS error code, when this is an AWS error.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Error::Aws { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Config { .. } => "drpilot.ConfigError",
            Error::BadEvent(_) => "drpilot.BadEvent",
            Error::Aws { retryable: true, .. } => "drpilot.Retryable",
            Error::Aws { retryable: false, .. } => "drpilot.AwsError",
            Error::Refused(_) => "drpilot.Refused",
            Error::Unreachable { .. } => "drpilot.AccountUnreachable",
            Error::RunFailed(_) => "drpilot.RunFailed",
        }
    }
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
