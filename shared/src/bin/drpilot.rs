//! `drpilot` — the operator's CLI, with the user's usual AWS credentials and profile.
//!
//!   drpilot status [--json] [--settings FILE]
//!   drpilot drill --database NAME --plan PLAN --confirm NAME [--json] [--settings FILE]
//!   drpilot points --backup NAME [--json] [--settings FILE]
//!   drpilot restore --backup NAME --to-bucket BUCKET [--point RUN_ID] [--to-prefix P]
//!                   [--to-region REGION] [--delete-extra] [--apply] [--json] [--settings FILE]
//!
//! `restore` without `--apply` is a dry run: it lists what it would do and changes nothing.
//!
//! Settings are the functions' own (see the README); `--settings` reads them from a
//! KEY=VALUE file such as Terraform's `dashboard_settings` output, else the environment.

use drpilot::config::{BackupConfig, DashboardConfig, PromoterConfig, SettingsFile, Vars};
use drpilot::promoter::{Invocation, Promoter, PromoterPorts};
use std::process::exit;

const USAGE: &str = "usage:\n  drpilot status [--json] [--settings FILE]\n  drpilot drill --database NAME --plan PLAN --confirm NAME [--json] [--settings FILE]\n  drpilot points --backup NAME [--json] [--settings FILE]\n  drpilot restore --backup NAME --to-bucket BUCKET [--point RUN_ID] [--to-prefix P] [--to-region REGION] [--delete-extra] [--apply] [--json] [--settings FILE]\n    (restore without --apply is a dry run)";

fn fail(message: impl std::fmt::Display, code: i32) -> ! {
    eprintln!("drpilot: {message}");
    exit(code)
}

struct Args {
    command: String,
    json: bool,
    settings: Option<String>,
    database: Option<String>,
    plan: Option<String>,
    confirm: Option<String>,
    backup: Option<String>,
    point: Option<String>,
    to_bucket: Option<String>,
    to_prefix: Option<String>,
    to_region: Option<String>,
    delete_extra: bool,
    apply: bool,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let command = it.next().unwrap_or_else(|| fail(USAGE, 2));
    let mut a = Args {
        command,
        json: false,
        settings: None,
        database: None,
        plan: None,
        confirm: None,
        backup: None,
        point: None,
        to_bucket: None,
        to_prefix: None,
        to_region: None,
        delete_extra: false,
        apply: false,
    };
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| fail(format!("{flag} needs a value\n{USAGE}"), 2))
        };
        match flag.as_str() {
            "--json" => a.json = true,
            "--settings" => a.settings = Some(value()),
            "--database" => a.database = Some(value()),
            "--plan" => a.plan = Some(value()),
            "--confirm" => a.confirm = Some(value()),
            "--backup" => a.backup = Some(value()),
            "--point" => a.point = Some(value()),
            "--to-bucket" => a.to_bucket = Some(value()),
            "--to-prefix" => a.to_prefix = Some(value()),
            "--to-region" => a.to_region = Some(value()),
            "--delete-extra" => a.delete_extra = true,
            "--apply" => a.apply = true,
            other => fail(format!("unknown argument {other:?}\n{USAGE}"), 2),
        }
    }
    a
}

#[tokio::main]
async fn main() {
    let a = args();
    let vars: Box<dyn Vars> = match &a.settings {
        Some(path) => Box::new(SettingsFile::read(path).unwrap_or_else(|e| fail(e, 2))),
        None => Box::new(drpilot::config::ProcessEnv),
    };
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    match a.command.as_str() {
        "status" => {
            let cfg = DashboardConfig::from_vars(vars.as_ref()).unwrap_or_else(|e| fail(e, 2));
            let metrics = drpilot::aws::cloudwatch::CloudWatchMetrics::new(&sdk, &cfg.dr_region);
            let copies = drpilot::aws::rds::RdsDr::new(drpilot::aws::rds::client_in(&sdk, &cfg.dr_region));
            let s3 = drpilot::aws::s3::client_in(&sdk, &cfg.dr_region, cfg.s3_force_path_style);
            let state = drpilot::aws::s3::S3State::new(s3, &cfg.state.bucket);
            let standbys = drpilot::aws::rds::RdsStandby::new(drpilot::aws::rds::client_in(&sdk, &cfg.dr_region));
            let board = drpilot::dashboard::gather(&cfg, &metrics, &copies, &state, &standbys, chrono::Utc::now())
                .await
                .unwrap_or_else(|e| fail(e, 1));
            if a.json {
                println!("{}", serde_json::to_string_pretty(&board).unwrap_or_default());
            } else {
                print!("{}", board.render());
            }
        }
        "drill" => {
            let cfg = PromoterConfig::from_vars(vars.as_ref()).unwrap_or_else(|e| fail(e, 2));
            let database = a
                .database
                .unwrap_or_else(|| fail(format!("drill needs --database\n{USAGE}"), 2));
            let plan = a
                .plan
                .unwrap_or_else(|| fail(format!("drill needs --plan\n{USAGE}"), 2));
            let confirm = a.confirm.unwrap_or_default();
            let ports = PromoterPorts::aws(&sdk, &cfg);
            let invocation = Invocation {
                request_id: format!("cli-drill-{}", std::process::id()),
                deadline: chrono::Utc::now() + chrono::Duration::minutes(30),
            };
            let report = Promoter {
                ports: &ports,
                cfg: &cfg,
                invocation,
            }
            .drill(&database, &plan, &confirm)
            .await
            .unwrap_or_else(|e| fail(e, 1));
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                let passed = report["passed"].as_bool() == Some(true);
                println!(
                    "drill {} of {}: {}",
                    report["plan"],
                    report["database"],
                    if passed { "PASS" } else { "FAIL" }
                );
                for s in report["steps"].as_array().into_iter().flatten() {
                    let mark = if s["passed"].as_bool() == Some(true) {
                        "PASS"
                    } else {
                        "FAIL"
                    };
                    println!(
                        "  [{mark}] {} ({:.1}s): {}",
                        s["name"].as_str().unwrap_or_default(),
                        s["seconds"].as_f64().unwrap_or_default(),
                        s["detail"].as_str().unwrap_or_default()
                    );
                }
                println!("left in: {}", report["left_in"].as_str().unwrap_or_default());
                if !passed {
                    exit(1);
                }
            }
        }
        "points" | "restore" => backups(&a, vars.as_ref(), &sdk).await,
        _ => fail(USAGE, 2),
    }
}

/// `points` lists a backup's points in time; `restore` copies one back (dry run by default).
async fn backups(a: &Args, vars: &dyn Vars, sdk: &aws_config::SdkConfig) {
    use drpilot::backup::restore::{points, restore, RestoreRequest};
    let cfg = BackupConfig::from_vars(vars).unwrap_or_else(|e| fail(e, 2));
    let name = a
        .backup
        .as_deref()
        .unwrap_or_else(|| fail(format!("{} needs --backup\n{USAGE}", a.command), 2));
    let spec = cfg.backup(name).unwrap_or_else(|| {
        let known: Vec<&str> = cfg.backups.iter().map(|b| b.name.as_str()).collect();
        fail(format!("unknown backup {name:?}; configured: {}", known.join(", ")), 2)
    });
    let s3_in = |region: &str| drpilot::aws::s3::client_in(sdk, region, cfg.s3_force_path_style);
    let state = drpilot::aws::s3::S3State::new(s3_in(&cfg.dr_region), &cfg.state.bucket);
    if a.command == "points" {
        let list = points(&state, &cfg, spec).await.unwrap_or_else(|e| fail(e, 1));
        if a.json {
            println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
            return;
        }
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|p| {
                vec![
                    p.run_id.clone(),
                    p.started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    p.finished.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    p.objects.to_string(),
                    p.bytes.to_string(),
                    p.failed.to_string(),
                ]
            })
            .collect();
        print!(
            "{}",
            drpilot::table::render(
                &["POINT (RUN ID)", "STARTED", "FINISHED", "OBJECTS", "BYTES", "FAILED"],
                &rows
            )
        );
        return;
    }
    let req = RestoreRequest {
        point: a.point.clone(),
        target_bucket: a
            .to_bucket
            .clone()
            .unwrap_or_else(|| fail(format!("restore needs --to-bucket\n{USAGE}"), 2)),
        target_prefix: a.to_prefix.clone(),
        delete_extra: a.delete_extra,
        apply: a.apply,
    };
    let target_region = a.to_region.clone().unwrap_or_else(|| cfg.source_region.clone());
    let target = drpilot::aws::s3::S3Objects::new(s3_in(&target_region), cfg.multipart_threshold_bytes);
    let json = a.json;
    let mut say = |line: String| {
        if !json {
            println!("{line}");
        }
    };
    let report = restore(&state, &target, &cfg, spec, &req, &mut say)
        .await
        .unwrap_or_else(|e| fail(e, 1));
    if json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    }
    if report.failed > 0 {
        exit(1);
    }
}
