//! Settings, read once from the environment at cold start. Every error names the variable.

use crate::error::{Error, Result};
use crate::model::{
    arn_region, valid_bucket_name, AccountSpec, BackupSpec, CapacityGroup, CapacityKind, DatabaseSpec, DnsSpec,
    DnsSwitch, Fence, GroupSize, ProtectedDb, RecoveryPlan, ResourceSpec, Selection, Standby, StateLocation, Target,
    VerifySpec,
};
use crate::plan::retention::Retention;
use serde::Deserialize;
use std::collections::HashMap;

/// Where settings come from: the process environment in production, a map in tests.
pub trait Vars {
    fn var(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

/// Settings from a `KEY=VALUE` file (blank lines and `#` comments ignored), falling back to
/// the process environment: how the CLI reads what Terraform's `dashboard_settings` output wrote.
pub struct SettingsFile(pub HashMap<String, String>);

impl SettingsFile {
    pub fn read(path: &str) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config("--settings", format!("cannot read {path}: {e}")))?;
        let mut map = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| Error::config("--settings", format!("{path}:{}: expected KEY=VALUE", n + 1)))?;
            let v = v.trim();
            let v = v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(v);
            map.insert(k.trim().to_string(), v.to_string());
        }
        Ok(SettingsFile(map))
    }
}

impl Vars for SettingsFile {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned().or_else(|| std::env::var(name).ok())
    }
}

impl Vars for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Vars for HashMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.to_string())
    }
}

/// A setting that is unset or blank counts as unset.
pub fn optional(vars: &dyn Vars, name: &'static str) -> Option<String> {
    vars.var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

pub fn required(vars: &dyn Vars, name: &'static str) -> Result<String> {
    optional(vars, name).ok_or_else(|| Error::config(name, "is required but not set"))
}

pub fn parse_optional<T: std::str::FromStr>(vars: &dyn Vars, name: &'static str, what: &str) -> Result<Option<T>> {
    optional(vars, name)
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| Error::config(name, format!("{v:?} is not {what}")))
        })
        .transpose()
}

pub fn parse_bool(vars: &dyn Vars, name: &'static str, default: bool) -> Result<bool> {
    match optional(vars, name).as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(Error::config(name, format!("{other:?} is not true or false"))),
    }
}

/// A whole number within `range`, or `default` when unset.
pub fn bounded(vars: &dyn Vars, name: &'static str, default: u32, range: std::ops::RangeInclusive<u32>) -> Result<u32> {
    let v = parse_optional::<u32>(vars, name, "a whole number")?.unwrap_or(default);
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(Error::config(
            name,
            format!("{v} is outside {}..={}", range.start(), range.end()),
        ))
    }
}

/// `DRPILOT_METRIC_PERIOD_SECONDS`: the period of the CloudWatch metrics drpilot reads and
/// publishes, which is also the lag checker's schedule. 60 on AWS (standard resolution;
/// EventBridge schedules run at most once a minute). Every duration drpilot derives from "one
/// period" follows it (how stale a datapoint may be, how late it may arrive), so a test bed
/// can run AWS's whole timeline scaled down (e.g. 2) without changing its shape.
pub const METRIC_PERIOD_VAR: &str = "DRPILOT_METRIC_PERIOD_SECONDS";

pub fn metric_period(vars: &dyn Vars) -> Result<u32> {
    let period = bounded(vars, METRIC_PERIOD_VAR, 60, 1..=60)?;
    if 60 % period != 0 {
        return Err(Error::config(
            METRIC_PERIOD_VAR,
            format!("{period} does not divide a minute (60 on AWS)"),
        ));
    }
    Ok(period)
}

/// A comma-separated list; blanks are dropped, duplicates removed, order kept.
pub fn list(vars: &dyn Vars, name: &'static str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in optional(vars, name).unwrap_or_default().split(',') {
        let item = item.trim();
        if !item.is_empty() && !out.iter().any(|o| o == item) {
            out.push(item.to_string());
        }
    }
    out
}

/// An AWS region name such as `us-east-1` or `us-gov-west-1`.
pub fn region(vars: &dyn Vars, name: &'static str) -> Result<String> {
    let r = required(vars, name)?;
    let parts: Vec<&str> = r.split('-').collect();
    let well_formed = parts.len() >= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
    if well_formed {
        Ok(r)
    } else {
        Err(Error::config(
            name,
            format!("{r:?} is not an AWS region name (like us-east-1)"),
        ))
    }
}

/// An SNS topic ARN; its region decides which regional endpoint publishes to it.
pub fn topic_arn(vars: &dyn Vars, name: &'static str) -> Result<String> {
    let arn = required(vars, name)?;
    match is_topic_arn(&arn) {
        true => Ok(arn),
        false => Err(Error::config(
            name,
            format!("{arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
        )),
    }
}

/// `arn:PARTITION:sns:REGION:ACCOUNT:NAME`, none of them empty.
fn is_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    parts.len() == 6 && parts[0] == "arn" && parts[2] == "sns" && parts.iter().all(|p| !p.is_empty())
}

/// `DRPILOT_SOURCE_REGION` and `DRPILOT_DR_REGION`, which must differ.
pub fn region_pair(vars: &dyn Vars) -> Result<(String, String)> {
    let source_region = region(vars, "DRPILOT_SOURCE_REGION")?;
    let dr_region = region(vars, "DRPILOT_DR_REGION")?;
    if dr_region == source_region {
        return Err(Error::config(
            "DRPILOT_DR_REGION",
            format!("must differ from DRPILOT_SOURCE_REGION (both are {dr_region})"),
        ));
    }
    Ok((source_region, dr_region))
}

/// `DRPILOT_STATE_BUCKET` and `DRPILOT_STATE_PREFIX`.
pub fn state_location(vars: &dyn Vars) -> Result<StateLocation> {
    let bucket = required(vars, "DRPILOT_STATE_BUCKET")?;
    if !valid_bucket_name(&bucket) {
        return Err(Error::config(
            "DRPILOT_STATE_BUCKET",
            format!("{bucket:?} is not an S3 bucket name"),
        ));
    }
    let mut prefix = optional(vars, "DRPILOT_STATE_PREFIX").unwrap_or_else(|| "drpilot/".into());
    if !prefix.ends_with('/') {
        prefix.push('/');
    }
    Ok(StateLocation { bucket, prefix })
}

pub const DEFAULT_MAX_COPIES_IN_FLIGHT: u32 = 20;
/// AWS allows 20 snapshot copies in progress per destination region and account.
pub const AWS_COPIES_IN_FLIGHT_QUOTA: u32 = 20;
pub const DEFAULT_RETAIN_COUNT: u32 = 7;

const ACCOUNTS_VAR: &str = "DRPILOT_ACCOUNTS";
const ACCOUNTS_HELP: &str = r#"a JSON array like [{"id": "111111111111", "role_arn": "arn:aws:iam::111111111111:role/drpilot-member", "external_id": "...", "dr_kms_key_id": "arn:aws:kms:REGION:111111111111:key/..."}] (external_id and dr_kms_key_id optional)"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountEntry {
    #[serde(deserialize_with = "text")]
    id: String,
    #[serde(deserialize_with = "text")]
    role_arn: String,
    #[serde(default, deserialize_with = "some_text")]
    external_id: Option<String>,
    #[serde(default, deserialize_with = "some_text")]
    dr_kms_key_id: Option<String>,
}

/// Parses `DRPILOT_ACCOUNTS`, the member accounts a hub deployment works in besides its own
/// (unset: its own only). Each role must be in its account; ids are unique.
pub fn accounts(vars: &dyn Vars) -> Result<Vec<AccountSpec>> {
    account_entries(vars, ACCOUNTS_VAR, ACCOUNTS_HELP)
}

const VAULT_VAR: &str = "DRPILOT_VAULT";
const VAULT_HELP: &str = r#"a JSON array of one entry like [{"id": "222222222222", "role_arn": "arn:aws:iam::222222222222:role/drpilot-vault-copier", "external_id": "...", "dr_kms_key_id": "arn:aws:kms:DR-REGION:222222222222:key/..."}]: the isolated backup account, the role there that may copy but not delete, and its own key"#;

/// `DRPILOT_VAULT`: the isolated backup account the copier copies each newest DR copy into
/// (unset: none). Its key must be the backup account's own, in the DR region.
pub fn vault(vars: &dyn Vars, dr_region: &str) -> Result<Option<AccountSpec>> {
    let bad = |why: String| Error::config(VAULT_VAR, format!("{why}; expected {VAULT_HELP}"));
    let mut entries = account_entries(vars, VAULT_VAR, VAULT_HELP)?;
    if entries.len() > 1 {
        return Err(bad(format!("names {} accounts; one backup account", entries.len())));
    }
    let Some(vault) = entries.pop() else { return Ok(None) };
    match vault.dr_kms_key_id.as_deref().map(arn_region) {
        None => Err(bad(
            "dr_kms_key_id is required: copies there are re-encrypted with the backup account's own key".into(),
        )),
        Some(r) if r != Some(dr_region) => Err(bad(format!(
            "dr_kms_key_id must be a key ARN in the DR region {dr_region}"
        ))),
        Some(_) => Ok(Some(vault)),
    }
}

/// Account entries (`DRPILOT_ACCOUNTS`, `DRPILOT_VAULT`): each role in its account, ids unique,
/// a key (if any) in the account.
fn account_entries(vars: &dyn Vars, var: &'static str, help: &str) -> Result<Vec<AccountSpec>> {
    if optional(vars, var).is_none() {
        return Ok(vec![]);
    }
    let bad = |why: String| Error::config(var, format!("{why}; expected {help}"));
    let mut out: Vec<AccountSpec> = Vec::new();
    for (i, e) in json_entries::<AccountEntry>(vars, var, help)?.into_iter().enumerate() {
        if e.id.len() != 12 || !e.id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!("entry {i}: id {:?} is not a 12-digit account id", e.id)));
        }
        // arn:<partition>:iam::<account>:role/<path/name> (IAM User Guide, "IAM identifiers")
        let role_account = e
            .role_arn
            .strip_prefix("arn:")
            .and_then(|r| r.split_once(":iam::"))
            .filter(|(partition, _)| partition.starts_with("aws"))
            .and_then(|(_, r)| r.split_once(":role/"))
            .filter(|(_, name)| {
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c))
            })
            .map(|(account, _)| account);
        match role_account {
            None => {
                return Err(bad(format!(
                    "entry {i}: role_arn {:?} is not an IAM role ARN",
                    e.role_arn
                )))
            }
            Some(a) if a != e.id => {
                return Err(bad(format!(
                    "entry {i}: role_arn {} is in account {a}, not {}",
                    e.role_arn, e.id
                )))
            }
            Some(_) => {}
        }
        if let Some(x) = &e.external_id {
            // sts:AssumeRole ExternalId: 2-1224 characters of [\w+=,.@:/-]
            if !(2..=1224).contains(&x.len())
                || !x.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c))
            {
                return Err(bad(format!(
                    "entry {i}: external_id must be 2-1224 letters, digits or _+=,.@:/-"
                )));
            }
        }
        if out.iter().any(|a| a.id == e.id) {
            return Err(bad(format!("entry {i}: account {} is listed twice", e.id)));
        }
        if let Some(key) = &e.dr_kms_key_id {
            let key_account = key.strip_prefix("arn:").and_then(|k| k.split(':').nth(3));
            if key_account.is_none_or(|a| a != e.id) {
                return Err(bad(format!(
                    "entry {i}: dr_kms_key_id {key} must be a key ARN in account {}",
                    e.id
                )));
            }
        }
        out.push(AccountSpec {
            id: e.id,
            role_arn: e.role_arn,
            external_id: e.external_id,
            dr_kms_key_id: e.dr_kms_key_id,
        });
    }
    Ok(out)
}

/// `account` of a database, resource or backup entry: a member of `DRPILOT_ACCOUNTS`.
fn member_account(
    var: &'static str,
    entry: &str,
    account: Option<String>,
    accounts: &[AccountSpec],
) -> Result<Option<String>> {
    match account {
        Some(a) if !accounts.iter().any(|m| m.id == a) => Err(Error::config(
            var,
            format!("{entry}: account {a} is not in {ACCOUNTS_VAR} (which lists the member accounts and their roles)"),
        )),
        other => Ok(other),
    }
}

/// `DRPILOT_DEPLOYMENT`: this deployment's name on the copies it makes (Terraform: its
/// name_prefix). Two deployments in one account, e.g. a hub and a member's own, must differ.
pub fn deployment(vars: &dyn Vars) -> Result<String> {
    let name = optional(vars, "DRPILOT_DEPLOYMENT").unwrap_or_else(|| crate::model::DEFAULT_DEPLOYMENT.into());
    let ok = (1..=40).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        return Err(Error::config(
            "DRPILOT_DEPLOYMENT",
            format!("{name:?} must be 1-40 lowercase letters, digits or -, starting with a letter"),
        ));
    }
    Ok(name)
}

/// The snapshot copier's settings.
#[derive(Debug, Clone)]
pub struct CopierConfig {
    pub source_region: String,
    pub dr_region: String,
    /// `DRPILOT_METRIC_NAMESPACE`: where each run's counts are published.
    pub namespace: String,
    pub selection: Selection,
    /// KMS key in the DR region that encrypted copies are re-encrypted with.
    pub dr_kms_key_id: Option<String>,
    pub max_copies_in_flight: u32,
    pub retention: Retention,
    pub copy_source_tags: bool,
    pub notify_topic_arn: String,
    /// Member accounts reconciled besides the function's own.
    pub accounts: Vec<AccountSpec>,
    /// Whose copies these are (`drpilot:deployment`): only they are counted and pruned.
    pub deployment: String,
    /// Where the DR region's ledger is kept (`DRPILOT_STATE_BUCKET`); `None`: every
    /// reconciliation lists the DR region.
    pub state: Option<StateLocation>,
    pub s3_force_path_style: bool,
    /// The isolated backup account each newest DR copy is copied into (`DRPILOT_VAULT`).
    pub vault: Option<AccountSpec>,
    /// At most one copy per database this often into the backup account.
    pub vault_every_hours: u32,
}

impl CopierConfig {
    /// Every setting `from_vars` reads (a test checks the two agree; Terraform sets them all).
    pub const SETTINGS: &'static [&'static str] = &[
        "DRPILOT_SOURCE_REGION",
        "DRPILOT_DR_REGION",
        "DRPILOT_DB_INSTANCES",
        "DRPILOT_DB_CLUSTERS",
        "DRPILOT_SELECT_TAG",
        "DRPILOT_DR_KMS_KEY_ID",
        "DRPILOT_MAX_COPIES_IN_FLIGHT",
        "DRPILOT_RETAIN_COUNT",
        "DRPILOT_RETAIN_DAYS",
        "DRPILOT_COPY_SOURCE_TAGS",
        "DRPILOT_NOTIFY_TOPIC_ARN",
        "DRPILOT_ACCOUNTS",
        "DRPILOT_DEPLOYMENT",
        "DRPILOT_STATE_BUCKET",
        "DRPILOT_STATE_PREFIX",
        "DRPILOT_S3_FORCE_PATH_STYLE",
        "DRPILOT_VAULT",
        "DRPILOT_VAULT_EVERY_HOURS",
        "DRPILOT_METRIC_NAMESPACE",
    ];

    pub fn from_env() -> Result<Self> {
        Self::from_vars(&ProcessEnv)
    }

    pub fn from_vars(vars: &dyn Vars) -> Result<Self> {
        let (source_region, dr_region) = region_pair(vars)?;

        let selection = Selection {
            instances: list(vars, "DRPILOT_DB_INSTANCES"),
            clusters: list(vars, "DRPILOT_DB_CLUSTERS"),
            tag: optional(vars, "DRPILOT_SELECT_TAG").map(|t| match t.split_once('=') {
                Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
                None => (t, None),
            }),
        };
        if let Some((key, _)) = &selection.tag {
            if key.is_empty() {
                return Err(Error::config(
                    "DRPILOT_SELECT_TAG",
                    "has an empty tag key (expected KEY=VALUE or KEY)",
                ));
            }
        }
        if selection.instances.is_empty() && selection.clusters.is_empty() && selection.tag.is_none() {
            return Err(Error::config(
                "DRPILOT_DB_INSTANCES",
                "nothing to protect: set DRPILOT_DB_INSTANCES, DRPILOT_DB_CLUSTERS and/or DRPILOT_SELECT_TAG",
            ));
        }

        let dr_kms_key_id = optional(vars, "DRPILOT_DR_KMS_KEY_ID");
        if let Some(key) = &dr_kms_key_id {
            if let Some(r) = arn_region(key) {
                if r != dr_region {
                    return Err(Error::config(
                        "DRPILOT_DR_KMS_KEY_ID",
                        format!("key {key} is in {r}, but copies are made in the DR region {dr_region}"),
                    ));
                }
            }
        }

        let max_copies_in_flight = parse_optional::<u32>(vars, "DRPILOT_MAX_COPIES_IN_FLIGHT", "a whole number")?
            .unwrap_or(DEFAULT_MAX_COPIES_IN_FLIGHT);
        if !(1..=AWS_COPIES_IN_FLIGHT_QUOTA).contains(&max_copies_in_flight) {
            return Err(Error::config(
                "DRPILOT_MAX_COPIES_IN_FLIGHT",
                format!("{max_copies_in_flight} is outside 1..={AWS_COPIES_IN_FLIGHT_QUOTA} (AWS allows {AWS_COPIES_IN_FLIGHT_QUOTA} copies in flight per destination region)"),
            ));
        }

        let keep_last = parse_optional::<u32>(vars, "DRPILOT_RETAIN_COUNT", "a whole number")?;
        let max_age_days = parse_optional::<u32>(vars, "DRPILOT_RETAIN_DAYS", "a whole number of days")?;
        if keep_last == Some(0) {
            return Err(Error::config("DRPILOT_RETAIN_COUNT", "must be at least 1"));
        }
        if max_age_days == Some(0) {
            return Err(Error::config("DRPILOT_RETAIN_DAYS", "must be at least 1"));
        }
        let retention = match (keep_last, max_age_days) {
            (None, None) => Retention {
                keep_last: Some(DEFAULT_RETAIN_COUNT),
                max_age_days: None,
            },
            _ => Retention {
                keep_last,
                max_age_days,
            },
        };

        let vault = vault(vars, &dr_region)?;
        let members = accounts(vars)?;
        for m in &members {
            let key = m.dr_kms_key_id.as_deref().unwrap_or_default();
            if let Some(r) = arn_region(key).filter(|r| *r != dr_region) {
                return Err(Error::config(
                    ACCOUNTS_VAR,
                    format!(
                        "account {}'s dr_kms_key_id {key} is in {r}, but copies are made in the DR region {dr_region}",
                        m.id
                    ),
                ));
            }
        }
        Ok(CopierConfig {
            source_region,
            dr_region,
            namespace: metric_namespace(vars)?,
            selection,
            dr_kms_key_id,
            max_copies_in_flight,
            retention,
            copy_source_tags: parse_bool(vars, "DRPILOT_COPY_SOURCE_TAGS", true)?,
            notify_topic_arn: topic_arn(vars, "DRPILOT_NOTIFY_TOPIC_ARN")?,
            accounts: members,
            deployment: deployment(vars)?,
            state: match optional(vars, "DRPILOT_STATE_BUCKET") {
                Some(_) => Some(state_location(vars)?),
                None => None,
            },
            s3_force_path_style: parse_bool(vars, "DRPILOT_S3_FORCE_PATH_STYLE", false)?,
            vault,
            vault_every_hours: bounded(vars, "DRPILOT_VAULT_EVERY_HOURS", 168, 1..=24 * 366)?,
        })
    }
}

const RESOURCES_VAR: &str = "DRPILOT_RESOURCES";
const RESOURCES_HELP: &str = r#"a JSON array like [{"name": "orders", "kind": "rds-replica", "replica": "orders-dr", "rpo_seconds": 60}]; kinds: rds-replica (replica), aurora-global (cluster), snapshot (db, db_kind instance|cluster), s3-backup (backup: a DRPILOT_S3_BACKUPS name; or source_bucket, dr_bucket, prefix)"#;

/// One entry of `DRPILOT_RESOURCES` as written; `kind` says which of the other fields it takes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceEntry {
    #[serde(deserialize_with = "text")]
    name: String,
    kind: ResourceKind,
    rpo_seconds: f64,
    #[serde(default, deserialize_with = "some_text")]
    replica: Option<String>,
    #[serde(default, deserialize_with = "some_text")]
    cluster: Option<String>,
    #[serde(default, deserialize_with = "some_text")]
    db: Option<String>,
    db_kind: Option<crate::model::DbKind>,
    #[serde(default, deserialize_with = "some_text")]
    backup: Option<String>,
    #[serde(default, deserialize_with = "some_text")]
    source_bucket: Option<String>,
    #[serde(default, deserialize_with = "some_text")]
    dr_bucket: Option<String>,
    prefix: Option<String>,
    #[serde(default, deserialize_with = "some_text")]
    account: Option<String>,
}

#[derive(Deserialize, Clone, Copy, Debug)]
#[serde(rename_all = "kebab-case")]
enum ResourceKind {
    RdsReplica,
    AuroraGlobal,
    Snapshot,
    S3Backup,
}

/// Parses `DRPILOT_RESOURCES`; errors name the entry and the field.
pub fn resources(vars: &dyn Vars) -> Result<Vec<ResourceSpec>> {
    let bad = |why: String| Error::config(RESOURCES_VAR, format!("{why}; expected {RESOURCES_HELP}"));
    let members = accounts(vars)?;
    let mut out: Vec<ResourceSpec> = Vec::new();
    for (i, e) in json_entries::<ResourceEntry>(vars, RESOURCES_VAR, RESOURCES_HELP)?
        .into_iter()
        .enumerate()
    {
        let name = e.name;
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c)) || name.len() > 200 {
            return Err(bad(format!(
                "entry {i}: name {name:?} may hold only letters, digits and - _ . : /"
            )));
        }
        if out.iter().any(|r| r.name == name) {
            return Err(bad(format!("entry {i}: name {name:?} is used twice")));
        }
        if e.rpo_seconds <= 0.0 {
            return Err(bad(format!("entry {i} ({name}) needs rpo_seconds, a number above 0")));
        }
        let bucket = |field: &str, b: String| match valid_bucket_name(&b) {
            true => Ok(b),
            false => Err(bad(format!(
                "entry {i} ({name}): {field} {b:?} is not an S3 bucket name"
            ))),
        };
        use ResourceKind as K;
        let target = match (
            e.kind,
            e.replica,
            e.cluster,
            e.db,
            e.backup,
            e.source_bucket,
            e.dr_bucket,
        ) {
            (K::RdsReplica, Some(replica), None, None, None, None, None)
                if e.db_kind.is_none() && e.prefix.is_none() =>
            {
                Target::RdsReplica { replica }
            }
            (K::AuroraGlobal, None, Some(cluster), None, None, None, None)
                if e.db_kind.is_none() && e.prefix.is_none() =>
            {
                Target::AuroraGlobal { cluster }
            }
            (K::Snapshot, None, None, Some(id), None, None, None) if e.prefix.is_none() => Target::SnapshotCopies {
                db: crate::model::ProtectedDb {
                    kind: e.db_kind.unwrap_or(crate::model::DbKind::Instance),
                    id,
                },
            },
            (K::S3Backup, None, None, None, Some(backup), None, None) if e.db_kind.is_none() && e.prefix.is_none() => {
                Target::S3PointInTime { backup }
            }
            (K::S3Backup, None, None, None, None, Some(source), Some(dr)) if e.db_kind.is_none() => Target::S3Backup {
                source_bucket: bucket("source_bucket", source)?,
                dr_bucket: bucket("dr_bucket", dr)?,
                prefix: e.prefix.unwrap_or_default(),
            },
            (kind, ..) => {
                let takes = match kind {
                    K::RdsReplica => "rds-replica takes replica",
                    K::AuroraGlobal => "aurora-global takes cluster",
                    K::Snapshot => "snapshot takes db and optionally db_kind",
                    K::S3Backup => "s3-backup takes either backup, or source_bucket, dr_bucket and optionally prefix",
                };
                return Err(bad(format!("entry {i} ({name}): kind {takes}")));
            }
        };
        let account = member_account(RESOURCES_VAR, &format!("entry {i} ({name})"), e.account, &members)?;
        out.push(ResourceSpec {
            name,
            rpo_seconds: e.rpo_seconds,
            target,
            account,
        });
    }
    Ok(out)
}

/// A JSON array setting, each entry decoded to `T`: errors name the variable, the entry and
/// the field (`[2].dns.ttl: invalid type ...`).
fn json_entries<T: serde::de::DeserializeOwned>(vars: &dyn Vars, var: &'static str, help: &str) -> Result<Vec<T>> {
    let text = required(vars, var)?;
    let bad = |why: String| Error::config(var, format!("{why}; expected {help}"));
    let mut json = serde_json::Deserializer::from_str(&text);
    let entries: Vec<T> =
        serde_path_to_error::deserialize(&mut json).map_err(|e| match e.path().to_string().as_str() {
            "." => bad(format!("not a JSON array of entries ({})", e.inner())),
            path => bad(format!("entry {path}: {}", e.inner())),
        })?;
    // Nothing may follow the array: `[...],[...]` must not quietly drop the second half.
    json.end().map_err(|e| bad(format!("not one JSON array ({e})")))?;
    if entries.is_empty() {
        return Err(bad("is empty".into()));
    }
    Ok(entries)
}

/// For `#[serde(deserialize_with)]`: a string that is not blank, trimmed.
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    let s = String::deserialize(d)?;
    match s.trim() {
        "" => Err(serde::de::Error::custom("must be a non-empty string")),
        t => Ok(t.to_string()),
    }
}

/// `text`, for an optional field (with `#[serde(default)]`); null is as good as absent (what
/// Terraform writes for an optional attribute it was not given).
fn some_text<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => match s.trim() {
            "" => Err(serde::de::Error::custom("must be a non-empty string")),
            t => Ok(Some(t.to_string())),
        },
    }
}

/// The lag checker's settings.
#[derive(Debug, Clone)]
pub struct LagConfig {
    pub source_region: String,
    pub dr_region: String,
    pub resources: Vec<ResourceSpec>,
    /// A lag metric with no datapoint this recent means replication is not reporting.
    pub window_seconds: u32,
    /// `DRPILOT_METRIC_PERIOD_SECONDS` (60 on AWS).
    pub metric_period_seconds: u32,
    /// CloudWatch namespace of drpilot's own metrics, published in the DR region.
    pub namespace: String,
    pub state: StateLocation,
    pub notify_topic_arn: String,
    pub s3_force_path_style: bool,
    /// Stop measuring this long before the Lambda deadline: what is not measured by then is
    /// published as unknown, and the run still records transitions and sends notices.
    pub deadline_margin_seconds: u32,
    /// Member accounts the resources may be in.
    pub accounts: Vec<AccountSpec>,
    /// Whose snapshot copies a snapshot resource's age is measured on.
    pub deployment: String,
    /// `DRPILOT_STATUS_PAGE`: publish the status page to the state bucket every five periods, with
    /// what it shows (the promoter's databases and the restore tests, from their settings).
    pub status_page: Option<DashboardConfig>,
}

impl LagConfig {
    pub const SETTINGS: &'static [&'static str] = &[
        "DRPILOT_SOURCE_REGION",
        "DRPILOT_DR_REGION",
        "DRPILOT_RESOURCES",
        "DRPILOT_LAG_WINDOW_SECONDS",
        METRIC_PERIOD_VAR,
        "DRPILOT_METRIC_NAMESPACE",
        "DRPILOT_STATE_BUCKET",
        "DRPILOT_STATE_PREFIX",
        "DRPILOT_NOTIFY_TOPIC_ARN",
        "DRPILOT_S3_FORCE_PATH_STYLE",
        "DRPILOT_DEADLINE_MARGIN_SECONDS",
        "DRPILOT_ACCOUNTS",
        "DRPILOT_DEPLOYMENT",
        // the status page, and what it shows besides the resources
        "DRPILOT_STATUS_PAGE",
        DATABASES_VAR,
        VERIFY_VAR,
        VERIFY_BACKUPS_VAR,
        "DRPILOT_VERIFY_MAX_AGE_DAYS",
    ];

    pub fn from_env() -> Result<Self> {
        Self::from_vars(&ProcessEnv)
    }

    pub fn from_vars(vars: &dyn Vars) -> Result<Self> {
        let (source_region, dr_region) = region_pair(vars)?;
        let metric_period_seconds = metric_period(vars)?;
        let status_page = if parse_bool(vars, "DRPILOT_STATUS_PAGE", false)? {
            Some(DashboardConfig::from_vars(vars)?)
        } else {
            None
        };
        // five periods by default (five minutes on AWS)
        let window_seconds = parse_optional::<u32>(vars, "DRPILOT_LAG_WINDOW_SECONDS", "a whole number of seconds")?
            .unwrap_or(5 * metric_period_seconds);
        if !(metric_period_seconds..=86_400).contains(&window_seconds) {
            return Err(Error::config(
                "DRPILOT_LAG_WINDOW_SECONDS",
                format!(
                    "{window_seconds} is outside {metric_period_seconds}..=86400 (lag metrics come every {metric_period_seconds} s)"
                ),
            ));
        }
        let namespace = metric_namespace(vars)?;
        Ok(LagConfig {
            source_region,
            dr_region,
            resources: resources(vars)?,
            window_seconds,
            metric_period_seconds,
            namespace,
            state: state_location(vars)?,
            notify_topic_arn: topic_arn(vars, "DRPILOT_NOTIFY_TOPIC_ARN")?,
            s3_force_path_style: parse_bool(vars, "DRPILOT_S3_FORCE_PATH_STYLE", false)?,
            // at least a second: the unmeasured are published after it
            deadline_margin_seconds: bounded(vars, "DRPILOT_DEADLINE_MARGIN_SECONDS", 10, 1..=600)?,
            accounts: accounts(vars)?,
            deployment: deployment(vars)?,
            status_page,
        })
    }
}

pub const DEFAULT_NAMESPACE: &str = "drpilot";

/// `DRPILOT_METRIC_NAMESPACE`: drpilot's own metrics' namespace in the DR region.
fn metric_namespace(vars: &dyn Vars) -> Result<String> {
    let namespace = optional(vars, "DRPILOT_METRIC_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.into());
    if namespace.starts_with("AWS/") || namespace.len() > 255 {
        return Err(Error::config(
            "DRPILOT_METRIC_NAMESPACE",
            format!("{namespace:?}: a custom namespace may not start with AWS/"),
        ));
    }
    Ok(namespace)
}

/// What the dashboard (and the drill) look at: the lag checker's resources and the promoter's
/// databases, and where their state lives.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    pub source_region: String,
    pub dr_region: String,
    pub resources: Vec<ResourceSpec>,
    pub databases: Vec<DatabaseSpec>,
    pub namespace: String,
    /// `DRPILOT_METRIC_PERIOD_SECONDS` (60 on AWS).
    pub metric_period_seconds: u32,
    pub state: StateLocation,
    pub s3_force_path_style: bool,
    pub deployment: String,
    /// The restore verifier's databases (`DRPILOT_VERIFY_DATABASES`, when set) and how old
    /// their last verified restore may be.
    pub verify: Vec<VerifySpec>,
    /// The S3 backups it restore-tests (`DRPILOT_VERIFY_BACKUPS`).
    pub verify_backups: Vec<String>,
    pub verify_max_age_days: u32,
}

impl DashboardConfig {
    pub fn from_vars(vars: &dyn Vars) -> Result<Self> {
        let (source_region, dr_region) = region_pair(vars)?;
        Ok(DashboardConfig {
            source_region,
            dr_region,
            resources: resources(vars)?,
            databases: if optional(vars, DATABASES_VAR).is_some() {
                databases(vars)?
            } else {
                vec![]
            },
            namespace: metric_namespace(vars)?,
            metric_period_seconds: metric_period(vars)?,
            state: state_location(vars)?,
            s3_force_path_style: parse_bool(vars, "DRPILOT_S3_FORCE_PATH_STYLE", false)?,
            deployment: deployment(vars)?,
            verify: if optional(vars, VERIFY_VAR).is_some() {
                verify_databases(vars)?
            } else {
                vec![]
            },
            verify_backups: verify_backup_names(vars)?,
            verify_max_age_days: verify_max_age_days(vars)?,
        })
    }
}

const DATABASES_VAR: &str = "DRPILOT_DATABASES";
const DATABASES_HELP: &str = r#"a JSON array like [{"name": "orders", "kind": "rds-replica", "primary": "orders-db", "replica": "orders-db-dr", "alarms": ["orders-primary-down"], "max_data_loss_seconds": 60, "dns": {"zone_id": "Z123", "record_name": "db.example.com"}}]; kind aurora-global takes global_cluster, primary_cluster, secondary_cluster; optional: lag_resource, rto_seconds, health_check_id, fence (stop or none; default stop), dns.record_type (CNAME), dns.ttl (60), dns.mode (upsert, or failover-records with dns.alarm), recovery_plan {"capacity": [{"auto_scaling_group": "orders-web-dr", "desired": 10, "min": 10, "max": 20}, {"ecs_service": "orders-api", "cluster": "apps-dr", "desired": 6}], "wait_seconds": 600, "strict": false, "automation_topic_arn": "arn:aws:sns:us-west-2:123456789012:orders-automation"}"#;

/// One entry of `DRPILOT_DATABASES` as written; `kind` says which identifiers it takes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseEntry {
    #[serde(deserialize_with = "text")]
    name: String,
    kind: StandbyKind,
    #[serde(default, deserialize_with = "some_text")]
    primary: Option<String>,
    #[serde(default, deserialize_with = "some_text")]
    replica: Option<String>,
    #[serde(default, deserialize_with = "some_text")]
    global_cluster: Option<String>,
    #[serde(default, deserialize_with = "some_text")]
    primary_cluster: Option<String>,
    #[serde(default, deserialize_with = "some_text")]
    secondary_cluster: Option<String>,
    alarms: Vec<String>,
    #[serde(default, deserialize_with = "some_text")]
    lag_resource: Option<String>,
    max_data_loss_seconds: f64,
    rto_seconds: Option<f64>,
    health_check_id: Option<String>,
    #[serde(default)]
    fence: Fence,
    dns: DnsEntry,
    #[serde(default, deserialize_with = "some_text")]
    account: Option<String>,
    #[serde(default)]
    recovery_plan: Option<PlanEntry>,
}

/// A database's `recovery_plan` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanEntry {
    #[serde(default)]
    capacity: Vec<GroupEntry>,
    wait_seconds: Option<u32>,
    strict: Option<bool>,
    #[serde(default, deserialize_with = "some_text")]
    automation_topic_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupEntry {
    #[serde(default, deserialize_with = "some_text")]
    auto_scaling_group: Option<String>,
    #[serde(default, deserialize_with = "some_text")]
    ecs_service: Option<String>,
    #[serde(default, deserialize_with = "some_text")]
    cluster: Option<String>,
    desired: u32,
    min: Option<u32>,
    max: Option<u32>,
}

/// The default wait for a recovery plan's capacity: EC2 launches and health-check grace
/// periods take minutes.
const PLAN_WAIT_SECONDS: u32 = 600;

fn recovery_plan(entry: &str, e: PlanEntry) -> std::result::Result<RecoveryPlan, String> {
    if let Some(arn) = &e.automation_topic_arn {
        if !is_topic_arn(arn) {
            return Err(format!(
                "{entry}: recovery_plan.automation_topic_arn {arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
            ));
        }
        // a FIFO topic takes only messages with a group id, which an event has no use for
        if arn.ends_with(".fifo") {
            return Err(format!(
                "{entry}: recovery_plan.automation_topic_arn {arn:?} is a FIFO topic: use a standard topic"
            ));
        }
    }
    if e.capacity.is_empty() && e.automation_topic_arn.is_none() {
        return Err(format!(
            "{entry}: recovery_plan needs at least one Auto Scaling group or ECS service in capacity, or an automation_topic_arn"
        ));
    }
    let mut capacity: Vec<CapacityGroup> = Vec::new();
    for (i, g) in e.capacity.into_iter().enumerate() {
        let (kind, name) = match (g.auto_scaling_group, g.ecs_service, g.cluster) {
            (Some(name), None, None) => (CapacityKind::AutoScalingGroup, name),
            (None, Some(name), Some(cluster)) if g.min.is_none() && g.max.is_none() => {
                (CapacityKind::EcsService { cluster }, name)
            }
            (None, Some(name), Some(_)) => {
                return Err(format!(
                    "{entry}: recovery_plan ECS service {name}: takes desired only (a service has a desired count; min and max are its Application Auto Scaling target's)"
                ))
            }
            (None, Some(name), None) => {
                return Err(format!(
                    "{entry}: recovery_plan ECS service {name}: needs its cluster"
                ))
            }
            _ => {
                return Err(format!(
                    "{entry}: recovery_plan.capacity[{i}]: needs auto_scaling_group, or ecs_service with cluster (one of them)"
                ))
            }
        };
        if let CapacityKind::EcsService { cluster } = &kind {
            // names, as the IAM grant and DescribeServices' answer spell them (not ARNs)
            let valid = |n: &str| {
                (1..=255).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            };
            if !valid(&name) || !valid(cluster) {
                return Err(format!(
                    "{entry}: recovery_plan ECS service {name:?} in cluster {cluster:?}: give both by name (letters, digits, - and _), not as ARNs"
                ));
            }
        }
        let size = GroupSize {
            min: g.min.unwrap_or(g.desired),
            desired: g.desired,
            max: g.max.unwrap_or(g.desired),
        };
        let what = kind.label(&name);
        if size.desired == 0 || size.min > size.desired || size.desired > size.max {
            return Err(format!(
                "{entry}: recovery_plan {what}: needs 0 < desired and min <= desired <= max (min and max default to desired); got desired {}, min {}, max {}",
                size.desired, size.min, size.max
            ));
        }
        if capacity.iter().any(|c| c.name == name && c.kind == kind) {
            return Err(format!("{entry}: recovery_plan lists {what} twice"));
        }
        capacity.push(CapacityGroup { kind, name, size });
    }
    let wait_seconds = e.wait_seconds.unwrap_or(PLAN_WAIT_SECONDS);
    if wait_seconds == 0 {
        return Err(format!(
            "{entry}: recovery_plan.wait_seconds must be above 0 (EC2 takes minutes to launch)"
        ));
    }
    Ok(RecoveryPlan {
        capacity,
        wait_seconds,
        strict: e.strict.unwrap_or(false),
        automation_topic: e.automation_topic_arn,
    })
}

#[derive(Deserialize, Clone, Copy, Debug)]
#[serde(rename_all = "kebab-case")]
enum StandbyKind {
    RdsReplica,
    AuroraGlobal,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DnsEntry {
    #[serde(deserialize_with = "text")]
    zone_id: String,
    #[serde(deserialize_with = "text")]
    record_name: String,
    record_type: Option<String>,
    ttl: Option<i64>,
    #[serde(default)]
    mode: DnsMode,
    #[serde(default, deserialize_with = "some_text")]
    alarm: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
enum DnsMode {
    #[default]
    Upsert,
    FailoverRecords,
}

pub fn databases(vars: &dyn Vars) -> Result<Vec<DatabaseSpec>> {
    let bad = |why: String| Error::config(DATABASES_VAR, format!("{why}; expected {DATABASES_HELP}"));
    let members = accounts(vars)?;
    let mut out: Vec<DatabaseSpec> = Vec::new();
    for (i, e) in json_entries::<DatabaseEntry>(vars, DATABASES_VAR, DATABASES_HELP)?
        .into_iter()
        .enumerate()
    {
        let name = e.name;
        if out.iter().any(|d| d.name == name) {
            return Err(bad(format!("entry {i}: name {name:?} is used twice")));
        }
        let standby = match (
            e.kind,
            e.primary,
            e.replica,
            e.global_cluster,
            e.primary_cluster,
            e.secondary_cluster,
        ) {
            (StandbyKind::RdsReplica, Some(primary), Some(replica), None, None, None) => {
                Standby::RdsReplica { primary, replica }
            }
            (
                StandbyKind::AuroraGlobal,
                None,
                None,
                Some(global_cluster),
                Some(primary_cluster),
                Some(secondary_cluster),
            ) => Standby::AuroraGlobal {
                global_cluster,
                primary_cluster,
                secondary_cluster,
            },
            (kind, ..) => {
                let takes = match kind {
                    StandbyKind::RdsReplica => "rds-replica takes primary and replica",
                    StandbyKind::AuroraGlobal => {
                        "aurora-global takes global_cluster, primary_cluster and secondary_cluster"
                    }
                };
                return Err(bad(format!("entry {i} ({name}): kind {takes}")));
            }
        };
        let alarms: Vec<String> = e.alarms.into_iter().filter(|a| !a.trim().is_empty()).collect();
        if alarms.is_empty() {
            return Err(bad(format!(
                "entry {i} ({name}) needs \"alarms\", a non-empty list of CloudWatch alarm names"
            )));
        }
        if e.max_data_loss_seconds < 0.0 {
            return Err(bad(format!(
                "entry {i} ({name}) needs max_data_loss_seconds, a number >= 0"
            )));
        }
        if e.rto_seconds.is_some_and(|v| v <= 0.0) {
            return Err(bad(format!("entry {i} ({name}): rto_seconds must be a number above 0")));
        }
        let dns = e.dns;
        let record_type = dns.record_type.unwrap_or_else(|| "CNAME".into());
        if record_type != "CNAME" {
            return Err(bad(format!(
                "entry {i} ({name}): dns.record_type {record_type:?}: only CNAME is supported"
            )));
        }
        let ttl = dns.ttl.unwrap_or(60);
        if !(0..=86_400).contains(&ttl) {
            return Err(bad(format!("entry {i} ({name}): dns.ttl {ttl} is outside 0..=86400")));
        }
        let switch = match (dns.mode, dns.alarm) {
            (DnsMode::Upsert, None) => DnsSwitch::Upsert,
            (DnsMode::FailoverRecords, Some(alarm)) => DnsSwitch::FailoverRecords { alarm },
            (DnsMode::Upsert, Some(_)) => {
                return Err(bad(format!(
                    "entry {i} ({name}): dns.alarm is only for dns.mode failover-records"
                )))
            }
            (DnsMode::FailoverRecords, None) => {
                return Err(bad(format!(
                    "entry {i} ({name}): dns.mode failover-records needs dns.alarm, the CloudWatch alarm (DR region) of the PRIMARY record's health check"
                )))
            }
        };
        let mut record_name = dns.record_name;
        if !record_name.ends_with('.') {
            record_name.push('.');
        }
        let account = member_account(DATABASES_VAR, &format!("entry {i} ({name})"), e.account, &members)?;
        let recovery = match e.recovery_plan {
            None => None,
            Some(_) if account.is_some() => {
                return Err(bad(format!(
                    "entry {i} ({name}): a recovery_plan scales Auto Scaling groups and ECS services in this deployment's own account; {name} is in member account {}",
                    account.as_deref().unwrap_or_default()
                )))
            }
            Some(p) => Some(recovery_plan(&format!("entry {i} ({name})"), p).map_err(bad)?),
        };
        out.push(DatabaseSpec {
            recovery,
            account,
            fence: e.fence,
            rto_seconds: e.rto_seconds,
            lag_resource: e.lag_resource.unwrap_or_else(|| name.clone()),
            name,
            standby,
            alarms,
            max_data_loss_seconds: e.max_data_loss_seconds,
            health_check_id: e.health_check_id,
            dns: DnsSpec {
                zone_id: dns.zone_id,
                record_name,
                record_type,
                ttl,
                switch,
            },
        });
    }
    let mut alarms: Vec<&String> = out.iter().flat_map(|d| &d.alarms).collect();
    alarms.sort();
    if let Some(w) = alarms.windows(2).find(|w| w[0] == w[1]) {
        return Err(bad(format!("alarm {:?} is listed for two databases", w[0])));
    }
    Ok(out)
}

/// The failover promoter's settings.
#[derive(Debug, Clone)]
pub struct PromoterConfig {
    pub source_region: String,
    pub dr_region: String,
    pub databases: Vec<DatabaseSpec>,
    pub mode: crate::plan::promotion::Mode,
    pub cooldown_seconds: u32,
    pub checker_quorum_percent: u32,
    pub lag_lookback_seconds: u32,
    pub poll_seconds: u32,
    /// Stop and save progress when less than this is left before the Lambda deadline.
    pub deadline_margin_seconds: u32,
    /// Tell responders once when a promotion or DNS change has waited this long.
    pub stuck_after_seconds: u32,
    /// `DRPILOT_PROBE_SPACING_MS`: the wait between the primary probe's rounds (three rounds;
    /// the region counts as unreachable only if none answers).
    pub probe_spacing_ms: u32,
    /// `DRPILOT_METRIC_PERIOD_SECONDS` (60 on AWS): the lag history's resolution.
    pub metric_period_seconds: u32,
    pub namespace: String,
    pub state: StateLocation,
    pub notify_topic_arn: String,
    pub s3_force_path_style: bool,
    /// How responders invoke this function in the commands notices give them.
    pub function_name: String,
    /// Member accounts the databases may be in.
    pub accounts: Vec<AccountSpec>,
}

impl PromoterConfig {
    pub const SETTINGS: &'static [&'static str] = &[
        "DRPILOT_SOURCE_REGION",
        "DRPILOT_DR_REGION",
        "DRPILOT_DATABASES",
        "DRPILOT_MODE",
        "DRPILOT_COOLDOWN_SECONDS",
        "DRPILOT_CHECKER_QUORUM_PERCENT",
        "DRPILOT_LAG_LOOKBACK_SECONDS",
        "DRPILOT_POLL_SECONDS",
        "DRPILOT_DEADLINE_MARGIN_SECONDS",
        "DRPILOT_STUCK_AFTER_SECONDS",
        "DRPILOT_PROBE_SPACING_MS",
        METRIC_PERIOD_VAR,
        "DRPILOT_METRIC_NAMESPACE",
        "DRPILOT_STATE_BUCKET",
        "DRPILOT_STATE_PREFIX",
        "DRPILOT_NOTIFY_TOPIC_ARN",
        "DRPILOT_S3_FORCE_PATH_STYLE",
        "DRPILOT_ACCOUNTS",
    ];

    /// Set by Lambda itself, not by the deployment.
    pub const RUNTIME_SETTINGS: &'static [&'static str] = &["AWS_LAMBDA_FUNCTION_NAME"];

    pub fn from_env() -> Result<Self> {
        Self::from_vars(&ProcessEnv)
    }

    pub fn from_vars(vars: &dyn Vars) -> Result<Self> {
        use crate::plan::promotion::Mode;
        let (source_region, dr_region) = region_pair(vars)?;
        let mode = match optional(vars, "DRPILOT_MODE").as_deref() {
            None | Some("advisory") => Mode::Advisory,
            Some("automatic") => Mode::Automatic,
            Some(other) => {
                return Err(Error::config(
                    "DRPILOT_MODE",
                    format!("{other:?} is not advisory or automatic"),
                ))
            }
        };
        let bounded = |name, default, range| bounded(vars, name, default, range);
        let notify_topic_arn = topic_arn(vars, "DRPILOT_NOTIFY_TOPIC_ARN")?;
        let databases = databases(vars)?;
        // The promoter publishes through the responders' topic's region (the one it can reach
        // on the night): an automation topic elsewhere would be published to the wrong region.
        let region = arn_region(&notify_topic_arn).unwrap_or_default();
        for d in &databases {
            if let Some(topic) = d.recovery.as_ref().and_then(|p| p.automation_topic.as_deref()) {
                if arn_region(topic) != Some(region) {
                    return Err(Error::config(
                        DATABASES_VAR,
                        format!(
                            "{}: recovery_plan.automation_topic_arn {topic} must be in {region}, the region of DRPILOT_NOTIFY_TOPIC_ARN (the promoter publishes there)",
                            d.name
                        ),
                    ));
                }
            }
        }
        Ok(PromoterConfig {
            databases,
            accounts: accounts(vars)?,
            mode,
            cooldown_seconds: bounded("DRPILOT_COOLDOWN_SECONDS", 3600, 0..=30 * 86_400)?,
            checker_quorum_percent: bounded("DRPILOT_CHECKER_QUORUM_PERCENT", 60, 1..=100)?,
            lag_lookback_seconds: bounded("DRPILOT_LAG_LOOKBACK_SECONDS", 3600, 300..=7 * 86_400)?,
            poll_seconds: bounded("DRPILOT_POLL_SECONDS", 10, 1..=60)?,
            deadline_margin_seconds: bounded("DRPILOT_DEADLINE_MARGIN_SECONDS", 30, 0..=600)?,
            stuck_after_seconds: bounded("DRPILOT_STUCK_AFTER_SECONDS", 1800, 1..=86_400)?,
            probe_spacing_ms: bounded("DRPILOT_PROBE_SPACING_MS", 2000, 0..=10_000)?,
            metric_period_seconds: metric_period(vars)?,
            namespace: metric_namespace(vars)?,
            state: state_location(vars)?,
            notify_topic_arn,
            s3_force_path_style: parse_bool(vars, "DRPILOT_S3_FORCE_PATH_STYLE", false)?,
            function_name: optional(vars, "AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|| "drpilot-failover-promoter".into()),
            source_region,
            dr_region,
        })
    }

    pub fn database(&self, name: &str) -> Option<&DatabaseSpec> {
        self.databases.iter().find(|d| d.name == name)
    }

    /// The database an alarm belongs to.
    pub fn database_for_alarm(&self, alarm: &str) -> Option<&DatabaseSpec> {
        self.databases.iter().find(|d| d.alarms.iter().any(|a| a == alarm))
    }
}

const BACKUPS_VAR: &str = "DRPILOT_S3_BACKUPS";
const BACKUPS_HELP: &str = r#"a JSON array like [{"name": "assets", "source_bucket": "assets-prod", "dr_bucket": "assets-dr"}]; optional: prefix, kms_key_id, storage_class, retain_days (30), min_points (1), inventory ("s3://<inventory bucket>/<destination prefix/><source bucket>/<config id>/")"#;
const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
    "REDUCED_REDUNDANCY",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupEntry {
    name: String,
    source_bucket: String,
    #[serde(default)]
    prefix: String,
    dr_bucket: String,
    kms_key_id: Option<String>,
    storage_class: Option<String>,
    retain_days: Option<u32>,
    min_points: Option<u32>,
    #[serde(default, deserialize_with = "some_text")]
    account: Option<String>,
    #[serde(default, deserialize_with = "some_text")]
    inventory: Option<String>,
}

/// Parses `DRPILOT_S3_BACKUPS`; errors name the entry and the field.
pub fn backups(vars: &dyn Vars) -> Result<Vec<BackupSpec>> {
    let bad = |why: String| Error::config(BACKUPS_VAR, format!("{why}; expected {BACKUPS_HELP}"));
    let entries = json_entries::<BackupEntry>(vars, BACKUPS_VAR, BACKUPS_HELP)?;
    let members = accounts(vars)?;
    let mut out: Vec<BackupSpec> = Vec::new();
    for (i, e) in entries.into_iter().enumerate() {
        let name = e.name.trim().to_string();
        if name.is_empty() || name.len() > 100 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(bad(format!(
                "entry {i}: name {name:?} must be 1-100 letters, digits, - _ or ."
            )));
        }
        if out.iter().any(|b| b.name == name) {
            return Err(bad(format!("entry {i}: name {name:?} is used twice")));
        }
        for (field, b) in [("source_bucket", &e.source_bucket), ("dr_bucket", &e.dr_bucket)] {
            if !valid_bucket_name(b) {
                return Err(bad(format!(
                    "entry {i} ({name}): {field} {b:?} is not an S3 bucket name"
                )));
            }
        }
        if e.source_bucket == e.dr_bucket {
            return Err(bad(format!(
                "entry {i} ({name}): dr_bucket must differ from source_bucket"
            )));
        }
        // Retention deletes versions under a backup's prefix that its own points do not name:
        // two backups sharing a DR bucket must not share keys.
        if let Some(other) = out.iter().find(|b| {
            b.dr_bucket == e.dr_bucket && (b.prefix.starts_with(&e.prefix) || e.prefix.starts_with(&b.prefix))
        }) {
            return Err(bad(format!(
                "entry {i} ({name}): prefix {:?} in dr_bucket {} overlaps backup {}'s prefix {:?}; each backup needs keys of its own",
                e.prefix, e.dr_bucket, other.name, other.prefix
            )));
        }
        if let Some(class) = &e.storage_class {
            if !STORAGE_CLASSES.contains(&class.as_str()) {
                return Err(bad(format!(
                    "entry {i} ({name}): storage_class {class:?} is not one of {}",
                    STORAGE_CLASSES.join(", ")
                )));
            }
        }
        if let Some(key) = &e.kms_key_id {
            if key.trim().is_empty() {
                return Err(bad(format!("entry {i} ({name}): kms_key_id is empty")));
            }
        }
        let days = e.retain_days.unwrap_or(30);
        if !(1..=3650).contains(&days) {
            return Err(bad(format!(
                "entry {i} ({name}): retain_days {days} is outside 1..=3650"
            )));
        }
        let min_points = e.min_points.unwrap_or(1);
        if !(1..=10_000).contains(&min_points) {
            return Err(bad(format!(
                "entry {i} ({name}): min_points {min_points} is outside 1..=10000"
            )));
        }
        let account = member_account(BACKUPS_VAR, &format!("entry {i} ({name})"), e.account, &members)?;
        let inventory = match &e.inventory {
            None => None,
            Some(url) => Some(
                inventory_location(url, &e.source_bucket)
                    .map_err(|why| bad(format!("entry {i} ({name}): inventory {url:?} {why}")))?,
            ),
        };
        out.push(BackupSpec {
            account,
            inventory,
            name,
            source_bucket: e.source_bucket,
            prefix: e.prefix,
            dr_bucket: e.dr_bucket,
            kms_key_id: e.kms_key_id,
            storage_class: e.storage_class,
            retention: crate::plan::backup::BackupRetention { days, min_points },
        });
    }
    Ok(out)
}

/// An S3 Inventory report location: `s3://<bucket>/[<destination prefix>/]<source bucket>/<config
/// id>/`, where S3 puts each report's folder (AWS S3 User Guide, "Locating your inventory list").
fn inventory_location(url: &str, source_bucket: &str) -> std::result::Result<crate::model::InventoryLocation, String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or("is not an s3:// URL of the inventory configuration's reports")?;
    let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !valid_bucket_name(bucket) {
        return Err(format!("names {bucket:?}, which is not an S3 bucket name"));
    }
    let path = path.trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        [.., bucket_segment, id] if *bucket_segment == source_bucket && !id.is_empty() => {
            Ok(crate::model::InventoryLocation {
                bucket: bucket.to_string(),
                prefix: format!("{path}/"),
            })
        }
        _ => Err(format!(
            "must end with /{source_bucket}/<config id>/: S3 delivers a configuration's reports under the source bucket's name and the configuration's id"
        )),
    }
}

/// The S3 backup function's (and the restore command's) settings.
#[derive(Debug, Clone)]
pub struct BackupConfig {
    pub source_region: String,
    pub dr_region: String,
    pub backups: Vec<BackupSpec>,
    /// Copies in flight at once (per invocation).
    pub copy_concurrency: u32,
    /// Objects larger than this are copied in parts (`UploadPartCopy`); CopyObject takes up to 5 GiB.
    pub multipart_threshold_bytes: i64,
    /// Stop and save progress when less than this is left before the Lambda deadline.
    pub deadline_margin_seconds: u32,
    pub state: StateLocation,
    pub notify_topic_arn: String,
    pub s3_force_path_style: bool,
    /// Member accounts the buckets may be in.
    pub accounts: Vec<AccountSpec>,
}

impl BackupConfig {
    pub const SETTINGS: &'static [&'static str] = &[
        "DRPILOT_SOURCE_REGION",
        "DRPILOT_DR_REGION",
        "DRPILOT_S3_BACKUPS",
        "DRPILOT_S3_COPY_CONCURRENCY",
        "DRPILOT_S3_MULTIPART_THRESHOLD_MB",
        "DRPILOT_DEADLINE_MARGIN_SECONDS",
        "DRPILOT_STATE_BUCKET",
        "DRPILOT_STATE_PREFIX",
        "DRPILOT_NOTIFY_TOPIC_ARN",
        "DRPILOT_S3_FORCE_PATH_STYLE",
        "DRPILOT_ACCOUNTS",
    ];

    pub fn from_env() -> Result<Self> {
        Self::from_vars(&ProcessEnv)
    }

    pub fn from_vars(vars: &dyn Vars) -> Result<Self> {
        let (source_region, dr_region) = region_pair(vars)?;
        let backups = backups(vars)?;
        let state = state_location(vars)?;
        if let Some(b) = backups.iter().find(|b| b.dr_bucket == state.bucket) {
            return Err(Error::config(
                "DRPILOT_STATE_BUCKET",
                format!(
                    "{} is also backup {}'s dr_bucket; keep drpilot's state out of backed-up keys",
                    state.bucket, b.name
                ),
            ));
        }
        Ok(BackupConfig {
            source_region,
            dr_region,
            backups,
            copy_concurrency: bounded(vars, "DRPILOT_S3_COPY_CONCURRENCY", 32, 1..=512)?,
            // 5 MiB is S3's smallest part; 5 GiB is CopyObject's largest object.
            multipart_threshold_bytes: i64::from(bounded(vars, "DRPILOT_S3_MULTIPART_THRESHOLD_MB", 5120, 5..=5120)?)
                * 1024
                * 1024,
            deadline_margin_seconds: bounded(vars, "DRPILOT_DEADLINE_MARGIN_SECONDS", 60, 0..=600)?,
            state,
            notify_topic_arn: topic_arn(vars, "DRPILOT_NOTIFY_TOPIC_ARN")?,
            s3_force_path_style: parse_bool(vars, "DRPILOT_S3_FORCE_PATH_STYLE", false)?,
            accounts: accounts(vars)?,
        })
    }

    pub fn backup(&self, name: &str) -> Option<&BackupSpec> {
        self.backups.iter().find(|b| b.name == name)
    }
}

const VERIFY_VAR: &str = "DRPILOT_VERIFY_DATABASES";
const VERIFY_HELP: &str = r#"a JSON array like [{"db": "orders-db", "db_kind": "instance"}, {"db": "ledger", "db_kind": "cluster", "instance_class": "db.r6g.large"}]; instance_class defaults to the smallest the engine allows"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyEntry {
    #[serde(deserialize_with = "text")]
    db: String,
    db_kind: crate::model::DbKind,
    #[serde(default, deserialize_with = "some_text")]
    instance_class: Option<String>,
}

/// `DRPILOT_VERIFY_DATABASES`: the databases whose newest DR copy is restored to prove it.
pub fn verify_databases(vars: &dyn Vars) -> Result<Vec<VerifySpec>> {
    let bad = |why: String| Error::config(VERIFY_VAR, format!("{why}; expected {VERIFY_HELP}"));
    let mut out: Vec<VerifySpec> = Vec::new();
    for (i, e) in json_entries::<VerifyEntry>(vars, VERIFY_VAR, VERIFY_HELP)?
        .into_iter()
        .enumerate()
    {
        if !valid_db_identifier(&e.db) {
            return Err(bad(format!(
                "entry {i}: db {:?} is not an RDS identifier (letters, digits and hyphens, a letter first)",
                e.db
            )));
        }
        if let Some(class) = &e.instance_class {
            if !class.starts_with("db.") {
                return Err(bad(format!(
                    "entry {i}: instance_class {class:?} is not a DB instance class (db.*)"
                )));
            }
        }
        let db = ProtectedDb {
            kind: e.db_kind,
            id: e.db,
        };
        // (each database's verifications are kept by identifier)
        if out.iter().any(|v| v.db.id == db.id) {
            return Err(bad(format!("entry {i}: db {} is listed twice", db.id)));
        }
        out.push(VerifySpec {
            db,
            instance_class: e.instance_class,
        });
    }
    Ok(out)
}

fn valid_db_identifier(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.contains("--")
        && !id.ends_with('-')
}

const VERIFY_BACKUPS_VAR: &str = "DRPILOT_VERIFY_BACKUPS";

/// `DRPILOT_VERIFY_BACKUPS`: the S3 backups (names in `DRPILOT_S3_BACKUPS`) a sample of whose
/// newest point in time is restored to prove it; none when unset.
pub fn verify_backup_names(vars: &dyn Vars) -> Result<Vec<String>> {
    let Some(text) = optional(vars, VERIFY_BACKUPS_VAR) else {
        return Ok(vec![]);
    };
    let bad = |why: String| {
        Error::config(
            VERIFY_BACKUPS_VAR,
            format!("{why}; expected a JSON array of backup names from DRPILOT_S3_BACKUPS, like [\"media\"]"),
        )
    };
    let names: Vec<String> =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a JSON array of names ({e})")))?;
    let mut out: Vec<String> = vec![];
    for name in names {
        let name = name.trim().to_string();
        if name.is_empty() {
            return Err(bad("a name is empty".into()));
        }
        if out.contains(&name) {
            return Err(bad(format!("{name:?} is listed twice")));
        }
        out.push(name);
    }
    Ok(out)
}

/// The backups `DRPILOT_VERIFY_BACKUPS` names, as `DRPILOT_S3_BACKUPS` describes them.
fn verify_backups(vars: &dyn Vars) -> Result<Vec<BackupSpec>> {
    let names = verify_backup_names(vars)?;
    if names.is_empty() {
        return Ok(vec![]);
    }
    let all = backups(vars)?;
    let mut out = vec![];
    for name in names {
        let Some(spec) = all.iter().find(|b| b.name == name) else {
            let known: Vec<&str> = all.iter().map(|b| b.name.as_str()).collect();
            return Err(Error::config(
                VERIFY_BACKUPS_VAR,
                format!("{name:?} is not a backup of DRPILOT_S3_BACKUPS ({})", known.join(", ")),
            ));
        };
        if let Some(account) = &spec.account {
            return Err(Error::config(
                VERIFY_BACKUPS_VAR,
                format!(
                    "backup {name:?} is in member account {account}: restore tests of a member account's buckets are not supported; leave it out"
                ),
            ));
        }
        // an archived copy is read only after a retrieval (RestoreObject, hours): a restore
        // test of one would fail every week for that, not for the backup
        if let Some(class) = spec
            .storage_class
            .as_deref()
            .filter(|c| matches!(*c, "GLACIER" | "DEEP_ARCHIVE"))
        {
            return Err(Error::config(
                VERIFY_BACKUPS_VAR,
                format!("backup {name:?} keeps its copies in {class}, which S3 does not read without a retrieval; restore tests cannot read it"),
            ));
        }
        out.push(spec.clone());
    }
    Ok(out)
}

/// `DRPILOT_VERIFY_MAX_AGE_DAYS`: a database whose last verified restore is older than this
/// (or failed) puts the dashboard AT RISK. A weekly schedule and a day's grace by default.
pub fn verify_max_age_days(vars: &dyn Vars) -> Result<u32> {
    bounded(vars, "DRPILOT_VERIFY_MAX_AGE_DAYS", 8, 1..=400)
}

/// `DRPILOT_VERIFY_SUBNET_GROUP` and `DRPILOT_VERIFY_SECURITY_GROUPS`.
fn verify_network(vars: &dyn Vars) -> Result<(String, Vec<String>)> {
    let subnet_group = required(vars, "DRPILOT_VERIFY_SUBNET_GROUP")?;
    let security_groups = list(vars, "DRPILOT_VERIFY_SECURITY_GROUPS");
    if security_groups.is_empty() {
        return Err(Error::config(
                "DRPILOT_VERIFY_SECURITY_GROUPS",
                "is empty: name the security groups restores get (sg-..., comma-separated); without them a restore gets the VPC's default group",
            ));
    }
    if let Some(g) = security_groups.iter().find(|g| !g.starts_with("sg-")) {
        return Err(Error::config(
            "DRPILOT_VERIFY_SECURITY_GROUPS",
            format!("{g:?} is not a security group id (sg-...)"),
        ));
    }
    Ok((subnet_group, security_groups))
}

/// The restore verifier's settings.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    pub source_region: String,
    pub dr_region: String,
    pub databases: Vec<VerifySpec>,
    /// The S3 backups whose newest point in time a run restores a sample of.
    pub backups: Vec<BackupSpec>,
    pub sample: crate::model::SampleSize,
    /// Where restores go: a DB subnet group in the DR region and security groups that admit
    /// nothing but the verifier's checks.
    pub subnet_group: String,
    pub security_groups: Vec<String>,
    pub max_age_days: u32,
    /// A restore not available this long after it was asked for has failed; a restore test of
    /// a run that began longer ago than this is a leftover the sweeper deletes.
    pub timeout_seconds: u32,
    pub poll_seconds: u32,
    pub deadline_margin_seconds: u32,
    pub namespace: String,
    pub state: StateLocation,
    pub notify_topic_arn: String,
    /// Whose restore tests these are (`drpilot:deployment`): only they are swept.
    pub deployment: String,
    pub s3_force_path_style: bool,
}

impl VerifierConfig {
    pub const SETTINGS: &'static [&'static str] = &[
        "DRPILOT_SOURCE_REGION",
        "DRPILOT_DR_REGION",
        "DRPILOT_VERIFY_DATABASES",
        "DRPILOT_VERIFY_BACKUPS",
        "DRPILOT_S3_BACKUPS",
        "DRPILOT_VERIFY_S3_SAMPLE",
        "DRPILOT_VERIFY_S3_MAX_OBJECT_MB",
        "DRPILOT_VERIFY_SUBNET_GROUP",
        "DRPILOT_VERIFY_SECURITY_GROUPS",
        "DRPILOT_VERIFY_MAX_AGE_DAYS",
        "DRPILOT_VERIFY_TIMEOUT_SECONDS",
        "DRPILOT_POLL_SECONDS",
        "DRPILOT_DEADLINE_MARGIN_SECONDS",
        "DRPILOT_METRIC_NAMESPACE",
        "DRPILOT_STATE_BUCKET",
        "DRPILOT_STATE_PREFIX",
        "DRPILOT_NOTIFY_TOPIC_ARN",
        "DRPILOT_DEPLOYMENT",
        "DRPILOT_S3_FORCE_PATH_STYLE",
    ];

    pub fn from_env() -> Result<Self> {
        Self::from_vars(&ProcessEnv)
    }

    pub fn from_vars(vars: &dyn Vars) -> Result<Self> {
        let (source_region, dr_region) = region_pair(vars)?;
        let backups = verify_backups(vars)?;
        let databases = match optional(vars, VERIFY_VAR) {
            None if !backups.is_empty() => vec![],
            _ => verify_databases(vars)?,
        };
        // where restored databases go (S3 restore tests need neither)
        let (subnet_group, security_groups) = match databases.is_empty() {
            true => (String::new(), vec![]),
            false => verify_network(vars)?,
        };
        Ok(VerifierConfig {
            source_region,
            dr_region,
            databases,
            backups,
            sample: crate::model::SampleSize {
                objects: bounded(vars, "DRPILOT_VERIFY_S3_SAMPLE", 20, 1..=1000)?,
                max_object_bytes: i64::from(bounded(vars, "DRPILOT_VERIFY_S3_MAX_OBJECT_MB", 128, 1..=5120)?)
                    * 1024
                    * 1024,
            },
            subnet_group,
            security_groups,
            max_age_days: verify_max_age_days(vars)?,
            timeout_seconds: bounded(vars, "DRPILOT_VERIFY_TIMEOUT_SECONDS", 3 * 3600, 1..=86_400)?,
            poll_seconds: bounded(vars, "DRPILOT_POLL_SECONDS", 30, 1..=300)?,
            deadline_margin_seconds: bounded(vars, "DRPILOT_DEADLINE_MARGIN_SECONDS", 30, 0..=600)?,
            namespace: metric_namespace(vars)?,
            state: state_location(vars)?,
            notify_topic_arn: topic_arn(vars, "DRPILOT_NOTIFY_TOPIC_ARN")?,
            deployment: deployment(vars)?,
            s3_force_path_style: parse_bool(vars, "DRPILOT_S3_FORCE_PATH_STYLE", false)?,
        })
    }

    pub fn database(&self, id: &str) -> Option<&VerifySpec> {
        self.databases.iter().find(|v| v.db.id == id)
    }

    pub fn backup(&self, name: &str) -> Option<&BackupSpec> {
        self.backups.iter().find(|b| b.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("DRPILOT_SOURCE_REGION", "us-east-1"),
            ("DRPILOT_DR_REGION", "us-west-2"),
            ("DRPILOT_SELECT_TAG", "drpilot:copy=true"),
            ("DRPILOT_NOTIFY_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:drpilot"),
        ])
    }

    fn err_var(vars: HashMap<&str, &str>) -> &'static str {
        match CopierConfig::from_vars(&vars) {
            Err(Error::Config { var, .. }) => var,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn the_backup_account_needs_its_own_key_in_the_dr_region() {
        let with = |vault: &'static str| {
            let mut v = base();
            v.insert("DRPILOT_VAULT", vault);
            v
        };
        let ok = r#"[{"id": "222222222222", "role_arn": "arn:aws:iam::222222222222:role/drpilot-vault-copier", "dr_kms_key_id": "arn:aws:kms:us-west-2:222222222222:key/k"}]"#;
        let vault = CopierConfig::from_vars(&with(ok)).unwrap().vault.unwrap();
        assert_eq!(vault.id, "222222222222");
        assert_eq!(CopierConfig::from_vars(&base()).unwrap().vault, None);
        for bad in [
            // no key of its own
            r#"[{"id": "222222222222", "role_arn": "arn:aws:iam::222222222222:role/r"}]"#,
            // its key in another region, or another account
            r#"[{"id": "222222222222", "role_arn": "arn:aws:iam::222222222222:role/r", "dr_kms_key_id": "arn:aws:kms:us-east-1:222222222222:key/k"}]"#,
            r#"[{"id": "222222222222", "role_arn": "arn:aws:iam::222222222222:role/r", "dr_kms_key_id": "arn:aws:kms:us-west-2:123456789012:key/k"}]"#,
            // its role in another account; two accounts
            r#"[{"id": "222222222222", "role_arn": "arn:aws:iam::123456789012:role/r", "dr_kms_key_id": "arn:aws:kms:us-west-2:222222222222:key/k"}]"#,
            r#"[{"id": "222222222222", "role_arn": "arn:aws:iam::222222222222:role/r", "dr_kms_key_id": "arn:aws:kms:us-west-2:222222222222:key/k"}, {"id": "333333333333", "role_arn": "arn:aws:iam::333333333333:role/r", "dr_kms_key_id": "arn:aws:kms:us-west-2:333333333333:key/k"}]"#,
        ] {
            assert_eq!(err_var(with(bad)), "DRPILOT_VAULT", "{bad}");
        }
    }

    #[test]
    fn the_verifiers_settings_are_checked_at_cold_start() {
        let base = || -> HashMap<&'static str, &'static str> {
            HashMap::from([
                ("DRPILOT_SOURCE_REGION", "us-east-1"),
                ("DRPILOT_DR_REGION", "us-west-2"),
                (
                    "DRPILOT_VERIFY_DATABASES",
                    r#"[{"db": "orders", "db_kind": "instance"}, {"db": "ledger", "db_kind": "cluster", "instance_class": "db.r6g.large"}]"#,
                ),
                ("DRPILOT_VERIFY_SUBNET_GROUP", "drpilot-restore-tests"),
                ("DRPILOT_VERIFY_SECURITY_GROUPS", "sg-0123"),
                ("DRPILOT_STATE_BUCKET", "drpilot-state"),
                ("DRPILOT_NOTIFY_TOPIC_ARN", "arn:aws:sns:us-west-2:123456789012:drpilot"),
            ])
        };
        let cfg = VerifierConfig::from_vars(&base()).unwrap();
        assert_eq!(
            (cfg.databases.len(), cfg.timeout_seconds, cfg.max_age_days),
            (2, 3 * 3600, 8)
        );
        assert_eq!(
            cfg.database("ledger").unwrap().instance_class.as_deref(),
            Some("db.r6g.large")
        );
        for (var, value, named) in [
            ("DRPILOT_VERIFY_SECURITY_GROUPS", "", "DRPILOT_VERIFY_SECURITY_GROUPS"),
            (
                "DRPILOT_VERIFY_SECURITY_GROUPS",
                "default",
                "DRPILOT_VERIFY_SECURITY_GROUPS",
            ),
            ("DRPILOT_VERIFY_SUBNET_GROUP", "", "DRPILOT_VERIFY_SUBNET_GROUP"),
            (
                "DRPILOT_VERIFY_DATABASES",
                r#"[{"db": "a", "db_kind": "instance"}, {"db": "a", "db_kind": "cluster"}]"#,
                "DRPILOT_VERIFY_DATABASES",
            ),
            (
                "DRPILOT_VERIFY_DATABASES",
                r#"[{"db": "a", "db_kind": "instance", "instance_class": "t3.micro"}]"#,
                "DRPILOT_VERIFY_DATABASES",
            ),
            (
                "DRPILOT_VERIFY_DATABASES",
                r#"[{"db": "a--b", "db_kind": "instance"}]"#,
                "DRPILOT_VERIFY_DATABASES",
            ),
            ("DRPILOT_VERIFY_TIMEOUT_SECONDS", "0", "DRPILOT_VERIFY_TIMEOUT_SECONDS"),
            ("DRPILOT_VERIFY_MAX_AGE_DAYS", "soon", "DRPILOT_VERIFY_MAX_AGE_DAYS"),
            ("DRPILOT_VERIFY_BACKUPS", r#"["photos"]"#, "DRPILOT_VERIFY_BACKUPS"),
            (
                "DRPILOT_VERIFY_BACKUPS",
                r#"["media", "media"]"#,
                "DRPILOT_VERIFY_BACKUPS",
            ),
            ("DRPILOT_VERIFY_BACKUPS", "media", "DRPILOT_VERIFY_BACKUPS"),
            ("DRPILOT_VERIFY_BACKUPS", r#"["ledgers"]"#, "DRPILOT_VERIFY_BACKUPS"),
            ("DRPILOT_VERIFY_BACKUPS", r#"["archive"]"#, "DRPILOT_VERIFY_BACKUPS"),
            ("DRPILOT_VERIFY_S3_SAMPLE", "0", "DRPILOT_VERIFY_S3_SAMPLE"),
            (
                "DRPILOT_VERIFY_S3_MAX_OBJECT_MB",
                "10000",
                "DRPILOT_VERIFY_S3_MAX_OBJECT_MB",
            ),
        ] {
            let mut v = base();
            v.insert("DRPILOT_S3_BACKUPS", BACKUPS);
            v.insert(
                "DRPILOT_ACCOUNTS",
                r#"[{"id": "111111111111", "role_arn": "arn:aws:iam::111111111111:role/drpilot-member"}]"#,
            );
            v.insert(var, value);
            match VerifierConfig::from_vars(&v) {
                Err(Error::Config { var, .. }) => assert_eq!(var, named, "{value}"),
                other => panic!("{var}={value}: expected a config error, got {other:?}"),
            }
        }
        // S3 backups alone need no database
        let mut v = base();
        v.remove("DRPILOT_VERIFY_DATABASES");
        v.remove("DRPILOT_VERIFY_SUBNET_GROUP");
        v.insert("DRPILOT_S3_BACKUPS", BACKUPS);
        v.insert(
            "DRPILOT_ACCOUNTS",
            r#"[{"id": "111111111111", "role_arn": "arn:aws:iam::111111111111:role/drpilot-member"}]"#,
        );
        v.insert("DRPILOT_VERIFY_BACKUPS", r#"["media"]"#);
        let cfg = VerifierConfig::from_vars(&v).unwrap();
        assert!(cfg.databases.is_empty());
        assert_eq!(cfg.backup("media").unwrap().dr_bucket, "media-dr");
        assert_eq!((cfg.sample.objects, cfg.sample.max_object_bytes), (20, 128 << 20));
        v.remove("DRPILOT_VERIFY_BACKUPS");
        assert!(VerifierConfig::from_vars(&v).is_err(), "nothing to verify");
    }

    const BACKUPS: &str = r#"[{"name": "media", "source_bucket": "media-src", "dr_bucket": "media-dr"},
        {"name": "ledgers", "source_bucket": "ledgers-src", "dr_bucket": "ledgers-dr", "account": "111111111111"},
        {"name": "archive", "source_bucket": "archive-src", "dr_bucket": "archive-dr", "storage_class": "DEEP_ARCHIVE"}]"#;

    #[test]
    fn member_accounts_are_checked_at_cold_start_and_named_in_the_error() {
        let with = |accounts: &'static str| {
            let mut v = base();
            v.insert("DRPILOT_ACCOUNTS", accounts);
            CopierConfig::from_vars(&v)
        };
        let ok = with(
            r#"[{"id": "111111111111", "role_arn": "arn:aws:iam::111111111111:role/ops/drpilot-member", "external_id": "drpilot-1",
                 "dr_kms_key_id": "arn:aws:kms:us-west-2:111111111111:key/abc"}]"#,
        )
        .unwrap();
        assert_eq!(ok.accounts[0].external_id.as_deref(), Some("drpilot-1"));
        for (bad, why) in [
            (
                r#"[{"id": "1111", "role_arn": "arn:aws:iam::1111:role/x"}]"#,
                "12-digit",
            ),
            (
                r#"[{"id": "111111111111", "role_arn": "arn:aws:iam::222222222222:role/x"}]"#,
                "in account 222222222222",
            ),
            (
                r#"[{"id": "111111111111", "role_arn": "arn:aws:iam::111111111111:user/x"}]"#,
                "not an IAM role ARN",
            ),
            (
                r#"[{"id": "111111111111", "role_arn": "arn:aws:iam::111111111111:role/x", "external_id": "a b"}]"#,
                "external_id",
            ),
            (
                r#"[{"id": "111111111111", "role_arn": "arn:aws:iam::111111111111:role/x", "region": "x"}]"#,
                "unknown field",
            ),
            (
                r#"[{"id": "111111111111", "role_arn": "arn:aws:iam::111111111111:role/x"},
                 {"id": "111111111111", "role_arn": "arn:aws:iam::111111111111:role/y"}]"#,
                "listed twice",
            ),
            (
                r#"[{"id": "111111111111", "role_arn": "arn:aws:iam::111111111111:role/x",
                  "dr_kms_key_id": "arn:aws:kms:us-west-2:123456789012:key/abc"}]"#,
                "in account 111111111111",
            ),
            (
                r#"[{"id": "111111111111", "role_arn": "arn:aws:iam::111111111111:role/x",
                  "dr_kms_key_id": "arn:aws:kms:us-east-1:111111111111:key/abc"}]"#,
                "DR region us-west-2",
            ),
        ] {
            match with(bad) {
                Err(Error::Config { var, reason }) => {
                    assert_eq!(var, "DRPILOT_ACCOUNTS");
                    assert!(reason.contains(why), "{why}: {reason}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        // an entry's account must be a listed member
        let resources = HashMap::from([
            (
                "DRPILOT_RESOURCES",
                r#"[{"name": "a", "kind": "rds-replica", "replica": "r", "rpo_seconds": 60, "account": "999999999999"}]"#,
            ),
            (
                "DRPILOT_ACCOUNTS",
                r#"[{"id": "111111111111", "role_arn": "arn:aws:iam::111111111111:role/x"}]"#,
            ),
        ]);
        match super::resources(&resources) {
            Err(Error::Config { var, reason }) => {
                assert_eq!(var, "DRPILOT_RESOURCES");
                assert!(
                    reason.contains("account 999999999999 is not in DRPILOT_ACCOUNTS"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_deployment_name_defaults_to_drpilot_and_is_checked() {
        assert_eq!(CopierConfig::from_vars(&base()).unwrap().deployment, "drpilot");
        for bad in ["Payments", "1dr", "a b", "x".repeat(41).leak()] {
            let mut v = base();
            v.insert("DRPILOT_DEPLOYMENT", bad);
            assert_eq!(err_var(v), "DRPILOT_DEPLOYMENT", "{bad}");
        }
    }

    #[test]
    fn minimal_settings_get_safe_defaults() {
        let c = CopierConfig::from_vars(&base()).unwrap();
        assert_eq!(c.max_copies_in_flight, 20);
        assert_eq!(
            c.retention,
            Retention {
                keep_last: Some(7),
                max_age_days: None
            }
        );
        assert_eq!(c.selection.tag, Some(("drpilot:copy".into(), Some("true".into()))));
        assert!(c.copy_source_tags);
    }

    #[test]
    fn every_bad_setting_names_its_variable() {
        let cases: Vec<(&str, Option<&str>, &str)> = vec![
            ("DRPILOT_SOURCE_REGION", None, "DRPILOT_SOURCE_REGION"),
            ("DRPILOT_SOURCE_REGION", Some("Virginia"), "DRPILOT_SOURCE_REGION"),
            ("DRPILOT_DR_REGION", Some("us-east-1"), "DRPILOT_DR_REGION"),
            ("DRPILOT_DR_REGION", Some("us-west"), "DRPILOT_DR_REGION"),
            ("DRPILOT_NOTIFY_TOPIC_ARN", None, "DRPILOT_NOTIFY_TOPIC_ARN"),
            (
                "DRPILOT_NOTIFY_TOPIC_ARN",
                Some("drpilot-topic"),
                "DRPILOT_NOTIFY_TOPIC_ARN",
            ),
            (
                "DRPILOT_MAX_COPIES_IN_FLIGHT",
                Some("21"),
                "DRPILOT_MAX_COPIES_IN_FLIGHT",
            ),
            (
                "DRPILOT_MAX_COPIES_IN_FLIGHT",
                Some("0"),
                "DRPILOT_MAX_COPIES_IN_FLIGHT",
            ),
            (
                "DRPILOT_MAX_COPIES_IN_FLIGHT",
                Some("many"),
                "DRPILOT_MAX_COPIES_IN_FLIGHT",
            ),
            ("DRPILOT_RETAIN_COUNT", Some("0"), "DRPILOT_RETAIN_COUNT"),
            ("DRPILOT_RETAIN_DAYS", Some("-3"), "DRPILOT_RETAIN_DAYS"),
            ("DRPILOT_COPY_SOURCE_TAGS", Some("maybe"), "DRPILOT_COPY_SOURCE_TAGS"),
            (
                "DRPILOT_DR_KMS_KEY_ID",
                Some("arn:aws:kms:us-east-1:123456789012:key/abc"),
                "DRPILOT_DR_KMS_KEY_ID",
            ),
            ("DRPILOT_SELECT_TAG", Some("=x"), "DRPILOT_SELECT_TAG"),
        ];
        for (var, value, expected) in cases {
            let mut vars = base();
            match value {
                Some(v) => vars.insert(var, v),
                None => vars.remove(var),
            };
            assert_eq!(err_var(vars), expected, "{var}={value:?}");
        }
    }

    #[test]
    fn nothing_selected_is_an_error() {
        let mut vars = base();
        vars.remove("DRPILOT_SELECT_TAG");
        assert_eq!(err_var(vars), "DRPILOT_DB_INSTANCES");
    }

    /// Records every variable a config asks for.
    struct Recording<'a>(
        &'a HashMap<&'static str, &'static str>,
        std::cell::RefCell<std::collections::BTreeSet<String>>,
    );

    impl Vars for Recording<'_> {
        fn var(&self, name: &str) -> Option<String> {
            self.1.borrow_mut().insert(name.to_string());
            self.0.var(name)
        }
    }

    fn read_by(vars: &HashMap<&'static str, &'static str>, parse: impl Fn(&dyn Vars) -> bool) -> Vec<String> {
        let rec = Recording(vars, Default::default());
        assert!(parse(&rec), "the settings used for this test must be valid");
        rec.1.into_inner().into_iter().collect()
    }

    fn sorted(list: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn each_settings_list_is_exactly_what_its_config_reads() {
        let mut copier = base();
        copier.insert("DRPILOT_DB_INSTANCES", "a");
        copier.insert("DRPILOT_STATE_BUCKET", "drpilot-state");
        assert_eq!(
            read_by(&copier, |v| CopierConfig::from_vars(v).is_ok()),
            sorted(CopierConfig::SETTINGS)
        );
        let mut lag = lag_base();
        lag.insert("DRPILOT_STATUS_PAGE", "true");
        lag.insert("DRPILOT_DATABASES", ONE_DATABASE);
        assert_eq!(
            read_by(&lag, |v| LagConfig::from_vars(v).is_ok()),
            sorted(LagConfig::SETTINGS)
        );
        assert_eq!(
            read_by(&backup_base(), |v| BackupConfig::from_vars(v).is_ok()),
            sorted(BackupConfig::SETTINGS)
        );
        let mut promoter = base();
        promoter.insert("DRPILOT_STATE_BUCKET", "drpilot-state-dr");
        promoter.insert(
            "DRPILOT_DATABASES",
            r#"[{"name": "orders", "kind": "rds-replica", "primary": "p", "replica": "r", "alarms": ["a"], "max_data_loss_seconds": 60, "dns": {"zone_id": "Z1", "record_name": "db.example.com"}}]"#,
        );
        let mut expected: Vec<&str> = PromoterConfig::SETTINGS.to_vec();
        expected.extend(PromoterConfig::RUNTIME_SETTINGS);
        assert_eq!(
            read_by(&promoter, |v| PromoterConfig::from_vars(v).is_ok()),
            sorted(&expected)
        );
    }

    #[test]
    fn an_automation_topic_must_be_where_the_promoter_publishes() {
        let with_topic = |topic: &str| {
            let text = format!(
                r#"[{{"name": "orders", "kind": "rds-replica", "primary": "p", "replica": "r", "alarms": ["a"], "max_data_loss_seconds": 60, "dns": {{"zone_id": "Z1", "record_name": "db.example.com"}}, "recovery_plan": {{"automation_topic_arn": "{topic}"}}}}]"#
            );
            let mut v = base();
            v.insert("DRPILOT_DATABASES", Box::leak(text.into_boxed_str()));
            v.insert("DRPILOT_STATE_BUCKET", "drpilot-state");
            PromoterConfig::from_vars(&v)
        };
        let ok = with_topic("arn:aws:sns:us-east-1:123456789012:orders-automation").unwrap();
        let plan = ok.databases[0].recovery.clone().unwrap();
        assert_eq!(
            (plan.capacity.len(), plan.automation_topic.as_deref()),
            (0, Some("arn:aws:sns:us-east-1:123456789012:orders-automation")),
            "a plan may be only the event at the end"
        );
        let err = with_topic("arn:aws:sns:eu-west-1:123456789012:orders-automation")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("DRPILOT_DATABASES")
                && err.contains("must be in us-east-1, the region of DRPILOT_NOTIFY_TOPIC_ARN"),
            "{err}"
        );
    }

    #[test]
    fn a_recovery_plan_is_checked_at_cold_start_and_its_sizes_default_to_desired() {
        let with_plan = |plan: &str, account: &str| {
            let text = format!(
                r#"[{{"name": "orders", "kind": "rds-replica", "primary": "p", "replica": "r", "alarms": ["a"], "max_data_loss_seconds": 60, "dns": {{"zone_id": "Z1", "record_name": "db.example.com"}}, "recovery_plan": {plan}{account}}}]"#
            );
            let mut v = base();
            v.insert("DRPILOT_DATABASES", Box::leak(text.into_boxed_str()));
            v.insert(
                "DRPILOT_ACCOUNTS",
                r#"[{"id": "210987654321", "role_arn": "arn:aws:iam::210987654321:role/drpilot-failover-promoter"}]"#,
            );
            databases(&v).map(|d| d[0].recovery.clone())
        };
        let plan = with_plan(
            r#"{"capacity": [{"auto_scaling_group": "web", "desired": 10}, {"auto_scaling_group": "api", "desired": 4, "min": 2, "max": 8}, {"ecs_service": "api", "cluster": "apps", "desired": 6, "auto_scaling_group": null}], "strict": true}"#,
            "",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            plan,
            RecoveryPlan {
                capacity: vec![
                    CapacityGroup {
                        kind: CapacityKind::AutoScalingGroup,
                        name: "web".into(),
                        size: GroupSize {
                            min: 10,
                            desired: 10,
                            max: 10
                        }
                    },
                    CapacityGroup {
                        kind: CapacityKind::AutoScalingGroup,
                        name: "api".into(),
                        size: GroupSize {
                            min: 2,
                            desired: 4,
                            max: 8
                        }
                    },
                    CapacityGroup {
                        kind: CapacityKind::EcsService { cluster: "apps".into() },
                        name: "api".into(),
                        size: GroupSize {
                            min: 6,
                            desired: 6,
                            max: 6
                        }
                    },
                ],
                wait_seconds: 600,
                strict: true,
                automation_topic: None,
            }
        );
        // Terraform writes the optional fields it was not given as null
        let nulls = with_plan(
            r#"{"capacity": [{"auto_scaling_group": "web", "desired": 3, "min": null, "max": null}], "wait_seconds": null, "strict": null}"#,
            "",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (nulls.wait_seconds, nulls.strict, nulls.capacity[0].size.max),
            (600, false, 3)
        );
        for (plan, account, expected) in [
            (
                r#"{"capacity": []}"#,
                "",
                "needs at least one Auto Scaling group or ECS service in capacity, or an automation_topic_arn",
            ),
            (
                r#"{"automation_topic_arn": "arn:aws:sqs:us-west-2:123456789012:q"}"#,
                "",
                "is not an SNS topic ARN",
            ),
            (
                r#"{"automation_topic_arn": "arn:aws:sns:us-west-2::q"}"#,
                "",
                "is not an SNS topic ARN",
            ),
            (
                r#"{"automation_topic_arn": "arn:aws:sns:us-west-2:123456789012:events.fifo"}"#,
                "",
                "is a FIFO topic",
            ),
            (
                r#"{"capacity": [{"ecs_service": "api", "desired": 6}]}"#,
                "",
                "ECS service api: needs its cluster",
            ),
            (
                r#"{"capacity": [{"ecs_service": "api", "cluster": "arn:aws:ecs:us-west-2:123456789012:cluster/apps", "desired": 6}]}"#,
                "",
                "give both by name",
            ),
            (
                r#"{"capacity": [{"ecs_service": "api", "cluster": "apps", "desired": 6, "max": 12}]}"#,
                "",
                "ECS service api: takes desired only",
            ),
            (
                r#"{"capacity": [{"ecs_service": "api", "cluster": "apps", "auto_scaling_group": "web", "desired": 6}]}"#,
                "",
                "capacity[0]: needs auto_scaling_group, or ecs_service with cluster (one of them)",
            ),
            (
                r#"{"capacity": [{"auto_scaling_group": "web", "cluster": "apps", "desired": 6}]}"#,
                "",
                "capacity[0]: needs auto_scaling_group, or ecs_service with cluster",
            ),
            (
                r#"{"capacity": [{"auto_scaling_group": "web", "desired": 10, "max": 5}]}"#,
                "",
                "min <= desired <= max",
            ),
            (
                r#"{"capacity": [{"auto_scaling_group": "web", "desired": 0}]}"#,
                "",
                "0 < desired",
            ),
            (
                r#"{"capacity": [{"auto_scaling_group": "web", "desired": 2}, {"auto_scaling_group": "web", "desired": 3}]}"#,
                "",
                "lists Auto Scaling group web twice",
            ),
            (
                r#"{"capacity": [{"auto_scaling_group": "web", "desired": 2}], "wait_seconds": 0}"#,
                "",
                "wait_seconds must be above 0",
            ),
            (
                r#"{"capacity": [{"auto_scaling_group": "web", "desired": 2}], "ecs": []}"#,
                "",
                "unknown field `ecs`",
            ),
            (
                r#"{"capacity": [{"auto_scaling_group": "web", "desired": 2}]}"#,
                r#", "account": "210987654321""#,
                "in member account 210987654321",
            ),
        ] {
            let err = with_plan(plan, account).unwrap_err().to_string();
            assert!(
                err.contains("DRPILOT_DATABASES") && err.contains(expected),
                "{plan}: {err}"
            );
        }
    }

    #[test]
    fn a_database_switches_dns_by_upsert_or_by_failover_records_and_says_what_is_missing() {
        let with_dns = |dns: &str| {
            let text = format!(
                r#"[{{"name": "orders", "kind": "rds-replica", "primary": "p", "replica": "r", "alarms": ["a"], "max_data_loss_seconds": 60, "dns": {dns}}}]"#
            );
            let mut v = base();
            v.insert("DRPILOT_DATABASES", Box::leak(text.into_boxed_str()));
            databases(&v).map(|d| d[0].dns.switch.clone())
        };
        assert_eq!(
            with_dns(r#"{"zone_id": "Z1", "record_name": "db.example.com"}"#).unwrap(),
            DnsSwitch::Upsert
        );
        assert_eq!(
            with_dns(r#"{"zone_id": "Z1", "record_name": "db.example.com", "mode": "failover-records", "alarm": "drpilot-orders-failed-over"}"#)
                .unwrap(),
            DnsSwitch::FailoverRecords {
                alarm: "drpilot-orders-failed-over".into()
            }
        );
        for (dns, expected) in [
            (
                r#"{"zone_id": "Z1", "record_name": "db.example.com", "mode": "failover-records"}"#,
                "needs dns.alarm",
            ),
            (
                r#"{"zone_id": "Z1", "record_name": "db.example.com", "mode": "weighted"}"#,
                "entry [0].dns.mode: unknown variant `weighted`",
            ),
            (
                r#"{"zone_id": "Z1", "record_name": "db.example.com", "alarm_name": "x"}"#,
                "entry [0].dns.alarm_name: unknown field `alarm_name`",
            ),
            (
                r#"{"zone_id": "Z1", "record_name": "db.example.com", "alarm": "x"}"#,
                "dns.alarm is only for dns.mode failover-records",
            ),
        ] {
            let err = with_dns(dns).unwrap_err().to_string();
            assert!(
                err.contains("DRPILOT_DATABASES") && err.contains(expected),
                "{dns}: {err}"
            );
        }
    }

    fn backup_base() -> HashMap<&'static str, &'static str> {
        let mut v = base();
        v.insert("DRPILOT_STATE_BUCKET", "drpilot-state-dr");
        v.insert(
            "DRPILOT_S3_BACKUPS",
            r#"[{"name": "assets", "source_bucket": "assets-prod", "dr_bucket": "assets-dr", "kms_key_id": "alias/dr", "storage_class": "STANDARD_IA", "retain_days": 7},
                {"name": "logs", "source_bucket": "logs-prod", "prefix": "2026/", "dr_bucket": "logs-dr", "inventory": "s3://inventory-use1/inventory/logs-prod/daily"}]"#,
        );
        v
    }

    #[test]
    fn backup_settings_parse_with_defaults() {
        let c = BackupConfig::from_vars(&backup_base()).unwrap();
        assert_eq!(c.backups.len(), 2);
        assert_eq!(c.backups[0].kms_key_id.as_deref(), Some("alias/dr"));
        assert_eq!(c.backups[0].retention.days, 7);
        assert_eq!(c.backups[1].prefix, "2026/");
        assert_eq!(c.backups[1].retention.days, 30);
        assert_eq!(c.backups[1].retention.min_points, 1);
        assert_eq!(c.backups[0].inventory, None);
        assert_eq!(
            c.backups[1].inventory,
            Some(crate::model::InventoryLocation {
                bucket: "inventory-use1".into(),
                prefix: "inventory/logs-prod/daily/".into()
            })
        );
        assert_eq!(c.copy_concurrency, 32);
        assert_eq!(c.multipart_threshold_bytes, 5 * 1024 * 1024 * 1024);
        assert_eq!(c.deadline_margin_seconds, 60);
    }

    #[test]
    fn bad_backup_settings_name_the_variable_and_the_entry() {
        for (backups, expected) in [
            (r#"{"name": "a"}"#, "not a JSON array"),
            (
                r#"[{"name": "a", "source_bucket": "s-prod", "dr_bucket": "s-dr"}],[{"name": "b", "source_bucket": "t-prod", "dr_bucket": "t-dr"}]"#,
                "not one JSON array",
            ),
            ("[]", "is empty"),
            (
                r#"[{"name": "a", "source_bucket": "s-prod", "dr_bucket": "s-dr", "colour": "red"}]"#,
                "unknown field `colour`",
            ),
            (
                r#"[{"name": "a", "source_bucket": "s-prod"}]"#,
                "missing field `dr_bucket`",
            ),
            (
                r#"[{"name": "a b", "source_bucket": "s-prod", "dr_bucket": "s-dr"}]"#,
                "name \"a b\"",
            ),
            (
                r#"[{"name": "a", "source_bucket": "S_Prod", "dr_bucket": "s-dr"}]"#,
                "source_bucket \"S_Prod\"",
            ),
            (
                r#"[{"name": "a", "source_bucket": "s-prod", "dr_bucket": "s-prod"}]"#,
                "must differ",
            ),
            (
                r#"[{"name": "a", "source_bucket": "s-prod", "dr_bucket": "s-dr", "storage_class": "COLD"}]"#,
                "storage_class \"COLD\"",
            ),
            (
                r#"[{"name": "a", "source_bucket": "s-prod", "dr_bucket": "s-dr", "retain_days": 0}]"#,
                "retain_days 0",
            ),
            (
                r#"[{"name": "a", "source_bucket": "s-prod", "dr_bucket": "s-dr", "inventory": "inv/s-prod/daily/"}]"#,
                "inventory \"inv/s-prod/daily/\" is not an s3:// URL",
            ),
            (
                r#"[{"name": "a", "source_bucket": "s-prod", "dr_bucket": "s-dr", "inventory": "s3://Inv_Bucket/s-prod/daily/"}]"#,
                "names \"Inv_Bucket\"",
            ),
            (
                r#"[{"name": "a", "source_bucket": "s-prod", "dr_bucket": "s-dr", "inventory": "s3://inv/other-prod/daily/"}]"#,
                "must end with /s-prod/<config id>/",
            ),
            (
                r#"[{"name": "a", "source_bucket": "s-prod", "dr_bucket": "s-dr", "inventory": "s3://inv/s-prod/"}]"#,
                "must end with /s-prod/<config id>/",
            ),
            (
                r#"[{"name": "a", "source_bucket": "s-prod", "dr_bucket": "s-dr"}, {"name": "a", "source_bucket": "t-prod", "dr_bucket": "t-dr"}]"#,
                "used twice",
            ),
            (
                r#"[{"name": "a", "source_bucket": "s-prod", "dr_bucket": "x-dr"}, {"name": "b", "source_bucket": "t-prod", "prefix": "logs/", "dr_bucket": "x-dr"}]"#,
                "overlaps backup a's prefix",
            ),
        ] {
            let mut v = backup_base();
            v.insert("DRPILOT_S3_BACKUPS", backups);
            let err = BackupConfig::from_vars(&v).unwrap_err().to_string();
            assert!(
                err.contains("DRPILOT_S3_BACKUPS") && err.contains(expected),
                "{backups}: {err}"
            );
        }
        let mut v = backup_base();
        v.insert(
            "DRPILOT_S3_BACKUPS",
            r#"[{"name": "a", "source_bucket": "s-prod", "dr_bucket": "drpilot-state-dr"}]"#,
        );
        let err = BackupConfig::from_vars(&v).unwrap_err().to_string();
        assert!(
            err.contains("DRPILOT_STATE_BUCKET") && err.contains("is also backup a's dr_bucket"),
            "{err}"
        );
        for (name, value, expected) in [
            ("DRPILOT_S3_COPY_CONCURRENCY", "0", "outside 1..=512"),
            ("DRPILOT_S3_MULTIPART_THRESHOLD_MB", "6000", "outside 5..=5120"),
            ("DRPILOT_DEADLINE_MARGIN_SECONDS", "soon", "not a whole number"),
        ] {
            let mut v = backup_base();
            v.insert(name, value);
            let err = BackupConfig::from_vars(&v).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(expected), "{name}: {err}");
        }
    }

    const ONE_DATABASE: &str = r#"[{"name": "orders", "kind": "rds-replica", "primary": "p", "replica": "r", "alarms": ["a"], "max_data_loss_seconds": 60, "dns": {"zone_id": "Z1", "record_name": "db.example.com"}}]"#;

    #[test]
    fn the_lag_checker_reads_what_its_status_page_shows_only_when_it_publishes_one() {
        let off = LagConfig::from_vars(&lag_base()).unwrap();
        assert!(off.status_page.is_none());
        let mut on = lag_base();
        on.insert("DRPILOT_STATUS_PAGE", "true");
        on.insert("DRPILOT_DATABASES", ONE_DATABASE);
        let page = LagConfig::from_vars(&on).unwrap().status_page.expect("a page");
        assert_eq!((page.resources.len(), page.databases.len()), (5, 1));
        assert_eq!(page.state.key("status/index.html"), "drpilot/status/index.html");
        // what it shows is checked at cold start as the promoter checks it, naming the setting
        on.insert("DRPILOT_DATABASES", r#"[{"name": "orders"}]"#);
        assert_eq!(err_var_of(LagConfig::from_vars(&on).map(|_| ())), "DRPILOT_DATABASES");
        on.insert("DRPILOT_STATUS_PAGE", "sometimes");
        assert_eq!(err_var_of(LagConfig::from_vars(&on).map(|_| ())), "DRPILOT_STATUS_PAGE");
        // off, the promoter's settings are not the lag checker's business
        on.insert("DRPILOT_STATUS_PAGE", "false");
        assert!(LagConfig::from_vars(&on).is_ok());
    }

    fn lag_base() -> HashMap<&'static str, &'static str> {
        let mut v = base();
        v.insert("DRPILOT_STATE_BUCKET", "drpilot-state-dr");
        v.insert(
            "DRPILOT_RESOURCES",
            r#"[{"name": "orders", "kind": "rds-replica", "replica": "orders-dr", "rpo_seconds": 60},
                {"name": "ledger", "kind": "aurora-global", "cluster": "ledger-dr", "rpo_seconds": 5},
                {"name": "orders-copies", "kind": "snapshot", "db": "orders", "rpo_seconds": 90000},
                {"name": "assets", "kind": "s3-backup", "source_bucket": "assets-prod", "dr_bucket": "assets-dr", "rpo_seconds": 900},
                {"name": "assets-pit", "kind": "s3-backup", "backup": "assets", "rpo_seconds": 90000}]"#,
        );
        v
    }

    #[test]
    fn the_metric_period_is_a_minute_and_scales_the_lag_window_with_it() {
        let c = LagConfig::from_vars(&lag_base()).unwrap();
        assert_eq!((c.metric_period_seconds, c.window_seconds), (60, 300));
        let mut scaled = lag_base();
        scaled.insert(METRIC_PERIOD_VAR, "3");
        let c = LagConfig::from_vars(&scaled).unwrap();
        assert_eq!(
            (c.metric_period_seconds, c.window_seconds),
            (3, 15),
            "five periods by default"
        );
        scaled.insert("DRPILOT_LAG_WINDOW_SECONDS", "2");
        let err = LagConfig::from_vars(&scaled).unwrap_err().to_string();
        assert!(
            err.contains("DRPILOT_LAG_WINDOW_SECONDS") && err.contains("every 3 s"),
            "{err}"
        );
        for (bad, why) in [
            ("0", "outside 1..=60"),
            ("61", "outside 1..=60"),
            ("7", "does not divide a minute"),
            ("x", "not a whole number"),
        ] {
            let mut v = lag_base();
            v.insert(METRIC_PERIOD_VAR, bad);
            let err = LagConfig::from_vars(&v).unwrap_err().to_string();
            assert!(err.contains(METRIC_PERIOD_VAR) && err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn lag_settings_parse_every_kind() {
        let c = LagConfig::from_vars(&lag_base()).unwrap();
        assert_eq!(c.resources.len(), 5);
        assert_eq!(
            c.resources[4].target,
            Target::S3PointInTime {
                backup: "assets".into()
            }
        );
        assert_eq!(
            c.resources[0].target,
            Target::RdsReplica {
                replica: "orders-dr".into()
            }
        );
        assert_eq!(c.resources[2].kind(), "snapshot");
        assert_eq!(
            (c.window_seconds, c.namespace.as_str(), c.state.key("x")),
            (300, "drpilot", "drpilot/x".into())
        );
    }

    #[test]
    fn bad_resources_name_the_variable_and_the_entry() {
        for (bad, expect) in [
            ("not json", "not a JSON array"),
            ("[]", "is empty"),
            (
                r#"[{"name": "a", "kind": "rds-replica", "rpo_seconds": 60}]"#,
                "entry 0 (a): kind rds-replica takes replica",
            ),
            (
                r#"[{"name": "a", "kind": "rds-replica", "replica": "r", "rpo_seconds": 0}]"#,
                "rpo_seconds",
            ),
            (
                r#"[{"name": "a", "kind": "dynamo", "rpo_seconds": 5}]"#,
                "entry [0].kind: unknown variant `dynamo`",
            ),
            (
                r#"[{"name": "a", "kind": "rds-replica", "replica": "r", "rpo_seconds": 5, "replika": "x"}]"#,
                "entry [0].replika: unknown field `replika`",
            ),
            (
                r#"[{"name": "a", "kind": "s3-backup", "source_bucket": "Bad_Bucket", "dr_bucket": "b-dr", "rpo_seconds": 5}]"#,
                "not an S3 bucket name",
            ),
            (
                r#"[{"name": "a", "kind": "s3-backup", "backup": "assets", "dr_bucket": "b-dr", "rpo_seconds": 5}]"#,
                "kind s3-backup takes either backup",
            ),
            (
                r#"[{"name": "a", "kind": "aurora-global", "cluster": "c", "rpo_seconds": 5}, {"name": "a", "kind": "aurora-global", "cluster": "d", "rpo_seconds": 5}]"#,
                "used twice",
            ),
        ] {
            let mut vars = lag_base();
            vars.insert("DRPILOT_RESOURCES", bad);
            match LagConfig::from_vars(&vars) {
                Err(Error::Config {
                    var: "DRPILOT_RESOURCES",
                    reason,
                }) => assert!(reason.contains(expect), "{bad}: {reason}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let mut vars = lag_base();
        vars.insert("DRPILOT_LAG_WINDOW_SECONDS", "30");
        assert_eq!(
            err_var_of(LagConfig::from_vars(&vars).map(|_| ())),
            "DRPILOT_LAG_WINDOW_SECONDS"
        );
        let mut vars = lag_base();
        vars.remove("DRPILOT_STATE_BUCKET");
        assert_eq!(
            err_var_of(LagConfig::from_vars(&vars).map(|_| ())),
            "DRPILOT_STATE_BUCKET"
        );
    }

    fn err_var_of(r: Result<()>) -> &'static str {
        match r {
            Err(Error::Config { var, .. }) => var,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn lists_and_tags_parse() {
        let mut vars = base();
        vars.insert("DRPILOT_DB_INSTANCES", " orders , billing,,orders ");
        vars.insert("DRPILOT_SELECT_TAG", "backup");
        vars.insert("DRPILOT_RETAIN_DAYS", "14");
        vars.insert("DRPILOT_DR_KMS_KEY_ID", "arn:aws:kms:us-west-2:123456789012:key/abc");
        let c = CopierConfig::from_vars(&vars).unwrap();
        assert_eq!(c.selection.instances, vec!["orders", "billing"]);
        assert_eq!(c.selection.tag, Some(("backup".into(), None)));
        assert_eq!(
            c.retention,
            Retention {
                keep_last: None,
                max_age_days: Some(14)
            }
        );
    }
}
