//! s3-backup end to end: the real handler, binary and restore against moto server, with a
//! source bucket in one region and a versioned, KMS-encrypted DR bucket in another.
//!
//! Buckets are unique per test, so tests share one region pair. moto ignores
//! `x-amz-copy-source-if-match`; the simulator answers it as AWS does (`drsim/s3.py`).

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, StorageClass, VersioningConfiguration};
use aws_sdk_s3::Client;
use drpilot::backup::restore::{restore, RestoreRequest};
use drpilot::backup::{handle, BackupEvent, BackupPorts, Invocation};
use drpilot::config::BackupConfig;
use drpilot::events::Decode;
use drpilot_tests::account::{Regions, Responders};
use drpilot_tests::{function_binary, function_env, repo_path, unique};
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

const SOURCE: &str = "us-east-2";
const DR: &str = "eu-west-1";

/// A user's account: a production bucket, a versioned DR bucket with a DR KMS key, drpilot's
/// state bucket, and the responders' topic.
struct Bed {
    name: String,
    src: Client,
    dr: Client,
    source_bucket: String,
    dr_bucket: String,
    state_bucket: String,
    kms_key: String,
    responders: Responders,
}

impl Bed {
    async fn new(prefix: &str) -> Bed {
        let regions = Regions::new(SOURCE, DR).await;
        let name = unique(prefix);
        let (source_bucket, dr_bucket, state_bucket) =
            (format!("{name}-prod"), format!("{name}-dr"), format!("{name}-state"));
        let src = regions.create_bucket(SOURCE, &source_bucket).await;
        let dr = regions.create_bucket(DR, &dr_bucket).await;
        regions.create_bucket(DR, &state_bucket).await;
        enable_versioning(&dr, &dr_bucket).await;
        Bed {
            src,
            dr,
            source_bucket,
            dr_bucket,
            state_bucket,
            kms_key: regions.dr_kms_key().await,
            responders: Responders::new(DR, &format!("{name}-responders")).await,
            name,
        }
    }

    fn settings(&self, backup: Value, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut backup = backup;
        let fields = backup.as_object_mut().unwrap();
        fields.entry("name").or_insert(json!("assets"));
        fields.entry("source_bucket").or_insert(json!(self.source_bucket));
        fields.entry("dr_bucket").or_insert(json!(self.dr_bucket));
        let mut out: Vec<(String, String)> = vec![
            ("DRPILOT_SOURCE_REGION".into(), SOURCE.into()),
            ("DRPILOT_DR_REGION".into(), DR.into()),
            ("DRPILOT_S3_BACKUPS".into(), json!([backup]).to_string()),
            ("DRPILOT_STATE_BUCKET".into(), self.state_bucket.clone()),
            ("DRPILOT_NOTIFY_TOPIC_ARN".into(), self.responders.topic_arn.clone()),
            ("DRPILOT_S3_FORCE_PATH_STYLE".into(), "true".into()),
        ];
        out.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        out
    }

    fn config(&self, backup: Value, extra: &[(&str, &str)]) -> BackupConfig {
        let settings = self.settings(backup, extra);
        let vars: HashMap<&str, &str> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        BackupConfig::from_vars(&vars).unwrap()
    }

    /// One invocation of the real handler, as Lambda would make it (15 minutes to go).
    async fn run(&self, cfg: &BackupConfig) -> Result<Value, drpilot::Error> {
        self.run_within(cfg, chrono::Duration::minutes(15)).await
    }

    /// One invocation with `left` to its deadline.
    async fn run_within(&self, cfg: &BackupConfig, left: chrono::Duration) -> Result<Value, drpilot::Error> {
        let sdk = drpilot_tests::sdk(DR).await;
        let ports = BackupPorts::accounts(&sdk, cfg);
        let inv = Invocation {
            request_id: unique("request"),
            deadline: chrono::Utc::now() + left,
        };
        let schedule = drpilot_tests::sample_event("s3-backup/schedule.json");
        handle(&ports, cfg, BackupEvent::decode(schedule).unwrap(), &inv).await
    }

    async fn put(&self, key: &str, body: &str) {
        put(&self.src, &self.source_bucket, key, body.as_bytes().to_vec(), None).await;
    }

    /// Makes the oldest point in time `days` old in drpilot's own record of it (moto cannot
    /// age objects; retention decides on this record and the versions).
    async fn age_first_point(&self, days: i64) {
        let state_key = "drpilot/s3-backup/assets/state.json";
        let body = self
            .dr
            .get_object()
            .bucket(&self.state_bucket)
            .key(state_key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        let mut state: Value = serde_json::from_slice(&body).unwrap();
        let old = (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339();
        state["points"][0]["started"] = json!(old);
        state["points"][0]["finished"] = json!(old);
        self.dr
            .put_object()
            .bucket(&self.state_bucket)
            .key(state_key)
            .body(ByteStream::from(serde_json::to_vec(&state).unwrap()))
            .send()
            .await
            .unwrap();
    }

    async fn delete(&self, key: &str) {
        self.src
            .delete_object()
            .bucket(&self.source_bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    }

    /// Restores a point in time with the real restore code, into `target` in the source region.
    async fn restore(
        &self,
        cfg: &BackupConfig,
        req: RestoreRequest,
    ) -> (drpilot::backup::restore::RestoreReport, Vec<String>) {
        let sdk = drpilot_tests::sdk(DR).await;
        let state = drpilot::aws::s3::S3State::new(drpilot::aws::s3::client_in(&sdk, DR, true), &self.state_bucket);
        let target = drpilot::aws::s3::S3Objects::new(
            drpilot::aws::s3::client_in(&sdk, SOURCE, true),
            cfg.multipart_threshold_bytes,
        );
        let mut lines = vec![];
        let mut say = |l: String| lines.push(l);
        let report = restore(&state, &target, cfg, &cfg.backups[0], &req, &mut say)
            .await
            .unwrap();
        (report, lines)
    }
    /// Applies a restore of `point` (`None`: the newest) into a new, empty bucket.
    async fn restore_into_new_bucket(
        &self,
        cfg: &BackupConfig,
        point: Option<String>,
    ) -> (drpilot::backup::restore::RestoreReport, String) {
        let target = unique(&format!("{}-restore", self.name));
        Regions::new(SOURCE, DR).await.create_bucket(SOURCE, &target).await;
        let req = RestoreRequest {
            point,
            target_bucket: target.clone(),
            target_prefix: None,
            delete_extra: false,
            apply: true,
        };
        (self.restore(cfg, req).await.0, target)
    }
}

async fn enable_versioning(s3: &Client, bucket: &str) {
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

async fn put(s3: &Client, bucket: &str, key: &str, body: Vec<u8>, class: Option<StorageClass>) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("text/plain")
        .set_storage_class(class)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap();
}

/// What a user would compare: every key under `prefix` and its bytes.
async fn contents(s3: &Client, bucket: &str) -> BTreeMap<String, Vec<u8>> {
    let mut keys = vec![];
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        keys.extend(page.unwrap().contents().iter().map(|o| o.key().unwrap().to_string()));
    }
    stream::iter(keys)
        .map(|k| async move {
            let body = s3
                .get_object()
                .bucket(bucket)
                .key(&k)
                .send()
                .await
                .unwrap()
                .body
                .collect()
                .await;
            (k, body.unwrap().into_bytes().to_vec())
        })
        .buffer_unordered(16)
        .collect()
        .await
}

/// Every (key, version id) in a versioned bucket, delete markers excluded.
async fn versions(s3: &Client, bucket: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
            .unwrap();
        out.extend(
            page.versions()
                .iter()
                .map(|v| (v.key().unwrap().to_string(), v.version_id().unwrap().to_string())),
        );
        if !page.is_truncated().unwrap_or(false) {
            return out;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
    }
}

fn backup_report(response: &Value) -> &Value {
    &response["backups"][0]
}

fn count(response: &Value, what: &str) -> u64 {
    backup_report(response)["counts"][what]
        .as_u64()
        .unwrap_or_else(|| panic!("{what} in {response:#}"))
}

fn point_ids(response: &Value) -> String {
    backup_report(response)["run_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn backs_up_incrementally_and_restores_any_point_in_time_exactly() {
    let bed = Bed::new("pit").await;
    let cfg = bed.config(json!({"kms_key_id": bed.kms_key, "storage_class": "STANDARD_IA"}), &[]);
    // Keys S3 lists in byte order, with spaces, unicode and "directories".
    let keys: Vec<String> = (0..25)
        .map(|i| format!("photos/{i:03}.jpg"))
        .chain(["a b/c+d.txt", "é/ü.txt", "logs/", "Z-upper.txt", "~tilde"].map(String::from))
        .collect();
    for k in &keys {
        bed.put(k, &format!("v1 of {k}")).await;
    }

    // First run: everything is copied, encrypted with the DR key, in the chosen storage class.
    let first = bed.run(&cfg).await.expect("first run");
    assert_eq!(backup_report(&first)["outcome"], "complete", "{first:#}");
    assert_eq!(count(&first, "copied"), 30);
    assert_eq!(count(&first, "unchanged"), 0);
    let at_first = contents(&bed.src, &bed.source_bucket).await;
    assert_eq!(contents(&bed.dr, &bed.dr_bucket).await, at_first);
    let head = bed
        .dr
        .head_object()
        .bucket(&bed.dr_bucket)
        .key("a b/c+d.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(head.ssekms_key_id(), Some(bed.kms_key.as_str()));
    assert_eq!(head.storage_class(), Some(&StorageClass::StandardIa));
    assert_eq!(
        head.content_type(),
        Some("text/plain"),
        "metadata travels with the copy"
    );

    // A rerun with no change copies nothing: unchanged objects cost their listing only.
    let rerun = bed.run(&cfg).await.expect("rerun");
    assert_eq!(count(&rerun, "copied"), 0, "{rerun:#}");
    assert_eq!(count(&rerun, "unchanged"), 30);
    assert_eq!(
        versions(&bed.dr, &bed.dr_bucket).await.len(),
        30,
        "no new versions for unchanged objects"
    );

    // Change two, delete three, add one.
    bed.put("photos/001.jpg", "v2, a new edit").await;
    bed.put("é/ü.txt", "v2").await;
    for k in ["photos/002.jpg", "logs/", "~tilde"] {
        bed.delete(k).await;
    }
    bed.put("photos/new.jpg", "new").await;
    let third = bed.run(&cfg).await.expect("third run");
    assert_eq!(count(&third, "copied"), 3, "{third:#}");
    assert_eq!(count(&third, "unchanged"), 25);
    assert_eq!(count(&third, "deleted_at_source"), 3);
    assert_eq!(backup_report(&third)["points_in_time"], 3);
    let at_third = contents(&bed.src, &bed.source_bucket).await;

    // Restore the first point in time into an empty bucket: exactly the bucket as it was,
    // deleted objects back and edits undone.
    let target = format!("{}-restore", bed.name);
    Regions::new(SOURCE, DR).await.create_bucket(SOURCE, &target).await;
    let request = |point: Option<String>, apply: bool, delete_extra: bool| RestoreRequest {
        point,
        target_bucket: target.clone(),
        target_prefix: None,
        delete_extra,
        apply,
    };
    let (dry, lines) = bed.restore(&cfg, request(Some(point_ids(&first)), false, false)).await;
    assert_eq!(dry.copied, 30);
    assert!(
        lines.iter().any(|l| l.starts_with("would copy photos/002.jpg (")),
        "{lines:#?}"
    );
    assert!(
        contents(&bed.src, &target).await.is_empty(),
        "a dry run changes nothing"
    );
    let (done, _) = bed.restore(&cfg, request(Some(point_ids(&first)), true, false)).await;
    assert_eq!((done.copied, done.failed), (30, 0));
    assert_eq!(contents(&bed.src, &target).await, at_first);

    // Restore the newest point into the same bucket: only what differs is copied, and extras
    // (objects deleted since) are removed only when asked.
    let (keep, lines) = bed.restore(&cfg, request(None, true, false)).await;
    assert_eq!((keep.copied, keep.extra, keep.deleted), (3, 3, 0), "{lines:#?}");
    let (exact, _) = bed.restore(&cfg, request(None, true, true)).await;
    assert_eq!((exact.copied, exact.unchanged, exact.deleted), (0, 28, 3));
    assert_eq!(contents(&bed.src, &target).await, at_third);

    // The production bucket itself can be rolled back (after, say, a bad deploy wiped it).
    for k in at_third.keys() {
        bed.delete(k).await;
    }
    let (rollback, _) = bed
        .restore(
            &cfg,
            RestoreRequest {
                point: Some(point_ids(&first)),
                target_bucket: bed.source_bucket.clone(),
                target_prefix: None,
                delete_extra: true,
                apply: true,
            },
        )
        .await;
    assert_eq!(rollback.failed, 0);
    assert_eq!(contents(&bed.src, &bed.source_bucket).await, at_first);
    assert!(bed.responders.received().await.is_empty(), "clean runs send no notice");
}

/// What Terraform configures for a backup with `inventory = true` (infra/backups.tf): a daily
/// CSV report of current versions with the fields drpilot reads, into an inventory bucket in
/// the source region. Returns the backup's `inventory` setting.
async fn configure_inventory(bed: &Bed) -> (String, String) {
    use aws_sdk_s3::types::{
        InventoryConfiguration, InventoryDestination, InventoryFormat, InventoryFrequency,
        InventoryIncludedObjectVersions, InventoryOptionalField, InventoryS3BucketDestination, InventorySchedule,
    };
    let inventory_bucket = format!("{}-inventory", bed.name);
    Regions::new(SOURCE, DR)
        .await
        .create_bucket(SOURCE, &inventory_bucket)
        .await;
    let destination = InventoryS3BucketDestination::builder()
        .bucket(format!("arn:aws:s3:::{inventory_bucket}"))
        .format(InventoryFormat::Csv)
        .prefix("inventory")
        .build()
        .unwrap();
    let config = InventoryConfiguration::builder()
        .id("drpilot")
        .is_enabled(true)
        .included_object_versions(InventoryIncludedObjectVersions::Current)
        .schedule(
            InventorySchedule::builder()
                .frequency(InventoryFrequency::Daily)
                .build()
                .unwrap(),
        )
        .destination(
            InventoryDestination::builder()
                .s3_bucket_destination(destination)
                .build(),
        )
        .optional_fields(InventoryOptionalField::Size)
        .optional_fields(InventoryOptionalField::LastModifiedDate)
        .optional_fields(InventoryOptionalField::ETag)
        .optional_fields(InventoryOptionalField::StorageClass)
        .build()
        .unwrap();
    bed.src
        .put_bucket_inventory_configuration()
        .bucket(&bed.source_bucket)
        .id("drpilot")
        .inventory_configuration(config)
        .send()
        .await
        .unwrap();
    let setting = format!("s3://{inventory_bucket}/inventory/{}/drpilot/", bed.source_bucket);
    (inventory_bucket, setting)
}

/// S3's notification of a change to `key`, as the queue hands it to the function.
fn s3_change_event(bucket: &str, key: &str) -> Value {
    let body = json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": SOURCE,
        "eventTime": chrono::Utc::now().to_rfc3339(), "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": key, "size": 1}}
    }]});
    json!({"Records": [{
        "messageId": unique("message"), "receiptHandle": "handle", "body": body.to_string(),
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
        "eventSource": "aws:sqs", "eventSourceARN": format!("arn:aws:sqs:{DR}:123456789012:drpilot-s3-changes"),
        "awsRegion": DR
    }]})
}

#[tokio::test]
async fn a_daily_inventory_report_replaces_the_listing_and_never_undoes_a_newer_change() {
    let bed = Bed::new("inventory").await;
    let sim = drpilot_tests::sim::Simulator::connect();
    let (inventory_bucket, location) = configure_inventory(&bed).await;
    let cfg = bed.config(json!({"kms_key_id": bed.kms_key, "inventory": location}), &[]);
    for i in 0..30 {
        bed.put(&format!("k/{i:02}"), "v1").await;
    }
    bed.put("k/zz", "v1").await; // sorts after every key of the report to come
    let first = bed.run(&cfg).await.expect("the first run");
    assert_eq!(count(&first, "copied"), 31);
    assert!(backup_report(&first)["inventory"].is_null(), "{first:#}");
    let note = backup_report(&first)["note"].as_str().unwrap_or_default();
    assert!(note.contains("no inventory report"), "{first:#}");

    // A day of changes, then S3's daily report, then changes it has not seen. (S3's times are
    // to the second: the report is taken a second after the objects it drops were written, or
    // they would count as written during the scan and stand.)
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    bed.put("k/00", "v2").await; // changed
    bed.delete("k/01").await; // deleted
    bed.delete("k/zz").await; // deleted, past the report's last key
    bed.put("k/new", "new").await; // created
    bed.put("k/02", "v2").await; // changed, then changed again after the report
    bed.put("k/03", "v2").await; // changed, then deleted after the report
    bed.put("k/born", "v1").await; // created, then changed after the report
    let delivered = sim.deliver_inventory(&bed.source_bucket, json!({})).await;
    assert_eq!(delivered["reports"][0]["objects"], 31, "{delivered:#}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // S3 times are to the second
    bed.put("k/02", "v3, after the report").await;
    bed.delete("k/03").await;
    bed.put("k/born", "v2, after the report").await;
    // ... and one the event path recorded: a change point newer than the report
    bed.put("k/05", "v2, after the report").await;
    let ports = BackupPorts::accounts(&drpilot_tests::sdk(DR).await, &cfg);
    let inv = Invocation {
        request_id: unique("request"),
        deadline: chrono::Utc::now() + chrono::Duration::minutes(15),
    };
    let event = s3_change_event(&bed.source_bucket, "k/05");
    let recorded = handle(&ports, &cfg, BackupEvent::decode(event).unwrap(), &inv)
        .await
        .unwrap();
    assert!(recorded["backups"][0]["point"].is_string(), "{recorded:#}");

    let mark = sim.wire_mark().await;
    let second = bed.run(&cfg).await.expect("the run on the report");
    let (wire, _) = sim.wire(mark).await;
    let report = backup_report(&second);
    assert!(
        report["inventory"].as_str().unwrap().contains("manifest.json"),
        "{second:#}"
    );
    // copied: k/00 and k/new as the report saw them; k/02, k/born and k/05 as they are now (S3
    // refused the copies pinned to what the report saw; a look found them changed: k/05 as the
    // change point holds it). k/03 moved on (gone since): its version before stands.
    assert_eq!(
        (
            count(&second, "copied"),
            count(&second, "moved_on"),
            count(&second, "deleted_at_source"),
            count(&second, "failed"),
            count(&second, "unchanged"),
        ),
        (5, 1, 2, 0, 25),
        "{second:#}"
    );
    // No listing of the source bucket: the report, and a look at each key the report dropped
    // (k/01, k/zz) or that S3 refused to copy as the report saw it (k/02, k/03, k/05, k/born).
    let on = |bucket: &str| -> Vec<&str> {
        wire.0
            .iter()
            .filter(|e| e.params.get("Bucket").map(String::as_str) == Some(bucket))
            .filter_map(|e| e.action.as_deref())
            .collect()
    };
    assert_eq!(on(&bed.source_bucket), ["HeadObject"; 6], "{:?}", wire.0);
    assert_eq!(on(&inventory_bucket), ["ListObjectsV2", "GetObject", "GetObject"]);
    // Nothing failed: no notice.
    assert!(bed.responders.received().await.is_empty());
    // The point holds the source as it is, but k/03 as it was when the report was taken.
    let (_, restored) = bed.restore_into_new_bucket(&cfg, None).await;
    let mut expected = contents(&bed.src, &bed.source_bucket).await;
    expected.insert("k/03".into(), b"v1".to_vec());
    assert_eq!(contents(&bed.src, &restored).await, expected);
    // Its recovery point is the report's scan, not the run's start.
    let state = contents(&bed.dr, &bed.state_bucket).await;
    let state: Value = serde_json::from_slice(&state["drpilot/s3-backup/assets/state.json"]).unwrap();
    let newest = state["points"].as_array().unwrap().last().unwrap().clone();
    assert!(
        newest["as_of"].as_str().unwrap() < newest["started"].as_str().unwrap(),
        "{newest:#}"
    );

    // The next run has no newer report: it lists, and records what the report missed.
    let third = bed.run(&cfg).await.expect("the run after");
    assert!(backup_report(&third)["inventory"].is_null(), "{third:#}");
    assert!(
        backup_report(&third)["note"]
            .as_str()
            .unwrap_or_default()
            .contains("older than the last run"),
        "{third:#}"
    );
    assert_eq!(
        (count(&third, "copied"), count(&third, "deleted_at_source")),
        (0, 1),
        "{third:#}"
    );
    let (_, restored) = bed.restore_into_new_bucket(&cfg, None).await;
    assert_eq!(
        contents(&bed.src, &restored).await,
        contents(&bed.src, &bed.source_bucket).await
    );

    // A report whose data file is damaged is not read: the run lists, and says why.
    let delivered = sim.deliver_inventory(&bed.source_bucket, json!({})).await;
    let manifest_url = delivered["reports"][0]["manifest"].as_str().unwrap();
    let manifest_key = manifest_url.split_once(&format!("{inventory_bucket}/")).unwrap().1;
    let manifest: Value = serde_json::from_slice(&contents(&bed.src, &inventory_bucket).await[manifest_key]).unwrap();
    let data_key = manifest["files"][0]["key"].as_str().unwrap();
    put(&bed.src, &inventory_bucket, data_key, b"not gzip".to_vec(), None).await;
    bed.put("k/04", "v2").await;
    let fourth = bed.run(&cfg).await.expect("the run on a damaged report");
    let note = backup_report(&fourth)["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("does not match its MD5") && note.contains("lists the bucket"),
        "{fourth:#}"
    );
    assert_eq!(count(&fourth, "copied"), 1, "{fourth:#}");
}

#[tokio::test]
async fn a_run_on_a_report_cut_by_the_deadline_resumes_on_it_without_copying_twice() {
    let bed = Bed::new("invcut").await;
    let sim = drpilot_tests::sim::Simulator::connect();
    let (_, location) = configure_inventory(&bed).await;
    let objects = 1_500;
    seed(&bed, 0..objects, "v1").await;
    let cfg = bed.config(json!({"inventory": location}), &[]);
    bed.run(&cfg)
        .await
        .expect("the first point in time (a listing: no report yet)");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    seed(&bed, (0..objects).step_by(3), "v2").await;
    sim.deliver_inventory(&bed.source_bucket, json!({})).await;
    let settings = bed.settings(
        json!({"inventory": location}),
        &[("DRPILOT_DEADLINE_MARGIN_SECONDS", "60")],
    );

    // 20 s left, less than half the margin: one copy, then the page is recorded up to it.
    let cut = invoke_binary(&settings, "20");
    assert_eq!(backup_report(&cut)["outcome"], "resumable", "{cut:#}");
    assert!(backup_report(&cut)["inventory"].is_string(), "{cut:#}");
    assert_eq!(count(&cut, "copied"), 1, "{cut:#}");
    // The next invocation goes on with the same report after the cut.
    let resumed = invoke_binary(&settings, "900");
    assert_eq!(backup_report(&resumed)["outcome"], "complete", "{resumed:#}");
    assert!(backup_report(&resumed)["inventory"].is_string(), "{resumed:#}");
    assert_eq!(count(&resumed, "copied"), 499, "{resumed:#}");
    assert_eq!(count(&cut, "unchanged") + count(&resumed, "unchanged"), 1000);
    a_resumed_run_is_one_exact_point(&bed, &cfg, objects).await;
}

#[tokio::test]
async fn a_failing_object_is_reported_and_the_rest_copied() {
    let bed = Bed::new("fail").await;
    let cfg = bed.config(json!({"kms_key_id": bed.kms_key}), &[]);
    for i in 0..10 {
        bed.put(&format!("ok/{i}"), "fine").await;
    }
    // An archived object: S3 cannot copy it until it is restored.
    put(
        &bed.src,
        &bed.source_bucket,
        "cold/archive.tar",
        b"old".to_vec(),
        Some(StorageClass::Glacier),
    )
    .await;

    let response = bed
        .run(&cfg)
        .await
        .expect("per-object failures do not fail the invocation");
    assert_eq!(backup_report(&response)["outcome"], "complete");
    assert_eq!(count(&response, "copied"), 10);
    assert_eq!(count(&response, "failed"), 1);
    let failure = &backup_report(&response)["failures"][0];
    assert_eq!(failure["key"], "cold/archive.tar");
    assert!(failure["reason"].as_str().unwrap().contains("archived"), "{failure}");
    assert_eq!(contents(&bed.dr, &bed.dr_bucket).await.len(), 10);

    let notices = bed.responders.received().await;
    assert_eq!(notices.len(), 1, "{notices:#?}");
    assert_eq!(notices[0].subject, "drpilot: S3 backup could not copy 1 object");
    assert!(
        notices[0].message.contains("FAILED cold/archive.tar: archived"),
        "{}",
        notices[0].message
    );
    assert_eq!(notices[0].attribute("kind"), Some("s3-backup"));
}

#[tokio::test]
async fn an_unversioned_dr_bucket_is_refused_and_nothing_is_copied() {
    let bed = Bed::new("unver").await;
    let plain = format!("{}-plain", bed.name);
    Regions::new(SOURCE, DR).await.create_bucket(DR, &plain).await;
    let cfg = bed.config(json!({"dr_bucket": plain}), &[]);
    bed.put("k", "v").await;
    let err = bed.run(&cfg).await.unwrap_err().to_string();
    assert!(err.contains("versioning is not enabled"), "{err}");
    assert!(contents(&bed.dr, &plain).await.is_empty());
    let notices = bed.responders.received().await;
    assert_eq!(notices.len(), 1);
    assert!(notices[0].message.contains("versioning is not enabled"));
}

#[tokio::test]
async fn large_objects_are_copied_in_parts_server_side() {
    let bed = Bed::new("multi").await;
    let cfg = bed.config(
        json!({"kms_key_id": bed.kms_key}),
        &[("DRPILOT_S3_MULTIPART_THRESHOLD_MB", "5")],
    );
    let big: Vec<u8> = (0..12 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    put(&bed.src, &bed.source_bucket, "big.bin", big.clone(), None).await;
    let response = bed.run(&cfg).await.expect("run");
    assert_eq!(count(&response, "copied"), 1, "{response:#}");
    let copy = bed
        .dr
        .get_object()
        .bucket(&bed.dr_bucket)
        .key("big.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(copy.content_type(), Some("text/plain"));
    assert_eq!(copy.ssekms_key_id(), Some(bed.kms_key.as_str()));
    // Three UploadPartCopy parts (5 + 5 + 2 MiB) make a multipart ETag.
    assert!(copy.e_tag().unwrap().ends_with("-3\""), "{:?}", copy.e_tag());
    assert_eq!(copy.body.collect().await.unwrap().into_bytes().to_vec(), big);
}

/// An object whose copy takes longer than an invocation: 60 MiB in twelve 5 MiB parts, each
/// `UploadPartCopy` answered after 4 s (four at a time), with 12 s to each invocation's deadline
/// and an 8 s margin. The first invocation copies what parts it can and records the upload; the
/// next goes on with the same upload rather than start over, and completes it. The copy is
/// the source, byte for byte. A small object after it on the page is copied once.
#[tokio::test]
async fn an_object_larger_than_one_invocation_can_copy_completes_across_invocations() {
    let bed = Bed::new("huge").await;
    let sim = drpilot_tests::sim::Simulator::connect();
    let cfg = bed.config(
        json!({}),
        &[
            ("DRPILOT_S3_MULTIPART_THRESHOLD_MB", "5"),
            ("DRPILOT_DEADLINE_MARGIN_SECONDS", "8"),
        ],
    );
    let big: Vec<u8> = (0..60 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
    put(&bed.src, &bed.source_bucket, "video.mp4", big.clone(), None).await;
    // After it on the same page: copied in the first invocation, past where the page is cut.
    bed.put("zz-subtitles.srt", "1\n00:00:01 --> 00:00:02\nhello\n").await;
    let slow = sim
        .fault(
            json!({"service": "s3", "region": DR, "action": "UploadPartCopy", "mode": "latency",
                      "latency_ms": 4000, "params": {"Bucket": bed.dr_bucket}}),
        )
        .await;
    let mark = sim.wire_mark().await;
    let mut invocations = 0;
    let done = loop {
        invocations += 1;
        assert!(invocations <= 4, "the copy makes progress in every invocation");
        let report = bed.run_within(&cfg, chrono::Duration::seconds(12)).await.expect("run");
        if backup_report(&report)["outcome"] == "complete" {
            break report;
        }
        assert_eq!(backup_report(&report)["outcome"], "resumable", "{report:#}");
        assert_eq!(count(&report, "failed"), 0, "{report:#}");
    };
    sim.clear_fault(slow).await;
    assert!(invocations >= 2, "more than one invocation's work: {done:#}");
    assert_eq!(count(&done, "copied"), 2, "{done:#}");
    let (wire, _) = sim.wire(mark).await;
    let on_dr = |action: &str| {
        wire.calls(action)
            .filter(|e| e.params.get("Bucket") == Some(&bed.dr_bucket))
            .count()
    };
    assert_eq!(
        on_dr("CreateMultipartUpload"),
        1,
        "one upload, resumed, not started over"
    );
    // Completed once. (A completion whose answer the invocation's deadline cut off is asked
    // again by the next one, which S3 refuses, NoSuchUpload: seen on a loaded machine.)
    let completed = wire
        .calls("CompleteMultipartUpload")
        .filter(|e| e.params.get("Bucket") == Some(&bed.dr_bucket) && e.accepted())
        .count();
    assert_eq!(completed, 1, "one completion");
    assert_eq!(on_dr("AbortMultipartUpload"), 0);
    let subtitles = wire
        .calls("CopyObject")
        .filter(|e| e.params.get("Key").map(String::as_str) == Some("zz-subtitles.srt"))
        .count();
    assert_eq!(
        subtitles, 1,
        "copied past the cut once, recorded by the invocation that got there"
    );
    let copy = bed
        .dr
        .get_object()
        .bucket(&bed.dr_bucket)
        .key("video.mp4")
        .send()
        .await
        .unwrap();
    assert!(copy.e_tag().unwrap().ends_with("-12\""), "{:?}", copy.e_tag());
    assert_eq!(copy.body.collect().await.unwrap().into_bytes().to_vec(), big);
}

/// Runs the built s3-backup binary once, as Lambda would, with `timeout` seconds to its deadline.
fn invoke_binary(settings: &[(String, String)], timeout: &str) -> Value {
    invoke_binary_with(settings, timeout, "s3-backup/schedule.json")
}

/// The function binary on a sample event (`events/<event>`).
fn invoke_binary_with(settings: &[(String, String)], timeout: &str, event: &str) -> Value {
    let settings: Vec<(&str, String)> = settings.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let out = std::process::Command::new(function_binary("s3-backup"))
        .args(["--event", repo_path(&format!("events/{event}")).to_str().unwrap()])
        .args(["--timeout-secs", timeout])
        .env_clear()
        .envs(function_env(&settings))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap()
}

/// Writes `data/<i>` for each `i` (bodies name the version), 16 at a time.
async fn seed(bed: &Bed, rows: impl Iterator<Item = u32>, version: &str) {
    stream::iter(rows)
        .map(|i| {
            let (s3, bucket) = (&bed.src, &bed.source_bucket);
            let body = format!("{version} of row {i}").into_bytes();
            async move { put(s3, bucket, &format!("data/{i:05}"), body, None).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

#[tokio::test]
async fn a_run_cut_off_by_the_deadline_resumes_where_it_stopped() {
    let bed = Bed::new("resume").await;
    let objects = 1_500;
    seed(&bed, 0..objects, "v1").await;
    let settings = bed.settings(json!({}), &[("DRPILOT_DEADLINE_MARGIN_SECONDS", "60")]);

    // 61 s to the deadline and a 60 s margin: the first page (1,000 keys) is copied and saved,
    // then the invocation stops rather than start another.
    let cut = invoke_binary(&settings, "61");
    assert_eq!(backup_report(&cut)["outcome"], "resumable", "{cut:#}");
    assert_eq!(count(&cut, "copied"), 1000);

    // The continuation (every few minutes, as Terraform schedules it) resumes after the last
    // recorded key, rather than the next scheduled run hours later.
    let resumed = invoke_binary_with(&settings, "900", "s3-backup/continue.json");
    assert_eq!(backup_report(&resumed)["outcome"], "complete", "{resumed:#}");
    assert_eq!(count(&resumed, "copied"), 500);
    assert_eq!(
        backup_report(&resumed)["run_id"],
        backup_report(&cut)["run_id"],
        "the same run finished"
    );
    assert_eq!(backup_report(&resumed)["run_counts"]["objects"], objects);
    // Each object was copied exactly once.
    assert_eq!(versions(&bed.dr, &bed.dr_bucket).await.len(), objects as usize);
    // With no run in progress, the continuation starts none.
    let idle = invoke_binary_with(&settings, "900", "s3-backup/continue.json");
    assert_eq!(idle, json!({"continued": []}));
}

#[tokio::test]
async fn a_page_cut_short_by_the_deadline_resumes_mid_page_without_copying_twice() {
    let bed = Bed::new("midpage").await;
    let objects = 1_500;
    seed(&bed, 0..objects, "v1").await;
    let cfg = bed.config(json!({}), &[]);
    bed.run(&cfg).await.expect("first point in time");
    // A third of the objects change; the next run must copy exactly those.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    seed(&bed, (0..objects).step_by(3), "v2").await;
    let settings = bed.settings(json!({}), &[("DRPILOT_DEADLINE_MARGIN_SECONDS", "60")]);

    // 20 s left, less than half the margin: one copy (every invocation makes progress), then
    // the page is recorded up to that key and the invocation stops.
    let cut = invoke_binary(&settings, "20");
    assert_eq!(backup_report(&cut)["outcome"], "resumable", "{cut:#}");
    assert_eq!(count(&cut, "copied"), 1, "{cut:#}");
    let resumed = invoke_binary(&settings, "900");
    assert_eq!(backup_report(&resumed)["outcome"], "complete", "{resumed:#}");
    assert_eq!(count(&resumed, "copied"), 499, "{resumed:#}");
    assert_eq!(
        count(&cut, "unchanged") + count(&resumed, "unchanged"),
        1000,
        "the previous point's entries were found again after the cut"
    );
    assert_eq!(backup_report(&resumed)["run_counts"]["listed"], objects);
    a_resumed_run_is_one_exact_point(&bed, &cfg, objects).await;
}

/// After a run of `objects` seeded rows, a third changed, cut by the deadline and resumed: each
/// change copied once, and the run is one point in time that restores exactly the source.
async fn a_resumed_run_is_one_exact_point(bed: &Bed, cfg: &BackupConfig, objects: u32) {
    assert_eq!(
        versions(&bed.dr, &bed.dr_bucket).await.len(),
        2000,
        "1,500 first copies + 500 changed"
    );
    let (report, target) = bed.restore_into_new_bucket(cfg, None).await;
    assert_eq!(report.copied, objects as u64);
    assert_eq!(
        contents(&bed.src, &target).await,
        contents(&bed.src, &bed.source_bucket).await
    );
}

#[tokio::test]
async fn concurrent_invocations_run_one_backup_once() {
    let bed = Bed::new("race").await;
    for i in 0..40 {
        bed.put(&format!("k{i:02}"), "v").await;
    }
    let cfg = bed.config(json!({}), &[]);
    let runs = futures::future::join_all((0..4).map(|_| bed.run(&cfg))).await;
    let runs: Vec<Value> = runs.into_iter().map(|r| r.expect("no invocation fails")).collect();
    let busy = runs.iter().filter(|r| backup_report(r)["outcome"] == "busy").count();
    assert!(busy >= 1, "the lease turned concurrent invocations away: {runs:#?}");
    // Whichever invocations got to run, every object was copied exactly once.
    assert_eq!(runs.iter().map(|r| count(r, "copied")).sum::<u64>(), 40, "{runs:#?}");
    assert_eq!(versions(&bed.dr, &bed.dr_bucket).await.len(), 40);
}

#[tokio::test]
async fn retention_removes_only_what_no_retained_point_needs() {
    let bed = Bed::new("keep").await;
    let cfg = bed.config(json!({"retain_days": 7, "min_points": 1}), &[]);
    for k in ["stays", "edited", "dropped"] {
        bed.put(k, "v1").await;
    }
    let first = bed.run(&cfg).await.unwrap();
    // Someone else writes into the DR bucket, long before the retained point's run: not
    // drpilot's, so never retention's, however old and unreferenced.
    bed.dr
        .put_object()
        .bucket(&bed.dr_bucket)
        .key("handover-notes.txt")
        .body(ByteStream::from_static(b"the DR bucket's runbook"))
        .send()
        .await
        .unwrap();
    // moto reports version times to the second: keep the runs' versions in different seconds.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    bed.put("edited", "v2").await;
    bed.delete("dropped").await;
    let second = bed.run(&cfg).await.unwrap();
    assert_eq!(count(&second, "copied"), 1);
    assert_eq!(versions(&bed.dr, &bed.dr_bucket).await.len(), 5);

    // Age the first point in time past the 7-day window: drpilot's own record of it (moto
    // cannot age objects; the retention decision reads only this record and the versions).
    bed.age_first_point(40).await;

    // A restore is reading the old point: its pin keeps the point (and its versions).
    let pin = format!("drpilot/s3-backup/assets/pins/{}.restore-1.json", point_ids(&first));
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    bed.dr
        .put_object()
        .bucket(&bed.state_bucket)
        .key(&pin)
        .body(ByteStream::from(
            json!({"run_id": point_ids(&first), "holder": "restore-1", "until": until})
                .to_string()
                .into_bytes(),
        ))
        .send()
        .await
        .unwrap();
    let pinned = bed.run(&cfg).await.unwrap();
    assert_eq!(backup_report(&pinned)["retention"]["versions_deleted"], 0, "{pinned:#}");
    assert_eq!(backup_report(&pinned)["points_in_time"], 3, "{pinned:#}");
    bed.dr
        .delete_object()
        .bucket(&bed.state_bucket)
        .key(&pin)
        .send()
        .await
        .unwrap();

    let sim = drpilot_tests::sim::Simulator::connect();
    let mark = sim.wire_mark().await;
    let third = bed.run(&cfg).await.unwrap();
    let (wire, _) = sim.wire(mark).await;
    let on_dr_bucket = |action: &str| {
        wire.calls(action)
            .filter(|e| e.params.get("Bucket") == Some(&bed.dr_bucket))
            .count()
    };
    assert_eq!(
        (
            on_dr_bucket("DeleteObjects"),
            on_dr_bucket("DeleteObject"),
            on_dr_bucket("ListObjectVersions")
        ),
        (1, 0, 0),
        "both versions in one DeleteObjects, and the DR bucket never listed"
    );
    let retention = &backup_report(&third)["retention"];
    assert_eq!(retention["points_expired"], json!([point_ids(&first)]), "{third:#}");
    // "edited" v1 and "dropped" were needed only by the expired point; "stays" v1 is still
    // part of every retained point in time.
    assert_eq!(retention["versions_deleted"], 2, "{third:#}");
    let left: Vec<String> = versions(&bed.dr, &bed.dr_bucket)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut left = left;
    left.sort();
    assert_eq!(left, vec!["edited", "handover-notes.txt", "stays"]);
    assert_eq!(
        backup_report(&third)["points_in_time"],
        3,
        "the pinned run's point plus this run's"
    );

    // The retained points still restore exactly.
    let (report, target) = bed.restore_into_new_bucket(&cfg, Some(point_ids(&second))).await;
    assert_eq!((report.copied, report.failed), (2, 0));
    let restored = contents(&bed.src, &target).await;
    assert_eq!(restored["edited"], b"v2");
    assert_eq!(restored["stays"], b"v1");
    assert!(!restored.contains_key("dropped"));
    let pins = bed
        .dr
        .list_objects_v2()
        .bucket(&bed.state_bucket)
        .prefix("drpilot/s3-backup/assets/pins/")
        .send()
        .await
        .unwrap();
    assert!(pins.contents().is_empty(), "the restore removed its pin");
}

#[tokio::test]
async fn bad_events_change_nothing() {
    let bed = Bed::new("bad").await;
    bed.put("k", "v").await;
    let cfg = bed.config(json!({}), &[]);
    let sdk = drpilot_tests::sdk(DR).await;
    let ports = BackupPorts::accounts(&sdk, &cfg);
    let inv = Invocation {
        request_id: unique("request"),
        deadline: chrono::Utc::now() + chrono::Duration::minutes(15),
    };
    for event in [
        json!([1]),
        json!({"action": "wipe"}),
        json!({"action": "run", "backup": "nope"}),
    ] {
        let err = match BackupEvent::decode(event.clone()) {
            Ok(e) => handle(&ports, &cfg, e, &inv).await.unwrap_err(),
            Err(e) => e,
        };
        assert!(matches!(err, drpilot::Error::BadEvent(_)), "{event}: {err}");
    }
    assert!(contents(&bed.dr, &bed.dr_bucket).await.is_empty());
    assert!(bed
        .dr
        .list_objects_v2()
        .bucket(&bed.state_bucket)
        .send()
        .await
        .unwrap()
        .contents()
        .is_empty());
}

#[tokio::test]
async fn the_restore_cli_lists_points_and_dry_runs() {
    let bed = Bed::new("cli").await;
    bed.put("a", "1").await;
    let settings = bed.settings(json!({}), &[]);
    let cfg = bed.config(json!({}), &[]);
    bed.run(&cfg).await.unwrap();
    let target = format!("{}-t", bed.name);
    Regions::new(SOURCE, DR).await.create_bucket(SOURCE, &target).await;
    let env = function_env(
        &settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect::<Vec<_>>(),
    );
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(function_binary("drpilot"))
            .args(args)
            .env_clear()
            .envs(&env)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, points) = cli(&["points", "--backup", "assets"]);
    assert_eq!(code, Some(0), "{points}");
    assert!(
        points.contains("POINT (RUN ID)") && points.lines().count() >= 2,
        "{points}"
    );
    let (code, dry) = cli(&["restore", "--backup", "assets", "--to-bucket", &target]);
    assert_eq!(code, Some(0), "{dry}");
    assert!(
        dry.contains("would copy a (1 bytes") && dry.contains("dry run, nothing changed"),
        "{dry}"
    );
    let (code, err) = cli(&["restore", "--backup", "nope", "--to-bucket", &target]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown backup \"nope\""), "{err}");
    let (code, err) = cli(&[
        "restore",
        "--backup",
        "assets",
        "--to-bucket",
        &bed.dr_bucket,
        "--apply",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("own DR bucket"), "{err}");
}

#[tokio::test]
async fn the_lag_checker_measures_the_newest_point_in_time_without_listing_buckets() {
    use drpilot::config::LagConfig;
    use drpilot::lagcheck::{handle as check, LagPorts};
    let bed = Bed::new("lag").await;
    let cfg = bed.config(json!({}), &[]);
    let resource = format!("{}-pit", bed.name);
    let resources =
        json!([{"name": resource, "kind": "s3-backup", "backup": "assets", "rpo_seconds": 86400}]).to_string();
    let lag_cfg = LagConfig::from_vars(&HashMap::from([
        ("DRPILOT_SOURCE_REGION", SOURCE),
        ("DRPILOT_DR_REGION", DR),
        ("DRPILOT_RESOURCES", resources.as_str()),
        ("DRPILOT_STATE_BUCKET", bed.state_bucket.as_str()),
        ("DRPILOT_NOTIFY_TOPIC_ARN", bed.responders.topic_arn.as_str()),
        ("DRPILOT_S3_FORCE_PATH_STYLE", "true"),
    ]))
    .unwrap();
    let sdk = drpilot_tests::sdk(DR).await;
    let ports = LagPorts::accounts(&sdk, &lag_cfg);
    let measured = |report: &Value| report["resources"][0].clone();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let check_at = |at| check(&ports, &lag_cfg, drpilot::lagcheck::LagEvent::Operator, at, deadline);

    let before = check_at(chrono::Utc::now()).await.unwrap();
    assert_eq!(measured(&before)["status"], "broken", "{before:#}");
    assert!(measured(&before)["detail"]
        .as_str()
        .unwrap()
        .contains("no completed point in time"));

    bed.put("k", "v").await;
    bed.run(&cfg).await.unwrap();
    let after = check_at(chrono::Utc::now()).await.unwrap();
    assert_eq!(measured(&after)["status"], "healthy", "{after:#}");
    assert!(measured(&after)["recovery_point_seconds"].as_f64().unwrap() < 60.0);

    // Two days without a run: older than the one-day budget.
    let later = chrono::Utc::now() + chrono::Duration::days(2);
    let stale = check_at(later).await.unwrap();
    assert_eq!(measured(&stale)["status"], "breached", "{stale:#}");
}

/// S3's notifications of the source bucket, routed as the shipped Terraform routes them: to an
/// SNS topic in the source region, and from it (raw delivery) to the backup's queue in the DR
/// region. Returns the queue's client, URL and ARN.
async fn notify_changes(bed: &Bed) -> (aws_sdk_sqs::Client, String, String) {
    use aws_sdk_s3::types::{Event, NotificationConfiguration, TopicConfiguration};
    // S3 -> SNS (source region) -> SQS (DR region), raw, as infra/backups.tf routes them
    let q = drpilot_tests::account::topic_to_queue(SOURCE, DR, &format!("{}-changes", bed.name), true).await;
    bed.src
        .put_bucket_notification_configuration()
        .bucket(&bed.source_bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .topic_configurations(
                    TopicConfiguration::builder()
                        .topic_arn(&q.topic_arn)
                        .events(Event::from("s3:ObjectCreated:*"))
                        .events(Event::from("s3:ObjectRemoved:*"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    (q.sqs, q.queue_url, q.queue_arn)
}

/// What the queue holds now, as Lambda's SQS event source mapping hands it to the function.
async fn queued_event(sqs: &aws_sdk_sqs::Client, url: &str, arn: &str) -> (Value, Vec<(String, String)>) {
    let mut records = vec![];
    let mut handles = vec![];
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            let id = m.message_id().unwrap().to_string();
            handles.push((id.clone(), m.receipt_handle().unwrap().to_string()));
            records.push(json!({
                "messageId": id, "receiptHandle": m.receipt_handle(), "body": m.body(),
                "attributes": {}, "messageAttributes": {}, "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": DR
            }));
        }
    }
    (json!({ "Records": records }), handles)
}

#[tokio::test]
async fn s3_notifications_put_each_change_in_the_dr_bucket_within_one_invocation_as_a_restorable_point() {
    let bed = Bed::new("events").await;
    let cfg = bed.config(json!({"kms_key_id": bed.kms_key}), &[]);
    for k in ["a.txt", "b.txt", "c d.txt"] {
        bed.put(k, &format!("v1 of {k}")).await;
    }
    let first = bed.run(&cfg).await.expect("the first scheduled run");
    assert_eq!(count(&first, "copied"), 3);
    let (sqs, url, arn) = notify_changes(&bed).await;

    // Changes at the source: S3 notifies; one invocation on the queue's batch records them.
    bed.put("a.txt", "v2 of a.txt").await;
    bed.put("new file.txt", "new").await;
    bed.delete("b.txt").await;
    let (event, handles) = queued_event(&sqs, &url, &arn).await;
    // S3's test message, sent when the notification was configured, and the three changes
    assert_eq!(handles.len(), 4, "{event:#}");
    let ports = BackupPorts::accounts(&drpilot_tests::sdk(DR).await, &cfg);
    let inv = Invocation {
        request_id: unique("request"),
        deadline: chrono::Utc::now() + chrono::Duration::minutes(15),
    };
    let sim = drpilot_tests::sim::Simulator::connect();
    let mark = sim.wire_mark().await;
    let out = handle(&ports, &cfg, BackupEvent::decode(event.clone()).unwrap(), &inv)
        .await
        .unwrap();
    let (wire, _) = sim.wire(mark).await;
    let ours: Vec<&str> = wire
        .0
        .iter()
        .filter(|e| {
            [&bed.source_bucket, &bed.dr_bucket, &bed.state_bucket]
                .iter()
                .any(|b| e.params.get("Bucket") == Some(*b))
        })
        .filter_map(|e| e.action.as_deref())
        .collect();
    // the calls: the state, a look at each changed key, a copy of each new one, the change point's
    // manifest and the state again: no listing
    let n = |action: &str| ours.iter().filter(|a| **a == action).count();
    assert_eq!(
        (
            n("GetObject"),
            n("HeadObject"),
            n("CopyObject"),
            n("PutObject"),
            ours.len()
        ),
        (2, 3, 2, 2, 9),
        "{ours:?}"
    );
    assert_eq!(out["batchItemFailures"], json!([]), "{out:#}");
    let report = &out["backups"][0];
    assert_eq!(
        (report["copied"].as_u64(), report["deleted"].as_u64()),
        (Some(2), Some(1)),
        "{out:#}"
    );
    let change_point = report["point"].as_str().unwrap().to_string();
    // within that invocation: the DR bucket holds the changes
    assert_eq!(contents(&bed.dr, &bed.dr_bucket).await["a.txt"], b"v2 of a.txt");
    assert_eq!(contents(&bed.dr, &bed.dr_bucket).await["new file.txt"], b"new");

    // The change point restores exactly the source as it is now (b.txt gone).
    let (_, target) = bed.restore_into_new_bucket(&cfg, Some(change_point.clone())).await;
    assert_eq!(
        contents(&bed.src, &target).await,
        contents(&bed.src, &bed.source_bucket).await
    );
    // ... and the full point before it is untouched.
    let first_point = backup_report(&first)["run_id"].as_str().unwrap().to_string();
    let (_, before) = bed.restore_into_new_bucket(&cfg, Some(first_point)).await;
    assert_eq!(contents(&bed.src, &before).await["b.txt"], b"v1 of b.txt");

    // The same notifications again (SQS delivers at least once): nothing copied, no point.
    let again = handle(&ports, &cfg, BackupEvent::decode(event).unwrap(), &inv)
        .await
        .unwrap();
    assert_eq!(again["backups"][0]["copied"], 0, "{again:#}");
    assert_eq!(again["backups"][0]["unchanged"], 3, "{again:#}");
    assert!(again["backups"][0]["point"].is_null());

    // The scheduled run that follows starts from the change point: nothing to copy again.
    let scheduled = bed.run(&cfg).await.expect("the scheduled run");
    assert_eq!(count(&scheduled, "copied"), 0, "{scheduled:#}");
    assert_eq!(count(&scheduled, "unchanged"), 3);
    let (_, after) = bed.restore_into_new_bucket(&cfg, None).await;
    assert_eq!(
        contents(&bed.src, &after).await,
        contents(&bed.src, &bed.source_bucket).await
    );
    for (_, receipt) in handles {
        sqs.delete_message()
            .queue_url(&url)
            .receipt_handle(receipt)
            .send()
            .await
            .unwrap();
    }

    // Two batches at once (the queue's trigger runs up to two) with different keys: both
    // become change points, in either order, and the newest holds both changes.
    bed.put("x1.txt", "x1").await;
    bed.put("x2.txt", "x2").await;
    let (both, handles) = queued_event(&sqs, &url, &arn).await;
    assert_eq!(handles.len(), 2, "{both:#}");
    let batch = |i: usize| json!({ "Records": [both["Records"][i].clone()] });
    let invocation = || Invocation {
        request_id: unique("request"),
        deadline: chrono::Utc::now() + chrono::Duration::minutes(15),
    };
    let (first_inv, second_inv) = (invocation(), invocation());
    let (one, two) = futures::join!(
        handle(&ports, &cfg, BackupEvent::decode(batch(0)).unwrap(), &first_inv),
        handle(&ports, &cfg, BackupEvent::decode(batch(1)).unwrap(), &second_inv)
    );
    for out in [one.unwrap(), two.unwrap()] {
        assert_eq!(out["batchItemFailures"], json!([]), "{out:#}");
        assert!(out["backups"][0]["point"].is_string(), "{out:#}");
    }
    let (_, newest) = bed.restore_into_new_bucket(&cfg, None).await;
    assert_eq!(
        contents(&bed.src, &newest).await,
        contents(&bed.src, &bed.source_bucket).await
    );
}

#[tokio::test]
async fn notifications_wait_for_the_first_full_point_and_unreadable_messages_change_nothing() {
    let bed = Bed::new("events-wait").await;
    let cfg = bed.config(json!({"kms_key_id": bed.kms_key}), &[]);
    let (sqs, url, arn) = notify_changes(&bed).await;
    bed.put("a.txt", "v1").await;
    let (mut event, _) = queued_event(&sqs, &url, &arn).await;
    event["Records"].as_array_mut().unwrap().push(json!({
        "messageId": "garbled", "body": "{not json", "eventSource": "aws:sqs",
        "eventSourceARN": arn, "awsRegion": DR
    }));
    let ports = BackupPorts::accounts(&drpilot_tests::sdk(DR).await, &cfg);
    let inv = Invocation {
        request_id: unique("request"),
        deadline: chrono::Utc::now() + chrono::Duration::minutes(15),
    };
    let out = handle(&ports, &cfg, BackupEvent::decode(event).unwrap(), &inv)
        .await
        .unwrap();
    // both come back: the change waits for the first scheduled run, the garbled one is unreadable
    assert_eq!(out["batchItemFailures"].as_array().unwrap().len(), 2, "{out:#}");
    assert!(
        out["backups"][0]["waiting"]
            .as_str()
            .unwrap()
            .contains("first full point"),
        "{out:#}"
    );
    assert!(out["unreadable"][0]["error"]
        .as_str()
        .unwrap()
        .contains("not an S3 event notification"));
    assert!(contents(&bed.dr, &bed.dr_bucket).await.is_empty(), "nothing copied");
}

/// Every version and delete marker under `prefix` (a restore test's scratch must leave none).
async fn scratch_left(s3: &Client, bucket: &str, prefix: &str) -> Vec<String> {
    let page = s3
        .list_object_versions()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    page.versions()
        .iter()
        .filter_map(|v| v.key())
        .chain(page.delete_markers().iter().filter_map(|m| m.key()))
        .map(str::to_string)
        .collect()
}

/// One invocation of the restore verifier's real handler, restore-testing the bed's backup.
async fn verify_restores(bed: &Bed, backup: &Value, sample: &str) -> Value {
    let run = json!({"action": "run", "backups": ["assets"]});
    verify_restores_within(bed, backup, sample, run, chrono::Duration::minutes(15)).await
}

/// One invocation of the verifier with `event` and `left` to its deadline (it stops 30 s
/// before).
async fn verify_restores_within(
    bed: &Bed,
    backup: &Value,
    sample: &str,
    event: Value,
    left: chrono::Duration,
) -> Value {
    use drpilot::verifier::{Verifier, VerifierEvent, VerifierPorts};
    let mut settings = bed.settings(backup.clone(), &[]);
    settings.extend([
        ("DRPILOT_VERIFY_BACKUPS".to_string(), r#"["assets"]"#.to_string()),
        ("DRPILOT_VERIFY_S3_SAMPLE".to_string(), sample.to_string()),
        ("DRPILOT_DEPLOYMENT".to_string(), bed.name.replace('_', "-")),
    ]);
    let vars: HashMap<&str, &str> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let cfg = drpilot::config::VerifierConfig::from_vars(&vars).unwrap();
    let sdk = drpilot_tests::sdk(DR).await;
    let ports = VerifierPorts::aws(&sdk, &cfg);
    Verifier {
        ports: &ports,
        cfg: &cfg,
        invocation: Invocation {
            request_id: unique("request"),
            deadline: chrono::Utc::now() + left,
        },
    }
    .handle(VerifierEvent::decode(event).unwrap())
    .await
    .expect("the verifier reports")
}

#[tokio::test]
async fn a_restore_test_out_of_time_is_tried_again_once_then_fails_saying_how_far_it_got() {
    let bed = Bed::new("rslow").await;
    let backup = json!({});
    let cfg = bed.config(backup.clone(), &[]);
    for i in 0..60 {
        bed.put(&format!("k/{i:03}"), &format!("object {i}")).await;
    }
    bed.run(&cfg).await.expect("backup");
    // The run starts with no time left (the verifier stops 30 s before its deadline): it is
    // recorded, and its restore test not begun.
    let started = verify_restores_within(
        &bed,
        &backup,
        "60",
        json!({"action": "run"}),
        chrono::Duration::seconds(30),
    )
    .await;
    assert_eq!(started["in_progress"], json!([{"backup": "assets"}]), "{started:#}");
    // Each continuation has 5 s, and each restore into the scratch prefix takes S3 0.3 s:
    // far too little for 60 (18 s, one after another). The first runs out and is tried again;
    // the second fails, saying so. (1.5 s was once too little on a loaded CI machine even to
    // take the lease and reach the test, which is an invocation that tried nothing.)
    let sim = drpilot_tests::sim::Simulator::connect();
    let slow = sim
        .fault(
            json!({"service": "s3", "region": DR, "action": "CopyObject", "mode": "latency",
                      "latency_ms": 300, "params": {"Bucket": bed.state_bucket}}),
        )
        .await;
    let tight = chrono::Duration::milliseconds(35_000);
    let first = verify_restores_within(&bed, &backup, "60", json!({"action": "continue"}), tight).await;
    assert!(
        first["notes"].to_string().contains("ran out of this invocation's time"),
        "{first:#}"
    );
    assert_eq!(first["reported"], json!([]), "not reported yet: {first:#}");
    let second = verify_restores_within(&bed, &backup, "60", json!({"action": "continue"}), tight).await;
    sim.clear_fault(slow).await;
    let v = &second["results"][0]["verification"];
    assert_eq!(v["passed"], false, "{second:#}");
    assert!(
        v["failure"]
            .as_str()
            .unwrap()
            .starts_with("not done within the invocation's time ("),
        "{second:#}"
    );
}

#[tokio::test]
async fn a_restore_test_restores_a_sample_of_the_newest_point_checks_it_and_leaves_nothing_behind() {
    let bed = Bed::new("rtest").await;
    enable_versioning(&bed.dr, &bed.state_bucket).await; // as Terraform makes it
    let backup = json!({"kms_key_id": bed.kms_key});
    let cfg = bed.config(backup.clone(), &[]);
    for i in 0..40 {
        bed.put(
            &format!("docs/{i:03}.txt"),
            &format!("document {i}, {}", "x".repeat(i * 37)),
        )
        .await;
    }
    let first = bed.run(&cfg).await.expect("backup");
    assert_eq!(count(&first, "copied"), 40, "{first:#}");
    let point = point_ids(&first);
    // An earlier run that died between a restore and its delete left this.
    let scratch = &drpilot::backup::verify::scratch_prefix(&cfg.state);
    put(
        &bed.dr,
        &bed.state_bucket,
        &format!("{scratch}20260101t000000z/assets/00000"),
        b"left behind".to_vec(),
        None,
    )
    .await;

    let report = verify_restores(&bed, &backup, "10").await;
    let result = &report["results"][0];
    assert_eq!(result["backup"], "assets", "{report:#}");
    let v = &result["verification"];
    assert_eq!(v["passed"], true, "{report:#}");
    assert!(
        v["copy"].as_str().unwrap().ends_with(&format!("point {point}")),
        "{v:#}"
    );
    let checks: BTreeMap<&str, &str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(checks["manifest"], "read in full: 40 objects", "{checks:#?}");
    assert!(
        checks["restored"].starts_with("10 of 10 sampled objects restored"),
        "{checks:#?}"
    );
    assert_eq!(checks["sizes"], "10 of 10 as the manifest records");
    assert!(
        checks["content"].starts_with("10 same by the SHA-256 stored with the DR copy"),
        "the backup's copies carry S3's checksum: {checks:#?}"
    );
    assert!(v["restore_seconds"].as_f64().is_some() && v["copy_age_seconds"].as_f64().is_some());
    assert!(
        report["swept"][0]
            .as_str()
            .is_some_and(|s| s.starts_with("1 scratch object(s)")),
        "{report:#}"
    );
    let left = scratch_left(&bed.dr, &bed.state_bucket, scratch).await;
    assert!(
        left.iter().all(|k| k.contains("/20260101t000000z/")),
        "the restored sample is deleted version and all; of the leftover, only its noncurrent version and S3's delete marker stay (the lifecycle rule expires them): {left:?}"
    );
    let notice = &bed.responders.received().await[0];
    assert!(notice.subject.contains("PASSED"), "{}", notice.subject);
    assert!(
        notice.message.contains("S3 backup assets: PASSED"),
        "{}",
        notice.message
    );
    assert!(
        notice.message.contains("the sample restored and read back in"),
        "{}",
        notice.message
    );

    // A DR version the manifest names is deleted for good (a mistaken lifecycle rule, a
    // compromised credential): the next restore test finds it, names it, and fails.
    let dr_versions = versions(&bed.dr, &bed.dr_bucket).await;
    let (key, version) = dr_versions.iter().find(|(k, _)| k == "docs/007.txt").unwrap().clone();
    bed.dr
        .delete_object()
        .bucket(&bed.dr_bucket)
        .key(&key)
        .version_id(&version)
        .send()
        .await
        .unwrap();
    let report = verify_restores(&bed, &backup, "40").await;
    let v = &report["results"][0]["verification"];
    assert_eq!(v["passed"], false, "{report:#}");
    let why = v["failure"].as_str().unwrap();
    assert!(why.starts_with("1 of 40 sampled objects failed"), "{why}");
    assert!(
        why.contains(&format!(
            "docs/007.txt (DR version {version}): gone from s3://{}",
            bed.dr_bucket
        )),
        "{why}"
    );
    assert_eq!(
        versions(&bed.dr, &bed.dr_bucket).await.len(),
        dr_versions.len() - 1,
        "the restore test changed nothing in the DR bucket"
    );
    let scratch_now = scratch_left(
        &bed.dr,
        &bed.state_bucket,
        &format!("{scratch}{}", report["run"].as_str().unwrap()),
    )
    .await;
    assert!(scratch_now.is_empty(), "{scratch_now:?}");
    let notice = &bed.responders.received().await[0];
    assert!(
        notice.subject.contains("FAILED: S3 backup assets"),
        "{}",
        notice.subject
    );

    // What a responder sees: `drpilot status` with Terraform's dashboard_settings.
    let settings = bed.settings(backup.clone(), &[]);
    let env = |k: &str| settings.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let resources =
        json!([{"name": "s3-backup-assets", "kind": "s3-backup", "backup": "assets", "rpo_seconds": 90000}]);
    let board = drpilot_tests::status_with_settings(&format!(
            "DRPILOT_SOURCE_REGION={SOURCE}\nDRPILOT_DR_REGION={DR}\nDRPILOT_RESOURCES='{resources}'\nDRPILOT_S3_BACKUPS='{}'\nDRPILOT_STATE_BUCKET={}\nDRPILOT_S3_FORCE_PATH_STYLE=true\nDRPILOT_VERIFY_BACKUPS='[\"assets\"]'\n",
            env("DRPILOT_S3_BACKUPS"),
            bed.state_bucket
    ));
    let row = &board["verifications"][0];
    assert_eq!(
        (row["db"].as_str(), row["kind"].as_str()),
        (Some("assets"), Some("s3 backup")),
        "{board:#}"
    );
    assert_eq!(row["last"]["passed"], false, "{board:#}");
    assert_ne!(board["verdict"], "protected", "{board:#}");
    assert!(
        board["reasons"].as_array().unwrap().iter().any(|r| r
            .as_str()
            .unwrap()
            .starts_with("S3 backup assets: backups not proven restorable: its last restore test failed")),
        "{board:#}"
    );
}

/// The bucket's Object Lock: on, each new version locked for `days` in governance mode.
async fn lock_for_days(s3: &Client, bucket: &str, days: i32) {
    use aws_sdk_s3::types::{
        DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule,
    };
    let retention = DefaultRetention::builder()
        .mode(ObjectLockRetentionMode::Governance)
        .days(days)
        .build();
    s3.put_object_lock_configuration()
        .bucket(bucket)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(ObjectLockRule::builder().default_retention(retention).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_dr_bucket_under_object_lock_locks_every_copy_and_retention_keeps_points_until_the_lock_lapses() {
    let mut bed = Bed::new("locked").await;
    // The DR bucket Terraform makes with s3_backups[].object_lock: Object Lock on, every new
    // version locked for 30 days in governance mode.
    bed.dr_bucket = format!("{}-vault", bed.name);
    Regions::new(SOURCE, DR).await.create_bucket(DR, &bed.dr_bucket).await;
    enable_versioning(&bed.dr, &bed.dr_bucket).await;
    lock_for_days(&bed.dr, &bed.dr_bucket, 30).await;
    let cfg = bed.config(
        json!({"kms_key_id": bed.kms_key, "retain_days": 7, "min_points": 1}),
        &[],
    );
    for k in ["stays", "edited"] {
        bed.put(k, "v1").await;
    }
    let first = bed.run(&cfg).await.expect("copies land in a locked bucket");
    assert_eq!(count(&first, "copied"), 2, "{first:#}");
    let head = bed
        .dr
        .head_object()
        .bucket(&bed.dr_bucket)
        .key("stays")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.object_lock_mode(),
        Some(&aws_sdk_s3::types::ObjectLockMode::Governance)
    );
    let until = head.object_lock_retain_until_date().unwrap().secs();
    let in_days = (until - chrono::Utc::now().timestamp()) as f64 / 86_400.0;
    assert!(
        (29.0..=30.5).contains(&in_days),
        "locked for the bucket's 30 days: {in_days}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    bed.put("edited", "v2").await;
    bed.run(&cfg).await.unwrap();

    // The first point is 10 days old: past retain_days (7), inside the lock (30). It stays,
    // and no delete is even asked for.
    bed.age_first_point(10).await;
    let sim = drpilot_tests::sim::Simulator::connect();
    let mark = sim.wire_mark().await;
    let third = bed.run(&cfg).await.unwrap();
    let (wire, _) = sim.wire(mark).await;
    let retention = &backup_report(&third)["retention"];
    assert_eq!(retention["points_expired"], json!([]), "{third:#}");
    assert_eq!(
        retention["object_lock"], "GOVERNANCE, 30 days: points in time are kept at least 31 days",
        "{third:#}"
    );
    assert!(retention.get("errors").is_none(), "{third:#}");
    assert_eq!(backup_report(&third)["points_in_time"], 3);
    assert_eq!(
        wire.calls("DeleteObjects")
            .filter(|e| e.params.get("Bucket") == Some(&bed.dr_bucket))
            .count(),
        0,
        "nothing locked is asked to be deleted"
    );
    assert_eq!(versions(&bed.dr, &bed.dr_bucket).await.len(), 3);

    // Someone shortens the bucket's lock to a day: copies made under the 30-day lock stay
    // locked, so the point still stays (S3 unlocks nothing already locked).
    lock_for_days(&bed.dr, &bed.dr_bucket, 1).await;
    bed.put("new", "v1").await;
    let fourth = bed.run(&cfg).await.unwrap();
    let retention = &backup_report(&fourth)["retention"];
    assert_eq!(retention["points_expired"], json!([]), "{fourth:#}");
    assert!(
        retention["object_lock"]
            .as_str()
            .unwrap()
            .contains("30 days (shortened since"),
        "{fourth:#}"
    );
    assert_eq!(versions(&bed.dr, &bed.dr_bucket).await.len(), 4);

    // The locked copies restore (the verifier's restore test reads them as a restore would).
    let report = verify_restores(&bed, &json!({"kms_key_id": bed.kms_key, "retain_days": 7}), "5").await;
    assert_eq!(report["results"][0]["verification"]["passed"], true, "{report:#}");
}
