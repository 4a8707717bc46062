output "role_arn" {
  description = "The role the hub's snapshot copier assumes here (the hub's backup_account.role_arn)."
  value       = aws_iam_role.vault_copier.arn
}

output "kms_key_arn" {
  description = "This account's key copies here are encrypted with (the hub's backup_account.kms_key_arn)."
  value       = aws_kms_key.vault.arn
}

output "scp_json" {
  description = "The service control policy to attach to this account from the organization's management account: no one but the break-glass role deletes a snapshot, shares it, or disables or deletes the key."
  value       = data.aws_iam_policy_document.scp.json
}
