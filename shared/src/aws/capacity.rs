//! A recovery plan's capacity port over both kinds of application capacity in the DR region.

use super::autoscaling::AutoScaling;
use super::ecs::EcsServices;
use crate::error::Result;
use crate::model::{CapacityKind, GroupSize};
use crate::plan::recovery::GroupState;
use crate::ports::Capacity;

/// The DR region's Auto Scaling groups and ECS services, in one account.
pub struct AppCapacity {
    pub groups: AutoScaling,
    pub services: EcsServices,
}

impl AppCapacity {
    pub fn new(sdk: &aws_config::SdkConfig, region: &str) -> Self {
        AppCapacity {
            groups: AutoScaling::new(sdk, region),
            services: EcsServices::new(sdk, region),
        }
    }
}

impl Capacity for AppCapacity {
    async fn group(&self, kind: &CapacityKind, name: &str) -> Result<Option<GroupState>> {
        match kind {
            CapacityKind::AutoScalingGroup => self.groups.group(name).await,
            CapacityKind::EcsService { cluster } => self.services.service(cluster, name).await,
        }
    }

    async fn resize(&self, kind: &CapacityKind, name: &str, size: GroupSize) -> Result<()> {
        match kind {
            CapacityKind::AutoScalingGroup => self.groups.resize(name, size).await,
            CapacityKind::EcsService { cluster } => self.services.set_desired(cluster, name, size.desired).await,
        }
    }
}
