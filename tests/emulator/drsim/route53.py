"""Route 53: health checkers that see a dark region, changes that take time to propagate, and
the data plane's answers to failover records.

moto reports one healthy checker for every health check and every change as INSYNC at once.
AWS runs each health check from checkers in several regions ("How Amazon Route 53 checks the
health of your resources"); an endpoint in a region that does not answer fails at every
checker, and a checker in a dark region reports nothing. A change is PENDING until it has
propagated to all Route 53 servers ("GetChange": usually within 60 seconds).

moto keeps failover records but answers no DNS query, and drops a CLOUDWATCH_METRIC health
check's alarm. Here `GET /drsim/route53/zones/{zone}/resolve/{name}` answers as Route 53's
resolvers do ("Failover routing", "How Amazon Route 53 determines whether a health check is
healthy", Route 53 Developer Guide): the PRIMARY record while its health check is healthy (a
record without one counts as healthy), else the SECONDARY if it is healthy, else the PRIMARY.
A health check of a CloudWatch alarm reads the alarm's data stream, not its state (so neither
`TreatMissingData` nor SetAlarmState moves it): healthy while the data says OK, unhealthy while
it says ALARM, and as `InsufficientDataHealthStatus` says when no datapoint is in the alarm's
evaluation range (LastKnownStatus: what it last saw, healthy for a new check); `Inverted`
turns it over. An endpoint check is healthy while more than 18% of its
checkers report it healthy. The data plane does not depend on Route 53's API: an outage of
us-east-1 that includes the global services leaves these answers as they are.
"""

import re
import uuid
from datetime import datetime, timezone
from typing import Any

from moto.core.responses import ActionResult
from moto.route53.exceptions import Route53ClientError
from moto.route53.models import route53_backends
from moto.route53.responses import Route53

from .cloudwatch import data_stream_state
from .core import ACCOUNT, SIM, now

CHECKER_REGIONS = [
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
]
ENDPOINT_REGION = re.compile(r"\.([a-z]{2}(?:-gov)?-[a-z]+-\d)\.")


class HealthCheckers:
    def __init__(self) -> None:
        self.overrides: dict[str, str] = {}  # health check id -> failing | healthy
        self.changes: dict[str, float] = {}  # change id -> when it is INSYNC
        # CLOUDWATCH_METRIC health checks: id -> AlarmIdentifier and InsufficientDataHealthStatus
        self.alarms: dict[str, dict[str, Any]] = {}
        self.last_known: dict[str, bool] = {}

    def watch(self, hc_id: str, t: float) -> str:
        """A CloudWatch-alarm health check reads the alarm's data stream, not its state; what
        it last saw decides `LastKnownStatus` while the data is insufficient."""
        watched = self.alarms[hc_id]
        state = data_stream_state(watched["Region"], watched["Name"], t)
        if state != "INSUFFICIENT_DATA":
            self.last_known[hc_id] = state == "OK"
        return state

    def tick(self, t: float) -> None:
        for hc_id in list(self.alarms):
            self.watch(hc_id, t)

    def healthy(self, hc: Any) -> tuple[bool, str]:
        """Route 53's verdict on a health check, and why."""
        forced = self.overrides.get(hc.id)
        if forced is not None:
            return forced == "healthy", f"set {forced} by the test"
        watched = self.alarms.get(hc.id)
        if watched is not None:
            state = self.watch(hc.id, now())
            if state == "INSUFFICIENT_DATA":
                mode = watched.get("InsufficientDataHealthStatus") or "LastKnownStatus"
                # a new check counts as healthy (unhealthy if inverted) until there is data
                verdict = {"Healthy": True, "Unhealthy": False}.get(mode, self.last_known.get(hc.id, True))
                why = f"alarm {watched['Name']}'s data ({watched['Region']}) is insufficient: {mode}"
            else:
                verdict = state == "OK"
                why = f"alarm {watched['Name']}'s data ({watched['Region']}) says {state}"
        else:
            seen = self.observations(hc)
            ok = sum(1 for o in seen if o["StatusReport"]["Status"].startswith("Success"))
            verdict = len(seen) > 0 and ok * 100 > 18 * len(seen)
            why = f"{ok} of {len(seen)} checkers report it healthy"
        if hc.inverted:
            return not verdict, why + " (inverted)"
        return verdict, why

    def observations(self, hc: Any) -> list[dict[str, Any]]:
        target = hc.fqdn or hc.ip_address or ""
        found = ENDPOINT_REGION.search(f".{target}.")
        outage = SIM.dark(found.group(1)) if found is not None else None
        endpoint_dark = outage is not None and not outage.partition
        forced = self.overrides.get(hc.id)
        failing = forced == "failing" or (forced is None and endpoint_dark)
        checked = datetime.fromtimestamp(now(), tz=timezone.utc)
        out = []
        for region in CHECKER_REGIONS:
            checker_outage = SIM.dark(region)
            if checker_outage is not None and not checker_outage.partition:
                continue  # a checker in a dark region reports nothing
            status = (
                "Failure: Connection timed out. The endpoint or the internet connection is down, or requests are being blocked by your firewall."
                if failing
                else f"Success: TCP connection established to {target}."
            )
            out.append({"Region": region, "IPAddress": "15.177.0.1", "StatusReport": {"Status": status, "CheckedTime": checked}})
        return out


CHECKERS = HealthCheckers()


def install() -> None:
    original_change = Route53.change_resource_record_sets
    original_create_health_check = Route53.create_health_check

    def create_health_check(self: Route53) -> ActionResult:
        result = original_create_health_check(self)
        config = self._get_param("HealthCheckConfig") or {}
        if config.get("Type") == "CLOUDWATCH_METRIC":
            alarm = config.get("AlarmIdentifier") or {}
            if not alarm.get("Name") or not alarm.get("Region"):
                raise Route53ClientError("InvalidInput", "A CLOUDWATCH_METRIC health check needs an AlarmIdentifier with Name and Region.")
            hc = result.result["HealthCheck"]  # type: ignore[index]
            CHECKERS.alarms[hc.id] = {
                "Name": alarm["Name"],
                "Region": alarm["Region"],
                "InsufficientDataHealthStatus": config.get("InsufficientDataHealthStatus"),
            }
        return result

    def get_health_check_status(self: Route53) -> ActionResult:
        hc = self.backend.get_health_check(self._get_param("HealthCheckId"))
        return ActionResult({"HealthCheckObservations": CHECKERS.observations(hc)})

    def change_resource_record_sets(self: Route53) -> ActionResult:
        # AWS refuses a simple record beside routing-policy records of the same name and type
        # (and the other way round); moto would keep both, and a resolver could answer either.
        zone = self.backend.get_hosted_zone(self._get_param("HostedZoneId"))
        for change in self._get_param("ChangeBatch.Changes") or []:
            new = change.get("ResourceRecordSet") or {}
            if change.get("Action") not in ("CREATE", "UPSERT"):
                continue
            name = new.get("Name", "").rstrip(".") + "."
            for old in zone.rrsets:
                same = old.name.rstrip(".") + "." == name and old.type == new.get("Type")
                if same and bool(old.set_identifier) != bool(new.get("SetIdentifier")):
                    kind = "non-failover" if old.set_identifier is None else "failover"
                    raise Route53ClientError(
                        "InvalidChangeBatch",
                        f"[RRSet with DNS name {name}, type {new.get('Type')} cannot be created as a {kind} set exists with the same name and type.]",
                    )
        result = original_change(self)
        info = result.result["ChangeInfo"]  # type: ignore[index]
        change_id = "C" + uuid.uuid4().hex[:13].upper()
        info["Id"] = f"/change/{change_id}"
        seconds = float(SIM.cfg("global", "dns_propagation_seconds"))
        CHECKERS.changes[change_id] = now() + seconds
        info["Status"] = "PENDING" if seconds > 0 else "INSYNC"
        return result

    def get_change(self: Route53) -> ActionResult:
        change_id = self._get_param("Id").split("/")[-1]
        due = CHECKERS.changes.get(change_id, 0.0)
        return ActionResult(
            {
                "ChangeInfo": {
                    "Id": f"/change/{change_id}",
                    "Status": "INSYNC" if now() >= due else "PENDING",
                    "SubmittedAt": datetime.fromtimestamp(now(), tz=timezone.utc),
                }
            }
        )

    Route53.get_health_check_status = get_health_check_status
    Route53.create_health_check = create_health_check
    SIM.tickers.append(CHECKERS.tick)
    Route53.change_resource_record_sets = change_resource_record_sets
    Route53.get_change = get_change


def set_health(body: dict[str, Any], _q: dict[str, str], health_check_id: str) -> dict[str, Any]:
    status = body.get("status")
    if status not in ("failing", "healthy", None):
        raise ValueError("status is failing, healthy or null (follow the endpoint's region)")
    if status is None:
        CHECKERS.overrides.pop(health_check_id, None)
    else:
        CHECKERS.overrides[health_check_id] = status
    return {"health_check_id": health_check_id, "status": status}


def resolve(_b: dict[str, Any], _q: dict[str, str], zone_id: str, name: str) -> dict[str, Any]:
    """What Route 53's resolvers answer for `name` in the hosted zone now (see the module)."""
    with SIM.lock:
        backend = route53_backends[ACCOUNT]["aws"]
        zone = backend.get_hosted_zone(zone_id)
        wanted = name.rstrip(".") + "."
        records = [r for r in zone.rrsets if r.name.rstrip(".") + "." == wanted and r.type in ("CNAME", "A", "AAAA")]
        if not records:
            raise KeyError(f"no record {name} in hosted zone {zone_id}")

        def health(record: Any) -> tuple[bool, str]:
            if not record.health_check_id:
                return True, "no health check"
            return CHECKERS.healthy(backend.get_health_check(record.health_check_id))

        def answer(record: Any, which: str, why: str) -> dict[str, Any]:
            return {"name": wanted, "values": list(record.records), "record": which, "why": why}

        by_role = {r.failover: r for r in records if r.failover}
        if not by_role:
            return answer(records[0], "simple", "a simple record")
        primary, secondary = by_role.get("PRIMARY"), by_role.get("SECONDARY")
        if primary is not None:
            ok, why = health(primary)
            if ok:
                return answer(primary, "PRIMARY", f"PRIMARY healthy: {why}")
        if secondary is not None:
            ok2, why2 = health(secondary)
            if ok2 or primary is None:
                return answer(secondary, "SECONDARY", f"PRIMARY unhealthy ({why}); SECONDARY: {why2}")
        return answer(primary, "PRIMARY", "every record unhealthy: Route 53 answers the PRIMARY")
