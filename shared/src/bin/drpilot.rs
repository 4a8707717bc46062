//! `drpilot` — the operator's CLI, with the user's usual AWS credentials and profile.
//! `drpilot --help` and `drpilot COMMAND --help` say what each command takes.
//!
//! Settings are the functions' own (see the README); `--settings` reads them from a
//! KEY=VALUE file such as Terraform's `dashboard_settings` output, else the environment.

use clap::{Args, Parser, Subcommand};
use drpilot::config::{BackupConfig, DashboardConfig, PromoterConfig, SettingsFile, Vars};
use drpilot::promoter::{Invocation, Promoter, PromoterPorts};
use std::process::exit;

/// Cross-region disaster recovery for RDS, Aurora and S3: what is protected, drills, and
/// S3 points in time.
#[derive(Parser)]
#[command(name = "drpilot", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Read the settings from this KEY=VALUE file (Terraform's `dashboard_settings` output)
    /// rather than the environment.
    #[arg(long, global = true, value_name = "FILE")]
    settings: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Is every protected resource inside its RPO, and is every database ready to fail over?
    Status {
        /// Also write the status page here: one self-contained HTML file (no script, nothing
        /// fetched) with the verdict, every resource's recovery point over the last 24 hours
        /// against its budget, each database's failover timeline, drills and restore tests.
        #[arg(long, value_name = "FILE")]
        html: Option<std::path::PathBuf>,
        /// Print a link, valid for an hour, to the status page the lag checker publishes in the
        /// DR state bucket (readable on a phone while the primary region is down).
        #[arg(long, conflicts_with = "html")]
        url: bool,
    },
    /// A planned failover exercise of one database whose standby is tagged for the plan.
    Drill {
        /// The database (its name in DRPILOT_DATABASES).
        #[arg(long, value_name = "NAME")]
        database: String,
        /// The drill plan the standby is tagged for (drpilot:drill-plan).
        #[arg(long)]
        plan: String,
        /// The database's name again, to confirm.
        #[arg(long, value_name = "NAME", default_value = "")]
        confirm: String,
        /// Then fail back (RDS), so that the drill ends where it began.
        #[arg(long)]
        failback: bool,
    },
    /// Back to the primary region after a failover. It DELETES the old primary there (keeping a
    /// final snapshot: it may hold writes the failover lost) and makes a replica of the
    /// failed-over primary in its place; then (with --switch, now or in a window) a planned
    /// switch back, then a new DR replica in place of the old standby. The failover promoter's
    /// schedule carries it on once this command returns.
    Failback {
        /// The database (its name in DRPILOT_DATABASES).
        #[arg(long, value_name = "NAME")]
        database: String,
        /// Who asks (for the record and the notices).
        #[arg(long, value_name = "NAME")]
        by: String,
        /// The database's name again, to confirm.
        #[arg(long, value_name = "NAME", default_value = "")]
        confirm: String,
        /// Switch back once the replica has caught up (writes pause for about two minutes).
        #[arg(long)]
        switch: bool,
        /// With --switch: not before this time (RFC 3339), a maintenance window.
        #[arg(long, value_name = "TIME", requires = "switch")]
        at: Option<chrono::DateTime<chrono::Utc>>,
        /// Give up a failback that has not begun its switch back.
        #[arg(long, conflicts_with = "switch")]
        cancel: bool,
    },
    /// An S3 backup's points in time, oldest first.
    Points {
        /// The backup (its name in DRPILOT_S3_BACKUPS).
        #[arg(long, value_name = "NAME")]
        backup: String,
    },
    /// Copy an S3 backup's point in time back into a bucket (a dry run without --apply).
    Restore(RestoreArgs),
}

#[derive(Args)]
struct RestoreArgs {
    /// The backup (its name in DRPILOT_S3_BACKUPS).
    #[arg(long, value_name = "NAME")]
    backup: String,
    /// The bucket to restore into.
    #[arg(long, value_name = "BUCKET")]
    to_bucket: String,
    /// The point in time (its run id); the newest by default.
    #[arg(long, value_name = "RUN_ID")]
    point: Option<String>,
    /// Restore under this prefix instead of the original keys.
    #[arg(long, value_name = "PREFIX")]
    to_prefix: Option<String>,
    /// The target bucket's region; the source region by default.
    #[arg(long, value_name = "REGION")]
    to_region: Option<String>,
    /// Also delete target objects the point in time does not hold.
    #[arg(long)]
    delete_extra: bool,
    /// Do it; without this, list what would be done and change nothing.
    #[arg(long)]
    apply: bool,
}

fn fail(message: impl std::fmt::Display, code: i32) -> ! {
    eprintln!("drpilot: {message}");
    exit(code)
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Some((terminal_size::Width(columns), _)) = terminal_size::terminal_size() {
        drpilot::table::wrap_to(columns);
    }
    let vars: Box<dyn Vars> = match &cli.settings {
        Some(path) => Box::new(SettingsFile::read(path).unwrap_or_else(|e| fail(e, 2))),
        None => Box::new(drpilot::config::ProcessEnv),
    };
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    match cli.command {
        Command::Status { html, url } => {
            let cfg = DashboardConfig::from_vars(vars.as_ref()).unwrap_or_else(|e| fail(e, 2));
            if url {
                let s3 = drpilot::aws::s3::client_in(&sdk, &cfg.dr_region, cfg.s3_force_path_style);
                let key = cfg.state.key(drpilot::statuspage::PAGE_OBJECT);
                let (link, published) = drpilot::aws::s3::presigned_link(&s3, &cfg.state.bucket, &key, 3600)
                    .await
                    .unwrap_or_else(|e| fail(e, 1));
                if cli.json {
                    let out = serde_json::json!({"url": link, "published": published, "expires_in_seconds": 3600});
                    println!("{out}");
                } else {
                    eprintln!("the status page published {published} (valid for an hour):");
                    println!("{link}");
                }
                return;
            }
            let ports = drpilot::statuspage::StatusPorts::aws(&sdk, &cfg);
            let now = chrono::Utc::now();
            let board = ports.board(&cfg, now).await.unwrap_or_else(|e| fail(e, 1));
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&board).unwrap_or_default());
            } else {
                print!("{}", board.render());
            }
            // After the board is printed: a page that cannot be written does not cost the table.
            if let Some(path) = html {
                let page = ports.page(&cfg, &board, now).await;
                std::fs::write(&path, page).unwrap_or_else(|e| fail(format!("{}: {e}", path.display()), 1));
                eprintln!("the status page: {}", path.display());
            }
        }
        Command::Drill {
            database,
            plan,
            confirm,
            failback,
        } => {
            let cfg = PromoterConfig::from_vars(vars.as_ref()).unwrap_or_else(|e| fail(e, 2));
            let accounts = PromoterPorts::accounts(&sdk, &cfg);
            let invocation = Invocation {
                request_id: format!("cli-drill-{}", std::process::id()),
                deadline: chrono::Utc::now() + chrono::Duration::minutes(30),
            };
            let report = Promoter {
                accounts: &accounts,
                cfg: &cfg,
                invocation,
            }
            .drill(&database, &plan, &confirm, failback)
            .await
            .unwrap_or_else(|e| fail(e, 1));
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                let verdict = |passed: bool| if passed { "PASS" } else { "FAIL" };
                println!(
                    "drill {:?} of {:?}: {}",
                    report.plan,
                    report.database,
                    verdict(report.passed)
                );
                for s in &report.steps {
                    println!("  [{}] {} ({:.1}s): {}", verdict(s.passed), s.name, s.seconds, s.detail);
                }
                println!("left in: {}", report.left_in);
            }
            if !report.passed {
                exit(1);
            }
        }
        Command::Failback {
            database,
            by,
            confirm,
            switch,
            at,
            cancel,
        } => {
            let cfg = PromoterConfig::from_vars(vars.as_ref()).unwrap_or_else(|e| fail(e, 2));
            let accounts = PromoterPorts::accounts(&sdk, &cfg);
            let invocation = Invocation {
                // Short: the command records the operator's word and takes the first steps; the
                // promoter's schedule carries on (an interrupted CLI holds the lease only so long).
                request_id: format!(
                    "cli-failback-{}-{}",
                    std::process::id(),
                    chrono::Utc::now().timestamp_millis()
                ),
                deadline: chrono::Utc::now() + chrono::Duration::minutes(3),
            };
            let out = Promoter {
                accounts: &accounts,
                cfg: &cfg,
                invocation,
            }
            .failback_command(&database, &by, &confirm, switch, at, cancel)
            .await
            .unwrap_or_else(|e| fail(e, 1));
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        Command::Points { backup } => points(&backup, cli.json, vars.as_ref(), &sdk).await,
        Command::Restore(args) => restore(&args, cli.json, vars.as_ref(), &sdk).await,
    }
}

/// The backup settings and the named backup, or a clear error.
fn backup_settings(vars: &dyn Vars, name: &str) -> (BackupConfig, drpilot::model::BackupSpec) {
    let cfg = BackupConfig::from_vars(vars).unwrap_or_else(|e| fail(e, 2));
    let spec = cfg.backup(name).cloned().unwrap_or_else(|| {
        let known: Vec<&str> = cfg.backups.iter().map(|b| b.name.as_str()).collect();
        fail(format!("unknown backup {name:?}; configured: {}", known.join(", ")), 2)
    });
    (cfg, spec)
}

async fn points(name: &str, json: bool, vars: &dyn Vars, sdk: &aws_config::SdkConfig) {
    let (cfg, spec) = backup_settings(vars, name);
    let s3 = drpilot::aws::s3::client_in(sdk, &cfg.dr_region, cfg.s3_force_path_style);
    let state = drpilot::aws::s3::S3State::new(s3, &cfg.state.bucket);
    let list = drpilot::backup::restore::points(&state, &cfg, &spec)
        .await
        .unwrap_or_else(|e| fail(e, 1));
    if json {
        println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
        return;
    }
    let stamp = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|p| {
            vec![
                p.run_id.clone(),
                match (&p.base, p.as_of) {
                    (None, None) => "scheduled run".into(),
                    (None, Some(_)) => "scheduled run (inventory report)".into(),
                    (Some(base), _) => format!("changes on {base}"),
                },
                stamp(p.recovery_point()),
                stamp(p.finished),
                p.objects.to_string(),
                p.bytes.to_string(),
                p.failed.to_string(),
            ]
        })
        .collect();
    // A change point's objects and bytes are those it changed (copies and deletions).
    print!(
        "{}",
        drpilot::table::render(
            &[
                "POINT (RUN ID)",
                "KIND",
                "AS OF",
                "FINISHED",
                "OBJECTS",
                "BYTES",
                "FAILED"
            ],
            &rows
        )
    );
}

async fn restore(a: &RestoreArgs, json: bool, vars: &dyn Vars, sdk: &aws_config::SdkConfig) {
    use drpilot::backup::restore::{restore, RestoreRequest};
    let (cfg, spec) = backup_settings(vars, &a.backup);
    let s3_in = |region: &str| drpilot::aws::s3::client_in(sdk, region, cfg.s3_force_path_style);
    let state = drpilot::aws::s3::S3State::new(s3_in(&cfg.dr_region), &cfg.state.bucket);
    let req = RestoreRequest {
        point: a.point.clone(),
        target_bucket: a.to_bucket.clone(),
        target_prefix: a.to_prefix.clone(),
        delete_extra: a.delete_extra,
        apply: a.apply,
    };
    let target_region = a.to_region.clone().unwrap_or_else(|| cfg.source_region.clone());
    let target = drpilot::aws::s3::S3Objects::new(s3_in(&target_region), cfg.multipart_threshold_bytes);
    let mut say = |line: String| {
        if !json {
            println!("{line}");
        }
    };
    let report = restore(&state, &target, &cfg, &spec, &req, &mut say)
        .await
        .unwrap_or_else(|e| fail(e, 1));
    if json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    }
    if report.failed > 0 {
        exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed_and_flags_go_anywhere() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["drpilot", "status", "--settings", "f", "--json"]).unwrap();
        assert!(cli.json && cli.settings.as_deref() == Some("f"));
        let cli = Cli::try_parse_from(["drpilot", "--json", "restore", "--backup", "a", "--to-bucket", "b"]).unwrap();
        assert!(
            matches!(cli.command, Command::Restore(RestoreArgs { apply: false, .. })),
            "a dry run by default"
        );
        for bad in [
            vec!["drpilot"],
            vec!["drpilot", "restore", "--backup", "a"],
            vec!["drpilot", "drill", "--database", "orders"],
            vec!["drpilot", "failback", "--database", "orders"],
            vec![
                "drpilot",
                "failback",
                "--database",
                "orders",
                "--by",
                "a",
                "--at",
                "2026-11-28T02:00:00Z",
            ],
            vec!["drpilot", "status", "--colour"],
        ] {
            assert!(Cli::try_parse_from(&bad).is_err(), "{bad:?}");
        }
    }
}
