//! Recovery plans: the application's capacity in the DR region comes up between the
//! promotion and the DNS switch (database -> capacity -> DNS), on EC2's timeline.

use crate::failover::measured;
use crate::Measured;
use drpilot_tests::account::Received;
use drpilot_tests::night::{minutes, Night, NightPlan};

/// A wait as the promoter, on the test bed's scaled clock, says it.
fn on_test_bed(night: &Night, aws_seconds: f64) -> String {
    drpilot::plan::lag::human_seconds(night.plan.scale.real_secs(aws_seconds).floor())
}

fn step<'a>(notices: &'a [Received], db: &str, step: &str) -> Option<&'a Received> {
    notices
        .iter()
        .find(|n| n.attribute("database") == Some(db) && n.attribute("step") == Some(step))
}

/// A warm standby: the shop's web tier runs 2 instances in the DR region. The primary region
/// goes dark; the promoter promotes the replica, grows the group to 10 (EC2 takes three
/// minutes to bring each instance into service) and points DNS at the new primary only once
/// all 10 are healthy. One scale-up request reaches AWS; the timeline and the RTO say how long
/// the capacity took.
pub async fn warm_standby() -> Measured {
    let plan = NightPlan::new("warm", "eu-west-2", "ca-central-1")
        .database("orders", 5.0, 60.0)
        .health_checked()
        .recovery_plan(2, 10, minutes(10.0), false);
    let mut night = Night::begin(plan).await;
    assert_eq!(
        night.app_group("orders").await,
        (2, 2),
        "the warm standby before the night"
    );
    night.pass(minutes(2.0)).await;
    let dark = night.region_goes_dark().await;
    night.until_failed_over("orders").await;

    assert_eq!(night.requests("PromoteReadReplica", "orders").await, 1, "one promotion");
    let wire = night.wire().await;
    let scaled: Vec<_> = wire.calls("UpdateAutoScalingGroup").collect();
    assert_eq!(scaled.len(), 1, "one scale-up request: {scaled:#?}");
    let p = &scaled[0].params;
    assert_eq!(
        (p.get("DesiredCapacity"), p.get("MinSize"), p.get("MaxSize")),
        (
            Some(&"10".to_string()),
            Some(&"10".to_string()),
            Some(&"20".to_string())
        ),
        "{p:?}"
    );
    assert_eq!(night.app_group("orders").await, (10, 10), "10 instances in service");
    assert_eq!(night.dns("orders").await, Some(night.replica_endpoint("orders").await));

    let f = night.failover("orders").await.unwrap();
    let group = &f.capacity[0];
    let (healthy, asked) = (group.healthy_at.unwrap(), group.requested_at.unwrap());
    assert!(f.promoted_at.unwrap() <= asked, "capacity after the promotion");
    assert!(
        healthy <= f.dns_requested_at.unwrap(),
        "all 10 healthy before DNS switched"
    );
    assert_eq!(
        group.before.map(|b| b.desired),
        Some(2),
        "the size a failback returns to"
    );
    assert_eq!(f.capacity_settled.as_ref().map(|s| s.0.as_str()), Some("ready"));
    assert_eq!(
        night.promoter_steps().await,
        ["started", "promoted", "capacity", "dns", "completed"]
    );
    let notices = night.promoter_notices().await;
    let started = step(&notices, "orders", "started").unwrap();
    assert!(
        started.message.contains(&format!(
            "scale Auto Scaling group {} to 10 (min 10, max 20) and wait until healthy (up to {}; then DNS switches with or without it)",
            night.db("orders").app_group.as_deref().unwrap(),
            on_test_bed(&night, minutes(10.0))
        )),
        "{}",
        started.message
    );
    let completed = step(&notices, "orders", "completed").unwrap();
    for line in ["asked for 10 (min 10, max 20), was 2", "capacity ready", "+ capacity "] {
        assert!(completed.message.contains(line), "{line:?} in {}", completed.message);
    }
    let mut m = measured(&night, "orders", dark, true).await;
    let capacity = m.capacity.expect("the capacity component");
    assert!(
        capacity >= minutes(3.0) - 20.0,
        "EC2's three minutes to launch: {capacity}"
    );
    m.other.push("1 UpdateAutoScalingGroup 2 -> 10".into());
    night.end().await;
    m
}

/// A region-wide event: everyone scales up in the same DR region, which runs out of capacity
/// (AWS: InsufficientInstanceCapacity, the group's launches fail and are tried again). Two
/// databases with recovery plans: orders' plan is not strict, so after its wait DNS switches
/// without the capacity, and responders are told why in AWS's words; payments' plan is
/// strict, so its DNS waits, responders are told once with the command that lets it go, and
/// when capacity returns the group fills and DNS switches by itself.
pub async fn out_of_capacity() -> Measured {
    let plan = NightPlan::new("capacity", "eu-west-1", "eu-central-1")
        .database("orders", 5.0, 60.0)
        .recovery_plan(2, 10, minutes(5.0), false)
        .database("payments", 5.0, 60.0)
        .recovery_plan(2, 10, minutes(5.0), true);
    let mut night = Night::begin(plan).await;
    // 4 instances run; the region can launch 2 more
    night.dr_capacity(Some(6)).await;
    night.pass(minutes(2.0)).await;
    night.region_goes_dark().await;
    night.until_failed_over("orders").await;

    let f = night.failover("orders").await.unwrap();
    let (why, settled) = f.capacity_settled.clone().unwrap();
    let wait = on_test_bed(&night, minutes(5.0));
    assert!(why.starts_with(&format!("not ready {wait} after promotion")), "{why}");
    assert!(
        why.contains("We currently do not have sufficient t3.large capacity"),
        "AWS's reason: {why}"
    );
    assert!(settled <= f.dns_requested_at.unwrap());
    assert_eq!(night.dns("orders").await, Some(night.replica_endpoint("orders").await));
    let notices = night.promoter_notices().await;
    let short = step(&notices, "orders", "capacity").unwrap();
    assert!(
        short.subject == "drpilot: orders: capacity NOT ready in eu-central-1, DNS switches without it",
        "{}",
        short.subject
    );
    assert!(
        short.message.contains("drpilot points") && short.message.contains("sufficient t3.large capacity"),
        "{}",
        short.message
    );

    // payments: promoted, its DNS held, responders told once
    night
        .until("payments' DNS held", minutes(10.0), |n| {
            Box::pin(async move {
                let all = n.promoter_notices().await;
                step(&all, "payments", "capacity-held").is_some()
            })
        })
        .await;
    let held_at = night.failover("payments").await.unwrap();
    assert!(
        held_at.promoted_at.is_some() && held_at.dns_requested_at.is_none(),
        "promoted, DNS not switched"
    );
    assert_eq!(
        night.dns("payments").await,
        Some(night.db("payments").primary_endpoint.clone())
    );
    night.pass(minutes(3.0)).await;
    let notices = night.promoter_notices().await;
    let held: Vec<_> = notices
        .iter()
        .filter(|n| n.attribute("database") == Some("payments") && n.attribute("step") == Some("capacity-held"))
        .collect();
    assert_eq!(held.len(), 1, "told once");
    assert!(
        held[0].subject.contains("DNS HELD") && held[0].message.contains(r#""action":"proceed""#),
        "{}",
        held[0].message
    );
    assert!(
        night.failover("payments").await.unwrap().dns_requested_at.is_none(),
        "still held"
    );

    // capacity returns: the groups fill, and payments' DNS switches by itself
    night.dr_capacity(None).await;
    night.until_failed_over("payments").await;
    let f = night.failover("payments").await.unwrap();
    assert_eq!(f.capacity_settled.as_ref().map(|s| s.0.as_str()), Some("ready"));
    assert!(f.capacity[0].healthy_at.unwrap() <= f.dns_requested_at.unwrap());
    assert_eq!(night.app_group("payments").await, (10, 10));
    assert_eq!(
        night.dns("payments").await,
        Some(night.replica_endpoint("payments").await)
    );
    let waited = (f.dns_requested_at.unwrap() - f.promoted_at.unwrap()).num_milliseconds() as f64 / 1000.0;
    let waited = drpilot::plan::lag::human_seconds(night.plan.scale.aws(waited).round());
    night.end().await;
    Measured {
        other: vec![
            "orders: DNS switched without capacity after 5m (InsufficientInstanceCapacity)".into(),
            format!("payments (strict): DNS held {waited} after promotion until capacity returned; told once"),
        ],
        ..Measured::default()
    }
}
