//! The S3 backup adapter over the real SDK client with `aws-smithy-mocks`: what the emulator
//! cannot produce on demand (a source changed between listing and copy, a multipart copy
//! failing half way, throttling).

use aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadOutput;
use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
use aws_sdk_s3::operation::copy_object::CopyObjectOutput;
use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::upload_part_copy::UploadPartCopyOutput;
use aws_sdk_s3::types::{CopyPartResult, ServerSideEncryption};
use aws_sdk_s3::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::retry::RetryConfig;
use drpilot::aws::s3::S3Objects;
use drpilot::ports::{ObjectCopy, ObjectStore};

const MIB: i64 = 1024 * 1024;

fn client(rules: &[&Rule]) -> Client {
    mock_client!(aws_sdk_s3, RuleMode::MatchAny, rules, |c| c
        .retry_config(RetryConfig::standard().with_max_attempts(3)))
}

fn s3_error(code: &str) -> String {
    format!("<Error><Code>{code}</Code><Message>{code}</Message><RequestId>r-1</RequestId></Error>")
}

fn copy(size: i64) -> ObjectCopy {
    ObjectCopy {
        from_bucket: "assets-prod".into(),
        from_key: "photos/a b+c.jpg".into(),
        from_version: None,
        if_match: Some("\"etag-listed\"".into()),
        size,
        to_bucket: "assets-dr".into(),
        to_key: "photos/a b+c.jpg".into(),
        kms_key_id: Some("arn:aws:kms:us-west-2:123456789012:key/dr".into()),
        storage_class: Some("STANDARD_IA".into()),
    }
}

#[tokio::test]
async fn a_copy_asks_for_the_listed_etag_the_dr_key_and_class_and_is_retried_when_throttled() {
    let rule = mock!(Client::copy_object)
        .match_requests(|r| {
            r.copy_source() == Some("assets-prod/photos/a%20b%2Bc.jpg")
                && r.copy_source_if_match() == Some("\"etag-listed\"")
                && r.server_side_encryption() == Some(&ServerSideEncryption::AwsKms)
                && r.ssekms_key_id() == Some("arn:aws:kms:us-west-2:123456789012:key/dr")
                && r.storage_class().map(|c| c.as_str()) == Some("STANDARD_IA")
                // S3 keeps the copy's SHA-256: what a restore test compares its bytes with
                && r.checksum_algorithm().map(|c| c.as_str()) == Some("SHA256")
        })
        .sequence()
        .http_status(503, Some(s3_error("SlowDown")))
        .output(|| CopyObjectOutput::builder().version_id("v-2").build())
        .build();
    let store = S3Objects::new(client(&[&rule]), 5 * 1024 * MIB);
    assert_eq!(store.copy(&copy(10)).await.unwrap(), "v-2");
    assert_eq!(rule.num_calls(), 2);
}

#[tokio::test]
async fn a_source_changed_since_the_listing_is_a_precondition_failure() {
    let rule = mock!(Client::copy_object)
        .sequence()
        .http_status(412, Some(s3_error("PreconditionFailed")))
        .build();
    let store = S3Objects::new(client(&[&rule]), 5 * 1024 * MIB);
    let err = store.copy(&copy(10)).await.unwrap_err();
    assert_eq!(err.aws_code(), Some("PreconditionFailed"), "{err}");
    assert_eq!(rule.num_calls(), 1, "not retried");
}

#[tokio::test]
async fn a_multipart_copy_that_fails_half_way_is_aborted() {
    let head = mock!(Client::head_object)
        .match_requests(|r| r.if_match() == Some("\"etag-listed\""))
        .then_output(|| HeadObjectOutput::builder().content_type("image/jpeg").build());
    let create = mock!(Client::create_multipart_upload)
        .match_requests(|r| r.content_type() == Some("image/jpeg") && r.ssekms_key_id().is_some())
        .then_output(|| CreateMultipartUploadOutput::builder().upload_id("u-1").build());
    let first_part = mock!(Client::upload_part_copy)
        .match_requests(|r| r.part_number() == Some(1) && r.copy_source_range() == Some("bytes=0-5242879"))
        .then_output(|| {
            UploadPartCopyOutput::builder()
                .copy_part_result(CopyPartResult::builder().e_tag("\"p1\"").build())
                .build()
        });
    let second_part = mock!(Client::upload_part_copy)
        .match_requests(|r| r.part_number() == Some(2))
        .sequence()
        .http_status(403, Some(s3_error("AccessDenied")))
        .build();
    let complete =
        mock!(Client::complete_multipart_upload).then_output(|| CompleteMultipartUploadOutput::builder().build());
    let abort = mock!(Client::abort_multipart_upload)
        .match_requests(|r| r.upload_id() == Some("u-1"))
        .then_output(|| AbortMultipartUploadOutput::builder().build());
    let store = S3Objects::new(
        client(&[&head, &create, &first_part, &second_part, &complete, &abort]),
        5 * MIB,
    );
    let err = store.copy(&copy(12 * MIB)).await.unwrap_err();
    assert_eq!(err.aws_code(), Some("AccessDenied"), "{err}");
    assert_eq!(first_part.num_calls(), 1);
    assert_eq!(complete.num_calls(), 0);
    assert_eq!(
        abort.num_calls(),
        1,
        "the incomplete upload is aborted, so no parts are billed"
    );
}

#[tokio::test]
async fn object_lock_days_and_years_are_read_and_a_bucket_without_it_locks_nothing() {
    use aws_sdk_s3::operation::get_object_lock_configuration::GetObjectLockConfigurationOutput;
    use aws_sdk_s3::types::{DefaultRetention, ObjectLockConfiguration, ObjectLockRetentionMode, ObjectLockRule};
    let lock = |bucket: &'static str, mode: ObjectLockRetentionMode, days: Option<i32>, years: Option<i32>| {
        mock!(Client::get_object_lock_configuration)
            .match_requests(move |r| r.bucket() == Some(bucket))
            .then_output(move || {
                GetObjectLockConfigurationOutput::builder()
                    .object_lock_configuration(
                        ObjectLockConfiguration::builder()
                            .rule(
                                ObjectLockRule::builder()
                                    .default_retention(
                                        DefaultRetention::builder()
                                            .mode(mode.clone())
                                            .set_days(days)
                                            .set_years(years)
                                            .build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            })
    };
    let days = lock("by-days", ObjectLockRetentionMode::Compliance, Some(30), Some(0));
    let years = lock("by-years", ObjectLockRetentionMode::Governance, None, Some(2));
    let none = mock!(Client::get_object_lock_configuration)
        .match_requests(|r| r.bucket() == Some("unlocked"))
        .then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(404).unwrap(),
                aws_smithy_types::body::SdkBody::from(s3_error("ObjectLockConfigurationNotFoundError")),
            )
        });
    let store = S3Objects::new(client(&[&days, &years, &none]), 5 * 1024 * MIB);
    assert_eq!(
        store.default_lock("by-days").await.unwrap(),
        Some(("COMPLIANCE".into(), 30))
    );
    assert_eq!(
        store.default_lock("by-years").await.unwrap(),
        Some(("GOVERNANCE".into(), 732))
    );
    assert_eq!(store.default_lock("unlocked").await.unwrap(), None);
}

#[tokio::test]
async fn a_stored_versions_checksum_is_kept_only_when_it_is_of_the_whole_object() {
    let whole = mock!(Client::head_object)
        .match_requests(|r| r.key() == Some("whole") && r.version_id() == Some("v1") && r.checksum_mode().is_some())
        .then_output(|| {
            HeadObjectOutput::builder()
                .content_length(11)
                .e_tag("\"e\"")
                .checksum_sha256("uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=")
                .build()
        });
    let parts = mock!(Client::head_object)
        .match_requests(|r| r.key() == Some("parts"))
        .then_output(|| {
            HeadObjectOutput::builder()
                .content_length(11)
                .checksum_sha256("abc=-3")
                .build()
        });
    let gone = mock!(Client::head_object)
        .match_requests(|r| r.key() == Some("gone"))
        .then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(404).unwrap(),
                aws_smithy_types::body::SdkBody::empty(),
            )
        });
    let store = S3Objects::new(client(&[&whole, &parts, &gone]), 5 * 1024 * MIB);
    let v = store.stored_version("b", "whole", "v1").await.unwrap().unwrap();
    assert_eq!(
        (v.size, v.sha256.as_deref()),
        (11, Some("uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="))
    );
    assert_eq!(
        store.stored_version("b", "parts", "v1").await.unwrap().unwrap().sha256,
        None
    );
    assert_eq!(store.stored_version("b", "gone", "v1").await.unwrap(), None);
}
