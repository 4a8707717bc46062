"""The peer in `make bench`'s lag-checker benchmark: the lag checker's job written plainly with
boto3, one resource at a time, as the seed tutorial checks one replica's lag and a team loops
it over a fleet (and as drpilot itself did before it batched).

For every replica named in the resources file: `DescribeDBInstances` of that replica (is it
still a replica, is it in a dead state), `GetMetricData` of its `ReplicaLag`, a verdict against
its RPO budget, and `PutMetricData` of the same two metrics drpilot publishes. No notices, no
state (drpilot does more).

Usage: lag_peer.py DR_REGION RESOURCES_JSON_FILE NAMESPACE; prints its counts as JSON.
"""

import json
import os
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone

import boto3
from botocore.exceptions import ClientError

DEAD = {"failed", "stopped", "stopping", "storage-full", "inaccessible-encryption-credentials"}
STATUS = {"unknown": -1, "healthy": 0, "breached": 1, "broken": 2}


def verdict(rds, cloudwatch, resource, now):
    try:
        db = rds.describe_db_instances(DBInstanceIdentifier=resource["replica"])["DBInstances"][0]
    except ClientError:
        return "unknown", None
    if db["DBInstanceStatus"] in DEAD or not db.get("ReadReplicaSourceDBInstanceIdentifier"):
        return "broken", None
    data = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "lag",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/RDS",
                        "MetricName": "ReplicaLag",
                        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": resource["replica"]}],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
        ],
        StartTime=now - timedelta(minutes=65),
        EndTime=now + timedelta(minutes=1),
        ScanBy="TimestampDescending",
    )["MetricDataResults"][0]
    points = sorted(zip(data["Timestamps"], data["Values"]), reverse=True)
    if not points or now - points[0][0] > timedelta(minutes=5) or points[0][1] < 0:
        return "broken", None
    lag = points[0][1]
    return ("breached" if lag > resource["rpo_seconds"] else "healthy"), lag


def main(dr, resources_file, namespace):
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    rds = boto3.client("rds", region_name=dr, endpoint_url=endpoint)
    cloudwatch = boto3.client("cloudwatch", region_name=dr, endpoint_url=endpoint)
    now = datetime.now(timezone.utc)
    counts = Counter()
    for resource in json.load(open(resources_file)):
        status, lag = verdict(rds, cloudwatch, resource, now)
        counts[status] += 1
        dims = [{"Name": "Resource", "Value": resource["name"]}]
        data = [{"MetricName": "RpoStatus", "Dimensions": dims, "Value": STATUS[status], "Timestamp": now}]
        if lag is not None:
            data.append({"MetricName": "RecoveryPointSeconds", "Dimensions": dims, "Value": lag, "Timestamp": now})
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)
    print(json.dumps(counts))


if __name__ == "__main__":
    main(*sys.argv[1:4])
