//! A hub deployment over member accounts (`DRPILOT_ACCOUNTS`): the work happens in the account
//! each database is in, through that account's role, and a member whose role cannot be assumed
//! is reported while the others go on. Accounts are moto's own (the credentials an assumed
//! role yields belong to its account); the simulator enforces each role's trust policy.

use drpilot::backup::{handle as back_up, BackupEvent, BackupPorts};
use drpilot::config::{BackupConfig, CopierConfig, LagConfig, PromoterConfig};
use drpilot::copier::{handle_accounts, CopierEvent, CopierPorts};
use drpilot::events::Decode;
use drpilot::lagcheck::{run as check, LagPorts};
use drpilot::promoter::{Invocation, Promoter, PromoterEvent, PromoterPorts};
use drpilot::Error;
use drpilot_tests::account::{Cloudwatch, Regions, Responders};
use drpilot_tests::members::{MemberAccount, HUB};
use drpilot_tests::sim::Simulator;
use drpilot_tests::{sample_event, sdk, unique};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The report a failed hub run carries in its error (the notice went to responders).
fn failed_report(e: Error) -> Value {
    let text = e.to_string();
    let (_, json) = text
        .split_once("; report: ")
        .unwrap_or_else(|| panic!("no report in {text}"));
    serde_json::from_str(json).unwrap()
}

fn account<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account"] == id)
        .unwrap_or_else(|| panic!("{id} not in {report:#}"))
}

fn snapshot_event(account: &str, region: &str, snapshot: &str) -> Value {
    let mut event = sample_event("snapshot-copier/rds-manual-snapshot-created.json");
    event["account"] = json!(account);
    event["region"] = json!(region);
    event["detail"]["SourceIdentifier"] = json!(snapshot);
    event
}

#[tokio::test]
async fn the_copier_copies_in_each_member_account_and_reports_the_one_whose_role_it_cannot_assume() {
    let (source, dr) = ("us-west-1", "ca-central-1");
    let (a, b, c) = (
        MemberAccount::enter("210000000001").await,
        MemberAccount::enter("210000000002").await,
        MemberAccount::enter("210000000003").await,
    );
    let external_id = unique("drpilot-ext");
    let role_a = a.member_role(&unique("drpilot-member"), &external_id).await;
    let role_b = b.member_role(&unique("drpilot-member"), &external_id).await;
    // c's role trusts the hub only with another external id: AWS refuses the hub
    let role_c = c.member_role(&unique("drpilot-member"), "not-this-deployment").await;

    let tag = unique("protect");
    let (in_a, in_b, in_c) = (
        Regions::in_member(&a, source, dr).await,
        Regions::in_member(&b, source, dr).await,
        Regions::in_member(&c, source, dr).await,
    );
    let (db_a, db_b, db_c) = (unique("orders"), unique("billing"), unique("ledger"));
    // a's database is encrypted: its copies are re-encrypted with a's own DR key
    in_a.create_instance(&db_a, true, &[("drpilot:copy", &tag)]).await;
    for (r, db) in [(&in_b, &db_b), (&in_c, &db_c)] {
        r.create_instance(db, false, &[("drpilot:copy", &tag)]).await;
    }
    let key_a = a.kms_key(dr, "a's DR key (infra/modules/member)").await;
    let responders = Responders::new(source, &unique("responders")).await;
    let members = json!([
        {"id": a.id, "role_arn": role_a, "external_id": external_id, "dr_kms_key_id": key_a},
        {"id": b.id, "role_arn": role_b, "external_id": external_id},
        {"id": c.id, "role_arn": role_c, "external_id": external_id},
    ])
    .to_string();
    let selector = format!("drpilot:copy={tag}");
    // a database named in DRPILOT_DB_INSTANCES is the hub's own; members select by tag alone
    let own_db = unique("hub-orders");
    Regions::new(source, dr)
        .await
        .create_instance(&own_db, false, &[])
        .await;
    let cfg = CopierConfig::from_vars(&HashMap::from([
        ("DRPILOT_SOURCE_REGION", source),
        ("DRPILOT_DR_REGION", dr),
        ("DRPILOT_SELECT_TAG", selector.as_str()),
        ("DRPILOT_DB_INSTANCES", own_db.as_str()),
        ("DRPILOT_NOTIFY_TOPIC_ARN", responders.topic_arn.as_str()),
        ("DRPILOT_ACCOUNTS", members.as_str()),
    ]))
    .unwrap();
    let sim = Simulator::connect();
    let mark = sim.wire_mark().await;
    let accounts = CopierPorts::accounts(&sdk(source).await, &cfg);
    let schedule = || CopierEvent::decode(sample_event("snapshot-copier/schedule.json")).unwrap();

    let report = failed_report(
        handle_accounts(&accounts, &cfg, schedule(), Some(HUB), chrono::Utc::now())
            .await
            .expect_err("one account is unreachable"),
    );

    // each database's copy is in its own account's DR region, and nowhere else
    for (r, db, other) in [(&in_a, &db_a, &in_b), (&in_b, &db_b, &in_a)] {
        assert_eq!(
            r.dr_copies_of(db).await.len(),
            1,
            "{db}'s copy in its account: {report:#}"
        );
        assert!(
            other.dr_copies_of(db).await.is_empty(),
            "{db} copied into another account"
        );
        assert!(
            Regions::new(source, dr).await.dr_copies_of(db).await.is_empty(),
            "{db} copied into the hub"
        );
    }
    assert!(in_c.dr_copies_of(&db_c).await.is_empty());
    assert_eq!(in_a.dr_copies_of(&db_a).await[0].kms_key_id(), Some(key_a.as_str()));
    assert_eq!(account(&report, &a.id)["report"]["dbs"][0]["status"], "copied");
    assert_eq!(account(&report, &b.id)["report"]["dbs"][0]["db"], json!(db_b));
    let why = account(&report, &c.id)["unreachable"].as_str().unwrap().to_string();
    assert!(why.contains(&role_c) && why.contains("AccessDenied"), "{why}");
    let own = &account(&report, "this account")["report"];
    assert!(own["errors"].as_array().unwrap().is_empty(), "{own:#}");
    assert_eq!(
        (own["dbs"][0]["db"].as_str(), own["dbs"][0]["status"].as_str()),
        (Some(own_db.as_str()), Some("copied"))
    );
    for member in [&a.id, &b.id] {
        let dbs = account(&report, member)["report"]["dbs"].as_array().unwrap().clone();
        assert_eq!(dbs.len(), 1, "only the member's tagged database: {dbs:#?}");
    }

    let notices = responders.received().await;
    assert_eq!(notices.len(), 1, "{notices:#?}");
    assert!(
        notices[0].subject.contains(&format!("1 of 4 accounts ({})", c.id)),
        "{}",
        notices[0].subject
    );
    assert!(notices[0].message.contains("UNREACHABLE") && notices[0].message.contains(&role_c));
    assert!(!notices[0].message.contains(&own_db), "{}", notices[0].message);

    // a second run (warm): nothing new to copy, and the roles' credentials are reused
    let again = failed_report(
        handle_accounts(&accounts, &cfg, schedule(), Some(HUB), chrono::Utc::now())
            .await
            .expect_err("still unreachable"),
    );
    assert_eq!(account(&again, &a.id)["report"]["dbs"][0]["status"], "already-present");
    let (wire, _) = sim.wire(mark).await;
    let assumed = |role: &str| {
        wire.calls("AssumeRole")
            .filter(|e| e.params.get("RoleArn").map(String::as_str) == Some(role))
            .count()
    };
    assert_eq!(
        (assumed(&role_a), assumed(&role_b)),
        (1, 1),
        "credentials are cached across invocations"
    );
    assert_eq!(
        assumed(&role_c),
        1,
        "a refusal is remembered for a minute, not asked again at once"
    );
    let copies_in = |account: &str| {
        wire.calls("CopyDBSnapshot")
            .filter(|e| e.account.as_deref() == Some(account) && e.accepted())
            .count()
    };
    assert_eq!(
        (copies_in(&a.id), copies_in(&b.id), copies_in(&c.id), copies_in(HUB)),
        (1, 1, 0, 1)
    );

    // a snapshot event from a member account copies in that account
    let newer = format!("{db_b}-manual");
    in_b.snapshot_instance(&db_b, &newer, &[]).await;
    let event = CopierEvent::decode(snapshot_event(&b.id, source, &newer)).unwrap();
    let out = handle_accounts(&accounts, &cfg, event, Some(HUB), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(account(&out, &b.id)["report"]["dbs"][0]["status"], "copied", "{out:#}");
    assert_eq!(in_b.dr_copies_of(&db_b).await.len(), 2);

    // ... and one from an account that is neither the hub nor a member changes nothing
    let stranger = CopierEvent::decode(snapshot_event("299999999999", source, &newer)).unwrap();
    let refused = handle_accounts(&accounts, &cfg, stranger, Some(HUB), chrono::Utc::now()).await;
    assert!(
        matches!(&refused, Err(Error::BadEvent(m)) if m.contains("299999999999")),
        "{refused:?}"
    );
    assert_eq!(in_b.dr_copies_of(&db_b).await.len(), 2);
}

#[tokio::test]
async fn the_lag_checker_reads_each_replica_in_its_account_and_an_unreachable_accounts_are_unknown() {
    let (source, dr) = ("us-west-1", "ca-central-1");
    let (a, c) = (
        MemberAccount::enter("210000000005").await,
        MemberAccount::enter("210000000006").await,
    );
    let external_id = unique("drpilot-ext");
    let role_a = a.member_role(&unique("drpilot-member"), &external_id).await;
    let role_c = c.member_role(&unique("drpilot-member"), "not-this-deployment").await;
    let in_a = Regions::in_member(&a, source, dr).await;
    let (primary, replica) = (unique("orders"), unique("orders-dr"));
    in_a.create_instance(&primary, false, &[]).await;
    in_a.create_replica(&primary, &replica).await;
    // RDS reports the replica's lag in the member account's CloudWatch
    let now = chrono::Utc::now();
    let member_cw = Cloudwatch(aws_sdk_cloudwatch::Client::new(&a.sdk(dr).await));
    member_cw
        .put(
            "AWS/RDS",
            "ReplicaLag",
            ("DBInstanceIdentifier", &replica),
            3.0,
            now - chrono::Duration::seconds(30),
        )
        .await;

    let hub = Regions::new(source, dr).await;
    let state = unique("drpilot-state");
    hub.create_bucket(dr, &state).await;
    let responders = Responders::new(dr, &unique("responders")).await;
    let (in_a_name, in_c_name) = (unique("orders"), unique("ledger"));
    let resources = json!([
        {"name": in_a_name, "kind": "rds-replica", "replica": replica, "rpo_seconds": 60, "account": a.id},
        {"name": in_c_name, "kind": "rds-replica", "replica": "ledger-dr", "rpo_seconds": 60, "account": c.id},
    ])
    .to_string();
    let members = json!([
        {"id": a.id, "role_arn": role_a, "external_id": external_id},
        {"id": c.id, "role_arn": role_c, "external_id": external_id},
    ])
    .to_string();
    let cfg = LagConfig::from_vars(&HashMap::from([
        ("DRPILOT_SOURCE_REGION", source),
        ("DRPILOT_DR_REGION", dr),
        ("DRPILOT_RESOURCES", resources.as_str()),
        ("DRPILOT_ACCOUNTS", members.as_str()),
        ("DRPILOT_STATE_BUCKET", state.as_str()),
        ("DRPILOT_NOTIFY_TOPIC_ARN", responders.topic_arn.as_str()),
        ("DRPILOT_S3_FORCE_PATH_STYLE", "true"),
    ]))
    .unwrap();
    let accounts = LagPorts::accounts(&sdk(dr).await, &cfg);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let report = serde_json::to_value(check(&accounts, &cfg, now, deadline).await).unwrap();

    let entry = |name: &str| {
        report["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    let (measured, blind) = (entry(&in_a_name), entry(&in_c_name));
    assert_eq!(
        (measured["status"].as_str(), measured["account"].as_str()),
        (Some("healthy"), Some(a.id.as_str())),
        "{report:#}"
    );
    assert_eq!(measured["recovery_point_seconds"], 3.0);
    assert_eq!(blind["status"], "unknown");
    let why = blind["detail"].as_str().unwrap();
    assert!(why.contains(&role_c) && why.contains("AccessDenied"), "{why}");

    // the verdicts are published in the hub (the alarms are there); nothing for the unknown one
    let hub_cw = Cloudwatch::new(dr).await;
    assert_eq!(
        hub_cw
            .values("drpilot", "RpoStatus", ("Resource", &in_a_name))
            .await
            .len(),
        1
    );
    assert!(hub_cw
        .values("drpilot", "RpoStatus", ("Resource", &in_c_name))
        .await
        .is_empty());
    assert!(member_cw
        .values("drpilot", "RpoStatus", ("Resource", &in_a_name))
        .await
        .is_empty());
}

#[tokio::test]
async fn a_failover_in_an_account_whose_role_refuses_changes_nothing_and_says_so_once() {
    let dr = "ca-central-1";
    let c = MemberAccount::enter("210000000007").await;
    let role_c = c.member_role(&unique("drpilot-member"), "not-this-deployment").await;
    let hub = Regions::new("us-west-1", dr).await;
    let state = unique("drpilot-state");
    hub.create_bucket(dr, &state).await;
    let responders = Responders::new(dr, &unique("responders")).await;
    let databases = json!([{
        "name": "ledger", "kind": "rds-replica", "primary": "ledger-db", "replica": "ledger-db-dr",
        "alarms": [unique("ledger-primary-down")], "max_data_loss_seconds": 60, "account": c.id,
        "dns": {"zone_id": "Z0123456789", "record_name": "ledger.example.com"}
    }])
    .to_string();
    let members = json!([{"id": c.id, "role_arn": role_c, "external_id": unique("drpilot-ext")}]).to_string();
    let cfg = PromoterConfig::from_vars(&HashMap::from([
        ("DRPILOT_SOURCE_REGION", "us-west-1"),
        ("DRPILOT_DR_REGION", dr),
        ("DRPILOT_DATABASES", databases.as_str()),
        ("DRPILOT_ACCOUNTS", members.as_str()),
        ("DRPILOT_MODE", "automatic"),
        ("DRPILOT_STATE_BUCKET", state.as_str()),
        ("DRPILOT_NOTIFY_TOPIC_ARN", responders.topic_arn.as_str()),
        ("DRPILOT_S3_FORCE_PATH_STYLE", "true"),
    ]))
    .unwrap();
    let sim = Simulator::connect();
    let mark = sim.wire_mark().await;
    let accounts = PromoterPorts::accounts(&sdk(dr).await, &cfg);
    // Lambda's retry of a failed asynchronous invocation keeps its request id
    let invocation = Invocation {
        request_id: unique("request"),
        deadline: chrono::Utc::now() + chrono::Duration::minutes(15),
    };
    let failover =
        || PromoterEvent::decode(json!({"action": "failover", "database": "ledger", "reason": "region down"})).unwrap();
    let promoter = Promoter {
        accounts: &accounts,
        cfg: &cfg,
        invocation: invocation.clone(),
    };
    let out = promoter.handle(failover()).await;
    assert!(
        matches!(&out, Err(Error::Unreachable { account, .. }) if account == &c.id),
        "{out:?}"
    );
    // the retry is the same episode, decided already: no second notice
    let again = promoter.handle(failover()).await.unwrap();
    assert!(again["duplicate"].is_string(), "{again}");
    let notices = responders.received().await;
    assert_eq!(notices.len(), 1, "{notices:#?}");
    assert_eq!(
        notices[0].subject,
        format!("drpilot: NOT failing over ledger: account {} unreachable", c.id)
    );
    assert!(notices[0].message.contains(&role_c) && notices[0].message.contains("Nothing was checked or changed"));
    assert_eq!(notices[0].attribute("severity"), Some("critical"));
    let (wire, _) = sim.wire(mark).await;
    assert_eq!(
        wire.0.iter().filter(|e| e.service.as_deref() == Some("rds")).count(),
        0,
        "no RDS call anywhere"
    );
}

#[tokio::test]
async fn backups_in_member_accounts_copy_there_keep_their_state_in_the_hub_and_one_refusal_stops_only_its_own() {
    let (source, dr) = ("us-west-1", "ca-central-1");
    let (a, c) = (
        MemberAccount::enter("210000000008").await,
        MemberAccount::enter("210000000009").await,
    );
    let external_id = unique("drpilot-ext");
    let role_a = a.member_role(&unique("drpilot-member"), &external_id).await;
    let role_c = c.member_role(&unique("drpilot-member"), "not-this-deployment").await;
    let (bucket, dr_bucket) = (unique("receipts"), unique("receipts-dr"));
    let src_a = a.create_bucket(source, &bucket).await;
    let dr_a = a.create_bucket(dr, &dr_bucket).await;
    dr_a.put_bucket_versioning()
        .bucket(&dr_bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    src_a
        .put_object()
        .bucket(&bucket)
        .key("2026/11/r-1.pdf")
        .body(b"receipt".to_vec().into())
        .send()
        .await
        .unwrap();

    let hub = Regions::new(source, dr).await;
    let state = unique("drpilot-state");
    hub.create_bucket(dr, &state).await;
    let responders = Responders::new(dr, &unique("responders")).await;
    let backups = json!([
        {"name": "receipts", "source_bucket": bucket, "dr_bucket": dr_bucket, "account": a.id},
        {"name": "invoices", "source_bucket": unique("invoices"), "dr_bucket": unique("invoices-dr"), "account": c.id},
    ])
    .to_string();
    let members = json!([
        {"id": a.id, "role_arn": role_a, "external_id": external_id},
        {"id": c.id, "role_arn": role_c, "external_id": external_id},
    ])
    .to_string();
    let cfg = BackupConfig::from_vars(&HashMap::from([
        ("DRPILOT_SOURCE_REGION", source),
        ("DRPILOT_DR_REGION", dr),
        ("DRPILOT_S3_BACKUPS", backups.as_str()),
        ("DRPILOT_ACCOUNTS", members.as_str()),
        ("DRPILOT_STATE_BUCKET", state.as_str()),
        ("DRPILOT_NOTIFY_TOPIC_ARN", responders.topic_arn.as_str()),
        ("DRPILOT_S3_FORCE_PATH_STYLE", "true"),
    ]))
    .unwrap();
    let accounts = BackupPorts::accounts(&sdk(dr).await, &cfg);
    let invocation = drpilot::backup::Invocation {
        request_id: unique("request"),
        deadline: chrono::Utc::now() + chrono::Duration::minutes(15),
    };
    let event = BackupEvent::decode(sample_event("s3-backup/schedule.json")).unwrap();
    let err = back_up(&accounts, &cfg, event, &invocation)
        .await
        .expect_err("one backup cannot run");
    assert!(err.to_string().contains("invoices"), "{err}");

    // the copy is in a's DR bucket, the point in time's state in the hub's state bucket
    let copy = dr_a
        .get_object()
        .bucket(&dr_bucket)
        .key("2026/11/r-1.pdf")
        .send()
        .await
        .unwrap();
    assert_eq!(copy.body.collect().await.unwrap().into_bytes().as_ref(), b"receipt");
    let hub_s3 = drpilot_tests::account::s3_client(dr).await;
    let recorded = hub_s3
        .get_object()
        .bucket(&state)
        .key("drpilot/s3-backup/receipts/state.json")
        .send()
        .await
        .unwrap();
    let recorded: Value = serde_json::from_slice(&recorded.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(recorded["points"].as_array().unwrap().len(), 1, "{recorded:#}");

    let notices = responders.received().await;
    assert_eq!(notices.len(), 1, "{notices:#?}");
    assert!(
        notices[0].message.contains(&role_c) && notices[0].message.contains("AccessDenied"),
        "{}",
        notices[0].message
    );
    assert!(
        !notices[0].message.contains("receipts:"),
        "the reachable backup is not among the failures: {}",
        notices[0].message
    );
}
