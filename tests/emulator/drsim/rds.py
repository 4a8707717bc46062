"""RDS as it behaves over time: promotions, reboots and maintenance, snapshot copies in flight
with their quota, Aurora global failover and switchover, and replication that lags, pauses
and breaks, with the lag metrics RDS publishes.

moto keeps the models (instances, clusters, snapshots); this module changes what they say
while time passes, and patches the few calls where moto's answer is not AWS's.
"""

import bisect
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from moto.core.responses import ActionResult
from moto.rds.exceptions import DBClusterNotFoundError, DBInstanceNotFoundError, RDSClientError
from moto.rds.models import DBCluster, GlobalCluster, RDSBackend, rds_backends
from moto.rds.responses import RDSResponse

from .cloudwatch import epoch
from .core import ACCOUNT, SIM, now

# Instance and cluster states in which the database takes writes (and a replica applies them).
# AWS keeps serving through these (RDS User Guide, "Viewing Amazon RDS DB instance status").
SERVING = {
    "available",
    "backing-up",
    "modifying",
    "storage-optimization",
    "configuring-enhanced-monitoring",
    "configuring-iam-database-auth",
    "configuring-log-exports",
}


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


@dataclass
class Writes:
    """A primary's write position: it advances while the primary takes writes."""

    rate: float | None = None  # writes per second; None: the region's `write_rate`
    read_only: bool = False
    position: float = 0.0
    last_write_at: float | None = None
    history: list[tuple[float, float]] = field(default_factory=list)  # (time, position)

    # The primary writes continuously while it takes writes; the history holds the position at
    # each clock tick (and where a stretch of writing began), and the position between two
    # points is on the line between them. Read only at the points, a replica's position would
    # fall a whole tick interval behind whenever the clock is late (a loaded machine).
    def position_at(self, t: float) -> float:
        i = bisect.bisect_right(self.history, (t, float("inf")))
        if i == 0:
            return 0.0
        if i == len(self.history):
            return self.history[-1][1]
        (t0, p0), (t1, p1) = self.history[i - 1], self.history[i]
        return p0 + (p1 - p0) * (t - t0) / (t1 - t0) if t1 > t0 else p1

    def time_at(self, position: float) -> float | None:
        """When the primary reached `position` (None: it never wrote)."""
        i = bisect.bisect_left(self.history, position, key=lambda h: h[1])
        if i == len(self.history):
            return None
        t1, p1 = self.history[i]
        if i == 0 or p1 <= position:
            return t1
        t0, p0 = self.history[i - 1]
        return t0 + (t1 - t0) * (position - p0) / (p1 - p0)

    def write(self, t: float, dt: float, amount: float) -> None:
        """`amount` written over the `dt` seconds up to `t`."""
        if not self.history or self.history[-1][0] < t - dt - 1e-9:
            self.history.append((t - dt, self.position))  # a stretch of writing begins
        self.position += amount
        self.last_write_at = t
        self.history.append((t, self.position))
        if len(self.history) > 200_000:
            del self.history[: len(self.history) // 2]


@dataclass
class Follower:
    """A replica (or Aurora secondary) applying its primary's writes `lag` seconds behind."""

    lag: float = 1.0
    applied: float = 0.0
    broken_by_hand: bool = False
    link: str = "up"  # up | broken | not-running | promoted
    link_since: float = field(default_factory=now)
    primary: tuple | None = None
    promoted_at: float | None = None


@dataclass
class RdsEvent:
    """An RDS event the simulator reports (moto's own events are kept as they are)."""

    region: str
    source_identifier: str
    source_type: str
    message: str
    event_categories: list[str]
    source_arn: str
    date: datetime


@dataclass
class Hold:
    """A status held for a while (maintenance, a reboot, a promotion), then `then`."""

    status: str
    until: float
    then: str = "available"
    pauses_replication: bool = True


class Rds:
    def __init__(self) -> None:
        self.writes: dict[tuple, Writes] = {}
        self.followers: dict[tuple, Follower] = {}
        self.holds: dict[tuple, Hold] = {}
        self.promotions: dict[tuple, float] = {}  # replica -> when it becomes standalone
        # (region, kind, id, account) -> (start, seconds, snapshot, cross-region)
        self.copies: dict[tuple, tuple[float, float, Any, bool]] = {}
        self.max_in_flight: dict[str, int] = {}
        self.switches: dict[str, dict[str, Any]] = {}  # global cluster id -> switch in progress
        # Aurora clusters a failover left behind, being rebuilt as secondaries: (cluster key) ->
        # when the rebuild ends (None: their region has not answered yet)
        self.resync: dict[tuple, float | None] = {}
        self.published: dict[str, int] = {}  # region -> last metric period boundary published
        self.maintenance: dict[tuple, dict[str, Any]] = {}  # pending maintenance being applied
        self.rds_events: list[RdsEvent] = []
        # (kind, region, id, account) -> (start, seconds, node, KMS key): databases being made
        self.creating: dict[tuple, tuple[float, float, Any, str | None]] = {}
        # (kind, region, id, account) -> (due, finish): databases being deleted
        self.deleting: dict[tuple, tuple[float, Any]] = {}
        self.last_tick = now()

    # -- finding things in moto ---------------------------------------------------------------
    # Every account moto holds RDS resources for (the default one, and member accounts reached
    # through an assumed role). The models key resources by (kind, region, identifier): the test
    # bed names every resource uniquely, so an identifier finds its account.
    @staticmethod
    def accounts() -> list[str]:
        return [ACCOUNT] + [a for a in list(rds_backends.keys()) if a != ACCOUNT]

    @classmethod
    def backends(cls) -> list[tuple[str, RDSBackend]]:
        return [item for account in cls.accounts() for item in list(rds_backends[account].items())]

    @classmethod
    def account_of(cls, kind: str, region: str, ident: str) -> str | None:
        for account in cls.accounts():
            if region in rds_backends[account]:
                backend = rds_backends[account][region]
                if ident in (backend.databases if kind == "instance" else backend.clusters):
                    return account
        return None

    @classmethod
    def instance(cls, region: str, ident: str) -> Any:
        account = cls.account_of("instance", region, ident)
        if account is None:
            raise DBInstanceNotFoundError(ident)
        return rds_backends[account][region].databases[ident]

    @classmethod
    def cluster(cls, region: str, ident: str) -> Any:
        account = cls.account_of("cluster", region, ident)
        if account is None:
            raise DBClusterNotFoundError(ident)
        return rds_backends[account][region].clusters[ident]

    def node(self, key: tuple) -> Any:
        kind, region, ident = key
        return self.instance(region, ident) if kind == "instance" else self.cluster(region, ident)

    @staticmethod
    def resolve_source(region: str, source: str) -> tuple:
        if source.startswith("arn:"):
            parts = source.split(":")
            return ("instance", parts[3], parts[-1])
        return ("instance", region, source)

    def globals(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for _, backend in self.backends():
            found.update(backend.global_clusters)
        return found

    def pairs(self) -> list[tuple[tuple, tuple]]:
        """(primary, replica) for every cross- or in-region replica and Aurora secondary."""
        out = []
        for region, backend in self.backends():
            for ident, db in list(backend.databases.items()):
                source = getattr(db, "source_db_instance_identifier", None)
                if db.is_replica and source:
                    out.append((self.resolve_source(region, source), ("instance", region, ident)))
        for gc in self.globals().values():
            writer = next((m for m in gc.members if m.is_writer), None)
            if writer is None:
                continue
            for m in gc.members:
                key = ("cluster", m.region, m.db_cluster_identifier)
                if m is not writer and key not in self.resync:
                    out.append((("cluster", writer.region, writer.db_cluster_identifier), key))
        return out

    # -- replication ------------------------------------------------------------------------
    def serving(self, key: tuple) -> bool:
        try:
            node = self.node(key)
        except RDSClientError:
            return False
        return node.status in SERVING and key not in self.promotions

    def takes_writes(self, key: tuple) -> bool:
        w = self.writes.setdefault(key, Writes())
        outage = SIM.dark(key[1])
        if outage is not None and not outage.writes_continue:
            return False
        # a hold shows in the node's status, which `serving` reads
        return self.serving(key) and not w.read_only and not self.read_only_by_parameters(key)

    def read_only_by_parameters(self, key: tuple) -> bool:
        """The engine's own read-only switch in the instance's DB parameter group, a dynamic
        parameter applied at once (MySQL `read_only`; PostgreSQL `default_transaction_read_only`,
        RDS User Guide, "Working with parameter groups")."""
        if key[0] != "instance":
            return False
        try:
            groups = self.node(key).db_parameter_groups()
        except (RDSClientError, KeyError, AttributeError):
            return False
        for group in groups:
            params = group.parameters
            if str(params.get("read_only", {}).get("ParameterValue", "0")).lower() in ("1", "on", "true"):
                return True
            if str(params.get("default_transaction_read_only", {}).get("ParameterValue", "off")).lower() in ("1", "on", "true"):
                return True
        return False

    def link_state(self, primary: tuple, replica: tuple) -> str:
        f = self.followers.setdefault(replica, Follower())
        if f.promoted_at is not None:
            return "promoted"
        if not self.serving(replica):
            return "not-running"
        if f.broken_by_hand or SIM.dark(primary[1]) is not None or SIM.dark(replica[1]) is not None:
            return "broken"
        if not self.serving(primary):
            return "broken"
        for key in (primary, replica):
            hold = self.holds.get(key)
            if hold is not None and hold.pauses_replication:
                return "broken"
        return "up"

    def tick_replication(self, t: float, dt: float, pairs: list[tuple[tuple, tuple]]) -> None:
        primaries = {p for p, _ in pairs} | set(self.writes)
        for key in primaries:
            w = self.writes.setdefault(key, Writes())
            rate = w.rate if w.rate is not None else float(SIM.cfg(key[1], "write_rate"))
            if rate > 0 and self.takes_writes(key):
                w.write(t, dt, rate * dt)
        for primary, replica in pairs:
            f = self.followers.setdefault(replica, Follower())
            f.primary = primary
            link = self.link_state(primary, replica)
            if link != f.link:
                f.link, f.link_since = link, t
            if link == "up":
                w = self.writes[primary]
                f.applied = max(f.applied, w.position_at(t - f.lag))

    def replica_lag(self, replica: tuple, t: float) -> float | None:
        """ReplicaLag as RDS reports it: seconds behind, -1 when replication is not running,
        nothing when the replica itself is not running or is no longer a replica (RDS User
        Guide, "Monitoring read replication": "a ReplicaLag value of -1 ... replication
        isn't active")."""
        f = self.followers.get(replica)
        if f is None or f.primary is None or f.link in ("not-running", "promoted"):
            return None
        if f.link == "broken":
            return -1.0
        w = self.writes.get(f.primary)
        if w is None or w.position <= f.applied + 1e-9:
            return 0.0
        at = w.time_at(f.applied)
        return max(0.0, t - at) if at is not None else 0.0

    def publish_metrics(self, t: float, pairs: list[tuple[tuple, tuple]]) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        for _, replica in pairs:
            region = replica[1]
            if not SIM.cfg(region, "rds_metrics"):
                continue
            period = int(SIM.cfg(region, "metric_period"))
            boundary = int(t // period) * period
            mark = f"{region}/{replica[0]}/{replica[2]}"
            if self.published.get(mark) == boundary:
                continue
            self.published[mark] = boundary
            lag = self.replica_lag(replica, t)
            if lag is None:
                continue
            ts = _dt(boundary)
            if replica[0] == "instance":
                data = [{"MetricName": "ReplicaLag", "Value": lag, "Unit": "Seconds", "Timestamp": ts,
                         "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": replica[2]}]}]
            else:
                if lag < 0:
                    continue  # Aurora stops reporting the lag of a broken secondary
                dims = [{"Name": "DBClusterIdentifier", "Value": replica[2]}]
                data = [
                    {"MetricName": "AuroraGlobalDBReplicationLag", "Value": lag * 1000, "Unit": "Milliseconds", "Timestamp": ts, "Dimensions": dims},
                    {"MetricName": "AuroraGlobalDBRPOLag", "Value": lag * 1000, "Unit": "Milliseconds", "Timestamp": ts, "Dimensions": dims},
                ]
            # into the CloudWatch of the account the replica is in
            account = self.account_of(replica[0], region, replica[2]) or ACCOUNT
            cloudwatch_backends[account][region].put_metric_data("AWS/RDS", data)

    # -- the clock --------------------------------------------------------------------------
    def tick(self, t: float) -> None:
        dt = max(0.0, t - self.last_tick)
        self.last_tick = t
        for key, hold in list(self.holds.items()):
            if t >= hold.until:
                del self.holds[key]
                try:
                    self.node(key).status = hold.then
                except RDSClientError:
                    pass
        for key, due in list(self.promotions.items()):
            if t >= due:
                del self.promotions[key]
                self.finish_promotion(key, t)
        self.tick_copies(t)
        self.tick_creating(t)
        self.tick_deleting(t)
        self.tick_switches(t)
        self.tick_resync(t)
        self.tick_maintenance(t)
        pairs = self.pairs()
        self.tick_replication(t, dt, pairs)
        self.publish_metrics(t, pairs)

    # -- maintenance RDS schedules and reports ----------------------------------------------
    # AWS: a pending maintenance action (DescribePendingMaintenanceActions) is applied in the
    # maintenance window on or after its CurrentApplyDate, and stays pending until it is done;
    # applying it is reported as events of the `maintenance` category (RDS User Guide,
    # "Maintaining a DB instance"; "Amazon RDS event categories and event messages":
    # RDS-EVENT-0026 "Applying off-line patches to DB instance", RDS-EVENT-0027 "Finished
    # applying off-line patches to DB instance"). Describing events without a time range gives
    # the last hour ("DescribeEvents": Duration, default 60 minutes).
    def maintain(self, key: tuple, action: str, description: str, seconds: float) -> dict[str, Any]:
        node = self.node(key)
        t = now()
        # RDS applies it in the maintenance window (at least 30 minutes): the window is now.
        ddd = lambda u: _dt(u).strftime("%a:%H:%M").lower()
        node.preferred_maintenance_window = f"{ddd(t - 300)}-{ddd(t + max(1800.0, seconds + 300))}"
        self.maintenance[key] = {"Action": action, "Description": description, "CurrentApplyDate": _dt(t), "until": t + seconds}
        self.event(key, node, "Applying off-line patches to DB instance", t)
        return {"id": key[2], "action": action, "applying_until": t + seconds}

    def event(self, key: tuple, node: Any, message: str, t: float) -> None:
        source_type = "db-instance" if key[0] == "instance" else "db-cluster"
        self.rds_events.append(
            RdsEvent(key[1], key[2], source_type, message, ["maintenance"], node.arn, _dt(t))
        )

    def tick_maintenance(self, t: float) -> None:
        for key, m in list(self.maintenance.items()):
            if t >= m["until"]:
                del self.maintenance[key]
                try:
                    self.event(key, self.node(key), "Finished applying off-line patches to DB instance", t)
                except RDSClientError:
                    pass

    def pending_actions(self, region: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        filters = {f["Name"]: f["Values"] for f in params.get("Filters", [])}
        unknown = sorted(set(filters) - {"db-instance-id", "db-cluster-id"})
        if unknown:
            raise RDSClientError("InvalidParameterValue", f"Unrecognized filter name: {unknown[0]}")
        out = []
        for key, m in self.maintenance.items():
            if key[1] != region:
                continue
            wanted = filters.get("db-instance-id" if key[0] == "instance" else "db-cluster-id")
            if filters and (wanted is None or key[2] not in wanted):
                continue
            arn = params.get("ResourceIdentifier")
            node = self.node(key)
            if arn is not None and arn != node.arn:
                continue
            details = {k: v for k, v in m.items() if k != "until"}  # no opt-in requested
            out.append({"ResourceIdentifier": node.arn, "PendingMaintenanceActionDetails": [details]})
        return out

    def events(self, backend: RDSBackend, params: dict[str, Any]) -> list[Any]:
        region = backend.region_name
        ident, source_type = params.get("SourceIdentifier"), params.get("SourceType")
        if ident is not None and source_type is None:
            raise RDSClientError("InvalidParameterCombination", "Cannot specify source identifier without source type")
        end = epoch(params["EndTime"]) if params.get("EndTime") else now()
        if params.get("StartTime"):
            start = epoch(params["StartTime"])
        else:
            start = end - 60 * float(params.get("Duration") or 60)
        categories = set(params.get("EventCategories") or [])
        mine = [e for e in self.rds_events if e.region == region]
        theirs = [e for e in backend.events if e not in mine]
        out = []
        for e in theirs + mine:
            if ident is not None and e.source_identifier != ident:
                continue
            if source_type is not None and e.source_type != source_type:
                continue
            if categories and not categories & set(e.event_categories):
                continue
            if not start <= epoch(e.date) <= end:
                continue
            out.append(e)
        return out

    # -- promotion (patched PromoteReadReplica) ---------------------------------------------
    def promote(self, backend: RDSBackend, db_kwargs: dict[str, Any]) -> Any:
        ident = db_kwargs["db_instance_identifier"]
        db = backend.databases.get(ident)
        if db is None:
            raise DBInstanceNotFoundError(ident)
        # AWS refuses to promote what is not a replica, and a replica that is not available
        # (e.g. backing-up or modifying): InvalidDBInstanceState.
        if not db.is_replica or not getattr(db, "source_db_instance_identifier", None):
            raise RDSClientError("InvalidDBInstanceState", f"DB Instance {ident} is not a read replica.")
        key = ("instance", backend.region_name, ident)
        if db.status != "available" or key in self.promotions:
            raise RDSClientError("InvalidDBInstanceState", f"DB instance {ident} is not in available state (it is {db.status}).")
        f = self.followers.setdefault(key, Follower())
        f.promoted_at = now()  # replication stops when the promotion starts
        # Once promoted it writes on from the data it has: a write position is the data's, so
        # "nothing lost" is positions that are equal across a switch.
        self.writes[key] = Writes(position=f.applied, history=[(now(), f.applied)])
        db.status = "modifying"
        self.promotions[key] = now() + float(SIM.cfg(backend.region_name, "promotion_seconds"))
        return db

    def finish_promotion(self, key: tuple, t: float) -> None:
        _, region, ident = key
        try:
            db = self.instance(region, ident)
        except RDSClientError:
            return
        source = db.source_db_instance_identifier
        db.status = "available"
        db.is_replica = False
        db.source_db_instance_identifier = None
        if source:
            _, p_region, p_ident = self.resolve_source(region, source)
            try:
                primary = self.instance(p_region, p_ident)
            except RDSClientError:
                primary = None
            if primary is not None:
                for ref in (db.db_instance_arn, ident):
                    if ref in primary.replicas:
                        primary.replicas.remove(ref)

    # -- reboot (patched RebootDBInstance) ---------------------------------------------------
    def reboot(self, backend: RDSBackend, ident: str) -> Any:
        db = backend.databases.get(ident)
        if db is None:
            raise DBInstanceNotFoundError(ident)
        if db.status != "available":
            raise RDSClientError("InvalidDBInstanceState", f"DB instance {ident} is not in available state (it is {db.status}).")
        db.status = "rebooting"
        self.holds[("instance", backend.region_name, ident)] = Hold("rebooting", now() + float(SIM.cfg(backend.region_name, "reboot_seconds")))
        return db

    # -- snapshot copies (patched CopyDBSnapshot / CopyDBClusterSnapshot) -------------------
    def in_flight(self, region: str, account: str = ACCOUNT) -> int:
        """Cross-region copies in progress into `region` in `account` (what the quota counts:
        AWS's quotas are per account and region)."""
        return sum(1 for (r, _, _, a), (_, _, _, cross) in self.copies.items() if r == region and a == account and cross)

    def copy(self, kind: str, backend: RDSBackend, source: str, target: str, start: Any) -> Any:
        region = backend.region_name
        cross_region = source.startswith("arn:") and source.split(":")[3] != region
        quota = int(SIM.cfg(region, "copy_quota"))
        account = backend.account_id
        if cross_region and self.in_flight(region, account) >= quota:
            raise RDSClientError(
                "SnapshotQuotaExceeded",
                f"Cannot copy the snapshot: {quota} snapshot copies are already in progress to {region}.",
            )
        snapshot = start()
        if cross_region:
            # AWS reports where a copied snapshot came from (DescribeDBSnapshots SourceRegion)
            snapshot.source_region = source.split(":")[3]
        seconds = float(SIM.cfg(region, "copy_seconds"))
        if seconds > 0:
            snapshot.status = "pending"
            snapshot.percent_progress = 0
            self.copies[(region, kind, target, account)] = (now(), seconds, snapshot, cross_region)
            if account == ACCOUNT:
                self.max_in_flight[region] = max(self.max_in_flight.get(region, 0), self.in_flight(region))
        return snapshot

    def tick_copies(self, t: float) -> None:
        for key, (start, seconds, snapshot, _) in list(self.copies.items()):
            region, kind, ident, account = key
            backend = rds_backends[account][region]
            store = backend.database_snapshots if kind == "instance" else backend.cluster_snapshots
            if store.get(ident) is not snapshot:
                del self.copies[key]  # deleted while copying: no longer in flight
                continue
            done = (t - start) / seconds
            if done >= 1:
                snapshot.status = "available"
                snapshot.percent_progress = 100
                del self.copies[key]
            elif done >= 0.1:
                # AWS: `pending` while the copy is set up, then `copying` with PercentProgress.
                snapshot.status = "copying"
                snapshot.percent_progress = int(done * 100)

    # -- restores and deletes that take time ------------------------------------------------
    # A restore from an encrypted snapshot needs its KMS key: "KMSKeyNotAccessibleFault: An
    # error occurred accessing an AWS KMS key" (RDS API Reference,
    # RestoreDBInstanceFromDBSnapshot, RestoreDBClusterFromSnapshot); a key that becomes unusable
    # while the database is being made leaves it `inaccessible-encryption-credentials` ("The
    # AWS KMS key used to encrypt or decrypt the DB instance can't be accessed or recovered",
    # RDS User Guide, "Viewing Amazon RDS DB instance status"). moto checks neither.
    @staticmethod
    def key_usable(account: str, region: str, key_id: str | None) -> bool:
        if not key_id:
            return True  # not encrypted
        from moto.kms.models import kms_backends

        backend = kms_backends[account][region]
        try:
            key = backend.keys[backend.any_id_to_key_id(key_id)]  # an id, an ARN or an alias
        except Exception:
            return False  # no such key in this account and region: AWS cannot use it either
        return key.key_state == "Enabled"

    def check_key(self, account: str, region: str, key_id: str | None) -> None:
        if not self.key_usable(account, region, key_id):
            raise RDSClientError(
                "KMSKeyNotAccessibleFault",
                f"The specified KMS key [{key_id}] does not exist, is not enabled or you do not have permissions to access it.",
            )

    def made(self, kind: str, backend: RDSBackend, node: Any, key_id: str | None, setting: str = "restore_seconds") -> Any:
        seconds = float(SIM.cfg(backend.region_name, setting))
        if seconds > 0:
            ident = node.db_instance_identifier if kind == "instance" else node.db_cluster_identifier
            node.status = "creating"
            self.creating[(kind, backend.region_name, ident, backend.account_id)] = (now(), seconds, node, key_id)
        return node

    def tick_creating(self, t: float) -> None:
        for key, (start, seconds, node, key_id) in list(self.creating.items()):
            kind, region, ident, account = key
            backend = rds_backends[account][region]
            store = backend.databases if kind == "instance" else backend.clusters
            if store.get(ident) is not node or node.status not in ("creating", "backing-up"):
                del self.creating[key]  # deleted (or changed by hand) while being made
                continue
            if not self.key_usable(account, region, key_id):
                node.status = "inaccessible-encryption-credentials"
                del self.creating[key]
                continue
            done = (t - start) / seconds
            if done >= 1:
                node.status = "available"
                del self.creating[key]
            elif done >= 0.8:
                node.status = "backing-up"  # AWS backs a new database up before it is available

    def delete(self, kind: str, backend: RDSBackend, ident: str, finish: Any) -> Any:
        region, account = backend.region_name, backend.account_id
        seconds = float(SIM.cfg(region, "delete_seconds"))
        store = backend.databases if kind == "instance" else backend.clusters
        node = store.get(ident)
        if seconds <= 0 or node is None:
            return finish()
        if (kind, region, ident, account) in self.deleting:
            state_fault = "InvalidDBInstanceState" if kind == "instance" else "InvalidDBClusterStateFault"
            raise RDSClientError(state_fault, f"{kind} {ident} is already being deleted.")
        due = now() + seconds
        if kind == "cluster":
            # AWS deletes a cluster whose instances are all being deleted ("Cluster cannot be
            # deleted, it still contains DB instances in non-deleting state"); moto refuses any.
            live = [m for m in node.members if (("instance", region, m.db_instance_identifier, account) not in self.deleting)]
            if live:
                raise RDSClientError(
                    "InvalidDBClusterStateFault",
                    "Cluster cannot be deleted, it still contains DB instances in non-deleting state.",
                )
            members = {m.db_instance_identifier for m in node.members}
            due = max([due] + [d for (k, r, i, a), (d, _) in self.deleting.items() if k == "instance" and r == region and a == account and i in members])
        node.status = "deleting"
        self.deleting[(kind, region, ident, account)] = (due, finish)
        return node

    def tick_deleting(self, t: float) -> None:
        # instances before clusters: a cluster goes once its instances have
        for key, (due, finish) in sorted(self.deleting.items(), key=lambda kv: kv[0][0] != "instance"):
            if t >= due:
                del self.deleting[key]
                try:
                    finish()
                except RDSClientError:
                    pass  # gone some other way meanwhile

    # -- snapshots shared with another account ---------------------------------------------
    # AWS: an account copies a snapshot another account shared with it (its `restore`
    # attribute names the account) by the snapshot's ARN; one not shared with it is not found
    # for it. An encrypted one needs its key's policy to let the account use the key ("Sharing
    # a DB snapshot", "Sharing encrypted snapshots", RDS User Guide). moto looks the source up in
    # the caller's own account only.
    def shared_source(self, kind: str, backend: RDSBackend, source: str) -> Any:
        parts = source.split(":")
        if not source.startswith("arn:") or len(parts) < 7 or parts[4] == backend.account_id:
            return None
        owner, region, ident = parts[4], parts[3], parts[-1]
        owner_backend = rds_backends[owner][region]
        store = owner_backend.database_snapshots if kind == "instance" else owner_backend.cluster_snapshots
        snapshot = store.get(ident)
        restore = snapshot.attributes["restore"] if snapshot is not None else []
        if snapshot is None or not (backend.account_id in restore or "all" in restore):
            code = "DBSnapshotNotFound" if kind == "instance" else "DBClusterSnapshotNotFoundFault"
            raise RDSClientError(code, f"Snapshot {source} not found.")
        encrypted = snapshot.encrypted if kind == "instance" else snapshot.cluster.storage_encrypted
        key = getattr(snapshot, "kms_key_id", None)
        if encrypted and not self.key_shared(owner, region, key, backend.account_id):
            raise RDSClientError(
                "KMSKeyNotAccessibleFault",
                f"The KMS key [{key}] of the shared snapshot does not let account {backend.account_id} use it.",
            )
        return snapshot

    @staticmethod
    def key_shared(owner: str, region: str, key_id: str | None, account: str) -> bool:
        from moto.kms.models import kms_backends

        backend = kms_backends[owner][region]
        try:
            key = backend.keys[backend.any_id_to_key_id(key_id or "")]
        except Exception:
            return False
        return key.key_state == "Enabled" and f"arn:aws:iam::{account}:" in (key.policy or "")

    @staticmethod
    def copy_shared(kind: str, backend: RDSBackend, snapshot: Any, **kwargs: Any) -> Any:
        from moto.rds.models import DBClusterSnapshot, DBSnapshot

        key = kwargs.get("kms_key_id")
        key = backend._validate_kms_key(key) if key else None
        if kind == "instance":
            target = kwargs["target_db_snapshot_identifier"]
            if target in backend.database_snapshots:
                raise RDSClientError("DBSnapshotAlreadyExists", f"Snapshot {target} already exists.")
            copy = DBSnapshot(
                backend, snapshot.database, target, tags=kwargs.get("tags"), kms_key_id=key,
                original_created_at=snapshot.original_snapshot_create_time,
            )
            backend.database_snapshots[target] = copy
        else:
            target = kwargs["target_db_cluster_snapshot_identifier"]
            if target in backend.cluster_snapshots:
                raise RDSClientError("DBClusterSnapshotAlreadyExistsFault", f"Snapshot {target} already exists.")
            copy = DBClusterSnapshot(backend, snapshot.cluster, target, tags=kwargs.get("tags"), kms_key_id=key)
            backend.cluster_snapshots[target] = copy
        return copy

    # -- Aurora global failover / switchover -------------------------------------------------
    def switch_global(self, params: dict[str, Any], switchover: bool) -> Any:
        ident = params["GlobalClusterIdentifier"]
        gc = self.globals().get(ident.lower())
        if gc is None:
            raise RDSClientError("GlobalClusterNotFoundFault", f"Global cluster {ident} not found.")
        target_ref = params["TargetDbClusterIdentifier"]
        target = next((m for m in gc.members if target_ref in (m.db_cluster_arn, m.db_cluster_identifier)), None)
        if target is None:
            raise RDSClientError("DBClusterNotFoundFault", f"DBCluster {target_ref} is not a member of global cluster {ident}.")
        if gc.status != "available" or ident.lower() in self.switches:
            raise RDSClientError("InvalidGlobalClusterStateFault", f"Global cluster {ident} is {gc.status}.")
        if target.is_writer:
            raise RDSClientError("InvalidDBClusterStateFault", f"DBCluster {target_ref} is already the primary cluster of {ident}.")
        allow_loss = str(params.get("AllowDataLoss", "false")).lower() == "true"
        asked_switchover = str(params.get("Switchover", "false")).lower() == "true"
        if allow_loss and (asked_switchover or switchover):
            raise RDSClientError("InvalidParameterCombination", "AllowDataLoss and Switchover cannot both be specified.")
        # FailoverGlobalCluster without AllowDataLoss is a switchover (no data lost)
        switchover = switchover or not allow_loss
        writer = next((m for m in gc.members if m.is_writer), None)
        resyncing = any(("cluster", m.region, m.db_cluster_identifier) in self.resync for m in gc.members)
        if switchover and (
            writer is None
            or SIM.dark(writer.region) is not None
            or resyncing
            or any(m.status != "available" for m in gc.members)
        ):
            # A switchover needs every member healthy (Aurora User Guide, "Performing
            # switchovers for Amazon Aurora global databases").
            raise RDSClientError("InvalidGlobalClusterStateFault", f"Global cluster {ident} cannot switch over: not every member is available.")
        gc.status = "switching-over" if switchover else "failing-over"
        gc.failover_state = {
            "Status": "pending",
            "FromDbClusterArn": writer.db_cluster_arn if writer else None,
            "ToDbClusterArn": target.db_cluster_arn,
            "IsDataLossAllowed": allow_loss and not switchover,
        }
        key = ("cluster", target.region, target.db_cluster_identifier)
        f = self.followers.setdefault(key, Follower())
        if not switchover:
            f.promoted_at = now()  # a failover stops replication where it is
        self.switches[ident.lower()] = {
            "due": now() + float(SIM.cfg(target.region, "global_switch_seconds")),
            "target": target,
            "from": writer,
            "switchover": switchover,
        }
        return gc

    def tick_switches(self, t: float) -> None:
        for ident, sw in list(self.switches.items()):
            gc = self.globals().get(ident)
            if gc is None:
                del self.switches[ident]
                continue
            if t < sw["due"]:
                gc.failover_state["Status"] = "failing-over" if not sw["switchover"] else "switching-over"
                continue
            del self.switches[ident]
            target, old = sw["target"], sw["from"]
            new_key = ("cluster", target.region, target.db_cluster_identifier)
            f = self.followers.setdefault(new_key, Follower())
            if sw["switchover"] and old is not None:
                # a switchover waits for the secondary to catch up: no data lost
                w = self.writes.get(("cluster", old.region, old.db_cluster_identifier))
                if w is not None:
                    f.applied = w.position
            for m in gc.members:
                m.is_writer = m is target
                if m is old and sw["switchover"]:
                    # the old writer follows the new one: a replica again, applying from zero
                    self.followers[("cluster", m.region, m.db_cluster_identifier)] = Follower(lag=f.lag)
                elif m is old:
                    # a failover leaves the old primary behind: it rejoins as a secondary once
                    # its region answers, rebuilt from the new primary (Aurora User Guide,
                    # "Recovering an Amazon Aurora global database from an unplanned outage":
                    # its unreplicated writes are kept only in a snapshot)
                    self.resync[("cluster", m.region, m.db_cluster_identifier)] = None
            gc.status = "available"
            gc.failover_state = None
            # the new writer starts its own write position; the old one follows it (switchover)
            # or waits to rejoin (failover: it is recreated as a secondary when it comes back).
            self.writes.setdefault(new_key, Writes())
            f.promoted_at = t

    def tick_resync(self, t: float) -> None:
        for key, due in list(self.resync.items()):
            if SIM.dark(key[1]) is not None:
                continue
            if due is None:
                self.resync[key] = t + float(SIM.cfg(key[1], "global_resync_seconds"))
            elif t >= due:
                del self.resync[key]
                # rebuilt: it holds what the new primary has, and follows it from here
                gc = next((g for g in self.globals().values() if any(("cluster", m.region, m.db_cluster_identifier) == key for m in g.members)), None)
                writer = next((m for m in gc.members if m.is_writer), None) if gc else None
                applied = 0.0
                if writer is not None:
                    w = self.writes.get(("cluster", writer.region, writer.db_cluster_identifier))
                    applied = w.position if w is not None else 0.0
                self.followers[key] = Follower(applied=applied)

    def synchronization(self, key: tuple) -> str:
        """A global cluster member's SynchronizationStatus."""
        return "pending-resync" if key in self.resync else "connected"

    # -- inspection --------------------------------------------------------------------------
    def replication(self, key: tuple) -> dict[str, Any]:
        t = now()
        self.node(key)  # raises when unknown
        out: dict[str, Any] = {"kind": key[0], "region": key[1], "id": key[2]}
        w = self.writes.get(key)
        if w is not None:
            out["writer"] = {
                "position": w.position,
                "write_rate": w.rate if w.rate is not None else SIM.cfg(key[1], "write_rate"),
                "read_only": w.read_only,
                "takes_writes": self.takes_writes(key),
                "last_write_at": w.last_write_at,
            }
        f = self.followers.get(key)
        if f is not None and f.primary is not None:
            pw = self.writes.get(f.primary, Writes())
            behind = max(0.0, pw.position - f.applied)
            at = pw.time_at(f.applied) if behind > 1e-9 else None
            out["replica"] = {
                "primary": {"kind": f.primary[0], "region": f.primary[1], "id": f.primary[2]},
                "applied": f.applied,
                "lag_seconds": f.lag,
                "link": f.link,
                "link_since": f.link_since,
                "replica_lag_metric": self.replica_lag(key, t),
                "promoted_at": f.promoted_at,
                # what the primary has written that this replica has not: the data a failover
                # to it loses (as writes, and as seconds of the primary's writing)
                "behind_writes": behind,
                "behind_seconds": max(0.0, (pw.last_write_at or 0) - at) if at is not None else 0.0,
            }
        return out


RDS = Rds()


def install() -> None:
    """Patches moto where it differs from AWS, and puts the model on the clock."""
    original_copy = RDSBackend.copy_db_snapshot
    original_copy_cluster = RDSBackend.copy_db_cluster_snapshot
    original_create_global = RDSBackend.create_global_cluster
    original_create_replica = RDSBackend.create_db_instance_read_replica

    def promote_read_replica(self: RDSBackend, db_kwargs: dict[str, Any]) -> Any:
        return RDS.promote(self, db_kwargs)

    def reboot_db_instance(self: RDSBackend, db_instance_identifier: str, *args: Any, **kwargs: Any) -> Any:
        return RDS.reboot(self, db_instance_identifier)

    def copy_db_snapshot(self: RDSBackend, **kwargs: Any) -> Any:
        source, target = kwargs["source_db_snapshot_identifier"], kwargs["target_db_snapshot_identifier"]
        shared = RDS.shared_source("instance", self, source)
        if shared is not None:
            return RDS.copy("instance", self, source, target, lambda: RDS.copy_shared("instance", self, shared, **kwargs))
        return RDS.copy("instance", self, source, target, lambda: original_copy(self, **kwargs))

    def copy_db_cluster_snapshot(self: RDSBackend, **kwargs: Any) -> Any:
        source = kwargs["source_db_cluster_snapshot_identifier"]
        target = kwargs["target_db_cluster_snapshot_identifier"]
        shared = RDS.shared_source("cluster", self, source)
        if shared is not None:
            return RDS.copy("cluster", self, source, target, lambda: RDS.copy_shared("cluster", self, shared, **kwargs))
        return RDS.copy("cluster", self, source, target, lambda: original_copy_cluster(self, **kwargs))

    original_members = GlobalCluster.global_cluster_members

    def global_cluster_members(self: GlobalCluster) -> list[dict[str, Any]]:
        # moto does not report SynchronizationStatus (GlobalClusterMember: connected |
        # pending-resync); AWS does, for each member
        members = original_members.fget(self)  # type: ignore[attr-defined]
        for out, m in zip(members, self.members):
            out["SynchronizationStatus"] = RDS.synchronization(("cluster", m.region, m.db_cluster_identifier))
        return members

    GlobalCluster.global_cluster_members = property(global_cluster_members)  # type: ignore[assignment,method-assign]

    def create_global_cluster(self: RDSBackend, *args: Any, **kwargs: Any) -> Any:
        gc = original_create_global(self, *args, **kwargs)
        # moto leaves the source cluster as a reader; in AWS it is the global cluster's writer.
        if gc.members and not any(m.is_writer for m in gc.members):
            gc.members[0].is_writer = True
        gc.failover_state = None
        return gc

    def create_db_instance_read_replica(self: RDSBackend, db_kwargs: dict[str, Any]) -> Any:
        key_id = db_kwargs.get("kms_key_id")
        if key_id:
            # AWS refuses a replica under a key it cannot use (KMSKeyNotAccessibleFault)
            RDS.check_key(self.account_id, self.region_name, key_id)
        ident = db_kwargs["db_instance_identifier"]
        replica = original_create_replica(self, db_kwargs)
        # A new instance under a name an earlier one had (a failback's replica takes the old
        # primary's): none of the earlier one's replication or writes are its own.
        RDS.followers.pop(("instance", self.region_name, ident), None)
        RDS.writes.pop(("instance", self.region_name, ident), None)
        RDS.made("instance", self, replica, key_id, "replica_create_seconds")
        # moto copies the source's parameter group name into the other region, where no such
        # group exists. AWS: "If you don't specify a value for DBParameterGroupName, ... the
        # default DBParameterGroup for the specified DB engine for a cross-Region read replica"
        # (CreateDBInstanceReadReplica).
        name = replica.db_parameter_group_name
        if name and name not in self.db_parameter_groups and not db_kwargs.get("db_parameter_group_name"):
            replica.db_parameter_group_name = None
        return replica

    original_restore = RDSBackend.restore_db_instance_from_db_snapshot
    original_restore_cluster = RDSBackend.restore_db_cluster_from_snapshot
    original_create_instance = RDSBackend.create_db_instance
    original_delete_instance = RDSBackend.delete_db_instance
    original_delete_cluster = RDSBackend.delete_db_cluster

    def restore_db_instance_from_db_snapshot(self: RDSBackend, from_snapshot_id: str, overrides: dict[str, Any]) -> Any:
        ident = from_snapshot_id.rsplit(":", 1)[-1] if from_snapshot_id.startswith("arn:") else from_snapshot_id
        snapshot = self.describe_db_snapshots(db_instance_identifier=None, db_snapshot_identifier=ident)[0]
        key = snapshot.kms_key_id if snapshot.encrypted else None
        RDS.check_key(self.account_id, self.region_name, key)
        return RDS.made("instance", self, original_restore(self, from_snapshot_id, overrides), key)

    def restore_db_cluster_from_snapshot(self: RDSBackend, from_snapshot_id: str, overrides: dict[str, Any]) -> Any:
        snapshot = self.describe_db_cluster_snapshots(db_cluster_identifier=None, db_snapshot_identifier=from_snapshot_id)[0]
        key = getattr(snapshot, "kms_key_id", None) if snapshot.cluster.storage_encrypted else None
        RDS.check_key(self.account_id, self.region_name, key)
        return RDS.made("cluster", self, original_restore_cluster(self, from_snapshot_id, overrides), key)

    def create_db_instance(self: RDSBackend, db_kwargs: dict[str, Any]) -> Any:
        instance = original_create_instance(self, db_kwargs)
        if db_kwargs.get("db_cluster_identifier"):
            # an instance added to a cluster takes time to be made, as a restore does
            RDS.made("instance", self, instance, None)
        return instance

    def delete_db_instance(self: RDSBackend, db_instance_identifier: str, *args: Any, **kwargs: Any) -> Any:
        finish = lambda: original_delete_instance(self, db_instance_identifier, *args, **kwargs)  # noqa: E731
        return RDS.delete("instance", self, db_instance_identifier, finish)

    def delete_db_cluster(self: RDSBackend, cluster_identifier: str, *args: Any, **kwargs: Any) -> Any:
        finish = lambda: original_delete_cluster(self, cluster_identifier, *args, **kwargs)  # noqa: E731
        return RDS.delete("cluster", self, cluster_identifier, finish)

    # moto shows a new cluster `creating` once, then `available`; one being made here stays
    # `creating` until the model says otherwise.
    original_cluster_status = DBCluster.status

    def cluster_status(self: DBCluster) -> str:
        if self._status == "creating" and any(node is self for (_, _, node, _) in RDS.creating.values()):
            return self._status
        return original_cluster_status.fget(self)

    DBCluster.status = property(cluster_status, original_cluster_status.fset)
    RDSBackend.restore_db_instance_from_db_snapshot = restore_db_instance_from_db_snapshot
    RDSBackend.restore_db_cluster_from_snapshot = restore_db_cluster_from_snapshot
    RDSBackend.create_db_instance = create_db_instance
    RDSBackend.delete_db_instance = delete_db_instance
    RDSBackend.delete_db_cluster = delete_db_cluster
    RDSBackend.create_db_instance_read_replica = create_db_instance_read_replica
    RDSBackend.promote_read_replica = promote_read_replica
    RDSBackend.reboot_db_instance = reboot_db_instance
    RDSBackend.copy_db_snapshot = copy_db_snapshot
    RDSBackend.copy_db_cluster_snapshot = copy_db_cluster_snapshot
    RDSBackend.create_global_cluster = create_global_cluster

    # moto answers HTTP 500 (not implemented) for these two; AWS's shapes and states below.
    def failover_global_cluster(self: RDSResponse) -> ActionResult:
        return ActionResult({"GlobalCluster": RDS.switch_global(self.params, switchover=False)})

    def switchover_global_cluster(self: RDSResponse) -> ActionResult:
        return ActionResult({"GlobalCluster": RDS.switch_global(self.params, switchover=True)})

    RDSResponse.failover_global_cluster = failover_global_cluster
    RDSResponse.switchover_global_cluster = switchover_global_cluster

    def describe_global_clusters(self: RDSResponse) -> ActionResult:
        # moto answers every global cluster whatever is asked; AWS answers the one named
        # (GlobalClusterIdentifier), or GlobalClusterNotFoundFault (RDS API Reference,
        # DescribeGlobalClusters)
        found = self.global_backend.describe_global_clusters()
        ident = self.params.get("GlobalClusterIdentifier")
        if ident:
            found = [g for g in found if g.global_cluster_identifier.lower() == str(ident).lower()]
            if not found:
                raise RDSClientError("GlobalClusterNotFoundFault", f"Global cluster {ident} not found.")
        return ActionResult({"GlobalClusters": found})

    RDSResponse.describe_global_clusters = describe_global_clusters

    # moto answers DescribePendingMaintenanceActions with HTTP 500, and DescribeEvents with every
    # event it has (it reads neither the source, the time range nor the categories).
    def describe_pending_maintenance_actions(self: RDSResponse) -> ActionResult:
        return ActionResult({"PendingMaintenanceActions": RDS.pending_actions(self.region, self.params)})

    def describe_events(self: RDSResponse) -> ActionResult:
        return ActionResult({"Events": RDS.events(self.backend, self.params)})

    RDSResponse.describe_pending_maintenance_actions = describe_pending_maintenance_actions

    # moto answers these three with every item in one page. AWS pages them: "MaxRecords ...
    # Default: 100. Constraints: Minimum 20, maximum 100", the rest behind `Marker` (RDS API
    # Reference, DescribeDBSnapshots, DescribeDBClusters, DescribeDBClusterSnapshots), so a
    # region-wide listing of 1,000 snapshots is ten calls. moto pages DescribeDBInstances itself.
    def paged(describe: Any, key: str) -> Any:
        def answer(self: RDSResponse) -> ActionResult:
            limit, marker = self.params.get("MaxRecords", "100"), self.params.get("Marker", "0")
            if not (str(limit).isdigit() and 20 <= int(limit) <= 100):
                raise RDSClientError("InvalidParameterValue", f"MaxRecords {limit} is outside 20..100")
            if not str(marker).isdigit():  # AWS's marker is opaque: here, an offset
                raise RDSClientError("InvalidParameterValue", f"invalid Marker {marker!r}")
            limit, start = int(limit), int(marker)
            items = list(describe(self)._result[key])
            page: dict[str, Any] = {key: items[start : start + limit]}
            if start + limit < len(items):
                page["Marker"] = str(start + limit)
            return ActionResult(page)

        return answer

    for name, key in (
        ("describe_db_snapshots", "DBSnapshots"),
        ("describe_db_clusters", "DBClusters"),
        ("describe_db_cluster_snapshots", "DBClusterSnapshots"),
    ):
        setattr(RDSResponse, name, paged(getattr(RDSResponse, name), key))
    RDSResponse.describe_events = describe_events
    SIM.tickers.append(RDS.tick)


def _key(kind: str, region: str, ident: str) -> tuple:
    if kind not in ("instances", "clusters"):
        raise ValueError(f"unknown kind {kind!r}: instances or clusters")
    return ("instance" if kind == "instances" else "cluster", region, ident)


def hold_status(body: dict[str, Any], _q: dict[str, str], region: str, kind: str, ident: str) -> dict[str, Any]:
    """Maintenance: the instance/cluster shows `status` for `seconds`, then `then`."""
    key = _key(kind, region, ident)
    node = RDS.node(key)
    status = body["status"]
    seconds = float(body["seconds"])
    node.status = status
    RDS.holds[key] = Hold(status, now() + seconds, body.get("then", "available"), body.get("pauses_replication", True))
    return {"id": ident, "status": status, "until": RDS.holds[key].until}


def set_replication(body: dict[str, Any], _q: dict[str, str], region: str, kind: str, ident: str) -> dict[str, Any]:
    key = _key(kind, region, ident)
    RDS.node(key)
    known = {"write_rate", "read_only", "lag_seconds", "broken"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ValueError(f"unknown replication fields {unknown}; known: {sorted(known)}")
    if "write_rate" in body or "read_only" in body:
        w = RDS.writes.setdefault(key, Writes())
        w.rate = float(body["write_rate"]) if body.get("write_rate") is not None else w.rate
        w.read_only = bool(body.get("read_only", w.read_only))
    if "lag_seconds" in body or "broken" in body:
        f = RDS.followers.setdefault(key, Follower())
        f.lag = float(body.get("lag_seconds", f.lag))
        f.broken_by_hand = bool(body.get("broken", f.broken_by_hand))
    return RDS.replication(key)


def get_replication(_b: dict[str, Any], _q: dict[str, str], region: str, kind: str, ident: str) -> dict[str, Any]:
    return RDS.replication(_key(kind, region, ident))


def copies(_b: dict[str, Any], _q: dict[str, str], region: str) -> dict[str, Any]:
    return {
        "region": region,
        "in_flight": RDS.in_flight(region),
        "max_in_flight": RDS.max_in_flight.get(region, 0),
        "quota": SIM.cfg(region, "copy_quota"),
    }


def maintain(body: dict[str, Any], _q: dict[str, str], region: str, kind: str, ident: str) -> dict[str, Any]:
    """RDS applies a pending maintenance action now, for `seconds` (what the instance shows
    meanwhile is the test's to set: a hold, or `available` through a Multi-AZ failover)."""
    known = {"action", "description", "seconds"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ValueError(f"unknown maintenance fields {unknown}; known: {sorted(known)}")
    with SIM.lock:
        return RDS.maintain(
            _key(kind, region, ident),
            body.get("action", "system-update"),
            body.get("description", "New Operating System update is available"),
            float(body.get("seconds", 300)),
        )


def network(body: dict[str, Any], _q: dict[str, str], region: str) -> dict[str, Any]:
    """What the shipped Terraform makes for restore tests (infra/verifier.tf): a VPC with a
    subnet in two zones, a security group without ingress rules, and a DB subnet group over
    the subnets. The test bed has no EC2 client of its own; this makes them in moto as the
    EC2 and RDS APIs would."""
    from moto.ec2.models import ec2_backends

    name, account = body["name"], body.get("account", ACCOUNT)
    with SIM.lock:
        ec2 = ec2_backends[account][region]
        vpc = ec2.create_vpc("10.90.0.0/16")
        subnets = [
            ec2.create_subnet(vpc.id, f"10.90.{i}.0/24", availability_zone=f"{region}{zone}")
            for i, zone in enumerate("ab", start=1)
        ]
        group = ec2.create_security_group(f"{name}-restore-tests", "restore tests: no ingress", vpc_id=vpc.id)
        group.egress_rules = []  # Terraform removes the default allow-all egress rule; moto keeps it
        rds_backends[account][region].create_subnet_group(name, "restore tests", subnets, [])
    return {"vpc": vpc.id, "subnet_group": name, "security_group": group.id}
