//! A test bed for the restore verifier: an encrypted RDS instance and an Aurora cluster in
//! the source region, their DR copies under the DR key as the snapshot copier makes them, the
//! isolated subnet group and security group Terraform makes for restore tests, the state
//! bucket and the responders' topic.

use crate::account::{Regions, Responders};
use crate::sim::Simulator;
use crate::unique;

pub struct VerifyBed {
    pub r: Regions,
    pub key: String,
    pub subnet_group: String,
    pub security_group: String,
    pub state_bucket: String,
    pub responders: Responders,
    pub deployment: String,
    pub instance: String,
    pub cluster: String,
}

impl VerifyBed {
    /// The databases exist in `source`; their copies are not made yet (see `copy`).
    pub async fn new(source: &str, dr: &str) -> Self {
        let r = Regions::new(source, dr).await;
        let key = r.dr_kms_key().await;
        let (subnet_group, security_group) = Simulator::connect()
            .isolated_network(dr, &r.account, &unique("restore-tests"))
            .await;
        let state_bucket = unique("verifier-state");
        r.create_bucket(dr, &state_bucket).await;
        let responders = Responders::new(dr, &unique("verifier-responders")).await;
        let (instance, cluster) = (unique("orders"), unique("ledger"));
        r.create_instance(&instance, true, &[]).await;
        r.create_cluster(&cluster, true, &[]).await;
        VerifyBed {
            deployment: unique("vt").replace('_', "-"),
            r,
            key,
            subnet_group,
            security_group,
            state_bucket,
            responders,
            instance,
            cluster,
        }
    }

    /// A DR copy of the instance by `deployment` (`None`: this bed's), its data `age` old,
    /// under the DR key, tagged as the snapshot copier tags its copies. Returns its id.
    pub async fn copy_instance(&self, deployment: Option<&str>, age: chrono::Duration) -> String {
        let id = unique("drpilot-copy");
        let deployment = deployment.unwrap_or(&self.deployment);
        self.r
            .seed_copy_of_deployment(Some(deployment), &self.instance, &id, age, Some(&self.key))
            .await
    }

    /// A DR copy of the cluster (as `copy_instance`).
    pub async fn copy_cluster(&self, age: chrono::Duration) -> String {
        let id = unique("drpilot-ccopy");
        self.r
            .seed_cluster_copy_of_deployment(Some(&self.deployment), &self.cluster, &id, age, Some(&self.key))
            .await
    }

    /// `DRPILOT_VERIFY_DATABASES` for the instance and the cluster.
    pub fn databases(&self) -> String {
        serde_json::json!([
            {"db": self.instance, "db_kind": "instance"},
            {"db": self.cluster, "db_kind": "cluster"},
        ])
        .to_string()
    }

    /// The verifier's settings, as Terraform sets them (`timeout` and `poll` in seconds).
    pub fn settings(&self, timeout: u32, poll: u32) -> Vec<(&'static str, String)> {
        vec![
            ("DRPILOT_SOURCE_REGION", self.r.source.clone()),
            ("DRPILOT_DR_REGION", self.r.dr.clone()),
            ("DRPILOT_VERIFY_DATABASES", self.databases()),
            ("DRPILOT_VERIFY_SUBNET_GROUP", self.subnet_group.clone()),
            ("DRPILOT_VERIFY_SECURITY_GROUPS", self.security_group.clone()),
            ("DRPILOT_VERIFY_TIMEOUT_SECONDS", timeout.to_string()),
            ("DRPILOT_POLL_SECONDS", poll.to_string()),
            ("DRPILOT_DEADLINE_MARGIN_SECONDS", "1".into()),
            ("DRPILOT_STATE_BUCKET", self.state_bucket.clone()),
            ("DRPILOT_S3_FORCE_PATH_STYLE", "true".into()),
            ("DRPILOT_NOTIFY_TOPIC_ARN", self.responders.topic_arn.clone()),
            ("DRPILOT_DEPLOYMENT", self.deployment.clone()),
        ]
    }

    /// The DR region's databases whose identifier starts with `prefix`.
    pub async fn dr_databases(&self, prefix: &str) -> Vec<String> {
        let instances = self.r.rds_dr.describe_db_instances().send().await.unwrap();
        let clusters = self.r.rds_dr.describe_db_clusters().send().await.unwrap();
        instances
            .db_instances()
            .iter()
            .filter_map(|d| d.db_instance_identifier())
            .chain(clusters.db_clusters().iter().filter_map(|c| c.db_cluster_identifier()))
            .filter(|id| id.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }

    /// Disables (or enables again) the DR key, as an operator or a mistaken change would.
    pub async fn key_enabled(&self, enabled: bool) {
        let kms = aws_sdk_kms::Client::new(&crate::sdk(&self.r.dr).await);
        // moto takes the key id here, not the ARN (AWS takes either)
        let id = self.key.rsplit('/').next().unwrap();
        if enabled {
            kms.enable_key().key_id(id).send().await.unwrap();
        } else {
            kms.disable_key().key_id(id).send().await.unwrap();
        }
    }
}
