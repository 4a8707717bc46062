//! s3-backup: keeps versioned DR-region copies of S3 buckets, one point in time per run.
//! Wiring only; the logic lives in `drpilot::backup`.

use drpilot::backup::{handle, BackupPorts, Invocation};
use drpilot::config::BackupConfig;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    drpilot::lambda::init_tracing();
    let cfg = drpilot::lambda::or_exit(BackupConfig::from_env()); // fail at cold start, naming the setting
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await; // honours AWS_ENDPOINT_URL
    let ports = BackupPorts::aws(&sdk, &cfg);
    drpilot::lambda::serve(|event, ctx| {
        let inv = Invocation::from_context(&ctx);
        let (ports, cfg) = (&ports, &cfg);
        async move { handle(ports, cfg, event, &inv).await }
    })
    .await
}
