//! The scenario suite: nights scripted on the simulator, each read like a runbook: what fails
//! and when (on AWS's timeline, scaled down), what drpilot must do and must not do, asserted
//! on what reached AWS at the wire and on what responders were told.
//!
//! `make scenarios` runs only this suite; `make test` runs it with everything else. It prints
//! one line per scenario: name, verdict, measured RTO components and RPO (AWS time).
//! `cargo test --test scenarios -- NAME` runs the scenarios whose name contains NAME.

mod copies;
mod failover;
mod plans;
mod restores;
mod trust;

use drpilot::plan::lag::human_seconds;
use futures::future::BoxFuture;
use futures::StreamExt;
use std::process::ExitCode;

/// What a scenario measured, in AWS time (seconds).
#[derive(Debug, Default, Clone)]
pub struct Measured {
    pub detect: Option<f64>,
    pub decide: Option<f64>,
    pub promote: Option<f64>,
    /// The recovery plan's capacity: promoted -> ready (or let go).
    pub capacity: Option<f64>,
    pub dns: Option<f64>,
    pub rto: Option<(f64, f64)>,
    /// (estimated by drpilot, lost as the simulator measured it, limit)
    pub rpo: Option<(f64, f64, f64)>,
    pub other: Vec<String>,
}

impl Measured {
    fn line(&self) -> String {
        let h = |v: f64| human_seconds(v.round());
        let mut parts = Vec::new();
        for (name, v) in [
            ("detect", self.detect),
            ("decide", self.decide),
            ("promote", self.promote),
            ("capacity", self.capacity),
            ("dns", self.dns),
        ] {
            if let Some(v) = v {
                parts.push(format!("{name} {}", h(v)));
            }
        }
        if let Some((rto, budget)) = self.rto {
            parts.push(format!("RTO {} (budget {})", h(rto), h(budget)));
        }
        if let Some((est, lost, limit)) = self.rpo {
            parts.push(format!("RPO est {} lost {} (limit {})", h(est), h(lost), h(limit)));
        }
        parts.extend(self.other.iter().cloned());
        parts.join("  ")
    }
}

type Scenario = (&'static str, fn() -> BoxFuture<'static, Measured>);

// The longest night first: three run at a time, and the others fill the other slots meanwhile.
// The two failback nights, the next longest, start as early as the nights whose regions they
// reuse allow (the suite's wall time was the last of them running alone).
const SCENARIOS: &[Scenario] = &[
    ("stale-redelivery-an-hour-later-no-failover", || {
        Box::pin(trust::stale_redelivery())
    }),
    ("region-outage-fails-over-once", || Box::pin(failover::region_outage())),
    ("advisory-mode-outage-changes-nothing", || {
        Box::pin(failover::advisory_outage())
    }),
    ("ten-deliveries-three-channels-one-promotion", || {
        Box::pin(failover::duplicate_deliveries())
    }),
    ("promoter-killed-after-promotion-resumes-once", || {
        Box::pin(failover::killed_mid_failover())
    }),
    ("copies-pending-queue-and-20-in-flight", || {
        Box::pin(copies::pending_copies())
    }),
    ("aurora-global-outage-fails-over-once", || {
        Box::pin(failover::aurora_outage())
    }),
    ("maintenance-reboot-no-failover", || {
        Box::pin(trust::maintenance_reboot())
    }),
    ("maintenance-window-patch-multi-az-no-failover", || {
        Box::pin(trust::maintenance_window_patch())
    }),
    ("partition-checkers-see-primary-no-failover", || {
        Box::pin(trust::partition())
    }),
    // The regions of the killed-promoter and the first outage nights, over by then (it starts
    // when the stale redelivery's hour ends, about a minute after the killed night's end); the
    // longest night after that one, so it starts early rather than ending the suite alone.
    ("failback-after-outage-zero-loss-protected-again", || {
        Box::pin(plans::failback())
    }),
    ("standby-backing-up-promotion-retried", || {
        Box::pin(trust::busy_standby())
    }),
    ("fleet-of-20-outage-all-promoted-together", || {
        Box::pin(trust::fleet_outage())
    }),
    ("old-primary-back-fenced-in-one-continuation", || {
        Box::pin(trust::fence_on_return())
    }),
    // The Aurora outage night's regions, over for about a minute and a half by then.
    ("aurora-failback-switchover-back-nothing-replaced", || {
        Box::pin(plans::aurora_failback())
    }),
    ("planned-rds-failover-loses-nothing", || Box::pin(trust::planned_rds())),
    ("half-the-fleet-unmeasurable-no-alarm", || {
        Box::pin(trust::unmeasurable_half())
    }),
    ("member-account-outage-promoted-there", || {
        Box::pin(failover::member_account_outage())
    }),
    ("restore-tests-verified-kms-failure-killed-run-swept", || {
        Box::pin(restores::restore_tests())
    }),
    // These two darken the regions of the advisory and the duplicate-deliveries nights,
    // which ended long before (three nights run at a time, in this order).
    ("warm-standby-plan-capacity-10-healthy-before-dns", || {
        Box::pin(plans::warm_standby())
    }),
    ("dr-region-out-of-capacity-dns-switches-strict-waits", || {
        Box::pin(plans::out_of_capacity())
    }),
];

// Nights that darken what every night shares (us-east-1 with Route 53's API, which is global):
// each runs alone, after the others.
const ALONE: &[Scenario] = &[("us-east-1-dark-route53-api-too-failover-records-switch", || {
    Box::pin(failover::dns_data_plane())
})];

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    // libtest's flags (e.g. --nocapture from `cargo test`) are accepted and ignored.
    // A failing scenario's panic is reported on its line below, with the night's story.
    std::panic::set_hook(Box::new(|_| {}));
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let pick = |list: &'static [Scenario]| -> Vec<&'static Scenario> {
        list.iter()
            .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
            .collect()
    };
    let (shared, alone) = (pick(SCENARIOS), pick(ALONE));
    println!(
        "\nrunning {} scenario(s) on the simulator (times are AWS's, scaled down to run)",
        shared.len() + alone.len()
    );
    let width = shared.iter().chain(&alone).map(|(n, _)| n.len()).max().unwrap_or(0);
    let started = std::time::Instant::now();
    let run = |(name, run): &'static Scenario| async move {
        let t = std::time::Instant::now();
        let outcome = tokio::spawn(run()).await;
        (*name, outcome, t.elapsed())
    };
    // Three at a time: a night mostly waits on AWS's scaled clock (the suite uses well under
    // one of the 2 cores), and the longest night (the stale redelivery's hour) takes a slot
    // while the others share two.
    let mut results = futures::stream::iter(shared.into_iter().map(run))
        .buffer_unordered(3)
        .chain(futures::stream::iter(alone.into_iter().map(run)).buffered(1))
        .boxed();
    let mut failed = Vec::new();
    while let Some((name, outcome, took)) = results.next().await {
        match outcome {
            Ok(m) => println!("PASS  {name:<width$}  {}  [{:.0}s]", m.line(), took.as_secs_f64()),
            Err(e) => {
                let why = e
                    .try_into_panic()
                    .ok()
                    .and_then(|p| {
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    })
                    .unwrap_or_else(|| "cancelled".into());
                println!("FAIL  {name:<width$}  [{:.0}s]\n{why}\n", took.as_secs_f64());
                failed.push(name);
            }
        }
    }
    println!(
        "\nscenarios: {} failed; finished in {:.0}s",
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("failed: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}
