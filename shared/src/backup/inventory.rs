//! S3 Inventory reports as a scheduled run's source of keys, instead of listing the bucket.
//!
//! S3 delivers a configuration's report daily or weekly (AWS S3 User Guide, "Amazon S3
//! Inventory", "Locating your inventory list"): under `<destination prefix>/<source
//! bucket>/<config id>/`, a folder per report named by when S3 began scanning the bucket
//! (`YYYY-MM-DDTHH-MMZ/`) holding `manifest.json`, which names the report's gzipped CSV files
//! (with their MD5) and their columns. Keys in the CSV are URL-encoded. A report is eventually
//! consistent: it may miss objects added or deleted just before the scan, so S3 recommends a
//! `HeadObject` before acting on what it says; the run does that for every key it would drop.
//!
//! Reading a report costs a few requests whatever the bucket's size (a listing of the report
//! folders, the manifest, each CSV file), where listing costs one request per 1,000 keys.

use crate::error::{Error, Result};
use crate::model::{InventoryLocation, ObjectInfo};
use crate::ports::ObjectStore;
use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use std::io::Read;

/// A report older than this is not read (S3 delivers daily; a report this old is a missed
/// delivery, and a listing knows more).
pub const REPORT_MAX_AGE: chrono::Duration = chrono::Duration::hours(48);

/// Memory a run may give a report's keys, sorted in memory (about 150 bytes a key; this
/// counts 512): half the function's memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, which Lambda
/// sets; 1,024 MB elsewhere). A report with more keys is left, and the run lists the bucket.
pub fn most_objects() -> usize {
    let mb: usize = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    mb * 1024 * 1024 / 2 / 512
}

/// The report a run reads its keys from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRef {
    /// The report's `manifest.json`, in the location's bucket.
    pub manifest: String,
    /// When S3 began scanning the bucket for it (`creationTimestamp`).
    pub taken: DateTime<Utc>,
}

/// A report's `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportManifest {
    pub source_bucket: String,
    /// `arn:aws:s3:::<bucket>`: where the CSV files are.
    pub destination_bucket: String,
    /// Milliseconds since the epoch, as a string.
    pub creation_timestamp: String,
    pub file_format: String,
    pub file_schema: String,
    pub files: Vec<ReportFile>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReportFile {
    pub key: String,
    #[serde(rename = "MD5checksum")]
    pub md5: String,
}

impl ReportManifest {
    pub fn parse(body: &[u8], source_bucket: &str) -> Result<Self> {
        let m: ReportManifest = serde_json::from_slice(body)
            .map_err(|e| Error::RunFailed(format!("the inventory report's manifest.json cannot be read: {e}")))?;
        if m.source_bucket != source_bucket {
            return Err(Error::RunFailed(format!(
                "the inventory report is of bucket {}, not {source_bucket}",
                m.source_bucket
            )));
        }
        if !m.file_format.eq_ignore_ascii_case("CSV") {
            return Err(Error::RunFailed(format!(
                "the inventory report is {}; drpilot reads CSV reports",
                m.file_format
            )));
        }
        m.taken()?;
        Columns::of(&m.file_schema)?;
        Ok(m)
    }

    pub fn taken(&self) -> Result<DateTime<Utc>> {
        self.creation_timestamp
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| {
                Error::RunFailed(format!(
                    "the inventory report's creationTimestamp {:?} is not milliseconds since the epoch",
                    self.creation_timestamp
                ))
            })
    }

    fn bucket(&self) -> &str {
        self.destination_bucket
            .strip_prefix("arn:aws:s3:::")
            .unwrap_or(&self.destination_bucket)
    }
}

/// Where the columns drpilot reads are in a report's rows.
#[derive(Debug, Clone, Copy)]
struct Columns {
    key: usize,
    size: usize,
    modified: usize,
    etag: usize,
    /// Present in reports of all versions: only the current, live ones count.
    is_latest: Option<usize>,
    is_delete_marker: Option<usize>,
}

impl Columns {
    fn of(schema: &str) -> Result<Self> {
        let names: Vec<&str> = schema.split(',').map(str::trim).collect();
        let at = |name: &str| names.iter().position(|n| n.eq_ignore_ascii_case(name));
        let need = |name: &str| {
            at(name).ok_or_else(|| {
                Error::RunFailed(format!(
                    "the inventory report has no {name} column (its fields: {schema}); the configuration needs Size, LastModifiedDate and ETag"
                ))
            })
        };
        Ok(Columns {
            key: need("Key")?,
            size: need("Size")?,
            modified: need("LastModifiedDate")?,
            etag: need("ETag")?,
            is_latest: at("IsLatest"),
            is_delete_marker: at("IsDeleteMarker"),
        })
    }
}

/// The newest report whose `manifest.json` S3 has written (it writes the data files first),
/// with its manifest. Looks at the newest two report folders.
pub async fn newest<O: ObjectStore>(
    store: &O,
    at: &InventoryLocation,
    source_bucket: &str,
) -> Result<Option<(ReportRef, ReportManifest)>> {
    let mut reports: Vec<String> = store
        .folders(&at.bucket, &at.prefix)
        .await?
        .into_iter()
        .filter(|f| is_report_folder(&f[at.prefix.len().min(f.len())..]))
        .collect();
    reports.sort();
    for folder in reports.iter().rev().take(2) {
        let key = format!("{folder}manifest.json");
        if let Some(body) = store.read(&at.bucket, &key).await? {
            let manifest = ReportManifest::parse(&body, source_bucket)?;
            let taken = manifest.taken()?;
            return Ok(Some((ReportRef { manifest: key, taken }, manifest)));
        }
    }
    Ok(None)
}

/// A report folder's name: the scan's start, `YYYY-MM-DDTHH-MMZ/`.
fn is_report_folder(name: &str) -> bool {
    let name = name.trim_end_matches('/');
    chrono::NaiveDateTime::parse_from_str(name, "%Y-%m-%dT%H-%MZ").is_ok()
}

/// The report a run started on, read again (a run resumed by a later invocation).
pub async fn manifest_of<O: ObjectStore>(
    store: &O,
    at: &InventoryLocation,
    report: &ReportRef,
    source_bucket: &str,
) -> Result<ReportManifest> {
    let body = store.read(&at.bucket, &report.manifest).await?.ok_or_else(|| {
        Error::RunFailed(format!(
            "the inventory report s3://{}/{} is gone",
            at.bucket, report.manifest
        ))
    })?;
    ReportManifest::parse(&body, source_bucket)
}

/// The report's objects under `prefix`, sorted by key as S3 lists them (a report's rows come
/// in no documented order). Each CSV file is checked against the manifest's MD5.
pub async fn objects<O: ObjectStore>(store: &O, manifest: &ReportManifest, prefix: &str) -> Result<Vec<ObjectInfo>> {
    let columns = Columns::of(&manifest.file_schema)?;
    let bucket = manifest.bucket();
    let most = most_objects();
    let mut out = Vec::new();
    for file in &manifest.files {
        let body = store.read(bucket, &file.key).await?.ok_or_else(|| {
            Error::RunFailed(format!(
                "the inventory report's file s3://{bucket}/{} is gone",
                file.key
            ))
        })?;
        let digest: String = Md5::digest(&body).iter().map(|b| format!("{b:02x}")).collect();
        if !digest.eq_ignore_ascii_case(&file.md5) {
            return Err(Error::RunFailed(format!(
                "the inventory report's file s3://{bucket}/{} does not match its MD5 in the manifest",
                file.key
            )));
        }
        // read as it is unzipped: memory holds the keys, not the file
        let csv = flate2::read::GzDecoder::new(body.as_slice());
        rows(csv, columns, prefix, most, &mut out).map_err(|why| {
            Error::RunFailed(format!("the inventory report's file s3://{bucket}/{}: {why}", file.key))
        })?;
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out.dedup_by(|a, b| a.key == b.key);
    Ok(out)
}

/// Appends a CSV file's current objects under `prefix` to `out`, up to `most` in all.
fn rows(
    csv: impl Read,
    c: Columns,
    prefix: &str,
    most: usize,
    out: &mut Vec<ObjectInfo>,
) -> std::result::Result<(), String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(csv);
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("row {}: {e}", n + 1))?;
        let field = |i: usize| {
            record
                .get(i)
                .ok_or_else(|| format!("row {} has {} fields, not column {}", n + 1, record.len(), i + 1))
        };
        let flag = |i: Option<usize>| i.and_then(|i| record.get(i)).map(|v| v.eq_ignore_ascii_case("true"));
        if flag(c.is_latest) == Some(false) || flag(c.is_delete_marker) == Some(true) {
            continue;
        }
        let key = url_decoded(field(c.key)?).map_err(|e| format!("row {}: {e}", n + 1))?;
        if !key.starts_with(prefix) {
            continue;
        }
        let size = field(c.size)?
            .parse::<i64>()
            .map_err(|_| format!("row {}: size {:?} is not a number", n + 1, record.get(c.size)))?;
        let modified = DateTime::parse_from_rfc3339(field(c.modified)?)
            .map_err(|_| {
                format!(
                    "row {}: LastModifiedDate {:?} is not a time",
                    n + 1,
                    record.get(c.modified)
                )
            })?
            .with_timezone(&Utc);
        // Listings quote ETags; reports do not.
        let etag = field(c.etag)?.trim_matches('"');
        if out.len() >= most {
            return Err(format!(
                "the report lists more than {most} keys, more than this function's memory holds sorted"
            ));
        }
        out.push(ObjectInfo {
            key,
            size,
            etag: format!("\"{etag}\""),
            last_modified: Some(modified),
        });
    }
    Ok(())
}

/// A key as a report's CSV gives it: URL-encoded (a space may be `+`; a `+` itself is `%2B`).
fn url_decoded(field: &str) -> std::result::Result<String, String> {
    percent_encoding::percent_decode_str(&field.replace('+', " "))
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| format!("key {field:?} is not URL-encoded UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "Bucket, Key, Size, LastModifiedDate, ETag, StorageClass";

    fn parse(csv: &str, schema: &str, prefix: &str) -> std::result::Result<Vec<ObjectInfo>, String> {
        let mut out = vec![];
        rows(
            csv.as_bytes(),
            Columns::of(schema).unwrap(),
            prefix,
            usize::MAX,
            &mut out,
        )?;
        Ok(out)
    }

    #[test]
    fn rows_decode_keys_and_quote_etags_as_listings_do() {
        let csv = "\"src\",\"a/b+c%2Bd.txt\",\"12\",\"2026-11-26T01:02:03.000Z\",\"0cc175b9c0f1b6a831c399e269772661\",\"STANDARD\"\n\
                   \"src\",\"caf%C3%A9\",\"0\",\"2026-11-26T01:02:04.000Z\",\"d41d8cd98f00b204e9800998ecf8427e-2\",\"GLACIER\"\n";
        let out = parse(csv, SCHEMA, "").unwrap();
        assert_eq!(out[0].key, "a/b c+d.txt");
        assert_eq!(out[0].size, 12);
        assert_eq!(out[0].etag, "\"0cc175b9c0f1b6a831c399e269772661\"");
        assert_eq!(out[0].last_modified.unwrap().to_rfc3339(), "2026-11-26T01:02:03+00:00");
        assert_eq!(out[1].key, "café");
        assert_eq!(out[1].etag, "\"d41d8cd98f00b204e9800998ecf8427e-2\"");
        // only the backup's prefix
        assert_eq!(parse(csv, SCHEMA, "a/").unwrap().len(), 1);
    }

    #[test]
    fn reports_of_all_versions_count_only_live_current_objects() {
        let schema = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag";
        let csv = "\"s\",\"a\",\"v2\",\"true\",\"false\",\"1\",\"2026-11-26T01:00:00.000Z\",\"e2\"\n\
                   \"s\",\"a\",\"v1\",\"false\",\"false\",\"1\",\"2026-11-25T01:00:00.000Z\",\"e1\"\n\
                   \"s\",\"b\",\"v3\",\"true\",\"true\",\"\",\"2026-11-26T01:00:00.000Z\",\"\"\n";
        let out = parse(csv, schema, "").unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].key.as_str(), out[0].etag.as_str()), ("a", "\"e2\""));
    }

    #[test]
    fn bad_rows_and_manifests_say_what_is_wrong() {
        let err = parse(
            "\"s\",\"a\",\"x\",\"2026-11-26T01:00:00.000Z\",\"e\",\"S\"\n",
            SCHEMA,
            "",
        )
        .unwrap_err();
        assert!(err.contains("row 1: size"), "{err}");
        let err = parse("\"s\",\"a\"\n", SCHEMA, "").unwrap_err();
        assert!(err.contains("row 1 has 2 fields"), "{err}");
        let two = "\"s\",\"a\",\"1\",\"2026-11-26T01:00:00.000Z\",\"e\",\"S\"\n\"s\",\"b\",\"1\",\"2026-11-26T01:00:00.000Z\",\"e\",\"S\"\n";
        let mut out = vec![];
        let err = rows(two.as_bytes(), Columns::of(SCHEMA).unwrap(), "", 1, &mut out).unwrap_err();
        assert!(err.contains("more than 1 keys"), "{err}");
        let manifest = |format: &str, schema: &str, ts: &str| {
            format!(
                r#"{{"sourceBucket": "src", "destinationBucket": "arn:aws:s3:::inv", "version": "2016-11-30", "creationTimestamp": "{ts}", "fileFormat": "{format}", "fileSchema": "{schema}", "files": []}}"#
            )
        };
        let ok = manifest("CSV", SCHEMA, "1764118800000");
        let m = ReportManifest::parse(ok.as_bytes(), "src").unwrap();
        assert_eq!(m.taken().unwrap().to_rfc3339(), "2025-11-26T01:00:00+00:00");
        assert_eq!(m.bucket(), "inv");
        for (body, bucket, expected) in [
            (ok.clone(), "other", "of bucket src, not other"),
            (manifest("ORC", SCHEMA, "1"), "src", "drpilot reads CSV"),
            (
                manifest("CSV", "Bucket, Key, Size", "1"),
                "src",
                "no LastModifiedDate column",
            ),
            (manifest("CSV", SCHEMA, "yesterday"), "src", "not milliseconds"),
            ("{".to_string(), "src", "cannot be read"),
        ] {
            let err = ReportManifest::parse(body.as_bytes(), bucket).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn report_folders_are_named_by_the_scan() {
        assert!(is_report_folder("2026-11-26T00-00Z/"));
        assert!(!is_report_folder("data/"));
        assert!(!is_report_folder("hive/"));
    }
}
