"""The simulator's own decisions, without a server: `python -m unittest discover tests/emulator`
(part of `make test`)."""

import unittest

from drsim.cloudwatch import alarm_state
from drsim.rds import Writes


def broken(v: float) -> bool:
    return v >= 2.0


# The lag checker's RpoStatus values; it publishes none for a resource it could not look at.
HEALTHY, BROKEN = 0, 2


class AlarmEvaluation(unittest.TestCase):
    """CloudWatch's rules for an alarm with EvaluationPeriods 3, DatapointsToAlarm 3 (the
    shipped primary-down alarm: RpoStatus >= 2, missing data ignored), values newest first."""

    def state(self, values, treat="ignore", n=3, m=3):
        decided = alarm_state(values, n, m, treat, broken)
        return decided and decided[0]

    def test_three_breaching_periods_alarm(self):
        self.assertEqual(self.state([BROKEN] * 3 + [HEALTHY] * 3), "ALARM")

    def test_two_breaching_periods_do_not(self):
        self.assertEqual(self.state([BROKEN] * 2 + [HEALTHY] * 4), "OK")

    def test_unknown_minutes_neither_fire_nor_clear_the_alarm(self):
        self.assertIsNone(self.state([None] * 6), "no verdict at all: the state is kept")
        self.assertIsNone(self.state([None, BROKEN, BROKEN]), "two broken, then unknown: kept")
        self.assertEqual(self.state([None, BROKEN, BROKEN, BROKEN]), "ALARM", "three real ones decide")
        self.assertEqual(self.state([None, None, BROKEN, BROKEN, BROKEN, HEALTHY]), "ALARM")

    def test_a_late_datapoint_is_not_a_breach_when_older_real_ones_exist(self):
        # one period without a datapoint: CloudWatch evaluates the three most recent real ones
        self.assertEqual(self.state([None] + [HEALTHY] * 5), "OK")
        self.assertEqual(self.state([None] + [BROKEN] * 3 + [HEALTHY] * 2), "ALARM")

    def test_missing_data_fills_in_only_as_much_as_needed(self):
        # two real healthy datapoints in the whole range: one missing is filled in as breaching
        self.assertEqual(self.state([None] * 4 + [HEALTHY] * 2, treat="breaching"), "OK")
        # nothing at all: three breaching
        self.assertEqual(self.state([None] * 6, treat="breaching"), "ALARM")
        self.assertEqual(self.state([None] * 6, treat="notBreaching"), "OK")
        self.assertEqual(self.state([None] * 6, treat="missing"), "INSUFFICIENT_DATA")

    def test_ignore_keeps_the_state_while_data_is_missing(self):
        self.assertIsNone(self.state([None] * 4 + [HEALTHY] * 2))
        self.assertEqual(self.state([BROKEN] * 3 + [None] * 3), "ALARM")

    def test_m_of_n(self):
        self.assertEqual(self.state([BROKEN, HEALTHY, BROKEN, HEALTHY, HEALTHY, HEALTHY], n=3, m=2), "ALARM")
        self.assertEqual(self.state([BROKEN, HEALTHY, HEALTHY, BROKEN, BROKEN, BROKEN], n=3, m=2), "OK")


if __name__ == "__main__":
    unittest.main()


class WritePositions(unittest.TestCase):
    """A primary writing 10 a second, its clock ticking late: positions between ticks are on
    the line, and a pause in writing stays flat."""

    def test_between_ticks_and_across_a_pause(self):
        w = Writes()
        w.write(1.0, 0.05, 0.5)  # ticks at 1.0 and 1.3 (a late clock)
        w.write(1.3, 0.3, 3.0)
        self.assertAlmostEqual(w.position_at(1.15), 2.0)
        self.assertAlmostEqual(w.time_at(2.0), 1.15)
        w.write(5.0, 0.05, 0.5)  # no writes from 1.3 to 4.95
        self.assertAlmostEqual(w.position_at(3.0), 3.5)
        self.assertAlmostEqual(w.time_at(3.75), 4.975)
        self.assertIsNone(w.time_at(10.0))


class TrustPolicy(unittest.TestCase):
    """Who may assume a member role: its trust policy names the hub's account and, when it asks
    for one, the external id."""

    POLICY = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:role/drpilot-hub"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": "drpilot-x1"}},
            }
        ],
    }

    def test_the_trusted_account_with_the_external_id(self):
        from drsim.sts import _allows

        self.assertTrue(_allows(self.POLICY, "123456789012", "drpilot-x1"))

    def test_a_wrong_or_missing_external_id_or_another_account_is_refused(self):
        from drsim.sts import _allows

        self.assertFalse(_allows(self.POLICY, "123456789012", "other"))
        self.assertFalse(_allows(self.POLICY, "123456789012", None))
        self.assertFalse(_allows(self.POLICY, "999999999999", "drpilot-x1"))
        self.assertFalse(_allows({"Statement": {**self.POLICY["Statement"][0], "Effect": "Deny"}}, "123456789012", "drpilot-x1"))


class RestoresAndDeletes(unittest.TestCase):
    """Restores take time and need their KMS key; deletes take time; a cluster goes once its
    instances are being deleted. moto in-process, the model patched in, its clock moved by hand."""

    def test_a_restore_is_creating_then_available_and_needs_its_key(self):
        import boto3
        from moto import mock_aws

        from drsim import rds
        from drsim.core import SIM

        rds.install()
        with mock_aws():
            SIM.configure("eu-west-3", {"restore_seconds": 100.0, "delete_seconds": 10.0})
            src, dr = boto3.client("rds", region_name="eu-west-1"), boto3.client("rds", region_name="eu-west-3")
            kms = boto3.client("kms", region_name="eu-west-3")
            meta = kms.create_key()["KeyMetadata"]
            key, key_id = meta["Arn"], meta["KeyId"]
            src.create_db_cluster(
                DBClusterIdentifier="ledger", Engine="aurora-postgresql", MasterUsername="a",
                MasterUserPassword="password1", StorageEncrypted=True,
            )
            snap = src.create_db_cluster_snapshot(DBClusterIdentifier="ledger", DBClusterSnapshotIdentifier="s")
            dr.copy_db_cluster_snapshot(
                SourceDBClusterSnapshotIdentifier=snap["DBClusterSnapshot"]["DBClusterSnapshotArn"],
                TargetDBClusterSnapshotIdentifier="c", KmsKeyId=key, SourceRegion="eu-west-1",
            )
            dr.restore_db_cluster_from_snapshot(DBClusterIdentifier="rt", SnapshotIdentifier="c", Engine="aurora-postgresql")
            status = lambda: dr.describe_db_clusters(DBClusterIdentifier="rt")["DBClusters"][0]["Status"]  # noqa: E731
            t0 = rds.RDS.creating[("cluster", "eu-west-3", "rt", rds.ACCOUNT)][0]
            self.assertEqual((status(), status()), ("creating", "creating"))
            rds.RDS.tick_creating(t0 + 85)
            self.assertEqual(status(), "backing-up")
            rds.RDS.tick_creating(t0 + 101)
            self.assertEqual(status(), "available")
            dr.create_db_instance(DBInstanceIdentifier="rt-1", DBClusterIdentifier="rt", Engine="aurora-postgresql", DBInstanceClass="db.t4g.medium")
            with self.assertRaises(dr.exceptions.ClientError) as refused:
                dr.delete_db_cluster(DBClusterIdentifier="rt", SkipFinalSnapshot=True)
            self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidDBClusterStateFault")
            dr.delete_db_instance(DBInstanceIdentifier="rt-1", SkipFinalSnapshot=True)
            dr.delete_db_cluster(DBClusterIdentifier="rt", SkipFinalSnapshot=True)
            self.assertEqual(status(), "deleting")
            rds.RDS.tick_deleting(rds.now() + 11)
            self.assertEqual(dr.describe_db_clusters()["DBClusters"], [])
            self.assertEqual(dr.describe_db_instances()["DBInstances"], [])

            # a disabled key: refused at once; disabled while restoring: inaccessible
            kms.disable_key(KeyId=key_id)
            with self.assertRaises(dr.exceptions.ClientError) as refused:
                dr.restore_db_cluster_from_snapshot(DBClusterIdentifier="rt2", SnapshotIdentifier="c", Engine="aurora-postgresql")
            self.assertEqual(refused.exception.response["Error"]["Code"], "KMSKeyNotAccessibleFault")
            kms.enable_key(KeyId=key_id)
            dr.restore_db_cluster_from_snapshot(DBClusterIdentifier="rt3", SnapshotIdentifier="c", Engine="aurora-postgresql")
            kms.disable_key(KeyId=key_id)
            rds.RDS.tick_creating(rds.now())
            self.assertEqual(
                dr.describe_db_clusters(DBClusterIdentifier="rt3")["DBClusters"][0]["Status"],
                "inaccessible-encryption-credentials",
            )
            SIM.regions.pop("eu-west-3", None)


class CopyIntoALockedBucket(unittest.TestCase):
    """AWS asks for Content-MD5 or a checksum only of requests that upload bytes into a bucket
    with a default retention; a CopyObject carries none and is let through moto's check."""

    def test_only_a_copy_is_let_through(self):
        from drsim.core import Request
        from drsim.s3 import copy_into_locked_bucket

        def req(action):
            return Request(region="eu-west-1", service="s3", action=action, params={}, protocol="rest-xml")

        copy = {"HTTP_X_AMZ_COPY_SOURCE": "/src/k", "HTTP_X_AMZ_CHECKSUM_ALGORITHM": "SHA256"}
        copy_into_locked_bucket(copy, req("CopyObject"))
        self.assertEqual(copy["HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM"], "SHA256")
        bare_copy = {"HTTP_X_AMZ_COPY_SOURCE": "/src/k"}
        copy_into_locked_bucket(bare_copy, req("CopyObject"))
        self.assertIn("HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM", bare_copy)
        for action in ("PutObject", "UploadPart", "UploadPartCopy"):
            upload: dict = {}
            copy_into_locked_bucket(upload, req(action))
            self.assertEqual(upload, {}, action)
        with_md5 = {"HTTP_CONTENT_MD5": "x"}
        copy_into_locked_bucket(with_md5, req("CopyObject"))
        self.assertEqual(with_md5, {"HTTP_CONTENT_MD5": "x"})


class AutoScalingLaunches(unittest.TestCase):
    """A group's new instances are Pending, then InService; a region out of capacity fails
    launches with AWS's words, keeps the desired capacity, and fills the group once capacity
    returns. moto in-process, the model patched in, its clock moved by hand."""

    def test_launching_takes_time_and_capacity_can_run_out(self):
        import boto3
        from moto import mock_aws

        from drsim import autoscaling
        from drsim.core import SIM

        autoscaling.install()
        region = "sa-east-1"
        with mock_aws():
            SIM.configure(region, {"asg_launch_seconds": 100.0, "asg_capacity": 6})
            asg = boto3.client("autoscaling", region_name=region)
            asg.create_launch_configuration(LaunchConfigurationName="web", ImageId="ami-12c6146b", InstanceType="t3.large")
            asg.create_auto_scaling_group(
                AutoScalingGroupName="web", LaunchConfigurationName="web", MinSize=2, MaxSize=2,
                DesiredCapacity=2, AvailabilityZones=[f"{region}a"],
            )

            def states():
                g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
                return g["DesiredCapacity"], sorted(i["LifecycleState"] for i in g["Instances"])

            self.assertEqual(states(), (2, ["Pending", "Pending"]))
            autoscaling.GROUPS.tick(autoscaling.time.time() + 101)
            self.assertEqual(states(), (2, ["InService", "InService"]))

            asg.update_auto_scaling_group(AutoScalingGroupName="web", MinSize=10, DesiredCapacity=10, MaxSize=20)
            asg.update_auto_scaling_group(AutoScalingGroupName="web", MinSize=10, DesiredCapacity=10, MaxSize=20)
            desired, lifecycle = states()
            self.assertEqual((desired, lifecycle.count("Pending"), len(lifecycle)), (10, 4, 6), "6 fit; asking twice launches no more")
            newest = asg.describe_scaling_activities(AutoScalingGroupName="web")["Activities"][0]
            self.assertEqual(newest["StatusCode"], "Failed")
            self.assertIn("We currently do not have sufficient t3.large capacity", newest["StatusMessage"])

            SIM.configure(region, {"asg_capacity": None})
            autoscaling.GROUPS.tick(autoscaling.time.time() + 1)
            autoscaling.GROUPS.tick(autoscaling.time.time() + 102)
            self.assertEqual(states(), (10, ["InService"] * 10), "capacity returned: the group filled")
            self.assertEqual(
                asg.describe_scaling_activities(AutoScalingGroupName="web")["Activities"][0]["StatusCode"], "Successful"
            )
            SIM.regions.pop(region, None)


class EcsTasks(unittest.TestCase):
    """A service's new tasks are PENDING, then RUNNING; a region out of capacity says so in the
    service's events, keeps the desired count, and fills the service once capacity returns."""

    def test_tasks_take_time_and_capacity_can_run_out(self):
        import boto3
        from moto import mock_aws

        from drsim import ecs
        from drsim.core import SIM

        ecs.install()
        region = "sa-east-1"
        with mock_aws():
            SIM.configure(region, {"ecs_task_start_seconds": 60.0, "ecs_capacity": 6})
            client = boto3.client("ecs", region_name=region)
            client.create_cluster(clusterName="apps")
            client.register_task_definition(
                family="api", containerDefinitions=[{"name": "api", "image": "api:1", "memory": 512}]
            )
            client.create_service(cluster="apps", serviceName="api", taskDefinition="api", desiredCount=2)

            def counts():
                s = client.describe_services(cluster="apps", services=["api"])["services"][0]
                return s["desiredCount"], s["runningCount"], s["pendingCount"], s["events"][0]["message"]

            self.assertEqual(counts()[:3], (2, 0, 2))
            ecs.SERVICES.tick(ecs.time.time() + 61)
            self.assertEqual(counts(), (2, 2, 0, "(service api) has reached a steady state."))

            client.update_service(cluster="apps", service="api", desiredCount=10)
            client.update_service(cluster="apps", service="api", desiredCount=10)
            desired, running, pending, newest = counts()
            self.assertEqual((desired, running, pending), (10, 2, 4), "6 fit; asking twice starts no more")
            self.assertIn("was unable to place a task. Reason: Capacity is unavailable", newest)

            SIM.configure(region, {"ecs_capacity": None})
            ecs.SERVICES.tick(ecs.time.time() + 1)
            ecs.SERVICES.tick(ecs.time.time() + 62)
            self.assertEqual(counts(), (10, 10, 0, "(service api) has reached a steady state."), "capacity returned")

            client.update_service(cluster="apps", service="api", desiredCount=2)
            self.assertEqual(counts()[:3], (2, 2, 0), "a scale-down stops the extra tasks")
            SIM.regions.pop(region, None)
