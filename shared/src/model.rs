//! The domain's nouns: what drpilot protects (databases and their standbys, DNS records,
//! S3 backups, measured resources), where its state lives, source databases, their
//! snapshots and drpilot's copies of them. Depends on nothing else in the crate; settings
//! parse into these types, plans decide over them, ports and adapters act on them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Tag keys drpilot writes on every copy it makes, and reads back to recognise its own.
pub mod tags {
    pub const MANAGED_BY: &str = "drpilot:managed-by";
    pub const MANAGED_BY_VALUE: &str = "drpilot";
    pub const SOURCE_ARN: &str = "drpilot:source-arn";
    pub const SOURCE_DB: &str = "drpilot:source-db";
    pub const SOURCE_REGION: &str = "drpilot:source-region";
    pub const SOURCE_SNAPSHOT_TIME: &str = "drpilot:source-snapshot-time";
    /// Which drpilot deployment made a copy (`DRPILOT_DEPLOYMENT`): two deployments in one
    /// account (a hub and a member's own) never count or prune each other's copies.
    pub const DEPLOYMENT: &str = "drpilot:deployment";
    /// On a database the restore verifier restored to prove a copy restorable: the run that
    /// made it. Its sweeper deletes only what carries this tag and this deployment's
    /// `drpilot:deployment`.
    pub const RESTORE_TEST: &str = "drpilot:restore-test";
}

/// The deployment name of copies made before copies carried `drpilot:deployment`, and the
/// default `DRPILOT_DEPLOYMENT`.
pub const DEFAULT_DEPLOYMENT: &str = "drpilot";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DbKind {
    /// An RDS DB instance (DB snapshots).
    Instance,
    /// An Aurora (or Multi-AZ) DB cluster (DB cluster snapshots).
    Cluster,
}

impl DbKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DbKind::Instance => "instance",
            DbKind::Cluster => "cluster",
        }
    }
}

/// A database as listed in the source region, before selection.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDb {
    pub kind: DbKind,
    pub id: String,
    pub arn: String,
    pub engine: String,
    pub tags: BTreeMap<String, String>,
    /// For an instance that is a member of an Aurora cluster: the cluster.
    pub cluster_id: Option<String>,
}

/// A database drpilot protects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProtectedDb {
    pub kind: DbKind,
    pub id: String,
}

/// A DB snapshot or DB cluster snapshot, in either region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub kind: DbKind,
    pub id: String,
    pub arn: String,
    pub db_id: String,
    pub status: String,
    pub created: Option<DateTime<Utc>>,
    pub encrypted: bool,
    pub tags: BTreeMap<String, String>,
    /// Set by AWS on a cross-region copy.
    pub source_region: Option<String>,
}

impl Snapshot {
    pub fn is_available(&self) -> bool {
        self.status == "available"
    }

    /// Being created or copied: counts against the copies-in-flight quota and is never pruned.
    pub fn is_in_progress(&self) -> bool {
        matches!(self.status.as_str(), "creating" | "pending" | "copying")
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    /// A copy any drpilot deployment made, recognised by its tag, never by its name.
    pub fn is_managed_copy(&self) -> bool {
        self.tag(tags::MANAGED_BY) == Some(tags::MANAGED_BY_VALUE)
    }

    /// A copy `deployment` made: its `drpilot:deployment`, or, on a copy made before that
    /// tag, the default deployment's.
    pub fn is_copy_of(&self, deployment: &str) -> bool {
        self.is_managed_copy() && self.tag(tags::DEPLOYMENT).unwrap_or(DEFAULT_DEPLOYMENT) == deployment
    }

    /// When the data in this copy was taken at the source (the recovery point it offers).
    pub fn source_time(&self) -> Option<DateTime<Utc>> {
        self.tag(tags::SOURCE_SNAPSHOT_TIME)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .or(self.created)
    }
}

/// A time as drpilot writes it in notices, tags and reports: RFC 3339, to the second, UTC.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The region field of an ARN (`arn:partition:service:region:account:resource`).
pub fn arn_region(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    (parts.next() == Some("arn")).then_some(())?;
    let (_partition, _service, region) = (parts.next()?, parts.next()?, parts.next()?);
    Some(region)
}

/// Where drpilot keeps its small state objects: a bucket in the DR region (it must
/// survive the primary region), with conditional writes as the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateLocation {
    pub bucket: String,
    pub prefix: String,
}

impl StateLocation {
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

pub fn valid_bucket_name(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A database whose newest DR copy the restore verifier restores (an entry of
/// `DRPILOT_VERIFY_DATABASES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySpec {
    pub db: ProtectedDb,
    /// The restored instance's class; `None`: the smallest the engine allows
    /// (`plan::verify::smallest_class`).
    pub instance_class: Option<String>,
}

/// What a DR copy holds, as the DR region describes it: what a database restored from it
/// must match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CopyFacts {
    pub kind: DbKind,
    pub id: String,
    pub arn: String,
    pub engine: String,
    pub engine_version: String,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    /// When the data in it was taken at the source (its recovery point).
    pub source_time: Option<DateTime<Utc>>,
}

/// A database the restore verifier restored (or a leftover one), as the DR region reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoredDb {
    pub kind: DbKind,
    pub id: String,
    pub status: String,
    pub engine: String,
    pub engine_version: String,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    /// An instance's cluster (the instance a cluster's verification adds to it).
    pub cluster_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// An Aurora DB cluster as its region describes it: what a failback back to it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterFacts {
    pub arn: String,
    pub status: String,
    /// The cluster (writer) endpoint.
    pub endpoint: Option<String>,
}

/// An Aurora global database as `DescribeGlobalClusters` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalFacts {
    pub status: String,
    /// A switchover or failover is under way (its `FailoverState`).
    pub switching: bool,
    /// The cluster it is switching to (`FailoverState.ToDbClusterArn`).
    pub switching_to: Option<String>,
    pub members: Vec<GlobalMember>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalMember {
    pub arn: String,
    pub is_writer: bool,
    /// `SynchronizationStatus` is `connected` (or not reported): not being rebuilt after a
    /// failover (`pending-resync`).
    pub in_sync: bool,
}

impl GlobalFacts {
    /// The member whose ARN ends in `:cluster:<id>` (RDS identifiers are not case-sensitive).
    pub fn member(&self, id: &str) -> Option<&GlobalMember> {
        self.members.iter().find(|m| arn_names(&m.arn, id))
    }

    /// A switchover or failover under way to the cluster `id`.
    pub fn switching_to(&self, id: &str) -> bool {
        self.switching && self.switching_to.as_deref().is_some_and(|arn| arn_names(arn, id))
    }
}

/// Whether a DB cluster ARN names the cluster `id`.
fn arn_names(arn: &str, id: &str) -> bool {
    arn.rsplit_once(":cluster:")
        .is_some_and(|(_, name)| name.eq_ignore_ascii_case(id))
}

/// An RDS DB instance as its region describes it: what a failback needs to replace it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceFacts {
    pub id: String,
    pub arn: String,
    pub status: String,
    pub endpoint: Option<String>,
    /// The instance it replicates from (its ARN or identifier); `None`: not a replica.
    pub replica_of: Option<String>,
    pub deletion_protection: bool,
    /// `DbiResourceId`: the instance itself, whatever it is named (a failback deletes only the
    /// instance it recorded, never a newer one under the same name).
    pub resource_id: String,
    pub engine: String,
    /// Its parameter group's changes are in force (RDS's `ParameterApplyStatus` `in-sync`).
    pub parameters_applied: bool,
    pub shape: InstanceShape,
}

/// What a replacement of an instance takes over from it: its key, size, network, parameters
/// and tags (a failback's new replica looks like the instance it replaces).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InstanceShape {
    pub kms_key_id: Option<String>,
    pub class: String,
    #[serde(default)]
    pub subnet_group: Option<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub parameter_group: Option<String>,
    #[serde(default)]
    pub multi_az: bool,
    /// Days of automated backups (a promoted replica gets these back; RDS's default is 1).
    #[serde(default)]
    pub backup_retention_days: i32,
    #[serde(default)]
    pub publicly_accessible: bool,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Which source databases drpilot protects: explicit identifiers and/or a tag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    pub instances: Vec<String>,
    pub clusters: Vec<String>,
    /// `(key, Some(value))` matches that exact value; `(key, None)` any value.
    pub tag: Option<(String, Option<String>)>,
}

/// What the lag checker measures (`kind` of a `DRPILOT_RESOURCES` entry).
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A cross-region RDS read replica (identifier in the DR region).
    RdsReplica { replica: String },
    /// The secondary cluster of an Aurora global database (identifier in the DR region).
    AuroraGlobal { cluster: String },
    /// The snapshot copier's newest DR copy of a database.
    SnapshotCopies { db: ProtectedDb },
    /// An S3 bucket replicated (or copied by another tool) to a DR bucket: compared object by object.
    S3Backup {
        source_bucket: String,
        dr_bucket: String,
        prefix: String,
    },
    /// One of drpilot's S3 backups (`DRPILOT_S3_BACKUPS` name): its newest point in time's age.
    S3PointInTime { backup: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceSpec {
    /// The resource's name in metrics, notices and the dashboard.
    pub name: String,
    pub rpo_seconds: f64,
    pub target: Target,
    /// The member account (`DRPILOT_ACCOUNTS`) it is in; `None`: the function's own.
    pub account: Option<String>,
}

impl ResourceSpec {
    pub fn kind(&self) -> &'static str {
        match self.target {
            Target::RdsReplica { .. } => "rds-replica",
            Target::AuroraGlobal { .. } => "aurora-global",
            Target::SnapshotCopies { .. } => "snapshot",
            Target::S3Backup { .. } | Target::S3PointInTime { .. } => "s3-backup",
        }
    }
}

/// The DNS record the promoter points at the new primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSpec {
    pub zone_id: String,
    pub record_name: String,
    pub record_type: String,
    pub ttl: i64,
    pub switch: DnsSwitch,
}

/// How a failover moves the app's record (`dns.mode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsSwitch {
    /// `upsert` (the default): `ChangeResourceRecordSets` points the record at the promoted
    /// standby. Route 53's control plane, which runs in us-east-1.
    Upsert,
    /// `failover-records`: Terraform's PRIMARY/SECONDARY failover records; the PRIMARY's health
    /// check follows `alarm`, a CloudWatch alarm in the DR region on drpilot's `FailedOver`
    /// metric. Publishing the metric (DR region) sets the alarm off and Route 53's data plane
    /// answers the SECONDARY, the standby, by itself: no Route 53 API call, so it works while
    /// us-east-1 is dark.
    FailoverRecords { alarm: String },
}

/// The metric drpilot publishes (DR region, `Database` dimension) when a failover's DNS
/// switch is due in `failover-records` mode; Terraform's alarm on it is the PRIMARY record's
/// health check.
pub const FAILED_OVER_METRIC: &str = "FailedOver";

/// What is promoted: a cross-region RDS read replica, or an Aurora global database's secondary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standby {
    RdsReplica {
        primary: String,
        replica: String,
    },
    AuroraGlobal {
        global_cluster: String,
        primary_cluster: String,
        secondary_cluster: String,
    },
}

/// One database the promoter protects (an entry of `DRPILOT_DATABASES`).
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseSpec {
    pub name: String,
    pub standby: Standby,
    /// What drpilot does to the old primary when its region answers again after an
    /// unplanned failover.
    pub fence: Fence,
    /// The CloudWatch alarms whose ALARM state means "the primary may be down".
    pub alarms: Vec<String>,
    /// The lag checker's resource name whose `RecoveryPointSeconds` history gates promotion.
    pub lag_resource: String,
    pub max_data_loss_seconds: f64,
    /// The recovery time objective: a failover's measured RTO is reported against it.
    pub rto_seconds: Option<f64>,
    pub health_check_id: Option<String>,
    pub dns: DnsSpec,
    /// The member account (`DRPILOT_ACCOUNTS`) its primary and standby are in; `None`: the
    /// function's own. Alarms, drpilot's metrics and Route 53 are the deployment's own.
    pub account: Option<String>,
    /// What a failover does between the promotion and the DNS switch (`recovery_plan`).
    pub recovery: Option<RecoveryPlan>,
}

/// A database's recovery plan: once its standby is promoted, the application's capacity in
/// the DR region is scaled up and waited on before DNS sends clients there (database ->
/// capacity -> DNS), as a warm standby's runbook does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryPlan {
    /// Auto Scaling groups and ECS services in the DR region (the database's account), scaled
    /// up together.
    pub capacity: Vec<CapacityGroup>,
    /// How long capacity may take to be healthy after the promotion (seconds).
    pub wait_seconds: u32,
    /// `true`: DNS waits for capacity however long it takes (responders are told when the wait
    /// is over, and an operator can let it go); `false` (the default): DNS switches without it
    /// when the wait is over, because a degraded application beats a dead region.
    pub strict: bool,
    /// At the end of a failover (and of a failback), an event for the user's own automation
    /// is published to this SNS topic (in the responders' topic's region).
    pub automation_topic: Option<String>,
}

/// One part of the application a recovery plan scales, and the size a failover gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityGroup {
    pub kind: CapacityKind,
    /// The Auto Scaling group's or the ECS service's name.
    pub name: String,
    pub size: GroupSize,
}

/// What a recovery plan scales in the DR region.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CapacityKind {
    /// An EC2 Auto Scaling group: min, desired and max; ready once enough instances are
    /// `InService` and healthy.
    #[default]
    AutoScalingGroup,
    /// An ECS service in this cluster: its desired count (min = desired = max); ready once
    /// enough tasks are RUNNING.
    EcsService { cluster: String },
}

impl CapacityKind {
    /// "Auto Scaling group web" / "ECS service api (cluster apps)", for responders.
    pub fn label(&self, name: &str) -> String {
        match self {
            CapacityKind::AutoScalingGroup => format!("Auto Scaling group {name}"),
            CapacityKind::EcsService { cluster } => format!("ECS service {name} (cluster {cluster})"),
        }
    }

    /// A size as this kind has it: "10 (min 10, max 20)" for a group, "6 tasks" for a service.
    pub fn size(&self, size: GroupSize) -> String {
        match self {
            CapacityKind::AutoScalingGroup => size.to_string(),
            CapacityKind::EcsService { .. } => format!("{} tasks", size.desired),
        }
    }
}

/// An Auto Scaling group's bounds and desired capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupSize {
    pub min: u32,
    pub desired: u32,
    pub max: u32,
}

impl std::fmt::Display for GroupSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (min {}, max {})", self.desired, self.min, self.max)
    }
}

/// Fencing the old primary after an unplanned failover (RDS; an Aurora global database keeps
/// one writer by itself: the old primary rejoins as a secondary, which drpilot verifies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fence {
    /// `StopDBInstance` as soon as the primary region answers again.
    #[default]
    Stop,
    /// Left to the operator (e.g. the old primary has in-region read replicas, which RDS
    /// will not stop): drpilot tells responders it is back and unfenced.
    None,
}

/// One S3 backup: a source bucket (and prefix) kept in a versioned DR-region bucket, with a
/// manifest per run so any retained run can be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSpec {
    pub name: String,
    pub source_bucket: String,
    /// Only keys under this prefix are backed up ("" for the whole bucket). DR keys equal source keys.
    pub prefix: String,
    pub dr_bucket: String,
    /// Copies are encrypted with this DR-region KMS key; `None` uses the DR bucket's default encryption.
    pub kms_key_id: Option<String>,
    /// Storage class of the copies (`None`: STANDARD).
    pub storage_class: Option<String>,
    pub retention: BackupRetention,
    /// The member account (`DRPILOT_ACCOUNTS`) its source and DR buckets are in; `None`: the
    /// function's own. Its run state and manifests stay in the deployment's state bucket.
    pub account: Option<String>,
    /// Where S3 Inventory delivers the source bucket's reports: a scheduled run reads the keys
    /// from a report newer than the last run instead of listing the bucket (`None`: it lists).
    pub inventory: Option<InventoryLocation>,
}

/// One S3 Inventory configuration's reports, in its destination bucket (which S3 requires in
/// the source bucket's region): `s3://<bucket>/<destination prefix/><source bucket>/<config id>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryLocation {
    pub bucket: String,
    /// Ends with `/`.
    pub prefix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupRetention {
    /// Points in time finished within this many days are kept.
    pub days: u32,
    /// The newest this many points in time are kept whatever their age (at least 1).
    pub min_points: u32,
}

/// DNS names are the same whatever their case and final dot.
pub fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// An object in a bucket listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: i64,
    pub etag: String,
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
}

/// One stored version of an object, as `HeadObject` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    pub size: i64,
    pub etag: String,
    /// The SHA-256 S3 computed over its bytes when it was written (base64), if it was asked
    /// to (drpilot's copies ask; a multipart copy's is a checksum of its parts' and is not kept).
    pub sha256: Option<String>,
}

/// What an object's bytes are, read back in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// Bytes read.
    pub size: u64,
    /// SHA-256 (base64, as S3 gives checksums).
    pub sha256: String,
    /// MD5 (hex, as a single-part upload's ETag is).
    pub md5: String,
}

/// How much of a point in time a restore test of an S3 backup restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleSize {
    pub objects: u32,
    /// Larger objects are never drawn (each drawn object is read back in full).
    pub max_object_bytes: i64,
}

/// One member account of `DRPILOT_ACCOUNTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSpec {
    /// The 12-digit account id.
    pub id: String,
    /// The role drpilot assumes there (`infra/modules/member`).
    pub role_arn: String,
    /// The external id the role's trust policy requires, if any.
    pub external_id: Option<String>,
    /// The member's own DR-region KMS key, which the snapshot copier re-encrypts copies
    /// there with (a key of the hub's would make the member's recovery depend on the hub).
    pub dr_kms_key_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_global_member_is_found_by_its_cluster_name_in_any_case_and_a_switch_by_its_target() {
        let g = GlobalFacts {
            status: "switching-over".into(),
            switching: true,
            switching_to: Some("arn:aws:rds:eu-west-3:123456789012:cluster:ledger".into()),
            members: vec![GlobalMember {
                arn: "arn:aws:rds:eu-west-3:123456789012:cluster:ledger".into(),
                is_writer: false,
                in_sync: true,
            }],
        };
        assert!(g.member("Ledger").is_some());
        assert!(g.member("ledger-dr").is_none(), "a name is matched whole");
        assert!(g.switching_to("ledger") && !g.switching_to("ledger-dr"));
    }
}
