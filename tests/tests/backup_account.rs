//! The isolated backup account: the snapshot copier shares each newest DR copy with it and
//! copies it there, re-encrypted with that account's own key, through the role the account
//! grants; production's credentials cannot delete what lands there.

use drpilot::config::CopierConfig;
use drpilot::copier::{handle, CopierEvent, CopierPorts, CopyReport};
use drpilot::events::Decode;
use drpilot_tests::account::{Regions, Responders};
use drpilot_tests::members::{MemberAccount, HUB};
use drpilot_tests::unique;
use std::collections::HashMap;

/// The DR key's policy, as Terraform writes it with `backup_account` set: the account's root
/// administers it; the backup account may use it to copy what is shared with it.
async fn share_key_with(r: &Regions, key: &str, account: &str) {
    let kms = aws_sdk_kms::Client::new(&drpilot_tests::sdk(&r.dr).await);
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Account", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{HUB}:root")}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "BackupAccountCopiesSharedCopies", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
             "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant", "kms:ReEncrypt*"], "Resource": "*"}
        ]
    });
    kms.put_key_policy()
        .key_id(key.rsplit('/').next().unwrap()) // moto takes the key id here
        .policy_name("default")
        .policy(policy.to_string())
        .send()
        .await
        .unwrap();
}

/// The hub in the test bed's account, a backup account with the role and key
/// `infra/modules/backup-account` makes, and an encrypted instance (and optionally an Aurora
/// cluster) with a snapshot each, protected by a copier configured with `DRPILOT_VAULT`.
struct Bed {
    r: Regions,
    vault: MemberAccount,
    vault_key: String,
    orders: String,
    ledger: Option<String>,
    responders: Responders,
    cfg: CopierConfig,
}

impl Bed {
    async fn new(vault_account: &str, share_dr_key: bool, with_cluster: bool) -> Self {
        let r = Regions::new("ap-south-2", "ap-east-2").await;
        let vault = MemberAccount::enter(vault_account).await;
        let external_id = unique("vault-external-id");
        let role = vault.member_role(&unique("drpilot-vault-copier"), &external_id).await;
        let vault_key = vault.kms_key(&r.dr, "drpilot: the backup account's own key").await;
        let dr_key = r.dr_kms_key().await;
        if share_dr_key {
            share_key_with(&r, &dr_key, &vault.id).await;
        }
        let orders = unique("orders");
        r.create_instance(&orders, true, &[]).await;
        r.snapshot_instance(&orders, &unique("nightly"), &[]).await;
        let ledger = match with_cluster {
            true => {
                let ledger = unique("ledger");
                r.create_cluster(&ledger, true, &[]).await;
                r.snapshot_cluster(&ledger, &unique("nightly")).await;
                Some(ledger)
            }
            false => None,
        };
        let responders = Responders::new(&r.dr, &unique("vault-responders")).await;
        let vault_json = serde_json::json!([{
            "id": vault.id, "role_arn": role, "external_id": external_id, "dr_kms_key_id": vault_key
        }])
        .to_string();
        let deployment = unique("vault").replace('_', "-");
        let mut vars: HashMap<&str, &str> = HashMap::from([
            ("DRPILOT_SOURCE_REGION", r.source.as_str()),
            ("DRPILOT_DR_REGION", r.dr.as_str()),
            ("DRPILOT_DB_INSTANCES", orders.as_str()),
            ("DRPILOT_DR_KMS_KEY_ID", dr_key.as_str()),
            ("DRPILOT_NOTIFY_TOPIC_ARN", responders.topic_arn.as_str()),
            ("DRPILOT_DEPLOYMENT", deployment.as_str()),
            ("DRPILOT_VAULT", vault_json.as_str()),
        ]);
        if let Some(ledger) = &ledger {
            vars.insert("DRPILOT_DB_CLUSTERS", ledger.as_str());
        }
        let cfg = CopierConfig::from_vars(&vars).unwrap();
        Bed {
            r,
            vault,
            vault_key,
            orders,
            ledger,
            responders,
            cfg,
        }
    }

    /// One scheduled reconciliation of the copier.
    async fn run(&self) -> Result<CopyReport, drpilot::Error> {
        let ports = CopierPorts::aws(&drpilot_tests::sdk(&self.r.dr).await, &self.cfg);
        let event = CopierEvent::decode(drpilot_tests::sample_event("snapshot-copier/schedule.json")).unwrap();
        let report = handle(&ports, &self.cfg, event, chrono::Utc::now()).await?;
        Ok(serde_json::from_value(report).unwrap())
    }
}

#[tokio::test]
async fn newest_copies_land_in_the_backup_account_under_its_key_and_production_cannot_delete_them() {
    let bed = Bed::new("210000000031", true, true).await;
    let (r, vault) = (&bed.r, &bed.vault);

    // The first run copies into the DR region; the next, with those copies available, copies
    // them into the backup account; the one after finds them there.
    let first = bed.run().await.unwrap();
    assert_eq!(first.vault.as_ref().map(|v| v.copied.len()), Some(0), "{first:#?}");
    let second = bed.run().await.unwrap();
    let copied = second.vault.clone().expect("a vault report").copied;
    assert_eq!(copied.len(), 2, "{second:#?}");
    let third = bed.run().await.unwrap();
    let v = third.vault.expect("a vault report");
    assert_eq!((v.copied.len(), v.held.len()), (0, 2), "{v:#?}");

    // There, under the backup account's key, in the backup account.
    let there = aws_sdk_rds::Client::new(&vault.sdk(&r.dr).await);
    let held = there
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    let held: Vec<_> = held
        .db_snapshots()
        .iter()
        .filter(|s| copied.iter().any(|c| Some(c.as_str()) == s.db_snapshot_identifier()))
        .collect();
    assert_eq!(held.len(), 1, "the instance's copy");
    assert_eq!(held[0].db_instance_identifier(), Some(bed.orders.as_str()));
    assert_eq!(
        held[0].kms_key_id(),
        Some(bed.vault_key.as_str()),
        "re-encrypted with the backup account's key"
    );
    let held_arn = held[0].db_snapshot_arn().unwrap().to_string();
    assert!(held_arn.contains(&format!(":{}:", vault.id)), "{held_arn}");
    let clusters = there
        .describe_db_cluster_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    let ledger = bed.ledger.as_deref().unwrap();
    assert!(clusters.db_cluster_snapshots().iter().any(|s| copied
        .iter()
        .any(|c| Some(c.as_str()) == s.db_cluster_snapshot_identifier())
        && s.db_cluster_identifier() == Some(ledger)));

    // Production's credentials cannot delete it: the ARN names another account's snapshot.
    let refused = r
        .rds_dr
        .delete_db_snapshot()
        .db_snapshot_identifier(&held_arn)
        .send()
        .await
        .expect_err("production cannot delete the backup account's copy");
    let code = aws_sdk_rds::error::ProvideErrorMetadata::code(&refused)
        .unwrap_or_default()
        .to_string();
    // (AWS: not found for the caller, or not an identifier it takes)
    assert!(
        ["DBSnapshotNotFound", "DBSnapshotNotFoundFault", "InvalidParameterValue"].contains(&code.as_str()),
        "{refused:?}"
    );
    let still = there
        .describe_db_snapshots()
        .db_snapshot_identifier(held[0].db_snapshot_identifier().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(still.db_snapshots().len(), 1, "the copy is still there after {code}");
    assert!(
        bed.responders.received().await.is_empty(),
        "nothing failed, nobody paged"
    );
}

#[tokio::test]
async fn a_dr_key_the_backup_account_may_not_use_fails_the_copy_there_and_pages() {
    let bed = Bed::new("210000000032", false, false).await; // the DR key's policy does not name it
    bed.run().await.unwrap();
    let failed = bed.run().await.unwrap_err();
    assert!(failed.to_string().contains("KMSKeyNotAccessibleFault"), "{failed}");
    let notice = &bed.responders.received().await[0];
    assert!(
        notice.message.contains(&format!("backup account {}", bed.vault.id)),
        "{}",
        notice.message
    );
}
