output "member_account" {
  description = "This account's entry for the hub's member_accounts (add the external_id you gave this module)."
  value = {
    id             = local.account
    role_prefix    = var.role_prefix
    dr_kms_key_arn = aws_kms_key.dr.arn
  }
}

output "role_arns" {
  description = "Per hub function, the role it assumes here."
  value       = { for f, r in aws_iam_role.member : f => r.arn }
}

output "dr_kms_key_arn" {
  description = "This account's DR-region key: snapshot copies and backup copies here are encrypted with it."
  value       = aws_kms_key.dr.arn
}
