"""What every benchmark shares: the simulator's address and control API (the wire log counts
the AWS calls each tool made), whole-process measurement under GNU time, and the JSON each
bench writes to target/bench/."""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ENDPOINT = os.environ["DRPILOT_EMULATOR_URL"]
TIME = "/usr/bin/time"


def measured(argv, env):
    """Runs argv under GNU time; returns (wall seconds, peak RSS in MiB, stdout). Not measured
    from here: a child of this Python process would report this process's size as its peak
    (the kernel keeps the pre-exec high-water mark)."""
    if not os.access(TIME, os.X_OK):
        sys.exit(f"{TIME} is missing: install GNU time (apt-get install time) to measure peak memory")
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as figures:
        code = subprocess.call([TIME, "-f", "%e %M", "-o", figures.name, *argv], env=env, stdout=out, stderr=err)
        wall, rss_kib = figures.read().split()[-2:]
    out.seek(0)
    err.seek(0)
    text = out.read().decode()
    if code != 0:
        sys.exit(f"{argv[0]} failed:\n{err.read().decode()}\n{text}")
    return float(wall), int(rss_kib) / 1024, text


def control(method, path, body=None):
    req = urllib.request.Request(
        f"{ENDPOINT}/drsim{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read() or b"null")


def wire_mark():
    return control("GET", "/wire?since=999999999")["next"]


def calls_since(mark, service=None):
    """The AWS calls made since `mark` (of `service` only, if given), counted by action."""
    entries = control("GET", f"/wire?since={mark}")["entries"]
    return Counter(e["action"] for e in entries if e.get("service") and (service is None or e["service"] == service))


def machine():
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def save(name, fields, rows, peer="boto3", **meta):
    """Writes a bench's rows (label, drpilot's figures, the peer's, each in `fields` order) to
    target/bench/<name>.json, with the date, the machine and `meta`."""
    os.makedirs(os.path.join(REPO, "target", "bench"), exist_ok=True)
    with open(os.path.join(REPO, "target", "bench", f"{name}.json"), "w") as out:
        json.dump(
            {
                "date": time.strftime("%Y-%m-%d"),
                "machine": machine(),
                **meta,
                "rows": [
                    {"run": label, "drpilot": dict(zip(fields, d)), peer: dict(zip(fields, p))}
                    for label, d, p in rows
                ],
            },
            out,
            indent=2,
        )
