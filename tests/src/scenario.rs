//! `make demo`: a two-region account on the emulator, and drpilot's real function binaries
//! run on it as Lambda would run them, printed as a responder would want to read it.

use crate::account::{instance_endpoint, Regions, Responders};
use crate::night::{hosted_zone, point, Account, Db, DbPlan, Night, NightPlan, Scale};
use crate::{function_binary, function_env, repo_path};
use drpilot::copier::CopyReport;
use drpilot::dashboard::Dashboard;
use drpilot::lagcheck::LagReport;
use drpilot::promoter::record::Failover;
use std::process::Command;

/// What the scenario showed, for `make demo` to print and a test to check.
pub struct Outcome {
    pub passed: bool,
    pub dashboard_before: Dashboard,
    pub dashboard_after: Dashboard,
    pub failover: Option<Failover>,
    /// The status pages (`drpilot status --html`) before and after the failover.
    pub pages: (std::path::PathBuf, std::path::PathBuf),
}

const SOURCE: &str = "us-east-1";
const DR: &str = "us-west-2";

fn step(title: &str) {
    println!("\n== {title}");
}

/// Runs a function binary once on a sample event, as `--event` does for a user.
fn invoke<T: serde::de::DeserializeOwned>(
    function: &str,
    env: &std::collections::BTreeMap<String, String>,
    event: &str,
) -> Result<T, String> {
    let out = Command::new(function_binary(function))
        .args(["--event", &repo_path(event).display().to_string()])
        .env_clear()
        .envs(env)
        .env("RUST_LOG", "warn")
        .output()
        .map_err(|e| format!("cannot run {function}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{function} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("unexpected response: {e}"))
}

/// The deployed lag checker, run now on an operator's `{"action": "check"}`.
async fn lag_check(night: &Night) -> Result<LagReport, String> {
    let event = crate::sample_event("lag-checker/operator-check.json");
    match night.invoke(crate::night::LAG_CHECKER, event).await {
        crate::night::Outcome::Ok(report) => {
            serde_json::from_value(report).map_err(|e| format!("unexpected lag-checker response: {e}"))
        }
        other => Err(format!("lag-checker failed: {other:?}")),
    }
}

/// The whole DR loop on the emulator: seed a two-region account, copy snapshots, check lag,
/// show the dashboard, lose the primary, fail over, show the timeline and the dashboard again.
pub async fn run() -> Result<Outcome, String> {
    step(&format!("Seeding a two-region account: primary {SOURCE}, DR {DR}"));
    let r = Regions::new(SOURCE, DR).await;
    let key = r.dr_kms_key().await;
    // the responders' topic lives in the DR region, as Terraform puts it: it must outlive the primary
    let responders = Responders::new(DR, "drpilot-responders").await;
    r.create_instance("orders-db", true, &[("drpilot:copy", "true"), ("team", "payments")])
        .await;
    r.create_instance("reports-db", false, &[("drpilot:copy", "true")])
        .await;
    r.create_instance("scratch-db", false, &[]).await;
    r.create_cluster("ledger", true, &[("drpilot:copy", "true")]).await;
    // Yesterday's and last week's copies, as earlier runs of drpilot would have left them
    // (the emulator cannot age a snapshot, so the source-time tag carries the age).
    for days in [1i64, 9, 16] {
        let copy = format!("drpilot-orders-db-nightly-{days}d-ago");
        r.seed_drpilot_copy("orders-db", &copy, chrono::Duration::days(days), Some(&key))
            .await;
    }
    // the newest snapshot of orders-db: taken by hand just now, before a migration
    r.snapshot_instance("orders-db", "orders-db-before-migration", &[("team", "payments")])
        .await;
    println!("  orders-db (encrypted), reports-db, ledger (Aurora, encrypted): tagged drpilot:copy=true");
    println!("  scratch-db: not tagged, not protected");
    println!("  DR region already holds 3 older copies of orders-db (1, 9 and 16 days old)");

    let env = function_env(&[
        ("DRPILOT_SOURCE_REGION", SOURCE.into()),
        ("DRPILOT_DR_REGION", DR.into()),
        ("DRPILOT_SELECT_TAG", "drpilot:copy=true".into()),
        ("DRPILOT_DR_KMS_KEY_ID", key.clone()),
        ("DRPILOT_RETAIN_DAYS", "7".into()),
        ("DRPILOT_NOTIFY_TOPIC_ARN", responders.topic_arn.clone()),
    ]);

    step("snapshot-copier, scheduled run (events/snapshot-copier/schedule.json)");
    let first = invoke::<CopyReport>("snapshot-copier", &env, "events/snapshot-copier/schedule.json")?;
    print!("{}", first.table());
    println!("  {}", first.summary());

    step("snapshot-copier again, on an RDS snapshot-created event (duplicate work is a no-op)");
    let second = invoke::<CopyReport>(
        "snapshot-copier",
        &env,
        "events/snapshot-copier/rds-automated-snapshot-created.json",
    )?;
    print!("{}", second.table());

    step(&format!("What the DR region ({DR}) now holds"));
    let mut rows = Vec::new();
    for db in ["orders-db", "reports-db"] {
        for c in r.dr_copies_of(db).await {
            let tags = crate::account::tags_of(c.tag_list());
            rows.push(vec![
                c.db_snapshot_identifier().unwrap_or_default().to_string(),
                db.to_string(),
                tags.get("drpilot:source-snapshot-time").cloned().unwrap_or_default(),
                c.kms_key_id()
                    .map(|k| if k == key { "DR key".to_string() } else { k.to_string() })
                    .unwrap_or_else(|| "unencrypted".into()),
            ]);
        }
    }
    for c in r.dr_cluster_copies_of("ledger").await {
        let tags = crate::account::tags_of(c.tag_list());
        rows.push(vec![
            c.db_cluster_snapshot_identifier().unwrap_or_default().to_string(),
            "ledger".into(),
            tags.get("drpilot:source-snapshot-time").cloned().unwrap_or_default(),
            c.kms_key_id()
                .map(|k| if k == key { "DR key".to_string() } else { k.to_string() })
                .unwrap_or_else(|| "unencrypted".into()),
        ]);
    }
    rows.sort();
    print!(
        "{}",
        drpilot::table::render(&["DR COPY", "SOURCE DB", "RECOVERY POINT", "ENCRYPTION"], &rows)
    );

    let notices = responders.received().await;
    step(&format!("Notices to responders from the copier: {}", notices.len()));
    for n in &notices {
        println!("  {}\n{}", n.subject, n.message);
    }

    let state = "drpilot-state-dr";
    r.create_bucket(DR, state).await;
    let verified = verify_restores(&responders, state).await?;

    step("Warm standby: cross-region read replicas, and S3 assets backed up by s3-backup");
    r.create_replica("orders-db", "orders-db-dr").await;
    r.create_replica("reports-db", "reports-db-dr").await;
    let scale = Scale(20);
    // A batch job floods reports-db: its replica falls seven minutes behind (on the simulator's
    // clock it gets there while the rest of the demo runs).
    crate::sim::Simulator::connect()
        .set_replication(
            DR,
            "reports-db-dr",
            serde_json::json!({"lag_seconds": scale.real_secs(420.0)}),
        )
        .await;
    // Replica budgets on the simulator's clock (AWS's divided by the scale): a minute, five.
    let resources = vec![
        serde_json::json!({"name": "orders-db", "kind": "rds-replica", "replica": "orders-db-dr", "rpo_seconds": scale.real_secs(60.0)}),
        serde_json::json!({"name": "reports-db", "kind": "rds-replica", "replica": "reports-db-dr", "rpo_seconds": scale.real_secs(300.0)}),
        serde_json::json!({"name": "orders-db-copies", "kind": "snapshot", "db": "orders-db", "rpo_seconds": 86400}),
        serde_json::json!({"name": "ledger-copies", "kind": "snapshot", "db": "ledger", "db_kind": "cluster", "rpo_seconds": 86400}),
        serde_json::json!({"name": "shop-assets", "kind": "s3-backup", "backup": "shop-assets", "rpo_seconds": 21600}),
    ];
    let backups = serde_json::json!([{
        "name": "shop-assets", "source_bucket": "shop-assets", "dr_bucket": "shop-assets-dr",
        "kms_key_id": key, "storage_class": "STANDARD_IA", "retain_days": 35
    }])
    .to_string();
    let route53 = aws_sdk_route53::Client::new(&crate::sdk("us-east-1").await);
    let zone = hosted_zone(&route53, "shop.example.com").await;
    let primary = instance_endpoint(&r.rds_source, "orders-db").await;
    point(&route53, &zone, "db.shop.example.com", &primary).await;
    let orders = Db {
        global_cluster: None,
        lag_resource: "orders-db".into(),
        plan: DbPlan {
            name: "orders".into(),
            lag: 3.0,
            // the data-loss limit of the warm-standby example: a minute
            max_data_loss: 60.0,
            rto: 900.0,
            rpo_budget: 60.0,
            health_check: false,
            aurora: false,
            engine: "postgres",
            failover_records: false,
            recovery: None,
        },
        primary: "orders-db".into(),
        replica: "orders-db-dr".into(),
        alarm: "drpilot-orders-primary-down".into(),
        record: "db.shop.example.com".into(),
        zone: zone.clone(),
        primary_endpoint: primary.clone(),
        app_group: None,
        app_service: None,
        automation: None,
        health_check_id: None,
        failover_alarm: None,
    };
    let settings = dashboard_settings(&resources, state, &responders.topic_arn, &backups, &zone, scale)?;
    let backup_ok = s3_backup(&r, &responders, state, &backups, &settings).await?;

    step("Deploying drpilot's functions as infra/ would: the lag checker every minute, the primary-down alarm, the promoter on its EventBridge rule");
    println!("  The simulator runs AWS's timeline 20 times faster (a one-minute period takes 3 s); drpilot's");
    println!("  settings are scaled the same way. Replication: orders-db-dr 3s behind; reports-db-dr 7m behind");
    println!("  (a batch job is flooding it). The lag checker's tables below are on that clock (budgets 3s and 15s");
    println!("  are AWS's 1m and 5m); the failover's timeline is converted back to AWS time.");
    let plan = NightPlan {
        databases: vec![orders.plan.clone()],
        ..NightPlan::new("demo", SOURCE, DR)
    };
    let account = Account {
        r,
        responders,
        state_bucket: state.into(),
        dbs: vec![orders],
        resources: Some(resources),
        route53,
        member: None,
    };
    let mut night = Night::deploy(plan, account).await;
    night
        .until("reports-db-dr is more than five minutes behind", 900.0, |n| {
            Box::pin(async move {
                let behind = n.sim.replication(DR, "reports-db-dr").await;
                behind
                    .replica
                    .is_some_and(|r| n.plan.scale.aws(r.behind_seconds) > 330.0)
            })
        })
        .await;
    night.pass(120.0).await; // and RDS has reported it
    step("lag-checker (events/lag-checker/operator-check.json): recovery point vs RPO budget");
    let lag = lag_check(&night).await?;
    print!("{}", lag.table());
    night.pass(120.0).await;
    let notices = night.notices().await;
    step(&format!(
        "Notices to responders from the lag checker, two scheduled minutes later: {} (one breach, one notice)",
        notices.len()
    ));
    for n in &notices {
        println!(
            "  [{}] {}\n{}",
            n.attribute("severity").unwrap_or("?"),
            n.subject,
            indent(&n.message)
        );
    }

    step("DR dashboard (drpilot status), before");
    let (dashboard_before, page_before) = status(&settings, "before")?;

    let (failover_ok, failover) = simulate_failure(&night).await?;

    step("lag-checker after the failover: orders-db-dr is a primary now, no longer a replica");
    let after = lag_check(&night).await?;
    print!("{}", after.table());
    step("DR dashboard (drpilot status), after the failover");
    let (dashboard_after, page_after) = status(&settings, "after")?;
    night.end().await;

    let status = |name: &str| lag.resources.iter().find(|r| r.name == name).map(|r| r.status.as_str());
    let ok = first.is_success()
        && second.is_success()
        && first.dbs.iter().any(|d| !d.pruned.is_empty())
        && status("orders-db") == Some("healthy")
        && status("reports-db") == Some("breached")
        && status("orders-db-copies") == Some("healthy")
        && notices.len() == 1
        && status("shop-assets") == Some("healthy")
        && backup_ok
        && verified
        && failover_ok;
    Ok(Outcome {
        passed: ok,
        dashboard_before,
        dashboard_after,
        failover,
        pages: (page_before, page_after),
    })
}

/// The settings file Terraform's `dashboard_settings` output gives a user (on the scaled clock).
fn dashboard_settings(
    resources: &[serde_json::Value],
    state: &str,
    topic: &str,
    backups: &str,
    zone: &str,
    scale: Scale,
) -> Result<std::path::PathBuf, String> {
    let databases = serde_json::json!([{
        "name": "orders", "kind": "rds-replica", "primary": "orders-db", "replica": "orders-db-dr",
        "alarms": ["drpilot-orders-primary-down"], "lag_resource": "orders-db",
        "max_data_loss_seconds": scale.real_secs(60.0), "rto_seconds": scale.real_secs(900.0),
        "dns": {"zone_id": zone, "record_name": "db.shop.example.com", "ttl": 30}
    }]);
    let resources = serde_json::Value::from(resources.to_vec());
    let path = std::env::temp_dir().join(format!("drpilot-demo-{}.env", std::process::id()));
    let text = format!(
        "DRPILOT_SOURCE_REGION={SOURCE}\nDRPILOT_DR_REGION={DR}\nDRPILOT_RESOURCES='{resources}'\nDRPILOT_DATABASES='{databases}'\nDRPILOT_STATE_BUCKET={state}\nDRPILOT_S3_FORCE_PATH_STYLE=true\nDRPILOT_NOTIFY_TOPIC_ARN={topic}\nDRPILOT_S3_BACKUPS='{backups}'\nDRPILOT_METRIC_PERIOD_SECONDS={}\nDRPILOT_VERIFY_DATABASES='{VERIFY_DATABASES}'\n",
        scale.period()
    );
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path)
}

/// S3: the shop's assets backed up into a versioned DR bucket, a bad deploy, and a restore of
/// the point in time before it, with the CLI reading `settings`. Returns whether every step
/// did what it should.
async fn s3_backup(
    r: &Regions,
    responders: &Responders,
    state: &str,
    backups: &str,
    settings: &std::path::Path,
) -> Result<bool, String> {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    let assets = r.create_bucket(SOURCE, "shop-assets").await;
    let assets_dr = r.create_bucket(DR, "shop-assets-dr").await;
    assets_dr
        .put_bucket_versioning()
        .bucket("shop-assets-dr")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let put = |k: &'static str, body: &'static str| {
        let assets = assets.clone();
        async move {
            assets
                .put_object()
                .bucket("shop-assets")
                .key(k)
                .body(body.as_bytes().to_vec().into())
                .send()
                .await
                .map_err(|e| e.to_string())
        }
    };
    put("logo.png", "logo").await?;
    put("catalog.json", r#"{"items": 120}"#).await?;
    put("terms.html", "terms v3").await?;
    let env = function_env(&[
        ("DRPILOT_SOURCE_REGION", SOURCE.into()),
        ("DRPILOT_DR_REGION", DR.into()),
        ("DRPILOT_S3_BACKUPS", backups.into()),
        ("DRPILOT_STATE_BUCKET", state.into()),
        ("DRPILOT_NOTIFY_TOPIC_ARN", responders.topic_arn.clone()),
        ("DRPILOT_S3_FORCE_PATH_STYLE", "true".into()),
    ]);
    let run = |title: &str| -> Result<serde_json::Value, String> {
        step(title);
        let report: serde_json::Value = invoke("s3-backup", &env, "events/s3-backup/schedule.json")?;
        let b = &report["backups"][0];
        let c = &b["counts"];
        println!(
            "  point in time {}: {} copied ({} bytes), {} unchanged, {} deleted at the source, {} failed",
            b["run_id"].as_str().unwrap_or("?"),
            c["copied"],
            c["bytes_copied"],
            c["unchanged"],
            c["deleted_at_source"],
            c["failed"]
        );
        Ok(report)
    };
    let copied = |r: &serde_json::Value| r["backups"][0]["counts"]["copied"].as_u64();
    println!(
        "  s3://shop-assets ({SOURCE}): logo.png, catalog.json, terms.html; s3://shop-assets-dr ({DR}): versioned"
    );
    let first = run("s3-backup (events/s3-backup/schedule.json): server-side copies into the DR bucket, DR key")?;
    let rerun = run("s3-backup again: nothing changed, nothing copied")?;
    println!("\n  A bad deploy rewrites catalog.json and deletes terms.html.");
    put("catalog.json", r#"{"items": 0}"#).await?;
    assets
        .delete_object()
        .bucket("shop-assets")
        .key("terms.html")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let after = run("s3-backup: the next scheduled run records the damage as a new point in time")?;

    let point = first["backups"][0]["run_id"].as_str().unwrap_or_default().to_string();
    let cli = |title: &str, args: &[&str]| -> Result<bool, String> {
        step(title);
        let out = Command::new(function_binary("drpilot"))
            .args(args)
            .arg("--settings")
            .arg(settings)
            .env_clear()
            .envs(function_env(&[]))
            .output()
            .map_err(|e| format!("cannot run drpilot: {e}"))?;
        println!("{}", indent(String::from_utf8_lossy(&out.stdout).trim_end()));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        Ok(out.status.success())
    };
    let listed = cli(
        "drpilot points --backup shop-assets",
        &["points", "--backup", "shop-assets"],
    )?;
    let restore = [
        "restore",
        "--backup",
        "shop-assets",
        "--point",
        &point,
        "--to-bucket",
        "shop-assets",
        "--delete-extra",
    ];
    let dry = cli(
        &format!("drpilot restore ... --point {point} (dry run: lists, changes nothing)"),
        &restore,
    )?;
    let applied = cli("drpilot restore ... --apply", &[&restore[..], &["--apply"]].concat())?;
    let catalog = assets
        .get_object()
        .bucket("shop-assets")
        .key("catalog.json")
        .send()
        .await
        .map_err(|e| e.to_string())?
        .body
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .into_bytes();
    let terms = assets
        .head_object()
        .bucket("shop-assets")
        .key("terms.html")
        .send()
        .await
        .is_ok();
    println!(
        "  s3://shop-assets now: catalog.json = {}, terms.html {}",
        String::from_utf8_lossy(&catalog),
        if terms { "is back" } else { "is MISSING" }
    );
    let ok = copied(&first) == Some(3)
        && copied(&rerun) == Some(0)
        && copied(&after) == Some(1)
        && listed
        && dry
        && applied
        && catalog.as_ref() == br#"{"items": 120}"#
        && terms;
    Ok(ok)
}

/// Runs `drpilot status` as a user would, prints it, writes its status page (`--html`) under
/// target/drpilot-demo/ and says where, and returns its `--json` form and the page's path.
fn status(settings: &std::path::Path, when: &str) -> Result<(Dashboard, std::path::PathBuf), String> {
    let dir = crate::repo_path("target/drpilot-demo");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dir = dir.canonicalize().unwrap_or(dir); // printed: no tests/../ in it
    let page = dir.join(format!("status-{when}.html"));
    let run = |json: bool| -> Result<Vec<u8>, String> {
        let mut cmd = Command::new(function_binary("drpilot"));
        cmd.arg("status")
            .arg("--settings")
            .arg(settings)
            .env_clear()
            .envs(function_env(&[]));
        if json {
            cmd.arg("--json");
        } else {
            cmd.arg("--html").arg(&page);
        }
        let out = cmd.output().map_err(|e| format!("cannot run drpilot status: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "drpilot status failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(out.stdout)
    };
    print!("{}", String::from_utf8_lossy(&run(false)?));
    println!("the status page (open it in a browser): {}", page.display());
    let board = serde_json::from_slice(&run(true)?).map_err(|e| format!("drpilot status --json: {e}"))?;
    Ok((board, page))
}

/// The primary region goes dark. CloudWatch (the simulator's) evaluates the primary-down
/// alarm from what the lag checker publishes; EventBridge delivers the state change to the
/// promoter, which decides, promotes and switches DNS, resumed by its continuation schedule.
async fn simulate_failure(night: &Night) -> Result<(bool, Option<Failover>), String> {
    step(&format!(
        "FAILURE: {SOURCE} goes dark (every request to it fails); replication to {DR} breaks"
    ));
    let dark = night.region_goes_dark().await;
    night
        .until("orders failed over", 1800.0, |n| {
            Box::pin(n.failover_completed("orders"))
        })
        .await;
    let Some(f) = night.failover("orders").await else {
        return Err("no failover was recorded".into());
    };
    let Some(t) = night.times("orders", dark).await else {
        return Err("the failover did not complete".into());
    };
    let h = |v: f64| drpilot::plan::lag::human_seconds(v.round());
    step("The failover, in AWS time from the outage");
    for c in night.sim.alarm_changes(DR, "drpilot-orders-primary-down").await {
        if c.at > dark {
            println!(
                "  +{:>6}  alarm drpilot-orders-primary-down -> {}",
                h(night.plan.scale.aws(c.at - dark)),
                c.state
            );
        }
    }
    println!(
        "  detect {} (the alarm: three broken one-minute periods) + decide {} + promote {} + DNS {}",
        h(t.detect),
        h(t.decide),
        h(t.promote),
        h(t.dns)
    );
    println!(
        "  RTO {} against the budget {}: {}",
        h(t.rto),
        h(t.rto_budget),
        if t.rto <= t.rto_budget { "within" } else { "OVER" }
    );
    let lost = night.data_lost("orders").await;
    println!(
        "  RPO: drpilot estimated {} (the last healthy lag plus the silence before the alarm), limit {};",
        t.estimated_rpo.map(h).unwrap_or("?".into()),
        h(t.data_loss_limit)
    );
    println!(
        "       the writes actually lost, as the simulator counts them: {}",
        h(lost)
    );
    println!("\n  The promoter's record (wall clock on the test bed):");
    print!("{}", drpilot::promoter::notices::timeline(&f));
    let now_points = night.dns("orders").await.unwrap_or_default();
    println!("  db.shop.example.com -> {now_points}");

    let notices = night.promoter_notices().await;
    step(&format!("Notices to responders from the promoter: {}", notices.len()));
    for n in &notices {
        println!("  [{}] {}", n.attribute("severity").unwrap_or("?"), n.subject);
    }
    if let Some(last) = notices.last() {
        println!(
            "\n  The last one, in full (its durations are the test bed's):\n{}",
            indent(&last.message)
        );
    }
    let replica = night.replica_endpoint("orders").await;
    let ok = f.completed_at.is_some()
        && now_points == replica
        && night.requests("PromoteReadReplica", "orders").await == 1
        && notices.len() == 4
        && t.rto <= t.rto_budget;
    Ok((ok, Some(f)))
}

/// The databases the demo's restore verifier proves restorable.
const VERIFY_DATABASES: &str =
    r#"[{"db": "orders-db", "db_kind": "instance"}, {"db": "ledger", "db_kind": "cluster"}]"#;

/// The restore verifier's scheduled run: the newest DR copy of orders-db and of ledger restored
/// in the DR region, checked, deleted. Returns whether both verified and nothing was left.
async fn verify_restores(responders: &Responders, state: &str) -> Result<bool, String> {
    use drpilot::verifier::Verification;
    step("restore-verifier (events/restore-verifier/schedule.json): do the newest copies restore, and how fast?");
    let sim = crate::sim::Simulator::connect();
    // A restore takes 10-30 minutes on AWS; here 3 s (a cluster: 3 s, then 3 s for its
    // instance), a delete 1 s. The verifier measures whatever it takes.
    sim.configure(DR, serde_json::json!({"restore_seconds": 3.0, "delete_seconds": 1.0}))
        .await;
    let (subnet_group, security_group) = sim
        .isolated_network(DR, crate::ACCOUNT_ID, "drpilot-restore-tests")
        .await;
    let env = function_env(&[
        ("DRPILOT_SOURCE_REGION", SOURCE.into()),
        ("DRPILOT_DR_REGION", DR.into()),
        ("DRPILOT_VERIFY_DATABASES", VERIFY_DATABASES.into()),
        ("DRPILOT_VERIFY_SUBNET_GROUP", subnet_group),
        ("DRPILOT_VERIFY_SECURITY_GROUPS", security_group),
        ("DRPILOT_POLL_SECONDS", "1".into()),
        ("DRPILOT_STATE_BUCKET", state.into()),
        ("DRPILOT_S3_FORCE_PATH_STYLE", "true".into()),
        ("DRPILOT_NOTIFY_TOPIC_ARN", responders.topic_arn.clone()),
    ]);
    let report: serde_json::Value = invoke("restore-verifier", &env, "events/restore-verifier/schedule.json")?;
    let results: Vec<(String, Verification)> = report["results"]
        .as_array()
        .ok_or_else(|| format!("the run did not finish in one invocation: {report}"))?
        .iter()
        .map(|r| {
            serde_json::from_value(r["verification"].clone()).map(|v| (r["db"].as_str().unwrap_or("?").to_string(), v))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("unexpected verifier report: {e}"))?;
    let secs = |s: Option<f64>| s.map(drpilot::plan::lag::human_seconds).unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|(db, v)| {
            vec![
                db.clone(),
                if v.passed { "VERIFIED" } else { "FAILED" }.into(),
                v.copy.clone().unwrap_or_default(),
                secs(v.copy_age_seconds),
                secs(v.restore_seconds),
                v.checks.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
            ]
        })
        .collect();
    print!(
        "{}",
        drpilot::table::render(
            &[
                "DATABASE",
                "RESTORE TEST",
                "COPY RESTORED",
                "ITS AGE",
                "RESTORE TOOK",
                "CHECKED"
            ],
            &rows
        )
    );
    let left = crate::account::Regions::new(SOURCE, DR).await;
    let instances = left
        .rds_dr
        .describe_db_instances()
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let clusters = left
        .rds_dr
        .describe_db_clusters()
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let leftovers = instances
        .db_instances()
        .iter()
        .filter_map(|d| d.db_instance_identifier())
        .chain(clusters.db_clusters().iter().filter_map(|c| c.db_cluster_identifier()))
        .filter(|id| id.starts_with("drpilot-rt-"))
        .count();
    println!("  each restored into a throwaway database (not public, no ingress), then deleted: {leftovers} left");
    for n in responders.received().await {
        println!("  notice: {}\n{}", n.subject, indent(&n.message));
    }
    Ok(results.len() == 2 && results.iter().all(|(_, v)| v.passed) && leftovers == 0)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}
