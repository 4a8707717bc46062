//! failover-promoter: alarm-driven, guarded promotion of the DR standby, DNS switch and
//! responder notices; resumable across invocations; databases in its own account or in member
//! accounts of `DRPILOT_ACCOUNTS`. Wiring only; the logic is `drpilot::promoter`.

use drpilot::config::PromoterConfig;
use drpilot::promoter::{Invocation, Promoter, PromoterPorts};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    drpilot::lambda::init_tracing();
    let cfg = drpilot::lambda::or_exit(PromoterConfig::from_env()); // fail at cold start, naming the setting
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await; // honours AWS_ENDPOINT_URL
    let accounts = PromoterPorts::accounts(&sdk, &cfg);
    drpilot::lambda::serve(|event, ctx| {
        let invocation = Invocation::from_context(&ctx);
        let (accounts, cfg) = (&accounts, &cfg);
        async move {
            Promoter {
                accounts,
                cfg,
                invocation,
            }
            .handle(event)
            .await
        }
    })
    .await
}
