//! Builds a two-region account on the emulator the way a user's account would look.

use crate::sdk;
use aws_sdk_rds::types::Tag;
use serde::Deserialize;
use std::collections::BTreeMap;

pub struct Regions {
    pub source: String,
    pub dr: String,
    pub rds_source: aws_sdk_rds::Client,
    pub rds_dr: aws_sdk_rds::Client,
    pub sdk_source: aws_config::SdkConfig,
    /// The account the clients work in.
    pub account: String,
}

impl Regions {
    pub async fn new(source: &str, dr: &str) -> Self {
        Self::with(sdk(source).await, sdk(dr).await, crate::ACCOUNT_ID)
    }

    /// The regions of a member account.
    pub async fn in_member(member: &crate::members::MemberAccount, source: &str, dr: &str) -> Self {
        Self::with(member.sdk(source).await, member.sdk(dr).await, &member.id)
    }

    fn with(sdk_source: aws_config::SdkConfig, sdk_dr: aws_config::SdkConfig, account: &str) -> Self {
        Regions {
            account: account.to_string(),
            source: sdk_source.region().expect("region").to_string(),
            dr: sdk_dr.region().expect("region").to_string(),
            rds_source: aws_sdk_rds::Client::new(&sdk_source),
            rds_dr: aws_sdk_rds::Client::new(&sdk_dr),
            sdk_source,
        }
    }

    /// A customer-managed KMS key in the DR region, as Terraform would create it.
    pub async fn dr_kms_key(&self) -> String {
        let kms = aws_sdk_kms::Client::new(&sdk(&self.dr).await);
        let key = kms
            .create_key()
            .description("drpilot DR snapshot copies")
            .send()
            .await
            .unwrap();
        key.key_metadata().unwrap().arn().unwrap().to_string()
    }

    /// An RDS primary (`postgres`, `mysql`) with its own parameter group, as production databases have
    /// (a default group cannot be changed: a planned failover blocks writes through it).
    pub async fn create_primary(&self, id: &str, engine: &str) {
        let group = format!("{id}-params");
        let family = if engine == "mysql" { "mysql8.0" } else { "postgres16" };
        self.rds_source
            .create_db_parameter_group()
            .db_parameter_group_name(&group)
            .db_parameter_group_family(family)
            .description("the primary's own parameters")
            .send()
            .await
            .unwrap();
        self.rds_source
            .create_db_instance()
            .db_instance_identifier(id)
            .engine(engine)
            .db_parameter_group_name(&group)
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .master_username("app")
            .master_user_password("correct-horse-battery")
            .backup_retention_period(7)
            .send()
            .await
            .unwrap();
    }

    pub async fn create_instance(&self, id: &str, encrypted: bool, tags: &[(&str, &str)]) {
        self.rds_source
            .create_db_instance()
            .db_instance_identifier(id)
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .master_username("app")
            .master_user_password("correct-horse-battery")
            .storage_encrypted(encrypted)
            .backup_retention_period(7)
            .set_tags(Some(rds_tags(tags)))
            .send()
            .await
            .unwrap();
    }

    pub async fn create_cluster(&self, id: &str, encrypted: bool, tags: &[(&str, &str)]) {
        self.rds_source
            .create_db_cluster()
            .db_cluster_identifier(id)
            .engine("aurora-postgresql")
            .master_username("app")
            .master_user_password("correct-horse-battery")
            .storage_encrypted(encrypted)
            .set_tags(Some(rds_tags(tags)))
            .send()
            .await
            .unwrap();
    }

    /// A manual snapshot in the source region; returns its ARN.
    pub async fn snapshot_instance(&self, db: &str, snapshot: &str, tags: &[(&str, &str)]) -> String {
        let out = self
            .rds_source
            .create_db_snapshot()
            .db_instance_identifier(db)
            .db_snapshot_identifier(snapshot)
            .set_tags(Some(rds_tags(tags)))
            .send()
            .await
            .unwrap();
        out.db_snapshot().unwrap().db_snapshot_arn().unwrap().to_string()
    }

    pub async fn snapshot_cluster(&self, cluster: &str, snapshot: &str) -> String {
        let out = self
            .rds_source
            .create_db_cluster_snapshot()
            .db_cluster_identifier(cluster)
            .db_cluster_snapshot_identifier(snapshot)
            .send()
            .await
            .unwrap();
        out.db_cluster_snapshot()
            .unwrap()
            .db_cluster_snapshot_arn()
            .unwrap()
            .to_string()
    }

    /// All DB snapshots of `db` in the source region (automated and manual).
    pub async fn source_snapshot_ids(&self, db: &str) -> Vec<String> {
        let out = self
            .rds_source
            .describe_db_snapshots()
            .db_instance_identifier(db)
            .send()
            .await
            .unwrap();
        let mut ids: Vec<String> = out
            .db_snapshots()
            .iter()
            .filter_map(|s| s.db_snapshot_identifier().map(str::to_string))
            .collect();
        ids.sort();
        ids
    }

    /// DR-region DB snapshots whose drpilot:source-db tag is `db`.
    pub async fn dr_copies_of(&self, db: &str) -> Vec<aws_sdk_rds::types::DbSnapshot> {
        let all: Vec<_> = self
            .rds_dr
            .describe_db_snapshots()
            .snapshot_type("manual")
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .unwrap();
        all.iter()
            .filter(|s| {
                s.tag_list()
                    .iter()
                    .any(|t| t.key() == Some("drpilot:source-db") && t.value() == Some(db))
            })
            .cloned()
            .collect()
    }

    pub async fn dr_cluster_copies_of(&self, cluster: &str) -> Vec<aws_sdk_rds::types::DbClusterSnapshot> {
        let all: Vec<_> = self
            .rds_dr
            .describe_db_cluster_snapshots()
            .snapshot_type("manual")
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .unwrap();
        all.iter()
            .filter(|s| {
                s.tag_list()
                    .iter()
                    .any(|t| t.key() == Some("drpilot:source-db") && t.value() == Some(cluster))
            })
            .cloned()
            .collect()
    }

    /// Every DB and DB cluster snapshot identifier in the DR region.
    pub async fn dr_snapshot_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        let out: Vec<_> = self
            .rds_dr
            .describe_db_snapshots()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .unwrap();
        ids.extend(
            out.iter()
                .filter_map(|s| s.db_snapshot_identifier().map(str::to_string)),
        );
        let out: Vec<_> = self
            .rds_dr
            .describe_db_cluster_snapshots()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .unwrap();
        ids.extend(
            out.iter()
                .filter_map(|s| s.db_cluster_snapshot_identifier().map(str::to_string)),
        );
        ids.sort();
        ids
    }
}

pub fn rds_tags(tags: &[(&str, &str)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

pub fn tags_of(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect()
}

/// The responders' SNS topic with an SQS queue subscribed: what a responder got is read back
/// from the queue.
#[derive(Debug, Clone)]
pub struct Responders {
    pub topic_arn: String,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

/// The SNS envelope as delivered to an SQS subscriber.
#[derive(Debug, Clone, Deserialize)]
pub struct Received {
    #[serde(rename = "Subject", default)]
    pub subject: String,
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "MessageAttributes", default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

impl Received {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name)?.get("Value")?.as_str()
    }
}

impl Responders {
    pub async fn new(region: &str, name: &str) -> Self {
        let q = topic_to_queue(region, region, name, false).await;
        Responders {
            topic_arn: q.topic_arn,
            queue_url: q.queue_url,
            sqs: q.sqs,
        }
    }

    /// Every notice delivered so far, in order, removing them from the queue.
    pub async fn received(&self) -> Vec<Received> {
        let mut out = Vec::new();
        loop {
            let batch = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .unwrap();
            let messages = batch.messages();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                out.push(serde_json::from_str(m.body().unwrap()).unwrap());
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

impl Regions {
    /// A cross-region read replica of `primary` in the DR region.
    pub async fn create_replica(&self, primary: &str, replica: &str) {
        self.create_replica_in(primary, replica, None).await
    }

    /// A replica with a parameter group of its own in the DR region (`family`), as a planned
    /// switch back to the primary region needs: it blocks writes on the replica once promoted.
    pub async fn create_replica_in(&self, primary: &str, replica: &str, family: Option<&str>) {
        let group = family.map(|_| format!("{replica}-params"));
        if let (Some(group), Some(family)) = (&group, family) {
            self.rds_dr
                .create_db_parameter_group()
                .db_parameter_group_name(group)
                .db_parameter_group_family(family)
                .description("the replica's own parameters")
                .send()
                .await
                .unwrap();
        }
        let arn = format!("arn:aws:rds:{}:{}:db:{primary}", self.source, self.account);
        self.rds_dr
            .create_db_instance_read_replica()
            .db_instance_identifier(replica)
            .source_db_instance_identifier(arn)
            .db_instance_class("db.t3.micro")
            .set_db_parameter_group_name(group)
            .send()
            .await
            .unwrap();
    }

    /// A bucket in `region` (with versioning, as DR buckets have).
    pub async fn create_bucket(&self, region: &str, name: &str) -> aws_sdk_s3::Client {
        create_bucket_with(&sdk(region).await, region, name).await
    }
}

/// Creates bucket `name` in `region` with `sdk`'s credentials; returns a path-style client.
pub async fn create_bucket_with(sdk: &aws_config::SdkConfig, region: &str, name: &str) -> aws_sdk_s3::Client {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .region(aws_sdk_s3::config::Region::new(region.to_string()))
            .force_path_style(true)
            .build(),
    );
    let mut create = s3.create_bucket().bucket(name);
    if region != "us-east-1" {
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                .build(),
        );
    }
    create.send().await.unwrap();
    s3
}

/// An SNS topic in `topic_region` delivering to an SQS queue in `queue_region`, both named
/// `name` (`raw`: SNS's raw message delivery, the message alone, without SNS's envelope).
pub struct TopicQueue {
    pub topic_arn: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub sqs: aws_sdk_sqs::Client,
}

pub async fn topic_to_queue(topic_region: &str, queue_region: &str, name: &str, raw: bool) -> TopicQueue {
    let sns = aws_sdk_sns::Client::new(&sdk(topic_region).await);
    let sqs = aws_sdk_sqs::Client::new(&sdk(queue_region).await);
    let topic_arn = sns
        .create_topic()
        .name(name)
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    let queue_url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn = attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    let mut subscribe = sns
        .subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn);
    if raw {
        subscribe = subscribe.attributes("RawMessageDelivery", "true");
    }
    subscribe.send().await.unwrap();
    TopicQueue {
        topic_arn,
        queue_url,
        queue_arn,
        sqs,
    }
}

pub async fn s3_client(region: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&sdk(region).await)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// CloudWatch in one region: seeding AWS's own metrics (moto never reports replica lag) and
/// reading back what drpilot published.
pub struct Cloudwatch(pub aws_sdk_cloudwatch::Client);

impl Cloudwatch {
    pub async fn new(region: &str) -> Self {
        Cloudwatch(aws_sdk_cloudwatch::Client::new(&sdk(region).await))
    }

    /// One `ReplicaLag` datapoint, as RDS would report it every minute.
    pub async fn put(
        &self,
        namespace: &str,
        name: &str,
        dimension: (&str, &str),
        value: f64,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
        self.0
            .put_metric_data()
            .namespace(namespace)
            .metric_data(
                MetricDatum::builder()
                    .metric_name(name)
                    .dimensions(Dimension::builder().name(dimension.0).value(dimension.1).build())
                    .value(value)
                    .timestamp(aws_smithy_time(at))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Every (time, value) of a metric in the last day, oldest first.
    pub async fn values(&self, namespace: &str, name: &str, dimension: (&str, &str)) -> Vec<(i64, f64)> {
        self.values_of(namespace, name, &[dimension]).await
    }

    /// As `values`, for a metric with any dimensions (none included).
    pub async fn values_of(&self, namespace: &str, name: &str, dimensions: &[(&str, &str)]) -> Vec<(i64, f64)> {
        let from = chrono::Utc::now() - chrono::Duration::days(1);
        maxima(&self.0, namespace, name, dimensions, from, 60).await
    }
}

/// Every (period start, Maximum) of a metric from `from` until a few minutes from now, oldest
/// first.
pub async fn maxima(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    name: &str,
    dimensions: &[(&str, &str)],
    from: chrono::DateTime<chrono::Utc>,
    period: i32,
) -> Vec<(i64, f64)> {
    use aws_sdk_cloudwatch::types::{Dimension, Statistic};
    let out = cw
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(name)
        .set_dimensions(Some(
            dimensions
                .iter()
                .map(|(k, v)| Dimension::builder().name(*k).value(*v).build())
                .collect(),
        ))
        .start_time(aws_smithy_time(from))
        .end_time(aws_smithy_time(chrono::Utc::now() + chrono::Duration::minutes(5)))
        .period(period)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .unwrap();
    let mut points: Vec<(i64, f64)> = out
        .datapoints()
        .iter()
        .map(|d| {
            (
                d.timestamp().map(|t| t.secs()).unwrap_or_default(),
                d.maximum().unwrap_or_default(),
            )
        })
        .collect();
    points.sort_by_key(|p| p.0);
    points
}

fn aws_smithy_time(t: chrono::DateTime<chrono::Utc>) -> aws_sdk_cloudwatch::primitives::DateTime {
    aws_sdk_cloudwatch::primitives::DateTime::from_millis(t.timestamp_millis())
}

impl Regions {
    /// A copy drpilot made on an earlier run, as the DR region would hold it. moto cannot age a
    /// snapshot, so the copy carries the source snapshot time that history would have (the
    /// copier's retention and the lag checker's freshness read that tag). Returns the copy id.
    pub async fn seed_drpilot_copy(
        &self,
        db: &str,
        copy_id: &str,
        age: chrono::Duration,
        kms_key: Option<&str>,
    ) -> String {
        self.seed_copy_of_deployment(None, db, copy_id, age, kms_key).await
    }

    /// A copy as drpilot deployment `deployment` made it (`None`: before copies carried
    /// `drpilot:deployment`).
    pub async fn seed_copy_of_deployment(
        &self,
        deployment: Option<&str>,
        db: &str,
        copy_id: &str,
        age: chrono::Duration,
        kms_key: Option<&str>,
    ) -> String {
        let source = self.snapshot_instance(db, &format!("{copy_id}-src"), &[]).await;
        self.rds_dr
            .copy_db_snapshot()
            .source_db_snapshot_identifier(source)
            .target_db_snapshot_identifier(copy_id)
            .set_kms_key_id(kms_key.map(str::to_string))
            .set_tags(Some(self.copy_tags(deployment, db, age)))
            .send()
            .await
            .unwrap();
        copy_id.to_string()
    }

    /// A copy of cluster `cluster` as `seed_copy_of_deployment` makes one of an instance.
    pub async fn seed_cluster_copy_of_deployment(
        &self,
        deployment: Option<&str>,
        cluster: &str,
        copy_id: &str,
        age: chrono::Duration,
        kms_key: Option<&str>,
    ) -> String {
        let source = self.snapshot_cluster(cluster, &format!("{copy_id}-src")).await;
        self.rds_dr
            .copy_db_cluster_snapshot()
            .source_db_cluster_snapshot_identifier(source)
            .target_db_cluster_snapshot_identifier(copy_id)
            .set_kms_key_id(kms_key.map(str::to_string))
            .set_tags(Some(self.copy_tags(deployment, cluster, age)))
            .send()
            .await
            .unwrap();
        copy_id.to_string()
    }

    /// The tags the snapshot copier gives a copy of `db` whose data is `age` old.
    fn copy_tags(&self, deployment: Option<&str>, db: &str, age: chrono::Duration) -> Vec<Tag> {
        let taken = (chrono::Utc::now() - age).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut tags = vec![
            ("drpilot:managed-by", "drpilot"),
            ("drpilot:source-db", db),
            ("drpilot:source-region", self.source.as_str()),
            ("drpilot:source-snapshot-time", taken.as_str()),
        ];
        tags.extend(deployment.map(|d| ("drpilot:deployment", d)));
        rds_tags(&tags)
    }
}

impl Regions {
    /// An Aurora global database: its primary cluster in the source region, a secondary cluster
    /// in the DR region.
    pub async fn create_global_database(&self, global: &str, primary: &str, secondary: &str) {
        self.rds_source
            .create_global_cluster()
            .global_cluster_identifier(global)
            .engine("aurora-postgresql")
            .send()
            .await
            .unwrap();
        self.rds_source
            .create_db_cluster()
            .db_cluster_identifier(primary)
            .engine("aurora-postgresql")
            .master_username("app")
            .master_user_password("correct-horse-battery")
            .global_cluster_identifier(global)
            .send()
            .await
            .unwrap();
        self.rds_dr
            .create_db_cluster()
            .db_cluster_identifier(secondary)
            .engine("aurora-postgresql")
            .global_cluster_identifier(global)
            .send()
            .await
            .unwrap();
    }
}

/// The writer endpoint of a DB cluster.
pub async fn cluster_endpoint(rds: &aws_sdk_rds::Client, id: &str) -> String {
    let out = rds
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .unwrap();
    out.db_clusters()[0].endpoint().unwrap().to_string()
}

/// The address of a DB instance's endpoint.
pub async fn instance_endpoint(rds: &aws_sdk_rds::Client, id: &str) -> String {
    let out = rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .unwrap();
    out.db_instances()[0]
        .endpoint()
        .and_then(|e| e.address())
        .unwrap()
        .to_string()
}
