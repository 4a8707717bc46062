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

/// A warm standby: the shop's web tier runs 2 instances in the DR region, and its API 2 ECS
/// tasks. The primary region goes dark; the promoter promotes the replica, grows the group to
/// 10 (EC2 takes three minutes to bring each instance into service) and the service to 6 tasks
/// (a minute each to start), and points DNS at the new primary only once all 10 are healthy
/// and all 6 running. One scale-up request of each reaches AWS; the timeline and the RTO say
/// how long the capacity took.
pub async fn warm_standby() -> Measured {
    let plan = NightPlan::new("warm", "eu-west-2", "ca-central-1")
        .database("orders", 5.0, 60.0)
        .health_checked()
        .recovery_plan(2, 10, minutes(10.0), false)
        .ecs_tasks(2, 6)
        .automation_topic();
    let mut night = Night::begin(plan).await;
    night.pass(minutes(1.5)).await; // the service's first tasks start
    assert_eq!(
        (night.app_group("orders").await, night.app_service("orders").await),
        ((2, 2), (2, 2)),
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
    let updated: Vec<_> = wire.calls("UpdateService").collect();
    assert_eq!(updated.len(), 1, "one scale-up request for the service: {updated:#?}");
    let (cluster, service) = night.db("orders").app_service.clone().unwrap();
    let p = &updated[0].params;
    assert_eq!(
        (p.get("cluster"), p.get("service"), p.get("desiredCount")),
        (Some(&cluster), Some(&service), Some(&"6".to_string())),
        "{p:?}"
    );
    assert_eq!(night.app_group("orders").await, (10, 10), "10 instances in service");
    assert_eq!(night.app_service("orders").await, (6, 6), "6 tasks running");
    assert_eq!(night.dns("orders").await, Some(night.replica_endpoint("orders").await));

    let f = night.failover("orders").await.unwrap();
    let group = &f.capacity[0];
    let (healthy, asked) = (group.healthy_at.unwrap(), group.requested_at.unwrap());
    assert!(f.promoted_at.unwrap() <= asked, "capacity after the promotion");
    assert!(
        healthy <= f.dns_requested_at.unwrap(),
        "all 10 healthy before DNS switched"
    );
    let tasks = &f.capacity[1];
    assert!(
        tasks.healthy_at.unwrap() <= f.dns_requested_at.unwrap(),
        "all 6 tasks running before DNS switched"
    );
    assert_eq!(tasks.before.map(|b| b.desired), Some(2));
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
            "scale Auto Scaling group {} to 10 (min 10, max 20) and ECS service {service} (cluster {cluster}) to 6 tasks and wait until healthy (up to {}; then DNS switches with or without it)",
            night.db("orders").app_group.as_deref().unwrap(),
            on_test_bed(&night, minutes(10.0))
        )),
        "{}",
        started.message
    );
    let completed = step(&notices, "orders", "completed").unwrap();
    // The plan's last step: one event for the user's automation, before the failover completed.
    let events = night.automation_events("orders").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].attribute("event"), Some("failover-completed"));
    let event: serde_json::Value = serde_json::from_str(&events[0].message).unwrap();
    assert_eq!(
        (
            event["failover"].as_str(),
            event["endpoint"].as_str(),
            event["region"].as_str()
        ),
        (
            Some(f.id.as_str()),
            Some(night.replica_endpoint("orders").await.as_str()),
            Some(night.plan.dr.as_str())
        ),
        "{event:#}"
    );
    assert_eq!(
        event["capacity"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap(), c["ready"].as_bool().unwrap()))
            .collect::<Vec<_>>(),
        [
            (night.db("orders").app_group.as_deref().unwrap(), true),
            (service.as_str(), true)
        ]
    );
    assert!(
        f.automation.as_ref().unwrap().1 <= f.completed_at.unwrap(),
        "published before the failover completed"
    );
    for line in [
        "asked for 10 (min 10, max 20), was 2",
        "asked for 6 tasks, was 2",
        "6 of 6 running",
        "automation: failover-completed published to",
        "capacity ready",
        "+ capacity ",
    ] {
        assert!(completed.message.contains(line), "{line:?} in {}", completed.message);
    }
    let mut m = measured(&night, "orders", dark, true).await;
    let capacity = m.capacity.expect("the capacity component");
    assert!(
        capacity >= minutes(3.0) - 20.0,
        "EC2's three minutes to launch: {capacity}"
    );
    m.other
        .push("1 UpdateAutoScalingGroup 2 -> 10, 1 UpdateService 2 -> 6 tasks".into());
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

/// The way back. A MySQL database with a warm standby fails over in an outage; the region
/// returns and the old primary is fenced (stopped). An operator asks for a failback: the old
/// primary is retired (deleted, its final snapshot kept), a cross-region replica of the
/// failed-over primary takes its name in the original region (RDS takes ten minutes to make
/// it), and responders are told it is ready; nothing moves until a second command says
/// "switch". Then writes are blocked on the DR primary, the new replica's ReplicaLag reaches 0
/// for a whole period, it is promoted, DNS points back at the original endpoint, the web tier
/// shrinks back to 2, and a new replica is made in the DR region: protected again, with not
/// one write lost.
pub async fn failback() -> Measured {
    let mut plan = NightPlan::new("failback", "ap-northeast-1", "us-west-2")
        .database("orders", 5.0, 60.0)
        .engine("mysql")
        .recovery_plan(2, 10, minutes(10.0), false)
        .ecs_tasks(2, 4)
        .automation_topic();
    // two long RDS nights in one: a minute of AWS's is two seconds here
    plan.scale = drpilot_tests::night::Scale(30);
    let mut night = Night::begin(plan).await;
    let (source, dr) = (night.plan.source.clone(), night.plan.dr.clone());
    let (primary, replica) = (night.db("orders").primary.clone(), night.db("orders").replica.clone());
    let original = night.db("orders").primary_endpoint.clone();
    night.tag_standby("orders", "q4").await;
    // The user's automation topic refuses the failover's event (its policy not updated yet):
    // reported, and the failover completes anyway.
    let topic = night.db("orders").automation.clone().expect("a topic").topic_arn;
    let refused_publish = night
        .sim
        .fault(
            serde_json::json!({"service": "sns", "region": dr, "action": "Publish", "mode": "error",
            "status": 403, "code": "AuthorizationError", "message": "User is not authorized to perform: SNS:Publish",
            "params": {"TopicArn": topic}}),
        )
        .await;
    night.pass(minutes(2.0)).await;
    night.region_goes_dark().await;
    night.until_failed_over("orders").await;
    night.sim.clear_fault(refused_publish).await;
    let completed = step(&night.promoter_notices().await, "orders", "completed")
        .expect("the failover completed")
        .clone();
    assert!(
        completed
            .message
            .contains(&format!("automation: failover-completed NOT published to {topic}: ")),
        "{}",
        completed.message
    );
    assert_eq!(
        (night.app_group("orders").await, night.app_service("orders").await),
        ((10, 10), (4, 4))
    );
    let early = serde_json::json!({"action": "failback", "database": "orders", "by": "alice", "confirm": "orders"});
    let refused = night.invoke_promoter(early).await;
    assert!(
        matches!(&refused, drpilot_tests::night::Outcome::Error(e) if e.contains("is not fenced yet")),
        "no failback while the old primary may take writes: {refused:?}"
    );
    night.region_returns().await;
    night
        .until("the old primary fenced", minutes(5.0), |n| {
            Box::pin(async move { n.promoter_steps().await.iter().any(|s| s == "fenced") })
        })
        .await;
    // RDS's own pace from here: a replica takes ten minutes to make, a deletion three.
    for region in [&source, &dr] {
        night
            .sim
            .configure(
                region,
                serde_json::json!({
                    "replica_create_seconds": night.plan.scale.real_secs(minutes(10.0)),
                    "delete_seconds": night.plan.scale.real_secs(minutes(3.0)),
                }),
            )
            .await;
    }
    let mark = night.wire().await.0.len();

    // 1. Prepare: nothing moves but the original region's instances.
    let prepare = serde_json::json!({"action": "failback", "database": "orders", "by": "alice", "confirm": "orders"});
    let refused = night
        .invoke_promoter(serde_json::json!({"action": "failback", "database": "orders", "by": "alice"}))
        .await;
    assert!(
        matches!(&refused, drpilot_tests::night::Outcome::Error(e) if e.contains("confirm it by naming the database")),
        "{refused:?}"
    );
    // Checked before anything is deleted: a protected old primary stops it, nothing changed.
    let protect = |on: bool| {
        night
            .r
            .rds_source
            .modify_db_instance()
            .db_instance_identifier(&primary)
            .deletion_protection(on)
            .apply_immediately(true)
            .send()
    };
    protect(true).await.expect("deletion protection on");
    let refused = night.invoke_promoter(prepare.clone()).await;
    assert!(
        matches!(&refused, drpilot_tests::night::Outcome::Error(e)
            if e.contains("has deletion protection") && e.contains("nothing was changed")),
        "{refused:?}"
    );
    assert_eq!(
        night.wire().await.calls("DeleteDBInstance").count(),
        0,
        "nothing deleted"
    );
    assert!(night.record("orders").await.failback.is_none(), "nothing recorded");
    protect(false).await.expect("deletion protection off");
    night.invoke_promoter(prepare.clone()).await;
    night
        .until("the failback replica ready", minutes(30.0), |n| {
            Box::pin(async move { n.promoter_steps().await.iter().any(|s| s == "failback-ready") })
        })
        .await;
    let ready = step(&night.promoter_notices().await, "orders", "failback-ready")
        .expect("failback scenario unwrap #1")
        .clone();
    assert!(
        ready.message.contains("Nothing has moved") && ready.message.contains("\"switch\":true"),
        "{}",
        ready.message
    );
    night.pass(minutes(2.0)).await;
    assert_eq!(
        night.dns("orders").await,
        Some(night.replica_endpoint("orders").await),
        "no switch without the second command"
    );
    let dr_writer = night
        .sim
        .replication(&dr, &replica)
        .await
        .writer
        .expect("failback scenario unwrap #2");
    assert!(dr_writer.takes_writes, "the DR primary still takes writes");
    let board = night.status().await;
    assert_eq!(board.databases[0].phase, "failing back", "{}", board.render());

    // 2. The switch (the command's invocation carries the failback on while the night is
    // watched: positions are read the moment the replica is promoted).
    let mut switch = prepare.clone();
    switch["switch"] = true.into();
    let watch = async {
        night
            .until("the promotion back", minutes(20.0), |n| {
                Box::pin(async move {
                    let fb = n.record("orders").await.failback;
                    fb.is_some_and(|fb| fb.promoted_at.is_some() || !fb.called_off.is_empty())
                })
            })
            .await;
        (
            night.record("orders").await.failback.expect("the failback"),
            night.sim.replication(&dr, &replica).await,
            night.sim.replication(&source, &primary).await,
        )
    };
    let (_, (fb, dr_rep, back)) = futures::future::join(night.invoke_promoter(switch), watch).await;
    assert!(fb.called_off.is_empty(), "{:?}", fb.called_off);
    // Zero data loss: the DR primary's writes stopped, and the promoted replica had every one.
    let dr_writer = dr_rep
        .writer
        .clone()
        .unwrap_or_else(|| panic!("{dr_rep:?} {back:?} {fb:?}"));
    assert!(!dr_writer.takes_writes, "writes blocked on the DR primary");
    let promoted = back.replica.expect("the new primary was a replica");
    assert!(promoted.promoted_at.is_some());
    assert_eq!(
        promoted.applied, dr_writer.position,
        "write positions equal: not one write lost"
    );
    assert!(promoted.applied > 0.0);
    night
        .until("the switch back", minutes(20.0), |n| {
            Box::pin(async move { n.promoter_steps().await.iter().any(|s| s == "failback-switched") })
        })
        .await;
    assert_eq!(
        night.dns("orders").await,
        Some(original.clone()),
        "DNS back at the original endpoint"
    );
    let writer = night.sim.replication(&source, &primary).await.writer;
    assert!(writer.is_some_and(|w| w.takes_writes), "the new primary takes writes");

    night
        .until("the failback completed", minutes(30.0), |n| {
            Box::pin(async move { n.promoter_steps().await.iter().any(|s| s == "failback-completed") })
        })
        .await;
    let wire = night.wire().await;
    let since: Vec<_> = wire.0.iter().skip(mark).cloned().collect();
    let wire = drpilot_tests::sim::Wire(since);
    let promotions: Vec<_> = wire.calls("PromoteReadReplica").collect();
    assert_eq!(promotions.len(), 1, "one promotion: {promotions:#?}");
    assert_eq!(promotions[0].region.as_deref(), Some(source.as_str()));
    let creates: Vec<_> = wire
        .calls("CreateDBInstanceReadReplica")
        .filter(|c| c.accepted())
        .collect();
    let created: Vec<_> = creates
        .iter()
        .map(|c| {
            (
                c.region.clone().unwrap_or_default(),
                c.param("DBInstanceIdentifier").unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        created,
        [(source.clone(), primary.clone()), (dr.clone(), replica.clone())],
        "each replica once, under its old name"
    );
    let deletes: Vec<_> = wire.calls("DeleteDBInstance").filter(|c| c.accepted()).collect();
    assert_eq!(deletes.len(), 2, "{deletes:#?}");
    for d in &deletes {
        assert!(
            d.param("FinalDBSnapshotIdentifier")
                .is_some_and(|s| s.contains("-before-failback-")),
            "a final snapshot is kept: {d:?}"
        );
    }
    // Protected again: the topology as before the night.
    let rds_dr = &night.r.rds_dr;
    let out = rds_dr
        .describe_db_instances()
        .db_instance_identifier(&replica)
        .send()
        .await
        .expect("failback scenario unwrap #5");
    let standby = &out.db_instances()[0];
    assert_eq!(standby.db_instance_status(), Some("available"));
    assert!(
        standby
            .read_replica_source_db_instance_identifier()
            .is_some_and(|s| s.ends_with(&format!(":db:{primary}"))),
        "{standby:?}"
    );
    assert_eq!(
        standby.db_parameter_groups()[0].db_parameter_group_name(),
        Some(format!("{replica}-params").as_str()),
        "the new DR replica keeps the old one's parameters"
    );
    let group = night
        .db("orders")
        .app_group
        .clone()
        .expect("failback scenario unwrap #6");
    assert_eq!(
        drpilot_tests::night::group_size(&dr, &group).await.0,
        2,
        "the web tier back to 2"
    );
    assert_eq!(night.app_service("orders").await, (2, 2), "the API back to 2 tasks");
    assert_eq!(night.dns("orders").await, Some(original));
    let record = night.record("orders").await;
    let fb = record.failback.clone().expect("failback scenario unwrap #7");
    assert!(
        record
            .current
            .expect("failback scenario unwrap #8")
            .acknowledged
            .is_some(),
        "automatic failover re-armed"
    );
    let completed = step(&night.promoter_notices().await, "orders", "failback-completed")
        .expect("failback scenario unwrap #9")
        .clone();
    assert!(completed.subject.contains("PROTECTED again"), "{}", completed.subject);
    assert!(
        completed
            .message
            .contains("Automation: failback-completed published to"),
        "{}",
        completed.message
    );
    let events = night.automation_events("orders").await;
    assert_eq!(
        events
            .iter()
            .map(|e| e.attribute("event").unwrap_or("?"))
            .collect::<Vec<_>>(),
        ["failback-completed"],
        "the user's automation told at the end of the failback (the failover's was refused)"
    );
    let back: serde_json::Value = serde_json::from_str(&events[0].message).unwrap();
    assert_eq!(
        (
            back["failback"].as_str(),
            back["region"].as_str(),
            back["primary"].as_str()
        ),
        (Some(fb.id.as_str()), Some(source.as_str()), Some(primary.as_str())),
        "{back:#}"
    );
    night
        .until("the dashboard says PROTECTED", minutes(5.0), |n| {
            Box::pin(async move { n.status().await.verdict.as_str() == "PROTECTED" })
        })
        .await;
    let board = night.status().await;
    assert_eq!(board.databases[0].phase, "protected again", "{}", board.render());

    // 3. The quarterly drill, with failback: it ends where it began.
    let before = topology(&night, &primary, &replica).await;
    let drill = serde_json::json!({"action": "drill", "database": "orders", "plan": "q4", "confirm": "orders", "failback": true});
    let report = night.invoke_promoter(drill).await;
    assert!(
        matches!(&report, drpilot_tests::night::Outcome::Ok(r) if r["passed"] == true),
        "{report:?}"
    );
    night
        .until("the drill's failback", minutes(60.0), |n| {
            Box::pin(async move { n.promoter_notices_at("drill").await.len() == 2 })
        })
        .await;
    let drills = night.promoter_notices_at("drill").await;
    assert!(
        drills[0].message.contains("failback: back to the primary region"),
        "{}",
        drills[0].message
    );
    assert!(
        drills[1].subject.contains("DRILL PASS") && drills[1].message.contains("[PASS] failback: ended where it began"),
        "{}\n{}",
        drills[1].subject,
        drills[1].message
    );
    assert_eq!(
        topology(&night, &primary, &replica).await,
        before,
        "the drill ends where it began"
    );

    let took = |a: chrono::DateTime<chrono::Utc>, b: chrono::DateTime<chrono::Utc>| {
        night.plan.scale.aws((b - a).num_milliseconds() as f64 / 1000.0)
    };
    let h = |s: f64| drpilot::plan::lag::human_seconds(s.round());
    let paused = took(
        fb.writes_blocked.expect("failback scenario unwrap #10").1,
        fb.writes_allowed.expect("failback scenario unwrap #11").1,
    );
    let whole = took(fb.requested_at, fb.completed_at.expect("failback scenario unwrap #12"));
    let mut m = Measured::default();
    m.other.push(format!(
        "failback {} (writes paused {}), 0 writes lost, DNS back, DR replica again",
        h(whole),
        h(paused)
    ));
    night.end().await;
    m
}

/// What a drill must leave as it found it: the primary and its replica (status, replication,
/// parameters, endpoint, the drill tag), where DNS points, the web tier's size and the API's tasks.
async fn topology(n: &Night, primary: &str, replica: &str) -> String {
    let group = n.db("orders").app_group.clone().expect("a plan's group");
    let p =
        n.r.rds_source
            .describe_db_instances()
            .db_instance_identifier(primary)
            .send()
            .await;
    let r =
        n.r.rds_dr
            .describe_db_instances()
            .db_instance_identifier(replica)
            .send()
            .await;
    let (p, r) = (p.expect("the primary"), r.expect("the replica"));
    let (p, r) = (&p.db_instances()[0], &r.db_instances()[0]);
    format!(
        "primary {:?} {:?} replica-of {:?} params {:?} endpoint {:?} | replica {:?} {:?} of {:?} params {:?} tags {:?} | dns {:?} | group {:?} | service {:?}",
        p.db_instance_identifier(),
        p.db_instance_status(),
        p.read_replica_source_db_instance_identifier(),
        p.db_parameter_groups().iter().map(|g| g.db_parameter_group_name()).collect::<Vec<_>>(),
        p.endpoint().and_then(|e| e.address()),
        r.db_instance_identifier(),
        r.db_instance_status(),
        r.read_replica_source_db_instance_identifier().map(|s| s.rsplit(':').next().unwrap_or(s).to_string()),
        r.db_parameter_groups().iter().map(|g| g.db_parameter_group_name()).collect::<Vec<_>>(),
        r.tag_list().iter().filter(|t| t.key() == Some("drpilot:drill-plan")).map(|t| t.value()).collect::<Vec<_>>(),
        n.dns("orders").await,
        drpilot_tests::night::group_size(&n.plan.dr, &group).await.0,
        n.app_service("orders").await.0,
    )
}

/// An Aurora global database fails back. The primary region goes dark and the promoter fails
/// the global database over (`FailoverGlobalCluster`, data loss allowed). The region returns;
/// Aurora rebuilds the old primary cluster as a secondary (`pending-resync` for ten minutes).
/// A failback asked at once waits for that, says READY and moves nothing; the operator's
/// `--switch` asks one `SwitchoverGlobalCluster` back to the old primary cluster (Aurora
/// synchronizes it first: nothing is lost), DNS goes back to it, the plan's capacity back to
/// its size, and the DR cluster is its secondary again. Nothing is deleted or created; the
/// dashboard says PROTECTED.
pub async fn aurora_failback() -> Measured {
    let mut plan = NightPlan::new("aurorafb", "eu-west-3", "eu-north-1")
        .aurora("ledger", 1.0, minutes(10.0))
        .recovery_plan(2, 4, minutes(10.0), false);
    plan.scale = drpilot_tests::night::Scale(30);
    let mut night = Night::begin(plan).await;
    let (source, global) = (
        night.plan.source.clone(),
        night.db("ledger").global_cluster.clone().expect("a global database"),
    );
    let (primary, secondary) = (night.db("ledger").primary.clone(), night.db("ledger").replica.clone());
    let original = night.db("ledger").primary_endpoint.clone();
    // Aurora rebuilds a left-behind primary from the new one: minutes to hours with the volume.
    night
        .sim
        .configure(
            &source,
            serde_json::json!({"global_resync_seconds": night.plan.scale.real_secs(minutes(10.0))}),
        )
        .await;
    night.region_goes_dark().await;
    night.until_failed_over("ledger").await;
    let returned = night.region_returns().await;
    night
        .until("the old primary fenced", minutes(5.0), |n| {
            Box::pin(async move { n.promoter_steps().await.iter().any(|s| s == "fenced") })
        })
        .await;
    let mark = night.wire().await.0.len();
    let members = |n: &Night| {
        let (rds, global) = (n.r.rds_dr.clone(), global.clone());
        async move {
            let out = rds
                .describe_global_clusters()
                .global_cluster_identifier(global)
                .send()
                .await
                .expect("the global database");
            out.global_clusters()[0]
                .global_cluster_members()
                .iter()
                .map(|m| {
                    let id = m
                        .db_cluster_arn()
                        .unwrap_or_default()
                        .rsplit(':')
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let sync = m
                        .synchronization_status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default();
                    (id, m.is_writer() == Some(true), sync)
                })
                .collect::<Vec<_>>()
        }
    };
    assert!(
        members(&night)
            .await
            .contains(&(primary.clone(), false, "pending-resync".to_string())),
        "Aurora rebuilds the old primary: {:?}",
        members(&night).await
    );

    // 1. Prepare: it waits for the rebuild; nothing moves.
    let prepare = serde_json::json!({"action": "failback", "database": "ledger", "by": "alice", "confirm": "ledger"});
    night.invoke_promoter(prepare).await;
    night
        .until("the failback ready", minutes(30.0), |n| {
            Box::pin(async move { n.promoter_steps().await.iter().any(|s| s == "failback-ready") })
        })
        .await;
    let record = night.record("ledger").await;
    let fb = record.failback.clone().expect("a failback");
    let ready_at = fb.replica_ready_at.unwrap().timestamp_millis() as f64 / 1000.0;
    let ready_after = night.plan.scale.aws(ready_at - returned);
    assert!(
        ready_after >= minutes(10.0) - 60.0,
        "ready only once Aurora rebuilt it: {ready_after}"
    );
    assert_eq!(
        night.dns("ledger").await,
        Some(night.replica_endpoint("ledger").await),
        "no switch without the second command"
    );

    // 2. The switch back.
    let switch = serde_json::json!({"action": "failback", "database": "ledger", "by": "alice", "confirm": "ledger", "switch": true});
    night.invoke_promoter(switch).await;
    night
        .until("the failback completed", minutes(30.0), |n| {
            Box::pin(async move { n.promoter_steps().await.iter().any(|s| s == "failback-completed") })
        })
        .await;
    let wire = night.wire().await;
    let since = drpilot_tests::sim::Wire(wire.0.iter().skip(mark).cloned().collect());
    let switched: Vec<_> = since
        .calls("SwitchoverGlobalCluster")
        .filter(|c| c.accepted())
        .collect();
    assert_eq!(switched.len(), 1, "one switchover back: {switched:#?}");
    assert!(
        switched[0]
            .param("TargetDbClusterIdentifier")
            .is_some_and(|t| t.ends_with(&format!(":cluster:{primary}"))),
        "{:?}",
        switched[0]
    );
    for action in [
        "FailoverGlobalCluster",
        "DeleteDBCluster",
        "DeleteDBInstance",
        "CreateDBCluster",
        "RemoveFromGlobalCluster",
    ] {
        assert_eq!(
            since.calls(action).count(),
            0,
            "no {action}: nothing lost, replaced or detached"
        );
    }
    assert_eq!(
        members(&night).await,
        [
            (primary.clone(), true, "connected".to_string()),
            (secondary.clone(), false, "connected".to_string())
        ],
        "the topology as before the night"
    );
    assert_eq!(
        night.dns("ledger").await,
        Some(original),
        "DNS back at the original cluster"
    );
    assert_eq!(night.app_group("ledger").await.0, 2, "the plan's group back to 2");
    let done = step(&night.promoter_notices().await, "ledger", "failback-completed")
        .expect("the completed notice")
        .clone();
    assert!(
        done.message.contains("Nothing was deleted") && done.message.contains("switchover (asked -> writer)"),
        "{}",
        done.message
    );
    night
        .until("the dashboard says PROTECTED", minutes(5.0), |n| {
            Box::pin(async move { n.status().await.verdict.as_str() == "PROTECTED" })
        })
        .await;
    let board = night.status().await;
    assert_eq!(board.databases[0].phase, "protected again", "{}", board.render());
    let fb = night.record("ledger").await.failback.expect("the failback");

    // 3. The quarterly drill, with failback: a switchover there and one back, ending where it
    // began (the members, their roles, DNS, the plan's group). Aurora switches in minutes, so
    // the failback completes within the drill's own invocation: one report, with its last step.
    night.tag_standby("ledger", "q4").await;
    let before = (
        members(&night).await,
        night.dns("ledger").await,
        night.app_group("ledger").await.0,
    );
    let drill = serde_json::json!({"action": "drill", "database": "ledger", "plan": "q4", "confirm": "ledger", "failback": true});
    let report = night.invoke_promoter(drill).await;
    let ended = |r: &serde_json::Value| {
        r["steps"].as_array().is_some_and(|s| {
            s.iter()
                .any(|s| s["name"] == "failback: ended where it began" && s["passed"] == true)
        })
    };
    assert!(
        matches!(&report, drpilot_tests::night::Outcome::Ok(r) if r["passed"] == true && ended(r)),
        "{report:?}"
    );
    let drills = night.promoter_notices_at("drill").await;
    assert!(
        drills.len() == 1
            && drills[0].subject.contains("DRILL PASS")
            && drills[0].message.contains("[PASS] failback: ended where it began"),
        "{drills:#?}"
    );
    assert_eq!(
        (
            members(&night).await,
            night.dns("ledger").await,
            night.app_group("ledger").await.0
        ),
        before,
        "the drill ends where it began"
    );
    let wire = night.wire().await;
    assert_eq!(
        wire.calls("SwitchoverGlobalCluster").filter(|c| c.accepted()).count(),
        3,
        "the failback's switchover, then the drill's there and back"
    );
    let h = |s: f64| drpilot::plan::lag::human_seconds(s.round());
    let aws = |a: chrono::DateTime<chrono::Utc>, b: chrono::DateTime<chrono::Utc>| {
        night.plan.scale.aws((b - a).num_milliseconds() as f64 / 1000.0)
    };
    let mut m = Measured::default();
    m.other.push(format!(
        "rejoined in {}, switchover back {} (1 SwitchoverGlobalCluster, nothing deleted), DNS back, PROTECTED; drill with failback ends where it began",
        h(ready_after),
        h(aws(fb.promote_accepted_at.unwrap(), fb.dns_in_sync_at.unwrap()))
    ));
    night.end().await;
    m
}
