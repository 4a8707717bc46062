//! The S3 backup run: bring each DR bucket up to date by server-side copy, page by page, and
//! record the run as a point in time (a manifest of key → DR version). Unchanged objects cost
//! their listing only, or nothing beyond S3 Inventory's daily report (`inventory`). A run stops before the Lambda deadline and the next invocation resumes
//! it; retention then removes what no retained point in time needs.

pub mod changes;
pub mod inventory;
pub mod manifest;
pub mod restore;
pub mod verify;

use crate::accounts::{Accounts, ForAccounts};
use crate::config::BackupConfig;
use crate::error::{Error, Result};
use crate::events::{self, Decode, Incoming};
use crate::model::BackupSpec;
use crate::model::ObjectInfo;
use crate::notice::{Notice, Severity};
use crate::plan::backup::{
    diff_inventory_page, diff_page, expired_points, locks_to_honour, prunable_versions, unlisted, Change,
    ManifestEntry, PartWriter, PointInTime,
};
use crate::ports::{Documents, NotDeleted, Notifier, ObjectCopy, ObjectStore, Page, StateStore, Upload};
use crate::state::{Lease, Record};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use futures::stream::{self, StreamExt};
use inventory::{ReportManifest, ReportRef};
use manifest::{
    encode_part, part_key, state_key, BackupState, CopiedAhead, ManifestReader, ObjectFailure, PendingUpload,
    PointReader, RunCounts, RunProgress,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use tracing::{info, warn};

/// Keys a run takes from an inventory report per page, and so per manifest part: the report
/// is in memory already, so a page is ten of a listing's, and a run that finds nothing changed
/// costs a few requests per 10,000 keys.
const INVENTORY_PAGE: usize = 10_000;

/// Failures kept per run for the report and the notice; the count covers all.
const FAILURES_KEPT: usize = 20;

/// `DeleteObjects` takes at most 1,000 keys a call; retention sends this many calls at once.
const DELETES_PER_CALL: usize = 1000;
const DELETE_CALLS_AT_ONCE: usize = 4;

/// Retention's error when another invocation changed the state: it stops where it recorded
/// it had got to.
const RETENTION_LEFT: &str = "state changed by another invocation; retention left for the next run";

pub struct BackupPorts<O, S, N> {
    /// The source region's buckets (listing).
    pub source: O,
    /// The DR region's buckets (copies land here; versions, pruning).
    pub dr: O,
    /// The state bucket: run state (conditional writes) and manifests.
    pub state: S,
    pub notifier: N,
}

impl BackupPorts<crate::aws::s3::S3Objects, crate::aws::s3::S3State, crate::aws::sns::SnsNotifier> {
    /// The AWS adapters, built once at cold start.
    pub fn aws(sdk: &aws_config::SdkConfig, cfg: &BackupConfig) -> Self {
        Self::aws_in(sdk, sdk, cfg)
    }

    /// One account's adapters: its buckets (`account`: the function's own or a member's role),
    /// and the hub's state bucket and notices.
    pub fn aws_in(account: &aws_config::SdkConfig, sdk: &aws_config::SdkConfig, cfg: &BackupConfig) -> Self {
        use crate::aws::s3::{client_in, S3Objects, S3State};
        let s3_in = |sdk, region: &str| client_in(sdk, region, cfg.s3_force_path_style);
        BackupPorts {
            source: S3Objects::new(s3_in(account, &cfg.source_region), cfg.multipart_threshold_bytes),
            dr: S3Objects::new(s3_in(account, &cfg.dr_region), cfg.multipart_threshold_bytes),
            state: S3State::new(s3_in(sdk, &cfg.dr_region), &cfg.state.bucket),
            notifier: crate::aws::sns::SnsNotifier::new(sdk, &cfg.notify_topic_arn, "drpilot.s3-backup"),
        }
    }

    /// The function's own account's adapters and each member account's.
    pub fn accounts(sdk: &aws_config::SdkConfig, cfg: &BackupConfig) -> Accounts<Self> {
        Accounts::build(sdk, &cfg.accounts, "drpilot-s3-backup", |account, hub, _| {
            Self::aws_in(account, hub, cfg)
        })
    }
}

pub use crate::state::Invocation;

/// The backup's operator command: run every backup, or the one named.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum BackupCommand {
    Run {
        #[serde(default, deserialize_with = "events::some")]
        backup: Option<String>,
    },
    /// Goes on with the runs a deadline stopped (none is started): Terraform sends it every
    /// few minutes, so a run longer than an invocation ends in minutes, not at the next
    /// scheduled run hours later (changes from S3's notifications wait for it to end).
    // `{}`: a unit variant would let unknown fields through.
    Continue {},
}

/// What wakes the backup: its schedule, an operator's run of all backups or one, or S3's
/// notifications of changed objects (an SQS batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupEvent {
    Schedule,
    Operator {
        backup: Option<String>,
    },
    /// Resume the runs in progress only.
    Continue,
    Changes(Vec<changes::QueuedMessage>),
}

const ACCEPTS: &str = r#"the backup accepts an EventBridge schedule, {"action": "run"} with an optional "backup" name, {"action": "continue"}, or SQS messages of S3 event notifications"#;

impl Decode for BackupEvent {
    fn decode(event: Value) -> Result<Self> {
        match events::decode::<BackupCommand>(event, ACCEPTS)? {
            Incoming::Command(BackupCommand::Run { backup }) => Ok(BackupEvent::Operator { backup }),
            Incoming::Command(BackupCommand::Continue {}) => Ok(BackupEvent::Continue),
            Incoming::Schedule(_) => Ok(BackupEvent::Schedule),
            Incoming::Sqs(batch) => {
                let event = BackupEvent::from(batch);
                if let BackupEvent::Changes(messages) = &event {
                    changes::check_ids(messages)?;
                }
                Ok(event)
            }
            other => Err(other.unsupported(ACCEPTS)),
        }
    }
}

/// The backups an event asks for; an unknown name is a bad event.
pub fn backups_for<'a>(event: &BackupEvent, cfg: &'a BackupConfig) -> Result<Vec<&'a BackupSpec>> {
    match event {
        BackupEvent::Changes(_) => Ok(vec![]),
        BackupEvent::Schedule | BackupEvent::Operator { backup: None } | BackupEvent::Continue => {
            Ok(cfg.backups.iter().collect())
        }
        BackupEvent::Operator { backup: Some(name) } => cfg.backup(name).map(|b| vec![b]).ok_or_else(|| {
            let known: Vec<&str> = cfg.backups.iter().map(|b| b.name.as_str()).collect();
            Error::BadEvent(format!("unknown backup {name:?}; configured: {}", known.join(", ")))
        }),
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The run finished: a new point in time exists.
    Complete,
    /// Stopped before the deadline; the next invocation resumes it.
    Resumable,
    /// Another invocation holds the run.
    Busy,
    /// A continuation found no run in progress: nothing was done.
    Idle,
    /// The backup could not run (see `error`); nothing recorded is lost.
    #[default]
    Failed,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub points_expired: Vec<String>,
    /// The DR bucket's Object Lock default retention, and what it means for retention.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<String>,
    pub versions_deleted: u64,
    pub manifests_deleted: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Stopped for the deadline; the next invocation goes on.
    pub unfinished: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BackupReport {
    pub backup: String,
    /// The member account its buckets are in (`None`: the function's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub source: String,
    pub dr: String,
    pub outcome: Outcome,
    pub run_id: Option<String>,
    /// What this invocation did.
    pub counts: RunCounts,
    /// The whole run so far (across invocations).
    pub run_counts: RunCounts,
    pub failures: Vec<ObjectFailure>,
    pub retention: RetentionReport,
    pub points_in_time: usize,
    /// The S3 Inventory report the run read its keys from, and when S3 took it (`None`: the
    /// run listed the bucket).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl BackupReport {
    fn new(spec: &BackupSpec) -> Self {
        BackupReport {
            backup: spec.name.clone(),
            account: spec.account.clone(),
            source: format!("s3://{}/{}", spec.source_bucket, spec.prefix),
            dr: format!("s3://{}/{}", spec.dr_bucket, spec.prefix),
            ..Default::default()
        }
    }

    fn troubled(&self) -> bool {
        self.outcome == Outcome::Failed || self.counts.failed > 0 || !self.retention.errors.is_empty()
    }

    pub fn summary(&self) -> String {
        let c = &self.counts;
        let mut s = format!(
            "{}: {:?}, {} copied ({} bytes), {} unchanged, {} failed, {} deleted at source",
            self.backup, self.outcome, c.copied, c.bytes_copied, c.unchanged, c.failed, c.deleted_at_source
        );
        if c.moved_on > 0 {
            s.push_str(&format!(", {} changed since the inventory report", c.moved_on));
        }
        if let Some(report) = &self.inventory {
            s.push_str(&format!("; keys from the inventory report {report}"));
        }
        if let Some(e) = &self.error {
            s.push_str(&format!("; {e}"));
        }
        s
    }
}

/// Where a run's keys come from.
enum Keys {
    /// `ListObjectsV2`, a page of 1,000 at a time.
    Listing,
    /// An S3 Inventory report taken at `taken`, read once per invocation, sorted.
    Inventory {
        objects: Vec<ObjectInfo>,
        taken: DateTime<Utc>,
    },
}

/// The inventory report's next page after `after`.
fn inventory_page(objects: &[ObjectInfo], after: Option<&str>) -> Page<ObjectInfo> {
    let start = after.map_or(0, |a| objects.partition_point(|o| o.key.as_str() <= a));
    let end = (start + INVENTORY_PAGE).min(objects.len());
    Page {
        items: objects[start..end].to_vec(),
        more: end < objects.len(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub started_at: String,
    pub backups: Vec<BackupReport>,
}

impl RunReport {
    pub fn summary(&self) -> String {
        self.backups
            .iter()
            .map(BackupReport::summary)
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// The notice a troubled run sends: failed backups, failed objects (with reasons), and
    /// retention errors. Clean runs stay quiet.
    pub fn failure_notice(&self, cfg: &BackupConfig) -> Option<Notice> {
        let troubled: Vec<&BackupReport> = self.backups.iter().filter(|b| b.troubled()).collect();
        if troubled.is_empty() {
            return None;
        }
        let failed_objects: u64 = troubled.iter().map(|b| b.counts.failed).sum();
        let failed_backups = troubled.iter().filter(|b| b.outcome == Outcome::Failed).count();
        let subject = if failed_backups > 0 {
            format!(
                "drpilot: S3 backup failed for {failed_backups} of {} backups",
                self.backups.len()
            )
        } else {
            format!(
                "drpilot: S3 backup could not copy {failed_objects} object{}",
                if failed_objects == 1 { "" } else { "s" }
            )
        };
        let mut body = format!(
            "drpilot s3-backup, run at {}, {} -> {}.\n\n",
            self.started_at, cfg.source_region, cfg.dr_region
        );
        for b in troubled {
            body.push_str(&format!("{} ({} -> {}): {}\n", b.backup, b.source, b.dr, b.summary()));
            for f in &b.failures {
                body.push_str(&format!("  FAILED {}: {}\n", f.key, f.reason));
            }
            let more = b.counts.failed.saturating_sub(b.failures.len() as u64);
            if more > 0 {
                body.push_str(&format!("  ... and {more} more\n"));
            }
            for e in &b.retention.errors {
                body.push_str(&format!("  RETENTION: {e}\n"));
            }
        }
        body.push_str(
            "\nObjects that failed keep their previous version in the new point in time (if they had one); \
             the rest of the run went on. The next scheduled run retries them; to retry now, invoke the \
             backup with {\"action\": \"run\"}.\n",
        );
        Some(Notice::new(Severity::Warning, subject, body).with_attribute("kind", "s3-backup"))
    }
}

/// One invocation: each requested backup in turn, each stopping before the deadline.
pub async fn run<A, O, S, N>(accounts: &A, cfg: &BackupConfig, backups: &[&BackupSpec], inv: &Invocation) -> RunReport
where
    A: ForAccounts<BackupPorts<O, S, N>>,
    O: ObjectStore,
    S: StateStore + Documents,
    N: Notifier,
{
    run_backups(accounts, cfg, backups, inv, false).await
}

/// As `run`; with `resume_only`, a backup with no run in progress is left alone (the
/// continuation never starts a run, even one that another invocation just finished).
async fn run_backups<A, O, S, N>(
    accounts: &A,
    cfg: &BackupConfig,
    backups: &[&BackupSpec],
    inv: &Invocation,
    resume_only: bool,
) -> RunReport
where
    A: ForAccounts<BackupPorts<O, S, N>>,
    O: ObjectStore,
    S: StateStore + Documents,
    N: Notifier,
{
    let mut report = RunReport {
        started_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        backups: vec![],
    };
    // Rotate the start hourly so that one backup's long run does not always leave the others
    // the end of the invocation.
    let start = (Utc::now().timestamp() / 3600) as usize % backups.len().max(1);
    let margin = Duration::seconds(i64::from(cfg.deadline_margin_seconds));
    for (n, spec) in backups.iter().cycle().skip(start).take(backups.len()).enumerate() {
        let mut b = BackupReport::new(spec);
        // The first always starts (every invocation makes progress); the others only with time left.
        if n > 0 && inv.deadline - Utc::now() < margin {
            b.outcome = Outcome::Resumable;
            b.note = Some("not started: the invocation's deadline is near; the next run starts it".into());
            report.backups.push(b);
            continue;
        }
        let (ports, access) = accounts.ports_for(spec.account.as_deref());
        let done = match access.check().await {
            Ok(()) => {
                let mut one = Run::new(ports, cfg, spec, inv);
                one.resume_only = resume_only;
                one.go(&mut b).await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            warn!(backup = %spec.name, error = %e, "backup failed");
            b.outcome = Outcome::Failed;
            b.error = Some(e.to_string());
        }
        info!(summary = %b.summary(), "backup finished");
        report.backups.push(b);
    }
    report
}

/// The Lambda handler: parse, run, notify on trouble.
pub async fn handle<A, O, S, N>(accounts: &A, cfg: &BackupConfig, event: BackupEvent, inv: &Invocation) -> Result<Value>
where
    A: ForAccounts<BackupPorts<O, S, N>>,
    O: ObjectStore,
    S: StateStore + Documents,
    N: Notifier,
{
    if let BackupEvent::Changes(messages) = &event {
        return changes::handle_changes(accounts, cfg, messages, inv).await;
    }
    let mut backups = backups_for(&event, cfg)?;
    if event == BackupEvent::Continue {
        // Only those with a run in progress: one look at each backup's state.
        let mut in_progress = vec![];
        for spec in backups {
            let ports = accounts.ports_for(spec.account.as_deref()).0;
            // (a state that cannot be read is looked at again, and its error reported)
            match BackupState::read(&ports.state, &state_key(&cfg.state, spec)).await {
                Ok(state) if state.running.is_none() => {}
                _ => in_progress.push(spec),
            }
        }
        if in_progress.is_empty() {
            return Ok(serde_json::json!({"continued": []}));
        }
        backups = in_progress;
    }
    let continuing = event == BackupEvent::Continue;
    let report = run_backups(accounts, cfg, &backups, inv, continuing).await;
    if continuing {
        // Every five minutes: a run that keeps failing is reported by its scheduled runs, not
        // by each continuation (no notice, no failed invocation); the report says what failed.
        return serde_json::to_value(&report).map_err(|e| Error::RunFailed(format!("cannot encode the report: {e}")));
    }
    if let Some(notice) = report.failure_notice(cfg) {
        if let Err(e) = accounts.own_ports().notifier.notify(&notice).await {
            return Err(Error::RunFailed(format!(
                "{} (and the SNS notice failed: {e})",
                report.summary()
            )));
        }
    }
    if report.backups.iter().any(|b| b.outcome == Outcome::Failed) {
        return Err(Error::RunFailed(report.summary()));
    }
    serde_json::to_value(&report).map_err(|e| Error::RunFailed(format!("cannot encode the report: {e}")))
}

/// One backup's work in one invocation.
struct Run<'a, O, S, N> {
    ports: &'a BackupPorts<O, S, N>,
    cfg: &'a BackupConfig,
    spec: &'a BackupSpec,
    inv: &'a Invocation,
    key: String,
    state: BackupState,
    etag: Option<String>,
    /// Go on with a run in progress only (`{"action": "continue"}`).
    resume_only: bool,
    /// The inventory report's manifest, once read by this invocation.
    report_manifest: Option<ReportManifest>,
}

impl<'a, O, S, N> Run<'a, O, S, N>
where
    O: ObjectStore,
    S: StateStore + Documents,
    N: Notifier,
{
    fn new(ports: &'a BackupPorts<O, S, N>, cfg: &'a BackupConfig, spec: &'a BackupSpec, inv: &'a Invocation) -> Self {
        Run {
            ports,
            cfg,
            spec,
            inv,
            key: state_key(&cfg.state, spec),
            state: BackupState::default(),
            etag: None,
            resume_only: false,
            report_manifest: None,
        }
    }

    fn near_deadline(&self) -> bool {
        self.inv.deadline - Utc::now() < Duration::seconds(i64::from(self.cfg.deadline_margin_seconds))
    }

    /// No copy or look starts after the first (half the deadline margin before the deadline);
    /// none is waited for after the second (a quarter before): what is left then is for the
    /// manifest part and the state, before Lambda stops the invocation.
    fn soft_and_hard_deadlines(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let margin = i64::from(self.cfg.deadline_margin_seconds);
        (
            self.inv.deadline - Duration::seconds(margin / 2),
            self.inv.deadline - Duration::seconds(margin / 4),
        )
    }

    /// Conditional write: `false` when another invocation wrote first (we no longer own the run).
    async fn save(&mut self) -> Result<bool> {
        let record = Record::new(&self.ports.state, self.key.clone());
        let written = record.write(&self.state, self.etag.as_deref()).await?;
        let ours = written.is_some();
        if ours {
            self.etag = written;
        }
        Ok(ours)
    }

    async fn go(&mut self, report: &mut BackupReport) -> Result<()> {
        (self.state, self.etag) = BackupState::load(&self.ports.state, &self.key).await?;
        let now = Utc::now();
        let me = &self.inv.request_id;
        let busy = match (&self.state.running, &self.state.retention_lease) {
            (Some(r), _) if r.lease.held_by_other(me, now) => Some((
                Some(r.run_id.clone()),
                format!("run {} is held by {} until {}", r.run_id, r.lease.holder, r.lease.until),
            )),
            (_, Some(lease)) if lease.held_by_other(me, now) => Some((
                None,
                format!("retention is running in {} until {}", lease.holder, lease.until),
            )),
            _ => None,
        };
        if let Some((run_id, note)) = busy {
            report.outcome = Outcome::Busy;
            report.run_id = run_id;
            report.note = Some(note);
            return Ok(());
        }
        if self.resume_only && self.state.running.is_none() {
            report.outcome = Outcome::Idle;
            report.note = Some("no run in progress: nothing to continue".into());
            return Ok(());
        }
        if !self.ports.dr.versioning_enabled(&self.spec.dr_bucket).await? {
            return Err(Error::Refused(format!(
                "versioning is not enabled on s3://{}: points in time are kept as object versions, so drpilot copies nothing into an unversioned bucket",
                self.spec.dr_bucket
            )));
        }
        let lease = Lease::to(self.inv);
        match &mut self.state.running {
            Some(r) => {
                r.lease = lease;
                r.invocations += 1;
                r.writers.push(PartWriter {
                    from_part: r.parts + 1,
                    invocation: r.invocations,
                });
                report.note = Some(format!("resumed run {} after key {:?}", r.run_id, r.after_key));
            }
            None => {
                // Unique among every point this backup still has a manifest for.
                let run_id = self.state.new_run_id(now);
                let inventory = self.inventory_for_new_run(report).await;
                self.state.running = Some(RunProgress {
                    run_id,
                    started: now,
                    // What the newest point holds: its full point, and the changes on it.
                    base: self.state.points.last().and_then(|p| self.state.cursor(&p.run_id)),
                    after_key: None,
                    parts: 0,
                    counts: RunCounts::default(),
                    failures: vec![],
                    lease,
                    invocations: 1,
                    uploads: vec![],
                    copied_ahead: vec![],
                    as_of: inventory.as_ref().map(|i| i.taken),
                    inventory,
                    writers: vec![PartWriter {
                        from_part: 1,
                        invocation: 1,
                    }],
                });
            }
        }
        if !self.save().await? {
            report.outcome = Outcome::Busy;
            report.note = Some("another invocation took the run first".into());
            return Ok(());
        }
        let running = self.state.running.clone();
        report.run_id = running.as_ref().map(|r| r.run_id.clone());
        if running.is_some() {
            report.outcome = self.copy_pages(report).await?;
        }
        if report.outcome == Outcome::Complete && !self.near_deadline() {
            // The point in time is recorded; a retention failure is reported, never fatal.
            if let Err(e) = self.retention(&mut report.retention).await {
                report.retention.errors.push(e.to_string());
                if self.state.retention_lease.take().is_some() {
                    let _ = self.save().await; // release it now; else it lapses at the deadline
                }
            }
        }
        report.points_in_time = self.state.points.len();
        Ok(())
    }

    /// Lists the source page by page, copies what changed, writes one manifest part per page
    /// and saves progress after each; finishes the run at the end of the listing.
    async fn copy_pages(&mut self, report: &mut BackupReport) -> Result<Outcome> {
        let Some(run) = self.state.running.clone() else {
            return Ok(Outcome::Complete);
        };
        let (spec, ports, cfg) = (self.spec, self.ports, self.cfg);
        let mut base = run
            .base
            .as_ref()
            .map(|b| PointReader::resume(&ports.state, &cfg.state, spec, b));
        if let (Some(reader), Some(after)) = (base.as_mut(), run.after_key.as_deref()) {
            // Drop the entries the run has recorded (at most the page it resumes in, since
            // the run re-reads from the part that page began in).
            reader.take_through(after).await?;
        }
        let keys = self.keys(&run, report).await;
        let mut after_key = run.after_key.clone();
        loop {
            let page = match &keys {
                Keys::Listing => {
                    self.ports
                        .source
                        .list_page(&spec.source_bucket, &spec.prefix, after_key.as_deref())
                        .await?
                }
                Keys::Inventory { objects, .. } => inventory_page(objects, after_key.as_deref()),
            };
            let part_before = base.as_ref().map(PointReader::resume_part);
            let mut previous = match (base.as_mut(), page.items.last()) {
                (Some(reader), Some(last)) => reader.take_through(&last.key).await?,
                _ => vec![],
            };
            // Pages to come: as the listing says; a run on a report also goes on while the
            // previous point holds keys past the report's last one.
            let mut more = page.more;
            let diff = match &keys {
                Keys::Listing => diff_page(&page.items, &previous),
                Keys::Inventory { taken, .. } => {
                    if !page.more {
                        // What the previous point holds past the report's last key is decided
                        // like the rest (a report may be older than it), a page at a time.
                        if let Some(reader) = base.as_mut() {
                            while previous.len() < INVENTORY_PAGE {
                                match reader.next_part().await? {
                                    Some(rest) => previous.extend(rest),
                                    None => break,
                                }
                            }
                            more = previous.len() >= INVENTORY_PAGE;
                        }
                    }
                    let gone_or_missed = unlisted(&page.items, &previous, *taken);
                    let present = self
                        .still_there(gone_or_missed.iter().map(|e| e.key.clone()).collect())
                        .await;
                    let present: HashSet<&str> = present.iter().map(String::as_str).collect();
                    diff_inventory_page(&page.items, &previous, *taken, &present)
                }
            };
            let mut counts = RunCounts::default();
            let Copied {
                entries,
                failures,
                covered,
                uploads,
                copied_ahead,
                resumed,
                given_up,
            } = self.copy_changes(&diff.changes, &mut counts).await;
            // Cut short by the deadline: the page counts up to its last covered key only.
            // `Some(None)`: cut before the page's first change, a multipart copy that goes on
            // in the next invocation (nothing of the page is recorded).
            let cut: Option<Option<String>> = (covered < diff.changes.len())
                .then(|| covered.checked_sub(1).map(|c| change_key(&diff.changes[c]).to_string()));
            let last_key = match &cut {
                Some(cut_key) => cut_key.clone(),
                // (an inventory's last page may end with entries past its last key that stand)
                None => diff
                    .changes
                    .last()
                    .map(|c| change_key(c).to_string())
                    .or_else(|| page.items.last().map(|o| o.key.clone())),
            };
            counts.listed = covered as u64;
            counts.deleted_at_source += diff
                .deleted
                .iter()
                .filter(|e| match &cut {
                    None => true,
                    Some(cut_key) => cut_key.as_deref().is_some_and(|c| e.key.as_str() <= c),
                })
                .count() as u64;
            if !more && cut.is_none() {
                // Whatever the previous point in time holds beyond the last source key is gone now.
                if let Some(reader) = base.as_mut() {
                    while let Some(rest) = reader.next_part().await? {
                        counts.deleted_at_source += rest.len() as u64;
                    }
                }
            }
            let near_deadline = self.near_deadline();
            let Some(r) = self.state.running.as_mut() else {
                return Ok(Outcome::Complete);
            };
            if last_key.is_some() {
                r.parts += 1;
                let key = part_key(&self.cfg.state, spec, &r.run_id, r.parts, &r.writers);
                self.ports.state.put(&key, encode_part(&entries)).await?;
                r.after_key = last_key;
            }
            r.counts.add(&counts);
            // What this page left past its cut, for the invocation that resumes at the cut; any
            // other upload was finished, or is abandoned (aborted once this is saved).
            let mut abandoned: Vec<PendingUpload> = std::mem::replace(&mut r.uploads, uploads)
                .into_iter()
                .filter(|old| !resumed.contains(&old.upload.upload_id))
                .filter(|old| !r.uploads.iter().any(|u| u.upload.upload_id == old.upload.upload_id))
                .collect();
            abandoned.extend(given_up);
            r.copied_ahead = copied_ahead;
            for f in failures {
                if r.failures.len() < FAILURES_KEPT {
                    r.failures.push(f.clone());
                }
                if report.failures.len() < FAILURES_KEPT {
                    report.failures.push(f);
                }
            }
            if let (Some(b), Some(reader)) = (r.base.as_mut(), base.as_ref()) {
                // After a cut, re-read from where this page began: entries past the cut were taken.
                b.resume_part = match (&cut, part_before) {
                    (Some(_), Some(part)) => part,
                    _ => reader.resume_part(),
                };
            }
            report.counts.add(&counts);
            report.run_counts = r.counts;
            after_key = r.after_key.clone();
            let finished = !more && cut.is_none();
            let stop = !finished && (near_deadline || cut.is_some());
            if stop {
                // Stopping on our own: release the lease so the next invocation resumes at once.
                r.lease.until = Utc::now();
            }
            if finished {
                let point = PointInTime {
                    run_id: r.run_id.clone(),
                    started: r.started,
                    finished: Utc::now(),
                    objects: r.counts.objects,
                    bytes: r.counts.bytes,
                    failed: r.counts.failed,
                    parts: r.parts,
                    writers: r.writers.clone(),
                    base: None,
                    // (a run begun before `as_of` was kept has only its report's time)
                    as_of: r.as_of.or_else(|| r.inventory.as_ref().map(|i| i.taken)),
                };
                self.state.points.push(point);
                self.state.running = None;
            }
            if !self.save().await? {
                return Err(Error::RunFailed(
                    "another invocation changed the backup state while this one held the run; stopped without recording the last page (the next run redoes it)".into(),
                ));
            }
            for gone in abandoned {
                if let Err(e) = self
                    .ports
                    .dr
                    .abort_upload(&spec.dr_bucket, &gone.key, &gone.upload.upload_id)
                    .await
                {
                    warn!(key = %gone.key, error = %e, "could not abort an abandoned multipart copy; the bucket's lifecycle rule must clean it up");
                }
            }
            if finished {
                return Ok(Outcome::Complete);
            }
            if stop {
                info!(backup = %spec.name, after = ?after_key, "deadline near: progress saved, the next invocation resumes");
                return Ok(Outcome::Resumable);
            }
        }
    }

    /// The inventory report a new run reads its keys from: the newest, if S3 took it after the
    /// last full run began (an older one knows less than the run starts from). Without a
    /// usable report the run lists the bucket, and the report says why.
    async fn inventory_for_new_run(&mut self, report: &mut BackupReport) -> Option<ReportRef> {
        let at = self.spec.inventory.as_ref()?;
        let last_full = self
            .state
            .points
            .iter()
            .rev()
            .find(|p| p.base.is_none())
            .map(|p| p.started);
        let now = Utc::now();
        match inventory::newest(&self.ports.source, at, &self.spec.source_bucket).await {
            Ok(Some((found, manifest)))
                if last_full.is_none_or(|started| found.taken > started)
                    && now - found.taken <= inventory::REPORT_MAX_AGE =>
            {
                self.report_manifest = Some(manifest);
                Some(found)
            }
            Ok(Some((found, _))) => {
                let why = if now - found.taken > inventory::REPORT_MAX_AGE {
                    format!("is more than {} hours old", inventory::REPORT_MAX_AGE.num_hours())
                } else {
                    "is older than the last run".to_string()
                };
                report.note = Some(format!(
                    "the newest inventory report ({}) {why}: the bucket is listed",
                    found.taken.to_rfc3339_opts(SecondsFormat::Secs, true)
                ));
                None
            }
            Ok(None) => {
                report.note = Some(format!(
                    "no inventory report under s3://{}/{} yet: the bucket is listed",
                    at.bucket, at.prefix
                ));
                None
            }
            Err(e) => {
                warn!(backup = %self.spec.name, error = %e, "inventory report unusable; listing instead");
                report.note = Some(format!(
                    "the inventory report cannot be used ({e}): the bucket is listed"
                ));
                None
            }
        }
    }

    /// Where this invocation takes the run's keys from: its inventory report, read and sorted
    /// (a report that cannot be read any more leaves the rest of the run to the listing).
    async fn keys(&mut self, run: &RunProgress, report: &mut BackupReport) -> Keys {
        let (Some(found), Some(at)) = (&run.inventory, &self.spec.inventory) else {
            if let Some(r) = self.state.running.as_mut() {
                r.inventory = None; // (the setting was removed while the run was under way)
            }
            return Keys::Listing;
        };
        let source = &self.ports.source;
        let manifest = match self.report_manifest.take() {
            Some(m) => Ok(m),
            None => inventory::manifest_of(source, at, found, &self.spec.source_bucket).await,
        };
        let objects = match manifest {
            Ok(m) => inventory::objects(source, &m, &self.spec.prefix).await,
            Err(e) => Err(e),
        };
        match objects {
            Ok(objects) => {
                report.inventory = Some(format!(
                    "s3://{}/{} taken {}",
                    at.bucket,
                    found.manifest,
                    found.taken.to_rfc3339_opts(SecondsFormat::Secs, true)
                ));
                Keys::Inventory {
                    objects,
                    taken: found.taken,
                }
            }
            Err(e) => {
                warn!(backup = %self.spec.name, error = %e, "inventory report unreadable; listing the rest");
                report.note = Some(format!(
                    "the inventory report s3://{}/{} cannot be read ({e}): the rest of the run lists the bucket",
                    at.bucket, found.manifest
                ));
                if let Some(r) = self.state.running.as_mut() {
                    r.inventory = None;
                }
                Keys::Listing
            }
        }
    }

    /// Which of `keys` are still at the source (`HeadObject`, `copy_concurrency` at once). A
    /// look that fails, or is not made for the deadline, counts as there: a key is dropped only
    /// on S3's word that it is gone.
    async fn still_there(&self, keys: Vec<String>) -> Vec<String> {
        let source = &self.ports.source;
        let bucket = &self.spec.source_bucket;
        // No look starts within half the deadline margin (as no copy does): a key not looked at
        // stands, for the next run to decide.
        let (soft, _) = self.soft_and_hard_deadlines();
        stream::iter(keys)
            .map(|key| async move {
                if Utc::now() >= soft {
                    return Some(key);
                }
                match source.head(bucket, &key).await {
                    Ok(None) => None,
                    Ok(Some(_)) => Some(key),
                    Err(err) => {
                        warn!(%key, error = %err, "cannot look at an object the inventory report lacks; it stays");
                        Some(key)
                    }
                }
            })
            .buffer_unordered(self.cfg.copy_concurrency as usize)
            .filter_map(|k| async move { k })
            .collect()
            .await
    }

    /// Copies the page's new and changed objects, at most `copy_concurrency` at once, in key
    /// order. When less than half the deadline margin is left it starts no more copies (after
    /// at least one, so every invocation makes progress): a page of huge objects cannot starve
    /// the run. Returns the manifest entries and failures of the changes it covered (a prefix
    /// of `changes`), and how many it covered.
    async fn copy_changes(&self, changes: &[Change<'_>], counts: &mut RunCounts) -> Copied {
        let spec = self.spec;
        let running = self.state.running.as_ref();
        // What an earlier invocation of this run got to on this page: multipart copies in the
        // middle, and copies it finished past where it cut the page. Either counts only for the
        // object as listed now (its ETag): a changed source is copied afresh.
        let resumable: Vec<PendingUpload> = running.map(|r| r.uploads.clone()).unwrap_or_default();
        let from_inventory = running.is_some_and(|r| r.inventory.is_some());
        let ahead: Vec<CopiedAhead> = running.map(|r| r.copied_ahead.clone()).unwrap_or_default();
        let same = |key: &str, etag: &str, object: &crate::model::ObjectInfo| {
            key == object.key && etag == object.etag && !etag.is_empty()
        };
        let mut results: Vec<Option<Result<String>>> = changes
            .iter()
            .map(|c| match c {
                Change::Copy { object, .. } => ahead
                    .iter()
                    .find(|a| same(&a.key, &a.etag, object))
                    .map(|a| Ok(a.version.clone())),
                Change::Unchanged(_) => None,
            })
            .collect();
        // A copy of the object as listed (or as a report saw it), and only if it still is that.
        let copy_of = |object: &ObjectInfo| ObjectCopy {
            from_bucket: spec.source_bucket.clone(),
            from_key: object.key.clone(),
            from_version: None,
            if_match: Some(object.etag.clone()).filter(|e| !e.is_empty()),
            size: object.size,
            to_bucket: spec.dr_bucket.clone(),
            to_key: object.key.clone(),
            kms_key_id: spec.kms_key_id.clone(),
            storage_class: spec.storage_class.clone(),
        };
        let copies: Vec<(usize, ObjectCopy)> = changes
            .iter()
            .enumerate()
            .filter(|(i, _)| results[*i].is_none())
            .filter_map(|(i, c)| match c {
                Change::Copy { object, .. } => Some((i, copy_of(object))),
                Change::Unchanged(_) => None,
            })
            .collect();
        let dr = &self.ports.dr;
        // Each copy's multipart progress: what an earlier invocation got to, and what this one
        // adds.
        let progress: Vec<std::sync::Mutex<Option<Upload>>> = changes
            .iter()
            .map(|c| {
                let resumed = match c {
                    Change::Copy { object, .. } => resumable
                        .iter()
                        .find(|u| same(&u.key, &u.etag, object))
                        .map(|u| u.upload.clone()),
                    Change::Unchanged(_) => None,
                };
                std::sync::Mutex::new(resumed)
            })
            .collect();
        // An object whose multipart copy an earlier invocation began, and that changed since:
        // it changes faster than it can be copied, so it gets no more invocations than others.
        let restarted: Vec<bool> = changes
            .iter()
            .map(|c| match c {
                // (an object with no ETag cannot be matched to its upload: it starts over each time)
                Change::Copy { object, .. } => {
                    object.etag.is_empty() || resumable.iter().any(|u| u.key == object.key && u.etag != object.etag)
                }
                Change::Unchanged(_) => false,
            })
            .collect();
        let parts_before: Vec<usize> = progress.iter().map(parts_done).collect();
        let upload_ids = |p: &std::sync::Mutex<Option<Upload>>| {
            p.lock().expect("not poisoned").as_ref().map(|u| u.upload_id.clone())
        };
        let handed: Vec<Option<String>> = progress.iter().map(upload_ids).collect();
        let (soft, hard) = self.soft_and_hard_deadlines();
        let first = copies.first().map(|(i, _)| *i);
        let cut = AtomicUsize::new(changes.len());
        let launch = copies.into_iter().take_while(|(i, _)| {
            let go = Some(*i) == first || Utc::now() < soft;
            if !go {
                cut.store(*i, Ordering::SeqCst);
            }
            go
        });
        let launched: Vec<std::sync::atomic::AtomicBool> = changes
            .iter()
            .map(|_| std::sync::atomic::AtomicBool::new(false))
            .collect();
        let copy_indices: Vec<usize> = changes
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c, Change::Copy { .. }))
            .map(|(i, _)| i)
            .collect();
        {
            let progress = &progress;
            let launched = &launched;
            let mut done = stream::iter(launch)
                .map(|(i, copy)| async move {
                    launched[i].store(true, Ordering::SeqCst);
                    (i, dr.copy_resumable(&copy, &progress[i]).await)
                })
                .buffer_unordered(self.cfg.copy_concurrency as usize);
            let wait = (hard - Utc::now()).to_std().unwrap_or_default();
            let _ = tokio::time::timeout(wait, async {
                while let Some((i, result)) = done.next().await {
                    results[i] = Some(result);
                }
            })
            .await;
            // Dropping `done` cancels copies still running: an abandoned CopyObject may still
            // land as an unrecorded version; a multipart copy's progress is in `progress`, for
            // the next invocation (one no invocation goes on with is aborted by the DR
            // bucket's lifecycle rule).
        }
        let cut = cut.load(Ordering::SeqCst);
        // On a report: a copy S3 refused because the object changed or went after the report
        // was taken is looked at, and copied as it is now (within the deadline, and if one
        // request copies it). `fresh` holds what was copied instead of the report's row.
        let mut fresh: Vec<Option<ObjectInfo>> = vec![None; changes.len()];
        // Copies S3 answered (refused), to be looked at again: one left unfinished is no copy
        // that outlived the invocation, so the page is cut before it, never recorded failed.
        let mut refused = vec![false; changes.len()];
        if from_inventory {
            let moved: Vec<(usize, String)> = changes
                .iter()
                .enumerate()
                .take(cut)
                .filter(|(i, _)| matches!(&results[*i], Some(Err(e)) if moved_on(e)))
                .filter_map(|(i, c)| match c {
                    Change::Copy { object, .. } => Some((i, object.key.clone())),
                    Change::Unchanged(_) => None,
                })
                .collect();
            let source = &self.ports.source;
            let threshold = self.cfg.multipart_threshold_bytes;
            let copy_of = &copy_of;
            // Not looked at again before `soft`, or not finished by `hard`: the page is cut
            // before it, and the next invocation copies it.
            for (i, _) in &moved {
                results[*i] = None;
                refused[*i] = true;
            }
            let mut again = stream::iter(moved)
                .map(|(i, key)| async move {
                    if Utc::now() >= soft {
                        return (i, None);
                    }
                    let looked = match source.head(&spec.source_bucket, &key).await {
                        Ok(Some(now)) if now.size <= threshold => {
                            let copied = dr.copy(&copy_of(&now)).await;
                            (copied.is_ok().then_some(now), copied)
                        }
                        Ok(Some(_)) => (
                            None,
                            Err(Error::RunFailed(
                                "changed since the inventory report was taken, and now larger than one request copies: a later run copies it".into(),
                            )),
                        ),
                        // gone since: what the previous point held stands
                        Ok(None) => (
                            None,
                            Err(Error::Aws {
                                operation: "HeadObject",
                                code: "NoSuchKey".into(),
                                message: format!("s3://{}/{key} is gone", spec.source_bucket),
                                retryable: false,
                            }),
                        ),
                        Err(e) => (None, Err(e)),
                    };
                    (i, Some(looked))
                })
                .buffer_unordered(self.cfg.copy_concurrency as usize);
            let wait = (hard - Utc::now()).to_std().unwrap_or_default();
            let _ = tokio::time::timeout(wait, async {
                while let Some((i, looked)) = again.next().await {
                    if let Some((now, copied)) = looked {
                        fresh[i] = now;
                        results[i] = Some(copied);
                    }
                }
            })
            .await;
        }
        let unfinished = |from: usize, results: &[Option<Result<String>>]| {
            copy_indices
                .iter()
                .copied()
                .find(|i| *i >= from && *i < cut && results[*i].is_none())
                .unwrap_or(cut)
        };
        let mut covered = unfinished(0, &results);
        let mut given_up = vec![];
        // A multipart copy that copied parts in this invocation goes on in the next one.
        let advanced = |i: usize| parts_done(&progress[i]) > parts_before[i] && !restarted[i];
        if let Some(i) = first.filter(|i| *i == covered && covered < cut && !advanced(*i) && !refused[*i]) {
            // Even the first copy did not finish in time: record it as failed so the run moves
            // on (the next run tries it again) instead of redoing this page forever.
            results[i] = Some(Err(Error::RunFailed(
                "the copy did not finish before the invocation's deadline; the next run tries again".into(),
            )));
            // its upload is aborted once the page is recorded
            if let (Some(upload), Change::Copy { object, .. }) =
                (progress[i].lock().expect("not poisoned").take(), &changes[i])
            {
                given_up.push(PendingUpload {
                    key: object.key.clone(),
                    etag: object.etag.clone(),
                    upload,
                });
            }
            covered = unfinished(i + 1, &results);
        }
        // The earlier uploads given to copies that were launched.
        let resumed: Vec<String> = handed
            .into_iter()
            .zip(&results)
            .zip(&launched)
            .filter(|((_, result), launched)| result.is_some() || launched.load(Ordering::SeqCst))
            .filter_map(|((id, _), _)| id)
            .collect();
        // Past the cut: multipart copies in the middle, and copies finished, for the next
        // invocation (which resumes at the cut).
        let mut uploads = vec![];
        let mut copied_ahead = vec![];
        for (i, change) in changes.iter().enumerate().skip(covered) {
            let Change::Copy { object, .. } = change else { continue };
            match &results[i] {
                None => uploads.extend(
                    progress[i]
                        .lock()
                        .expect("not poisoned")
                        .clone()
                        .map(|upload| PendingUpload {
                            key: object.key.clone(),
                            etag: object.etag.clone(),
                            upload,
                        }),
                ),
                // (a copy of what a look found, not of the listed object, is made again)
                Some(Ok(version)) if !version.is_empty() && fresh[i].is_none() => copied_ahead.push(CopiedAhead {
                    key: object.key.clone(),
                    etag: object.etag.clone(),
                    version: version.clone(),
                }),
                Some(_) => {}
            }
        }
        let mut entries = Vec::with_capacity(covered);
        let mut failures = Vec::new();
        for ((change, result), fresh) in changes.iter().zip(results).zip(fresh).take(covered) {
            match (change, result) {
                (Change::Unchanged(e), _) => {
                    counts.unchanged += 1;
                    entries.push((*e).clone());
                }
                (Change::Copy { object, .. }, Some(Ok(version))) if !version.is_empty() => {
                    let object = fresh.as_ref().unwrap_or(object);
                    counts.copied += 1;
                    counts.bytes_copied += object.size.max(0) as u64;
                    entries.push(ManifestEntry {
                        key: object.key.clone(),
                        size: object.size,
                        etag: object.etag.clone(),
                        modified: object.last_modified,
                        version,
                        deleted: false,
                    });
                }
                (Change::Copy { previous, .. }, Some(Err(e))) if from_inventory && moved_on(&e) => {
                    // Changed or deleted since the report was taken: not a failure; what the
                    // previous point held stands until the change is recorded.
                    counts.moved_on += 1;
                    entries.extend(previous.map(|p| (*p).clone()));
                }
                (Change::Copy { object, previous }, result) => {
                    counts.failed += 1;
                    let reason = match result {
                        Some(Err(e)) => failure_reason(&e),
                        _ => format!(
                            "s3://{} returned no version id for the copy: is versioning still enabled?",
                            spec.dr_bucket
                        ),
                    };
                    warn!(backup = %spec.name, key = %object.key, %reason, "object not copied");
                    failures.push(ObjectFailure {
                        key: object.key.clone(),
                        reason,
                    });
                    // The previous version stands in, so the point in time still holds the key.
                    entries.extend(previous.map(|p| (*p).clone()));
                }
            }
        }
        counts.objects += entries.len() as u64;
        counts.bytes += entries.iter().map(|e| e.size.max(0) as u64).sum::<u64>();
        Copied {
            entries,
            failures,
            covered,
            uploads,
            copied_ahead,
            resumed,
            given_up,
        }
    }

    /// Expires points in time past retention, then deletes the DR versions no retained point
    /// needs, then their manifests. Each step is recorded first, so a cut-off resumes.
    async fn retention(&mut self, report: &mut RetentionReport) -> Result<()> {
        if self.state.versions_pruned {
            // An earlier invocation pruned the expiring points' versions: their manifests are
            // all that is left of them (and may be partly deleted already).
            return self.forget_expiring(report).await;
        }
        // Points expire as a set, and the next set only once this one is gone: a walk resumed
        // over a different set could skip the new points' keys, and a set that grew on every
        // run would never finish.
        let locks_before = self.state.locks.clone();
        let expired: Vec<String> = match self.state.expiring.is_empty() {
            true => {
                // Object Lock on the DR bucket: S3 locks each copy from when it lands (no later
                // than its point's end), so a point is kept at least as long as the lock, and a
                // day more for the clocks, whatever retain_days says: nothing locked is ever
                // asked to be deleted. A lock shortened since is honoured until what was
                // copied under the longer one has lapsed.
                let now = Utc::now();
                let current = match self.ports.dr.default_lock(&self.spec.dr_bucket).await {
                    Ok(current) => current,
                    Err(e) => {
                        report.errors.push(format!(
                            "cannot read the Object Lock configuration of s3://{} ({e}); nothing expires until it can be",
                            self.spec.dr_bucket
                        ));
                        return Ok(());
                    }
                };
                let locks = locks_to_honour(&self.state.locks, current, now);
                let mut keep = self.spec.retention;
                if let Some(l) = locks.first() {
                    keep.days = keep.days.max(l.days + 1);
                    report.object_lock = Some(format!(
                        "{}, {} days{}: points in time are kept at least {} days",
                        l.mode,
                        l.days,
                        l.lowered
                            .map(|at| format!(
                                " (shortened since {}; copies made before are locked that long)",
                                crate::model::stamp(at)
                            ))
                            .unwrap_or_default(),
                        keep.days
                    ));
                }
                self.state.locks = locks;
                expired_points(&self.state.points, &keep, now)
                    .into_iter()
                    .map(str::to_string)
                    .collect()
            }
            false => vec![],
        };
        if expired.is_empty() && self.state.expiring.is_empty() {
            if self.state.locks != locks_before {
                // what a later run must honour, even if the bucket's lock is shortened meanwhile
                self.save().await?;
            }
            return Ok(());
        }
        let (gone, kept): (Vec<PointInTime>, Vec<PointInTime>) =
            self.state.points.drain(..).partition(|p| expired.contains(&p.run_id));
        self.state.points = kept;
        if !gone.is_empty() {
            self.state.pruned_through = None;
            self.state.pins_pending = true;
        }
        self.state.expiring.extend(gone);
        // While this lease holds, no run starts: a run's fresh copies are unreferenced until
        // recorded, and pruning must never race them.
        self.state.retention_lease = Some(Lease::to(self.inv));
        if !self.save().await? {
            report.errors.push(RETENTION_LEFT.into());
            return Ok(());
        }
        // A restore pins its point before it checks that the point is not expiring, and this
        // looks for pins after the point was marked expiring: one of the two always sees the
        // other. So pins count only here, before anything of the set is deleted: a pin left
        // behind by a restore that saw its point expiring (and refused) must not bring back a
        // point whose versions are partly gone.
        // (Recorded once checked: an invocation that dies before checking leaves it to the next.)
        let pins = match self.state.pins_pending {
            true => manifest::pinned(&self.ports.state, &self.cfg.state, self.spec, Utc::now()).await?,
            false => Default::default(),
        };
        // A pinned change point keeps its chain, from the full point it is read through.
        let unit_start = |p: &PointInTime| {
            self.state
                .expiring
                .iter()
                .find(|b| b.run_id == p.base_id())
                .map_or(p.started, |b| b.started.min(p.started))
        };
        if let Some(first_pinned) = self
            .state
            .expiring
            .iter()
            .filter(|p| pins.contains(&p.run_id))
            .map(unit_start)
            .min()
        {
            // The pinned point stays, and so does every expiring point newer than it: what is
            // pruned is always older than everything retained (`prunable_versions` compares
            // with the oldest retained point alone).
            let (keep, gone): (Vec<PointInTime>, Vec<PointInTime>) =
                self.state.expiring.drain(..).partition(|p| p.started >= first_pinned);
            self.state.expiring = gone;
            self.state.points.extend(keep);
            self.state.points.sort_by_key(|p| p.started);
        }
        if self.state.pins_pending && !self.state.expiring.is_empty() {
            self.state.pins_pending = false;
            if !self.save().await? {
                report.errors.push(RETENTION_LEFT.into());
                return Ok(());
            }
        }
        report.points_expired = expired
            .into_iter()
            .filter(|id| self.state.expiring.iter().any(|p| &p.run_id == id))
            .collect();
        // Nothing left to expire, or pruning stopped for the deadline: release the lease.
        let nothing = self.state.expiring.is_empty();
        if nothing || !self.prune_versions(report).await? {
            report.unfinished |= !nothing;
            self.state.retention_lease = None;
            self.save().await?;
            return Ok(());
        }
        // Recorded before the manifests go: a pruning walk needs them all.
        self.state.versions_pruned = true;
        if !self.save().await? {
            report.errors.push(RETENTION_LEFT.into());
            return Ok(());
        }
        self.forget_expiring(report).await
    }

    /// Deletes the manifests of expiring points whose versions are pruned, then the points.
    async fn forget_expiring(&mut self, report: &mut RetentionReport) -> Result<()> {
        for point in &self.state.expiring {
            for part in 1..=point.parts {
                self.ports
                    .state
                    .delete(&part_key(
                        &self.cfg.state,
                        self.spec,
                        &point.run_id,
                        part,
                        &point.writers,
                    ))
                    .await?;
                report.manifests_deleted += 1;
            }
        }
        self.state.expiring.clear();
        self.state.versions_pruned = false;
        self.state.pruned_through = None;
        self.state.retention_lease = None;
        if !self.save().await? {
            report
                .errors
                .push("state changed by another invocation while expiring points; the next run finishes".into());
        }
        Ok(())
    }

    /// Deletes the DR versions that only expiring points in time name (`prunable_versions`),
    /// walking their manifests beside the oldest retained one by key, in windows no reader
    /// needs more than one part for, and never listing the DR bucket: only versions drpilot
    /// wrote are ever deleted. Deletes 1,000 a call, records how far it got after each window,
    /// and resumes there. A version S3 refuses to delete (Object Lock, access denied) is
    /// reported and left; a call that fails (throttled, unreachable) stops the walk, and the
    /// next run tries that window again. `false` when stopped.
    async fn prune_versions(&mut self, report: &mut RetentionReport) -> Result<bool> {
        let (ports, cfg, spec) = (self.ports, self.cfg, self.spec);
        let Some(oldest) = self.state.points.iter().min_by_key(|p| p.started).cloned() else {
            return Ok(true); // nothing retained: never prune everything
        };
        let expiring = self.state.expiring.clone();
        let mut kept = ManifestReader::new(&ports.state, &cfg.state, spec, &oldest);
        let mut readers: Vec<_> = expiring
            .iter()
            .map(|p| ManifestReader::new(&ports.state, &cfg.state, spec, p).lenient())
            .collect();
        if let Some(after) = self.state.pruned_through.clone() {
            kept.skip_through(&after).await?;
            for reader in readers.iter_mut() {
                reader.skip_through(&after).await?;
            }
        }
        loop {
            // The window: up to the smallest last key any reader holds in memory, the retained
            // one included, so that no reader reads more than its next part for it.
            let mut end: Option<String> = None;
            for reader in readers.iter_mut() {
                if let Some(last) = reader.buffered_end().await? {
                    end = Some(end.map_or(last.clone(), |e| e.min(last)));
                }
            }
            let Some(mut end) = end else {
                return Ok(true); // every expiring entry seen
            };
            if let Some(last) = kept.buffered_end().await? {
                end = end.min(last);
            }
            let mut expiring_entries = vec![];
            for reader in readers.iter_mut() {
                expiring_entries.extend(reader.take_through(&end).await?);
            }
            let kept_entries = kept.take_through(&end).await?;
            let doomed = prunable_versions(&expiring_entries, &kept_entries);
            let batches: Vec<Vec<(String, String)>> = doomed.chunks(DELETES_PER_CALL).map(<[_]>::to_vec).collect();
            let results: Vec<(usize, Result<Vec<NotDeleted>>)> = stream::iter(batches)
                .map(|batch| async move { (batch.len(), ports.dr.delete_versions(&spec.dr_bucket, &batch).await) })
                .buffer_unordered(DELETE_CALLS_AT_ONCE)
                .collect()
                .await;
            let mut call_failed = false;
            for (asked, result) in results {
                match result {
                    Ok(not_deleted) => {
                        report.versions_deleted += (asked - not_deleted.len()) as u64;
                        report.errors.extend(not_deleted.iter().map(|n| {
                            format!(
                                "cannot delete s3://{}/{} version {} (left in place): {}",
                                spec.dr_bucket, n.key, n.version_id, n.reason
                            )
                        }));
                    }
                    Err(e) => {
                        call_failed = true;
                        report
                            .errors
                            .push(format!("cannot delete versions in s3://{}: {e}", spec.dr_bucket));
                    }
                }
            }
            if call_failed {
                return Ok(false);
            }
            // Recorded when something was deleted, or before stopping: a window with nothing
            // to delete is cheap to walk again.
            let stop = self.near_deadline();
            if !doomed.is_empty() || stop {
                self.state.pruned_through = Some(end);
                if !self.save().await? {
                    report.errors.push(RETENTION_LEFT.into());
                    return Ok(false);
                }
            }
            if stop {
                return Ok(false);
            }
        }
    }
}

/// What `copy_changes` did with a page's changes.
struct Copied {
    /// The manifest entries of the changes it covered (a prefix of the page).
    entries: Vec<ManifestEntry>,
    failures: Vec<ObjectFailure>,
    covered: usize,
    /// Past the cut: multipart copies in the middle, and copies that finished.
    uploads: Vec<PendingUpload>,
    copied_ahead: Vec<CopiedAhead>,
    /// Uploads of earlier invocations that a copy of this page went on with (the copy
    /// completed it, aborted it, or left it in `uploads`).
    resumed: Vec<String>,
    /// Uploads of copies recorded as failed for the deadline: aborted once that is saved.
    given_up: Vec<PendingUpload>,
}

/// Parts a multipart copy has copied so far.
fn parts_done(upload: &std::sync::Mutex<Option<Upload>>) -> usize {
    upload
        .lock()
        .expect("not poisoned")
        .as_ref()
        .map_or(0, |u| u.parts.len())
}

/// S3 refused a copy pinned to an ETag because the source changed (412) or went (404).
fn moved_on(e: &Error) -> bool {
    matches!(e.aws_code(), Some("PreconditionFailed") | Some("NoSuchKey"))
}

fn change_key<'a>(change: &'a Change<'_>) -> &'a str {
    match change {
        Change::Unchanged(e) => &e.key,
        Change::Copy { object, .. } => &object.key,
    }
}

/// Why an object could not be copied, in words a responder can act on.
fn failure_reason(e: &Error) -> String {
    match e.aws_code() {
        Some("PreconditionFailed") => {
            "changed at the source during the run; the next run copies the new version".into()
        }
        Some("InvalidObjectState") | Some("ObjectNotInActiveTierError") => {
            "archived (GLACIER or DEEP_ARCHIVE) and not restored: S3 cannot copy it until it is restored".into()
        }
        Some("AccessDenied") => {
            format!("access denied ({e}): check the function's role and the object's KMS key policy")
        }
        Some("NoSuchKey") => "deleted at the source during the run".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg() -> BackupConfig {
        BackupConfig::from_vars(&HashMap::from([
            ("DRPILOT_SOURCE_REGION", "us-east-1"),
            ("DRPILOT_DR_REGION", "us-west-2"),
            (
                "DRPILOT_S3_BACKUPS",
                r#"[{"name": "assets", "source_bucket": "a-prod", "dr_bucket": "a-dr"},
                    {"name": "logs", "source_bucket": "l-prod", "dr_bucket": "l-dr"}]"#,
            ),
            ("DRPILOT_STATE_BUCKET", "drpilot-state"),
            ("DRPILOT_NOTIFY_TOPIC_ARN", "arn:aws:sns:us-west-2:123456789012:drpilot"),
        ]))
        .unwrap()
    }

    fn names(backups: Vec<&BackupSpec>) -> Vec<&str> {
        backups.iter().map(|b| b.name.as_str()).collect()
    }

    /// The backups an event is for: a run's, or those whose buckets S3 reported changes in.
    fn decide(event: Value, c: &BackupConfig) -> Result<Vec<&str>> {
        match BackupEvent::decode(event)? {
            BackupEvent::Changes(messages) => Ok(messages
                .iter()
                .flat_map(|m| m.changes.clone().unwrap_or_default())
                .flat_map(|change| c.backups.iter().filter(move |b| changes::covers(b, &change)))
                .map(|b| b.name.as_str())
                .collect()),
            e => backups_for(&e, c).map(names),
        }
    }

    #[test]
    fn every_sample_event_decodes_to_the_decision_it_documents() {
        let c = cfg();
        let decided: Vec<(String, Vec<&str>)> = crate::events::samples("s3-backup")
            .into_iter()
            .map(|(f, e)| (f, decide(e, &c).unwrap()))
            .collect();
        let all = vec!["assets", "logs"];
        assert_eq!(
            decided,
            [
                ("continue.json".to_string(), all.clone()),
                ("operator-run-one.json".to_string(), vec!["assets"]),
                ("operator-run.json".to_string(), all.clone()),
                ("schedule.json".to_string(), all),
                ("sqs-s3-notifications.json".to_string(), vec!["assets"]),
            ]
        );
    }

    #[test]
    fn events_choose_the_backups() {
        let c = cfg();
        let one = serde_json::json!({"action": "run", "backup": "logs"});
        assert_eq!(decide(one, &c).unwrap(), ["logs"]);
        for (bad, says) in [
            (serde_json::json!("run"), "JSON object"),
            (serde_json::json!({"action": "restore"}), "unknown action"),
            (
                serde_json::json!({"action": "run", "backup": "nope"}),
                "unknown backup \"nope\"; configured: assets, logs",
            ),
            (serde_json::json!({"action": "run", "backup": 3}), "expected a string"),
            (
                serde_json::json!({"action": "run", "backup": null}),
                "expected a string",
            ),
            (
                serde_json::json!({"action": null, "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
                "the backup accepts",
            ),
            (serde_json::json!({"Records": [{"s3": {}}]}), "the backup accepts"),
            (
                serde_json::json!({"action": "run", "backups": "logs"}),
                "unknown field `backups`",
            ),
            (
                serde_json::json!({"source": "aws.s3", "detail-type": "Object Created"}),
                "unsupported event",
            ),
        ] {
            let err = decide(bad.clone(), &c).unwrap_err();
            assert!(
                matches!(err, Error::BadEvent(_)) && err.to_string().contains(says),
                "{bad}: {err}"
            );
        }
    }

    fn aws(code: &str) -> Error {
        Error::Aws {
            operation: "CopyObject",
            code: code.into(),
            message: "m".into(),
            retryable: false,
        }
    }

    #[test]
    fn failures_say_what_to_do() {
        assert!(failure_reason(&aws("PreconditionFailed")).contains("changed at the source during the run"));
        assert!(failure_reason(&aws("InvalidObjectState")).contains("archived"));
        assert!(failure_reason(&aws("AccessDenied")).contains("KMS key policy"));
        assert!(failure_reason(&aws("InternalError")).contains("InternalError"));
    }

    #[test]
    fn a_clean_run_is_quiet_and_failures_are_named_in_the_notice() {
        let c = cfg();
        let mut b = BackupReport::new(&c.backups[0]);
        b.outcome = Outcome::Complete;
        b.counts.copied = 5;
        let mut report = RunReport {
            started_at: "2026-11-25T02:00:00Z".into(),
            backups: vec![b.clone()],
        };
        assert!(report.failure_notice(&c).is_none());
        b.counts.failed = 23;
        b.failures = (0..FAILURES_KEPT)
            .map(|i| ObjectFailure {
                key: format!("k{i}"),
                reason: "archived".into(),
            })
            .collect();
        report.backups = vec![b];
        let notice = report.failure_notice(&c).unwrap();
        assert_eq!(notice.subject, "drpilot: S3 backup could not copy 23 objects");
        assert!(notice.body.contains("FAILED k0: archived"));
        assert!(notice.body.contains("... and 3 more"));
    }
}
