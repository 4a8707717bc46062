"""The peer in `make bench`'s copier benchmark: the snapshot copier's job written plainly with
boto3, as a team grows the seed tutorial's `aws rds copy-db-snapshot` line into a fleet script.

For every DB instance carrying the tag: its newest available snapshot, copied to the DR region
unless a copy is there already. It lists the DR region's manual snapshots once, asks for each
database's snapshots (the obvious `DescribeDBSnapshots(DBInstanceIdentifier=...)`), and leaves
AWS's copy quota to AWS: on SnapshotQuotaExceeded it stops copying and reports the rest as
queued for its next run. No retention, no notices, no report beyond counts (drpilot does more).

Usage: copier_peer.py SOURCE_REGION DR_REGION TAG_KEY=TAG_VALUE; prints its counts as JSON.
"""

import json
import os
import sys

import boto3
from botocore.exceptions import ClientError


def main(source, dr, selector):
    tag_key, tag_value = selector.split("=", 1)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    src = boto3.client("rds", region_name=source, endpoint_url=endpoint)
    dst = boto3.client("rds", region_name=dr, endpoint_url=endpoint)

    copies = {
        s["DBSnapshotIdentifier"]
        for page in dst.get_paginator("describe_db_snapshots").paginate(SnapshotType="manual")
        for s in page["DBSnapshots"]
    }
    counts = {"copied": 0, "already_present": 0, "queued": 0, "no_snapshot": 0}
    quota_full = False
    for page in src.get_paginator("describe_db_instances").paginate():
        for db in page["DBInstances"]:
            tags = {t["Key"]: t.get("Value", "") for t in db.get("TagList", [])}
            if tags.get(tag_key) != tag_value:
                continue
            snapshots = [
                s
                for p in src.get_paginator("describe_db_snapshots").paginate(
                    DBInstanceIdentifier=db["DBInstanceIdentifier"]
                )
                for s in p["DBSnapshots"]
                if s["Status"] == "available"
            ]
            if not snapshots:
                counts["no_snapshot"] += 1
                continue
            newest = max(snapshots, key=lambda s: s["SnapshotCreateTime"])
            target = newest["DBSnapshotIdentifier"].replace(":", "-") + "-dr"
            if target in copies:
                counts["already_present"] += 1
                continue
            if quota_full:
                counts["queued"] += 1
                continue
            try:
                dst.copy_db_snapshot(
                    SourceDBSnapshotIdentifier=newest["DBSnapshotArn"],
                    TargetDBSnapshotIdentifier=target,
                    SourceRegion=source,
                )
                counts["copied"] += 1
            except ClientError as e:
                code = e.response["Error"]["Code"]
                if code == "SnapshotQuotaExceeded":
                    quota_full = True
                    counts["queued"] += 1
                elif code == "DBSnapshotAlreadyExists":
                    counts["already_present"] += 1
                else:
                    raise
    print(json.dumps(counts))


if __name__ == "__main__":
    main(*sys.argv[1:4])
