variable "hub_account_id" {
  description = "The production account drpilot's hub deployment (infra/) runs in."
  type        = string
  validation {
    condition     = can(regex("^[0-9]{12}$", var.hub_account_id))
    error_message = "hub_account_id is a 12-digit account id."
  }
}

variable "hub_name_prefix" {
  description = "The hub's name_prefix: the role here trusts exactly the hub's <prefix>-snapshot-copier role."
  type        = string
  default     = "drpilot"
}

variable "dr_region" {
  description = "The hub's dr_region: the copies land in this account's same region."
  type        = string
}

variable "hub_dr_kms_key_arn" {
  description = "The hub's DR key (its output dr_kms_key_arn): the copies shared with this account are encrypted with it."
  type        = string
}

variable "external_id" {
  description = "The external id the hub presents (its backup_account.external_id). Not a secret: it keeps anyone else who can name this role from having the hub act here."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_+=,.@:/-]{2,1224}$", var.external_id))
    error_message = "external_id: 2-1224 letters, digits or _+=,.@:/-."
  }
}

variable "role_name" {
  description = "The role the hub's snapshot copier assumes here: it may copy, never delete."
  type        = string
  default     = "drpilot-vault-copier"
}

variable "break_glass_role_name" {
  description = "The one role (yours, in this account) the service control policy lets delete snapshots or touch the vault key: for expiring old copies and incidents, under your own controls."
  type        = string
  default     = "drpilot-vault-admin"
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
