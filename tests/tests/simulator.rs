//! The simulator's models, seen through the real SDK and drpilot's own adapters: what a
//! promotion, a maintenance hold, a dark region and throttling look like to the code that will
//! meet them on AWS. (The scenarios and failover tests build on these.)

use drpilot::aws::{cloudwatch, rds, route53};
use drpilot::model::Standby;
use drpilot::plan::promotion::PrimaryView;
use drpilot::ports::{HealthChecks, MetricId, Metrics, PrimaryProbe, StandbyControl};
use drpilot_tests::account::{instance_endpoint, Regions};
use drpilot_tests::night::health_check;
use drpilot_tests::sim::{Outage, RegionSettings, Simulator};
use drpilot_tests::{sdk, unique};
use serde_json::json;
use std::time::Duration;

/// A primary in `source`, its replica in `dr`; the regions' settings last as long as the guards
/// (each test has its own pair: tests run at once).
async fn pair(sim: &Simulator, source: &str, dr: &str) -> (Regions, Standby, Vec<RegionSettings>) {
    let mut guards = Vec::new();
    for region in [source, dr] {
        let settings = json!({"promotion_seconds": 1.0, "rds_metrics": true, "metric_period": 1});
        guards.push(sim.configure_for(region, settings).await);
    }
    let r = Regions::new(source, dr).await;
    let (primary, replica) = (unique("sim-primary"), unique("sim-replica"));
    r.create_instance(&primary, false, &[]).await;
    r.create_replica(&primary, &replica).await;
    (r, Standby::RdsReplica { primary, replica }, guards)
}

fn names(s: &Standby) -> (&str, &str) {
    match s {
        Standby::RdsReplica { primary, replica } => (primary, replica),
        Standby::AuroraGlobal { .. } => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_promotion_takes_time_detaches_the_replica_and_is_refused_while_the_replica_is_busy() {
    let sim = Simulator::connect();
    let (source, dr) = ("ap-southeast-6", "ap-southeast-7");
    let (r, standby, _settings) = pair(&sim, source, dr).await;
    let (primary, replica) = names(&standby);
    let view = rds::RdsStandby::new(r.rds_dr.clone());

    // the nightly backup is running on the replica: AWS refuses the promotion
    sim.hold_instance(dr, replica, "backing-up", 1.5).await;
    let refused = r
        .rds_dr
        .promote_read_replica()
        .db_instance_identifier(replica)
        .send()
        .await
        .expect_err("not available: refused");
    assert_eq!(
        aws_sdk_rds::error::ProvideErrorMetadata::code(&refused),
        Some("InvalidDBInstanceState")
    );
    tokio::time::sleep(Duration::from_millis(1700)).await;

    r.rds_dr
        .promote_read_replica()
        .db_instance_identifier(replica)
        .send()
        .await
        .expect("available: accepted");
    let during = view.state(&standby).await.unwrap();
    assert_eq!((during.status.as_str(), during.promoted), ("modifying", false));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = view.state(&standby).await.unwrap();
    assert_eq!((after.status.as_str(), after.promoted), ("available", true));
    let source = r
        .rds_source
        .describe_db_instances()
        .db_instance_identifier(primary)
        .send()
        .await
        .unwrap();
    assert!(
        source.db_instances()[0]
            .read_replica_db_instance_identifiers()
            .is_empty(),
        "the source no longer lists it"
    );
    let again = r
        .rds_dr
        .promote_read_replica()
        .db_instance_identifier(replica)
        .send()
        .await;
    assert!(again.is_err(), "not a replica any more");
    let rep = sim.replication(dr, replica).await.replica.unwrap();
    assert_eq!(rep.link, "promoted");
}

#[tokio::test(flavor = "multi_thread")]
async fn maintenance_on_the_primary_pauses_replication_and_the_replica_reports_minus_one() {
    let sim = Simulator::connect();
    let (source, dr) = ("ap-southeast-4", "ap-southeast-5");
    let (_r, standby, _settings) = pair(&sim, source, dr).await;
    let (primary, replica) = names(&standby);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let before = sim.replication(dr, replica).await.replica.unwrap();
    assert_eq!(before.link, "up");
    sim.hold_instance(source, primary, "upgrading", 3.0).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = sim.replication(dr, replica).await.replica.unwrap();
    assert_eq!(during.link, "broken");
    assert!(!sim.replication(source, primary).await.writer.unwrap().takes_writes);
    let cw = cloudwatch::CloudWatchMetrics::new(&sdk(dr).await, dr);
    let now = chrono::Utc::now();
    let lag = cw
        .newest(
            &MetricId::new("AWS/RDS", "ReplicaLag", &[("DBInstanceIdentifier", replica)]),
            1,
            now - chrono::Duration::seconds(30),
            now + chrono::Duration::seconds(1),
        )
        .await
        .unwrap()
        .expect("RDS reports the lag");
    assert_eq!(lag.value, -1.0, "replication is not running");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(sim.replication(dr, replica).await.replica.unwrap().link, "up");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dark_region_does_not_answer_the_primary_probe_and_fails_its_health_checkers() {
    let sim = Simulator::connect();
    let (source, dr) = ("eu-central-2", "mx-central-1");
    let (r, standby, _settings) = pair(&sim, source, dr).await;
    let probe = rds::RdsPrimaryProbe::new(&sdk(dr).await, source);
    let route53 = route53::Route53::new(&sdk(dr).await);
    let endpoint = instance_endpoint(&r.rds_source, names(&standby).0).await;
    let hc = health_check(&aws_sdk_route53::Client::new(&sdk("us-east-1").await), &endpoint).await;
    assert_eq!(probe.primary(&standby).await, PrimaryView::Available);
    let healthy = route53.checkers(&hc).await.unwrap();
    assert_eq!((healthy.failing, healthy.total), (0, 8));

    for outage in [Outage::Reset, Outage::Unavailable] {
        let dark = sim.dark_while(source, outage).await;
        let seen = probe.primary(&standby).await;
        assert!(matches!(seen, PrimaryView::Unreachable(_)), "{outage:?}: {seen:?}");
        let checkers = route53.checkers(&hc).await.unwrap();
        assert_eq!((checkers.failing, checkers.total), (8, 8), "{outage:?}");
        drop(dark);
    }
    assert_eq!(probe.primary(&standby).await, PrimaryView::Available);
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_answers_with_the_services_own_code_and_the_sdk_retries_it() {
    let sim = Simulator::connect();
    let (source, dr) = ("af-south-1", "il-central-1");
    let (_r, standby, _settings) = pair(&sim, source, dr).await;
    let (primary, _) = names(&standby);
    let mark = sim.wire_mark().await;
    // RDS throttles the probe's two attempts: the answer says nothing about the primary
    let id = sim
        .fault(json!({"service": "rds", "action": "DescribeDBInstances", "params": {"DBInstanceIdentifier": primary}, "mode": "throttle"}))
        .await;
    let probe = rds::RdsPrimaryProbe::new(&sdk(dr).await, source);
    let seen = probe.primary(&standby).await;
    assert!(
        matches!(&seen, PrimaryView::Unknown(why) if why.contains("Throttling")),
        "{seen:?}"
    );
    sim.clear_fault(id).await;
    // CloudWatch throttles once: the SDK's standard retry gets through
    sim.fault(
        json!({"service": "monitoring", "region": dr, "action": "GetMetricData", "mode": "throttle", "count": 1}),
    )
    .await;
    let cw = cloudwatch::CloudWatchMetrics::new(&sdk(dr).await, dr);
    let now = chrono::Utc::now();
    cw.newest(
        &MetricId::new("drpilot", "Nothing", &[("Resource", "x")]),
        60,
        now - chrono::Duration::minutes(5),
        now,
    )
    .await
    .expect("retried");
    let wire = sim.wire(mark).await.0;
    let calls: Vec<_> = wire
        .calls("GetMetricData")
        .filter(|e| e.region.as_deref() == Some(dr))
        .map(|e| (e.status, e.error.clone()))
        .collect();
    assert_eq!(calls, [(400, Some("Throttling".into())), (200, None)]);
}
