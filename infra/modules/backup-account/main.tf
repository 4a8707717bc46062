# The isolated backup account: the hub's snapshot copier shares each newest DR copy with this
# account and copies it here, re-encrypted with this account's own key, through a role that
# may copy and never delete. Production's credentials cannot delete what lands here: not its
# own (they name another account's snapshot), not through this role (it grants no delete and
# denies it explicitly), and the service control policy (output scp_json, applied from the
# organization's management account) denies deletes and key changes to every principal here
# but your break-glass role.

data "aws_partition" "current" {
  provider = aws.dr
}

data "aws_caller_identity" "current" {
  provider = aws.dr
}

locals {
  partition   = data.aws_partition.current.partition
  account     = data.aws_caller_identity.current.account_id
  region      = var.dr_region
  tags        = merge({ "managed-by" = "drpilot" }, var.tags)
  role_arn    = "arn:${local.partition}:iam::${local.account}:role/${var.role_name}"
  break_glass = "arn:${local.partition}:iam::${local.account}:role/*${var.break_glass_role_name}" # any path (an SSO role's)
  snapshots   = ["arn:${local.partition}:rds:${local.region}:${local.account}:snapshot:drpilot-*", "arn:${local.partition}:rds:${local.region}:${local.account}:cluster-snapshot:drpilot-*"]
  shared      = ["arn:${local.partition}:rds:${local.region}:${var.hub_account_id}:snapshot:drpilot-*", "arn:${local.partition}:rds:${local.region}:${var.hub_account_id}:cluster-snapshot:drpilot-*"]
}

# --- This account's key: copies here are encrypted with it -----------------------------------

data "aws_iam_policy_document" "vault_key" {
  #checkov:skip=CKV_AWS_109:the account root must administer its key (AWS default key policy); the SCP limits who may
  #checkov:skip=CKV_AWS_111:the account root must administer its key (AWS default key policy); the SCP limits who may
  #checkov:skip=CKV_AWS_356:a key policy's resource is always the key itself
  statement {
    sid       = "Account"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
}

resource "aws_kms_key" "vault" {
  provider                = aws.dr
  description             = "drpilot: snapshot copies in the isolated backup account"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.vault_key.json
  tags                    = local.tags
}

# --- The role the hub's copier assumes: copy, never delete --------------------------------

data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${var.hub_account_id}:role/${var.hub_name_prefix}-snapshot-copier"]
    }
    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [var.external_id]
    }
  }
}

resource "aws_iam_role" "vault_copier" {
  provider             = aws.dr
  name                 = var.role_name
  description          = "drpilot's snapshot copier in the hub copies DR snapshots here; it cannot delete them"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600
  tags                 = local.tags
}

# Exactly drpilot::permissions::VAULT_ROLE (a test compares them).
data "aws_iam_policy_document" "vault_copier" {
  statement {
    sid = "ReadSnapshots"
    #checkov:skip=CKV_AWS_356:Describe* list every snapshot; AWS cannot scope a listing
    actions   = ["rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"]
    resources = ["*"]
  }
  statement {
    sid       = "CopySharedCopiesHere"
    actions   = ["rds:CopyDBSnapshot", "rds:CopyDBClusterSnapshot"]
    resources = concat(local.shared, local.snapshots)
  }
  statement {
    sid       = "TagNewCopies"
    actions   = ["rds:AddTagsToResource"]
    resources = local.snapshots
    # only a copy being made (it has no tags yet)
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/drpilot:managed-by"
      values   = ["true"]
    }
  }
  statement {
    sid       = "ReEncryptWithThisAccountsKey"
    actions   = ["kms:CreateGrant"]
    resources = [aws_kms_key.vault.arn, var.hub_dr_kms_key_arn]
    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }
  statement {
    sid       = "ReadTheKeys"
    actions   = ["kms:DescribeKey"]
    resources = [aws_kms_key.vault.arn, var.hub_dr_kms_key_arn]
  }
  # RDS decrypts the shared copy with the hub's key and encrypts this account's with its own,
  # on the role's behalf ("Copying a shared encrypted snapshot", RDS User Guide)
  statement {
    sid       = "ReEncryptThroughRds"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"]
    resources = [aws_kms_key.vault.arn, var.hub_dr_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["rds.${var.dr_region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "vault_copier" {
  provider = aws.dr
  name     = "copy-never-delete"
  role     = aws_iam_role.vault_copier.id
  policy   = data.aws_iam_policy_document.vault_copier.json
}

# Denied even if someone attaches more to the role later.
data "aws_iam_policy_document" "vault_guard" {
  statement {
    sid    = "NeverDeleteOrUnprotect"
    effect = "Deny"
    #checkov:skip=CKV_AWS_356:a deny on every resource is the point
    actions = [
      "rds:DeleteDBSnapshot", "rds:DeleteDBClusterSnapshot",
      "rds:ModifyDBSnapshotAttribute", "rds:ModifyDBClusterSnapshotAttribute",
      "kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "vault_guard" {
  provider = aws.dr
  name     = "never-delete"
  role     = aws_iam_role.vault_copier.id
  policy   = data.aws_iam_policy_document.vault_guard.json
}

# --- The service control policy for this account (apply it from the management account) ----

data "aws_iam_policy_document" "scp" {
  statement {
    sid    = "OnlyBreakGlassDeletesBackups"
    effect = "Deny"
    #checkov:skip=CKV_AWS_356:a deny on every resource is the point
    actions = [
      "rds:DeleteDBSnapshot", "rds:DeleteDBClusterSnapshot",
      "rds:ModifyDBSnapshotAttribute", "rds:ModifyDBClusterSnapshotAttribute",
      "kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy", "kms:RevokeGrant",
      "organizations:LeaveOrganization",
    ]
    resources = ["*"]
    condition {
      test     = "ArnNotLike"
      variable = "aws:PrincipalArn"
      values   = [local.break_glass]
    }
  }
  # nor can anyone else widen the copier's role or take over the break-glass one (reading them
  # stays allowed: Terraform plans)
  statement {
    sid       = "OnlyBreakGlassChangesTheRoles"
    effect    = "Deny"
    actions   = ["iam:Create*", "iam:Delete*", "iam:Put*", "iam:Attach*", "iam:Detach*", "iam:Update*", "iam:Tag*", "iam:Untag*", "iam:PassRole"]
    resources = [local.role_arn, local.break_glass]
    condition {
      test     = "ArnNotLike"
      variable = "aws:PrincipalArn"
      values   = [local.break_glass]
    }
  }
}
