//! Event-driven backups: S3's event notifications (through an SQS queue) tell the backup which
//! keys changed, and one invocation copies them into the DR bucket and records a *change
//! point*: a point in time whose manifest holds only those keys (copies, and deletions), read
//! through the full point of the last scheduled run (`PointInTime::base`). The scheduled run
//! stays the reconciliation that catches whatever a notification missed; it starts from the
//! newest point, change points included, so an object an event copied is not copied again.
//!
//! While a scheduled run or retention is under way, and before the first full point, the
//! changes wait: their messages go back to the queue (`batchItemFailures`) and come again
//! after the queue's visibility timeout. A message that cannot be read is reported and, after
//! the queue's redrive count, lands in its dead-letter queue; nothing is changed for it.

use super::manifest::{changes_of, encode_part, part_key, state_key, BackupState, ManifestRef};
use super::{BackupPorts, Invocation};
use crate::accounts::ForAccounts;
use crate::config::BackupConfig;
use crate::error::{Error, Result};
use crate::model::BackupSpec;
use crate::plan::backup::{same_time, ManifestEntry, PartWriter, PointInTime};
use crate::ports::{Documents, Notifier, ObjectCopy, ObjectStore, StateStore};
use crate::state::Record;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use tracing::{info, warn};

/// One SQS message of a batch: its id (what Lambda's partial batch response names) and the
/// object changes its S3 notification reports, or why it cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub id: String,
    pub changes: std::result::Result<Vec<ObjectChange>, String>,
}

/// A key S3 reported created or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectChange {
    pub bucket: String,
    pub key: String,
}

/// The part of S3's event notification drpilot reads (S3 User Guide, "Event message
/// structure"); the rest, documented or not, is ignored.
#[derive(Deserialize)]
struct Notification {
    #[serde(rename = "Records", default)]
    records: Vec<NotificationRecord>,
    /// `s3:TestEvent`, sent once when the notification is configured.
    #[serde(rename = "Event", default)]
    event: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotificationRecord {
    event_name: String,
    s3: NotificationEntity,
}

#[derive(Deserialize)]
struct NotificationEntity {
    bucket: NotificationBucket,
    object: NotificationObject,
}

#[derive(Deserialize)]
struct NotificationBucket {
    name: String,
}

#[derive(Deserialize)]
struct NotificationObject {
    key: String,
}

/// An SNS notification's envelope, as an SQS subscription without raw delivery gets it.
#[derive(Deserialize)]
struct SnsEnvelope {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Message")]
    message: String,
}

/// The object changes in an S3 notification (an SQS message's body: S3's JSON, as a raw SNS
/// delivery or S3 itself sends it, or inside an SNS envelope). Keys arrive URL-encoded as in
/// a form (`+` for a space). Events other than created and removed are not changes.
pub fn parse_notification(body: &str) -> std::result::Result<Vec<ObjectChange>, String> {
    if let Ok(envelope) = serde_json::from_str::<SnsEnvelope>(body) {
        if envelope.kind == "Notification" {
            return parse_notification(&envelope.message);
        }
    }
    let n: Notification = serde_json::from_str(body).map_err(|e| format!("not an S3 event notification ({e})"))?;
    if n.records.is_empty() {
        return match n.event.as_deref() {
            Some("s3:TestEvent") => Ok(vec![]),
            _ => Err("neither S3 event records nor S3's test event".into()),
        };
    }
    n.records
        .into_iter()
        .filter(|r| r.event_name.starts_with("ObjectCreated:") || r.event_name.starts_with("ObjectRemoved:"))
        .map(|r| {
            let plus = r.s3.object.key.replace('+', " ");
            let key = percent_encoding::percent_decode_str(&plus)
                .decode_utf8()
                .map_err(|e| format!("key {:?} is not URL-encoded UTF-8 ({e})", r.s3.object.key))?
                .into_owned();
            Ok(ObjectChange {
                bucket: r.s3.bucket.name,
                key,
            })
        })
        .collect()
}

/// What one invocation did with one backup's changes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChangeReport {
    pub backup: String,
    /// The change point recorded, if any.
    pub point: Option<String>,
    pub copied: u64,
    pub deleted: u64,
    /// Already in the newest point as they are now (a repeated notification).
    pub unchanged: u64,
    /// Larger than the multipart threshold: left to the scheduled run.
    pub left_to_schedule: Vec<String>,
    pub failed: Vec<String>,
    /// Why the changes wait for a later delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
}

/// How many times a change point is tried on a state that another invocation changed.
const SAVE_ATTEMPTS: u32 = 3;

/// Copies the keys that changed for one backup and records them as a change point. Returns
/// the report and the keys that must be delivered again (all of them when the changes wait).
async fn record_changes<O, S, N>(
    ports: &BackupPorts<O, S, N>,
    cfg: &BackupConfig,
    spec: &BackupSpec,
    keys: &BTreeSet<String>,
    inv: &Invocation,
) -> (ChangeReport, BTreeSet<String>)
where
    O: ObjectStore,
    S: StateStore + Documents,
    N: Notifier,
{
    let mut report = ChangeReport {
        backup: spec.name.clone(),
        ..Default::default()
    };
    let key = state_key(&cfg.state, spec);
    let waits = |state: &BackupState| -> Option<String> {
        let now = Utc::now();
        if state.points.is_empty() {
            Some("no scheduled run has completed yet: the first full point comes first".into())
        } else if let Some(r) = &state.running {
            Some(format!(
                "scheduled run {} is under way; its point comes first",
                r.run_id
            ))
        } else {
            state
                .retention_lease
                .as_ref()
                .filter(|l| l.until > now)
                .map(|_| "retention is running".into())
        }
    };
    let state = match BackupState::read(&ports.state, &key).await {
        Ok(s) => s,
        Err(e) => {
            report.waiting = Some(format!("cannot read the backup's state: {e}"));
            return (report, keys.clone());
        }
    };
    if let Some(why) = waits(&state) {
        report.waiting = Some(why);
        return (report, keys.clone());
    }
    // What the change points since the last full point hold (small; the full point's own
    // manifest is not read, so an invocation costs the same however large the bucket): a
    // repeated notification of a change already recorded copies nothing.
    let newest = state.points.last().cloned().unwrap_or_default();
    let known: BTreeMap<String, ManifestEntry> = match state.cursor(&newest.run_id) {
        Some(cursor) => match changes_of(&ports.state, &cfg.state, spec, &cursor.changes).await {
            Ok(changes) => changes,
            Err(e) => {
                report.waiting = Some(format!("cannot read the newest change points: {e}"));
                return (report, keys.clone());
            }
        },
        None => BTreeMap::new(),
    };
    let started = Utc::now();
    let mut entries: Vec<ManifestEntry> = vec![];
    let mut again: BTreeSet<String> = BTreeSet::new();
    let stop_at = inv.deadline - chrono::Duration::seconds(i64::from(cfg.deadline_margin_seconds));
    for k in keys {
        if Utc::now() >= stop_at {
            // Out of time: the rest come again in the next delivery.
            again.insert(k.clone());
            continue;
        }
        match ports.source.head(&spec.source_bucket, k).await {
            Ok(None) => {
                if known.get(k).is_some_and(|e| e.deleted) {
                    report.unchanged += 1;
                } else {
                    // Deleted at the source (if the full point did not have it either, the
                    // deletion changes nothing when the point is read).
                    report.deleted += 1;
                    entries.push(ManifestEntry {
                        key: k.clone(),
                        size: 0,
                        etag: String::new(),
                        modified: None,
                        version: String::new(),
                        deleted: true,
                    });
                }
            }
            Ok(Some(object)) => {
                let same = known.get(k).is_some_and(|e| {
                    !e.deleted
                        && e.size == object.size
                        && e.etag == object.etag
                        && same_time(e.modified, object.last_modified)
                });
                if same {
                    report.unchanged += 1;
                } else if object.size > cfg.multipart_threshold_bytes {
                    report.left_to_schedule.push(k.clone());
                } else {
                    let copy = ObjectCopy {
                        from_bucket: spec.source_bucket.clone(),
                        from_key: k.clone(),
                        from_version: None,
                        if_match: Some(object.etag.clone()),
                        size: object.size,
                        to_bucket: spec.dr_bucket.clone(),
                        to_key: k.clone(),
                        kms_key_id: spec.kms_key_id.clone(),
                        storage_class: spec.storage_class.clone(),
                    };
                    match ports.dr.copy(&copy).await {
                        Ok(version) if !version.is_empty() => {
                            report.copied += 1;
                            entries.push(ManifestEntry {
                                key: k.clone(),
                                size: object.size,
                                etag: object.etag.clone(),
                                modified: object.last_modified,
                                version,
                                deleted: false,
                            });
                        }
                        Ok(_) => {
                            report
                                .failed
                                .push(format!("{k}: no version id for the copy: is versioning still enabled?"));
                            again.insert(k.clone());
                        }
                        Err(e) => {
                            // Changed again since it was looked at (412), throttled, refused: the
                            // message comes back, and its newest state is copied then.
                            report.failed.push(format!("{k}: {e}"));
                            again.insert(k.clone());
                        }
                    }
                }
            }
            Err(e) => {
                report.failed.push(format!("{k}: {e}"));
                again.insert(k.clone());
            }
        }
    }
    if entries.is_empty() {
        return (report, again);
    }
    // The change point: its own manifest part, then the state names it (a conditional write;
    // on a state another invocation changed meanwhile, tried again on the new state).
    let writers = vec![PartWriter {
        from_part: 1,
        invocation: 1,
    }];
    // Its own id: a scheduled run's id with a part of this invocation's, so that no other
    // point (a scheduled run's, a change point of a concurrent invocation) ever names the same
    // manifest part, which is written before the state names it.
    let run_id = state.new_run_id_for(started, &inv.request_id);
    if let Err(e) = ports
        .state
        .put(&part_key(&cfg.state, spec, &run_id, 1, &writers), encode_part(&entries))
        .await
    {
        report
            .failed
            .push(format!("cannot write the change point's manifest: {e}"));
        return (report, keys.clone());
    }
    let point = PointInTime {
        run_id: run_id.clone(),
        started,
        finished: Utc::now(),
        objects: entries.len() as u64,
        bytes: entries.iter().map(|e| e.size.max(0) as u64).sum(),
        // what it could not hold: failed copies (they come again), and objects left to the
        // scheduled run
        failed: (report.failed.len() + report.left_to_schedule.len()) as u64,
        parts: 1,
        writers,
        base: Some(newest.base_id().to_string()),
        as_of: None,
    };
    let record = Record::new(&ports.state, key.clone());
    for _ in 0..SAVE_ATTEMPTS {
        let (mut now, etag) = match BackupState::load(&ports.state, &key).await {
            Ok(loaded) => loaded,
            Err(e) => {
                report.waiting = Some(format!("cannot read the backup's state: {e}"));
                return (report, keys.clone());
            }
        };
        // On the point it read, or after change points a concurrent invocation recorded on it
        // meanwhile for other keys (their order does not matter then). Anything else (a
        // scheduled run's point; another change of one of these keys, which may be newer)
        // sends the changes back, to be decided on the newer point.
        if let Some(why) = waits(&now) {
            report.waiting = Some(why);
            return (report, keys.clone());
        }
        let Some(at) = now.points.iter().position(|p| p.run_id == newest.run_id) else {
            report.waiting = Some("the point it started from is gone".into());
            return (report, keys.clone());
        };
        let since: Vec<&PointInTime> = now.points[at + 1..].iter().collect();
        if since.iter().any(|p| p.base_id() != newest.base_id()) {
            report.waiting = Some("a scheduled run's point was recorded meanwhile".into());
            return (report, keys.clone());
        }
        if !since.is_empty() {
            let refs: Vec<ManifestRef> = since.iter().map(|p| ManifestRef::of(p)).collect();
            match changes_of(&ports.state, &cfg.state, spec, &refs).await {
                Ok(theirs) if entries.iter().all(|e| !theirs.contains_key(&e.key)) => {}
                Ok(_) => {
                    report.waiting = Some("a concurrent change point holds some of the same keys".into());
                    return (report, keys.clone());
                }
                Err(e) => {
                    report.waiting = Some(format!("cannot read the newer change points: {e}"));
                    return (report, keys.clone());
                }
            }
        }
        now.points.push(point.clone());
        match record.write(&now, etag.as_deref()).await {
            Ok(Some(_)) => {
                info!(backup = %spec.name, point = %run_id, copied = report.copied, deleted = report.deleted, "change point recorded");
                report.point = Some(run_id);
                return (report, again);
            }
            Ok(None) => continue,
            Err(e) => {
                report.waiting = Some(format!("cannot record the change point: {e}"));
                return (report, keys.clone());
            }
        }
    }
    report.waiting = Some("the backup's state kept changing; the changes come again".into());
    (report, keys.clone())
}

/// Whether backup `b` holds the key a change is of.
pub(crate) fn covers(b: &BackupSpec, c: &ObjectChange) -> bool {
    b.source_bucket == c.bucket && c.key.starts_with(&b.prefix)
}

/// An SQS batch of S3 notifications: each backup's changed keys, copied and recorded as one
/// change point per backup. The answer is Lambda's partial batch response
/// (`batchItemFailures`: the messages to deliver again) with a report per backup.
pub async fn handle_changes<A, O, S, N>(
    accounts: &A,
    cfg: &BackupConfig,
    messages: &[QueuedMessage],
    inv: &Invocation,
) -> Result<Value>
where
    A: ForAccounts<BackupPorts<O, S, N>>,
    O: ObjectStore,
    S: StateStore + Documents,
    N: Notifier,
{
    // Which backup each change is for (a key under its prefix in its source bucket).
    let mut wanted: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut unreadable = vec![];
    let mut ignored = 0u64;
    for m in messages {
        match &m.changes {
            Err(why) => {
                warn!(message = %m.id, %why, "message cannot be read");
                unreadable.push(serde_json::json!({"message": m.id, "error": why}));
            }
            Ok(changes) => {
                for c in changes {
                    // every backup of that bucket whose prefix holds the key
                    let mut any = false;
                    for b in cfg.backups.iter().filter(|b| covers(b, c)) {
                        wanted.entry(b.name.as_str()).or_default().insert(c.key.clone());
                        any = true;
                    }
                    ignored += u64::from(!any);
                }
            }
        }
    }
    let mut again: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut reports = vec![];
    for (name, keys) in &wanted {
        let Some(spec) = cfg.backup(name) else { continue };
        let (ports, access) = accounts.ports_for(spec.account.as_deref());
        let (report, retry) = match access.check().await {
            Ok(()) => record_changes(ports, cfg, spec, keys, inv).await,
            Err(e) => (
                ChangeReport {
                    backup: spec.name.clone(),
                    waiting: Some(e.to_string()),
                    ..Default::default()
                },
                keys.clone(),
            ),
        };
        again.insert(name, retry);
        reports.push(report);
    }
    // A message comes again if it cannot be read, or if any of its changes is to be retried.
    let failures: Vec<Value> = messages
        .iter()
        .filter(|m| match &m.changes {
            Err(_) => true,
            Ok(changes) => changes.iter().any(|c| {
                cfg.backups
                    .iter()
                    .filter(|b| covers(b, c))
                    .any(|b| again.get(b.name.as_str()).is_some_and(|k| k.contains(&c.key)))
            }),
        })
        .map(|m| serde_json::json!({"itemIdentifier": m.id}))
        .collect();
    Ok(serde_json::json!({
        "batchItemFailures": failures,
        "backups": reports,
        "unreadable": unreadable,
        "ignored": ignored,
    }))
}

impl From<aws_lambda_events::sqs::SqsEvent> for super::BackupEvent {
    fn from(event: aws_lambda_events::sqs::SqsEvent) -> Self {
        super::BackupEvent::Changes(
            event
                .records
                .into_iter()
                .map(|m| QueuedMessage {
                    id: m.message_id.clone().unwrap_or_default(),
                    changes: match m.body.as_deref() {
                        Some(body) => parse_notification(body),
                        None => Err("the message has no body".into()),
                    },
                })
                .collect(),
        )
    }
}

/// `Error` for an SQS batch whose messages cannot be told apart (no message id): Lambda then
/// delivers the whole batch again, and nothing was changed.
pub fn check_ids(messages: &[QueuedMessage]) -> Result<()> {
    match messages.iter().any(|m| m.id.is_empty()) {
        true => Err(Error::BadEvent(
            "an SQS message without a messageId: nothing was done".into(),
        )),
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_reaches_every_backup_of_its_bucket_whose_prefix_holds_it() {
        let cfg = crate::config::BackupConfig::from_vars(&std::collections::HashMap::from([
            ("DRPILOT_SOURCE_REGION", "us-east-1"),
            ("DRPILOT_DR_REGION", "us-west-2"),
            (
                "DRPILOT_S3_BACKUPS",
                r#"[{"name": "all", "source_bucket": "a-prod", "dr_bucket": "all-dr"},
                    {"name": "logs", "source_bucket": "a-prod", "dr_bucket": "logs-dr", "prefix": "logs/"},
                    {"name": "other", "source_bucket": "b-prod", "dr_bucket": "b-dr"}]"#,
            ),
            ("DRPILOT_STATE_BUCKET", "drpilot-state"),
            ("DRPILOT_NOTIFY_TOPIC_ARN", "arn:aws:sns:us-west-2:123456789012:drpilot"),
        ]))
        .unwrap();
        let to = |bucket: &str, key: &str| -> Vec<&str> {
            let change = ObjectChange {
                bucket: bucket.into(),
                key: key.into(),
            };
            cfg.backups
                .iter()
                .filter(|b| covers(b, &change))
                .map(|b| b.name.as_str())
                .collect()
        };
        assert_eq!(to("a-prod", "logs/1.txt"), ["all", "logs"]);
        assert_eq!(to("a-prod", "img/1.png"), ["all"]);
        assert!(to("c-prod", "x").is_empty());
    }

    #[test]
    fn notifications_give_the_created_and_removed_keys_decoded() {
        let body = serde_json::json!({"Records": [
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "assets"}, "object": {"key": "a/b+c%2B1.txt", "size": 3}}},
            {"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "assets"}, "object": {"key": "gone.txt"}}},
            {"eventName": "ObjectTagging:Put", "s3": {"bucket": {"name": "assets"}, "object": {"key": "tags.txt"}}},
        ]})
        .to_string();
        let changes = parse_notification(&body).unwrap();
        let keys: Vec<&str> = changes.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["a/b c+1.txt", "gone.txt"]);
        assert_eq!(
            parse_notification(r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"assets"}"#),
            Ok(vec![])
        );
        assert!(parse_notification("not json")
            .unwrap_err()
            .contains("not an S3 event notification"));
        let wrapped = serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": body}).to_string();
        assert_eq!(parse_notification(&wrapped).unwrap().len(), 2);
        assert!(parse_notification(r#"{"Records": [{"eventName": "ObjectCreated:Put"}]}"#).is_err());
        assert!(
            parse_notification("{}").is_err(),
            "an empty object is not a notification"
        );
        let confirmation = serde_json::json!({"Type": "SubscriptionConfirmation", "Message": "confirm"}).to_string();
        assert!(parse_notification(&confirmation).is_err());
    }
}
