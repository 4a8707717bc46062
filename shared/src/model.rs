//! The domain: source databases, their snapshots, and drpilot's copies of them.

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
}

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
#[derive(Debug, Clone, PartialEq)]
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

    /// A copy drpilot made, recognised by its tag, never by its name.
    pub fn is_managed_copy(&self) -> bool {
        self.tag(tags::MANAGED_BY) == Some(tags::MANAGED_BY_VALUE)
    }

    /// When the data in this copy was taken at the source (the recovery point it offers).
    pub fn source_time(&self) -> Option<DateTime<Utc>> {
        self.tag(tags::SOURCE_SNAPSHOT_TIME)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .or(self.created)
    }
}
