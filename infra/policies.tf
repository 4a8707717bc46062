# Each function's IAM policy: exactly the actions its code calls (the list lives in
# shared/src/permissions.rs; a test in tests/ fails when the two differ), on the resources
# it touches. Only read-only calls that AWS cannot scope use "*".

locals {
  rds_dr     = "arn:${local.partition}:rds:${var.dr_region}:${local.account}"
  rds_source = "arn:${local.partition}:rds:${var.primary_region}:${local.account}"
  # What is in this account: a member account's databases and buckets are reached through its
  # role (infra/modules/member grants those), so the hub's roles get no rights on them.
  own_databases = [for d in var.databases : d if d.account == null]
  own_backups   = [for b in var.s3_backups : b if b.account == null]
  s3_backups = distinct(flatten([
    for r in var.lag_resources : [r.source_bucket, r.dr_bucket] if r.kind == "s3-backup" && r.account == null
  ]))
  backup_sources = [for b in local.own_backups : "arn:${local.partition}:s3:::${b.source_bucket}"]
  backup_targets = [for b in local.own_backups : "arn:${local.partition}:s3:::${b.dr_bucket}"]
  replicas       = [for d in local.own_databases : d.replica if d.kind == "rds-replica"]
  fenced         = [for d in local.own_databases : d.primary if d.kind == "rds-replica" && d.fence != "none"]
  # A failback replaces each RDS database's instances under their own names, in both regions.
  failback_instances = flatten([for d in local.own_databases : ["${local.rds_source}:db:${d.primary}", "${local.rds_dr}:db:${d.replica}"] if d.kind == "rds-replica"])
  failback_snapshots = flatten([for d in local.own_databases : ["${local.rds_source}:snapshot:${d.primary}-before-failback-*", "${local.rds_dr}:snapshot:${d.replica}-before-failback-*"] if d.kind == "rds-replica"])
  aurora             = [for d in local.own_databases : d if d.kind == "aurora-global"]
  health_check_ids   = [for h in aws_route53_health_check.primary : h.id]
  # Recovery plans' Auto Scaling groups (DR region, this account).
  plan_groups = distinct(flatten([for d in local.own_databases : d.recovery_plan == null ? [] : [for g in d.recovery_plan.capacity : g.auto_scaling_group if g.auto_scaling_group != null]]))
  # and their ECS services, as cluster/service
  # and the topics their end events go to (the user's automation)
  plan_topics   = distinct(flatten([for d in local.own_databases : d.recovery_plan == null ? [] : compact([d.recovery_plan.automation_topic_arn])]))
  plan_services = distinct(flatten([for d in local.own_databases : d.recovery_plan == null ? [] : [for g in d.recovery_plan.capacity : "${g.cluster}/${g.ecs_service}" if g.ecs_service != null]]))
}

data "aws_iam_policy_document" "snapshot_copier" {
  statement {
    sid = "PublishRunCounts"
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
    # this deployment's copies (copies made before the tag existed have none)
    condition {
      # copies made before the tag existed are the default deployment's only
      test     = var.name_prefix == "drpilot" ? "StringEqualsIfExists" : "StringEquals"
      variable = "aws:ResourceTag/drpilot:deployment"
      values   = [var.name_prefix]
    }
  }
  statement {
    sid       = "ReEncryptCopies"
    actions   = ["kms:CreateGrant"]
    resources = concat([aws_kms_key.dr.arn], var.copier_source_kms_key_arns)
    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }
  # (kms:GrantIsForAWSResource is in grant requests only: under it DescribeKey was never allowed)
  statement {
    sid       = "ReadCopyKeys"
    actions   = ["kms:DescribeKey"]
    resources = concat([aws_kms_key.dr.arn], var.copier_source_kms_key_arns)
  }
  dynamic "statement" {
    for_each = length(var.member_accounts) > 0 ? [1] : []
    content {
      sid       = "EnterMemberAccounts"
      actions   = ["sts:AssumeRole"]
      resources = local.member_roles["snapshot-copier"]
    }
  }
  # the isolated backup account: share each newest copy with it (its own copies only), and
  # copy it there through the role it grants (which cannot delete)
  dynamic "statement" {
    for_each = var.backup_account == null ? [] : [var.backup_account]
    content {
      sid       = "ShareNewestCopiesWithTheBackupAccount"
      actions   = ["rds:ModifyDBSnapshotAttribute", "rds:ModifyDBClusterSnapshotAttribute"]
      resources = ["${local.rds_dr}:snapshot:drpilot-*", "${local.rds_dr}:cluster-snapshot:drpilot-*"]
      condition {
        test     = "StringEquals"
        variable = "aws:ResourceTag/drpilot:deployment"
        values   = [var.name_prefix]
      }
    }
  }
  dynamic "statement" {
    for_each = var.backup_account == null ? [] : [var.backup_account]
    content {
      sid       = "EnterTheBackupAccount"
      actions   = ["sts:AssumeRole"]
      resources = [statement.value.role_arn]
    }
  }
  statement {
    sid       = "NotifyResponders"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.responders.arn]
  }
  # the DR region's ledger (what its last listing found) in the state bucket; its encryption
  # is the function module's runtime grant on the DR key
  statement {
    sid       = "KeepTheDrLedger"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.state.arn}/drpilot/copier/*"]
  }
  statement {
    sid       = "FindTheDrLedger" # a missing ledger is then a 404, not a 403
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.state.arn]
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
    sid       = "ListBackedUpBuckets"
    actions   = ["s3:ListBucket"]
    resources = [for b in concat(local.s3_backups, [aws_s3_bucket.state.bucket]) : "arn:${local.partition}:s3:::${b}"]
  }
  statement {
    sid       = "AlertState"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.state.arn}/drpilot/lag-checker/*"]
  }
  statement {
    sid       = "ReadBackupPointsInTime"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.state.arn}/drpilot/s3-backup/*/state.json"]
  }
  dynamic "statement" {
    for_each = var.status_page ? [1] : []
    content {
      sid = "ReadGlobalDatabasesForTheStatusPage"
      #checkov:skip=CKV_AWS_356:DescribeGlobalClusters of the databases' global databases (an operator's hold on their failover); AWS cannot scope a listing
      actions   = ["rds:DescribeGlobalClusters"]
      resources = ["*"]
    }
  }
  dynamic "statement" {
    for_each = var.status_page ? [1] : []
    content {
      sid     = "ReadWhatTheStatusPageShows"
      actions = ["s3:GetObject"]
      resources = [
        "${aws_s3_bucket.state.arn}/drpilot/failover-promoter/*",
        "${aws_s3_bucket.state.arn}/drpilot/drill/*",
        "${aws_s3_bucket.state.arn}/drpilot/restore-verifier/state.json",
      ]
    }
  }
  dynamic "statement" {
    for_each = var.status_page ? [1] : []
    content {
      sid     = "PublishTheStatusPage"
      actions = ["s3:GetObject", "s3:PutObject"] # GetObject: a HeadObject says when it was written

      resources = ["${aws_s3_bucket.state.arn}/drpilot/status/*"]
    }
  }
  dynamic "statement" {
    for_each = length(var.member_accounts) > 0 ? [1] : []
    content {
      sid       = "EnterMemberAccounts"
      actions   = ["sts:AssumeRole"]
      resources = local.member_roles["lag-checker"]
    }
  }
  statement {
    sid       = "NotifyResponders"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.responders.arn]
  }
}

data "aws_iam_policy_document" "failover_promoter" {
  lifecycle {
    precondition {
      # the promoter publishes through its responders' topic's region (dr_region)
      condition     = alltrue([for t in local.plan_topics : split(":", t)[3] == var.dr_region])
      error_message = "databases[].recovery_plan.automation_topic_arn: the topic must be in dr_region, where the promoter publishes."
    }
  }
  statement {
    sid       = "RereadPrimaryHealthAndFailedOverAlarms"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = [for a in concat(values(local.primary_down_alarms), values(local.failed_over_alarms)) : "arn:${local.partition}:cloudwatch:${var.dr_region}:${local.account}:alarm:${a}"]
  }
  dynamic "statement" {
    for_each = length(local.failed_over_alarms) > 0 ? [1] : []
    content {
      sid = "SwitchFailoverRecords"
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
  }
  statement {
    sid = "ReadLagHistory"
    #checkov:skip=CKV_AWS_356:GetMetricData has no resource-level permissions
    actions   = ["cloudwatch:GetMetricData"]
    resources = ["*"]
  }
  statement {
    sid = "ReadPrimaryAndStandby"
    #checkov:skip=CKV_AWS_356:Describe* of instances, clusters, global clusters, pending maintenance and events; read only
    actions   = ["rds:DescribeDBInstances", "rds:DescribeDBClusters", "rds:DescribeGlobalClusters", "rds:DescribePendingMaintenanceActions", "rds:DescribeEvents", "rds:DescribeDBSnapshots"]
    resources = ["*"]
  }
  dynamic "statement" {
    for_each = length(local.replicas) > 0 ? [1] : []
    content {
      sid     = "PromoteReplicas"
      actions = ["rds:PromoteReadReplica"]
      # the DR replica in a failover; the original region's new replica in a failback
      resources = local.failback_instances
    }
  }
  dynamic "statement" {
    for_each = length(local.replicas) > 0 ? [1] : []
    content {
      sid = "FailBackReplaceInstances"
      # Retire an instance (its final snapshot kept) and make a cross-region replica under its
      # name, with its subnet group, parameter group and option group (names managed elsewhere).
      actions = ["rds:DeleteDBInstance", "rds:CreateDBSnapshot", "rds:CreateDBInstanceReadReplica", "rds:AddTagsToResource"]
      resources = concat(local.failback_instances, local.failback_snapshots, [
        "${local.rds_source}:subgrp:*", "${local.rds_dr}:subgrp:*", "${local.rds_source}:pg:*", "${local.rds_dr}:pg:*",
        "${local.rds_source}:og:*", "${local.rds_dr}:og:*",
      ])
    }
  }
  dynamic "statement" {
    for_each = length(local.replicas) > 0 ? [1] : []
    content {
      sid = "FailBackEncryptedReplicas"
      # CreateDBInstanceReadReplica with KmsKeyId: the new replica takes the key of the instance
      # it replaces (a key of the user's, not known here), used by RDS through a grant; only RDS
      # in the deployment's two regions may use these rights.
      #checkov:skip=CKV_AWS_356:the replaced instances' keys are the user's own; kms:ViaService limits the use to RDS
      #checkov:skip=CKV_AWS_111:kms:ViaService limits CreateGrant and DescribeKey to RDS acting for the caller
      actions   = ["kms:CreateGrant", "kms:DescribeKey"]
      resources = ["*"]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["rds.${var.primary_region}.amazonaws.com", "rds.${var.dr_region}.amazonaws.com"]
      }
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
      # (a failback blocks writes on the DR region's primary)
      actions   = ["rds:ModifyDBParameterGroup"]
      resources = ["${local.rds_source}:pg:*", "${local.rds_dr}:pg:*"]
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
  dynamic "statement" {
    for_each = length(local.plan_groups) > 0 ? [1] : []
    content {
      sid     = "ScaleRecoveryPlanGroups"
      actions = ["autoscaling:UpdateAutoScalingGroup"]
      # An Auto Scaling group's ARN holds an id AWS assigns; its name is what the plan knows.
      resources = [for g in local.plan_groups : "arn:${local.partition}:autoscaling:${var.dr_region}:${local.account}:autoScalingGroup:*:autoScalingGroupName/${g}"]
    }
  }
  dynamic "statement" {
    for_each = length(local.plan_groups) > 0 ? [1] : []
    content {
      sid = "WatchRecoveryPlanGroups"
      #checkov:skip=CKV_AWS_356:DescribeAutoScalingGroups and DescribeScalingActivities have no resource-level permissions; read only
      actions   = ["autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScalingActivities"]
      resources = ["*"]
    }
  }
  dynamic "statement" {
    for_each = length(local.plan_topics) > 0 ? [1] : []
    content {
      sid       = "TellRecoveryPlanAutomation"
      actions   = ["sns:Publish"]
      resources = local.plan_topics
    }
  }
  dynamic "statement" {
    for_each = length(local.plan_services) > 0 ? [1] : []
    content {
      sid = "ScaleAndWatchRecoveryPlanServices"
      # Both take the service's ARN (its cluster and name), nothing wider.
      actions   = ["ecs:UpdateService", "ecs:DescribeServices"]
      resources = [for s in local.plan_services : "arn:${local.partition}:ecs:${var.dr_region}:${local.account}:service/${s}"]
    }
  }
  statement {
    sid       = "SwitchAppRecords"
    actions   = ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"]
    resources = distinct([for d in var.databases : "arn:${local.partition}:route53:::hostedzone/${trimprefix(d.dns.zone_id, "/hostedzone/")}"])
  }
  statement {
    sid       = "WaitForDnsChanges"
    actions   = ["route53:GetChange"]
    resources = ["arn:${local.partition}:route53:::change/*"]
  }
  dynamic "statement" {
    for_each = length(local.health_check_ids) > 0 ? [1] : []
    content {
      sid       = "ReadHealthCheckers"
      actions   = ["route53:GetHealthCheckStatus"]
      resources = [for id in local.health_check_ids : "arn:${local.partition}:route53:::healthcheck/${id}"]
    }
  }
  statement {
    sid       = "FailoverAndDrillRecords"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.state.arn}/drpilot/failover-promoter/*", "${aws_s3_bucket.state.arn}/drpilot/drill/*"]
  }
  dynamic "statement" {
    for_each = length(var.member_accounts) > 0 ? [1] : []
    content {
      sid       = "EnterMemberAccounts"
      actions   = ["sts:AssumeRole"]
      resources = local.member_roles["failover-promoter"]
    }
  }
  statement {
    sid       = "NotifyResponders"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.responders.arn]
  }
}

data "aws_iam_policy_document" "s3_backup" {
  statement {
    sid       = "ListSourcesAndState"
    actions   = ["s3:ListBucket"]
    resources = concat(local.backup_sources, [aws_s3_bucket.state.arn])
  }
  dynamic "statement" {
    for_each = length(aws_s3_bucket.inventory) > 0 ? [1] : []
    content {
      sid       = "ListInventoryReports"
      actions   = ["s3:ListBucket"]
      resources = [aws_s3_bucket.inventory[0].arn]
      condition {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = ["inventory/*"]
      }
    }
  }
  dynamic "statement" {
    for_each = length(aws_s3_bucket.inventory) > 0 ? [1] : []
    content {
      sid       = "ReadInventoryReports"
      actions   = ["s3:GetObject"]
      resources = ["${aws_s3_bucket.inventory[0].arn}/inventory/*"]
    }
  }
  dynamic "statement" {
    for_each = length(local.own_backups) > 0 ? [1] : []
    content {
      sid       = "ReadSourceObjects"
      actions   = ["s3:GetObject", "s3:GetObjectTagging"]
      resources = [for b in local.own_backups : "arn:${local.partition}:s3:::${b.source_bucket}/${b.prefix}*"]
    }
  }
  dynamic "statement" {
    for_each = length(local.own_backups) > 0 ? [1] : []
    content {
      sid       = "DrBucketVersioning"
      actions   = ["s3:GetBucketVersioning", "s3:GetBucketObjectLockConfiguration"] # retention keeps points as long as their copies are locked
      resources = local.backup_targets
    }
  }
  dynamic "statement" {
    for_each = length(local.own_backups) > 0 ? [1] : []
    content {
      sid       = "CopyIntoDrBuckets"
      actions   = ["s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload", "s3:GetObject"] # GetObject: HeadObject of a copy whose completion's answer was lost
      resources = [for b in local.own_backups : "arn:${local.partition}:s3:::${b.dr_bucket}/${b.prefix}*"]
    }
  }
  dynamic "statement" {
    for_each = length(local.own_backups) > 0 ? [1] : []
    content {
      sid       = "PruneUnneededVersions"
      actions   = ["s3:DeleteObjectVersion"]
      resources = [for b in local.own_backups : "arn:${local.partition}:s3:::${b.dr_bucket}/${b.prefix}*"]
    }
  }
  statement {
    sid       = "RunStateAndManifests"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.state.arn}/drpilot/s3-backup/*"]
  }
  statement {
    sid       = "EncryptCopiesAndState"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = concat([aws_kms_key.dr.arn], flatten([for b in local.own_backups : b.source_kms_key_arns]))
  }
  dynamic "statement" {
    for_each = length(var.member_accounts) > 0 ? [1] : []
    content {
      sid       = "EnterMemberAccounts"
      actions   = ["sts:AssumeRole"]
      resources = local.member_roles["s3-backup"]
    }
  }
  statement {
    sid       = "NotifyResponders"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.responders.arn]
  }
}
