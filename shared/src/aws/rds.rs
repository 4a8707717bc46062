//! RDS: the source region's databases and snapshots, and the DR region's copies.

use super::{aws_error, to_chrono};
use crate::error::{Error, Result};
use crate::model::{DbKind, ProtectedDb, Snapshot, SourceDb};
use crate::plan::copy::CopyRequest;
use crate::ports::{CopyStarted, DrSnapshotStore, SourceCatalog};
use aws_config::SdkConfig;
use aws_sdk_rds::types::{DbClusterSnapshot, DbSnapshot, Tag};
use aws_sdk_rds::Client;
use std::collections::BTreeMap;

/// An RDS client pinned to `region`, otherwise configured as the SDK's defaults say.
pub fn client_in(sdk: &SdkConfig, region: &str) -> Client {
    let conf = aws_sdk_rds::config::Builder::from(sdk)
        .region(aws_sdk_rds::config::Region::new(region.to_string()))
        .build();
    Client::from_conf(conf)
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
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
            .and_then(crate::config::arn_region)
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
            .map(|i| SourceDb {
                kind: DbKind::Instance,
                id: i.db_instance_identifier().unwrap_or_default().to_string(),
                arn: i.db_instance_arn().unwrap_or_default().to_string(),
                engine: i.engine().unwrap_or_default().to_string(),
                tags: tag_map(i.tag_list()),
                cluster_id: i.db_cluster_identifier().map(str::to_string),
            })
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
            .map(|c| SourceDb {
                kind: DbKind::Cluster,
                id: c.db_cluster_identifier().unwrap_or_default().to_string(),
                arn: c.db_cluster_arn().unwrap_or_default().to_string(),
                engine: c.engine().unwrap_or_default().to_string(),
                tags: tag_map(c.tag_list()),
                cluster_id: None,
            })
            .collect())
    }

    async fn snapshots_of(&self, db: &ProtectedDb) -> Result<Vec<Snapshot>> {
        match db.kind {
            DbKind::Instance => Ok(self
                .client
                .describe_db_snapshots()
                .db_instance_identifier(&db.id)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| aws_error("DescribeDBSnapshots", e))?
                .iter()
                .map(db_snapshot)
                .collect()),
            DbKind::Cluster => Ok(self
                .client
                .describe_db_cluster_snapshots()
                .db_cluster_identifier(&db.id)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| aws_error("DescribeDBClusterSnapshots", e))?
                .iter()
                .map(cluster_snapshot)
                .collect()),
        }
    }
}

/// The DR region: where copies are made and, for drpilot's own copies only, pruned.
pub struct RdsDr {
    client: Client,
}

impl RdsDr {
    pub fn new(client: Client) -> Self {
        RdsDr { client }
    }
}

const ALREADY_EXISTS: &[&str] = &["DBSnapshotAlreadyExists", "DBClusterSnapshotAlreadyExistsFault"];
const NOT_FOUND: &[&str] = &["DBSnapshotNotFound", "DBClusterSnapshotNotFoundFault"];

impl DrSnapshotStore for RdsDr {
    async fn copies(&self) -> Result<Vec<Snapshot>> {
        let instances = self
            .client
            .describe_db_snapshots()
            .snapshot_type("manual")
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| aws_error("DescribeDBSnapshots", e))?;
        let clusters = self
            .client
            .describe_db_cluster_snapshots()
            .snapshot_type("manual")
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| aws_error("DescribeDBClusterSnapshots", e))?;
        Ok(instances
            .iter()
            .map(db_snapshot)
            .chain(clusters.iter().map(cluster_snapshot))
            .collect())
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
            Err(e) => Err(e),
        }
    }

    async fn delete_copy(&self, copy: &Snapshot) -> Result<()> {
        // Defence in depth: the retention decision already filtered on this tag.
        if !copy.is_managed_copy() {
            return Err(Error::Refused(format!(
                "refusing to delete snapshot {}: it is not tagged as a drpilot copy",
                copy.id
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

impl crate::ports::ReplicaView for RdsReplicas {
    async fn replica_link(&self, replica: &str) -> Result<crate::plan::lag::Link> {
        use crate::plan::lag::Link;
        let out = self
            .client
            .describe_db_instances()
            .db_instance_identifier(replica)
            .send()
            .await
            .map_err(|e| aws_error("DescribeDBInstances", e))?;
        let Some(db) = out.db_instances().first() else {
            return Ok(Link::Broken(format!("replica {replica} is not listed")));
        };
        let status = db.db_instance_status().unwrap_or_default();
        if DEAD_INSTANCE_STATES.contains(&status) {
            return Ok(Link::Broken(format!("replica instance {replica} is {status}")));
        }
        if db.read_replica_source_db_instance_identifier().is_none() {
            return Ok(Link::Broken(format!(
                "{replica} is no longer a read replica (promoted?)"
            )));
        }
        for info in db.status_infos() {
            let state = info.status().unwrap_or_default();
            if info.status_type() == Some("read replication") && matches!(state, "error" | "stopped" | "terminated") {
                let why = info.message().map(|m| format!(": {m}")).unwrap_or_default();
                return Ok(Link::Broken(format!("replication status is {state}{why}")));
            }
        }
        Ok(Link::Running)
    }

    async fn secondary_cluster_link(&self, cluster: &str) -> Result<crate::plan::lag::Link> {
        use crate::plan::lag::Link;
        let out = self
            .client
            .describe_db_clusters()
            .db_cluster_identifier(cluster)
            .send()
            .await
            .map_err(|e| aws_error("DescribeDBClusters", e))?;
        let Some(c) = out.db_clusters().first() else {
            return Ok(Link::Broken(format!("cluster {cluster} is not listed")));
        };
        let status = c.status().unwrap_or_default();
        if DEAD_INSTANCE_STATES.contains(&status) {
            return Ok(Link::Broken(format!("secondary cluster {cluster} is {status}")));
        }
        Ok(Link::Running)
    }
}
