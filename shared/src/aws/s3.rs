//! S3: bucket listings, server-side copies and object versions (backups), and drpilot's state
//! objects with conditional writes (`If-None-Match: *` to create, `If-Match: <etag>` to update;
//! a 412 is a lost race).

use super::{aws_error, to_chrono};
use crate::error::{Error, Result};
use crate::plan::backup::copy_part_ranges;
use crate::ports::Upload;
use crate::ports::{
    BucketListing, Digest, Documents, NotDeleted, ObjectCopy, ObjectInfo, ObjectStore, Page, Saved, StateStore,
    StoredVersion, Versioned,
};
use aws_config::SdkConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart,
    ObjectLockRetentionMode, ServerSideEncryption, StorageClass,
};
use aws_sdk_s3::Client;
use chrono::Timelike;
use futures::stream::{self, StreamExt, TryStreamExt};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::sync::Mutex;

/// An S3 client pinned to `region`. `force_path_style` (setting `DRPILOT_S3_FORCE_PATH_STYLE`)
/// is for custom endpoints such as an emulator or some VPC endpoint setups.
pub fn client_in(sdk: &SdkConfig, region: &str, force_path_style: bool) -> Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .region(aws_sdk_s3::config::Region::new(region.to_string()))
        .force_path_style(force_path_style)
        .build();
    Client::from_conf(conf)
}

/// A link to read one private object without credentials, valid for `seconds`, and when the
/// object was last written. Refused when there is no such object (a link to nothing helps no
/// one at 3 a.m.).
pub async fn presigned_link(client: &Client, bucket: &str, key: &str, seconds: u64) -> Result<(String, String)> {
    let written = match client.head_object().bucket(bucket).key(key).send().await {
        Ok(head) => head
            .last_modified()
            .and_then(to_chrono)
            .map_or_else(|| "at an unknown time".to_string(), crate::model::stamp),
        // 403 too: without s3:ListBucket, S3 answers a missing key so
        Err(e)
            if e.raw_response()
                .is_some_and(|r| matches!(r.status().as_u16(), 403 | 404)) =>
        {
            return Err(Error::Refused(format!(
                "s3://{bucket}/{key} does not exist, or your credentials may not read it: the lag checker \
                 publishes it every five minutes when DRPILOT_STATUS_PAGE is on (Terraform's status_page)"
            )))
        }
        Err(e) => return Err(aws_error("HeadObject", e)),
    };
    let presigning = aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(seconds))
        .map_err(|e| Error::Refused(format!("a link valid for {seconds} s: {e}")))?;
    let request = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .presigned(presigning)
        .await
        .map_err(|e| aws_error("GetObject (presigned)", e))?;
    Ok((request.uri().to_string(), written))
}

/// One object of a `ListObjectsV2` page.
fn object_info(o: &aws_sdk_s3::types::Object) -> ObjectInfo {
    ObjectInfo {
        key: o.key().unwrap_or_default().to_string(),
        size: o.size().unwrap_or_default(),
        etag: o.e_tag().unwrap_or_default().to_string(),
        last_modified: o.last_modified().and_then(to_chrono),
    }
}

/// Every object under `prefix`, each page converted by `each` as it arrives.
async fn list_all<T>(
    client: &Client,
    bucket: &str,
    prefix: &str,
    each: impl Fn(aws_sdk_s3::types::Object) -> Option<T>,
) -> Result<Vec<T>> {
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("ListObjectsV2", e))?;
        out.extend(page.contents.unwrap_or_default().into_iter().filter_map(&each));
    }
    Ok(out)
}

/// `GetObject`: the object's bytes and ETag; `None` if there is none.
async fn get_object(client: &Client, bucket: &str, key: &str) -> Result<Option<Versioned>> {
    match client.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => {
            let etag = out.e_tag().unwrap_or_default().to_string();
            let body = out.body.collect().await.map_err(|e| crate::Error::Aws {
                operation: "GetObject",
                code: "ReadBody".into(),
                message: e.to_string(),
                retryable: true,
            })?;
            Ok(Some(Versioned {
                body: body.into_bytes().to_vec(),
                etag,
            }))
        }
        Err(e) => match aws_error("GetObject", e) {
            e if e.aws_code() == Some("NoSuchKey") => Ok(None),
            e => Err(e),
        },
    }
}

/// `DeleteObject`: of one version, or (`None`) of the current object.
/// An object's size, ETag and time, or `None` when there is no such key.
async fn head_object(client: &Client, bucket: &str, key: &str) -> Result<Option<ObjectInfo>> {
    match client.head_object().bucket(bucket).key(key).send().await {
        Ok(head) => Ok(Some(ObjectInfo {
            key: key.to_string(),
            size: head.content_length().unwrap_or_default(),
            etag: head.e_tag().unwrap_or_default().to_string(),
            last_modified: head.last_modified().and_then(to_chrono),
        })),
        // HeadObject answers a missing key with a bare 404 (no error code in the body)
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
        Err(e) => Err(aws_error("HeadObject", e)),
    }
}

async fn delete(client: &Client, bucket: &str, key: &str, version_id: Option<&str>) -> Result<()> {
    client
        .delete_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_string))
        .send()
        .await
        .map_err(|e| aws_error("DeleteObject", e))?;
    Ok(())
}

/// `DeleteObjects` takes at most 1,000 keys a call.
const DELETES_PER_CALL: usize = 1000;

pub struct S3Buckets {
    client: Client,
}

impl S3Buckets {
    pub fn new(client: Client) -> Self {
        S3Buckets { client }
    }
}

impl BucketListing for S3Buckets {
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>> {
        list_all(&self.client, bucket, prefix, |o| Some(object_info(&o))).await
    }
}

/// Parts of one multipart copy in flight at once (S3 copies each part server-side).
const PARTS_IN_FLIGHT: usize = 4;

/// Objects, copies and versions in one region's buckets (`CopyObject` goes to the target
/// bucket's region).
pub struct S3Objects {
    client: Client,
    multipart_threshold: i64,
}

impl S3Objects {
    pub fn new(client: Client, multipart_threshold: i64) -> Self {
        S3Objects {
            client,
            multipart_threshold,
        }
    }

    /// Above the threshold: `CreateMultipartUpload` with the source's metadata (unless `upload`
    /// holds one in progress), one `UploadPartCopy` per range not yet copied, recorded in
    /// `upload` as each ends, then `CompleteMultipartUpload`. Aborted on any failure so no
    /// orphaned parts are billed.
    async fn copy_in_parts(&self, copy: &ObjectCopy, source: &str, upload: &Mutex<Option<Upload>>) -> Result<String> {
        let resumed = upload.lock().expect("not poisoned").clone();
        let started = resumed.as_ref().and_then(|u| u.started);
        let resumed = match resumed {
            Some(u) if u.part_size == self.multipart_threshold => Some(u.upload_id),
            Some(stale) => {
                // cut with another part size (the setting changed): its parts do not fit
                self.abort(copy, &stale.upload_id).await;
                None
            }
            None => None,
        };
        let upload_id = match resumed.clone() {
            Some(id) => id,
            None => {
                // to the second, as S3 reports an object's time
                let now = chrono::Utc::now().with_nanosecond(0).unwrap_or_else(chrono::Utc::now);
                let id = self.start_upload(copy).await?;
                *upload.lock().expect("not poisoned") = Some(Upload {
                    upload_id: id.clone(),
                    part_size: self.multipart_threshold,
                    parts: vec![],
                    started: Some(now),
                });
                id
            }
        };
        // Every part copied already: an earlier invocation sent the completion, and was cut off
        // waiting for its answer.
        let ranges = copy_part_ranges(copy.size, self.multipart_threshold);
        let all_parts = {
            let n = ranges.len();
            let recorded = upload.lock().expect("not poisoned").as_ref().map_or(0, |u| {
                let mut numbers: Vec<i32> = u.parts.iter().map(|(n, _)| *n).collect();
                numbers.sort_unstable();
                numbers.dedup();
                numbers.len()
            });
            resumed.is_some() && recorded == n
        };
        let result = match self.copy_parts(copy, source, &upload_id, upload, &ranges).await {
            // That completion may have landed: the copy is there (and the upload gone).
            Err(e) if all_parts && e.aws_code() == Some("NoSuchUpload") => {
                match self.completed_earlier(copy, ranges.len(), started).await {
                    Ok(Some(version)) => Ok(version),
                    _ => Err(e),
                }
            }
            other => other,
        };
        *upload.lock().expect("not poisoned") = None;
        if result.is_err() {
            self.abort(copy, &upload_id).await;
        }
        result
    }

    /// The DR object's version, if it is the whole multipart copy of `copy` (its size, S3's
    /// `-<parts>` ETag for as many parts as the copy has) written since the upload `started`:
    /// an older version of the key (an earlier run's copy) is not it. Unknown start: not it.
    async fn completed_earlier(
        &self,
        copy: &ObjectCopy,
        parts: usize,
        started: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Option<String>> {
        let Some(started) = started else {
            return Ok(None);
        };
        let head = self
            .client
            .head_object()
            .bucket(&copy.to_bucket)
            .key(&copy.to_key)
            .send()
            .await
            .map_err(|e| aws_error("HeadObject", e))?;
        let whole = head.content_length() == Some(copy.size)
            && head
                .e_tag()
                .and_then(|t| t.trim_matches('"').rsplit_once('-'))
                .is_some_and(|(_, n)| n == parts.to_string())
            && head.last_modified().and_then(to_chrono).is_some_and(|t| t >= started);
        Ok(whole.then(|| head.version_id().unwrap_or_default().to_string()))
    }

    async fn abort(&self, copy: &ObjectCopy, upload_id: &str) {
        if let Err(e) = self.abort_upload(&copy.to_bucket, &copy.to_key, upload_id).await {
            tracing::warn!(key = %copy.to_key, error = %e, "could not abort a multipart copy; the bucket's lifecycle rule must clean it up");
        }
    }

    async fn start_upload(&self, copy: &ObjectCopy) -> Result<String> {
        let head = self
            .client
            .head_object()
            .bucket(&copy.from_bucket)
            .key(&copy.from_key)
            .set_version_id(copy.from_version.clone())
            .set_if_match(copy.if_match.clone())
            .send()
            .await
            .map_err(|e| {
                // HeadObject's errors have no body: a missing source and an ETag that is no longer
                // the one listed are known by their status only, and named as CopyObject names them.
                let code = match e.raw_response().map(|r| r.status().as_u16()) {
                    Some(404) => "NoSuchKey",
                    Some(412) => "PreconditionFailed",
                    _ => return aws_error("HeadObject", e),
                };
                Error::Aws {
                    operation: "HeadObject",
                    code: code.into(),
                    message: format!("s3://{}/{}", copy.from_bucket, copy.from_key),
                    retryable: false,
                }
            })?;
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&copy.to_bucket)
            .key(&copy.to_key)
            .set_metadata(head.metadata().cloned())
            .set_content_type(head.content_type().map(str::to_string))
            .set_content_encoding(head.content_encoding().map(str::to_string))
            .set_content_disposition(head.content_disposition().map(str::to_string))
            .set_content_language(head.content_language().map(str::to_string))
            .set_cache_control(head.cache_control().map(str::to_string))
            .set_server_side_encryption(encryption(copy))
            .set_ssekms_key_id(copy.kms_key_id.clone())
            .set_storage_class(copy.storage_class.as_deref().map(StorageClass::from))
            .send()
            .await
            .map_err(|e| aws_error("CreateMultipartUpload", e))?;
        Ok(upload.upload_id().unwrap_or_default().to_string())
    }

    async fn copy_parts(
        &self,
        copy: &ObjectCopy,
        source: &str,
        upload_id: &str,
        upload: &Mutex<Option<Upload>>,
        ranges: &[(i64, i64)],
    ) -> Result<String> {
        let ranges_count = ranges.len();
        let done: Vec<(i32, String)> = upload
            .lock()
            .expect("not poisoned")
            .as_ref()
            .map(|u| u.parts.clone())
            .unwrap_or_default();
        let todo: Vec<(i32, (i64, i64))> = ranges
            .iter()
            .copied()
            .enumerate()
            .map(|(i, range)| (i as i32 + 1, range))
            .filter(|(number, _)| !done.iter().any(|(n, _)| n == number))
            .collect();
        stream::iter(todo)
            .map(|(number, (first, last))| async move {
                let out = self
                    .client
                    .upload_part_copy()
                    .bucket(&copy.to_bucket)
                    .key(&copy.to_key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .copy_source(source)
                    .copy_source_range(format!("bytes={first}-{last}"))
                    .set_copy_source_if_match(copy.if_match.clone())
                    .send()
                    .await
                    .map_err(|e| aws_error("UploadPartCopy", e))?;
                let etag = out
                    .copy_part_result()
                    .and_then(|r| r.e_tag())
                    .unwrap_or_default()
                    .to_string();
                if let Some(u) = upload.lock().expect("not poisoned").as_mut() {
                    u.parts.push((number, etag));
                }
                Ok::<_, crate::Error>(())
            })
            .buffer_unordered(PARTS_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await?;
        let mut parts: Vec<(i32, String)> = upload
            .lock()
            .expect("not poisoned")
            .as_ref()
            .map(|u| u.parts.clone())
            .unwrap_or_default();
        parts.sort();
        parts.dedup_by_key(|(number, _)| *number);
        let numbers: Vec<i32> = parts.iter().map(|(n, _)| *n).collect();
        if numbers != (1..=ranges_count as i32).collect::<Vec<_>>() {
            return Err(crate::Error::RunFailed(format!(
                "the multipart copy of {} has parts {numbers:?}, not 1 to {ranges_count}",
                copy.to_key
            )));
        }
        let parts: Vec<CompletedPart> = parts
            .into_iter()
            .map(|(number, etag)| CompletedPart::builder().part_number(number).e_tag(etag).build())
            .collect();
        let done = self
            .client
            .complete_multipart_upload()
            .bucket(&copy.to_bucket)
            .key(&copy.to_key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| aws_error("CompleteMultipartUpload", e))?;
        Ok(done.version_id().unwrap_or_default().to_string())
    }
}

/// SSE-KMS exactly when the copy names a KMS key.
fn encryption(copy: &ObjectCopy) -> Option<ServerSideEncryption> {
    copy.kms_key_id.as_ref().map(|_| ServerSideEncryption::AwsKms)
}

/// What a key keeps unescaped in `x-amz-copy-source`: RFC 3986's unreserved characters and `/`.
const KEY_CHARACTERS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// The `x-amz-copy-source` value: `bucket/key[?versionId=v]`, with the key URL-encoded.
pub fn copy_source(bucket: &str, key: &str, version: Option<&str>) -> String {
    let mut out = format!("{bucket}/{}", utf8_percent_encode(key, KEY_CHARACTERS));
    if let Some(v) = version {
        out.push_str("?versionId=");
        out.push_str(v);
    }
    out
}

impl ObjectStore for S3Objects {
    async fn list_page(&self, bucket: &str, prefix: &str, start_after: Option<&str>) -> Result<Page<ObjectInfo>> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_string))
            .max_keys(1000)
            .send()
            .await
            .map_err(|e| aws_error("ListObjectsV2", e))?;
        Ok(Page {
            items: out.contents().iter().map(object_info).collect(),
            more: out.is_truncated().unwrap_or(false),
        })
    }

    async fn versioning_enabled(&self, bucket: &str) -> Result<bool> {
        match self.client.get_bucket_versioning().bucket(bucket).send().await {
            Ok(out) => Ok(out.status() == Some(&BucketVersioningStatus::Enabled)),
            Err(e) => {
                // A 200 whose XML the SDK cannot parse (moto 5.2.5 names the root element
                // `GetBucketVersioningResponse`, not `VersioningConfiguration`): read `<Status>`.
                let body = e
                    .raw_response()
                    .filter(|r| r.status().as_u16() == 200)
                    .and_then(|r| r.body().bytes())
                    .map(|b| String::from_utf8_lossy(b).to_string());
                match body {
                    Some(xml) => Ok(xml.contains("<Status>Enabled</Status>")),
                    None => Err(aws_error("GetBucketVersioning", e)),
                }
            }
        }
    }

    async fn copy(&self, copy: &ObjectCopy) -> Result<String> {
        self.copy_resumable(copy, &Mutex::new(None)).await
    }

    async fn copy_resumable(&self, copy: &ObjectCopy, upload: &Mutex<Option<Upload>>) -> Result<String> {
        let source = copy_source(&copy.from_bucket, &copy.from_key, copy.from_version.as_deref());
        if copy.size > self.multipart_threshold {
            return self.copy_in_parts(copy, &source, upload).await;
        }
        let out = self
            .client
            .copy_object()
            .bucket(&copy.to_bucket)
            .key(&copy.to_key)
            .copy_source(&source)
            .set_copy_source_if_match(copy.if_match.clone())
            .set_server_side_encryption(encryption(copy))
            .set_ssekms_key_id(copy.kms_key_id.clone())
            .set_storage_class(copy.storage_class.as_deref().map(StorageClass::from))
            // S3 computes the copy's SHA-256 over its bytes and keeps it with the version: the
            // restore verifier compares what a restore reads back with it
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .map_err(|e| aws_error("CopyObject", e))?;
        Ok(out.version_id().unwrap_or_default().to_string())
    }

    async fn folders(&self, bucket: &str, prefix: &str) -> Result<Vec<String>> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("ListObjectsV2", e))?;
            out.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string)),
            );
        }
        Ok(out)
    }

    async fn read(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(get_object(&self.client, bucket, key).await?.map(|v| v.body))
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>> {
        head_object(&self.client, bucket, key).await
    }

    async fn stored_version(&self, bucket: &str, key: &str, version: &str) -> Result<Option<StoredVersion>> {
        let head = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .version_id(version)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        match head {
            Ok(head) => Ok(Some(StoredVersion {
                size: head.content_length().unwrap_or_default(),
                etag: head.e_tag().unwrap_or_default().to_string(),
                // a multipart object's checksum is of its parts' ("...-N"): not of its bytes
                sha256: head.checksum_sha256().filter(|c| !c.contains('-')).map(str::to_string),
            })),
            // a bare 404 (no such version), or 400 for a version id S3 cannot parse
            Err(e)
                if e.raw_response()
                    .is_some_and(|r| matches!(r.status().as_u16(), 404 | 400)) =>
            {
                Ok(None)
            }
            Err(e) => Err(aws_error("HeadObject", e)),
        }
    }

    async fn digest(&self, bucket: &str, key: &str) -> Result<Option<Digest>> {
        use md5::{Digest as _, Md5};
        use sha2::Sha256;
        let out = match self.client.get_object().bucket(bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) => {
                return match aws_error("GetObject", e) {
                    e if e.aws_code() == Some("NoSuchKey") => Ok(None),
                    e => Err(e),
                }
            }
        };
        let (mut sha, mut md5, mut size) = (Sha256::new(), Md5::new(), 0u64);
        let mut body = out.body;
        while let Some(chunk) = body.try_next().await.map_err(|e| Error::Aws {
            operation: "GetObject",
            code: "ReadBody".into(),
            message: e.to_string(),
            retryable: true,
        })? {
            sha.update(&chunk);
            md5.update(&chunk);
            size += chunk.len() as u64;
        }
        Ok(Some(Digest {
            size,
            sha256: aws_smithy_types::base64::encode(sha.finalize()),
            md5: md5.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        }))
    }

    async fn default_lock(&self, bucket: &str) -> Result<Option<(String, u32)>> {
        match self.client.get_object_lock_configuration().bucket(bucket).send().await {
            Ok(out) => {
                let Some(rule) = out
                    .object_lock_configuration()
                    .and_then(|c| c.rule())
                    .and_then(|r| r.default_retention())
                else {
                    return Ok(None);
                };
                let days = match (rule.days(), rule.years()) {
                    (Some(d), _) if d > 0 => d as u32,
                    (_, Some(y)) if y > 0 => y as u32 * 366,
                    _ => return Ok(None),
                };
                let mode = rule.mode().map_or("GOVERNANCE", ObjectLockRetentionMode::as_str);
                Ok(Some((mode.to_string(), days)))
            }
            // a bucket without Object Lock
            Err(e) => match aws_error("GetObjectLockConfiguration", e) {
                e if e.aws_code() == Some("ObjectLockConfigurationNotFoundError") => Ok(None),
                e => Err(e),
            },
        }
    }

    async fn delete_versions(&self, bucket: &str, versions: &[(String, String)]) -> Result<Vec<NotDeleted>> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let mut not_deleted = vec![];
        for batch in versions.chunks(DELETES_PER_CALL) {
            let objects = batch
                .iter()
                .map(|(key, version)| ObjectIdentifier::builder().key(key).version_id(version).build())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::RunFailed(format!("cannot build a DeleteObjects request: {e}")))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true) // the answer names only what failed
                .build()
                .map_err(|e| Error::RunFailed(format!("cannot build a DeleteObjects request: {e}")))?;
            let out = self
                .client
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| aws_error("DeleteObjects", e))?;
            // S3 busy with some keys: the call as a whole is retried (what it did delete is
            // gone already, which a retry counts as deleted).
            if let Some(busy) = out
                .errors()
                .iter()
                .find(|e| matches!(e.code(), Some("InternalError" | "SlowDown" | "ServiceUnavailable")))
            {
                return Err(Error::Aws {
                    operation: "DeleteObjects",
                    code: busy.code().unwrap_or_default().to_string(),
                    message: busy.message().unwrap_or_default().to_string(),
                    retryable: true,
                });
            }
            not_deleted.extend(
                out.errors()
                    .iter()
                    // a version already gone is what was asked for
                    .filter(|e| !matches!(e.code(), Some("NoSuchVersion" | "NoSuchKey")))
                    .map(|e| NotDeleted {
                        key: e.key().unwrap_or_default().to_string(),
                        version_id: e.version_id().unwrap_or_default().to_string(),
                        reason: format!("{}: {}", e.code().unwrap_or("Error"), e.message().unwrap_or_default()),
                    }),
            );
        }
        Ok(not_deleted)
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        delete(&self.client, bucket, key, None).await
    }

    async fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(|e| aws_error("AbortMultipartUpload", e));
        match aborted {
            Err(e) if e.aws_code() == Some("NoSuchUpload") => Ok(()), // completed, or gone already
            other => other.map(|_| ()),
        }
    }
}

pub struct S3State {
    client: Client,
    bucket: String,
}

impl S3State {
    pub fn new(client: Client, bucket: &str) -> Self {
        S3State {
            client,
            bucket: bucket.to_string(),
        }
    }
}

const LOST_RACE: &[&str] = &["PreconditionFailed", "ConditionalRequestConflict"];

impl StateStore for S3State {
    async fn load(&self, key: &str) -> Result<Option<Versioned>> {
        get_object(&self.client, &self.bucket, key).await
    }

    async fn save(&self, key: &str, body: &[u8], expected: Option<&str>) -> Result<Saved> {
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body.to_vec()));
        let put = match expected {
            Some(etag) => put.if_match(etag),
            None => put.if_none_match("*"),
        };
        match put.send().await {
            Ok(out) => Ok(Saved::Written {
                etag: out.e_tag().unwrap_or_default().to_string(),
            }),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                match aws_error("PutObject", e) {
                    e if status == Some(412) || e.aws_code().is_some_and(|c| LOST_RACE.contains(&c)) => {
                        Ok(Saved::Conflict)
                    }
                    e => Err(e),
                }
            }
        }
    }
}

/// The status page: HTML a browser renders (not downloads), never cached by the browser, so a
/// reload shows the newest run's.
impl crate::ports::PagePublisher for S3State {
    async fn put_page(&self, key: &str, html: String) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("text/html; charset=utf-8")
            .cache_control("no-store")
            .body(ByteStream::from(html.into_bytes()))
            .send()
            .await
            .map_err(|e| aws_error("PutObject", e))?;
        Ok(())
    }

    async fn page_written(&self, key: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(head_object(&self.client, &self.bucket, key)
            .await?
            .and_then(|o| o.last_modified))
    }
}

/// Manifests are plain objects in the state bucket, written once by the run that owns them.
impl Documents for S3State {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.load(key).await?.map(|v| v.body))
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/x-ndjson")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| aws_error("PutObject", e))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        delete(&self.client, &self.bucket, key, None).await
    }

    async fn keys(&self, prefix: &str) -> Result<Vec<String>> {
        list_all(&self.client, &self.bucket, prefix, |o| o.key).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_copy_source_escapes_all_but_unreserved_characters_and_slashes() {
        assert_eq!(
            super::copy_source("b", "photos/ü a+b~_-.jpg", Some("v1")),
            "b/photos/%C3%BC%20a%2Bb~_-.jpg?versionId=v1"
        );
    }
}
