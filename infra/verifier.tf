# The restore verifier (var.restore_verification): throwaway restores of the newest DR copies,
# in the DR region, in a subnet group and a security group of their own that admit nothing.
# Its IAM lets it create and delete only databases named drpilot-rt-* that carry the
# restore-test tag and this deployment's, so neither a bug nor a stolen role can delete
# anything else with it.

locals {
  verify = var.restore_verification == null ? [] : [var.restore_verification]
  # restored databases need the network; S3 restore tests do not
  verify_network = [for v in local.verify : v if length(v.databases) > 0]
  verify_backups = var.restore_verification == null ? [] : var.restore_verification.backups
  # the S3 backups it restore-tests, as the s3-backup function has them (this account's only)
  verify_s3_backups_json = length(local.verify_backups) == 0 ? "" : jsonencode([
    for b in jsondecode(local.s3_backups_json) : b if contains(local.verify_backups, b.name)
  ])
  verify_s3 = [for b in var.s3_backups : b if contains(local.verify_backups, b.name)]
  # the databases without an instance_class take the engine's smallest (null is left out)
  verify_databases_json = var.restore_verification == null || length(local.verify_network) == 0 ? "" : jsonencode([
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
  count       = length(local.verify_network)
  name        = "${var.name_prefix}-restore-tests"
  description = "drpilot restore tests: throwaway databases restored from DR copies"
  subnet_ids  = var.restore_verification.subnet_ids
  tags        = local.tags
}

resource "aws_security_group" "restore_tests" {
  #checkov:skip=CKV2_AWS_5:attached by the restore verifier to the databases it restores, not by Terraform
  provider    = aws.dr
  count       = length(local.verify_network)
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
    DRPILOT_VERIFY_SUBNET_GROUP     = length(local.verify_network) == 0 ? "" : aws_db_subnet_group.restore_tests[0].name
    DRPILOT_VERIFY_SECURITY_GROUPS  = length(local.verify_network) == 0 ? "" : aws_security_group.restore_tests[0].id
    DRPILOT_VERIFY_BACKUPS          = length(local.verify_backups) == 0 ? "" : jsonencode(local.verify_backups)
    DRPILOT_S3_BACKUPS              = local.verify_s3_backups_json
    DRPILOT_VERIFY_S3_SAMPLE        = tostring(var.restore_verification.s3_sample_objects)
    DRPILOT_VERIFY_S3_MAX_OBJECT_MB = tostring(var.restore_verification.s3_max_object_mb)
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
  lifecycle {
    precondition {
      condition     = alltrue([for b in local.verify_backups : contains([for s in var.s3_backups : s.name if s.account == null], b)])
      error_message = "restore_verification.backups: each must name an s3_backups entry in this account (restore tests of a member account's buckets are not supported)."
    }
    precondition {
      condition     = alltrue([for b in local.verify_s3 : !contains(["GLACIER", "DEEP_ARCHIVE"], coalesce(b.storage_class, "STANDARD"))])
      error_message = "restore_verification.backups: a backup kept in GLACIER or DEEP_ARCHIVE cannot be read without a retrieval, so it cannot be restore-tested."
    }
  }
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
  dynamic "statement" {
    for_each = length(local.verify_backups) == 0 ? [] : [1]
    content {
      sid = "ReadBackupsItRestoreTests"
      # a DR version and its tags (CopyObject copies them), and whether a version is there
      # (ListBucket: a missing one is a 404, not a 403)
      actions = ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectVersionTagging", "s3:ListBucket"]
      resources = concat(
        [for b in local.verify_s3 : "arn:${local.partition}:s3:::${b.dr_bucket}"],
        [for b in local.verify_s3 : "arn:${local.partition}:s3:::${b.dr_bucket}/${b.prefix}*"],
        [for b in local.verify_s3 : "${aws_s3_bucket.state.arn}/drpilot/s3-backup/${b.name}/*"], # its state and manifests
      )
    }
  }
  dynamic "statement" {
    for_each = length(local.verify_backups) == 0 ? [] : [1]
    content {
      sid       = "PinThePointItReads" # as a restore does: retention keeps a pinned point
      actions   = ["s3:PutObject", "s3:DeleteObject"]
      resources = [for b in local.verify_backups : "${aws_s3_bucket.state.arn}/drpilot/s3-backup/${b}/pins/*"]
    }
  }
  dynamic "statement" {
    for_each = length(local.verify_backups) == 0 ? [] : [1]
    content {
      sid       = "RestoreSamplesIntoScratch" # restored (with the copy's tags), read back, deleted version and all
      actions   = ["s3:PutObjectTagging", "s3:DeleteObject", "s3:DeleteObjectVersion"]
      resources = ["${aws_s3_bucket.state.arn}/drpilot/restore-verifier/s3/*"]
    }
  }
  dynamic "statement" {
    for_each = length(local.verify_backups) == 0 ? [] : [1]
    content {
      # the DR copies and the state bucket are encrypted with the DR key; S3 uses it for the
      # verifier (reading a DR version, writing and reading its restored copy)
      sid       = "UseTheDrKeyThroughS3"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [aws_kms_key.dr.arn]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${var.dr_region}.amazonaws.com"]
      }
    }
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
