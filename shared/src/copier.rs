//! The snapshot copier's run: select → look → plan (pure) → copy → prune → report → notify.

use crate::config::CopierConfig;
use crate::error::{Error, Result};
use crate::events::{self, Decode, Incoming, RdsEventDetail};
use crate::model::{DbKind, ProtectedDb};
use crate::notice::{Notice, Severity};
use crate::plan::copy::{plan_copies, CopyPolicy, Decision, SourceState};
use crate::plan::retention::prunable;
use crate::plan::select::select;
use crate::ports::{CopyStarted, DrSnapshotStore, Notifier, SourceCatalog};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

pub struct CopierPorts<S, D, N> {
    pub source: S,
    pub dr: D,
    pub notifier: N,
}

impl CopierPorts<crate::aws::rds::RdsSource, crate::aws::rds::RdsDr, crate::aws::sns::SnsNotifier> {
    /// The AWS adapters, built once at cold start.
    pub fn aws(sdk: &aws_config::SdkConfig, cfg: &CopierConfig) -> Self {
        use crate::aws::rds::{client_in, RdsDr, RdsSource};
        CopierPorts {
            source: RdsSource::new(client_in(sdk, &cfg.source_region)),
            dr: RdsDr::new(client_in(sdk, &cfg.dr_region)),
            notifier: crate::aws::sns::SnsNotifier::new(sdk, &cfg.notify_topic_arn, "drpilot.snapshot-copier"),
        }
    }
}

/// What woke the copier up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    Run(String),
    /// A well-formed event that asks for nothing (e.g. a snapshot deleted): no AWS call.
    Ignore(String),
}

/// The copier's operator command.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CopierCommand {
    // `{}`: a unit variant would let unknown fields through.
    Run {},
}

/// What wakes the copier.
#[derive(Debug, Clone, PartialEq)]
pub enum CopierEvent {
    Operator,
    Schedule,
    /// An RDS snapshot event from EventBridge: the region it came from and its detail.
    RdsSnapshot {
        region: Option<String>,
        detail: RdsEventDetail,
    },
}

const ACCEPTS: &str = r#"the copier accepts an EventBridge schedule, an RDS snapshot event, or {"action": "run"}"#;

impl Decode for CopierEvent {
    fn decode(event: Value) -> Result<Self> {
        match events::decode::<CopierCommand>(event, ACCEPTS)? {
            Incoming::Command(CopierCommand::Run {}) => Ok(CopierEvent::Operator),
            Incoming::Schedule(_) => Ok(CopierEvent::Schedule),
            Incoming::RdsSnapshot(e) => Ok(CopierEvent::RdsSnapshot {
                region: e.region,
                detail: e.detail,
            }),
            other => Err(other.unsupported(ACCEPTS)),
        }
    }
}

/// Whether an event asks for a run: a snapshot created in the source region does, a deletion
/// or a foreign region's event does not.
pub fn trigger(event: &CopierEvent, cfg: &CopierConfig) -> Trigger {
    let (region, detail) = match event {
        CopierEvent::Operator => return Trigger::Run("operator request".into()),
        CopierEvent::Schedule => return Trigger::Run("schedule".into()),
        CopierEvent::RdsSnapshot { region, detail } => (region.as_deref().unwrap_or_default(), detail),
    };
    let id = detail.event_id.as_deref().unwrap_or("RDS event");
    let snapshot = detail.source_identifier.as_deref().unwrap_or("?");
    if region != cfg.source_region {
        Trigger::Ignore(format!(
            "{id} for {snapshot} is from {region}, not the source region {}",
            cfg.source_region
        ))
    } else if detail.event_categories.iter().any(|c| c == "creation") {
        Trigger::Run(format!("{id}: snapshot {snapshot} created"))
    } else {
        Trigger::Ignore(format!(
            "{id} for {snapshot} ({}) is not a snapshot creation",
            detail.event_categories.join(", ")
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DbStatus {
    Copied,
    AlreadyPresent,
    Queued,
    Waiting,
    Failed,
    /// Not (or no longer) selected: only retention applied to its existing copies.
    NotSelected,
}

impl DbStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DbStatus::Copied => "copied",
            DbStatus::AlreadyPresent => "already-present",
            DbStatus::Queued => "queued",
            DbStatus::Waiting => "waiting",
            DbStatus::Failed => "failed",
            DbStatus::NotSelected => "not-selected",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DbReport {
    pub db: String,
    pub kind: DbKind,
    pub status: DbStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_snapshot: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dr_copy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub pruned: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prune_errors: Vec<String>,
}

impl DbReport {
    fn new(db: &ProtectedDb, status: DbStatus) -> Self {
        DbReport {
            db: db.id.clone(),
            kind: db.kind,
            status,
            source_snapshot: None,
            dr_copy: None,
            reason: None,
            pruned: vec![],
            prune_errors: vec![],
        }
    }

    pub fn failed(&self) -> bool {
        self.status == DbStatus::Failed || !self.prune_errors.is_empty()
    }

    fn failure_text(&self) -> String {
        let mut parts: Vec<String> = self.reason.iter().cloned().collect();
        parts.extend(self.prune_errors.iter().map(|e| format!("pruning: {e}")));
        parts.join("; ")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopyReport {
    pub trigger: String,
    pub started_at: String,
    pub source_region: String,
    pub dr_region: String,
    pub copies_in_flight_before: u32,
    pub copy_limit: u32,
    pub dbs: Vec<DbReport>,
    /// Failures of the run as a whole (e.g. the DR region could not be listed).
    pub errors: Vec<String>,
}

impl CopyReport {
    pub fn failures(&self) -> Vec<&DbReport> {
        self.dbs.iter().filter(|d| d.failed()).collect()
    }

    pub fn count(&self, status: DbStatus) -> usize {
        self.dbs.iter().filter(|d| d.status == status).count()
    }

    pub fn is_success(&self) -> bool {
        self.errors.is_empty() && self.failures().is_empty()
    }

    /// One line, for the Lambda error message and logs.
    pub fn summary(&self) -> String {
        let failed = self.failures();
        let mut s = format!(
            "{} copied, {} already present, {} queued, {} failed, {} pruned",
            self.count(DbStatus::Copied),
            self.count(DbStatus::AlreadyPresent),
            self.count(DbStatus::Queued),
            failed.len(),
            self.dbs.iter().map(|d| d.pruned.len()).sum::<usize>()
        );
        for e in &self.errors {
            s.push_str(&format!("; {e}"));
        }
        for d in failed {
            s.push_str(&format!("; {} {}: {}", d.kind.as_str(), d.db, d.failure_text()));
        }
        s
    }

    /// The readable table `make demo` and local runs print.
    pub fn table(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .dbs
            .iter()
            .map(|d| {
                vec![
                    d.db.clone(),
                    d.kind.as_str().into(),
                    d.status.as_str().into(),
                    d.source_snapshot.clone().unwrap_or_else(|| "-".into()),
                    d.dr_copy.clone().unwrap_or_else(|| "-".into()),
                    if d.pruned.is_empty() {
                        "-".into()
                    } else {
                        d.pruned.join(" ")
                    },
                    if d.failed() {
                        d.failure_text()
                    } else {
                        d.reason.clone().unwrap_or_default()
                    },
                ]
            })
            .collect();
        crate::table::render(
            &["DB", "KIND", "STATUS", "SOURCE SNAPSHOT", "DR COPY", "PRUNED", "NOTE"],
            &rows,
        )
    }

    /// The one notice a failed run sends. Successful runs (and queued copies) stay quiet.
    pub fn failure_notice(&self) -> Option<Notice> {
        if self.is_success() {
            return None;
        }
        let failed = self.failures();
        let subject = if failed.is_empty() {
            format!(
                "drpilot: snapshot copy run failed ({} -> {})",
                self.source_region, self.dr_region
            )
        } else {
            format!(
                "drpilot: DR snapshot copy failed for {} of {} DBs ({} -> {})",
                failed.len(),
                self.dbs.iter().filter(|d| d.status != DbStatus::NotSelected).count(),
                self.source_region,
                self.dr_region
            )
        };
        let mut body = format!(
            "drpilot snapshot-copier, run at {} ({}), {} -> {}.\n\n",
            self.started_at, self.trigger, self.source_region, self.dr_region
        );
        for e in &self.errors {
            body.push_str(&format!("RUN FAILED: {e}\n"));
        }
        for d in &failed {
            body.push_str(&format!("FAILED {} {}: {}\n", d.kind.as_str(), d.db, d.failure_text()));
        }
        body.push_str(&format!(
            "\nThe rest: {} copied, {} already present, {} queued for a later run.\n\
             What to do: fix the cause above. The next scheduled run retries by itself; to retry now, \
             invoke the copier with {{\"action\": \"run\"}}. Until then the DR region's newest copy of \
             each failed DB is older than planned.\n",
            self.count(DbStatus::Copied),
            self.count(DbStatus::AlreadyPresent),
            self.count(DbStatus::Queued)
        ));
        Some(Notice::new(Severity::Warning, subject, body).with_attribute("kind", "snapshot-copy"))
    }
}

/// One copier run. Per-database failures are recorded in the report, never raised; only
/// failing to list the DR region aborts (without it, copies and pruning cannot be decided).
pub async fn run<S, D, N>(
    ports: &CopierPorts<S, D, N>,
    cfg: &CopierConfig,
    trigger: &str,
    now: DateTime<Utc>,
) -> CopyReport
where
    S: SourceCatalog,
    D: DrSnapshotStore,
    N: Notifier,
{
    let mut report = CopyReport {
        trigger: trigger.to_string(),
        started_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        source_region: cfg.source_region.clone(),
        dr_region: cfg.dr_region.clone(),
        copies_in_flight_before: 0,
        copy_limit: cfg.max_copies_in_flight,
        dbs: vec![],
        errors: vec![],
    };

    let (instances, clusters) = (ports.source.db_instances().await, ports.source.db_clusters().await);
    let (instances, clusters) = match (instances, clusters) {
        (Ok(i), Ok(c)) => (i, c),
        (Err(e), _) | (_, Err(e)) => {
            report
                .errors
                .push(format!("cannot list databases in {}: {e}", cfg.source_region));
            return report;
        }
    };
    let dr = match ports.dr.copies().await {
        Ok(dr) => dr,
        Err(e) => {
            report
                .errors
                .push(format!("cannot list snapshots in the DR region {}: {e}", cfg.dr_region));
            return report;
        }
    };

    let mut sources = Vec::new();
    for selected in select(&cfg.selection, &instances, &clusters) {
        match selected {
            Ok(db) => match ports.source.snapshots_of(&db).await {
                Ok(snapshots) => sources.push(SourceState { db, snapshots }),
                Err(e) => report.dbs.push(DbReport {
                    reason: Some(format!("cannot list its snapshots: {e}")),
                    ..DbReport::new(&db, DbStatus::Failed)
                }),
            },
            Err((db, why)) => report.dbs.push(DbReport {
                reason: Some(why),
                ..DbReport::new(&db, DbStatus::Failed)
            }),
        }
    }

    let policy = CopyPolicy {
        source_region: &cfg.source_region,
        dr_kms_key_id: cfg.dr_kms_key_id.as_deref(),
        max_in_flight: cfg.max_copies_in_flight,
        copy_source_tags: cfg.copy_source_tags,
    };
    let plan = plan_copies(&sources, &dr, &policy);
    report.copies_in_flight_before = plan.in_flight;

    for planned in plan.dbs {
        let db = planned.db;
        let entry = match planned.decision {
            Decision::Copy(req) => {
                let base = DbReport {
                    source_snapshot: Some(req.source_id.clone()),
                    dr_copy: Some(req.target_id.clone()),
                    ..DbReport::new(&db, DbStatus::Copied)
                };
                match ports.dr.start_copy(&req).await {
                    Ok(CopyStarted::Started { status }) => {
                        info!(db = %db.id, snapshot = %req.source_id, copy = %req.target_id, %status, "copy started");
                        base
                    }
                    Ok(CopyStarted::AlreadyExists) => {
                        info!(db = %db.id, copy = %req.target_id, "copy already started by a concurrent run");
                        DbReport {
                            status: DbStatus::AlreadyPresent,
                            ..base
                        }
                    }
                    Err(e) => {
                        warn!(db = %db.id, snapshot = %req.source_id, error = %e, "copy failed");
                        DbReport {
                            status: DbStatus::Failed,
                            reason: Some(e.to_string()),
                            ..base
                        }
                    }
                }
            }
            Decision::AlreadyPresent {
                snapshot_id,
                copy_id,
                copy_status,
            } => DbReport {
                source_snapshot: Some(snapshot_id),
                dr_copy: Some(copy_id),
                reason: (copy_status != "available").then(|| format!("copy is {copy_status}")),
                ..DbReport::new(&db, DbStatus::AlreadyPresent)
            },
            Decision::Queued { snapshot_id } => DbReport {
                source_snapshot: Some(snapshot_id),
                reason: Some(format!(
                    "{} copies in flight (limit {}): next run",
                    plan.in_flight, plan.limit
                )),
                ..DbReport::new(&db, DbStatus::Queued)
            },
            Decision::Waiting { reason } => DbReport {
                reason: Some(reason),
                ..DbReport::new(&db, DbStatus::Waiting)
            },
            Decision::Failed { snapshot_id, reason } => DbReport {
                source_snapshot: snapshot_id,
                reason: Some(reason),
                ..DbReport::new(&db, DbStatus::Failed)
            },
        };
        report.dbs.push(entry);
    }

    // Retention, decided on the listing taken before this run's copies: a copy started now is
    // in progress and never counts as the newest available one.
    for ((kind, db_id), doomed) in prunable(&dr, &cfg.retention, &cfg.source_region, now) {
        let db = ProtectedDb { kind, id: db_id };
        let index = match report.dbs.iter().position(|d| d.kind == db.kind && d.db == db.id) {
            Some(i) => i,
            None => {
                report.dbs.push(DbReport::new(&db, DbStatus::NotSelected));
                report.dbs.len() - 1
            }
        };
        for copy in doomed {
            match ports.dr.delete_copy(copy).await {
                Ok(()) => {
                    info!(db = %db.id, copy = %copy.id, "pruned");
                    report.dbs[index].pruned.push(copy.id.clone());
                }
                Err(e) => report.dbs[index].prune_errors.push(format!("{}: {e}", copy.id)),
            }
        }
    }
    report.dbs.sort_by(|a, b| (a.kind, &a.db).cmp(&(b.kind, &b.db)));
    report
}

/// The function's handler: decode the event, run, notify on failure, answer.
pub async fn handle<S, D, N>(
    ports: &CopierPorts<S, D, N>,
    cfg: &CopierConfig,
    event: CopierEvent,
    now: DateTime<Utc>,
) -> Result<Value>
where
    S: SourceCatalog,
    D: DrSnapshotStore,
    N: Notifier,
{
    let trigger = match trigger(&event, cfg) {
        Trigger::Ignore(reason) => {
            info!(%reason, "event ignored");
            return Ok(serde_json::json!({ "ignored": reason }));
        }
        Trigger::Run(trigger) => trigger,
    };
    let report = run(ports, cfg, &trigger, now).await;
    info!(summary = %report.summary(), "run finished");
    if let Some(notice) = report.failure_notice() {
        if let Err(e) = ports.notifier.notify(&notice).await {
            warn!(error = %e, "could not notify responders");
            return Err(Error::RunFailed(format!(
                "{} (and the SNS notice failed: {e})",
                report.summary()
            )));
        }
        return Err(Error::RunFailed(report.summary()));
    }
    serde_json::to_value(&report).map_err(|e| Error::RunFailed(format!("cannot encode the report: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg() -> CopierConfig {
        CopierConfig::from_vars(&HashMap::from([
            ("DRPILOT_SOURCE_REGION", "us-east-1"),
            ("DRPILOT_DR_REGION", "us-west-2"),
            ("DRPILOT_SELECT_TAG", "drpilot:copy=true"),
            ("DRPILOT_NOTIFY_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:drpilot"),
        ]))
        .unwrap()
    }

    fn decide(event: Value) -> Result<Trigger> {
        CopierEvent::decode(event).map(|e| trigger(&e, &cfg()))
    }

    #[test]
    fn every_sample_event_decodes_to_the_decision_it_documents() {
        let expected = [
            ("operator-run.json", "operator request"),
            (
                "rds-automated-snapshot-created.json",
                "RDS-EVENT-0091: snapshot rds:orders-db-2026-11-25-03-04 created",
            ),
            (
                "rds-cluster-snapshot-created.json",
                "RDS-EVENT-0169: snapshot rds:ledger-2026-11-25-04-00 created",
            ),
            (
                "rds-manual-snapshot-created.json",
                "RDS-EVENT-0042: snapshot orders-db-before-migration created",
            ),
            ("schedule.json", "schedule"),
        ];
        let samples = crate::events::samples("snapshot-copier");
        assert_eq!(samples.len(), expected.len(), "every sample has its expected decision");
        for ((file, event), (name, why)) in samples.into_iter().zip(expected) {
            assert_eq!(file, name);
            assert_eq!(decide(event).unwrap(), Trigger::Run(why.into()), "{file}");
        }
    }

    fn fixture(name: &str) -> Value {
        let samples = crate::events::samples("snapshot-copier");
        samples.into_iter().find(|(f, _)| f == name).unwrap().1
    }

    #[test]
    fn non_creation_and_foreign_region_rds_events_are_ignored() {
        let mut e = fixture("rds-automated-snapshot-created.json");
        e["detail"]["EventCategories"] = serde_json::json!(["deletion"]);
        assert!(matches!(decide(e), Ok(Trigger::Ignore(_))));
        let mut e = fixture("rds-automated-snapshot-created.json");
        e["region"] = "us-west-2".into();
        assert!(matches!(decide(e), Ok(Trigger::Ignore(r)) if r.contains("not the source region")));
    }

    #[test]
    fn malformed_events_are_bad_events() {
        for e in [
            serde_json::json!("run"),
            serde_json::json!([]),
            serde_json::json!({}),
            serde_json::json!({"action": "delete-everything"}),
            serde_json::json!({"action": "run", "dry": true}),
            serde_json::json!({"source": "aws.rds", "detail-type": "RDS DB Snapshot Event"}),
            serde_json::json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification"}),
        ] {
            assert!(matches!(decide(e.clone()), Err(Error::BadEvent(_))), "{e}");
        }
    }
}
