# Alarms, all notifying the responders' topic. The primary-health alarms also trigger the
# promoter (through the EventBridge rule in triggers.tf).

resource "aws_cloudwatch_metric_alarm" "primary_down" {
  provider            = aws.dr
  for_each            = { for d in var.databases : d.name => d }
  alarm_name          = local.primary_down_alarms[each.key]
  alarm_description   = "drpilot: replication from ${each.key}'s primary is broken (measured from ${var.dr_region}); the failover promoter decides"
  namespace           = var.metric_namespace
  metric_name         = "RpoStatus" # 0 healthy, 1 breached, 2 broken; nothing for unknown
  dimensions          = { Resource = each.value.lag_resource }
  statistic           = "Maximum"
  period              = local.metric_period_seconds
  evaluation_periods  = var.primary_down_periods
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 2        # broken
  treat_missing_data  = "ignore" # no verdict (drpilot could not look): neither fires nor clears; lag_checker_silent covers a checker that does not run
  alarm_actions       = [aws_sns_topic.responders.arn]
  ok_actions          = [aws_sns_topic.responders.arn]
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "rpo_breached" {
  provider = aws.dr
  # every resource the lag checker measures, each S3 backup's included (name => budget: only
  # the names need be known at plan time)
  for_each            = merge({ for r in var.lag_resources : r.name => r.rpo_seconds }, { for b in var.s3_backups : "s3-backup-${b.name}" => b.rpo_seconds })
  alarm_name          = "${var.name_prefix}-${each.key}-rpo-breached"
  alarm_description   = "drpilot: ${each.key} is further behind than its RPO budget (${each.value} s)"
  namespace           = var.metric_namespace
  metric_name         = "RpoStatus"
  dimensions          = { Resource = each.key }
  statistic           = "Maximum"
  period              = local.metric_period_seconds
  evaluation_periods  = var.rpo_alarm_periods
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1 # breached or broken
  treat_missing_data  = "ignore"
  alarm_actions       = [aws_sns_topic.responders.arn]
  ok_actions          = [aws_sns_topic.responders.arn]
  tags                = local.tags
}

# The lag checker itself: runs that could not measure some resources (their alarms keep their
# state meanwhile), and no runs at all. Responders only: neither is evidence about a primary.
resource "aws_cloudwatch_metric_alarm" "lag_checker_blind" {
  provider            = aws.dr
  alarm_name          = "${var.name_prefix}-lag-checker-blind"
  alarm_description   = "drpilot: the lag checker could not measure some resources (its Errors and logs say which); their alarms hold their last state"
  namespace           = var.metric_namespace
  metric_name         = "UnmeasuredResources"
  statistic           = "Minimum"
  period              = local.metric_period_seconds
  evaluation_periods  = var.rpo_alarm_periods
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching" # lag_checker_silent covers no runs at all
  alarm_actions       = [aws_sns_topic.responders.arn]
  ok_actions          = [aws_sns_topic.responders.arn]
  tags                = local.tags
  depends_on          = [module.lag_checker]
}

resource "aws_cloudwatch_metric_alarm" "lag_checker_silent" {
  provider            = aws.dr
  alarm_name          = "${var.name_prefix}-lag-checker-silent"
  alarm_description   = "drpilot: the lag checker has not reported for 5 periods: no primary-down alarm can fire meanwhile"
  namespace           = var.metric_namespace
  metric_name         = "UnmeasuredResources"
  statistic           = "SampleCount"
  period              = local.metric_period_seconds
  evaluation_periods  = 5
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.responders.arn]
  ok_actions          = [aws_sns_topic.responders.arn]
  tags                = local.tags
  depends_on          = [module.lag_checker]
}

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  provider            = aws.dr
  for_each            = local.functions_all
  alarm_name          = "${each.value}-errors"
  alarm_description   = "drpilot: ${each.value} failed (its own notice or logs say why)"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.responders.arn]
  tags                = local.tags
  depends_on          = [module.snapshot_copier, module.lag_checker, module.failover_promoter, module.s3_backup, module.restore_verifier]
}

# Route 53 health checks of the primaries' endpoints: the promoter's checker quorum.
resource "aws_route53_health_check" "primary" {
  provider          = aws.primary
  for_each          = { for d in var.databases : d.name => d if d.health_check != null }
  fqdn              = each.value.health_check.fqdn
  port              = each.value.health_check.port
  type              = "TCP"
  failure_threshold = 3
  request_interval  = 10
  tags              = merge(local.tags, { Name = "${var.name_prefix}-${each.key}-primary" })
}
