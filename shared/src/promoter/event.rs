//! Everything that can wake the promoter, decoded into one enum. Malformed is an error;
//! well-formed but irrelevant (OK, INSUFFICIENT_DATA) is a no-op decided by the caller.

use crate::copier::describe;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSignal {
    pub name: String,
    /// Region the alarm lives in (to re-read it there).
    pub region: String,
    /// ALARM, OK or INSUFFICIENT_DATA.
    pub state: String,
    /// When the alarm entered this state: with the name, identifies one alarm episode, so
    /// that duplicate deliveries of the same episode are recognised.
    pub since: DateTime<Utc>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PromoterEvent {
    Alarm(AlarmSignal),
    /// The continuation schedule: resume failovers in progress.
    Continue,
    Status,
    Acknowledge {
        database: String,
        by: String,
    },
    /// A planned failover exercise of a database whose standby is tagged for `plan`.
    Drill {
        database: String,
        plan: String,
        confirm: String,
    },
    /// A manual (planned) failover. `force_data_loss` accepts a lag-gate refusal.
    Failover {
        database: String,
        reason: String,
        force_data_loss: bool,
        planned: bool,
    },
}

/// CloudWatch writes `2026-11-25T18:30:00.000+0000`; EventBridge and users write RFC 3339.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn need<'a>(v: &'a Value, path: &[&str], what: &str) -> Result<&'a str> {
    text(v, path)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::BadEvent(format!("{what} without {}", path.join("."))))
}

fn alarm(
    name: &str,
    region: &str,
    state: &str,
    since: Option<&str>,
    reason: &str,
    what: &str,
) -> Result<PromoterEvent> {
    let since = match since {
        Some(s) => parse_time(s).ok_or_else(|| Error::BadEvent(format!("{what}: unreadable state time {s:?}")))?,
        None => return Err(Error::BadEvent(format!("{what} without the state's timestamp"))),
    };
    Ok(PromoterEvent::Alarm(AlarmSignal {
        name: name.to_string(),
        region: region.to_string(),
        state: state.to_string(),
        since,
        reason: reason.to_string(),
    }))
}

pub fn parse(event: &Value) -> Result<PromoterEvent> {
    if !event.is_object() {
        return Err(Error::BadEvent(format!(
            "expected a JSON object, got {}",
            describe(event)
        )));
    }
    // Operator commands.
    if let Some(action) = event.get("action") {
        let database = || need(event, &["database"], "this command").map(str::to_string);
        return match action.as_str() {
            Some("status") => Ok(PromoterEvent::Status),
            Some("acknowledge") => Ok(PromoterEvent::Acknowledge {
                database: database()?,
                by: need(event, &["by"], "acknowledge (say who you are)")?.to_string(),
            }),
            Some("drill") => Ok(PromoterEvent::Drill {
                database: database()?,
                plan: need(event, &["plan"], "drill (the plan the resources are tagged for)")?.to_string(),
                confirm: text(event, &["confirm"]).unwrap_or_default().to_string(),
            }),
            Some("failover") => Ok(PromoterEvent::Failover {
                database: database()?,
                reason: need(event, &["reason"], "failover (give a reason for the record)")?.to_string(),
                force_data_loss: event.get("force_data_loss").and_then(Value::as_bool).unwrap_or(false),
                planned: event.get("planned").and_then(Value::as_bool).unwrap_or(false),
            }),
            _ => Err(Error::BadEvent(format!(
                "unknown action {action}; the promoter accepts status, acknowledge, failover, drill"
            ))),
        };
    }
    // An alarm notice delivered through SNS.
    if let Some(records) = event.get("Records").and_then(Value::as_array) {
        let record = match records.as_slice() {
            [one] => one,
            _ => {
                return Err(Error::BadEvent(format!(
                    "an SNS event with {} records (expected 1)",
                    records.len()
                )))
            }
        };
        let message = need(record, &["Sns", "Message"], "an SNS record")?;
        let m: Value = serde_json::from_str(message)
            .map_err(|e| Error::BadEvent(format!("the SNS message is not a CloudWatch alarm notice: {e}")))?;
        let what = "a CloudWatch alarm notice";
        let arn = need(&m, &["AlarmArn"], what)?;
        let region = crate::config::arn_region(arn).ok_or_else(|| Error::BadEvent(format!("bad AlarmArn {arn:?}")))?;
        return alarm(
            need(&m, &["AlarmName"], what)?,
            region,
            need(&m, &["NewStateValue"], what)?,
            text(&m, &["StateChangeTime"]),
            text(&m, &["NewStateReason"]).unwrap_or_default(),
            what,
        );
    }
    match (text(event, &["source"]), text(event, &["detail-type"])) {
        (Some("aws.events"), Some("Scheduled Event")) => Ok(PromoterEvent::Continue),
        (Some("aws.cloudwatch"), Some("CloudWatch Alarm State Change")) => {
            let what = "a CloudWatch Alarm State Change event";
            alarm(
                need(event, &["detail", "alarmName"], what)?,
                need(event, &["region"], what)?,
                need(event, &["detail", "state", "value"], what)?,
                text(event, &["detail", "state", "timestamp"]),
                text(event, &["detail", "state", "reason"]).unwrap_or_default(),
                what,
            )
        }
        // A CloudWatch alarm's Lambda action invokes the function directly with this shape.
        (Some("aws.cloudwatch"), None) if event.get("alarmData").is_some() => {
            let what = "a CloudWatch alarm Lambda action";
            alarm(
                need(event, &["alarmData", "alarmName"], what)?,
                need(event, &["region"], what)?,
                need(event, &["alarmData", "state", "value"], what)?,
                text(event, &["alarmData", "state", "timestamp"]),
                text(event, &["alarmData", "state", "reason"]).unwrap_or_default(),
                what,
            )
        }
        _ => Err(Error::BadEvent(format!(
            "unsupported event {}: the promoter accepts CloudWatch alarm state changes (EventBridge, Lambda action, SNS), its schedule, and operator commands",
            describe(event)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/../events/failover-promoter/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
    }

    #[test]
    fn the_three_alarm_deliveries_decode_to_the_same_signal() {
        let expected_since = parse_time("2026-11-25T18:30:12.345+0000").unwrap();
        for f in ["alarm-eventbridge.json", "alarm-lambda-action.json", "alarm-sns.json"] {
            match parse(&fixture(f)).unwrap() {
                PromoterEvent::Alarm(a) => {
                    assert_eq!(a.name, "drpilot-orders-primary-down", "{f}");
                    assert_eq!(a.region, "us-east-1", "{f}");
                    assert_eq!(a.state, "ALARM", "{f}");
                    assert_eq!(a.since, expected_since, "{f}");
                }
                other => panic!("{f}: {other:?}"),
            }
        }
    }

    #[test]
    fn schedule_and_commands() {
        assert_eq!(
            parse(&fixture("continue-schedule.json")).unwrap(),
            PromoterEvent::Continue
        );
        assert_eq!(parse(&fixture("status.json")).unwrap(), PromoterEvent::Status);
        assert!(
            matches!(parse(&fixture("acknowledge.json")).unwrap(), PromoterEvent::Acknowledge { by, .. } if by == "alice@example.com")
        );
        assert!(matches!(
            parse(&fixture("drill.json")).unwrap(),
            PromoterEvent::Drill { database, plan, confirm } if database == "orders" && plan == "q4-2026" && confirm == "orders"
        ));
        assert!(matches!(
            parse(&fixture("manual-failover.json")).unwrap(),
            PromoterEvent::Failover {
                planned: true,
                force_data_loss: false,
                ..
            }
        ));
    }

    #[test]
    fn malformed_events_are_errors() {
        for bad in [
            serde_json::json!([]),
            serde_json::json!({"action": "promote-everything"}),
            serde_json::json!({"action": "acknowledge", "database": "orders"}),
            serde_json::json!({"action": "failover", "database": "orders"}),
            serde_json::json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "region": "us-east-1", "detail": {}}),
            serde_json::json!({"Records": [{"Sns": {"Message": "not json"}}]}),
            serde_json::json!({"Records": []}),
        ] {
            assert!(matches!(parse(&bad), Err(Error::BadEvent(_))), "{bad}");
        }
    }
}
