# DR-region buckets of the S3 backups. Versioning is what makes points in time possible: each
# run's manifest names the object versions it needs, and drpilot's retention deletes only the
# versions no retained point in time names. So there is no noncurrent-version expiry here.

resource "aws_s3_bucket" "backup" {
  #checkov:skip=CKV_AWS_144:this bucket is the cross-region copy; replicating it back would put a copy where the outage is
  #checkov:skip=CKV_AWS_18:access logs of backup copies written by drpilot's role add cost, not insight; CloudTrail data events cover audits
  #checkov:skip=CKV2_AWS_62:nothing consumes events of the backup copies
  provider = aws.dr
  for_each = { for b in var.s3_backups : b.name => b if b.account == null } # a member provides its own
  bucket   = each.value.dr_bucket
  tags     = merge(local.tags, { "drpilot:backup-of" = each.value.source_bucket })
}

resource "aws_s3_bucket_versioning" "backup" {
  provider = aws.dr
  for_each = aws_s3_bucket.backup
  bucket   = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "backup" {
  provider = aws.dr
  for_each = aws_s3_bucket.backup
  bucket   = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.dr.arn
    }
    bucket_key_enabled = true
  }
}

# Object Lock (s3_backups[].object_lock): each copy is locked from when it lands. AWS enables
# it on an existing versioned bucket too, so turning it on never replaces a bucket of backups.
resource "aws_s3_bucket_object_lock_configuration" "backup" {
  provider            = aws.dr
  for_each            = { for name, b in aws_s3_bucket.backup : name => b if local.backup_locks[name] != null }
  bucket              = each.value.id
  object_lock_enabled = "Enabled"
  rule {
    default_retention {
      mode = local.backup_locks[each.key].mode
      days = local.backup_locks[each.key].days
    }
  }
  depends_on = [aws_s3_bucket_versioning.backup]
}

locals {
  backup_locks = { for b in var.s3_backups : b.name => b.object_lock }
}

resource "aws_s3_bucket_public_access_block" "backup" {
  provider                = aws.dr
  for_each                = aws_s3_bucket.backup
  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "backup" {
  provider = aws.dr
  for_each = aws_s3_bucket.backup
  bucket   = each.value.id
  rule {
    id     = "abandoned-multipart-copies"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      # a multipart copy goes on across invocations: a week of runs before its parts are dropped
      days_after_initiation = 7
    }
  }
}

# --- Event-driven backups: S3 notifications -> SNS (primary region) -> SQS (DR region) -> s3-backup

locals {
  # a bucket's notifications go to a topic in its own region; the queue the function reads is
  # in the DR region (a Lambda event source reads a queue of its own region), so SNS carries them
  event_backups = { for b in var.s3_backups : b.name => b if b.events && b.account == null }
  events_on     = length(local.event_backups) > 0 && length(var.s3_backups) > 0
}

resource "aws_sns_topic" "s3_changes" {
  #checkov:skip=CKV_AWS_26:S3 cannot publish to a topic encrypted with an AWS managed key, and a key in the primary region would be one more key to keep; the messages name keys, not contents
  provider = aws.primary
  count    = local.events_on ? 1 : 0
  name     = "${var.name_prefix}-s3-changes"
  tags     = local.tags
}

data "aws_iam_policy_document" "s3_changes_topic" {
  count = local.events_on ? 1 : 0
  statement {
    sid       = "SourceBucketsNotify"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.s3_changes[0].arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [for b in local.event_backups : "arn:${local.partition}:s3:::${b.source_bucket}"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_sns_topic_policy" "s3_changes" {
  provider = aws.primary
  count    = local.events_on ? 1 : 0
  arn      = aws_sns_topic.s3_changes[0].arn
  policy   = data.aws_iam_policy_document.s3_changes_topic[0].json
}

# One configuration per bucket (a bucket has one), its whole key space: the function takes the
# keys of each backup of the bucket by its prefix (S3 refuses overlapping prefix filters).
resource "aws_s3_bucket_notification" "source" {
  provider = aws.primary
  for_each = local.events_on ? toset([for b in local.event_backups : b.source_bucket]) : toset([])
  bucket   = each.value
  topic {
    id        = "drpilot"
    topic_arn = aws_sns_topic.s3_changes[0].arn
    events    = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
  }
  depends_on = [aws_sns_topic_policy.s3_changes]
}

resource "aws_sqs_queue" "s3_changes_failed" {
  provider                  = aws.dr
  count                     = local.events_on ? 1 : 0
  name                      = "${var.name_prefix}-s3-changes-failed"
  kms_master_key_id         = aws_kms_key.dr.arn
  message_retention_seconds = 1209600
  tags                      = local.tags
}

resource "aws_sqs_queue" "s3_changes" {
  provider                   = aws.dr
  count                      = local.events_on ? 1 : 0
  name                       = "${var.name_prefix}-s3-changes"
  kms_master_key_id          = aws_kms_key.dr.arn
  visibility_timeout_seconds = 900 # the function's timeout: a change that waits comes again after it
  message_retention_seconds  = 1209600
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.s3_changes_failed[0].arn
    maxReceiveCount     = 20 # about five hours of waiting for a scheduled run or retention to end
  })
  tags = local.tags
}

data "aws_iam_policy_document" "s3_changes_queue" {
  count = local.events_on ? 1 : 0
  statement {
    sid       = "ChangesTopicDelivers"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.s3_changes[0].arn]
    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_sns_topic.s3_changes[0].arn]
    }
  }
}

resource "aws_sqs_queue_policy" "s3_changes" {
  provider  = aws.dr
  count     = local.events_on ? 1 : 0
  queue_url = aws_sqs_queue.s3_changes[0].id
  policy    = data.aws_iam_policy_document.s3_changes_queue[0].json
}

resource "aws_sns_topic_subscription" "s3_changes" {
  provider             = aws.primary
  count                = local.events_on ? 1 : 0
  topic_arn            = aws_sns_topic.s3_changes[0].arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.s3_changes[0].arn
  raw_message_delivery = true # the queue gets S3's own JSON
}

# What the event source mapping needs of the function's role (not the code's calls).
data "aws_iam_policy_document" "s3_changes_reader" {
  count = local.events_on ? 1 : 0
  statement {
    sid       = "ReadChanges"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.s3_changes[0].arn]
  }
}

resource "aws_iam_role_policy" "s3_changes_reader" {
  provider = aws.dr
  count    = local.events_on ? 1 : 0
  name     = "s3-changes-queue"
  role     = module.s3_backup[0].role_name
  policy   = data.aws_iam_policy_document.s3_changes_reader[0].json
}

resource "aws_lambda_event_source_mapping" "s3_changes" {
  provider                           = aws.dr
  count                              = local.events_on ? 1 : 0
  function_name                      = module.s3_backup[0].function_name
  event_source_arn                   = aws_sqs_queue.s3_changes[0].arn
  batch_size                         = 100
  maximum_batching_window_in_seconds = 20 # a change is in the DR bucket within about a minute
  function_response_types            = ["ReportBatchItemFailures"]
  scaling_config {
    maximum_concurrency = 2 # within the function's reserved concurrency: not throttled
  }
  depends_on = [aws_iam_role_policy.s3_changes_reader]
}

resource "aws_cloudwatch_metric_alarm" "s3_changes_waiting" {
  provider            = aws.dr
  count               = local.events_on ? 1 : 0
  alarm_name          = "${var.name_prefix}-s3-changes-waiting"
  alarm_description   = "drpilot: S3 changes have waited more than an hour to be backed up (a scheduled run that does not end, or copies that fail); the event-driven RPO is slipping"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.s3_changes[0].name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 3600
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.responders.arn]
  ok_actions          = [aws_sns_topic.responders.arn]
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "s3_changes_dropped" {
  provider            = aws.dr
  count               = local.events_on ? 1 : 0
  alarm_name          = "${var.name_prefix}-s3-changes-dropped"
  alarm_description   = "drpilot: S3 change messages gave up (dead-letter queue); the next scheduled run copies those objects, read the messages to see why"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.s3_changes_failed[0].name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.responders.arn]
  tags                = local.tags
}

# --- S3 Inventory: the scheduled run's keys from S3's daily report instead of a listing

locals {
  inventory_backups = { for b in var.s3_backups : b.name => b if b.inventory && b.account == null }
  # S3 puts a configuration's reports under <destination prefix>/<source bucket>/<config id>/
  # (AWS S3 User Guide, "Locating your inventory list"); the backup's `inventory` setting
  inventory_locations = { for name, b in local.inventory_backups :
    name => "s3://${aws_s3_bucket.inventory[0].bucket}/inventory/${b.source_bucket}/${var.name_prefix}-${name}/"
  }
}

# S3 requires an inventory's destination in the source bucket's region.
resource "aws_s3_bucket" "inventory" {
  #checkov:skip=CKV_AWS_144:the reports are rebuilt daily from the source; replicating them adds nothing
  #checkov:skip=CKV_AWS_18:written by S3 and read by drpilot's role only; CloudTrail data events cover audits
  #checkov:skip=CKV2_AWS_62:nothing consumes events of the reports; the schedule reads the newest
  #checkov:skip=CKV_AWS_145:the reports hold key names, sizes and ETags, not contents; SSE-KMS would mean granting S3 a key in the primary region
  provider      = aws.primary
  count         = length(local.inventory_backups) > 0 ? 1 : 0
  bucket_prefix = "${substr(var.name_prefix, 0, 26)}-inventory-"
  tags          = local.tags
}

resource "aws_s3_bucket_versioning" "inventory" {
  provider = aws.primary
  count    = length(aws_s3_bucket.inventory)
  bucket   = aws_s3_bucket.inventory[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "inventory" {
  provider = aws.primary
  count    = length(aws_s3_bucket.inventory)
  bucket   = aws_s3_bucket.inventory[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "inventory" {
  provider                = aws.primary
  count                   = length(aws_s3_bucket.inventory)
  bucket                  = aws_s3_bucket.inventory[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "inventory" {
  provider = aws.primary
  count    = length(aws_s3_bucket.inventory)
  bucket   = aws_s3_bucket.inventory[0].id
  rule {
    id     = "old-reports"
    status = "Enabled"
    filter {}
    expiration {
      days = 7 # a run reads the newest report; a week covers a run that resumes for days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# What S3 needs to deliver the reports (AWS S3 User Guide, "Granting permissions for S3
# Inventory and S3 analytics"): from these source buckets, of this account, only.
data "aws_iam_policy_document" "inventory" {
  count = length(aws_s3_bucket.inventory)
  statement {
    sid       = "S3InventoryDelivers"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.inventory[0].arn}/inventory/*"]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = distinct([for b in local.inventory_backups : "arn:${local.partition}:s3:::${b.source_bucket}"])
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
    condition {
      test     = "StringEquals"
      variable = "s3:x-amz-acl"
      values   = ["bucket-owner-full-control"]
    }
  }
}

resource "aws_s3_bucket_policy" "inventory" {
  provider = aws.primary
  count    = length(aws_s3_bucket.inventory)
  bucket   = aws_s3_bucket.inventory[0].id
  policy   = data.aws_iam_policy_document.inventory[0].json
}

# Daily, current versions, the fields the run compares (a backup's prefix only).
resource "aws_s3_bucket_inventory" "source" {
  provider                 = aws.primary
  for_each                 = local.inventory_backups
  bucket                   = each.value.source_bucket
  name                     = "${var.name_prefix}-${each.key}"
  included_object_versions = "Current"
  optional_fields          = ["Size", "LastModifiedDate", "ETag", "StorageClass"]
  schedule {
    frequency = "Daily"
  }
  dynamic "filter" {
    for_each = each.value.prefix == "" ? [] : [each.value.prefix]
    content {
      prefix = filter.value
    }
  }
  destination {
    bucket {
      format     = "CSV"
      bucket_arn = aws_s3_bucket.inventory[0].arn
      prefix     = "inventory"
    }
  }
  depends_on = [aws_s3_bucket_policy.inventory]
}
