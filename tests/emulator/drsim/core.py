"""The simulator's state: per-region settings, the clock that moves the models, region
outages, injected faults and the wire log.

One re-entrant lock guards moto's backends and the models: every request to moto and every
clock tick holds it, so a model never sees a half-applied request. Injected latency and
outage holds sleep outside it.
"""

import copy
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

ACCOUNT = "123456789012"

# What a region does unless a test says otherwise. Times are real seconds on the test bed;
# a scenario that scales AWS's timeline down (e.g. 60 s periods -> 2 s) scales these too.
DEFAULTS: dict[str, Any] = {
    # PromoteReadReplica: `modifying` this long, then `available` and detached from its source.
    # AWS: "the read replica is rebooted and becomes available as a standalone instance"; it
    # takes minutes (RDS User Guide, "Promoting a read replica to be a standalone DB instance").
    "promotion_seconds": 2.0,
    # RebootDBInstance: `rebooting` this long (AWS: usually a minute or two).
    "reboot_seconds": 2.0,
    # Snapshot copies: `pending` then `copying` (with PercentProgress) for this long, then
    # `available`. 0 keeps moto's instant copies. AWS: minutes to hours.
    "copy_seconds": 0.0,
    # RestoreDBInstanceFromDBSnapshot, RestoreDBClusterFromSnapshot and CreateDBInstance into a
    # cluster: `creating` for most of this long, then `backing-up`, then `available`. 0 keeps
    # moto's instant databases. AWS: minutes to tens of minutes, growing with the data.
    "restore_seconds": 0.0,
    # CreateDBInstanceReadReplica: `creating` for most of this long, then `backing-up`, then
    # `available` and replicating. 0 keeps moto's instant replicas (what test set-ups want).
    # AWS: a snapshot of the source, copied to the replica's region and restored: tens of
    # minutes, growing with the data (RDS User Guide, "Creating a read replica").
    "replica_create_seconds": 0.0,
    # DeleteDBInstance / DeleteDBCluster: `deleting` this long, then gone. 0 keeps moto's
    # instant deletes. AWS: minutes.
    "delete_seconds": 0.0,
    # AWS: "You can have up to 20 snapshot copy requests in progress to a single destination
    # Region per account" (RDS User Guide, "Copying a DB snapshot"); the next one is refused
    # with SnapshotQuotaExceeded.
    "copy_quota": 20,
    # FailoverGlobalCluster / SwitchoverGlobalCluster: `failing-over` / `switching-over` this long.
    "global_switch_seconds": 2.0,
    # After a failover with data loss, the old primary cluster rejoins the global database as a
    # secondary once its region answers: Aurora rebuilds it from the new primary
    # (SynchronizationStatus pending-resync, then connected) for this long. AWS: minutes to
    # hours, with the volume.
    "global_resync_seconds": 0.0,
    # Route 53: a change is PENDING this long before INSYNC (AWS: usually within 60 s). Route 53
    # is global: its settings live under the region name "global".
    "dns_propagation_seconds": 0.0,
    # Replication: RDS publishes ReplicaLag / AuroraGlobalDB*Lag for replicas in this region
    # every `metric_period` seconds (AWS: every 60 s). Off by default: tests that put those
    # datapoints themselves keep working.
    "rds_metrics": False,
    "metric_period": 60,
    # A primary's writes per second, unless set for it.
    "write_rate": 10.0,
    # CloudWatch evaluates the region's metric alarms on their periods and delivers state
    # changes (EventBridge event, alarm actions). Off leaves alarms as moto keeps them
    # (SetAlarmState only).
    "alarm_evaluation": True,
    # Auto Scaling (autoscaling.py): a launched instance is Pending this long before InService
    # (0 keeps moto's instant launches; AWS: minutes), and how many instances the region's
    # groups can run in all before launches fail for want of capacity (None: no limit).
    "asg_launch_seconds": 0.0,
    "asg_capacity": None,
    # ECS (ecs.py): a started task is PENDING this long before RUNNING (0 keeps moto's instant
    # tasks; AWS: a minute or so to pull the image and start), and how many tasks the region's
    # services can run in all before placements fail for want of capacity (None: no limit).
    "ecs_task_start_seconds": 0.0,
    "ecs_capacity": None,
    # How many times each state change is delivered per channel: EventBridge, SNS and Lambda
    # all deliver at least once, and sometimes more (their documentation says so).
    "deliveries": {"eventbridge": 1, "sns": 1, "lambda": 1},
}


def now() -> float:
    return time.time()


@dataclass
class Outage:
    """A region that does not answer: every request signed for it fails as `mode` says."""

    mode: str = "reset"  # reset | timeout | unavailable
    hold_seconds: float = 30.0  # timeout: how long a request hangs before the connection drops
    include_global: bool = False  # also fail global services signed for this region (Route 53)
    writes_continue: bool = False  # the primary keeps taking writes inside the dark region
    # A network partition: the region is cut off from the other AWS regions (its API, as
    # drpilot in the DR region calls it, and cross-region replication), not from the
    # internet. Route 53's health checkers, which probe endpoints over the internet from
    # their own regions, still reach it; its databases keep taking writes.
    partition: bool = False
    since: float = field(default_factory=now)


@dataclass
class Fault:
    id: int
    service: str | None = None
    region: str | None = None
    action: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    # throttle | error | latency | reset | timeout (before AWS handles the request) | lost (AWS
    # handles it, then the connection drops: the caller never learns that it succeeded)
    mode: str = "throttle"
    status: int | None = None
    code: str | None = None
    message: str | None = None
    latency_ms: float = 0.0  # before AWS handles the request
    hold_ms: float = 0.0  # after AWS handled it, before the answer leaves
    count: int | None = None  # how many matching requests; None: until removed
    probability: float = 1.0
    hits: int = 0

    def matches(self, req: "Request") -> bool:
        if self.count is not None and self.hits >= self.count:
            return False
        if self.service and self.service != req.service:
            return False
        if self.region and self.region != req.region:
            return False
        if self.action and self.action != req.action:
            return False
        return all(req.params.get(k) == v for k, v in self.params.items())


@dataclass
class Request:
    region: str | None
    service: str | None
    action: str | None
    params: dict[str, str]
    protocol: str  # query | json | rest-xml | rest-json | none
    access_key: str | None = None  # from the SigV4 credential: whose account it is
    account: str | None = None


class Sim:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.regions: dict[str, dict[str, Any]] = {}
        self.outages: dict[str, Outage] = {}
        self.faults: list[Fault] = []
        self._fault_ids = 0
        self.wire: list[dict[str, Any]] = []
        self._seq = 0
        self.rng = random.Random(7)
        self.tickers: list[Callable[[float], None]] = []
        self.started = now()

    # -- settings --------------------------------------------------------------------------
    def cfg(self, region: str | None, key: str) -> Any:
        if region and key in self.regions.get(region, {}):
            return self.regions[region][key]
        if key in self.regions.get("*", {}):
            return self.regions["*"][key]
        return DEFAULTS[key]

    def configure(self, region: str, values: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(values) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"unknown settings {unknown}; known: {sorted(DEFAULTS)}")
        self.regions.setdefault(region, {}).update(copy.deepcopy(values))
        return self.settings(region)

    def settings(self, region: str) -> dict[str, Any]:
        return {k: self.cfg(region, k) for k in DEFAULTS}

    # -- outages ---------------------------------------------------------------------------
    def dark(self, region: str | None) -> Outage | None:
        return self.outages.get(region) if region else None

    def outage_for(self, req: Request) -> Outage | None:
        outage = self.dark(req.region)
        if outage is None:
            return None
        if req.service in GLOBAL_SERVICES and not outage.include_global:
            return None
        return outage

    # -- faults ----------------------------------------------------------------------------
    def add_fault(self, spec: dict[str, Any]) -> Fault:
        self._fault_ids += 1
        known = set(Fault.__dataclass_fields__) - {"id", "hits"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(f"unknown fault fields {unknown}; known: {sorted(known)}")
        fault = Fault(id=self._fault_ids, **spec)
        if fault.mode not in ("throttle", "error", "latency", "reset", "timeout", "lost"):
            raise ValueError(f"unknown fault mode {fault.mode!r}")
        self.faults.append(fault)
        return fault

    def take_fault(self, req: Request) -> Fault | None:
        with self.lock:  # two requests at once must not both take a fault of count 1
            for fault in self.faults:
                if fault.matches(req) and self.rng.random() < fault.probability:
                    fault.hits += 1
                    return fault
        return None

    # -- the wire log ----------------------------------------------------------------------
    def record(self, req: Request, status: int, error: str | None, outcome: str, started: float) -> None:
        with self.lock:
            self._seq += 1
            self.wire.append(
                {
                    "seq": self._seq,
                    "at": started,
                    "ms": round((now() - started) * 1000, 1),
                    "region": req.region,
                    "account": req.account,
                    "access_key": req.access_key,
                    "service": req.service,
                    "action": req.action,
                    "params": req.params,
                    "status": status,
                    "error": error,
                    "outcome": outcome,
                }
            )

    def wire_since(self, since: int, match: dict[str, str]) -> list[dict[str, Any]]:
        with self.lock:
            # seq is the index + 1, so the slice starts where the reader left off.
            out = self.wire[since:]
        return [e for e in out if all(str(e.get(k)) == v for k, v in match.items())]

    # -- the clock -------------------------------------------------------------------------
    def run_clock(self, interval: float = 0.05) -> None:
        def loop() -> None:
            while True:
                t = now()
                with self.lock:
                    for tick in self.tickers:
                        try:
                            tick(t)
                        except Exception as e:  # a model bug must not stop time
                            print(f"drsim: clock tick failed: {e!r}", flush=True)
                time.sleep(interval)

        threading.Thread(target=loop, name="drsim-clock", daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.regions.clear()
            self.outages.clear()
            self.faults.clear()


# Services whose API is global (signed for us-east-1 whatever the caller's region). A region
# outage leaves them answering unless the outage says `include_global`: Route 53's control
# plane lives in us-east-1, and an outage there can take it too (AWS recommends data-plane
# failover for that reason: "Creating Disaster Recovery Mechanisms Using Amazon Route 53").
GLOBAL_SERVICES = {"route53", "iam", "cloudfront", "organizations"}

SIM = Sim()
