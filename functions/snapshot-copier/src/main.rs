//! snapshot-copier: copies the newest RDS/Aurora snapshots to the DR region, in its own account
//! and in each member account of `DRPILOT_ACCOUNTS`. Wiring only; the logic lives in
//! `drpilot::copier`.

use drpilot::config::CopierConfig;
use drpilot::copier::{handle_accounts, CopierPorts};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    drpilot::lambda::init_tracing();
    let cfg = drpilot::lambda::or_exit(CopierConfig::from_env()); // fail at cold start, naming the setting
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await; // honours AWS_ENDPOINT_URL
    let accounts = CopierPorts::accounts(&sdk, &cfg);
    drpilot::lambda::serve(|event, ctx| {
        let own = drpilot::lambda::own_account(&ctx);
        let (accounts, cfg) = (&accounts, &cfg);
        async move { handle_accounts(accounts, cfg, event, own.as_deref(), chrono::Utc::now()).await }
    })
    .await
}
