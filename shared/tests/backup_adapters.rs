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
