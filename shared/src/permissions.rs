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
    "kms:CreateGrant", // CopyDB*Snapshot with KmsKeyId
    "kms:DescribeKey",
    "sns:Publish",
];

pub const LAG_CHECKER: &[&str] = &[
    "rds:DescribeDBInstances",
    "rds:DescribeDBClusters",
    "rds:DescribeDBSnapshots",
    "rds:DescribeDBClusterSnapshots",
    "cloudwatch:GetMetricData",
    "cloudwatch:PutMetricData",
    "s3:ListBucket",
    "s3:GetObject",
    "s3:PutObject",
    "sns:Publish",
];

pub const FAILOVER_PROMOTER: &[&str] = &[
    "cloudwatch:DescribeAlarms",
    "cloudwatch:GetMetricData",
    "rds:DescribeDBInstances",
    "rds:DescribeDBClusters",
    "rds:DescribeGlobalClusters",
    "rds:PromoteReadReplica",
    "rds:FailoverGlobalCluster",
    "rds:SwitchoverGlobalCluster",
    "route53:ChangeResourceRecordSets",
    "route53:GetChange",
    "route53:ListResourceRecordSets",
    "route53:GetHealthCheckStatus",
    "s3:GetObject",
    "s3:PutObject",
    "sns:Publish",
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
];
