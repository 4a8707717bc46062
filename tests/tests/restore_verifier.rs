//! restore-verifier end to end: the real handler and binary against moto server. Restores
//! here are instant (moto's); the scenario suite runs them on RDS's timeline.

use drpilot::config::VerifierConfig;
use drpilot::events::Decode;
use drpilot::plan::verify::run_id;
use drpilot::state::Invocation;
use drpilot::verifier::{Verifier, VerifierEvent, VerifierPorts};
use drpilot_tests::account::{rds_tags, Cloudwatch};
use drpilot_tests::sim::Simulator;
use drpilot_tests::verify::VerifyBed;
use drpilot_tests::{function_env, unique};
use serde_json::{json, Value};
use std::collections::HashMap;

fn config(bed: &VerifyBed) -> VerifierConfig {
    let settings = bed.settings(3 * 3600, 1);
    let vars: HashMap<&str, &str> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    VerifierConfig::from_vars(&vars).unwrap()
}

async fn verify(bed: &VerifyBed, cfg: &VerifierConfig, event: Value) -> Result<Value, drpilot::Error> {
    let sdk = drpilot_tests::sdk(&bed.r.dr).await;
    let ports = VerifierPorts::aws(&sdk, cfg);
    Verifier {
        ports: &ports,
        cfg,
        invocation: Invocation {
            request_id: unique("request"),
            deadline: chrono::Utc::now() + chrono::Duration::minutes(15),
        },
    }
    .handle(VerifierEvent::decode(event)?)
    .await
}

/// One database's verification in a run's report.
fn result<'a>(report: &'a Value, db: &str) -> &'a Value {
    let found = report["results"].as_array().unwrap().iter().find(|r| r["db"] == db);
    &found.unwrap_or_else(|| panic!("{db} not in {report:#}"))["verification"]
}

fn run_of(report: &Value) -> String {
    report["run"].as_str().unwrap().to_string()
}

/// What a run restores for the bed: the instance, the cluster and the cluster's instance.
fn restored_ids(bed: &VerifyBed, report: &Value) -> Vec<String> {
    use drpilot::model::{DbKind, ProtectedDb};
    use drpilot::plan::verify::{cluster_instance_id, restore_id};
    let run = run_of(report);
    let id = |kind, db: &str| restore_id(&run, &bed.deployment, &ProtectedDb { kind, id: db.into() });
    let cluster = id(DbKind::Cluster, &bed.cluster);
    vec![
        id(DbKind::Instance, &bed.instance),
        cluster_instance_id(&cluster),
        cluster,
    ]
}

/// Which of `ids` the DR region still lists.
async fn still_there(bed: &VerifyBed, ids: &[String]) -> Vec<String> {
    let all = bed.dr_databases("drpilot-rt-").await;
    ids.iter().filter(|id| all.contains(id)).cloned().collect()
}

/// `drpilot status --json` with the settings Terraform's dashboard_settings output gives, the
/// lag checker having just measured the instance's copies healthy.
async fn status(bed: &VerifyBed, extra: &str) -> Value {
    use drpilot::lagcheck::metric;
    let cw = Cloudwatch::new(&bed.r.dr).await;
    let now = chrono::Utc::now();
    cw.put("drpilot", metric::STATUS, (metric::DIMENSION, &bed.instance), 0.0, now)
        .await;
    cw.put(
        "drpilot",
        metric::RECOVERY_POINT,
        (metric::DIMENSION, &bed.instance),
        3600.0,
        now,
    )
    .await;
    let resources = json!([{"name": bed.instance, "kind": "snapshot", "db": bed.instance, "db_kind": "instance", "rpo_seconds": 86400}]);
    drpilot_tests::status_with_settings(&format!(
        "DRPILOT_SOURCE_REGION={}\nDRPILOT_DR_REGION={}\nDRPILOT_RESOURCES='{resources}'\nDRPILOT_STATE_BUCKET={}\nDRPILOT_S3_FORCE_PATH_STYLE=true\nDRPILOT_DEPLOYMENT={}\nDRPILOT_VERIFY_DATABASES='{}'\n{extra}",
        bed.r.source,
        bed.r.dr,
        bed.state_bucket,
        bed.deployment,
        bed.databases()
    ))
}

#[tokio::test]
async fn a_run_restores_each_newest_copy_checks_it_deletes_it_and_status_shows_it() {
    let bed = VerifyBed::new("eu-central-1", "eu-central-2").await;
    let _older = bed.copy_instance(None, chrono::Duration::hours(30)).await;
    let newest = bed.copy_instance(None, chrono::Duration::hours(2)).await;
    let _theirs = bed.copy_instance(Some("team-b"), chrono::Duration::hours(1)).await;
    let cluster_copy = bed.copy_cluster(chrono::Duration::hours(3)).await;
    let cfg = config(&bed);
    let sim = Simulator::connect();
    let mark = sim.wire_mark().await;

    let report = verify(&bed, &cfg, json!({"action": "run"})).await.unwrap();

    let instance = result(&report, &bed.instance);
    assert_eq!(instance["passed"], true, "{report:#}");
    assert_eq!(
        instance["copy"],
        newest.as_str(),
        "the newest copy of this deployment's"
    );
    let age = instance["copy_age_seconds"].as_f64().unwrap();
    assert!((7190.0..7300.0).contains(&age), "its data was two hours old: {age}");
    assert!(instance["restore_seconds"].as_f64().is_some());
    let checks: Vec<&str> = instance["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        checks,
        ["available", "engine", "engine version", "encrypted", "KMS key"]
    );
    let cluster = result(&report, &bed.cluster);
    assert_eq!(
        (cluster["passed"].clone(), cluster["copy"].clone()),
        (json!(true), json!(cluster_copy))
    );

    // At the wire: one restore of each, not public, isolated, tagged; deleted without a final
    // snapshot; nothing else deleted.
    let wire = sim.wire(mark).await.0;
    let ids = restored_ids(&bed, &report);
    let restores: Vec<_> = wire
        .calls("RestoreDBInstanceFromDBSnapshot")
        .filter(|e| e.param("DBInstanceIdentifier") == Some(ids[0].as_str()))
        .collect();
    assert_eq!(restores.len(), 1, "one restore of the instance");
    let r = restores[0];
    assert!(r.accepted());
    assert_eq!(
        r.param("DBSnapshotIdentifier"),
        Some(newest.as_str()),
        "the newest copy"
    );
    assert_eq!(r.param("PubliclyAccessible"), Some("false"));
    assert_eq!(r.param("DBSubnetGroupName"), Some(bed.subnet_group.as_str()));
    assert_eq!(
        r.param("VpcSecurityGroupIds.VpcSecurityGroupId.1")
            .or(r.param("VpcSecurityGroupIds.member.1")),
        Some(bed.security_group.as_str()),
        "{:?}",
        r.params
    );
    assert_eq!(
        r.param("DBInstanceClass"),
        Some("db.t4g.micro"),
        "the smallest class postgres takes"
    );
    let cluster_restore: Vec<_> = wire
        .calls("RestoreDBClusterFromSnapshot")
        .filter(|e| e.param("DBClusterIdentifier") == Some(ids[2].as_str()))
        .collect();
    assert_eq!(cluster_restore.len(), 1);
    assert_eq!(
        cluster_restore[0].param("SnapshotIdentifier"),
        Some(cluster_copy.as_str())
    );
    let cluster_id = ids[2].clone();
    let created: Vec<_> = wire
        .calls("CreateDBInstance")
        .filter(|e| e.param("DBClusterIdentifier") == Some(cluster_id.as_str()))
        .collect();
    assert_eq!(created.len(), 1, "one instance makes the cluster usable");
    assert_eq!(created[0].param("DBInstanceClass"), Some("db.t4g.medium"));
    let deletes: Vec<_> = wire
        .calls("DeleteDBInstance")
        .filter(|e| {
            e.param("DBInstanceIdentifier")
                .is_some_and(|id| ids.contains(&id.to_string()))
        })
        .chain(
            wire.calls("DeleteDBCluster")
                .filter(|e| e.param("DBClusterIdentifier") == Some(cluster_id.as_str())),
        )
        .collect();
    assert_eq!(deletes.len(), 3, "the instance, the cluster's instance and the cluster");
    assert!(
        deletes.iter().all(|e| e.param("SkipFinalSnapshot") == Some("true")),
        "{deletes:#?}"
    );
    assert!(still_there(&bed, &ids).await.is_empty(), "nothing left");

    // Responders, metrics, the dashboard.
    let notices = bed.responders.received().await;
    assert_eq!(notices.len(), 1, "one notice per run");
    assert!(
        notices[0].subject.contains("PASSED (2 of 2 restored)"),
        "{}",
        notices[0].subject
    );
    assert!(
        notices[0].message.contains(&newest) && notices[0].message.contains("restore took"),
        "{}",
        notices[0].message
    );
    let cw = Cloudwatch::new(&bed.r.dr).await;
    let verified = cw
        .values("drpilot", "RestoreVerified", ("Database", &bed.instance))
        .await;
    assert_eq!(verified.last().map(|v| v.1), Some(1.0));
    let board = status(&bed, "").await;
    let rows = board["verifications"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().all(|r| r["last"]["passed"] == true && r["risk"].is_null()),
        "{rows:#?}"
    );

    // An operator's run of one database restores that one only.
    let one = verify(&bed, &cfg, json!({"action": "run", "databases": [bed.instance]}))
        .await
        .unwrap();
    assert_eq!(one["results"].as_array().unwrap().len(), 1, "{one:#}");
}

#[tokio::test]
async fn a_restore_aws_refuses_is_reported_with_awss_reason_and_leaves_nothing() {
    let bed = VerifyBed::new("eu-central-1", "eu-central-2").await;
    bed.copy_instance(None, chrono::Duration::hours(1)).await;
    bed.copy_cluster(chrono::Duration::hours(1)).await;
    let cfg = config(&bed);
    bed.key_enabled(false).await; // the DR key disabled by mistake: every copy under it is unusable
    let report = verify(&bed, &cfg, json!({"action": "run"})).await.unwrap();
    bed.key_enabled(true).await;
    for db in [&bed.instance, &bed.cluster] {
        let v = result(&report, db);
        assert_eq!(v["passed"], false);
        let why = v["failure"].as_str().unwrap();
        assert!(why.contains("KMSKeyNotAccessibleFault"), "AWS's reason: {why}");
        assert!(v["restore_seconds"].is_null());
    }
    assert!(
        still_there(&bed, &restored_ids(&bed, &report)).await.is_empty(),
        "nothing was made, nothing is left"
    );
    let notice = &bed.responders.received().await[0];
    assert!(notice.subject.contains("FAILED"), "{}", notice.subject);
    assert!(
        notice.message.contains("KMSKeyNotAccessibleFault"),
        "{}",
        notice.message
    );
    let board = status(&bed, "").await;
    assert_eq!(board["verdict"], "at-risk", "{board:#}");
    assert!(
        board["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("not proven restorable")),
        "{board:#}"
    );
}

/// The tags a restore test of run `run` by deployment `deployment` carries.
fn tagged<'a>(run: &'a str, deployment: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("drpilot:restore-test", run),
        ("drpilot:managed-by", "drpilot"),
        ("drpilot:deployment", deployment),
    ]
}

/// A restore test an earlier run left (or someone else's look-alike), restored from `copy`.
async fn leftover(bed: &VerifyBed, copy: &str, id: &str, tags: &[(&str, &str)]) {
    bed.r
        .rds_dr
        .restore_db_instance_from_db_snapshot()
        .db_instance_identifier(id)
        .db_snapshot_identifier(copy)
        .db_instance_class("db.t4g.micro")
        .set_tags(Some(rds_tags(tags)))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_sweeper_deletes_this_deployments_old_restore_tests_and_nothing_else() {
    let bed = VerifyBed::new("eu-central-1", "eu-central-2").await;
    let copy = bed.copy_instance(None, chrono::Duration::hours(1)).await;
    bed.copy_cluster(chrono::Duration::hours(1)).await;
    let old = run_id(chrono::Utc::now() - chrono::Duration::hours(5));
    let recent = run_id(chrono::Utc::now() - chrono::Duration::minutes(10));
    let dep = bed.deployment.as_str();
    let killed = unique("drpilot-rt-killed");
    let fresh = unique("drpilot-rt-fresh");
    let team_b = unique("drpilot-rt-team-b");
    let production = unique("drpilot-rt-production-lookalike");
    leftover(&bed, &copy, &killed, &tagged(&old, dep)).await;
    leftover(&bed, &copy, &fresh, &tagged(&recent, dep)).await;
    leftover(&bed, &copy, &team_b, &tagged(&old, "team-b")).await;
    leftover(&bed, &copy, &production, &[]).await;
    let cfg = config(&bed);
    let sim = Simulator::connect();
    let mark = sim.wire_mark().await;

    let report = verify(&bed, &cfg, json!({"action": "run"})).await.unwrap();

    let swept: Vec<&str> = report["swept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(swept.len(), 1, "{report:#}");
    assert!(swept[0].contains(&killed) && swept[0].contains(&old));
    let wire = sim.wire(mark).await.0;
    let deleted: Vec<&str> = wire
        .calls("DeleteDBInstance")
        .chain(wire.calls("DeleteDBCluster"))
        .filter_map(|e| e.param("DBInstanceIdentifier").or(e.param("DBClusterIdentifier")))
        .collect();
    for kept in [&fresh, &team_b, &production] {
        assert!(!deleted.contains(&kept.as_str()), "{kept} deleted: {deleted:?}");
    }
    assert!(deleted.contains(&killed.as_str()));
    let ours = restored_ids(&bed, &report);
    assert!(
        still_there(&bed, &ours).await.is_empty(),
        "the run's own are deleted too"
    );
    let left = bed.dr_databases("drpilot-rt-").await;
    assert!(!left.contains(&killed));
    for kept in [&fresh, &team_b, &production] {
        assert!(left.contains(kept), "{kept} is still there");
    }
    let notice = &bed.responders.received().await[0];
    assert!(
        notice.message.contains(&killed),
        "responders are told what was swept: {}",
        notice.message
    );
}

fn run_binary(env: &std::collections::BTreeMap<String, String>, event: &str) -> std::process::Output {
    drpilot_tests::run_function("restore-verifier", env, event)
}

#[tokio::test]
async fn malformed_events_make_no_aws_call_and_a_bad_setting_fails_at_cold_start() {
    let bed = VerifyBed::new("eu-central-1", "eu-central-2").await;
    let sim = Simulator::connect();
    let key = format!("AKIDVERIFIER{}", std::process::id());
    let mut env = function_env(&bed.settings(3600, 1));
    env.insert("AWS_ACCESS_KEY_ID".into(), key.clone());
    let mark = sim.wire_mark().await;
    let out = run_binary(&env, "not json");
    assert!(!out.status.success() && out.stdout.is_empty());
    for bad in [
        "[1]",
        r#"{"action": "restore"}"#,
        r#"{"action": "run", "databases": ["not-verified"]}"#,
        r#"{"action": "run", "databases": []}"#,
        r#"{"source": "aws.rds", "detail-type": "RDS DB Snapshot Event", "detail": {}}"#,
    ] {
        let out = run_binary(&env, bad);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("drpilot.BadEvent"), "{bad}: {stderr}");
    }
    let wire = sim.wire(mark).await.0;
    let calls: Vec<_> = wire
        .0
        .iter()
        .filter(|e| e.access_key.as_deref() == Some(key.as_str()))
        .collect();
    assert!(calls.is_empty(), "no AWS call for a bad event: {calls:#?}");

    let mut env = function_env(&bed.settings(3600, 1));
    env.remove("DRPILOT_VERIFY_SECURITY_GROUPS");
    env.insert("AWS_ENDPOINT_URL".into(), "http://127.0.0.1:9".into()); // nothing may be called
    let out = run_binary(&env, r#"{"action": "run"}"#);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DRPILOT_VERIFY_SECURITY_GROUPS"), "{stderr}");

    // and a good event through the binary: the status command reads the record only
    let env = function_env(&bed.settings(3600, 1));
    let out = run_binary(&env, r#"{"action": "status"}"#);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status, json!({"run": null, "last": {}, "unreported": 0}));
}
