# What invokes each function.

locals {
  drill_trigger = var.drill == null ? {} : {
    promoter-drill = {
      function = module.failover_promoter
      schedule = var.drill.schedule
      pattern  = null
      input    = jsonencode({ action = "drill", database = var.drill.database, plan = var.drill.plan, confirm = var.drill.database, failback = var.drill.failback })
    }
  }
  backup_trigger = length(var.s3_backups) == 0 ? {} : {
    s3-backup-schedule = { function = module.s3_backup[0], schedule = var.s3_backup_schedule, pattern = null, input = null }
    # goes on with a run a deadline stopped (starts none): a large bucket's run ends in
    # minutes, and the changes S3 notifies meanwhile wait no longer than that
    s3-backup-continue = { function = module.s3_backup[0], schedule = "rate(5 minutes)", pattern = null, input = jsonencode({ action = "continue" }) }
  }
  triggers = merge(local.drill_trigger, local.backup_trigger, local.verifier_trigger, {
    copier-schedule = { function = module.snapshot_copier, schedule = var.copier_schedule, pattern = null, input = null }
    copier-rds-snapshots = {
      function = module.snapshot_copier
      schedule = null
      input    = null
      # forwarded from the primary region's default bus (below); the copier checks the region
      pattern = jsonencode({
        source        = ["aws.rds"]
        "detail-type" = ["RDS DB Snapshot Event", "RDS DB Cluster Snapshot Event"]
        account       = concat([local.account], [for m in var.member_accounts : m.id])
        region        = [var.primary_region]
        detail        = { EventCategories = ["creation"] }
      })
    }
    lag-schedule      = { function = module.lag_checker, schedule = "rate(1 minute)", pattern = null, input = null }
    promoter-continue = { function = module.failover_promoter, schedule = "rate(1 minute)", pattern = null, input = null }
    promoter-alarms = {
      function = module.failover_promoter
      schedule = null
      input    = null
      pattern = jsonencode({
        source        = ["aws.cloudwatch"]
        account       = [local.account] # the alarms are this account's; members forward only RDS events
        "detail-type" = ["CloudWatch Alarm State Change"]
        detail        = { alarmName = values(local.primary_down_alarms), state = { value = ["ALARM"] } }
      })
    }
  })
}

resource "aws_cloudwatch_event_rule" "trigger" {
  provider            = aws.dr
  for_each            = local.triggers
  name                = "${var.name_prefix}-${each.key}"
  description         = "drpilot: invokes ${each.value.function.function_name}"
  schedule_expression = each.value.schedule
  event_pattern       = each.value.pattern
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "trigger" {
  provider = aws.dr
  for_each = local.triggers
  rule     = aws_cloudwatch_event_rule.trigger[each.key].name
  arn      = each.value.function.function_arn
  input    = each.value.input
  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 3
  }
  dead_letter_config {
    arn = aws_sqs_queue.failed.arn
  }
}

resource "aws_lambda_permission" "trigger" {
  provider      = aws.dr
  for_each      = local.triggers
  statement_id  = "eventbridge-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = each.value.function.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.trigger[each.key].arn
}

data "aws_iam_policy_document" "failed_queue" {
  statement {
    sid       = "EventBridgeDeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.failed.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [for r in aws_cloudwatch_event_rule.trigger : r.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "failed" {
  provider  = aws.dr
  queue_url = aws_sqs_queue.failed.id
  policy    = data.aws_iam_policy_document.failed_queue.json
}

# --- Primary region: forward RDS snapshot-created events to the DR region's bus -------------

resource "aws_cloudwatch_event_rule" "forward_rds_snapshots" {
  provider    = aws.primary
  name        = "${var.name_prefix}-forward-rds-snapshots"
  description = "drpilot: RDS snapshot creations, to the DR region so copies start at once"
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
  name               = "${var.name_prefix}-forward-rds-snapshots"
  assume_role_policy = data.aws_iam_policy_document.forward_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "forward" {
  statement {
    actions   = ["events:PutEvents"]
    resources = ["arn:${local.partition}:events:${var.dr_region}:${local.account}:event-bus/default"]
  }
}

resource "aws_iam_role_policy" "forward" {
  provider = aws.primary
  name     = "put-events-dr"
  role     = aws_iam_role.forward.id
  policy   = data.aws_iam_policy_document.forward.json
}

resource "aws_cloudwatch_event_target" "forward" {
  provider = aws.primary
  rule     = aws_cloudwatch_event_rule.forward_rds_snapshots.name
  arn      = "arn:${local.partition}:events:${var.dr_region}:${local.account}:event-bus/default"
  role_arn = aws_iam_role.forward.arn
}

# --- Member accounts: their RDS snapshot events come to this bus too -------------------------

# Each member's module forwards its primary region's snapshot events here; the copier's rule
# above matches them (EventBridge keeps the member's account in the event, and the copier
# works in that account). One statement per member, added to the default bus's policy (what
# else the policy holds is left alone).
resource "aws_cloudwatch_event_permission" "members" {
  provider       = aws.dr
  for_each       = { for m in var.member_accounts : m.id => m }
  principal      = each.key
  statement_id   = "${var.name_prefix}-member-${each.key}"
  event_bus_name = "default"
}
