//! The lag checker over real SDK clients with `aws-smithy-mocks`: a throttled metrics call
//! and a replica in `error` — things moto cannot be made to do.

use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataOutput;
use aws_sdk_cloudwatch::types::MetricDataResult;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::types::{DbInstance, DbInstanceStatusInfo};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_types::retry::RetryConfig;
use drpilot::aws::cloudwatch::CloudWatchMetrics;
use drpilot::aws::rds::RdsReplicas;
use drpilot::config::LagConfig;
use drpilot::lagcheck::{run, LagPorts};
use drpilot::model::Snapshot;
use drpilot::notice::Notice;
use drpilot::plan::copy::CopyRequest;
use drpilot::ports::{BucketListing, CopyStarted, DrSnapshotStore, Notifier, ObjectInfo, Saved, StateStore, Versioned};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
struct Memory {
    notices: Mutex<Vec<Notice>>,
    objects: Mutex<HashMap<String, Versioned>>,
}

impl Notifier for Memory {
    async fn notify(&self, notice: &Notice) -> drpilot::Result<()> {
        self.notices.lock().unwrap().push(notice.clone());
        Ok(())
    }
}

impl StateStore for Memory {
    async fn load(&self, key: &str) -> drpilot::Result<Option<Versioned>> {
        Ok(self.objects.lock().unwrap().get(key).cloned())
    }
    async fn save(&self, key: &str, body: &[u8], expected: Option<&str>) -> drpilot::Result<Saved> {
        let mut objects = self.objects.lock().unwrap();
        if objects.get(key).map(|v| v.etag.as_str()) != expected {
            return Ok(Saved::Conflict);
        }
        let etag = format!("\"{}\"", objects.len() + body.len());
        objects.insert(
            key.into(),
            Versioned {
                body: body.to_vec(),
                etag: etag.clone(),
            },
        );
        Ok(Saved::Written { etag })
    }
}

/// Not used by these resources: no call may reach it.
struct Unused;
impl DrSnapshotStore for Unused {
    async fn copies(&self) -> drpilot::Result<Vec<Snapshot>> {
        unreachable!()
    }
    async fn copies_of(&self, _: &drpilot::model::ProtectedDb) -> drpilot::Result<Vec<Snapshot>> {
        unreachable!()
    }
    async fn start_copy(&self, _: &CopyRequest) -> drpilot::Result<CopyStarted> {
        unreachable!()
    }
    async fn delete_copy(&self, _: &Snapshot) -> drpilot::Result<()> {
        unreachable!()
    }
}
impl BucketListing for Unused {
    async fn list(&self, _: &str, _: &str) -> drpilot::Result<Vec<ObjectInfo>> {
        unreachable!()
    }
}

fn cfg() -> LagConfig {
    LagConfig::from_vars(&HashMap::from([
        ("DRPILOT_SOURCE_REGION", "us-east-1"),
        ("DRPILOT_DR_REGION", "us-west-2"),
        ("DRPILOT_STATE_BUCKET", "drpilot-state"),
        ("DRPILOT_NOTIFY_TOPIC_ARN", "arn:aws:sns:us-west-2:123456789012:drpilot"),
        (
            "DRPILOT_RESOURCES",
            r#"[{"name": "orders", "kind": "rds-replica", "replica": "orders-dr", "rpo_seconds": 60},
                {"name": "billing", "kind": "rds-replica", "replica": "billing-dr", "rpo_seconds": 60}]"#,
        ),
    ]))
    .unwrap()
}

fn replica(id: &str, replication: &str) -> DbInstance {
    DbInstance::builder()
        .db_instance_identifier(id)
        .db_instance_status("available")
        .read_replica_source_db_instance_identifier(format!(
            "arn:aws:rds:us-east-1:123456789012:db:{}",
            id.trim_end_matches("-dr")
        ))
        .status_infos(
            DbInstanceStatusInfo::builder()
                .status_type("read replication")
                .status(replication)
                .normal(replication == "replicating")
                .message("Replication has stopped because of error 1062")
                .build(),
        )
        .build()
}

fn far() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(60)
}

fn ports(
    rds: aws_sdk_rds::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
) -> LagPorts<CloudWatchMetrics, RdsReplicas, Unused, Unused, Memory, Memory> {
    LagPorts {
        dr_metrics: CloudWatchMetrics::with_client(cloudwatch),
        replicas: RdsReplicas::new(rds),
        copies: Unused,
        source_buckets: Unused,
        dr_buckets: Unused,
        state: Memory::default(),
        notifier: Memory::default(),
    }
}

#[tokio::test]
async fn throttled_metrics_leave_a_replicating_replica_unknown_and_an_error_replica_is_broken() {
    // One listing of the region's instances, not one call per replica.
    let describe = mock!(aws_sdk_rds::Client::describe_db_instances)
        .match_requests(|r| r.db_instance_identifier().is_none())
        .then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(replica("orders-dr", "replicating"))
                .db_instances(replica("billing-dr", "error"))
                .build()
        });
    let throttled = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .sequence()
        .http_status(400, Some(r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"#.into()))
        .times(3)
        .build();
    let put = mock!(aws_sdk_cloudwatch::Client::put_metric_data).then_output(|| PutMetricDataOutput::builder().build());
    let rds = mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&describe]);
    let cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&throttled, &put], |c| c
        .retry_config(RetryConfig::standard().with_max_attempts(3)));

    let ports = ports(rds, cloudwatch);
    let report = run(&ports, &cfg(), chrono::Utc::now(), far()).await;
    let orders = report.resources.iter().find(|r| r.name == "orders").unwrap();
    assert_eq!(
        orders.status.as_str(),
        "unknown",
        "throttled past the retries: {orders:?}"
    );
    assert!(orders.detail.contains("Throttling"), "{}", orders.detail);
    let billing = report.resources.iter().find(|r| r.name == "billing").unwrap();
    assert_eq!(billing.status.as_str(), "broken", "RDS's own word needs no metric");
    assert!(
        billing.detail.contains("replication status is error"),
        "{}",
        billing.detail
    );
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert_eq!(describe.num_calls(), 1);
    assert_eq!(
        throttled.num_calls(),
        3,
        "one call for both replicas, tried three times"
    );
    assert_eq!(
        put.num_calls(),
        1,
        "billing's verdict and the run's count of the unmeasured, in one call"
    );
    let notices = ports.notifier.notices.lock().unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].subject, "drpilot: replication BROKEN: billing");
}

/// 600 lag metrics: two GetMetricData calls (500 + 100); the first answer comes in two pages
/// (NextToken); CloudWatch could not serve one query, and left another out: only those fail.
#[tokio::test]
async fn newest_each_asks_500_metrics_a_call_follows_next_token_and_keeps_per_query_failures() {
    use aws_sdk_cloudwatch::types::{MessageData, StatusCode};

    use drpilot::ports::{MetricId, Metrics};
    fn result(id: &str, secs: &[i64], value: f64) -> MetricDataResult {
        let at = |s: i64| aws_smithy_types::DateTime::from_secs(1_800_000_000 + s);
        MetricDataResult::builder()
            .id(id)
            .set_timestamps(Some(secs.iter().map(|s| at(*s)).collect()))
            .set_values(Some(secs.iter().map(|_| value).collect()))
            .status_code(aws_sdk_cloudwatch::types::StatusCode::Complete)
            .build()
    }
    // CloudWatch answers every query of a call, with no values where it has none.
    fn every(n: usize, except: &[&str]) -> Vec<MetricDataResult> {
        (0..n)
            .map(|i| format!("m{i}"))
            .filter(|id| !except.contains(&id.as_str()))
            .map(|id| result(&id, &[], 0.0))
            .collect()
    }
    let first = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.metric_data_queries().len() == 500 && r.next_token().is_none())
        .then_output(|| {
            GetMetricDataOutput::builder()
                .set_metric_data_results(Some(every(500, &["m0"])))
                .metric_data_results(result("m0", &[60], 1.0))
                .next_token("page-2")
                .build()
        });
    let second_page = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.metric_data_queries().len() == 500 && r.next_token() == Some("page-2"))
        .then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(result("m0", &[120], 2.0))
                .metric_data_results(result("m499", &[0], 3.0))
                .build()
        });
    // The last call leaves out m99 altogether: not "no datapoint", an error.
    let rest = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.metric_data_queries().len() == 100)
        .then_output(|| {
            GetMetricDataOutput::builder()
                .set_metric_data_results(Some(every(100, &["m1", "m99"])))
                .metric_data_results(
                    MetricDataResult::builder()
                        .id("m1")
                        .status_code(StatusCode::Forbidden)
                        .messages(MessageData::builder().code("Forbidden").value("not allowed").build())
                        .build(),
                )
                .build()
        });
    let cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&first, &second_page, &rest]);
    let metrics: Vec<MetricId> = (0..600)
        .map(|i| MetricId::new("AWS/RDS", "ReplicaLag", &[("DBInstanceIdentifier", &format!("db-{i}"))]))
        .collect();
    let now = chrono::Utc::now();
    let newest = CloudWatchMetrics::with_client(cloudwatch)
        .newest_each(&metrics, 60, now - chrono::Duration::hours(1), now)
        .await
        .unwrap();
    assert_eq!(newest.len(), 600);
    let value = |i: usize| newest[i].as_ref().unwrap().map(|p| p.value);
    assert_eq!(value(0), Some(2.0), "the newest of both pages");
    assert_eq!(value(499), Some(3.0));
    assert_eq!(value(1), None, "no datapoint");
    let forbidden = newest[501].as_ref().unwrap_err().to_string();
    assert!(forbidden.contains("Forbidden: not allowed"), "{forbidden}");
    assert!(newest[500].as_ref().unwrap().is_none());
    let unanswered = newest[599].as_ref().unwrap_err().to_string();
    assert!(unanswered.contains("NoResult"), "{unanswered}");
    assert_eq!(
        (first.num_calls(), second_page.num_calls(), rest.num_calls()),
        (1, 1, 1)
    );
}

/// The status page's sparkline: every datapoint of a metric, oldest first, across pages
/// (CloudWatch answers newest first with `TimestampDescending`).
#[tokio::test]
async fn series_each_returns_every_datapoint_oldest_first_across_pages() {
    use drpilot::ports::{MetricId, Metrics};
    let at = |s: i64| aws_smithy_types::DateTime::from_secs(1_800_000_000 + s);
    let page = move |secs: &[i64], values: &[f64], next: Option<&str>| {
        GetMetricDataOutput::builder()
            .metric_data_results(
                MetricDataResult::builder()
                    .id("m0")
                    .set_timestamps(Some(secs.iter().map(|s| at(*s)).collect()))
                    .set_values(Some(values.to_vec()))
                    .build(),
            )
            .set_next_token(next.map(String::from))
            .build()
    };
    let first = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.next_token().is_none())
        .then_output(move || page(&[600, 300], &[40.0, 30.0], Some("more")));
    let second = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.next_token() == Some("more"))
        .then_output(move || page(&[0], &[20.0], None));
    let cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&first, &second]);
    let metric = MetricId::new("drpilot", "RecoveryPointSeconds", &[("Resource", "orders")]);
    let now = chrono::Utc::now();
    let series = CloudWatchMetrics::with_client(cloudwatch)
        .series_each(&[metric], 300, now - chrono::Duration::hours(24), now)
        .await
        .unwrap();
    let points: Vec<(i64, f64)> = series[0]
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| (p.at.timestamp() - 1_800_000_000, p.value))
        .collect();
    assert_eq!(points, vec![(0, 20.0), (300, 30.0), (600, 40.0)]);
}
