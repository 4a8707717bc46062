//! The snapshot copier's run: select → look → plan (pure) → copy → prune → report → notify.

use crate::accounts::{self, Access, AccountOutcome, AccountSpec, Accounts, Outcome};
use crate::config::{CopierConfig, AWS_COPIES_IN_FLIGHT_QUOTA};
use crate::error::{Error, Result};
use crate::events::{self, Decode, Incoming, RdsEventDetail};
use crate::model::{DbKind, ProtectedDb};
use crate::notice::{Notice, Severity};
use crate::plan::copy::{copies_in_flight, plan_copies, CopyPolicy, Decision, PlannedDb, SourceState};
use crate::plan::retention::prunable;
use crate::plan::select::{select, Selected};
use crate::ports::{CopyStarted, Documents, DrSnapshotStore, Notifier, SourceCatalog};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use tracing::{info, warn};

pub struct CopierPorts<S, D, N> {
    pub source: S,
    pub dr: D,
    pub notifier: N,
    /// Where this account's ledger of the DR region is kept (`None`: no state bucket).
    pub ledger: Option<Ledger>,
    /// The isolated backup account's copies (`DRPILOT_VAULT`; the function's own account's
    /// databases only).
    pub vault: Option<Vault<D>>,
    /// Where the hub publishes each run's counts (the dashboard's copier graph); `None` in a
    /// member account's ports, and where no metrics are wanted.
    pub metrics: Option<RunMetrics>,
}

/// The copier's own metrics, in the DR region, no dimension: one datapoint of each per run.
pub mod metric {
    /// Copies started into the DR region.
    pub const STARTED: &str = "SnapshotCopiesStarted";
    /// Databases whose copy waits for a slot: AWS's cross-region copies in flight are at the limit.
    pub const QUEUED: &str = "SnapshotCopiesQueued";
    /// Databases the run failed for, and run-wide failures (an account unreachable, the DR
    /// region not listed, a copy into the isolated backup account).
    pub const FAILED: &str = "SnapshotCopiesFailed";
    /// Copies into the DR region in progress after a reconciliation (those of the run included).
    pub const IN_FLIGHT: &str = "SnapshotCopiesInFlight";
}

/// A run's counts as metrics, summed over the accounts it ran in (a snapshot event's run lists
/// only its database's copies: no in-flight count).
pub fn run_metrics(reports: &[Result<&CopyReport, ()>], at: DateTime<Utc>) -> Vec<crate::ports::MetricValue> {
    use crate::ports::{MetricUnit, MetricValue};
    let value = |name: &str, value: usize| MetricValue {
        name: name.into(),
        dimensions: vec![],
        value: value as f64,
        unit: MetricUnit::Count,
        at,
    };
    let ok: Vec<&CopyReport> = reports.iter().filter_map(|r| r.ok()).collect();
    let sum = |f: &dyn Fn(&CopyReport) -> usize| ok.iter().map(|r| f(r)).sum::<usize>();
    let vault_errors = |r: &CopyReport| r.vault.as_ref().map_or(0, |v| v.errors.len());
    let failed =
        sum(&|r| r.failures().len() + r.errors.len() + vault_errors(r)) + reports.iter().filter(|r| r.is_err()).count();
    let mut out = vec![
        value(metric::STARTED, sum(&|r| r.count(DbStatus::Copied))),
        value(metric::QUEUED, sum(&|r| r.count(DbStatus::Queued))),
        value(metric::FAILED, failed),
    ];
    if !ok.is_empty() && ok.iter().all(|r| r.copies_in_flight_before.is_some()) {
        let in_flight = sum(&|r| r.copies_in_flight_before.unwrap_or(0) as usize + r.count(DbStatus::Copied));
        out.push(value(metric::IN_FLIGHT, in_flight));
    }
    out
}

/// The hub's CloudWatch, where `run_metrics` go.
pub struct RunMetrics {
    cloudwatch: crate::aws::cloudwatch::CloudWatchMetrics,
    namespace: String,
}

impl RunMetrics {
    async fn publish(&self, reports: &[Result<&CopyReport, ()>], at: DateTime<Utc>) {
        use crate::ports::Metrics;
        if let Err(e) = self
            .cloudwatch
            .publish(&self.namespace, &run_metrics(reports, at))
            .await
        {
            // the dashboard's graph misses a point; the copies are what matter
            warn!(error = %e, "could not publish the run's metrics");
        }
    }
}

/// The isolated backup account: its DR region's snapshots, through a role there that may copy
/// but not delete, and the key it owns that its copies are re-encrypted with.
pub struct Vault<D> {
    pub store: D,
    pub account: String,
    pub kms_key_id: String,
}

/// What a reconciliation's listing of the DR region found (this deployment's copies), kept
/// when that run had nothing to do there (no copy to start, nothing to prune) and every copy
/// was available. The DR region's listing is a run's largest (a call per 100 snapshots). The
/// next scheduled runs, within `LEDGER_TTL`, plan on the ledger instead: if they too find
/// nothing to do, the DR region goes unlisted; if they find anything to do (a new snapshot to
/// copy, a copy to prune), they list the DR region and plan again on that. So no copy is ever
/// started or deleted on a ledger's word. A run that starts or deletes a copy drops the ledger;
/// what one can still miss, until it expires, is a change by hand or by another tool (a copy
/// deleted, retagged). An operator's `{"action": "run"}` lists, whatever the ledger.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrLedger {
    /// When the listing was taken.
    pub listed: DateTime<Utc>,
    /// This deployment's copies in the DR region.
    pub copies: Vec<crate::model::Snapshot>,
}

/// How long a ledger stands in for the DR region's listing: with the hourly schedule, the DR
/// region is listed about one run in three.
pub const LEDGER_TTL: Duration = Duration::hours(3);

/// The trigger of an operator's `{"action": "run"}`: it never plans on a ledger.
const OPERATOR_RUN: &str = "operator request";

impl DrLedger {
    /// What a run that listed the DR region keeps of it: this deployment's copies, if every
    /// one is available (a copy being made, failed or being deleted is for the next runs to see).
    pub fn of(dr: &[crate::model::Snapshot], deployment: &str, listed: DateTime<Utc>) -> Option<Self> {
        let copies: Vec<crate::model::Snapshot> = dr.iter().filter(|c| c.is_copy_of(deployment)).cloned().collect();
        copies
            .iter()
            .all(crate::model::Snapshot::is_available)
            .then_some(DrLedger { listed, copies })
    }

    /// Still a picture of the DR region a run may plan on.
    pub fn usable(&self, now: DateTime<Utc>) -> bool {
        self.listed <= now
            && now - self.listed < LEDGER_TTL
            && self.copies.iter().all(crate::model::Snapshot::is_available)
    }
}

/// One account's ledger, in the deployment's state bucket:
/// `copier/<deployment>/<account>/<source region>-<DR region>.json`.
pub struct Ledger {
    docs: crate::aws::s3::S3State,
    key: String,
}

impl Ledger {
    fn for_account(hub: &aws_config::SdkConfig, cfg: &CopierConfig, account: &str) -> Option<Self> {
        let state = cfg.state.as_ref()?;
        let s3 = crate::aws::s3::client_in(hub, &cfg.dr_region, cfg.s3_force_path_style);
        Some(Ledger {
            docs: crate::aws::s3::S3State::new(s3, &state.bucket),
            key: state.key(&format!(
                "copier/{}/{account}/{}-{}.json",
                cfg.deployment, cfg.source_region, cfg.dr_region
            )),
        })
    }

    /// The ledger, if there is one this run may decide on (one it cannot read is none).
    async fn usable(&self, now: DateTime<Utc>) -> Option<DrLedger> {
        let read = self.docs.get(&self.key).await.and_then(|body| {
            body.map(|b| serde_json::from_slice::<DrLedger>(&b).map_err(|e| Error::RunFailed(e.to_string())))
                .transpose()
        });
        match read {
            Ok(ledger) => ledger.filter(|l| l.usable(now)),
            Err(e) => {
                warn!(key = %self.key, error = %e, "the DR region's ledger cannot be read; listing");
                None
            }
        }
    }

    async fn keep(&self, ledger: &DrLedger) {
        let body = serde_json::to_vec(ledger).unwrap_or_default();
        if let Err(e) = self.docs.put(&self.key, body).await {
            // the next run lists the DR region: nothing is lost but a listing
            warn!(key = %self.key, error = %e, "could not keep the DR region's ledger");
        }
    }

    /// After a run changed the DR region: the ledger no longer pictures it.
    async fn forget(&self) {
        if let Err(e) = self.docs.delete(&self.key).await {
            // a ledger that wants no copy still hides the change until it expires
            warn!(key = %self.key, error = %e, "could not drop the DR region's ledger; it expires within three hours");
        }
    }
}

type AwsCopierPorts = CopierPorts<crate::aws::rds::RdsSource, crate::aws::rds::RdsDr, crate::aws::sns::SnsNotifier>;

impl AwsCopierPorts {
    /// The AWS adapters, built once at cold start.
    pub fn aws(sdk: &aws_config::SdkConfig, cfg: &CopierConfig) -> Self {
        Self::aws_in(sdk, sdk, cfg, None)
    }

    /// The adapters of one account (`account`: the function's own or a member's role, and
    /// `member` its entry), with notices and the ledger in the hub.
    pub fn aws_in(
        account: &aws_config::SdkConfig,
        hub: &aws_config::SdkConfig,
        cfg: &CopierConfig,
        member: Option<&AccountSpec>,
    ) -> Self {
        use crate::aws::rds::{fleet_client_in, RdsDr, RdsSource};
        CopierPorts {
            source: RdsSource::new(fleet_client_in(account, &cfg.source_region)),
            dr: RdsDr::new(fleet_client_in(account, &cfg.dr_region)).for_deployment(&cfg.deployment),
            notifier: crate::aws::sns::SnsNotifier::new(hub, &cfg.notify_topic_arn, "drpilot.snapshot-copier"),
            ledger: Ledger::for_account(hub, cfg, member.map_or("own", |m| m.id.as_str())),
            metrics: member.is_none().then(|| RunMetrics {
                cloudwatch: crate::aws::cloudwatch::CloudWatchMetrics::new(hub, &cfg.dr_region),
                namespace: cfg.namespace.clone(),
            }),
            vault: match (member, &cfg.vault) {
                (None, Some(spec)) => {
                    let role = crate::accounts::Role::new(hub, spec, "drpilot-snapshot-copier");
                    Some(Vault {
                        store: RdsDr::new(fleet_client_in(&role.sdk(hub), &cfg.dr_region))
                            .for_deployment(&cfg.deployment),
                        account: spec.id.clone(),
                        kms_key_id: spec.dr_kms_key_id.clone().unwrap_or_default(),
                    })
                }
                _ => None,
            },
        }
    }

    /// The adapters of the function's own account and of each account in `DRPILOT_ACCOUNTS`.
    pub fn accounts(sdk: &aws_config::SdkConfig, cfg: &CopierConfig) -> Accounts<Self> {
        Accounts::build(sdk, &cfg.accounts, "drpilot-snapshot-copier", |account, hub, member| {
            Self::aws_in(account, hub, cfg, member)
        })
    }
}

/// What woke the copier up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A run over `Scope`, and why.
    Run(String, Scope),
    /// A well-formed event that asks for nothing (e.g. a snapshot deleted): no AWS call.
    Ignore(String),
}

/// What a run looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Reconciliation: every database, every snapshot, every copy (a few calls per 100).
    Fleet,
    /// One new snapshot: its database and that database's copies (a few calls).
    Snapshot { kind: DbKind, id: String },
}

impl Trigger {
    /// The run it asks for, or the answer to an event that asks for none (logged).
    fn into_run(self) -> std::result::Result<(String, Scope), Value> {
        match self {
            Trigger::Run(trigger, scope) => Ok((trigger, scope)),
            Trigger::Ignore(reason) => {
                info!(%reason, "event ignored");
                Err(serde_json::json!({ "ignored": reason }))
            }
        }
    }
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
        /// The account the snapshot is in (a member's events reach the hub's bus).
        account: Option<String>,
        kind: DbKind,
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
                account: e.account,
                kind: match e.detail_type.as_str() {
                    "RDS DB Cluster Snapshot Event" => DbKind::Cluster,
                    _ => DbKind::Instance,
                },
                detail: e.detail,
            }),
            other => Err(other.unsupported(ACCEPTS)),
        }
    }
}

/// Whether an event asks for a run, and over what: a snapshot created in the source region asks
/// for a run over that snapshot alone, a deletion or a foreign region's event for nothing; a
/// schedule or an operator for a reconciliation of the whole fleet.
///
/// A snapshot's run cannot count the copies in progress into the DR region without listing them
/// all; it leaves the count to AWS, which refuses a copy over its quota of 20 (queued for the
/// next reconciliation). With `DRPILOT_MAX_COPIES_IN_FLIGHT` below that quota, only a count of
/// its own keeps to the limit, so each snapshot event runs a reconciliation instead.
pub fn trigger(event: &CopierEvent, cfg: &CopierConfig) -> Trigger {
    let (region, kind, detail) = match event {
        CopierEvent::Operator => return Trigger::Run(OPERATOR_RUN.into(), Scope::Fleet),
        CopierEvent::Schedule => return Trigger::Run("schedule".into(), Scope::Fleet),
        CopierEvent::RdsSnapshot {
            region, kind, detail, ..
        } => (region.as_deref().unwrap_or_default(), *kind, detail),
    };
    let id = detail.event_id.as_deref().unwrap_or("RDS event");
    let snapshot = detail.source_identifier.as_deref().unwrap_or("?");
    if region != cfg.source_region {
        Trigger::Ignore(format!(
            "{id} for {snapshot} is from {region}, not the source region {}",
            cfg.source_region
        ))
    } else if detail.event_categories.iter().any(|c| c == "creation") {
        let scope = match &detail.source_identifier {
            Some(snapshot) if cfg.max_copies_in_flight >= AWS_COPIES_IN_FLIGHT_QUOTA => Scope::Snapshot {
                kind,
                id: snapshot.clone(),
            },
            _ => Scope::Fleet,
        };
        Trigger::Run(format!("{id}: snapshot {snapshot} created"), scope)
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

    fn because(self, reason: impl Into<String>) -> Self {
        DbReport {
            reason: Some(reason.into()),
            ..self
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
    /// Copies into the DR region in progress when the run began; `None` for a snapshot
    /// event's run, which lists only its own database's copies.
    pub copies_in_flight_before: Option<u32>,
    pub copy_limit: u32,
    pub dbs: Vec<DbReport>,
    /// Failures of the run as a whole (e.g. the DR region could not be listed).
    pub errors: Vec<String>,
    /// The run decided on the DR region's ledger of this time, without listing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dr_ledger: Option<String>,
    /// The isolated backup account's copies (`DRPILOT_VAULT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultReport>,
}

/// What a reconciliation did in the isolated backup account: the newest DR copy of each
/// database copied there (re-encrypted with its key), or found there already.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VaultReport {
    pub account: String,
    /// Copies started there by this run.
    pub copied: Vec<String>,
    /// Newest copies it holds already (available).
    pub held: Vec<String>,
    /// Copies there still being made.
    pub in_progress: Vec<String>,
    /// Not copied yet: AWS's copies in progress there are at its quota (a later run copies).
    #[serde(default)]
    pub queued: Vec<String>,
    /// Newest copies not copied: the backup account holds one of that database taken less
    /// than `DRPILOT_VAULT_EVERY_HOURS` before.
    #[serde(default)]
    pub recent_enough: Vec<String>,
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

/// How many copy starts or deletions a run has waiting on AWS at once.
const CONCURRENT_CALLS: usize = 8;

/// What a run found: the protected databases with their snapshots, the DR region's snapshots
/// it needs, and the databases it could not look at (each with why).
#[derive(Default)]
struct Found {
    sources: Vec<SourceState>,
    dr: Vec<crate::model::Snapshot>,
    failed: Vec<DbReport>,
    /// `dr` is the ledger of this time, not a listing.
    ledger_of: Option<DateTime<Utc>>,
}

impl Found {
    fn new(selected: Vec<Selected>, mut snapshots_of: impl FnMut(&ProtectedDb) -> Vec<crate::model::Snapshot>) -> Self {
        let mut found = Found::default();
        for selected in selected {
            match selected {
                Ok(db) => found.sources.push(SourceState {
                    snapshots: snapshots_of(&db),
                    db,
                }),
                Err((db, why)) => found.failed.push(DbReport::new(&db, DbStatus::Failed).because(why)),
            }
        }
        found
    }
}

/// Reconciliation: every database and snapshot in the source region and every copy in the DR
/// region, all four listings at once, each a call per page of 100; the DR region's from its
/// ledger instead, when there is a usable one.
async fn whole_fleet<S: SourceCatalog, D: DrSnapshotStore>(
    source: &S,
    dr: &D,
    ledger: Option<&Ledger>,
    cfg: &CopierConfig,
    now: DateTime<Utc>,
) -> Result<Found, String> {
    let dr_side = async {
        if let Some(kept) = match ledger {
            Some(l) => l.usable(now).await,
            None => None,
        } {
            return Ok((kept.copies, Some(kept.listed)));
        }
        dr.copies().await.map(|c| (c, None))
    };
    let (instances, clusters, snapshots, copies) =
        futures::join!(source.db_instances(), source.db_clusters(), source.snapshots(), dr_side);
    let listed = |e: Error| format!("cannot list databases in {}: {e}", cfg.source_region);
    let (instances, clusters) = (instances.map_err(listed)?, clusters.map_err(listed)?);
    let snapshots = snapshots.map_err(|e| format!("cannot list snapshots in {}: {e}", cfg.source_region))?;
    let (copies, ledger_of) =
        copies.map_err(|e| format!("cannot list snapshots in the DR region {}: {e}", cfg.dr_region))?;
    let mut by_db: HashMap<(DbKind, String), Vec<crate::model::Snapshot>> = HashMap::new();
    for s in snapshots {
        by_db.entry((s.kind, s.db_id.clone())).or_default().push(s);
    }
    let selected = select(&cfg.selection, &instances, &clusters);
    let mut found = Found::new(selected, |db| {
        by_db.remove(&(db.kind, db.id.clone())).unwrap_or_default()
    });
    found.dr = copies;
    found.ledger_of = ledger_of;
    Ok(found)
}

/// One new snapshot: it, its database, and that database's snapshots in the DR region.
async fn one_snapshot<S: SourceCatalog, D: DrSnapshotStore>(
    source: &S,
    dr: &D,
    cfg: &CopierConfig,
    kind: DbKind,
    id: &str,
) -> Result<Found, String> {
    let Some(snapshot) = source
        .snapshot(kind, id)
        .await
        .map_err(|e| format!("cannot read snapshot {id} in {}: {e}", cfg.source_region))?
    else {
        info!(snapshot = id, "the snapshot is gone: nothing to copy");
        return Ok(Found::default());
    };
    if !snapshot.is_available() {
        // Being created (its "created" event follows), failed or being deleted: nothing to copy.
        info!(snapshot = id, status = %snapshot.status, "the snapshot is not available: nothing to copy");
        return Ok(Found::default());
    }
    let db = ProtectedDb {
        kind,
        id: snapshot.db_id.clone(),
    };
    let (listed, copies) = futures::join!(source.db(&db), dr.copies_of(&db));
    let listed =
        listed.map_err(|e| format!("cannot read {} {} in {}: {e}", kind.as_str(), db.id, cfg.source_region))?;
    let copies = copies.map_err(|e| format!("cannot list snapshots in the DR region {}: {e}", cfg.dr_region))?;
    let (instances, clusters): (Vec<_>, Vec<_>) = listed.into_iter().partition(|d| d.kind == DbKind::Instance);
    // Selection as a reconciliation would make it, for this database alone.
    let selected = select(&cfg.selection, &instances, &clusters)
        .into_iter()
        .filter(|s| matches!(s, Ok(d) | Err((d, _)) if *d == db))
        .collect();
    let mut snapshot = Some(snapshot);
    let mut found = Found::new(selected, |_| snapshot.take().into_iter().collect());
    found.dr = copies;
    Ok(found)
}

/// One copier run. Per-database failures are recorded in the report, never raised; only
/// failing to list (the source's databases and snapshots, the DR region's copies) aborts:
/// without them, copies and pruning cannot be decided.
pub async fn run<S, D, N>(
    ports: &CopierPorts<S, D, N>,
    cfg: &CopierConfig,
    trigger: &str,
    scope: &Scope,
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
        copies_in_flight_before: None,
        copy_limit: cfg.max_copies_in_flight,
        dbs: vec![],
        errors: vec![],
        dr_ledger: None,
        vault: None,
    };
    let found = match scope {
        Scope::Fleet => {
            let ledger = ports.ledger.as_ref().filter(|_| trigger != OPERATOR_RUN);
            whole_fleet(&ports.source, &ports.dr, ledger, cfg, now).await
        }
        Scope::Snapshot { kind, id } => one_snapshot(&ports.source, &ports.dr, cfg, *kind, id).await,
    };
    let Found {
        sources,
        mut dr,
        failed,
        mut ledger_of,
    } = match found {
        Ok(found) => found,
        Err(e) => {
            report.errors.push(e);
            return report;
        }
    };
    report.dbs = failed;

    let policy = CopyPolicy {
        source_region: &cfg.source_region,
        deployment: &cfg.deployment,
        dr_kms_key_id: cfg.dr_kms_key_id.as_deref(),
        max_in_flight: cfg.max_copies_in_flight,
        copy_source_tags: cfg.copy_source_tags,
    };
    let mut plan = plan_copies(&sources, &dr, &policy);
    let nothing_to_prune = |dr: &[crate::model::Snapshot]| {
        prunable(dr, &cfg.retention, &cfg.source_region, &cfg.deployment, now).is_empty()
    };
    if ledger_of.is_some() && !(plan.settled() && nothing_to_prune(&dr)) {
        // The ledger pictures a DR region with nothing to do; now there is something: decide
        // on the region itself.
        match ports.dr.copies().await {
            Ok(listed) => {
                dr = listed;
                ledger_of = None;
                plan = plan_copies(&sources, &dr, &policy);
            }
            Err(e) => {
                report
                    .errors
                    .push(format!("cannot list snapshots in the DR region {}: {e}", cfg.dr_region));
                return report;
            }
        }
    }
    report.dr_ledger = ledger_of.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
    // A listing that leaves nothing to do is worth keeping.
    // (a snapshot event lists one database's copies; a run on the ledger, none)
    let listed_region = matches!(scope, Scope::Fleet) && ledger_of.is_none();
    let keep = (listed_region && plan.settled() && nothing_to_prune(&dr))
        .then(|| DrLedger::of(&dr, &cfg.deployment, now))
        .flatten();
    // (a ledger holds drpilot's copies only: it cannot count anyone else's in progress)
    report.copies_in_flight_before = listed_region.then_some(plan.in_flight);
    let queued = format!("{} copies in flight (limit {}): next run", plan.in_flight, plan.limit);
    let mut outcomes = futures::stream::iter(plan.dbs)
        .map(|planned| act(&ports.dr, planned, &queued))
        .buffer_unordered(CONCURRENT_CALLS)
        .collect::<Vec<_>>()
        .await;
    // AWS answers SnapshotQuotaExceeded both for its 20 copies in progress per region (wait) and
    // for a DR region whose snapshot count quota is full (nothing will change by itself): only
    // a count of the copies in progress tells which.
    if outcomes.iter().any(|(_, refused)| refused.is_some()) {
        let in_flight = ports.dr.copies().await.map(|c| copies_in_flight(&c));
        if !matches!(in_flight, Ok(n) if n >= AWS_COPIES_IN_FLIGHT_QUOTA) {
            let count = match in_flight {
                Ok(n) => format!("with {n} copies in progress, fewer than the {AWS_COPIES_IN_FLIGHT_QUOTA} AWS allows"),
                Err(e) => format!("and the copies in progress could not be counted ({e})"),
            };
            for (d, refused) in &mut outcomes {
                if let Some(why) = refused.take() {
                    d.status = DbStatus::Failed;
                    d.reason = Some(format!(
                        "AWS refused the copy {count}: the DR region's snapshot quota may be full ({why})"
                    ));
                }
            }
        }
    }
    report.dbs.extend(outcomes.into_iter().map(|(d, _)| d));

    // Retention, decided on the listing taken before this run's copies: a copy started now is
    // in progress and never counts as the newest available one.
    let doomed: Vec<(ProtectedDb, crate::model::Snapshot)> =
        prunable(&dr, &cfg.retention, &cfg.source_region, &cfg.deployment, now)
            .into_iter()
            .flat_map(|((kind, id), copies)| {
                copies
                    .into_iter()
                    .map(move |c| (ProtectedDb { kind, id: id.clone() }, c.clone()))
            })
            .collect();
    let deletions = futures::stream::iter(doomed)
        .map(|(db, copy)| async move {
            let deleted = ports.dr.delete_copy(&copy).await;
            (db, copy, deleted)
        })
        .buffer_unordered(CONCURRENT_CALLS)
        .collect::<Vec<_>>()
        .await;
    for (db, copy, deleted) in deletions {
        let index = match report.dbs.iter().position(|d| d.kind == db.kind && d.db == db.id) {
            Some(i) => i,
            None => {
                report.dbs.push(DbReport::new(&db, DbStatus::NotSelected));
                report.dbs.len() - 1
            }
        };
        match deleted {
            Ok(()) => {
                info!(db = %db.id, copy = %copy.id, "pruned");
                report.dbs[index].pruned.push(copy.id.clone());
            }
            Err(e) => report.dbs[index].prune_errors.push(format!("{}: {e}", copy.id)),
        }
    }
    for d in &mut report.dbs {
        d.pruned.sort();
        d.prune_errors.sort();
    }
    report.dbs.sort_by(|a, b| (a.kind, &a.db).cmp(&(b.kind, &b.db)));
    if let Some(ledger) = &ports.ledger {
        let changed = report
            .dbs
            .iter()
            .any(|d| d.status == DbStatus::Copied || !d.pruned.is_empty());
        match keep {
            Some(kept) => ledger.keep(&kept).await,
            None if changed => ledger.forget().await,
            None => {}
        }
    }
    if let (Some(vault), Scope::Fleet) = (&ports.vault, scope) {
        let done = to_vault(&ports.dr, vault, &dr, cfg).await;
        report.errors.extend(
            done.errors
                .iter()
                .map(|e| format!("backup account {}: {e}", vault.account)),
        );
        report.vault = Some(done);
    }
    report
}

/// Copies the newest available DR copy of each database into the isolated backup account, by
/// the same identifier: shared with that account, then copied there through its role with its
/// own key. Production cannot delete what lands there (the role may copy, not delete; the
/// account's SCP denies deletes to everyone else). Copies there are never pruned by drpilot.
async fn to_vault<D: DrSnapshotStore>(
    dr: &D,
    vault: &Vault<D>,
    copies: &[crate::model::Snapshot],
    cfg: &CopierConfig,
) -> VaultReport {
    let mut report = VaultReport {
        account: vault.account.clone(),
        ..VaultReport::default()
    };
    let mut newest: std::collections::BTreeMap<(DbKind, String), &crate::model::Snapshot> = Default::default();
    for c in copies.iter().filter(|c| {
        c.is_available()
            && c.is_copy_of(&cfg.deployment)
            && c.tag(crate::model::tags::SOURCE_REGION) == Some(cfg.source_region.as_str())
    }) {
        let Some(db) = c.tag(crate::model::tags::SOURCE_DB) else {
            continue;
        };
        let entry = newest.entry((c.kind, db.to_string())).or_insert(c);
        if (c.source_time(), &c.id) > (entry.source_time(), &entry.id) {
            *entry = c;
        }
    }
    if newest.is_empty() {
        return report;
    }
    let held = match vault.store.copies().await {
        Ok(held) => held,
        Err(e) => {
            report.errors.push(format!("cannot list its snapshots: {e}"));
            return report;
        }
    };
    let every = chrono::Duration::hours(i64::from(cfg.vault_every_hours));
    for ((kind, db), copy) in &newest {
        let same = held.iter().find(|h| h.kind == copy.kind && h.id == copy.id);
        match same {
            Some(h) if h.is_available() => {
                report.held.push(copy.id.clone());
                continue;
            }
            Some(h) if h.is_in_progress() => {
                report.in_progress.push(copy.id.clone());
                continue;
            }
            Some(h) => {
                report.errors.push(format!(
                    "its copy {} is {}: delete it there (break-glass role) for a new one",
                    h.id, h.status
                ));
                continue;
            }
            None => {}
        }
        // One copy per database every so often: the backup account's snapshot quota (100
        // manual snapshots per region by default) is spent slowly, and nothing here deletes.
        let newest_there = held
            .iter()
            .filter(|h| {
                h.kind == *kind
                    && h.is_copy_of(&cfg.deployment)
                    && h.tag(crate::model::tags::SOURCE_DB) == Some(db.as_str())
                    && h.tag(crate::model::tags::SOURCE_REGION) == Some(cfg.source_region.as_str())
            })
            .filter(|h| h.is_available() || h.is_in_progress())
            .filter_map(|h| h.source_time())
            .max();
        if let (Some(there), Some(here)) = (newest_there, copy.source_time()) {
            // (a tenth of slack: daily snapshots a few minutes under a day apart still count)
            if here - there < every * 9 / 10 {
                report.recent_enough.push(copy.id.clone());
                continue;
            }
        }
        if let Err(e) = dr.share(copy, &vault.account).await {
            report.errors.push(format!("cannot share {} with it: {e}", copy.id));
            continue;
        }
        let req = crate::plan::copy::CopyRequest {
            kind: copy.kind,
            source_arn: copy.arn.clone(),
            source_id: copy.id.clone(),
            target_id: copy.id.clone(),
            kms_key_id: Some(vault.kms_key_id.clone()),
            tags: copy.tags.clone(),
        };
        match vault.store.start_copy(&req).await {
            Ok(CopyStarted::Started { .. }) => {
                info!(copy = %copy.id, account = %vault.account, "copied into the backup account");
                report.copied.push(copy.id.clone());
            }
            Ok(CopyStarted::AlreadyExists) => report.in_progress.push(copy.id.clone()),
            // AWS says SnapshotQuotaExceeded for its 20 copies in progress (wait) and for an
            // account whose snapshot quota is full (nothing changes by itself: page)
            Ok(CopyStarted::QuotaFull(why)) => {
                let in_progress = held.iter().filter(|h| h.is_in_progress()).count() as u32;
                if in_progress >= AWS_COPIES_IN_FLIGHT_QUOTA {
                    report.queued.push(copy.id.clone());
                } else {
                    report.errors.push(format!(
                        "AWS refused to copy {} there with {in_progress} copies in progress: its snapshot quota may be full; expire old copies there ({why})",
                        copy.id
                    ));
                }
            }
            Err(e) => report.errors.push(format!("cannot copy {} there: {e}", copy.id)),
        }
    }
    report
}

/// Carries out one database's decision: starts its copy, or reports why not; and AWS's words
/// when it refused the copy over a quota.
async fn act<D: DrSnapshotStore>(dr: &D, planned: PlannedDb, queued: &str) -> (DbReport, Option<String>) {
    let db = planned.db;
    let report = match planned.decision {
        Decision::Copy(req) => {
            let base = DbReport {
                source_snapshot: Some(req.source_id.clone()),
                dr_copy: Some(req.target_id.clone()),
                ..DbReport::new(&db, DbStatus::Copied)
            };
            match dr.start_copy(&req).await {
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
                Ok(CopyStarted::QuotaFull(why)) => {
                    info!(db = %db.id, snapshot = %req.source_id, %why, "AWS refused the copy over a quota");
                    let report = DbReport {
                        status: DbStatus::Queued,
                        dr_copy: None,
                        ..base
                    }
                    .because(format!("AWS's copies in progress are at its quota: next run ({why})"));
                    return (report, Some(why));
                }
                Err(e) => {
                    warn!(db = %db.id, snapshot = %req.source_id, error = %e, "copy failed");
                    DbReport {
                        status: DbStatus::Failed,
                        ..base
                    }
                    .because(e.to_string())
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
            ..DbReport::new(&db, DbStatus::Queued)
        }
        .because(queued),
        Decision::Superseded { snapshot_id, copy_id } => DbReport {
            dr_copy: Some(copy_id),
            ..DbReport::new(&db, DbStatus::AlreadyPresent)
        }
        .because(format!("{snapshot_id} is older than the snapshot already copied")),
        Decision::Waiting { reason } => DbReport::new(&db, DbStatus::Waiting).because(reason),
        Decision::Failed { snapshot_id, reason } => DbReport {
            source_snapshot: snapshot_id,
            ..DbReport::new(&db, DbStatus::Failed)
        }
        .because(reason),
    };
    (report, None)
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
    let (trigger, scope) = match trigger(&event, cfg).into_run() {
        Ok(run) => run,
        Err(ignored) => return Ok(ignored),
    };
    let report = run(ports, cfg, &trigger, &scope, now).await;
    info!(summary = %report.summary(), "run finished");
    if let Some(metrics) = &ports.metrics {
        metrics.publish(&[Ok(&report)], now).await;
    }
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

/// A hub deployment's run (`DRPILOT_ACCOUNTS`): a reconciliation runs in every account at once
/// and reports each (an account whose role cannot be assumed is reported unreachable, and the
/// others go on); a snapshot event runs in the account the snapshot is in. One notice covers
/// every account that failed. `own_account` is the function's own account id (from its ARN),
/// when known: an event from an account that is neither it nor a member changes nothing.
pub async fn handle_accounts<S, D, N>(
    accounts: &Accounts<CopierPorts<S, D, N>>,
    cfg: &CopierConfig,
    event: CopierEvent,
    own_account: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Value>
where
    S: SourceCatalog,
    D: DrSnapshotStore,
    N: Notifier,
{
    // Named databases (DRPILOT_DB_INSTANCES, DRPILOT_DB_CLUSTERS) are the function's own
    // account's; a member's are selected by DRPILOT_SELECT_TAG alone. Without the tag, the
    // copier has nothing to select in member accounts.
    if !accounts.is_fleet() || cfg.selection.tag.is_none() {
        return handle(&accounts.own, cfg, event, now).await;
    }
    let from = match &event {
        CopierEvent::RdsSnapshot { account, .. } => account.clone(),
        _ => None,
    };
    let (trigger, scope) = match trigger(&event, cfg).into_run() {
        Ok(run) => run,
        Err(ignored) => return Ok(ignored),
    };
    // A member's copies are encrypted with its own DR key, and its databases selected by tag.
    let cfg_for = |member: Option<&AccountSpec>| match member {
        None => std::borrow::Cow::Borrowed(cfg),
        Some(m) => std::borrow::Cow::Owned(CopierConfig {
            dr_kms_key_id: m.dr_kms_key_id.clone(),
            selection: crate::model::Selection {
                instances: vec![],
                clusters: vec![],
                tag: cfg.selection.tag.clone(),
            },
            ..cfg.clone()
        }),
    };
    let outcomes = match (&scope, from.as_deref()) {
        (Scope::Fleet, _) => {
            accounts
                .each(|member, ports| {
                    let (cfg, trigger, scope) = (cfg_for(member), &trigger, &scope);
                    async move { run(ports, &cfg, trigger, scope, now).await }
                })
                .await
        }
        (Scope::Snapshot { .. }, from) => {
            if let Some(a) = from.filter(|a| accounts.member(a).is_none() && own_account.is_some_and(|o| o != *a)) {
                return Err(Error::BadEvent(format!(
                    "the snapshot event is from account {a}, which is neither this deployment's account nor in DRPILOT_ACCOUNTS; nothing was done"
                )));
            }
            let (ports, access) = accounts.get(from);
            let (account, cfg) = match &access {
                Access::Own => (accounts::OWN.to_string(), cfg_for(None)),
                Access::Member(role) => (role.account().to_string(), cfg_for(Some(role.spec()))),
            };
            let result = match access.check().await {
                Ok(()) => Outcome::Report(run(ports, &cfg, &trigger, &scope, now).await),
                Err(e) => Outcome::Unreachable(e.to_string()),
            };
            vec![AccountOutcome { account, result }]
        }
    };
    for o in &outcomes {
        match &o.result {
            Outcome::Report(r) => info!(account = %o.account, summary = %r.summary(), "run finished"),
            Outcome::Unreachable(why) => warn!(account = %o.account, %why, "account unreachable"),
        }
    }
    if let Some(metrics) = &accounts.own.metrics {
        let reports: Vec<Result<&CopyReport, ()>> = outcomes
            .iter()
            .map(|o| match &o.result {
                Outcome::Report(r) => Ok(r),
                Outcome::Unreachable(_) => Err(()),
            })
            .collect();
        metrics.publish(&reports, now).await;
    }
    let what = format!("snapshot copy ({} -> {})", cfg.source_region, cfg.dr_region);
    let notice = accounts::fleet_notice(&what, &outcomes, CopyReport::failure_notice);
    let report = serde_json::json!({ "trigger": trigger, "accounts": outcomes });
    if let Some(notice) = notice {
        let subject = notice.subject.clone();
        if let Err(e) = accounts.own.notifier.notify(&notice).await {
            warn!(error = %e, "could not notify responders");
            return Err(Error::RunFailed(format!("{subject} (and the SNS notice failed: {e})")));
        }
        return Err(Error::RunFailed(format!("{subject}; report: {report}")));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_runs_counts_sum_over_its_accounts_and_an_unreachable_account_counts_as_failed() {
        let db = |status: DbStatus, failed: bool| DbReport {
            reason: failed.then(|| "CopyDBSnapshot: throttled".into()),
            ..DbReport::new(
                &ProtectedDb {
                    id: "db".into(),
                    kind: DbKind::Instance,
                },
                status,
            )
        };
        let report = |in_flight: Option<u32>, dbs: Vec<DbReport>, errors: Vec<String>| CopyReport {
            trigger: "schedule".into(),
            started_at: "2026-11-28T00:00:00Z".into(),
            source_region: "us-east-1".into(),
            dr_region: "us-west-2".into(),
            copies_in_flight_before: in_flight,
            copy_limit: 20,
            dbs,
            errors,
            dr_ledger: None,
            vault: None,
        };
        let own = report(
            Some(18),
            vec![
                db(DbStatus::Copied, false),
                db(DbStatus::Copied, false),
                db(DbStatus::Queued, false),
                db(DbStatus::Failed, true),
            ],
            vec![],
        );
        let member = report(
            Some(1),
            vec![db(DbStatus::AlreadyPresent, false)],
            vec!["listing failed".into()],
        );
        let values = |reports: &[Result<&CopyReport, ()>]| -> Vec<(String, f64)> {
            run_metrics(reports, Utc::now())
                .into_iter()
                .map(|m| (m.name, m.value))
                .collect()
        };
        let named =
            |pairs: &[(&str, f64)]| -> Vec<(String, f64)> { pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect() };
        assert_eq!(
            values(&[Ok(&own), Ok(&member), Err(())]),
            named(&[
                (metric::STARTED, 2.0),
                (metric::QUEUED, 1.0),
                (metric::FAILED, 3.0), // the failed database, the member's listing, the unreachable account
                (metric::IN_FLIGHT, 21.0),
            ])
        );
        // a snapshot event's run knows no in-flight count
        let event = report(None, vec![db(DbStatus::Copied, false)], vec![]);
        assert_eq!(
            values(&[Ok(&event)]),
            named(&[(metric::STARTED, 1.0), (metric::QUEUED, 0.0), (metric::FAILED, 0.0)])
        );
    }

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

    fn copy(id: &str, status: &str, deployment: Option<&str>) -> crate::model::Snapshot {
        use crate::model::tags;
        let mut tags = std::collections::BTreeMap::new();
        if let Some(d) = deployment {
            tags.insert(tags::MANAGED_BY.to_string(), tags::MANAGED_BY_VALUE.to_string());
            tags.insert(tags::DEPLOYMENT.to_string(), d.to_string());
        }
        crate::model::Snapshot {
            kind: DbKind::Instance,
            id: id.into(),
            arn: format!("arn:aws:rds:us-west-2:123456789012:snapshot:{id}"),
            db_id: "orders".into(),
            status: status.into(),
            created: None,
            encrypted: false,
            tags,
            source_region: Some("us-east-1".into()),
        }
    }

    #[test]
    fn a_ledger_holds_only_available_copies_of_this_deployment_and_stands_in_for_three_hours() {
        let now = Utc::now();
        let listed = vec![
            copy("drpilot-a", "available", Some("drpilot")),
            copy("other-team-a", "available", Some("team")),
            copy("hand-made", "creating", None),
        ];
        let ledger = DrLedger::of(&listed, "drpilot", now).expect("all of drpilot's copies are available");
        assert_eq!(
            ledger.copies.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["drpilot-a"]
        );
        assert!(ledger.usable(now + Duration::minutes(179)));
        assert!(!ledger.usable(now + LEDGER_TTL), "expired");
        assert!(
            !ledger.usable(now - Duration::minutes(1)),
            "listed in the future: a clock is off"
        );
        // a copy of ours that is not available (being made, failed, being deleted) is for the
        // next runs to see: no ledger is kept of it, and one holding it is not used
        for status in ["copying", "failed", "deleting"] {
            let with = [listed.clone(), vec![copy("drpilot-b", status, Some("drpilot"))]].concat();
            assert!(DrLedger::of(&with, "drpilot", now).is_none(), "{status}");
            let mut held = ledger.clone();
            held.copies.push(copy("drpilot-b", status, Some("drpilot")));
            assert!(!held.usable(now), "{status}");
        }
    }

    #[test]
    fn every_sample_event_decodes_to_the_decision_it_documents() {
        let one = |kind, id: &str| Scope::Snapshot {
            kind,
            id: id.to_string(),
        };
        let expected = [
            ("operator-run.json", "operator request", Scope::Fleet),
            (
                "rds-automated-snapshot-created.json",
                "RDS-EVENT-0091: snapshot rds:orders-db-2026-11-25-03-04 created",
                one(DbKind::Instance, "rds:orders-db-2026-11-25-03-04"),
            ),
            (
                "rds-cluster-snapshot-created.json",
                "RDS-EVENT-0169: snapshot rds:ledger-2026-11-25-04-00 created",
                one(DbKind::Cluster, "rds:ledger-2026-11-25-04-00"),
            ),
            (
                "rds-manual-snapshot-created.json",
                "RDS-EVENT-0042: snapshot orders-db-before-migration created",
                one(DbKind::Instance, "orders-db-before-migration"),
            ),
            ("schedule.json", "schedule", Scope::Fleet),
        ];
        let samples = crate::events::samples("snapshot-copier");
        assert_eq!(samples.len(), expected.len(), "every sample has its expected decision");
        for ((file, event), (name, why, scope)) in samples.into_iter().zip(expected) {
            assert_eq!(file, name);
            assert_eq!(decide(event).unwrap(), Trigger::Run(why.into(), scope), "{file}");
        }
    }

    #[test]
    fn below_aws_quota_a_snapshot_event_reconciles_the_fleet_to_keep_the_count() {
        let mut vars = HashMap::from([
            ("DRPILOT_SOURCE_REGION", "us-east-1"),
            ("DRPILOT_DR_REGION", "us-west-2"),
            ("DRPILOT_SELECT_TAG", "drpilot:copy=true"),
            ("DRPILOT_NOTIFY_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:drpilot"),
        ]);
        vars.insert("DRPILOT_MAX_COPIES_IN_FLIGHT", "5");
        let cfg = CopierConfig::from_vars(&vars).unwrap();
        let event = CopierEvent::decode(fixture("rds-automated-snapshot-created.json")).unwrap();
        assert!(matches!(trigger(&event, &cfg), Trigger::Run(_, Scope::Fleet)));
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
