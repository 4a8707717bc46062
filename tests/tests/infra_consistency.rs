//! infra/ and the code cannot drift: every function under functions/ has a Lambda in the
//! Terraform, Terraform sets exactly the settings the code reads, and each function's IAM
//! policy grants exactly the actions listed in `drpilot::permissions` (the one place that
//! lists them). No AWS and no Terraform CLI needed: the .tf files are parsed with hcl-rs.

use hcl::{Block, Body, Expression, ObjectKey};
use std::collections::BTreeSet;

/// The root module's .tf files, each passed through `edit` (the drift test mutates them).
fn infra_root_edited(edit: impl Fn(String) -> String) -> Body {
    let dir = drpilot_tests::repo_path("infra");
    let mut body = Body::builder();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tf") {
            let text = edit(std::fs::read_to_string(&path).unwrap());
            let parsed: Body = hcl::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            body = body.add_blocks(parsed.blocks().cloned());
        }
    }
    body.build()
}

fn infra_root() -> Body {
    infra_root_edited(|t| t)
}

fn text(expr: &Expression) -> String {
    hcl::format::to_string(expr).unwrap_or_default()
}

fn attribute<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

/// The `module` block that deploys `function` (its package is `<function>.zip`).
fn lambda_module<'a>(root: &'a Body, function: &str) -> Option<&'a Block> {
    root.blocks().filter(|b| b.identifier() == "module").find(|b| {
        attribute(b.body(), "source").is_some_and(|s| text(s).contains("./modules/function"))
            && attribute(b.body(), "package_path").is_some_and(|p| text(p).contains(&format!("/{function}.zip")))
    })
}

fn environment_keys(module: &Block) -> BTreeSet<String> {
    match attribute(module.body(), "environment") {
        Some(Expression::Object(object)) => object
            .keys()
            .map(|k| match k {
                ObjectKey::Identifier(id) => id.to_string(),
                ObjectKey::Expression(e) => text(e).trim_matches('"').to_string(),
                _ => String::new(),
            })
            .collect(),
        other => panic!(
            "module {:?}: environment is not an object literal: {other:?}",
            module.labels()
        ),
    }
}

/// Every string in every `actions` list of a policy document, `dynamic` statements included.
fn actions_in(body: &Body, out: &mut BTreeSet<String>) {
    if let Some(Expression::Array(items)) = attribute(body, "actions") {
        for item in items {
            match item {
                Expression::String(s) => {
                    out.insert(s.clone());
                }
                other => panic!("an action that is not a literal string: {}", text(other)),
            }
        }
    }
    for block in body.blocks() {
        actions_in(block.body(), out);
    }
}

fn policy_actions(root: &Body, module: &Block) -> BTreeSet<String> {
    let reference = attribute(module.body(), "policy_json").map(text).unwrap_or_default();
    let name = reference
        .strip_prefix("data.aws_iam_policy_document.")
        .and_then(|r| r.strip_suffix(".json"))
        .unwrap_or_else(|| {
            panic!(
                "module {:?}: policy_json should be data.aws_iam_policy_document.<name>.json, is {reference}",
                module.labels()
            )
        });
    let document = root
        .blocks()
        .find(|b| {
            b.identifier() == "data"
                && b.labels().first().map(|l| l.as_str()) == Some("aws_iam_policy_document")
                && b.labels().get(1).map(|l| l.as_str()) == Some(name)
        })
        .unwrap_or_else(|| panic!("no data.aws_iam_policy_document.{name} in infra/"));
    let mut actions = BTreeSet::new();
    actions_in(document.body(), &mut actions);
    actions
}

fn function_dirs() -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(drpilot_tests::repo_path("functions"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_function_has_a_lambda_in_terraform() {
    let root = infra_root();
    let missing: Vec<String> = function_dirs()
        .into_iter()
        .filter(|f| lambda_module(&root, f).is_none())
        .collect();
    assert!(missing.is_empty(), "functions without a Lambda in infra/ (a module \"./modules/function\" with package_path .../<name>.zip): {missing:?}");
}

#[test]
fn every_function_is_known_to_the_permission_and_settings_lists() {
    let mut known: Vec<&str> = drpilot::permissions::FUNCTIONS.iter().map(|f| f.0).collect();
    known.sort();
    assert_eq!(
        function_dirs(),
        known,
        "add the new function to drpilot::permissions::FUNCTIONS"
    );
}

fn settings_problems(root: &Body) -> Vec<String> {
    let mut problems = Vec::new();
    for (function, _, settings) in drpilot::permissions::FUNCTIONS {
        let module = lambda_module(root, function).expect("checked by every_function_has_a_lambda_in_terraform");
        let set_by_terraform = environment_keys(module);
        let read_by_code: BTreeSet<String> = settings.iter().map(|s| s.to_string()).collect();
        for s in read_by_code.difference(&set_by_terraform) {
            problems.push(format!("{function}: the code reads {s}, Terraform does not set it"));
        }
        for s in set_by_terraform.difference(&read_by_code) {
            problems.push(format!("{function}: Terraform sets {s}, the code never reads it"));
        }
    }
    problems
}

fn iam_problems(root: &Body) -> Vec<String> {
    let mut problems = Vec::new();
    for (function, actions, _) in drpilot::permissions::FUNCTIONS {
        let module = lambda_module(root, function).expect("checked by every_function_has_a_lambda_in_terraform");
        let granted = policy_actions(root, module);
        let needed: BTreeSet<String> = actions.iter().map(|a| a.to_string()).collect();
        for a in needed.difference(&granted) {
            problems.push(format!("{function}: calls {a}, its IAM policy does not allow it"));
        }
        for a in granted.difference(&needed) {
            problems.push(format!(
                "{function}: its IAM policy allows {a}, which drpilot::permissions does not list"
            ));
        }
    }
    problems
}

#[test]
fn terraform_sets_exactly_the_settings_the_code_reads() {
    let problems = settings_problems(&infra_root());
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn each_iam_policy_grants_exactly_the_actions_the_function_calls() {
    let problems = iam_problems(&infra_root());
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_checks_catch_drift() {
    // Mutations of the real Terraform are noticed, in both directions.
    let dropped = infra_root_edited(|t| {
        t.replace(
            r#"actions = ["rds:PromoteReadReplica"]"#,
            r#"actions   = ["rds:RebootDBInstance"]"#,
        )
    });
    let problems = iam_problems(&dropped);
    assert!(
        problems
            .iter()
            .any(|p| p == "failover-promoter: calls rds:PromoteReadReplica, its IAM policy does not allow it"),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("allows rds:RebootDBInstance")),
        "{problems:#?}"
    );
    let unset = infra_root_edited(|t| {
        t.replace(
            "    DRPILOT_LAG_WINDOW_SECONDS    = tostring(var.lag_window_seconds)\n",
            "    DRPILOT_LAG_WINDOW  = \"300\"\n",
        )
    });
    let problems = settings_problems(&unset);
    assert!(
        problems
            .iter()
            .any(|p| p == "lag-checker: the code reads DRPILOT_LAG_WINDOW_SECONDS, Terraform does not set it"),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p == "lag-checker: Terraform sets DRPILOT_LAG_WINDOW, the code never reads it"),
        "{problems:#?}"
    );
    let gone = infra_root_edited(|t| t.replace("/lag-checker.zip", "/lag-checker-old.zip"));
    assert!(lambda_module(&gone, "lag-checker").is_none());
}

/// The night's primary-down alarm (the scenario suite's) is the one Terraform ships, and it
/// reads the metric the lag checker publishes.
#[test]
fn the_shipped_primary_down_alarm_is_the_one_the_scenarios_evaluate() {
    let root = infra_root();
    let alarm = root
        .blocks()
        .find(|b| b.identifier() == "resource" && b.labels().iter().any(|l| l.as_str() == "primary_down"))
        .expect("resource aws_cloudwatch_metric_alarm.primary_down");
    let value = |key: &str| {
        text(attribute(alarm.body(), key).unwrap_or_else(|| panic!("{key}")))
            .trim_matches('"')
            .to_string()
    };
    let shape = drpilot_tests::night::PRIMARY_DOWN;
    assert_eq!(value("metric_name"), shape.metric);
    assert_eq!(value("statistic"), shape.statistic);
    assert_eq!(value("comparison_operator"), shape.comparison);
    assert_eq!(value("threshold").parse::<f64>().unwrap(), shape.threshold);
    assert_eq!(value("treat_missing_data"), shape.treat_missing_data);
}

/// Each member-account role (infra/modules/member) grants exactly what its function does in a
/// member account, and each of those is an action the function calls.
#[test]
fn each_member_role_grants_exactly_what_its_function_does_in_a_member_account() {
    let path = drpilot_tests::repo_path("infra/modules/member/main.tf");
    let module: Body = hcl::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (function, needed) in drpilot::permissions::MEMBER_ROLES {
        let document = module
            .blocks()
            .find(|b| {
                b.identifier() == "data" && b.labels().get(1).map(|l| l.as_str()) == Some(&function.replace('-', "_"))
            })
            .unwrap_or_else(|| {
                panic!(
                    "data.aws_iam_policy_document.{} in infra/modules/member",
                    function.replace('-', "_")
                )
            });
        let mut granted = BTreeSet::new();
        actions_in(document.body(), &mut granted);
        let needed: BTreeSet<String> = needed.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            granted, needed,
            "infra/modules/member's {function} role vs drpilot::permissions::MEMBER_ROLES"
        );
        let calls = drpilot::permissions::FUNCTIONS
            .iter()
            .find(|f| f.0 == *function)
            .map(|f| f.1)
            .unwrap_or_else(|| panic!("{function} is not a function"));
        for a in &needed {
            assert!(
                calls.contains(&a.as_str()),
                "{function}'s member role grants {a}, which the function never calls"
            );
        }
    }
}

#[test]
fn the_backup_account_role_copies_and_never_deletes() {
    let path = drpilot_tests::repo_path("infra/modules/backup-account/main.tf");
    let module: Body = hcl::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let document = |name: &str| {
        module
            .blocks()
            .find(|b| b.identifier() == "data" && b.labels().get(1).map(|l| l.as_str()) == Some(name))
            .unwrap_or_else(|| panic!("data.aws_iam_policy_document.{name} in infra/modules/backup-account"))
    };
    let mut granted = BTreeSet::new();
    actions_in(document("vault_copier").body(), &mut granted);
    let needed: BTreeSet<String> = drpilot::permissions::VAULT_ROLE.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        granted, needed,
        "the backup account's role vs drpilot::permissions::VAULT_ROLE"
    );
    for a in &needed {
        // (KMS actions are RDS's, on the role's behalf)
        assert!(
            a.starts_with("kms:") || drpilot::permissions::SNAPSHOT_COPIER.contains(&a.as_str()),
            "the backup account's role grants {a}, which the copier never calls"
        );
        assert!(!a.contains("Delete"), "{a}");
    }
    let mut denied = BTreeSet::new();
    actions_in(document("vault_guard").body(), &mut denied);
    for a in [
        "rds:DeleteDBSnapshot",
        "rds:DeleteDBClusterSnapshot",
        "kms:ScheduleKeyDeletion",
    ] {
        assert!(denied.contains(a), "the role denies {a} explicitly");
    }
}

/// Terraform itself: the infra venv's (what `make test` installs), else one on the PATH.
fn terraform() -> std::path::PathBuf {
    let venv = drpilot_tests::repo_path(".venv-infra/bin/terraform");
    if venv.is_file() {
        return venv;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("terraform"))
        .find(|t| t.is_file());
    on_path.unwrap_or_else(|| panic!("Terraform is not installed: `make test` installs it in .venv-infra"))
}

/// The dashboard module's body for these inputs, evaluated by Terraform (the module has no
/// provider and no resource, so `apply` works offline and changes nothing anywhere).
fn dashboard_body(inputs: serde_json::Value) -> serde_json::Value {
    let dir = std::env::temp_dir().join(drpilot_tests::unique("dashboard-tf"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut module = inputs;
    module["source"] = drpilot_tests::repo_path("infra/modules/dashboard")
        .display()
        .to_string()
        .into();
    let config = serde_json::json!({
        "module": { "dashboard": module },
        "output": { "body": { "value": "${module.dashboard.body}" } },
    });
    std::fs::write(dir.join("main.tf.json"), config.to_string()).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(terraform())
            .args(args)
            .current_dir(&dir)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "terraform {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run(&["init", "-backend=false", "-input=false", "-no-color"]);
    run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let body = run(&["output", "-raw", "body"]);
    std::fs::remove_dir_all(&dir).ok();
    serde_json::from_slice(&body).unwrap()
}

/// A graphed metric: namespace, name, dimensions.
type Graphed = (String, String, Vec<(String, String)>);

/// Every metric a widget graphs; metric math is left out.
fn graphed(widget: &serde_json::Value) -> Vec<Graphed> {
    let entries = widget["properties"]["metrics"].as_array().cloned().unwrap_or_default();
    entries
        .iter()
        .filter_map(|m| {
            let parts: Vec<&str> = m.as_array()?.iter().filter_map(|p| p.as_str()).collect();
            let (ns, name) = (parts.first()?.to_string(), parts.get(1)?.to_string());
            let dims = parts[2..]
                .chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| (c[0].to_string(), c[1].to_string()))
                .collect();
            Some((ns, name, dims))
        })
        .collect()
}

/// The CloudWatch dashboard is generated from the lists the functions get (the root module
/// passes them), shows every alarm infra/ ships, and graphs the very metrics the code
/// publishes: Terraform evaluates the module on a sample fleet and each resource is named,
/// with its budget as the line on its own graph.
#[test]
fn the_dashboard_names_every_resource_with_the_metrics_the_code_publishes() {
    use drpilot::lagcheck::metric;
    let root = infra_root();
    let module = root
        .blocks()
        .find(|b| b.identifier() == "module" && b.labels().first().map(|l| l.as_str()) == Some("dashboard_body"))
        .expect("module \"dashboard_body\" in infra/");
    let input = |key: &str| text(attribute(module.body(), key).unwrap_or_else(|| panic!("dashboard_body.{key}")));
    assert_eq!(
        input("resources"),
        "jsondecode(local.lag_resources_json)",
        "DRPILOT_RESOURCES' list"
    );
    assert_eq!(input("namespace"), "var.metric_namespace");
    assert_eq!(input("region"), "var.dr_region");
    assert_eq!(input("functions"), "local.functions_all");
    assert!(input("databases").contains("var.databases"));
    let alarms = input("alarm_arns");
    for block in root.blocks().filter(|b| {
        b.identifier() == "resource" && b.labels().first().map(|l| l.as_str()) == Some("aws_cloudwatch_metric_alarm")
    }) {
        let name = block.labels()[1].as_str();
        assert!(
            alarms.contains(&format!("aws_cloudwatch_metric_alarm.{name}")),
            "the alarm {name} is not on the dashboard"
        );
    }
    let dashboard = root
        .blocks()
        .find(|b| {
            b.identifier() == "resource" && b.labels().first().map(|l| l.as_str()) == Some("aws_cloudwatch_dashboard")
        })
        .expect("resource aws_cloudwatch_dashboard in infra/");
    assert_eq!(
        text(attribute(dashboard.body(), "provider").unwrap()),
        "aws.dr",
        "in the DR region"
    );
    assert_eq!(
        text(attribute(dashboard.body(), "dashboard_body").unwrap()),
        "module.dashboard_body.body"
    );

    // A fleet of every kind, as DRPILOT_RESOURCES has it.
    let resources = serde_json::json!([
        {"name": "orders", "kind": "rds-replica", "replica": "orders-dr", "rpo_seconds": 60},
        {"name": "ledger", "kind": "aurora-global", "cluster": "ledger-dr", "rpo_seconds": 5},
        {"name": "orders-copies", "kind": "snapshot", "db": "orders", "db_kind": "instance", "rpo_seconds": 86400},
        {"name": "assets", "kind": "s3-backup", "source_bucket": "a", "dr_bucket": "b", "rpo_seconds": 900},
        {"name": "s3-backup-media", "kind": "s3-backup", "backup": "media", "rpo_seconds": 3600},
    ]);
    let functions = serde_json::json!({
        "copier": "p-snapshot-copier", "lag": "p-lag-checker", "promoter": "p-failover-promoter",
        "backup": "p-s3-backup", "verifier": "p-restore-verifier",
    });
    let alarm_arns: Vec<String> = (0..130)
        .map(|i| format!("arn:aws:cloudwatch:us-west-2:123456789012:alarm:a{i}"))
        .collect();
    let inputs = |resources: &serde_json::Value| {
        serde_json::json!({
            "title": "drpilot prod: us-east-1 to us-west-2", "region": "us-west-2", "namespace": "dr-ns",
            "period": 60, "resources": resources, "databases": ["orders", "ledger"],
            "functions": functions, "alarm_arns": alarm_arns,
        })
    };
    let body = dashboard_body(inputs(&resources));
    let widgets = body["widgets"].as_array().unwrap();
    let with = |ns: &str, name: &str, dims: &[(&str, &str)]| -> Vec<&serde_json::Value> {
        let dims: Vec<(String, String)> = dims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        widgets
            .iter()
            .filter(|w| graphed(w).contains(&(ns.to_string(), name.to_string(), dims.clone())))
            .collect()
    };
    for r in resources.as_array().unwrap() {
        let (name, budget) = (r["name"].as_str().unwrap(), r["rpo_seconds"].as_f64().unwrap());
        let point = with("dr-ns", metric::RECOVERY_POINT, &[(metric::DIMENSION, name)]);
        // its own graph, with its budget as the line, and the fleet's percent-of-budget graph
        let own: Vec<_> = point.iter().filter(|w| graphed(w).len() == 1).collect();
        assert_eq!(own.len(), 1, "{name}'s own graph");
        assert_eq!(
            own[0]["properties"]["annotations"]["horizontal"][0]["value"].as_f64(),
            Some(budget)
        );
        assert_eq!(own[0]["properties"]["region"], "us-west-2");
        let percent = point
            .iter()
            .find(|w| {
                w["properties"]["title"]
                    .as_str()
                    .unwrap()
                    .starts_with("Recovery point as % of its RPO budget")
            })
            .unwrap_or_else(|| panic!("{name} in a percent-of-budget graph"));
        assert!(
            percent.to_string().contains(&format!(" / {budget}")),
            "{name}: {percent}"
        );
        assert_eq!(
            with("dr-ns", metric::STATUS, &[(metric::DIMENSION, name)]).len(),
            1,
            "{name}'s health"
        );
    }
    for backup in ["assets", "s3-backup-media"] {
        assert!(
            with("dr-ns", metric::RECOVERY_POINT, &[(metric::DIMENSION, backup)])
                .iter()
                .any(|w| w["properties"]["title"].as_str().unwrap().starts_with("S3 backups")),
            "{backup} in the S3 backups' graph"
        );
    }
    assert!(
        !with("dr-ns", metric::UNMEASURED, &[]).is_empty(),
        "the lag checker's own metric"
    );
    use drpilot::copier::metric as copier;
    for name in [copier::STARTED, copier::QUEUED, copier::FAILED, copier::IN_FLIGHT] {
        assert_eq!(with("dr-ns", name, &[]).len(), 1, "the copier's {name}");
    }
    for db in ["orders", "ledger"] {
        assert_eq!(
            with("dr-ns", drpilot::model::FAILED_OVER_METRIC, &[("Database", db)]).len(),
            1
        );
    }
    for name in ["Invocations", "Errors"] {
        assert!(!with("AWS/Lambda", name, &[("FunctionName", "p-failover-promoter")]).is_empty());
    }
    for f in functions.as_object().unwrap().values() {
        assert!(!with("AWS/Lambda", "Errors", &[("FunctionName", f.as_str().unwrap())]).is_empty());
    }
    // every alarm, 100 to a widget
    let shown: Vec<String> = widgets
        .iter()
        .filter(|w| w["type"] == "alarm")
        .flat_map(|w| {
            w["properties"]["alarms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(shown, alarm_arns);

    // A fleet too large for a graph each: the grouped graphs still name every resource, and the
    // dashboard stays within CloudWatch's 500 widgets.
    let fleet: Vec<serde_json::Value> = (0..130)
        .map(|i| serde_json::json!({"name": format!("db{i}"), "kind": "rds-replica", "replica": format!("db{i}-dr"), "rpo_seconds": 60 + i}))
        .collect();
    let body = dashboard_body(inputs(&serde_json::Value::from(fleet)));
    let widgets = body["widgets"].as_array().unwrap();
    assert!(widgets.len() <= 500);
    for i in 0..130 {
        let name = format!("db{i}");
        let named = |metric: &str| {
            widgets
                .iter()
                .filter(|w| graphed(w).iter().any(|(_, m, d)| m == metric && d[0].1 == name))
                .count()
        };
        assert_eq!((named(metric::RECOVERY_POINT), named(metric::STATUS)), (1, 1), "{name}");
    }
}

/// The lag checker asks S3 when the status page was written (`HeadObject`, which AWS allows
/// with `s3:GetObject` only) before it writes it: both on `drpilot/status/*`, nothing broader.
#[test]
fn the_lag_checker_may_read_and_write_its_status_page_and_no_more_there() {
    fn statements<'a>(body: &'a Body, out: &mut Vec<&'a Body>) {
        if attribute(body, "actions").is_some() {
            out.push(body);
        }
        for block in body.blocks() {
            statements(block.body(), out);
        }
    }
    let root = infra_root();
    let document = root
        .blocks()
        .find(|b| b.identifier() == "data" && b.labels().get(1).map(|l| l.as_str()) == Some("lag_checker"))
        .expect("data.aws_iam_policy_document.lag_checker");
    let mut all = vec![];
    statements(document.body(), &mut all);
    let on_page: Vec<&Body> = all
        .into_iter()
        .filter(|s| attribute(s, "resources").is_some_and(|r| text(r).contains("/drpilot/status/")))
        .collect();
    assert_eq!(on_page.len(), 1, "one statement on the status page");
    let mut actions = BTreeSet::new();
    actions_in(on_page[0], &mut actions);
    assert_eq!(
        actions,
        BTreeSet::from(["s3:GetObject".to_string(), "s3:PutObject".to_string()])
    );
    let resources = text(attribute(on_page[0], "resources").unwrap());
    assert!(
        resources.contains("/drpilot/status/*\"") && !resources.contains(','),
        "{resources}"
    );
}
