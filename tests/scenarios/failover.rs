//! Region outages and what the failover promoter does about them.

use crate::Measured;
use drpilot_tests::night::{minutes, Night, NightPlan, Outcome, PROMOTER};
use serde_json::json;

/// The failover's RTO components and RPO; asserts that drpilot lost no more than it estimated
/// and stayed within the data-loss limit, and (`within_rto`) within the RTO budget.
pub async fn measured(night: &Night, db: &str, outage_at: f64, within_rto: bool) -> Measured {
    let t = night.times(db, outage_at).await.expect("a completed failover");
    let lost = night.data_lost(db).await;
    let est = t.estimated_rpo.expect("an estimated RPO");
    if within_rto {
        assert!(t.rto <= t.rto_budget, "RTO {} over the budget {}", t.rto, t.rto_budget);
    }
    assert!(est <= t.data_loss_limit, "estimate {est} over the limit");
    assert!(
        lost <= est + 1.0,
        "drpilot estimated {est} s of data loss but the failover lost {lost} s"
    );
    Measured {
        detect: Some(t.detect),
        decide: Some(t.decide),
        promote: Some(t.promote),
        capacity: t.capacity,
        dns: Some(t.dns),
        rto: Some((t.rto, t.rto_budget)),
        rpo: Some((est, lost, t.data_loss_limit)),
        other: vec![],
    }
}

/// The primary region goes dark at night. The shipped alarm fires after three broken
/// periods; the promoter confirms (the region does not answer, the health checkers agree),
/// promotes the replica once, points DNS at it, and tells responders at every step, within
/// the RTO budget, losing no more than it estimated. The warm-standby example's limits (5 s
/// of lag, at most 60 s of loss) let it: detection time is not data loss. The promoter's
/// first write of its record lands but the answer is lost; the SDK's retry gets 412, and
/// reading the record back shows it is the promoter's own.
pub async fn region_outage() -> Measured {
    let plan = NightPlan::new("outage", "us-east-2", "us-west-2")
        .database("orders", 5.0, 60.0)
        .health_checked();
    let mut night = Night::begin(plan).await;
    let bucket = night.state_bucket.clone();
    night
        .fault(json!({"service": "s3", "action": "PutObject",
                      "params": {"Bucket": bucket, "Key": "drpilot/failover-promoter/orders.json"},
                      "mode": "lost", "count": 1}))
        .await;
    night.pass(minutes(2.0)).await;
    let dark = night.region_goes_dark().await;
    night.until_failed_over("orders").await;
    let lost = night
        .wire()
        .await
        .calls("PutObject")
        .filter(|c| c.status == 412)
        .count();
    assert_eq!(lost, 1, "the lost answer's retry met its own write");

    assert_eq!(night.requests("PromoteReadReplica", "orders").await, 1, "one promotion");
    assert_eq!(
        night.accepted("ChangeResourceRecordSets", "orders").await,
        1,
        "one DNS change: {:#?}",
        night.wire().await.calls("ChangeResourceRecordSets").collect::<Vec<_>>()
    );
    assert_eq!(night.dns("orders").await, Some(night.replica_endpoint("orders").await));
    assert_eq!(
        night.promoter_steps().await,
        ["started", "promoted", "dns", "completed"]
    );
    let completed = night.promoter_notices().await.pop().unwrap();
    assert!(
        completed.message.contains("within the RTO budget"),
        "{}",
        completed.message
    );
    let mut m = measured(&night, "orders", dark, true).await;
    let (est, _, _) = m.rpo.unwrap();
    assert!(
        est <= 10.0,
        "the estimate is the healthy lag (5 s), not lag + detection: {est}"
    );
    m.other.push("1 lost S3 answer -> 412 -> read back: own write".into());
    night.end().await;
    m
}

/// Advisory mode on the same night: every gate passes, nothing changes at AWS, and
/// responders get one notice saying what drpilot would do and the command to do it.
pub async fn advisory_outage() -> Measured {
    let plan = NightPlan::new("advisory", "eu-west-2", "ca-central-1")
        .database("orders", 5.0, minutes(5.0))
        .mode("advisory");
    let mut night = Night::begin(plan).await;
    night.region_goes_dark().await;
    night
        .until("the advisory notice", minutes(15.0), |n| {
            Box::pin(async move { !n.promoter_notices().await.is_empty() })
        })
        .await;
    night.pass(minutes(3.0)).await; // and nothing else happens
    let wire = night.wire().await;
    assert_eq!(wire.count("PromoteReadReplica"), 0, "advisory mode never promotes");
    assert_eq!(wire.count("ChangeResourceRecordSets"), 0, "nor touches DNS");
    let all: Vec<String> = night.notices().await.into_iter().map(|n| n.subject).collect();
    assert!(
        all.contains(&"drpilot: replication BROKEN: orders".to_string()),
        "{all:?}"
    );
    let notices = night.promoter_notices().await;
    assert_eq!(notices.len(), 1, "{all:?}");
    assert!(
        notices[0]
            .subject
            .starts_with("drpilot ADVISORY: would fail over orders"),
        "{}",
        notices[0].subject
    );
    let expected = format!(
        "would promote {} in {} and point {} at {}",
        night.db("orders").replica,
        night.plan.dr,
        night.db("orders").record,
        night.replica_endpoint("orders").await
    );
    assert!(notices[0].message.contains(&expected), "{}", notices[0].message);
    assert!(
        notices[0].message.contains(r#""action":"failover""#),
        "{}",
        notices[0].message
    );
    assert_eq!(notices[0].attribute("severity"), Some("warning"));
    night.end().await;
    Measured {
        other: vec!["0 promotions, 0 DNS changes, 1 advisory notice".into()],
        ..Measured::default()
    }
}

/// Each alarm state change reaches the promoter ten times over three channels (EventBridge
/// four times, the SNS subscription three, the alarm's Lambda action three: all at-least-once
/// deliveries), at once. One promotion, one DNS change, one set of notices.
pub async fn duplicate_deliveries() -> Measured {
    let plan = NightPlan::new("duplicates", "eu-west-1", "eu-central-1")
        .database("orders", 5.0, minutes(5.0))
        .deliveries(4, 3, 3);
    let mut night = Night::begin(plan).await;
    let dark = night.region_goes_dark().await;
    night.until_failed_over("orders").await;
    night.pass(minutes(2.0)).await; // late duplicates change nothing either
    let alarm_invocations: Vec<String> = night
        .invocations()
        .into_iter()
        .filter(|i| i.function == PROMOTER && !i.trigger.contains("schedule"))
        .map(|i| i.trigger)
        .collect();
    assert!(alarm_invocations.len() >= 10, "deliveries: {alarm_invocations:?}");
    for channel in ["EventBridge", "SNS", "alarm Lambda action"] {
        assert!(
            alarm_invocations.iter().any(|t| t == channel),
            "no {channel} delivery: {alarm_invocations:?}"
        );
    }
    assert_eq!(night.requests("PromoteReadReplica", "orders").await, 1);
    assert_eq!(night.accepted("ChangeResourceRecordSets", "orders").await, 1);
    assert_eq!(
        night.promoter_steps().await,
        ["started", "promoted", "dns", "completed"]
    );
    let mut m = measured(&night, "orders", dark, true).await;
    m.other
        .push(format!("{} deliveries -> 1 promotion", alarm_invocations.len()));
    night.end().await;
    m
}

/// The promoter's Lambda worker dies (SIGKILL) right after AWS accepted the promotion, before
/// the promoter could record it. Nothing retries the invocation (the shipped function has no
/// retries); the continuation schedule finds the failover in its record and, once the dead
/// invocation's lease has run out, completes it: still one promotion, one DNS change, each
/// notice once.
pub async fn killed_mid_failover() -> Measured {
    let plan = NightPlan::new("killed", "ap-northeast-1", "ap-northeast-3").database("orders", 5.0, minutes(5.0));
    let mut night = Night::begin(plan).await;
    // AWS takes a moment to answer the promotion: the worker dies while it waits.
    let replica = night.db("orders").replica.clone();
    night
        .fault(
            json!({"service": "rds", "action": "PromoteReadReplica", "params": {"DBInstanceIdentifier": replica},
                      "mode": "latency", "hold_ms": 1500, "count": 1}),
        )
        .await;
    let dark = night.region_goes_dark().await;
    let killed = night.kill_promoter_after("PromoteReadReplica", minutes(15.0)).await;
    assert_eq!(killed, 1);
    night.until_failed_over("orders").await;
    let killed = night
        .invocations()
        .iter()
        .filter(|i| matches!(i.outcome, Outcome::Killed))
        .count();
    assert_eq!(killed, 1);
    // the resumed run may ask again (AWS refuses a promotion under way): one took effect
    assert_eq!(night.accepted("PromoteReadReplica", "orders").await, 1, "promoted once");
    assert!(night.requests("PromoteReadReplica", "orders").await <= 2);
    assert_eq!(night.accepted("ChangeResourceRecordSets", "orders").await, 1);
    assert_eq!(
        night.promoter_steps().await,
        ["started", "promoted", "dns", "completed"]
    );
    let asked = night.requests("PromoteReadReplica", "orders").await;
    // The killed invocation's lease on the failover runs to its Lambda deadline (15 minutes on
    // AWS) before the continuation may take over: reported, not within the RTO budget.
    let mut m = measured(&night, "orders", dark, false).await;
    m.other
        .push(format!("killed once; {asked} promotion request(s), 1 accepted"));
    night.end().await;
    m
}

/// The same outage for an Aurora global database. The secondary's lag metrics go silent rather
/// than reporting -1, so the lag checker calls replication broken only when its newest datapoint
/// is older than the window (five periods); the alarm's three periods come after that. The
/// promoter fails the global database over once (`FailoverGlobalCluster`, data loss allowed)
/// and points DNS at the new writer.
pub async fn aurora_outage() -> Measured {
    let plan = NightPlan::new("aurora", "eu-west-3", "eu-north-1").aurora("ledger", 1.0, minutes(10.0));
    let mut night = Night::begin(plan).await;
    let dark = night.region_goes_dark().await;
    night.until_failed_over("ledger").await;
    assert_eq!(
        night.requests("FailoverGlobalCluster", "ledger").await,
        1,
        "one failover"
    );
    assert_eq!(
        night.requests("SwitchoverGlobalCluster", "ledger").await,
        0,
        "not a switchover"
    );
    assert_eq!(night.accepted("ChangeResourceRecordSets", "ledger").await, 1);
    assert_eq!(night.dns("ledger").await, Some(night.replica_endpoint("ledger").await));
    assert_eq!(
        night.promoter_steps().await,
        ["started", "promoted", "dns", "completed"]
    );
    let m = measured(&night, "ledger", dark, true).await;
    night.end().await;
    m
}

/// us-east-1 goes dark, and Route 53's control plane with it (its API lives there): an UPSERT
/// of the app's record would fail exactly when it is needed. The record is a pair of failover
/// records (`dns.mode = "failover-records"`): the promoter promotes the replica, publishes
/// `FailedOver` in the DR region, the alarm there goes to ALARM, the PRIMARY record's health
/// check turns unhealthy, and Route 53's resolvers answer the SECONDARY, the promoted standby,
/// with no Route 53 API call at all. The health checkers' verdict cannot be read either
/// (`GetHealthCheckStatus` is the same dark API): the region's silence confirms the outage.
pub async fn dns_data_plane() -> Measured {
    let plan = NightPlan::new("dataplane", "us-east-1", "us-west-1")
        .database("orders", 5.0, 60.0)
        .health_checked()
        .failover_records();
    let mut night = Night::begin(plan).await;
    let before = night.dns_answer("orders").await;
    assert_eq!(
        (before.record.as_str(), before.values.first()),
        ("PRIMARY", Some(&night.db("orders").primary_endpoint)),
        "{before:?}"
    );
    night.pass(minutes(2.0)).await;
    let dark = night.region_goes_dark_with_global_services().await;
    night.until_failed_over("orders").await;

    assert_eq!(night.requests("PromoteReadReplica", "orders").await, 1, "one promotion");
    let (wire, _) = night.sim.wire(0).await;
    let check = night.db("orders").health_check_id.clone().unwrap();
    let route53: Vec<_> = wire
        .0
        .iter()
        .filter(|e| e.service.as_deref() == Some("route53") && e.at >= dark)
        .filter(|e| {
            e.param("Id")
                .is_some_and(|id| id == check || id.ends_with(&night.db("orders").zone))
        })
        .collect();
    assert!(
        !route53.is_empty() && route53.iter().all(|e| !e.accepted()),
        "the promoter asked Route 53's API for the health checkers' verdict, and it was dark: {route53:#?}"
    );
    assert!(
        route53
            .iter()
            .all(|e| e.action.as_deref() != Some("ChangeResourceRecordSets")),
        "no DNS change was asked of Route 53's API: {route53:#?}"
    );
    let after = night.dns_answer("orders").await;
    let standby = night.replica_endpoint("orders").await;
    assert_eq!(
        (after.record.as_str(), after.values.first()),
        ("SECONDARY", Some(&standby)),
        "clients reach the promoted standby: {after:?}"
    );
    // Route 53 reads the alarm's data, not its state: long after the one FailedOver datapoint
    // has aged out (two periods), clients must still be sent to the standby.
    night.pass(minutes(5.0)).await;
    let later = night.dns_answer("orders").await;
    assert_eq!(
        later.values.first(),
        Some(&standby),
        "still the standby 5 minutes on: {later:?}"
    );
    assert_eq!(
        night.promoter_steps().await,
        ["started", "promoted", "dns", "completed"]
    );
    let notices = night.promoter_notices().await;
    let dns = notices.iter().find(|n| n.attribute("step") == Some("dns")).unwrap();
    assert!(
        dns.message.contains("answers the SECONDARY") && dns.message.contains("no Route 53 API call"),
        "{}",
        dns.message
    );
    let completed = notices.last().unwrap();
    assert!(
        completed.message.contains("FailedOver published in the DR region")
            && completed.message.contains("Route 53 answers the SECONDARY record"),
        "the timeline says how: {}",
        completed.message
    );
    let mut m = measured(&night, "orders", dark, true).await;

    // us-east-1 returns, the old primary with it: it is fenced (the SECONDARY, which clients
    // reach, is the promoted standby, as Route 53's API now confirms), and clients stay put.
    let source = night.plan.source.clone();
    night.region_returns().await;
    night
        .until("the fenced notice", minutes(5.0), |n| {
            Box::pin(async move { n.promoter_steps().await.iter().any(|s| s == "fenced") })
        })
        .await;
    let stops = night
        .wire()
        .await
        .calls("StopDBInstance")
        .filter(|c| c.region.as_deref() == Some(source.as_str()) && c.accepted())
        .count();
    assert_eq!(stops, 1, "the old primary stopped once");
    let fenced = night.dns_answer("orders").await;
    assert_eq!(fenced.values.first(), Some(&standby), "{fenced:?}");
    m.other.push(format!(
        "Route 53 API dark ({} calls refused, 0 DNS changes); resolvers answer SECONDARY ({}), 5 min on too; old primary fenced on return",
        route53.len(),
        later.why
    ));
    night.end().await;
    m
}

/// The database is in a member account of the organization; drpilot runs in the hub (alarms,
/// its metrics, Route 53, state, responders) and reaches the database through the member role
/// (`DRPILOT_ACCOUNTS`, with its external id). The region goes dark: the lag checker reads
/// the replica's lag in the member account and publishes in the hub, the hub's alarm fires, and
/// the promotion is made once, in the member account, on the role's credentials.
pub async fn member_account_outage() -> Measured {
    const MEMBER: &str = "210000000010";
    let plan = NightPlan::new("member", "ap-southeast-7", "ap-southeast-5")
        .database("orders", 5.0, 60.0)
        .in_member_account(MEMBER);
    let mut night = Night::begin(plan).await;
    night.pass(minutes(2.0)).await;
    let dark = night.region_goes_dark().await;
    night.until_failed_over("orders").await;

    assert_eq!(night.requests("PromoteReadReplica", "orders").await, 1, "one promotion");
    let wire = night.wire().await;
    let accounts = |action: &str| {
        let mut seen: Vec<String> = wire
            .calls(action)
            .map(|e| e.account.clone().unwrap_or_default())
            .collect();
        seen.sort();
        seen.dedup();
        seen
    };
    let hub = drpilot_tests::members::HUB;
    assert_eq!(
        accounts("PromoteReadReplica"),
        [MEMBER],
        "promoted in the member account"
    );
    assert_eq!(
        accounts("DescribeDBInstances"),
        [MEMBER],
        "the replica is looked at where it is"
    );
    assert_eq!(
        accounts("GetMetricData"),
        [hub, MEMBER],
        "RDS's lag in the member, drpilot's in the hub"
    );
    assert_eq!(accounts("PutMetricData"), [hub], "drpilot's metrics are the hub's");
    assert_eq!(accounts("ChangeResourceRecordSets"), [hub], "the hub's zone");
    assert_eq!(night.dns("orders").await, Some(night.replica_endpoint("orders").await));
    assert_eq!(
        night.promoter_steps().await,
        ["started", "promoted", "dns", "completed"]
    );
    let mut m = measured(&night, "orders", dark, true).await;
    m.other.push(format!("promoted in member account {MEMBER}"));
    night.end().await;
    m
}
