//! The restore verifier: proves each listed database's newest DR copy restores, and measures
//! how long that takes. A run restores every copy into a throwaway database in the DR region
//! (tagged `drpilot:restore-test=<run>`), waits for it across invocations (the record in the
//! state bucket and its lease make that resumable and single-flight), checks it, deletes it
//! without a final snapshot, and reports: to responders, to metrics, to the dashboard. A
//! sweeper at the start of each run deletes what an earlier run left behind, by tag only.

use crate::config::VerifierConfig;
use crate::error::{Error, Result};
use crate::events::{self, Decode, Incoming};
use crate::model::{tags, BackupSpec, DbKind, VerifySpec};
use crate::notice::{Notice, Severity};
use crate::plan::copy::{managed_copies_of, newest_available};
use crate::plan::lag::human_seconds;
use crate::plan::verify::{self, Check, Seen};
use crate::ports::{
    CopyFacts, DrSnapshotStore, MetricUnit, MetricValue, Metrics, Notifier, RestoreLab, RestoreRequest, RestoreStarted,
    StateStore,
};
use crate::ports::{Documents, ObjectStore};
use crate::state::{Invocation, Lease, Loaded, Record};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use tracing::{info, warn};

pub struct VerifierPorts<C, L, M, St, N, O> {
    /// The DR region's copies (to pick the newest).
    pub copies: C,
    pub lab: L,
    /// The DR region's buckets: S3 backups' DR buckets, and the state bucket's scratch prefix
    /// their restore tests restore into.
    pub objects: O,
    /// drpilot's metrics in the DR region.
    pub metrics: M,
    pub state: St,
    pub notifier: N,
}

pub type AwsVerifierPorts = VerifierPorts<
    crate::aws::rds::RdsDr,
    crate::aws::restore::RdsRestoreLab,
    crate::aws::cloudwatch::CloudWatchMetrics,
    crate::aws::s3::S3State,
    crate::aws::sns::SnsNotifier,
    crate::aws::s3::S3Objects,
>;

impl AwsVerifierPorts {
    pub fn aws(sdk: &aws_config::SdkConfig, cfg: &VerifierConfig) -> Self {
        use crate::aws::{cloudwatch, rds, restore, s3, sns};
        let dr = rds::client_in(sdk, &cfg.dr_region);
        VerifierPorts {
            copies: rds::RdsDr::new(dr.clone()),
            lab: restore::RdsRestoreLab::new(dr, &cfg.deployment),
            metrics: cloudwatch::CloudWatchMetrics::new(sdk, &cfg.dr_region),
            state: s3::S3State::new(
                s3::client_in(sdk, &cfg.dr_region, cfg.s3_force_path_style),
                &cfg.state.bucket,
            ),
            notifier: sns::SnsNotifier::new(sdk, &cfg.notify_topic_arn, "drpilot.restore-verifier"),
            // one request copies any object a sample draws (at most 5 GiB)
            objects: s3::S3Objects::new(
                s3::client_in(sdk, &cfg.dr_region, cfg.s3_force_path_style),
                5 * 1024 * 1024 * 1024,
            ),
        }
    }
}

/// The verifier's operator commands.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum VerifierCommand {
    /// Verify now: every listed database and backup, or those named.
    Run {
        #[serde(default)]
        databases: Option<Vec<String>>,
        #[serde(default)]
        backups: Option<Vec<String>>,
    },
    /// Go on with the run in progress (none is started): Terraform sends it every minute.
    Continue {},
    /// The run in progress and each database's last verification; changes nothing.
    Status {},
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifierEvent {
    /// EventBridge's schedule; its id tells a redelivery from the next week's run.
    Schedule {
        id: String,
    },
    Operator {
        databases: Option<Vec<String>>,
        backups: Option<Vec<String>>,
    },
    Continue,
    Status,
}

const ACCEPTS: &str = r#"the restore verifier accepts an EventBridge schedule, {"action": "run"} with optional "databases": [...] and "backups": [...], {"action": "continue"} or {"action": "status"}"#;

impl Decode for VerifierEvent {
    fn decode(event: Value) -> Result<Self> {
        match events::decode::<VerifierCommand>(event, ACCEPTS)? {
            Incoming::Command(VerifierCommand::Run { databases, backups }) => {
                Ok(VerifierEvent::Operator { databases, backups })
            }
            Incoming::Command(VerifierCommand::Continue {}) => Ok(VerifierEvent::Continue),
            Incoming::Command(VerifierCommand::Status {}) => Ok(VerifierEvent::Status),
            Incoming::Schedule(e) => Ok(VerifierEvent::Schedule {
                id: e.id.unwrap_or_default(),
            }),
            other => Err(other.unsupported(ACCEPTS)),
        }
    }
}

/// Where the verifier's record lives (the dashboard reads it).
pub fn record_key(state: &crate::model::StateLocation) -> String {
    state.key("restore-verifier/state.json")
}

/// The verifier's record: the run in progress, and each database's last verification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerifierState {
    #[serde(default)]
    pub lease: Option<Lease>,
    #[serde(default)]
    pub run: Option<Run>,
    /// By database identifier, and `s3:<backup>` for an S3 backup (`backup_key`).
    #[serde(default)]
    pub last: BTreeMap<String, Verification>,
    /// Runs ended (finished, or stopped and ended) whose report has not reached responders
    /// and metrics yet: sent by the next invocation, whatever woke it.
    #[serde(default)]
    pub unreported: Vec<Run>,
    /// The id of the last schedule event that started a run: EventBridge delivers an event
    /// at least once, and a redelivery must not start a second week's run.
    #[serde(default)]
    pub last_schedule: Option<String>,
    /// A scheduled run that came while another was in progress: started when that one ends.
    #[serde(default)]
    pub pending: Option<String>,
}

/// A run is ended when it has not finished within this many restore timeouts (each phase
/// has one; a cluster waits through three).
const RUN_BOUND: i32 = 4;

/// Where an S3 backup's verifications are kept (a database identifier has no `:`).
pub fn backup_key(backup: &str) -> String {
    format!("s3:{backup}")
}

/// How a report names what `last`'s key stands for.
fn label(key: &str) -> String {
    match key.strip_prefix("s3:") {
        Some(backup) => format!("S3 backup {backup}"),
        None => key.to_string(),
    }
}

/// A new run of `dbs` and `backups`.
fn new_run(trigger: &str, dbs: &[&VerifySpec], backups: &[&BackupSpec], now: DateTime<Utc>) -> Run {
    Run {
        id: verify::run_id(now),
        started: now,
        trigger: trigger.into(),
        dbs: dbs.iter().map(|s| DbRun::new(s)).collect(),
        backups: backups
            .iter()
            .map(|b| BackupRun {
                backup: b.name.clone(),
                result: None,
                attempts: 0,
            })
            .collect(),
        swept: vec![],
        sweep_failures: vec![],
        ended: None,
        metrics_sent: false,
    }
}

/// RDS refusing a delete because of the database's state (being made, backed up, modified):
/// it is asked again.
fn busy(e: &Error) -> bool {
    e.aws_code().is_some_and(|c| {
        matches!(
            c,
            "InvalidDBInstanceState" | "InvalidDBInstanceStateFault" | "InvalidDBClusterStateFault"
        )
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// `plan::verify::run_id`: the value of `drpilot:restore-test` on what it restores.
    pub id: String,
    pub started: DateTime<Utc>,
    pub trigger: String,
    pub dbs: Vec<DbRun>,
    /// S3 backups: a sample of each one's newest point in time is restored.
    #[serde(default)]
    pub backups: Vec<BackupRun>,
    /// What the sweeper deleted at the start of the run (kind, identifier, its run).
    #[serde(default)]
    pub swept: Vec<String>,
    /// What it could not delete, and why.
    #[serde(default)]
    pub sweep_failures: Vec<String>,
    /// Why it was ended before every database was done (`None`: it finished).
    #[serde(default)]
    pub ended: Option<String>,
    /// Its metrics are published (once: a notice sent again does not count a restore twice).
    #[serde(default)]
    pub metrics_sent: bool,
}

/// One S3 backup's restore test in a run: done once it has a result (it takes one
/// invocation; a run cut short does it again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupRun {
    pub backup: String,
    #[serde(default)]
    pub result: Option<Verification>,
    /// Tries begun: one that ran out of an invocation's time is tried once more, at the start
    /// of the next (it may have begun late in a busy invocation).
    #[serde(default)]
    pub attempts: u32,
}

impl Run {
    /// What the run found: each database's verification and each backup's, keyed as `last` is.
    fn results(&self) -> Vec<(String, Verification)> {
        let dbs = self.dbs.iter().map(|d| (d.db.clone(), d.verification(&self.id)));
        let backups = self.backups.iter().map(|b| {
            let v = b.result.clone().unwrap_or_else(|| {
                Verification::failed(&self.id, "the run ended before its restore test was done".into())
            });
            (backup_key(&b.backup), v)
        });
        dbs.chain(backups).collect()
    }

    fn finished(&self) -> bool {
        self.dbs.iter().all(|d| d.phase == Phase::Done) && self.backups.iter().all(|b| b.result.is_some())
    }
}

/// Where one database's verification has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The newest copy is to be found.
    Pick,
    /// The restore is recorded and about to be asked for (asked again after a crash: AWS
    /// refuses a second one with the same identifier).
    Restore,
    /// AWS took the restore; waiting for the database (a cluster: the cluster).
    Restoring,
    /// A restored cluster's instance is to be added.
    AddInstance,
    /// Waiting for the cluster's instance.
    InstanceStarting,
    /// Deleting what was restored, until AWS no longer lists it.
    TearDown,
    Done,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbRun {
    pub db: String,
    pub kind: DbKind,
    pub phase: Phase,
    #[serde(default)]
    pub copy: Option<CopyFacts>,
    #[serde(default)]
    pub instance_class: Option<String>,
    /// The restored database's identifier (a cluster's).
    #[serde(default)]
    pub restored: Option<String>,
    /// A restored cluster's instance.
    #[serde(default)]
    pub instance: Option<String>,
    /// When the restore was asked for.
    #[serde(default)]
    pub asked: Option<DateTime<Utc>>,
    /// When it was first seen usable (a cluster: its instance available).
    #[serde(default)]
    pub available: Option<DateTime<Utc>>,
    #[serde(default)]
    pub checks: Vec<Check>,
    #[serde(default)]
    pub failure: Option<String>,
    /// When AWS no longer listed anything it restored.
    #[serde(default)]
    pub torn_down: Option<DateTime<Utc>>,
    /// When the current phase began: no phase lasts longer than the restore timeout.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// The last error AWS gave a step (retried on the next poll), for the report.
    #[serde(default)]
    pub last_error: Option<String>,
}

pub use crate::plan::verify::Verification;

impl DbRun {
    fn new(spec: &VerifySpec) -> Self {
        DbRun {
            db: spec.db.id.clone(),
            kind: spec.db.kind,
            phase: Phase::Pick,
            copy: None,
            instance_class: spec.instance_class.clone(),
            restored: None,
            instance: None,
            asked: None,
            available: None,
            checks: vec![],
            failure: None,
            torn_down: None,
            since: None,
            last_error: None,
        }
    }

    fn enter(&mut self, phase: Phase) -> Step {
        self.phase = phase;
        self.since = Some(Utc::now());
        Step::Progressed
    }

    /// Done, nothing (more) to delete.
    fn done(&mut self) -> Step {
        self.torn_down = Some(Utc::now());
        self.enter(Phase::Done)
    }

    fn verification(&self, run: &str) -> Verification {
        let passed = self.failure.is_none()
            && self.torn_down.is_some()
            && !self.checks.is_empty()
            && self.checks.iter().all(|c| c.passed);
        let seconds = |d: Duration| d.num_milliseconds() as f64 / 1000.0;
        let copy_time = self.copy.as_ref().and_then(|c| c.source_time);
        Verification {
            run: run.into(),
            passed,
            finished: self.torn_down.unwrap_or_else(Utc::now),
            copy: self.copy.as_ref().map(|c| c.id.clone()),
            copy_time,
            copy_age_seconds: copy_time.zip(self.asked).map(|(t, asked)| seconds(asked - t)),
            restore_seconds: self.asked.zip(self.available).map(|(a, b)| seconds(b - a)),
            checks: self.checks.clone(),
            failure: self.failure.clone().or_else(|| {
                let failed: Vec<String> = self
                    .checks
                    .iter()
                    .filter(|c| !c.passed)
                    .map(|c| format!("{}: {}", c.name, c.detail))
                    .collect();
                (!failed.is_empty()).then(|| format!("checks failed: {}", failed.join("; ")))
            }),
        }
    }

    fn fail(&mut self, why: String) -> Step {
        warn!(db = %self.db, %why, "restore verification failed");
        self.failure.get_or_insert(why);
        self.enter(Phase::TearDown)
    }

    /// Ends a teardown that cannot finish: what is left is the sweeper's (and the report says so).
    fn give_up_teardown(&mut self, why: String) -> Step {
        warn!(db = %self.db, %why, "restore test not deleted");
        let note = format!("not deleted: {why}; the next run's sweeper deletes it");
        self.failure = Some(match self.failure.take() {
            Some(f) => format!("{f}; {note}"),
            None => note,
        });
        self.enter(Phase::Done)
    }

    fn request(&self, cfg: &VerifierConfig, run: &str) -> Option<RestoreRequest> {
        let copy = self.copy.clone()?;
        Some(RestoreRequest {
            kind: self.kind,
            id: self.restored.clone()?,
            instance_class: self.instance_class.clone()?,
            subnet_group: cfg.subnet_group.clone(),
            security_groups: cfg.security_groups.clone(),
            tags: [
                (tags::RESTORE_TEST, run),
                (tags::MANAGED_BY, tags::MANAGED_BY_VALUE),
                (tags::DEPLOYMENT, cfg.deployment.as_str()),
                (tags::SOURCE_DB, self.db.as_str()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            copy,
        })
    }
}

/// What one step of a database's verification did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Something changed: save, and take the next step at once.
    Progressed,
    /// Waiting on AWS: look again after the poll interval.
    Wait,
}

use crate::model::stamp;

pub struct Verifier<'a, C, L, M, St, N, O> {
    pub ports: &'a VerifierPorts<C, L, M, St, N, O>,
    pub cfg: &'a VerifierConfig,
    pub invocation: Invocation,
}

impl<C, L, M, St, N, O> Verifier<'_, C, L, M, St, N, O>
where
    C: DrSnapshotStore,
    L: RestoreLab,
    M: Metrics,
    St: StateStore + Documents,
    N: Notifier,
    O: ObjectStore,
{
    pub async fn handle(&self, event: VerifierEvent) -> Result<Value> {
        // A named database or backup that is not listed is a bad event, decided before any AWS call.
        let (chosen, chosen_backups) = self.chosen(&event)?;
        let record = Record::new(&self.ports.state, record_key(&self.cfg.state));
        let (mut state, etag) = match record.read::<VerifierState>().await? {
            Loaded::Absent => (VerifierState::default(), None),
            Loaded::Found { value, etag } => (value, Some(etag)),
            Loaded::Unreadable { error, .. } => {
                return Err(Error::RunFailed(format!(
                    "the verifier's record s3://{}/{} cannot be read ({error}); it changes nothing until it is fixed or removed",
                    self.cfg.state.bucket, record.key
                )))
            }
        };
        if event == VerifierEvent::Status {
            return Ok(json!({"run": state.run, "last": state.last, "unreported": state.unreported.len()}));
        }
        let now = Utc::now();
        if let Some(lease) = &state.lease {
            if lease.held_by_other(&self.invocation.request_id, now) {
                info!(holder = %lease.holder, "another invocation is verifying");
                if let VerifierEvent::Schedule { id } = &event {
                    // this week's run must not be lost while another invocation works: it is
                    // recorded for the holder to start (the holder's writes keep it)
                    return self.queue_schedule(&record, state, etag, id).await;
                }
                return Ok(
                    json!({"skipped": "another invocation holds the verifier's lease", "run": state.run.as_ref().map(|r| &r.id)}),
                );
            }
        }
        let timeout = Duration::seconds(i64::from(self.cfg.timeout_seconds));
        let mut notes: Vec<String> = vec![];
        // A run that has not ended within four timeouts (no phase may last longer than one;
        // a cluster's has three waits) is not advancing: its invocations keep dying, or
        // nothing invokes it. It is ended and reported, and what it made is swept at once.
        let abandoned = state
            .run
            .as_ref()
            .is_some_and(|r| now - r.started > timeout * RUN_BOUND);
        if abandoned {
            self.abandon(&mut state, now);
        }
        let redelivered = matches!(&event, VerifierEvent::Schedule { id } if !id.is_empty() && state.last_schedule.as_deref() == Some(id.as_str()));
        if redelivered {
            notes.push("this schedule event was delivered before: it starts no second run".into());
        }
        // what starts a run now: the event, or (with no run) a scheduled run that waited
        let start: Option<String> = match &event {
            _ if state.run.is_some() => None,
            VerifierEvent::Continue => state.pending.clone(),
            _ if redelivered => state.pending.clone(),
            VerifierEvent::Schedule { .. } => Some("schedule".into()),
            _ => Some("operator".into()),
        };
        let starting = start.is_some();
        if let (VerifierEvent::Schedule { id }, false) = (&event, redelivered) {
            state.last_schedule = Some(id.clone());
            if !starting {
                // this week's run is not lost: it starts when the one in progress ends
                state.pending = Some("schedule".into());
                notes.push("a run is in progress: the scheduled run starts when it ends".into());
            }
        }
        if let (VerifierEvent::Operator { .. }, Some(run), false) = (&event, &state.run, starting) {
            notes.push(format!(
                "run {} was in progress: it went on, and no other run was started; ask again when it ends",
                run.id
            ));
        }
        if let Some(trigger) = start {
            let (dbs, backups) = match event {
                VerifierEvent::Operator { .. } => (chosen, chosen_backups),
                _ => self.everything(),
            };
            if trigger == "schedule" {
                state.pending = None; // the scheduled run is this one
            }
            state.run = Some(new_run(&trigger, &dbs, &backups, now));
        }
        if state.run.is_none() && state.unreported.is_empty() {
            return Ok(json!({"run": null, "notes": notes}));
        }
        state.lease = Some(Lease::to(&self.invocation));
        let etag = match record.write_own(&state, etag.as_deref()).await? {
            Some(e) => e,
            None => {
                // another invocation wrote first: a scheduled run is recorded for it, not lost
                if let (VerifierEvent::Schedule { id }, false) = (&event, redelivered) {
                    if let Loaded::Found { value, etag } = record.read::<VerifierState>().await? {
                        return self.queue_schedule(&record, value, Some(etag), id).await;
                    }
                }
                return Ok(json!({"skipped": "another invocation took the verifier's record first"}));
            }
        };
        let mut work = Work {
            record: &record,
            state,
            etag,
            notes,
            me: self.invocation.request_id.clone(),
        };
        let result = self.work(&mut work, starting, abandoned).await;
        if result.is_err() {
            // free the run for the continuation at once, not at this invocation's deadline
            work.state.lease = None;
            let _ = record.write_own(&work.state, Some(&work.etag)).await;
        }
        result
    }

    /// Every listed database and backup.
    fn everything(&self) -> (Vec<&VerifySpec>, Vec<&BackupSpec>) {
        (self.cfg.databases.iter().collect(), self.cfg.backups.iter().collect())
    }

    /// What an event asks to verify: an operator's run names databases, backups or both
    /// (neither: everything); every name must be listed.
    fn chosen(&self, event: &VerifierEvent) -> Result<(Vec<&VerifySpec>, Vec<&BackupSpec>)> {
        let VerifierEvent::Operator { databases, backups } = event else {
            return Ok(self.everything());
        };
        if databases.is_none() && backups.is_none() {
            return Ok(self.everything());
        }
        let mut dbs = vec![];
        for name in databases.iter().flatten() {
            dbs.push(self.cfg.database(name).ok_or_else(|| {
                let known: Vec<&str> = self.cfg.databases.iter().map(|d| d.db.id.as_str()).collect();
                Error::BadEvent(format!("unknown database {name:?}; verified: {}", known.join(", ")))
            })?);
        }
        let mut bks = vec![];
        for name in backups.iter().flatten() {
            bks.push(self.cfg.backup(name).ok_or_else(|| {
                let known: Vec<&str> = self.cfg.backups.iter().map(|b| b.name.as_str()).collect();
                Error::BadEvent(format!("unknown backup {name:?}; verified: {}", known.join(", ")))
            })?);
        }
        if dbs.is_empty() && bks.is_empty() {
            return Err(Error::BadEvent(
                "\"databases\" and \"backups\" name nothing; leave them out to verify everything".into(),
            ));
        }
        Ok((dbs, bks))
    }

    /// Records a scheduled run to start when the run in progress ends (another invocation
    /// holds the lease): only `pending` and `last_schedule` change, and the holder's own
    /// writes keep them.
    async fn queue_schedule(
        &self,
        record: &Record<'_, St>,
        mut state: VerifierState,
        mut etag: Option<String>,
        id: &str,
    ) -> Result<Value> {
        for _ in 0..3 {
            if !id.is_empty() && state.last_schedule.as_deref() == Some(id) {
                return Ok(json!({"skipped": "this schedule event was delivered before: it starts no second run"}));
            }
            state.last_schedule = Some(id.to_string());
            state.pending = Some("schedule".into());
            if record.write_own(&state, etag.as_deref()).await?.is_some() {
                return Ok(json!({
                    "queued": "another invocation is verifying: the scheduled run starts when the run in progress ends",
                    "run": state.run.as_ref().map(|r| &r.id),
                }));
            }
            match record.read::<VerifierState>().await? {
                Loaded::Found { value, etag: e } => {
                    state = value;
                    etag = Some(e);
                }
                _ => break,
            }
        }
        Err(Error::RunFailed(
            "the verifier's record kept changing: this scheduled run could not be recorded".into(),
        ))
    }

    /// Advances the run until it ends or the deadline nears, then sends what is unreported.
    async fn work(&self, w: &mut Work<'_, St>, starting: bool, abandoned: bool) -> Result<Value> {
        if abandoned {
            if let Some(ended) = w.state.unreported.last_mut() {
                self.sweep(ended, Utc::now()).await;
            }
            w.save().await?;
        }
        if starting {
            if let Some(run) = w.state.run.as_mut() {
                self.sweep(run, Utc::now()).await;
            }
            w.save().await?;
        }
        let stop = self.invocation.stop_at(self.cfg.deadline_margin_seconds);
        let poll = std::time::Duration::from_secs(u64::from(self.cfg.poll_seconds));
        while w.state.run.is_some() {
            let run_id = w.state.run.as_ref().map(|r| r.id.clone()).unwrap_or_default();
            // some database's step changed something: its next step is taken at once
            let mut again = false;
            let dbs = w.state.run.as_ref().map_or(0, |r| r.dbs.len());
            for i in 0..dbs {
                let Some(db) = w.state.run.as_mut().map(|r| &mut r.dbs[i]) else {
                    break;
                };
                if db.phase == Phase::Done {
                    continue;
                }
                let step = match self.step(db, &run_id).await {
                    Ok(Step::Progressed) => {
                        db.last_error = None;
                        Step::Progressed
                    }
                    Ok(Step::Wait) => {
                        db.last_error = None; // AWS answered: an earlier error is no longer the last
                        Step::Wait
                    }
                    // AWS did not answer this time (throttled, 5xx), or the database is in a
                    // state it cannot be deleted in yet: the next poll asks again, until the
                    // phase's bound
                    Err(e) if e.is_retryable() || (db.phase == Phase::TearDown && busy(&e)) => {
                        warn!(db = %db.db, error = %e, "a verification step failed; it is retried");
                        let e = e.to_string();
                        if db.last_error.as_deref() != Some(e.as_str()) {
                            db.last_error = Some(e);
                            w.save().await?; // for the report; no step taken
                        }
                        continue;
                    }
                    // A refusal that asking again cannot change (access denied, a missing
                    // subnet group, ...): the verification fails with it.
                    Err(e) if db.phase == Phase::TearDown => db.give_up_teardown(e.to_string()),
                    Err(e) => db.fail(e.to_string()),
                };
                if step == Step::Progressed {
                    again = true;
                    w.save().await?;
                }
            }
            // S3 backups: each one's restore test takes one go (a sample is small), while RDS
            // works on the restores just asked for
            let waiting: Vec<String> = w.state.run.as_ref().map_or(vec![], |r| {
                r.backups
                    .iter()
                    .filter(|b| b.result.is_none())
                    .map(|b| b.backup.clone())
                    .collect()
            });
            for name in waiting {
                if tokio::time::Instant::now() >= stop {
                    break;
                }
                // the try is recorded first: one that dies with the invocation counts too
                let attempt = match w
                    .state
                    .run
                    .as_mut()
                    .and_then(|r| r.backups.iter_mut().find(|b| b.backup == name))
                {
                    Some(b) => {
                        b.attempts += 1;
                        b.attempts
                    }
                    None => continue,
                };
                w.save().await?;
                let (v, left, retry) = match self.cfg.backup(&name) {
                    // begun twice already, and no invocation lived to record how it went
                    Some(_) if attempt > 2 => (
                        Verification::failed(&run_id, format!(
                                "begun {} times; no invocation lived to finish it (an object too large to read within the deadline's margin?)",
                                attempt - 1
                            )),
                        vec![],
                        false,
                    ),
                    Some(spec) => {
                        let tested = crate::backup::verify::verify_backup(
                            &self.ports.state,
                            &self.ports.objects,
                            &self.cfg.state,
                            spec,
                            self.cfg.sample,
                            &run_id,
                            stop,
                        )
                        .await;
                        let retry = tested.out_of_time && attempt < 2;
                        (tested.verification, tested.scratch_left, retry)
                    }
                    None => (
                        Verification::failed(&run_id, "no longer listed in DRPILOT_VERIFY_BACKUPS".into()),
                        vec![],
                        false,
                    ),
                };
                if retry {
                    w.notes.push(format!(
                        "the restore test of S3 backup {name} ran out of this invocation's time; the next invocation tries it again from its start"
                    ));
                }
                if let Some(run) = w.state.run.as_mut() {
                    run.sweep_failures.extend(left);
                    if let Some(b) = run.backups.iter_mut().find(|b| b.backup == name) {
                        b.result = (!retry).then_some(v);
                    }
                }
                again = true;
                w.save().await?;
            }
            if w.state.run.as_ref().is_some_and(Run::finished) {
                let mut run = w.state.run.take().expect("checked above");
                self.sweep(&mut run, Utc::now()).await; // what the start found still being deleted
                for (key, v) in run.results() {
                    w.state.last.insert(key, v);
                }
                w.state.unreported.push(run);
                // a scheduled run that came while this one went on starts now (or, out of
                // time, with the next continuation)
                let time_left = tokio::time::Instant::now() + poll < stop;
                if let Some(trigger) = w.state.pending.take_if(|_| time_left) {
                    let (dbs, backups) = self.everything();
                    let mut next = new_run(&trigger, &dbs, &backups, Utc::now());
                    self.sweep(&mut next, Utc::now()).await;
                    w.state.run = Some(next);
                }
                w.save().await?;
                continue;
            }
            let now = tokio::time::Instant::now();
            if now >= stop || (!again && now + poll >= stop) {
                break;
            }
            if !again {
                tokio::time::sleep(poll).await;
            }
        }
        // Out of time, or done: what ended is reported (under the lease: one invocation sends
        // it), then the lease is given back (the continuation goes on from here).
        let (delivered, undelivered) = self.deliver(w).await?;
        w.state.lease = None;
        w.save().await?;
        let run = w.state.run.as_ref();
        let mut out = json!({
            "run": run.map(|r| &r.id),
            "in_progress": run.map(|r| r.dbs.iter().map(|d| json!({"db": d.db, "phase": d.phase}))
                .chain(r.backups.iter().filter(|b| b.result.is_none()).map(|b| json!({"backup": b.backup})))
                .collect::<Vec<_>>()),
            "reported": delivered,
            "notes": w.notes,
        });
        // The run that finished in this invocation, at the top (its results, what it swept).
        if let Some(last) = out["reported"]
            .as_array()
            .and_then(|r| r.iter().rev().find(|r| r["ended"].is_null()))
            .cloned()
        {
            for key in ["run", "results", "swept", "sweep_failures", "notice"] {
                out[key] = last[key].clone();
            }
        }
        let abandoned: Vec<Value> = out["reported"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| !r["ended"].is_null())
            .flat_map(|r| r["results"].as_array().cloned().unwrap_or_default())
            .collect();
        out["abandoned"] = abandoned.into();
        match undelivered {
            None => Ok(out),
            Some(why) => Err(Error::RunFailed(format!(
                "{why}; the report is kept and sent again by the next invocation"
            ))),
        }
    }

    /// Sends each unreported run's notice and metrics; a run leaves the record once both went
    /// out. What could not be sent stays for the next invocation, and this one fails (the
    /// function's errors alarm) saying why.
    async fn deliver(&self, w: &mut Work<'_, St>) -> Result<(Vec<Value>, Option<String>)> {
        let mut out = vec![];
        let mut problems = vec![];
        while let Some(run) = w.state.unreported.first().cloned() {
            let results = run.results();
            let notice = notice(&run, &results);
            if !run.metrics_sent {
                if let Err(e) = self
                    .ports
                    .metrics
                    .publish(&self.cfg.namespace, &metrics(&results))
                    .await
                {
                    problems.push(format!("run {}: metrics not published: {e}", run.id));
                    break;
                }
                w.state.unreported[0].metrics_sent = true;
                w.save().await?;
            }
            if let Err(e) = self.ports.notifier.notify(&notice).await {
                problems.push(format!("run {}: responders not told: {e}", run.id));
                break;
            }
            w.state.unreported.remove(0);
            w.save().await?;
            let report = json!({
                "run": run.id,
                "trigger": run.trigger,
                "ended": run.ended,
                "results": results.iter().map(|(key, v)| match key.strip_prefix("s3:") {
                    Some(backup) => json!({"backup": backup, "verification": v}),
                    None => json!({"db": key, "verification": v}),
                }).collect::<Vec<_>>(),
                "swept": run.swept,
                "sweep_failures": run.sweep_failures,
                "notice": notice.subject,
            });
            info!(%report, "restore verification reported");
            out.push(report);
        }
        Ok((out, (!problems.is_empty()).then(|| problems.join("; "))))
    }

    /// One step of one database's verification.
    async fn step(&self, db: &mut DbRun, run: &str) -> Result<Step> {
        let now = Utc::now();
        let timeout = Duration::seconds(i64::from(self.cfg.timeout_seconds));
        let since = *db.since.get_or_insert(now);
        if db.phase != Phase::Done && now - since > timeout {
            let waited = human_seconds(f64::from(self.cfg.timeout_seconds));
            let last = db
                .last_error
                .as_ref()
                .map(|e| format!("; the last error: {e}"))
                .unwrap_or_default();
            return Ok(match db.phase {
                Phase::TearDown => db.give_up_teardown(format!("still listed {waited} after its delete began{last}")),
                Phase::Restoring | Phase::InstanceStarting => {
                    db.fail(format!("not available {waited} after the restore was asked for{last}"))
                }
                phase => db.fail(format!("stuck at {phase:?} for {waited}{last}")),
            });
        }
        match db.phase {
            Phase::Done => Ok(Step::Wait),
            Phase::Pick => {
                let protected = crate::model::ProtectedDb {
                    kind: db.kind,
                    id: db.db.clone(),
                };
                let copies = self.ports.copies.copies_of(&protected).await?;
                let ours = managed_copies_of(&copies, &protected, &self.cfg.source_region, &self.cfg.deployment);
                let ours: Vec<_> = ours.into_iter().cloned().collect();
                let Some(newest) = newest_available(&ours) else {
                    db.failure = Some(format!(
                        "no available DR copy of {} {} in {} (drpilot deployment {})",
                        db.kind.as_str(),
                        db.db,
                        self.cfg.dr_region,
                        self.cfg.deployment
                    ));
                    return Ok(db.done());
                };
                let Some(facts) = self.ports.lab.copy_facts(newest).await? else {
                    return Ok(Step::Wait); // deleted since the listing: pick again
                };
                let class = db
                    .instance_class
                    .clone()
                    .or_else(|| verify::smallest_class(&facts.engine).map(str::to_string));
                db.copy = Some(facts.clone());
                let Some(class) = class else {
                    db.failure = Some(format!(
                        "no default instance class for engine {}: set instance_class for {} in DRPILOT_VERIFY_DATABASES",
                        facts.engine, db.db
                    ));
                    return Ok(db.done());
                };
                db.instance_class = Some(class);
                let id = verify::restore_id(run, &self.cfg.deployment, &protected);
                if db.kind == DbKind::Cluster {
                    db.instance = Some(verify::cluster_instance_id(&id));
                }
                db.restored = Some(id);
                Ok(db.enter(Phase::Restore))
            }
            Phase::Restore => {
                let Some(req) = db.request(self.cfg, run) else {
                    return Ok(db.fail("the record lost the restore's request".into()));
                };
                if db.asked.is_none() {
                    // recorded before AWS is asked: a restore time measured after a crash
                    // still counts from the first request
                    db.asked = Some(now);
                    return Ok(Step::Progressed);
                }
                match self.ports.lab.restore(&req).await? {
                    RestoreStarted::Started | RestoreStarted::AlreadyExists => {
                        info!(db = %db.db, restored = %req.id, copy = %req.copy.id, "restore asked for");
                        Ok(db.enter(Phase::Restoring))
                    }
                    RestoreStarted::Refused { code, message } => Ok(db.fail(format!(
                        "AWS refused to restore {} from {}: {code}: {message}",
                        req.id, req.copy.id
                    ))),
                }
            }
            Phase::Restoring | Phase::InstanceStarting => {
                let (kind, id) = match db.phase {
                    Phase::Restoring => (db.kind, db.restored.clone()),
                    _ => (DbKind::Instance, db.instance.clone()),
                };
                let id = id.unwrap_or_default();
                let Some(found) = self.ports.lab.restored(kind, &id).await? else {
                    return Ok(db.fail(format!(
                        "{} {id} disappeared while it was being restored",
                        kind.as_str()
                    )));
                };
                match verify::seen(&found.status) {
                    Seen::Failed(why) => Ok(db.fail(format!("{} {id}: {why}", kind.as_str()))),
                    Seen::Waiting => Ok(Step::Wait),
                    Seen::Available if db.phase == Phase::Restoring && db.kind == DbKind::Cluster => {
                        Ok(db.enter(Phase::AddInstance))
                    }
                    Seen::Available => {
                        db.available = Some(now);
                        // What holds the data is checked: an instance, or the cluster (engine,
                        // version, encryption are the cluster's), and that its instance is up.
                        let target = if db.kind == DbKind::Cluster {
                            let cluster_id = db.restored.clone().unwrap_or_default();
                            match self.ports.lab.restored(DbKind::Cluster, &cluster_id).await? {
                                Some(c) => c,
                                None => return Ok(db.fail(format!("cluster {cluster_id} disappeared"))),
                            }
                        } else {
                            found.clone()
                        };
                        let copy = db.copy.clone();
                        db.checks = copy.map(|c| verify::checks(&c, &target)).unwrap_or_default();
                        if db.kind == DbKind::Cluster {
                            db.checks.push(Check {
                                name: "instance available".into(),
                                passed: true,
                                detail: format!("{id} {}", found.status),
                            });
                        }
                        info!(db = %db.db, checks = ?db.checks, "restored and checked");
                        Ok(db.enter(Phase::TearDown))
                    }
                }
            }
            Phase::AddInstance => {
                let (Some(req), Some(instance)) = (db.request(self.cfg, run), db.instance.clone()) else {
                    return Ok(db.fail("the record lost the cluster instance's request".into()));
                };
                match self.ports.lab.add_instance(&req, &instance).await? {
                    RestoreStarted::Started | RestoreStarted::AlreadyExists => Ok(db.enter(Phase::InstanceStarting)),
                    RestoreStarted::Refused { code, message } => Ok(db.fail(format!(
                        "AWS refused to add instance {instance} to the restored cluster {}: {code}: {message}",
                        req.id
                    ))),
                }
            }
            Phase::TearDown => self.tear_down(db).await,
        }
    }

    /// Deletes what the verification restored (a cluster's instance before the cluster) and
    /// is done when AWS lists none of it.
    async fn tear_down(&self, db: &mut DbRun) -> Result<Step> {
        let parts = [(DbKind::Instance, db.instance.clone()), (db.kind, db.restored.clone())];
        let mut left = false;
        for (kind, id) in parts {
            let Some(id) = id else { continue };
            let Some(found) = self.ports.lab.restored(kind, &id).await? else {
                continue;
            };
            left = true;
            if found.status != "deleting" {
                self.ports.lab.delete(&found).await?;
                info!(db = %db.db, %id, kind = kind.as_str(), "restore test deleted");
            }
            // the cluster waits until its instance is gone
            break;
        }
        if left {
            return Ok(Step::Wait);
        }
        Ok(db.done())
    }

    /// Deletes what earlier runs left behind: this deployment's restore tests made by a run
    /// that began more than the restore timeout ago and is not this one.
    async fn sweep(&self, run: &mut Run, now: DateTime<Utc>) {
        if !self.cfg.backups.is_empty() {
            // what S3 restore tests of earlier runs left in the scratch prefix
            // (an ended run's own scratch is left over too)
            let current = run.ended.is_none().then_some(run.id.as_str());
            let (swept, failed) =
                crate::backup::verify::sweep_scratch(&self.ports.objects, &self.cfg.state, current).await;
            if !swept.is_empty() {
                run.swept.push(format!(
                    "{} scratch object(s) of S3 restore tests under s3://{}/{} (their noncurrent versions expire by the lifecycle rule)",
                    swept.len(),
                    self.cfg.state.bucket,
                    crate::backup::verify::scratch_prefix(&self.cfg.state)
                ));
            }
            run.sweep_failures.extend(failed);
        }
        let found = match self.ports.lab.restore_tests().await {
            Ok(found) => found,
            Err(e) => {
                run.sweep_failures
                    .push(format!("cannot list the DR region's restore tests: {e}"));
                return;
            }
        };
        let live: BTreeSet<String> = run
            .dbs
            .iter()
            .filter(|d| d.phase != Phase::Done)
            .flat_map(|d| [d.restored.clone(), d.instance.clone()])
            .flatten()
            .collect();
        let timeout = Duration::seconds(i64::from(self.cfg.timeout_seconds));
        let mut deleted: BTreeSet<String> = BTreeSet::new();
        for leftover in verify::leftovers(&found, &self.cfg.deployment, &live, now, timeout) {
            let what = format!(
                "{} {} (run {})",
                leftover.kind.as_str(),
                leftover.id,
                leftover.tags.get(tags::RESTORE_TEST).map(String::as_str).unwrap_or("?")
            );
            // AWS deletes a cluster once each of its instances is being deleted
            let members_left = leftover.kind == DbKind::Cluster
                && found.iter().any(|d| {
                    d.cluster_id.as_deref() == Some(leftover.id.as_str())
                        && d.status != "deleting"
                        && !deleted.contains(&d.id)
                });
            if members_left {
                run.sweep_failures
                    .push(format!("{what}: one of its instances could not be deleted"));
                continue;
            }
            match self.ports.lab.delete(leftover).await {
                Ok(()) => {
                    info!(%what, "swept a leftover restore test");
                    deleted.insert(leftover.id.clone());
                    if !run.swept.contains(&what) {
                        run.swept.push(what);
                    }
                }
                Err(e) => run.sweep_failures.push(format!("{what}: {e}")),
            }
        }
    }

    /// Ends a run that stopped advancing: each unfinished database's verification fails with
    /// where it stopped and the last error it met; the run waits in the record to be reported.
    fn abandon(&self, state: &mut VerifierState, now: DateTime<Utc>) {
        let Some(mut run) = state.run.take() else { return };
        let bound = human_seconds(f64::from(RUN_BOUND) * f64::from(self.cfg.timeout_seconds));
        for db in run.dbs.iter_mut().filter(|d| d.phase != Phase::Done) {
            let restored = [&db.restored, &db.instance]
                .into_iter()
                .flatten()
                .cloned()
                .collect::<Vec<_>>();
            let left = if restored.is_empty() || db.phase == Phase::Restore && db.asked.is_none() {
                String::new()
            } else {
                format!("; what it may have restored ({}) is the sweeper's", restored.join(", "))
            };
            let last = db
                .last_error
                .as_ref()
                .map(|e| format!("; the last error: {e}"))
                .unwrap_or_default();
            db.failure.get_or_insert(format!(
                "the run begun {} stopped at {:?} and did not end within {bound}{last}{left}",
                stamp(run.started),
                db.phase
            ));
            db.phase = Phase::Done;
            db.torn_down = None;
        }
        run.ended = Some(format!("not ended within {bound} of its start"));
        warn!(run = %run.id, "a restore verification run stopped advancing: ended");
        for (key, mut v) in run.results() {
            v.finished = v.finished.min(now);
            state.last.insert(key, v);
        }
        state.unreported.push(run);
    }
}

/// The record, as this invocation last wrote it.
struct Work<'r, St> {
    record: &'r Record<'r, St>,
    state: VerifierState,
    etag: String,
    notes: Vec<String>,
    /// This invocation (the lease holder).
    me: String,
}

impl<St: StateStore> Work<'_, St> {
    /// Compare-and-swap. While this invocation holds the lease, only a schedule event writes
    /// the record (a run to start later): that is kept, and the write made again. Any other
    /// write in between stops this invocation.
    async fn save(&mut self) -> Result<()> {
        for _ in 0..3 {
            if let Some(etag) = self.record.write_own(&self.state, Some(&self.etag)).await? {
                self.etag = etag;
                return Ok(());
            }
            match self.record.read::<VerifierState>().await? {
                Loaded::Found { value, etag } if value.lease.as_ref().is_some_and(|l| l.holder == self.me) => {
                    self.state.pending = self.state.pending.take().or(value.pending);
                    self.state.last_schedule = value.last_schedule.or(self.state.last_schedule.take());
                    self.etag = etag;
                }
                _ => break,
            }
        }
        Err(Error::RunFailed(
            "another invocation wrote the verifier's record: this one stops".into(),
        ))
    }
}

/// Per database (`Database` dimension) and S3 backup (`Backup`): `RestoreVerified` (1 passed,
/// 0 failed), and when measured `RestoreSeconds` and `VerifiedCopyAgeSeconds`.
fn metrics(results: &[(String, Verification)]) -> Vec<MetricValue> {
    let mut out = vec![];
    for (key, v) in results {
        let dimension = match key.strip_prefix("s3:") {
            Some(backup) => ("Backup".to_string(), backup.to_string()),
            None => ("Database".to_string(), key.clone()),
        };
        let value = |name: &str, value: f64, unit: MetricUnit| MetricValue {
            name: name.into(),
            dimensions: vec![dimension.clone()],
            value,
            unit,
            at: v.finished,
        };
        out.push(value(
            "RestoreVerified",
            if v.passed { 1.0 } else { 0.0 },
            MetricUnit::Count,
        ));
        if let Some(s) = v.restore_seconds {
            out.push(value("RestoreSeconds", s, MetricUnit::Seconds));
        }
        if let Some(s) = v.copy_age_seconds {
            out.push(value("VerifiedCopyAgeSeconds", s, MetricUnit::Seconds));
        }
    }
    out
}

/// One notice per run: each database's verdict, the copy it restored and how old its data
/// was, how long the restore took, the checks, and what the sweeper deleted.
fn notice(run: &Run, results: &[(String, Verification)]) -> Notice {
    let failed: Vec<String> = results
        .iter()
        .filter(|(_, v)| !v.passed)
        .map(|(key, _)| label(key))
        .collect();
    let total = results.len();
    let (severity, subject) = match (&run.ended, failed.is_empty()) {
        (None, true) => (
            Severity::Info,
            format!("drpilot: restore verification PASSED ({total} of {total} restored)"),
        ),
        (None, false) => (
            Severity::Warning,
            format!("drpilot: restore verification FAILED: {}", failed.join(", ")),
        ),
        (Some(_), _) => (
            Severity::Warning,
            format!(
                "drpilot: restore verification run {} did not finish: {}",
                run.id,
                failed.join(", ")
            ),
        ),
    };
    let mut body = format!("Restore verification run {} ({}).\n", run.id, run.trigger);
    if let Some(why) = &run.ended {
        body.push_str(&format!("It was ended unfinished: {why}.\n"));
    }
    body.push('\n');
    for (key, v) in results {
        let s3 = key.starts_with("s3:");
        body.push_str(&format!(
            "{}: {}\n",
            label(key),
            if v.passed { "PASSED" } else { "FAILED" }
        ));
        if let Some(copy) = &v.copy {
            let what = if s3 { "sample restored from" } else { "copy restored" };
            body.push_str(&format!("  {what}: {copy}"));
            if let Some(age) = v.copy_age_seconds {
                body.push_str(&format!(
                    ", its data {} old (the backup tier's RPO)",
                    human_seconds(age)
                ));
            }
            body.push('\n');
        }
        match v.restore_seconds {
            Some(s) if s3 => body.push_str(&format!(
                "  the sample restored and read back in {}\n",
                human_seconds(s)
            )),
            Some(s) => body.push_str(&format!(
                "  restore took {} (the backup tier's RTO)\n",
                human_seconds(s)
            )),
            None => {}
        }
        for c in &v.checks {
            body.push_str(&format!(
                "  {} {}: {}\n",
                if c.passed { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            ));
        }
        if let Some(why) = &v.failure {
            body.push_str(&format!("  why: {why}\n"));
        }
    }
    if !run.swept.is_empty() {
        body.push_str(&format!(
            "\nLeft behind by earlier runs and deleted now: {}\n",
            run.swept.join(", ")
        ));
    }
    if !run.sweep_failures.is_empty() {
        body.push_str(&format!(
            "\nNot swept (the next run tries again): {}\n",
            run.sweep_failures.join("; ")
        ));
    }
    let sms = if failed.is_empty() {
        format!("drpilot: {total} restore(s) verified")
    } else {
        format!("drpilot: restore verification FAILED for {}", failed.join(", "))
    };
    Notice::new(severity, subject, body)
        .with_sms(sms)
        .with_attribute("run", run.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In-memory ports: the DR region's copies and databases, metrics, the record, SNS.
    mod fake {
        use super::*;
        use crate::model::Snapshot;
        use crate::plan::copy::CopyRequest;
        use crate::ports::{CopyStarted, MetricId, RestoredDb, Saved, Versioned};
        use std::collections::HashMap;
        use std::sync::Mutex;

        pub struct Copies(pub Vec<Snapshot>);

        impl DrSnapshotStore for Copies {
            async fn copies(&self) -> Result<Vec<Snapshot>> {
                Ok(self.0.clone())
            }
            async fn copies_of(&self, db: &crate::model::ProtectedDb) -> Result<Vec<Snapshot>> {
                Ok(self.0.iter().filter(|s| s.db_id == db.id).cloned().collect())
            }
            async fn start_copy(&self, _: &CopyRequest) -> Result<CopyStarted> {
                unreachable!("the verifier copies nothing")
            }
            async fn delete_copy(&self, _: &Snapshot) -> Result<()> {
                unreachable!("the verifier deletes no copy")
            }
        }

        /// Restores are available at once; `describe_error` makes every describe fail.
        #[derive(Default)]
        pub struct Lab {
            pub dbs: Mutex<BTreeMap<String, RestoredDb>>,
            /// (retryable, AWS code)
            pub describe_error: Mutex<Option<(bool, String)>>,
            pub restores: Mutex<u32>,
        }

        impl RestoreLab for Lab {
            async fn copy_facts(&self, copy: &Snapshot) -> Result<Option<CopyFacts>> {
                Ok(Some(CopyFacts {
                    kind: copy.kind,
                    id: copy.id.clone(),
                    arn: copy.arn.clone(),
                    engine: "postgres".into(),
                    engine_version: "16.4".into(),
                    encrypted: true,
                    kms_key_id: Some("k".into()),
                    source_time: copy.source_time(),
                }))
            }
            async fn restore(&self, req: &RestoreRequest) -> Result<RestoreStarted> {
                *self.restores.lock().unwrap() += 1;
                let db = RestoredDb {
                    kind: req.kind,
                    id: req.id.clone(),
                    status: "available".into(),
                    engine: req.copy.engine.clone(),
                    engine_version: req.copy.engine_version.clone(),
                    encrypted: true,
                    kms_key_id: Some("k".into()),
                    cluster_id: None,
                    tags: req.tags.clone(),
                };
                Ok(match self.dbs.lock().unwrap().insert(req.id.clone(), db) {
                    Some(_) => RestoreStarted::AlreadyExists,
                    None => RestoreStarted::Started,
                })
            }
            async fn add_instance(&self, _: &RestoreRequest, _: &str) -> Result<RestoreStarted> {
                unreachable!("instances only here")
            }
            async fn restored(&self, _: DbKind, id: &str) -> Result<Option<RestoredDb>> {
                if let Some((retryable, code)) = self.describe_error.lock().unwrap().clone() {
                    return Err(Error::Aws {
                        operation: "DescribeDBInstances",
                        code,
                        message: "no".into(),
                        retryable,
                    });
                }
                Ok(self.dbs.lock().unwrap().get(id).cloned())
            }
            async fn restore_tests(&self) -> Result<Vec<RestoredDb>> {
                Ok(self.dbs.lock().unwrap().values().cloned().collect())
            }
            async fn delete(&self, db: &RestoredDb) -> Result<()> {
                self.dbs.lock().unwrap().remove(&db.id);
                Ok(())
            }
        }

        #[derive(Default)]
        pub struct Published(pub Mutex<Vec<MetricValue>>);

        impl Metrics for Published {
            async fn newest_each(
                &self,
                _: &[MetricId],
                _: u32,
                _: DateTime<Utc>,
                _: DateTime<Utc>,
            ) -> Result<Vec<Result<Option<crate::plan::lag::Datapoint>>>> {
                Ok(vec![])
            }
            async fn series_each(
                &self,
                _: &[MetricId],
                _: u32,
                _: DateTime<Utc>,
                _: DateTime<Utc>,
            ) -> Result<Vec<Result<Vec<crate::plan::lag::Datapoint>>>> {
                Ok(vec![])
            }
            async fn publish(&self, _: &str, values: &[MetricValue]) -> Result<()> {
                self.0.lock().unwrap().extend_from_slice(values);
                Ok(())
            }
        }

        #[derive(Default)]
        pub struct Sns {
            pub sent: Mutex<Vec<Notice>>,
            pub refuse_next: Mutex<bool>,
        }

        impl Notifier for Sns {
            async fn notify(&self, notice: &Notice) -> Result<()> {
                if std::mem::take(&mut *self.refuse_next.lock().unwrap()) {
                    return Err(Error::RunFailed("SNS refused".into()));
                }
                self.sent.lock().unwrap().push(notice.clone());
                Ok(())
            }
        }

        #[derive(Default)]
        pub struct State(pub Mutex<HashMap<String, (Vec<u8>, u32)>>);

        impl StateStore for State {
            async fn load(&self, key: &str) -> Result<Option<Versioned>> {
                Ok(self.0.lock().unwrap().get(key).map(|(body, v)| Versioned {
                    body: body.clone(),
                    etag: v.to_string(),
                }))
            }
            async fn save(&self, key: &str, body: &[u8], expected: Option<&str>) -> Result<Saved> {
                let mut objects = self.0.lock().unwrap();
                if objects.get(key).map(|(_, v)| v.to_string()).as_deref() != expected {
                    return Ok(Saved::Conflict);
                }
                let version = objects.get(key).map_or(1, |(_, v)| v + 1);
                objects.insert(key.to_string(), (body.to_vec(), version));
                Ok(Saved::Written {
                    etag: version.to_string(),
                })
            }
        }

        impl Documents for State {
            async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
                Ok(self.0.lock().unwrap().get(key).map(|(body, _)| body.clone()))
            }
            async fn put(&self, key: &str, body: Vec<u8>) -> Result<()> {
                self.0.lock().unwrap().insert(key.to_string(), (body, 1));
                Ok(())
            }
            async fn delete(&self, key: &str) -> Result<()> {
                self.0.lock().unwrap().remove(key);
                Ok(())
            }
            async fn keys(&self, prefix: &str) -> Result<Vec<String>> {
                Ok(self
                    .0
                    .lock()
                    .unwrap()
                    .keys()
                    .filter(|k| k.starts_with(prefix))
                    .cloned()
                    .collect())
            }
        }

        /// No S3 backup is verified in these tests (they are end-to-end: tests/restore_verifier.rs).
        pub struct NoObjects;

        impl ObjectStore for NoObjects {
            async fn list_page(
                &self,
                _: &str,
                _: &str,
                _: Option<&str>,
            ) -> Result<crate::ports::Page<crate::ports::ObjectInfo>> {
                unreachable!("no S3 backup is verified here")
            }
            async fn versioning_enabled(&self, _: &str) -> Result<bool> {
                unreachable!("no S3 backup is verified here")
            }
            async fn copy(&self, _: &crate::ports::ObjectCopy) -> Result<String> {
                unreachable!("no S3 backup is verified here")
            }
            async fn delete_versions(&self, _: &str, _: &[(String, String)]) -> Result<Vec<crate::ports::NotDeleted>> {
                unreachable!("no S3 backup is verified here")
            }
            async fn delete_object(&self, _: &str, _: &str) -> Result<()> {
                unreachable!("no S3 backup is verified here")
            }
            async fn folders(&self, _: &str, _: &str) -> Result<Vec<String>> {
                unreachable!("no S3 backup is verified here")
            }
            async fn read(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>> {
                unreachable!("no S3 backup is verified here")
            }
        }

        pub type Ports = VerifierPorts<Copies, Lab, Published, State, Sns, NoObjects>;

        /// An operator's run of everything.
        pub fn everything() -> VerifierEvent {
            VerifierEvent::Operator {
                databases: None,
                backups: None,
            }
        }

        /// One protected instance, `orders`, with one copy of this deployment's.
        pub fn ports() -> Ports {
            let taken = Utc::now() - Duration::hours(2);
            let tags: BTreeMap<String, String> = [
                (tags::MANAGED_BY, tags::MANAGED_BY_VALUE),
                (tags::DEPLOYMENT, "drpilot"),
                (tags::SOURCE_DB, "orders"),
                (tags::SOURCE_REGION, "us-east-1"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            VerifierPorts {
                copies: Copies(vec![Snapshot {
                    kind: DbKind::Instance,
                    id: "drpilot-orders-1".into(),
                    arn: "arn:aws:rds:us-west-2:123456789012:snapshot:drpilot-orders-1".into(),
                    db_id: "orders".into(),
                    status: "available".into(),
                    created: Some(taken),
                    encrypted: true,
                    tags,
                    source_region: Some("us-east-1".into()),
                }]),
                lab: Lab::default(),
                metrics: Published::default(),
                state: State::default(),
                notifier: Sns::default(),
                objects: NoObjects,
            }
        }

        pub fn config(timeout_seconds: &str) -> VerifierConfig {
            let vars: HashMap<&str, &str> = HashMap::from([
                ("DRPILOT_SOURCE_REGION", "us-east-1"),
                ("DRPILOT_DR_REGION", "us-west-2"),
                (
                    "DRPILOT_VERIFY_DATABASES",
                    r#"[{"db": "orders", "db_kind": "instance"}]"#,
                ),
                ("DRPILOT_VERIFY_SUBNET_GROUP", "restore-tests"),
                ("DRPILOT_VERIFY_SECURITY_GROUPS", "sg-1"),
                ("DRPILOT_VERIFY_TIMEOUT_SECONDS", timeout_seconds),
                ("DRPILOT_POLL_SECONDS", "1"),
                ("DRPILOT_DEADLINE_MARGIN_SECONDS", "0"),
                ("DRPILOT_STATE_BUCKET", "state"),
                ("DRPILOT_NOTIFY_TOPIC_ARN", "arn:aws:sns:us-west-2:123456789012:drpilot"),
            ]);
            VerifierConfig::from_vars(&vars).unwrap()
        }
    }

    async fn invoke(ports: &fake::Ports, cfg: &VerifierConfig, event: VerifierEvent, seconds: i64) -> Result<Value> {
        Verifier {
            ports,
            cfg,
            invocation: Invocation {
                request_id: format!("r-{}", Utc::now().timestamp_nanos_opt().unwrap_or_default()),
                deadline: Utc::now() + Duration::seconds(seconds),
            },
        }
        .handle(event)
        .await
    }

    fn record(ports: &fake::Ports) -> VerifierState {
        let objects = ports.state.0.lock().unwrap();
        serde_json::from_slice(&objects.values().next().unwrap().0).unwrap()
    }

    #[tokio::test]
    async fn a_redelivered_schedule_starts_no_second_run_and_a_refused_notice_is_sent_again() {
        let (ports, cfg) = (fake::ports(), fake::config("3600"));
        let week = VerifierEvent::Schedule { id: "week-48".into() };
        *ports.notifier.refuse_next.lock().unwrap() = true;
        let first = invoke(&ports, &cfg, week.clone(), 60).await;
        assert!(first.unwrap_err().to_string().contains("responders not told"));
        let kept = record(&ports);
        assert_eq!(
            (kept.unreported.len(), kept.lease.is_none()),
            (1, true),
            "kept, and the lease given back"
        );
        assert!(kept.last["orders"].passed && ports.lab.dbs.lock().unwrap().is_empty());

        // EventBridge delivers the same event again: the report goes out, no second restore
        let again = invoke(&ports, &cfg, week, 60).await.unwrap();
        assert_eq!(*ports.lab.restores.lock().unwrap(), 1);
        assert_eq!(again["results"][0]["verification"]["passed"], true, "{again:#}");
        let sent = ports.notifier.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].subject.contains("PASSED"));
        assert!(record(&ports).unreported.is_empty());
        let published: Vec<String> = ports.metrics.0.lock().unwrap().iter().map(|m| m.name.clone()).collect();
        assert_eq!(
            published,
            ["RestoreVerified", "RestoreSeconds", "VerifiedCopyAgeSeconds"]
        );
        // next week's event starts a run
        invoke(&ports, &cfg, VerifierEvent::Schedule { id: "week-49".into() }, 60)
            .await
            .unwrap();
        assert_eq!(*ports.lab.restores.lock().unwrap(), 2);
    }

    #[tokio::test]
    async fn a_scheduled_run_that_comes_during_another_starts_when_that_one_ends() {
        let (ports, cfg) = (fake::ports(), fake::config("3600"));
        *ports.lab.describe_error.lock().unwrap() = Some((true, "Throttling".into()));
        let first = invoke(&ports, &cfg, fake::everything(), 2).await.unwrap();
        assert_eq!(first["in_progress"][0]["phase"], "restoring", "{first:#}");
        let week = invoke(&ports, &cfg, VerifierEvent::Schedule { id: "week-50".into() }, 2)
            .await
            .unwrap();
        assert!(
            week["notes"][0].as_str().unwrap().contains("starts when it ends"),
            "{week:#}"
        );
        assert_eq!(record(&ports).pending.as_deref(), Some("schedule"));
        assert!(record(&ports).runs_last_error().contains("Throttling"));

        *ports.lab.describe_error.lock().unwrap() = None;
        let done = invoke(&ports, &cfg, VerifierEvent::Continue, 30).await.unwrap();
        let reported: Vec<&str> = done["reported"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["trigger"].as_str().unwrap())
            .collect();
        assert_eq!(reported, ["operator", "schedule"], "{done:#}");
        assert_eq!(*ports.lab.restores.lock().unwrap(), 2);
        let kept = record(&ports);
        assert_eq!((kept.pending, kept.run.is_none()), (None, true));
        assert_eq!(ports.notifier.sent.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_schedule_that_finds_another_invocation_working_is_queued_for_it_not_lost() {
        let (ports, cfg) = (fake::ports(), fake::config("3600"));
        *ports.lab.describe_error.lock().unwrap() = Some((true, "Throttling".into()));
        invoke(&ports, &cfg, fake::everything(), 2).await.unwrap();
        // another invocation holds the lease (it is polling the restore)
        let mut held = record(&ports);
        held.lease = Some(Lease {
            holder: "the-other-one".into(),
            until: Utc::now() + Duration::minutes(10),
        });
        let key = record_key(&cfg.state);
        let etag = ports.state.0.lock().unwrap()[&key].1.to_string();
        Record::new(&ports.state, key)
            .write(&held, Some(&etag))
            .await
            .unwrap()
            .unwrap();

        let queued = invoke(&ports, &cfg, VerifierEvent::Schedule { id: "week-51".into() }, 2)
            .await
            .unwrap();
        assert!(queued["queued"].is_string(), "{queued:#}");
        let after = record(&ports);
        assert_eq!(after.pending.as_deref(), Some("schedule"));
        assert_eq!(after.lease.unwrap().holder, "the-other-one", "its lease untouched");
        assert_eq!(after.run, held.run, "its run untouched");
        let again = invoke(&ports, &cfg, VerifierEvent::Schedule { id: "week-51".into() }, 2)
            .await
            .unwrap();
        assert!(
            again["skipped"].as_str().unwrap().contains("delivered before"),
            "{again:#}"
        );
    }

    impl VerifierState {
        /// The last error of the run in progress's databases (tests).
        fn runs_last_error(&self) -> String {
            let run = self.run.as_ref().expect("a run in progress");
            run.dbs
                .iter()
                .filter_map(|d| d.last_error.clone())
                .collect::<Vec<_>>()
                .join("; ")
        }
    }

    #[tokio::test]
    async fn aws_refusing_to_describe_fails_the_database_at_once_and_throttling_only_past_the_timeout() {
        let (ports, cfg) = (fake::ports(), fake::config("2"));
        *ports.lab.describe_error.lock().unwrap() = Some((false, "AccessDenied".into()));
        let report = invoke(&ports, &cfg, VerifierEvent::Continue, 60).await.unwrap();
        assert_eq!(report["run"], Value::Null, "a continuation starts nothing");
        let report = invoke(&ports, &cfg, fake::everything(), 60).await.unwrap();
        let v = &report["results"][0]["verification"];
        assert_eq!(v["passed"], false);
        assert!(v["failure"].as_str().unwrap().contains("AccessDenied"), "{v:#}");
        assert!(v["failure"].as_str().unwrap().contains("next run's sweeper"), "{v:#}");

        // throttled every time: retried each poll, failed once the phase outlives the timeout,
        // the teardown given up the same way; the run ends and says why
        *ports.lab.describe_error.lock().unwrap() = Some((true, "Throttling".into()));
        let report = invoke(&ports, &cfg, fake::everything(), 30).await.unwrap();
        let v = &report["results"][0]["verification"];
        let why = v["failure"].as_str().unwrap();
        assert!(why.contains("not available") && why.contains("Throttling"), "{why}");
        assert!(why.contains("not deleted"), "{why}");
        assert!(ports
            .notifier
            .sent
            .lock()
            .unwrap()
            .iter()
            .all(|n| n.subject.contains("FAILED")));
    }

    #[test]
    fn the_sample_events_decode_to_what_they_document_and_malformed_ones_are_bad_events() {
        let samples = crate::events::samples("restore-verifier");
        let decoded: Vec<(String, VerifierEvent)> = samples
            .into_iter()
            .map(|(name, v)| (name, VerifierEvent::decode(v).unwrap()))
            .collect();
        let names: Vec<(&str, &VerifierEvent)> = decoded.iter().map(|(n, e)| (n.as_str(), e)).collect();
        assert!(
            names.contains(&(
                "schedule.json",
                &VerifierEvent::Schedule {
                    id: "0d6f1b52-8a1c-4e0f-9d5e-3b7c2f1a9e41".into()
                }
            )),
            "{names:?}"
        );
        assert!(names.contains(&("continue.json", &VerifierEvent::Continue)));
        assert!(names.contains(&(
            "operator-run.json",
            &VerifierEvent::Operator {
                databases: None,
                backups: None
            }
        )));
        assert!(names.contains(&("status.json", &VerifierEvent::Status)));
        assert!(names.contains(&(
            "operator-run-one.json",
            &VerifierEvent::Operator {
                databases: Some(vec!["orders-db".into()]),
                backups: None,
            }
        )));
        assert!(names.contains(&(
            "operator-run-backup.json",
            &VerifierEvent::Operator {
                databases: None,
                backups: Some(vec!["media".into()]),
            }
        )));
        for bad in [
            json!({"action": "restore"}),
            json!({"action": "run", "databases": "orders"}),
            json!({"action": "run", "extra": 1}),
            json!([1]),
            json!({"source": "aws.rds", "detail-type": "RDS DB Snapshot Event", "detail": {}}),
        ] {
            let e = VerifierEvent::decode(bad.clone()).unwrap_err();
            assert!(matches!(e, Error::BadEvent(_)), "{bad}: {e}");
        }
    }

    #[test]
    fn a_verification_passes_only_when_every_check_passed_and_is_at_risk_when_failed_or_old() {
        let now = Utc::now();
        let mut db = DbRun::new(&VerifySpec {
            db: crate::model::ProtectedDb {
                kind: DbKind::Instance,
                id: "orders".into(),
            },
            instance_class: None,
        });
        assert!(!db.verification("r").passed, "no checks made is no pass");
        db.checks = vec![Check {
            name: "available".into(),
            passed: true,
            detail: "available".into(),
        }];
        db.asked = Some(now - Duration::minutes(20));
        db.available = Some(now - Duration::minutes(5));
        db.torn_down = Some(now);
        let v = db.verification("r");
        assert!(v.passed);
        assert_eq!(v.restore_seconds, Some(900.0));
        assert_eq!(Verification::risk(Some(&v), now, 8), None);
        assert!(Verification::risk(Some(&v), now + Duration::days(9), 8)
            .unwrap()
            .contains("9 days old"));
        assert_eq!(
            Verification::risk(None, now, 8).as_deref(),
            Some("no verified restore yet")
        );
        db.checks[0].passed = false;
        let v = db.verification("r");
        assert!(!v.passed && v.failure.as_deref().unwrap().contains("checks failed: available"));
        assert!(Verification::risk(Some(&v), now, 8).unwrap().contains("failed"));
    }
}
