//! Small traits, one per capability drpilot needs from AWS. The AWS adapters are in `aws/`.

use crate::error::Result;
use crate::model::{DbKind, ProtectedDb, Snapshot, SourceDb};
use crate::notice::Notice;
use crate::plan::copy::CopyRequest;
use std::future::Future;

/// The source region's databases and their snapshots.
pub trait SourceCatalog: Sync {
    /// Every DB instance, with its tags.
    fn db_instances(&self) -> impl Future<Output = Result<Vec<SourceDb>>> + Send;
    /// Every DB cluster, with its tags.
    fn db_clusters(&self) -> impl Future<Output = Result<Vec<SourceDb>>> + Send;
    /// One database (`None`: not in the region).
    fn db(&self, db: &ProtectedDb) -> impl Future<Output = Result<Option<SourceDb>>> + Send;
    /// Every snapshot (automated and manual) of every database in the region.
    fn snapshots(&self) -> impl Future<Output = Result<Vec<Snapshot>>> + Send;
    /// One snapshot by identifier (`None`: not in the region).
    fn snapshot(&self, kind: DbKind, id: &str) -> impl Future<Output = Result<Option<Snapshot>>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyStarted {
    Started {
        status: String,
    },
    /// AWS refused a duplicate: a concurrent run (or an earlier try) already started it.
    AlreadyExists,
    /// AWS refused: the region's copies in progress are at its quota (AWS's words).
    QuotaFull(String),
}

/// The DR region's snapshot copies.
pub trait DrSnapshotStore: Sync {
    /// Every manual DB snapshot and DB cluster snapshot in the DR region (copies are manual).
    fn copies(&self) -> impl Future<Output = Result<Vec<Snapshot>>> + Send;
    /// The manual snapshots in the DR region of the database `db` names (copies of it among them).
    fn copies_of(&self, db: &ProtectedDb) -> impl Future<Output = Result<Vec<Snapshot>>> + Send;
    fn start_copy(&self, req: &CopyRequest) -> impl Future<Output = Result<CopyStarted>> + Send;
    /// Deletes one of drpilot's own copies. Refuses anything without drpilot's tag.
    fn delete_copy(&self, copy: &Snapshot) -> impl Future<Output = Result<()>> + Send;
    /// Lets `account` copy (and restore) one of drpilot's own copies (the snapshot's `restore`
    /// attribute); sharing it again is no error. Refuses anything without drpilot's tag.
    fn share(&self, copy: &Snapshot, account: &str) -> impl Future<Output = Result<()>> + Send {
        let what = format!("{} {} with {account}", copy.kind.as_str(), copy.id);
        async move { Err(crate::Error::Refused(format!("this store cannot share {what}"))) }
    }
}

/// Tells the responders.
pub trait Notifier: Sync {
    fn notify(&self, notice: &Notice) -> impl Future<Output = Result<()>> + Send;
}

/// A CloudWatch metric, identified as CloudWatch identifies it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricId {
    pub namespace: String,
    pub name: String,
    pub dimensions: Vec<(String, String)>,
}

impl MetricId {
    pub fn new(namespace: &str, name: &str, dimensions: &[(&str, &str)]) -> Self {
        MetricId {
            namespace: namespace.into(),
            name: name.into(),
            dimensions: dimensions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricUnit {
    Seconds,
    Count,
    /// A code, not a quantity (`RpoStatus`).
    None,
}

/// One value to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    pub name: String,
    pub dimensions: Vec<(String, String)>,
    pub value: f64,
    pub unit: MetricUnit,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// CloudWatch's `GetMetricData` takes at most this many metrics per call.
pub const MAX_QUERIES: usize = 500;

/// CloudWatch metrics in one region.
pub trait Metrics: Sync {
    /// The newest `Maximum` over `period_seconds` buckets of each metric between `from` and
    /// `to`, in the order asked: `Ok(None)` when it has no datapoint, `Err` when CloudWatch
    /// could not answer for that metric alone. Asks in as few calls as CloudWatch allows.
    fn newest_each(
        &self,
        metrics: &[MetricId],
        period_seconds: u32,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<Vec<Result<Option<crate::plan::lag::Datapoint>>>>> + Send;

    /// One metric's newest datapoint (see `newest_each`).
    fn newest(
        &self,
        metric: &MetricId,
        period_seconds: u32,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<Option<crate::plan::lag::Datapoint>>> + Send {
        async move {
            let mut each = self
                .newest_each(std::slice::from_ref(metric), period_seconds, from, to)
                .await?;
            each.pop().unwrap_or(Ok(None))
        }
    }

    /// Every `Maximum` over `period_seconds` buckets of each metric between `from` and `to`,
    /// oldest first, in the order asked (`Err` when CloudWatch could not answer for that
    /// metric alone): the recovery point over time the status page draws.
    fn series_each(
        &self,
        metrics: &[MetricId],
        period_seconds: u32,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<Vec<Result<Vec<crate::plan::lag::Datapoint>>>>> + Send;

    fn publish(&self, namespace: &str, values: &[MetricValue]) -> impl Future<Output = Result<()>> + Send;
}

/// Replication links as the DR region's RDS API reports them, for the whole region at once
/// (one paginated listing, however many replicas are measured).
pub trait ReplicaView: Sync {
    /// Every DB instance in the region by identifier, with the state of its link to its
    /// source (a cross-region read replica's).
    fn replica_links(
        &self,
    ) -> impl Future<Output = Result<std::collections::HashMap<String, crate::plan::lag::Link>>> + Send;
    /// Every DB cluster in the region by identifier (the secondary clusters of Aurora global
    /// databases among them), with the state of its link.
    fn cluster_links(
        &self,
    ) -> impl Future<Output = Result<std::collections::HashMap<String, crate::plan::lag::Link>>> + Send;
}

pub use crate::model::{Digest, ObjectInfo, StoredVersion};

/// Object listings of buckets in one region.
pub trait BucketListing: Sync {
    fn list(&self, bucket: &str, prefix: &str) -> impl Future<Output = Result<Vec<ObjectInfo>>> + Send;
}

/// One server-side copy (`CopyObject`, or `UploadPartCopy` parts above the multipart threshold).
/// The request goes to the target bucket's region; no object body passes through drpilot.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectCopy {
    pub from_bucket: String,
    pub from_key: String,
    pub from_version: Option<String>,
    /// Copy only if the source still has this ETag (the one that was listed).
    pub if_match: Option<String>,
    pub size: i64,
    pub to_bucket: String,
    pub to_key: String,
    /// SSE-KMS with this key; `None`: the target bucket's default encryption.
    pub kms_key_id: Option<String>,
    pub storage_class: Option<String>,
}

/// A multipart copy in progress: its upload and the parts copied so far (part number, ETag).
/// The run records it, so that a copy longer than an invocation goes on in the next one.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Upload {
    pub upload_id: String,
    /// The part size the upload's parts were cut with: a different one (or none recorded)
    /// starts over.
    #[serde(default)]
    pub part_size: i64,
    pub parts: Vec<(i32, String)>,
    /// When the upload was started: an object older than that is not its completion.
    #[serde(default)]
    pub started: Option<chrono::DateTime<chrono::Utc>>,
}

/// A page of a key-ordered listing; `more` when the listing goes on after the last item.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub more: bool,
}

/// A version S3 did not delete, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotDeleted {
    pub key: String,
    pub version_id: String,
    pub reason: String,
}

/// Objects and their versions in buckets of one region.
pub trait ObjectStore: Sync {
    /// Up to 1,000 objects under `prefix` whose keys sort after `start_after`, in key order.
    fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
    ) -> impl Future<Output = Result<Page<ObjectInfo>>> + Send;
    /// True when the bucket's versioning is `Enabled` (not suspended, not never enabled).
    fn versioning_enabled(&self, bucket: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Copies server-side; returns the new object's version id ("" for an unversioned bucket).
    fn copy(&self, copy: &ObjectCopy) -> impl Future<Output = Result<String>> + Send;
    /// As `copy`, keeping a multipart copy's progress in `upload` as it goes: the upload once
    /// started, each part once copied. Given an upload in progress, it copies only the parts
    /// not yet copied. If the copy is dropped before it ends, `upload` says where it got to;
    /// when it ends (either way) `upload` is `None`.
    fn copy_resumable(
        &self,
        copy: &ObjectCopy,
        upload: &std::sync::Mutex<Option<Upload>>,
    ) -> impl Future<Output = Result<String>> + Send {
        let _ = upload; // a store without multipart copies has nothing to resume
        self.copy(copy)
    }
    /// Gives up a multipart upload no copy goes on with (one already completed or aborted is
    /// no error).
    fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> impl Future<Output = Result<()>> + Send {
        let _ = (bucket, key, upload_id); // a store without multipart copies has none
        async { Ok(()) }
    }
    /// Deletes these (key, version id) pairs for good, 1,000 a call (`DeleteObjects`); returns
    /// those S3 did not delete. A version already gone counts as deleted.
    fn delete_versions(
        &self,
        bucket: &str,
        versions: &[(String, String)],
    ) -> impl Future<Output = Result<Vec<NotDeleted>>> + Send;
    /// Deletes the current object (a versioned bucket keeps it as a noncurrent version).
    fn delete_object(&self, bucket: &str, key: &str) -> impl Future<Output = Result<()>> + Send;
    /// The folders one level below `prefix` (`ListObjectsV2`'s common prefixes for the
    /// delimiter `/`, every page), in key order.
    fn folders(&self, bucket: &str, prefix: &str) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// An object's bytes (`GetObject`); `None` if there is none.
    fn read(&self, bucket: &str, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;
    /// The object as it is now (`HeadObject`); `None` if there is none.
    fn head(&self, bucket: &str, key: &str) -> impl Future<Output = Result<Option<ObjectInfo>>> + Send {
        let what = format!("s3://{bucket}/{key}");
        async move { Err(crate::Error::RunFailed(format!("this store cannot look at {what}"))) }
    }
    /// One version of an object (`HeadObject` with its version id and checksums); `None` if
    /// S3 has no such version.
    fn stored_version(
        &self,
        bucket: &str,
        key: &str,
        version: &str,
    ) -> impl Future<Output = Result<Option<StoredVersion>>> + Send {
        let what = format!("s3://{bucket}/{key} version {version}");
        async move { Err(crate::Error::RunFailed(format!("this store cannot look at {what}"))) }
    }
    /// Reads an object's bytes in full, hashing them as they stream (memory stays flat
    /// whatever its size); `None` if there is none.
    fn digest(&self, bucket: &str, key: &str) -> impl Future<Output = Result<Option<Digest>>> + Send {
        let what = format!("s3://{bucket}/{key}");
        async move { Err(crate::Error::RunFailed(format!("this store cannot read {what}"))) }
    }
    /// The bucket's default Object Lock retention (`GetObjectLockConfiguration`): its mode and
    /// days (years as 366 days each); `None` when the bucket has no default retention.
    fn default_lock(&self, bucket: &str) -> impl Future<Output = Result<Option<(String, u32)>>> + Send {
        // a store that cannot tell must not be taken for one without locks
        let what = format!("s3://{bucket}");
        async move {
            Err(crate::Error::RunFailed(format!(
                "this store cannot read the Object Lock of {what}"
            )))
        }
    }
}

/// Write-once documents (backup manifests) next to drpilot's state.
pub trait Documents: Sync {
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;
    fn put(&self, key: &str, body: Vec<u8>) -> impl Future<Output = Result<()>> + Send;
    fn delete(&self, key: &str) -> impl Future<Output = Result<()>> + Send;
    /// Every key under `prefix` (for small sets, such as restore pins).
    fn keys(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>>> + Send;
}

/// A stored object and the version tag a conditional write must match.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    pub body: Vec<u8>,
    pub etag: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Saved {
    Written {
        etag: String,
    },
    /// Someone else wrote first: the caller's view is stale. Nothing was written.
    Conflict,
}

/// Small state objects with compare-and-swap writes.
pub trait StateStore: Sync {
    fn load(&self, key: &str) -> impl Future<Output = Result<Option<Versioned>>> + Send;
    /// Writes only if the object is still at `expected` (`None`: only if it does not exist).
    fn save(&self, key: &str, body: &[u8], expected: Option<&str>) -> impl Future<Output = Result<Saved>> + Send;
}

/// Pages written whole for people to read, replacing what was there (the status page).
pub trait PagePublisher: Sync {
    fn put_page(&self, key: &str, html: String) -> impl Future<Output = Result<()>> + Send;
    /// When the page at `key` was last written (`None`: there is none).
    fn page_written(&self, key: &str) -> impl Future<Output = Result<Option<chrono::DateTime<chrono::Utc>>>> + Send;
}

/// A CloudWatch alarm's current state.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmState {
    pub value: String,
    /// `StateUpdatedTimestamp`: when the alarm entered this state, in CloudWatch's time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub reason: String,
    /// Period, evaluation periods and datapoints to alarm (a metric alarm with one metric).
    pub window: Option<crate::plan::promotion::AlarmWindow>,
}

pub trait AlarmView: Sync {
    /// `None` when no such alarm exists in `region`.
    fn alarm(&self, region: &str, name: &str) -> impl Future<Output = Result<Option<AlarmState>>> + Send;
    /// The states of the alarms of `names` in `region` that exist.
    fn alarms(
        &self,
        region: &str,
        names: &[String],
    ) -> impl Future<Output = Result<std::collections::BTreeMap<String, AlarmState>>> + Send;
}

/// The primary database, looked at from the DR region; classifies rather than fails.
pub trait PrimaryProbe: Sync {
    fn primary(
        &self,
        standby: &crate::model::Standby,
    ) -> impl Future<Output = crate::plan::promotion::PrimaryView> + Send;
    /// Fences the old primary after a failover: `StopDBInstance`. Returns the status AWS
    /// reports (`stopping`).
    fn stop(&self, standby: &crate::model::Standby) -> impl Future<Output = Result<String>> + Send;
    /// Before a planned failover: makes the primary read-only through its own (custom, not
    /// shared) DB parameter group, applied immediately. Returns what was set, for the record.
    /// `Error::Refused` when it cannot be done safely (engine, default or shared group).
    fn block_writes(&self, standby: &crate::model::Standby) -> impl Future<Output = Result<String>> + Send;
    /// Undoes `block_writes` (a planned failover called off).
    fn unblock_writes(&self, standby: &crate::model::Standby) -> impl Future<Output = Result<String>> + Send;
    /// What RDS reports about maintenance on the primary: pending actions it applies now,
    /// maintenance events since `since`, and what could not be read. Asked only of a primary
    /// that looks available.
    fn maintenance(
        &self,
        standby: &crate::model::Standby,
        since: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = crate::plan::promotion::MaintenanceReport> + Send;
}

/// Route 53 health checkers' current verdicts.
pub trait HealthChecks: Sync {
    fn checkers(&self, health_check_id: &str) -> impl Future<Output = Result<crate::plan::promotion::Checkers>> + Send;
}

/// The standby (DR replica or Aurora secondary) as the DR region reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct StandbyState {
    pub exists: bool,
    pub status: String,
    /// No longer replicating from the primary: promoted (RDS) or the global writer (Aurora).
    pub promoted: bool,
    pub endpoint: Option<String>,
    /// The standby's tags (a drill touches only standbys tagged for its plan).
    pub tags: std::collections::BTreeMap<String, String>,
}

/// AWS's answer to a promotion request.
#[derive(Debug, Clone, PartialEq)]
pub enum Promotion {
    Accepted,
    /// `InvalidDBInstanceState` and kin: AWS's code and message.
    NotNow {
        code: String,
        message: String,
    },
}

pub trait StandbyControl: Sync {
    fn state(&self, standby: &crate::model::Standby) -> impl Future<Output = Result<StandbyState>> + Send;
    /// Promote: `PromoteReadReplica`, or for Aurora `FailoverGlobalCluster` (allowing data
    /// loss) when unplanned and `SwitchoverGlobalCluster` when planned. AWS's "not in a state
    /// to do that" is an answer, not an error: the caller describes the standby to tell a
    /// promotion already under way from one that must wait.
    fn promote(&self, standby: &crate::model::Standby, planned: bool)
        -> impl Future<Output = Result<Promotion>> + Send;
}

/// A new cross-region read replica (`CreateDBInstanceReadReplica` in the port's region).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaRequest {
    pub id: String,
    /// The source instance's ARN (in the other region).
    pub source_arn: String,
    /// Its key, class, network, parameter group and tags (drpilot's own tags included).
    pub shape: crate::model::InstanceShape,
}

/// RDS DB instances in one region, by identifier: what a failback does to them.
pub trait Instances: Sync {
    /// `None`: no such instance (or deleted).
    fn instance(&self, id: &str) -> impl Future<Output = Result<Option<crate::model::InstanceFacts>>> + Send;
    /// `DeleteDBInstance` keeping a final snapshot (named `final_snapshot`) and the automated
    /// backups. Already being deleted, or gone, is no error.
    fn retire(&self, id: &str, final_snapshot: &str) -> impl Future<Output = Result<()>> + Send;
    /// Tags a DB snapshot (`false`: no such snapshot).
    fn tag_snapshot(
        &self,
        snapshot: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// `CreateDBInstanceReadReplica`; an instance with that identifier already existing is
    /// `AlreadyExists` (the caller checks it is its own), AWS's refusal `Refused`.
    fn create_replica(&self, req: &ReplicaRequest) -> impl Future<Output = Result<RestoreStarted>> + Send;
    /// `PromoteReadReplica` of an instance of this region, keeping `backup_retention_days` of
    /// automated backups (RDS's default for a promoted replica is 1).
    fn promote_instance(&self, id: &str, backup_retention_days: i32) -> impl Future<Output = Result<Promotion>> + Send;
    /// Whether writes on the instance can be blocked safely (`Err(Refused)`: why not), asking
    /// nothing of it: the checks of `block_writes_on`.
    fn can_block_writes(&self, id: &str) -> impl Future<Output = Result<String>> + Send;
    /// Makes the instance read-only through its own DB parameter group (as `block_writes`).
    fn block_writes_on(&self, id: &str) -> impl Future<Output = Result<String>> + Send;
    /// Gives a parameter group back RDS's default for `read_only`, `{TrueIfReplica}`:
    /// read-only while an instance is a replica, writable once promoted. A default group
    /// (which cannot be changed, and was never blocked) is left alone.
    fn allow_writes_in(&self, group: &str) -> impl Future<Output = Result<String>> + Send;
    /// An Aurora DB cluster of this region (`None`: no such cluster).
    fn cluster(&self, id: &str) -> impl Future<Output = Result<Option<crate::model::ClusterFacts>>> + Send;
    /// An Aurora global database and its members (`None`: no such global database).
    fn global(&self, id: &str) -> impl Future<Output = Result<Option<crate::model::GlobalFacts>>> + Send;
    /// `SwitchoverGlobalCluster` to `target_arn`: Aurora synchronizes the target before it
    /// switches (no data lost). AWS's "not now" (a member not ready) is `NotNow`.
    fn switchover(&self, global: &str, target_arn: &str) -> impl Future<Output = Result<Promotion>> + Send;
}

/// The DR region's application capacity a recovery plan scales up (EC2 Auto Scaling groups,
/// ECS services).
pub trait Capacity: Sync {
    /// The group's or service's size and health now (`None`: no such group or service).
    fn group(
        &self,
        kind: &crate::model::CapacityKind,
        name: &str,
    ) -> impl Future<Output = Result<Option<crate::plan::recovery::GroupState>>> + Send;
    /// Sets the group's bounds and desired capacity, or the service's desired count (the same
    /// size twice is no error).
    fn resize(
        &self,
        kind: &crate::model::CapacityKind,
        name: &str,
        size: crate::model::GroupSize,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// DNS: points a record at a target and tells when the change is live everywhere.
pub trait Dns: Sync {
    /// UPSERTs the record; returns the change id.
    fn point(&self, dns: &crate::model::DnsSpec, target: &str) -> impl Future<Output = Result<String>> + Send;
    fn in_sync(&self, change_id: &str) -> impl Future<Output = Result<bool>> + Send;
    /// The record's current value, if it exists.
    fn current(&self, dns: &crate::model::DnsSpec) -> impl Future<Output = Result<Option<String>>> + Send;
    /// With failover records: the SECONDARY record's value, if it exists.
    fn secondary(&self, dns: &crate::model::DnsSpec) -> impl Future<Output = Result<Option<String>>> + Send;
}

pub use crate::model::{CopyFacts, RestoredDb};

/// A restore the verifier asks for: a copy into a throwaway database that admits nothing but
/// the verifier (its subnet group and security groups), tagged as a restore test.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreRequest {
    pub kind: DbKind,
    /// The new database's identifier (for a cluster: the cluster's).
    pub id: String,
    pub copy: CopyFacts,
    /// The instance's class (for a cluster: its one instance's).
    pub instance_class: String,
    pub subnet_group: String,
    pub security_groups: Vec<String>,
    pub tags: std::collections::BTreeMap<String, String>,
}

/// AWS's answer to a restore (or to adding a cluster's instance).
#[derive(Debug, Clone, PartialEq)]
pub enum RestoreStarted {
    Started,
    /// A database with that identifier exists: an earlier try of this very restore.
    AlreadyExists,
    /// AWS refused it (a key it cannot use, a class the engine does not take...): its code
    /// and words. Nothing was created.
    Refused {
        code: String,
        message: String,
    },
}

/// Throwaway restores in the DR region.
pub trait RestoreLab: Sync {
    /// The copy's engine, version and encryption (`None`: not in the region).
    fn copy_facts(&self, copy: &Snapshot) -> impl Future<Output = Result<Option<CopyFacts>>> + Send;
    /// `RestoreDBInstanceFromDBSnapshot` or `RestoreDBClusterFromSnapshot`: not public, no
    /// deletion protection, in the request's subnet group and security groups, with its tags.
    fn restore(&self, req: &RestoreRequest) -> impl Future<Output = Result<RestoreStarted>> + Send;
    /// A restored cluster's one instance (`CreateDBInstance` into it), which is what makes a
    /// cluster usable; `id` is the instance's.
    fn add_instance(&self, req: &RestoreRequest, id: &str) -> impl Future<Output = Result<RestoreStarted>> + Send;
    /// One database (`None`: not in the region, or deleted).
    fn restored(&self, kind: DbKind, id: &str) -> impl Future<Output = Result<Option<RestoredDb>>> + Send;
    /// Every instance and cluster in the region that carries `drpilot:restore-test`.
    fn restore_tests(&self) -> impl Future<Output = Result<Vec<RestoredDb>>> + Send;
    /// Deletes a restore test without a final snapshot (gone already is no error). Refuses
    /// anything that does not carry `drpilot:restore-test` and this deployment's tag.
    fn delete(&self, db: &RestoredDb) -> impl Future<Output = Result<()>> + Send;
}
