//! Whether to promote the DR replica: every gate must pass, and each says why it did not.
//! Pure: the evidence is gathered by the caller; nothing here looks at AWS or the clock.
//! Modelled on orchestrator/Patroni: confirm independently, gate on the last *healthy* lag,
//! never flap, one failover at a time, and an advisory mode that only says what it would do.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::lag::human_seconds;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Does everything but mutate; tells responders what it would do.
    Advisory,
    /// Acts.
    Automatic,
}

/// The primary as seen from the DR region.
#[derive(Debug, Clone, PartialEq)]
pub enum PrimaryView {
    Available,
    /// The API answers with a status that means the database is broken (see [`classify`]).
    Broken(String),
    /// The API answers with a planned or transitional status (a reboot, maintenance, an
    /// upgrade, a stop): routine work, never a reason for an automatic failover.
    Planned(String),
    /// The primary region's API does not answer, consistently (every attempt of a bounded
    /// retry timed out, failed to connect or got a 5xx): the region-outage signal.
    Unreachable(String),
    /// An answer that says nothing about the primary (access denied, throttled).
    Unknown(String),
}

/// What an RDS instance or Aurora cluster status says about a failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    Available,
    /// The database cannot serve and will not recover by itself soon.
    Broken,
    /// Routine work or a transition AWS (or an operator) is driving; it ends by itself.
    Planned,
}

/// Statuses that mean the database is broken (RDS User Guide, "Viewing Amazon RDS DB instance
/// status"; Aurora User Guide, "Viewing DB cluster status"). Every other status that is not
/// `available` is routine work or a transition and vetoes an automatic failover: an unknown
/// status is not evidence of failure.
const BROKEN_STATES: &[&str] = &[
    "failed",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-parameters",
    "incompatible-restore",
    "insufficient-capacity",
    "restore-error",
    "storage-full",
    "cloning-failed",
    "migration-failed",
    // not listed (or not found) by an API that answers: the database is gone
    "not found",
];

/// Statuses in which RDS keeps serving and taking writes (RDS User Guide, "Viewing Amazon RDS
/// DB instance status"): a primary seen in one of them may have written what replication
/// never carried.
pub const TAKES_WRITES: &[&str] = &[
    "available",
    "backing-up",
    "modifying",
    "storage-optimization",
    "configuring-enhanced-monitoring",
    "configuring-iam-database-auth",
    "configuring-log-exports",
    "maintenance",
];

pub fn classify(status: &str) -> StatusClass {
    match status {
        "available" => StatusClass::Available,
        s if BROKEN_STATES.contains(&s) => StatusClass::Broken,
        _ => StatusClass::Planned,
    }
}

/// Route 53 health checkers' verdicts on the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkers {
    pub failing: u32,
    pub total: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReplicaState {
    /// Available and still replicating from the primary: ready to promote.
    Ready {
        endpoint: String,
    },
    /// Still replicating, in a transition AWS ends by itself (a backup, a modification):
    /// AWS refuses a promotion until it ends, so the promotion is retried until accepted.
    Busy {
        endpoint: String,
        status: String,
    },
    NotReady(String),
}

/// The alarm that fired, as CloudWatch describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmWindow {
    pub period: Duration,
    pub evaluation_periods: u32,
    /// `DatapointsToAlarm` (M of N); CloudWatch's default is `evaluation_periods`.
    pub datapoints_to_alarm: u32,
}

impl AlarmWindow {
    /// The longest a healthy measurement can precede the alarm when replication worked until
    /// the failure: the measurement's own period (the lag history is read by period-aligned
    /// buckets, stamped at the period's start), the M breaching periods the alarm needs, and
    /// one period for CloudWatch to evaluate after the last one ends. Detection time, not
    /// data loss; anything longer is counted as lost.
    pub fn explains(&self) -> Duration {
        self.period * (self.datapoints_to_alarm.max(1) as i32 + 2)
    }
}

/// An operator's hold on automatic failover, read from the standby's tag.
#[derive(Debug, Clone, PartialEq)]
pub enum Disarm {
    Until(DateTime<Utc>),
    /// The tag is set but its value is not a time: the operator meant to disarm.
    Unreadable(String),
}

/// The tag an operator sets on the standby to disarm automatic failover until a time
/// (RFC 3339). It lives in the DR region, so it can be read during the outage it is for.
pub const DISARM_TAG: &str = "drpilot:failover-disarmed-until";

/// The previous failover of this database, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousFailover {
    pub id: String,
    pub completed_at: Option<DateTime<Utc>>,
    pub acknowledged: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// The alarm that fired, re-read now: still in ALARM?
    pub alarm_still_firing: Option<bool>,
    /// When the alarm went into ALARM, as CloudWatch reports it (the failure's detection
    /// time); for an operator's request, now.
    pub alarm_since: DateTime<Utc>,
    /// The alarm's evaluation settings; `None` for an operator's request (or unreadable).
    pub alarm_window: Option<AlarmWindow>,
    pub primary: PrimaryView,
    /// `None` when no health check is configured.
    pub checkers: Option<Checkers>,
    /// The last lag measured while replication worked: (when, seconds). From the lag checker's
    /// `RecoveryPointSeconds` history, which is never published for a broken link.
    pub last_healthy_lag: Option<(DateTime<Utc>, f64)>,
    pub replica: ReplicaState,
    pub disarm: Option<Disarm>,
    /// The last time the primary was seen available while this episode's replication was
    /// broken (an earlier, refused decision of the same episode): it took writes the standby
    /// never got.
    pub primary_serving_at: Option<DateTime<Utc>>,
    pub previous: Option<PreviousFailover>,
    /// Maintenance RDS reports on a primary that looks available (e.g. an OS patch applied
    /// through a Multi-AZ failover: the status stays `available` while the endpoint does not
    /// answer). Empty when not asked.
    pub maintenance: MaintenanceReport,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub mode: Mode,
    /// Maximum estimated data loss for an automatic promotion.
    pub max_data_loss_seconds: f64,
    /// Minimum share of health checkers that must report the primary failing.
    pub checker_quorum_percent: u32,
    /// No automatic failover within this long after the previous one completed.
    pub cooldown: Duration,
    /// How far back the lag history may be looked for.
    pub lag_lookback: Duration,
    /// The period of the lag history's metrics (one minute on AWS).
    pub metric_period: Duration,
}

/// Who asked for the failover.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// An alarm: every gate applies.
    Alarm,
    /// An operator's command: the operator is the confirmation and the anti-flapping
    /// judgement; the lag gate still applies unless the operator accepts the data loss, or
    /// the failover is `planned` (writes stop and the standby catches up first: nothing lost).
    Operator { force_data_loss: bool, planned: bool },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gate {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Promote,
    /// Advisory mode: every gate passed; say what would be done.
    WouldPromote,
    /// A gate failed; a human decides.
    Refuse,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub verdict: Verdict,
    pub gates: Vec<Gate>,
    /// Estimated data loss of a promotion now (seconds), when it can be estimated.
    pub estimated_rpo_seconds: Option<f64>,
}

impl Decision {
    pub fn failed_gates(&self) -> Vec<&Gate> {
        self.gates.iter().filter(|g| !g.passed).collect()
    }

    /// Only the lag gate failed: promotion is possible if a human accepts the data loss.
    pub fn only_lag_failed(&self) -> bool {
        let failed = self.failed_gates();
        !failed.is_empty() && failed.iter().all(|g| g.name == LAG)
    }
}

pub const CONFIRMED: &str = "confirmed";
pub const MAINTENANCE: &str = "no-maintenance";

/// What RDS reports about maintenance on the primary (`PrimaryProbe::maintenance`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MaintenanceReport {
    /// Pending maintenance actions RDS applies now: due in the maintenance window the primary
    /// is in, forced (`ForcedApplyDate` passed), or opted in `immediate`. One due but waiting
    /// for its window (up to a week) is not maintenance under way.
    pub applying: Vec<String>,
    /// RDS `maintenance` events since the failure could have begun: (when, message).
    pub events: Vec<(DateTime<Utc>, String)>,
    /// What could not be read (said in the gate's detail; not a veto by itself).
    pub unread: Vec<String>,
}

/// How far back maintenance events are read, and how long a forced maintenance action still
/// counts after its date: long enough for an OS update or an engine upgrade to run.
pub const MAINTENANCE_LOOKBACK: Duration = Duration::hours(6);

/// What an RDS `maintenance` event says about maintenance under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Begins,
    Ends,
    /// Notices ("a minor version upgrade is available", "OS upgrade requirement detected").
    Neither,
}

/// Classifies an RDS maintenance event by its message (RDS User Guide, "Amazon RDS event
/// categories and event messages": e.g. RDS-EVENT-0026 "Applying off-line patches to DB
/// instance", RDS-EVENT-0027 "Finished applying off-line patches to DB instance",
/// RDS-EVENT-0047 "Database instance patched", "... engine version upgrade started", "...
/// has been upgraded", "The post-upgrade tasks are in progress" (the last of a successful
/// upgrade), "... upgrade failed ... rollback succeeded").
fn stage(message: &str) -> Stage {
    let m = message.to_ascii_lowercase();
    const ENDS: &[&str] = &[
        "finished",
        "completed",
        "patched",
        "has been upgraded",
        "failed",
        "rollback",
        "post-upgrade",
    ];
    const BEGINS: &[&str] = &["applying", "started", "in progress", "upgrading", "being applied"];
    if ENDS.iter().any(|w| m.contains(w)) {
        Stage::Ends
    } else if BEGINS.iter().any(|w| m.contains(w)) {
        Stage::Begins
    } else {
        Stage::Neither
    }
}

/// The maintenance that vetoes now: actions being applied; maintenance begun and not reported
/// finished; maintenance finished less than `tail` ago (replication is catching up).
pub fn maintenance_under_way(r: &MaintenanceReport, now: DateTime<Utc>, tail: Duration) -> Vec<String> {
    let mut signs: Vec<String> = r.applying.clone();
    let mut events = r.events.clone();
    events.sort_by_key(|(at, _)| *at);
    let hm = |t: DateTime<Utc>| t.format("%H:%M:%SZ").to_string();
    let mut open: Option<&(DateTime<Utc>, String)> = None;
    let mut finished: Option<&(DateTime<Utc>, String)> = None;
    for e in &events {
        match stage(&e.1) {
            Stage::Ends => {
                open = None;
                finished = Some(e);
            }
            Stage::Begins => open = Some(e),
            Stage::Neither => {}
        }
    }
    if let Some((at, message)) = open {
        signs.push(format!("RDS event at {}: {message} (not reported finished)", hm(*at)));
    } else if let Some((at, message)) = finished.filter(|(at, _)| *at >= now - tail) {
        signs.push(format!(
            "RDS event at {}: {message} (replication may still be catching up)",
            hm(*at)
        ));
    }
    signs
}

/// Whether `now` is inside an RDS maintenance window (`PreferredMaintenanceWindow`,
/// `ddd:hh24:mi-ddd:hh24:mi`, UTC). `None` when it cannot be read.
pub fn in_maintenance_window(window: &str, now: DateTime<Utc>) -> Option<bool> {
    use chrono::{Datelike, Timelike};
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let minute_of_week = |part: &str| -> Option<i64> {
        let mut it = part.trim().split(':');
        let day = it.next()?.to_ascii_lowercase();
        let day = DAYS.iter().position(|d| *d == day)? as i64;
        let (h, m): (i64, i64) = (it.next()?.parse().ok()?, it.next()?.parse().ok()?);
        (h < 24 && m < 60 && it.next().is_none()).then_some(day * 1440 + h * 60 + m)
    };
    let (start, end) = window.split_once('-')?;
    let (start, end) = (minute_of_week(start)?, minute_of_week(end)?);
    let at =
        i64::from(now.weekday().num_days_from_monday()) * 1440 + i64::from(now.hour()) * 60 + i64::from(now.minute());
    Some(if start <= end {
        start <= at && at < end
    } else {
        at >= start || at < end
    })
}
pub const ARMED: &str = "armed";
pub const LAG: &str = "lag";
pub const REPLICA: &str = "replica-ready";
pub const FLAPPING: &str = "anti-flapping";

/// Estimated data loss: the last healthy lag, plus the time replication was down while the
/// primary still took writes. That is the silence between the measurement and the failure's
/// detection beyond what detection itself `explains` (see [`AlarmWindow::explains`]: if
/// replication stopped reporting an hour before the primary died, that hour is lost), or,
/// when the primary was seen serving later (`serving_at`), everything up to then.
/// `None` if no healthy lag was measured in the lookback.
pub fn estimate_rpo(
    last_healthy_lag: Option<(DateTime<Utc>, f64)>,
    detected_at: DateTime<Utc>,
    serving_at: Option<DateTime<Utc>>,
    lookback: Duration,
    explains: Duration,
) -> Option<f64> {
    let (at, lag) = last_healthy_lag?;
    if detected_at - at > lookback {
        return None;
    }
    let seconds = |d: Duration| d.num_milliseconds() as f64 / 1000.0;
    let silent = seconds(detected_at - at - explains);
    let served = serving_at.map_or(0.0, |s| seconds(s - at));
    Some(lag + silent.max(served).max(0.0))
}

fn gate(name: &'static str, passed: bool, detail: impl Into<String>) -> Gate {
    Gate {
        name,
        passed,
        detail: detail.into(),
    }
}

fn confirmed(e: &Evidence, p: &Policy) -> Gate {
    let mut signals: Vec<String> = Vec::new();
    let quorum = e
        .checkers
        .map(|c| c.total > 0 && c.failing * 100 >= p.checker_quorum_percent * c.total);
    let down = match &e.primary {
        PrimaryView::Available => {
            signals.push("the primary is available as seen from the DR region".into());
            false
        }
        PrimaryView::Broken(s) => {
            signals.push(format!("the primary is {s}"));
            true
        }
        PrimaryView::Planned(s) => {
            signals.push(format!("the primary is {s}"));
            false
        }
        PrimaryView::Unreachable(why) => {
            signals.push(format!("the primary region's API does not answer ({why})"));
            match quorum {
                // The health checkers look from eight regions; if they see the primary
                // healthy, the DR region is cut off from it, not the primary down.
                Some(false) => {
                    signals.push(
                        "the health checkers do not agree: a network partition between the regions, not an outage"
                            .into(),
                    );
                    false
                }
                _ => true,
            }
        }
        PrimaryView::Unknown(why) => {
            signals.push(format!("the primary's state is unknown ({why})"));
            false
        }
    };
    if let Some(c) = e.checkers {
        signals.push(format!(
            "{} of {} health checkers report it failing (quorum {}%)",
            c.failing, c.total, p.checker_quorum_percent
        ));
    }
    let down = down || (quorum == Some(true) && !matches!(e.primary, PrimaryView::Unreachable(_)));
    let alarm = match e.alarm_still_firing {
        Some(true) => "the alarm is still in ALARM",
        Some(false) => "the alarm is no longer in ALARM",
        None => "the alarm could not be re-read",
    };
    let passed = e.alarm_still_firing == Some(true) && down;
    gate(CONFIRMED, passed, format!("{alarm}; {}", signals.join("; ")))
}

/// Routine work on the primary vetoes an automatic failover: a reboot or an upgrade pauses
/// replication (and fires the alarm) and ends by itself; promoting would split the database.
fn maintenance_gate(e: &Evidence, now: DateTime<Utc>) -> Gate {
    if let PrimaryView::Planned(s) = &e.primary {
        return gate(
            MAINTENANCE,
            false,
            format!(
                "the primary is {s}: planned work or a transition that ends by itself, not a failure; no automatic failover during it"
            ),
        );
    }
    let tail = e.alarm_window.map_or(Duration::minutes(5), |w| w.explains());
    let signs = maintenance_under_way(&e.maintenance, now, tail);
    if !signs.is_empty() {
        return gate(
            MAINTENANCE,
            false,
            format!(
                "RDS reports maintenance on the primary: {}; no automatic failover during it",
                signs.join("; ")
            ),
        );
    }
    let unread = if e.maintenance.unread.is_empty() {
        String::new()
    } else {
        format!(" (could not read: {})", e.maintenance.unread.join("; "))
    };
    gate(
        MAINTENANCE,
        true,
        format!("the primary is in no planned or transitional state, and RDS reports no maintenance under way{unread}"),
    )
}

fn armed_gate(e: &Evidence, now: DateTime<Utc>) -> Gate {
    let (passed, detail) = match &e.disarm {
        None => (true, format!("no {DISARM_TAG} tag on the standby")),
        Some(Disarm::Until(t)) if *t <= now => (
            true,
            format!(
                "the operator's hold ({DISARM_TAG}) ended at {}",
                t.format("%Y-%m-%dT%H:%M:%SZ")
            ),
        ),
        Some(Disarm::Until(t)) => (
            false,
            format!(
                "an operator disarmed automatic failover until {} (tag {DISARM_TAG} on the standby)",
                t.format("%Y-%m-%dT%H:%M:%SZ")
            ),
        ),
        Some(Disarm::Unreadable(v)) => (
            false,
            format!("the standby's {DISARM_TAG} tag is {v:?}, not an RFC 3339 time: read as disarmed"),
        ),
    };
    gate(ARMED, passed, detail)
}

fn lag_gate(estimate: Option<f64>, e: &Evidence, p: &Policy, force: bool) -> Gate {
    let limit = human_seconds(p.max_data_loss_seconds);
    match (estimate, e.last_healthy_lag) {
        (Some(est), Some((at, lag))) => {
            let within = est <= p.max_data_loss_seconds;
            gate(
                LAG,
                within || force,
                format!(
                    "estimated data loss {} (last healthy lag {} at {}){} the limit {limit}{}",
                    human_seconds(est),
                    human_seconds(lag),
                    at.format("%H:%M:%SZ"),
                    if within { " is within" } else { " exceeds" },
                    if force && !within {
                        "; the operator accepted the loss"
                    } else {
                        ""
                    }
                ),
            )
        }
        _ => gate(
            LAG,
            force,
            format!(
                "no healthy lag measured in the {} before the failure: data loss unknown (limit {limit}){}",
                human_seconds(p.lag_lookback.num_seconds() as f64),
                if force { "; the operator accepted the loss" } else { "" }
            ),
        ),
    }
}

fn replica_gate(e: &Evidence) -> Gate {
    match &e.replica {
        ReplicaState::Ready { endpoint } => gate(REPLICA, true, format!("the DR replica is available ({endpoint})")),
        ReplicaState::Busy { endpoint, status } => gate(
            REPLICA,
            true,
            format!(
                "the DR replica is {status} ({endpoint}): AWS accepts the promotion once that ends; drpilot retries until it does"
            ),
        ),
        ReplicaState::NotReady(why) => gate(REPLICA, false, why.clone()),
    }
}

fn flapping_gate(e: &Evidence, p: &Policy, now: DateTime<Utc>) -> Gate {
    match &e.previous {
        None => gate(FLAPPING, true, "no previous failover"),
        Some(prev) if prev.completed_at.is_none() => {
            gate(FLAPPING, false, format!("failover {} has not completed", prev.id))
        }
        Some(prev) if !prev.acknowledged => gate(
            FLAPPING,
            false,
            format!("failover {} was never acknowledged by a human", prev.id),
        ),
        Some(prev) => {
            let done = prev.completed_at.unwrap_or(now);
            gate(
                FLAPPING,
                now - done >= p.cooldown,
                format!(
                    "previous failover {} completed {} ago (cooldown {})",
                    prev.id,
                    human_seconds((now - done).num_seconds().max(0) as f64),
                    human_seconds(p.cooldown.num_seconds() as f64)
                ),
            )
        }
    }
}

pub fn decide(e: &Evidence, p: &Policy, request: &Request, now: DateTime<Utc>) -> Decision {
    // Detection explains up to the alarm's window; an operator's request is "now", and a
    // working link is measured every period (stamped at the start of its period-aligned
    // bucket, and reported up to a period late).
    let explains = e.alarm_window.map_or(p.metric_period * 3, |w| w.explains());
    let estimate = estimate_rpo(
        e.last_healthy_lag,
        e.alarm_since,
        e.primary_serving_at,
        p.lag_lookback,
        explains,
    );
    let (force, operator, planned) = match request {
        Request::Alarm => (false, false, false),
        Request::Operator {
            force_data_loss,
            planned,
        } => (*force_data_loss, true, *planned),
    };
    let lag = if planned {
        gate(
            LAG,
            true,
            "a planned failover: writes stop on the primary and the standby catches up before it is promoted, so nothing is lost",
        )
    } else {
        lag_gate(estimate, e, p, force)
    };
    let [confirmed, maintenance, armed, flapping] = if operator {
        [CONFIRMED, MAINTENANCE, ARMED, FLAPPING].map(|name| gate(name, true, "an operator asked for this failover"))
    } else {
        [
            confirmed(e, p),
            maintenance_gate(e, now),
            armed_gate(e, now),
            flapping_gate(e, p, now),
        ]
    };
    let gates = vec![confirmed, maintenance, armed, lag, replica_gate(e), flapping];
    let verdict = match (gates.iter().all(|g| g.passed), p.mode, operator) {
        (false, _, _) => Verdict::Refuse,
        (true, Mode::Advisory, false) => Verdict::WouldPromote,
        (true, _, _) => Verdict::Promote,
    };
    Decision {
        verdict,
        gates,
        estimated_rpo_seconds: if planned { Some(0.0) } else { estimate },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap() + Duration::minutes(min)
    }

    fn policy() -> Policy {
        Policy {
            mode: Mode::Automatic,
            max_data_loss_seconds: 60.0,
            checker_quorum_percent: 60,
            cooldown: Duration::hours(1),
            lag_lookback: Duration::hours(1),
            metric_period: Duration::minutes(1),
        }
    }

    /// A region outage at minute 0: alarm firing, API unreachable, lag 5 s a minute before.
    fn outage() -> Evidence {
        Evidence {
            alarm_still_firing: Some(true),
            alarm_since: t(0),
            alarm_window: Some(shipped_alarm()),
            primary: PrimaryView::Unreachable("connection timed out".into()),
            checkers: None,
            last_healthy_lag: Some((t(-1), 5.0)),
            replica: ReplicaState::Ready {
                endpoint: "orders-dr.abc.us-west-2.rds.amazonaws.com".into(),
            },
            disarm: None,
            primary_serving_at: None,
            previous: None,
            maintenance: MaintenanceReport::default(),
        }
    }

    /// The shipped primary-down alarm: three one-minute periods, all breaching.
    fn shipped_alarm() -> AlarmWindow {
        AlarmWindow {
            period: Duration::minutes(1),
            evaluation_periods: 3,
            datapoints_to_alarm: 3,
        }
    }

    fn gate<'a>(d: &'a Decision, name: &str) -> &'a Gate {
        d.gates.iter().find(|g| g.name == name).unwrap()
    }

    #[test]
    fn a_confirmed_outage_with_small_lag_promotes() {
        let d = decide(&outage(), &policy(), &Request::Alarm, t(2));
        assert_eq!(d.verdict, Verdict::Promote, "{d:#?}");
        assert_eq!(d.estimated_rpo_seconds, Some(5.0));
    }

    #[test]
    fn advisory_mode_passes_every_gate_but_does_not_promote() {
        let d = decide(
            &outage(),
            &Policy {
                mode: Mode::Advisory,
                ..policy()
            },
            &Request::Alarm,
            t(2),
        );
        assert_eq!(d.verdict, Verdict::WouldPromote);
    }

    #[test]
    fn confirmation_needs_the_alarm_still_firing_and_an_independent_signal() {
        let cases: Vec<(Option<bool>, PrimaryView, Option<Checkers>, bool)> = vec![
            (Some(true), PrimaryView::Unreachable("timeout".into()), None, true),
            (Some(true), PrimaryView::Broken("failed".into()), None, true),
            (Some(false), PrimaryView::Unreachable("timeout".into()), None, false), // a blip: alarm back to OK
            (None, PrimaryView::Unreachable("timeout".into()), None, false),        // cannot re-read the alarm
            (Some(true), PrimaryView::Available, None, false),                      // the alarm alone
            (Some(true), PrimaryView::Unknown("AccessDenied".into()), None, false), // no evidence either way
            (
                Some(true),
                PrimaryView::Available,
                Some(Checkers { failing: 5, total: 8 }),
                true,
            ), // 62% >= 60%
            (
                Some(true),
                PrimaryView::Available,
                Some(Checkers { failing: 4, total: 8 }),
                false,
            ), // 50% < 60%
            (
                Some(true),
                PrimaryView::Unknown("throttled".into()),
                Some(Checkers { failing: 8, total: 8 }),
                true,
            ),
            (
                Some(true),
                PrimaryView::Available,
                Some(Checkers { failing: 0, total: 0 }),
                false,
            ),
        ];
        for (alarm, primary, checkers, expected) in cases {
            let e = Evidence {
                alarm_still_firing: alarm,
                primary: primary.clone(),
                checkers,
                ..outage()
            };
            let d = decide(&e, &policy(), &Request::Alarm, t(2));
            assert_eq!(
                gate(&d, CONFIRMED).passed,
                expected,
                "{alarm:?} {primary:?} {checkers:?}: {}",
                gate(&d, CONFIRMED).detail
            );
            assert_eq!(d.verdict == Verdict::Promote, expected);
        }
    }

    #[test]
    fn the_estimate_adds_only_the_silence_detection_does_not_explain() {
        let lookback = Duration::hours(1);
        let at = t(0);
        let explains = shipped_alarm().explains();
        assert_eq!(explains, Duration::minutes(5), "its period, 3 breaching, 1 to evaluate");
        // the shipped alarm fires 4-5 minutes after the last healthy measurement: the lag itself
        assert_eq!(estimate_rpo(Some((at, 5.0)), t(5), None, lookback, explains), Some(5.0));
        // seven minutes of silence: two of them count as lost
        assert_eq!(
            estimate_rpo(Some((at, 5.0)), t(7), None, lookback, explains),
            Some(125.0)
        );
        // the same timeline on a clock twenty times faster: the same shape, a twentieth of it
        let scaled = AlarmWindow {
            period: Duration::seconds(3),
            ..shipped_alarm()
        };
        assert_eq!(
            estimate_rpo(
                Some((at, 0.25)),
                at + Duration::seconds(21),
                None,
                lookback,
                scaled.explains()
            ),
            Some(6.25)
        );
        // M of N: two breaching periods of five fire sooner, and explain less
        let two_of_five = AlarmWindow {
            evaluation_periods: 5,
            datapoints_to_alarm: 2,
            ..shipped_alarm()
        };
        assert_eq!(two_of_five.explains(), Duration::minutes(4));
        // replication broke at 0, the primary was seen serving at 10 (an earlier refusal of
        // the same episode): ten minutes of writes never reached the standby
        assert_eq!(
            estimate_rpo(Some((at, 5.0)), t(4), Some(t(10)), lookback, explains),
            Some(605.0)
        );
        // nothing healthy within the lookback: no estimate
        assert_eq!(estimate_rpo(Some((at, 5.0)), t(61), None, lookback, explains), None);
    }

    #[test]
    fn the_shipped_alarm_lets_a_healthy_replica_fail_over_within_a_minute_limit() {
        // The region dies just after a healthy 5 s measurement; the shipped alarm fires after
        // three breaching periods and is evaluated up to a minute later. Detection is not
        // data loss.
        for seconds_after in [180, 240, 299] {
            let e = Evidence {
                alarm_since: t(0) + Duration::seconds(seconds_after),
                last_healthy_lag: Some((t(0), 5.0)),
                ..outage()
            };
            let d = decide(&e, &policy(), &Request::Alarm, e.alarm_since + Duration::seconds(5));
            assert_eq!(d.verdict, Verdict::Promote, "{seconds_after}: {d:#?}");
            assert_eq!(d.estimated_rpo_seconds, Some(5.0));
        }
    }

    #[test]
    fn lag_gate_uses_the_last_healthy_lag_not_the_current_one() {
        // The Patroni trap: after the failure the current lag is -1 or missing; the last
        // healthy value (5 s, a minute before) is what counts, so this does not block forever.
        let d = decide(&outage(), &policy(), &Request::Alarm, t(30));
        assert!(gate(&d, LAG).passed, "{}", gate(&d, LAG).detail);
        // exactly at the limit passes; over it refuses
        let at_limit = Evidence {
            last_healthy_lag: Some((t(-1), 60.0)),
            ..outage()
        };
        assert!(gate(&decide(&at_limit, &policy(), &Request::Alarm, t(2)), LAG).passed);
        let over = Evidence {
            last_healthy_lag: Some((t(-1), 61.0)),
            ..outage()
        };
        let d = decide(&over, &policy(), &Request::Alarm, t(2));
        assert_eq!(d.verdict, Verdict::Refuse);
        assert!(d.only_lag_failed());
        assert!(
            gate(&d, LAG).detail.contains("exceeds the limit 60s"),
            "{}",
            gate(&d, LAG).detail
        );
    }

    #[test]
    fn replication_that_went_silent_long_before_the_failure_counts_as_loss() {
        // healthy lag 2 s, but measured 30 minutes before the alarm: 25 minutes lost
        let e = Evidence {
            last_healthy_lag: Some((t(-30), 2.0)),
            ..outage()
        };
        let d = decide(&e, &policy(), &Request::Alarm, t(1));
        assert_eq!(d.estimated_rpo_seconds, Some(2.0 + 25.0 * 60.0));
        assert_eq!(d.verdict, Verdict::Refuse);
        // none at all in the lookback: unknown loss, refuse
        let e = Evidence {
            last_healthy_lag: Some((t(-90), 2.0)),
            ..outage()
        };
        let d = decide(&e, &policy(), &Request::Alarm, t(1));
        assert_eq!(d.estimated_rpo_seconds, None);
        assert!(gate(&d, LAG).detail.contains("data loss unknown"));
        assert_eq!(
            decide(
                &Evidence {
                    last_healthy_lag: None,
                    ..outage()
                },
                &policy(),
                &Request::Alarm,
                t(1)
            )
            .verdict,
            Verdict::Refuse
        );
    }

    #[test]
    fn the_operator_can_accept_the_data_loss_but_not_skip_the_replica() {
        let over = Evidence {
            last_healthy_lag: None,
            alarm_still_firing: Some(false),
            ..outage()
        };
        let d = decide(
            &over,
            &policy(),
            &Request::Operator {
                force_data_loss: true,
                planned: false,
            },
            t(1),
        );
        assert_eq!(d.verdict, Verdict::Promote, "{d:#?}");
        let d = decide(
            &over,
            &Policy {
                mode: Mode::Advisory,
                ..policy()
            },
            &Request::Operator {
                force_data_loss: true,
                planned: false,
            },
            t(1),
        );
        assert_eq!(
            d.verdict,
            Verdict::Promote,
            "an operator's command acts even in advisory mode"
        );
        let d = decide(
            &over,
            &policy(),
            &Request::Operator {
                force_data_loss: false,
                planned: false,
            },
            t(1),
        );
        assert_eq!(
            d.verdict,
            Verdict::Refuse,
            "without accepting the loss, the lag gate holds"
        );
        let gone = Evidence {
            replica: ReplicaState::NotReady("replica orders-dr does not exist".into()),
            ..outage()
        };
        assert_eq!(
            decide(
                &gone,
                &policy(),
                &Request::Operator {
                    force_data_loss: true,
                    planned: false
                },
                t(1)
            )
            .verdict,
            Verdict::Refuse
        );
    }

    #[test]
    fn replica_must_be_ready() {
        let e = Evidence {
            replica: ReplicaState::NotReady("replica orders-dr is modifying".into()),
            ..outage()
        };
        let d = decide(&e, &policy(), &Request::Alarm, t(1));
        assert_eq!(d.verdict, Verdict::Refuse);
        assert_eq!(gate(&d, REPLICA).detail, "replica orders-dr is modifying");
    }

    #[test]
    fn anti_flapping_needs_acknowledgement_and_cooldown() {
        let prev = |completed: Option<i64>, ack: bool| {
            Some(PreviousFailover {
                id: "fo-1".into(),
                completed_at: completed.map(t),
                acknowledged: ack,
            })
        };
        for (previous, now, expected) in [
            (prev(Some(0), false), 600, false), // completed long ago, never acknowledged
            (prev(Some(0), true), 30, false),   // acknowledged, within the cooldown
            (prev(Some(0), true), 60, true),    // exactly the cooldown later
            (prev(None, false), 600, false),    // another failover still running
            (None, 0, true),
        ] {
            let e = Evidence {
                previous: previous.clone(),
                alarm_since: t(now),
                last_healthy_lag: Some((t(now - 1), 1.0)),
                ..outage()
            };
            let d = decide(&e, &policy(), &Request::Alarm, t(now));
            assert_eq!(
                gate(&d, FLAPPING).passed,
                expected,
                "{previous:?} at {now}: {}",
                gate(&d, FLAPPING).detail
            );
        }
    }

    #[test]
    fn every_failed_gate_is_reported_not_just_the_first() {
        let e = Evidence {
            alarm_still_firing: Some(false),
            last_healthy_lag: None,
            replica: ReplicaState::NotReady("gone".into()),
            previous: Some(PreviousFailover {
                id: "fo-0".into(),
                completed_at: Some(t(-5)),
                acknowledged: false,
            }),
            ..outage()
        };
        let d = decide(&e, &policy(), &Request::Alarm, t(1));
        assert_eq!(d.failed_gates().len(), 4);
        let e = Evidence {
            primary: PrimaryView::Planned("rebooting".into()),
            disarm: Some(Disarm::Unreadable("tomorrow".into())),
            ..e
        };
        let d = decide(&e, &policy(), &Request::Alarm, t(1));
        assert_eq!(d.failed_gates().len(), 6);
    }

    #[test]
    fn statuses_are_classified_by_what_they_say_about_a_failover() {
        for s in [
            "failed",
            "storage-full",
            "inaccessible-encryption-credentials",
            "incompatible-parameters",
            "not found",
        ] {
            assert_eq!(classify(s), StatusClass::Broken, "{s}");
        }
        for s in [
            "rebooting",
            "modifying",
            "upgrading",
            "backing-up",
            "maintenance",
            "stopping",
            "stopped",
            "starting",
            "storage-optimization",
            "configuring-log-exports",
            "renaming",
            "failing-over",
            "a-status-aws-adds-next-year",
        ] {
            assert_eq!(classify(s), StatusClass::Planned, "{s}");
        }
        assert_eq!(classify("available"), StatusClass::Available);
    }

    #[test]
    fn maintenance_on_the_primary_vetoes_even_with_every_other_signal_down() {
        // A reboot pauses replication (the alarm fires) and the endpoint stops answering (the
        // health checkers fail): still routine work, never a failover.
        for status in ["rebooting", "upgrading", "backing-up", "stopped"] {
            let e = Evidence {
                primary: PrimaryView::Planned(status.into()),
                checkers: Some(Checkers { failing: 8, total: 8 }),
                ..outage()
            };
            let d = decide(&e, &policy(), &Request::Alarm, t(1));
            assert_eq!(d.verdict, Verdict::Refuse, "{status}");
            let g = gate(&d, MAINTENANCE);
            assert!(
                !g.passed && g.detail.contains(&format!("the primary is {status}")),
                "{}",
                g.detail
            );
        }
        // an operator may still fail over during maintenance
        let e = Evidence {
            primary: PrimaryView::Planned("upgrading".into()),
            ..outage()
        };
        let d = decide(
            &e,
            &policy(),
            &Request::Operator {
                force_data_loss: false,
                planned: false,
            },
            t(1),
        );
        assert_eq!(d.verdict, Verdict::Promote, "{d:#?}");
    }

    #[test]
    fn maintenance_rds_reports_vetoes_a_primary_that_looks_available_but_does_not_answer() {
        // An OS patch applied through a Multi-AZ failover: the status stays `available`, the
        // endpoint stops answering for a while (the checkers fail), replication breaks.
        let patched = Evidence {
            primary: PrimaryView::Available,
            checkers: Some(Checkers { failing: 8, total: 8 }),
            ..outage()
        };
        assert_eq!(
            decide(&patched, &policy(), &Request::Alarm, t(1)).verdict,
            Verdict::Promote,
            "without RDS's word, the checkers confirm"
        );
        let e = Evidence {
            maintenance: MaintenanceReport {
                applying: vec!["pending maintenance system-update (Multi-AZ patch) due 01:00Z".into()],
                ..Default::default()
            },
            ..patched.clone()
        };
        let d = decide(&e, &policy(), &Request::Alarm, t(1));
        assert_eq!(d.verdict, Verdict::Refuse);
        let g = gate(&d, MAINTENANCE);
        assert!(
            !g.passed && g.detail.contains("system-update (Multi-AZ patch)"),
            "{}",
            g.detail
        );
        // Begun and not finished: a veto. Finished: only while replication catches up (the
        // alarm's detection window, 5 periods here), then the failure is not maintenance.
        let applying = (t(-2), "Applying off-line patches to DB instance".to_string());
        let finished = (t(0), "Finished applying off-line patches to DB instance".to_string());
        let with = |events: Vec<(DateTime<Utc>, String)>| Evidence {
            maintenance: MaintenanceReport {
                events,
                ..Default::default()
            },
            ..patched.clone()
        };
        let at = |e: &Evidence, now| gate(&decide(e, &policy(), &Request::Alarm, now), MAINTENANCE).passed;
        assert!(!at(&with(vec![applying.clone()]), t(30)), "not reported finished");
        assert!(
            !at(&with(vec![applying.clone(), finished.clone()]), t(4)),
            "just finished"
        );
        assert!(
            at(&with(vec![applying.clone(), finished]), t(6)),
            "finished long enough ago"
        );
        // Notices in the maintenance category are neither begun nor finished maintenance.
        let notice = (
            t(-1),
            "A newer minor version of the engine is available for upgrade".to_string(),
        );
        assert!(at(&with(vec![notice.clone()]), t(1)), "a notice is not maintenance");
        let upgraded = (
            t(-1),
            "Database cluster has been patched: source version 3.04 => 3.05".to_string(),
        );
        assert!(at(&with(vec![applying, upgraded, notice]), t(6)), "patched ends it");
        // What could not be read is said, not a veto.
        let unread = Evidence {
            maintenance: MaintenanceReport {
                unread: vec!["DescribeEvents: throttled".into()],
                ..Default::default()
            },
            ..patched
        };
        let d = decide(&unread, &policy(), &Request::Alarm, t(1));
        let g = gate(&d, MAINTENANCE);
        assert!(
            g.passed && g.detail.contains("could not read: DescribeEvents: throttled"),
            "{}",
            g.detail
        );
    }

    #[test]
    fn a_maintenance_window_is_read_in_utc_across_the_week() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // 2026-11-26 is a Thursday
        assert_eq!(
            in_maintenance_window("thu:03:00-thu:03:30", at("2026-11-26T03:10:00Z")),
            Some(true)
        );
        assert_eq!(
            in_maintenance_window("thu:03:00-thu:03:30", at("2026-11-26T03:30:00Z")),
            Some(false)
        );
        assert_eq!(
            in_maintenance_window("wed:23:45-thu:00:15", at("2026-11-26T00:05:00Z")),
            Some(true)
        );
        assert_eq!(
            in_maintenance_window("sun:23:30-mon:00:30", at("2026-11-30T00:10:00Z")),
            Some(true)
        );
        assert_eq!(
            in_maintenance_window("sun:23:30-mon:00:30", at("2026-11-26T00:10:00Z")),
            Some(false)
        );
        assert_eq!(in_maintenance_window("someday", at("2026-11-26T00:10:00Z")), None);
    }

    #[test]
    fn an_unreachable_api_with_healthy_checkers_is_a_partition_not_an_outage() {
        let partition = Evidence {
            checkers: Some(Checkers { failing: 1, total: 8 }),
            ..outage()
        };
        let d = decide(&partition, &policy(), &Request::Alarm, t(1));
        assert_eq!(d.verdict, Verdict::Refuse);
        assert!(
            gate(&d, CONFIRMED).detail.contains("network partition"),
            "{}",
            gate(&d, CONFIRMED).detail
        );
        let outage_seen_by_checkers = Evidence {
            checkers: Some(Checkers { failing: 8, total: 8 }),
            ..outage()
        };
        assert_eq!(
            decide(&outage_seen_by_checkers, &policy(), &Request::Alarm, t(1)).verdict,
            Verdict::Promote
        );
    }

    #[test]
    fn an_operator_can_disarm_automatic_failover_until_a_time() {
        let until = |m| Some(Disarm::Until(t(m)));
        for (disarm, expected) in [
            (None, true),
            (until(60), false),
            (until(1), true), // the hold ended at the decision time
            (Some(Disarm::Unreadable("next week".into())), false),
        ] {
            let e = Evidence {
                disarm: disarm.clone(),
                ..outage()
            };
            let d = decide(&e, &policy(), &Request::Alarm, t(1));
            assert_eq!(
                gate(&d, ARMED).passed,
                expected,
                "{disarm:?}: {}",
                gate(&d, ARMED).detail
            );
            assert_eq!(d.verdict == Verdict::Promote, expected);
        }
    }

    #[test]
    fn a_busy_replica_passes_and_is_promoted_once_aws_accepts() {
        let e = Evidence {
            replica: ReplicaState::Busy {
                endpoint: "orders-dr".into(),
                status: "backing-up".into(),
            },
            ..outage()
        };
        let d = decide(&e, &policy(), &Request::Alarm, t(1));
        assert_eq!(d.verdict, Verdict::Promote);
        assert!(gate(&d, REPLICA).detail.contains("backing-up"));
    }

    #[test]
    fn a_planned_failover_loses_nothing_so_the_lag_gate_passes() {
        let behind = Evidence {
            last_healthy_lag: Some((t(-1), 600.0)),
            ..outage()
        };
        let planned = Request::Operator {
            force_data_loss: false,
            planned: true,
        };
        let d = decide(&behind, &policy(), &planned, t(1));
        assert_eq!(d.verdict, Verdict::Promote, "{d:#?}");
        assert_eq!(d.estimated_rpo_seconds, Some(0.0));
        assert!(gate(&d, LAG).detail.contains("nothing is lost"));
    }
}
