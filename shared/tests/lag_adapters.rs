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

#[tokio::test]
async fn throttled_metrics_make_one_resource_unknown_and_an_error_replica_is_broken() {
    let describe = mock!(aws_sdk_rds::Client::describe_db_instances).then_compute_output(|r| {
        let id = r.db_instance_identifier().unwrap();
        let state = if id == "billing-dr" { "error" } else { "replicating" };
        DescribeDbInstancesOutput::builder()
            .db_instances(replica(id, state))
            .build()
    });
    let throttled = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .sequence()
        .http_status(400, Some(r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"#.into()))
        .times(3)
        .output(|| GetMetricDataOutput::builder().metric_data_results(MetricDataResult::builder().id("newest").build()).build())
        .build();
    let put = mock!(aws_sdk_cloudwatch::Client::put_metric_data).then_output(|| PutMetricDataOutput::builder().build());
    let rds = mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&describe]);
    let cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&throttled, &put], |c| c
        .retry_config(RetryConfig::standard().with_max_attempts(3)));

    let ports = LagPorts {
        dr_metrics: CloudWatchMetrics::with_client(cloudwatch),
        replicas: RdsReplicas::new(rds),
        copies: Unused,
        source_buckets: Unused,
        dr_buckets: Unused,
        state: Memory::default(),
        notifier: Memory::default(),
    };
    let report = run(&ports, &cfg(), chrono::Utc::now()).await;
    let orders = report.resources.iter().find(|r| r.name == "orders").unwrap();
    assert_eq!(
        orders.status.as_str(),
        "unknown",
        "throttled past the retries: {orders:?}"
    );
    assert!(orders.detail.contains("Throttling"), "{}", orders.detail);
    let billing = report.resources.iter().find(|r| r.name == "billing").unwrap();
    assert_eq!(billing.status.as_str(), "broken");
    assert!(
        billing.detail.contains("replication status is error"),
        "{}",
        billing.detail
    );
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert_eq!(
        throttled.num_calls(),
        4,
        "three throttled tries for orders, then billing's call"
    );
    assert_eq!(put.num_calls(), 1, "the others are still published");
    let notices = ports.notifier.notices.lock().unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].subject, "drpilot: replication BROKEN: billing");
}
