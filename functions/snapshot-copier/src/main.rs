//! snapshot-copier: copies the newest RDS/Aurora snapshots to the DR region. Wiring only;
//! the logic lives in `drpilot::copier`.

use drpilot::config::CopierConfig;
use drpilot::copier::{handle, CopierPorts};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    drpilot::lambda::init_tracing();
    let cfg = drpilot::lambda::or_exit(CopierConfig::from_env()); // fail at cold start, naming the setting
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await; // honours AWS_ENDPOINT_URL
    let ports = CopierPorts::aws(&sdk, &cfg);
    drpilot::lambda::serve(|event, _ctx| handle(&ports, &cfg, event, chrono::Utc::now())).await
}
