//! Restore tests on RDS's timeline: the restore verifier proves the newest DR copies restore,
//! one night at a time (restores take a quarter of an hour, deletes five minutes, the
//! continuation runs every minute, an invocation lasts at most fifteen).

use crate::Measured;
use drpilot_tests::account::rds_tags;
use drpilot_tests::night::{minutes, Scale};
use drpilot_tests::sim::{Simulator, Wire};
use drpilot_tests::verify::VerifyBed;
use drpilot_tests::{function_binary, function_env, unique};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const SCALE: Scale = Scale(120);
/// The restore timeout (`restore_verification.timeout_minutes`): half an hour per phase; a
/// run not ended within four of them is ended.
const TIMEOUT_AWS: f64 = 1800.0;

fn env(bed: &VerifyBed) -> BTreeMap<String, String> {
    let timeout = SCALE.real_secs(TIMEOUT_AWS) as u32;
    let mut env = function_env(&bed.settings(timeout, SCALE.setting(30, 1).parse().unwrap()));
    env.insert("RUST_LOG".into(), "warn".into());
    env
}

/// One invocation of the verifier on `event`, as EventBridge and Lambda run it (at most 15
/// minutes).
fn spawn(env: &BTreeMap<String, String>, event: &Value) -> tokio::process::Child {
    let path = std::env::temp_dir().join(format!("{}.json", unique("verifier-event")));
    std::fs::write(&path, event.to_string()).unwrap();
    let lambda_timeout = SCALE.real_secs(900.0).ceil() as u64;
    tokio::process::Command::new(function_binary("restore-verifier"))
        .args(["--event", &path.display().to_string()])
        .args(["--timeout-secs", &lambda_timeout.to_string()])
        .env_clear()
        .envs(env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run the verifier")
}

async fn invoke(env: &BTreeMap<String, String>, event: &Value) -> Value {
    let out = spawn(env, event).wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "verifier failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the verifier's report")
}

/// The shipped continuation (every minute) until the run in progress ends; its final report.
async fn continue_until_done(env: &BTreeMap<String, String>, mut report: Value) -> Value {
    let started = Instant::now();
    while report.get("results").is_none() {
        assert!(
            started.elapsed() < SCALE.real(minutes(180.0)),
            "no end after three hours: {report:#}"
        );
        tokio::time::sleep(SCALE.real(60.0)).await;
        report = invoke(env, &json!({"action": "continue"})).await;
    }
    report
}

fn verification<'a>(report: &'a Value, list: &str, db: &str) -> &'a Value {
    let found = report[list].as_array().unwrap().iter().find(|r| r["db"] == db);
    &found.unwrap_or_else(|| panic!("{db} not in {list} of {report:#}"))["verification"]
}

/// Identifiers of every database AWS was asked to delete in `region`.
fn deleted(wire: &Wire, region: &str) -> Vec<String> {
    wire.calls("DeleteDBInstance")
        .chain(wire.calls("DeleteDBCluster"))
        .filter(|e| e.region.as_deref() == Some(region))
        .filter_map(|e| e.param("DBInstanceIdentifier").or(e.param("DBClusterIdentifier")))
        .map(str::to_string)
        .collect()
}

/// Night 1: the weekly run restores the newest copy of an RDS instance and of an Aurora
/// cluster (whose instance is added once the cluster is up), checks both, deletes both
/// without a final snapshot, and reports the restore times (the backup tier's RTO).
/// Night 2: the DR key is disabled while a restore is being made; RDS leaves the instance
/// `inaccessible-encryption-credentials`: the run reports it with AWS's meaning and deletes it.
/// Night 3: the verifier is killed right after AWS took a restore, and nothing resumes the run
/// (its continuation rule disabled); the next scheduled run, past twice the timeout, reports
/// the run it abandons and its sweeper deletes what that run left, and nothing else: not a
/// look-alike without the tag, not another deployment's restore test.
pub async fn restore_tests() -> Measured {
    let (source, dr) = ("ap-south-2", "ap-east-2");
    let sim = Simulator::connect();
    sim.configure(
        dr,
        json!({
            "restore_seconds": SCALE.real_secs(minutes(15.0)),
            "delete_seconds": SCALE.real_secs(minutes(5.0)),
        }),
    )
    .await;
    let bed = VerifyBed::new(source, dr).await;
    // The snapshot copier's copies (under the DR key) of each database's newest snapshot.
    bed.r.snapshot_instance(&bed.instance, &unique("nightly"), &[]).await;
    bed.r.snapshot_cluster(&bed.cluster, &unique("nightly")).await;
    let copier = function_env(&[
        ("DRPILOT_SOURCE_REGION", source.into()),
        ("DRPILOT_DR_REGION", dr.into()),
        ("DRPILOT_DB_INSTANCES", bed.instance.clone()),
        ("DRPILOT_DB_CLUSTERS", bed.cluster.clone()),
        ("DRPILOT_DR_KMS_KEY_ID", bed.key.clone()),
        ("DRPILOT_DEPLOYMENT", bed.deployment.clone()),
        ("DRPILOT_NOTIFY_TOPIC_ARN", bed.responders.topic_arn.clone()),
        ("RUST_LOG", "warn".into()),
    ]);
    let out = std::process::Command::new(function_binary("snapshot-copier"))
        .args([
            "--event",
            &drpilot_tests::repo_path("events/snapshot-copier/schedule.json")
                .display()
                .to_string(),
        ])
        .env_clear()
        .envs(&copier)
        .output()
        .unwrap();
    assert!(out.status.success(), "copier: {}", String::from_utf8_lossy(&out.stderr));
    let env = env(&bed);
    // each week's scheduled event (EventBridge gives each its own id; a redelivery keeps it)
    let schedule = || {
        let mut event = drpilot_tests::sample_event("restore-verifier/schedule.json");
        event["id"] = unique("weekly").into();
        event
    };

    // -- night 1 ---------------------------------------------------------------------------
    let mark = sim.wire_mark().await;
    let weekly = schedule();
    let first = invoke(&env, &weekly).await;
    let report = continue_until_done(&env, first).await;
    let wire = sim.wire(mark).await.0;
    let (instance, cluster) = (
        verification(&report, "results", &bed.instance),
        verification(&report, "results", &bed.cluster),
    );
    assert_eq!(
        (&instance["passed"], &cluster["passed"]),
        (&json!(true), &json!(true)),
        "{report:#}"
    );
    let took = |v: &Value| SCALE.aws(v["restore_seconds"].as_f64().unwrap());
    let (instance_rto, cluster_rto) = (took(instance), took(cluster));
    // RDS took 15 minutes (the cluster: 15, then 15 for its instance); the verifier looks every
    // poll (30 s, at least a second here: two minutes of AWS time).
    assert!(
        (minutes(14.0)..minutes(19.0)).contains(&instance_rto),
        "instance {instance_rto} s"
    );
    assert!(
        (minutes(29.0)..minutes(36.0)).contains(&cluster_rto),
        "cluster {cluster_rto} s"
    );
    // in the DR region: the nights beside this one create databases of their own
    let made = |action: &str| {
        wire.calls(action)
            .filter(|e| e.accepted() && e.region.as_deref() == Some(dr))
            .count()
    };
    assert_eq!(made("RestoreDBInstanceFromDBSnapshot"), 1);
    assert_eq!(made("RestoreDBClusterFromSnapshot"), 1);
    assert_eq!(made("CreateDBInstance"), 1);
    let run = report["run"].as_str().unwrap().to_string();
    assert!(deleted(&wire, dr)
        .iter()
        .all(|id| id.starts_with(&format!("drpilot-rt-{run}"))));
    assert!(bed.dr_databases("drpilot-rt-").await.is_empty(), "nothing left behind");
    let notice = bed.responders.received().await;
    assert!(
        notice.iter().any(|n| n.subject.contains("PASSED (2 of 2 restored)")),
        "{notice:#?}"
    );

    // EventBridge delivers the week's event again: no second run
    let mark = sim.wire_mark().await;
    invoke(&env, &weekly).await;
    let again = sim.wire(mark).await.0;
    assert_eq!(
        again.count("RestoreDBInstanceFromDBSnapshot") + again.count("RestoreDBClusterFromSnapshot"),
        0
    );

    // -- night 2 ---------------------------------------------------------------------------
    let mark = sim.wire_mark().await;
    let child = spawn(&env, &json!({"action": "run", "databases": [bed.instance]}));
    wait_for_restore(&sim, mark).await;
    bed.key_enabled(false).await;
    let out = child.wait_with_output().await.unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| json!({}));
    let report = continue_until_done(&env, report).await;
    bed.key_enabled(true).await;
    let failed = verification(&report, "results", &bed.instance);
    assert_eq!(failed["passed"], false);
    let why = failed["failure"].as_str().unwrap();
    assert!(
        why.contains("inaccessible-encryption-credentials") && why.contains("KMS key"),
        "AWS's status and its meaning: {why}"
    );
    assert!(
        bed.dr_databases("drpilot-rt-").await.is_empty(),
        "the failed restore was deleted"
    );
    let notice = bed.responders.received().await;
    assert!(notice.iter().any(|n| n.subject.contains("FAILED")), "{notice:#?}");

    // -- night 3 ---------------------------------------------------------------------------
    let copy = bed.copy_instance(None, chrono::Duration::hours(1)).await;
    let lookalike = unique("drpilot-rt-production");
    let team_b = unique("drpilot-rt-team-b");
    let old_run = drpilot::plan::verify::run_id(chrono::Utc::now() - chrono::Duration::days(2));
    for (id, tags) in [
        (&lookalike, vec![]),
        (
            &team_b,
            vec![
                ("drpilot:restore-test", old_run.as_str()),
                ("drpilot:managed-by", "drpilot"),
                ("drpilot:deployment", "team-b"),
            ],
        ),
    ] {
        bed.r
            .rds_dr
            .restore_db_instance_from_db_snapshot()
            .db_instance_identifier(id)
            .db_snapshot_identifier(&copy)
            .db_instance_class("db.t4g.micro")
            .set_tags(Some(rds_tags(&tags)))
            .send()
            .await
            .unwrap();
    }
    let mark = sim.wire_mark().await;
    let started = Instant::now();
    let mut child = spawn(&env, &schedule());
    let killed_run = wait_for_restore(&sim, mark).await;
    child.start_kill().unwrap(); // SIGKILL: the worker dies with the restore in flight
    child.wait().await.unwrap();
    let after_kill = sim.wire_mark().await;
    // nothing resumes it; the next schedule comes after the run's bound (four timeouts)
    tokio::time::sleep((SCALE.real(4.0 * TIMEOUT_AWS) + Duration::from_secs(2)).saturating_sub(started.elapsed()))
        .await;
    let first = invoke(&env, &schedule()).await;
    for db in [&bed.instance, &bed.cluster] {
        // the stopped run is ended, and reported by the first invocation past the bound
        let abandoned = verification(&first, "abandoned", db);
        assert_eq!(abandoned["passed"], false);
        let why = abandoned["failure"].as_str().unwrap();
        assert!(
            why.contains("stopped at") && why.contains("did not end within"),
            "{why}"
        );
    }
    let report = continue_until_done(&env, first.clone()).await;
    let wire = sim.wire(after_kill).await.0;
    for db in [&bed.instance, &bed.cluster] {
        assert_eq!(
            verification(&report, "results", db)["passed"],
            true,
            "the new run passes"
        );
    }
    // swept by the invocation that ended the stopped run (its report), and by the new run
    let swept: Vec<String> = first["reported"]
        .as_array()
        .unwrap()
        .iter()
        .chain([&report])
        .flat_map(|r| r["swept"].as_array().cloned().unwrap_or_default())
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert!(
        !swept.is_empty() && swept.iter().all(|s| s.contains(&killed_run)),
        "{swept:?}"
    );
    let new_run = report["run"].as_str().unwrap();
    let deletes = deleted(&wire, dr);
    assert!(
        deletes
            .iter()
            .all(|id| id.starts_with(&format!("drpilot-rt-{killed_run}"))
                || id.starts_with(&format!("drpilot-rt-{new_run}"))),
        "only the killed run's and the new run's restore tests are deleted: {deletes:?}"
    );
    let left = bed.dr_databases("drpilot-rt-").await;
    left.iter()
        .for_each(|id| assert!(*id == lookalike || *id == team_b, "left behind: {id}"));
    assert_eq!(left.len(), 2, "the look-alike and team B's restore test stay: {left:?}");

    Measured {
        other: vec![format!(
            "restore RTO instance {:.0} min, Aurora {:.0} min; KMS key disabled mid-restore: FAILED, deleted; killed run: {} leftover(s) swept, 2 decoys kept",
            instance_rto / 60.0,
            cluster_rto / 60.0,
            swept.len()
        )],
        ..Measured::default()
    }
}

/// Waits until AWS has taken a `RestoreDBInstanceFromDBSnapshot` after `mark`; returns the run
/// it belongs to (from the restored identifier).
async fn wait_for_restore(sim: &Simulator, mark: u64) -> String {
    for _ in 0..400 {
        let wire = sim.wire(mark).await.0;
        if let Some(id) = wire
            .calls("RestoreDBInstanceFromDBSnapshot")
            .filter(|e| e.accepted())
            .find_map(|e| e.param("DBInstanceIdentifier"))
            .filter(|id| id.starts_with("drpilot-rt-"))
        {
            return id
                .trim_start_matches("drpilot-rt-")
                .split('-')
                .next()
                .unwrap()
                .to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no restore reached AWS");
}
