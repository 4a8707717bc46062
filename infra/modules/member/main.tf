# drpilot in a member account: one role per hub function (each trusting exactly that function's
# role, with the external id), granting what that function does here and nothing else (the
# lists live in shared/src/permissions.rs, MEMBER_ROLES; a test fails when they differ); this
# account's DR key for its copies; and the forwarding of its RDS snapshot events to the hub's
# bus, so copies start at once. Alarms, drpilot's metrics, Route 53, state and notices stay in
# the hub.

data "aws_caller_identity" "current" {
  provider = aws.dr
}

data "aws_partition" "current" {
  provider = aws.dr
}

locals {
  account    = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  tags       = merge({ "managed-by" = "drpilot" }, var.tags)
  rds_dr     = "arn:${local.partition}:rds:${var.dr_region}:${local.account}"
  rds_source = "arn:${local.partition}:rds:${var.primary_region}:${local.account}"
  hub_bus    = "arn:${local.partition}:events:${var.dr_region}:${var.hub_account_id}:event-bus/default"
  replicas   = [for d in var.databases : d.replica if d.kind == "rds-replica"]
  fenced     = [for d in var.databases : d.primary if d.kind == "rds-replica" && d.fence != "none"]
  aurora     = [for d in var.databases : d if d.kind == "aurora-global"]
  backups    = [for b in var.buckets : b if b.backed_up]
}

# --- The roles: one per hub function, each trusting exactly that function's role ------------

locals {
  functions = ["snapshot-copier", "lag-checker", "failover-promoter", "s3-backup"]
}

data "aws_iam_policy_document" "trust" {
  for_each = toset(local.functions)
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${var.hub_account_id}:role/${var.hub_name_prefix}-${each.key}"]
    }
    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [var.external_id]
    }
  }
}

resource "aws_iam_role" "member" {
  provider             = aws.dr
  for_each             = toset(local.functions)
  name                 = "${var.role_prefix}-${each.key}"
  description          = "drpilot: what the hub's ${each.key} (account ${var.hub_account_id}) does in this account"
  assume_role_policy   = data.aws_iam_policy_document.trust[each.key].json
  max_session_duration = 3600
  tags                 = local.tags
}

data "aws_iam_policy_document" "snapshot_copier" {
  statement {
    sid = "ReadDatabasesAndSnapshots"
    #checkov:skip=CKV_AWS_356:Describe* list every database and snapshot; AWS cannot scope a listing
    actions   = ["rds:DescribeDBInstances", "rds:DescribeDBClusters", "rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"]
    resources = ["*"]
  }
  statement {
    sid     = "CopySnapshotsToDr"
    actions = ["rds:CopyDBSnapshot", "rds:CopyDBClusterSnapshot"]
    resources = [
      "${local.rds_source}:snapshot:*",
      "${local.rds_source}:cluster-snapshot:*",
      "${local.rds_dr}:snapshot:drpilot-*",
      "${local.rds_dr}:cluster-snapshot:drpilot-*",
    ]
  }
  statement {
    sid       = "TagNewCopies"
    actions   = ["rds:AddTagsToResource"] # the tags given to CopyDB*Snapshot
    resources = ["${local.rds_dr}:snapshot:drpilot-*", "${local.rds_dr}:cluster-snapshot:drpilot-*"]
    # only a copy being made (it has no tags yet): never retag an existing copy, whoever's
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/drpilot:managed-by"
      values   = ["true"]
    }
  }
  statement {
    sid       = "PruneOwnCopiesOnly"
    actions   = ["rds:DeleteDBSnapshot", "rds:DeleteDBClusterSnapshot"]
    resources = ["${local.rds_dr}:snapshot:drpilot-*", "${local.rds_dr}:cluster-snapshot:drpilot-*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/drpilot:managed-by"
      values   = ["drpilot"]
    }
    # the hub's copies, not a drpilot deployment of this account's own
    condition {
      # copies made before the tag existed are the default deployment's only
      test     = var.hub_name_prefix == "drpilot" ? "StringEqualsIfExists" : "StringEquals"
      variable = "aws:ResourceTag/drpilot:deployment"
      values   = [var.hub_name_prefix]
    }
  }
  statement {
    sid       = "ReEncryptCopies"
    actions   = ["kms:CreateGrant"]
    resources = concat([aws_kms_key.dr.arn], var.source_kms_key_arns)
    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }
  statement {
    sid       = "ReadCopyKeys"
    actions   = ["kms:DescribeKey"]
    resources = concat([aws_kms_key.dr.arn], var.source_kms_key_arns)
  }
}

data "aws_iam_policy_document" "lag_checker" {
  statement {
    sid = "ReadReplicasAndCopies"
    #checkov:skip=CKV_AWS_356:Describe* of replicas, clusters and snapshots; AWS cannot scope a listing
    actions   = ["rds:DescribeDBInstances", "rds:DescribeDBClusters", "rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"]
    resources = ["*"]
  }
  statement {
    sid = "ReadLagMetrics"
    #checkov:skip=CKV_AWS_356:GetMetricData has no resource-level permissions
    actions   = ["cloudwatch:GetMetricData"]
    resources = ["*"]
  }
  dynamic "statement" {
    for_each = length(var.buckets) > 0 ? [1] : []
    content {
      sid       = "ListMeasuredBuckets"
      actions   = ["s3:ListBucket"]
      resources = distinct(flatten([for b in var.buckets : ["arn:${local.partition}:s3:::${b.source_bucket}", "arn:${local.partition}:s3:::${b.dr_bucket}"]]))
    }
  }
}

data "aws_iam_policy_document" "failover_promoter" {
  statement {
    sid = "ReadPrimaryAndStandby"
    #checkov:skip=CKV_AWS_356:Describe* of instances, clusters, global clusters, pending maintenance and events; read only
    actions   = ["rds:DescribeDBInstances", "rds:DescribeDBClusters", "rds:DescribeGlobalClusters", "rds:DescribePendingMaintenanceActions", "rds:DescribeEvents"]
    resources = ["*"]
  }
  dynamic "statement" {
    for_each = length(local.replicas) > 0 ? [1] : []
    content {
      sid       = "PromoteReplicas"
      actions   = ["rds:PromoteReadReplica"]
      resources = [for r in local.replicas : "${local.rds_dr}:db:${r}"]
    }
  }
  dynamic "statement" {
    for_each = length(local.fenced) > 0 ? [1] : []
    content {
      sid       = "FenceOldPrimaries"
      actions   = ["rds:StopDBInstance"]
      resources = [for p in local.fenced : "${local.rds_source}:db:${p}"]
    }
  }
  dynamic "statement" {
    for_each = length(local.replicas) > 0 ? [1] : []
    content {
      sid = "BlockWritesBeforePlannedFailover"
      # the primaries' parameter groups are managed elsewhere: their names are not known here
      actions   = ["rds:ModifyDBParameterGroup"]
      resources = ["${local.rds_source}:pg:*"]
    }
  }
  dynamic "statement" {
    for_each = length(local.aurora) > 0 ? [1] : []
    content {
      sid     = "FailOverGlobalDatabases"
      actions = ["rds:FailoverGlobalCluster", "rds:SwitchoverGlobalCluster"]
      resources = concat(
        [for d in local.aurora : "arn:${local.partition}:rds::${local.account}:global-cluster:${d.global_cluster}"],
        [for d in local.aurora : "${local.rds_dr}:cluster:${d.secondary_cluster}"],
        [for d in local.aurora : "${local.rds_source}:cluster:${d.primary_cluster}"],
      )
    }
  }
}

data "aws_iam_policy_document" "s3_backup" {
  dynamic "statement" {
    for_each = length(local.backups) > 0 ? [1] : []
    content {
      sid       = "ListSources"
      actions   = ["s3:ListBucket"]
      resources = [for b in local.backups : "arn:${local.partition}:s3:::${b.source_bucket}"]
    }
  }
  dynamic "statement" {
    for_each = length(local.backups) > 0 ? [1] : []
    content {
      sid       = "ReadSourceObjects"
      actions   = ["s3:GetObject", "s3:GetObjectTagging"]
      resources = [for b in local.backups : "arn:${local.partition}:s3:::${b.source_bucket}/${b.prefix}*"]
    }
  }
  dynamic "statement" {
    for_each = length(local.backups) > 0 ? [1] : []
    content {
      sid       = "DrBucketVersioning"
      actions   = ["s3:GetBucketVersioning", "s3:GetBucketObjectLockConfiguration"] # retention keeps points as long as their copies are locked
      resources = [for b in local.backups : "arn:${local.partition}:s3:::${b.dr_bucket}"]
    }
  }
  dynamic "statement" {
    for_each = length(local.backups) > 0 ? [1] : []
    content {
      sid       = "CopyIntoDrBuckets"
      actions   = ["s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload", "s3:GetObject"] # GetObject: HeadObject of a copy whose completion's answer was lost
      resources = [for b in local.backups : "arn:${local.partition}:s3:::${b.dr_bucket}/${b.prefix}*"]
    }
  }
  dynamic "statement" {
    for_each = length(local.backups) > 0 ? [1] : []
    content {
      sid       = "PruneUnneededVersions"
      actions   = ["s3:DeleteObjectVersion"]
      resources = [for b in local.backups : "arn:${local.partition}:s3:::${b.dr_bucket}/${b.prefix}*"]
    }
  }
  dynamic "statement" {
    for_each = length(local.backups) > 0 ? [1] : []
    content {
      sid       = "EncryptBackupCopies"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = concat([aws_kms_key.dr.arn], var.source_kms_key_arns)
    }
  }
}

locals {
  policies = {
    snapshot-copier   = data.aws_iam_policy_document.snapshot_copier.json
    lag-checker       = data.aws_iam_policy_document.lag_checker.json
    failover-promoter = data.aws_iam_policy_document.failover_promoter.json
    s3-backup         = data.aws_iam_policy_document.s3_backup.json
  }
}

resource "aws_iam_role_policy" "member" {
  provider = aws.dr
  # the s3-backup role has nothing to do here without backed-up buckets (and IAM refuses an
  # empty policy)
  for_each = { for f, policy in local.policies : f => policy if f != "s3-backup" || length(local.backups) > 0 }
  name     = "drpilot"
  role     = aws_iam_role.member[each.key].id
  policy   = each.value
}

# --- This account's DR key ----------------------------------------------------------------------

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:the account root must administer its key (AWS default key policy)
  #checkov:skip=CKV_AWS_111:the account root must administer its key (AWS default key policy)
  #checkov:skip=CKV_AWS_356:a key policy's resource is always the key itself
  statement {
    sid       = "Account"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
}

resource "aws_kms_key" "dr" {
  provider                = aws.dr
  description             = "drpilot: this account's DR snapshot and backup copies"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
  tags                    = local.tags
}

resource "aws_kms_alias" "dr" {
  provider      = aws.dr
  name          = "alias/${var.role_prefix}-dr"
  target_key_id = aws_kms_key.dr.key_id
}

# --- Primary region: this account's RDS snapshot events, to the hub's bus -----------------------

resource "aws_cloudwatch_event_rule" "forward_rds_snapshots" {
  provider    = aws.primary
  name        = "${var.role_prefix}-forward-rds-snapshots"
  description = "drpilot: RDS snapshot creations, to the hub (account ${var.hub_account_id}) so copies start at once"
  event_pattern = jsonencode({
    source        = ["aws.rds"]
    "detail-type" = ["RDS DB Snapshot Event", "RDS DB Cluster Snapshot Event"]
    detail        = { EventCategories = ["creation"] }
  })
  tags = local.tags
}

data "aws_iam_policy_document" "forward_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "forward" {
  provider           = aws.primary
  name               = "${var.role_prefix}-forward-rds-snapshots"
  assume_role_policy = data.aws_iam_policy_document.forward_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "forward" {
  statement {
    actions   = ["events:PutEvents"]
    resources = [local.hub_bus]
  }
}

resource "aws_iam_role_policy" "forward" {
  provider = aws.primary
  name     = "put-events-hub"
  role     = aws_iam_role.forward.id
  policy   = data.aws_iam_policy_document.forward.json
}

resource "aws_cloudwatch_event_target" "forward" {
  provider = aws.primary
  rule     = aws_cloudwatch_event_rule.forward_rds_snapshots.name
  arn      = local.hub_bus
  role_arn = aws_iam_role.forward.arn
}
