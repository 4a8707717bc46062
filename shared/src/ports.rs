//! Small traits, one per capability drpilot needs from AWS. The AWS adapters are in `aws/`.

use crate::error::Result;
use crate::model::{Snapshot, SourceDb};
use crate::notice::Notice;
use crate::plan::copy::CopyRequest;
use std::future::Future;

/// The source region's databases and their snapshots.
pub trait SourceCatalog: Sync {
    /// Every DB instance, with its tags.
    fn db_instances(&self) -> impl Future<Output = Result<Vec<SourceDb>>> + Send;
    /// Every DB cluster, with its tags.
    fn db_clusters(&self) -> impl Future<Output = Result<Vec<SourceDb>>> + Send;
    /// The snapshots (automated and manual) of one database.
    fn snapshots_of(&self, db: &crate::model::ProtectedDb) -> impl Future<Output = Result<Vec<Snapshot>>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyStarted {
    Started {
        status: String,
    },
    /// AWS refused a duplicate: a concurrent run (or an earlier try) already started it.
    AlreadyExists,
}

/// The DR region's snapshot copies.
pub trait DrSnapshotStore: Sync {
    /// Every manual DB snapshot and DB cluster snapshot in the DR region (copies are manual).
    fn copies(&self) -> impl Future<Output = Result<Vec<Snapshot>>> + Send;
    fn start_copy(&self, req: &CopyRequest) -> impl Future<Output = Result<CopyStarted>> + Send;
    /// Deletes one of drpilot's own copies. Refuses anything without drpilot's tag.
    fn delete_copy(&self, copy: &Snapshot) -> impl Future<Output = Result<()>> + Send;
}

/// Tells the responders.
pub trait Notifier: Sync {
    fn notify(&self, notice: &Notice) -> impl Future<Output = Result<()>> + Send;
}
