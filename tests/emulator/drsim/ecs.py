"""ECS services on AWS's timeline, and a region short of capacity for their tasks.

Starting tasks takes time. moto sets a service's ``runningCount`` to its new desired count the
moment UpdateService is asked (and leaves a new service's tasks pending for ever). AWS's
service scheduler starts the missing tasks: they are PENDING while their image is pulled and
their containers start, and count in ``runningCount`` once RUNNING (Amazon ECS Developer
Guide, "Amazon ECS task lifecycle"; DescribeServices: "runningCount: The number of tasks in
the cluster that are in the RUNNING state"). A started task is pending for
``ecs_task_start_seconds`` (0 keeps moto's instant tasks). Fewer wanted stops the extra tasks
at once (AWS drains them for the load balancer's deregistration delay first; nothing here
waits on a scale-down).

A region can be out of capacity. AWS then cannot place the task and says so in the service's
events, newest first, and its scheduler tries again while the service is short (Developer
Guide, "Amazon ECS service event messages": for Fargate, "(service name) was unable to place
a task. Reason: Capacity is unavailable at this time. Please try again later or in a
different availability zone."; the test bed's services are Fargate ones). ``ecs_capacity`` (None: unlimited) is how many tasks the region's
services can run in all (running and pending); placements beyond it fail that way, and are
tried again on each tick, so raising the setting lets the service fill up as capacity
returns. A service that has all its tasks running says "(service name) has reached a steady
state.", as AWS's does.
"""

import time
import uuid
from datetime import datetime, timezone
from typing import Any

from moto.ecs.models import EC2ContainerServiceBackend, Service

from .core import SIM

NO_CAPACITY = (
    "(service {name}) was unable to place a task. Reason: Capacity is unavailable at this time. "
    "Please try again later or in a different availability zone."
)


class Services:
    def __init__(self) -> None:
        # every service the model tracks, by (account, region, cluster, name)
        self.services: dict[tuple[str, str, str, str], Service] = {}
        self.starting: dict[tuple[str, str, str, str], list[float]] = {}  # when each pending task runs
        self.short: set[tuple[str, str, str, str]] = set()

    @staticmethod
    def key(s: Service) -> tuple[str, str, str, str]:
        return (s._account_id, s.region_name, s.cluster_name, s.name)

    def event(self, s: Service, message: str) -> None:
        # AWS lists a service's events newest first
        s.events.insert(
            0, {"id": str(uuid.uuid4()), "createdAt": datetime.now(timezone.utc), "message": message}
        )

    def tasks_in(self, account: str, region: str) -> int:
        return sum(
            s.running_count + len(self.starting.get(k, []))
            for k, s in self.services.items()
            if k[0] == account and k[1] == region
        )

    def place(self, s: Service) -> None:
        """Starts the tasks the service is short of, as many as the region has room for."""
        k = self.key(s)
        self.services[k] = s
        pending = self.starting.setdefault(k, [])
        wanted = max(0, int(s.desired_count or 0))
        if s.running_count > wanted:
            s.running_count = wanted
        del pending[max(0, wanted - s.running_count) :]
        short = wanted - s.running_count - len(pending)
        if short > 0:
            capacity = SIM.cfg(s.region_name, "ecs_capacity")
            room = short if capacity is None else max(0, int(capacity) - self.tasks_in(k[0], k[1]))
            started = min(short, room)
            wait = float(SIM.cfg(s.region_name, "ecs_task_start_seconds"))
            pending.extend([time.time() + wait] * started)
            if started:
                self.event(s, f"(service {s.name}) has started {started} tasks.")
            if started < short:
                if k not in self.short or not s.events[0]["message"].startswith(f"(service {s.name}) was unable"):
                    self.event(s, NO_CAPACITY.format(name=s.name))
                self.short.add(k)
            else:
                self.short.discard(k)
        else:
            self.short.discard(k)
        self.counts(s)

    def counts(self, s: Service) -> None:
        s.pending_count = len(self.starting.get(self.key(s), []))
        # a new desired count starts no deployment: the primary one's counts follow
        for d in s.deployments[:1]:
            d.update(desiredCount=s.desired_count, runningCount=s.running_count, pendingCount=s.pending_count)

    def tick(self, t: float) -> None:
        for k, s in list(self.services.items()):
            pending = self.starting.get(k, [])
            due = [at for at in pending if at <= t]
            if due:
                self.starting[k] = [at for at in pending if at > t]
                s.running_count += len(due)
                self.counts(s)
                if s.running_count >= s.desired_count:
                    self.event(s, f"(service {s.name}) has reached a steady state.")
            if k in self.short:
                self.place(s)


SERVICES = Services()


def install() -> None:
    create = EC2ContainerServiceBackend.create_service
    update = EC2ContainerServiceBackend.update_service

    def create_service(self: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Service:
        s = create(self, *args, **kwargs)
        s.running_count = 0
        SERVICES.starting.pop(SERVICES.key(s), None)
        SERVICES.place(s)
        return s

    def update_service(self: EC2ContainerServiceBackend, props: dict[str, Any]) -> Service:
        cluster = props.get("cluster", "default")
        name = str(props.get("service", "")).split("/")[-1]
        before = self._get_service(cluster, name).running_count
        s = update(self, props)
        s.running_count = before  # moto's instant tasks undone: the scheduler starts them
        SERVICES.place(s)
        return s

    EC2ContainerServiceBackend.create_service = create_service  # type: ignore[method-assign]
    EC2ContainerServiceBackend.update_service = update_service  # type: ignore[method-assign]
    SIM.tickers.append(SERVICES.tick)
