# The restore verifier (var.restore_verification): throwaway restores of the newest DR copies,
# in the DR region, in a subnet group and a security group of their own that admit nothing.
# Its IAM lets it create and delete only databases named drpilot-rt-* that carry the
# restore-test tag and this deployment's, so neither a bug nor a stolen role can delete
# anything else with it.

locals {
  verify = var.restore_verification == null ? [] : [var.restore_verification]
  # the databases without an instance_class take the engine's smallest (null is left out)
  verify_databases_json = var.restore_verification == null ? "" : jsonencode([
    for d in var.restore_verification.databases : {
      for k, v in { db = d.db, db_kind = d.db_kind, instance_class = d.instance_class } : k => v if v != null
    }
  ])
  verifier_trigger = var.restore_verification == null ? {} : {
    verifier-schedule = { function = module.restore_verifier[0], schedule = var.restore_verification.schedule, pattern = null, input = null }
    # goes on with the run in progress (starts none): restores take minutes to an hour
    verifier-continue = { function = module.restore_verifier[0], schedule = "rate(1 minute)", pattern = null, input = jsonencode({ action = "continue" }) }
  }
}

resource "aws_db_subnet_group" "restore_tests" {
  provider    = aws.dr
  count       = length(local.verify)
  name        = "${var.name_prefix}-restore-tests"
  description = "drpilot restore tests: throwaway databases restored from DR copies"
  subnet_ids  = var.restore_verification.subnet_ids
  tags        = local.tags
}

resource "aws_security_group" "restore_tests" {
  #checkov:skip=CKV2_AWS_5:attached by the restore verifier to the databases it restores, not by Terraform
  provider    = aws.dr
  count       = length(local.verify)
  name        = "${var.name_prefix}-restore-tests"
  description = "drpilot restore tests: no ingress and no egress; nothing reaches a restored copy"
  vpc_id      = var.restore_verification.vpc_id
  tags        = local.tags
  # no ingress or egress blocks: Terraform removes the default allow-all egress rule
}

module "restore_verifier" {
  source                 = "./modules/function"
  count                  = length(local.verify)
  providers              = { aws = aws.dr }
  name                   = local.functions_all.verifier
  package_path           = "${var.package_dir}/restore-verifier.zip"
  architecture           = var.architecture
  timeout                = 900 # it saves progress before this; the continuation (every minute) resumes
  reserved_concurrency   = 2   # one run at a time is the record's lease's job; room for the schedule and the continuation
  maximum_retry_attempts = 0   # the continuation resumes a failed step
  kms_key_arn            = aws_kms_key.dr.arn
  log_retention_days     = var.log_retention_days
  dead_letter_queue_arn  = aws_sqs_queue.failed.arn
  policy_json            = data.aws_iam_policy_document.restore_verifier.json
  tags                   = local.tags
  environment = {
    DRPILOT_SOURCE_REGION           = var.primary_region
    DRPILOT_DR_REGION               = var.dr_region
    DRPILOT_VERIFY_DATABASES        = local.verify_databases_json
    DRPILOT_VERIFY_SUBNET_GROUP     = aws_db_subnet_group.restore_tests[0].name
    DRPILOT_VERIFY_SECURITY_GROUPS  = aws_security_group.restore_tests[0].id
    DRPILOT_VERIFY_MAX_AGE_DAYS     = tostring(var.restore_verification.max_age_days)
    DRPILOT_VERIFY_TIMEOUT_SECONDS  = tostring(var.restore_verification.timeout_minutes * 60)
    DRPILOT_POLL_SECONDS            = "30"
    DRPILOT_DEADLINE_MARGIN_SECONDS = "30"
    DRPILOT_METRIC_NAMESPACE        = var.metric_namespace
    DRPILOT_STATE_BUCKET            = aws_s3_bucket.state.bucket
    DRPILOT_STATE_PREFIX            = "drpilot/"
    DRPILOT_NOTIFY_TOPIC_ARN        = aws_sns_topic.responders.arn
    DRPILOT_DEPLOYMENT              = var.name_prefix
    DRPILOT_S3_FORCE_PATH_STYLE     = "false"
  }
}

data "aws_iam_policy_document" "restore_verifier" {
  statement {
    sid = "ReadCopiesAndRestores"
    #checkov:skip=CKV_AWS_356:Describe* of snapshots, instances and clusters; AWS cannot scope a listing
    actions   = ["rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots", "rds:DescribeDBInstances", "rds:DescribeDBClusters"]
    resources = ["*"]
  }
  statement {
    sid     = "RestoreCopiesIntoRestoreTests"
    actions = ["rds:RestoreDBInstanceFromDBSnapshot", "rds:RestoreDBClusterFromSnapshot", "rds:CreateDBInstance"]
    resources = [
      "${local.rds_dr}:db:drpilot-rt-*",
      "${local.rds_dr}:cluster:drpilot-rt-*",
      "${local.rds_dr}:snapshot:drpilot-*", # the copier's copies
      "${local.rds_dr}:cluster-snapshot:drpilot-*",
      "${local.rds_dr}:subgrp:${var.name_prefix}-restore-tests",
      "${local.rds_dr}:pg:default.*", # the engine's default groups
      "${local.rds_dr}:cluster-pg:default.*",
      "${local.rds_dr}:og:default:*",
    ]
    # only with the restore-test tag and this deployment's on what is made
    condition {
      test     = "Null"
      variable = "aws:RequestTag/drpilot:restore-test"
      values   = ["false"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/drpilot:deployment"
      values   = [var.name_prefix]
    }
  }
  statement {
    sid       = "TagNewRestoreTests"
    actions   = ["rds:AddTagsToResource"] # the tags given to the restore and the instance
    resources = ["${local.rds_dr}:db:drpilot-rt-*", "${local.rds_dr}:cluster:drpilot-rt-*"]
    # only a database being made (it has no tags yet): never retag an existing one, whoever's
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/drpilot:managed-by"
      values   = ["true"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/drpilot:deployment"
      values   = [var.name_prefix]
    }
  }
  statement {
    sid       = "DeleteOwnRestoreTestsOnly"
    actions   = ["rds:DeleteDBInstance", "rds:DeleteDBCluster"]
    resources = ["${local.rds_dr}:db:drpilot-rt-*", "${local.rds_dr}:cluster:drpilot-rt-*"]
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/drpilot:restore-test"
      values   = ["false"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/drpilot:deployment"
      values   = [var.name_prefix]
    }
  }
  # RDS uses the DR key on the verifier's behalf: a grant for the restored database, and a
  # look at the key (kms:GrantIsForAWSResource exists only in grant requests)
  statement {
    sid       = "GrantTheDrKeyToRestores"
    actions   = ["kms:CreateGrant"]
    resources = [aws_kms_key.dr.arn]
    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }
  statement {
    sid       = "ReadTheDrKey"
    actions   = ["kms:DescribeKey"]
    resources = [aws_kms_key.dr.arn]
  }
  statement {
    sid = "PublishOwnMetrics"
    #checkov:skip=CKV_AWS_356:PutMetricData has no resource-level permissions; the namespace condition scopes it
    #checkov:skip=CKV_AWS_111:scoped to drpilot's namespace by condition
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metric_namespace]
    }
  }
  statement {
    sid       = "KeepItsRecord"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.state.arn}/drpilot/restore-verifier/*"]
  }
  statement {
    sid       = "FindItsRecord" # a missing record is then a 404, not a 403
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.state.arn]
  }
  statement {
    sid       = "NotifyResponders"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.responders.arn]
  }
}
