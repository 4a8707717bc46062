//! A database's recovery plan after its promotion: how much capacity to ask for, when it is
//! ready, and whether DNS may switch without it. Pure: the promoter brings AWS's answers.

use crate::model::{CapacityKind, GroupSize};
use crate::plan::lag::human_seconds;

/// What AWS reports of an Auto Scaling group now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    pub size: GroupSize,
    /// Instances `InService` and `Healthy`.
    pub healthy: u32,
    /// Instances still launching (`Pending`, or `InService` and not yet healthy).
    pub launching: u32,
    /// AWS's words on the newest scaling activity that failed, if the newest one did.
    pub last_failure: Option<String>,
    /// AWS says it has settled: an ECS service's newest event is "has reached a steady state"
    /// (its tasks running and passing their health checks at the desired count). Always
    /// `true` for an Auto Scaling group, whose instances report their own health.
    pub steady: bool,
}

/// The size to ask for: the plan's, but never smaller than the group is now in any bound (a
/// scaling policy may have grown it already; a failover never shrinks anything). `None`: the
/// group is already at least that big, nothing to ask.
pub fn scale_up(now: GroupSize, plan: GroupSize) -> Option<GroupSize> {
    let desired = now.desired.max(plan.desired);
    let want = GroupSize {
        min: now.min.max(plan.min),
        desired,
        max: now.max.max(plan.max).max(desired),
    };
    (want != now).then_some(want)
}

/// Ready when as many instances are healthy as the plan asked for (or the group's own desired
/// capacity, if a policy has set it lower since: AWS is not going to launch more then, and the
/// group's min, which drpilot raised, keeps a policy from going below the plan's).
///
/// An ECS service has no floor of drpilot's: its Application Auto Scaling target may scale it
/// back in below the plan, so it is ready only at the plan's count or more, once ECS says it
/// has reached a steady state (RUNNING tasks alone may still be failing their health checks).
pub fn ready(state: &GroupState, wanted: u32, kind: &CapacityKind) -> bool {
    match kind {
        CapacityKind::AutoScalingGroup => state.healthy >= wanted.min(state.size.desired.max(1)),
        CapacityKind::EcsService { .. } => state.size.desired >= wanted && state.healthy >= wanted && state.steady,
    }
}

/// "7 of 10 healthy, 3 launching" (a service's tasks: "4 of 6 running, 2 pending") and AWS's
/// reason when launches fail.
pub fn describe(state: &GroupState, wanted: u32, kind: &CapacityKind) -> String {
    let (ready, coming, desired) = match kind {
        CapacityKind::AutoScalingGroup => ("healthy", "launching", "desired capacity"),
        CapacityKind::EcsService { .. } => ("running", "pending", "desired count"),
    };
    let mut s = format!("{} of {wanted} {ready}", state.healthy);
    if state.launching > 0 {
        s.push_str(&format!(", {} {coming}", state.launching));
    }
    if state.size.desired < wanted {
        s.push_str(&format!(" ({desired} is {})", state.size.desired));
    } else if !state.steady && state.healthy >= wanted {
        s.push_str(" (not in a steady state yet)");
    }
    if let Some(why) = &state.last_failure {
        s.push_str(&format!("; the last launch failed: {why}"));
    }
    s
}

/// Whether DNS may switch, given the capacity steps' progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapacityGate {
    /// Every group is ready.
    Ready,
    /// Not yet, and still within the plan's wait.
    Wait,
    /// The wait is over (or every group left cannot be scaled) and the plan is not strict, or
    /// an operator let DNS go: switch without it (a degraded application beats a dead region).
    /// Why, for the record and the notice: "<reason>: <each group>".
    SwitchWithout(String),
    /// The wait is over (or every group left cannot be scaled) and the plan is strict: DNS
    /// waits for capacity (responders are told).
    Hold(String),
}

/// The gate's reason when every group left cannot be scaled (a configuration error).
pub const CANNOT_BE_SCALED: &str = "cannot be scaled";

/// A group not ready yet: what AWS shows, and whether waiting can fix it (`broken`: the group
/// does not exist, or drpilot may not read or scale it: a configuration error, not capacity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unready {
    pub what: String,
    pub broken: bool,
}

/// `waited`: seconds since the standby was promoted; `unready`: each group not ready yet;
/// `waived`: an operator said to switch without it. Waiting is pointless once every group
/// left is broken: the plan's wait is then over at once.
pub fn capacity_gate(waited: f64, wait: f64, strict: bool, unready: &[Unready], waived: Option<&str>) -> CapacityGate {
    if unready.is_empty() {
        return CapacityGate::Ready;
    }
    let what = unready.iter().map(|u| u.what.as_str()).collect::<Vec<_>>().join("; ");
    if let Some(by) = waived {
        return CapacityGate::SwitchWithout(format!("{by} let DNS switch without it: {what}"));
    }
    let why = if unready.iter().all(|u| u.broken) {
        format!("{CANNOT_BE_SCALED}: {what}")
    } else if waited < wait {
        return CapacityGate::Wait;
    } else {
        format!("not ready {} after promotion: {what}", human_seconds(wait))
    };
    if strict {
        CapacityGate::Hold(why)
    } else {
        CapacityGate::SwitchWithout(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(min: u32, desired: u32, max: u32) -> GroupSize {
        GroupSize { min, desired, max }
    }

    fn state(desired: u32, healthy: u32, launching: u32) -> GroupState {
        GroupState {
            size: size(2, desired, 20),
            healthy,
            launching,
            last_failure: None,
            steady: true,
        }
    }

    #[test]
    fn scaling_up_never_shrinks_any_bound() {
        assert_eq!(scale_up(size(2, 2, 4), size(10, 10, 20)), Some(size(10, 10, 20)));
        // a policy grew it past the plan already: keep what it has, raise only the floor
        assert_eq!(scale_up(size(2, 14, 30), size(10, 10, 20)), Some(size(10, 14, 30)));
        // the plan's max below its desired is raised to fit
        assert_eq!(scale_up(size(1, 1, 2), size(0, 5, 3)), Some(size(1, 5, 5)));
        assert_eq!(
            scale_up(size(10, 12, 20), size(10, 10, 20)),
            None,
            "already there: ask nothing"
        );
    }

    #[test]
    fn ready_counts_healthy_instances_against_what_was_asked() {
        assert!(!ready(&state(10, 7, 3), 10, &ASG));
        assert!(ready(&state(10, 10, 0), 10, &ASG));
        assert!(ready(&state(12, 10, 2), 10, &ASG), "more than asked is not needed");
        assert!(
            ready(&state(6, 6, 0), 10, &ASG),
            "a policy set it lower since: AWS launches no more"
        );
        assert!(
            !ready(&state(0, 0, 0), 10, &ASG),
            "a group scaled to nothing is never ready"
        );
    }

    const ASG: CapacityKind = CapacityKind::AutoScalingGroup;

    #[test]
    fn a_service_is_ready_only_at_the_plans_count_once_ecs_says_it_is_steady() {
        let service = CapacityKind::EcsService { cluster: "apps".into() };
        assert!(ready(&state(6, 6, 0), 6, &service));
        assert!(
            !ready(&state(4, 4, 0), 6, &service),
            "scaled back in below the plan (its Application Auto Scaling target): not ready"
        );
        let mut starting = state(6, 6, 0);
        starting.steady = false;
        assert!(
            !ready(&starting, 6, &service),
            "running, not yet passing its health checks"
        );
        assert_eq!(
            describe(&starting, 6, &service),
            "6 of 6 running (not in a steady state yet)"
        );
    }

    #[test]
    fn the_description_says_what_is_missing_and_why() {
        let mut s = state(10, 7, 1);
        s.last_failure = Some("We currently do not have sufficient t3.large capacity".into());
        assert_eq!(
            describe(&s, 10, &CapacityKind::AutoScalingGroup),
            "7 of 10 healthy, 1 launching; the last launch failed: We currently do not have sufficient t3.large capacity"
        );
        let service = CapacityKind::EcsService { cluster: "apps".into() };
        let mut tasks = state(4, 2, 1);
        tasks.last_failure =
            Some("(service api) was unable to place a task. Reason: Capacity is unavailable at this time.".into());
        assert_eq!(
            describe(&tasks, 6, &service),
            "2 of 6 running, 1 pending (desired count is 4); the last launch failed: (service api) was unable to place a task. Reason: Capacity is unavailable at this time."
        );
    }

    #[test]
    fn dns_waits_within_the_wait_then_switches_unless_strict() {
        let short = vec![Unready {
            what: "asg web: 7 of 10 healthy".to_string(),
            broken: false,
        }];
        assert_eq!(capacity_gate(30.0, 600.0, false, &[], None), CapacityGate::Ready);
        assert_eq!(capacity_gate(30.0, 600.0, false, &short, None), CapacityGate::Wait);
        assert_eq!(capacity_gate(30.0, 600.0, true, &short, None), CapacityGate::Wait);
        match capacity_gate(601.0, 600.0, false, &short, None) {
            CapacityGate::SwitchWithout(why) => {
                assert_eq!(why, "not ready 10m after promotion: asg web: 7 of 10 healthy")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            capacity_gate(601.0, 600.0, true, &short, None),
            CapacityGate::Hold(_)
        ));
        match capacity_gate(900.0, 600.0, true, &short, Some("alice")) {
            CapacityGate::SwitchWithout(why) => assert!(why.starts_with("alice let DNS switch without it")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_group_that_cannot_be_scaled_ends_the_wait_at_once_unless_another_is_still_coming() {
        let missing = Unready {
            what: "web: no such Auto Scaling group in the DR region".into(),
            broken: true,
        };
        let coming = Unready {
            what: "api: 2 of 4 healthy, 2 launching".into(),
            broken: false,
        };
        assert_eq!(
            capacity_gate(5.0, 600.0, false, std::slice::from_ref(&missing), None),
            CapacityGate::SwitchWithout("cannot be scaled: web: no such Auto Scaling group in the DR region".into())
        );
        assert!(matches!(
            capacity_gate(5.0, 600.0, true, std::slice::from_ref(&missing), None),
            CapacityGate::Hold(why) if why.starts_with("cannot be scaled")
        ));
        assert_eq!(
            capacity_gate(5.0, 600.0, false, &[missing.clone(), coming.clone()], None),
            CapacityGate::Wait,
            "the other group may still come"
        );
        assert!(matches!(
            capacity_gate(601.0, 600.0, false, &[missing, coming], None),
            CapacityGate::SwitchWithout(why) if why.starts_with("not ready 10m after promotion: web: no such")
        ));
    }
}
