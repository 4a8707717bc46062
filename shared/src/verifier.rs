//! The restore verifier: proves each listed database's newest DR copy restores, and measures
//! how long that takes. A run restores every copy into a throwaway database in the DR region
//! (tagged `drpilot:restore-test=<run>`), waits for it across invocations (the record in the
//! state bucket and its lease make that resumable and single-flight), checks it, deletes it
//! without a final snapshot, and reports: to responders, to metrics, to the dashboard. A
//! sweeper at the start of each run deletes what an earlier run left behind, by tag only.

use crate::config::VerifierConfig;
use crate::error::{Error, Result};
use crate::events::{self, Decode, Incoming};
use crate::model::{tags, DbKind, VerifySpec};
use crate::notice::{Notice, Severity};
use crate::plan::copy::{managed_copies_of, newest_available};
use crate::plan::verify::{self, Check, Seen};
use crate::ports::{
    CopyFacts, DrSnapshotStore, MetricUnit, MetricValue, Metrics, Notifier, RestoreLab, RestoreRequest, RestoreStarted,
    StateStore,
};
use crate::state::{Invocation, Lease, Loaded, Record};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use tracing::{info, warn};

pub struct VerifierPorts<C, L, M, St, N> {
    /// The DR region's copies (to pick the newest).
    pub copies: C,
    pub lab: L,
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
        }
    }
}

/// The verifier's operator commands.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum VerifierCommand {
    /// Verify now: every listed database, or those named.
    Run {
        #[serde(default)]
        databases: Option<Vec<String>>,
    },
    /// Go on with the run in progress (none is started): Terraform sends it every minute.
    Continue {},
    /// The run in progress and each database's last verification; changes nothing.
    Status {},
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifierEvent {
    Schedule,
    Operator { databases: Option<Vec<String>> },
    Continue,
    Status,
}

const ACCEPTS: &str = r#"the restore verifier accepts an EventBridge schedule, {"action": "run"} with optional "databases": [...], {"action": "continue"} or {"action": "status"}"#;

impl Decode for VerifierEvent {
    fn decode(event: Value) -> Result<Self> {
        match events::decode::<VerifierCommand>(event, ACCEPTS)? {
            Incoming::Command(VerifierCommand::Run { databases }) => Ok(VerifierEvent::Operator { databases }),
            Incoming::Command(VerifierCommand::Continue {}) => Ok(VerifierEvent::Continue),
            Incoming::Command(VerifierCommand::Status {}) => Ok(VerifierEvent::Status),
            Incoming::Schedule(_) => Ok(VerifierEvent::Schedule),
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
    /// By database identifier.
    #[serde(default)]
    pub last: BTreeMap<String, Verification>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// `plan::verify::run_id`: the value of `drpilot:restore-test` on what it restores.
    pub id: String,
    pub started: DateTime<Utc>,
    pub trigger: String,
    pub dbs: Vec<DbRun>,
    /// What the sweeper deleted at the start of the run (kind, identifier, its run).
    #[serde(default)]
    pub swept: Vec<String>,
    /// What it could not delete, and why.
    #[serde(default)]
    pub sweep_failures: Vec<String>,
    /// The verifications of the run it found stopped and ended (reported with its own).
    #[serde(default)]
    pub abandoned: Vec<(String, Verification)>,
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
}

/// One database's finished verification: what the dashboard and responders see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub run: String,
    pub passed: bool,
    pub finished: DateTime<Utc>,
    /// The DR copy restored.
    #[serde(default)]
    pub copy: Option<String>,
    /// When its data was taken at the source.
    #[serde(default)]
    pub copy_time: Option<DateTime<Utc>>,
    /// How old that data was when the restore was asked for: the backup tier's recovery point.
    #[serde(default)]
    pub copy_age_seconds: Option<f64>,
    /// From asking for the restore to a usable database: the backup tier's recovery time.
    #[serde(default)]
    pub restore_seconds: Option<f64>,
    #[serde(default)]
    pub checks: Vec<Check>,
    #[serde(default)]
    pub failure: Option<String>,
}

impl Verification {
    /// Why this database's backups are not proven restorable now (`None`: they are).
    pub fn risk(last: Option<&Verification>, now: DateTime<Utc>, max_age_days: u32) -> Option<String> {
        match last {
            None => Some("no verified restore yet".into()),
            Some(v) if !v.passed => Some(format!(
                "its last restore test failed ({}): {}",
                stamp(v.finished),
                v.failure.as_deref().unwrap_or("see the report")
            )),
            Some(v) if now - v.finished > Duration::days(i64::from(max_age_days)) => Some(format!(
                "its last verified restore is {} days old (bound {max_age_days})",
                (now - v.finished).num_days()
            )),
            Some(_) => None,
        }
    }
}

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
        }
    }

    fn verification(&self, run: &str) -> Verification {
        let passed = self.failure.is_none() && !self.checks.is_empty() && self.checks.iter().all(|c| c.passed);
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
        self.phase = Phase::TearDown;
        Step::Progressed
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

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub struct Verifier<'a, C, L, M, St, N> {
    pub ports: &'a VerifierPorts<C, L, M, St, N>,
    pub cfg: &'a VerifierConfig,
    pub invocation: Invocation,
}

impl<C, L, M, St, N> Verifier<'_, C, L, M, St, N>
where
    C: DrSnapshotStore,
    L: RestoreLab,
    M: Metrics,
    St: StateStore,
    N: Notifier,
{
    pub async fn handle(&self, event: VerifierEvent) -> Result<Value> {
        // A named database that is not listed is a bad event, decided before any AWS call.
        let chosen: Vec<&VerifySpec> = match &event {
            VerifierEvent::Operator { databases: Some(names) } => {
                let mut out = vec![];
                for name in names {
                    out.push(self.cfg.database(name).ok_or_else(|| {
                        let known: Vec<&str> = self.cfg.databases.iter().map(|d| d.db.id.as_str()).collect();
                        Error::BadEvent(format!("unknown database {name:?}; verified: {}", known.join(", ")))
                    })?);
                }
                if out.is_empty() {
                    return Err(Error::BadEvent(
                        "\"databases\" is empty; leave it out to verify every database".into(),
                    ));
                }
                out
            }
            _ => self.cfg.databases.iter().collect(),
        };
        let record = Record::new(&self.ports.state, record_key(&self.cfg.state));
        let (mut state, mut etag) = match record.read::<VerifierState>().await? {
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
            return Ok(json!({"run": state.run, "last": state.last}));
        }
        let now = Utc::now();
        if event == VerifierEvent::Continue && state.run.is_none() {
            return Ok(json!({"run": null, "continued": false}));
        }
        if let Some(lease) = &state.lease {
            if lease.held_by_other(&self.invocation.request_id, now) {
                info!(holder = %lease.holder, "another invocation is verifying");
                return Ok(
                    json!({"skipped": "another invocation holds the verifier's lease", "run": state.run.as_ref().map(|r| &r.id)}),
                );
            }
        }
        let timeout = Duration::seconds(i64::from(self.cfg.timeout_seconds));
        let mut abandoned = vec![];
        let starting = match (&event, &state.run) {
            (VerifierEvent::Continue, _) => false,
            (_, None) => true,
            // A run that has not finished in twice the restore timeout has stopped being
            // resumed (its invocations keep dying): what it has is reported, what it left is
            // swept, and a new run begins.
            (_, Some(run)) if now - run.started > timeout * 2 => {
                abandoned = self.abandon(&mut state, now);
                true
            }
            (_, Some(_)) => false,
        };
        if starting {
            let id = verify::run_id(now);
            state.run = Some(Run {
                id,
                started: now,
                trigger: match &event {
                    VerifierEvent::Schedule => "schedule".into(),
                    _ => "operator".into(),
                },
                dbs: chosen.iter().map(|s| DbRun::new(s)).collect(),
                swept: vec![],
                sweep_failures: vec![],
                abandoned: std::mem::take(&mut abandoned),
            });
        }
        state.lease = Some(Lease::to(&self.invocation));
        etag = match record.write_own(&state, etag.as_deref()).await? {
            Some(e) => Some(e),
            None => return Ok(json!({"skipped": "another invocation took the verifier's record first"})),
        };
        if starting {
            self.sweep(&mut state, now).await;
        }
        let stop = self.invocation.stop_at(self.cfg.deadline_margin_seconds);
        let poll = std::time::Duration::from_secs(u64::from(self.cfg.poll_seconds));
        loop {
            let run_id = state.run.as_ref().map(|r| r.id.clone()).unwrap_or_default();
            // some database's step changed something: its next step is taken at once
            let mut again = false;
            let dbs = state.run.as_ref().map_or(0, |r| r.dbs.len());
            for i in 0..dbs {
                let Some(db) = state.run.as_mut().map(|r| &mut r.dbs[i]) else {
                    break;
                };
                if db.phase == Phase::Done {
                    continue;
                }
                match self.step(db, &run_id).await {
                    Ok(Step::Wait) => continue,
                    Ok(Step::Progressed) => again = true,
                    Err(e) => {
                        // AWS did not answer this time (throttled, 5xx): the next poll asks again
                        warn!(db = %db.db, error = %e, "a verification step failed; it is retried");
                        continue;
                    }
                }
                etag = match record.write_own(&state, etag.as_deref()).await? {
                    Some(e) => Some(e),
                    None => return Ok(json!({"stopped": "another invocation wrote the verifier's record"})),
                };
            }
            if state
                .run
                .as_ref()
                .is_none_or(|r| r.dbs.iter().all(|d| d.phase == Phase::Done))
            {
                return self.finish(&record, state, etag).await;
            }
            let now = tokio::time::Instant::now();
            if now >= stop || (!again && now + poll >= stop) {
                break;
            }
            if !again {
                tokio::time::sleep(poll).await;
            }
        }
        // Out of time: the continuation (every minute) goes on from here.
        state.lease = None;
        record.write_own(&state, etag.as_deref()).await?;
        let run = state.run.as_ref();
        Ok(json!({
            "run": run.map(|r| &r.id),
            "in_progress": run.map(|r| r.dbs.iter().map(|d| json!({"db": d.db, "phase": d.phase})).collect::<Vec<_>>()),
        }))
    }

    /// One step of one database's verification.
    async fn step(&self, db: &mut DbRun, run: &str) -> Result<Step> {
        let now = Utc::now();
        let timeout = Duration::seconds(i64::from(self.cfg.timeout_seconds));
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
                    db.phase = Phase::Done;
                    db.torn_down = Some(now);
                    return Ok(Step::Progressed);
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
                    db.phase = Phase::Done;
                    db.torn_down = Some(now);
                    return Ok(Step::Progressed);
                };
                db.instance_class = Some(class);
                let id = verify::restore_id(run, &self.cfg.deployment, &protected);
                if db.kind == DbKind::Cluster {
                    db.instance = Some(verify::cluster_instance_id(&id));
                }
                db.restored = Some(id);
                db.phase = Phase::Restore;
                Ok(Step::Progressed)
            }
            Phase::Restore => {
                let Some(req) = db.request(self.cfg, run) else {
                    return Ok(db.fail("the record lost the restore's request".into()));
                };
                db.asked.get_or_insert(now);
                match self.ports.lab.restore(&req).await? {
                    RestoreStarted::Started | RestoreStarted::AlreadyExists => {
                        info!(db = %db.db, restored = %req.id, copy = %req.copy.id, "restore asked for");
                        db.phase = Phase::Restoring;
                        Ok(Step::Progressed)
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
                    Seen::Waiting if now - db.asked.unwrap_or(now) > timeout => Ok(db.fail(format!(
                        "{} {id} was not available {} after the restore was asked for (it is {})",
                        kind.as_str(),
                        minutes(f64::from(self.cfg.timeout_seconds)),
                        found.status
                    ))),
                    Seen::Waiting => Ok(Step::Wait),
                    Seen::Available if db.phase == Phase::Restoring && db.kind == DbKind::Cluster => {
                        db.phase = Phase::AddInstance;
                        Ok(Step::Progressed)
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
                        db.phase = Phase::TearDown;
                        Ok(Step::Progressed)
                    }
                }
            }
            Phase::AddInstance => {
                let (Some(req), Some(instance)) = (db.request(self.cfg, run), db.instance.clone()) else {
                    return Ok(db.fail("the record lost the cluster instance's request".into()));
                };
                match self.ports.lab.add_instance(&req, &instance).await? {
                    RestoreStarted::Started | RestoreStarted::AlreadyExists => {
                        db.phase = Phase::InstanceStarting;
                        Ok(Step::Progressed)
                    }
                    RestoreStarted::Refused { code, message } => Ok(db.fail(format!(
                        "AWS refused to add instance {instance} to the restored cluster {}: {code}: {message}",
                        req.id
                    ))),
                }
            }
            Phase::TearDown => self.tear_down(db, now).await,
        }
    }

    /// Deletes what the verification restored (a cluster's instance before the cluster) and
    /// is done when AWS lists none of it.
    async fn tear_down(&self, db: &mut DbRun, now: DateTime<Utc>) -> Result<Step> {
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
        db.torn_down = Some(now);
        db.phase = Phase::Done;
        Ok(Step::Progressed)
    }

    /// Deletes what earlier runs left behind: this deployment's restore tests made by a run
    /// that began more than the restore timeout ago and is not this one.
    async fn sweep(&self, state: &mut VerifierState, now: DateTime<Utc>) {
        let Some(run) = state.run.as_mut() else { return };
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
            .flat_map(|d| [d.restored.clone(), d.instance.clone()])
            .flatten()
            .collect();
        let timeout = Duration::seconds(i64::from(self.cfg.timeout_seconds));
        let mut deleted_instances: BTreeSet<String> = BTreeSet::new();
        for leftover in verify::leftovers(&found, &self.cfg.deployment, &live, now, timeout) {
            let what = format!(
                "{} {} (run {})",
                leftover.kind.as_str(),
                leftover.id,
                leftover.tags.get(tags::RESTORE_TEST).map(String::as_str).unwrap_or("?")
            );
            // a cluster whose instances are still being deleted is deleted by a later sweep
            let members_left = leftover.kind == DbKind::Cluster
                && found.iter().any(|d| {
                    d.cluster_id.as_deref() == Some(leftover.id.as_str()) && !deleted_instances.contains(&d.id)
                });
            if members_left {
                run.sweep_failures
                    .push(format!("{what}: waits for its instances to be deleted"));
                continue;
            }
            match self.ports.lab.delete(leftover).await {
                Ok(()) => {
                    info!(%what, "swept a leftover restore test");
                    if leftover.kind == DbKind::Instance {
                        deleted_instances.insert(leftover.id.clone());
                    }
                    run.swept.push(what);
                }
                Err(e) => run.sweep_failures.push(format!("{what}: {e}")),
            }
        }
    }

    /// Ends a run that stopped being resumed: each unfinished database's verification fails
    /// with where it stopped; what it restored is left to the sweeper.
    fn abandon(&self, state: &mut VerifierState, now: DateTime<Utc>) -> Vec<(String, Verification)> {
        let Some(run) = state.run.take() else { return vec![] };
        let mut out = vec![];
        for mut db in run.dbs {
            if db.phase != Phase::Done {
                db.failure.get_or_insert(format!(
                    "the run of {} stopped at {:?} and was not resumed; what it restored is swept",
                    stamp(run.started),
                    db.phase
                ));
                db.torn_down = Some(now);
            }
            let v = db.verification(&run.id);
            state.last.insert(db.db.clone(), v.clone());
            out.push((db.db, v));
        }
        out
    }

    async fn finish(&self, record: &Record<'_, St>, mut state: VerifierState, etag: Option<String>) -> Result<Value> {
        let Some(run) = state.run.take() else {
            state.lease = None;
            record.write_own(&state, etag.as_deref()).await?;
            return Ok(json!({"run": null}));
        };
        let results: Vec<(String, Verification)> = run
            .dbs
            .iter()
            .map(|d| (d.db.clone(), d.verification(&run.id)))
            .collect();
        for (db, v) in &results {
            state.last.insert(db.clone(), v.clone());
        }
        state.lease = None;
        if record.write_own(&state, etag.as_deref()).await?.is_none() {
            return Ok(json!({"stopped": "another invocation wrote the verifier's record"}));
        }
        let mut problems = vec![];
        if let Err(e) = self
            .ports
            .metrics
            .publish(&self.cfg.namespace, &metrics(&results))
            .await
        {
            problems.push(format!("metrics not published: {e}"));
        }
        let notice = notice(&run, &results);
        if let Err(e) = self.ports.notifier.notify(&notice).await {
            problems.push(format!("responders not told: {e}"));
        }
        let report = json!({
            "run": run.id,
            "trigger": run.trigger,
            "results": results.iter().map(|(db, v)| json!({"db": db, "verification": v})).collect::<Vec<_>>(),
            "abandoned": run.abandoned.iter().map(|(db, v)| json!({"db": db, "verification": v})).collect::<Vec<_>>(),
            "swept": run.swept,
            "sweep_failures": run.sweep_failures,
            "notice": notice.subject,
        });
        info!(%report, "restore verification finished");
        if !problems.is_empty() {
            return Err(Error::RunFailed(format!("{}; report: {report}", problems.join("; "))));
        }
        Ok(report)
    }
}

/// Per database (`Database` dimension): `RestoreVerified` (1 passed, 0 failed), and when
/// measured `RestoreSeconds` and `VerifiedCopyAgeSeconds`.
fn metrics(results: &[(String, Verification)]) -> Vec<MetricValue> {
    let mut out = vec![];
    for (db, v) in results {
        let value = |name: &str, value: f64, unit: MetricUnit| MetricValue {
            name: name.into(),
            dimensions: vec![("Database".into(), db.clone())],
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

fn minutes(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 2.0 * 3600.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

/// One notice per run: each database's verdict, the copy it restored and how old its data
/// was, how long the restore took, the checks, and what the sweeper deleted.
fn notice(run: &Run, results: &[(String, Verification)]) -> Notice {
    let abandoned = &run.abandoned;
    let failed: Vec<&str> = results
        .iter()
        .chain(abandoned.iter())
        .filter(|(_, v)| !v.passed)
        .map(|(db, _)| db.as_str())
        .collect();
    let total = results.len();
    let (severity, subject) = if failed.is_empty() {
        (
            Severity::Info,
            format!("drpilot: restore verification PASSED ({total} of {total} restored)"),
        )
    } else {
        (
            Severity::Warning,
            format!("drpilot: restore verification FAILED: {}", failed.join(", ")),
        )
    };
    let mut body = format!("Restore verification run {} ({}).\n\n", run.id, run.trigger);
    if !abandoned.is_empty() {
        body.push_str("The run before stopped and was not resumed; it is ended here:\n");
        for (db, v) in abandoned {
            body.push_str(&format!("  {db}: {}\n", v.failure.as_deref().unwrap_or("FAILED")));
        }
        body.push('\n');
    }
    for (db, v) in results {
        body.push_str(&format!("{db}: {}\n", if v.passed { "PASSED" } else { "FAILED" }));
        if let Some(copy) = &v.copy {
            body.push_str(&format!("  copy restored: {copy}"));
            if let Some(age) = v.copy_age_seconds {
                body.push_str(&format!(", its data {} old (the backup tier's RPO)", minutes(age)));
            }
            body.push('\n');
        }
        if let Some(s) = v.restore_seconds {
            body.push_str(&format!("  restore took {} (the backup tier's RTO)\n", minutes(s)));
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

    #[test]
    fn the_sample_events_decode_to_what_they_document_and_malformed_ones_are_bad_events() {
        let samples = crate::events::samples("restore-verifier");
        let decoded: Vec<(String, VerifierEvent)> = samples
            .into_iter()
            .map(|(name, v)| (name, VerifierEvent::decode(v).unwrap()))
            .collect();
        let names: Vec<(&str, &VerifierEvent)> = decoded.iter().map(|(n, e)| (n.as_str(), e)).collect();
        assert!(
            names.contains(&("schedule.json", &VerifierEvent::Schedule)),
            "{names:?}"
        );
        assert!(names.contains(&("continue.json", &VerifierEvent::Continue)));
        assert!(names.contains(&("operator-run.json", &VerifierEvent::Operator { databases: None })));
        assert!(names.contains(&("status.json", &VerifierEvent::Status)));
        assert!(names.contains(&(
            "operator-run-one.json",
            &VerifierEvent::Operator {
                databases: Some(vec!["orders-db".into()])
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
