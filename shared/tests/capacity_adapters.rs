//! The Auto Scaling and ECS adapters over the real SDK clients with `aws-smithy-mocks`: what
//! AWS's answers mean for a recovery plan (instances launching or unhealthy, tasks pending, a
//! launch or placement that failed, a group or service that is not there, a refused request).

use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
use aws_sdk_autoscaling::operation::describe_scaling_activities::DescribeScalingActivitiesOutput;
use aws_sdk_autoscaling::operation::update_auto_scaling_group::{
    UpdateAutoScalingGroupError, UpdateAutoScalingGroupOutput,
};
use aws_sdk_autoscaling::types::error::ScalingActivityInProgressFault;
use aws_sdk_autoscaling::types::{Activity, AutoScalingGroup, Instance, LifecycleState, ScalingActivityStatusCode};
use aws_sdk_ecs::operation::describe_services::{DescribeServicesError, DescribeServicesOutput};
use aws_sdk_ecs::operation::update_service::UpdateServiceOutput;
use aws_sdk_ecs::types::error::ClusterNotFoundException;
use aws_sdk_ecs::types::{Failure, Service, ServiceEvent};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use drpilot::aws::autoscaling::AutoScaling;
use drpilot::aws::capacity::AppCapacity;
use drpilot::aws::ecs::EcsServices;
use drpilot::model::{CapacityKind, GroupSize};
use drpilot::plan::recovery::GroupState;
use drpilot::ports::Capacity;

fn instance(id: &str, state: LifecycleState, health: &str) -> Instance {
    Instance::builder()
        .instance_id(id)
        .availability_zone("us-west-2a")
        .lifecycle_state(state)
        .health_status(health)
        .protected_from_scale_in(false)
        .build()
}

fn group(desired: i32, instances: Vec<Instance>) -> DescribeAutoScalingGroupsOutput {
    DescribeAutoScalingGroupsOutput::builder()
        .auto_scaling_groups(
            AutoScalingGroup::builder()
                .auto_scaling_group_name("web")
                .min_size(desired)
                .max_size(20)
                .desired_capacity(desired)
                .default_cooldown(300)
                .availability_zones("us-west-2a")
                .health_check_type("ELB")
                .created_time(aws_smithy_types::DateTime::from_secs(0))
                .set_instances(Some(instances))
                .build(),
        )
        .build()
}

#[tokio::test]
async fn launching_unhealthy_and_failed_launches_are_counted_apart_with_aws_reason() {
    let describe = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
        .match_requests(|r| r.auto_scaling_group_names() == ["web"])
        .then_output(|| {
            group(
                10,
                vec![
                    instance("i-1", LifecycleState::InService, "Healthy"),
                    instance("i-2", LifecycleState::InService, "Healthy"),
                    instance("i-3", LifecycleState::InService, "Unhealthy"),
                    instance("i-4", LifecycleState::Pending, "Healthy"),
                    instance("i-5", LifecycleState::PendingWait, "Healthy"),
                    instance("i-6", LifecycleState::Terminating, "Unhealthy"),
                ],
            )
        });
    let activities = mock!(aws_sdk_autoscaling::Client::describe_scaling_activities)
        .match_requests(|r| r.auto_scaling_group_name() == Some("web") && r.max_records() == Some(1))
        .then_output(|| {
            DescribeScalingActivitiesOutput::builder()
                .activities(
                    Activity::builder()
                        .activity_id("a-1")
                        .auto_scaling_group_name("web")
                        .cause("capacity")
                        .start_time(aws_smithy_types::DateTime::from_secs(0))
                        .status_code(ScalingActivityStatusCode::Failed)
                        .status_message("We currently do not have sufficient t3.large capacity")
                        .build(),
                )
                .build()
        });
    let client = mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, [&describe, &activities]);
    let state = AutoScaling::with_client(client).group("web").await.unwrap().unwrap();
    assert_eq!(
        state,
        GroupState {
            size: GroupSize {
                min: 10,
                desired: 10,
                max: 20
            },
            healthy: 2,
            launching: 3,
            last_failure: Some("We currently do not have sufficient t3.large capacity".into()),
            steady: true,
        },
        "in service and healthy only; pending and unhealthy instances are still launching; terminating ones are neither"
    );
}

#[tokio::test]
async fn a_full_group_asks_no_reason_and_a_missing_group_is_none() {
    let full = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
        .match_requests(|r| r.auto_scaling_group_names() == ["web"])
        .then_output(|| group(1, vec![instance("i-1", LifecycleState::InService, "Healthy")]));
    let missing = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
        .match_requests(|r| r.auto_scaling_group_names() == ["gone"])
        .then_output(|| DescribeAutoScalingGroupsOutput::builder().build());
    let client = mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, [&full, &missing]);
    let capacity = AutoScaling::with_client(client);
    let state = capacity.group("web").await.unwrap().unwrap();
    assert_eq!((state.healthy, state.last_failure), (1, None));
    assert_eq!(capacity.group("gone").await.unwrap(), None);
}

#[tokio::test]
async fn a_resize_sends_all_three_bounds_and_a_refusal_keeps_aws_code() {
    let resize = mock!(aws_sdk_autoscaling::Client::update_auto_scaling_group)
        .match_requests(|r| {
            r.auto_scaling_group_name() == Some("web")
                && (r.min_size(), r.desired_capacity(), r.max_size()) == (Some(10), Some(10), Some(20))
        })
        .then_output(|| UpdateAutoScalingGroupOutput::builder().build());
    let busy = mock!(aws_sdk_autoscaling::Client::update_auto_scaling_group)
        .match_requests(|r| r.auto_scaling_group_name() == Some("busy"))
        .then_error(|| {
            UpdateAutoScalingGroupError::ScalingActivityInProgressFault(
                ScalingActivityInProgressFault::builder()
                    .message("Scaling activity in progress")
                    .build(),
            )
        });
    let client = mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, [&resize, &busy]);
    let capacity = AutoScaling::with_client(client);
    let size = GroupSize {
        min: 10,
        desired: 10,
        max: 20,
    };
    capacity.resize("web", size).await.unwrap();
    assert_eq!(resize.num_calls(), 1);
    let err = capacity.resize("busy", size).await.unwrap_err().to_string();
    assert!(
        err.contains("UpdateAutoScalingGroup") && err.contains("ScalingActivityInProgress"),
        "{err}"
    );
}

fn service(name: &str, status: &str, desired: i32, running: i32, pending: i32, newest: &str) -> Service {
    Service::builder()
        .service_name(name)
        .status(status)
        .desired_count(desired)
        .running_count(running)
        .pending_count(pending)
        .events(ServiceEvent::builder().id("e-2").message(newest).build())
        .events(
            ServiceEvent::builder()
                .id("e-1")
                .message(format!("(service {name}) has started 4 tasks."))
                .build(),
        )
        .build()
}

const NO_ROOM: &str = "(service api) was unable to place a task. Reason: Capacity is unavailable at this time. Please try again later or in a different availability zone.";

#[tokio::test]
async fn a_service_counts_running_tasks_as_ready_and_says_why_tasks_cannot_be_placed() {
    let short = mock!(aws_sdk_ecs::Client::describe_services)
        .match_requests(|r| r.cluster() == Some("apps") && r.services() == ["api"])
        .then_output(|| {
            DescribeServicesOutput::builder()
                .services(service("api", "ACTIVE", 6, 2, 1, NO_ROOM))
                .build()
        });
    let steady = mock!(aws_sdk_ecs::Client::describe_services)
        .match_requests(|r| r.services() == ["web"])
        .then_output(|| {
            DescribeServicesOutput::builder()
                .services(service(
                    "web",
                    "ACTIVE",
                    4,
                    4,
                    0,
                    "(service web) has reached a steady state.",
                ))
                .build()
        });
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&short, &steady]);
    let services = EcsServices::with_client(client);
    assert_eq!(
        services.service("apps", "api").await.unwrap(),
        Some(GroupState {
            size: GroupSize {
                min: 6,
                desired: 6,
                max: 6
            },
            healthy: 2,
            launching: 1,
            last_failure: Some(NO_ROOM.into()),
            steady: false,
        }),
        "RUNNING tasks are ready, PENDING ones still coming; the newest event says why it is short"
    );
    let web = services.service("apps", "web").await.unwrap().unwrap();
    assert_eq!((web.healthy, web.last_failure, web.steady), (4, None, true));
}

#[tokio::test]
async fn a_missing_deleted_or_clusterless_service_is_none() {
    let missing = mock!(aws_sdk_ecs::Client::describe_services)
        .match_requests(|r| r.services() == ["gone"])
        .then_output(|| {
            DescribeServicesOutput::builder()
                .failures(
                    Failure::builder()
                        .arn("arn:aws:ecs:us-west-2:123456789012:service/apps/gone")
                        .reason("MISSING")
                        .build(),
                )
                .build()
        });
    let draining = mock!(aws_sdk_ecs::Client::describe_services)
        .match_requests(|r| r.services() == ["old"])
        .then_output(|| {
            DescribeServicesOutput::builder()
                .services(service("old", "INACTIVE", 0, 0, 0, "(service old) has been deleted."))
                .build()
        });
    let no_cluster = mock!(aws_sdk_ecs::Client::describe_services)
        .match_requests(|r| r.cluster() == Some("nowhere"))
        .then_error(|| {
            DescribeServicesError::ClusterNotFoundException(
                ClusterNotFoundException::builder()
                    .message("Cluster not found.")
                    .build(),
            )
        });
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&missing, &draining, &no_cluster]);
    let services = EcsServices::with_client(client);
    assert_eq!(services.service("apps", "gone").await.unwrap(), None);
    assert_eq!(
        services.service("apps", "old").await.unwrap(),
        None,
        "a deleted service"
    );
    assert_eq!(services.service("nowhere", "api").await.unwrap(), None);
}

#[tokio::test]
async fn a_plan_resizes_a_service_by_its_desired_count_and_a_group_by_its_bounds() {
    let update = mock!(aws_sdk_ecs::Client::update_service)
        .match_requests(|r| r.cluster() == Some("apps") && r.service() == Some("api") && r.desired_count() == Some(6))
        .then_output(|| UpdateServiceOutput::builder().build());
    let resize = mock!(aws_sdk_autoscaling::Client::update_auto_scaling_group)
        .match_requests(|r| {
            r.auto_scaling_group_name() == Some("web")
                && (r.min_size(), r.desired_capacity(), r.max_size()) == (Some(10), Some(10), Some(20))
        })
        .then_output(|| UpdateAutoScalingGroupOutput::builder().build());
    let capacity = AppCapacity {
        groups: AutoScaling::with_client(mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, [&resize])),
        services: EcsServices::with_client(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&update])),
    };
    let ecs = CapacityKind::EcsService { cluster: "apps".into() };
    capacity
        .resize(
            &ecs,
            "api",
            GroupSize {
                min: 6,
                desired: 6,
                max: 6,
            },
        )
        .await
        .unwrap();
    capacity
        .resize(
            &CapacityKind::AutoScalingGroup,
            "web",
            GroupSize {
                min: 10,
                desired: 10,
                max: 20,
            },
        )
        .await
        .unwrap();
    assert_eq!((update.num_calls(), resize.num_calls()), (1, 1));
}
