output "functions" {
  description = "The drpilot Lambda functions (DR region): name and ARN."
  value = {
    snapshot_copier   = { name = module.snapshot_copier.function_name, arn = module.snapshot_copier.function_arn }
    lag_checker       = { name = module.lag_checker.function_name, arn = module.lag_checker.function_arn }
    failover_promoter = { name = module.failover_promoter.function_name, arn = module.failover_promoter.function_arn }
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
  description = "Bucket (DR region) holding the lag checker's alert state and the failover records."
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
