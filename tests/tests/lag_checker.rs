//! lag-checker end to end on moto server. moto never reports replication lag, so each test
//! puts the `ReplicaLag` datapoints CloudWatch would have (AWS/RDS, DR region) and runs the
//! checker at the matching times. Each test has its own pair of regions, disjoint from the
//! other test files' (moto keeps state across test binaries within one `make test`).

use chrono::{DateTime, Duration, DurationRound, Utc};
use drpilot::config::LagConfig;
use drpilot::lagcheck::{handle, LagEvent, LagPorts};
use drpilot::Error;
use drpilot_tests::account::{Cloudwatch, Regions, Responders};
use drpilot_tests::{function_binary, function_env, unique};
use serde_json::{json, Value};
use std::collections::HashMap;

struct Bed {
    r: Regions,
    responders: Responders,
    state_bucket: String,
    cw: Cloudwatch,
}

async fn bed(source: &str, dr: &str) -> Bed {
    let r = Regions::new(source, dr).await;
    let state_bucket = unique("drpilot-state");
    r.create_bucket(dr, &state_bucket).await;
    Bed {
        responders: Responders::new(dr, &unique("responders")).await,
        cw: Cloudwatch::new(dr).await,
        r,
        state_bucket,
    }
}

fn config(b: &Bed, resources: Value) -> LagConfig {
    let resources = resources.to_string();
    LagConfig::from_vars(&HashMap::from([
        ("DRPILOT_SOURCE_REGION", b.r.source.as_str()),
        ("DRPILOT_DR_REGION", b.r.dr.as_str()),
        ("DRPILOT_RESOURCES", resources.as_str()),
        ("DRPILOT_LAG_WINDOW_SECONDS", "120"),
        ("DRPILOT_STATE_BUCKET", b.state_bucket.as_str()),
        ("DRPILOT_NOTIFY_TOPIC_ARN", b.responders.topic_arn.as_str()),
        ("DRPILOT_S3_FORCE_PATH_STYLE", "true"),
    ]))
    .unwrap()
}

async fn check(b: &Bed, cfg: &LagConfig, at: DateTime<Utc>) -> Result<Value, Error> {
    let ports = LagPorts::accounts(&b.r.sdk_source, cfg);
    handle(&ports, cfg, LagEvent::Operator, at, in_a_minute()).await
}

fn entry<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap()
}

/// The verdicts published on a resource (`RpoStatus`), oldest first.
async fn verdicts(b: &Bed, resource: &str) -> Vec<f64> {
    b.cw.values("drpilot", "RpoStatus", ("Resource", resource))
        .await
        .iter()
        .map(|p| p.1)
        .collect()
}

/// The run's deadline: far enough not to matter, unless a test says otherwise.
fn in_a_minute() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(60)
}

/// A minute boundary half an hour ago: the test's clock starts there.
fn base() -> DateTime<Utc> {
    (Utc::now() - Duration::minutes(30))
        .duration_trunc(Duration::minutes(1))
        .unwrap()
}

#[tokio::test]
async fn a_breach_lasting_ten_checks_sends_one_notice_and_recovery_sends_one_more() {
    let b = bed("eu-south-1", "eu-central-2").await;
    let (primary, replica) = (unique("orders"), unique("orders-dr"));
    b.r.create_instance(&primary, false, &[]).await;
    b.r.create_replica(&primary, &replica).await;
    let name = unique("orders-replica");
    let cfg = config(
        &b,
        json!([{"name": name, "kind": "rds-replica", "replica": replica, "rpo_seconds": 60}]),
    );
    let t0 = base();

    // Ten minutes of a replica 5 minutes behind, checked every minute.
    for i in 0..10 {
        let at = t0 + Duration::minutes(i);
        b.cw.put(
            "AWS/RDS",
            "ReplicaLag",
            ("DBInstanceIdentifier", &replica),
            300.0 + i as f64,
            at,
        )
        .await;
        let report = check(&b, &cfg, at + Duration::seconds(30))
            .await
            .expect("check succeeds");
        let e = entry(&report, &name);
        assert_eq!(e["status"], "breached", "{report:#}");
        assert_eq!(e["recovery_point_seconds"], 300.0 + i as f64);
        assert_eq!(
            e["since"],
            (t0 + Duration::seconds(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    let notices = b.responders.received().await;
    assert_eq!(notices.len(), 1, "one notice for one breach: {notices:#?}");
    let n = &notices[0];
    assert_eq!(
        n.subject,
        format!("drpilot: RPO breached: {name} is 5m behind (budget 60s)")
    );
    assert!(
        n.message
            .contains("would lose about 5m of data if eu-south-1 failed now"),
        "{}",
        n.message
    );
    assert!(n.message.contains("What to do:"), "{}", n.message);
    assert_eq!(n.attribute("severity"), Some("warning"));
    assert_eq!(n.attribute("resource"), Some(name.as_str()));

    // Caught up.
    let at = t0 + Duration::minutes(10);
    b.cw.put("AWS/RDS", "ReplicaLag", ("DBInstanceIdentifier", &replica), 4.0, at)
        .await;
    let report = check(&b, &cfg, at + Duration::seconds(30)).await.unwrap();
    assert_eq!(entry(&report, &name)["status"], "healthy");
    let notices = b.responders.received().await;
    assert_eq!(notices.len(), 1);
    assert_eq!(
        notices[0].subject,
        format!("drpilot: recovered: {name} back within RPO (4s, budget 60s)")
    );
    assert!(
        notices[0].message.contains("it was breached from"),
        "{}",
        notices[0].message
    );
    assert_eq!(notices[0].attribute("severity"), Some("info"));

    // What was published, in the DR region, is the history the promoter's lag gate reads.
    let published =
        b.cw.values("drpilot", "RecoveryPointSeconds", ("Resource", &name))
            .await;
    assert_eq!(published.len(), 11);
    assert_eq!(published.first().unwrap().1, 300.0);
    assert_eq!(published.last().unwrap().1, 4.0);
    // RpoStatus: breached (1) for ten checks, then healthy (0).
    let status: Vec<f64> =
        b.cw.values("drpilot", "RpoStatus", ("Resource", &name))
            .await
            .iter()
            .map(|p| p.1)
            .collect();
    assert_eq!(status, [[1.0; 10].as_slice(), &[0.0]].concat());
}

#[tokio::test]
async fn minus_one_and_silence_are_broken_never_zero_lag() {
    let b = bed("ap-northeast-3", "ap-southeast-3").await;
    let (p1, r1, p2, r2) = (unique("a"), unique("a-dr"), unique("b"), unique("b-dr"));
    for (p, r) in [(&p1, &r1), (&p2, &r2)] {
        b.r.create_instance(p, false, &[]).await;
        b.r.create_replica(p, r).await;
    }
    let (n1, n2) = (unique("stopped-replica"), unique("silent-replica"));
    let cfg = config(
        &b,
        json!([
            {"name": n1, "kind": "rds-replica", "replica": r1, "rpo_seconds": 60},
            {"name": n2, "kind": "rds-replica", "replica": r2, "rpo_seconds": 60}
        ]),
    );
    let t0 = base();
    b.cw.put("AWS/RDS", "ReplicaLag", ("DBInstanceIdentifier", &r1), -1.0, t0)
        .await;
    // r2's last datapoint is 10 minutes older than the check: replication stopped reporting.
    b.cw.put(
        "AWS/RDS",
        "ReplicaLag",
        ("DBInstanceIdentifier", &r2),
        0.0,
        t0 - Duration::minutes(10),
    )
    .await;
    let report = check(&b, &cfg, t0 + Duration::seconds(30)).await.unwrap();
    for n in [&n1, &n2] {
        let e = entry(&report, n);
        assert_eq!(e["status"], "broken", "{report:#}");
        assert_eq!(e["recovery_point_seconds"], Value::Null);
    }
    assert!(entry(&report, &n1)["detail"]
        .as_str()
        .unwrap()
        .contains("ReplicaLag is -1"));
    assert!(entry(&report, &n2)["detail"]
        .as_str()
        .unwrap()
        .contains("stopped reporting"));

    let mut notices = b.responders.received().await;
    notices.sort_by(|a, b| a.subject.cmp(&b.subject));
    assert_eq!(notices.len(), 2);
    assert!(notices
        .iter()
        .all(|n| n.subject.starts_with("drpilot: replication BROKEN: ")));
    assert!(notices.iter().all(|n| n.attribute("severity") == Some("critical")));
    for n in [&n1, &n2] {
        assert!(
            b.cw.values("drpilot", "RecoveryPointSeconds", ("Resource", n))
                .await
                .is_empty(),
            "no lag is published for a broken link"
        );
        assert_eq!(
            b.cw.values("drpilot", "RpoStatus", ("Resource", n))
                .await
                .last()
                .unwrap()
                .1,
            2.0,
            "broken: what fires the primary-down alarm"
        );
    }
}

#[tokio::test]
async fn concurrent_checks_during_a_breach_notify_once() {
    let b = bed("me-south-1", "af-south-1").await;
    let (primary, replica) = (unique("cart"), unique("cart-dr"));
    b.r.create_instance(&primary, false, &[]).await;
    b.r.create_replica(&primary, &replica).await;
    let name = unique("cart-replica");
    let cfg = config(
        &b,
        json!([{"name": name, "kind": "rds-replica", "replica": replica, "rpo_seconds": 30}]),
    );
    let t0 = base();
    b.cw.put("AWS/RDS", "ReplicaLag", ("DBInstanceIdentifier", &replica), 90.0, t0)
        .await;
    let runs = (0..10).map(|_| check(&b, &cfg, t0 + Duration::seconds(30)));
    for result in futures::future::join_all(runs).await {
        assert_eq!(
            entry(&result.expect("each check succeeds"), &name)["status"],
            "breached"
        );
    }
    assert_eq!(
        b.responders.received().await.len(),
        1,
        "the state object's conditional write lets one run notify"
    );
}

/// A replica the DR region's listing does not have is no standby at all: broken (not
/// unknown), published as such, and responders are told; the other replica is measured.
#[tokio::test]
async fn a_replica_that_does_not_exist_is_broken_and_responders_are_told() {
    let b = bed("ap-east-1", "ap-southeast-4").await;
    let (primary, replica) = (unique("users"), unique("users-dr"));
    b.r.create_instance(&primary, false, &[]).await;
    b.r.create_replica(&primary, &replica).await;
    let (good, gone) = (unique("users-replica"), unique("deleted-replica"));
    let cfg = config(
        &b,
        json!([
            {"name": gone, "kind": "rds-replica", "replica": unique("never-created"), "rpo_seconds": 60},
            {"name": good, "kind": "rds-replica", "replica": replica, "rpo_seconds": 60}
        ]),
    );
    let t0 = base();
    b.cw.put("AWS/RDS", "ReplicaLag", ("DBInstanceIdentifier", &replica), 2.0, t0)
        .await;
    let report = check(&b, &cfg, t0 + Duration::seconds(30))
        .await
        .expect("every resource is measured");
    let e = entry(&report, &gone);
    assert_eq!(e["status"], "broken", "{report:#}");
    assert!(
        e["detail"]
            .as_str()
            .unwrap()
            .contains("does not exist in ap-southeast-4: there is no standby"),
        "{e}"
    );
    assert_eq!(
        b.cw.values("drpilot", "RecoveryPointSeconds", ("Resource", &good))
            .await
            .last()
            .unwrap()
            .1,
        2.0
    );
    assert_eq!(
        verdicts(&b, &gone).await,
        [2.0],
        "broken: what the primary-down alarm reads"
    );
    assert_eq!(verdicts(&b, &good).await, [0.0]);
    let notices = b.responders.received().await;
    assert_eq!(notices.len(), 1, "{notices:#?}");
    assert_eq!(notices[0].subject, format!("drpilot: replication BROKEN: {gone}"));
}

#[tokio::test]
async fn snapshot_age_and_s3_backlog_are_recovery_points_too() {
    let b = bed("ca-west-1", "mx-central-1").await;
    let db = unique("invoices");
    b.r.create_instance(&db, false, &[]).await;
    b.r.seed_drpilot_copy(&db, &format!("{db}-copy"), Duration::hours(2), None)
        .await;
    let (src_bucket, dr_bucket) = (unique("assets"), unique("assets-dr"));
    let s3_src = b.r.create_bucket("ca-west-1", &src_bucket).await;
    let s3_dr = b.r.create_bucket("mx-central-1", &dr_bucket).await;
    for key in ["a.txt", "b.txt", "c.txt"] {
        s3_src
            .put_object()
            .bucket(&src_bucket)
            .key(key)
            .body(key.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    }
    s3_dr
        .put_object()
        .bucket(&dr_bucket)
        .key("a.txt")
        .body(b"a.txt".to_vec().into())
        .send()
        .await
        .unwrap();

    let (copies, bucket) = (unique("invoices-copies"), unique("assets-backup"));
    let cfg = config(
        &b,
        json!([
            {"name": copies, "kind": "snapshot", "db": db, "rpo_seconds": 3600},
            {"name": bucket, "kind": "s3-backup", "source_bucket": src_bucket, "dr_bucket": dr_bucket, "rpo_seconds": 900}
        ]),
    );
    let later = Utc::now() + Duration::minutes(20);
    let report = check(&b, &cfg, later).await.unwrap();
    let e = entry(&report, &copies);
    assert_eq!(e["status"], "breached", "{report:#}");
    assert!(
        (e["recovery_point_seconds"].as_f64().unwrap() - 8400.0).abs() < 120.0,
        "about 2h20m: {e}"
    );
    let e = entry(&report, &bucket);
    assert_eq!(
        e["status"], "breached",
        "two objects waiting for 20 minutes: {report:#}"
    );
    assert!(e["detail"].as_str().unwrap().contains("2 object(s)"), "{e}");

    for key in ["b.txt", "c.txt"] {
        s3_dr
            .put_object()
            .bucket(&dr_bucket)
            .key(key)
            .body(key.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    }
    let report = check(&b, &cfg, later + Duration::minutes(1)).await.unwrap();
    assert_eq!(entry(&report, &bucket)["status"], "healthy");
    assert_eq!(entry(&report, &bucket)["recovery_point_seconds"], 0.0);
}

#[test]
fn the_binary_rejects_a_malformed_event_and_publishes_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let b = rt.block_on(bed("il-central-1", "me-central-1"));
    let name = unique("never-measured");
    let resources = json!([{"name": name, "kind": "rds-replica", "replica": "r", "rpo_seconds": 60}]).to_string();
    let env = function_env(&[
        ("DRPILOT_SOURCE_REGION", "il-central-1".into()),
        ("DRPILOT_DR_REGION", "me-central-1".into()),
        ("DRPILOT_RESOURCES", resources),
        ("DRPILOT_STATE_BUCKET", b.state_bucket.clone()),
        ("DRPILOT_NOTIFY_TOPIC_ARN", b.responders.topic_arn.clone()),
        ("DRPILOT_S3_FORCE_PATH_STYLE", "true".into()),
    ]);
    let out = std::process::Command::new(function_binary("lag-checker"))
        .args(["--event", "-"])
        .env_clear()
        .envs(&env)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(br#"{"action": "promote"}"#)?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("drpilot.BadEvent"));
    assert!(rt
        .block_on(b.cw.values("drpilot", "RpoStatus", ("Resource", &name)))
        .is_empty());

    let mut env = env;
    env.insert("DRPILOT_RESOURCES".into(), "[{\"name\": \"x\"}]".into());
    let out = std::process::Command::new(function_binary("lag-checker"))
        .args(["--event", "-"])
        .env_clear()
        .envs(&env)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DRPILOT_RESOURCES"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn aurora_global_lag_in_milliseconds_is_measured_in_seconds() {
    let b = bed("ap-south-2", "eu-south-2").await;
    let secondary = unique("ledger-dr");
    b.r.rds_dr
        .create_db_cluster()
        .db_cluster_identifier(&secondary)
        .engine("aurora-postgresql")
        .master_username("app")
        .master_user_password("correct-horse-battery")
        .send()
        .await
        .unwrap();
    let name = unique("ledger-global");
    let cfg = config(
        &b,
        json!([{"name": name, "kind": "aurora-global", "cluster": secondary, "rpo_seconds": 1}]),
    );
    let t0 = base();
    // Aurora reports these in milliseconds, in the secondary's region (moto never does).
    b.cw.put(
        "AWS/RDS",
        "AuroraGlobalDBRPOLag",
        ("DBClusterIdentifier", &secondary),
        850.0,
        t0,
    )
    .await;
    let report = check(&b, &cfg, t0 + Duration::seconds(20)).await.unwrap();
    assert_eq!(entry(&report, &name)["status"], "healthy", "{report:#}");
    assert_eq!(entry(&report, &name)["recovery_point_seconds"], 0.85);

    b.cw.put(
        "AWS/RDS",
        "AuroraGlobalDBRPOLag",
        ("DBClusterIdentifier", &secondary),
        2500.0,
        t0 + Duration::minutes(1),
    )
    .await;
    let report = check(&b, &cfg, t0 + Duration::seconds(80)).await.unwrap();
    assert_eq!(entry(&report, &name)["status"], "breached");
    let notices = b.responders.received().await;
    assert_eq!(notices.len(), 1);
    assert_eq!(
        notices[0].subject,
        format!("drpilot: RPO breached: {name} is 2.5s behind (budget 1s)")
    );
}

/// 105 replicas: one listing of the DR region's instances (a call per page of 100, not one per
/// replica), one `GetMetricData` for all their lag metrics, one `PutMetricData` for all their
/// verdicts, and each verdict the one of its own replica.
#[tokio::test]
async fn a_fleet_of_replicas_is_measured_in_one_metrics_call_and_a_listing_call_per_page() {
    use futures::StreamExt;
    let b = bed("ap-south-2", "ap-southeast-5").await;
    let sim = drpilot_tests::sim::Simulator::connect();
    let primaries: Vec<String> = (0..105).map(|i| unique(&format!("fleet{i}"))).collect();
    let (r, cw) = (&b.r, &b.cw);
    let t0 = base();
    let lag = |i: usize| if i % 10 == 0 { 300.0 } else { i as f64 % 50.0 };
    futures::stream::iter(primaries.iter().enumerate())
        .for_each_concurrent(8, |(i, p)| async move {
            r.create_instance(p, false, &[]).await;
            let replica = format!("{p}-dr");
            r.create_replica(p, &replica).await;
            cw.put("AWS/RDS", "ReplicaLag", ("DBInstanceIdentifier", &replica), lag(i), t0)
                .await;
        })
        .await;
    let resources: Vec<Value> = primaries
        .iter()
        .map(|p| json!({"name": p, "kind": "rds-replica", "replica": format!("{p}-dr"), "rpo_seconds": 60}))
        .collect();
    let cfg = config(&b, Value::from(resources));

    let mark = sim.wire_mark().await;
    let report = check(&b, &cfg, t0 + Duration::seconds(30))
        .await
        .expect("every replica is measured");
    let (wire, _) = sim.wire(mark).await;
    let in_dr = |action: &str| {
        wire.calls(action)
            .filter(|e| e.region.as_deref() == Some(b.r.dr.as_str()))
            .count()
    };
    assert_eq!(in_dr("GetMetricData"), 1, "105 lag metrics in one call");
    assert_eq!(in_dr("PutMetricData"), 1, "210 values in one call");
    // Other tests may add instances to the region meanwhile: at most a page per 100 of them.
    let in_region =
        b.r.rds_dr
            .describe_db_instances()
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await
            .len();
    let pages = in_dr("DescribeDBInstances");
    assert!(
        (2..=in_region.div_ceil(100)).contains(&pages),
        "{pages} DescribeDBInstances for {in_region} instances"
    );
    for (i, p) in primaries.iter().enumerate() {
        let e = entry(&report, p);
        let status = if i % 10 == 0 { "breached" } else { "healthy" };
        assert_eq!(
            (e["status"].as_str(), e["recovery_point_seconds"].as_f64()),
            (Some(status), Some(lag(i))),
            "{p}"
        );
    }
    assert_eq!(
        b.responders.received().await.len(),
        11,
        "one notice per breached replica"
    );
}

/// A run that runs out of time publishes what it measured, reports the rest unknown and counts
/// them, before Lambda stops it.
#[tokio::test]
async fn a_run_out_of_time_publishes_what_it_measured_and_reports_the_rest_unknown() {
    // A DR region no other test of the lag checker publishes in, and none goes dark.
    let b = bed("ca-central-1", "ap-northeast-1").await;
    let sim = drpilot_tests::sim::Simulator::connect();
    let (primary, replica) = (unique("orders"), unique("orders-dr"));
    b.r.create_instance(&primary, false, &[]).await;
    b.r.create_replica(&primary, &replica).await;
    let (source_bucket, dr_bucket) = (unique("assets"), unique("assets-dr"));
    b.r.create_bucket(&b.r.source, &source_bucket).await;
    b.r.create_bucket(&b.r.dr, &dr_bucket).await;
    let (orders, assets) = (unique("orders"), unique("assets"));
    let cfg = config(
        &b,
        json!([
            {"name": orders, "kind": "rds-replica", "replica": replica, "rpo_seconds": 60},
            {"name": assets, "kind": "s3-backup", "source_bucket": source_bucket, "dr_bucket": dr_bucket, "rpo_seconds": 900}
        ]),
    );
    let t0 = base();
    b.cw.put("AWS/RDS", "ReplicaLag", ("DBInstanceIdentifier", &replica), 3.0, t0)
        .await;
    // The source region's S3 answers the listing of the bucket only after 30 s; the run has 8.
    let slow = sim
        .fault(json!({"service": "s3", "region": b.r.source, "action": "ListObjectsV2",
                      "mode": "latency", "latency_ms": 30000, "params": {"Bucket": source_bucket}}))
        .await;
    let ports = LagPorts::accounts(&b.r.sdk_source, &cfg);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(8);
    let err = handle(&ports, &cfg, LagEvent::Schedule, t0 + Duration::seconds(30), deadline)
        .await
        .expect_err("an unmeasured resource fails the run");
    sim.clear_fault(slow).await;
    assert!(
        err.to_string()
            .contains(&format!("{assets}: not measured before this run's deadline")),
        "{err}"
    );
    assert_eq!(verdicts(&b, &orders).await, [0.0], "measured in time: healthy");
    assert!(verdicts(&b, &assets).await.is_empty(), "unknown: no verdict");
    assert_eq!(
        b.cw.values_of("drpilot", "UnmeasuredResources", &[])
            .await
            .last()
            .map(|p| p.1),
        Some(1.0),
        "the run counts what it could not measure"
    );
    assert_eq!(
        b.cw.values("drpilot", "RecoveryPointSeconds", ("Resource", &orders))
            .await
            .iter()
            .map(|p| p.1)
            .collect::<Vec<_>>(),
        [3.0]
    );
}

/// The lag checker binary's settings (as Terraform sets them, on the bed's regions and bucket).
fn binary_settings(b: &Bed, resources: String) -> [(&'static str, String); 6] {
    [
        ("DRPILOT_SOURCE_REGION", b.r.source.clone()),
        ("DRPILOT_DR_REGION", b.r.dr.clone()),
        ("DRPILOT_RESOURCES", resources),
        ("DRPILOT_STATE_BUCKET", b.state_bucket.clone()),
        ("DRPILOT_NOTIFY_TOPIC_ARN", b.responders.topic_arn.clone()),
        ("DRPILOT_S3_FORCE_PATH_STYLE", "true".into()),
    ]
}

/// The status page, end to end: the lag checker's binary (as Lambda runs it) publishes it to
/// the state bucket after its run, as HTML; `drpilot status --url` links to that very page
/// without credentials; `drpilot status --html` writes the same page locally. Its sparkline
/// shows the recovery points earlier runs published, oldest first, with a gap where none were.
#[tokio::test]
async fn the_lag_checker_publishes_the_status_page_and_the_cli_links_to_it() {
    let b = bed("ap-southeast-7", "ap-southeast-6").await;
    let (primary, replica) = (unique("shop"), unique("shop-dr"));
    b.r.create_instance(&primary, false, &[]).await;
    b.r.create_replica(&primary, &replica).await;
    let name = unique("shop-replica");
    let resources = json!([{"name": name, "kind": "rds-replica", "replica": replica, "rpo_seconds": 60}]).to_string();
    let now = Utc::now();
    // What earlier runs published, an hour apart (each in a five-minute bucket of its own),
    // then the replica's lag for this run to measure.
    let earlier = [(3, 50.0), (2, 150.0), (1, 20.0)];
    for (hours, value) in earlier {
        b.cw.put(
            "drpilot",
            "RecoveryPointSeconds",
            ("Resource", &name),
            value,
            now - Duration::hours(hours),
        )
        .await;
    }
    b.cw.put(
        "AWS/RDS",
        "ReplicaLag",
        ("DBInstanceIdentifier", &replica),
        4.0,
        now - Duration::seconds(30),
    )
    .await;
    let settings = binary_settings(&b, resources);
    let mut env = drpilot_tests::function_env(&settings);
    env.insert("DRPILOT_STATUS_PAGE".into(), "true".into());
    let event = std::fs::read_to_string(drpilot_tests::repo_path("events/lag-checker/schedule.json")).unwrap();
    let out = drpilot_tests::run_function("lag-checker", &env, &event);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("status page published"));

    // Published, as a page a browser shows.
    let s3 = drpilot_tests::account::s3_client(&b.r.dr).await;
    let key = "drpilot/status/index.html";
    let object = s3
        .get_object()
        .bucket(&b.state_bucket)
        .key(key)
        .send()
        .await
        .expect("the page is published");
    assert_eq!(object.content_type(), Some("text/html; charset=utf-8"));
    assert_eq!(object.cache_control(), Some("no-store"));
    let etag = object.e_tag().map(String::from);
    let page = String::from_utf8(object.body.collect().await.unwrap().to_vec()).unwrap();
    assert!(
        page.contains("DR status: <span class=\"word\">PROTECTED</span>"),
        "{page}"
    );
    assert!(page.contains(&format!("id=\"resource-{name}\"")), "{page}");
    assert!(page.contains("<span class=\"word healthy\">HEALTHY</span>"), "{page}");
    assert!(
        page.contains("newest 4s in the 5m from "),
        "this run's measurement is the newest point"
    );
    // The sparkline: earlier runs' points and this run's 4 s, oldest first, each alone (an
    // hour apart: the line breaks between them).
    let top = 150.0 * 1.25;
    let values: Vec<f64> = page
        .split("<polyline points=\"")
        .skip(1)
        .map(|rest| {
            let first = rest[..rest.find('"').unwrap()].split(' ').next().unwrap();
            let y: f64 = first.split_once(',').unwrap().1.parse().unwrap();
            ((40.0 - y) / 40.0 * top * 10.0).round() / 10.0
        })
        .collect();
    assert_eq!(values.len(), 4, "{values:?}");
    for (got, want) in values.iter().zip([50.0, 150.0, 20.0, 4.0]) {
        assert!((got - want).abs() <= 0.3, "{values:?}");
    }

    // The CLI's link opens it with no credentials at all.
    let settings_file = std::env::temp_dir().join(format!("{}.env", unique("page")));
    let text: String = settings.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
    std::fs::write(&settings_file, text).unwrap();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(drpilot_tests::function_binary("drpilot"))
            .args(args)
            .args(["--settings", &settings_file.display().to_string()])
            .env_clear()
            .envs(drpilot_tests::function_env(&[]))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let link = String::from_utf8(cli(&["status", "--url"]).stdout).unwrap();
    let link = link.trim();
    assert!(link.contains(&format!("/{}/{key}?", b.state_bucket)), "{link}");
    assert!(link.contains("X-Amz-Expires=3600"), "{link}");
    let fetched = reqwest::get(link).await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.text().await.unwrap(), page);

    // And locally: the same page.
    let file = std::env::temp_dir().join(format!("{}.html", unique("status")));
    cli(&["status", "--html", &file.display().to_string()]);
    let local = std::fs::read_to_string(&file).unwrap();
    assert!(local.contains(&format!("id=\"resource-{name}\"")) && local.contains("<svg class=\"spark\""));

    // The next minute's run finds the page younger than five minutes: it is left as it is.
    let out = drpilot_tests::run_function("lag-checker", &env, &event);
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{logs}");
    assert!(
        !logs.contains("status page published") && !logs.contains("not published"),
        "{logs}"
    );
    let again = s3.head_object().bucket(&b.state_bucket).key(key).send().await.unwrap();
    assert_eq!(again.e_tag().map(String::from), etag, "published once in five runs");
}

/// No page is published without `DRPILOT_STATUS_PAGE`, and then `--url` says why rather than
/// handing out a link to nothing.
#[tokio::test]
async fn without_the_status_page_setting_nothing_is_published_and_the_link_is_refused() {
    let b = bed("ap-southeast-7", "ap-southeast-6").await;
    let replica = unique("quiet-dr");
    let resources =
        json!([{"name": unique("quiet"), "kind": "rds-replica", "replica": replica, "rpo_seconds": 60}]).to_string();
    let settings = binary_settings(&b, resources);
    let event = std::fs::read_to_string(drpilot_tests::repo_path("events/lag-checker/schedule.json")).unwrap();
    drpilot_tests::run_function("lag-checker", &drpilot_tests::function_env(&settings), &event);
    let s3 = drpilot_tests::account::s3_client(&b.r.dr).await;
    let listed = s3
        .list_objects_v2()
        .bucket(&b.state_bucket)
        .prefix("drpilot/status/")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.key_count(), Some(0));
    let out = std::process::Command::new(drpilot_tests::function_binary("drpilot"))
        .args(["status", "--url"])
        .env_clear()
        .envs(drpilot_tests::function_env(&settings))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("drpilot/status/index.html does not exist") && said.contains("DRPILOT_STATUS_PAGE"),
        "{said}"
    );
}
