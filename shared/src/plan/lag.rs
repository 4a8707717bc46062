//! How much data each protected resource would lose right now, against its RPO budget.
//! Pure: the measurements come in as plain values, the verdict goes out.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Replicating, within budget.
    Healthy,
    /// Replicating (or backed up), but further behind than the budget allows.
    Breached,
    /// Replication is not running or cannot be measured from AWS's own signals: the
    /// recovery point is unknown and growing. Never read as "0 seconds of lag".
    Broken,
    /// drpilot could not look (resource gone, access denied, throttled): no verdict.
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Healthy => "healthy",
            Status::Breached => "breached",
            Status::Broken => "broken",
            Status::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    pub status: Status,
    /// Seconds of data that would be lost if the primary failed now; `None` when not measured.
    pub recovery_point_seconds: Option<f64>,
    pub detail: String,
}

impl Measurement {
    pub fn unknown(detail: impl Into<String>) -> Self {
        Measurement {
            status: Status::Unknown,
            recovery_point_seconds: None,
            detail: detail.into(),
        }
    }

    pub fn broken(detail: impl Into<String>) -> Self {
        Measurement {
            status: Status::Broken,
            recovery_point_seconds: None,
            detail: detail.into(),
        }
    }

    fn measured(seconds: f64, budget_seconds: f64, what: &str) -> Self {
        let status = if seconds > budget_seconds {
            Status::Breached
        } else {
            Status::Healthy
        };
        Measurement {
            status,
            recovery_point_seconds: Some(seconds),
            detail: format!(
                "{what} {} (budget {})",
                human_seconds(seconds),
                human_seconds(budget_seconds)
            ),
        }
    }
}

/// One metric datapoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Datapoint {
    pub at: DateTime<Utc>,
    pub value: f64,
}

/// The replication link as the DR region's API reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    Running,
    Broken(String),
}

/// A lag metric (RDS `ReplicaLag` in seconds, Aurora global lag in milliseconds).
pub struct LagSignal<'a> {
    pub metric: &'a str,
    pub newest: Option<Datapoint>,
    /// Multiply the metric's value by this to get seconds (0.001 for milliseconds).
    pub to_seconds: f64,
}

/// Replication lag verdict. Broken when the link says so, when the newest datapoint is
/// missing or older than `window` (the metric stops when replication stops), or when the
/// metric is negative (RDS reports -1 when replication is not running). Exactly at the
/// budget is within it.
pub fn classify_lag(
    link: &Link,
    signal: &LagSignal,
    budget_seconds: f64,
    window: Duration,
    now: DateTime<Utc>,
) -> Measurement {
    if let Link::Broken(why) = link {
        return Measurement::broken(why.clone());
    }
    let Some(point) = signal.newest else {
        return Measurement::broken(format!(
            "no {} datapoint in the last {}: replication is not reporting",
            signal.metric,
            human_seconds(window.num_seconds() as f64)
        ));
    };
    if now - point.at > window {
        return Measurement::broken(format!(
            "newest {} datapoint is {} old (at {}): replication stopped reporting",
            signal.metric,
            human_seconds((now - point.at).num_seconds() as f64),
            point.at.format("%Y-%m-%dT%H:%M:%SZ")
        ));
    }
    if point.value < 0.0 {
        return Measurement::broken(format!(
            "{} is {}: replication is not running",
            signal.metric, point.value
        ));
    }
    Measurement::measured(
        point.value * signal.to_seconds,
        budget_seconds,
        &format!("{} is", signal.metric),
    )
}

/// Backup-tier verdict: the recovery point is the age of the newest restorable DR copy.
pub fn classify_copy_age(newest_copy: Option<DateTime<Utc>>, budget_seconds: f64, now: DateTime<Utc>) -> Measurement {
    classify_age(
        newest_copy,
        budget_seconds,
        now,
        "no available DR copy made by drpilot",
        "newest DR copy is",
    )
}

fn classify_age(
    newest: Option<DateTime<Utc>>,
    budget_seconds: f64,
    now: DateTime<Utc>,
    none: &str,
    label: &str,
) -> Measurement {
    match newest {
        None => Measurement::broken(none),
        Some(t) => Measurement::measured(((now - t).num_seconds().max(0)) as f64, budget_seconds, label),
    }
}

/// Point-in-time backup verdict: the recovery point is the age of the newest completed
/// point in time (measured from its start: later changes are in no point yet).
pub fn classify_point_age(newest_start: Option<DateTime<Utc>>, budget_seconds: f64, now: DateTime<Utc>) -> Measurement {
    classify_age(
        newest_start,
        budget_seconds,
        now,
        "no completed point in time yet",
        "newest point in time is",
    )
}

/// Object-storage verdict: the recovery point is how long the oldest change not yet in the
/// DR bucket has been waiting (zero when the DR bucket has everything).
pub fn classify_backlog(
    oldest_pending: Option<DateTime<Utc>>,
    pending: u64,
    budget_seconds: f64,
    now: DateTime<Utc>,
) -> Measurement {
    match oldest_pending {
        None => Measurement::measured(0.0, budget_seconds, "DR bucket up to date; behind by"),
        Some(t) => Measurement::measured(
            ((now - t).num_seconds().max(0)) as f64,
            budget_seconds,
            &format!("{pending} object(s) not yet in the DR bucket, oldest waiting"),
        ),
    }
}

/// `75` → "75s", `300` → "5m", `5400` → "1h30m", `90000` → "1d1h".
pub fn human_seconds(s: f64) -> String {
    if s.fract() != 0.0 && s < 10.0 {
        return format!("{s:.1}s");
    }
    let s = s.round() as i64;
    // "1h" or "1h30m": `s` in units, and the rest in smaller ones unless none.
    let two = |unit: i64, big: &str, small: i64, little: &str| match s % unit / small {
        0 => format!("{}{big}", s / unit),
        rest => format!("{}{big}{rest}{little}", s / unit),
    };
    match s {
        _ if s < 120 => format!("{s}s"),
        _ if s < 3600 => two(60, "m", 1, "s"),
        _ if s < 86_400 => two(3600, "h", 60, "m"),
        _ => two(86_400, "d", 3600, "h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn lag(value: f64, age_s: i64) -> LagSignal<'static> {
        LagSignal {
            metric: "ReplicaLag",
            newest: Some(Datapoint {
                at: now() - Duration::seconds(age_s),
                value,
            }),
            to_seconds: 1.0,
        }
    }

    fn verdict(link: &Link, signal: &LagSignal) -> Measurement {
        classify_lag(link, signal, 60.0, Duration::seconds(300), now())
    }

    #[test]
    fn within_and_exactly_at_budget_is_healthy() {
        for v in [0.0, 12.0, 60.0] {
            let m = verdict(&Link::Running, &lag(v, 30));
            assert_eq!(m.status, Status::Healthy, "{v}");
            assert_eq!(m.recovery_point_seconds, Some(v));
        }
    }

    #[test]
    fn over_budget_is_breached_with_the_value() {
        let m = verdict(&Link::Running, &lag(60.5, 30));
        assert_eq!(m.status, Status::Breached);
        assert_eq!(m.recovery_point_seconds, Some(60.5));
        assert!(m.detail.contains("budget 60s"), "{}", m.detail);
    }

    #[test]
    fn minus_one_is_broken_not_zero() {
        let m = verdict(&Link::Running, &lag(-1.0, 30));
        assert_eq!(m.status, Status::Broken);
        assert_eq!(m.recovery_point_seconds, None);
        assert!(m.detail.contains("not running"));
    }

    #[test]
    fn missing_datapoints_are_broken() {
        let m = verdict(
            &Link::Running,
            &LagSignal {
                metric: "ReplicaLag",
                newest: None,
                to_seconds: 1.0,
            },
        );
        assert_eq!(m.status, Status::Broken);
        assert_eq!(m.recovery_point_seconds, None);
        assert!(
            m.detail.contains("no ReplicaLag datapoint in the last 5m"),
            "{}",
            m.detail
        );
    }

    #[test]
    fn stale_datapoints_are_broken_at_the_window_edge() {
        assert_eq!(
            verdict(&Link::Running, &lag(1.0, 300)).status,
            Status::Healthy,
            "exactly the window old still counts"
        );
        let m = verdict(&Link::Running, &lag(1.0, 301));
        assert_eq!(m.status, Status::Broken);
        assert!(m.detail.contains("stopped reporting"), "{}", m.detail);
    }

    #[test]
    fn a_broken_link_wins_over_a_good_looking_metric() {
        let m = verdict(&Link::Broken("replication status is error".into()), &lag(0.0, 10));
        assert_eq!(m.status, Status::Broken);
        assert_eq!(m.detail, "replication status is error");
    }

    #[test]
    fn aurora_milliseconds_are_converted() {
        let signal = LagSignal {
            metric: "AuroraGlobalDBRPOLag",
            newest: Some(Datapoint {
                at: now(),
                value: 1500.0,
            }),
            to_seconds: 0.001,
        };
        let m = classify_lag(&Link::Running, &signal, 1.0, Duration::seconds(300), now());
        assert_eq!(m.status, Status::Breached);
        assert_eq!(m.recovery_point_seconds, Some(1.5));
    }

    #[test]
    fn copy_age_edges() {
        assert_eq!(classify_copy_age(None, 3600.0, now()).status, Status::Broken);
        let m = classify_copy_age(Some(now() - Duration::hours(1)), 3600.0, now());
        assert_eq!((m.status, m.recovery_point_seconds), (Status::Healthy, Some(3600.0)));
        assert_eq!(
            classify_copy_age(Some(now() - Duration::seconds(3601)), 3600.0, now()).status,
            Status::Breached
        );
    }

    #[test]
    fn backlog_edges() {
        let m = classify_backlog(None, 0, 900.0, now());
        assert_eq!((m.status, m.recovery_point_seconds), (Status::Healthy, Some(0.0)));
        let m = classify_backlog(Some(now() - Duration::minutes(20)), 3, 900.0, now());
        assert_eq!((m.status, m.recovery_point_seconds), (Status::Breached, Some(1200.0)));
        assert!(m.detail.contains("3 object(s)"));
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_seconds(75.0), "75s");
        assert_eq!(human_seconds(300.0), "5m");
        assert_eq!(human_seconds(330.0), "5m30s");
        assert_eq!(human_seconds(5400.0), "1h30m");
        assert_eq!(human_seconds(90_000.0), "1d1h");
        assert_eq!(human_seconds(1.5), "1.5s");
    }
}
