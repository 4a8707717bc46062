//! Alert on transitions only: within budget → breached, healthy → broken, and back to
//! recovered. Not every minute while a breach lasts. The tracked state is what the lag
//! checker stores between runs.

use super::lag::{Measurement, Status};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracked {
    pub status: Status,
    pub since: DateTime<Utc>,
    /// A notice for the transition into `status` is owed (set until it was published).
    #[serde(default)]
    pub notice_pending: bool,
    /// When a run last claimed the owed notice. Another run re-sends it only after
    /// `CLAIM_TIMEOUT` (the claimer died), and only by winning the state write itself.
    #[serde(default)]
    pub claimed_at: Option<DateTime<Utc>>,
    /// The state before this one and since when, to word a "recovered" notice.
    #[serde(default)]
    pub came_from: Option<(Status, DateTime<Utc>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Alert {
    Breached,
    Broken,
    /// Back within budget; was `from` since `since`.
    Recovered {
        from: Status,
        since: DateTime<Utc>,
    },
}

/// Longer than a lag-checker run can take (its Lambda timeout is one minute).
pub const CLAIM_TIMEOUT: chrono::Duration = chrono::Duration::minutes(5);

fn alert_for(status: Status, came_from: Option<(Status, DateTime<Utc>)>) -> Option<Alert> {
    match status {
        Status::Breached => Some(Alert::Breached),
        Status::Broken => Some(Alert::Broken),
        Status::Healthy => came_from.map(|(from, since)| Alert::Recovered { from, since }),
        Status::Unknown => None,
    }
}

/// The next tracked state and the alert it owes, if any. `Unknown` changes nothing: a
/// throttled or failed look is not a transition (the function's Errors alarm covers it).
/// First sight of a resource alerts only when it is already in a bad state.
pub fn track(
    previous: Option<&Tracked>,
    measured: &Measurement,
    now: DateTime<Utc>,
) -> (Option<Tracked>, Option<Alert>) {
    let status = measured.status;
    match previous {
        _ if status == Status::Unknown => (previous.cloned(), None),
        Some(prev) if prev.status == status => {
            // Same state: a notice is owed only if the last one never went out, and its claim
            // has expired (a run still sending it must not be doubled).
            let claim_expired = prev.claimed_at.is_none_or(|at| now - at > CLAIM_TIMEOUT);
            match alert_for(status, prev.came_from) {
                Some(alert) if prev.notice_pending && claim_expired => (
                    Some(Tracked {
                        claimed_at: Some(now),
                        ..prev.clone()
                    }),
                    Some(alert),
                ),
                _ => (Some(prev.clone()), None),
            }
        }
        _ => {
            let came_from = previous.map(|p| (p.status, p.since));
            let alert = alert_for(status, came_from);
            let claimed_at = alert.as_ref().map(|_| now);
            (
                Some(Tracked {
                    status,
                    since: now,
                    notice_pending: alert.is_some(),
                    claimed_at,
                    came_from,
                }),
                alert,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap() + Duration::minutes(min)
    }

    fn m(status: Status) -> Measurement {
        Measurement {
            status,
            recovery_point_seconds: None,
            detail: String::new(),
        }
    }

    #[test]
    fn ten_checks_during_one_breach_alert_once() {
        let (mut state, first) = track(
            Some(&Tracked {
                status: Status::Healthy,
                since: t(0),
                notice_pending: false,
                claimed_at: None,
                came_from: None,
            }),
            &m(Status::Breached),
            t(1),
        );
        assert_eq!(first, Some(Alert::Breached));
        state.as_mut().unwrap().notice_pending = false; // published
        for i in 2..12 {
            let (next, alert) = track(state.as_ref(), &m(Status::Breached), t(i));
            assert_eq!(alert, None, "minute {i}");
            assert_eq!(next.as_ref().unwrap().since, t(1), "the breach started at minute 1");
            state = next;
        }
        let (_, back) = track(state.as_ref(), &m(Status::Healthy), t(12));
        assert_eq!(
            back,
            Some(Alert::Recovered {
                from: Status::Breached,
                since: t(1)
            })
        );
    }

    #[test]
    fn breached_to_broken_and_broken_to_breached_are_transitions() {
        let breached = Tracked {
            status: Status::Breached,
            since: t(0),
            notice_pending: false,
            claimed_at: None,
            came_from: None,
        };
        assert_eq!(track(Some(&breached), &m(Status::Broken), t(1)).1, Some(Alert::Broken));
        let broken = Tracked {
            status: Status::Broken,
            since: t(0),
            notice_pending: false,
            claimed_at: None,
            came_from: None,
        };
        assert_eq!(
            track(Some(&broken), &m(Status::Breached), t(1)).1,
            Some(Alert::Breached)
        );
        assert_eq!(
            track(Some(&broken), &m(Status::Healthy), t(1)).1,
            Some(Alert::Recovered {
                from: Status::Broken,
                since: t(0)
            })
        );
    }

    #[test]
    fn first_sight_alerts_only_when_bad() {
        assert_eq!(track(None, &m(Status::Healthy), t(0)).1, None);
        assert_eq!(track(None, &m(Status::Broken), t(0)).1, Some(Alert::Broken));
    }

    #[test]
    fn unknown_keeps_the_previous_state_silently() {
        let breached = Tracked {
            status: Status::Breached,
            since: t(0),
            notice_pending: false,
            claimed_at: None,
            came_from: None,
        };
        let (next, alert) = track(Some(&breached), &m(Status::Unknown), t(5));
        assert_eq!((next, alert), (Some(breached.clone()), None));
        // and a recovery after the blip is still a recovery from the breach
        assert_eq!(
            track(Some(&breached), &m(Status::Healthy), t(6)).1,
            Some(Alert::Recovered {
                from: Status::Breached,
                since: t(0)
            })
        );
    }

    #[test]
    fn an_unsent_notice_is_owed_until_sent_but_never_doubled() {
        // claimed at minute 0 by a run that died before sending
        let owed = Tracked {
            status: Status::Broken,
            since: t(0),
            notice_pending: true,
            claimed_at: Some(t(0)),
            came_from: None,
        };
        let (_, alert) = track(Some(&owed), &m(Status::Broken), t(3));
        assert_eq!(alert, None, "the claimer may still be sending");
        let (next, alert) = track(Some(&owed), &m(Status::Broken), t(6));
        assert_eq!(alert, Some(Alert::Broken), "claim expired: re-send");
        let next = next.unwrap();
        assert_eq!(
            (next.since, next.claimed_at),
            (t(0), Some(t(6))),
            "re-claimed, so the state write decides who sends"
        );
        let owed = Tracked {
            status: Status::Healthy,
            since: t(3),
            notice_pending: true,
            claimed_at: None,
            came_from: Some((Status::Breached, t(1))),
        };
        assert_eq!(
            track(Some(&owed), &m(Status::Healthy), t(4)).1,
            Some(Alert::Recovered {
                from: Status::Breached,
                since: t(1)
            })
        );
    }
}
