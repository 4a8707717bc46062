//! The backup run against in-memory ports whose copies take longer than an invocation: the
//! emulator copies in milliseconds, so a copy that outlives the deadline is arranged here.

use drpilot::backup::{run, BackupPorts, Invocation, Outcome};
use drpilot::config::BackupConfig;
use drpilot::notice::Notice;
use drpilot::ports::{
    Documents, NotDeleted, Notifier, ObjectCopy, ObjectInfo, ObjectStore, Page, Saved, StateStore, Versioned,
};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// A bucket: copies of keys named in `slow` take a minute; each copy is a new version.
/// `DeleteObjects` takes `delete_seconds`.
#[derive(Default)]
struct Bucket {
    objects: Mutex<Vec<ObjectInfo>>,
    slow: Vec<String>,
    copies: Mutex<Vec<String>>,
    delete_seconds: f64,
    delete_calls: Mutex<Vec<usize>>,
    deleted: Mutex<Vec<(String, String)>>,
    /// Keys whose versions S3 refuses to delete (an Object Lock retention, say).
    locked: Vec<String>,
}

impl ObjectStore for Bucket {
    async fn list_page(&self, _: &str, _: &str, after: Option<&str>) -> drpilot::Result<Page<ObjectInfo>> {
        let rest: Vec<ObjectInfo> = self
            .objects
            .lock()
            .unwrap()
            .iter()
            .filter(|o| after.is_none_or(|a| o.key.as_str() > a))
            .cloned()
            .collect();
        Ok(Page {
            more: rest.len() > 1000,
            items: rest.into_iter().take(1000).collect(),
        })
    }
    async fn versioning_enabled(&self, _: &str) -> drpilot::Result<bool> {
        Ok(true)
    }
    // (a bucket without Object Lock's default retention)
    async fn default_lock(&self, _: &str) -> drpilot::Result<Option<(String, u32)>> {
        Ok(None)
    }
    // (no S3 Inventory reports in this store: the backups here list)
    async fn folders(&self, _: &str, _: &str) -> drpilot::Result<Vec<String>> {
        Ok(vec![])
    }
    async fn read(&self, _: &str, _: &str) -> drpilot::Result<Option<Vec<u8>>> {
        Ok(None)
    }
    async fn copy(&self, copy: &ObjectCopy) -> drpilot::Result<String> {
        if self.slow.contains(&copy.from_key) {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        let mut copies = self.copies.lock().unwrap();
        copies.push(copy.from_key.clone());
        Ok(format!("v{}-{}", copies.len(), copy.from_key))
    }
    async fn delete_versions(&self, _: &str, versions: &[(String, String)]) -> drpilot::Result<Vec<NotDeleted>> {
        tokio::time::sleep(Duration::from_secs_f64(self.delete_seconds)).await;
        self.delete_calls.lock().unwrap().push(versions.len());
        let (refused, deleted): (Vec<_>, Vec<_>) = versions.iter().cloned().partition(|(k, _)| self.locked.contains(k));
        self.deleted.lock().unwrap().extend(deleted);
        Ok(refused
            .into_iter()
            .map(|(key, version_id)| NotDeleted {
                key,
                version_id,
                reason: "AccessDenied: the object is locked".into(),
            })
            .collect())
    }
    async fn delete_object(&self, _: &str, _: &str) -> drpilot::Result<()> {
        Ok(())
    }
}

/// State with compare-and-swap, and manifests, in memory.
#[derive(Default)]
struct Memory(Mutex<HashMap<String, (Vec<u8>, u64)>>);

impl StateStore for Memory {
    async fn load(&self, key: &str) -> drpilot::Result<Option<Versioned>> {
        Ok(self.0.lock().unwrap().get(key).map(|(body, n)| Versioned {
            body: body.clone(),
            etag: n.to_string(),
        }))
    }
    async fn save(&self, key: &str, body: &[u8], expected: Option<&str>) -> drpilot::Result<Saved> {
        let mut map = self.0.lock().unwrap();
        let current = map.get(key).map(|(_, n)| n.to_string());
        if current.as_deref() != expected {
            return Ok(Saved::Conflict);
        }
        let n = map.get(key).map_or(1, |(_, n)| n + 1);
        map.insert(key.to_string(), (body.to_vec(), n));
        Ok(Saved::Written { etag: n.to_string() })
    }
}

impl Documents for Memory {
    async fn get(&self, key: &str) -> drpilot::Result<Option<Vec<u8>>> {
        Ok(self.0.lock().unwrap().get(key).map(|(b, _)| b.clone()))
    }
    async fn put(&self, key: &str, body: Vec<u8>) -> drpilot::Result<()> {
        self.0.lock().unwrap().insert(key.to_string(), (body, 0));
        Ok(())
    }
    async fn delete(&self, key: &str) -> drpilot::Result<()> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }
    async fn keys(&self, prefix: &str) -> drpilot::Result<Vec<String>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}

#[derive(Default)]
struct Notices(Mutex<Vec<Notice>>);

impl Notifier for Notices {
    async fn notify(&self, notice: &Notice) -> drpilot::Result<()> {
        self.0.lock().unwrap().push(notice.clone());
        Ok(())
    }
}

fn cfg() -> BackupConfig {
    BackupConfig::from_vars(&HashMap::from([
        ("DRPILOT_SOURCE_REGION", "us-east-1"),
        ("DRPILOT_DR_REGION", "us-west-2"),
        (
            "DRPILOT_S3_BACKUPS",
            r#"[{"name": "media", "source_bucket": "media-prod", "dr_bucket": "media-dr"}]"#,
        ),
        ("DRPILOT_STATE_BUCKET", "drpilot-state"),
        ("DRPILOT_NOTIFY_TOPIC_ARN", "arn:aws:sns:us-west-2:123456789012:drpilot"),
        ("DRPILOT_DEADLINE_MARGIN_SECONDS", "8"),
    ]))
    .unwrap()
}

fn object(key: &str) -> ObjectInfo {
    ObjectInfo {
        key: key.into(),
        size: 5 << 30,
        etag: format!("\"{key}\""),
        last_modified: None,
    }
}

#[tokio::test]
async fn a_copy_that_outlives_the_invocation_is_recorded_as_failed_and_the_run_moves_on() {
    let cfg = cfg();
    let source = Bucket {
        objects: Mutex::new(["huge-1", "huge-2", "small"].map(object).to_vec()),
        ..Bucket::default()
    };
    let dr = Bucket {
        slow: vec!["huge-1".into()],
        ..Bucket::default()
    };
    let ports = BackupPorts {
        source,
        dr,
        state: Memory::default(),
        notifier: Notices::default(),
    };
    // 3 s to go with an 8 s margin: no copy starts but the first (every invocation makes
    // progress), and it is waited for only until 2 s before the deadline.
    let inv = Invocation {
        request_id: "r-1".into(),
        deadline: chrono::Utc::now() + chrono::Duration::seconds(3),
    };
    let started = std::time::Instant::now();
    let report = run(&ports, &cfg, &cfg.backups.iter().collect::<Vec<_>>(), &inv).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stopped before the deadline"
    );
    let b = &report.backups[0];
    assert_eq!(b.outcome, Outcome::Resumable, "{b:?}");
    assert_eq!((b.counts.copied, b.counts.failed, b.counts.listed), (0, 1, 1), "{b:?}");
    assert!(b.failures[0]
        .reason
        .contains("did not finish before the invocation's deadline"));

    // The next invocation goes on after it instead of redoing the same copy forever.
    let inv = Invocation {
        request_id: "r-2".into(),
        deadline: chrono::Utc::now() + chrono::Duration::minutes(15),
    };
    let report = run(&ports, &cfg, &cfg.backups.iter().collect::<Vec<_>>(), &inv).await;
    let b = &report.backups[0];
    assert_eq!(b.outcome, Outcome::Complete, "{b:?}");
    let mut copied = ports.dr.copies.lock().unwrap().clone();
    copied.sort();
    assert_eq!(copied, ["huge-2", "small"], "each copied once");
    assert_eq!(b.run_counts.failed, 1);
}

fn invocation(id: &str, seconds: i64) -> Invocation {
    Invocation {
        request_id: id.into(),
        deadline: chrono::Utc::now() + chrono::Duration::seconds(seconds),
    }
}

/// Retention's deletions outlive an invocation: 2,500 versions only an expired point in time
/// names, deleted in calls of up to 1,000 that take 3 s each, with 12 s to go and an 8 s margin.
/// The first invocation stops between calls and records how far it got; the next deletes only
/// the rest. Each version is deleted once, in three calls in all.
#[tokio::test]
async fn retention_cut_off_by_the_deadline_resumes_after_what_it_deleted() {
    let mut cfg = cfg();
    cfg.backups[0].retention = drpilot::model::BackupRetention { days: 7, min_points: 1 };
    let keys: Vec<String> = (0..2500).map(|i| format!("photos/{i:05}.jpg")).collect();
    let small = |key: &String, etag: &str| ObjectInfo {
        key: key.clone(),
        size: 1024,
        etag: format!("\"{etag}\""),
        last_modified: None,
    };
    let ports = BackupPorts {
        source: Bucket {
            objects: Mutex::new(keys.iter().map(|k| small(k, "1")).collect()),
            ..Bucket::default()
        },
        dr: Bucket {
            delete_seconds: 3.0,
            ..Bucket::default()
        },
        state: Memory::default(),
        notifier: Notices::default(),
    };
    let backups = cfg.backups.iter().collect::<Vec<_>>();
    let first = run(&ports, &cfg, &backups, &invocation("r-1", 900)).await;
    assert_eq!(first.backups[0].outcome, Outcome::Complete);
    // Every object changes: the second point in time names 2,500 new versions.
    *ports.source.objects.lock().unwrap() = keys.iter().map(|k| small(k, "2")).collect();
    let second = run(&ports, &cfg, &backups, &invocation("r-2", 900)).await;
    assert_eq!(second.backups[0].counts.copied, 2500);
    // The first point in time ages past the seven days (drpilot's own record of it).
    {
        let mut objects = ports.state.0.lock().unwrap();
        let (_, (body, _)) = objects.iter_mut().find(|(k, _)| k.ends_with("state.json")).unwrap();
        let mut state: serde_json::Value = serde_json::from_slice(body).unwrap();
        let old = (chrono::Utc::now() - chrono::Duration::days(40)).to_rfc3339();
        state["points"][0]["started"] = old.clone().into();
        state["points"][0]["finished"] = old.into();
        *body = serde_json::to_vec(&state).unwrap();
    }
    // The first run's versions: its 2,500 copies, numbered in the order they were made.
    let mut doomed: Vec<(String, String)> = ports.dr.copies.lock().unwrap()[..2500]
        .iter()
        .enumerate()
        .map(|(n, k)| (k.clone(), format!("v{}-{k}", n + 1)))
        .collect();
    doomed.sort();

    let third = run(&ports, &cfg, &backups, &invocation("r-3", 12)).await;
    let cut = &third.backups[0].retention;
    assert!(cut.unfinished, "{cut:?}");
    assert!(cut.versions_deleted > 0 && cut.versions_deleted < 2500, "{cut:?}");
    assert_eq!(
        cut.manifests_deleted, 0,
        "the expired manifests stay until their versions are gone"
    );

    let fourth = run(&ports, &cfg, &backups, &invocation("r-4", 900)).await;
    let rest = &fourth.backups[0].retention;
    assert!(!rest.unfinished, "{rest:?}");
    assert_eq!(cut.versions_deleted + rest.versions_deleted, 2500);
    assert_eq!(rest.manifests_deleted, 3, "the expired point's three manifest parts");
    let mut deleted = ports.dr.deleted.lock().unwrap().clone();
    deleted.sort();
    assert_eq!(
        deleted, doomed,
        "each of the expired point's versions once, nothing else"
    );
    assert_eq!(*ports.dr.delete_calls.lock().unwrap(), [1000, 1000, 500]);
}

/// Ages the first `n` points in time past any retention window (drpilot's own record of them).
fn age_points(state: &Memory, n: usize) -> Vec<String> {
    let mut objects = state.0.lock().unwrap();
    let (_, (body, _)) = objects.iter_mut().find(|(k, _)| k.ends_with("state.json")).unwrap();
    let mut doc: serde_json::Value = serde_json::from_slice(body).unwrap();
    let old = (chrono::Utc::now() - chrono::Duration::days(40)).to_rfc3339();
    for i in 0..n {
        doc["points"][i]["started"] = old.clone().into();
        doc["points"][i]["finished"] = old.clone().into();
    }
    *body = serde_json::to_vec(&doc).unwrap();
    doc["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["run_id"].as_str().unwrap().to_string())
        .collect()
}

/// Two points in time past retention, the older pinned by a restore: the newer stays too (a
/// version it names may be what the newest point names as well), and nothing is deleted. Once
/// the pin is gone both expire, and only the versions no retained point names go, except one
/// S3 refuses to delete, which is reported and left while the rest of retention finishes.
#[tokio::test]
async fn a_pinned_point_keeps_every_newer_one_and_a_refused_deletion_does_not_stall_retention() {
    let mut cfg = cfg();
    cfg.backups[0].retention = drpilot::model::BackupRetention { days: 7, min_points: 1 };
    let object = |key: &str, etag: &str| ObjectInfo {
        key: key.into(),
        size: 1024,
        etag: format!("\"{etag}\""),
        last_modified: None,
    };
    let ports = BackupPorts {
        source: Bucket {
            objects: Mutex::new(vec![object("a", "1"), object("k", "1"), object("locked", "1")]),
            ..Bucket::default()
        },
        dr: Bucket {
            locked: vec!["locked".into()],
            ..Bucket::default()
        },
        state: Memory::default(),
        notifier: Notices::default(),
    };
    let backups = cfg.backups.iter().collect::<Vec<_>>();
    let far = || invocation("r", 900);
    // P: a, k and locked as version 1. E: k and locked change. N: nothing changes.
    run(&ports, &cfg, &backups, &far()).await;
    *ports.source.objects.lock().unwrap() = vec![object("a", "1"), object("k", "2"), object("locked", "2")];
    run(&ports, &cfg, &backups, &far()).await;
    run(&ports, &cfg, &backups, &far()).await;
    let versions: Vec<String> = ports
        .dr
        .copies
        .lock()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(n, k)| format!("v{}-{k}", n + 1))
        .collect();
    assert_eq!(versions, ["v1-a", "v2-k", "v3-locked", "v4-k", "v5-locked"]);

    let ids = age_points(&ports.state, 2);
    let pin = format!("drpilot/s3-backup/media/pins/{}.restore-1.json", ids[0]);
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    ports
        .state
        .put(
            &pin,
            serde_json::json!({"run_id": ids[0], "holder": "restore-1", "until": until})
                .to_string()
                .into_bytes(),
        )
        .await
        .unwrap();
    let pinned = run(&ports, &cfg, &backups, &far()).await;
    let b = &pinned.backups[0];
    assert!(b.retention.points_expired.is_empty(), "{:?}", b.retention);
    assert_eq!(b.points_in_time, 4, "P pinned, E newer than it, N, and this run's");
    assert!(
        ports.dr.deleted.lock().unwrap().is_empty(),
        "v4-k is E's and N's: nothing may go"
    );

    ports.state.delete(&pin).await.unwrap();
    let third = run(&ports, &cfg, &backups, &far()).await;
    let r = &third.backups[0].retention;
    let mut expired = r.points_expired.clone();
    expired.sort();
    assert_eq!(expired, ids[..2].to_vec(), "{r:?}");
    assert!(!r.unfinished, "{r:?}");
    assert_eq!(
        *ports.dr.deleted.lock().unwrap(),
        [("k".to_string(), "v2-k".to_string())]
    );
    assert_eq!(r.versions_deleted, 1);
    assert_eq!(r.errors.len(), 1, "{r:?}");
    assert!(
        r.errors[0].contains("locked version v3-locked (left in place): AccessDenied"),
        "{r:?}"
    );
    assert!(r.manifests_deleted > 0, "the expired points are gone: {r:?}");
}
