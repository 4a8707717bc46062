//! EC2 Auto Scaling in the DR region: the application capacity a recovery plan scales up
//! after a promotion, and whether its instances are in service.

use super::aws_error;
use crate::error::Result;
use crate::model::GroupSize;
use crate::plan::recovery::GroupState;
use aws_sdk_autoscaling::types::{LifecycleState, ScalingActivityStatusCode};
use aws_sdk_autoscaling::Client;

pub struct AutoScaling {
    client: Client,
}

impl AutoScaling {
    pub fn new(sdk: &aws_config::SdkConfig, region: &str) -> Self {
        let conf = aws_sdk_autoscaling::config::Builder::from(sdk)
            .region(aws_sdk_autoscaling::config::Region::new(region.to_string()))
            .build();
        AutoScaling {
            client: Client::from_conf(conf),
        }
    }

    pub fn with_client(client: Client) -> Self {
        AutoScaling { client }
    }

    /// AWS's reason, when the group's newest scaling activity failed (e.g. no capacity).
    async fn last_failure(&self, name: &str) -> Result<Option<String>> {
        let out = self
            .client
            .describe_scaling_activities()
            .auto_scaling_group_name(name)
            .max_records(1)
            .send()
            .await
            .map_err(|e| aws_error("DescribeScalingActivities", e))?;
        Ok(out
            .activities()
            .first()
            .filter(|a| {
                matches!(
                    a.status_code(),
                    Some(ScalingActivityStatusCode::Failed | ScalingActivityStatusCode::Cancelled)
                )
            })
            .map(|a| a.status_message().or(a.description()).unwrap_or("failed").to_string()))
    }
}

fn count(n: Option<i32>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl AutoScaling {
    /// The group's size and health now (`None`: no such group).
    pub async fn group(&self, name: &str) -> Result<Option<GroupState>> {
        let out = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .map_err(|e| aws_error("DescribeAutoScalingGroups", e))?;
        let Some(g) = out
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(name))
        else {
            return Ok(None);
        };
        let instances = g.instances();
        let in_service =
            |i: &&aws_sdk_autoscaling::types::Instance| i.lifecycle_state() == Some(&LifecycleState::InService);
        let healthy = instances
            .iter()
            .filter(in_service)
            .filter(|i| i.health_status().is_some_and(|h| h.eq_ignore_ascii_case("Healthy")))
            .count();
        let launching = instances
            .iter()
            .filter(|i| {
                matches!(
                    i.lifecycle_state(),
                    Some(LifecycleState::Pending | LifecycleState::PendingWait | LifecycleState::PendingProceed)
                )
            })
            .count()
            + instances.iter().filter(in_service).count()
            - healthy;
        let size = GroupSize {
            min: count(g.min_size()),
            desired: count(g.desired_capacity()),
            max: count(g.max_size()),
        };
        // Only a group short of instances asks why.
        let last_failure = if (healthy as u32) < size.desired {
            self.last_failure(name).await?
        } else {
            None
        };
        Ok(Some(GroupState {
            size,
            healthy: healthy as u32,
            launching: launching as u32,
            last_failure,
            steady: true,
        }))
    }

    /// Sets the group's bounds and desired capacity (the same size twice is no error).
    pub async fn resize(&self, name: &str, size: GroupSize) -> Result<()> {
        self.client
            .update_auto_scaling_group()
            .auto_scaling_group_name(name)
            .min_size(int(size.min))
            .desired_capacity(int(size.desired))
            .max_size(int(size.max))
            .send()
            .await
            .map_err(|e| aws_error("UpdateAutoScalingGroup", e))?;
        Ok(())
    }
}
