//! Snapshot copies that take time, against AWS's 20-copies-in-flight quota.

use crate::Measured;
use drpilot::copier::CopyReport;
use drpilot_tests::account::{Regions, Responders};
use drpilot_tests::night::{minutes, Scale};
use drpilot_tests::sim::Simulator;
use drpilot_tests::{function_binary, function_env, unique};
use serde_json::json;

/// Runs the copier once on `event`, as its EventBridge trigger would.
fn copier(env: &std::collections::BTreeMap<String, String>, event: &str) -> CopyReport {
    let out = std::process::Command::new(function_binary("snapshot-copier"))
        .args(["--event", &drpilot_tests::repo_path(event).display().to_string()])
        .env_clear()
        .envs(env)
        .output()
        .expect("run the copier");
    assert!(
        out.status.success(),
        "copier failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("copy report")
}

fn count(report: &CopyReport, status: &str) -> usize {
    report.dbs.iter().filter(|d| d.status.as_str() == status).count()
}

/// 25 protected databases, copies that take ten minutes each. The hourly run starts 20 and
/// queues 5 (quietly: no failure, no notice); a snapshot-created event two minutes later finds
/// 20 in flight and starts none; meanwhile someone else's copy into the DR region is refused
/// by AWS's quota; once the copies land the next run starts the 5 queued ones; the run after
/// that has nothing to do. Never more than 20 in flight; each database copied exactly once.
pub async fn pending_copies() -> Measured {
    let scale = Scale(30); // ten-minute copies take twenty seconds
    let (source, dr) = ("sa-east-1", "us-west-1");
    let sim = Simulator::connect();
    sim.configure(dr, json!({"copy_seconds": scale.real_secs(minutes(10.0))}))
        .await;
    let r = Regions::new(source, dr).await;
    let responders = Responders::new(dr, &unique("copies-responders")).await;
    let tag = unique("drpilot-copy");
    let dbs: Vec<String> = (0..25).map(|i| unique(&format!("db{i}"))).collect();
    for db in &dbs {
        r.create_instance(db, false, &[(tag.as_str(), "true")]).await;
    }
    let env = function_env(&[
        ("DRPILOT_SOURCE_REGION", source.into()),
        ("DRPILOT_DR_REGION", dr.into()),
        ("DRPILOT_SELECT_TAG", format!("{tag}=true")),
        ("DRPILOT_NOTIFY_TOPIC_ARN", responders.topic_arn.clone()),
        ("RUST_LOG", "warn".into()),
    ]);
    let mark = sim.wire_mark().await;

    let hourly = copier(&env, "events/snapshot-copier/schedule.json");
    assert_eq!(
        (count(&hourly, "copied"), count(&hourly, "queued")),
        (20, 5),
        "{:#?}",
        hourly.dbs
    );
    tokio::time::sleep(scale.real(minutes(2.0))).await;
    let event = copier(&env, "events/snapshot-copier/operator-run.json");
    assert_eq!((count(&event, "copied"), event.copies_in_flight_before), (0, Some(20)));
    assert_eq!(count(&event, "queued"), 5);
    // someone else copies into the DR region now: AWS's quota refuses it
    let other = unique("not-drpilots");
    r.create_instance(&other, false, &[]).await;
    let theirs = r.snapshot_instance(&other, &unique("theirs"), &[]).await;
    let refused = r
        .rds_dr
        .copy_db_snapshot()
        .source_db_snapshot_identifier(theirs)
        .target_db_snapshot_identifier(unique("their-copy"))
        .send()
        .await
        .expect_err("the 21st copy in flight is refused");
    assert_eq!(
        aws_sdk_rds::error::ProvideErrorMetadata::code(&refused),
        Some("SnapshotQuotaExceeded")
    );

    tokio::time::sleep(scale.real(minutes(10.0))).await;
    let later = copier(&env, "events/snapshot-copier/schedule.json");
    assert_eq!(
        (count(&later, "copied"), count(&later, "queued")),
        (5, 0),
        "{:#?}",
        later.dbs
    );
    tokio::time::sleep(scale.real(minutes(11.0))).await;
    let idle = copier(&env, "events/snapshot-copier/schedule.json");
    assert_eq!(count(&idle, "already-present"), 25);

    let wire = sim.wire(mark).await.0;
    let copies = sim.copies(dr).await;
    // drpilot's copy requests: never one past the quota (AWS would have refused it)
    let ours: Vec<_> = wire
        .calls("CopyDBSnapshot")
        .filter(|e| {
            e.param("TargetDBSnapshotIdentifier")
                .is_some_and(|t| t.starts_with("drpilot-"))
        })
        .collect();
    assert_eq!(ours.len(), 25, "each database copied once");
    assert!(ours.iter().all(|e| e.accepted()), "{ours:#?}");
    assert!(
        responders.received().await.is_empty(),
        "queued copies are not failures: nobody is paged"
    );
    Measured {
        other: vec![format!(
            "runs copied 20/0/5/0 (queued 5/5/0/0); max {} in flight of {}; the 21st refused",
            copies.max_in_flight, copies.quota
        )],
        ..Measured::default()
    }
}
