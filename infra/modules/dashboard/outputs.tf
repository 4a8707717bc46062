output "body" {
  description = "The dashboard body (JSON) for aws_cloudwatch_dashboard."
  value       = local.body
}
