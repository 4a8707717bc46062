"""make bench: drpilot's lag checker against a plain boto3 script doing the same job one
resource at a time (lag_peer.py), at 500 cross-region read replicas, on the same simulator and
account.

Each replica reports a `ReplicaLag` datapoint as RDS would (one in ten over its 60 s budget).
Both tools measure all 500 against their budgets and publish two metrics per resource; drpilot
also keeps its alert state and notifies the responders' topic of the breaches (on its first run;
the second run, what every scheduled minute costs, sends nothing new).

Figures per run: the whole process's wall time and peak RSS (GNU time), the AWS calls it made
and the `GetMetricData` calls among them, counted at the simulator's wire log. The emulator is
one Python process behind one lock, so the absolute times say more about moto than about AWS;
the calls are what AWS would see (and bill: GetMetricData is priced per metric requested).
Writes the table as JSON to target/bench/lag.json.
"""

import json
import os
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import boto3

from common import ENDPOINT, REPO, calls_since, machine, measured, save, wire_mark

SOURCE, DR = "eu-west-1", "eu-central-1"
RESOURCES = int(os.environ.get("BENCH_RESOURCES", "500"))
CHECKER = os.path.join(REPO, "target", "release", "lag-checker")
PEER = os.path.join(REPO, "tests", "bench", "lag_peer.py")
PYTHON = sys.executable


def main():
    client = lambda service, region: boto3.client(service, region_name=region, endpoint_url=ENDPOINT)  # noqa: E731
    src, dr, cw = client("rds", SOURCE), client("rds", DR), client("cloudwatch", DR)
    s3, sns = client("s3", DR), client("sns", DR)
    run = f"bench{int(time.time())}"
    state = f"{run}-state"
    s3.create_bucket(Bucket=state, CreateBucketConfiguration={"LocationConstraint": DR})
    topic = sns.create_topic(Name=f"{run}-responders")["TopicArn"]

    print(f"creating {RESOURCES} DB instances in {SOURCE} and their read replicas in {DR} ...", file=sys.stderr)

    def create(i):
        primary = f"{run}-db{i:04d}"
        src.create_db_instance(
            DBInstanceIdentifier=primary,
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            AllocatedStorage=20,
            MasterUsername="app",
            MasterUserPassword="correct-horse-battery",
        )
        dr.create_db_instance_read_replica(
            DBInstanceIdentifier=f"{primary}-dr",
            SourceDBInstanceIdentifier=f"arn:aws:rds:{SOURCE}:123456789012:db:{primary}",
            DBInstanceClass="db.t3.micro",
        )

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, range(RESOURCES)))
    resources = [
        {"name": f"{run}-db{i:04d}", "kind": "rds-replica", "replica": f"{run}-db{i:04d}-dr", "rpo_seconds": 60}
        for i in range(RESOURCES)
    ]
    now = datetime.now(timezone.utc)
    lag = lambda i: 300.0 if i % 10 == 0 else float(i % 30)  # noqa: E731
    data = [
        {
            "MetricName": "ReplicaLag",
            "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": r["replica"]}],
            "Value": lag(i),
            "Timestamp": now,
            "Unit": "Seconds",
        }
        for i, r in enumerate(resources)
    ]
    for start in range(0, len(data), 1000):
        cw.put_metric_data(Namespace="AWS/RDS", MetricData=data[start : start + 1000])

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("DRPILOT_")}
    base_env["AWS_ENDPOINT_URL"] = ENDPOINT
    checker_env = dict(
        base_env,
        DRPILOT_SOURCE_REGION=SOURCE,
        DRPILOT_DR_REGION=DR,
        DRPILOT_RESOURCES=json.dumps(resources),
        DRPILOT_METRIC_NAMESPACE=f"{run}-drpilot",
        DRPILOT_STATE_BUCKET=state,
        DRPILOT_NOTIFY_TOPIC_ARN=topic,
        DRPILOT_S3_FORCE_PATH_STYLE="true",
        RUST_LOG="warn",
    )
    schedule = os.path.join(REPO, "events", "lag-checker", "schedule.json")

    def counted(argv, env, statuses):
        mark = wire_mark()
        wall, rss, out = measured(argv, env)
        calls = calls_since(mark)
        return wall, rss, sum(calls.values()), calls["GetMetricData"], statuses(json.loads(out))

    def drpilot():
        # the Lambda timeout as shipped (55 s): the run measures for 45 s of it at most
        argv = [CHECKER, "--event", schedule, "--timeout-secs", "55"]
        return counted(argv, checker_env, lambda r: Counter(x["status"] for x in r["resources"]))

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(resources, f)

    def peer():
        return counted([PYTHON, PEER, DR, f.name, f"{run}-peer"], base_env, Counter)

    rows = [("first run", drpilot(), peer()), ("every minute after", drpilot(), peer())]
    print()
    print(f"lag checker at {RESOURCES} read replicas ({DR}), on the drpilot simulator (moto) {ENDPOINT}")
    print(f"{time.strftime('%Y-%m-%d')}, {machine()}; reproduce: make bench-lag (BENCH_RESOURCES=N)")
    print(f"{'':20} | {'drpilot lag-checker':^41} | {'boto3 script, one at a time (lag_peer.py)':^41}")
    head = f"{'wall s':>7} {'peak MiB':>9} {'AWS calls':>10} {'GetMetricData':>13}"
    print(f"{'run':20} | {head} | {head}")
    for label, d, p in rows:
        cell = lambda r: f"{r[0]:7.2f} {r[1]:9.1f} {r[2]:10d} {r[3]:13d}"  # noqa: E731
        print(f"{label:20} | {cell(d)} | {cell(p)}")
    for label, d, p in rows:
        for who, r in (("drpilot", d), ("boto3", p)):
            if r[4] != Counter(healthy=RESOURCES - len(range(0, RESOURCES, 10)), breached=len(range(0, RESOURCES, 10))):
                sys.exit(f"{who}'s {label} measured {dict(r[4])}, not what the replicas report")
    # The targets issue 14 set at 500 resources: a run within 10 s, with at most 5 GetMetricData.
    for label, d, _ in rows:
        if RESOURCES <= 500 and (d[0] > 10.0 or d[3] > 5):
            sys.exit(f"drpilot's {label} missed its target: {d[0]:.2f} s (<= 10), {d[3]} GetMetricData (<= 5)")
    save("lag", ("wall_seconds", "peak_mib", "aws_calls", "get_metric_data_calls"), rows, resources=RESOURCES)


if __name__ == "__main__":
    main()
