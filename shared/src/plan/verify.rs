//! Restore verification's decisions: the names a run gives what it restores, the class it
//! restores into, what a status RDS reports means for a restore, what a restored database is
//! checked against, and which leftovers the sweeper may delete.

use crate::model::{tags, CopyFacts, DbKind, ProtectedDb, RestoredDb};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

const RUN_FORMAT: &str = "%Y%m%dt%H%M%Sz";

/// A run's identifier: when it began, to the second (`20261127t122800z`). It is the value of
/// `drpilot:restore-test` on what the run restores and part of their identifiers, so a
/// leftover's age is read from its tag even while RDS reports no creation time.
pub fn run_id(at: DateTime<Utc>) -> String {
    at.format(RUN_FORMAT).to_string()
}

/// When the run `run` began (`None`: not a run identifier).
pub fn run_started(run: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(run, RUN_FORMAT).ok().map(|t| t.and_utc())
}

/// The restored database's identifier: `drpilot-rt-<run>-<8 hex of the deployment and the
/// database>`. The same for every try of one run's restore of one database, so AWS itself
/// refuses a second one (`...AlreadyExists`), and apart from another deployment's restore of
/// the same database in the same second; within RDS's rules (a letter first, at most 63
/// letters, digits and single hyphens).
pub fn restore_id(run: &str, deployment: &str, db: &ProtectedDb) -> String {
    let name = format!("{deployment}/{}:{}", db.kind.as_str(), db.id);
    format!("drpilot-rt-{run}-{:08x}", crate::plan::copy::fnv1a32(name.as_bytes()))
}

/// The one instance a restored cluster gets (a cluster without an instance cannot be used).
pub fn cluster_instance_id(cluster_id: &str) -> String {
    format!("{cluster_id}-1")
}

/// The smallest instance class RDS offers for an engine's current versions (RDS User Guide,
/// "Supported DB engines for DB instance classes"; Aurora User Guide, "Supported DB engines
/// for DB instance classes"): a verification proves the copy restores, not its performance.
/// `None`: no default; the database's `instance_class` must be set.
pub fn smallest_class(engine: &str) -> Option<&'static str> {
    match engine {
        "mysql" | "mariadb" | "postgres" => Some("db.t4g.micro"),
        "aurora-mysql" | "aurora-postgresql" => Some("db.t4g.medium"),
        e if e.starts_with("sqlserver-ex") || e.starts_with("sqlserver-web") => Some("db.t3.small"),
        e if e.starts_with("oracle-se2") => Some("db.t3.small"),
        _ => None,
    }
}

/// What a status RDS reports means for a restore in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Still being made (`creating`, `backing-up`, `modifying`, ...).
    Waiting,
    Available,
    /// RDS gave up on it: the status and what AWS says it means.
    Failed(String),
}

/// The statuses in which RDS will not make a restored database available by itself, with
/// AWS's meaning of each (RDS User Guide, "Viewing Amazon RDS DB instance status"; Aurora
/// User Guide, "Viewing DB cluster status").
const FAILED: &[(&str, &str)] = &[
    ("failed", "the DB instance has failed and Amazon RDS can't recover it"),
    (
        "inaccessible-encryption-credentials",
        "the AWS KMS key used to encrypt or decrypt the DB instance can't be accessed or recovered",
    ),
    (
        "inaccessible-encryption-credentials-recoverable",
        "the AWS KMS key used to encrypt or decrypt the DB instance can't be accessed",
    ),
    (
        "incompatible-network",
        "the VPC is in a state that prevents Amazon RDS from completing the action",
    ),
    (
        "incompatible-option-group",
        "the option group can't be applied to the DB instance",
    ),
    (
        "incompatible-parameters",
        "the parameters in the DB parameter group aren't compatible with the DB instance",
    ),
    ("incompatible-restore", "Amazon RDS can't restore the DB instance"),
    (
        "insufficient-capacity",
        "Amazon RDS can't create the instance because sufficient capacity isn't currently available",
    ),
    (
        "restore-error",
        "the DB instance encountered an error restoring from a snapshot",
    ),
    (
        "storage-full",
        "the DB instance has reached its storage capacity allocation",
    ),
];

pub fn seen(status: &str) -> Seen {
    match status {
        "available" => Seen::Available,
        s => match FAILED.iter().find(|(name, _)| *name == s) {
            Some((name, meaning)) => Seen::Failed(format!("RDS reports it {name}: {meaning}")),
            None => Seen::Waiting,
        },
    }
}

/// One check of a restored database, for the report and the notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    /// What was found (and, when it failed, what was expected).
    pub detail: String,
}

/// One database's finished verification: what the dashboard and responders see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub run: String,
    pub passed: bool,
    pub finished: DateTime<Utc>,
    /// The DR copy restored.
    #[serde(default)]
    pub copy: Option<String>,
    /// When its data was taken at the source.
    #[serde(default)]
    pub copy_time: Option<DateTime<Utc>>,
    /// How old that data was when the restore was asked for: the backup tier's recovery point.
    #[serde(default)]
    pub copy_age_seconds: Option<f64>,
    /// From asking for the restore to a usable database: the backup tier's recovery time.
    #[serde(default)]
    pub restore_seconds: Option<f64>,
    #[serde(default)]
    pub checks: Vec<Check>,
    #[serde(default)]
    pub failure: Option<String>,
}

impl Verification {
    /// A verification of run `run` that failed before it found anything, and why.
    pub fn failed(run: &str, why: String) -> Self {
        Verification {
            run: run.into(),
            passed: false,
            finished: Utc::now(),
            copy: None,
            copy_time: None,
            copy_age_seconds: None,
            restore_seconds: None,
            checks: vec![],
            failure: Some(why),
        }
    }

    /// Why this database's backups are not proven restorable now (`None`: they are).
    pub fn risk(last: Option<&Verification>, now: DateTime<Utc>, max_age_days: u32) -> Option<String> {
        match last {
            None => Some("no verified restore yet".into()),
            Some(v) if !v.passed => Some(format!(
                "its last restore test failed ({}): {}",
                crate::model::stamp(v.finished),
                v.failure.as_deref().unwrap_or("see the report")
            )),
            Some(v) if now - v.finished > Duration::days(i64::from(max_age_days)) => Some(format!(
                "its last verified restore is {} days old (bound {max_age_days})",
                (now - v.finished).num_days()
            )),
            Some(_) => None,
        }
    }
}

/// A KMS key as ARN, alias ARN or id: compared by what follows `key/` (or the whole).
fn key_id(k: &str) -> &str {
    k.rsplit_once("key/").map_or(k, |(_, id)| id)
}

/// The checks every verification makes: the restored database is available and holds what
/// the copy held (engine, engine version, encryption and the DR key), i.e. what the source
/// was when its snapshot was taken.
pub fn checks(copy: &CopyFacts, restored: &RestoredDb) -> Vec<Check> {
    let check = |name: &str, passed: bool, found: String, expected: String| Check {
        name: name.into(),
        passed,
        detail: if passed {
            found
        } else {
            format!("{found}, expected {expected}")
        },
    };
    let key = |k: &Option<String>| k.clone().unwrap_or_else(|| "none".into());
    vec![
        check(
            "available",
            restored.status == "available",
            restored.status.clone(),
            "available".into(),
        ),
        check(
            "engine",
            restored.engine == copy.engine,
            restored.engine.clone(),
            copy.engine.clone(),
        ),
        check(
            "engine version",
            restored.engine_version == copy.engine_version,
            restored.engine_version.clone(),
            copy.engine_version.clone(),
        ),
        check(
            "encrypted",
            restored.encrypted == copy.encrypted,
            restored.encrypted.to_string(),
            copy.encrypted.to_string(),
        ),
        check(
            "KMS key",
            !copy.encrypted || restored.kms_key_id.as_deref().map(key_id) == copy.kms_key_id.as_deref().map(key_id),
            key(&restored.kms_key_id),
            key(&copy.kms_key_id),
        ),
    ]
}

/// A restore test this deployment made (both tags), by its tags alone.
pub fn is_restore_test_of(db: &RestoredDb, deployment: &str) -> bool {
    db.tags.contains_key(tags::RESTORE_TEST)
        && db.tags.get(tags::MANAGED_BY).map(String::as_str) == Some(tags::MANAGED_BY_VALUE)
        && db.tags.get(tags::DEPLOYMENT).map(String::as_str) == Some(deployment)
}

/// What the sweeper deletes among the region's restore tests: this deployment's, not the
/// run in progress's (`live`), made by a run that began more than `bound` ago (a tag that
/// names no run time is as old as can be). Instances first, so a cluster's instance goes
/// before its cluster.
pub fn leftovers<'a>(
    found: &'a [RestoredDb],
    deployment: &str,
    live: &BTreeSet<String>,
    now: DateTime<Utc>,
    bound: Duration,
) -> Vec<&'a RestoredDb> {
    let mut out: Vec<&RestoredDb> = found
        .iter()
        .filter(|d| is_restore_test_of(d, deployment))
        .filter(|d| !live.contains(&d.id) && !d.cluster_id.as_ref().is_some_and(|c| live.contains(c)))
        .filter(|d| {
            let run = d.tags.get(tags::RESTORE_TEST).map(String::as_str).unwrap_or_default();
            run_started(run).is_none_or(|t| now - t > bound)
        })
        .filter(|d| d.status != "deleting")
        .collect();
    out.sort_by_key(|d| (d.kind == DbKind::Cluster, d.id.clone()));
    out
}

/// The objects a restore test of an S3 backup restores: the `objects` of a point in time
/// whose rank for the run (a hash of the run and the key) is lowest. Each run draws another
/// sample, spread over the whole point whatever its key order; memory holds the sample only,
/// however many entries are offered. An object larger than `max_bytes` (the bytes a test may
/// read back) is never drawn, and counted.
#[derive(Debug)]
pub struct Sample {
    run: String,
    objects: usize,
    max_bytes: i64,
    /// By (rank, key): the largest is the first to give way.
    kept: std::collections::BTreeMap<(u32, String), crate::plan::backup::ManifestEntry>,
    /// Entries offered.
    pub offered: u64,
    /// Entries too large to draw.
    pub too_large: u64,
}

impl Sample {
    pub fn new(run: &str, objects: usize, max_bytes: i64) -> Self {
        Sample {
            run: run.into(),
            objects,
            max_bytes,
            kept: Default::default(),
            offered: 0,
            too_large: 0,
        }
    }

    pub fn offer(&mut self, entry: &crate::plan::backup::ManifestEntry) {
        self.offered += 1;
        // (an entry without a version id names no copy a restore could read)
        if entry.deleted || entry.version.is_empty() {
            return;
        }
        if entry.size > self.max_bytes {
            self.too_large += 1;
            return;
        }
        let rank = crate::plan::copy::fnv1a32(format!("{}/{}", self.run, entry.key).as_bytes());
        let at = (rank, entry.key.clone());
        if self.kept.len() < self.objects {
            self.kept.insert(at, entry.clone());
        } else if self.kept.last_key_value().is_some_and(|(worst, _)| at < *worst) {
            self.kept.pop_last();
            self.kept.insert(at, entry.clone());
        }
    }

    /// The sample, in key order.
    pub fn entries(self) -> Vec<crate::plan::backup::ManifestEntry> {
        let mut out: Vec<_> = self.kept.into_values().collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }
}

/// How a restored object's bytes compare with what the backup recorded of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The same bytes: by the SHA-256 S3 stored with the DR copy when it was made, or by the
    /// MD5 the source's ETag is.
    Same(&'static str),
    Differs(String),
    /// Nothing recorded says what its bytes were (why).
    NotComparable(&'static str),
}

/// A single-part upload's ETag is its bytes' MD5 (32 hex digits) unless it was encrypted with
/// SSE-KMS or SSE-C; a multipart upload's is `<hex>-<parts>` (S3 API Reference, Object: ETag).
fn md5_like(etag: &str) -> Option<String> {
    let e = etag.trim_matches('"');
    (e.len() == 32 && e.chars().all(|c| c.is_ascii_hexdigit())).then(|| e.to_ascii_lowercase())
}

/// Compares what a restore read back with what the backup recorded: the checksum S3 stored
/// with the DR copy, else the source's ETag where it can be an MD5. An MD5 that differs with
/// no stored checksum proves nothing (an SSE-KMS source's ETag is no MD5 of its bytes), so it
/// is not counted against the backup.
pub fn compare_content(
    entry: &crate::plan::backup::ManifestEntry,
    stored: &crate::model::StoredVersion,
    read: &crate::model::Digest,
) -> Content {
    if let Some(sha) = &stored.sha256 {
        return match *sha == read.sha256 {
            true => Content::Same("SHA-256 stored with the DR copy"),
            false => Content::Differs(format!(
                "SHA-256 {} read back, {sha} stored with the DR copy",
                read.sha256
            )),
        };
    }
    match md5_like(&entry.etag) {
        Some(md5) if md5 == read.md5 => Content::Same("MD5, the source's ETag"),
        Some(_) => Content::NotComparable(
            "no checksum stored with its DR copy, and its source's ETag is not its bytes' MD5 (an SSE-KMS source's is not)",
        ),
        None => Content::NotComparable("no checksum stored with its DR copy, and its source's ETag is a multipart one"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn db(kind: DbKind, id: &str, tags: &[(&str, &str)]) -> RestoredDb {
        RestoredDb {
            kind,
            id: id.into(),
            status: "available".into(),
            engine: "mysql".into(),
            engine_version: "8.0.39".into(),
            encrypted: true,
            kms_key_id: Some("arn:aws:kms:us-west-2:123456789012:key/k-1".into()),
            cluster_id: None,
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn copy() -> CopyFacts {
        CopyFacts {
            kind: DbKind::Instance,
            id: "drpilot-orders-1".into(),
            arn: "arn:aws:rds:us-west-2:123456789012:snapshot:drpilot-orders-1".into(),
            engine: "mysql".into(),
            engine_version: "8.0.39".into(),
            encrypted: true,
            kms_key_id: Some("k-1".into()),
            source_time: None,
        }
    }

    #[test]
    fn identifiers_are_valid_for_rds_stable_per_run_and_database_and_carry_the_run_time() {
        let t = at("2026-11-27T12:28:05Z");
        let run = run_id(t);
        assert_eq!(run, "20261127t122805z");
        assert_eq!(run_started(&run), Some(t));
        assert_eq!(run_started("yesterday"), None);
        let orders = ProtectedDb {
            kind: DbKind::Instance,
            id: "orders".into(),
        };
        let cluster = ProtectedDb {
            kind: DbKind::Cluster,
            id: "orders".into(),
        };
        let id = restore_id(&run, "drpilot", &orders);
        assert_eq!(
            id,
            restore_id(&run, "drpilot", &orders),
            "every try asks AWS for the same one"
        );
        assert_ne!(id, restore_id(&run, "drpilot", &cluster));
        assert_ne!(id, restore_id(&run, "team-b", &orders));
        assert_ne!(id, restore_id(&run_id(t + Duration::seconds(1)), "drpilot", &orders));
        for id in [id.clone(), cluster_instance_id(&restore_id(&run, "drpilot", &cluster))] {
            assert!(id.len() <= 63 && id.starts_with("drpilot-rt-"), "{id}");
            assert!(id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
            assert!(!id.contains("--") && !id.ends_with('-'));
        }
    }

    #[test]
    fn the_smallest_class_per_engine_and_none_for_an_engine_without_a_default() {
        assert_eq!(smallest_class("postgres"), Some("db.t4g.micro"));
        assert_eq!(smallest_class("aurora-postgresql"), Some("db.t4g.medium"));
        assert_eq!(smallest_class("db2-se"), None);
    }

    #[test]
    fn statuses_that_never_become_available_fail_with_aws_meaning_and_the_rest_wait() {
        assert_eq!(seen("available"), Seen::Available);
        for waiting in [
            "creating",
            "backing-up",
            "modifying",
            "configuring-log-exports",
            "rebooting",
        ] {
            assert_eq!(seen(waiting), Seen::Waiting, "{waiting}");
        }
        match seen("inaccessible-encryption-credentials") {
            Seen::Failed(why) => assert!(why.contains("KMS key"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_restore_passes_only_with_the_copys_engine_version_and_key() {
        let restored = db(DbKind::Instance, "r", &[]);
        assert!(
            checks(&copy(), &restored).iter().all(|c| c.passed),
            "key ARN vs id is one key"
        );
        let mut other = restored.clone();
        other.engine_version = "8.0.40".into();
        other.kms_key_id = Some("arn:aws:kms:us-west-2:123456789012:key/k-2".into());
        other.status = "storage-full".into();
        let failed: Vec<String> = checks(&copy(), &other)
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        assert_eq!(
            failed,
            [
                "available: storage-full, expected available",
                "engine version: 8.0.40, expected 8.0.39",
                "KMS key: arn:aws:kms:us-west-2:123456789012:key/k-2, expected k-1",
            ]
        );
    }

    #[test]
    fn the_sweeper_takes_only_this_deployments_old_restore_tests_instances_first() {
        let now = at("2026-11-27T12:00:00Z");
        let old = run_id(now - Duration::hours(5));
        let recent = run_id(now - Duration::minutes(10));
        let ours = |run: &str| -> BTreeMap<String, String> {
            [
                (tags::RESTORE_TEST, run),
                (tags::MANAGED_BY, tags::MANAGED_BY_VALUE),
                (tags::DEPLOYMENT, "drpilot"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        };
        let with = |kind, id: &str, tags: BTreeMap<String, String>, cluster: Option<&str>| RestoredDb {
            tags,
            cluster_id: cluster.map(str::to_string),
            ..db(kind, id, &[])
        };
        let mut other_deployment = ours(&old);
        other_deployment.insert(tags::DEPLOYMENT.into(), "team-b".into());
        let found = vec![
            with(DbKind::Cluster, "old-cluster", ours(&old), None),
            with(DbKind::Instance, "old-cluster-1", ours(&old), Some("old-cluster")),
            with(DbKind::Instance, "old-instance", ours(&old), None),
            with(DbKind::Instance, "recent", ours(&recent), None),
            with(DbKind::Instance, "live", ours(&old), None),
            with(DbKind::Instance, "live-cluster-1", ours(&old), Some("live-cluster")),
            with(DbKind::Instance, "team-b", other_deployment, None),
            with(DbKind::Instance, "production", BTreeMap::new(), None),
            with(DbKind::Instance, "no-run-time", ours("?"), None),
        ];
        let live: BTreeSet<String> = ["live".to_string(), "live-cluster".to_string()].into();
        let ids: Vec<&str> = leftovers(&found, "drpilot", &live, now, Duration::hours(3))
            .iter()
            .map(|d| d.id.as_str())
            .collect();
        assert_eq!(ids, ["no-run-time", "old-cluster-1", "old-instance", "old-cluster"]);
    }

    fn entry(key: &str, size: i64, etag: &str) -> crate::plan::backup::ManifestEntry {
        crate::plan::backup::ManifestEntry {
            key: key.into(),
            size,
            etag: etag.into(),
            modified: None,
            version: format!("v-{key}"),
            deleted: false,
        }
    }

    #[test]
    fn a_sample_is_spread_over_the_point_differs_per_run_and_skips_what_is_too_large_or_deleted() {
        let all: Vec<_> = (0..10_000).map(|i| entry(&format!("k/{i:05}"), 10, "e")).collect();
        let draw = |run: &str| {
            let mut s = Sample::new(run, 20, 100);
            all.iter().for_each(|e| s.offer(e));
            assert_eq!((s.offered, s.too_large), (10_000, 0));
            s.entries().into_iter().map(|e| e.key).collect::<Vec<_>>()
        };
        let first = draw("20261127t120000z");
        assert_eq!(first.len(), 20);
        assert!(first.windows(2).all(|w| w[0] < w[1]), "key order");
        assert_eq!(first, draw("20261127t120000z"), "the same run draws the same sample");
        assert_ne!(first, draw("20261204t120000z"), "another run draws another");
        // spread: not the first twenty keys, and from both halves
        assert!(first.iter().any(|k| k.as_str() >= "k/05000") && first.iter().any(|k| k.as_str() < "k/05000"));

        let mut s = Sample::new("r", 5, 100);
        let mut gone = entry("gone", 1, "e");
        gone.deleted = true;
        for e in [entry("big", 101, "e"), gone, entry("a", 100, "e"), entry("b", 0, "e")] {
            s.offer(&e);
        }
        assert_eq!((s.offered, s.too_large), (4, 1));
        let keys: Vec<String> = s.entries().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["a", "b"]);
    }

    #[test]
    fn content_is_compared_with_the_stored_checksum_else_an_md5_etag_and_unknown_is_not_a_failure() {
        use crate::model::{Digest, StoredVersion};
        let read = Digest {
            size: 11,
            sha256: "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=".into(),
            md5: "5eb63bbbe01eeed093cb22bb8f5acdc3".into(),
        };
        let stored = |sha: Option<&str>| StoredVersion {
            size: 11,
            etag: "\"x\"".into(),
            sha256: sha.map(str::to_string),
        };
        let md5_etag = entry("k", 11, "\"5EB63BBBE01EEED093CB22BB8F5ACDC3\"");
        assert_eq!(
            compare_content(&md5_etag, &stored(Some(&read.sha256)), &read),
            Content::Same("SHA-256 stored with the DR copy")
        );
        assert!(matches!(
            compare_content(&md5_etag, &stored(Some("AAAA")), &read),
            Content::Differs(why) if why.contains("AAAA")
        ));
        assert_eq!(
            compare_content(&md5_etag, &stored(None), &read),
            Content::Same("MD5, the source's ETag")
        );
        assert!(matches!(
            compare_content(&entry("k", 11, "\"0123456789abcdef0123456789abcdef\""), &stored(None), &read),
            Content::NotComparable(why) if why.contains("SSE-KMS")
        ));
        assert!(matches!(
            compare_content(&entry("k", 11, "\"0123456789abcdef0123456789abcdef-3\""), &stored(None), &read),
            Content::NotComparable(why) if why.contains("multipart")
        ));
    }
}
