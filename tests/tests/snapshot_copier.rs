//! snapshot-copier end to end: the real handler and binary against moto server, on a
//! two-region account. Each test has its own region pair: copies and retention are
//! region-wide, so this keeps parallel tests out of each other's way.

use drpilot::config::CopierConfig;
use drpilot::copier::{handle, CopierEvent, CopierPorts};
use drpilot::events::Decode;
use drpilot::Error;
use drpilot_tests::account::{tags_of, Regions, Responders};
use drpilot_tests::sim::Simulator;
use drpilot_tests::{function_env, repo_path, unique};
use serde_json::{json, Value};
use std::collections::HashMap;

fn schedule() -> Value {
    drpilot_tests::sample_event("snapshot-copier/schedule.json")
}

fn config(r: &Regions, topic: &str, extra: &[(&'static str, &str)]) -> CopierConfig {
    let mut vars: HashMap<&str, &str> = HashMap::from([
        ("DRPILOT_SOURCE_REGION", r.source.as_str()),
        ("DRPILOT_DR_REGION", r.dr.as_str()),
        ("DRPILOT_NOTIFY_TOPIC_ARN", topic),
    ]);
    vars.extend(extra.iter().copied());
    CopierConfig::from_vars(&vars).unwrap()
}

async fn run_handler(r: &Regions, cfg: &CopierConfig, event: Value) -> Result<Value, Error> {
    let ports = CopierPorts::aws(&r.sdk_source, cfg);
    handle(&ports, cfg, CopierEvent::decode(event)?, chrono::Utc::now()).await
}

fn status_of<'a>(response: &'a Value, db: &str) -> &'a str {
    response["dbs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["db"] == db)
        .unwrap_or_else(|| panic!("{db} not in {response:#}"))["status"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn copies_encrypted_unencrypted_and_aurora_to_the_dr_region_with_the_dr_key() {
    let r = Regions::new("us-east-1", "us-west-2").await;
    let key = r.dr_kms_key().await;
    let tag = unique("protect");
    let selector = format!("drpilot:copy={tag}");
    let (enc, plain, cluster) = (unique("orders"), unique("reports"), unique("ledger"));
    r.create_instance(&enc, true, &[("drpilot:copy", &tag)]).await;
    r.create_instance(&plain, false, &[("drpilot:copy", &tag)]).await;
    r.create_cluster(&cluster, true, &[("drpilot:copy", &tag)]).await;
    let newest = r
        .snapshot_instance(&enc, &format!("{enc}-before-migration"), &[("team", "payments")])
        .await;
    let cluster_snap = r.snapshot_cluster(&cluster, &format!("{cluster}-manual")).await;
    let responders = Responders::new("us-east-1", &unique("responders")).await;
    let namespace = unique("drpilot-copier");
    let cfg = config(
        &r,
        &responders.topic_arn,
        &[
            ("DRPILOT_SELECT_TAG", &selector),
            ("DRPILOT_DR_KMS_KEY_ID", &key),
            ("DRPILOT_METRIC_NAMESPACE", &namespace),
        ],
    );

    let response = run_handler(&r, &cfg, schedule()).await.expect("run succeeds");
    for db in [&enc, &plain, &cluster] {
        assert_eq!(status_of(&response, db), "copied", "{response:#}");
    }
    // The run's counts, in the DR region, for the dashboard's copier graph.
    let cw = drpilot_tests::account::Cloudwatch::new("us-west-2").await;
    let counted = |name: &'static str| {
        let (cw, namespace) = (&cw, &namespace);
        async move { cw.values_of(namespace, name, &[]).await.last().map(|p| p.1) }
    };
    use drpilot::copier::metric;
    assert_eq!(counted(metric::STARTED).await, Some(3.0));
    assert_eq!(counted(metric::FAILED).await, Some(0.0));
    assert_eq!(counted(metric::QUEUED).await, Some(0.0));
    assert!(counted(metric::IN_FLIGHT).await.is_some_and(|n| n >= 3.0));

    // The encrypted instance's newest snapshot is in the DR region, re-encrypted with the DR key,
    // carrying its source tags and drpilot's own.
    let copies = r.dr_copies_of(&enc).await;
    assert_eq!(copies.len(), 1);
    let copy = &copies[0];
    assert_eq!(copy.kms_key_id(), Some(key.as_str()));
    assert_eq!(copy.encrypted(), Some(true));
    let tags = tags_of(copy.tag_list());
    assert_eq!(tags["drpilot:source-arn"], newest);
    assert_eq!(tags["drpilot:managed-by"], "drpilot");
    assert_eq!(tags["drpilot:source-region"], "us-east-1");
    assert_eq!(tags["team"], "payments");
    assert!(tags.contains_key("drpilot:source-snapshot-time"));

    // The unencrypted one is copied as it is.
    let copies = r.dr_copies_of(&plain).await;
    assert_eq!(copies.len(), 1);
    assert_ne!(copies[0].encrypted(), Some(true));

    // The Aurora cluster's newest snapshot, with the DR key.
    let copies = r.dr_cluster_copies_of(&cluster).await;
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].kms_key_id(), Some(key.as_str()));
    assert_eq!(tags_of(copies[0].tag_list())["drpilot:source-arn"], cluster_snap);

    // A rerun (or a duplicate event) is a no-op: nothing new in the DR region.
    let before = r.dr_snapshot_ids().await;
    let again = run_handler(&r, &cfg, schedule()).await.expect("rerun succeeds");
    for db in [&enc, &plain, &cluster] {
        assert_eq!(status_of(&again, db), "already-present", "{again:#}");
    }
    assert_eq!(r.dr_snapshot_ids().await, before);
    assert!(
        responders.received().await.is_empty(),
        "a successful run sends no notice"
    );
}

#[tokio::test]
async fn concurrent_duplicate_events_create_exactly_one_copy() {
    let r = Regions::new("us-east-2", "us-west-1").await;
    let db = unique("inventory");
    r.create_instance(&db, false, &[]).await;
    let responders = Responders::new("us-east-2", &unique("responders")).await;
    let cfg = config(&r, &responders.topic_arn, &[("DRPILOT_DB_INSTANCES", &db)]);

    let runs = (0..6).map(|_| run_handler(&r, &cfg, schedule()));
    let results = futures::future::join_all(runs).await;
    let statuses: Vec<String> = results
        .iter()
        .map(|res| status_of(res.as_ref().expect("each run succeeds"), &db).to_string())
        .collect();
    assert_eq!(
        r.dr_copies_of(&db).await.len(),
        1,
        "one copy, whatever the interleaving: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| s == "copied" || s == "already-present"),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn retention_prunes_exactly_the_expired_copies_and_nothing_else() {
    let r = Regions::new("eu-west-1", "eu-central-1").await;
    let db = unique("billing");
    r.create_instance(&db, false, &[]).await;
    // Copies drpilot made on earlier days (seeded with the ages a real history would have).
    let mut seeded = Vec::new();
    for days in [1i64, 3, 10, 20] {
        let copy = format!("{db}-copy-{days}");
        seeded.push(
            r.seed_drpilot_copy(&db, &copy, chrono::Duration::days(days), None)
                .await,
        );
    }
    // Old copies another drpilot deployment in this account made: never this one's to delete
    // (this one is the default deployment, which also owns copies made before the tag).
    let theirs = r
        .seed_copy_of_deployment(
            Some("payments-dr"),
            &db,
            &format!("{db}-theirs"),
            chrono::Duration::days(20),
            None,
        )
        .await;
    let ours_tagged = r
        .seed_copy_of_deployment(
            Some("drpilot"),
            &db,
            &format!("{db}-ours"),
            chrono::Duration::days(30),
            None,
        )
        .await;
    // A copy someone made by hand (untagged), old: never drpilot's to delete.
    let hand = r.snapshot_instance(&db, &format!("{db}-hand"), &[]).await;
    let hand_copy = format!("{db}-hand-copy");
    r.rds_dr
        .copy_db_snapshot()
        .source_db_snapshot_identifier(hand)
        .target_db_snapshot_identifier(&hand_copy)
        .send()
        .await
        .unwrap();
    let source_before = r.source_snapshot_ids(&db).await;

    let responders = Responders::new("eu-west-1", &unique("responders")).await;
    let cfg = config(
        &r,
        &responders.topic_arn,
        &[("DRPILOT_DB_INSTANCES", &db), ("DRPILOT_RETAIN_DAYS", "5")],
    );
    let response = run_handler(&r, &cfg, schedule()).await.expect("run succeeds");

    let entry = response["dbs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["db"] == db.as_str())
        .unwrap();
    let mut pruned: Vec<&str> = entry["pruned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    pruned.sort();
    let mut expected = vec![seeded[2].as_str(), seeded[3].as_str(), ours_tagged.as_str()];
    expected.sort();
    assert_eq!(pruned, expected, "{response:#}");
    assert!(
        r.dr_snapshot_ids().await.contains(&theirs),
        "another deployment's copy stays"
    );
    let left = r.dr_snapshot_ids().await;
    assert!(!left.contains(&seeded[2]) && !left.contains(&seeded[3]));
    assert!(
        left.contains(&seeded[0]) && left.contains(&seeded[1]),
        "copies within 5 days stay"
    );
    assert!(left.contains(&hand_copy), "an untagged snapshot is never pruned");
    assert_eq!(
        r.source_snapshot_ids(&db).await,
        source_before,
        "source snapshots are never touched"
    );
}

#[tokio::test]
async fn retention_never_deletes_the_newest_copy_even_when_all_are_expired() {
    let r = Regions::new("ap-southeast-1", "ap-northeast-1").await;
    let db = unique("archive");
    r.create_instance(&db, false, &[]).await;
    let mut seeded = Vec::new();
    for days in [30i64, 60] {
        let copy = format!("{db}-copy-{days}");
        seeded.push(
            r.seed_drpilot_copy(&db, &copy, chrono::Duration::days(days), None)
                .await,
        );
    }
    // The DB is no longer selected (say it was deleted): only retention applies to its copies.
    let other = unique("other");
    r.create_instance(&other, false, &[]).await;
    let responders = Responders::new("ap-southeast-1", &unique("responders")).await;
    let cfg = config(
        &r,
        &responders.topic_arn,
        &[("DRPILOT_DB_INSTANCES", &other), ("DRPILOT_RETAIN_DAYS", "1")],
    );
    let response = run_handler(&r, &cfg, schedule()).await.expect("run succeeds");
    assert_eq!(status_of(&response, &db), "not-selected");
    let left = r.dr_snapshot_ids().await;
    assert!(
        left.contains(&seeded[0]),
        "the newest copy of a DB survives any retention"
    );
    assert!(!left.contains(&seeded[1]));
}

#[tokio::test]
async fn in_flight_limit_queues_the_rest_quietly_and_a_later_run_picks_them_up() {
    let r = Regions::new("ca-central-1", "sa-east-1").await;
    let tag = unique("batch");
    let dbs: Vec<String> = (0..3).map(|i| unique(&format!("shard{i}"))).collect();
    for db in &dbs {
        r.create_instance(db, false, &[("drpilot:copy", &tag)]).await;
    }
    let responders = Responders::new("ca-central-1", &unique("responders")).await;
    let selector = format!("drpilot:copy={tag}");
    let cfg = config(
        &r,
        &responders.topic_arn,
        &[("DRPILOT_SELECT_TAG", &selector), ("DRPILOT_MAX_COPIES_IN_FLIGHT", "2")],
    );

    let first = run_handler(&r, &cfg, schedule())
        .await
        .expect("queued is not a failure");
    let statuses: Vec<&str> = dbs.iter().map(|db| status_of(&first, db)).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "copied").count(), 2, "{first:#}");
    assert_eq!(statuses.iter().filter(|s| **s == "queued").count(), 1, "{first:#}");
    assert!(
        responders.received().await.is_empty(),
        "queued copies do not alarm anyone"
    );

    // moto makes copies available at once (AWS takes minutes), so the next run has free slots.
    let second = run_handler(&r, &cfg, schedule()).await.expect("second run");
    let queued = dbs.iter().find(|db| status_of(&first, db) == "queued").unwrap();
    assert_eq!(status_of(&second, queued), "copied");
    for db in &dbs {
        assert_eq!(r.dr_copies_of(db).await.len(), 1);
    }
}

#[tokio::test]
async fn failing_dbs_yield_one_notice_and_the_others_are_still_copied() {
    let r = Regions::new("eu-west-2", "eu-north-1").await;
    let tag = unique("mixed");
    let (secret, open) = (unique("secrets"), unique("catalog"));
    let missing = unique("decommissioned");
    r.create_instance(&secret, true, &[("drpilot:copy", &tag)]).await;
    r.create_instance(&open, false, &[("drpilot:copy", &tag)]).await;
    let responders = Responders::new("eu-west-2", &unique("responders")).await;
    // The DR key named in the settings does not exist: the encrypted copy fails at AWS.
    let bad_key = format!(
        "arn:aws:kms:eu-north-1:{}:key/00000000-0000-0000-0000-000000000000",
        drpilot_tests::ACCOUNT_ID
    );
    let selector = format!("drpilot:copy={tag}");
    let cfg = config(
        &r,
        &responders.topic_arn,
        &[
            ("DRPILOT_SELECT_TAG", &selector),
            ("DRPILOT_DB_INSTANCES", &missing),
            ("DRPILOT_DR_KMS_KEY_ID", &bad_key),
        ],
    );

    let err = run_handler(&r, &cfg, schedule())
        .await
        .expect_err("a failed DB fails the invocation");
    assert!(matches!(err, Error::RunFailed(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&secret) && message.contains(&missing), "{message}");

    assert_eq!(r.dr_copies_of(&open).await.len(), 1, "the healthy DB is still copied");
    assert!(r.dr_copies_of(&secret).await.is_empty());

    let notices = responders.received().await;
    assert_eq!(notices.len(), 1, "exactly one notice per run: {notices:?}");
    let n = &notices[0];
    assert_eq!(
        n.subject,
        "drpilot: DR snapshot copy failed for 2 of 3 DBs (eu-west-2 -> eu-north-1)"
    );
    assert!(
        n.message.contains(&format!(
            "FAILED instance {secret}: CopyDBSnapshot failed: KMSKeyNotAccessibleFault"
        )),
        "{}",
        n.message
    );
    assert!(
        n.message.contains(&format!(
            "FAILED instance {missing}: DB instance {missing} was not found"
        )),
        "{}",
        n.message
    );
    assert!(n.message.contains("1 copied"), "{}", n.message);
    assert_eq!(n.attribute("severity"), Some("warning"));
    assert_eq!(n.attribute("source"), Some("drpilot.snapshot-copier"));
}

/// Runs the built binary locally with `--event`, as the README shows.
fn run_binary(env: &std::collections::BTreeMap<String, String>, event: &str) -> std::process::Output {
    drpilot_tests::run_function("snapshot-copier", env, event)
}

#[tokio::test]
async fn the_binary_runs_once_locally_and_a_malformed_event_changes_nothing() {
    let r = Regions::new("ap-south-1", "ap-southeast-2").await;
    let db = unique("ledger");
    r.create_instance(&db, false, &[]).await;
    let responders = Responders::new("ap-south-1", &unique("responders")).await;
    let env = function_env(&[
        ("DRPILOT_SOURCE_REGION", "ap-south-1".into()),
        ("DRPILOT_DR_REGION", "ap-southeast-2".into()),
        ("DRPILOT_DB_INSTANCES", db.clone()),
        ("DRPILOT_NOTIFY_TOPIC_ARN", responders.topic_arn.clone()),
    ]);

    for bad in [
        "not json",
        "[1, 2]",
        r#"{"source": "aws.rds", "detail-type": "RDS DB Snapshot Event"}"#,
        r#"{"action": "purge"}"#,
    ] {
        let out = run_binary(&env, bad);
        assert!(!out.status.success(), "{bad}");
        assert!(out.stdout.is_empty(), "no response on stdout for {bad}");
    }
    let out = run_binary(&env, r#"{"action": "purge"}"#);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("drpilot.BadEvent") && stderr.contains("unknown action"),
        "{stderr}"
    );
    assert!(r.dr_copies_of(&db).await.is_empty(), "a malformed event copies nothing");
    assert!(responders.received().await.is_empty(), "and notifies no one");

    let event = std::fs::read_to_string(repo_path("events/snapshot-copier/schedule.json")).unwrap();
    let out = run_binary(&env, &event);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let response: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON response");
    assert_eq!(status_of(&response, &db), "copied");
    assert_eq!(r.dr_copies_of(&db).await.len(), 1);
}

#[test]
fn a_missing_setting_fails_at_cold_start_naming_the_variable() {
    let mut env = function_env(&[
        ("DRPILOT_SOURCE_REGION", "us-east-1".into()),
        ("DRPILOT_DB_INSTANCES", "orders".into()),
        (
            "DRPILOT_NOTIFY_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:t".into(),
        ),
    ]);
    env.insert("AWS_ENDPOINT_URL".into(), "http://127.0.0.1:9".into()); // nothing may be called
    let out = run_binary(&env, &json!({"action": "run"}).to_string());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DRPILOT_DR_REGION: is required but not set"),
        "{stderr}"
    );
}

/// The RDS snapshot event EventBridge delivers for `snapshot` in `region` (the sample, re-aimed).
fn snapshot_created(region: &str, snapshot: &str) -> Value {
    let mut event = drpilot_tests::sample_event("snapshot-copier/rds-manual-snapshot-created.json");
    event["region"] = region.into();
    event["detail"]["SourceIdentifier"] = snapshot.into();
    event
}

/// RDS calls that reached the simulated AWS since `mark`, by region.
async fn rds_calls(sim: &Simulator, mark: u64, region: &str) -> Vec<String> {
    let (wire, _) = sim.wire(mark).await;
    wire.0
        .iter()
        .filter(|e| e.service.as_deref() == Some("rds") && e.region.as_deref() == Some(region))
        .filter_map(|e| e.action.clone())
        .collect()
}

#[tokio::test]
async fn a_snapshot_event_copies_that_snapshot_in_four_calls_once_however_often_it_arrives() {
    let r = Regions::new("ap-southeast-6", "ap-northeast-3").await;
    let sim = Simulator::connect();
    let tag = unique("evented");
    let (orders, quiet, other) = (unique("orders"), unique("quiet"), unique("unprotected"));
    r.create_instance(&orders, false, &[("drpilot:copy", &tag)]).await;
    r.create_instance(&quiet, false, &[("drpilot:copy", &tag)]).await;
    r.create_instance(&other, false, &[]).await;
    let responders = Responders::new("ap-southeast-6", &unique("responders")).await;
    let selector = format!("drpilot:copy={tag}");
    let cfg = config(&r, &responders.topic_arn, &[("DRPILOT_SELECT_TAG", &selector)]);
    let snapshot = format!("{orders}-before-migration");
    // The copy records its source's time to the second: the manual snapshot comes a second
    // after the automated one, as a real one would come hours after.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let arn = r.snapshot_instance(&orders, &snapshot, &[]).await;

    let mark = sim.wire_mark().await;
    let response = run_handler(&r, &cfg, snapshot_created(&r.source, &snapshot))
        .await
        .expect("the event's run succeeds");
    assert_eq!(status_of(&response, &orders), "copied", "{response:#}");
    assert_eq!(
        response["copies_in_flight_before"],
        Value::Null,
        "an event lists its own database's copies only: it cannot say how many the region has"
    );
    let (source_calls, dr_calls) = (
        rds_calls(&sim, mark, &r.source).await,
        rds_calls(&sim, mark, &r.dr).await,
    );
    assert_eq!(
        (source_calls.clone(), dr_calls.clone()),
        (
            vec!["DescribeDBSnapshots".to_string(), "DescribeDBInstances".into()],
            vec!["DescribeDBSnapshots".to_string(), "CopyDBSnapshot".into()]
        ),
        "the snapshot, its database, its copies, the copy: nothing else of the fleet"
    );
    let copies = r.dr_copies_of(&orders).await;
    assert_eq!(copies.len(), 1);
    assert_eq!(tags_of(copies[0].tag_list())["drpilot:source-arn"], arn);
    assert!(
        r.dr_copies_of(&quiet).await.is_empty(),
        "the event is about orders alone"
    );

    // EventBridge delivers at least once: the same event again copies nothing more.
    let again = run_handler(&r, &cfg, snapshot_created(&r.source, &snapshot))
        .await
        .expect("the redelivery succeeds");
    assert_eq!(status_of(&again, &orders), "already-present", "{again:#}");
    assert_eq!(r.dr_copies_of(&orders).await.len(), 1);

    // A late event for the older automated snapshot: a newer one is copied, nothing older goes.
    let automated = r
        .source_snapshot_ids(&orders)
        .await
        .into_iter()
        .find(|s| s.starts_with("rds:"))
        .unwrap();
    let late = run_handler(&r, &cfg, snapshot_created(&r.source, &automated))
        .await
        .expect("a late event is not a failure");
    assert_eq!(status_of(&late, &orders), "already-present", "{late:#}");
    assert!(
        late["dbs"][0]["reason"].as_str().unwrap_or_default().contains("older"),
        "{late:#}"
    );
    assert_eq!(r.dr_copies_of(&orders).await.len(), 1);

    // A database the settings do not select: its snapshot is not copied.
    let foreign = format!("{other}-manual");
    r.snapshot_instance(&other, &foreign, &[]).await;
    let ignored = run_handler(&r, &cfg, snapshot_created(&r.source, &foreign))
        .await
        .expect("an unselected database's event is not a failure");
    assert_eq!(ignored["dbs"], json!([]), "{ignored:#}");
    assert!(r.dr_copies_of(&other).await.is_empty());

    // A snapshot deleted before its event is handled: nothing to copy, nothing failed.
    let gone = run_handler(&r, &cfg, snapshot_created(&r.source, "deleted-in-the-meantime"))
        .await
        .expect("a vanished snapshot is not a failure");
    assert_eq!(gone["dbs"], json!([]), "{gone:#}");
    assert!(
        responders.received().await.is_empty(),
        "{:?}",
        responders.received().await
    );
}

#[tokio::test]
async fn a_reconciliation_pays_a_call_per_page_of_databases_not_a_call_per_database() {
    // 105 databases: AWS's pages hold 100, so each source listing is two calls. The source
    // region is this test's alone (the listings are region-wide).
    let r = Regions::new("ap-east-2", "ap-south-2").await;
    let sim = Simulator::connect();
    let tag = unique("fleet");
    let dbs: Vec<String> = (0..105).map(|i| unique(&format!("fleet{i}"))).collect();
    let tags = [("drpilot:copy", tag.as_str())];
    futures::future::join_all(dbs.iter().map(|db| r.create_instance(db, false, &tags))).await;
    let responders = Responders::new("ap-east-2", &unique("responders")).await;
    let selector = format!("drpilot:copy={tag}");
    let cfg = config(&r, &responders.topic_arn, &[("DRPILOT_SELECT_TAG", &selector)]);

    let mark = sim.wire_mark().await;
    let first = run_handler(&r, &cfg, schedule())
        .await
        .expect("queued is not a failure");
    let statuses: Vec<&str> = dbs.iter().map(|db| status_of(&first, db)).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "copied").count(),
        20,
        "DRPILOT_MAX_COPIES_IN_FLIGHT's default"
    );
    assert_eq!(statuses.iter().filter(|s| **s == "queued").count(), 85);
    let mut source_calls = rds_calls(&sim, mark, &r.source).await;
    source_calls.sort();
    assert_eq!(
        source_calls,
        [
            "DescribeDBClusterSnapshots",
            "DescribeDBClusters",
            "DescribeDBInstances",
            "DescribeDBInstances",
            "DescribeDBSnapshots",
            "DescribeDBSnapshots"
        ],
        "two pages of 105 databases and of their 105 snapshots, one each of clusters"
    );
    assert_eq!(
        rds_calls(&sim, mark, &r.dr)
            .await
            .iter()
            .filter(|a| *a == "CopyDBSnapshot")
            .count(),
        20
    );
}

#[tokio::test]
async fn a_copy_aws_refuses_with_twenty_in_progress_is_queued_and_below_twenty_is_a_failure() {
    let r = Regions::new("me-south-1", "ap-east-1").await;
    let sim = Simulator::connect();
    // Copies take a minute here (AWS: minutes to hours), so the first run's 20 stay in progress.
    let _slow = sim.configure_for(&r.dr, json!({"copy_seconds": 60.0})).await;
    let tag = unique("busy");
    let dbs: Vec<String> = (0..21).map(|i| unique(&format!("busy{i}"))).collect();
    let tags = [("drpilot:copy", tag.as_str())];
    futures::future::join_all(dbs.iter().map(|db| r.create_instance(db, false, &tags))).await;
    let responders = Responders::new("me-south-1", &unique("responders")).await;
    let selector = format!("drpilot:copy={tag}");
    let cfg = config(&r, &responders.topic_arn, &[("DRPILOT_SELECT_TAG", &selector)]);
    let first = run_handler(&r, &cfg, schedule()).await.expect("20 started, 1 queued");
    let waiting = dbs
        .iter()
        .find(|db| status_of(&first, db) == "queued")
        .expect("one queued");

    // Its new snapshot's event: AWS refuses the copy over its 20 in progress. A wait, not a failure.
    let snapshot = format!("{waiting}-manual");
    r.snapshot_instance(waiting, &snapshot, &[]).await;
    let second = run_handler(&r, &cfg, snapshot_created(&r.source, &snapshot))
        .await
        .expect("a full copy quota is not a failure");
    assert_eq!(status_of(&second, waiting), "queued", "{second:#}");
    assert!(
        responders.received().await.is_empty(),
        "queued copies do not alarm anyone"
    );

    // The same refusal with few copies in progress is not the copy quota (AWS gives the same
    // code when the region's snapshot quota is full, which no wait cures): a failure, one notice.
    let (c, d) = (unique("refused"), unique("idle"));
    let r2 = Regions::new("me-south-1", "ca-west-1").await;
    let _one = sim
        .configure_for(&r2.dr, json!({"copy_seconds": 60.0, "copy_quota": 1}))
        .await;
    r2.create_instance(&c, false, &[]).await;
    r2.create_instance(&d, false, &[]).await;
    let selected = format!("{c},{d}");
    let cfg2 = config(&r2, &responders.topic_arn, &[("DRPILOT_DB_INSTANCES", &selected)]);
    let err = run_handler(&r2, &cfg2, schedule())
        .await
        .expect_err("a refusal the copies in progress do not explain fails the run");
    assert!(err.to_string().contains("snapshot quota may be full"), "{err}");
    let notices = responders.received().await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0].message.contains("fewer than the 20 AWS allows"),
        "{}",
        notices[0].message
    );
}

#[tokio::test]
async fn two_deployments_in_one_account_each_keep_their_own_copies() {
    // A hub and a member team's own drpilot, both protecting one database into one DR region.
    let r = Regions::new("ap-east-2", "ap-south-2").await;
    let db = unique("shared");
    r.create_instance(&db, false, &[]).await;
    let responders = Responders::new("ap-east-2", &unique("responders")).await;
    let hub = config(
        &r,
        &responders.topic_arn,
        &[("DRPILOT_DB_INSTANCES", &db), ("DRPILOT_RETAIN_COUNT", "1")],
    );
    let team = config(
        &r,
        &responders.topic_arn,
        &[
            ("DRPILOT_DB_INSTANCES", &db),
            ("DRPILOT_RETAIN_COUNT", "1"),
            ("DRPILOT_DEPLOYMENT", "payments-dr"),
        ],
    );
    for cfg in [&hub, &team] {
        let out = run_handler(&r, cfg, schedule()).await.expect("run succeeds");
        assert_eq!(
            status_of(&out, &db),
            "copied",
            "each deployment makes its own copy: {out:#}"
        );
    }
    let deployments = |copies: &[aws_sdk_rds::types::DbSnapshot]| {
        let mut d: Vec<String> = copies
            .iter()
            .map(|c| {
                tags_of(c.tag_list())
                    .get("drpilot:deployment")
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        d.sort();
        d
    };
    assert_eq!(deployments(&r.dr_copies_of(&db).await), ["drpilot", "payments-dr"]);

    // a new snapshot: each copies it, and its next run prunes its own older copy (retention
    // counts the copies a run lists), never the other's
    r.snapshot_instance(&db, &format!("{db}-newer"), &[]).await;
    for cfg in [&hub, &team] {
        let out = run_handler(&r, cfg, schedule()).await.expect("run succeeds");
        assert_eq!(status_of(&out, &db), "copied", "{out:#}");
    }
    assert_eq!(
        deployments(&r.dr_copies_of(&db).await),
        ["drpilot", "drpilot", "payments-dr", "payments-dr"]
    );
    for cfg in [&hub, &team] {
        let out = run_handler(&r, cfg, schedule()).await.expect("run succeeds");
        let entry = out["dbs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["db"] == db.as_str())
            .unwrap();
        assert_eq!(entry["pruned"].as_array().unwrap().len(), 1, "{out:#}");
    }
    assert_eq!(
        deployments(&r.dr_copies_of(&db).await),
        ["drpilot", "payments-dr"],
        "one each"
    );
}

/// The steady state decides on the DR region's ledger: while nothing is to be done there, no
/// run lists it; a new snapshot makes the run list it and copy. In a member account of its own:
/// whether there is anything to do is region-wide (copies in progress count, anyone's).
#[tokio::test]
async fn a_steady_state_run_decides_on_the_dr_ledger_and_lists_the_dr_region_only_for_work() {
    let member = drpilot_tests::members::MemberAccount::enter("210000000020").await;
    let (source, dr) = ("ap-southeast-7", "ap-southeast-5");
    let r = Regions::in_member(&member, source, dr).await;
    let sim = Simulator::connect();
    let tag = unique("ledger");
    let dbs: Vec<String> = (0..3).map(|i| unique(&format!("books{i}"))).collect();
    for db in &dbs {
        r.create_instance(db, false, &[("drpilot:copy", &tag)]).await;
        r.snapshot_instance(db, &format!("{db}-first"), &[]).await;
    }
    let state = unique("copier-state");
    member.create_bucket(dr, &state).await;
    let responders = Responders::new(source, &unique("responders")).await;
    let selector = format!("drpilot:copy={tag}");
    let cfg = config(
        &r,
        &responders.topic_arn,
        &[
            ("DRPILOT_SELECT_TAG", &selector),
            ("DRPILOT_STATE_BUCKET", &state),
            ("DRPILOT_S3_FORCE_PATH_STYLE", "true"),
        ],
    );
    // A run, and how many listings of the DR region's snapshots reached AWS meanwhile.
    let run_on = |label: &'static str, event: Value| {
        let (r, cfg, sim, member) = (&r, &cfg, &sim, &member);
        async move {
            let mark = sim.wire_mark().await;
            let response = run_handler(r, cfg, event).await.expect(label);
            let (wire, _) = sim.wire(mark).await;
            let listings = wire
                .0
                .iter()
                .filter(|e| e.account.as_deref() == Some(member.id.as_str()) && e.region.as_deref() == Some(dr))
                .filter(|e| {
                    matches!(
                        e.action.as_deref(),
                        Some("DescribeDBSnapshots" | "DescribeDBClusterSnapshots")
                    )
                })
                .count();
            (response, listings)
        }
    };
    let run = |label: &'static str| run_on(label, schedule());
    let statuses =
        |response: &Value| -> Vec<String> { dbs.iter().map(|d| status_of(response, d).to_string()).collect() };

    let (first, _) = run("the first run").await;
    assert_eq!(statuses(&first), ["copied"; 3], "{first:#}");
    // Nothing to do, found by listing the DR region: the listing is kept as its ledger.
    let (second, listings) = run("the second run").await;
    assert_eq!(statuses(&second), ["already-present"; 3], "{second:#}");
    assert!(second["dr_ledger"].is_null() && listings >= 1, "{second:#}");
    // Nothing to do, found on the ledger: the DR region is not listed.
    let (third, listings) = run("a run on the ledger").await;
    assert_eq!(statuses(&third), ["already-present"; 3], "{third:#}");
    assert!(third["dr_ledger"].is_string(), "{third:#}");
    assert_eq!(listings, 0, "{third:#}");

    // A new snapshot: the ledger does not know its copy, so the run lists and copies it.
    r.snapshot_instance(&dbs[0], &format!("{}-second", dbs[0]), &[]).await;
    let (fourth, listings) = run("the run after a new snapshot").await;
    assert_eq!(status_of(&fourth, &dbs[0]), "copied", "{fourth:#}");
    assert!(fourth["dr_ledger"].is_null() && listings >= 1, "{fourth:#}");
    assert_eq!(r.dr_copies_of(&dbs[0]).await.len(), 2);
    // The ledger kept before that copy wants it made: the next run lists, finds it, keeps a
    // new ledger; the one after decides on that.
    let (fifth, listings) = run("the run after the copy").await;
    assert_eq!(statuses(&fifth), ["already-present"; 3], "{fifth:#}");
    assert!(fifth["dr_ledger"].is_null() && listings >= 1, "{fifth:#}");
    let (sixth, listings) = run("a run on the new ledger").await;
    assert_eq!(statuses(&sixth), ["already-present"; 3], "{sixth:#}");
    assert_eq!(listings, 0, "{sixth:#}");
    assert_eq!(r.dr_copies_of(&dbs[0]).await.len(), 2, "no copy made twice");
    // An operator's run (after fixing something by hand, say) lists, whatever the ledger.
    let operator = drpilot_tests::sample_event("snapshot-copier/operator-run.json");
    let (by_hand, listings) = run_on("an operator's run", operator).await;
    assert!(by_hand["dr_ledger"].is_null() && listings >= 1, "{by_hand:#}");
}
