variable "name_prefix" {
  description = "Prefix of every resource name (functions, roles, alarms, bucket), and this deployment's name on the snapshot copies it makes (drpilot:deployment): two drpilot deployments in one account (a hub and a member's own) need different prefixes, so that neither counts or prunes the other's copies."
  type        = string
  default     = "drpilot"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix: 2-31 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "primary_region" {
  description = "Region of the protected databases (must match the aws.primary provider)."
  type        = string
  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.primary_region))
    error_message = "primary_region must be an AWS region name such as us-east-1."
  }
}

variable "dr_region" {
  description = "Disaster-recovery region: copies, replicas, state and all drpilot functions live here (must match the aws.dr provider and differ from primary_region)."
  type        = string
  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.dr_region))
    error_message = "dr_region must be an AWS region name such as us-west-2."
  }
}

variable "package_dir" {
  description = "Directory holding the function zips built by `make package` (<function>.zip)."
  type        = string
}

variable "architecture" {
  description = "Instruction set of the packaged binaries: arm64 (default, cheaper) or x86_64."
  type        = string
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "log_retention_days" {
  description = "Retention of the functions' log groups."
  type        = number
  default     = 365
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of CloudWatch Logs' retention values."
  }
}

variable "responders" {
  description = "Who receives drpilot's notices: e-mail addresses, SMS numbers (E.164) and HTTPS endpoints subscribed to the responders' topic."
  type = object({
    emails = optional(list(string), [])
    sms    = optional(list(string), [])
    https  = optional(list(string), [])
  })
  default = {}
  validation {
    condition     = alltrue([for n in var.responders.sms : can(regex("^\\+[1-9][0-9]{6,14}$", n))])
    error_message = "responders.sms numbers must be in E.164 form, e.g. +14155550100."
  }
  validation {
    condition     = alltrue([for u in var.responders.https : startswith(u, "https://")])
    error_message = "responders.https endpoints must start with https://."
  }
}

# --- snapshot-copier -------------------------------------------------------------------

variable "copier_db_instances" {
  description = "DB instance identifiers (primary region) whose snapshots are copied to the DR region."
  type        = list(string)
  default     = []
}

variable "copier_db_clusters" {
  description = "DB cluster identifiers (Aurora, primary region) whose snapshots are copied."
  type        = list(string)
  default     = []
}

variable "copier_select_tag" {
  description = "Also copy every DB instance and cluster carrying this tag: KEY=VALUE, or KEY for any value. Empty: none."
  type        = string
  default     = "drpilot:copy=true"
}

variable "copier_source_kms_key_arns" {
  description = "KMS keys (primary region) of encrypted source databases: the copier needs a grant on them to re-encrypt copies."
  type        = list(string)
  default     = []
}

variable "copier_schedule" {
  description = "EventBridge schedule of the copier (snapshot-created events also trigger it)."
  type        = string
  default     = "rate(1 hour)"
  validation {
    condition     = can(regex("^(rate|cron)\\(.+\\)$", var.copier_schedule))
    error_message = "copier_schedule must be an EventBridge rate(...) or cron(...) expression."
  }
}

variable "copier_max_copies_in_flight" {
  description = "Copies in progress into the DR region at most (AWS allows 20)."
  type        = number
  default     = 20
  validation {
    condition     = var.copier_max_copies_in_flight >= 1 && var.copier_max_copies_in_flight <= 20
    error_message = "copier_max_copies_in_flight must be within 1..20."
  }
}

variable "copier_retain_count" {
  description = "Keep at most this many DR copies per database (null: no count limit)."
  type        = number
  default     = 7
  validation {
    condition     = var.copier_retain_count == null ? true : var.copier_retain_count >= 1
    error_message = "copier_retain_count must be at least 1, or null."
  }
}

variable "copier_retain_days" {
  description = "Delete DR copies whose source snapshot is older than this (null: no age limit). The newest copy always stays."
  type        = number
  default     = null
  validation {
    condition     = var.copier_retain_days == null ? true : var.copier_retain_days >= 1
    error_message = "copier_retain_days must be at least 1, or null."
  }
}

variable "copier_copy_source_tags" {
  description = "Copy the source snapshots' tags onto the DR copies."
  type        = bool
  default     = true
}

# --- lag-checker -------------------------------------------------------------------------

variable "lag_resources" {
  description = "What the lag checker measures against an RPO budget: kind rds-replica (replica), aurora-global (cluster), snapshot (db, db_kind), s3-backup (source_bucket, dr_bucket, prefix: a replicated bucket; each of s3_backups is added by itself)."
  type = list(object({
    name          = string
    kind          = string
    rpo_seconds   = number
    replica       = optional(string)
    cluster       = optional(string)
    db            = optional(string)
    db_kind       = optional(string)
    source_bucket = optional(string)
    dr_bucket     = optional(string)
    prefix        = optional(string)
    backup        = optional(string)
    account       = optional(string) # a member_accounts id: the replica or buckets are there
  }))
  validation {
    condition     = length(var.lag_resources) > 0 && alltrue([for r in var.lag_resources : contains(["rds-replica", "aurora-global", "snapshot", "s3-backup"], r.kind) && r.rpo_seconds > 0])
    error_message = "lag_resources: at least one; kind one of rds-replica, aurora-global, snapshot, s3-backup; rpo_seconds > 0."
  }
}

variable "status_page" {
  description = "The lag checker publishes the status page (one self-contained HTML file) to the state bucket every five minutes; `drpilot status --url` prints a link to it, valid for an hour."
  type        = bool
  default     = true
}

variable "lag_window_seconds" {
  description = "A lag metric with no datapoint this recent means replication is broken."
  type        = number
  default     = 300
  validation {
    condition     = var.lag_window_seconds >= 60 && var.lag_window_seconds <= 86400
    error_message = "lag_window_seconds must be within 60..86400."
  }
}

variable "metric_namespace" {
  description = "CloudWatch namespace of drpilot's metrics (DR region)."
  type        = string
  default     = "drpilot"
  validation {
    condition     = !startswith(var.metric_namespace, "AWS/")
    error_message = "metric_namespace may not start with AWS/."
  }
}

variable "rpo_alarm_periods" {
  description = "Consecutive minutes of RPO-budget breach before the RPO alarm notifies."
  type        = number
  default     = 3
}

# --- failover-promoter ---------------------------------------------------------------------

variable "databases" {
  description = "Databases the promoter fails over: kind rds-replica (primary, replica) or aurora-global (global_cluster, primary_cluster, secondary_cluster); the lag checker resource that gates it; the DNS record it switches (dns.mode: upsert it, or failover records Route 53 switches by itself, see dns.tf); an optional Route 53 health check of the primary's endpoint; fence (rds-replica): stop the old primary when its region returns (\"stop\", the default) or leave it to the operator (\"none\")."
  type = list(object({
    name                  = string
    kind                  = string
    primary               = optional(string)
    replica               = optional(string)
    global_cluster        = optional(string)
    primary_cluster       = optional(string)
    secondary_cluster     = optional(string)
    lag_resource          = string
    max_data_loss_seconds = number
    rto_seconds           = optional(number)
    fence                 = optional(string, "stop")
    dns = object({
      zone_id     = string
      record_name = string
      ttl         = optional(number, 60)
      # upsert: the promoter UPSERTs the record you manage (Route 53's API, in us-east-1).
      # failover-records: this module creates PRIMARY/SECONDARY failover records for
      # record_name and Route 53's data plane switches them (dns.tf); remove your own record.
      mode = optional(string, "upsert")
    })
    health_check = optional(object({
      fqdn = string
      port = number
    }))
    # a member_accounts id: the primary and standby are there (alarms, Route 53 and the
    # failover record stay in this deployment's account)
    account = optional(string)
    # What a failover does between the promotion and the DNS switch: scale the application's
    # Auto Scaling groups (auto_scaling_group; min and max default to desired) and ECS services
    # (ecs_service with its cluster; desired only) in the DR region (this account) to these
    # sizes (nothing is ever made smaller), and wait until that many instances are in service
    # and healthy (tasks running). After wait_seconds (at once for a group or service that
    # does not exist or may not be scaled) DNS switches without them (a degraded application
    # beats a dead region) unless strict, when DNS waits and responders are told (an
    # operator's {"action": "proceed"} lets it go). The promoter may scale only these groups
    # and services.
    recovery_plan = optional(object({
      capacity = list(object({
        auto_scaling_group = optional(string)
        ecs_service        = optional(string)
        cluster            = optional(string)
        desired            = number
        min                = optional(number)
        max                = optional(number)
      }))
      wait_seconds = optional(number, 600)
      strict       = optional(bool, false)
      # At the end of a failover (and of a failback), a JSON event for your own automation is
      # published to this SNS topic (in dr_region; an encrypted topic's key policy must let the
      # promoter use the key). A plan may be only this, with no capacity.
      automation_topic_arn = optional(string)
    }))
  }))
  validation {
    condition     = alltrue([for d in var.databases : contains(["rds-replica", "aurora-global"], d.kind) && d.max_data_loss_seconds >= 0 && contains(["stop", "none"], d.fence) && contains(["upsert", "failover-records"], d.dns.mode)])
    error_message = "databases: kind must be rds-replica or aurora-global; max_data_loss_seconds >= 0; fence stop or none; dns.mode upsert or failover-records."
  }
  validation {
    # `? :`, not `||`: Terraform evaluates both sides of `||`, and a null plan has no attributes.
    condition = alltrue([for d in var.databases : d.recovery_plan == null ? true : (
      d.account == null && (length(d.recovery_plan.capacity) > 0 || d.recovery_plan.automation_topic_arn != null) && d.recovery_plan.wait_seconds >= 1 && floor(d.recovery_plan.wait_seconds) == d.recovery_plan.wait_seconds &&
      (d.recovery_plan.automation_topic_arn == null ? true : length(regexall("^arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", d.recovery_plan.automation_topic_arn)) == 1) &&
      length(distinct([for g in d.recovery_plan.capacity : jsonencode([g.auto_scaling_group, g.cluster, g.ecs_service])])) == length(d.recovery_plan.capacity) &&
      alltrue([for g in d.recovery_plan.capacity : (g.auto_scaling_group != null ? (g.ecs_service == null && g.cluster == null) : (g.ecs_service != null && g.cluster != null && g.min == null && g.max == null &&
        try(length(regexall("^[A-Za-z0-9_-]{1,255}$", g.ecs_service)) + length(regexall("^[A-Za-z0-9_-]{1,255}$", g.cluster)) == 2, false))) &&
        alltrue([for n in [g.desired, coalesce(g.min, g.desired), coalesce(g.max, g.desired)] : n >= 0 && floor(n) == n]) &&
      g.desired >= 1 && coalesce(g.min, g.desired) <= g.desired && g.desired <= coalesce(g.max, g.desired)])
    )])
    error_message = "databases[].recovery_plan: only for databases in this account; automation_topic_arn a standard (not FIFO) SNS topic ARN; at least one capacity entry (or an automation_topic_arn), each once: auto_scaling_group with whole numbers 1 <= desired and 0 <= min <= desired <= max, or ecs_service with cluster (both by name, not ARN) and a whole desired >= 1 (no min or max); wait_seconds a whole number >= 1."
  }

}

variable "failover_mode" {
  description = "advisory: the promoter only says what it would do; automatic: it fails over."
  type        = string
  default     = "advisory"
  validation {
    condition     = contains(["advisory", "automatic"], var.failover_mode)
    error_message = "failover_mode must be advisory or automatic."
  }
}

variable "primary_down_periods" {
  description = "Consecutive minutes of broken replication before the primary-health alarm fires."
  type        = number
  default     = 3
}

variable "cooldown_seconds" {
  description = "No automatic failover within this long after the previous one completed."
  type        = number
  default     = 3600
}

variable "checker_quorum_percent" {
  description = "Share of Route 53 health checkers that must report the primary failing."
  type        = number
  default     = 60
  validation {
    condition     = var.checker_quorum_percent >= 1 && var.checker_quorum_percent <= 100
    error_message = "checker_quorum_percent must be within 1..100."
  }
}

variable "lag_lookback_seconds" {
  description = "How far before a failure the promoter looks for the last healthy lag."
  type        = number
  default     = 3600
}

variable "poll_seconds" {
  description = "Wait between the promoter's looks at a promotion or DNS change."
  type        = number
  default     = 10
}

variable "drill" {
  description = "A scheduled DR drill (null: none): a planned failover of `database`, whose standby must carry the tag drpilot:drill-plan=<plan>. It really fails over; with failback = true (RDS MySQL) it then fails back and checks it ended where it began, else it leaves the database failed over (see the README)."
  type = object({
    database = string
    plan     = string
    schedule = optional(string, "cron(0 9 ? 1,4,7,10 TUE#2 *)") # quarterly, second Tuesday, 09:00 UTC
    failback = optional(bool, false)
  })
  default = null
}

variable "stuck_after_seconds" {
  description = "Tell responders (once) when a promotion or DNS change has been waiting this long; drpilot keeps waiting."
  type        = number
  default     = 1800
  validation {
    condition     = var.stuck_after_seconds >= 60 && var.stuck_after_seconds <= 86400
    error_message = "stuck_after_seconds must be within 60..86400."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

# --- s3-backup -------------------------------------------------------------------------

variable "s3_backups" {
  description = "S3 buckets (primary region) backed up into versioned DR-region buckets that drpilot creates (dr_bucket), one restorable point in time per run. retain_days/min_points: how long points in time are kept. rpo_seconds: the lag checker's budget for the newest point's age."
  type = list(object({
    name                = string
    source_bucket       = string
    dr_bucket           = string
    prefix              = optional(string, "")
    storage_class       = optional(string)
    retain_days         = optional(number, 30)
    min_points          = optional(number, 1)
    rpo_seconds         = optional(number, 90000)
    source_kms_key_arns = optional(list(string), [])
    # a member_accounts id: both buckets are there (infra/modules/member grants the access;
    # the member provides a versioned DR bucket); the run state stays in this deployment
    account = optional(string)
    # Event-driven: S3's notifications of the source bucket drive a copy of each change within
    # a minute (its own account's buckets only). This sets the bucket's notification
    # configuration, all of it: a bucket with notifications of its own needs drpilot's topic
    # (output s3_changes_topic) added to that configuration instead.
    events = optional(bool, false)
    # Reconcile from S3 Inventory: S3 lists the source bucket daily into an inventory bucket
    # drpilot creates in the primary region, and a scheduled run reads a report newer than the
    # last run (a few requests) instead of listing the bucket (one request per 1,000 keys). Its
    # own account's buckets only; s3_backup_memory_mb bounds the keys a report may hold. Such a
    # point holds the bucket as of the report's scan: schedule the backup daily, a few hours
    # after S3's delivery, with rpo_seconds of about a day and a half; with events = true too,
    # change points carry each change within a minute.
    inventory = optional(bool, false)
    # S3 Object Lock on the DR bucket (this account's buckets only): every copy is locked for
    # days from when it lands, in GOVERNANCE (roles with s3:BypassGovernanceRetention may
    # still delete) or COMPLIANCE mode (nobody can, the root user included, until it lapses).
    # drpilot's retention keeps a point in time at least that long (retain_days >= days).
    object_lock = optional(object({
      mode = optional(string, "GOVERNANCE")
      days = number
    }))
  }))
  default = []
  validation {
    condition     = alltrue([for b in var.s3_backups : can(regex("^[A-Za-z0-9_.-]{1,100}$", b.name)) && b.source_bucket != b.dr_bucket && b.retain_days >= 1 && b.min_points >= 1 && b.rpo_seconds > 0])
    error_message = "s3_backups: name of letters, digits, - _ .; dr_bucket differs from source_bucket; retain_days, min_points >= 1; rpo_seconds > 0."
  }
  validation {
    condition = alltrue([for b in var.s3_backups : b.object_lock == null ? true : (
      contains(["GOVERNANCE", "COMPLIANCE"], b.object_lock.mode) && b.object_lock.days >= 1 && floor(b.object_lock.days) == b.object_lock.days && b.retain_days >= b.object_lock.days && b.account == null
    )])
    error_message = "s3_backups: object_lock.mode GOVERNANCE or COMPLIANCE, object_lock.days >= 1 and at most retain_days (a point in time is kept at least as long as its copies are locked); this account's buckets only (a member locks its own DR bucket)."
  }
  validation {
    condition     = alltrue([for b in var.s3_backups : !(b.inventory && b.account != null)])
    error_message = "s3_backups: inventory = true is for this account's buckets only (not a member account's)."
  }
  validation {
    condition     = length(distinct([for b in var.s3_backups : b.dr_bucket])) == length(var.s3_backups) && length(distinct([for b in var.s3_backups : b.name])) == length(var.s3_backups)
    error_message = "s3_backups: each backup needs a dr_bucket of its own (retention prunes versions its points do not name) and a unique name."
  }
}

variable "s3_backup_memory_mb" {
  description = "Memory of the S3 backup function (null: 1,024 MB with an inventory backup, else 256). A run on an S3 Inventory report sorts the report's keys in memory and reads a report of up to (memory / 2) / 512 bytes keys: 1,024 MB takes about a million; a larger report is left and the run lists the bucket."
  type        = number
  default     = null
  validation {
    condition     = var.s3_backup_memory_mb == null || try(var.s3_backup_memory_mb >= 128 && var.s3_backup_memory_mb <= 10240, false)
    error_message = "s3_backup_memory_mb must be within Lambda's 128..10240."
  }
}

variable "s3_backup_schedule" {
  description = "EventBridge schedule of the S3 backup; each run is a point in time (a run cut off by the 15-minute limit resumes on the next)."
  type        = string
  default     = "rate(6 hours)"
  validation {
    condition     = can(regex("^(rate|cron)\\(.+\\)$", var.s3_backup_schedule))
    error_message = "s3_backup_schedule must be an EventBridge rate(...) or cron(...) expression."
  }
}

variable "s3_backup_copy_concurrency" {
  description = "Server-side copies in flight at once per invocation."
  type        = number
  default     = 32
  validation {
    condition     = var.s3_backup_copy_concurrency >= 1 && var.s3_backup_copy_concurrency <= 512
    error_message = "s3_backup_copy_concurrency must be within 1..512."
  }
}

# --- many accounts -------------------------------------------------------------------------

variable "member_accounts" {
  description = "Member accounts this deployment (the hub) also works in, each function through its own role that infra/modules/member creates there (apply the hub first, then each member's module). id: the account; external_id: what the roles' trust policies ask for; role_prefix: the module's role_prefix; dr_kms_key_arn: the module's output, the member's own key its snapshot copies are encrypted with. Databases, lag_resources and s3_backups in a member account name it in `account`. The hub's own account is always covered too."
  type = list(object({
    id             = string
    external_id    = string
    role_prefix    = optional(string, "drpilot-member")
    dr_kms_key_arn = optional(string)
  }))
  default = []
  validation {
    condition     = alltrue([for m in var.member_accounts : can(regex("^[0-9]{12}$", m.id)) && can(regex("^[A-Za-z0-9_+=,.@:/-]{2,1224}$", m.external_id))]) && length(distinct([for m in var.member_accounts : m.id])) == length(var.member_accounts)
    error_message = "member_accounts: each id a distinct 12-digit account id; external_id 2-1224 letters, digits or _+=,.@:/-."
  }
}

variable "backup_account" {
  description = "The isolated backup account (null: none): after each reconciliation the snapshot copier shares the newest DR copy of each of this account's databases with it and copies it there, re-encrypted with its own key, through a role that may copy and never delete (infra/modules/backup-account creates the role, the key and the service control policy; apply it in that account with this hub's dr_kms_key_arn, then set role_arn and kms_key_arn from its outputs). Copies there are not pruned by drpilot: expire them with your break-glass role."
  type = object({
    id          = string
    external_id = string
    role_arn    = string
    kms_key_arn = string
    # at most one copy per database this often (the account's snapshot quota, 100 manual
    # snapshots per region by default, is spent slowly; nothing there is deleted by drpilot)
    every_hours = optional(number, 168)
  })
  default = null
  validation {
    condition = var.backup_account == null ? true : (
      can(regex("^[0-9]{12}$", var.backup_account.id))
      && can(regex("^arn:[a-z-]+:iam::${var.backup_account.id}:role/", var.backup_account.role_arn))
      && can(regex("^arn:[a-z-]+:kms:${var.dr_region}:${var.backup_account.id}:key/", var.backup_account.kms_key_arn))
      && can(regex("^[A-Za-z0-9_+=,.@:/-]{2,1224}$", var.backup_account.external_id))
      && var.backup_account.every_hours >= 1 && var.backup_account.every_hours <= 8784
      && floor(var.backup_account.every_hours) == var.backup_account.every_hours
    )
    error_message = "backup_account: a 12-digit id; role_arn a role in that account; kms_key_arn a key of that account in the DR region; external_id 2-1224 letters, digits or _+=,.@:/-; every_hours a whole number 1..8784."
  }
}

# --- restore-verifier -------------------------------------------------------------------

variable "restore_verification" {
  description = "Restore tests (null: none): on schedule, each database's newest DR copy (the snapshot copier's) is restored in the DR region into a throwaway instance or cluster (instance_class: default the smallest the engine allows), checked, deleted without a final snapshot, and reported; and for each of backups (names of s3_backups in this account) a sample of its newest point in time (s3_sample_objects objects, each at most s3_max_object_mb) is restored into a scratch prefix of the state bucket, read back, compared with the manifest and the checksum S3 stored with the DR copy, and deleted. vpc_id/subnet_ids (needed with databases): private subnets of the DR region (two zones or more) for the restores; drpilot creates the DB subnet group and a security group that admits nothing. max_age_days: older (or a failed) last verification puts the dashboard AT RISK. timeout_minutes: a restore not available by then has failed."
  type = object({
    databases = optional(list(object({
      db             = string
      db_kind        = optional(string, "instance")
      instance_class = optional(string)
    })), [])
    backups           = optional(list(string), [])
    vpc_id            = optional(string)
    subnet_ids        = optional(list(string), [])
    schedule          = optional(string, "cron(0 3 ? * SUN *)")
    max_age_days      = optional(number, 8)
    timeout_minutes   = optional(number, 180)
    s3_sample_objects = optional(number, 20)
    s3_max_object_mb  = optional(number, 128)
  })
  default = null
  validation {
    condition = var.restore_verification == null ? true : (
      length(var.restore_verification.databases) + length(var.restore_verification.backups) > 0
      && alltrue([for d in var.restore_verification.databases : contains(["instance", "cluster"], d.db_kind)])
      && (length(var.restore_verification.databases) == 0 || (var.restore_verification.vpc_id != null && length(var.restore_verification.subnet_ids) >= 2))
      && var.restore_verification.max_age_days >= 1 && var.restore_verification.max_age_days <= 400
      && floor(var.restore_verification.max_age_days) == var.restore_verification.max_age_days
      && floor(var.restore_verification.timeout_minutes) == var.restore_verification.timeout_minutes
      && var.restore_verification.timeout_minutes >= 10 && var.restore_verification.timeout_minutes <= 1440
      && var.restore_verification.s3_sample_objects >= 1 && var.restore_verification.s3_sample_objects <= 1000
      && var.restore_verification.s3_max_object_mb >= 1 && var.restore_verification.s3_max_object_mb <= 5120
      && floor(var.restore_verification.s3_sample_objects) == var.restore_verification.s3_sample_objects
      && floor(var.restore_verification.s3_max_object_mb) == var.restore_verification.s3_max_object_mb
      && length(distinct(var.restore_verification.backups)) == length(var.restore_verification.backups)
    )
    error_message = "restore_verification: at least one database (db_kind instance or cluster) or backup; with databases, vpc_id and two subnets or more; max_age_days 1..400, timeout_minutes 10..1440, s3_sample_objects 1..1000, s3_max_object_mb 1..5120 (whole numbers); each backup named once."
  }
}
