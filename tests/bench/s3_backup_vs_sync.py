"""make bench: drpilot's S3 backup against `aws s3 sync` (the seed tutorial's daily job), on the
same moto server and the same 2,000-object bucket. Prints wall time and peak memory (max RSS) of
each tool's process, for the first run, a rerun with no change, and a rerun after 10% changed.

Both tools copy server-side from a source bucket (us-east-1) into a DR-region bucket
(us-west-2) encrypted with a DR KMS key. drpilot runs its release build of the s3-backup
function once per run (`--event`), as Lambda would; aws runs `aws s3 sync`. Concurrency is each
tool's default (drpilot 32 copies in flight, awscli 10 requests).

The emulator is one Python process, so absolute times say more about moto than about S3; the
comparison is what matters: what each tool requests, and what it holds in memory.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import boto3
from botocore.config import Config

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ENDPOINT = os.environ["DRPILOT_EMULATOR_URL"]
SOURCE, DR = "us-east-1", "us-west-2"
OBJECTS = int(os.environ.get("BENCH_OBJECTS", "2000"))
AWS = os.path.join(REPO, ".venv-bench", "bin", "aws")
BACKUP = os.path.join(REPO, "target", "release", "s3-backup")


def client(service, region):
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=ENDPOINT,
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=32),
    )


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


def main():
    s3_src, s3_dr, kms, sns = client("s3", SOURCE), client("s3", DR), client("kms", DR), client("sns", DR)
    run = f"bench-{int(time.time())}"
    src, dr_drpilot, dr_sync, state = f"{run}-prod", f"{run}-dr", f"{run}-sync-dr", f"{run}-state"
    s3_src.create_bucket(Bucket=src)
    for b in (dr_drpilot, dr_sync, state):
        s3_dr.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": DR})
    s3_dr.put_bucket_versioning(Bucket=dr_drpilot, VersioningConfiguration={"Status": "Enabled"})
    key = kms.create_key(Description="DR backups")["KeyMetadata"]["Arn"]
    topic = sns.create_topic(Name=f"{run}-responders")["TopicArn"]

    print(f"seeding s3://{src} with {OBJECTS} objects (1-16 KiB) ...", file=sys.stderr)
    from concurrent.futures import ThreadPoolExecutor

    def put(i, tag="v1"):
        body = (f"{tag} object {i} ".encode() * 1024)[: 1024 * (1 + i % 16)]
        s3_src.put_object(Bucket=src, Key=f"assets/{i // 100:02d}/{i:05d}.bin", Body=body)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(OBJECTS)))

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("DRPILOT_")}
    drpilot_env = dict(
        base_env,
        DRPILOT_SOURCE_REGION=SOURCE,
        DRPILOT_DR_REGION=DR,
        DRPILOT_S3_BACKUPS=json.dumps([{"name": "assets", "source_bucket": src, "dr_bucket": dr_drpilot, "kms_key_id": key}]),
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
        wall, rss, out = measured([BACKUP, "--event", event], drpilot_env)
        counts = json.loads(out)["backups"][0]["counts"]
        return wall, rss, counts["copied"]

    def sync():
        argv = [AWS, "s3", "sync", f"s3://{src}", f"s3://{dr_sync}/{day_prefix}/", "--endpoint-url", ENDPOINT,
                "--source-region", SOURCE, "--region", DR, "--sse", "aws:kms", "--sse-kms-key-id", key,
                "--no-progress"]
        wall, rss, out = measured(argv, aws_env)
        return wall, rss, sum(1 for line in out.splitlines() if line.startswith("copy:"))

    rows = []
    for label, change in [("first run", None), ("rerun, no change", None), ("rerun, 10% changed", 10)]:
        if change:
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda i: put(i, "v2"), range(0, OBJECTS, change)))
            time.sleep(1.1)  # moto's timestamps have one-second resolution
        d = drpilot()
        a = sync()
        rows.append((label, d, a))

    objects_dr = sum(1 for _ in iter_keys(s3_dr, dr_drpilot))
    objects_sync = sum(1 for _ in iter_keys(s3_dr, dr_sync))
    print()
    print(f"S3 backup of {OBJECTS} objects, {SOURCE} -> {DR}, SSE-KMS, on moto server {ENDPOINT}")
    print(f"{'':22} | {'drpilot s3-backup':^32} | {'aws s3 sync (awscli 1.46.2)':^32}")
    print(f"{'run':22} | {'wall s':>8} {'peak MiB':>10} {'copied':>10}   | {'wall s':>8} {'peak MiB':>10} {'copied':>10}")
    for label, (dw, dm, dc), (aw, am, ac) in rows:
        print(f"{label:22} | {dw:8.2f} {dm:10.1f} {dc:10d}   | {aw:8.2f} {am:10.1f} {ac:10d}")
    print(f"objects in the DR bucket: drpilot {objects_dr}, aws s3 sync {objects_sync}")
    print("drpilot also keeps every run restorable (drpilot points / drpilot restore); "
          "the sync copy holds only the newest state under its dated prefix.")


def iter_keys(s3, bucket):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            yield o["Key"]


if __name__ == "__main__":
    main()
