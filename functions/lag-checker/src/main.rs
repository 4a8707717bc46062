//! lag-checker: measures how much data each protected resource would lose right now, in its
//! own account and in member accounts of `DRPILOT_ACCOUNTS`, publishes it, and alerts on
//! transitions; then, with `DRPILOT_STATUS_PAGE` on, publishes the status page every five periods. Wiring only;
//! the logic is `drpilot::lagcheck` and `drpilot::statuspage`.

use drpilot::config::LagConfig;
use drpilot::lagcheck::{handle, LagPorts};
use drpilot::statuspage::StatusPorts;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    drpilot::lambda::init_tracing();
    let cfg = drpilot::lambda::or_exit(LagConfig::from_env()); // fail at cold start, naming the setting
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await; // honours AWS_ENDPOINT_URL
    let accounts = LagPorts::accounts(&sdk, &cfg);
    let page = cfg.status_page.as_ref().map(|p| (p, StatusPorts::aws(&sdk, p)));
    let (cfg, accounts, page) = (&cfg, &accounts, &page);
    drpilot::lambda::serve(|event, ctx| async move {
        let invocation = drpilot::lambda::Invocation::from_context(&ctx);
        let deadline = invocation.stop_at(cfg.deadline_margin_seconds);
        let report = handle(accounts, cfg, event, chrono::Utc::now(), deadline).await;
        // After the measurements, whatever they found (a page that shows a failed run is the
        // one responders need), every five periods; never at their expense: its failure is
        // logged, not the run's.
        if let Some((page_cfg, ports)) = page {
            let publish = ports.publish_when_due(page_cfg, chrono::Utc::now());
            match tokio::time::timeout_at(invocation.stop_at(1), publish).await {
                Ok(Ok(Some(key))) => tracing::info!(%key, "status page published"),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "the status page was not published"),
                Err(_) => tracing::warn!("the status page was not published: out of time"),
            }
        }
        report
    })
    .await
}
