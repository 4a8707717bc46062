//! RDS: the source region's databases and snapshots, and the DR region's copies.

use super::{aws_error, to_chrono};
use crate::error::{Error, Result};
use crate::model::{DbKind, ProtectedDb, Snapshot, SourceDb};
use crate::plan::copy::CopyRequest;
use crate::ports::{CopyStarted, DrSnapshotStore, SourceCatalog};
use aws_config::SdkConfig;
use aws_sdk_rds::types::{DbClusterSnapshot, DbSnapshot, Filter, Tag};
use aws_sdk_rds::Client;
use std::collections::{BTreeMap, HashMap};

/// An RDS client pinned to `region`, otherwise configured as the SDK's defaults say.
pub fn client_in(sdk: &SdkConfig, region: &str) -> Client {
    Client::from_conf(conf_in(sdk, region).build())
}

/// For a run that calls RDS for a whole fleet at once: with adaptive retry, a throttled client
/// slows its own request rate instead of only backing off each call.
pub fn fleet_client_in(sdk: &SdkConfig, region: &str) -> Client {
    use aws_smithy_types::retry::{RetryConfig, RetryMode};
    let retry = sdk.retry_config().cloned().unwrap_or_else(RetryConfig::standard);
    let conf = conf_in(sdk, region).retry_config(retry.with_retry_mode(RetryMode::Adaptive));
    Client::from_conf(conf.build())
}

fn conf_in(sdk: &SdkConfig, region: &str) -> aws_sdk_rds::config::Builder {
    aws_sdk_rds::config::Builder::from(sdk).region(aws_sdk_rds::config::Region::new(region.to_string()))
}

pub(crate) fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
        .collect()
}

fn db_snapshot(s: &DbSnapshot) -> Snapshot {
    Snapshot {
        kind: DbKind::Instance,
        id: s.db_snapshot_identifier().unwrap_or_default().to_string(),
        arn: s.db_snapshot_arn().unwrap_or_default().to_string(),
        db_id: s.db_instance_identifier().unwrap_or_default().to_string(),
        status: s.status().unwrap_or_default().to_string(),
        created: s.snapshot_create_time().and_then(to_chrono),
        encrypted: s.encrypted().unwrap_or(false),
        tags: tag_map(s.tag_list()),
        source_region: s.source_region().map(str::to_string),
    }
}

fn cluster_snapshot(s: &DbClusterSnapshot) -> Snapshot {
    Snapshot {
        kind: DbKind::Cluster,
        id: s.db_cluster_snapshot_identifier().unwrap_or_default().to_string(),
        arn: s.db_cluster_snapshot_arn().unwrap_or_default().to_string(),
        db_id: s.db_cluster_identifier().unwrap_or_default().to_string(),
        status: s.status().unwrap_or_default().to_string(),
        created: s.snapshot_create_time().and_then(to_chrono),
        encrypted: s.storage_encrypted().unwrap_or(false),
        tags: tag_map(s.tag_list()),
        // a copied cluster snapshot names its source by ARN; its region is the source region
        source_region: s
            .source_db_cluster_snapshot_arn()
            .and_then(crate::model::arn_region)
            .map(str::to_string),
    }
}

/// The source region, read-only: drpilot never changes anything here.
pub struct RdsSource {
    client: Client,
}

impl RdsSource {
    pub fn new(client: Client) -> Self {
        RdsSource { client }
    }
}

/// Every DB snapshot and DB cluster snapshot `matching` asks for, both listings at once, each in
/// pages of up to 100 (AWS's page size): a region-wide listing costs a call per 100 snapshots.
async fn snapshots(client: &Client, matching: Listing<'_>) -> Result<Vec<Snapshot>> {
    // One database's, by filter: the identifier parameter must name a database that exists in
    // the region (DescribeDBSnapshots), and a copy's database lives in the source region.
    let (filter, kind) = match matching.db {
        Some(db) => {
            let name = if db.kind == DbKind::Instance {
                "db-instance-id"
            } else {
                "db-cluster-id"
            };
            (
                Some(vec![Filter::builder().name(name).values(&db.id).build()]),
                Some(db.kind),
            )
        }
        None => (None, None),
    };
    let instances = async {
        if kind == Some(DbKind::Cluster) {
            return Ok(vec![]);
        }
        let items = client
            .describe_db_snapshots()
            .set_filters(filter.clone())
            .set_snapshot_type(matching.snapshot_type.map(str::to_string))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| aws_error("DescribeDBSnapshots", e))?;
        Ok::<_, Error>(items.iter().map(db_snapshot).collect::<Vec<_>>())
    };
    let clusters = async {
        if kind == Some(DbKind::Instance) {
            return Ok(vec![]);
        }
        let items = client
            .describe_db_cluster_snapshots()
            .set_filters(filter.clone())
            .set_snapshot_type(matching.snapshot_type.map(str::to_string))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| aws_error("DescribeDBClusterSnapshots", e))?;
        Ok(items.iter().map(cluster_snapshot).collect::<Vec<_>>())
    };
    let (instances, clusters) = futures::try_join!(instances, clusters)?;
    Ok(instances.into_iter().chain(clusters).collect())
}

/// Which snapshots a listing asks for: one database's or the region's, manual only or all.
#[derive(Clone, Copy, Default)]
struct Listing<'a> {
    db: Option<&'a ProtectedDb>,
    snapshot_type: Option<&'a str>,
}

fn source_db(kind: DbKind, id: Option<&str>, arn: Option<&str>, engine: Option<&str>, tags: &[Tag]) -> SourceDb {
    SourceDb {
        kind,
        id: id.unwrap_or_default().to_string(),
        arn: arn.unwrap_or_default().to_string(),
        engine: engine.unwrap_or_default().to_string(),
        tags: tag_map(tags),
        cluster_id: None,
    }
}

fn instance_db(i: &aws_sdk_rds::types::DbInstance) -> SourceDb {
    SourceDb {
        cluster_id: i.db_cluster_identifier().map(str::to_string),
        ..source_db(
            DbKind::Instance,
            i.db_instance_identifier(),
            i.db_instance_arn(),
            i.engine(),
            i.tag_list(),
        )
    }
}

fn cluster_db(c: &aws_sdk_rds::types::DbCluster) -> SourceDb {
    source_db(
        DbKind::Cluster,
        c.db_cluster_identifier(),
        c.db_cluster_arn(),
        c.engine(),
        c.tag_list(),
    )
}

const DB_NOT_FOUND: &[&str] = &["DBInstanceNotFound", "DBClusterNotFoundFault"];

/// `Ok(None)` for an AWS answer whose code is one of `absent`.
pub(crate) fn absent_as_none<T>(result: Result<T>, absent: &[&str]) -> Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.aws_code().is_some_and(|c| absent.contains(&c)) => Ok(None),
        Err(e) => Err(e),
    }
}

impl SourceCatalog for RdsSource {
    async fn db_instances(&self) -> Result<Vec<SourceDb>> {
        let items = self
            .client
            .describe_db_instances()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await;
        Ok(items
            .map_err(|e| aws_error("DescribeDBInstances", e))?
            .iter()
            .map(instance_db)
            .collect())
    }

    async fn db_clusters(&self) -> Result<Vec<SourceDb>> {
        let items = self
            .client
            .describe_db_clusters()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await;
        Ok(items
            .map_err(|e| aws_error("DescribeDBClusters", e))?
            .iter()
            .map(cluster_db)
            .collect())
    }

    async fn db(&self, db: &ProtectedDb) -> Result<Option<SourceDb>> {
        let found = match db.kind {
            DbKind::Instance => self
                .client
                .describe_db_instances()
                .db_instance_identifier(&db.id)
                .send()
                .await
                .map(|o| o.db_instances().first().map(instance_db))
                .map_err(|e| aws_error("DescribeDBInstances", e)),
            DbKind::Cluster => self
                .client
                .describe_db_clusters()
                .db_cluster_identifier(&db.id)
                .send()
                .await
                .map(|o| o.db_clusters().first().map(cluster_db))
                .map_err(|e| aws_error("DescribeDBClusters", e)),
        };
        Ok(absent_as_none(found, DB_NOT_FOUND)?.flatten())
    }

    async fn snapshots(&self) -> Result<Vec<Snapshot>> {
        snapshots(&self.client, Listing::default()).await
    }

    async fn snapshot(&self, kind: DbKind, id: &str) -> Result<Option<Snapshot>> {
        // "If this identifier is for an automated snapshot, the SnapshotType parameter must also
        // be specified" (DescribeDBSnapshots, DescribeDBClusterSnapshots); theirs begin `rds:`.
        let automated = id.starts_with("rds:").then(|| "automated".to_string());
        let found = match kind {
            DbKind::Instance => self
                .client
                .describe_db_snapshots()
                .db_snapshot_identifier(id)
                .set_snapshot_type(automated)
                .send()
                .await
                .map(|o| o.db_snapshots().first().map(db_snapshot))
                .map_err(|e| aws_error("DescribeDBSnapshots", e)),
            DbKind::Cluster => self
                .client
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(id)
                .set_snapshot_type(automated)
                .send()
                .await
                .map(|o| o.db_cluster_snapshots().first().map(cluster_snapshot))
                .map_err(|e| aws_error("DescribeDBClusterSnapshots", e)),
        };
        Ok(absent_as_none(found, NOT_FOUND)?.flatten())
    }
}

/// The DR region: where copies are made and, for drpilot's own copies only, pruned.
pub struct RdsDr {
    client: Client,
    /// Whose copies this adapter may delete (the copier's `DRPILOT_DEPLOYMENT`).
    deployment: String,
}

impl RdsDr {
    pub fn new(client: Client) -> Self {
        RdsDr {
            client,
            deployment: crate::model::DEFAULT_DEPLOYMENT.into(),
        }
    }

    pub fn for_deployment(mut self, deployment: &str) -> Self {
        self.deployment = deployment.into();
        self
    }
}

const ALREADY_EXISTS: &[&str] = &["DBSnapshotAlreadyExists", "DBClusterSnapshotAlreadyExistsFault"];
const NOT_FOUND: &[&str] = &["DBSnapshotNotFound", "DBClusterSnapshotNotFoundFault"];

impl DrSnapshotStore for RdsDr {
    async fn copies(&self) -> Result<Vec<Snapshot>> {
        let manual = Listing {
            snapshot_type: Some("manual"),
            ..Listing::default()
        };
        snapshots(&self.client, manual).await
    }

    async fn copies_of(&self, db: &ProtectedDb) -> Result<Vec<Snapshot>> {
        let manual = Listing {
            db: Some(db),
            snapshot_type: Some("manual"),
        };
        snapshots(&self.client, manual).await
    }

    async fn start_copy(&self, req: &CopyRequest) -> Result<CopyStarted> {
        let tags: Vec<Tag> = req
            .tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let result = match req.kind {
            DbKind::Instance => self
                .client
                .copy_db_snapshot()
                .source_db_snapshot_identifier(&req.source_arn)
                .target_db_snapshot_identifier(&req.target_id)
                .set_kms_key_id(req.kms_key_id.clone())
                .set_tags(Some(tags))
                .copy_tags(false)
                .send()
                .await
                .map(|o| o.db_snapshot().and_then(|s| s.status().map(str::to_string)))
                .map_err(|e| aws_error("CopyDBSnapshot", e)),
            DbKind::Cluster => self
                .client
                .copy_db_cluster_snapshot()
                .source_db_cluster_snapshot_identifier(&req.source_arn)
                .target_db_cluster_snapshot_identifier(&req.target_id)
                .set_kms_key_id(req.kms_key_id.clone())
                .set_tags(Some(tags))
                .copy_tags(false)
                .send()
                .await
                .map(|o| o.db_cluster_snapshot().and_then(|s| s.status().map(str::to_string)))
                .map_err(|e| aws_error("CopyDBClusterSnapshot", e)),
        };
        match result {
            Ok(status) => Ok(CopyStarted::Started {
                status: status.unwrap_or_else(|| "pending".into()),
            }),
            Err(e) if e.aws_code().is_some_and(|c| ALREADY_EXISTS.contains(&c)) => Ok(CopyStarted::AlreadyExists),
            // AWS's own count of copies in progress to this region is full (20): a later run copies it
            Err(e) if e.aws_code() == Some("SnapshotQuotaExceeded") => Ok(CopyStarted::QuotaFull(e.to_string())),
            Err(e) => Err(e),
        }
    }

    async fn delete_copy(&self, copy: &Snapshot) -> Result<()> {
        // Defence in depth: the retention decision already filtered on these tags.
        if !copy.is_copy_of(&self.deployment) {
            return Err(Error::Refused(format!(
                "refusing to delete snapshot {}: it is not tagged as a copy of drpilot deployment {}",
                copy.id, self.deployment
            )));
        }
        let result = match copy.kind {
            DbKind::Instance => self
                .client
                .delete_db_snapshot()
                .db_snapshot_identifier(&copy.id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_error("DeleteDBSnapshot", e)),
            DbKind::Cluster => self
                .client
                .delete_db_cluster_snapshot()
                .db_cluster_snapshot_identifier(&copy.id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_error("DeleteDBClusterSnapshot", e)),
        };
        match result {
            // already gone (a concurrent run pruned it): the outcome we wanted
            Err(e) if e.aws_code().is_some_and(|c| NOT_FOUND.contains(&c)) => Ok(()),
            other => other,
        }
    }

    async fn share(&self, copy: &Snapshot, account: &str) -> Result<()> {
        if !copy.is_copy_of(&self.deployment) {
            return Err(Error::Refused(format!(
                "refusing to share snapshot {}: it is not tagged as a copy of drpilot deployment {}",
                copy.id, self.deployment
            )));
        }
        match copy.kind {
            DbKind::Instance => self
                .client
                .modify_db_snapshot_attribute()
                .db_snapshot_identifier(&copy.id)
                .attribute_name("restore")
                .values_to_add(account)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_error("ModifyDBSnapshotAttribute", e)),
            DbKind::Cluster => self
                .client
                .modify_db_cluster_snapshot_attribute()
                .db_cluster_snapshot_identifier(&copy.id)
                .attribute_name("restore")
                .values_to_add(account)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_error("ModifyDBClusterSnapshotAttribute", e)),
        }
    }
}

/// Replication links, as the DR region's RDS API reports them.
pub struct RdsReplicas {
    client: Client,
}

impl RdsReplicas {
    pub fn new(client: Client) -> Self {
        RdsReplicas { client }
    }
}

/// Instance states in which a replica cannot be replicating.
const DEAD_INSTANCE_STATES: &[&str] = &[
    "failed",
    "stopped",
    "stopping",
    "storage-full",
    "inaccessible-encryption-credentials",
    "incompatible-parameters",
    "incompatible-restore",
    "restore-error",
];

/// A DB instance's link to its source, as `DescribeDBInstances` reports it.
fn replica_link(db: &aws_sdk_rds::types::DbInstance) -> crate::plan::lag::Link {
    use crate::plan::lag::Link;
    let id = db.db_instance_identifier().unwrap_or_default();
    let status = db.db_instance_status().unwrap_or_default();
    if DEAD_INSTANCE_STATES.contains(&status) {
        return Link::Broken(format!("replica instance {id} is {status}"));
    }
    if db.read_replica_source_db_instance_identifier().is_none() {
        return Link::Broken(format!("{id} is no longer a read replica (promoted?)"));
    }
    for info in db.status_infos() {
        let state = info.status().unwrap_or_default();
        if info.status_type() == Some("read replication") && matches!(state, "error" | "stopped" | "terminated") {
            let why = info.message().map(|m| format!(": {m}")).unwrap_or_default();
            return Link::Broken(format!("replication status is {state}{why}"));
        }
    }
    Link::Running
}

fn cluster_link(c: &aws_sdk_rds::types::DbCluster) -> crate::plan::lag::Link {
    use crate::plan::lag::Link;
    let status = c.status().unwrap_or_default();
    if DEAD_INSTANCE_STATES.contains(&status) {
        let id = c.db_cluster_identifier().unwrap_or_default();
        return Link::Broken(format!("secondary cluster {id} is {status}"));
    }
    Link::Running
}

impl crate::ports::ReplicaView for RdsReplicas {
    async fn replica_links(&self) -> Result<HashMap<String, crate::plan::lag::Link>> {
        let items = self
            .client
            .describe_db_instances()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| aws_error("DescribeDBInstances", e))?;
        Ok(items
            .iter()
            .filter_map(|db| Some((db.db_instance_identifier()?.to_string(), replica_link(db))))
            .collect())
    }

    async fn cluster_links(&self) -> Result<HashMap<String, crate::plan::lag::Link>> {
        let items = self
            .client
            .describe_db_clusters()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| aws_error("DescribeDBClusters", e))?;
        Ok(items
            .iter()
            .filter_map(|c| Some((c.db_cluster_identifier()?.to_string(), cluster_link(c))))
            .collect())
    }
}

/// The primary, looked at from the DR region's function: a short timeout and few retries,
/// because an unanswered call *is* the evidence.
pub struct RdsPrimaryProbe {
    client: Client,
    spacing: std::time::Duration,
    /// The region's last verdict, for the length of a probe: when, and why it was dark
    /// (`None`: it answered). In an outage, twenty databases' decisions made at once share it
    /// rather than each asking a dark region three more times; a later call asks again.
    verdict: std::sync::Mutex<Option<(std::time::Instant, Option<String>)>>,
    /// Held while probing a region with no fresh verdict: concurrent decisions wait for it.
    probing: tokio::sync::Mutex<()>,
}

impl RdsPrimaryProbe {
    pub fn new(sdk: &SdkConfig, source_region: &str) -> Self {
        let conf = aws_sdk_rds::config::Builder::from(sdk)
            .region(aws_sdk_rds::config::Region::new(source_region.to_string()))
            .timeout_config(
                aws_smithy_types::timeout::TimeoutConfig::builder()
                    .connect_timeout(std::time::Duration::from_secs(3))
                    .operation_timeout(std::time::Duration::from_secs(10))
                    .build(),
            )
            .retry_config(aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(2))
            .build();
        RdsPrimaryProbe {
            client: Client::from_conf(conf),
            spacing: PROBE_SPACING,
            verdict: Default::default(),
            probing: Default::default(),
        }
    }

    pub fn with_client(client: Client) -> Self {
        RdsPrimaryProbe {
            client,
            spacing: PROBE_SPACING,
            verdict: Default::default(),
            probing: Default::default(),
        }
    }

    /// The wait between probe rounds (tests on a mocked client need none).
    pub fn spacing(self, spacing: std::time::Duration) -> Self {
        RdsPrimaryProbe { spacing, ..self }
    }
}

/// Error codes that mean "the region's API did not answer", as opposed to "it answered no".
fn unreachable(e: &Error) -> bool {
    match e.aws_code() {
        Some(code) => {
            matches!(
                code,
                "Timeout" | "DispatchFailure" | "ServiceUnavailable" | "InternalFailure" | "InternalError"
            ) || code.starts_with("HTTP5")
        }
        None => false,
    }
}

/// How often the probe asks before it calls the region unreachable, and how long it waits
/// between rounds: one 5xx or dropped connection is not an outage (each round is itself the
/// SDK's call with its own retry).
const PROBE_ROUNDS: u32 = 3;
const PROBE_SPACING: std::time::Duration = std::time::Duration::from_secs(2);

impl RdsPrimaryProbe {
    /// The primary as its region's API describes it: (status, preferred maintenance window);
    /// both `None` when it is not listed.
    async fn describe(&self, standby: &crate::model::Standby) -> Result<(Option<String>, Option<String>)> {
        use crate::model::Standby;
        let owned =
            |status: Option<&str>, window: Option<&str>| (status.map(str::to_string), window.map(str::to_string));
        match standby {
            Standby::RdsReplica { primary, .. } => self
                .client
                .describe_db_instances()
                .db_instance_identifier(primary)
                .send()
                .await
                .map(|o| {
                    o.db_instances().first().map_or((None, None), |d| {
                        owned(d.db_instance_status(), d.preferred_maintenance_window())
                    })
                })
                .map_err(|e| aws_error("DescribeDBInstances", e)),
            Standby::AuroraGlobal { primary_cluster, .. } => self
                .client
                .describe_db_clusters()
                .db_cluster_identifier(primary_cluster)
                .send()
                .await
                .map(|o| {
                    o.db_clusters()
                        .first()
                        .map_or((None, None), |c| owned(c.status(), c.preferred_maintenance_window()))
                })
                .map_err(|e| aws_error("DescribeDBClusters", e)),
        }
    }

    async fn status(&self, standby: &crate::model::Standby) -> Result<Option<String>> {
        self.describe(standby).await.map(|(status, _)| status)
    }
}

async fn set_read_only(client: &Client, group: &str, value: &str) -> Result<()> {
    use aws_sdk_rds::types::{ApplyMethod, Parameter};
    client
        .modify_db_parameter_group()
        .db_parameter_group_name(group)
        .parameters(
            Parameter::builder()
                .parameter_name("read_only")
                .parameter_value(value)
                .apply_method(ApplyMethod::Immediate)
                .build(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws_error("ModifyDBParameterGroup", e))
}

/// Makes `id` read-only through its own (custom, not shared) DB parameter group: MySQL and
/// MariaDB only (see `PrimaryProbe::block_writes`).
async fn block_writes_on(client: &Client, id: &str) -> Result<String> {
    let group = writes_blockable(client, id).await?;
    set_read_only(client, &group, "1").await?;
    Ok(format!("read_only=1 in parameter group {group} of {id}"))
}

/// The instance's own parameter group, when blocking writes through it is safe; else why not.
async fn writes_blockable(client: &Client, id: &str) -> Result<String> {
    let out = client
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .map_err(|e| aws_error("DescribeDBInstances", e))?;
    let db = out
        .db_instances()
        .first()
        .ok_or_else(|| Error::Refused(format!("{id} is not listed")))?;
    let engine = db.engine().unwrap_or_default();
    // MySQL/MariaDB: `read_only`, a dynamic parameter applied at once; the replica's
    // ReplicaLag (Seconds_Behind_Master) then reaches 0 when it has applied everything.
    // PostgreSQL is refused: its ReplicaLag is now minus the last replayed commit, and "if
    // there are no user transactions on the source DB instance, the associated PostgreSQL
    // read replica reports a replication lag of up to five minutes" (RDS User Guide, read
    // replicas for PostgreSQL): with writes blocked it never shows the replica caught up.
    if !(engine.starts_with("mysql") || engine.starts_with("mariadb")) {
        return Err(Error::Refused(format!(
            "drpilot cannot prove a {engine} replica caught up after blocking writes (RDS reports a \
             PostgreSQL replica's lag as time since its last replayed commit): stop the application's \
             writes yourself, then fail over with planned=false"
        )));
    }
    let group = db
        .db_parameter_groups()
        .first()
        .and_then(|g| g.db_parameter_group_name())
        .unwrap_or_default()
        .to_string();
    if group.is_empty() || group.starts_with("default.") {
        return Err(Error::Refused(format!(
            "{id} uses the default parameter group {group:?}, which cannot be changed: give it a custom \
             one for a planned failover without data loss"
        )));
    }
    let all = client
        .describe_db_instances()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| aws_error("DescribeDBInstances", e))?;
    let sharing: Vec<&str> = all
        .iter()
        .filter(|i| i.db_instance_identifier() != Some(id))
        .filter(|i| {
            i.db_parameter_groups()
                .iter()
                .any(|g| g.db_parameter_group_name() == Some(group.as_str()))
        })
        .filter_map(|i| i.db_instance_identifier())
        .collect();
    if !sharing.is_empty() {
        return Err(Error::Refused(format!(
            "parameter group {group} of {id} is shared with {}: blocking writes through it would make them \
             read-only too; give {id} its own group",
            sharing.join(", ")
        )));
    }
    Ok(group)
}

impl crate::ports::PrimaryProbe for RdsPrimaryProbe {
    async fn primary(&self, standby: &crate::model::Standby) -> crate::plan::promotion::PrimaryView {
        use crate::plan::promotion::{classify, PrimaryView, StatusClass};
        let fresh = self.spacing * PROBE_ROUNDS;
        let recent = || {
            self.verdict
                .lock()
                .ok()
                .and_then(|v| v.clone())
                .filter(|(at, _)| at.elapsed() < fresh)
        };
        // A region that answered a moment ago is asked at once; otherwise one probe at a time,
        // and a dark verdict reached while this call waited is this call's verdict too.
        let asked = std::time::Instant::now();
        let _probing = match recent() {
            Some((_, None)) => None,
            _ => Some(self.probing.lock().await),
        };
        if let Some((at, Some(why))) = recent().filter(|(at, _)| *at >= asked) {
            return PrimaryView::Unreachable(format!("{why} ({}ms ago)", at.elapsed().as_millis()));
        }
        let remember = |dark: Option<String>| {
            if let Ok(mut v) = self.verdict.lock() {
                *v = Some((std::time::Instant::now(), dark));
            }
        };
        let mut round = 1;
        let status = loop {
            match self.status(standby).await {
                Err(e) if unreachable(&e) && round < PROBE_ROUNDS => {
                    tracing::info!(error = %e, round, "the primary region did not answer; asking again");
                    round += 1;
                    tokio::time::sleep(self.spacing).await;
                }
                other => break other,
            }
        };
        let status = match status {
            Ok(Some(s)) => s,
            Ok(None) => "not found".into(),
            Err(e) if e.aws_code().is_some_and(|c| DB_NOT_FOUND.contains(&c)) => "not found".into(),
            Err(e) if unreachable(&e) => {
                let why = format!(
                    "{PROBE_ROUNDS} rounds {}ms apart, none answered: {e}",
                    self.spacing.as_millis()
                );
                remember(Some(why.clone()));
                return PrimaryView::Unreachable(why);
            }
            Err(e) => return PrimaryView::Unknown(e.to_string()),
        };
        remember(None);
        match classify(&status) {
            StatusClass::Available => PrimaryView::Available,
            StatusClass::Broken => PrimaryView::Broken(status),
            StatusClass::Planned => PrimaryView::Planned(status),
        }
    }

    async fn block_writes(&self, standby: &crate::model::Standby) -> Result<String> {
        let crate::model::Standby::RdsReplica { primary, .. } = standby else {
            return Err(Error::RunFailed(
                "a planned Aurora failover is a switchover; Aurora blocks writes itself".into(),
            ));
        };
        block_writes_on(&self.client, primary).await
    }

    async fn unblock_writes(&self, standby: &crate::model::Standby) -> Result<String> {
        let crate::model::Standby::RdsReplica { primary, .. } = standby else {
            return Err(Error::RunFailed("only an RDS primary has its writes blocked".into()));
        };
        let out = self
            .client
            .describe_db_instances()
            .db_instance_identifier(primary)
            .send()
            .await
            .map_err(|e| aws_error("DescribeDBInstances", e))?;
        let group = out
            .db_instances()
            .first()
            .and_then(|d| d.db_parameter_groups().first())
            .and_then(|g| g.db_parameter_group_name())
            .unwrap_or_default()
            .to_string();
        set_read_only(&self.client, &group, "0").await?;
        Ok(format!("read_only=0 in parameter group {group} of {primary}"))
    }

    async fn maintenance(
        &self,
        standby: &crate::model::Standby,
        since: chrono::DateTime<chrono::Utc>,
    ) -> crate::plan::promotion::MaintenanceReport {
        use crate::model::Standby;
        use crate::plan::promotion::{in_maintenance_window, MaintenanceReport};
        use aws_sdk_rds::types::{Filter, SourceType};
        let mut report = MaintenanceReport::default();
        let now = chrono::Utc::now();
        // Each read on its own: one failing does not hide the others.
        let window = self.describe(standby).await.map(|(_, window)| window);
        let window = window.unwrap_or_else(|e| {
            report.unread.push(format!("the maintenance window: {e}"));
            None
        });
        let in_window = window.as_deref().and_then(|w| in_maintenance_window(w, now));
        let (id, filter, source_type) = match standby {
            Standby::RdsReplica { primary, .. } => (primary, "db-instance-id", SourceType::DbInstance),
            Standby::AuroraGlobal { primary_cluster, .. } => (primary_cluster, "db-cluster-id", SourceType::DbCluster),
        };
        match self
            .client
            .describe_pending_maintenance_actions()
            .filters(Filter::builder().name(filter).values(id).build())
            .send()
            .await
        {
            Ok(pending) => {
                let at = |t: Option<&aws_smithy_types::DateTime>| t.and_then(super::to_chrono);
                let stamp = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%SZ").to_string();
                for a in pending
                    .pending_maintenance_actions()
                    .iter()
                    .flat_map(|r| r.pending_maintenance_action_details())
                {
                    // AWS applies a due action in the next maintenance window, a forced one at
                    // its date, an "immediate" one at once.
                    let due = at(a.current_apply_date()).filter(|d| *d <= now);
                    let forced = at(a.forced_apply_date())
                        .filter(|d| *d <= now && now - *d <= crate::plan::promotion::MAINTENANCE_LOOKBACK);
                    let why = if a.opt_in_status() == Some("immediate") {
                        Some("opted in to apply immediately".to_string())
                    } else if let Some(f) = forced {
                        Some(format!("forced from {}", stamp(f)))
                    } else {
                        match (due, in_window) {
                            (Some(d), Some(true)) => Some(format!(
                                "due {}, in the maintenance window {}",
                                stamp(d),
                                window.as_deref().unwrap_or_default()
                            )),
                            (Some(d), None) => Some(format!("due {} (maintenance window unknown)", stamp(d))),
                            _ => None,
                        }
                    };
                    if let Some(why) = why {
                        report.applying.push(format!(
                            "pending maintenance {} ({}), {why}",
                            a.action().unwrap_or("?"),
                            a.description().unwrap_or("no description"),
                        ));
                    }
                }
            }
            Err(e) => report
                .unread
                .push(aws_error("DescribePendingMaintenanceActions", e).to_string()),
        }
        match self
            .client
            .describe_events()
            .source_type(source_type)
            .source_identifier(id)
            .start_time(aws_smithy_types::DateTime::from_millis(since.timestamp_millis()))
            .event_categories("maintenance")
            .send()
            .await
        {
            Ok(events) => report.events.extend(events.events().iter().filter_map(|e| {
                Some((
                    e.date().and_then(super::to_chrono)?,
                    e.message().unwrap_or("(no message)").to_string(),
                ))
            })),
            Err(e) => report.unread.push(aws_error("DescribeEvents", e).to_string()),
        }
        report
    }

    async fn stop(&self, standby: &crate::model::Standby) -> Result<String> {
        use crate::model::Standby;
        match standby {
            Standby::RdsReplica { primary, .. } => self
                .client
                .stop_db_instance()
                .db_instance_identifier(primary)
                .send()
                .await
                .map(|o| {
                    o.db_instance()
                        .and_then(|d| d.db_instance_status())
                        .unwrap_or("stopping")
                        .to_string()
                })
                .map_err(|e| aws_error("StopDBInstance", e)),
            Standby::AuroraGlobal { primary_cluster, .. } => Err(Error::RunFailed(format!(
                "{primary_cluster} is an Aurora global database member: Aurora fences it, drpilot does not stop it"
            ))),
        }
    }
}

/// The standby in the DR region, and its promotion.
pub struct RdsStandby {
    client: Client,
}

impl RdsStandby {
    pub fn new(client: Client) -> Self {
        RdsStandby { client }
    }
}

/// AWS's answers to a promotion it cannot start now: already under way (or done), or the
/// standby is busy (backing up, modifying). The caller tells which by describing it.
const PROMOTION_NOT_NOW: &[&str] = &[
    "InvalidDBInstanceState",
    "InvalidGlobalClusterStateFault",
    "InvalidDBClusterStateFault",
];

impl crate::ports::StandbyControl for RdsStandby {
    async fn state(&self, standby: &crate::model::Standby) -> Result<crate::ports::StandbyState> {
        use crate::model::Standby;
        use crate::ports::StandbyState;
        let missing = StandbyState {
            exists: false,
            status: "missing".into(),
            promoted: false,
            endpoint: None,
            tags: BTreeMap::new(),
        };
        match standby {
            Standby::RdsReplica { replica, .. } => {
                let out = self
                    .client
                    .describe_db_instances()
                    .db_instance_identifier(replica)
                    .send()
                    .await;
                let out = match out.map_err(|e| aws_error("DescribeDBInstances", e)) {
                    Err(e) if e.aws_code() == Some("DBInstanceNotFound") => return Ok(missing),
                    other => other?,
                };
                let Some(db) = out.db_instances().first() else {
                    return Ok(missing);
                };
                Ok(StandbyState {
                    exists: true,
                    status: db.db_instance_status().unwrap_or_default().to_string(),
                    promoted: db.read_replica_source_db_instance_identifier().is_none(),
                    endpoint: db.endpoint().and_then(|e| e.address()).map(str::to_string),
                    tags: tag_map(db.tag_list()),
                })
            }
            Standby::AuroraGlobal {
                global_cluster,
                secondary_cluster,
                ..
            } => {
                let out = self
                    .client
                    .describe_db_clusters()
                    .db_cluster_identifier(secondary_cluster)
                    .send()
                    .await;
                let out = match out.map_err(|e| aws_error("DescribeDBClusters", e)) {
                    Err(e) if e.aws_code() == Some("DBClusterNotFoundFault") => return Ok(missing),
                    other => other?,
                };
                let Some(cluster) = out.db_clusters().first() else {
                    return Ok(missing);
                };
                let arn = cluster.db_cluster_arn().unwrap_or_default();
                let global = self
                    .client
                    .describe_global_clusters()
                    .global_cluster_identifier(global_cluster)
                    .send()
                    .await
                    .map_err(|e| aws_error("DescribeGlobalClusters", e))?;
                let g = global.global_clusters().iter().find(|g| {
                    g.global_cluster_identifier()
                        .is_some_and(|g| g.eq_ignore_ascii_case(global_cluster))
                });
                let is_writer = g
                    .map(|g| {
                        g.global_cluster_members()
                            .iter()
                            .any(|m| m.db_cluster_arn() == Some(arn) && m.is_writer() == Some(true))
                    })
                    .unwrap_or(false);
                // The global cluster reports the switch as in progress until the new writer serves.
                let settled = g.and_then(|g| g.status()).is_none_or(|s| s == "available");
                let status = cluster.status().unwrap_or_default();
                Ok(StandbyState {
                    exists: true,
                    status: if settled {
                        status.to_string()
                    } else {
                        format!("{status} (global cluster switching)")
                    },
                    promoted: is_writer,
                    endpoint: cluster.endpoint().map(str::to_string),
                    tags: tag_map(cluster.tag_list()),
                })
            }
        }
    }

    async fn promote(&self, standby: &crate::model::Standby, planned: bool) -> Result<crate::ports::Promotion> {
        use crate::model::Standby;
        let result = match standby {
            Standby::RdsReplica { replica, .. } => self
                .client
                .promote_read_replica()
                .db_instance_identifier(replica)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_error("PromoteReadReplica", e)),
            Standby::AuroraGlobal {
                global_cluster,
                secondary_cluster,
                ..
            } => {
                let target = self
                    .client
                    .describe_db_clusters()
                    .db_cluster_identifier(secondary_cluster)
                    .send()
                    .await
                    .map_err(|e| aws_error("DescribeDBClusters", e))?
                    .db_clusters()
                    .first()
                    .and_then(|c| c.db_cluster_arn())
                    .map(str::to_string)
                    .ok_or_else(|| Error::RunFailed(format!("secondary cluster {secondary_cluster} has no ARN")))?;
                if planned {
                    // Planned: no data loss; Aurora waits for the secondary to catch up.
                    self.client
                        .switchover_global_cluster()
                        .global_cluster_identifier(global_cluster)
                        .target_db_cluster_identifier(target)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| aws_error("SwitchoverGlobalCluster", e))
                } else {
                    // Unplanned (the primary region is down): data loss is allowed; the lag gate
                    // has already bounded it.
                    self.client
                        .failover_global_cluster()
                        .global_cluster_identifier(global_cluster)
                        .target_db_cluster_identifier(target)
                        .allow_data_loss(true)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| aws_error("FailoverGlobalCluster", e))
                }
            }
        };
        use crate::ports::Promotion;
        match result {
            Ok(()) => Ok(Promotion::Accepted),
            Err(Error::Aws { code, message, .. }) if PROMOTION_NOT_NOW.contains(&code.as_str()) => {
                tracing::info!(%code, %message, "AWS cannot promote now");
                Ok(Promotion::NotNow { code, message })
            }
            Err(e) => Err(e),
        }
    }
}

/// Both RDS adapters work on instances of their region for a failback: the probe's client in
/// the primary region, the standby's in the DR region.
trait RegionClient: Sync {
    fn rds(&self) -> &Client;
}

impl RegionClient for RdsPrimaryProbe {
    fn rds(&self) -> &Client {
        &self.client
    }
}

impl RegionClient for RdsStandby {
    fn rds(&self) -> &Client {
        &self.client
    }
}

fn instance_facts(d: &aws_sdk_rds::types::DbInstance) -> crate::model::InstanceFacts {
    use crate::model::{InstanceFacts, InstanceShape};
    InstanceFacts {
        id: d.db_instance_identifier().unwrap_or_default().to_string(),
        arn: d.db_instance_arn().unwrap_or_default().to_string(),
        status: d.db_instance_status().unwrap_or_default().to_string(),
        endpoint: d.endpoint().and_then(|e| e.address()).map(str::to_string),
        replica_of: d.read_replica_source_db_instance_identifier().map(str::to_string),
        deletion_protection: d.deletion_protection().unwrap_or(false),
        resource_id: d.dbi_resource_id().unwrap_or_default().to_string(),
        engine: d.engine().unwrap_or_default().to_string(),
        parameters_applied: d
            .db_parameter_groups()
            .iter()
            .all(|g| g.parameter_apply_status().is_none_or(|s| s == "in-sync")),
        shape: InstanceShape {
            backup_retention_days: d.backup_retention_period().unwrap_or(0),
            publicly_accessible: d.publicly_accessible().unwrap_or(false),
            kms_key_id: d.kms_key_id().map(str::to_string),
            class: d.db_instance_class().unwrap_or_default().to_string(),
            subnet_group: d
                .db_subnet_group()
                .and_then(|g| g.db_subnet_group_name())
                .map(str::to_string),
            security_groups: d
                .vpc_security_groups()
                .iter()
                .filter_map(|g| g.vpc_security_group_id())
                .map(str::to_string)
                .collect(),
            parameter_group: d
                .db_parameter_groups()
                .first()
                .and_then(|g| g.db_parameter_group_name())
                .map(str::to_string),
            multi_az: d.multi_az().unwrap_or(false),
            tags: tag_map(d.tag_list()),
        },
    }
}

fn rds_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

impl<T: RegionClient> crate::ports::Instances for T {
    async fn cluster(&self, id: &str) -> Result<Option<crate::model::ClusterFacts>> {
        let out = self
            .rds()
            .describe_db_clusters()
            .db_cluster_identifier(id)
            .send()
            .await
            .map_err(|e| aws_error("DescribeDBClusters", e));
        Ok(absent_as_none(out, &["DBClusterNotFoundFault"])?.and_then(|o| {
            o.db_clusters().first().map(|c| crate::model::ClusterFacts {
                arn: c.db_cluster_arn().unwrap_or_default().to_string(),
                status: c.status().unwrap_or_default().to_string(),
                endpoint: c.endpoint().map(str::to_string),
            })
        }))
    }

    async fn global(&self, id: &str) -> Result<Option<crate::model::GlobalFacts>> {
        use aws_sdk_rds::types::GlobalClusterMemberSynchronizationStatus as Sync;
        let out = self
            .rds()
            .describe_global_clusters()
            .global_cluster_identifier(id)
            .send()
            .await
            .map_err(|e| aws_error("DescribeGlobalClusters", e));
        Ok(absent_as_none(out, &["GlobalClusterNotFoundFault"])?.and_then(|o| {
            o.global_clusters()
                .iter()
                .find(|g| {
                    g.global_cluster_identifier()
                        .is_some_and(|g| g.eq_ignore_ascii_case(id))
                })
                .map(|g| crate::model::GlobalFacts {
                    status: g.status().unwrap_or_default().to_string(),
                    switching: g.failover_state().is_some_and(|f| f.status().is_some()),
                    switching_to: g
                        .failover_state()
                        .and_then(|f| f.to_db_cluster_arn())
                        .map(str::to_string),
                    members: g
                        .global_cluster_members()
                        .iter()
                        .map(|m| crate::model::GlobalMember {
                            arn: m.db_cluster_arn().unwrap_or_default().to_string(),
                            is_writer: m.is_writer() == Some(true),
                            in_sync: !matches!(m.synchronization_status(), Some(Sync::PendingResync)),
                        })
                        .collect(),
                })
        }))
    }

    async fn switchover(&self, global: &str, target_arn: &str) -> Result<crate::ports::Promotion> {
        let out = self
            .rds()
            .switchover_global_cluster()
            .global_cluster_identifier(global)
            .target_db_cluster_identifier(target_arn)
            .send()
            .await
            .map_err(|e| aws_error("SwitchoverGlobalCluster", e));
        match out {
            Ok(_) => Ok(crate::ports::Promotion::Accepted),
            Err(Error::Aws { code, message, .. }) if PROMOTION_NOT_NOW.contains(&code.as_str()) => {
                Ok(crate::ports::Promotion::NotNow { code, message })
            }
            Err(e) => Err(e),
        }
    }

    async fn instance(&self, id: &str) -> Result<Option<crate::model::InstanceFacts>> {
        let out = self
            .rds()
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .map_err(|e| aws_error("DescribeDBInstances", e));
        Ok(absent_as_none(out, DB_NOT_FOUND)?.and_then(|o| o.db_instances().first().map(instance_facts)))
    }

    async fn retire(&self, id: &str, final_snapshot: &str) -> Result<()> {
        let out = self
            .rds()
            .delete_db_instance()
            .db_instance_identifier(id)
            .skip_final_snapshot(false)
            .final_db_snapshot_identifier(final_snapshot)
            .delete_automated_backups(false)
            .send()
            .await
            .map_err(|e| aws_error("DeleteDBInstance", e));
        match out {
            Ok(_) => Ok(()),
            Err(e) if e.aws_code().is_some_and(|c| DB_NOT_FOUND.contains(&c)) => Ok(()),
            // "already being deleted": an earlier try of this very request
            Err(e) if e.aws_code() == Some("InvalidDBInstanceState") => match self.instance(id).await? {
                Some(i) if i.status != "deleting" => Err(e),
                _ => Ok(()),
            },
            Err(e) => Err(e),
        }
    }

    async fn tag_snapshot(&self, snapshot: &str, tags: &BTreeMap<String, String>) -> Result<bool> {
        let found = self
            .rds()
            .describe_db_snapshots()
            .db_snapshot_identifier(snapshot)
            .send()
            .await
            .map_err(|e| aws_error("DescribeDBSnapshots", e));
        let arn = match absent_as_none(found, &["DBSnapshotNotFound"])? {
            Some(o) => o
                .db_snapshots()
                .first()
                .and_then(|s| s.db_snapshot_arn())
                .map(str::to_string),
            None => None,
        };
        let Some(arn) = arn else { return Ok(false) };
        self.rds()
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(rds_tags(tags)))
            .send()
            .await
            .map_err(|e| aws_error("AddTagsToResource", e))?;
        Ok(true)
    }

    async fn create_replica(&self, req: &crate::ports::ReplicaRequest) -> Result<crate::ports::RestoreStarted> {
        let s = &req.shape;
        let out = self
            .rds()
            .create_db_instance_read_replica()
            .db_instance_identifier(&req.id)
            .source_db_instance_identifier(&req.source_arn)
            .db_instance_class(&s.class)
            .set_kms_key_id(s.kms_key_id.clone())
            .set_db_subnet_group_name(s.subnet_group.clone())
            .set_vpc_security_group_ids((!s.security_groups.is_empty()).then(|| s.security_groups.clone()))
            .set_db_parameter_group_name(s.parameter_group.clone())
            .multi_az(s.multi_az)
            .publicly_accessible(s.publicly_accessible)
            .set_tags(Some(rds_tags(&s.tags)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("CreateDBInstanceReadReplica", e));
        match out {
            // the source is busy (backing up after its promotion, modifying): ask again later
            Err(e) if e.aws_code() == Some("InvalidDBInstanceState") => Err(e),
            out => super::restore::started(out),
        }
    }

    async fn promote_instance(&self, id: &str, backup_retention_days: i32) -> Result<crate::ports::Promotion> {
        use crate::ports::Promotion;
        match self
            .rds()
            .promote_read_replica()
            .db_instance_identifier(id)
            .set_backup_retention_period((backup_retention_days > 0).then_some(backup_retention_days))
            .send()
            .await
            .map_err(|e| aws_error("PromoteReadReplica", e))
        {
            Ok(_) => Ok(Promotion::Accepted),
            Err(Error::Aws { code, message, .. }) if PROMOTION_NOT_NOW.contains(&code.as_str()) => {
                Ok(Promotion::NotNow { code, message })
            }
            Err(e) => Err(e),
        }
    }

    async fn can_block_writes(&self, id: &str) -> Result<String> {
        writes_blockable(self.rds(), id).await
    }

    async fn block_writes_on(&self, id: &str) -> Result<String> {
        block_writes_on(self.rds(), id).await
    }

    async fn allow_writes_in(&self, group: &str) -> Result<String> {
        if group.is_empty() || group.starts_with("default.") {
            return Ok(format!("the default parameter group {group:?}: nothing to undo"));
        }
        set_read_only(self.rds(), group, "{TrueIfReplica}").await?;
        Ok(format!("read_only={{TrueIfReplica}} in parameter group {group}"))
    }
}
