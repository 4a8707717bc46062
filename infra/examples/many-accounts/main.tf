# Many accounts: drpilot's hub runs in a shared-services account (111111111111) and protects
# databases and buckets in the payments team's account (222222222222), besides its own. Apply
# the hub first, then the member module in the payments account (its trust policy names the
# hub's function roles), then add its output to the hub's member_accounts.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}

variable "payments_external_id" {
  description = "An id unique to this hub-member pair (not a secret: it keeps anyone else who can name the role from having the hub act for them)."
  type        = string
}

provider "aws" {
  alias  = "primary"
  region = "us-east-1"
}

provider "aws" {
  alias  = "dr"
  region = "us-west-2"
}

# The payments account, reached as its administrator would (OrganizationAccountAccessRole).
provider "aws" {
  alias  = "payments_primary"
  region = "us-east-1"
  assume_role {
    role_arn = "arn:aws:iam::222222222222:role/OrganizationAccountAccessRole"
  }
}

provider "aws" {
  alias  = "payments_dr"
  region = "us-west-2"
  assume_role {
    role_arn = "arn:aws:iam::222222222222:role/OrganizationAccountAccessRole"
  }
}

module "payments" {
  source    = "../../modules/member"
  providers = { aws.primary = aws.payments_primary, aws.dr = aws.payments_dr }

  hub_account_id = "111111111111"
  external_id    = var.payments_external_id
  primary_region = "us-east-1"
  dr_region      = "us-west-2"
  databases      = [{ kind = "rds-replica", primary = "ledger-db", replica = "ledger-db-dr" }]
  # a versioned bucket the payments account provides in us-west-2
  buckets = [{ source_bucket = "payments-receipts", dr_bucket = "payments-receipts-dr" }]
}

module "drpilot" {
  source    = "../.."
  providers = { aws.primary = aws.primary, aws.dr = aws.dr }

  primary_region = "us-east-1"
  dr_region      = "us-west-2"
  package_dir    = "${path.root}/../../../dist" # `make package`

  responders = { emails = ["oncall@example.com"] }

  member_accounts = [{
    id             = "222222222222"
    external_id    = var.payments_external_id
    dr_kms_key_arn = module.payments.dr_kms_key_arn
  }]

  # every account's databases tagged drpilot:copy=true get DR copies (each in its own account)
  copier_select_tag = "drpilot:copy=true"

  lag_resources = [
    { name = "ledger-replica", kind = "rds-replica", replica = "ledger-db-dr", rpo_seconds = 60, account = "222222222222" },
  ]

  s3_backups = [{
    name          = "receipts"
    source_bucket = "payments-receipts"
    dr_bucket     = "payments-receipts-dr"
    account       = "222222222222"
  }]

  databases = [{
    name                  = "ledger"
    kind                  = "rds-replica"
    primary               = "ledger-db"
    replica               = "ledger-db-dr"
    account               = "222222222222"
    lag_resource          = "ledger-replica"
    max_data_loss_seconds = 60
    # the zone is the hub's (shared services keeps the company's DNS)
    dns = { zone_id = "Z0123456789ABCDEFGHIJ", record_name = "ledger.db.example.com", ttl = 30 }
  }]

  failover_mode = "advisory"
}
