//! S3: bucket listings, and drpilot's state objects with conditional writes
//! (`If-None-Match: *` to create, `If-Match: <etag>` to update; a 412 is a lost race).

use super::{aws_error, to_chrono};
use crate::error::Result;
use crate::ports::{BucketListing, ObjectInfo, Saved, StateStore, Versioned};
use aws_config::SdkConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

/// An S3 client pinned to `region`. `force_path_style` (setting `DRPILOT_S3_FORCE_PATH_STYLE`)
/// is for custom endpoints such as an emulator or some VPC endpoint setups.
pub fn client_in(sdk: &SdkConfig, region: &str, force_path_style: bool) -> Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .region(aws_sdk_s3::config::Region::new(region.to_string()))
        .force_path_style(force_path_style)
        .build();
    Client::from_conf(conf)
}

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
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("ListObjectsV2", e))?;
            out.extend(page.contents().iter().map(|o| ObjectInfo {
                key: o.key().unwrap_or_default().to_string(),
                size: o.size().unwrap_or_default(),
                last_modified: o.last_modified().and_then(to_chrono),
            }));
        }
        Ok(out)
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
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
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
            Err(e) => {
                let e = aws_error("GetObject", e);
                if e.aws_code() == Some("NoSuchKey") {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
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
                let e = aws_error("PutObject", e);
                if status == Some(412) || e.aws_code().is_some_and(|c| LOST_RACE.contains(&c)) {
                    Ok(Saved::Conflict)
                } else {
                    Err(e)
                }
            }
        }
    }
}
