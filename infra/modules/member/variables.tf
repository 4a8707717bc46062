variable "hub_account_id" {
  description = "The account drpilot's hub deployment (infra/) runs in."
  type        = string
  validation {
    condition     = can(regex("^[0-9]{12}$", var.hub_account_id))
    error_message = "hub_account_id is a 12-digit account id."
  }
}

variable "hub_name_prefix" {
  description = "The hub's name_prefix: each role here trusts exactly one hub function's role (<prefix>-snapshot-copier, ...), which must exist (apply the hub first)."
  type        = string
  default     = "drpilot"
}

variable "external_id" {
  description = "The external id the hub presents (its member_accounts entry): unique to this hub-member pair. Not a secret (IAM User Guide, \"Access to AWS accounts owned by third parties\"): it keeps anyone else who can name this role from having the hub act here."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_+=,.@:/-]{2,1224}$", var.external_id))
    error_message = "external_id: 2-1224 letters, digits or _+=,.@:/-."
  }
}

variable "role_prefix" {
  description = "The roles' names are <role_prefix>-<function> (the hub's member_accounts role_prefix)."
  type        = string
  default     = "drpilot-member"
}

variable "primary_region" {
  description = "This account's primary region (the hub's primary_region)."
  type        = string
}

variable "dr_region" {
  description = "This account's DR region (the hub's dr_region)."
  type        = string
}

variable "databases" {
  description = "This account's databases the hub may fail over (the hub's databases entries with account = this account): kind rds-replica (primary, replica, fence) or aurora-global (global_cluster, primary_cluster, secondary_cluster)."
  type = list(object({
    kind              = string
    primary           = optional(string)
    replica           = optional(string)
    global_cluster    = optional(string)
    primary_cluster   = optional(string)
    secondary_cluster = optional(string)
    fence             = optional(string, "stop")
  }))
  default = []
}

variable "buckets" {
  description = "This account's S3 buckets the hub backs up (source_bucket, prefix: read; dr_bucket: a versioned DR-region bucket this account provides, where the copies go) or only measures (a replicated pair: read both)."
  type = list(object({
    source_bucket = string
    dr_bucket     = string
    prefix        = optional(string, "")
    backed_up     = optional(bool, true)
  }))
  default = []
}

variable "source_kms_key_arns" {
  description = "KMS keys of this account's encrypted snapshots and source objects (copies are re-encrypted with this module's DR key)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags on everything this module creates."
  type        = map(string)
  default     = {}
}
