//! The DR drill: a planned failover exercise end to end, each step PASS/FAIL with timings,
//! a report to responders, and a record the dashboard shows. It touches only a standby
//! tagged `drpilot:drill-plan=<plan>`, and only with `confirm` naming the database.

use super::{Promoter, Trigger};
use crate::error::{Error, Result};
use crate::lagcheck::metric;
use crate::model::Standby;
use crate::notice::{Notice, Severity};
use crate::plan::lag::human_seconds;
use crate::ports::{
    AlarmView, Capacity, Dns, HealthChecks, Instances, MetricId, Metrics, Notifier, PrimaryProbe, StandbyControl,
    StateStore,
};
use crate::state::Record;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

pub const PLAN_TAG: &str = "drpilot:drill-plan";

/// The last drill of a database, as the drill records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillSummary {
    pub at: DateTime<Utc>,
    pub passed: bool,
    pub rto_seconds: Option<f64>,
    pub rpo_seconds: Option<f64>,
    /// A drill with failback: under way, or whether it ended where it began.
    #[serde(default)]
    pub failback: Option<String>,
}

/// Where a database's last drill is recorded (the drill writes it; the dashboard reads it).
pub fn drill_key(state: &crate::model::StateLocation, db: &str) -> String {
    state.key(&format!("drill/{db}.json"))
}

#[derive(Debug, Clone, Serialize)]
pub struct DrillStep {
    pub name: &'static str,
    pub passed: bool,
    pub seconds: f64,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    pub database: String,
    pub plan: String,
    pub started_at: String,
    pub passed: bool,
    pub steps: Vec<DrillStep>,
    pub rto_seconds: Option<f64>,
    pub rpo_seconds: Option<f64>,
    /// The state the drill leaves the system in, and how to restore it.
    pub left_in: String,
}

impl<A, P, H, M, S, D, St, N, C> Promoter<'_, A, P, H, M, S, D, St, N, C>
where
    A: AlarmView,
    P: PrimaryProbe + Instances,
    H: HealthChecks,
    M: Metrics,
    S: StandbyControl + Instances,
    D: Dns,
    St: StateStore,
    N: Notifier,
    C: Capacity,
{
    pub async fn drill(&self, database: &str, plan: &str, confirm: &str, failback: bool) -> Result<DrillReport> {
        let db = self.database(database)?;
        let standby = super::standby_name(&db.standby);
        // Refusals change nothing and are not drills: no record, no report.
        if confirm != db.name {
            return Err(Error::Refused(format!(
                "a drill fails {0} over for real: confirm it by naming the database (confirm = \"{0}\"); nothing was changed",
                db.name
            )));
        }
        // A database in a member account: drpilot must be able to get in (the CLI on an
        // operator's credentials may not be trusted by the member role; the promoter is).
        self.accounts.get(db.account.as_deref()).1.check().await?;
        let state = self.at(db).standby.state(&db.standby).await?;
        if state.tags.get(PLAN_TAG).map(String::as_str) != Some(plan) {
            return Err(Error::Refused(format!(
                "{standby} is not tagged {PLAN_TAG}={plan}: a drill touches only resources tagged for its plan; nothing was changed"
            )));
        }

        // With failback: what the way back needs that the failover does not change is checked
        // first, so that an unattended drill never fails over into a failback it cannot do.
        if failback {
            self.drill_failback_preflight(db).await?;
        }
        let started = Utc::now();
        let mut steps: Vec<DrillStep> = Vec::new();
        let mut clock = std::time::Instant::now();
        let mut step = |name: &'static str, passed: bool, detail: String| {
            steps.push(DrillStep {
                name,
                passed,
                seconds: clock.elapsed().as_secs_f64(),
                detail,
            });
            clock = std::time::Instant::now();
            passed
        };

        // 1. Preflight: replication measured recently and within the data-loss limit.
        let id = MetricId::new(
            &self.cfg.namespace,
            metric::RECOVERY_POINT,
            &[(metric::DIMENSION, &db.lag_resource)],
        );
        let now = Utc::now();
        let period = self.cfg.metric_period_seconds;
        let one = Duration::seconds(i64::from(period));
        // measured within the last ten periods (ten minutes on AWS)
        let lag = self
            .hub()
            .metrics
            .newest(&id, period, now - one * 10, now + one)
            .await?;
        let (passed, detail) = match lag {
            Some(p) if p.value <= db.max_data_loss_seconds => (
                true,
                format!(
                    "last lag {} (limit {})",
                    human_seconds(p.value),
                    human_seconds(db.max_data_loss_seconds)
                ),
            ),
            Some(p) => (
                false,
                format!(
                    "lag {} exceeds the limit {}",
                    human_seconds(p.value),
                    human_seconds(db.max_data_loss_seconds)
                ),
            ),
            None => (
                false,
                format!(
                    "no lag measured for {} in the last 10 minutes (is the lag checker running?)",
                    db.lag_resource
                ),
            ),
        };
        let mut ok = step("preflight: replication healthy", passed, detail);
        ok = ok
            && step(
                "preflight: standby ready",
                state.exists && !state.promoted && state.status == "available",
                format!(
                    "{standby} is {}{}",
                    state.status,
                    if state.promoted { ", already promoted" } else { "" }
                ),
            );

        // 2. The planned failover, through the promoter's own path (record, lock, notices).
        let mut rto = None;
        let mut rpo = None;
        let mut scaled: Vec<String> = Vec::new();
        if ok {
            let outcome = self
                .decide_and_act(
                    db,
                    Trigger::Operator {
                        reason: format!("drill {plan}"),
                        force_data_loss: false,
                        planned: true,
                    },
                    false,
                )
                .await;
            let (record, _) = self.load(&db.name).await?;
            // only a failover decided during this drill is its own (an earlier one may still be recorded)
            let f = record.current.filter(|f| f.decided_at >= started);
            let done = f.as_ref().is_some_and(|f| f.completed_at.is_some());
            let detail = match (&outcome, &f) {
                (Err(e), _) => format!("failed: {e}"),
                (Ok(_), Some(f)) if done => format!("{} completed", f.id),
                (Ok(v), _) => format!("not completed: {v}"),
            };
            ok = step("failover: promote and switch DNS", done, detail);
            if let Some(f) = f.filter(|_| done) {
                // the recovery plan's groups stay scaled up: what each was before is on the record
                scaled = f
                    .capacity
                    .iter()
                    .filter_map(|c| Some(format!("{} (was {})", c.group, c.size(c.before?))))
                    .collect();
                rto = super::notices::rto_components(&f).map(|c| c.acting());
                rpo = f.estimated_rpo_seconds;
                if let (Some(measured), Some(budget)) = (rto, db.rto_seconds) {
                    step(
                        "RTO within budget",
                        measured <= budget,
                        format!(
                            "{} took {}, {}",
                            if f.capacity.is_empty() {
                                "promote + DNS"
                            } else {
                                "promote + capacity + DNS"
                            },
                            human_seconds(measured),
                            super::notices::against_budget(measured, Some(budget))
                        ),
                    );
                }
                // 3. Traffic really goes to the new primary.
                let target = f.target.clone().unwrap_or_default();
                let (at_standby, points) = self.dns_now(db, &target).await?.unwrap_or_default();
                step(
                    "verify: DNS points at the new primary",
                    at_standby,
                    format!("{} -> {points}", db.dns.record_name.trim_end_matches('.')),
                );
            }
        }

        // 4. With failback: back to where it began (the rest is checked when it completes).
        let mut failing_back = None;
        let mut back = Vec::new();
        // (once the failover passed, whatever its RTO: the drill must not leave production in the
        // DR region because it was slow)
        if failback && ok {
            match self
                .failback(&db.name, &format!("drill {plan}"), &db.name, true, None)
                .await
            {
                Ok(v) => {
                    let mut id = v["failback"].as_str().unwrap_or_default().to_string();
                    if id.is_empty() {
                        // another invocation (the continuation) took it up first: it is on the record
                        let (record, _) = self.load(&db.name).await?;
                        id = record.failback.map(|fb| fb.id).unwrap_or_default();
                    }
                    let done = v["completed"].as_bool() == Some(true);
                    // "aborted": why (a string), or false beside "completed": true
                    let aborted = v.get("aborted").is_some_and(|a| a != &serde_json::Value::Bool(false));
                    step(
                        "failback: back to the primary region",
                        !aborted && v.get("called_off").is_none(),
                        if done {
                            format!("{id} completed")
                        } else {
                            format!("{id} under way: the drill's result is final when it completes")
                        },
                    );
                    if done {
                        let (record, _) = self.load(&db.name).await?;
                        if let Some(fb) = record.failback.as_ref() {
                            back = self.back_where_it_began(db, plan, fb).await;
                        }
                    } else if !aborted && v.get("called_off").is_none() {
                        // under way here or in the invocation that took it up first: its last
                        // word comes when it completes (a stopped one's is in this report)
                        failing_back = Some(id);
                    }
                }
                Err(e) => {
                    step("failback: back to the primary region", false, format!("refused: {e}"));
                }
            }
        }
        for s in back {
            steps.push(s);
        }

        let records = match &db.dns.switch {
            crate::model::DnsSwitch::Upsert => String::new(),
            crate::model::DnsSwitch::FailoverRecords { alarm } => format!(
                " Route 53 answers the SECONDARY record while {alarm} says so: Terraform, given the new roles, makes \
                 fresh failover records and a fresh health check for them; to send clients back to the old \
                 primary instead, publish FailedOver 0 (infra/dns.tf)."
            ),
        };
        let back_home = steps.iter().any(|s| s.name == ENDED_WHERE_IT_BEGAN && s.passed);
        // a failback done within this invocation whose last step found the topology changed
        let not_home = steps
            .iter()
            .find(|s| s.name == ENDED_WHERE_IT_BEGAN && !s.passed)
            .map(|s| s.detail.clone());
        let left_in = if back_home {
            format!("where it began: {standby} replicates the primary of {} again", db.name)
        } else if let Some(why) = &not_home {
            format!("failed back, but NOT where it began: {why}")
        } else if let Some(id) = &failing_back {
            format!("failing back ({id}): the drill's report follows when the failback completes")
        } else if steps.iter().any(|s| s.name.starts_with("failover") && s.passed) {
            let groups = if scaled.is_empty() {
                String::new()
            } else {
                format!(
                    " The recovery plan's groups and services stay scaled up: {}.",
                    scaled.join(", ")
                )
            };
            format!(
                "{standby} is now the primary of {db} and {record} points at it; automatic failover of {db} stays \
                 disarmed until a human acknowledges. To restore: drpilot failback --database {db} (or a drill with \
                 failback next time), which ends with {standby} a replica again.{records}{groups}",
                db = db.name,
                record = db.dns.record_name.trim_end_matches('.')
            )
        } else {
            "unchanged: the drill stopped before failing over".to_string()
        };
        // The drill passes only if every step did (a refused or failed failover adds a FAIL step).
        let ok = ok && steps.iter().all(|s| s.passed);
        let report = DrillReport {
            database: db.name.clone(),
            plan: plan.to_string(),
            started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            passed: ok,
            steps,
            rto_seconds: rto,
            rpo_seconds: rpo,
            left_in,
        };
        let summary = DrillSummary {
            at: started,
            passed: ok,
            rto_seconds: rto,
            rpo_seconds: rpo,
            failback: if back_home {
                Some("ended where it began".into())
            } else if let Some(why) = not_home {
                Some(format!("did not end where it began: {why}"))
            } else {
                failing_back.as_ref().map(|id| format!("failing back: {id}"))
            },
        };
        let record = Record::new(&self.hub().state, drill_key(&self.cfg.state, &db.name));
        let last = record.read::<DrillSummary>().await?;
        record.write(&summary, last.etag()).await?;
        self.hub().notifier.notify(&drill_notice(self.cfg, &report)).await?;
        Ok(report)
    }
}

impl<A, P, H, M, S, D, St, N, C> Promoter<'_, A, P, H, M, S, D, St, N, C>
where
    A: AlarmView,
    P: PrimaryProbe + Instances,
    H: HealthChecks,
    M: Metrics,
    S: StandbyControl + Instances,
    D: Dns,
    St: StateStore,
    N: Notifier,
    C: Capacity,
{
    /// Before a drill with failback: the failback's own checks that hold before the failover
    /// (RDS MySQL in the deployment's account, no deletion protection on either instance, the
    /// standby's parameter group its own, the primary there and not a replica). Refused:
    /// nothing was changed.
    async fn drill_failback_preflight(&self, db: &crate::model::DatabaseSpec) -> Result<()> {
        let refuse = |why: String| {
            Err(Error::Refused(format!(
                "a drill with failback must be able to fail back, and cannot: {why}; nothing was changed"
            )))
        };
        if let Some(account) = &db.account {
            return refuse(format!("{} is in member account {account}", db.name));
        }
        let (primary, replica) = match &db.standby {
            Standby::RdsReplica { primary, replica } => (primary, replica),
            // Aurora: the drill's switchover leaves the old primary an in-sync secondary, and
            // the failback switches back to it; both must be members, in sync, available.
            Standby::AuroraGlobal {
                global_cluster,
                primary_cluster,
                secondary_cluster,
            } => {
                let Some(g) = self.at(db).standby.global(global_cluster).await? else {
                    return refuse(format!("the global database {global_cluster} is not there"));
                };
                for (id, writer) in [(primary_cluster, true), (secondary_cluster, false)] {
                    match g.member(id) {
                        Some(m) if m.is_writer == writer && m.in_sync => {}
                        Some(m) => {
                            return refuse(format!(
                                "{id} is {} of {global_cluster}{}",
                                if m.is_writer { "the writer" } else { "a secondary" },
                                if m.in_sync { "" } else { ", being resynchronized" }
                            ))
                        }
                        None => return refuse(format!("{id} is not a member of {global_cluster}")),
                    }
                }
                return Ok(());
            }
        };
        match self.at(db).standby.instance(replica).await? {
            Some(i) if !i.engine.starts_with("mysql") => {
                return refuse(format!("{replica} runs {}, not MySQL", i.engine))
            }
            Some(i) if i.deletion_protection => return refuse(format!("{replica} has deletion protection")),
            Some(i) if i.shape.backup_retention_days <= 0 => {
                return refuse(format!(
                    "{replica} keeps no automated backups (RDS replicates only an instance that does)"
                ))
            }
            Some(_) => {}
            None => return refuse(format!("{replica} is not in {}", self.cfg.dr_region)),
        }
        if let Err(e) = self.at(db).standby.can_block_writes(replica).await {
            return refuse(format!(
                "writes on {replica} could not be blocked for the switch back: {e}"
            ));
        }
        match self.at(db).primary.instance(primary).await? {
            Some(i) if i.deletion_protection => refuse(format!("{primary} has deletion protection")),
            Some(i) if i.replica_of.is_some() => refuse(format!("{primary} is a replica")),
            Some(_) => Ok(()),
            None => refuse(format!("{primary} is not in {}", self.cfg.source_region)),
        }
    }
}

/// The drill's last step: the topology after its failback is the one before the drill.
const ENDED_WHERE_IT_BEGAN: &str = "failback: ended where it began";

impl<A, P, H, M, S, D, St, N, C> Promoter<'_, A, P, H, M, S, D, St, N, C>
where
    A: AlarmView,
    P: PrimaryProbe + Instances,
    H: HealthChecks,
    M: Metrics,
    S: StandbyControl + Instances,
    D: Dns,
    St: StateStore,
    N: Notifier,
    C: Capacity,
{
    /// After a drill's failback: the primary where it was, its replica in the DR region (tagged
    /// for the next drill), DNS on the primary, the recovery plan's groups at their old size.
    async fn back_where_it_began(
        &self,
        db: &crate::model::DatabaseSpec,
        plan: &str,
        fb: &super::record::Failback,
    ) -> Vec<DrillStep> {
        let mut wrong = Vec::new();
        let (primary, replica, endpoint) = match &db.standby {
            Standby::RdsReplica { primary, replica } => {
                let origin = self.at(db).primary.instance(primary).await;
                match &origin {
                    Ok(Some(i)) if i.replica_of.is_none() && i.status == "available" => {}
                    other => wrong.push(format!(
                        "{primary} is not an available primary in {}: {other:?}",
                        self.cfg.source_region
                    )),
                }
                match self.at(db).standby.instance(replica).await {
                    Ok(Some(i))
                        if i.replica_of
                            .as_deref()
                            .is_some_and(|s| s == primary || s.ends_with(&format!(":db:{primary}"))) =>
                    {
                        if i.shape.tags.get(PLAN_TAG).map(String::as_str) != Some(plan) {
                            wrong.push(format!(
                                "{replica} is not tagged {PLAN_TAG}={plan} (the next drill would refuse)"
                            ));
                        }
                    }
                    other => wrong.push(format!("{replica} does not replicate {primary}: {other:?}")),
                }
                let endpoint = origin.ok().flatten().and_then(|i| i.endpoint);
                (primary, replica, endpoint)
            }
            Standby::AuroraGlobal {
                global_cluster,
                primary_cluster,
                secondary_cluster,
            } => {
                match self.at(db).standby.global(global_cluster).await {
                    Ok(Some(g)) => {
                        for (id, writer) in [(primary_cluster, true), (secondary_cluster, false)] {
                            if !g.member(id).is_some_and(|m| m.is_writer == writer && m.in_sync) {
                                wrong.push(format!(
                                    "{id} is not {} of {global_cluster}: {:?}",
                                    if writer { "the writer" } else { "an in-sync secondary" },
                                    g.member(id)
                                ));
                            }
                        }
                    }
                    other => wrong.push(format!("{global_cluster}: {other:?}")),
                }
                match self.at(db).standby.state(&db.standby).await {
                    Ok(s) if s.tags.get(PLAN_TAG).map(String::as_str) == Some(plan) => {}
                    other => wrong.push(format!(
                        "{secondary_cluster} is not tagged {PLAN_TAG}={plan} (the next drill would refuse): {:?}",
                        other.map(|s| s.tags)
                    )),
                }
                let origin = self.at(db).primary.cluster(primary_cluster).await;
                match &origin {
                    Ok(Some(c)) if c.status == "available" => {}
                    other => wrong.push(format!(
                        "{primary_cluster} is not available in {}: {other:?}",
                        self.cfg.source_region
                    )),
                }
                let endpoint = origin.ok().flatten().and_then(|c| c.endpoint);
                (primary_cluster, secondary_cluster, endpoint)
            }
        };
        let endpoint = endpoint.or_else(|| fb.target.clone()).unwrap_or_default();
        match &db.dns.switch {
            // the PRIMARY record answers while its health check's alarm is OK
            crate::model::DnsSwitch::FailoverRecords { alarm } => match self.failed_over_state(alarm).await {
                Ok(state) if state == "OK" => {}
                other => wrong.push(format!(
                    "{alarm} is {other:?}, not OK: Route 53 does not answer the PRIMARY"
                )),
            },
            crate::model::DnsSwitch::Upsert => match self.dns_now(db, &endpoint).await {
                Ok(Some((true, _))) => {}
                other => wrong.push(format!(
                    "{} does not point at {endpoint}: {other:?}",
                    db.dns.record_name.trim_end_matches('.')
                )),
            },
        }
        let (record, _) = self.load(&db.name).await.unwrap_or_default();
        for c in record.current.iter().flat_map(|f| &f.capacity) {
            let Some(before) = c.before else { continue };
            match self.at(db).capacity.group(&c.kind, &c.group).await {
                Ok(Some(g)) if g.size == before => {}
                other => wrong.push(format!(
                    "{} is not back to {}: {:?}",
                    c.label(),
                    c.size(before),
                    other.map(|g| g.map(|g| g.size))
                )),
            }
        }
        let passed = wrong.is_empty();
        vec![DrillStep {
            name: ENDED_WHERE_IT_BEGAN,
            passed,
            seconds: 0.0,
            detail: if passed {
                format!(
                    "{primary} the primary in {}, {replica} its replica in {} (tagged for the next drill), DNS on {primary}, the recovery plan's groups at their old size",
                    self.cfg.source_region, self.cfg.dr_region
                )
            } else {
                wrong.join("; ")
            },
        }]
    }

    /// A drill's failback completed: its last word (the drill's record and a notice).
    /// `stopped`: the failback stopped or its switch was called off (why): the drill FAILs.
    pub(super) async fn drill_failback_done(
        &self,
        db: &crate::model::DatabaseSpec,
        fb: &super::record::Failback,
        stopped: Option<&str>,
    ) -> Result<()> {
        let Some(plan) = fb.by.strip_prefix("drill ") else {
            return Ok(());
        };
        let steps = match stopped {
            None => self.back_where_it_began(db, plan, fb).await,
            Some(why) => vec![DrillStep {
                name: ENDED_WHERE_IT_BEGAN,
                passed: false,
                seconds: 0.0,
                detail: format!("failback {} stopped: {why}", fb.id),
            }],
        };
        let ok = steps.iter().all(|s| s.passed);
        let record = Record::new(&self.hub().state, drill_key(&self.cfg.state, &db.name));
        let last = record.read::<DrillSummary>().await?;
        let etag = last.etag().map(str::to_string);
        // only the drill that started this failback (one stopped inside the drill's own
        // invocation is in that drill's report already)
        let Some(mut summary) = last
            .value()
            .filter(|s| s.failback.as_deref() == Some(format!("failing back: {}", fb.id).as_str()))
        else {
            return Ok(());
        };
        let report = DrillReport {
            database: db.name.clone(),
            plan: plan.to_string(),
            started_at: summary.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            passed: summary.passed && ok,
            steps,
            rto_seconds: summary.rto_seconds,
            rpo_seconds: summary.rpo_seconds,
            left_in: if ok {
                format!("where it began (failback {})", fb.id)
            } else {
                format!("NOT where it began after failback {}", fb.id)
            },
        };
        summary.passed = report.passed;
        summary.failback = Some(if ok {
            "ended where it began".into()
        } else {
            format!(
                "did not end where it began: {}",
                report.steps.first().map(|s| s.detail.as_str()).unwrap_or("")
            )
        });
        record.write(&summary, etag.as_deref()).await?;
        self.hub().notifier.notify(&drill_notice(self.cfg, &report)).await
    }
}

fn drill_notice(cfg: &crate::config::PromoterConfig, r: &DrillReport) -> Notice {
    let verdict = if r.passed { "PASS" } else { "FAIL" };
    let mut body = format!(
        "drpilot drill \"{}\" of {} ({} -> {}), started {}: {verdict}\n\n",
        r.plan, r.database, cfg.source_region, cfg.dr_region, r.started_at,
    );
    for s in &r.steps {
        body.push_str(&format!(
            "  [{}] {} ({:.1}s): {}\n",
            if s.passed { "PASS" } else { "FAIL" },
            s.name,
            s.seconds,
            s.detail
        ));
    }
    if let Some(rto) = r.rto_seconds {
        body.push_str(&format!(
            "\nMeasured RTO (the decision to DNS in sync): {}\n",
            human_seconds(rto)
        ));
    }
    if let Some(rpo) = r.rpo_seconds {
        body.push_str(&format!("Estimated RPO (last healthy lag): {}\n", human_seconds(rpo)));
    }
    body.push_str(&format!("\nLeft in: {}\n", r.left_in));
    Notice::new(
        if r.passed { Severity::Info } else { Severity::Warning },
        format!("drpilot DRILL {verdict}: {} ({})", r.database, r.plan),
        body,
    )
    .with_sms(format!("drpilot drill of {}: {verdict}", r.database))
    .with_attribute("database", r.database.clone())
    .with_attribute("step", "drill")
}
