# DR-region buckets of the S3 backups. Versioning is what makes points in time possible: each
# run's manifest names the object versions it needs, and drpilot's retention deletes only the
# versions no retained point in time names. So there is no noncurrent-version expiry here.

resource "aws_s3_bucket" "backup" {
  #checkov:skip=CKV_AWS_144:this bucket is the cross-region copy; replicating it back would put a copy where the outage is
  #checkov:skip=CKV_AWS_18:access logs of backup copies written by drpilot's role add cost, not insight; CloudTrail data events cover audits
  #checkov:skip=CKV2_AWS_62:nothing consumes events of the backup copies
  provider = aws.dr
  for_each = { for b in var.s3_backups : b.name => b if b.account == null } # a member provides its own
  bucket   = each.value.dr_bucket
  tags     = merge(local.tags, { "drpilot:backup-of" = each.value.source_bucket })
}

resource "aws_s3_bucket_versioning" "backup" {
  provider = aws.dr
  for_each = aws_s3_bucket.backup
  bucket   = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "backup" {
  provider = aws.dr
  for_each = aws_s3_bucket.backup
  bucket   = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.dr.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "backup" {
  provider                = aws.dr
  for_each                = aws_s3_bucket.backup
  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "backup" {
  provider = aws.dr
  for_each = aws_s3_bucket.backup
  bucket   = each.value.id
  rule {
    id     = "abandoned-multipart-copies"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      # a multipart copy goes on across invocations: a week of runs before its parts are dropped
      days_after_initiation = 7
    }
  }
}
