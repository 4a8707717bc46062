"""make bench: drpilot's snapshot copier against a plain boto3 script doing the same job
(copier_peer.py), at 1,000 tagged DB instances, on the same simulator and account.

Rows: the first run (an empty DR region: both start 20 copies, AWS's quota, and queue the rest),
the steady state (every newest snapshot already copied: what every scheduled run costs) twice,
once listing the DR region (drpilot's ledger removed; the run writes it again) and once on the
ledger (what two scheduled runs in three cost), and a new snapshot (drpilot handles its RDS
event alone; the peer has no event path, so it runs whole).
Each tool copies into its own DR region (the quota counts per destination region). Copies take
3 s here (AWS: minutes to hours); between the first run and the steady state the copies are made
instant and the quota lifted, and each tool runs until nothing is left to copy (not measured).

Figures per run: the whole process's wall time and peak RSS (GNU time), and the AWS calls it
made, counted at the simulator's wire log. The emulator is one Python process behind one lock,
so the absolute times say more about moto than about RDS; the calls are what AWS would see.
Writes the table as JSON to target/bench/copier.json.
"""

import json
import os
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3

from common import ENDPOINT, REPO, calls_since, control, machine, measured, save, wire_mark

SOURCE, DR_DRPILOT, DR_PEER = "us-east-1", "us-west-2", "us-west-1"
DATABASES = int(os.environ.get("BENCH_DATABASES", "1000"))
COPIER = os.path.join(REPO, "target", "release", "snapshot-copier")
PEER = os.path.join(REPO, "tests", "bench", "copier_peer.py")
PYTHON = sys.executable


def main():
    rds = boto3.client("rds", region_name=SOURCE, endpoint_url=ENDPOINT)
    sns = boto3.client("sns", region_name=SOURCE, endpoint_url=ENDPOINT)
    run = f"bench{int(time.time())}"
    tag = ("drpilot:copy", run)
    for region in (DR_DRPILOT, DR_PEER):
        control("PUT", f"/regions/{region}", {"copy_seconds": 3.0})
    topic = sns.create_topic(Name=f"{run}-responders")["TopicArn"]
    s3 = boto3.client("s3", region_name=DR_DRPILOT, endpoint_url=ENDPOINT)
    state = f"{run}-state"
    s3.create_bucket(Bucket=state, CreateBucketConfiguration={"LocationConstraint": DR_DRPILOT})

    print(f"creating {DATABASES} DB instances in {SOURCE} ...", file=sys.stderr)

    def create(i):
        rds.create_db_instance(
            DBInstanceIdentifier=f"{run}-db{i:04d}",
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            AllocatedStorage=20,
            MasterUsername="app",
            MasterUserPassword="correct-horse-battery",
            BackupRetentionPeriod=7,
            Tags=[{"Key": tag[0], "Value": tag[1]}],
        )

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, range(DATABASES)))

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("DRPILOT_")}
    base_env["AWS_ENDPOINT_URL"] = ENDPOINT
    drpilot_env = dict(
        base_env,
        DRPILOT_SOURCE_REGION=SOURCE,
        DRPILOT_DR_REGION=DR_DRPILOT,
        DRPILOT_SELECT_TAG=f"{tag[0]}={tag[1]}",
        DRPILOT_NOTIFY_TOPIC_ARN=topic,
        DRPILOT_STATE_BUCKET=state,
        DRPILOT_S3_FORCE_PATH_STYLE="true",
        RUST_LOG="warn",
    )
    schedule = os.path.join(REPO, "events", "snapshot-copier", "schedule.json")

    def drpilot(event=schedule):
        mark = wire_mark()
        wall, rss, out = measured([COPIER, "--event", event], drpilot_env)
        report = json.loads(out)
        statuses = Counter(d["status"] for d in report["dbs"])
        return wall, rss, sum(calls_since(mark).values()), statuses["copied"]

    def peer():
        mark = wire_mark()
        wall, rss, out = measured([PYTHON, PEER, SOURCE, DR_PEER, f"{tag[0]}={tag[1]}"], base_env)
        return wall, rss, sum(calls_since(mark).values()), json.loads(out)["copied"]

    rows = [("first run", drpilot(), peer())]

    print("bringing both DR regions to the steady state ...", file=sys.stderr)
    for region in (DR_DRPILOT, DR_PEER):
        control("PUT", f"/regions/{region}", {"copy_seconds": 0.0, "copy_quota": 100000})
    time.sleep(3.5)
    while drpilot()[3] > 0:
        pass
    while peer()[3] > 0:
        pass
    for region in (DR_DRPILOT, DR_PEER):
        control("DELETE", f"/regions/{region}")

    for ledger in s3.list_objects_v2(Bucket=state, Prefix="drpilot/copier/").get("Contents", []):
        s3.delete_object(Bucket=state, Key=ledger["Key"])
    rows.append(("steady, DR region listed", drpilot(), peer()))
    rows.append(("steady, on the ledger", drpilot(), peer()))

    snapshot = f"{run}-db0000-before-migration"
    rds.create_db_snapshot(DBInstanceIdentifier=f"{run}-db0000", DBSnapshotIdentifier=snapshot)
    event = json.load(open(os.path.join(REPO, "events", "snapshot-copier", "rds-manual-snapshot-created.json")))
    event["region"], event["detail"]["SourceIdentifier"] = SOURCE, snapshot
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(event, f)
    rows.append(("a new snapshot (event)", drpilot(f.name), peer()))

    print()
    print(f"snapshot copier at {DATABASES} DB instances, {SOURCE} -> DR, on the drpilot simulator (moto) {ENDPOINT}")
    print(f"{time.strftime('%Y-%m-%d')}, {machine()}; reproduce: make bench-copier (BENCH_DATABASES=N)")
    print(f"{'':24} | {'drpilot snapshot-copier':^36} | {'boto3 script (copier_peer.py)':^36}")
    head = f"{'wall s':>7} {'peak MiB':>9} {'AWS calls':>10} {'copied':>7}"
    print(f"{'run':24} | {head}  | {head}")
    for label, d, p in rows:
        cell = lambda r: f"{r[0]:7.2f} {r[1]:9.1f} {r[2]:10d} {r[3]:7d}"  # noqa: E731
        print(f"{label:24} | {cell(d)}  | {cell(p)}")
    save("copier", ("wall_seconds", "peak_mib", "aws_calls", "copied"), rows, databases=DATABASES)


if __name__ == "__main__":
    main()
