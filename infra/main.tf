# drpilot: every function runs in the DR region (it must outlive the primary region), with
# its state, metrics, alarms and the responders' topic. The primary region only forwards its
# RDS snapshot events. Route 53 is global.

data "aws_caller_identity" "current" {
  provider = aws.dr
}

data "aws_partition" "current" {
  provider = aws.dr
}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  tags      = merge({ "managed-by" = "drpilot" }, var.tags)
  functions = {
    copier   = "${var.name_prefix}-snapshot-copier"
    lag      = "${var.name_prefix}-lag-checker"
    promoter = "${var.name_prefix}-failover-promoter"
    backup   = "${var.name_prefix}-s3-backup"
  }
  # DRPILOT_VAULT: the isolated backup account the copier copies into
  vault_json = var.backup_account == null ? "" : jsonencode([{
    id            = var.backup_account.id
    role_arn      = var.backup_account.role_arn
    external_id   = var.backup_account.external_id
    dr_kms_key_id = var.backup_account.kms_key_arn
  }])
  # with the restore verifier when it is deployed (its errors alarm too)
  functions_all = merge(local.functions, var.restore_verification == null ? {} : { verifier = "${var.name_prefix}-restore-verifier" })
  # CloudWatch's standard resolution: the period of drpilot's metrics and alarms. It must match
  # the lag checker's schedule (rate(1 minute) in triggers.tf; EventBridge runs schedules at
  # most once a minute), and AWS accepts nothing shorter for standard-resolution metrics. The
  # functions derive every "one period" duration from it; only the test bed, running AWS's
  # timeline scaled down (tests/emulator/drsim), uses another value.
  metric_period_seconds = 60
  # The primary-health alarm of each database: replication to its DR standby is broken.
  primary_down_alarms = { for d in var.databases : d.name => "${var.name_prefix}-${d.name}-primary-down" }
  # Each S3 backup is also measured: the age of its newest point in time against rpo_seconds.
  lag_resources_json = jsonencode(concat(
    [for r in var.lag_resources : { for k, v in r : k => v if v != null }],
    [for b in var.s3_backups : { name = "s3-backup-${b.name}", kind = "s3-backup", backup = b.name, rpo_seconds = b.rpo_seconds }],
  ))
  # A member's copies are encrypted with its own DR key (infra/modules/member), or, without
  # one, by its DR bucket's default encryption.
  member_keys = { for m in var.member_accounts : m.id => m.dr_kms_key_arn }
  s3_backups_json = jsonencode([
    for b in var.s3_backups : merge(
      { for k, v in b : k => v if v != null && !contains(["rpo_seconds", "source_kms_key_arns", "events", "inventory", "object_lock"], k) },
      { for k, v in {
        kms_key_id = b.account == null ? aws_kms_key.dr.arn : lookup(local.member_keys, b.account, null)
        inventory  = lookup(local.inventory_locations, b.name, null)
      } : k => v if v != null },
    )
  ])
  # DRPILOT_ACCOUNTS per function: the member accounts and that function's role in each
  # (infra/modules/member creates <role_prefix>-<function>); "" when there are none.
  member_roles = { for f in ["snapshot-copier", "lag-checker", "failover-promoter", "s3-backup"] : f => [
    for m in var.member_accounts : "arn:${local.partition}:iam::${m.id}:role/${m.role_prefix}-${f}"
  ] }
  accounts_json = { for f, roles in local.member_roles : f => length(var.member_accounts) == 0 ? "" : jsonencode([
    for i, m in var.member_accounts : { for k, v in {
      id            = m.id
      role_arn      = roles[i]
      external_id   = m.external_id
      dr_kms_key_id = m.dr_kms_key_arn
    } : k => v if v != null }
  ]) }
  # What the status page needs of the databases (the lag checker's copy; Lambda allows 4 KB of
  # environment per function): without the recovery plans and health checks it does not show.
  databases_page_json = jsonencode([
    for d in jsondecode(local.databases_json) : { for k, v in d : k => v if !contains(["recovery_plan", "health_check_id"], k) }
  ])
  databases_json = jsonencode([
    for d in var.databases : merge(
      { for k, v in d : k => v if v != null && !contains(["dns", "health_check", "recovery_plan"], k) },
      d.recovery_plan == null ? {} : {
        recovery_plan = {
          capacity     = [for g in d.recovery_plan.capacity : { for k, v in g : k => v if v != null }]
          wait_seconds = d.recovery_plan.wait_seconds
          strict       = d.recovery_plan.strict
          # null when not given: the promoter reads null as absent
          automation_topic_arn = d.recovery_plan.automation_topic_arn
        }
      },
      {
        alarms = [local.primary_down_alarms[d.name]]
        dns = { for k, v in {
          zone_id     = d.dns.zone_id
          record_name = d.dns.record_name
          ttl         = d.dns.ttl
          mode        = d.dns.mode
          alarm       = lookup(local.failed_over_alarms, d.name, null)
        } : k => v if v != null }
        health_check_id = d.health_check == null ? null : aws_route53_health_check.primary[d.name].id
      }
    )
  ])
}

# --- KMS: DR snapshot copies, state, topic, logs, queues ----------------------------------

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
  # the isolated backup account copies the DR copies shared with it: RDS there uses this key
  # on its behalf (a grant for the copy, reading the data to re-encrypt it with its own key)
  dynamic "statement" {
    for_each = var.backup_account == null ? [] : [var.backup_account]
    content {
      sid       = "BackupAccountGrantsForItsCopies"
      actions   = ["kms:CreateGrant"]
      resources = ["*"]
      principals {
        type        = "AWS"
        identifiers = ["arn:${local.partition}:iam::${statement.value.id}:root"]
      }
      condition {
        test     = "Bool"
        variable = "kms:GrantIsForAWSResource"
        values   = ["true"]
      }
    }
  }
  dynamic "statement" {
    for_each = var.backup_account == null ? [] : [var.backup_account]
    content {
      sid       = "BackupAccountCopiesThroughRds"
      actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:ReEncrypt*"]
      resources = ["*"]
      principals {
        type        = "AWS"
        identifiers = ["arn:${local.partition}:iam::${statement.value.id}:root"]
      }
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["rds.${var.dr_region}.amazonaws.com"]
      }
    }
  }
  statement {
    sid       = "Services"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*", "kms:Encrypt", "kms:ReEncrypt*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.dr_region}.amazonaws.com", "cloudwatch.amazonaws.com", "events.amazonaws.com", "sns.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "dr" {
  provider                = aws.dr
  description             = "drpilot: DR snapshot copies, state, notices and logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
  tags                    = local.tags
}

resource "aws_kms_alias" "dr" {
  provider      = aws.dr
  name          = "alias/${var.name_prefix}-dr"
  target_key_id = aws_kms_key.dr.key_id
}

# --- Responders' topic ----------------------------------------------------------------------

resource "aws_sns_topic" "responders" {
  provider          = aws.dr
  name              = "${var.name_prefix}-responders"
  kms_master_key_id = aws_kms_key.dr.arn
  tags              = local.tags
}

data "aws_iam_policy_document" "responders" {
  statement {
    sid       = "AlarmsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.responders.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_sns_topic_policy" "responders" {
  provider = aws.dr
  arn      = aws_sns_topic.responders.arn
  policy   = data.aws_iam_policy_document.responders.json
}

resource "aws_sns_topic_subscription" "responders" {
  provider = aws.dr
  for_each = merge(
    { for e in var.responders.emails : "email:${e}" => { protocol = "email", endpoint = e } },
    { for n in var.responders.sms : "sms:${n}" => { protocol = "sms", endpoint = n } },
    { for u in var.responders.https : "https:${u}" => { protocol = "https", endpoint = u } },
  )
  topic_arn = aws_sns_topic.responders.arn
  protocol  = each.value.protocol
  endpoint  = each.value.endpoint
}

# --- State bucket (lag-checker alert state, failover records, S3 backups' state, the copier's ledger)

resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_144:the state bucket belongs in the DR region; replicating it back would put a copy where the outage is
  #checkov:skip=CKV_AWS_18:access logs of a few state objects written by drpilot's own roles add cost, not insight; CloudTrail data events cover audits
  #checkov:skip=CKV2_AWS_62:nothing consumes events of the state objects
  provider      = aws.dr
  bucket_prefix = "${var.name_prefix}-state-"
  tags          = local.tags
}

resource "aws_s3_bucket_versioning" "state" {
  provider = aws.dr
  bucket   = aws_s3_bucket.state.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  provider = aws.dr
  bucket   = aws_s3_bucket.state.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.dr.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  provider                = aws.dr
  bucket                  = aws_s3_bucket.state.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  provider = aws.dr
  bucket   = aws_s3_bucket.state.id
  rule {
    id     = "old-state-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 90
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  # What restore tests of S3 backups restore is deleted, version and all, once read back; a
  # run that dies in between leaves it to the next run's sweep, and to these rules: gone a day
  # later whatever happens (of overlapping rules, S3 honours the shorter expiration).
  rule {
    id     = "restore-test-scratch"
    status = "Enabled"
    filter {
      prefix = "drpilot/restore-verifier/s3/"
    }
    expiration {
      days = 1
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }
  # The status page is rewritten every five minutes: its old versions are of no use.
  rule {
    id     = "status-page-versions"
    status = "Enabled"
    filter {
      prefix = "drpilot/status/"
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }
  rule {
    id     = "restore-test-scratch-markers"
    status = "Enabled"
    filter {
      prefix = "drpilot/restore-verifier/s3/"
    }
    expiration {
      expired_object_delete_marker = true
    }
  }
}

# --- Failed asynchronous invocations ---------------------------------------------------------

resource "aws_sqs_queue" "failed" {
  provider                  = aws.dr
  name                      = "${var.name_prefix}-failed-invocations"
  kms_master_key_id         = aws_kms_key.dr.arn
  message_retention_seconds = 1209600
  tags                      = local.tags
}

# --- The functions ----------------------------------------------------------------------------

module "snapshot_copier" {
  source                 = "./modules/function"
  providers              = { aws = aws.dr }
  name                   = local.functions.copier
  package_path           = "${var.package_dir}/snapshot-copier.zip"
  architecture           = var.architecture
  timeout                = 300
  reserved_concurrency   = 1 # the copies-in-flight limit is counted per run
  maximum_retry_attempts = 0 # a failed run has notified; the next scheduled run retries
  kms_key_arn            = aws_kms_key.dr.arn
  log_retention_days     = var.log_retention_days
  dead_letter_queue_arn  = aws_sqs_queue.failed.arn
  policy_json            = data.aws_iam_policy_document.snapshot_copier.json
  tags                   = local.tags
  environment = {
    DRPILOT_SOURCE_REGION        = var.primary_region
    DRPILOT_DR_REGION            = var.dr_region
    DRPILOT_DB_INSTANCES         = join(",", var.copier_db_instances)
    DRPILOT_DB_CLUSTERS          = join(",", var.copier_db_clusters)
    DRPILOT_SELECT_TAG           = var.copier_select_tag
    DRPILOT_DR_KMS_KEY_ID        = aws_kms_key.dr.arn
    DRPILOT_MAX_COPIES_IN_FLIGHT = tostring(var.copier_max_copies_in_flight)
    DRPILOT_RETAIN_COUNT         = var.copier_retain_count == null ? "" : tostring(var.copier_retain_count)
    DRPILOT_RETAIN_DAYS          = var.copier_retain_days == null ? "" : tostring(var.copier_retain_days)
    DRPILOT_COPY_SOURCE_TAGS     = tostring(var.copier_copy_source_tags)
    DRPILOT_NOTIFY_TOPIC_ARN     = aws_sns_topic.responders.arn
    DRPILOT_ACCOUNTS             = local.accounts_json["snapshot-copier"]
    DRPILOT_DEPLOYMENT           = var.name_prefix
    DRPILOT_STATE_BUCKET         = aws_s3_bucket.state.bucket # the DR region's ledger
    DRPILOT_STATE_PREFIX         = "drpilot/"
    DRPILOT_S3_FORCE_PATH_STYLE  = "false"
    DRPILOT_VAULT                = local.vault_json
    DRPILOT_VAULT_EVERY_HOURS    = var.backup_account == null ? "168" : tostring(var.backup_account.every_hours)
    DRPILOT_METRIC_NAMESPACE     = var.metric_namespace
  }
}

module "lag_checker" {
  source                 = "./modules/function"
  providers              = { aws = aws.dr }
  name                   = local.functions.lag
  package_path           = "${var.package_dir}/lag-checker.zip"
  architecture           = var.architecture
  timeout                = 55 # runs every minute
  reserved_concurrency   = 2
  maximum_retry_attempts = 0 # the next minute's run measures again
  kms_key_arn            = aws_kms_key.dr.arn
  log_retention_days     = var.log_retention_days
  dead_letter_queue_arn  = aws_sqs_queue.failed.arn
  policy_json            = data.aws_iam_policy_document.lag_checker.json
  tags                   = local.tags
  environment = {
    DRPILOT_SOURCE_REGION         = var.primary_region
    DRPILOT_DR_REGION             = var.dr_region
    DRPILOT_RESOURCES             = local.lag_resources_json
    DRPILOT_LAG_WINDOW_SECONDS    = tostring(var.lag_window_seconds)
    DRPILOT_METRIC_PERIOD_SECONDS = tostring(local.metric_period_seconds)
    DRPILOT_METRIC_NAMESPACE      = var.metric_namespace
    DRPILOT_STATE_BUCKET          = aws_s3_bucket.state.bucket
    DRPILOT_STATE_PREFIX          = "drpilot/"
    DRPILOT_NOTIFY_TOPIC_ARN      = aws_sns_topic.responders.arn
    DRPILOT_ACCOUNTS              = local.accounts_json["lag-checker"]
    DRPILOT_DEPLOYMENT            = var.name_prefix
    DRPILOT_S3_FORCE_PATH_STYLE   = "false"
    # measure for 45 of the 55 s; what is not measured by then is published as unknown
    DRPILOT_DEADLINE_MARGIN_SECONDS = "10"
    # the status page, and what it shows besides the resources (read-only here)
    DRPILOT_STATUS_PAGE         = var.status_page ? "true" : "false"
    DRPILOT_DATABASES           = var.status_page && length(var.databases) > 0 ? local.databases_page_json : ""
    DRPILOT_VERIFY_DATABASES    = var.status_page ? local.verify_databases_json : ""
    DRPILOT_VERIFY_BACKUPS      = var.status_page && length(local.verify_backups) > 0 ? jsonencode(local.verify_backups) : ""
    DRPILOT_VERIFY_MAX_AGE_DAYS = var.restore_verification == null ? "8" : tostring(var.restore_verification.max_age_days)
  }
}

module "failover_promoter" {
  source                 = "./modules/function"
  providers              = { aws = aws.dr }
  name                   = local.functions.promoter
  package_path           = "${var.package_dir}/failover-promoter.zip"
  architecture           = var.architecture
  timeout                = 900 # it saves progress before this and the continuation schedule resumes
  reserved_concurrency   = 5   # duplicates are resolved by the record's conditional writes
  maximum_retry_attempts = 0   # the continuation schedule resumes a failed step
  kms_key_arn            = aws_kms_key.dr.arn
  log_retention_days     = var.log_retention_days
  dead_letter_queue_arn  = aws_sqs_queue.failed.arn
  policy_json            = data.aws_iam_policy_document.failover_promoter.json
  tags                   = local.tags
  environment = {
    DRPILOT_SOURCE_REGION           = var.primary_region
    DRPILOT_DR_REGION               = var.dr_region
    DRPILOT_DATABASES               = local.databases_json
    DRPILOT_MODE                    = var.failover_mode
    DRPILOT_COOLDOWN_SECONDS        = tostring(var.cooldown_seconds)
    DRPILOT_CHECKER_QUORUM_PERCENT  = tostring(var.checker_quorum_percent)
    DRPILOT_LAG_LOOKBACK_SECONDS    = tostring(var.lag_lookback_seconds)
    DRPILOT_POLL_SECONDS            = tostring(var.poll_seconds)
    DRPILOT_DEADLINE_MARGIN_SECONDS = "30"
    DRPILOT_STUCK_AFTER_SECONDS     = tostring(var.stuck_after_seconds)
    DRPILOT_PROBE_SPACING_MS        = "2000" # one 5xx is not an outage: 3 rounds, 2 s apart
    DRPILOT_METRIC_PERIOD_SECONDS   = tostring(local.metric_period_seconds)
    DRPILOT_METRIC_NAMESPACE        = var.metric_namespace
    DRPILOT_STATE_BUCKET            = aws_s3_bucket.state.bucket
    DRPILOT_STATE_PREFIX            = "drpilot/"
    DRPILOT_NOTIFY_TOPIC_ARN        = aws_sns_topic.responders.arn
    DRPILOT_ACCOUNTS                = local.accounts_json["failover-promoter"]
    DRPILOT_S3_FORCE_PATH_STYLE     = "false"
  }
}

module "s3_backup" {
  source                 = "./modules/function"
  count                  = length(var.s3_backups) > 0 ? 1 : 0
  providers              = { aws = aws.dr }
  name                   = local.functions.backup
  package_path           = "${var.package_dir}/s3-backup.zip"
  architecture           = var.architecture
  timeout                = 900 # it saves progress before this; the continuation (every 5 minutes) resumes
  memory_size            = coalesce(var.s3_backup_memory_mb, length(local.inventory_backups) > 0 ? 1024 : 256)
  reserved_concurrency   = 4 # one run per backup at a time is the state's lease's job; room for the schedule, its continuation and the S3 changes queue (2)
  maximum_retry_attempts = 0 # a failed run has notified; the next scheduled run resumes
  kms_key_arn            = aws_kms_key.dr.arn
  log_retention_days     = var.log_retention_days
  dead_letter_queue_arn  = aws_sqs_queue.failed.arn
  policy_json            = data.aws_iam_policy_document.s3_backup.json
  tags                   = local.tags
  environment = {
    DRPILOT_SOURCE_REGION             = var.primary_region
    DRPILOT_DR_REGION                 = var.dr_region
    DRPILOT_S3_BACKUPS                = local.s3_backups_json
    DRPILOT_S3_COPY_CONCURRENCY       = tostring(var.s3_backup_copy_concurrency)
    DRPILOT_S3_MULTIPART_THRESHOLD_MB = "5120"
    DRPILOT_DEADLINE_MARGIN_SECONDS   = "60"
    DRPILOT_STATE_BUCKET              = aws_s3_bucket.state.bucket
    DRPILOT_STATE_PREFIX              = "drpilot/"
    DRPILOT_NOTIFY_TOPIC_ARN          = aws_sns_topic.responders.arn
    DRPILOT_ACCOUNTS                  = local.accounts_json["s3-backup"]
    DRPILOT_S3_FORCE_PATH_STYLE       = "false"
  }
}
