output "function_name" {
  description = "The Lambda function's name."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "The Lambda function's ARN."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "The function's IAM role."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "The function's IAM role's name (for policies its triggers need)."
  value       = aws_iam_role.this.name
}
