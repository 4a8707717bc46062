output "functions" {
  description = "The drpilot Lambda functions (DR region): name and ARN."
  value = {
    snapshot_copier   = { name = module.snapshot_copier.function_name, arn = module.snapshot_copier.function_arn }
    lag_checker       = { name = module.lag_checker.function_name, arn = module.lag_checker.function_arn }
    failover_promoter = { name = module.failover_promoter.function_name, arn = module.failover_promoter.function_arn }
    s3_backup         = length(module.s3_backup) == 0 ? null : { name = module.s3_backup[0].function_name, arn = module.s3_backup[0].function_arn }
  }
}

output "responders_topic_arn" {
  description = "SNS topic every notice and alarm goes to; subscribe more responders here."
  value       = aws_sns_topic.responders.arn
}

output "dr_kms_key_arn" {
  description = "KMS key (DR region) the DR snapshot copies are encrypted with."
  value       = aws_kms_key.dr.arn
}

output "state_bucket" {
  description = "Bucket (DR region) holding the lag checker's alert state, the failover records, the S3 backups' run state and manifests, and the copier's ledger of the DR region."
  value       = aws_s3_bucket.state.bucket
}

output "primary_down_alarms" {
  description = "Per database, the alarm that triggers the failover promoter."
  value       = local.primary_down_alarms
}

output "failed_invocations_queue_url" {
  description = "SQS queue of asynchronous invocations that failed; inspect it when an Errors alarm fires."
  value       = aws_sqs_queue.failed.url
}

output "acknowledge_command" {
  description = "How a responder acknowledges a completed failover (re-arms automatic failover)."
  value       = "aws lambda invoke --region ${var.dr_region} --function-name ${module.failover_promoter.function_name} --cli-binary-format raw-in-base64-out --payload '{\"action\":\"acknowledge\",\"database\":\"NAME\",\"by\":\"YOU\"}' /dev/stdout"
}

output "dashboard_settings" {
  description = "Settings for the operator CLI: terraform output -raw dashboard_settings > drpilot.env, then drpilot status --settings drpilot.env (or drpilot drill, points, restore ...)."
  value = join("\n", [
    "DRPILOT_SOURCE_REGION=${var.primary_region}",
    "DRPILOT_DR_REGION=${var.dr_region}",
    "DRPILOT_RESOURCES='${local.lag_resources_json}'",
    "DRPILOT_DATABASES='${local.databases_json}'",
    "DRPILOT_MODE=${var.failover_mode}",
    "DRPILOT_LAG_LOOKBACK_SECONDS=${var.lag_lookback_seconds}",
    "DRPILOT_METRIC_PERIOD_SECONDS=${local.metric_period_seconds}",
    "DRPILOT_METRIC_NAMESPACE=${var.metric_namespace}",
    "DRPILOT_STATE_BUCKET=${aws_s3_bucket.state.bucket}",
    "DRPILOT_STATE_PREFIX=drpilot/",
    "DRPILOT_NOTIFY_TOPIC_ARN=${aws_sns_topic.responders.arn}",
    "DRPILOT_S3_BACKUPS='${local.s3_backups_json}'",
    "DRPILOT_DEPLOYMENT=${var.name_prefix}",
    "DRPILOT_ACCOUNTS='${local.accounts_json["failover-promoter"]}'",
    "DRPILOT_VERIFY_DATABASES='${local.verify_databases_json}'",
    "DRPILOT_VERIFY_BACKUPS='${length(local.verify_backups) == 0 ? "" : jsonencode(local.verify_backups)}'",
    "DRPILOT_VERIFY_MAX_AGE_DAYS=${var.restore_verification == null ? 8 : var.restore_verification.max_age_days}",
    "",
  ])
}

output "s3_backup_buckets" {
  description = "Per S3 backup, the versioned DR-region bucket drpilot keeps its points in time in."
  value       = { for name, b in aws_s3_bucket.backup : name => b.bucket }
}

output "s3_changes_topic" {
  description = "The topic S3 notifications of event-driven backups go to (add it to a source bucket's own notification configuration, if it has one)."
  value       = length(aws_sns_topic.s3_changes) > 0 ? aws_sns_topic.s3_changes[0].arn : null
}

output "dashboard_url" {
  description = "drpilot's CloudWatch dashboard (in the DR region)."
  value       = "https://${local.console}/cloudwatch/home?region=${var.dr_region}#dashboards/dashboard/${aws_cloudwatch_dashboard.dr.dashboard_name}"
}
