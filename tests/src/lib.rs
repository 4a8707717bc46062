//! The end-to-end test bed: an AWS account as a user would have it, on moto server.
//!
//! `make test` (via `tests/emulator/with-simulator.sh`) starts moto with drpilot's simulator
//! layer (`tests/emulator/drsim`, driven through `sim`) and sets
//! `DRPILOT_EMULATOR_URL`. Tests never skip when it is missing: they fail and say how to run.
//! Names are unique per test, and each test uses its own pair of regions where region-wide
//! listings matter, so tests run in parallel on one server.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

pub mod account;
pub mod members;
pub mod night;
pub mod scenario;
pub mod sim;
pub mod verify;

pub const ACCOUNT_ID: &str = "123456789012";

/// The emulator's address; panics with instructions when the tests were not started by make.
pub fn emulator_url() -> String {
    std::env::var("DRPILOT_EMULATOR_URL").unwrap_or_else(|_| {
        panic!(
            "DRPILOT_EMULATOR_URL is not set: the AWS emulator is not running. Run `make test` \
             (it installs and starts moto server and points the tests at it)."
        )
    })
}

/// SDK configuration for `region`, aimed at the emulator with dummy credentials.
pub async fn sdk(region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(emulator_url())
        .region(Region::new(region.to_string()))
        .credentials_provider(aws_sdk_sns::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "drpilot-tests",
        ))
        .load()
        .await
}

/// A name no other test (or earlier run on the same server) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        nanos % 0xfffff
    )
}

/// A function binary built by `make test` / `make demo` (`cargo build --workspace --bins`):
/// beside the running executable (the demo) or one level up (a test in `deps/`).
pub fn function_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    let dir = exe.parent().expect("target dir");
    [dir.join(name), dir.parent().unwrap_or(dir).join(name)]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("function binary {name} is not built: run `make test` or `make demo` (they build it)")
        })
}

/// Runs the function binary `name` once on `event` (its text, on standard input: `--event -`),
/// as a user runs it locally, with exactly `env`.
pub fn run_function(name: &str, env: &BTreeMap<String, String>, event: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(function_binary(name))
        .args(["--event", "-"])
        .env_clear()
        .envs(env)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(event.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

pub fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

/// A sample event from `events/` (e.g. `"lag-checker/schedule.json"`), parsed.
pub fn sample_event(name: &str) -> serde_json::Value {
    let path = repo_path(&format!("events/{name}"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Environment for running a function binary against the emulator.
pub fn function_env(settings: &[(&str, String)]) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        ("AWS_ENDPOINT_URL", emulator_url()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("PATH", std::env::var("PATH").unwrap_or_default()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    env.extend(settings.iter().map(|(k, v)| (k.to_string(), v.clone())));
    env
}

/// `drpilot status --json --settings <file>` with these settings (the file's text, as
/// Terraform's dashboard_settings output gives it), as a responder runs it.
pub fn status_with_settings(settings: &str) -> serde_json::Value {
    let path = std::env::temp_dir().join(format!("{}.env", unique("status")));
    std::fs::write(&path, settings).unwrap();
    let out = std::process::Command::new(function_binary("drpilot"))
        .args(["status", "--json", "--settings", &path.display().to_string()])
        .env_clear()
        .envs(function_env(&[]))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}
