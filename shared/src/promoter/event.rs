//! Everything that can wake the promoter, decoded into one enum. Malformed is an error;
//! well-formed but irrelevant (OK, INSUFFICIENT_DATA) is a no-op decided by the caller.

use crate::error::{Error, Result};
use crate::events::{self, Decode, Incoming};
use aws_lambda_events::cloudwatch_alarms::{CloudWatchAlarmData, CloudWatchAlarmStateValue};
use chrono::{DateTime, Utc};
use serde::Deserialize;
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

/// An operator's command to the promoter (`{"action": ...}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Command {
    // `{}`: a unit variant would let unknown fields through.
    Status {},
    Acknowledge {
        database: String,
        /// Who acknowledges (for the record).
        by: String,
    },
    /// A planned failover exercise of a database whose standby is tagged for `plan`.
    Drill {
        database: String,
        plan: String,
        #[serde(default)]
        confirm: String,
        /// Then fail back, so that the drill ends where it began.
        #[serde(default)]
        failback: bool,
    },
    /// Lets a failover whose strict recovery plan holds DNS for capacity switch without it.
    Proceed {
        database: String,
        /// Who decided (for the record and the notices).
        by: String,
    },
    /// Back to the original region after a failover: prepares it (a replica there), and with
    /// `switch` also switches back once it has caught up (not before `at`, a window).
    Failback {
        database: String,
        /// Who asked (for the record and the notices).
        by: String,
        #[serde(default)]
        confirm: String,
        #[serde(default)]
        switch: bool,
        #[serde(default)]
        at: Option<DateTime<Utc>>,
        /// Gives up a failback that has not begun its switch back.
        #[serde(default)]
        cancel: bool,
    },
    /// A manual (planned) failover. `force_data_loss` accepts a lag-gate refusal.
    Failover {
        database: String,
        /// Why (for the record and the notices).
        reason: String,
        #[serde(default)]
        force_data_loss: bool,
        #[serde(default)]
        planned: bool,
    },
}

impl Command {
    /// The text fields that must not be blank, by name.
    fn required(&self) -> Vec<(&'static str, &str)> {
        match self {
            Command::Status {} => vec![],
            Command::Acknowledge { database, by }
            | Command::Proceed { database, by }
            | Command::Failback { database, by, .. } => {
                vec![("database", database), ("by", by)]
            }
            Command::Drill { database, plan, .. } => vec![("database", database), ("plan", plan)],
            Command::Failover { database, reason, .. } => vec![("database", database), ("reason", reason)],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PromoterEvent {
    Alarm(AlarmSignal),
    /// The continuation schedule: resume failovers in progress.
    Continue,
    Command(Command),
}

const ACCEPTS: &str = "the promoter accepts CloudWatch alarm state changes (EventBridge, Lambda action, SNS), its schedule, and operator commands (status, acknowledge, failover, drill, proceed, failback)";

/// The CloudWatch alarm notice SNS carries as its message. (`aws_lambda_events`'
/// `CloudWatchAlarmPayload` requires `AlarmDescription` and trigger fields that CloudWatch
/// sends as null or leaves out for some alarms; drpilot reads only these.)
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AlarmNotice {
    alarm_name: String,
    alarm_arn: String,
    new_state_value: String,
    #[serde(default)]
    new_state_reason: String,
    state_change_time: DateTime<Utc>,
}

fn state_name(v: &CloudWatchAlarmStateValue) -> &'static str {
    match v {
        CloudWatchAlarmStateValue::Alarm => "ALARM",
        CloudWatchAlarmStateValue::InsufficientData => "INSUFFICIENT_DATA",
        _ => "OK",
    }
}

fn from_alarm_data(data: &CloudWatchAlarmData, region: Option<String>, what: &str) -> Result<AlarmSignal> {
    let state = data
        .state
        .as_ref()
        .ok_or_else(|| Error::BadEvent(format!("{what} without the alarm's state")))?;
    match (data.alarm_name.as_str(), region.filter(|r| !r.is_empty())) {
        ("", _) => Err(Error::BadEvent(format!("{what} without the alarm's name"))),
        (_, None) => Err(Error::BadEvent(format!("{what} without the region"))),
        (name, Some(region)) => Ok(AlarmSignal {
            name: name.to_string(),
            region,
            state: state_name(&state.value).to_string(),
            since: state.timestamp,
            reason: state.reason.clone(),
        }),
    }
}

impl Decode for PromoterEvent {
    fn decode(event: Value) -> Result<Self> {
        let alarm = match events::decode::<Command>(event, ACCEPTS)? {
            Incoming::Command(c) => {
                return match c.required().into_iter().find(|(_, v)| v.trim().is_empty()) {
                    Some((field, _)) => Err(Error::BadEvent(format!("the command's {field:?} is empty"))),
                    None => Ok(PromoterEvent::Command(c)),
                }
            }
            Incoming::Schedule(_) => return Ok(PromoterEvent::Continue),
            Incoming::AlarmChange(e) => from_alarm_data(&e.detail, e.region, "a CloudWatch Alarm State Change event")?,
            Incoming::AlarmAction(a) => from_alarm_data(&a.alarm_data, a.region, "a CloudWatch alarm Lambda action")?,
            Incoming::Sns(sns) => {
                let [record] = sns.records.as_slice() else {
                    return Err(Error::BadEvent(format!(
                        "an SNS event with {} records (expected 1)",
                        sns.records.len()
                    )));
                };
                let m: AlarmNotice = serde_json::from_str(&record.sns.message)
                    .map_err(|e| Error::BadEvent(format!("the SNS message is not a CloudWatch alarm notice: {e}")))?;
                let region = crate::model::arn_region(&m.alarm_arn)
                    .filter(|r| !r.is_empty())
                    .ok_or_else(|| Error::BadEvent(format!("bad AlarmArn {:?}", m.alarm_arn)))?;
                AlarmSignal {
                    name: m.alarm_name,
                    region: region.to_string(),
                    state: m.new_state_value,
                    since: m.state_change_time,
                    reason: m.new_state_reason,
                }
            }
            other => return Err(other.unsupported(ACCEPTS)),
        };
        Ok(PromoterEvent::Alarm(alarm))
    }
}

/// CloudWatch writes `2026-11-25T18:30:00.000+0000`; EventBridge and users write RFC 3339.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(event: Value) -> Result<PromoterEvent> {
        PromoterEvent::decode(event)
    }

    #[test]
    fn every_sample_event_decodes_to_the_decision_it_documents() {
        let signal = PromoterEvent::Alarm(AlarmSignal {
            name: "drpilot-orders-primary-down".into(),
            region: "us-east-1".into(),
            state: "ALARM".into(),
            since: parse_time("2026-11-25T18:30:12.345+0000").unwrap(),
            reason: String::new(),
        });
        let without_reason = |e: PromoterEvent| match e {
            PromoterEvent::Alarm(a) => {
                assert!(
                    a.reason
                        .starts_with("Threshold Crossed: 3 out of the last 3 datapoints"),
                    "{a:?}"
                );
                PromoterEvent::Alarm(AlarmSignal {
                    reason: String::new(),
                    ..a
                })
            }
            other => other,
        };
        let command = |c: Command| PromoterEvent::Command(c);
        let expected = [
            (
                "acknowledge.json",
                command(Command::Acknowledge {
                    database: "orders".into(),
                    by: "alice@example.com".into(),
                }),
            ),
            ("alarm-eventbridge.json", signal.clone()),
            ("alarm-lambda-action.json", signal.clone()),
            ("alarm-sns.json", signal),
            ("continue-schedule.json", PromoterEvent::Continue),
            (
                "drill.json",
                command(Command::Drill {
                    database: "orders".into(),
                    plan: "q4-2026".into(),
                    confirm: "orders".into(),
                    failback: true,
                }),
            ),
            (
                "failback.json",
                command(Command::Failback {
                    database: "orders".into(),
                    by: "alice@example.com".into(),
                    confirm: "orders".into(),
                    switch: true,
                    at: parse_time("2026-11-28T02:00:00Z"),
                    cancel: false,
                }),
            ),
            (
                "manual-failover.json",
                command(Command::Failover {
                    database: "orders".into(),
                    reason: "quarterly region evacuation, change CHG-1042".into(),
                    force_data_loss: false,
                    planned: true,
                }),
            ),
            (
                "proceed.json",
                command(Command::Proceed {
                    database: "orders".into(),
                    by: "alice@example.com".into(),
                }),
            ),
            ("status.json", command(Command::Status {})),
        ];
        let samples = crate::events::samples("failover-promoter");
        assert_eq!(samples.len(), expected.len(), "every sample has its expected decision");
        for ((file, event), (name, want)) in samples.into_iter().zip(expected) {
            assert_eq!(file, name);
            assert_eq!(without_reason(decode(event).unwrap()), want, "{file}");
        }
    }

    #[test]
    fn malformed_events_are_errors() {
        for bad in [
            serde_json::json!([]),
            serde_json::json!({"action": "promote-everything"}),
            serde_json::json!({"action": "acknowledge", "database": "orders"}),
            serde_json::json!({"action": "acknowledge", "database": "orders", "by": " "}),
            serde_json::json!({"action": "failover", "database": "orders"}),
            serde_json::json!({"action": "proceed", "database": "orders"}),
            serde_json::json!({"action": "failback", "database": "orders"}),
            serde_json::json!({"action": "failback", "database": "orders", "by": "a", "at": "tonight"}),
            serde_json::json!({"action": "failback", "database": "orders", "by": "a", "switch": "yes"}),
            serde_json::json!({"action": "failover", "database": "orders", "reason": "x", "force": true}),
            serde_json::json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "region": "us-east-1", "detail": {}}),
            serde_json::json!({"Records": [{"Sns": {"Message": "not json"}}]}),
            serde_json::json!({"Records": []}),
            serde_json::json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "region": "", "detail": {"alarmName": "a", "state": {"value": "ALARM", "reason": "", "timestamp": "2026-11-25T18:30:12.345+0000"}, "configuration": {}}}),
        ] {
            assert!(matches!(decode(bad.clone()), Err(Error::BadEvent(_))), "{bad}");
        }
        let odd_state = serde_json::json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "region": "us-east-1", "detail": {"alarmName": "a", "state": {"value": "SNOOZED", "reason": "", "timestamp": "2026-11-25T18:30:12.345+0000"}, "configuration": {}}});
        let e = decode(odd_state).unwrap_err().to_string();
        assert!(
            e.contains("unknown variant `SNOOZED`") && !e.contains("unknown action"),
            "{e}"
        );
        let e = decode(serde_json::json!({"action": "promote"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown action `promote`"), "{e}");
    }
}
