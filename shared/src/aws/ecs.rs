//! ECS services in the DR region: the application tasks a recovery plan scales up after a
//! promotion, and whether they run.

use super::aws_error;
use crate::error::Result;
use crate::model::GroupSize;
use crate::plan::recovery::GroupState;
use aws_sdk_ecs::Client;

pub struct EcsServices {
    client: Client,
}

impl EcsServices {
    pub fn new(sdk: &aws_config::SdkConfig, region: &str) -> Self {
        let conf = aws_sdk_ecs::config::Builder::from(sdk)
            .region(aws_sdk_ecs::config::Region::new(region.to_string()))
            .build();
        EcsServices {
            client: Client::from_conf(conf),
        }
    }

    pub fn with_client(client: Client) -> Self {
        EcsServices { client }
    }

    /// The service's desired count and tasks now (`None`: no such service or cluster, or a
    /// deleted one). A service has no bounds of its own: min and max are its desired count.
    /// Ready tasks are RUNNING ones (ECS stops a task whose container or load balancer health
    /// check fails); PENDING ones are still starting. The service has settled once its newest
    /// event says it "has reached a steady state"; a newest event that says a task could not
    /// be placed or started, or is unhealthy, is AWS's reason it has not.
    pub async fn service(&self, cluster: &str, name: &str) -> Result<Option<GroupState>> {
        let out = match self
            .client
            .describe_services()
            .cluster(cluster)
            .services(name)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_cluster_not_found_exception()) => return Ok(None),
            Err(e) => return Err(aws_error("DescribeServices", e)),
        };
        // A name that is not there comes back as a failure ("MISSING"), not an error.
        let Some(s) = out
            .services()
            .iter()
            .find(|s| s.service_name() == Some(name) && s.status() == Some("ACTIVE"))
        else {
            return Ok(None);
        };
        let desired = count(s.desired_count());
        let running = count(s.running_count());
        // events come newest first
        let newest = s.events().first().and_then(|e| e.message()).unwrap_or_default();
        let steady = newest.ends_with("has reached a steady state.");
        let failed = {
            let m = newest.to_ascii_lowercase();
            m.contains("unable to") || m.contains("failed") || m.contains("unhealthy")
        };
        let last_failure = (!steady && failed).then(|| newest.to_string());
        Ok(Some(GroupState {
            size: GroupSize {
                min: desired,
                desired,
                max: desired,
            },
            healthy: running,
            launching: count(s.pending_count()),
            last_failure,
            steady,
        }))
    }

    /// Sets the service's desired count (the same count twice is no error; a service has no
    /// min or max of its own).
    pub async fn set_desired(&self, cluster: &str, name: &str, desired: u32) -> Result<()> {
        self.client
            .update_service()
            .cluster(cluster)
            .service(name)
            .desired_count(i32::try_from(desired).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| aws_error("UpdateService", e))?;
        Ok(())
    }
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}
