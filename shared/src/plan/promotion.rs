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
    /// The API answers, and the database is not available (status given).
    NotAvailable(String),
    /// The primary region's API does not answer (timeouts, connection failures, 5xx): the
    /// region-outage signal.
    Unreachable(String),
    /// An answer that says nothing about the primary (access denied, throttled).
    Unknown(String),
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
    NotReady(String),
}

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
    /// When the alarm went into ALARM (the failure's detection time).
    pub alarm_since: DateTime<Utc>,
    pub primary: PrimaryView,
    /// `None` when no health check is configured.
    pub checkers: Option<Checkers>,
    /// The last lag measured while replication worked: (when, seconds). From the lag checker's
    /// `RecoveryPointSeconds` history, which is never published for a broken link.
    pub last_healthy_lag: Option<(DateTime<Utc>, f64)>,
    pub replica: ReplicaState,
    pub previous: Option<PreviousFailover>,
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
    /// judgement; the lag gate still applies unless the operator accepts the data loss.
    Operator { force_data_loss: bool },
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
pub const LAG: &str = "lag";
pub const REPLICA: &str = "replica-ready";
pub const FLAPPING: &str = "anti-flapping";

/// Estimated data loss: the last healthy lag, plus any time between that measurement and the
/// failure beyond two metric periods (a datapoint covers its period and may be reported up to
/// a period late); if replication stopped reporting an hour before the primary died, that hour
/// is lost too. `None` if no healthy lag was measured in the lookback.
pub fn estimate_rpo(
    last_healthy_lag: Option<(DateTime<Utc>, f64)>,
    failure_at: DateTime<Utc>,
    lookback: Duration,
    period: Duration,
) -> Option<f64> {
    let (at, lag) = last_healthy_lag?;
    if failure_at - at > lookback {
        return None;
    }
    let silent = (failure_at - at - period * 2).num_milliseconds() as f64 / 1000.0;
    Some(lag + silent.max(0.0))
}

fn confirmed(e: &Evidence, p: &Policy) -> Gate {
    let mut signals: Vec<String> = Vec::new();
    let mut down = false;
    match &e.primary {
        PrimaryView::Available => signals.push("the primary is available as seen from the DR region".into()),
        PrimaryView::NotAvailable(s) => {
            down = true;
            signals.push(format!("the primary is {s}"));
        }
        PrimaryView::Unreachable(why) => {
            down = true;
            signals.push(format!("the primary region's API does not answer ({why})"));
        }
        PrimaryView::Unknown(why) => signals.push(format!("the primary's state is unknown ({why})")),
    }
    if let Some(c) = e.checkers {
        let quorum = c.total > 0 && c.failing * 100 >= p.checker_quorum_percent * c.total;
        down |= quorum;
        signals.push(format!(
            "{} of {} health checkers report it failing (quorum {}%)",
            c.failing, c.total, p.checker_quorum_percent
        ));
    }
    let alarm = match e.alarm_still_firing {
        Some(true) => "the alarm is still in ALARM",
        Some(false) => "the alarm is no longer in ALARM",
        None => "the alarm could not be re-read",
    };
    let passed = e.alarm_still_firing == Some(true) && down;
    Gate {
        name: CONFIRMED,
        passed,
        detail: format!("{alarm}; {}", signals.join("; ")),
    }
}

fn lag_gate(estimate: Option<f64>, e: &Evidence, p: &Policy, force: bool) -> Gate {
    let limit = human_seconds(p.max_data_loss_seconds);
    match (estimate, e.last_healthy_lag) {
        (Some(est), Some((at, lag))) => {
            let within = est <= p.max_data_loss_seconds;
            Gate {
                name: LAG,
                passed: within || force,
                detail: format!(
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
            }
        }
        _ => Gate {
            name: LAG,
            passed: force,
            detail: format!(
                "no healthy lag measured in the {} before the failure: data loss unknown (limit {limit}){}",
                human_seconds(p.lag_lookback.num_seconds() as f64),
                if force { "; the operator accepted the loss" } else { "" }
            ),
        },
    }
}

fn replica_gate(e: &Evidence) -> Gate {
    match &e.replica {
        ReplicaState::Ready { endpoint } => Gate {
            name: REPLICA,
            passed: true,
            detail: format!("the DR replica is available ({endpoint})"),
        },
        ReplicaState::NotReady(why) => Gate {
            name: REPLICA,
            passed: false,
            detail: why.clone(),
        },
    }
}

fn flapping_gate(e: &Evidence, p: &Policy, now: DateTime<Utc>) -> Gate {
    match &e.previous {
        None => Gate {
            name: FLAPPING,
            passed: true,
            detail: "no previous failover".into(),
        },
        Some(prev) if prev.completed_at.is_none() => Gate {
            name: FLAPPING,
            passed: false,
            detail: format!("failover {} has not completed", prev.id),
        },
        Some(prev) if !prev.acknowledged => Gate {
            name: FLAPPING,
            passed: false,
            detail: format!("failover {} was never acknowledged by a human", prev.id),
        },
        Some(prev) => {
            let done = prev.completed_at.unwrap_or(now);
            let calm = now - done >= p.cooldown;
            Gate {
                name: FLAPPING,
                passed: calm,
                detail: format!(
                    "previous failover {} completed {} ago (cooldown {})",
                    prev.id,
                    human_seconds((now - done).num_seconds().max(0) as f64),
                    human_seconds(p.cooldown.num_seconds() as f64)
                ),
            }
        }
    }
}

pub fn decide(e: &Evidence, p: &Policy, request: &Request, now: DateTime<Utc>) -> Decision {
    let estimate = estimate_rpo(e.last_healthy_lag, e.alarm_since, p.lag_lookback, p.metric_period);
    let (force, operator) = match request {
        Request::Alarm => (false, false),
        Request::Operator { force_data_loss } => (*force_data_loss, true),
    };
    let mut gates = Vec::new();
    if operator {
        gates.push(Gate {
            name: CONFIRMED,
            passed: true,
            detail: "an operator asked for this failover".into(),
        });
    } else {
        gates.push(confirmed(e, p));
    }
    gates.push(lag_gate(estimate, e, p, force));
    gates.push(replica_gate(e));
    if operator {
        gates.push(Gate {
            name: FLAPPING,
            passed: true,
            detail: "an operator asked for this failover".into(),
        });
    } else {
        gates.push(flapping_gate(e, p, now));
    }
    let verdict = match (gates.iter().all(|g| g.passed), p.mode, operator) {
        (false, _, _) => Verdict::Refuse,
        (true, Mode::Advisory, false) => Verdict::WouldPromote,
        (true, _, _) => Verdict::Promote,
    };
    Decision {
        verdict,
        gates,
        estimated_rpo_seconds: estimate,
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
            primary: PrimaryView::Unreachable("connection timed out".into()),
            checkers: None,
            last_healthy_lag: Some((t(-1), 5.0)),
            replica: ReplicaState::Ready {
                endpoint: "orders-dr.abc.us-west-2.rds.amazonaws.com".into(),
            },
            previous: None,
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
            (Some(true), PrimaryView::NotAvailable("failed".into()), None, true),
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
    fn the_estimate_adds_the_silence_beyond_two_metric_periods() {
        let lookback = Duration::hours(1);
        let at = t(0);
        // within two periods of the failure: the lag itself
        assert_eq!(
            estimate_rpo(Some((at, 5.0)), t(2), lookback, Duration::minutes(1)),
            Some(5.0)
        );
        // four minutes of silence: two of them count as lost
        assert_eq!(
            estimate_rpo(Some((at, 5.0)), t(4), lookback, Duration::minutes(1)),
            Some(125.0)
        );
        // the same timeline on a clock twenty times faster: the same shape, a twentieth of it
        let scaled = estimate_rpo(
            Some((at, 0.25)),
            at + Duration::seconds(12),
            lookback,
            Duration::seconds(3),
        );
        assert_eq!(scaled, Some(6.25));
        // nothing healthy within the lookback: no estimate
        assert_eq!(
            estimate_rpo(Some((at, 5.0)), t(61), lookback, Duration::minutes(1)),
            None
        );
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
        // healthy lag 2 s, but measured 30 minutes before the primary died: ~28 minutes lost
        let e = Evidence {
            last_healthy_lag: Some((t(-30), 2.0)),
            ..outage()
        };
        let d = decide(&e, &policy(), &Request::Alarm, t(1));
        assert_eq!(d.estimated_rpo_seconds, Some(2.0 + 28.0 * 60.0));
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
        let d = decide(&over, &policy(), &Request::Operator { force_data_loss: true }, t(1));
        assert_eq!(d.verdict, Verdict::Promote, "{d:#?}");
        let d = decide(
            &over,
            &Policy {
                mode: Mode::Advisory,
                ..policy()
            },
            &Request::Operator { force_data_loss: true },
            t(1),
        );
        assert_eq!(
            d.verdict,
            Verdict::Promote,
            "an operator's command acts even in advisory mode"
        );
        let d = decide(&over, &policy(), &Request::Operator { force_data_loss: false }, t(1));
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
            decide(&gone, &policy(), &Request::Operator { force_data_loss: true }, t(1)).verdict,
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
    }
}
