//! The backup run against in-memory ports whose copies take longer than an invocation: the
//! emulator copies in milliseconds, so a copy that outlives the deadline is arranged here.

use drpilot::backup::{run, BackupPorts, Invocation, Outcome};
use drpilot::config::BackupConfig;
use drpilot::notice::Notice;
use drpilot::plan::backup::DrVersion;
use drpilot::ports::{
    Documents, Notifier, ObjectCopy, ObjectInfo, ObjectStore, Page, Saved, StateStore, VersionMarker, VersionPage,
    Versioned,
};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// A source of `n` objects; copies of keys named in `slow` take a minute.
struct Bucket {
    objects: Vec<ObjectInfo>,
    slow: Vec<String>,
    copies: Mutex<Vec<String>>,
}

impl ObjectStore for Bucket {
    async fn list_page(&self, _: &str, _: &str, after: Option<&str>) -> drpilot::Result<Page<ObjectInfo>> {
        let rest: Vec<ObjectInfo> = self
            .objects
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
    async fn copy(&self, copy: &ObjectCopy) -> drpilot::Result<String> {
        if self.slow.contains(&copy.from_key) {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        self.copies.lock().unwrap().push(copy.from_key.clone());
        Ok(format!("v-{}", copy.from_key))
    }
    async fn list_versions_page(&self, _: &str, _: &str, _: Option<&VersionMarker>) -> drpilot::Result<VersionPage> {
        Ok(VersionPage {
            versions: Vec::<DrVersion>::new(),
            next: None,
        })
    }
    async fn delete_version(&self, _: &str, _: &str, _: &str) -> drpilot::Result<()> {
        Ok(())
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
        objects: ["huge-1", "huge-2", "small"].map(object).to_vec(),
        slow: vec!["huge-1".into()],
        copies: Mutex::default(),
    };
    let dr = Bucket {
        objects: vec![],
        slow: vec!["huge-1".into()],
        copies: Mutex::default(),
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
