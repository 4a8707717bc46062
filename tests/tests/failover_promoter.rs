//! failover-promoter end to end: the real binary, invoked as Lambda invokes it, on the
//! simulator, woken by the shipped primary-down alarm that the simulator's CloudWatch evaluates
//! from the metrics the real lag checker publishes (see `drpilot_tests::night`). Promotions,
//! DNS changes and their number are read at the wire; notices from the responders' queue.
//! Each test has a region pair of its own.

use drpilot_tests::night::{minutes, Night, NightPlan, Outcome};
use serde_json::{json, Value};

fn subjects(notices: &[drpilot_tests::account::Received]) -> Vec<String> {
    notices.iter().map(|n| n.subject.clone()).collect()
}

fn ok(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Ok(v) => v,
        other => panic!("the promoter failed: {other:?}"),
    }
}

fn error(outcome: Outcome) -> String {
    match outcome {
        Outcome::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_promotes_once_switches_dns_and_tells_responders_at_every_step() {
    let plan = NightPlan::new("fo-every-step", "eu-west-3", "eu-north-1").database("orders", 4.0, minutes(5.0));
    let mut night = Night::begin(plan).await;
    let db = night.db("orders").clone();
    assert_eq!(night.dns("orders").await.as_deref(), Some(db.primary_endpoint.as_str()));
    night.region_goes_dark().await;
    night.until_failed_over("orders").await;

    assert_eq!(night.requests("PromoteReadReplica", "orders").await, 1);
    assert_eq!(night.accepted("ChangeResourceRecordSets", "orders").await, 1);
    assert_eq!(
        night.dns("orders").await,
        Some(night.replica_endpoint("orders").await),
        "the app record points at the promoted replica"
    );
    let notices = night.promoter_notices().await;
    let dr = &night.plan.dr;
    assert_eq!(
        subjects(&notices)[..3],
        [
            format!("drpilot: FAILOVER started: orders -> {dr}"),
            format!("drpilot: orders: {} promoted", db.replica),
            "drpilot: orders: DNS switched to the DR region".to_string(),
        ]
    );
    assert!(
        notices[3]
            .subject
            .starts_with(&format!("drpilot: FAILOVER completed: orders in {dr} (RTO ")),
        "{}",
        notices[3].subject
    );
    let id = notices[0].attribute("failover_id").unwrap().to_string();
    assert!(notices
        .iter()
        .all(|n| n.attribute("failover_id") == Some(id.as_str()) && n.attribute("severity") == Some("critical")));
    let started = &notices[0].message;
    assert!(started.contains(&format!("Why: alarm {}", db.alarm)), "{started}");
    assert!(
        started.contains("[PASS] confirmed: the alarm is still in ALARM; the primary region's API does not answer"),
        "{started}"
    );
    assert!(started.contains("Estimated data loss (RPO): "), "{started}");
    let done = &notices[3].message;
    for line in [
        "failure detected",
        "decided to promote",
        "promotion requested",
        "standby promoted",
        "DNS change in sync",
        "RTO ",
        "detect->decide",
        "within the RTO budget",
        r#""action":"acknowledge""#,
    ] {
        assert!(done.contains(line), "{line} missing in:\n{done}");
    }
    night.end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lag_gate_refuses_with_the_numbers_and_the_command_to_force_it() {
    // The replica was ten minutes behind when the region went dark; the limit is a minute.
    let plan = NightPlan::new("fo-lag-gate", "eu-south-1", "eu-south-2").database("orders", minutes(10.0), 60.0);
    let mut night = Night::begin(plan).await;
    night.region_goes_dark().await;
    night
        .until("the refusal", minutes(15.0), |n| {
            Box::pin(async move { !n.promoter_notices().await.is_empty() })
        })
        .await;
    assert_eq!(night.requests("PromoteReadReplica", "orders").await, 0);
    let n = night.promoter_notices().await.remove(0);
    assert_eq!(n.subject, "drpilot: NOT failing over orders: lag failed");
    assert!(n.message.contains("[FAIL] lag: estimated data loss "), "{}", n.message);
    assert!(n.message.contains("exceeds the limit 3s"), "{}", n.message); // 60 s, scaled by 20
    let force = r#""action":"failover","database":"orders","force_data_loss":true"#;
    assert!(n.message.contains(force), "{}", n.message);
    assert!(
        n.message.contains(&format!(
            "aws lambda invoke --region {} --function-name drpilot-failover-promoter",
            night.plan.dr
        )),
        "{}",
        n.message
    );

    // The responder accepts the loss, with the command from the notice.
    let command =
        json!({"action": "failover", "database": "orders", "force_data_loss": true, "reason": "accepting 10m of loss"});
    let response = ok(night.invoke_promoter(command).await);
    assert_eq!(response["completed"], true, "{response:#}");
    assert_eq!(night.requests("PromoteReadReplica", "orders").await, 1);
    assert_eq!(night.dns("orders").await, Some(night.replica_endpoint("orders").await));
    night.end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failover_cut_off_by_its_deadline_and_a_failed_dns_call_resumes_with_no_step_done_twice() {
    // A three-minute Lambda timeout (stopping 40 s before it): a five-minute promotion cannot
    // finish in one invocation.
    let mut plan = NightPlan::new("fo-resume", "ap-south-1", "ap-south-2")
        .database("orders", 4.0, minutes(5.0))
        .promoter_setting("DRPILOT_DEADLINE_MARGIN_SECONDS", "2");
    plan.promoter_timeout = minutes(3.0);
    plan.promotion = minutes(5.0);
    let mut night = Night::begin(plan).await;
    // ... and Route 53 refuses the first change of the zone.
    let zone = night.db("orders").zone.clone();
    night
        .fault(json!({"service": "route53", "action": "ChangeResourceRecordSets", "params": {"Id": zone}, "mode": "error", "status": 400, "code": "InvalidInput", "message": "injected", "count": 1}))
        .await;
    night.region_goes_dark().await;
    night.until_failed_over("orders").await;
    let runs = night.invocations();
    let cut_off = runs
        .iter()
        .filter(|i| matches!(&i.outcome, Outcome::Ok(v) if v["in_progress"] == true || v["resumed"][0]["in_progress"] == true))
        .count();
    let failed = runs.iter().filter(|i| matches!(i.outcome, Outcome::Error(_))).count();
    assert!(
        cut_off >= 1,
        "a run saved its progress at its deadline:\n{}",
        night.story().await
    );
    assert!(failed >= 1, "a run failed on the DNS change:\n{}", night.story().await);
    assert_eq!(night.requests("PromoteReadReplica", "orders").await, 1, "promoted once");
    assert_eq!(night.accepted("ChangeResourceRecordSets", "orders").await, 1);
    assert_eq!(
        night.requests("ChangeResourceRecordSets", "orders").await,
        2,
        "the refused change, then one"
    );
    assert_eq!(
        night.promoter_steps().await,
        ["started", "promoted", "dns", "completed"],
        "each notice once"
    );
    night.end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_failover_no_automatic_one_until_acknowledged_and_cooled_down() {
    let plan = NightPlan::new("fo-ack", "ap-southeast-1", "ap-southeast-2").database("orders", 4.0, minutes(5.0));
    let mut night = Night::begin(plan).await;
    night.region_goes_dark().await;
    night.until_failed_over("orders").await;
    let before = night.promoter_notices().await.len();

    // The alarm flaps: a new episode. The failover was never acknowledged: refused.
    night.alarm_flaps("orders").await;
    night
        .until("the refusal", minutes(10.0), |n| {
            Box::pin(async move { n.promoter_notices().await.len() > before })
        })
        .await;
    let n = night.promoter_notices().await.pop().unwrap();
    assert!(
        n.message.contains("[FAIL] anti-flapping: failover fo-"),
        "{}",
        n.message
    );
    assert!(n.message.contains("was never acknowledged by a human"), "{}", n.message);

    let ack = json!({"action": "acknowledge", "database": "orders", "by": "alice@example.com"});
    let response = ok(night.invoke_promoter(ack.clone()).await);
    assert_eq!(response["acknowledged_by"], "alice@example.com");
    assert_eq!(
        ok(night.invoke_promoter(ack).await)["already"],
        true,
        "acknowledging twice is harmless"
    );
    let n = night.promoter_notices().await.pop().unwrap();
    assert_eq!(
        n.subject,
        "drpilot: failover of orders acknowledged by alice@example.com"
    );

    // Acknowledged, but within the cooldown (an hour): still refused.
    let before = night.promoter_notices().await.len();
    night.alarm_flaps("orders").await;
    night
        .until("the second refusal", minutes(10.0), |n| {
            Box::pin(async move { n.promoter_notices().await.len() > before })
        })
        .await;
    let n = night.promoter_notices().await.pop().unwrap();
    assert!(
        n.message.contains("[FAIL] anti-flapping: previous failover"),
        "{}",
        n.message
    );
    assert!(n.message.contains("(cooldown 3m)"), "{}", n.message); // an hour, scaled by 20
    assert_eq!(night.requests("PromoteReadReplica", "orders").await, 1);
    night.end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_alarms_ok_transitions_and_malformed_events_change_nothing() {
    let plan = NightPlan::new("fo-bad-input", "ca-west-1", "us-west-1").database("orders", 4.0, minutes(5.0));
    let mut night = Night::begin(plan).await;
    let sample = drpilot_tests::sample_event("failover-promoter/alarm-eventbridge.json");
    let mut unknown = sample.clone();
    unknown["region"] = night.plan.dr.clone().into();
    let r = ok(night.invoke_promoter(unknown.clone()).await);
    assert!(r["ignored"].as_str().unwrap().contains("not configured"), "{r}");
    let mut alarm = unknown.clone();
    alarm["detail"]["alarmName"] = night.db("orders").alarm.clone().into();
    for state in ["OK", "INSUFFICIENT_DATA"] {
        alarm["detail"]["state"]["value"] = state.into();
        let r = ok(night.invoke_promoter(alarm.clone()).await);
        assert!(r["ignored"].as_str().unwrap().contains("not ALARM"), "{r}");
    }
    for bad in [
        json!("ALARM"),
        json!({"action": "promote"}),
        json!({"Records": [{"Sns": {"Message": "{}"}}]}),
    ] {
        let e = error(night.invoke_promoter(bad.clone()).await);
        assert!(e.contains("drpilot.BadEvent"), "{bad}: {e}");
    }
    let e = error(
        night
            .invoke_promoter(json!({"action": "failover", "database": "nope", "reason": "x"}))
            .await,
    );
    assert!(e.contains("unknown database"), "{e}");
    assert_eq!(night.requests("PromoteReadReplica", "orders").await, 0);
    assert_eq!(night.accepted("ChangeResourceRecordSets", "orders").await, 0);
    assert!(night.promoter_notices().await.is_empty());
    assert!(
        night.record("orders").await.current.is_none(),
        "no failover was recorded"
    );
    night.end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confirmation_that_lags_the_alarm_is_picked_up_by_the_continuation() {
    // A generous limit: replication is broken for minutes while the primary takes writes.
    let plan = NightPlan::new("fo-confirm", "us-east-2", "ap-northeast-3").database("orders", 4.0, minutes(20.0));
    let mut night = Night::begin(plan).await;
    // Replication breaks while the primary's region still answers (a network partition
    // between the regions): the alarm fires, the primary looks available.
    let replica = night.db("orders").replica.clone();
    night
        .sim
        .set_replication(&night.plan.dr, &replica, json!({"broken": true}))
        .await;
    night
        .until("the refusal", minutes(15.0), |n| {
            Box::pin(async move { !n.promoter_notices().await.is_empty() })
        })
        .await;
    let n = night.promoter_notices().await;
    assert_eq!(subjects(&n), ["drpilot: NOT failing over orders: confirmed failed"]);
    assert!(
        n[0].message
            .contains("the primary is available as seen from the DR region"),
        "{}",
        n[0].message
    );
    // The continuation re-checks every minute, quietly while nothing changes.
    night.pass(minutes(3.0)).await;
    assert_eq!(
        night.promoter_notices().await.len(),
        1,
        "the same refusal is not repeated"
    );

    // Then the region goes dark: the next tick confirms and fails over.
    night.region_goes_dark().await;
    night.until_failed_over("orders").await;
    assert_eq!(night.requests("PromoteReadReplica", "orders").await, 1);
    assert_eq!(
        night.promoter_steps().await,
        ["refused", "started", "promoted", "dns", "completed"]
    );
    // The primary was seen taking writes for minutes after replication broke: all of it is
    // counted as loss, not just the lag before the break.
    let est = night.failover("orders").await.unwrap().estimated_rpo_seconds.unwrap();
    assert!(
        night.plan.scale.aws(est) >= minutes(6.0),
        "estimated {} s",
        night.plan.scale.aws(est)
    );
    night.end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_promotion_that_takes_too_long_is_reported_once_and_still_completes() {
    // "Stuck" after 20 s instead of 30 minutes (the setting's smallest value, scaled), and a
    // promotion of three minutes.
    let plan = NightPlan::new("fo-stuck", "sa-east-1", "mx-central-1")
        .database("orders", 4.0, minutes(5.0))
        .promoter_setting("DRPILOT_STUCK_AFTER_SECONDS", "1");
    let mut night = Night::begin(plan).await;
    night.region_goes_dark().await;
    night.until_failed_over("orders").await;
    assert_eq!(
        night.promoter_steps().await,
        ["started", "stuck", "promoted", "dns", "completed"]
    );
    let n = night.promoter_notices().await;
    assert_eq!(
        n[1].subject,
        "drpilot: failover of orders STUCK waiting for the promotion"
    );
    assert!(
        n[1].message.contains("Now: modifying (promoted: false)"),
        "{}",
        n[1].message
    );
    night.end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drill_refuses_a_standby_not_tagged_for_its_plan_and_changes_nothing() {
    let plan = NightPlan::new("fo-drill-refused", "af-south-1", "il-central-1").database("orders", 4.0, minutes(5.0));
    let mut night = Night::begin(plan).await;
    let drill = |confirm: &str| json!({"action": "drill", "database": "orders", "plan": "q4-2026", "confirm": confirm});
    let e = error(night.invoke_promoter(drill("orders")).await);
    assert!(e.contains("is not tagged drpilot:drill-plan=q4-2026"), "{e}");
    night.tag_standby("orders", "q3-2026").await;
    let e = error(night.invoke_promoter(drill("orders")).await);
    assert!(e.contains("nothing was changed"), "{e}");
    night.tag_standby("orders", "q4-2026").await;
    let e = error(night.invoke_promoter(drill("yes")).await);
    assert!(e.contains("confirm it by naming the database"), "{e}");
    assert_eq!(night.requests("PromoteReadReplica", "orders").await, 0);
    assert_eq!(night.accepted("ChangeResourceRecordSets", "orders").await, 0);
    assert!(night.promoter_notices().await.is_empty());
    assert!(night.record("orders").await.current.is_none());
    night.end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drill_fails_over_a_tagged_standby_reports_each_step_and_shows_on_the_dashboard() {
    // A drill is a human's decision: it acts in advisory mode too. It is a planned failover
    // without data loss, which drpilot can prove for MySQL (writes blocked, replica caught up).
    let plan = NightPlan::new("fo-drill", "me-south-1", "me-central-1")
        .database("orders", 4.0, minutes(5.0))
        .engine("mysql")
        .mode("advisory");
    let mut night = Night::begin(plan).await;
    night.tag_standby("orders", "q4-2026").await;
    let drill = json!({"action": "drill", "database": "orders", "plan": "q4-2026", "confirm": "orders"});
    let report = ok(night.invoke_promoter(drill.clone()).await);
    assert_eq!(report["passed"], true, "{report:#}");
    let names: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "preflight: replication healthy",
            "preflight: standby ready",
            "failover: promote and switch DNS",
            "RTO within budget",
            "verify: DNS points at the new primary"
        ]
    );
    assert!(
        report["left_in"].as_str().unwrap().contains("is now the primary"),
        "{report:#}"
    );
    assert_eq!(night.requests("PromoteReadReplica", "orders").await, 1);
    assert_eq!(night.dns("orders").await, Some(night.replica_endpoint("orders").await));
    assert_eq!(night.data_lost("orders").await, 0.0, "a drill loses nothing");
    let last = night.promoter_notices().await.pop().unwrap();
    assert_eq!(last.subject, "drpilot DRILL PASS: orders (q4-2026)");

    let board = night.status().await;
    assert_eq!(board.databases[0].failover, "awaiting-acknowledgement");
    assert!(
        board.databases[0].last_drill.as_ref().is_some_and(|d| d.passed),
        "{board:?}"
    );

    // Drilling again before the standby is rebuilt stops at preflight and says so.
    let report = ok(night.invoke_promoter(drill).await);
    assert_eq!(report["passed"], false, "{report:#}");
    assert!(
        report["steps"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("already promoted"),
        "{report:#}"
    );
    assert_eq!(report["left_in"], "unchanged: the drill stopped before failing over");
    assert_eq!(
        night.requests("PromoteReadReplica", "orders").await,
        1,
        "no second promotion"
    );
    assert_eq!(
        night.promoter_notices().await.pop().unwrap().subject,
        "drpilot DRILL FAIL: orders (q4-2026)"
    );
    night.end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_failover_completes_even_when_no_notice_can_be_sent() {
    let plan = NightPlan::new("fo-no-sns", "ap-east-1", "ap-southeast-3").database("orders", 4.0, minutes(5.0));
    let mut night = Night::begin(plan).await;
    // SNS refuses every publish to the responders' topic: recovery must not wait on notices.
    night
        .fault(json!({"service": "sns", "action": "Publish", "params": {"TopicArn": night.responders.topic_arn}, "mode": "error", "status": 404, "code": "NotFound", "message": "Topic does not exist"}))
        .await;
    night.region_goes_dark().await;
    night.until_failed_over("orders").await;
    let errors: Vec<String> = night
        .invocations()
        .into_iter()
        .filter(|i| i.function == drpilot_tests::night::PROMOTER)
        .filter_map(|i| match i.outcome {
            Outcome::Error(e) => Some(e),
            _ => None,
        })
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("advanced, but 4 notice(s) could not be sent")),
        "{errors:#?}"
    );
    assert_eq!(night.requests("PromoteReadReplica", "orders").await, 1);
    assert_eq!(night.dns("orders").await, Some(night.replica_endpoint("orders").await));
    night.end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operators_hold_disarms_automatic_failover_and_the_dashboard_shows_it() {
    let plan = NightPlan::new("fo-hold", "eu-west-2", "ap-northeast-2").database("orders", 4.0, 60.0);
    let mut night = Night::begin(plan).await;
    let until = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    night
        .tag_standby_with("orders", "drpilot:failover-disarmed-until", &until)
        .await;
    let board = night.status().await;
    assert!(
        board.reasons.iter().any(|r| r.contains(&format!(
            "orders: automatic failover disarmed by an operator until {until}"
        ))),
        "{:?}",
        board.reasons
    );
    night.region_goes_dark().await;
    night
        .until("the refusal", minutes(10.0), |n| {
            Box::pin(async move { !n.promoter_notices().await.is_empty() })
        })
        .await;
    assert_eq!(night.requests("PromoteReadReplica", "orders").await, 0);
    let n = night.promoter_notices().await.remove(0);
    assert_eq!(n.subject, "drpilot: NOT failing over orders: armed failed");
    assert!(
        n.message.contains(&format!(
            "[FAIL] armed: an operator disarmed automatic failover until {until}"
        )),
        "{}",
        n.message
    );
    night.end().await;
}

/// A strict recovery plan whose capacity cannot come (the DR region has none to launch) holds
/// DNS after the promotion; responders are told once, with the command; an operator's
/// "proceed" lets it switch, and the record says who and why.
#[tokio::test(flavor = "multi_thread")]
async fn a_strict_plan_holds_dns_until_an_operator_lets_it_go() {
    let plan = NightPlan::new("fo-proceed", "eu-central-1", "ca-central-1")
        .database("orders", 4.0, minutes(5.0))
        .recovery_plan(2, 6, minutes(2.0), true);
    let mut night = Night::begin(plan).await;
    night.dr_capacity(Some(2)).await; // the 2 running, and room for no more
    night.pass(minutes(2.0)).await;
    let proceed = json!({"action": "proceed", "database": "orders", "by": "alice"});
    let e = error(night.invoke_promoter(proceed.clone()).await);
    assert!(
        e.contains("drpilot.BadEvent") && e.contains("no failover waiting for capacity"),
        "{e}"
    );

    let failover = json!({"action": "failover", "database": "orders", "reason": "evacuating the region"});
    let operator = async {
        night
            .until("DNS held", minutes(10.0), |n| {
                Box::pin(async move { !n.promoter_notices_at("capacity-held").await.is_empty() })
            })
            .await;
        let f = night.failover("orders").await.unwrap();
        assert!(
            f.promoted_at.is_some() && f.dns_requested_at.is_none(),
            "promoted, DNS held"
        );
        let r = ok(night.invoke_promoter(proceed.clone()).await);
        assert_eq!(r["proceed_by"], "alice", "{r}");
        let again = ok(night.invoke_promoter(proceed.clone()).await);
        assert_eq!(again["already"], true, "{again}");
    };
    let (done, ()) = futures::join!(night.invoke_promoter(failover), operator);
    let done = ok(done);
    assert_eq!(
        done["completed"], true,
        "the invocation that waited switched DNS: {done}"
    );

    let f = night.failover("orders").await.unwrap();
    let (why, _) = f.capacity_settled.clone().unwrap();
    assert!(
        why.starts_with("alice let DNS switch without it: ") && why.contains("2 of 6 healthy"),
        "{why}"
    );
    assert_eq!(f.capacity_waived.as_ref().map(|w| w.by.as_str()), Some("alice"));
    assert_eq!(night.dns("orders").await, Some(night.replica_endpoint("orders").await));
    assert_eq!(
        night.app_group("orders").await,
        (6, 2),
        "AWS keeps the desired capacity"
    );
    let notices = night.promoter_notices().await;
    let held: Vec<_> = notices
        .iter()
        .filter(|n| n.attribute("step") == Some("capacity-held"))
        .collect();
    assert_eq!(held.len(), 1, "{:?}", subjects(&notices));
    assert!(held[0].message.contains(r#""action":"proceed""#), "{}", held[0].message);
    // (the old primary's region never went dark: its fencing notice may follow at once)
    let completed = notices
        .iter()
        .find(|n| n.attribute("step") == Some("completed"))
        .unwrap_or_else(|| panic!("no completed notice: {:?}", subjects(&notices)));
    assert!(
        completed
            .message
            .contains("was NOT ready when DNS switched (alice let DNS switch without it"),
        "{}",
        completed.message
    );
    night.end().await;
}

/// A plan naming a group that does not exist (deleted, or a typo) is a configuration error:
/// the failover does not sit out the plan's wait for it; DNS switches at once, and responders
/// are told what is wrong.
#[tokio::test(flavor = "multi_thread")]
async fn a_plan_whose_group_is_gone_switches_dns_at_once_and_says_why() {
    let plan = NightPlan::new("fo-no-group", "eu-central-2", "ap-southeast-4")
        .database("orders", 4.0, minutes(5.0))
        .recovery_plan(2, 6, minutes(10.0), false);
    let mut night = Night::begin(plan).await;
    let group = night.db("orders").app_group.clone().unwrap();
    aws_sdk_autoscaling::Client::new(&drpilot_tests::sdk(&night.plan.dr).await)
        .delete_auto_scaling_group()
        .auto_scaling_group_name(&group)
        .force_delete(true)
        .send()
        .await
        .unwrap();
    night.pass(minutes(2.0)).await;
    let done = ok(night
        .invoke_promoter(json!({"action": "failover", "database": "orders", "reason": "evacuating the region"}))
        .await);
    assert_eq!(done["completed"], true, "{done}");
    let f = night.failover("orders").await.unwrap();
    let (why, settled) = f.capacity_settled.clone().unwrap();
    assert_eq!(
        why,
        format!("cannot be scaled: {group}: no such Auto Scaling group in the DR region")
    );
    let waited = night
        .plan
        .scale
        .aws((settled - f.promoted_at.unwrap()).num_milliseconds() as f64 / 1000.0);
    assert!(waited < minutes(2.0), "not the plan's 10 minutes: {waited} s");
    assert_eq!(night.dns("orders").await, Some(night.replica_endpoint("orders").await));
    let notices = night.promoter_notices().await;
    let capacity = notices
        .iter()
        .find(|n| n.attribute("step") == Some("capacity"))
        .unwrap();
    assert!(
        capacity
            .message
            .starts_with("drpilot cannot scale the application's capacity in ap-southeast-4: a configuration error")
            && capacity.message.contains("Not every group could be asked for its size"),
        "{}",
        capacity.message
    );
    night.end().await;
}
