//! What Lambda hands drpilot's functions, decoded once at the edge into typed shapes:
//! `aws_lambda_events`' EventBridge, SNS and CloudWatch alarm events, and each function's
//! operator commands (an enum tagged by `action`). A handler takes its function's typed event;
//! anything else is `drpilot.BadEvent`, decided before any AWS call.

use crate::error::{Error, Result};
use aws_lambda_events::cloudwatch_alarms::{CloudWatchAlarm, CloudWatchAlarmData};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::SnsEvent;
use aws_lambda_events::sqs::SqsEvent;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::Value;

/// A function's event: decoded from the JSON Lambda delivers (or `--event FILE|-` locally).
pub trait Decode: Sized {
    fn decode(event: Value) -> Result<Self>;
}

/// The detail of an RDS snapshot event from EventBridge (`aws_lambda_events` has no RDS
/// events). <https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-cloud-watch-events.html>
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RdsEventDetail {
    pub event_categories: Vec<String>,
    #[serde(rename = "EventID", default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub source_identifier: Option<String>,
}

pub const RDS_SNAPSHOT_EVENTS: &[&str] = &["RDS DB Snapshot Event", "RDS DB Cluster Snapshot Event"];

/// What arrived, decoded into its type; `C` is the receiving function's operator commands.
#[derive(Debug)]
pub enum Incoming<C> {
    Command(C),
    /// An EventBridge schedule (`aws.events`, `Scheduled Event`).
    Schedule(EventBridgeEvent),
    /// A CloudWatch alarm's state change through EventBridge.
    AlarmChange(Box<EventBridgeEvent<CloudWatchAlarmData>>),
    /// A CloudWatch alarm's Lambda action (the alarm invokes the function directly).
    AlarmAction(Box<CloudWatchAlarm>),
    /// An SNS notification to a subscribed function.
    Sns(SnsEvent),
    /// A batch of SQS messages (an SQS event source mapping).
    Sqs(SqsEvent),
    RdsSnapshot(EventBridgeEvent<RdsEventDetail>),
}

impl<C> Incoming<C> {
    /// The error for an event of a shape the function does not take: what came, what it takes.
    pub fn unsupported(&self, accepts: &str) -> Error {
        let what = match self {
            Incoming::Command(_) => "a command".to_string(),
            Incoming::Schedule(e) => format!("source {:?}, detail-type {:?}", e.source, e.detail_type),
            Incoming::AlarmChange(e) => format!("source {:?}, detail-type {:?}", e.source, e.detail_type),
            Incoming::RdsSnapshot(e) => format!("source {:?}, detail-type {:?}", e.source, e.detail_type),
            Incoming::AlarmAction(_) => "a CloudWatch alarm Lambda action".to_string(),
            Incoming::Sns(_) => "an SNS notification".to_string(),
            Incoming::Sqs(_) => "SQS messages".to_string(),
        };
        Error::BadEvent(format!("unsupported event ({what}): {accepts}"))
    }
}

/// Just enough of an event to tell its shape.
#[derive(Deserialize)]
struct Envelope {
    /// Any `action`, even null, makes the event a command.
    #[serde(default, deserialize_with = "present")]
    action: bool,
    #[serde(rename = "Records")]
    records: Option<Vec<RecordShape>>,
    #[serde(rename = "alarmData")]
    alarm_data: Option<IgnoredAny>,
    source: Option<String>,
    #[serde(rename = "detail-type")]
    detail_type: Option<String>,
}

/// Just enough of a record to tell SNS's (`EventSource`) from SQS's (`eventSource`).
#[derive(Deserialize)]
struct RecordShape {
    #[serde(rename = "eventSource", alias = "EventSource")]
    source: Option<String>,
}

/// Decodes `event` into the shape its fields announce; `accepts` (what the function takes)
/// completes the error for anything else.
pub fn decode<C: DeserializeOwned>(event: Value, accepts: &str) -> Result<Incoming<C>> {
    if !event.is_object() {
        return Err(Error::BadEvent(format!(
            "expected a JSON object, got {}: {accepts}",
            kind_of(&event)
        )));
    }
    let shape = Envelope::deserialize(&event).map_err(|e| Error::BadEvent(format!("{e}: {accepts}")))?;
    let bad = |e: String| Error::BadEvent(format!("{e}; {accepts}"));
    match (shape.source.as_deref(), shape.detail_type.as_deref()) {
        // A command's variant is its action; elsewhere an unknown variant is some other enum's.
        _ if shape.action => typed(event, "the command")
            .map(Incoming::Command)
            .map_err(|e| bad(e.replacen("unknown variant", "unknown action", 1))),
        _ if shape
            .records
            .as_ref()
            .is_some_and(|r| r.iter().any(|r| r.source.as_deref() == Some("aws:sqs"))) =>
        {
            typed(event, "an SQS event").map(Incoming::Sqs).map_err(bad)
        }
        _ if shape.records.is_some() => typed(event, "an SNS event").map(Incoming::Sns).map_err(bad),
        (Some("aws.cloudwatch"), None) if shape.alarm_data.is_some() => {
            typed(event, "a CloudWatch alarm Lambda action")
                .map(|a| Incoming::AlarmAction(Box::new(a)))
                .map_err(bad)
        }
        (Some("aws.events"), Some("Scheduled Event")) => {
            typed(event, "a schedule").map(Incoming::Schedule).map_err(bad)
        }
        (Some("aws.cloudwatch"), Some("CloudWatch Alarm State Change")) => {
            typed(event, "a CloudWatch Alarm State Change event")
                .map(|e| Incoming::AlarmChange(Box::new(e)))
                .map_err(bad)
        }
        (Some("aws.rds"), Some(dt)) if RDS_SNAPSHOT_EVENTS.contains(&dt) => {
            let what = format!("an {dt}");
            typed(event, &what).map(Incoming::RdsSnapshot).map_err(bad)
        }
        (source, detail_type) => Err(Error::BadEvent(format!(
            "unsupported event (source {source:?}, detail-type {detail_type:?}): {accepts}"
        ))),
    }
}

/// `T` from JSON; the error names the path to the bad field.
pub fn typed<T: DeserializeOwned>(value: Value, what: &str) -> std::result::Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| match e.path().to_string().as_str() {
        "." => format!("{what}: {}", e.inner()),
        path => format!("{what}: {path}: {}", e.inner()),
    })
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

/// For `#[serde(default, deserialize_with)]`: an optional field that, when present, must be
/// a string (null is refused, not read as absent).
pub fn some<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The sample events under `events/<function>/`, for the tests that prove each decodes to
/// the decision it documents.
#[cfg(test)]
pub fn samples(function: &str) -> Vec<(String, Value)> {
    let dir = format!("{}/../events/{function}", env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|f| {
            let path = f.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, serde_json::from_str(&text).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
