//! The copier's run over the real SDK client with `aws-smithy-mocks`: faults the emulator
//! cannot produce on demand (throttling, a copy failing for one DB, copies in progress).

use aws_sdk_rds::operation::copy_db_snapshot::CopyDbSnapshotOutput;
use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::types::{DbInstance, DbSnapshot, Tag};
use aws_sdk_rds::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::retry::RetryConfig;
use drpilot::aws::rds::{RdsDr, RdsSource};
use drpilot::config::CopierConfig;
use drpilot::copier::{handle, CopierEvent, CopierPorts};
use drpilot::notice::Notice;
use drpilot::ports::Notifier;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
struct RecordingNotifier(Mutex<Vec<Notice>>);

impl Notifier for RecordingNotifier {
    async fn notify(&self, notice: &Notice) -> drpilot::Result<()> {
        self.0.lock().unwrap().push(notice.clone());
        Ok(())
    }
}

fn query_error(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
    )
}

fn cfg(instances: &str) -> CopierConfig {
    CopierConfig::from_vars(&HashMap::from([
        ("DRPILOT_SOURCE_REGION", "us-east-1"),
        ("DRPILOT_DR_REGION", "us-west-2"),
        ("DRPILOT_DB_INSTANCES", instances),
        ("DRPILOT_DR_KMS_KEY_ID", "arn:aws:kms:us-west-2:123456789012:key/dr"),
        ("DRPILOT_NOTIFY_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:drpilot"),
    ]))
    .unwrap()
}

fn instance(id: &str) -> DbInstance {
    DbInstance::builder()
        .db_instance_identifier(id)
        .db_instance_arn(format!("arn:aws:rds:us-east-1:123456789012:db:{id}"))
        .engine("postgres")
        .storage_encrypted(true)
        .build()
}

fn source_snapshot(db: &str) -> DbSnapshot {
    DbSnapshot::builder()
        .db_snapshot_identifier(format!("rds:{db}-2026-11-25-03-00"))
        .db_snapshot_arn(format!(
            "arn:aws:rds:us-east-1:123456789012:snapshot:rds:{db}-2026-11-25-03-00"
        ))
        .db_instance_identifier(db)
        .status("available")
        .snapshot_type("automated")
        .encrypted(true)
        .snapshot_create_time(aws_smithy_types::DateTime::from_secs(1_795_230_000))
        .build()
}

/// Source listing rules for instances `dbs`; `snapshots` answers the region's snapshot listing.
fn source_rules(dbs: &'static [&'static str], snapshots: Rule) -> Vec<Rule> {
    vec![
        mock!(Client::describe_db_instances).then_output(|| {
            DescribeDbInstancesOutput::builder()
                .set_db_instances(Some(dbs.iter().map(|d| instance(d)).collect()))
                .build()
        }),
        mock!(Client::describe_db_clusters).then_output(|| DescribeDbClustersOutput::builder().build()),
        snapshots,
        mock!(Client::describe_db_cluster_snapshots)
            .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build()),
    ]
}

/// The source region's snapshot listing, region-wide: one automated snapshot per database.
fn each_db_has_one_snapshot(dbs: &'static [&'static str]) -> Rule {
    mock!(Client::describe_db_snapshots)
        .match_requests(|r| r.db_instance_identifier().is_none() && r.snapshot_type().is_none())
        .then_output(move || {
            DescribeDbSnapshotsOutput::builder()
                .set_db_snapshots(Some(dbs.iter().map(|d| source_snapshot(d)).collect()))
                .build()
        })
}

fn client(rules: &[&Rule]) -> Client {
    mock_client!(aws_sdk_rds, RuleMode::MatchAny, rules, |c| c
        .retry_config(RetryConfig::standard().with_max_attempts(3)))
}

#[tokio::test]
async fn throttled_listing_is_retried_and_the_run_completes() {
    let throttled = mock!(Client::describe_db_snapshots)
        .match_requests(|r| r.db_instance_identifier().is_none() && r.snapshot_type().is_none())
        .sequence()
        .http_status(400, Some(query_error("Throttling", "Rate exceeded")))
        .output(|| {
            DescribeDbSnapshotsOutput::builder()
                .db_snapshots(source_snapshot("orders"))
                .build()
        })
        .build();
    let source_rules = source_rules(&["orders"], throttled);
    let dr_list = mock!(Client::describe_db_snapshots)
        .match_requests(|r| r.snapshot_type() == Some("manual"))
        .sequence()
        .http_status(400, Some(query_error("Throttling", "Rate exceeded")))
        .http_status(503, None)
        .output(|| DescribeDbSnapshotsOutput::builder().build())
        .build();
    let dr_cluster_list = mock!(Client::describe_db_cluster_snapshots)
        .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build());
    let copy = mock!(Client::copy_db_snapshot)
        .match_requests(|r| {
            r.source_db_snapshot_identifier()
                == Some("arn:aws:rds:us-east-1:123456789012:snapshot:rds:orders-2026-11-25-03-00")
                && r.kms_key_id() == Some("arn:aws:kms:us-west-2:123456789012:key/dr")
                && r.tags().iter().any(|t| t.key() == Some("drpilot:managed-by"))
        })
        .then_output(|| {
            CopyDbSnapshotOutput::builder()
                .db_snapshot(DbSnapshot::builder().status("pending").build())
                .build()
        });

    let source = client(&source_rules.iter().collect::<Vec<_>>());
    let dr = client(&[&dr_list, &dr_cluster_list, &copy]);
    let ports = CopierPorts {
        source: RdsSource::new(source),
        dr: RdsDr::new(dr),
        notifier: RecordingNotifier::default(),
        ledger: None,
        vault: None,
        metrics: None,
    };
    let cfg = cfg("orders");
    let response = handle(&ports, &cfg, CopierEvent::Operator, chrono::Utc::now())
        .await
        .expect("completes after retries");
    assert_eq!(response["dbs"][0]["status"], "copied", "{response:#}");
    assert_eq!(source_rules[2].num_calls(), 2, "the throttled listing was retried once");
    assert_eq!(dr_list.num_calls(), 3, "throttling and a 5xx, then success");
    assert_eq!(copy.num_calls(), 1);
    assert!(ports.notifier.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_copy_failing_for_one_db_is_reported_and_the_other_db_is_copied() {
    let snapshots = each_db_has_one_snapshot(&["orders", "billing"]);
    let source_rules = source_rules(&["orders", "billing"], snapshots);
    let dr_list = mock!(Client::describe_db_snapshots)
        .match_requests(|r| r.snapshot_type() == Some("manual"))
        .then_output(|| DescribeDbSnapshotsOutput::builder().build());
    let dr_cluster_list = mock!(Client::describe_db_cluster_snapshots)
        .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build());
    let copy_fails = mock!(Client::copy_db_snapshot)
        .match_requests(|r| r.target_db_snapshot_identifier().is_some_and(|t| t.contains("orders")))
        .sequence()
        .http_status(
            400,
            Some(query_error(
                "KMSKeyNotAccessibleFault",
                "The specified KMS key does not exist or is not accessible.",
            )),
        )
        .repeatedly()
        .build();
    let copy_ok = mock!(Client::copy_db_snapshot).then_output(|| {
        CopyDbSnapshotOutput::builder()
            .db_snapshot(DbSnapshot::builder().status("pending").build())
            .build()
    });

    let source = client(&source_rules.iter().collect::<Vec<_>>());
    let dr = client(&[&dr_list, &dr_cluster_list, &copy_fails, &copy_ok]);
    let ports = CopierPorts {
        source: RdsSource::new(source),
        dr: RdsDr::new(dr),
        notifier: RecordingNotifier::default(),
        ledger: None,
        vault: None,
        metrics: None,
    };
    let err = handle(
        &ports,
        &cfg("orders,billing"),
        CopierEvent::Operator,
        chrono::Utc::now(),
    )
    .await
    .expect_err("one failed DB fails the invocation");
    assert_eq!(err.error_type(), "drpilot.RunFailed");
    assert_eq!(copy_fails.num_calls(), 1, "a non-retryable error is not retried");
    assert_eq!(copy_ok.num_calls(), 1, "billing was still copied");
    let notices = ports.notifier.0.lock().unwrap();
    assert_eq!(notices.len(), 1);
    assert!(
        notices[0]
            .body
            .contains("FAILED instance orders: CopyDBSnapshot failed: KMSKeyNotAccessibleFault"),
        "{}",
        notices[0].body
    );
    assert!(notices[0].body.contains("1 copied"), "{}", notices[0].body);
}

#[tokio::test]
async fn copies_in_progress_in_the_dr_region_count_against_the_limit() {
    // AWS shows copies as `pending`/`copying` for minutes; the emulator never does.
    let snapshots = each_db_has_one_snapshot(&["orders"]);
    let source_rules = source_rules(&["orders"], snapshots);
    let in_flight: Vec<DbSnapshot> = (0..20)
        .map(|i| {
            DbSnapshot::builder()
                .db_snapshot_identifier(format!("someone-elses-copy-{i}"))
                .status(if i % 2 == 0 { "pending" } else { "copying" })
                .source_region("eu-west-1")
                .tag_list(Tag::builder().key("owner").value("other-team").build())
                .build()
        })
        .collect();
    let dr_list = mock!(Client::describe_db_snapshots)
        .match_requests(|r| r.snapshot_type() == Some("manual"))
        .then_output(move || {
            DescribeDbSnapshotsOutput::builder()
                .set_db_snapshots(Some(in_flight.clone()))
                .build()
        });
    let dr_cluster_list = mock!(Client::describe_db_cluster_snapshots)
        .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build());
    let copy = mock!(Client::copy_db_snapshot).then_output(|| CopyDbSnapshotOutput::builder().build());

    let source = client(&source_rules.iter().collect::<Vec<_>>());
    let dr = client(&[&dr_list, &dr_cluster_list, &copy]);
    let ports = CopierPorts {
        source: RdsSource::new(source),
        dr: RdsDr::new(dr),
        notifier: RecordingNotifier::default(),
        ledger: None,
        vault: None,
        metrics: None,
    };
    let response = handle(&ports, &cfg("orders"), CopierEvent::Operator, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(response["copies_in_flight_before"], 20);
    assert_eq!(response["dbs"][0]["status"], "queued");
    assert_eq!(copy.num_calls(), 0, "the 21st copy is never started");
}

#[tokio::test]
async fn the_adapter_refuses_to_delete_another_deployments_copy_without_calling_aws() {
    use drpilot::model::{DbKind, Snapshot};
    use drpilot::ports::DrSnapshotStore;
    let delete = mock!(Client::delete_db_snapshot)
        .then_output(|| aws_sdk_rds::operation::delete_db_snapshot::DeleteDbSnapshotOutput::builder().build());
    let dr = RdsDr::new(client(&[&delete])).for_deployment("hub");
    let copy = |deployment: Option<&str>| {
        let mut tags: std::collections::BTreeMap<String, String> =
            [("drpilot:managed-by".to_string(), "drpilot".to_string())].into();
        if let Some(d) = deployment {
            tags.insert("drpilot:deployment".into(), d.into());
        }
        Snapshot {
            kind: DbKind::Instance,
            id: "drpilot-orders-1".into(),
            arn: "arn:aws:rds:us-west-2:123456789012:snapshot:drpilot-orders-1".into(),
            db_id: "orders".into(),
            status: "available".into(),
            created: None,
            encrypted: false,
            tags,
            source_region: Some("us-east-1".into()),
        }
    };
    for theirs in [copy(Some("payments-dr")), copy(None)] {
        let refused = dr.delete_copy(&theirs).await.unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("not tagged as a copy of drpilot deployment hub"),
            "{refused}"
        );
    }
    assert_eq!(delete.num_calls(), 0);
    dr.delete_copy(&copy(Some("hub"))).await.unwrap();
    assert_eq!(delete.num_calls(), 1);
}
