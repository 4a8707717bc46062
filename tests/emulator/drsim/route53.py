"""Route 53: health checkers that see a dark region, and changes that take time to propagate.

moto reports one healthy checker for every health check and every change as INSYNC at once.
AWS runs each health check from checkers in several regions ("How Amazon Route 53 checks the
health of your resources"); an endpoint in a region that does not answer fails at every
checker, and a checker in a dark region reports nothing. A change is PENDING until it has
propagated to all Route 53 servers ("GetChange": usually within 60 seconds).
"""

import re
import uuid
from datetime import datetime, timezone
from typing import Any

from moto.core.responses import ActionResult
from moto.route53.responses import Route53

from .core import SIM, now

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

    def get_health_check_status(self: Route53) -> ActionResult:
        hc = self.backend.get_health_check(self._get_param("HealthCheckId"))
        return ActionResult({"HealthCheckObservations": CHECKERS.observations(hc)})

    def change_resource_record_sets(self: Route53) -> ActionResult:
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
