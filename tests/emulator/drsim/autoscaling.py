"""Auto Scaling groups on AWS's timeline, and a region short of capacity.

Launching takes time. moto puts a group's new instances InService the moment its desired
capacity grows; AWS launches them ``Pending`` and moves them to ``InService`` once they have
booted and passed the group's lifecycle hooks, usually minutes later (EC2 Auto Scaling User
Guide, "Amazon EC2 Auto Scaling instance lifecycle"). A launched instance is
``Pending`` for ``asg_launch_seconds`` (0 keeps moto's instant launches).

A region can be out of capacity: in a region-wide event everyone scales up in the same DR
region at once. AWS then records a failed scaling activity ("Launching a new EC2 instance.
Status Reason: We currently do not have sufficient <type> capacity in the Availability Zone
you requested ...", EC2 error InsufficientInstanceCapacity), keeps the group's desired
capacity, and tries again later (User Guide, "Troubleshoot Amazon EC2 Auto Scaling: EC2
instance launch failures"). moto never fails a launch and records no scaling activities
(DescribeScalingActivities answers an empty list). ``asg_capacity`` (None: unlimited) is how
many instances the region's Auto Scaling groups can run in all; launches beyond it fail as
AWS's do, and are tried again on each tick while the group is short, so raising the setting
lets the group fill up as capacity returns.

DescribeScalingActivities answers this model's activities for the group, newest first.
"""

import time
import uuid
from datetime import datetime, timezone
from typing import Any

from moto.autoscaling.models import FakeAutoScalingGroup
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult

from .core import SIM

SHORT = (
    "Launching a new EC2 instance. Status Reason: We currently do not have sufficient {type} capacity "
    "in the Availability Zone you requested ({az}). Our system will be working on provisioning additional "
    "capacity. You can currently get {type} capacity by not specifying an Availability Zone in your request "
    "or choosing a different Availability Zone. Launching EC2 instance failed."
)


def _iso(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


class Groups:
    def __init__(self) -> None:
        # every group the model has launched for, by (account, region, name)
        self.groups: dict[tuple[str, str, str], FakeAutoScalingGroup] = {}
        self.ready_at: dict[str, float] = {}  # instance id -> when it goes InService
        self.activities: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self.short_since: dict[tuple[str, str, str], float] = {}

    @staticmethod
    def key(group: FakeAutoScalingGroup) -> tuple[str, str, str]:
        return (group.account_id, group.region, group.name)

    def running_in(self, account: str, region: str) -> int:
        return sum(
            len(g.instance_states) for (a, r, _), g in self.groups.items() if a == account and r == region
        )

    def activity(self, group: FakeAutoScalingGroup, status: str, description: str, message: str = "") -> None:
        t = time.time()
        self.activities.setdefault(self.key(group), []).append(
            {
                "ActivityId": str(uuid.uuid4()),
                "AutoScalingGroupName": group.name,
                "AutoScalingGroupARN": group.arn,
                "Description": description,
                "Cause": f"At {_iso(t):%Y-%m-%dT%H:%M:%SZ} an instance was started in response to a difference "
                f"between desired and actual capacity, increasing the capacity to {group.desired_capacity}.",
                "StartTime": _iso(t),
                "EndTime": _iso(t),
                "StatusCode": status,
                "StatusMessage": message,
                "Progress": 100,
            }
        )

    def launch(self, group: FakeAutoScalingGroup, count: int, propagated: dict[str, str], original: Any) -> None:
        key = self.key(group)
        self.groups[key] = group
        capacity = SIM.cfg(group.region, "asg_capacity")
        room = count if capacity is None else max(0, int(capacity) - self.running_in(group.account_id, group.region))
        launched = min(count, room)
        before = {s.instance.id for s in group.instance_states}
        if launched > 0:
            original(group, launched, propagated)
        wait = float(SIM.cfg(group.region, "asg_launch_seconds"))
        for s in group.instance_states:
            if s.instance.id in before:
                continue
            if wait > 0:
                s.lifecycle_state = "Pending"
                self.ready_at[s.instance.id] = time.time() + wait
            self.activity(group, "Successful", f"Launching a new EC2 instance: {s.instance.id}")
        if launched < count:
            # a failed activity when the shortage begins, and again after any launch that got
            # through meanwhile: AWS logs each failed attempt, so the newest activity says why
            # the group is still short (the tick tries again while it lasts)
            newest = (self.activities.get(key) or [{}])[-1]
            if key not in self.short_since or newest.get("StatusCode") != "Failed":
                self.short_since.setdefault(key, time.time())
                az = (group.availability_zones or [f"{group.region}a"])[0]
                self.activity(
                    group,
                    "Failed",
                    "Launching a new EC2 instance.  Status Reason: InsufficientInstanceCapacity",
                    SHORT.format(type=group.instance_type or "t3.micro", az=az),
                )
        else:
            self.short_since.pop(key, None)

    def tick(self, t: float) -> None:
        for key, group in list(self.groups.items()):
            for s in group.instance_states:
                due = self.ready_at.get(s.instance.id)
                if due is not None and t >= due and s.lifecycle_state == "Pending":
                    s.lifecycle_state = "InService"
                    del self.ready_at[s.instance.id]
            short = (group.desired_capacity or 0) - len(group.instance_states)
            if short > 0 and key in self.short_since:
                group.replace_autoscaling_group_instances(short, group.get_propagated_tags())


GROUPS = Groups()


def install() -> None:
    original = FakeAutoScalingGroup.replace_autoscaling_group_instances

    def replace(self: FakeAutoScalingGroup, count_needed: int, propagated_tags: dict[str, str]) -> None:
        GROUPS.launch(self, count_needed, propagated_tags, original)

    def active_instances(self: FakeAutoScalingGroup) -> list[Any]:
        # AWS counts launching instances toward the desired capacity: a second update while
        # they boot must not launch them again.
        return [s for s in self.instance_states if s.lifecycle_state in ("Pending", "InService")]

    def describe_scaling_activities(self: AutoScalingResponse) -> ActionResult:
        name = self._get_param("AutoScalingGroupName")
        region = self.region
        found = [
            a
            for (account, r, n), acts in GROUPS.activities.items()
            if r == region and n == name and account == self.current_account
            for a in acts
        ]
        return ActionResult({"Activities": list(reversed(found))})

    FakeAutoScalingGroup.replace_autoscaling_group_instances = replace  # type: ignore[method-assign]
    FakeAutoScalingGroup.active_instances = active_instances  # type: ignore[method-assign]
    AutoScalingResponse.describe_scaling_activities = describe_scaling_activities  # type: ignore[method-assign]
    SIM.tickers.append(GROUPS.tick)
