//! The lag checker's run: measure every protected resource, publish drpilot's metrics in the
//! DR region, and tell responders about transitions only (state kept in the DR state bucket,
//! written with compare-and-swap so concurrent runs cannot both notify).

use crate::config::LagConfig;
use crate::error::{Error, Result};
use crate::events::{self, Decode, Incoming};
use crate::model::Snapshot;
use crate::model::{ResourceSpec, Target};
use crate::notice::{Notice, Severity};
use crate::plan::alerting::{track, Alert, Tracked};
use crate::plan::copy::managed_copies_of;
use crate::plan::lag::{
    classify_backlog, classify_copy_age, classify_lag, classify_point_age, human_seconds, LagSignal, Measurement,
    Status,
};
use crate::ports::{
    BucketListing, DrSnapshotStore, MetricId, MetricUnit, MetricValue, Metrics, Notifier, ReplicaView, StateStore,
};
use crate::state::{Loaded, Record};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use tracing::{info, warn};

/// Names of drpilot's metrics (dimension `Resource`), published in the DR region. The
/// promoter's lag gate reads `RecoveryPointSeconds` history: it is published only for a real
/// measurement, so its last datapoint is the last *healthy-link* lag.
pub mod metric {
    pub const RECOVERY_POINT: &str = "RecoveryPointSeconds";
    pub const BUDGET: &str = "RpoBudgetSeconds";
    pub const HEALTHY: &str = "ReplicationHealthy";
    pub const BREACHED: &str = "RpoBudgetBreached";
    pub const DIMENSION: &str = "Resource";
}

pub const STATE_OBJECT: &str = "lag-checker/state.json";

/// The query window of a lag metric: from sixty periods (an hour on AWS) before the staleness
/// window, so that a stale datapoint is reported as "stopped reporting N minutes ago" rather
/// than just "none", to one period past now (CloudWatch aligns datapoints to the period and
/// truncates times to the second, so a datapoint from this very period would otherwise fall
/// outside the query).
fn query_window(cfg: &LagConfig, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let period = Duration::seconds(i64::from(cfg.metric_period_seconds));
    let window = Duration::seconds(i64::from(cfg.window_seconds));
    (now - window - period * 60, now + period)
}

pub struct LagPorts<M, R, D, B, S, N> {
    /// Lag metrics of replicas, and drpilot's own metrics, live in the DR region.
    pub dr_metrics: M,
    pub replicas: R,
    pub copies: D,
    pub source_buckets: B,
    pub dr_buckets: B,
    pub state: S,
    pub notifier: N,
}

type AwsLagPorts = LagPorts<
    crate::aws::cloudwatch::CloudWatchMetrics,
    crate::aws::rds::RdsReplicas,
    crate::aws::rds::RdsDr,
    crate::aws::s3::S3Buckets,
    crate::aws::s3::S3State,
    crate::aws::sns::SnsNotifier,
>;

impl AwsLagPorts {
    pub fn aws(sdk: &aws_config::SdkConfig, cfg: &LagConfig) -> Self {
        use crate::aws::{cloudwatch, rds, s3, sns};
        let s3_in = |region: &str| s3::client_in(sdk, region, cfg.s3_force_path_style);
        LagPorts {
            dr_metrics: cloudwatch::CloudWatchMetrics::new(sdk, &cfg.dr_region),
            replicas: rds::RdsReplicas::new(rds::client_in(sdk, &cfg.dr_region)),
            copies: rds::RdsDr::new(rds::client_in(sdk, &cfg.dr_region)),
            source_buckets: s3::S3Buckets::new(s3_in(&cfg.source_region)),
            dr_buckets: s3::S3Buckets::new(s3_in(&cfg.dr_region)),
            state: s3::S3State::new(s3_in(&cfg.dr_region), &cfg.state.bucket),
            notifier: sns::SnsNotifier::new(sdk, &cfg.notify_topic_arn, "drpilot.lag-checker"),
        }
    }
}

/// The lag checker's operator command.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum LagCommand {
    // `{}`: a unit variant would let unknown fields through.
    Check {},
}

/// What wakes the lag checker: its schedule or an operator's check; both measure everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LagEvent {
    Schedule,
    Operator,
}

const ACCEPTS: &str = r#"the lag checker accepts an EventBridge schedule or {"action": "check"}"#;

impl Decode for LagEvent {
    fn decode(event: Value) -> Result<Self> {
        match events::decode::<LagCommand>(event, ACCEPTS)? {
            Incoming::Command(LagCommand::Check {}) => Ok(LagEvent::Operator),
            Incoming::Schedule(_) => Ok(LagEvent::Schedule),
            other => Err(other.unsupported(ACCEPTS)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceReport {
    pub name: String,
    pub kind: String,
    pub status: Status,
    pub recovery_point_seconds: Option<f64>,
    pub rpo_seconds: f64,
    pub detail: String,
    /// Since when the resource has been in this status (as tracked across runs).
    pub since: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LagReport {
    pub checked_at: String,
    pub source_region: String,
    pub dr_region: String,
    pub resources: Vec<ResourceReport>,
    /// Subjects of the notices this run sent.
    pub notices: Vec<String>,
    pub errors: Vec<String>,
}

impl LagReport {
    pub fn table(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .resources
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.kind.clone(),
                    r.status.as_str().to_uppercase(),
                    r.recovery_point_seconds
                        .map(human_seconds)
                        .unwrap_or_else(|| "?".into()),
                    human_seconds(r.rpo_seconds),
                    r.since.clone().unwrap_or_else(|| "-".into()),
                    r.detail.clone(),
                ]
            })
            .collect();
        crate::table::render(
            &[
                "RESOURCE",
                "KIND",
                "STATUS",
                "RECOVERY POINT",
                "RPO BUDGET",
                "SINCE",
                "DETAIL",
            ],
            &rows,
        )
    }
}

/// What the lag checker keeps between runs (`STATE_OBJECT`); the dashboard reads it too.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LagState {
    pub resources: BTreeMap<String, Tracked>,
}

/// Lazily loaded, shared across resources of a run.
#[derive(Default)]
struct Listings {
    dr_copies: Option<std::result::Result<Vec<Snapshot>, String>>,
}

async fn measure<M, R, D, B, S, N>(
    ports: &LagPorts<M, R, D, B, S, N>,
    cfg: &LagConfig,
    spec: &ResourceSpec,
    listings: &mut Listings,
    now: DateTime<Utc>,
) -> Measurement
where
    M: Metrics,
    R: ReplicaView,
    D: DrSnapshotStore,
    B: BucketListing,
    S: StateStore,
{
    let window = Duration::seconds(i64::from(cfg.window_seconds));
    let unknown = |what: &str, e: Error| Measurement::unknown(format!("cannot read {what}: {e}"));
    match &spec.target {
        Target::RdsReplica { replica } => {
            let link = match ports.replicas.replica_link(replica).await {
                Ok(link) => link,
                Err(e) if e.aws_code() == Some("DBInstanceNotFound") => {
                    return Measurement::unknown(format!("replica {replica} does not exist in {}", cfg.dr_region))
                }
                Err(e) => return unknown("the replica's status", e),
            };
            let id = MetricId::new("AWS/RDS", "ReplicaLag", &[("DBInstanceIdentifier", replica)]);
            let (from, to) = query_window(cfg, now);
            match ports.dr_metrics.newest(&id, cfg.metric_period_seconds, from, to).await {
                Ok(newest) => classify_lag(
                    &link,
                    &LagSignal {
                        metric: "ReplicaLag",
                        newest,
                        to_seconds: 1.0,
                    },
                    spec.rpo_seconds,
                    window,
                    now,
                ),
                Err(e) => unknown("ReplicaLag", e),
            }
        }
        Target::AuroraGlobal { cluster } => {
            let link = match ports.replicas.secondary_cluster_link(cluster).await {
                Ok(link) => link,
                Err(e) if e.aws_code() == Some("DBClusterNotFoundFault") => {
                    return Measurement::unknown(format!("cluster {cluster} does not exist in {}", cfg.dr_region))
                }
                Err(e) => return unknown("the secondary cluster's status", e),
            };
            // RPO lag (Aurora PostgreSQL) is the recovery point itself; replication lag is the
            // closest measure where RPO lag is not reported.
            let mut signal = LagSignal {
                metric: "AuroraGlobalDBRPOLag",
                newest: None,
                to_seconds: 0.001,
            };
            for metric in ["AuroraGlobalDBRPOLag", "AuroraGlobalDBReplicationLag"] {
                let id = MetricId::new("AWS/RDS", metric, &[("DBClusterIdentifier", cluster)]);
                let (from, to) = query_window(cfg, now);
                match ports.dr_metrics.newest(&id, cfg.metric_period_seconds, from, to).await {
                    Ok(Some(p)) => {
                        signal = LagSignal {
                            metric,
                            newest: Some(p),
                            to_seconds: 0.001,
                        };
                        break;
                    }
                    Ok(None) => {}
                    Err(e) => return unknown(metric, e),
                }
            }
            classify_lag(&link, &signal, spec.rpo_seconds, window, now)
        }
        Target::SnapshotCopies { db } => {
            if listings.dr_copies.is_none() {
                listings.dr_copies = Some(ports.copies.copies().await.map_err(|e| e.to_string()));
            }
            match listings.dr_copies.as_ref() {
                Some(Ok(copies)) => {
                    let newest = managed_copies_of(copies, db, &cfg.source_region)
                        .filter(|c| c.is_available())
                        .filter_map(Snapshot::source_time)
                        .max();
                    classify_copy_age(newest, spec.rpo_seconds, now)
                }
                Some(Err(e)) => Measurement::unknown(format!("cannot list DR snapshots: {e}")),
                None => Measurement::unknown("DR snapshots not listed"),
            }
        }
        Target::S3Backup {
            source_bucket,
            dr_bucket,
            prefix,
        } => {
            let source = match ports.source_buckets.list(source_bucket, prefix).await {
                Ok(s) => s,
                Err(e) => return unknown(&format!("bucket {source_bucket}"), e),
            };
            let dr: HashMap<String, (i64, Option<DateTime<Utc>>)> = match ports.dr_buckets.list(dr_bucket, prefix).await
            {
                Ok(d) => d.into_iter().map(|o| (o.key, (o.size, o.last_modified))).collect(),
                Err(e) => return unknown(&format!("bucket {dr_bucket}"), e),
            };
            // Waiting: not in the DR bucket, a different size, or changed at the source after
            // the DR object was written.
            let pending: Vec<Option<DateTime<Utc>>> = source
                .iter()
                .filter(|o| match dr.get(&o.key) {
                    None => true,
                    Some((size, written)) => *size != o.size || o.last_modified > *written,
                })
                .map(|o| o.last_modified)
                .collect();
            let oldest = pending.iter().map(|t| t.unwrap_or(now)).min();
            classify_backlog(oldest, pending.len() as u64, spec.rpo_seconds, now)
        }
        Target::S3PointInTime { backup } => {
            // The backup's own record: no bucket listing at all, however large the bucket.
            use crate::backup::manifest::{backup_state_path, BackupState};
            match BackupState::read(&ports.state, &cfg.state.key(&backup_state_path(backup))).await {
                // Changes after the newest point in time's start are not in any point yet.
                Ok(state) => classify_point_age(state.points.last().map(|p| p.started), spec.rpo_seconds, now),
                Err(e) => unknown(&format!("backup {backup}'s state"), e),
            }
        }
    }
}

fn metric_values(spec: &ResourceSpec, m: &Measurement, now: DateTime<Utc>) -> Vec<MetricValue> {
    let value = |name: &str, value: f64, unit| MetricValue {
        name: name.into(),
        dimensions: vec![(metric::DIMENSION.into(), spec.name.clone())],
        value,
        unit,
        at: now,
    };
    let mut out = vec![value(metric::BUDGET, spec.rpo_seconds, MetricUnit::Seconds)];
    if m.status == Status::Unknown {
        return out; // nothing known: publish no verdict at all
    }
    if let Some(rp) = m.recovery_point_seconds {
        out.push(value(metric::RECOVERY_POINT, rp, MetricUnit::Seconds));
    }
    out.push(value(
        metric::HEALTHY,
        if m.status == Status::Broken { 0.0 } else { 1.0 },
        MetricUnit::Count,
    ));
    out.push(value(
        metric::BREACHED,
        if m.status == Status::Healthy { 0.0 } else { 1.0 },
        MetricUnit::Count,
    ));
    out
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn advice(spec: &ResourceSpec, cfg: &LagConfig, alert: &Alert) -> String {
    let dr = &cfg.dr_region;
    match (&spec.target, alert) {
        (_, Alert::Recovered { .. }) => "Nothing; this closes the earlier notice.".into(),
        (Target::RdsReplica { replica }, Alert::Broken) => format!(
            "Check the replica: aws rds describe-db-instances --region {dr} --db-instance-identifier {replica} \
             (look at StatusInfos). A replica in error must be recreated. Until then automatic failover of \
             this database would lose an unknown amount of data."
        ),
        (Target::RdsReplica { replica }, _) => format!(
            "Check the primary's write load and the replica's instance class and storage throughput \
             (AWS/RDS ReplicaLag of {replica} in {dr}). Until it catches up, a failover would lose about \
             that much data."
        ),
        (Target::AuroraGlobal { cluster }, _) => format!(
            "Check the global database: aws rds describe-global-clusters, and AWS/RDS \
             AuroraGlobalDBReplicationLag of {cluster} in {dr}."
        ),
        (Target::SnapshotCopies { db }, _) => format!(
            "Check the snapshot-copier's last runs (its notices and Errors alarm) and the automated backups \
             of {} {}; invoke the copier with {{\"action\": \"run\"}} to copy now.",
            db.kind.as_str(),
            db.id
        ),
        (
            Target::S3Backup {
                source_bucket,
                dr_bucket,
                ..
            },
            _,
        ) => {
            format!("Check the backup or replication of s3://{source_bucket} to s3://{dr_bucket}.")
        }
        (Target::S3PointInTime { backup }, _) => format!(
            "Check the s3-backup function's last runs (its notices and Errors alarm) for backup {backup}; \
             invoke it with {{\"action\": \"run\", \"backup\": \"{backup}\"}} to back up now."
        ),
    }
}

fn notice_for(
    spec: &ResourceSpec,
    m: &Measurement,
    tracked: &Tracked,
    alert: &Alert,
    cfg: &LagConfig,
    now: DateTime<Utc>,
) -> Notice {
    let rp = m
        .recovery_point_seconds
        .map(human_seconds)
        .unwrap_or_else(|| "unknown".into());
    let budget = human_seconds(spec.rpo_seconds);
    let (severity, subject, opening) = match alert {
        Alert::Breached => (
            Severity::Warning,
            format!("drpilot: RPO breached: {} is {rp} behind (budget {budget})", spec.name),
            format!(
                "{} ({}) would lose about {rp} of data if {} failed now. Its RPO budget is {budget}.\n\
                 Breached since {}.",
                spec.name,
                spec.kind(),
                cfg.source_region,
                stamp(tracked.since)
            ),
        ),
        Alert::Broken => (
            Severity::Critical,
            format!("drpilot: replication BROKEN: {}", spec.name),
            format!(
                "{} ({}): replication is not working. The recovery point is unknown and growing \
                 (RPO budget {budget}).\nBroken since {}.",
                spec.name,
                spec.kind(),
                stamp(tracked.since)
            ),
        ),
        Alert::Recovered { from, since } => (
            Severity::Info,
            format!(
                "drpilot: recovered: {} back within RPO ({rp}, budget {budget})",
                spec.name
            ),
            format!(
                "{} ({}) is healthy again: it was {} from {} to {} ({}).",
                spec.name,
                spec.kind(),
                from.as_str(),
                stamp(*since),
                stamp(now),
                human_seconds((now - *since).num_seconds().max(0) as f64)
            ),
        ),
    };
    let body = format!(
        "{opening}\nMeasured at {}: {}.\nWhat to do: {}\n",
        stamp(now),
        m.detail,
        advice(spec, cfg, alert)
    );
    Notice::new(severity, subject, body)
        .with_attribute("resource", spec.name.clone())
        .with_attribute("status", m.status.as_str())
        .with_attribute("kind", "rpo")
}

/// One check of every resource. Never raises: what failed is in `errors` and as `unknown`.
pub async fn run<M, R, D, B, S, N>(ports: &LagPorts<M, R, D, B, S, N>, cfg: &LagConfig, now: DateTime<Utc>) -> LagReport
where
    M: Metrics,
    R: ReplicaView,
    D: DrSnapshotStore,
    B: BucketListing,
    S: StateStore,
    N: Notifier,
{
    let mut report = LagReport {
        checked_at: stamp(now),
        source_region: cfg.source_region.clone(),
        dr_region: cfg.dr_region.clone(),
        resources: vec![],
        notices: vec![],
        errors: vec![],
    };
    let mut listings = Listings::default();
    let mut measured = Vec::new();
    for spec in &cfg.resources {
        let m = measure(ports, cfg, spec, &mut listings, now).await;
        if m.status == Status::Unknown {
            warn!(resource = %spec.name, detail = %m.detail, "could not measure");
            report.errors.push(format!("{}: {}", spec.name, m.detail));
        }
        measured.push(m);
    }

    let values: Vec<MetricValue> = cfg
        .resources
        .iter()
        .zip(&measured)
        .flat_map(|(spec, m)| metric_values(spec, m, now))
        .collect();
    if let Err(e) = ports.dr_metrics.publish(&cfg.namespace, &values).await {
        report.errors.push(format!("cannot publish metrics: {e}"));
    }

    // Transitions, claimed with a compare-and-swap on the state object before any notice.
    let record = Record::new(&ports.state, cfg.state.key(STATE_OBJECT));
    let (mut state, mut etag) = match record.read::<LagState>().await {
        Ok(Loaded::Found { value, etag }) => (value, Some(etag)),
        Ok(Loaded::Unreadable { error, etag }) => {
            warn!(%error, "unreadable lag state: starting afresh");
            (LagState::default(), Some(etag))
        }
        Ok(Loaded::Absent) => (LagState::default(), None),
        Err(e) => {
            report.errors.push(format!(
                "cannot read alert state s3://{}/{}: {e}",
                cfg.state.bucket, record.key
            ));
            report.resources = reports(cfg, &measured, &LagState::default());
            return report;
        }
    };
    let mut next = LagState::default();
    let mut alerts = Vec::new();
    for (spec, m) in cfg.resources.iter().zip(&measured) {
        let (tracked, alert) = track(state.resources.get(&spec.name), m, now);
        if let Some(t) = tracked {
            if let Some(a) = alert {
                alerts.push((spec, m, t.clone(), a));
            }
            next.resources.insert(spec.name.clone(), t);
        }
    }
    let changed = next != state || etag.is_none();
    if changed {
        match record.write(&next, etag.as_deref()).await {
            Ok(Some(new_etag)) => etag = Some(new_etag),
            Ok(None) => {
                info!("a concurrent run recorded these transitions first; it sends the notices");
                alerts.clear();
            }
            Err(e) => {
                report.errors.push(format!("cannot write alert state: {e}"));
                alerts.clear();
            }
        }
    }
    let mut sent_any = false;
    for (spec, m, tracked, alert) in &alerts {
        let notice = notice_for(spec, m, tracked, alert, cfg, now);
        match ports.notifier.notify(&notice).await {
            Ok(()) => {
                info!(resource = %spec.name, subject = %notice.subject, "notified");
                report.notices.push(notice.subject.clone());
                if let Some(t) = next.resources.get_mut(&spec.name) {
                    t.notice_pending = false;
                    t.claimed_at = None;
                    sent_any = true;
                }
            }
            Err(e) => report
                .errors
                .push(format!("notice for {} not sent (retried next run): {e}", spec.name)),
        }
    }
    if sent_any {
        if let Err(e) = record.write(&next, etag.as_deref()).await {
            report.errors.push(format!("cannot record sent notices: {e}"));
        }
    }
    state = next;
    report.resources = reports(cfg, &measured, &state);
    report
}

fn reports(cfg: &LagConfig, measured: &[Measurement], state: &LagState) -> Vec<ResourceReport> {
    cfg.resources
        .iter()
        .zip(measured)
        .map(|(spec, m)| ResourceReport {
            name: spec.name.clone(),
            kind: spec.kind().into(),
            status: m.status,
            recovery_point_seconds: m.recovery_point_seconds,
            rpo_seconds: spec.rpo_seconds,
            detail: m.detail.clone(),
            since: state
                .resources
                .get(&spec.name)
                .filter(|t| t.status == m.status)
                .map(|t| stamp(t.since)),
        })
        .collect()
}

/// The function's handler.
pub async fn handle<M, R, D, B, S, N>(
    ports: &LagPorts<M, R, D, B, S, N>,
    cfg: &LagConfig,
    event: LagEvent,
    now: DateTime<Utc>,
) -> Result<Value>
where
    M: Metrics,
    R: ReplicaView,
    D: DrSnapshotStore,
    B: BucketListing,
    S: StateStore,
    N: Notifier,
{
    info!(?event, "lag check");
    let report = run(ports, cfg, now).await;
    if !report.errors.is_empty() {
        return Err(Error::RunFailed(format!(
            "lag check incomplete: {}",
            report.errors.join("; ")
        )));
    }
    serde_json::to_value(&report).map_err(|e| Error::RunFailed(format!("cannot encode the report: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_event_decodes_to_the_decision_it_documents() {
        let decoded: Vec<(String, LagEvent)> = crate::events::samples("lag-checker")
            .into_iter()
            .map(|(f, e)| (f, LagEvent::decode(e).unwrap()))
            .collect();
        assert_eq!(
            decoded,
            [
                ("operator-check.json".to_string(), LagEvent::Operator),
                ("schedule.json".to_string(), LagEvent::Schedule)
            ]
        );
    }

    #[test]
    fn rejects_the_rest() {
        let rds = crate::events::samples("snapshot-copier").remove(1).1;
        for bad in [
            serde_json::json!(null),
            serde_json::json!({"action": "promote"}),
            serde_json::json!({"action": "check", "resource": "orders"}),
            rds,
        ] {
            assert!(
                matches!(LagEvent::decode(bad.clone()), Err(Error::BadEvent(_))),
                "{bad}"
            );
        }
    }
}
