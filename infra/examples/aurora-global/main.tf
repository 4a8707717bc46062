# Aurora global database: primary cluster "ledger" in eu-west-1, secondary "ledger-dr" in
# eu-central-1, global cluster "ledger-global" (all managed elsewhere). drpilot measures the
# global RPO lag, copies cluster snapshots, and fails the global database over
# (FailoverGlobalCluster when the primary region is lost; SwitchoverGlobalCluster for a
# planned move) and switches the writer endpoint record.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}

provider "aws" {
  alias  = "primary"
  region = "eu-west-1"
}

provider "aws" {
  alias  = "dr"
  region = "eu-central-1"
}

module "drpilot" {
  source    = "../.."
  providers = { aws.primary = aws.primary, aws.dr = aws.dr }

  primary_region = "eu-west-1"
  dr_region      = "eu-central-1"
  package_dir    = "${path.root}/../../../dist"

  responders = { emails = ["payments-oncall@example.com"] }

  copier_db_clusters         = ["ledger"]
  copier_select_tag          = ""
  copier_source_kms_key_arns = ["arn:aws:kms:eu-west-1:111122223333:key/11111111-2222-3333-4444-555555555555"]

  lag_resources = [
    { name = "ledger-global", kind = "aurora-global", cluster = "ledger-dr", rpo_seconds = 5 },
    { name = "ledger-copies", kind = "snapshot", db = "ledger", db_kind = "cluster", rpo_seconds = 90000 },
  ]

  databases = [{
    name                  = "ledger"
    kind                  = "aurora-global"
    global_cluster        = "ledger-global"
    primary_cluster       = "ledger"
    secondary_cluster     = "ledger-dr"
    lag_resource          = "ledger-global"
    max_data_loss_seconds = 5
    dns                   = { zone_id = "Z0123456789ABCDEFGHIJ", record_name = "ledger-writer.internal.example.com" }
  }]

  failover_mode    = "automatic"
  cooldown_seconds = 86400
}

output "drpilot" {
  description = "Function names, topic, key and the acknowledge command."
  value = {
    functions   = module.drpilot.functions
    topic       = module.drpilot.responders_topic_arn
    acknowledge = module.drpilot.acknowledge_command
  }
}
