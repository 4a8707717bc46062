//! `make demo`: a two-region account on the emulator, and drpilot's real function binaries
//! run on it as Lambda would run them, printed as a responder would want to read it.

use crate::account::{instance_endpoint, Regions, Responders};
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

/// The whole DR loop on the emulator: seed a two-region account, copy snapshots, check lag,
/// show the dashboard, lose the primary, fail over, show the timeline and the dashboard again.
pub async fn run() -> Result<Outcome, String> {
    step(&format!("Seeding a two-region account: primary {SOURCE}, DR {DR}"));
    let r = Regions::new(SOURCE, DR).await;
    let key = r.dr_kms_key().await;
    let responders = Responders::new(SOURCE, "drpilot-responders").await;
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

    step("Warm standby: cross-region read replicas, and S3 assets backed up by s3-backup");
    r.create_replica("orders-db", "orders-db-dr").await;
    r.create_replica("reports-db", "reports-db-dr").await;
    let state = "drpilot-state-dr";
    r.create_bucket(DR, state).await;
    let resources = serde_json::json!([
        {"name": "orders-db", "kind": "rds-replica", "replica": "orders-db-dr", "rpo_seconds": 60},
        {"name": "reports-db", "kind": "rds-replica", "replica": "reports-db-dr", "rpo_seconds": 300},
        {"name": "orders-db-copies", "kind": "snapshot", "db": "orders-db", "rpo_seconds": 86400},
        {"name": "ledger-copies", "kind": "snapshot", "db": "ledger", "db_kind": "cluster", "rpo_seconds": 86400},
        {"name": "shop-assets", "kind": "s3-backup", "backup": "shop-assets", "rpo_seconds": 21600}
    ]);
    let backups = serde_json::json!([{
        "name": "shop-assets", "source_bucket": "shop-assets", "dr_bucket": "shop-assets-dr",
        "kms_key_id": key, "storage_class": "STANDARD_IA", "retain_days": 35
    }])
    .to_string();
    let settings = dashboard_settings(&resources, state, &responders.topic_arn, &backups)?;
    let backup_ok = s3_backup(&r, &responders, state, &backups, &settings).await?;
    step("Warm standby: the lag checker");
    // moto reports no replication lag: put the ReplicaLag datapoints RDS would publish.
    let cw = crate::account::Cloudwatch::new(DR).await;
    let now = chrono::Utc::now();
    cw.put(
        "AWS/RDS",
        "ReplicaLag",
        ("DBInstanceIdentifier", "orders-db-dr"),
        3.0,
        now,
    )
    .await;
    cw.put(
        "AWS/RDS",
        "ReplicaLag",
        ("DBInstanceIdentifier", "reports-db-dr"),
        420.0,
        now,
    )
    .await;
    println!("  orders-db-dr: ReplicaLag 3s; reports-db-dr: ReplicaLag 7m (a batch job is flooding it)");
    println!("  s3://shop-assets: backed up above (its newest point in time is measured)");
    let lag_env = function_env(&[
        ("DRPILOT_SOURCE_REGION", SOURCE.into()),
        ("DRPILOT_DR_REGION", DR.into()),
        ("DRPILOT_RESOURCES", resources.to_string()),
        ("DRPILOT_STATE_BUCKET", state.into()),
        ("DRPILOT_NOTIFY_TOPIC_ARN", responders.topic_arn.clone()),
        ("DRPILOT_S3_FORCE_PATH_STYLE", "true".into()),
    ]);
    step("lag-checker (events/lag-checker/schedule.json): recovery point vs RPO budget");
    let lag: LagReport = invoke("lag-checker", &lag_env, "events/lag-checker/schedule.json")?;
    print!("{}", lag.table());
    step("lag-checker again a moment later: the breach is still on, nobody is paged twice");
    let again: LagReport = invoke("lag-checker", &lag_env, "events/lag-checker/operator-check.json")?;
    println!("  notices sent by this run: {}", again.notices.len());
    let notices = responders.received().await;
    step(&format!(
        "Notices to responders from the lag checker: {}",
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
    let dashboard_before = status(&settings)?;

    let (failover_ok, failover) = simulate_failure(&r, &responders, state).await?;

    step("DR dashboard (drpilot status), after the failover");
    println!("(On AWS the next lag check would show orders-db BROKEN: its replica is now a primary. moto keeps the");
    println!(" replica's source link after promotion, so that check is not re-run here.)");
    let dashboard_after = status(&settings)?;

    let status = |name: &str| lag.resources.iter().find(|r| r.name == name).map(|r| r.status.as_str());
    let ok = first.is_success()
        && second.is_success()
        && first.dbs.iter().any(|d| !d.pruned.is_empty())
        && status("orders-db") == Some("healthy")
        && status("reports-db") == Some("breached")
        && status("orders-db-copies") == Some("healthy")
        && again.notices.is_empty()
        && notices.len() == 1
        && status("shop-assets") == Some("healthy")
        && backup_ok
        && failover_ok;
    Ok(Outcome {
        passed: ok,
        dashboard_before,
        dashboard_after,
        failover,
    })
}

/// The settings file Terraform's `dashboard_settings` output gives a user.
fn dashboard_settings(
    resources: &serde_json::Value,
    state: &str,
    topic: &str,
    backups: &str,
) -> Result<std::path::PathBuf, String> {
    let databases = serde_json::json!([{
        "name": "orders", "kind": "rds-replica", "primary": "orders-db", "replica": "orders-db-dr",
        "alarms": ["drpilot-orders-primary-down"], "lag_resource": "orders-db", "max_data_loss_seconds": 60,
        "dns": {"zone_id": "Z-DEMO", "record_name": "db.shop.example.com"}
    }]);
    let path = std::env::temp_dir().join(format!("drpilot-demo-{}.env", std::process::id()));
    let text = format!(
        "DRPILOT_SOURCE_REGION={SOURCE}\nDRPILOT_DR_REGION={DR}\nDRPILOT_RESOURCES='{resources}'\nDRPILOT_DATABASES='{databases}'\nDRPILOT_STATE_BUCKET={state}\nDRPILOT_S3_FORCE_PATH_STYLE=true\nDRPILOT_NOTIFY_TOPIC_ARN={topic}\nDRPILOT_S3_BACKUPS='{backups}'\n"
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

/// Runs `drpilot status` as a user would, prints it, and returns its `--json` form.
fn status(settings: &std::path::Path) -> Result<Dashboard, String> {
    let run = |json: bool| -> Result<Vec<u8>, String> {
        let mut cmd = Command::new(function_binary("drpilot"));
        cmd.arg("status")
            .arg("--settings")
            .arg(settings)
            .env_clear()
            .envs(function_env(&[]));
        if json {
            cmd.arg("--json");
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
    serde_json::from_slice(&run(true)?).map_err(|e| format!("drpilot status --json: {e}"))
}

/// The primary region loses orders-db: the alarm fires and the promoter runs, for real,
/// against the emulator (two moto gaps bridged: see `crate::standins`).
async fn simulate_failure(
    r: &Regions,
    responders: &Responders,
    state: &str,
) -> Result<(bool, Option<Failover>), String> {
    use crate::standins::{AwsLikePromotion, CountingDns};
    use drpilot::aws::{cloudwatch, rds, route53, s3, sns};
    use drpilot::ports::Dns;
    use drpilot::promoter::{Invocation, Promoter, PromoterPorts};

    step("Route 53: db.shop.example.com -> orders-db (primary); alarm drpilot-orders-primary-down in us-west-2");
    let r53 = aws_sdk_route53::Client::new(&crate::sdk("us-east-1").await);
    let zone = r53
        .create_hosted_zone()
        .name("shop.example.com")
        .caller_reference("drpilot-demo")
        .send()
        .await
        .map_err(|e| e.to_string())?
        .hosted_zone()
        .map(|z| z.id().to_string())
        .unwrap_or_default();
    let primary = instance_endpoint(&r.rds_source, "orders-db").await;
    let databases = serde_json::json!([{
        "name": "orders", "kind": "rds-replica", "primary": "orders-db", "replica": "orders-db-dr",
        "alarms": ["drpilot-orders-primary-down"], "lag_resource": "orders-db", "max_data_loss_seconds": 60,
        "rto_seconds": 900, "dns": {"zone_id": zone, "record_name": "db.shop.example.com", "ttl": 30}
    }]);
    let cfg = drpilot::config::PromoterConfig::from_vars(&std::collections::HashMap::from([
        ("DRPILOT_SOURCE_REGION", SOURCE),
        ("DRPILOT_DR_REGION", DR),
        ("DRPILOT_DATABASES", databases.to_string().as_str()),
        ("DRPILOT_MODE", "automatic"),
        ("DRPILOT_STATE_BUCKET", state),
        ("DRPILOT_NOTIFY_TOPIC_ARN", responders.topic_arn.as_str()),
        ("DRPILOT_S3_FORCE_PATH_STYLE", "true"),
        ("DRPILOT_POLL_SECONDS", "1"),
    ]))
    .map_err(|e| e.to_string())?;
    let sdk = &r.sdk_source;
    let s3_dr = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .region(aws_sdk_s3::config::Region::new(DR))
            .force_path_style(true)
            .build(),
    );
    let ports = PromoterPorts {
        alarms: cloudwatch::CloudWatchAlarms::new(sdk),
        primary: rds::RdsPrimaryProbe::new(sdk, SOURCE),
        health: route53::Route53::with_client(r53.clone()),
        metrics: cloudwatch::CloudWatchMetrics::new(sdk, DR),
        standby: AwsLikePromotion::new(rds::RdsStandby::new(r.rds_dr.clone()), 2),
        dns: CountingDns::new(route53::Route53::with_client(r53.clone())),
        state: s3::S3State::new(s3_dr, state),
        notifier: sns::SnsNotifier::new(sdk, &responders.topic_arn, "drpilot.failover-promoter"),
    };
    let dns = &cfg.databases[0].dns;
    ports.dns.inner.point(dns, &primary).await.map_err(|e| e.to_string())?;
    // The primary-health alarm as infra/alarms.tf defines it (DR region, ReplicationHealthy).
    let cw = crate::account::Cloudwatch::new(DR).await;
    cw.primary_down_alarm("drpilot-orders-primary-down").await;

    step("FAILURE: orders-db stops in us-east-1; replication breaks; the primary-health alarm goes to ALARM");
    r.rds_source
        .stop_db_instance()
        .db_instance_identifier("orders-db")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    cw.0.set_alarm_state()
        .alarm_name("drpilot-orders-primary-down")
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("Threshold Crossed: 3 out of the last 3 datapoints were less than the threshold (1.0).")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let mut event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path("events/failover-promoter/alarm-eventbridge.json"))
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    event["region"] = DR.into();
    event["detail"]["state"]["timestamp"] = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string()
        .into();
    let invocation = Invocation {
        request_id: "demo-1".into(),
        deadline: chrono::Utc::now() + chrono::Duration::minutes(15),
    };
    let response = Promoter {
        ports: &ports,
        cfg: &cfg,
        invocation,
    }
    .handle(event)
    .await
    .map_err(|e| e.to_string())?;

    step("failover-promoter (events/failover-promoter/alarm-eventbridge.json)");
    let status_invocation = Invocation {
        request_id: "demo-2".into(),
        deadline: chrono::Utc::now() + chrono::Duration::minutes(1),
    };
    let status = Promoter {
        ports: &ports,
        cfg: &cfg,
        invocation: status_invocation,
    }
    .handle(serde_json::json!({"action": "status"}))
    .await
    .map_err(|e| e.to_string())?;
    let record: drpilot::promoter::record::DbRecord =
        serde_json::from_value(status["databases"][0]["record"].clone()).map_err(|e| e.to_string())?;
    let Some(f) = record.current else {
        return Err(format!("no failover recorded: {response}"));
    };
    println!(
        "Failover {} ({}):",
        f.id,
        if f.completed_at.is_some() {
            "completed"
        } else {
            "IN PROGRESS"
        }
    );
    print!("{}", drpilot::promoter::notices::timeline(&f));
    if let Some((decide, promote, dns_s, total)) = drpilot::promoter::notices::rto_components(&f) {
        let h = drpilot::plan::lag::human_seconds;
        println!(
            "RTO {} = detect->decide {} + promote {} + DNS {}: {}   (emulator: AWS takes minutes to promote)",
            h(total),
            h(decide),
            h(promote),
            h(dns_s),
            drpilot::promoter::notices::against_budget(total, cfg.databases[0].rto_seconds)
        );
    }
    println!(
        "RPO (last healthy lag): {}   data-loss limit 60s",
        f.estimated_rpo_seconds
            .map(drpilot::plan::lag::human_seconds)
            .unwrap_or("?".into())
    );
    let now_points = ports
        .dns
        .inner
        .current(dns)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    println!("db.shop.example.com -> {now_points}");

    let notices = responders.received().await;
    step(&format!("Notices to responders from the promoter: {}", notices.len()));
    for n in &notices {
        println!("  [{}] {}", n.attribute("severity").unwrap_or("?"), n.subject);
    }
    if let Some(last) = notices.last() {
        println!("\n  The last one, in full:\n{}", indent(&last.message));
    }
    let replica = instance_endpoint(&r.rds_dr, "orders-db-dr").await;
    let ok = f.completed_at.is_some() && now_points == replica && ports.standby.promotions() == 1 && notices.len() == 4;
    Ok((ok, Some(f)))
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}
