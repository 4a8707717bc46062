# Warm standby: an RDS PostgreSQL primary in us-east-1 with a cross-region read replica in
# us-west-2 (both managed elsewhere). drpilot copies snapshots, measures the replica's lag,
# and fails the app's database record over to the replica when the primary region is lost.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}

provider "aws" {
  alias  = "primary"
  region = "us-east-1"
}

provider "aws" {
  alias  = "dr"
  region = "us-west-2"
}

module "drpilot" {
  source    = "../.."
  providers = { aws.primary = aws.primary, aws.dr = aws.dr }

  primary_region = "us-east-1"
  dr_region      = "us-west-2"
  package_dir    = "${path.root}/../../../dist" # `make package`
  architecture   = "arm64"

  responders = {
    emails = ["oncall@example.com"]
    sms    = ["+14155550100"]
  }

  copier_db_instances = ["orders-db"]
  copier_retain_days  = 14

  lag_resources = [
    { name = "orders-replica", kind = "rds-replica", replica = "orders-db-dr", rpo_seconds = 60 },
    { name = "orders-copies", kind = "snapshot", db = "orders-db", db_kind = "instance", rpo_seconds = 90000 },
  ]

  # The seed's daily `aws s3 sync` into a dated prefix, done better: each change copied
  # server-side within a minute (events), and a scheduled run every 6 hours as the safety net;
  # every run a restorable point in time, kept 35 days. (A bucket of millions of keys would
  # add `inventory = true` with a daily schedule and a budget of a day and a half: see the
  # README's "Reconciling from S3 Inventory".)
  s3_backups = [{
    name          = "assets"
    source_bucket = "shop-assets-prod"
    dr_bucket     = "shop-assets-dr-us-west-2"
    storage_class = "STANDARD_IA"
    retain_days   = 35
    rpo_seconds   = 8 * 3600
    events        = true
  }]

  databases = [{
    name                  = "orders"
    kind                  = "rds-replica"
    primary               = "orders-db"
    replica               = "orders-db-dr"
    lag_resource          = "orders-replica"
    max_data_loss_seconds = 60
    # The primary is in us-east-1, where Route 53's API runs too: the failover must not need
    # that API. drpilot creates failover records for db.shop.example.com (dns.tf) that Route
    # 53's data plane switches once the replica is promoted.
    dns          = { zone_id = "Z0123456789ABCDEFGHIJ", record_name = "db.shop.example.com", ttl = 30, mode = "failover-records" }
    health_check = { fqdn = "orders-db.abcdefghijkl.us-east-1.rds.amazonaws.com", port = 5432 }
    # Warm standby: the shop's web tier runs 2 instances in us-west-2 and its API 2 ECS tasks
    # until a failover, which grows them to 10 instances and 6 tasks and waits (up to 10
    # minutes) until they are healthy and running before DNS switches.
    recovery_plan = {
      capacity = [
        { auto_scaling_group = "shop-web-dr", desired = 10, max = 20 },
        { ecs_service = "shop-api", cluster = "shop-dr", desired = 6 },
      ]
    }
  }]

  failover_mode = "advisory" # switch to "automatic" after a drill

  # A quarterly drill really fails orders over (tag orders-db-dr with drpilot:drill-plan=quarterly
  # to allow it); leave it off until the team has run one by hand with `drpilot drill`.
  # A drill is a planned failover without data loss, which drpilot can prove only for MySQL
  # and MariaDB today: for this PostgreSQL database it is refused (see the README).
  # drill = { database = "orders", plan = "quarterly" }
}

output "drpilot" {
  description = "Function names, topic, key and the acknowledge command."
  value = {
    functions   = module.drpilot.functions
    backups     = module.drpilot.s3_backup_buckets
    topic       = module.drpilot.responders_topic_arn
    acknowledge = module.drpilot.acknowledge_command
  }
}
