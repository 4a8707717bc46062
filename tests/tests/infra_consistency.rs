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
