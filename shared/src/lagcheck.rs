//! The lag checker's run: measure every protected resource, publish drpilot's metrics in the
//! DR region, and tell responders about transitions only (state kept in the DR state bucket,
//! written with compare-and-swap so concurrent runs cannot both notify).

use crate::accounts::{Accounts, ForAccounts};
use crate::config::LagConfig;
use crate::error::{Error, Result};
use crate::events::{self, Decode, Incoming};
use crate::model::Snapshot;
use crate::model::{ResourceSpec, Target};
use crate::notice::{Notice, Severity};
use crate::plan::alerting::{track, Alert, Tracked};
use crate::plan::backup::PointInTime;
use crate::plan::copy::managed_copies_of;
use crate::plan::lag::{
    classify_backlog, classify_copy_age, classify_lag, classify_point_age, human_seconds, Datapoint, LagSignal, Link,
    Measurement, Status,
};
use crate::ports::{
    BucketListing, DrSnapshotStore, MetricId, MetricUnit, MetricValue, Metrics, Notifier, ReplicaView, StateStore,
    MAX_QUERIES,
};
use crate::state::{Loaded, Record};
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use tracing::{info, warn};

/// drpilot's metrics, published in the DR region: two per resource (dimension `Resource`), and
/// one per run.
pub mod metric {
    /// Seconds of data a failover would lose now, published only for a real measurement: its
    /// last datapoint is the last *healthy-link* lag (the promoter's lag gate reads it).
    pub const RECOVERY_POINT: &str = "RecoveryPointSeconds";
    /// The verdict on a resource drpilot could look at (`status_value`: 0 healthy, 1 breached,
    /// 2 broken): the primary-down alarm fires at >= 2, the RPO alarm at >= 1. Nothing is
    /// published for a resource drpilot could not look at, and those alarms keep their state
    /// through missing data: an unknown neither fires them nor clears them.
    pub const STATUS: &str = "RpoStatus";
    /// Every run, no dimension: how many resources it could not measure. Its own alarms tell
    /// responders that drpilot is partly blind (>= 1) or not running at all (missing).
    pub const UNMEASURED: &str = "UnmeasuredResources";
    pub const DIMENSION: &str = "Resource";
}

/// `RpoStatus`'s value for a verdict; `None` for unknown, which is not published.
pub fn status_value(status: Status) -> Option<f64> {
    match status {
        Status::Unknown => None,
        Status::Healthy => Some(0.0),
        Status::Breached => Some(1.0),
        Status::Broken => Some(2.0),
    }
}

/// The verdict an `RpoStatus` value stands for (`None`: not one drpilot publishes).
pub fn status_of(value: f64) -> Option<Status> {
    [Status::Healthy, Status::Breached, Status::Broken]
        .into_iter()
        .find(|s| status_value(*s) == Some(value))
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
        Self::aws_in(sdk, sdk, cfg)
    }

    /// One account's adapters: what it measures there (`account`: the function's own or a
    /// member's role: its replicas, their AWS/RDS metrics, copies and buckets), and the hub's
    /// state and notices. drpilot's own metrics are always published by the own account's.
    pub fn aws_in(account: &aws_config::SdkConfig, sdk: &aws_config::SdkConfig, cfg: &LagConfig) -> Self {
        use crate::aws::{cloudwatch, rds, s3, sns};
        let s3_in = |sdk, region: &str| s3::client_in(sdk, region, cfg.s3_force_path_style);
        LagPorts {
            dr_metrics: cloudwatch::CloudWatchMetrics::new(account, &cfg.dr_region),
            replicas: rds::RdsReplicas::new(rds::client_in(account, &cfg.dr_region)),
            copies: rds::RdsDr::new(rds::client_in(account, &cfg.dr_region)),
            source_buckets: s3::S3Buckets::new(s3_in(account, &cfg.source_region)),
            dr_buckets: s3::S3Buckets::new(s3_in(account, &cfg.dr_region)),
            state: s3::S3State::new(s3_in(sdk, &cfg.dr_region), &cfg.state.bucket),
            notifier: sns::SnsNotifier::new(sdk, &cfg.notify_topic_arn, "drpilot.lag-checker"),
        }
    }

    /// The function's own account's adapters and each member account's.
    pub fn accounts(sdk: &aws_config::SdkConfig, cfg: &LagConfig) -> Accounts<Self> {
        Accounts::build(sdk, &cfg.accounts, "drpilot-lag-checker", |account, hub, _| {
            Self::aws_in(account, hub, cfg)
        })
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
    /// The member account it is in (`None`: the function's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
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

/// A resource's lag metric, as RDS publishes it in the DR region.
struct LagMetric {
    id: MetricId,
    name: &'static str,
    /// Multiply by this to get seconds.
    to_seconds: f64,
}

/// The lag metrics read for a resource, in order of preference: Aurora's RPO lag (Aurora
/// PostgreSQL) is the recovery point itself; replication lag is the closest measure where RPO
/// lag is not reported. None for the kinds measured otherwise.
fn lag_metrics(spec: &ResourceSpec) -> Vec<LagMetric> {
    match &spec.target {
        Target::RdsReplica { replica } => vec![LagMetric {
            id: MetricId::new("AWS/RDS", "ReplicaLag", &[("DBInstanceIdentifier", replica)]),
            name: "ReplicaLag",
            to_seconds: 1.0,
        }],
        Target::AuroraGlobal { cluster } => ["AuroraGlobalDBRPOLag", "AuroraGlobalDBReplicationLag"]
            .map(|name| LagMetric {
                id: MetricId::new("AWS/RDS", name, &[("DBClusterIdentifier", cluster)]),
                name,
                to_seconds: 0.001,
            })
            .into(),
        _ => vec![],
    }
}

/// A listing the whole run shares, made once, by the first resource that needs it.
type Shared<T> = tokio::sync::OnceCell<std::result::Result<T, String>>;

/// What a run lists once for all its resources.
#[derive(Default)]
struct Listings {
    replicas: Shared<HashMap<String, Link>>,
    clusters: Shared<HashMap<String, Link>>,
    dr_copies: Shared<Vec<Snapshot>>,
}

async fn shared<T>(
    cell: &Shared<T>,
    list: impl std::future::Future<Output = Result<T>>,
) -> std::result::Result<&T, &str> {
    cell.get_or_init(|| async { list.await.map_err(|e| e.to_string()) })
        .await
        .as_ref()
        .map_err(String::as_str)
}

/// Measures the replication resources among `group` (at most `MAX_QUERIES` lag metrics): one
/// `GetMetricData` for all their metrics, and the DR region's instance or cluster listing.
async fn measure_replication<M, R, D, B, S, N>(
    ports: &LagPorts<M, R, D, B, S, N>,
    cfg: &LagConfig,
    listings: &Listings,
    group: &[usize],
    now: DateTime<Utc>,
) -> Vec<(usize, Measurement)>
where
    M: Metrics,
    R: ReplicaView,
{
    let metrics: Vec<Vec<LagMetric>> = group.iter().map(|&i| lag_metrics(&cfg.resources[i])).collect();
    let (from, to) = query_window(cfg, now);
    let period = cfg.metric_period_seconds;
    let wants = |kind: fn(&Target) -> bool| group.iter().any(|&i| kind(&cfg.resources[i].target));
    let replicas = async {
        match wants(|t| matches!(t, Target::RdsReplica { .. })) {
            true => Some(shared(&listings.replicas, ports.replicas.replica_links()).await),
            false => None,
        }
    };
    let clusters = async {
        match wants(|t| matches!(t, Target::AuroraGlobal { .. })) {
            true => Some(shared(&listings.clusters, ports.replicas.cluster_links()).await),
            false => None,
        }
    };
    // Each resource's preferred metric first; the fallbacks only for those it found nothing
    // for (Aurora MySQL reports no RPO lag): GetMetricData is billed per metric asked.
    let read = async {
        let first: Vec<MetricId> = metrics.iter().map(|m| m[0].id.clone()).collect();
        let mut points: Vec<Vec<Result<Option<Datapoint>>>> = ports
            .dr_metrics
            .newest_each(&first, period, from, to)
            .await?
            .into_iter()
            .map(|p| vec![p])
            .collect();
        let fallback: Vec<(usize, MetricId)> = points
            .iter()
            .zip(&metrics)
            .enumerate()
            .filter(|(_, (p, m))| m.len() > 1 && matches!(p[0], Ok(None)))
            .map(|(k, (_, m))| (k, m[1].id.clone()))
            .collect();
        if !fallback.is_empty() {
            let ids: Vec<MetricId> = fallback.iter().map(|(_, id)| id.clone()).collect();
            let more = ports.dr_metrics.newest_each(&ids, period, from, to).await?;
            for ((k, _), p) in fallback.into_iter().zip(more) {
                points[k].push(p);
            }
        }
        Ok::<_, Error>(points)
    };
    let (points, replicas, clusters) = futures::join!(read, replicas, clusters);
    let window = Duration::seconds(i64::from(cfg.window_seconds));
    let points = points.map_err(|e| format!("cannot read {}: {e}", lag_names(&metrics)));
    group
        .iter()
        .zip(metrics)
        .enumerate()
        .map(|(k, (&i, metrics))| {
            let spec = &cfg.resources[i];
            let (links, id, what) = match &spec.target {
                Target::RdsReplica { replica } => (&replicas, replica, "replica"),
                Target::AuroraGlobal { cluster } => (&clusters, cluster, "cluster"),
                _ => unreachable!("only replication resources have lag metrics"),
            };
            let link = match links {
                Some(Ok(links)) => match links.get(id) {
                    Some(link) => link,
                    None => {
                        // The region's own listing says so: there is no standby to fail over to.
                        let gone = format!("{what} {id} does not exist in {}: there is no standby", cfg.dr_region);
                        return (i, Measurement::broken(gone));
                    }
                },
                Some(Err(e)) => return (i, Measurement::unknown(format!("cannot read the {what}'s status: {e}"))),
                None => unreachable!("listed for every kind in the group"),
            };
            let measured = match (link, &points) {
                // RDS's own word that the link is broken needs no metric.
                (Link::Broken(why), _) => Measurement::broken(why.clone()),
                (Link::Running, Ok(points)) => classify_points(link, &metrics, &points[k], spec, window, now),
                (Link::Running, Err(why)) => Measurement::unknown(why.clone()),
            };
            (i, measured)
        })
        .collect()
}

fn lag_names(metrics: &[Vec<LagMetric>]) -> String {
    let names: std::collections::BTreeSet<&str> = metrics.iter().flatten().map(|m| m.name).collect();
    names.into_iter().collect::<Vec<_>>().join(" and ")
}

/// The verdict from the first of a resource's lag metrics that has a datapoint.
fn classify_points(
    link: &Link,
    metrics: &[LagMetric],
    points: &[Result<Option<Datapoint>>],
    spec: &ResourceSpec,
    window: Duration,
    now: DateTime<Utc>,
) -> Measurement {
    let mut signal = LagSignal {
        metric: metrics[0].name,
        newest: None,
        to_seconds: metrics[0].to_seconds,
    };
    for (metric, point) in metrics.iter().zip(points) {
        match point {
            Ok(Some(p)) => {
                signal = LagSignal {
                    metric: metric.name,
                    newest: Some(*p),
                    to_seconds: metric.to_seconds,
                };
                break;
            }
            Ok(None) => {}
            Err(e) => return Measurement::unknown(format!("cannot read {}: {e}", metric.name)),
        }
    }
    classify_lag(link, &signal, spec.rpo_seconds, window, now)
}

/// Measures one resource of the kinds that are not replication links.
async fn measure_other<M, R, D, B, S, N>(
    ports: &LagPorts<M, R, D, B, S, N>,
    cfg: &LagConfig,
    listings: &Listings,
    spec: &ResourceSpec,
    now: DateTime<Utc>,
) -> Measurement
where
    D: DrSnapshotStore,
    B: BucketListing,
    S: StateStore,
{
    let unknown = |what: &str, e: Error| Measurement::unknown(format!("cannot read {what}: {e}"));
    match &spec.target {
        Target::RdsReplica { .. } | Target::AuroraGlobal { .. } => {
            unreachable!("replication resources are measured in batches")
        }
        Target::SnapshotCopies { db } => match shared(&listings.dr_copies, ports.copies.copies()).await {
            Ok(copies) => {
                let newest = managed_copies_of(copies, db, &cfg.source_region, &cfg.deployment)
                    .filter(|c| c.is_available())
                    .filter_map(Snapshot::source_time)
                    .max();
                classify_copy_age(newest, spec.rpo_seconds, now)
            }
            Err(e) => Measurement::unknown(format!("cannot list DR snapshots: {e}")),
        },
        Target::S3Backup {
            source_bucket,
            dr_bucket,
            prefix,
        } => {
            let (source, dr) = futures::join!(
                ports.source_buckets.list(source_bucket, prefix),
                ports.dr_buckets.list(dr_bucket, prefix)
            );
            let source = match source {
                Ok(s) => s,
                Err(e) => return unknown(&format!("bucket {source_bucket}"), e),
            };
            let dr: HashMap<String, (i64, Option<DateTime<Utc>>)> = match dr {
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
                Ok(state) => classify_point_age(
                    state.points.last().map(PointInTime::recovery_point),
                    spec.rpo_seconds,
                    now,
                ),
                Err(e) => unknown(&format!("backup {backup}'s state"), e),
            }
        }
    }
}

/// Groups of resources measured together: replication resources of one kind and one account in
/// batches of at most `MAX_QUERIES` lag metrics (one `GetMetricData` and the kind's listing each, so a
/// listing that fails or is slow holds back no other kind), every other resource on its own.
fn groups(cfg: &LagConfig) -> Vec<Vec<usize>> {
    let mut batches: Vec<Vec<usize>> = vec![];
    let mut others = vec![];
    let mut accounts: Vec<Option<&str>> = cfg.resources.iter().map(|r| r.account.as_deref()).collect();
    accounts.sort();
    accounts.dedup();
    for (account, kind) in accounts
        .iter()
        .flat_map(|a| ["rds-replica", "aurora-global"].map(|kind| (*a, kind)))
    {
        let mut queries = MAX_QUERIES;
        for (i, spec) in cfg
            .resources
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind() == kind && s.account.as_deref() == account)
        {
            let n = lag_metrics(spec).len();
            if queries + n > MAX_QUERIES {
                batches.push(vec![]);
                queries = 0;
            }
            queries += n;
            batches.last_mut().expect("just pushed").push(i);
        }
    }
    for (i, spec) in cfg.resources.iter().enumerate() {
        if lag_metrics(spec).is_empty() {
            others.push(vec![i]);
        }
    }
    batches.extend(others);
    batches
}

/// Groups measured at once (a group listing a bucket pair holds both listings in memory).
const GROUPS_AT_ONCE: usize = 4;

/// `PutMetricData` takes up to 1,000 values a call: measured values are published as soon as
/// a call's worth is ready, and the rest when measuring ends.
const VALUES_PER_PUBLISH: usize = 1000;

/// Measures every resource, publishing the values as they are measured. At `deadline`, what is
/// not measured yet is `unknown`. Values a publish failed to deliver are tried once more at
/// the end, with the run's `UnmeasuredResources`.
async fn measure_all<A, M, R, D, B, S, N>(
    accounts: &A,
    cfg: &LagConfig,
    now: DateTime<Utc>,
    deadline: tokio::time::Instant,
    errors: &mut Vec<String>,
) -> Vec<Measurement>
where
    A: ForAccounts<LagPorts<M, R, D, B, S, N>>,
    M: Metrics,
    R: ReplicaView,
    D: DrSnapshotStore,
    B: BucketListing,
    S: StateStore,
{
    // Each account's region-wide listings, shared by its groups.
    let listings: HashMap<Option<&str>, Listings> = cfg
        .resources
        .iter()
        .map(|r| (r.account.as_deref(), Listings::default()))
        .collect();
    let mut measured: Vec<Option<Measurement>> = vec![None; cfg.resources.len()];
    let mut pending: Vec<MetricValue> = vec![];
    let mut undelivered: Vec<MetricValue> = vec![];
    let mut publish_errors: Vec<String> = vec![];
    let mut stream = futures::stream::iter(groups(cfg))
        .map(|group| {
            let first = &cfg.resources[group[0]];
            let listings = &listings[&first.account.as_deref()];
            async move {
                let (ports, access) = accounts.ports_for(first.account.as_deref());
                if let Err(e) = access.check().await {
                    // An account drpilot cannot get into: its resources are unknown, not silent.
                    return group
                        .iter()
                        .map(|&i| (i, Measurement::unknown(e.to_string())))
                        .collect();
                }
                match lag_metrics(first).is_empty() {
                    true => vec![(
                        group[0],
                        measure_other(ports, cfg, listings, &cfg.resources[group[0]], now).await,
                    )],
                    false => measure_replication(ports, cfg, listings, &group, now).await,
                }
            }
        })
        .buffer_unordered(GROUPS_AT_ONCE);
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(group)) => {
                for (i, m) in group {
                    pending.extend(metric_values(&cfg.resources[i], &m, now));
                    measured[i] = Some(m);
                }
                while pending.len() >= VALUES_PER_PUBLISH {
                    let batch: Vec<MetricValue> = pending.drain(..VALUES_PER_PUBLISH).collect();
                    if let Err(e) = accounts.own_ports().dr_metrics.publish(&cfg.namespace, &batch).await {
                        publish_errors.push(e.to_string());
                        undelivered.extend(batch);
                    }
                }
            }
            Ok(None) => break,
            Err(_) => {
                warn!("deadline reached: what is not measured yet is unknown");
                break;
            }
        }
    }
    drop(stream);
    let measured: Vec<Measurement> = measured
        .into_iter()
        .map(|m| {
            m.unwrap_or_else(|| {
                Measurement::unknown("not measured before this run's deadline; the next run measures again")
            })
        })
        .collect();
    let unmeasured = measured.iter().filter(|m| m.status == Status::Unknown).count();
    // The run's count first: the alarms that watch the lag checker itself read it.
    undelivered.insert(
        0,
        MetricValue {
            name: metric::UNMEASURED.into(),
            dimensions: vec![],
            value: unmeasured as f64,
            unit: MetricUnit::Count,
            at: now,
        },
    );
    undelivered.append(&mut pending);
    // The adapter sends 1,000 values a call.
    if let Err(e) = accounts
        .own_ports()
        .dr_metrics
        .publish(&cfg.namespace, &undelivered)
        .await
    {
        publish_errors.push(e.to_string());
        errors.push(format!("cannot publish metrics: {}", publish_errors.join("; ")));
    }
    measured
}

/// A resource's values: its verdict, unless unknown, and its recovery point when measured.
fn metric_values(spec: &ResourceSpec, m: &Measurement, now: DateTime<Utc>) -> Vec<MetricValue> {
    let value = |name: &str, value: f64, unit| MetricValue {
        name: name.into(),
        dimensions: vec![(metric::DIMENSION.into(), spec.name.clone())],
        value,
        unit,
        at: now,
    };
    let mut out: Vec<MetricValue> = status_value(m.status)
        .map(|v| value(metric::STATUS, v, MetricUnit::None))
        .into_iter()
        .collect();
    if let Some(rp) = m.recovery_point_seconds {
        out.push(value(metric::RECOVERY_POINT, rp, MetricUnit::Seconds));
    }
    out
}

use crate::model::stamp;

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

/// Notices sent at once.
const NOTICES_AT_ONCE: usize = 10;

/// One check of every resource, measuring until `deadline`. Never raises: what failed is in
/// `errors` and as `unknown`.
pub async fn run<A, M, R, D, B, S, N>(
    accounts: &A,
    cfg: &LagConfig,
    now: DateTime<Utc>,
    deadline: tokio::time::Instant,
) -> LagReport
where
    A: ForAccounts<LagPorts<M, R, D, B, S, N>>,
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
    let measured = measure_all(accounts, cfg, now, deadline, &mut report.errors).await;
    let ports = accounts.own_ports();
    for (spec, m) in cfg.resources.iter().zip(&measured) {
        if m.status == Status::Unknown {
            warn!(resource = %spec.name, detail = %m.detail, "could not measure");
            report.errors.push(format!("{}: {}", spec.name, m.detail));
        }
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
    // Concurrently: a region's outage breaks every replica at once, and every notice must go
    // out within the run.
    let sends: Vec<_> = alerts
        .iter()
        .map(|(spec, m, tracked, alert)| {
            let notice = notice_for(spec, m, tracked, alert, cfg, now);
            async move {
                let result = ports.notifier.notify(&notice).await;
                (*spec, notice, result)
            }
        })
        .collect();
    let sent: Vec<(&ResourceSpec, Notice, Result<()>)> =
        futures::stream::iter(sends).buffered(NOTICES_AT_ONCE).collect().await;
    for (spec, notice, result) in sent {
        match result {
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
            account: spec.account.clone(),
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
pub async fn handle<A, M, R, D, B, S, N>(
    accounts: &A,
    cfg: &LagConfig,
    event: LagEvent,
    now: DateTime<Utc>,
    deadline: tokio::time::Instant,
) -> Result<Value>
where
    A: ForAccounts<LagPorts<M, R, D, B, S, N>>,
    M: Metrics,
    R: ReplicaView,
    D: DrSnapshotStore,
    B: BucketListing,
    S: StateStore,
    N: Notifier,
{
    info!(?event, "lag check");
    let report = run(accounts, cfg, now, deadline).await;
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
    fn replication_resources_are_measured_500_lag_metrics_a_batch_one_kind_at_a_time() {
        let mut resources: Vec<Value> = (0..1100)
            .map(|i| serde_json::json!({"name": format!("db{i}"), "kind": "rds-replica", "replica": format!("db{i}-dr"), "rpo_seconds": 60}))
            .collect();
        resources.insert(
            3,
            serde_json::json!({"name": "ledger", "kind": "aurora-global", "cluster": "ledger-dr", "rpo_seconds": 60}),
        );
        resources.push(
            serde_json::json!({"name": "orders-copies", "kind": "snapshot", "db": "orders", "rpo_seconds": 86400}),
        );
        let resources = Value::from(resources).to_string();
        let cfg = LagConfig::from_vars(&HashMap::from([
            ("DRPILOT_SOURCE_REGION", "us-east-1"),
            ("DRPILOT_DR_REGION", "us-west-2"),
            ("DRPILOT_RESOURCES", resources.as_str()),
            ("DRPILOT_STATE_BUCKET", "state"),
            ("DRPILOT_NOTIFY_TOPIC_ARN", "arn:aws:sns:us-west-2:123456789012:drpilot"),
        ]))
        .unwrap();
        let sizes: Vec<(usize, &str)> = groups(&cfg)
            .iter()
            .map(|g| (g.len(), cfg.resources[g[0]].kind()))
            .collect();
        assert_eq!(
            sizes,
            [
                (500, "rds-replica"),
                (500, "rds-replica"),
                (100, "rds-replica"),
                (1, "aurora-global"),
                (1, "snapshot")
            ]
        );
        let all: std::collections::BTreeSet<usize> = groups(&cfg).into_iter().flatten().collect();
        assert_eq!(all.len(), cfg.resources.len(), "every resource once");
    }

    #[test]
    fn rpo_status_values_round_trip_and_unknown_is_not_published() {
        for s in [Status::Healthy, Status::Breached, Status::Broken] {
            assert_eq!(status_value(s).and_then(status_of), Some(s));
        }
        assert_eq!(status_value(Status::Unknown), None);
        assert_eq!(status_of(-1.0), None);
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
