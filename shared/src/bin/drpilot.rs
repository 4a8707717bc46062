//! `drpilot` — the operator's CLI, with the user's usual AWS credentials and profile.
//!
//!   drpilot status [--json] [--settings FILE]
//!   drpilot drill --database NAME --plan PLAN --confirm NAME [--json] [--settings FILE]
//!
//! Settings are the functions' own (see the README); `--settings` reads them from a
//! KEY=VALUE file such as Terraform's `dashboard_settings` output, else the environment.

use drpilot::config::{DashboardConfig, PromoterConfig, SettingsFile, Vars};
use drpilot::promoter::{Invocation, Promoter, PromoterPorts};
use std::process::exit;

const USAGE: &str = "usage:\n  drpilot status [--json] [--settings FILE]\n  drpilot drill --database NAME --plan PLAN --confirm NAME [--json] [--settings FILE]";

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
            let board = drpilot::dashboard::gather(&cfg, &metrics, &copies, &state, chrono::Utc::now())
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
        _ => fail(USAGE, 2),
    }
}
