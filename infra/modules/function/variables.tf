variable "name" {
  description = "Lambda function name."
  type        = string
}

variable "package_path" {
  description = "Path of the function's Lambda zip (a `bootstrap` binary for provided.al2023), as built by `make package`."
  type        = string
}

variable "architecture" {
  description = "Instruction set the binary was built for: arm64 or x86_64."
  type        = string
  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_size" {
  description = "Memory in MB."
  type        = number
  default     = 256
}

variable "timeout" {
  description = "Timeout in seconds (at most 900)."
  type        = number
  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be within 1..900 seconds."
  }
}

variable "environment" {
  description = "The function's settings (environment variables)."
  type        = map(string)
}

variable "policy_json" {
  description = "IAM policy with exactly the AWS actions the function's code calls."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for the log group, environment variables and the state the function reads and writes."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the function's log group."
  type        = number
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions; 1 for functions whose limits are counted per run."
  type        = number
}

variable "maximum_retry_attempts" {
  description = "Retries of a failed asynchronous invocation (0 when the function notifies and the next scheduled run retries)."
  type        = number
  default     = 0
}

variable "dead_letter_queue_arn" {
  description = "SQS queue receiving asynchronous invocations that failed."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
