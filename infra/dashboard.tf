# drpilot's CloudWatch dashboard, in the DR region: it must outlive the primary region's
# outage. Its widgets are generated (infra/modules/dashboard) from the same lists the functions
# are configured with, DRPILOT_RESOURCES and the databases, so a resource added to the one is on
# the other; the code/Terraform consistency test evaluates it with the metric names the code
# publishes.

locals {
  # the console of the partition the DR region is in
  console = lookup({
    "aws-cn"     = "console.amazonaws.cn"
    "aws-us-gov" = "console.amazonaws-us-gov.com"
  }, local.partition, "${var.dr_region}.console.aws.amazon.com")
}

module "dashboard_body" {
  source    = "./modules/dashboard"
  title     = "drpilot ${var.name_prefix}: ${var.primary_region} to ${var.dr_region}"
  region    = var.dr_region
  namespace = var.metric_namespace
  period    = local.metric_period_seconds
  resources = jsondecode(local.lag_resources_json)
  databases = [for d in var.databases : d.name]
  functions = local.functions_all
  # every alarm drpilot ships (all in the DR region)
  alarm_arns = concat(
    [for a in aws_cloudwatch_metric_alarm.primary_down : a.arn],
    [for a in aws_cloudwatch_metric_alarm.failed_over : a.arn],
    [for a in aws_cloudwatch_metric_alarm.rpo_breached : a.arn],
    [aws_cloudwatch_metric_alarm.lag_checker_silent.arn, aws_cloudwatch_metric_alarm.lag_checker_blind.arn],
    [for a in aws_cloudwatch_metric_alarm.function_errors : a.arn],
    aws_cloudwatch_metric_alarm.s3_changes_waiting[*].arn,
    aws_cloudwatch_metric_alarm.s3_changes_dropped[*].arn,
  )
}

resource "aws_cloudwatch_dashboard" "dr" {
  provider       = aws.dr
  dashboard_name = "${var.name_prefix}-dr"
  dashboard_body = module.dashboard_body.body
}
