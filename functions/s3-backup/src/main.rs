//! s3-backup: keeps versioned DR-region copies of S3 buckets, one point in time per run, in its
//! own account and in member accounts of `DRPILOT_ACCOUNTS`. Wiring only; the logic lives in
//! `drpilot::backup`.

use drpilot::backup::{handle, BackupPorts, Invocation};
use drpilot::config::BackupConfig;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    drpilot::lambda::init_tracing();
    let cfg = drpilot::lambda::or_exit(BackupConfig::from_env()); // fail at cold start, naming the setting
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await; // honours AWS_ENDPOINT_URL
    let accounts = BackupPorts::accounts(&sdk, &cfg);
    drpilot::lambda::serve(|event, ctx| {
        let inv = Invocation::from_context(&ctx);
        let (accounts, cfg) = (&accounts, &cfg);
        async move { handle(accounts, cfg, event, &inv).await }
    })
    .await
}
