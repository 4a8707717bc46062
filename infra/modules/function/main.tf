# One drpilot function: its role (the code's actions plus the runtime's own), log group and
# Lambda function on provided.al2023, with an on-failure destination for async invocations.

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "code" {
  name   = "code"
  role   = aws_iam_role.this.id
  policy = var.policy_json
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# What the Lambda runtime itself needs, apart from the code's calls.
data "aws_iam_policy_document" "runtime" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
  statement {
    sid       = "FailedInvocations"
    actions   = ["sqs:SendMessage"]
    resources = [var.dead_letter_queue_arn]
  }
  statement {
    sid       = "Key"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] #checkov:skip=CKV_AWS_356:X-Ray has no resource-level permissions
  }
}

resource "aws_iam_role_policy" "runtime" {
  name   = "runtime"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.runtime.json
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:drpilot calls only AWS APIs; a VPC would add NAT/endpoints in both regions and a failure mode during a region outage
  #checkov:skip=CKV_AWS_272:code signing needs a signing profile the user's pipeline owns; enable it there
  #checkov:skip=CKV_AWS_45:DRPILOT_ACCOUNTS holds sts:AssumeRole external ids, which IAM says are not secrets
  function_name                  = var.name
  role                           = aws_iam_role.this.arn
  runtime                        = "provided.al2023"
  handler                        = "bootstrap"
  architectures                  = [var.architecture]
  filename                       = var.package_path
  source_code_hash               = filebase64sha256(var.package_path)
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = var.environment
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  dead_letter_config {
    target_arn = var.dead_letter_queue_arn
  }

  tracing_config {
    mode = "Active"
  }

  tags       = var.tags
  depends_on = [aws_iam_role_policy.runtime]

  lifecycle {
    # Lambda refuses more than 4 KB of environment variables per function, measured as their
    # JSON (quotes and escapes count): say which function and how much, at plan time where the
    # values are known.
    precondition {
      condition     = length(jsonencode(var.environment)) <= 4096
      error_message = "${var.name}: its settings take ${length(jsonencode(var.environment))} bytes as JSON; Lambda allows 4 KB of environment variables. Fewer databases or resources per deployment (or shorter names) fit; for the lag checker, status_page = false leaves out the databases it reads only for the status page."
    }
  }
}

resource "aws_lambda_function_event_invoke_config" "this" {
  function_name          = aws_lambda_function.this.function_name
  maximum_retry_attempts = var.maximum_retry_attempts
  destination_config {
    on_failure {
      destination = var.dead_letter_queue_arn
    }
  }
}
