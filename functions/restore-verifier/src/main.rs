//! restore-verifier: restores each listed database's newest DR copy into a throwaway database
//! in the DR region, checks it, deletes it, and reports how old its data was and how long the
//! restore took; resumable across invocations. Wiring only; the logic is `drpilot::verifier`.

use drpilot::config::VerifierConfig;
use drpilot::verifier::{Verifier, VerifierPorts};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    drpilot::lambda::init_tracing();
    let cfg = drpilot::lambda::or_exit(VerifierConfig::from_env()); // fail at cold start, naming the setting
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await; // honours AWS_ENDPOINT_URL
    let ports = VerifierPorts::aws(&sdk, &cfg);
    drpilot::lambda::serve(|event, ctx| {
        let invocation = drpilot::lambda::Invocation::from_context(&ctx);
        let (ports, cfg) = (&ports, &cfg);
        async move { Verifier { ports, cfg, invocation }.handle(event).await }
    })
    .await
}
