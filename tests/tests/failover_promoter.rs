//! failover-promoter end to end on moto server: a primary in one region, a cross-region
//! replica, a hosted zone with the app record, the responders' topic with an SQS subscriber.
//! moto gaps, arranged as AWS would have them: the primary "down" is a stopped instance (the
//! API answers "stopped"); the lag history is the lag checker's `RecoveryPointSeconds`, put
//! as it would have published it; promotion is observed through `AwsLikePromotion`.

use chrono::{DateTime, Duration, Utc};
use drpilot::aws::{cloudwatch, rds, route53, s3, sns};
use drpilot::config::PromoterConfig;
use drpilot::ports::Dns;
use drpilot::promoter::{Invocation, Promoter, PromoterPorts};
use drpilot_tests::account::{instance_endpoint, Cloudwatch, Regions, Responders};
use drpilot_tests::standins::{AwsLikePromotion, CountingDns};
use drpilot_tests::{repo_path, sdk, unique};
use serde_json::{json, Value};
use std::collections::HashMap;

const SOURCE: &str = "ap-east-2";
const DR: &str = "ap-southeast-5";

type Ports = PromoterPorts<
    cloudwatch::CloudWatchAlarms,
    rds::RdsPrimaryProbe,
    route53::Route53,
    cloudwatch::CloudWatchMetrics,
    AwsLikePromotion<rds::RdsStandby>,
    CountingDns<route53::Route53>,
    s3::S3State,
    sns::SnsNotifier,
>;

struct Bed {
    r: Regions,
    responders: Responders,
    cw_dr: Cloudwatch,
    state_bucket: String,
    db: String,
    primary: String,
    replica: String,
    alarm: String,
    record: String,
    zone: String,
    primary_endpoint: String,
    route53: aws_sdk_route53::Client,
}

async fn bed() -> Bed {
    let r = Regions::new(SOURCE, DR).await;
    let (primary, replica) = (unique("orders"), unique("orders-dr"));
    r.create_instance(&primary, false, &[]).await;
    r.create_replica(&primary, &replica).await;
    let state_bucket = unique("drpilot-state");
    r.create_bucket(DR, &state_bucket).await;
    let route53 = aws_sdk_route53::Client::new(&sdk("us-east-1").await);
    let domain = format!("{}.example.com", unique("shop"));
    let zone = route53
        .create_hosted_zone()
        .name(&domain)
        .caller_reference(unique("ref"))
        .send()
        .await
        .unwrap()
        .hosted_zone()
        .unwrap()
        .id()
        .to_string();
    let primary_endpoint = instance_endpoint(&r.rds_source, &primary).await;
    let record = format!("db.{domain}");
    let b = Bed {
        responders: Responders::new(DR, &unique("responders")).await,
        cw_dr: Cloudwatch::new(DR).await,
        state_bucket,
        db: unique("orders-db"),
        primary: primary.clone(),
        replica,
        alarm: unique("orders-primary-down"),
        record,
        zone,
        primary_endpoint,
        route53,
        r,
    };
    let ports = b.ports(0);
    ports.dns.inner.point(&b.dns_spec(), &b.primary_endpoint).await.unwrap();
    // The primary-health alarm, in the DR region, as infra/alarms.tf defines it.
    b.cw_dr.primary_down_alarm(&b.alarm).await;
    b
}

impl Bed {
    fn dns_spec(&self) -> drpilot::config::DnsSpec {
        self.config("advisory", &[]).databases[0].dns.clone()
    }

    fn config(&self, mode: &str, extra: &[(&'static str, &str)]) -> PromoterConfig {
        let databases = json!([{
            "name": self.db, "kind": "rds-replica",
            "primary": self.primary, "replica": self.replica,
            "alarms": [self.alarm], "max_data_loss_seconds": 60, "rto_seconds": 600,
            "dns": {"zone_id": self.zone, "record_name": self.record, "ttl": 30}
        }])
        .to_string();
        let mut vars: HashMap<&str, &str> = HashMap::from([
            ("DRPILOT_SOURCE_REGION", SOURCE),
            ("DRPILOT_DR_REGION", DR),
            ("DRPILOT_DATABASES", databases.as_str()),
            ("DRPILOT_MODE", mode),
            ("DRPILOT_STATE_BUCKET", self.state_bucket.as_str()),
            ("DRPILOT_NOTIFY_TOPIC_ARN", self.responders.topic_arn.as_str()),
            ("DRPILOT_S3_FORCE_PATH_STYLE", "true"),
            ("DRPILOT_POLL_SECONDS", "1"),
            ("DRPILOT_DEADLINE_MARGIN_SECONDS", "2"),
        ]);
        vars.extend(extra.iter().copied());
        PromoterConfig::from_vars(&vars).unwrap()
    }

    fn ports(&self, settle_after_looks: u32) -> Ports {
        self.ports_notifying(settle_after_looks, &self.responders.topic_arn)
    }

    fn ports_notifying(&self, settle_after_looks: u32, topic_arn: &str) -> Ports {
        let sdk_source = &self.r.sdk_source;
        PromoterPorts {
            alarms: cloudwatch::CloudWatchAlarms::new(sdk_source),
            primary: rds::RdsPrimaryProbe::new(sdk_source, SOURCE),
            health: route53::Route53::with_client(self.route53.clone()),
            metrics: cloudwatch::CloudWatchMetrics::with_client(self.cw_dr.0.clone()),
            standby: AwsLikePromotion::new(rds::RdsStandby::new(self.r.rds_dr.clone()), settle_after_looks),
            dns: CountingDns::new(route53::Route53::with_client(self.route53.clone())),
            state: s3::S3State::new(
                aws_sdk_s3::Client::from_conf(
                    aws_sdk_s3::config::Builder::from(&self.r.sdk_source)
                        .region(aws_sdk_s3::config::Region::new(DR))
                        .force_path_style(true)
                        .build(),
                ),
                &self.state_bucket,
            ),
            notifier: sns::SnsNotifier::new(sdk_source, topic_arn, "drpilot.failover-promoter"),
        }
    }

    /// A primary failure 20 s ago, a minute after a healthy lag of `lag` seconds was measured.
    /// Returns when the alarm went into ALARM (pass it to `fire`).
    async fn outage(&self, lag: f64) -> DateTime<Utc> {
        let since = Utc::now() - Duration::seconds(20);
        self.lag_history(since - Duration::seconds(60), lag).await;
        self.primary_down().await;
        since
    }

    /// The primary goes down: as the RDS API in its region reports it.
    async fn primary_down(&self) {
        self.r
            .rds_source
            .stop_db_instance()
            .db_instance_identifier(&self.primary)
            .send()
            .await
            .unwrap();
    }

    /// The alarm fires: its state in CloudWatch, and the EventBridge event.
    async fn fire(&self, since: DateTime<Utc>) -> Value {
        self.cw_dr
            .0
            .set_alarm_state()
            .alarm_name(&self.alarm)
            .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
            .state_reason("Threshold Crossed: 3 out of the last 3 datapoints were less than the threshold (1.0).")
            .send()
            .await
            .unwrap();
        let mut event: Value = serde_json::from_str(
            &std::fs::read_to_string(repo_path("events/failover-promoter/alarm-eventbridge.json")).unwrap(),
        )
        .unwrap();
        event["region"] = DR.into();
        event["detail"]["alarmName"] = self.alarm.clone().into();
        event["detail"]["state"]["timestamp"] = since.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string().into();
        event
    }

    /// The lag checker's history: the last lag measured while replication worked.
    async fn lag_history(&self, at: DateTime<Utc>, seconds: f64) {
        self.cw_dr
            .put("drpilot", "RecoveryPointSeconds", ("Resource", &self.db), seconds, at)
            .await;
    }

    async fn dns_value(&self) -> Option<String> {
        route53::Route53::with_client(self.route53.clone())
            .current(&self.dns_spec())
            .await
            .unwrap()
    }

    async fn replica_endpoint(&self) -> String {
        instance_endpoint(&self.r.rds_dr, &self.replica).await
    }
}

fn invocation(seconds: i64) -> Invocation {
    Invocation {
        request_id: unique("req"),
        deadline: Utc::now() + Duration::seconds(seconds),
    }
}

async fn run(ports: &Ports, cfg: &PromoterConfig, event: Value, seconds: i64) -> drpilot::Result<Value> {
    Promoter {
        ports,
        cfg,
        invocation: invocation(seconds),
    }
    .handle(event)
    .await
}

fn subjects(notices: &[drpilot_tests::account::Received]) -> Vec<String> {
    notices.iter().map(|n| n.subject.clone()).collect()
}

#[tokio::test]
async fn an_alarm_promotes_the_replica_switches_dns_and_notifies_at_every_step() {
    let b = bed().await;
    let cfg = b.config("automatic", &[]);
    let ports = b.ports(2);
    let since = b.outage(4.0).await;
    let event = b.fire(since).await;
    assert_eq!(b.dns_value().await.as_deref(), Some(b.primary_endpoint.as_str()));

    let response = run(&ports, &cfg, event, 120).await.expect("failover completes");
    assert_eq!(response["completed"], true, "{response:#}");
    assert_eq!(ports.standby.promotions(), 1);
    assert_eq!(ports.dns.changes(), 1);
    assert_eq!(
        b.dns_value().await,
        Some(b.replica_endpoint().await),
        "the app record points at the promoted replica"
    );

    let notices = b.responders.received().await;
    let db = &b.db;
    assert_eq!(
        subjects(&notices),
        vec![
            format!("drpilot: FAILOVER started: {db} -> {DR}"),
            format!("drpilot: {db}: {} promoted", b.replica),
            format!("drpilot: {db}: DNS switched to the DR region"),
            notices[3].subject.clone(),
        ]
    );
    assert!(
        notices[3]
            .subject
            .starts_with(&format!("drpilot: FAILOVER completed: {db} in {DR} (RTO ")),
        "{}",
        notices[3].subject
    );
    let id = notices[0].attribute("failover_id").unwrap().to_string();
    assert!(notices
        .iter()
        .all(|n| n.attribute("failover_id") == Some(id.as_str()) && n.attribute("severity") == Some("critical")));
    assert!(
        notices[0].message.contains(&format!("Why: alarm {}", b.alarm)),
        "{}",
        notices[0].message
    );
    assert!(
        notices[0]
            .message
            .contains("[PASS] confirmed: the alarm is still in ALARM; the primary is stopped"),
        "{}",
        notices[0].message
    );
    assert!(
        notices[0].message.contains("Estimated data loss (RPO): 4s"),
        "{}",
        notices[0].message
    );
    let done = &notices[3].message;
    assert!(done.contains("within the RTO budget 10m"), "{done}");
    for line in [
        "failure detected",
        "decided to promote",
        "promotion requested",
        "standby promoted",
        "DNS change in sync",
        "RTO ",
        "detect->decide",
        r#""action":"acknowledge""#,
    ] {
        assert!(done.contains(line), "{line} missing in:\n{done}");
    }
}

#[tokio::test]
async fn advisory_mode_changes_nothing_and_says_what_it_would_do() {
    let b = bed().await;
    let cfg = b.config("advisory", &[]);
    let ports = b.ports(0);
    let since = b.outage(3.0).await;
    let response = run(&ports, &cfg, b.fire(since).await, 60).await.unwrap();
    assert_eq!(response["verdict"], "would-promote");
    assert_eq!((ports.standby.promotions(), ports.dns.changes()), (0, 0));
    assert_eq!(b.dns_value().await.as_deref(), Some(b.primary_endpoint.as_str()));
    let notices = b.responders.received().await;
    assert_eq!(notices.len(), 1);
    assert_eq!(
        notices[0].subject,
        format!("drpilot ADVISORY: would fail over {} to {DR}", b.db)
    );
    let expected = format!(
        "would promote {} in {DR} and point {} at {}",
        b.replica,
        b.record,
        b.replica_endpoint().await
    );
    assert!(notices[0].message.contains(&expected), "{}", notices[0].message);
    assert_eq!(notices[0].attribute("severity"), Some("warning"));
}

#[tokio::test]
async fn the_lag_gate_refuses_with_the_numbers_and_the_command_to_force_it() {
    let b = bed().await;
    let cfg = b.config("automatic", &[]);
    let ports = b.ports(0);
    let since = Utc::now() - Duration::seconds(20);
    b.lag_history(since - Duration::seconds(60), 600.0).await; // 10 minutes behind when it died
    b.primary_down().await;
    let response = run(&ports, &cfg, b.fire(since).await, 60).await.unwrap();
    assert_eq!(response["verdict"], "refused");
    assert_eq!(ports.standby.promotions(), 0);
    assert_eq!(b.dns_value().await.as_deref(), Some(b.primary_endpoint.as_str()));
    let notices = b.responders.received().await;
    assert_eq!(notices.len(), 1);
    let n = &notices[0];
    assert_eq!(n.subject, format!("drpilot: NOT failing over {}: lag failed", b.db));
    assert!(
        n.message
            .contains("[FAIL] lag: estimated data loss 10m (last healthy lag 10m at"),
        "{}",
        n.message
    );
    assert!(n.message.contains("exceeds the limit 60s"), "{}", n.message);
    let force = format!(r#""action":"failover","database":"{}","force_data_loss":true"#, b.db);
    assert!(n.message.contains(&force), "{}", n.message);
    assert!(
        n.message.contains(&format!(
            "aws lambda invoke --region {DR} --function-name drpilot-failover-promoter"
        )),
        "{}",
        n.message
    );

    // The responder decides to accept the loss, with the command from the notice.
    let command =
        json!({"action": "failover", "database": b.db, "force_data_loss": true, "reason": "accepting 10m of loss"});
    let response = run(&ports, &cfg, command, 120)
        .await
        .expect("forced failover completes");
    assert_eq!(response["completed"], true, "{response:#}");
    assert_eq!(ports.standby.promotions(), 1);
    assert_eq!(b.dns_value().await, Some(b.replica_endpoint().await));
}

#[tokio::test]
async fn ten_duplicate_alarm_events_at_once_yield_one_promotion_one_dns_change_one_set_of_notices() {
    let b = bed().await;
    let cfg = b.config("automatic", &[]);
    let ports = b.ports(1);
    let since = b.outage(2.0).await;
    let event = b.fire(since).await;
    let runs = (0..10).map(|_| run(&ports, &cfg, event.clone(), 120));
    for result in futures::future::join_all(runs).await {
        result.expect("every duplicate is handled without error");
    }
    assert_eq!(ports.standby.promotions(), 1);
    assert_eq!(ports.dns.changes(), 1);
    let notices = b.responders.received().await;
    assert_eq!(notices.len(), 4, "{:#?}", subjects(&notices));
    assert_eq!(b.dns_value().await, Some(b.replica_endpoint().await));
}

#[tokio::test]
async fn a_failover_cut_off_or_killed_mid_way_resumes_with_no_step_done_twice() {
    let b = bed().await;
    let cfg = b.config("automatic", &[]);
    let ports = b.ports(4); // the promotion takes a while, as on AWS
    *ports.dns.fail_first.lock().unwrap() = 1; // and the first DNS call dies
    let since = b.outage(2.0).await;

    // 1: a deadline 4 s away (margin 2 s): it starts, requests the promotion, then must stop.
    let first = run(&ports, &cfg, b.fire(since).await, 4)
        .await
        .expect("saves progress and returns");
    assert_eq!(first["in_progress"], true, "{first:#}");
    assert_eq!(ports.standby.promotions(), 1);
    // 2: the continuation schedule resumes; the DNS call fails (the invocation is "killed").
    let schedule: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path("events/failover-promoter/continue-schedule.json")).unwrap(),
    )
    .unwrap();
    let second = run(&ports, &cfg, schedule.clone(), 60).await;
    assert!(second.is_err(), "{second:?}");
    // 3: the next tick completes it.
    let third = run(&ports, &cfg, schedule.clone(), 60).await.expect("completes");
    assert_eq!(third["resumed"][0]["completed"], true, "{third:#}");
    assert_eq!(ports.standby.promotions(), 1, "promoted once across three invocations");
    assert_eq!(ports.dns.changes(), 1);
    let notices = b.responders.received().await;
    let steps: Vec<&str> = notices.iter().filter_map(|n| n.attribute("step")).collect();
    assert_eq!(
        steps,
        vec!["started", "promoted", "dns", "completed"],
        "each notice once, in order"
    );
    // 4: later ticks find nothing to do.
    let idle = run(&ports, &cfg, schedule, 60).await.unwrap();
    assert_eq!(idle["resumed"], json!([]));
}

#[tokio::test]
async fn after_a_failover_no_automatic_one_until_acknowledged_and_cooled_down() {
    let b = bed().await;
    let cfg = b.config("automatic", &[]);
    let ports = b.ports(0);
    let since = Utc::now() - Duration::seconds(60);
    b.lag_history(since - Duration::seconds(60), 2.0).await;
    b.primary_down().await;
    run(&ports, &cfg, b.fire(since).await, 120)
        .await
        .expect("first failover");
    b.responders.received().await;

    // The alarm flaps: a new episode. Not acknowledged yet: refused.
    let again = Utc::now() - Duration::seconds(5);
    let response = run(&ports, &cfg, b.fire(again).await, 60).await.unwrap();
    assert_eq!(response["verdict"], "refused");
    let n = b.responders.received().await;
    assert!(
        n[0].message.contains("[FAIL] anti-flapping: failover fo-"),
        "{}",
        n[0].message
    );
    assert!(
        n[0].message.contains("was never acknowledged by a human"),
        "{}",
        n[0].message
    );

    let ack = json!({"action": "acknowledge", "database": b.db, "by": "alice@example.com"});
    let response = run(&ports, &cfg, ack.clone(), 60).await.unwrap();
    assert_eq!(response["acknowledged_by"], "alice@example.com");
    assert_eq!(
        run(&ports, &cfg, ack, 60).await.unwrap()["already"],
        true,
        "acknowledging twice is harmless"
    );
    let n = b.responders.received().await;
    assert_eq!(n.len(), 1);
    assert_eq!(
        n[0].subject,
        format!("drpilot: failover of {} acknowledged by alice@example.com", b.db)
    );

    // Acknowledged, but within the cooldown (1 h by default): still refused.
    let third = Utc::now();
    run(&ports, &cfg, b.fire(third).await, 60).await.unwrap();
    let n = b.responders.received().await;
    assert!(
        n[0].message.contains("[FAIL] anti-flapping: previous failover"),
        "{}",
        n[0].message
    );
    assert!(n[0].message.contains("(cooldown 1h)"), "{}", n[0].message);
    assert_eq!(ports.standby.promotions(), 1);
}

#[tokio::test]
async fn unknown_alarms_ok_transitions_and_malformed_events_change_nothing() {
    let b = bed().await;
    let cfg = b.config("automatic", &[]);
    let ports = b.ports(0);
    b.primary_down().await;
    let mut unknown = b.fire(Utc::now()).await;
    unknown["detail"]["alarmName"] = "someone-elses-alarm".into();
    let r = run(&ports, &cfg, unknown, 60).await.unwrap();
    assert!(r["ignored"].as_str().unwrap().contains("not configured"), "{r}");
    let mut ok = b.fire(Utc::now()).await;
    ok["detail"]["state"]["value"] = "OK".into();
    assert!(run(&ports, &cfg, ok, 60).await.unwrap()["ignored"]
        .as_str()
        .unwrap()
        .contains("not ALARM"));
    let mut insufficient = b.fire(Utc::now()).await;
    insufficient["detail"]["state"]["value"] = "INSUFFICIENT_DATA".into();
    assert!(run(&ports, &cfg, insufficient, 60)
        .await
        .unwrap()
        .get("ignored")
        .is_some());
    for bad in [
        json!("ALARM"),
        json!({"action": "promote"}),
        json!({"Records": [{"Sns": {"Message": "{}"}}]}),
    ] {
        let err = run(&ports, &cfg, bad.clone(), 60).await.expect_err("malformed");
        assert_eq!(err.error_type(), "drpilot.BadEvent", "{bad}");
    }
    let err = run(
        &ports,
        &cfg,
        json!({"action": "failover", "database": "nope", "reason": "x"}),
        60,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("unknown database"), "{err}");
    assert_eq!((ports.standby.promotions(), ports.dns.changes()), (0, 0));
    assert!(b.responders.received().await.is_empty());
    let status = run(&ports, &cfg, json!({"action": "status"}), 60).await.unwrap();
    assert_eq!(
        status["databases"][0]["record"]["current"],
        Value::Null,
        "no failover was recorded: {status:#}"
    );
}

impl Bed {
    /// The same alarm episode as `fire`, as a CloudWatch Lambda action and as an SNS notice.
    fn other_deliveries(&self, since: DateTime<Utc>) -> Vec<Value> {
        let read = |f: &str| -> Value {
            serde_json::from_str(&std::fs::read_to_string(repo_path(&format!("events/failover-promoter/{f}"))).unwrap())
                .unwrap()
        };
        let stamp = since.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
        let arn = format!("arn:aws:cloudwatch:{DR}:123456789012:alarm:{}", self.alarm);
        let mut action = read("alarm-lambda-action.json");
        action["region"] = DR.into();
        action["alarmArn"] = arn.clone().into();
        action["alarmData"]["alarmName"] = self.alarm.clone().into();
        action["alarmData"]["state"]["timestamp"] = stamp.clone().into();
        let mut sns = read("alarm-sns.json");
        let mut message: Value = serde_json::from_str(sns["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
        message["AlarmName"] = self.alarm.clone().into();
        message["AlarmArn"] = arn.into();
        message["StateChangeTime"] = stamp.into();
        sns["Records"][0]["Sns"]["Message"] = message.to_string().into();
        vec![action, sns]
    }
}

#[tokio::test]
async fn one_episode_delivered_by_eventbridge_lambda_action_and_sns_fails_over_once() {
    let b = bed().await;
    let cfg = b.config("automatic", &[]);
    let ports = b.ports(1);
    let since = b.outage(2.0).await;
    let mut events = vec![b.fire(since).await];
    events.extend(b.other_deliveries(since));
    let events: Vec<Value> = events.iter().cycle().take(9).cloned().collect();
    let runs = events.into_iter().map(|e| run(&ports, &cfg, e, 120));
    for result in futures::future::join_all(runs).await {
        result.expect("each delivery is handled");
    }
    assert_eq!((ports.standby.promotions(), ports.dns.changes()), (1, 1));
    assert_eq!(b.responders.received().await.len(), 4);
}

#[tokio::test]
async fn a_confirmation_that_lags_the_alarm_is_picked_up_by_the_continuation() {
    let b = bed().await;
    let cfg = b.config("automatic", &[]);
    let ports = b.ports(0);
    let since = Utc::now() - Duration::seconds(20);
    b.lag_history(since - Duration::seconds(60), 2.0).await;
    // The alarm fires while the RDS API still reports the primary available.
    let response = run(&ports, &cfg, b.fire(since).await, 60).await.unwrap();
    assert_eq!(response["verdict"], "refused");
    let n = b.responders.received().await;
    assert_eq!(n.len(), 1);
    assert_eq!(
        n[0].subject,
        format!("drpilot: NOT failing over {}: confirmed failed", b.db)
    );
    assert!(
        n[0].message
            .contains("the primary is available as seen from the DR region"),
        "{}",
        n[0].message
    );

    let schedule: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path("events/failover-promoter/continue-schedule.json")).unwrap(),
    )
    .unwrap();
    // Nothing changed: the continuation re-checks quietly.
    let quiet = run(&ports, &cfg, schedule.clone(), 60).await.unwrap();
    assert_eq!(quiet["resumed"][0]["unchanged"], true, "{quiet:#}");
    assert!(
        b.responders.received().await.is_empty(),
        "the same refusal is not repeated"
    );

    // A minute later the primary is reported down: the next tick confirms and fails over.
    b.primary_down().await;
    let done = run(&ports, &cfg, schedule, 120).await.unwrap();
    assert_eq!(done["resumed"][0]["completed"], true, "{done:#}");
    assert_eq!(ports.standby.promotions(), 1);
    let steps: Vec<String> = b
        .responders
        .received()
        .await
        .iter()
        .filter_map(|n| n.attribute("step").map(str::to_string))
        .collect();
    assert_eq!(steps, vec!["started", "promoted", "dns", "completed"]);
}

#[tokio::test]
async fn a_promotion_that_takes_too_long_is_reported_once_and_still_completes() {
    let b = bed().await;
    let cfg = b.config("automatic", &[("DRPILOT_STUCK_AFTER_SECONDS", "1")]);
    let ports = b.ports(4); // four looks (about 4 s) before AWS reports it promoted
    let since = b.outage(2.0).await;
    let response = run(&ports, &cfg, b.fire(since).await, 120).await.unwrap();
    assert_eq!(response["completed"], true, "{response:#}");
    let notices = b.responders.received().await;
    let steps: Vec<&str> = notices.iter().filter_map(|n| n.attribute("step")).collect();
    assert_eq!(steps, vec!["started", "stuck", "promoted", "dns", "completed"]);
    assert_eq!(
        notices[1].subject,
        format!("drpilot: failover of {} STUCK waiting for the promotion", b.db)
    );
    assert!(
        notices[1].message.contains("Now: modifying (promoted: false)"),
        "{}",
        notices[1].message
    );
}

impl Bed {
    async fn tag_standby_for(&self, plan: &str) {
        let arn = format!("arn:aws:rds:{DR}:123456789012:db:{}", self.replica);
        self.r
            .rds_dr
            .add_tags_to_resource()
            .resource_name(arn)
            .tags(drpilot_tests::account::rds_tags(&[("drpilot:drill-plan", plan)])[0].clone())
            .send()
            .await
            .unwrap();
    }

    fn dashboard_config(&self) -> drpilot::config::DashboardConfig {
        let resources =
            json!([{"name": self.db, "kind": "rds-replica", "replica": self.replica, "rpo_seconds": 60}]).to_string();
        let databases = json!([{
            "name": self.db, "kind": "rds-replica", "primary": self.primary, "replica": self.replica,
            "alarms": [self.alarm], "max_data_loss_seconds": 60,
            "dns": {"zone_id": self.zone, "record_name": self.record}
        }])
        .to_string();
        drpilot::config::DashboardConfig::from_vars(&HashMap::from([
            ("DRPILOT_SOURCE_REGION", SOURCE),
            ("DRPILOT_DR_REGION", DR),
            ("DRPILOT_RESOURCES", resources.as_str()),
            ("DRPILOT_DATABASES", databases.as_str()),
            ("DRPILOT_STATE_BUCKET", self.state_bucket.as_str()),
        ]))
        .unwrap()
    }
}

#[tokio::test]
async fn a_drill_refuses_a_standby_not_tagged_for_its_plan_and_changes_nothing() {
    let b = bed().await;
    let cfg = b.config("automatic", &[]);
    let ports = b.ports(0);
    b.lag_history(Utc::now() - Duration::seconds(30), 1.0).await;
    let promoter = Promoter {
        ports: &ports,
        cfg: &cfg,
        invocation: invocation(120),
    };
    let err = promoter
        .drill(&b.db, "q4-2026", &b.db)
        .await
        .expect_err("untagged: refused");
    assert!(
        err.to_string().contains("is not tagged drpilot:drill-plan=q4-2026"),
        "{err}"
    );
    b.tag_standby_for("q3-2026").await;
    let err = promoter
        .drill(&b.db, "q4-2026", &b.db)
        .await
        .expect_err("tagged for another plan: refused");
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    b.tag_standby_for("q4-2026").await;
    let err = promoter
        .drill(&b.db, "q4-2026", "yes")
        .await
        .expect_err("no confirmation: refused");
    assert!(err.to_string().contains("confirm it by naming the database"), "{err}");
    assert_eq!((ports.standby.promotions(), ports.dns.changes()), (0, 0));
    assert_eq!(b.dns_value().await.as_deref(), Some(b.primary_endpoint.as_str()));
    assert!(b.responders.received().await.is_empty());
    let status = run(&ports, &cfg, json!({"action": "status"}), 60).await.unwrap();
    assert_eq!(status["databases"][0]["record"]["current"], Value::Null);
}

#[tokio::test]
async fn a_drill_fails_over_a_tagged_standby_reports_each_step_and_shows_on_the_dashboard() {
    let b = bed().await;
    let cfg = b.config("advisory", &[]); // a drill is a human's decision: it acts in advisory mode too
    let ports = b.ports(1);
    b.tag_standby_for("q4-2026").await;
    b.lag_history(Utc::now() - Duration::seconds(30), 1.0).await;
    let drill = json!({"action": "drill", "database": b.db, "plan": "q4-2026", "confirm": b.db});
    let report = run(&ports, &cfg, drill, 120).await.expect("drill runs");
    assert_eq!(report["passed"], true, "{report:#}");
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        vec![
            "preflight: replication healthy",
            "preflight: standby ready",
            "failover: promote and switch DNS",
            "RTO within budget",
            "verify: DNS points at the new primary"
        ]
    );
    assert!(report["steps"].as_array().unwrap().iter().all(|s| s["passed"] == true));
    assert!(
        report["left_in"].as_str().unwrap().contains("is now the primary"),
        "{report:#}"
    );
    assert_eq!(ports.standby.promotions(), 1);
    assert_eq!(b.dns_value().await, Some(b.replica_endpoint().await));
    let notices = b.responders.received().await;
    let last = notices.last().unwrap();
    assert_eq!(last.subject, format!("drpilot DRILL PASS: {} (q4-2026)", b.db));
    assert!(
        last.message.contains("[PASS] verify: DNS points at the new primary"),
        "{}",
        last.message
    );

    let board = drpilot::dashboard::gather(
        &b.dashboard_config(),
        &ports.metrics,
        &drpilot::aws::rds::RdsDr::new(b.r.rds_dr.clone()),
        &ports.state,
        Utc::now(),
    )
    .await
    .unwrap();
    let db = &board.databases[0];
    assert_eq!(db.failover, "awaiting-acknowledgement");
    assert!(db.last_drill.as_ref().is_some_and(|d| d.passed), "{db:?}");
    assert!(board.render().contains("PASS"), "{}", board.render());

    // Drilling again before the standby is rebuilt: it stops at preflight and says so.
    let again = json!({"action": "drill", "database": b.db, "plan": "q4-2026", "confirm": b.db});
    let report = run(&ports, &cfg, again, 120).await.expect("drill runs");
    assert_eq!(report["passed"], false, "{report:#}");
    assert!(
        report["steps"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("already promoted"),
        "{report:#}"
    );
    assert_eq!(report["left_in"], "unchanged: the drill stopped before failing over");
    assert_eq!(ports.standby.promotions(), 1, "no second promotion");
    let last = b.responders.received().await.pop().unwrap();
    assert_eq!(last.subject, format!("drpilot DRILL FAIL: {} (q4-2026)", b.db));
}

#[tokio::test]
async fn the_failover_completes_even_when_no_notice_can_be_sent() {
    let b = bed().await;
    let cfg = b.config("automatic", &[]);
    // SNS answers NotFound for every publish: traffic recovery must not wait on notices.
    let gone = format!("arn:aws:sns:{DR}:123456789012:{}", unique("deleted-topic"));
    let ports = b.ports_notifying(1, &gone);
    let since = b.outage(2.0).await;
    let err = run(&ports, &cfg, b.fire(since).await, 120)
        .await
        .expect_err("the undelivered notices fail the invocation");
    assert!(
        err.to_string().contains("advanced, but 4 notice(s) could not be sent"),
        "{err}"
    );
    assert_eq!((ports.standby.promotions(), ports.dns.changes()), (1, 1));
    assert_eq!(
        b.dns_value().await,
        Some(b.replica_endpoint().await),
        "failed over regardless"
    );
    let status = run(&ports, &cfg, json!({"action": "status"}), 60).await.unwrap();
    assert!(
        status["databases"][0]["record"]["current"]["completed_at"].is_string(),
        "{status:#}"
    );
}
