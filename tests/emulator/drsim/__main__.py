"""python -m drsim -H 127.0.0.1 -p PORT: moto server with drpilot's AWS-on-a-bad-night layer."""

import argparse
import os
import re
import sys
from dataclasses import asdict
from typing import Any, Callable

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from . import autoscaling, cloudwatch, delivery, ecs, rds, route53, s3
from .core import SIM, DEFAULTS, Outage
from .http import Simulator


def _settings(body: dict[str, Any], _q: dict[str, str], region: str) -> dict[str, Any]:
    return SIM.configure(region, body) if body else SIM.settings(region)


def _reset_settings(_b: dict[str, Any], _q: dict[str, str], region: str) -> dict[str, Any]:
    SIM.regions.pop(region, None)
    return SIM.settings(region)


def _outage(body: dict[str, Any], _q: dict[str, str], region: str) -> dict[str, Any]:
    known = set(Outage.__dataclass_fields__) - {"since"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ValueError(f"unknown outage fields {unknown}; known: {sorted(known)}")
    outage = Outage(**body)
    if outage.mode not in ("reset", "timeout", "unavailable"):
        raise ValueError("mode is reset, timeout or unavailable")
    if outage.partition:
        outage.writes_continue = True
    SIM.outages[region] = outage
    return {"region": region, **asdict(outage)}


def _end_outage(_b: dict[str, Any], _q: dict[str, str], region: str) -> dict[str, Any]:
    return {"region": region, "was_dark": SIM.outages.pop(region, None) is not None}


def _fault(body: dict[str, Any], _q: dict[str, str]) -> dict[str, Any]:
    return asdict(SIM.add_fault(body))


def _faults(_b: dict[str, Any], _q: dict[str, str]) -> dict[str, Any]:
    return {"faults": [asdict(f) for f in SIM.faults]}


def _clear_fault(_b: dict[str, Any], _q: dict[str, str], ident: str) -> dict[str, Any]:
    before = len(SIM.faults)
    SIM.faults = [f for f in SIM.faults if str(f.id) != ident]
    return {"removed": before - len(SIM.faults)}


def _wire(_b: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    since = int(query.pop("since", "0"))
    entries = SIM.wire_since(since, query)
    return {"entries": entries, "next": SIM._seq}


def _status(_b: dict[str, Any], _q: dict[str, str]) -> dict[str, Any]:
    return {
        "simulator": "drsim",
        "defaults": DEFAULTS,
        "regions": SIM.regions,
        "outages": {r: asdict(o) for r, o in SIM.outages.items()},
        "faults": len(SIM.faults),
        "wire": SIM._seq,
    }


R = Callable[..., Any]
ROUTES: list[tuple[str, re.Pattern, R]] = [
    (method, re.compile(f"^/drsim{path}$"), handler)
    for method, path, handler in [
        ("GET", "", _status),
        ("GET", r"/regions/([^/]+)", _settings),
        ("PUT", r"/regions/([^/]+)", _settings),
        ("DELETE", r"/regions/([^/]+)", _reset_settings),
        ("POST", r"/outages/([^/]+)", _outage),
        ("DELETE", r"/outages/([^/]+)", _end_outage),
        ("POST", "/faults", _fault),
        ("GET", "/faults", _faults),
        ("DELETE", r"/faults/([^/]+)", _clear_fault),
        ("GET", "/wire", _wire),
        ("POST", r"/rds/([^/]+)/(instances|clusters)/([^/]+)/status", rds.hold_status),
        ("POST", r"/rds/([^/]+)/(instances|clusters)/([^/]+)/maintenance", rds.maintain),
        ("PUT", r"/rds/([^/]+)/(instances|clusters)/([^/]+)/replication", rds.set_replication),
        ("GET", r"/rds/([^/]+)/(instances|clusters)/([^/]+)/replication", rds.get_replication),
        ("GET", r"/rds/([^/]+)/copies", rds.copies),
        ("POST", r"/rds/([^/]+)/network", rds.network),
        ("GET", r"/cloudwatch/([^/]+)/alarms/([^/]+)", cloudwatch.history),
        ("PUT", r"/route53/healthchecks/([^/]+)", route53.set_health),
        ("GET", r"/route53/zones/([^/]+)/resolve/([^/]+)", route53.resolve),
        ("PUT", r"/functions/([^/]+)", delivery.register),
        ("GET", "/functions/undelivered", delivery.undelivered),
        ("POST", r"/s3/([^/]+)/inventory", s3.deliver),
    ]
]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="drsim")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto builds queue URLs with it
    rds.install()
    cloudwatch.install()
    route53.install()
    s3.install()
    autoscaling.install()
    ecs.install()
    SIM.run_clock()
    app = Simulator(DomainDispatcherApplication(create_backend_app), ROUTES)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"drsim: moto with the simulator on http://{args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
