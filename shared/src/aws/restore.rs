//! The restore verifier's throwaway restores, on the DR region's RDS API.

use super::rds::{absent_as_none, tag_map};
use super::{aws_error, to_chrono};
use crate::error::{Error, Result};
use crate::model::{DbKind, Snapshot};
use crate::plan::verify::is_restore_test_of;
use crate::ports::{CopyFacts, RestoreLab, RestoreRequest, RestoreStarted, RestoredDb};
use aws_sdk_rds::types::{DbCluster, DbInstance, Tag};
use aws_sdk_rds::Client;

pub struct RdsRestoreLab {
    client: Client,
    /// Whose restore tests this adapter may delete (`DRPILOT_DEPLOYMENT`).
    deployment: String,
}

impl RdsRestoreLab {
    pub fn new(client: Client, deployment: &str) -> Self {
        RdsRestoreLab {
            client,
            deployment: deployment.into(),
        }
    }
}

const ALREADY_EXISTS: &[&str] = &["DBInstanceAlreadyExists", "DBClusterAlreadyExistsFault"];
const NOT_FOUND: &[&str] = &[
    "DBInstanceNotFound",
    "DBInstanceNotFoundFault",
    "DBClusterNotFoundFault",
    "DBSnapshotNotFound",
    "DBClusterSnapshotNotFoundFault",
];

/// AWS's answer to a create: started, an earlier try of it, refused for good (a key it cannot
/// use, a class it does not offer, a missing subnet group, a denied permission), or an error
/// worth another try (throttled, 5xx), which the caller retries.
pub(crate) fn started(result: Result<()>) -> Result<RestoreStarted> {
    match result {
        Ok(()) => Ok(RestoreStarted::Started),
        Err(e) if e.aws_code().is_some_and(|c| ALREADY_EXISTS.contains(&c)) => Ok(RestoreStarted::AlreadyExists),
        Err(Error::Aws {
            code,
            message,
            retryable: false,
            ..
        }) => Ok(RestoreStarted::Refused { code, message }),
        Err(e) => Err(e),
    }
}

fn tags(req: &RestoreRequest) -> Vec<Tag> {
    req.tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn instance(d: &DbInstance) -> RestoredDb {
    RestoredDb {
        kind: DbKind::Instance,
        id: d.db_instance_identifier().unwrap_or_default().to_string(),
        status: d.db_instance_status().unwrap_or_default().to_string(),
        engine: d.engine().unwrap_or_default().to_string(),
        engine_version: d.engine_version().unwrap_or_default().to_string(),
        encrypted: d.storage_encrypted().unwrap_or(false),
        kms_key_id: d.kms_key_id().map(str::to_string),
        cluster_id: d.db_cluster_identifier().map(str::to_string),
        tags: tag_map(d.tag_list()),
    }
}

fn cluster(c: &DbCluster) -> RestoredDb {
    RestoredDb {
        kind: DbKind::Cluster,
        id: c.db_cluster_identifier().unwrap_or_default().to_string(),
        status: c.status().unwrap_or_default().to_string(),
        engine: c.engine().unwrap_or_default().to_string(),
        engine_version: c.engine_version().unwrap_or_default().to_string(),
        encrypted: c.storage_encrypted().unwrap_or(false),
        kms_key_id: c.kms_key_id().map(str::to_string),
        cluster_id: None,
        tags: tag_map(c.tag_list()),
    }
}

impl RestoreLab for RdsRestoreLab {
    async fn copy_facts(&self, copy: &Snapshot) -> Result<Option<CopyFacts>> {
        let source_time = copy.source_time();
        let found = match copy.kind {
            DbKind::Instance => self
                .client
                .describe_db_snapshots()
                .db_snapshot_identifier(&copy.id)
                .send()
                .await
                .map_err(|e| aws_error("DescribeDBSnapshots", e))
                .map(|o| {
                    o.db_snapshots().first().map(|s| CopyFacts {
                        kind: DbKind::Instance,
                        id: copy.id.clone(),
                        arn: s.db_snapshot_arn().unwrap_or(&copy.arn).to_string(),
                        engine: s.engine().unwrap_or_default().to_string(),
                        engine_version: s.engine_version().unwrap_or_default().to_string(),
                        encrypted: s.encrypted().unwrap_or(false),
                        kms_key_id: s.kms_key_id().map(str::to_string),
                        source_time: source_time.or_else(|| s.snapshot_create_time().and_then(to_chrono)),
                    })
                }),
            DbKind::Cluster => self
                .client
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(&copy.id)
                .send()
                .await
                .map_err(|e| aws_error("DescribeDBClusterSnapshots", e))
                .map(|o| {
                    o.db_cluster_snapshots().first().map(|s| CopyFacts {
                        kind: DbKind::Cluster,
                        id: copy.id.clone(),
                        arn: s.db_cluster_snapshot_arn().unwrap_or(&copy.arn).to_string(),
                        engine: s.engine().unwrap_or_default().to_string(),
                        engine_version: s.engine_version().unwrap_or_default().to_string(),
                        encrypted: s.storage_encrypted().unwrap_or(false),
                        kms_key_id: s.kms_key_id().map(str::to_string),
                        source_time: source_time.or_else(|| s.snapshot_create_time().and_then(to_chrono)),
                    })
                }),
        };
        Ok(absent_as_none(found, NOT_FOUND)?.flatten())
    }

    async fn restore(&self, req: &RestoreRequest) -> Result<RestoreStarted> {
        let result = match req.kind {
            DbKind::Instance => self
                .client
                .restore_db_instance_from_db_snapshot()
                .db_instance_identifier(&req.id)
                .db_snapshot_identifier(&req.copy.id)
                .db_instance_class(&req.instance_class)
                .db_subnet_group_name(&req.subnet_group)
                .set_vpc_security_group_ids(Some(req.security_groups.clone()))
                .publicly_accessible(false)
                .multi_az(false)
                .deletion_protection(false)
                .copy_tags_to_snapshot(false)
                .auto_minor_version_upgrade(false)
                .set_tags(Some(tags(req)))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_error("RestoreDBInstanceFromDBSnapshot", e)),
            DbKind::Cluster => self
                .client
                .restore_db_cluster_from_snapshot()
                .db_cluster_identifier(&req.id)
                .snapshot_identifier(&req.copy.id)
                .engine(&req.copy.engine)
                .engine_version(&req.copy.engine_version)
                .db_subnet_group_name(&req.subnet_group)
                .set_vpc_security_group_ids(Some(req.security_groups.clone()))
                .deletion_protection(false)
                .copy_tags_to_snapshot(false)
                .set_tags(Some(tags(req)))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_error("RestoreDBClusterFromSnapshot", e)),
        };
        started(result)
    }

    async fn add_instance(&self, req: &RestoreRequest, id: &str) -> Result<RestoreStarted> {
        let result = self
            .client
            .create_db_instance()
            .db_instance_identifier(id)
            .db_cluster_identifier(&req.id)
            .engine(&req.copy.engine)
            .db_instance_class(&req.instance_class)
            .publicly_accessible(false)
            .auto_minor_version_upgrade(false)
            .set_tags(Some(tags(req)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("CreateDBInstance", e));
        started(result)
    }

    async fn restored(&self, kind: DbKind, id: &str) -> Result<Option<RestoredDb>> {
        let found = match kind {
            DbKind::Instance => self
                .client
                .describe_db_instances()
                .db_instance_identifier(id)
                .send()
                .await
                .map_err(|e| aws_error("DescribeDBInstances", e))
                .map(|o| o.db_instances().first().map(instance)),
            DbKind::Cluster => self
                .client
                .describe_db_clusters()
                .db_cluster_identifier(id)
                .send()
                .await
                .map_err(|e| aws_error("DescribeDBClusters", e))
                .map(|o| o.db_clusters().first().map(cluster)),
        };
        Ok(absent_as_none(found, NOT_FOUND)?.flatten())
    }

    async fn restore_tests(&self) -> Result<Vec<RestoredDb>> {
        let (instances, clusters) = futures::join!(
            self.client
                .describe_db_instances()
                .into_paginator()
                .items()
                .send()
                .try_collect(),
            self.client
                .describe_db_clusters()
                .into_paginator()
                .items()
                .send()
                .try_collect(),
        );
        let instances = instances.map_err(|e| aws_error("DescribeDBInstances", e))?;
        let clusters = clusters.map_err(|e| aws_error("DescribeDBClusters", e))?;
        Ok(instances
            .iter()
            .map(instance)
            .chain(clusters.iter().map(cluster))
            .filter(|d| d.tags.contains_key(crate::model::tags::RESTORE_TEST))
            .collect())
    }

    async fn delete(&self, db: &RestoredDb) -> Result<()> {
        // Defence in depth: the caller chose it by these tags already.
        if !is_restore_test_of(db, &self.deployment) {
            return Err(Error::Refused(format!(
                "refusing to delete {} {}: it is not tagged as a restore test of drpilot deployment {}",
                db.kind.as_str(),
                db.id,
                self.deployment
            )));
        }
        let result = match db.kind {
            DbKind::Instance => self
                .client
                .delete_db_instance()
                .db_instance_identifier(&db.id)
                .skip_final_snapshot(true)
                // an Aurora cluster's instance has no backups of its own (the cluster's go with it)
                .set_delete_automated_backups(db.cluster_id.is_none().then_some(true))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_error("DeleteDBInstance", e)),
            DbKind::Cluster => self
                .client
                .delete_db_cluster()
                .db_cluster_identifier(&db.id)
                .skip_final_snapshot(true)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_error("DeleteDBCluster", e)),
        };
        absent_as_none(result, NOT_FOUND).map(|_| ()) // gone already: what we wanted
    }
}
