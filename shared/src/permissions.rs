//! Every AWS action each function needs, in one place. `infra/` grants exactly these (a test
//! in `tests/` parses the Terraform and fails on any difference). Actions AWS performs on a
//! function's behalf (KMS grants for an encrypted copy) are listed with the call that needs them.

pub const SNAPSHOT_COPIER: &[&str] = &[
    // source region (read only)
    "rds:DescribeDBInstances",
    "rds:DescribeDBClusters",
    "rds:DescribeDBSnapshots",
    "rds:DescribeDBClusterSnapshots",
    // DR region
    "rds:CopyDBSnapshot",
    "rds:CopyDBClusterSnapshot",
    "rds:AddTagsToResource", // tags given to CopyDB*Snapshot
    "rds:DeleteDBSnapshot",
    "rds:DeleteDBClusterSnapshot",
    // sharing the newest copies with the isolated backup account (DRPILOT_VAULT)
    "rds:ModifyDBSnapshotAttribute",
    "rds:ModifyDBClusterSnapshotAttribute",
    "kms:CreateGrant", // CopyDB*Snapshot with KmsKeyId
    "kms:DescribeKey",
    "sns:Publish",
    "sts:AssumeRole", // member accounts' roles (DRPILOT_ACCOUNTS), the backup account's
    // the DR region's ledger in the state bucket
    "s3:ListBucket", // a missing ledger is a 404, not a 403
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",          // dropped by a run that changed the DR region
    "cloudwatch:PutMetricData", // each run's counts (the dashboard's copier graph)
];

pub const LAG_CHECKER: &[&str] = &[
    "rds:DescribeDBInstances",
    "rds:DescribeDBClusters",
    "rds:DescribeDBSnapshots",
    "rds:DescribeDBClusterSnapshots",
    "rds:DescribeGlobalClusters", // the status page: an operator's hold on an Aurora failover
    "cloudwatch:GetMetricData",
    "cloudwatch:PutMetricData",
    "s3:ListBucket",
    "s3:GetObject",
    "s3:PutObject", // its alert state, and the status page
    "sns:Publish",
    "sts:AssumeRole",
];

pub const FAILOVER_PROMOTER: &[&str] = &[
    "cloudwatch:DescribeAlarms",
    "cloudwatch:GetMetricData",
    "cloudwatch:PutMetricData", // FailedOver: the switch of dns.mode failover-records
    "rds:DescribeDBInstances",
    "rds:DescribeDBClusters",
    "rds:DescribeGlobalClusters",
    "rds:DescribePendingMaintenanceActions", // maintenance on the primary vetoes a failover
    "rds:DescribeEvents",
    "rds:PromoteReadReplica",
    "rds:StopDBInstance",         // fencing the old primary after a failover
    "rds:ModifyDBParameterGroup", // blocking writes before a planned failover
    "rds:FailoverGlobalCluster",
    "rds:SwitchoverGlobalCluster",
    // failback: old instances retired (final snapshot kept), replaced by cross-region replicas
    "rds:DescribeDBSnapshots", // the final snapshot, to tag it
    "rds:DeleteDBInstance",
    "rds:CreateDBSnapshot", // DeleteDBInstance's final snapshot
    "rds:CreateDBInstanceReadReplica",
    "rds:AddTagsToResource",
    "kms:CreateGrant", // CreateDBInstanceReadReplica with KmsKeyId
    "kms:DescribeKey",
    "route53:ChangeResourceRecordSets",
    "route53:GetChange",
    "route53:ListResourceRecordSets",
    "route53:GetHealthCheckStatus",
    // recovery plans: the DR region's Auto Scaling groups, scaled up before DNS switches ...
    "autoscaling:UpdateAutoScalingGroup",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeScalingActivities",
    // and its ECS services
    "ecs:UpdateService",
    "ecs:DescribeServices",
    "s3:GetObject",
    "s3:PutObject",
    "sns:Publish",
    "sts:AssumeRole",
];

pub const S3_BACKUP: &[&str] = &[
    // source buckets (read only)
    "s3:ListBucket",
    "s3:GetObject", // CopyObject/UploadPartCopy source, HeadObject (and of a DR copy whose completion was cut off); the state objects
    "s3:GetObjectTagging", // CopyObject copies the tags
    // DR buckets
    "s3:GetBucketVersioning",
    "s3:GetBucketObjectLockConfiguration", // retention keeps a point as long as its copies are locked
    "s3:PutObject",                        // CopyObject, multipart copies; also manifests and state
    "s3:PutObjectTagging",
    "s3:AbortMultipartUpload",
    "s3:DeleteObjectVersion", // retention (DeleteObjects): versions only expired points name
    "s3:DeleteObject",        // retention: expired manifests in the state bucket
    // SSE-KMS copies with the DR key (and reading KMS-encrypted sources)
    "kms:GenerateDataKey",
    "kms:Decrypt",
    "sns:Publish",
    "sts:AssumeRole",
];

pub const RESTORE_VERIFIER: &[&str] = &[
    // the newest DR copy and what it holds
    "rds:DescribeDBSnapshots",
    "rds:DescribeDBClusterSnapshots",
    // throwaway restores in the DR region, tagged as restore tests when they are made
    "rds:RestoreDBInstanceFromDBSnapshot",
    "rds:RestoreDBClusterFromSnapshot",
    "rds:CreateDBInstance",  // a restored cluster's one instance
    "rds:AddTagsToResource", // the tags given to the restore and the instance
    "rds:DescribeDBInstances",
    "rds:DescribeDBClusters",
    // only what carries drpilot:restore-test and this deployment's tag
    "rds:DeleteDBInstance",
    "rds:DeleteDBCluster",
    "kms:CreateGrant", // restoring a copy encrypted with the DR key
    "kms:DescribeKey",
    "cloudwatch:PutMetricData",
    // its record in the state bucket
    "s3:ListBucket",
    "s3:GetObject",
    "s3:PutObject",
    // restore tests of S3 backups: the DR versions a manifest names, restored into the state
    // bucket's scratch prefix, read back and deleted version and all (and the point's pin)
    "s3:GetObjectVersion",
    "s3:GetObjectVersionTagging", // CopyObject copies a version's tags
    "s3:PutObjectTagging",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "sns:Publish",
];

/// What each function does in a member account, through the role of its own that
/// `infra/modules/member` creates there (each grants exactly its function's list; a test
/// checks): the databases, their metrics, snapshots and buckets are the member's. Alarms,
/// drpilot's metrics, Route 53, state and notices stay in the hub, so none of those is here.
pub const MEMBER_ROLES: &[(&str, &[&str])] = &[
    (
        "snapshot-copier",
        &[
            "rds:DescribeDBInstances",
            "rds:DescribeDBClusters",
            "rds:DescribeDBSnapshots",
            "rds:DescribeDBClusterSnapshots",
            "rds:CopyDBSnapshot",
            "rds:CopyDBClusterSnapshot",
            "rds:AddTagsToResource",
            "rds:DeleteDBSnapshot",
            "rds:DeleteDBClusterSnapshot",
            "kms:CreateGrant",
            "kms:DescribeKey",
        ],
    ),
    (
        "lag-checker",
        &[
            "rds:DescribeDBInstances",
            "rds:DescribeDBClusters",
            "rds:DescribeDBSnapshots",
            "rds:DescribeDBClusterSnapshots",
            "cloudwatch:GetMetricData", // RDS's lag metrics
            "s3:ListBucket",            // replicated buckets
        ],
    ),
    (
        "failover-promoter",
        &[
            "rds:DescribeDBInstances",
            "rds:DescribeDBClusters",
            "rds:DescribeGlobalClusters",
            "rds:DescribePendingMaintenanceActions",
            "rds:DescribeEvents",
            "rds:PromoteReadReplica",
            "rds:StopDBInstance",
            "rds:ModifyDBParameterGroup",
            "rds:FailoverGlobalCluster",
            "rds:SwitchoverGlobalCluster",
        ],
    ),
    (
        "s3-backup",
        &[
            "s3:ListBucket",
            "s3:GetObject",
            "s3:GetObjectTagging",
            "s3:GetBucketVersioning",
            "s3:GetBucketObjectLockConfiguration",
            "s3:PutObject",
            "s3:PutObjectTagging",
            "s3:AbortMultipartUpload",
            "s3:DeleteObjectVersion",
            "kms:GenerateDataKey",
            "kms:Decrypt",
        ],
    ),
];

/// What the snapshot copier does in the isolated backup account (`DRPILOT_VAULT`), through
/// the role `infra/modules/backup-account` creates there: copy the copies shared with it, and
/// nothing that deletes (the module also denies that explicitly; a test compares them).
pub const VAULT_ROLE: &[&str] = &[
    "rds:DescribeDBSnapshots",
    "rds:DescribeDBClusterSnapshots",
    "rds:CopyDBSnapshot",
    "rds:CopyDBClusterSnapshot",
    "rds:AddTagsToResource",
    "kms:CreateGrant",
    "kms:DescribeKey",
    // RDS re-encrypting the shared copy on the role's behalf
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
];

/// `(function directory under functions/, its actions, the settings it reads)`.
pub const FUNCTIONS: &[(&str, &[&str], &[&str])] = &[
    (
        "snapshot-copier",
        SNAPSHOT_COPIER,
        crate::config::CopierConfig::SETTINGS,
    ),
    ("lag-checker", LAG_CHECKER, crate::config::LagConfig::SETTINGS),
    (
        "failover-promoter",
        FAILOVER_PROMOTER,
        crate::config::PromoterConfig::SETTINGS,
    ),
    ("s3-backup", S3_BACKUP, crate::config::BackupConfig::SETTINGS),
    (
        "restore-verifier",
        RESTORE_VERIFIER,
        crate::config::VerifierConfig::SETTINGS,
    ),
];
