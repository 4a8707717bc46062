"""make bench: drpilot's S3 backup against `aws s3 sync` (the seed tutorial's daily job), on the
same simulator, at 2,000 and 20,000 objects (BENCH_OBJECTS="2000,20000"). For each tool and
run: the process's wall time and peak memory (max RSS), and the S3 requests it made, counted at
the simulator's wire log. Writes the tables as JSON to target/bench/s3.json.

The runs: the first (drpilot lists the bucket: S3 Inventory has delivered no report yet), a
rerun with no change on a listing, then reruns on S3 Inventory's daily report (the simulator
delivers it, as S3 would between two daily runs; its writes are S3's, not counted): the first
one on a report (it reads the listing runs' 1,000-key manifest parts), one more with no change,
and one after 10% changed. `aws s3 sync` has no report to read: each of its reruns lists both
buckets.

Both tools copy server-side from a source bucket (us-east-1) into a DR-region bucket
(us-west-2) encrypted with a DR KMS key. drpilot runs its release build of the s3-backup
function once per run (`--event`), as Lambda would; aws runs `aws s3 sync`. Concurrency is each
tool's default (drpilot 32 copies in flight, awscli 10 requests).

The emulator is one Python process, so absolute times say more about moto than about S3; the
comparison is what matters: what each tool requests, and what it holds in memory.
"""

import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

from common import ENDPOINT, REPO, calls_since, control, measured, save, wire_mark

SOURCE, DR = "us-east-1", "us-west-2"
SIZES = [int(n) for n in os.environ.get("BENCH_OBJECTS", "2000,20000").split(",")]
AWS = os.path.join(REPO, ".venv-bench", "bin", "aws")
BACKUP = os.path.join(REPO, "target", "release", "s3-backup")
AWSCLI = "awscli 1.46.2"


def client(service, region):
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=ENDPOINT,
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=32),
    )


def bench(objects):
    """The three runs at `objects` objects: [(label, drpilot's figures, sync's figures)]."""
    s3_src, s3_dr, kms, sns = client("s3", SOURCE), client("s3", DR), client("kms", DR), client("sns", DR)
    run = f"bench-{objects}-{int(time.time())}"
    src, dr_drpilot, dr_sync, state = f"{run}-prod", f"{run}-dr", f"{run}-sync-dr", f"{run}-state"
    s3_src.create_bucket(Bucket=src)
    inventory = f"{run}-inventory"
    s3_src.create_bucket(Bucket=inventory)
    # what infra/backups.tf configures for a backup with inventory = true
    s3_src.put_bucket_inventory_configuration(
        Bucket=src,
        Id="drpilot",
        InventoryConfiguration={
            "Id": "drpilot",
            "IsEnabled": True,
            "Destination": {"S3BucketDestination": {"Bucket": f"arn:aws:s3:::{inventory}", "Format": "CSV", "Prefix": "inventory"}},
            "Schedule": {"Frequency": "Daily"},
            "IncludedObjectVersions": "Current",
            "OptionalFields": ["Size", "LastModifiedDate", "ETag", "StorageClass"],
        },
    )
    for b in (dr_drpilot, dr_sync, state):
        s3_dr.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": DR})
    s3_dr.put_bucket_versioning(Bucket=dr_drpilot, VersioningConfiguration={"Status": "Enabled"})
    key = kms.create_key(Description="DR backups")["KeyMetadata"]["Arn"]
    topic = sns.create_topic(Name=f"{run}-responders")["TopicArn"]

    print(f"seeding s3://{src} with {objects} objects (1-16 KiB) ...", file=sys.stderr)

    def put(i, tag="v1"):
        body = (f"{tag} object {i} ".encode() * 1024)[: 1024 * (1 + i % 16)]
        s3_src.put_object(Bucket=src, Key=f"assets/{i // 100:02d}/{i:05d}.bin", Body=body)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(objects)))

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("DRPILOT_")}
    drpilot_env = dict(
        base_env,
        DRPILOT_SOURCE_REGION=SOURCE,
        DRPILOT_DR_REGION=DR,
        DRPILOT_S3_BACKUPS=json.dumps([{
            "name": "assets", "source_bucket": src, "dr_bucket": dr_drpilot, "kms_key_id": key,
            "inventory": f"s3://{inventory}/inventory/{src}/drpilot/",
        }]),
        DRPILOT_STATE_BUCKET=state,
        DRPILOT_NOTIFY_TOPIC_ARN=topic,
        DRPILOT_S3_FORCE_PATH_STYLE="true",
        RUST_LOG="warn",
    )
    aws_config = tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False)
    aws_config.write("[default]\ns3 =\n    addressing_style = path\n")
    aws_config.close()
    aws_env = dict(base_env, AWS_CONFIG_FILE=aws_config.name, AWS_DEFAULT_REGION=DR)
    event = os.path.join(REPO, "events", "s3-backup", "schedule.json")
    day_prefix = time.strftime("%Y-%m-%d")

    def drpilot():
        mark = wire_mark()
        wall, rss, out = measured([BACKUP, "--event", event], drpilot_env)
        report = json.loads(out)["backups"][0]
        expected = "inventory" if report_delivered else "listing"
        if ("inventory" in report) != (expected == "inventory"):
            sys.exit(f"drpilot's run was expected to read its keys from the {expected}: {report}")
        return wall, rss, report["counts"]["copied"], sum(calls_since(mark, "s3").values())

    def sync():
        argv = [AWS, "s3", "sync", f"s3://{src}", f"s3://{dr_sync}/{day_prefix}/", "--endpoint-url", ENDPOINT,
                "--source-region", SOURCE, "--region", DR, "--sse", "aws:kms", "--sse-kms-key-id", key,
                "--no-progress"]
        mark = wire_mark()
        wall, rss, out = measured(argv, aws_env)
        return wall, rss, sum(1 for line in out.splitlines() if line.startswith("copy:")), sum(calls_since(mark, "s3").values())

    rows = []
    report_delivered = False
    for label, change, report in [
        ("first run", None, False),
        ("rerun, no change", None, False),
        ("rerun on the first report", None, True),
        ("rerun, no change, report", None, True),
        ("rerun, 10% changed, report", 10, True),
    ]:
        if change:
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda i: put(i, "v2"), range(0, objects, change)))
            time.sleep(1.1)  # moto's timestamps have one-second resolution
        if report:
            time.sleep(1.1)  # a report taken after the last run began
            control("POST", f"/s3/{src}/inventory", {})
        report_delivered = report
        d = drpilot()
        a = sync()
        rows.append((label, d, a))

    objects_dr = sum(1 for _ in iter_keys(s3_dr, dr_drpilot))
    objects_sync = sum(1 for _ in iter_keys(s3_dr, dr_sync))
    if objects_dr != objects or objects_sync != objects:
        sys.exit(f"the DR buckets hold {objects_dr} (drpilot) and {objects_sync} (sync) objects, not {objects}")
    return rows


FIELDS = ["wall_seconds", "peak_mib", "copied", "s3_requests"]


def main():
    tables = {}
    for objects in SIZES:
        rows = bench(objects)
        tables[objects] = rows
        print()
        print(f"S3 backup of {objects} objects, {SOURCE} -> {DR}, SSE-KMS, on the drpilot simulator (moto) {ENDPOINT}")
        print(f"{'':27} | {'drpilot s3-backup':^42} | {'aws s3 sync (' + AWSCLI + ')':^42}")
        head = f"{'wall s':>8} {'peak MiB':>9} {'copied':>8} {'requests':>9}"
        print(f"{'run':27} | {head}    | {head}")
        for label, d, a in rows:
            cells = lambda f: f"{f[0]:8.2f} {f[1]:9.1f} {f[2]:8d} {f[3]:9d}"  # noqa: E731
            print(f"{label:27} | {cells(d)}    | {cells(a)}")
        for i, how in [(1, "listing"), (3, "inventory report")]:
            (_, d, a) = rows[i]
            print(f"no-change rerun ({how}): drpilot {a[0] / d[0]:.1f}x faster, {d[3]} S3 requests to sync's {a[3]} ({d[3] / a[3]:.2f})")
    print("\ndrpilot also keeps every run restorable (drpilot points / drpilot restore); "
          "the sync copy holds only the newest state under its dated prefix.")
    print("reproduce: make bench-s3 (BENCH_OBJECTS=2000,20000 sets the sizes)")
    save(
        "s3",
        FIELDS,
        [(f"{label} ({objects} objects)", d, a) for objects, rows in tables.items() for label, d, a in rows],
        peer="aws s3 sync",
        peer_version=AWSCLI,
        sizes=SIZES,
    )


def iter_keys(s3, bucket):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            yield o["Key"]


if __name__ == "__main__":
    main()
