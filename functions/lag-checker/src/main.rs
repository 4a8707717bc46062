//! lag-checker: measures how much data each protected resource would lose right now, in its
//! own account and in member accounts of `DRPILOT_ACCOUNTS`, publishes it, and alerts on
//! transitions. Wiring only; the logic is `drpilot::lagcheck`.

use drpilot::config::LagConfig;
use drpilot::lagcheck::{handle, LagPorts};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    drpilot::lambda::init_tracing();
    let cfg = drpilot::lambda::or_exit(LagConfig::from_env()); // fail at cold start, naming the setting
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await; // honours AWS_ENDPOINT_URL
    let accounts = LagPorts::accounts(&sdk, &cfg);
    drpilot::lambda::serve(|event, ctx| {
        let deadline = drpilot::lambda::Invocation::from_context(&ctx).stop_at(cfg.deadline_margin_seconds);
        handle(&accounts, &cfg, event, chrono::Utc::now(), deadline)
    })
    .await
}
