//! The DR dashboard: is the business protected right now? One row per protected resource
//! (recovery point vs budget, newest DR copy), one per failover-protected database (failover
//! in progress or awaiting acknowledgement, last drill), and an overall verdict with reasons.

use crate::config::DashboardConfig;
use crate::error::Result;
use crate::lagcheck::{metric, status_of, LagState, STATE_OBJECT};
use crate::model::Snapshot;
use crate::model::Target;
use crate::plan::alerting::Tracked;
use crate::plan::copy::managed_copies_of;
use crate::plan::lag::{human_seconds, Datapoint, Status};
use crate::ports::{DrSnapshotStore, MetricId, Metrics, StateStore};
use crate::promoter::drill::{drill_key, DrillSummary};
use crate::promoter::record::DbRecord;
use crate::state::Record;
use crate::verifier::{Verification, VerifierState};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The lag checker runs every period (a minute on AWS): no verdict published for five periods
/// means it is not running.
const STALE_AFTER_PERIODS: i32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Protected,
    AtRisk,
    NotProtected,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Protected => "PROTECTED",
            Verdict::AtRisk => "AT RISK",
            Verdict::NotProtected => "NOT PROTECTED",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceRow {
    pub name: String,
    pub kind: String,
    /// healthy / breached / broken / stale (the lag checker is not reporting) / unknown.
    pub status: String,
    pub since: Option<String>,
    pub recovery_point_seconds: Option<f64>,
    pub rpo_seconds: f64,
    pub newest_dr_copy: Option<String>,
    pub newest_dr_copy_age_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseRow {
    pub name: String,
    pub standby: String,
    /// none / in-progress / aborted / awaiting-acknowledgement / acknowledged.
    pub failover: String,
    pub failover_detail: Option<String>,
    /// Where the database is in its DR life: protected / failing over / failed over /
    /// failing back / protected again (after a failback).
    #[serde(default)]
    pub phase: String,
    #[serde(default)]
    pub phase_detail: Option<String>,
    /// Failed over unplanned, and the old primary is not fenced yet: a split-brain risk.
    #[serde(default)]
    pub old_primary_unfenced: bool,
    /// Automatic failover disarmed by an operator until then (tag
    /// `drpilot:failover-disarmed-until` on the standby).
    #[serde(default)]
    pub disarmed_until: Option<String>,
    pub last_drill: Option<DrillSummary>,
    /// The newest failover's steps so far, oldest first (empty: none ever).
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
}

/// One step of a failover, when it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: String,
    pub what: String,
}

/// One database the restore verifier proves restorable: its last verification.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerificationRow {
    pub db: String,
    pub kind: String,
    pub last: Option<Verification>,
    /// A verification under way: where it has got to.
    pub in_progress: Option<String>,
    /// Why it lowers the verdict (failed, too old, never).
    pub risk: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dashboard {
    pub at: String,
    pub primary_region: String,
    pub dr_region: String,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub resources: Vec<ResourceRow>,
    pub databases: Vec<DatabaseRow>,
    /// The restore verifier's databases (none when it is not deployed).
    #[serde(default)]
    pub verifications: Vec<VerificationRow>,
}

/// Reads everything the dashboard shows. Read-only.
pub async fn gather<M: Metrics, D: DrSnapshotStore, S: StateStore, C: crate::ports::StandbyControl>(
    cfg: &DashboardConfig,
    metrics: &M,
    copies: &D,
    state: &S,
    standbys: &C,
    now: DateTime<Utc>,
) -> Result<Dashboard> {
    let lag_state: BTreeMap<String, Tracked> = Record::new(state, cfg.state.key(STATE_OBJECT))
        .read::<LagState>()
        .await?
        .value()
        .map(|s| s.resources)
        .unwrap_or_default();
    // Only this account's copies and standbys are read: a member account's are reached
    // through the functions' roles, which the CLI does not hold (its verdicts, from the hub's
    // metrics, still show).
    let dr_copies: Vec<Snapshot> = if cfg
        .resources
        .iter()
        .any(|r| r.account.is_none() && matches!(r.target, Target::SnapshotCopies { .. }))
    {
        copies.copies().await?
    } else {
        vec![]
    };
    // Two metrics per resource and the lag checker's run count, in one GetMetricData per 250
    // resources.
    let period = cfg.metric_period_seconds;
    let one = Duration::seconds(i64::from(period));
    let mut ids: Vec<MetricId> = cfg
        .resources
        .iter()
        .flat_map(|spec| {
            let dims = [(metric::DIMENSION, spec.name.as_str())];
            [metric::STATUS, metric::RECOVERY_POINT].map(|name| MetricId::new(&cfg.namespace, name, &dims))
        })
        .collect();
    ids.push(MetricId::new(&cfg.namespace, metric::UNMEASURED, &[]));
    let fresh = |p: Option<Datapoint>| p.filter(|p| now - p.at <= one * STALE_AFTER_PERIODS);
    // A metric CloudWatch could not serve reads as no datapoint: that resource shows unknown
    // (or stale), the rest of the board stands.
    let mut newest: Vec<Option<Datapoint>> = metrics
        .newest_each(&ids, period, now - one * 60, now + one)
        .await?
        .into_iter()
        .map(|p| p.ok().flatten())
        .collect();
    let running = fresh(newest.pop().flatten()).is_some();
    let mut newest = newest.into_iter();
    let mut resources = Vec::new();
    for spec in &cfg.resources {
        let (verdict, point) = (newest.next().flatten(), newest.next().flatten());
        let tracked = lag_state.get(&spec.name);
        // The lag checker's verdict; unknown when it runs but has none (it could not look),
        // stale when it does not run.
        let status = match (fresh(verdict), running) {
            (Some(v), _) => status_of(v.value).unwrap_or(Status::Unknown).as_str(),
            (None, true) => Status::Unknown.as_str(),
            (None, false) => "stale",
        };
        let (newest_dr_copy, age) = match &spec.target {
            Target::SnapshotCopies { db } if spec.account.is_none() => {
                managed_copies_of(&dr_copies, db, &cfg.source_region, &cfg.deployment)
                    .filter(|c| c.is_available())
                    .filter_map(|c| c.source_time().map(|t| (t, c.id.clone())))
                    .max()
                    .map(|(t, id)| (Some(id), Some((now - t).num_seconds().max(0) as f64)))
                    .unwrap_or((None, None))
            }
            _ => (None, None),
        };
        resources.push(ResourceRow {
            name: spec.name.clone(),
            kind: spec.kind().into(),
            status: status.to_string(),
            since: tracked.filter(|t| t.status.as_str() == status).map(|t| stamp(t.since)),
            recovery_point_seconds: fresh(point).map(|p| p.value),
            rpo_seconds: spec.rpo_seconds,
            newest_dr_copy,
            newest_dr_copy_age_seconds: age,
        });
    }

    let mut databases = Vec::new();
    for db in &cfg.databases {
        let record: DbRecord = Record::new(state, crate::promoter::record_key(&cfg.state, &db.name))
            .read()
            .await?
            .value()
            .unwrap_or_default();
        let (failover, failover_detail) = match &record.current {
            None => ("none", None),
            Some(f) => {
                let (word, detail) = if let Some((why, at)) = &f.aborted {
                    ("aborted", format!("{} aborted {}: {why}", f.id, stamp(*at)))
                } else if f.is_active() && f.next_step() == crate::promoter::record::Step::Capacity {
                    // What a responder needs most then: which group DNS waits for, and why.
                    let waiting: Vec<String> = f
                        .capacity
                        .iter()
                        .filter(|c| c.healthy_at.is_none())
                        .map(|c| format!("{}: {}", c.group, c.last_seen()))
                        .collect();
                    let held = if f.notices_sent.iter().any(|n| n == "capacity-held") {
                        "DNS HELD for capacity (strict plan)"
                    } else {
                        "waiting for capacity before DNS"
                    };
                    ("in-progress", format!("{} {held}: {}", f.id, waiting.join("; ")))
                } else if f.is_active() {
                    ("in-progress", format!("{} next step {:?}", f.id, f.next_step()))
                } else if let Some(a) = &f.acknowledged {
                    ("acknowledged", format!("{} by {} at {}", f.id, a.by, stamp(a.at)))
                } else {
                    let completed = f.completed_at.map(stamp).unwrap_or_default();
                    ("awaiting-acknowledgement", format!("{} completed {completed}", f.id))
                };
                let unfenced = if f.needs_fencing() {
                    "; old primary NOT FENCED"
                } else {
                    ""
                };
                (word, Some(format!("{detail}{unfenced}")))
            }
        };
        let aurora = matches!(db.standby, crate::model::Standby::AuroraGlobal { .. });
        let (phase, phase_detail) = phase(&record, aurora, now);
        let last_drill = Record::new(state, drill_key(&cfg.state, &db.name))
            .read::<DrillSummary>()
            .await?
            .value();
        let old_primary_unfenced = record.current.as_ref().is_some_and(|f| f.needs_fencing());
        // An operator's hold on automatic failover (the tag the promoter's `armed` gate reads).
        // An error reading the standby shows in its resource row.
        let standby = match db.account {
            None => standbys.state(&db.standby).await.ok(),
            Some(_) => None,
        };
        let disarmed_until = standby.and_then(|s| {
            let v = s.tags.get(crate::plan::promotion::DISARM_TAG)?;
            match crate::promoter::event::parse_time(v.trim()) {
                Some(t) if t <= now => None,
                Some(t) => Some(stamp(t)),
                None => Some(format!("{v:?} (not a time: read as disarmed)")),
            }
        });
        databases.push(DatabaseRow {
            old_primary_unfenced,
            disarmed_until,
            name: db.name.clone(),
            standby: crate::promoter::standby_name(&db.standby).to_string(),
            failover: failover.to_string(),
            failover_detail,
            phase: phase.to_string(),
            phase_detail,
            last_drill,
            timeline: record.current.as_ref().map_or_else(Vec::new, |f| {
                crate::promoter::notices::timeline_entries(f)
                    .into_iter()
                    .map(|(at, what)| TimelineEntry { at: stamp(at), what })
                    .collect()
            }),
        });
    }
    let verifications = if cfg.verify.is_empty() && cfg.verify_backups.is_empty() {
        vec![]
    } else {
        let state: VerifierState = Record::new(state, crate::verifier::record_key(&cfg.state))
            .read()
            .await?
            .value()
            .unwrap_or_default();
        cfg.verify
            .iter()
            .map(|spec| {
                let last = state.last.get(&spec.db.id).cloned();
                VerificationRow {
                    db: spec.db.id.clone(),
                    kind: spec.db.kind.as_str().into(),
                    risk: Verification::risk(last.as_ref(), now, cfg.verify_max_age_days),
                    last,
                    in_progress: state.run.as_ref().and_then(|r| {
                        let d = r
                            .dbs
                            .iter()
                            .find(|d| d.db == spec.db.id && d.phase != crate::verifier::Phase::Done)?;
                        Some(format!("run {}: {:?}", r.id, d.phase))
                    }),
                }
            })
            .chain(cfg.verify_backups.iter().map(|name| {
                let last = state.last.get(&crate::verifier::backup_key(name)).cloned();
                VerificationRow {
                    db: name.clone(),
                    kind: "s3 backup".into(),
                    risk: Verification::risk(last.as_ref(), now, cfg.verify_max_age_days),
                    last,
                    in_progress: state.run.as_ref().and_then(|r| {
                        r.backups
                            .iter()
                            .find(|b| &b.backup == name && b.result.is_none())
                            .map(|_| format!("run {}: restoring a sample", r.id))
                    }),
                }
            }))
            .collect()
    };
    let (mut verdict, mut reasons) = verdict(&resources, &databases, now);
    for v in &verifications {
        if let Some(risk) = &v.risk {
            verdict = verdict.max(Verdict::AtRisk);
            let what = match v.kind.as_str() {
                "s3 backup" => format!("S3 backup {}", v.db),
                _ => v.db.clone(),
            };
            reasons.push(format!("{what}: backups not proven restorable: {risk}"));
        }
    }
    Ok(Dashboard {
        at: stamp(now),
        primary_region: cfg.source_region.clone(),
        dr_region: cfg.dr_region.clone(),
        verdict,
        reasons,
        resources,
        databases,
        verifications,
    })
}

/// The database's phase, from its failover record (and what it is doing, when that matters).
/// An Aurora global database whose old primary has rejoined as its secondary is protected
/// again with the roles swapped; an RDS database is protected again only after a failback.
pub fn phase(record: &DbRecord, aurora: bool, now: DateTime<Utc>) -> (&'static str, Option<String>) {
    let done = |fb: &crate::promoter::record::Failback| {
        record
            .current
            .as_ref()
            .is_some_and(|f| f.id == fb.failover && fb.completed_at.is_some())
    };
    match (&record.current, &record.failback) {
        (_, Some(fb)) if fb.is_active() => {
            let seen = fb.seen.as_deref().map(|s| format!(" ({s})")).unwrap_or_default();
            (
                "failing back",
                Some(format!("{} next step {:?}{seen}", fb.id, fb.next_step(now))),
            )
        }
        (_, Some(fb)) if done(fb) => (
            "protected again",
            Some(format!(
                "failback {} completed {}",
                fb.id,
                fb.completed_at.map(stamp).unwrap_or_default()
            )),
        ),
        (Some(f), Some(fb)) if fb.failover == f.id && fb.switched() => (
            "back without a standby",
            Some(format!(
                "failback {} stopped after the switch back: {}",
                fb.id,
                fb.aborted.as_ref().map_or("", |(why, _)| why.as_str())
            )),
        ),
        (Some(f), _) if f.is_active() => ("failing over", None),
        (Some(f), _) if f.completed_at.is_some() && aurora && f.fenced.is_some() => (
            "protected",
            Some("roles swapped: the old primary cluster is the global database's secondary".into()),
        ),
        (Some(f), _) if f.completed_at.is_some() => ("failed over", None),
        _ => ("protected", None),
    }
}

/// The overall verdict, with every reason that lowered it.
pub fn verdict(resources: &[ResourceRow], databases: &[DatabaseRow], now: DateTime<Utc>) -> (Verdict, Vec<String>) {
    let mut worst = Verdict::Protected;
    let mut reasons = Vec::new();
    let mut lower = |v: Verdict, why: String| {
        worst = worst.max(v);
        reasons.push(why);
    };
    for r in resources {
        match r.status.as_str() {
            "healthy" => {}
            "breached" => lower(Verdict::AtRisk, format!("{} is over its RPO budget", r.name)),
            "broken" => lower(
                Verdict::NotProtected,
                format!("{}: replication or backup is broken", r.name),
            ),
            "stale" => lower(
                Verdict::NotProtected,
                format!(
                    "{}: no measurement in the last 5 minutes (is the lag checker running?)",
                    r.name
                ),
            ),
            other => lower(Verdict::AtRisk, format!("{}: status {other}", r.name)),
        }
    }
    for d in databases {
        match d.failover.as_str() {
            "in-progress" => lower(Verdict::NotProtected, format!("{}: a failover is in progress", d.name)),
            "awaiting-acknowledgement" => lower(
                Verdict::AtRisk,
                format!(
                    "{}: failed over; automatic failover is disarmed until acknowledged",
                    d.name
                ),
            ),
            _ => {}
        }
        match d.phase.as_str() {
            "failing back" => lower(
                Verdict::AtRisk,
                format!(
                    "{}: failing back: {}",
                    d.name,
                    d.phase_detail.as_deref().unwrap_or("in progress")
                ),
            ),
            "failed over" => lower(
                Verdict::AtRisk,
                format!(
                    "{}: failed over: it runs in the DR region without a standby until a failback",
                    d.name
                ),
            ),
            "back without a standby" => lower(
                Verdict::NotProtected,
                format!(
                    "{}: back in the primary region without a DR replica ({})",
                    d.name,
                    d.phase_detail.as_deref().unwrap_or("")
                ),
            ),
            _ => {}
        }
        if let Some(until) = &d.disarmed_until {
            lower(
                Verdict::AtRisk,
                format!("{}: automatic failover disarmed by an operator until {until}", d.name),
            );
        }
        if d.old_primary_unfenced {
            lower(
                Verdict::NotProtected,
                format!(
                    "{}: split-brain risk: failed over, the old primary is not fenced",
                    d.name
                ),
            );
        }
        match &d.last_drill {
            // informational: does not lower the verdict
            None => lower(Verdict::Protected, format!("{}: never drilled", d.name)),
            Some(drill) if !drill.passed => lower(Verdict::AtRisk, format!("{}: the last drill failed", d.name)),
            Some(drill) if now - drill.at > Duration::days(92) => lower(
                Verdict::Protected,
                format!("{}: last drill is more than a quarter old", d.name),
            ),
            Some(_) => {}
        }
    }
    (worst, reasons)
}

use crate::model::stamp;

impl Dashboard {
    /// The human view: readable without colour.
    pub fn render(&self) -> String {
        let mut out = format!(
            "DR status at {} ({} -> {}): {}\n",
            self.at,
            self.primary_region,
            self.dr_region,
            self.verdict.as_str()
        );
        for r in &self.reasons {
            out.push_str(&format!("  - {r}\n"));
        }
        let rows: Vec<Vec<String>> = self
            .resources
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.kind.clone(),
                    r.status.to_uppercase(),
                    r.recovery_point_seconds
                        .map(human_seconds)
                        .unwrap_or_else(|| "?".into()),
                    human_seconds(r.rpo_seconds),
                    match (&r.newest_dr_copy, r.newest_dr_copy_age_seconds) {
                        (Some(id), Some(age)) => format!("{id} ({} old)", human_seconds(age)),
                        _ => "-".into(),
                    },
                    r.since.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&crate::table::render(
            &[
                "RESOURCE",
                "KIND",
                "STATUS",
                "RECOVERY POINT",
                "BUDGET",
                "NEWEST DR COPY",
                "SINCE",
            ],
            &rows,
        ));
        if !self.databases.is_empty() {
            let rows: Vec<Vec<String>> = self
                .databases
                .iter()
                .map(|d| {
                    vec![
                        d.name.clone(),
                        d.standby.clone(),
                        d.phase.to_uppercase(),
                        d.failover.to_uppercase(),
                        d.failover_detail.clone().unwrap_or_else(|| "-".into()),
                        match &d.last_drill {
                            None => "never".into(),
                            Some(x) => format!(
                                "{} {} (RTO {})",
                                if x.passed { "PASS" } else { "FAIL" },
                                x.at.format("%Y-%m-%d"),
                                x.rto_seconds.map(human_seconds).unwrap_or_else(|| "?".into())
                            ),
                        },
                    ]
                })
                .collect();
            out.push('\n');
            out.push_str(&crate::table::render(
                &["DATABASE", "STANDBY", "PHASE", "FAILOVER", "DETAIL", "LAST DRILL"],
                &rows,
            ));
        }
        if !self.verifications.is_empty() {
            let rows: Vec<Vec<String>> = self
                .verifications
                .iter()
                .map(|v| {
                    let last = v.last.as_ref();
                    vec![
                        format!("{} ({})", v.db, v.kind),
                        match last {
                            None => "NEVER".into(),
                            Some(l) if l.passed => "VERIFIED".into(),
                            Some(_) => "FAILED".into(),
                        },
                        last.map(|l| stamp(l.finished)).unwrap_or_else(|| "-".into()),
                        last.and_then(|l| l.restore_seconds)
                            .map(human_seconds)
                            .unwrap_or_else(|| "-".into()),
                        last.and_then(|l| l.copy_age_seconds)
                            .map(human_seconds)
                            .unwrap_or_else(|| "-".into()),
                        v.in_progress
                            .clone()
                            .or_else(|| last.and_then(|l| l.failure.clone()))
                            .unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            out.push('\n');
            out.push_str(&crate::table::render(
                &["RESTORE TEST", "LAST", "FINISHED", "RESTORE TOOK", "COPY AGE", "DETAIL"],
                &rows,
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, status: &str) -> ResourceRow {
        ResourceRow {
            name: name.into(),
            kind: "rds-replica".into(),
            status: status.into(),
            since: None,
            recovery_point_seconds: None,
            rpo_seconds: 60.0,
            newest_dr_copy: None,
            newest_dr_copy_age_seconds: None,
        }
    }

    fn db(failover: &str, drill: Option<(i64, bool)>) -> DatabaseRow {
        DatabaseRow {
            name: "orders".into(),
            standby: "orders-dr".into(),
            failover: failover.into(),
            failover_detail: None,
            phase: "protected".into(),
            phase_detail: None,
            old_primary_unfenced: false,
            disarmed_until: None,
            last_drill: drill.map(|(days, passed)| DrillSummary {
                at: Utc::now() - Duration::days(days),
                passed,
                rto_seconds: Some(60.0),
                rpo_seconds: Some(1.0),
                failback: None,
            }),
            timeline: vec![],
        }
    }

    #[test]
    fn the_verdict_is_the_worst_reason() {
        let now = Utc::now();
        assert_eq!(
            verdict(&[row("a", "healthy")], &[db("none", Some((10, true)))], now),
            (Verdict::Protected, vec![])
        );
        assert_eq!(verdict(&[row("a", "breached")], &[], now).0, Verdict::AtRisk);
        assert_eq!(
            verdict(&[row("a", "breached"), row("b", "broken")], &[], now).0,
            Verdict::NotProtected
        );
        assert_eq!(verdict(&[row("a", "stale")], &[], now).0, Verdict::NotProtected);
        assert_eq!(
            verdict(&[row("a", "healthy")], &[db("in-progress", None)], now).0,
            Verdict::NotProtected
        );
        assert_eq!(
            verdict(&[row("a", "healthy")], &[db("awaiting-acknowledgement", None)], now).0,
            Verdict::AtRisk
        );
        assert_eq!(
            verdict(&[row("a", "healthy")], &[db("none", Some((10, false)))], now).0,
            Verdict::AtRisk
        );
        let (v, reasons) = verdict(&[row("a", "healthy")], &[db("none", None)], now);
        assert_eq!(
            (v, reasons),
            (Verdict::Protected, vec!["orders: never drilled".to_string()])
        );
        let (_, reasons) = verdict(&[], &[db("none", Some((100, true)))], now);
        assert_eq!(
            reasons,
            vec!["orders: last drill is more than a quarter old".to_string()]
        );
    }
}
