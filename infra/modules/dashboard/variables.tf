# The dashboard's body only: no provider, no resource, so that it can be evaluated offline
# (the code/Terraform consistency test runs `terraform apply` on it with a sample fleet).

variable "title" {
  description = "The dashboard's heading."
  type        = string
}

variable "region" {
  description = "The DR region: every metric and alarm shown is there."
  type        = string
}

variable "namespace" {
  description = "drpilot's CloudWatch namespace."
  type        = string
}

variable "period" {
  description = "drpilot's metric period in seconds (60 on AWS)."
  type        = number
}

variable "resources" {
  description = "The lag checker's resources, exactly as DRPILOT_RESOURCES (name, kind, rpo_seconds, ...)."
  type        = any
}

variable "databases" {
  description = "The promoter's databases' names."
  type        = list(string)
}

variable "functions" {
  description = "drpilot's Lambda functions: role (copier, lag, promoter, backup, verifier) => function name."
  type        = map(string)
}

variable "alarm_arns" {
  description = "Every alarm drpilot ships, by ARN."
  type        = list(string)
}

variable "detail_limit" {
  description = "Up to this many resources, each gets a graph of its own with its budget as a line; beyond it, the grouped percent-of-budget graphs show them all."
  type        = number
  default     = 60
}
