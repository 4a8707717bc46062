//! Route 53: health checkers' verdicts, and the record the promoter switches.

use super::aws_error;
use crate::error::{Error, Result};
use crate::model::DnsSpec;
use crate::plan::promotion::Checkers;
use crate::ports::{Dns, HealthChecks};
use aws_config::SdkConfig;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, ResourceRecordSetFailover,
    RrType,
};
use aws_sdk_route53::Client;

pub struct Route53 {
    client: Client,
}

impl Route53 {
    /// Route 53 is a global service (its API lives in us-east-1).
    pub fn new(sdk: &SdkConfig) -> Self {
        let conf = aws_sdk_route53::config::Builder::from(sdk)
            .region(aws_sdk_route53::config::Region::new("us-east-1"))
            .build();
        Route53 {
            client: Client::from_conf(conf),
        }
    }

    pub fn with_client(client: Client) -> Self {
        Route53 { client }
    }

    /// The record sets of the record's name and type (several with a routing policy).
    async fn records(&self, dns: &DnsSpec, at_most: i32) -> Result<Vec<ResourceRecordSet>> {
        let out = self
            .client
            .list_resource_record_sets()
            .hosted_zone_id(zone(&dns.zone_id))
            .start_record_name(&dns.record_name)
            .start_record_type(RrType::from(dns.record_type.as_str()))
            .max_items(at_most)
            .send()
            .await
            .map_err(|e| aws_error("ListResourceRecordSets", e))?;
        Ok(out
            .resource_record_sets()
            .iter()
            .filter(|r| crate::model::same_name(r.name(), &dns.record_name) && r.r#type().as_str() == dns.record_type)
            .cloned()
            .collect())
    }
}

/// The first value of a record set.
fn first_value(r: &ResourceRecordSet) -> Option<String> {
    r.resource_records().first().map(|r| r.value().to_string())
}

fn zone(id: &str) -> &str {
    id.trim_start_matches("/hostedzone/")
}

fn build_error(e: impl std::fmt::Display) -> Error {
    Error::RunFailed(format!("cannot build the Route 53 change: {e}"))
}

impl HealthChecks for Route53 {
    async fn checkers(&self, health_check_id: &str) -> Result<Checkers> {
        let out = self
            .client
            .get_health_check_status()
            .health_check_id(health_check_id)
            .send()
            .await
            .map_err(|e| aws_error("GetHealthCheckStatus", e))?;
        let observations = out.health_check_observations();
        let failing = observations
            .iter()
            .filter(|o| {
                let status = o.status_report().and_then(|r| r.status()).unwrap_or_default();
                !status.starts_with("Success")
            })
            .count() as u32;
        Ok(Checkers {
            failing,
            total: observations.len() as u32,
        })
    }
}

impl Dns for Route53 {
    async fn point(&self, dns: &DnsSpec, target: &str) -> Result<String> {
        let record = ResourceRecordSet::builder()
            .name(&dns.record_name)
            .r#type(RrType::from(dns.record_type.as_str()))
            .ttl(dns.ttl)
            .resource_records(ResourceRecord::builder().value(target).build().map_err(build_error)?)
            .build()
            .map_err(build_error)?;
        let batch = ChangeBatch::builder()
            .comment(format!("drpilot failover: {} -> {target}", dns.record_name))
            .changes(
                Change::builder()
                    .action(ChangeAction::Upsert)
                    .resource_record_set(record)
                    .build()
                    .map_err(build_error)?,
            )
            .build()
            .map_err(build_error)?;
        let out = self
            .client
            .change_resource_record_sets()
            .hosted_zone_id(zone(&dns.zone_id))
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| aws_error("ChangeResourceRecordSets", e))?;
        Ok(out.change_info().map(|c| c.id().to_string()).unwrap_or_default())
    }

    async fn in_sync(&self, change_id: &str) -> Result<bool> {
        let out = self
            .client
            .get_change()
            .id(change_id)
            .send()
            .await
            .map_err(|e| aws_error("GetChange", e))?;
        Ok(out.change_info().is_some_and(|c| c.status() == &ChangeStatus::Insync))
    }

    async fn current(&self, dns: &DnsSpec) -> Result<Option<String>> {
        Ok(self.records(dns, 1).await?.first().and_then(first_value))
    }

    async fn secondary(&self, dns: &DnsSpec) -> Result<Option<String>> {
        Ok(self
            .records(dns, 10)
            .await?
            .iter()
            .find(|r| r.failover() == Some(&ResourceRecordSetFailover::Secondary))
            .and_then(first_value))
    }
}
