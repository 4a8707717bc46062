//! What to copy to the DR region this run, and what waits for a later run.

use crate::model::{tags, DbKind, ProtectedDb, Snapshot};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// RDS allows 50 tags on a resource; drpilot's own take `DRPILOT_TAGS`.
const MAX_TAGS: usize = 50;
const DRPILOT_TAGS: usize = 6;

pub struct CopyPolicy<'a> {
    pub source_region: &'a str,
    /// `DRPILOT_DEPLOYMENT`: the copies this deployment made are the only ones it counts.
    pub deployment: &'a str,
    pub dr_kms_key_id: Option<&'a str>,
    pub max_in_flight: u32,
    pub copy_source_tags: bool,
}

/// One protected database and its snapshots in the source region.
pub struct SourceState {
    pub db: ProtectedDb,
    pub snapshots: Vec<Snapshot>,
}

/// A `CopyDBSnapshot` / `CopyDBClusterSnapshot` call to make in the DR region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyRequest {
    pub kind: DbKind,
    pub source_arn: String,
    pub source_id: String,
    pub target_id: String,
    pub kms_key_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Copy(CopyRequest),
    /// The DR region already has this snapshot (available, or a copy in progress).
    AlreadyPresent {
        snapshot_id: String,
        copy_id: String,
        copy_status: String,
    },
    /// Over the copies-in-flight limit: a later run picks it up. Not a failure.
    Queued {
        snapshot_id: String,
    },
    /// The DR region already has a copy of a snapshot newer than this one (a late event, or the
    /// newest snapshot deleted after it was copied): copying this one would add older data.
    Superseded {
        snapshot_id: String,
        copy_id: String,
    },
    /// Nothing to copy yet: the first snapshot is still being created. Not a failure.
    Waiting {
        reason: String,
    },
    Failed {
        snapshot_id: Option<String>,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedDb {
    pub db: ProtectedDb,
    pub decision: Decision,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CopyPlan {
    /// Copies already in progress in the DR region before this run (anyone's, not only ours).
    pub in_flight: u32,
    pub limit: u32,
    pub dbs: Vec<PlannedDb>,
}

impl CopyPlan {
    /// Nothing for the DR region: no copy to start, none waiting for room.
    pub fn settled(&self) -> bool {
        !self
            .dbs
            .iter()
            .any(|d| matches!(d.decision, Decision::Copy(_) | Decision::Queued { .. }))
    }
}

/// The newest *available* snapshot: the recovery point a copy of it would offer.
pub fn newest_available(snapshots: &[Snapshot]) -> Option<&Snapshot> {
    snapshots
        .iter()
        .filter(|s| s.is_available())
        .max_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)))
}

/// The DR copy's identifier: deterministic, so that a rerun or a concurrent run asks AWS
/// for the *same* identifier and AWS itself refuses the duplicate (`...AlreadyExists`).
/// Readable prefix from the source id; a hash of the source ARN keeps ids from different
/// sources apart (`rds:db-1` and `rds-db-1` would otherwise meet), and of the deployment
/// (other than the default, whose copies keep the ids they always had) keeps two
/// deployments' copies of one snapshot apart.
pub fn copy_target_id(source: &Snapshot, deployment: &str) -> String {
    let mut readable = String::new();
    for c in source.id.chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        };
        if !(c == '-' && (readable.is_empty() || readable.ends_with('-'))) {
            readable.push(c);
        }
    }
    // identifiers are at most 255 chars: "drpilot-" + readable + "-" + 8 hex
    readable.truncate(255 - 8 - 1 - 8);
    let readable = readable.trim_end_matches('-');
    let hashed = match deployment {
        crate::model::DEFAULT_DEPLOYMENT => source.arn.clone(),
        other => format!("{other}/{}", source.arn),
    };
    format!("drpilot-{readable}-{:08x}", fnv1a32(hashed.as_bytes()))
}

/// FNV-1a, 32 bits: a short, stable hash for identifiers.
pub(crate) fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn copy_tags(source: &Snapshot, db: &ProtectedDb, policy: &CopyPolicy) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    if policy.copy_source_tags {
        out.extend(
            source
                .tags
                .iter()
                .filter(|(k, _)| !k.starts_with("aws:") && !k.starts_with("drpilot:"))
                .take(MAX_TAGS - DRPILOT_TAGS)
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    out.insert(tags::MANAGED_BY.into(), tags::MANAGED_BY_VALUE.into());
    out.insert(tags::DEPLOYMENT.into(), policy.deployment.into());
    out.insert(tags::SOURCE_ARN.into(), source.arn.clone());
    out.insert(tags::SOURCE_DB.into(), db.id.clone());
    out.insert(tags::SOURCE_REGION.into(), policy.source_region.into());
    if let Some(t) = source.created {
        out.insert(tags::SOURCE_SNAPSHOT_TIME.into(), rfc3339(t));
    }
    out
}

/// Copies of `db` that drpilot made from this source region.
pub fn managed_copies_of<'a>(
    dr: &'a [Snapshot],
    db: &ProtectedDb,
    source_region: &str,
    deployment: &str,
) -> impl Iterator<Item = &'a Snapshot> {
    let (kind, id) = (db.kind, db.id.clone());
    let (region, deployment) = (source_region.to_string(), deployment.to_string());
    dr.iter().filter(move |c| {
        c.kind == kind
            && c.is_copy_of(&deployment)
            && c.tag(tags::SOURCE_DB) == Some(id.as_str())
            && c.tag(tags::SOURCE_REGION) == Some(region.as_str())
    })
}

/// Copies in progress into the DR region, as AWS's quota counts them, whoever started them:
/// ours (tagged) and anyone else's cross-region copies (AWS sets SourceRegion on those).
pub fn copies_in_flight(dr: &[Snapshot]) -> u32 {
    dr.iter()
        .filter(|s| s.is_in_progress() && (s.is_managed_copy() || s.source_region.is_some()))
        .count() as u32
}

pub fn plan_copies(sources: &[SourceState], dr: &[Snapshot], policy: &CopyPolicy) -> CopyPlan {
    let in_flight = copies_in_flight(dr);

    let mut dbs: Vec<PlannedDb> = Vec::new();
    let mut wanted: Vec<(Option<DateTime<Utc>>, usize)> = Vec::new();
    for src in sources {
        let decision = match newest_available(&src.snapshots) {
            None if src.snapshots.iter().any(Snapshot::is_in_progress) => Decision::Waiting {
                reason: "its first snapshot is still being created".into(),
            },
            None => Decision::Failed {
                snapshot_id: None,
                reason: format!(
                    "no available snapshot of {} {} in {} (are automated backups enabled?)",
                    src.db.kind.as_str(),
                    src.db.id,
                    policy.source_region
                ),
            },
            Some(newest) => {
                let target_id = copy_target_id(newest, policy.deployment);
                // Ours: the identifier this deployment gives it, or a copy of it this deployment
                // made (another deployment's copy is not one this one counts on or prunes).
                let existing = dr.iter().find(|c| {
                    c.kind == src.db.kind
                        && (c.id == target_id
                            || (c.is_copy_of(policy.deployment)
                                && c.tag(tags::SOURCE_ARN) == Some(newest.arn.as_str())))
                });
                let newer_copy = managed_copies_of(dr, &src.db, policy.source_region, policy.deployment)
                    .filter(|c| c.is_available() || c.is_in_progress())
                    .filter(|c| c.source_time().is_some_and(|t| newest.created.is_some_and(|s| t > s)))
                    .max_by_key(|c| c.source_time());
                match (existing, newer_copy) {
                    (Some(c), _) if c.is_available() || c.is_in_progress() => Decision::AlreadyPresent {
                        snapshot_id: newest.id.clone(),
                        copy_id: c.id.clone(),
                        copy_status: c.status.clone(),
                    },
                    (Some(c), _) => Decision::Failed {
                        snapshot_id: Some(newest.id.clone()),
                        reason: format!(
                            "the DR copy {} of snapshot {} is in state {:?}: delete it so the next run can copy again",
                            c.id, newest.id, c.status
                        ),
                    },
                    (None, Some(c)) => Decision::Superseded {
                        snapshot_id: newest.id.clone(),
                        copy_id: c.id.clone(),
                    },
                    (None, None) if newest.encrypted && policy.dr_kms_key_id.is_none() => Decision::Failed {
                        snapshot_id: Some(newest.id.clone()),
                        reason: format!(
                            "snapshot {} is encrypted and no DR key is set (DRPILOT_DR_KMS_KEY_ID; in a member account, its dr_kms_key_id in DRPILOT_ACCOUNTS): an encrypted cross-region copy needs a KMS key in the DR region",
                            newest.id
                        ),
                    },
                    (None, None) => {
                        let newest_copy = managed_copies_of(dr, &src.db, policy.source_region, policy.deployment)
                            .filter(|c| c.is_available())
                            .filter_map(Snapshot::source_time)
                            .max();
                        wanted.push((newest_copy, dbs.len()));
                        Decision::Copy(CopyRequest {
                            kind: src.db.kind,
                            source_arn: newest.arn.clone(),
                            source_id: newest.id.clone(),
                            target_id,
                            kms_key_id: newest.encrypted.then(|| policy.dr_kms_key_id.map(str::to_string)).flatten(),
                            tags: copy_tags(newest, &src.db, policy),
                        })
                    }
                }
            }
        };
        dbs.push(PlannedDb {
            db: src.db.clone(),
            decision,
        });
    }

    // The stalest databases (no DR copy at all, then the oldest copy) get the free slots first.
    wanted.sort();
    let mut free = policy.max_in_flight.saturating_sub(in_flight);
    for (_, index) in wanted {
        if free > 0 {
            free -= 1;
        } else if let Decision::Copy(req) = &dbs[index].decision {
            dbs[index].decision = Decision::Queued {
                snapshot_id: req.source_id.clone(),
            };
        }
    }
    CopyPlan {
        in_flight,
        limit: policy.max_in_flight,
        dbs,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    pub fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
    }

    pub fn snap(kind: DbKind, db: &str, id: &str, status: &str, created: DateTime<Utc>, encrypted: bool) -> Snapshot {
        Snapshot {
            kind,
            id: id.into(),
            arn: format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}"),
            db_id: db.into(),
            status: status.into(),
            created: Some(created),
            encrypted,
            tags: BTreeMap::new(),
            source_region: None,
        }
    }

    pub fn dr_copy_of(src: &Snapshot, status: &str) -> Snapshot {
        let db = ProtectedDb {
            kind: src.kind,
            id: src.db_id.clone(),
        };
        let policy = policy(Some("key"), 20);
        Snapshot {
            id: copy_target_id(src, "drpilot"),
            arn: format!(
                "arn:aws:rds:us-west-2:123456789012:snapshot:{}",
                copy_target_id(src, "drpilot")
            ),
            status: status.into(),
            tags: copy_tags(src, &db, &policy),
            source_region: Some("us-east-1".into()),
            ..src.clone()
        }
    }

    pub fn policy(key: Option<&'static str>, max: u32) -> CopyPolicy<'static> {
        CopyPolicy {
            source_region: "us-east-1",
            deployment: "drpilot",
            dr_kms_key_id: key,
            max_in_flight: max,
            copy_source_tags: true,
        }
    }

    fn instance(id: &str) -> ProtectedDb {
        ProtectedDb {
            kind: DbKind::Instance,
            id: id.into(),
        }
    }

    #[test]
    fn a_copy_never_carries_more_tags_than_rds_allows() {
        let mut src = snap(DbKind::Instance, "orders", "orders-1", "available", at(1, 0), false);
        src.tags = (0..60).map(|i| (format!("team-tag-{i:02}"), "x".to_string())).collect();
        let tags = copy_tags(&src, &instance("orders"), &policy(None, 20));
        assert_eq!(tags.len(), MAX_TAGS);
        for t in [
            tags::MANAGED_BY,
            tags::DEPLOYMENT,
            tags::SOURCE_ARN,
            tags::SOURCE_DB,
            tags::SOURCE_REGION,
            tags::SOURCE_SNAPSHOT_TIME,
        ] {
            assert!(tags.contains_key(t), "{t}");
        }
    }

    #[test]
    fn a_snapshot_older_than_the_newest_copy_is_not_copied() {
        let old = snap(DbKind::Instance, "orders", "orders-old", "available", at(1, 0), false);
        let newer = snap(DbKind::Instance, "orders", "orders-new", "available", at(2, 0), false);
        let copy = dr_copy_of(&newer, "copying");
        let plan = plan_copies(
            &[SourceState {
                db: instance("orders"),
                snapshots: vec![old],
            }],
            std::slice::from_ref(&copy),
            &policy(None, 20),
        );
        assert_eq!(
            plan.dbs[0].decision,
            Decision::Superseded {
                snapshot_id: "orders-old".into(),
                copy_id: copy.id.clone(),
            }
        );
    }

    #[test]
    fn copies_the_newest_available_snapshot_with_the_dr_key() {
        let mut manual = snap(DbKind::Instance, "orders", "orders-manual", "available", at(2, 0), true);
        manual.tags.insert("team".into(), "payments".into());
        manual.tags.insert("aws:backup:source-resource".into(), "x".into());
        let snaps = vec![
            snap(
                DbKind::Instance,
                "orders",
                "rds:orders-2026-11-01",
                "available",
                at(1, 3),
                true,
            ),
            manual.clone(),
            snap(
                DbKind::Instance,
                "orders",
                "rds:orders-2026-11-03",
                "creating",
                at(3, 3),
                true,
            ),
        ];
        let plan = plan_copies(
            &[SourceState {
                db: instance("orders"),
                snapshots: snaps,
            }],
            &[],
            &policy(Some("alias/dr"), 20),
        );
        let Decision::Copy(req) = &plan.dbs[0].decision else {
            panic!("{plan:?}")
        };
        assert_eq!(req.source_id, "orders-manual");
        assert_eq!(req.source_arn, manual.arn);
        assert_eq!(req.kms_key_id.as_deref(), Some("alias/dr"));
        assert_eq!(req.tags.get("team").map(String::as_str), Some("payments"));
        assert!(!req.tags.contains_key("aws:backup:source-resource"));
        assert_eq!(req.tags[tags::MANAGED_BY], "drpilot");
        assert_eq!(req.tags[tags::SOURCE_SNAPSHOT_TIME], "2026-11-02T00:00:00Z");
        assert_eq!(req.tags[tags::SOURCE_DB], "orders");
    }

    #[test]
    fn unencrypted_source_is_copied_without_a_key() {
        let snaps = vec![snap(DbKind::Instance, "a", "a-1", "available", at(1, 0), false)];
        let plan = plan_copies(
            &[SourceState {
                db: instance("a"),
                snapshots: snaps,
            }],
            &[],
            &policy(Some("k"), 20),
        );
        let Decision::Copy(req) = &plan.dbs[0].decision else {
            panic!()
        };
        assert_eq!(req.kms_key_id, None);
    }

    #[test]
    fn encrypted_source_without_dr_key_is_a_reported_failure_not_a_skip() {
        let snaps = vec![snap(DbKind::Cluster, "ledger", "ledger-1", "available", at(1, 0), true)];
        let db = ProtectedDb {
            kind: DbKind::Cluster,
            id: "ledger".into(),
        };
        let plan = plan_copies(&[SourceState { db, snapshots: snaps }], &[], &policy(None, 20));
        let Decision::Failed { reason, .. } = &plan.dbs[0].decision else {
            panic!()
        };
        assert!(reason.contains("DRPILOT_DR_KMS_KEY_ID"), "{reason}");
    }

    #[test]
    fn present_or_in_progress_copy_is_not_copied_again() {
        let s = snap(DbKind::Instance, "a", "a-1", "available", at(1, 0), false);
        for status in ["available", "pending", "copying", "creating"] {
            let dr = vec![dr_copy_of(&s, status)];
            let plan = plan_copies(
                &[SourceState {
                    db: instance("a"),
                    snapshots: vec![s.clone()],
                }],
                &dr,
                &policy(None, 20),
            );
            assert!(
                matches!(plan.dbs[0].decision, Decision::AlreadyPresent { .. }),
                "{status}"
            );
        }
    }

    #[test]
    fn copy_found_by_source_arn_tag_even_under_another_name() {
        let s = snap(DbKind::Instance, "a", "a-1", "available", at(1, 0), false);
        let mut c = dr_copy_of(&s, "available");
        c.id = "hand-made-name".into();
        let plan = plan_copies(
            &[SourceState {
                db: instance("a"),
                snapshots: vec![s],
            }],
            &[c],
            &policy(None, 20),
        );
        assert!(
            matches!(&plan.dbs[0].decision, Decision::AlreadyPresent { copy_id, .. } if copy_id == "hand-made-name")
        );
    }

    #[test]
    fn failed_dr_copy_is_reported() {
        let s = snap(DbKind::Instance, "a", "a-1", "available", at(1, 0), false);
        let dr = vec![dr_copy_of(&s, "failed")];
        let plan = plan_copies(
            &[SourceState {
                db: instance("a"),
                snapshots: vec![s],
            }],
            &dr,
            &policy(None, 20),
        );
        assert!(matches!(&plan.dbs[0].decision, Decision::Failed { reason, .. } if reason.contains("delete it")));
    }

    #[test]
    fn no_snapshot_fails_but_a_first_snapshot_in_progress_waits() {
        let plan = plan_copies(
            &[SourceState {
                db: instance("a"),
                snapshots: vec![],
            }],
            &[],
            &policy(None, 20),
        );
        assert!(
            matches!(&plan.dbs[0].decision, Decision::Failed { reason, .. } if reason.contains("automated backups"))
        );
        let creating = vec![snap(DbKind::Instance, "a", "a-1", "creating", at(1, 0), false)];
        let plan = plan_copies(
            &[SourceState {
                db: instance("a"),
                snapshots: creating,
            }],
            &[],
            &policy(None, 20),
        );
        assert!(matches!(plan.dbs[0].decision, Decision::Waiting { .. }));
    }

    #[test]
    fn in_flight_limit_counts_existing_copies_and_queues_the_rest_stalest_first() {
        // Two copies already in flight into the DR region: one ours, one someone else's.
        let busy = snap(DbKind::Instance, "busy", "busy-1", "available", at(1, 0), false);
        let mut foreign = snap(DbKind::Instance, "other", "other-copy", "copying", at(1, 0), false);
        foreign.source_region = Some("eu-west-1".into());
        let unrelated_manual = snap(DbKind::Instance, "x", "x-creating", "creating", at(1, 0), false);
        // db "fresh" has a recent DR copy; db "stale" an old one; db "new" none at all.
        let fresh_old = snap(DbKind::Instance, "fresh", "fresh-old", "available", at(9, 0), false);
        let stale_old = snap(DbKind::Instance, "stale", "stale-old", "available", at(1, 0), false);
        let mut dr = vec![dr_copy_of(&busy, "copying"), foreign, unrelated_manual];
        dr.push(dr_copy_of(&fresh_old, "available"));
        dr.push(dr_copy_of(&stale_old, "available"));
        let sources: Vec<SourceState> = ["fresh", "new", "stale"]
            .iter()
            .map(|db| SourceState {
                db: instance(db),
                snapshots: vec![snap(
                    DbKind::Instance,
                    db,
                    &format!("{db}-10"),
                    "available",
                    at(10, 0),
                    false,
                )],
            })
            .collect();
        let plan = plan_copies(&sources, &dr, &policy(None, 4));
        assert_eq!(plan.in_flight, 2);
        let by_db = |id: &str| &plan.dbs.iter().find(|d| d.db.id == id).unwrap().decision;
        assert!(matches!(by_db("new"), Decision::Copy(_)));
        assert!(matches!(by_db("stale"), Decision::Copy(_)));
        assert!(matches!(by_db("fresh"), Decision::Queued { .. }));
    }

    #[test]
    fn limit_already_reached_queues_everything() {
        let s = snap(DbKind::Instance, "a", "a-1", "available", at(1, 0), false);
        let dr: Vec<Snapshot> = (0..3)
            .map(|i| {
                dr_copy_of(
                    &snap(
                        DbKind::Instance,
                        &format!("b{i}"),
                        &format!("b{i}"),
                        "available",
                        at(1, 0),
                        false,
                    ),
                    "pending",
                )
            })
            .collect();
        let plan = plan_copies(
            &[SourceState {
                db: instance("a"),
                snapshots: vec![s],
            }],
            &dr,
            &policy(None, 3),
        );
        assert!(matches!(plan.dbs[0].decision, Decision::Queued { .. }));
    }

    #[test]
    fn target_ids_are_valid_deterministic_and_distinct() {
        let a = snap(
            DbKind::Instance,
            "db",
            "rds:db-2026-11-25-03-00",
            "available",
            at(1, 0),
            false,
        );
        let mut b = a.clone();
        b.id = "rds-db-2026-11-25-03-00".into();
        b.arn = "arn:aws:rds:us-east-1:123456789012:snapshot:rds-db-2026-11-25-03-00".into();
        let (ia, ib) = (copy_target_id(&a, "drpilot"), copy_target_id(&b, "drpilot"));
        assert_eq!(ia, copy_target_id(&a, "drpilot"));
        assert_ne!(ia, ib);
        // the default deployment's ids are the ones copies always had; another's differ
        assert_eq!(
            ia,
            format!("drpilot-rds-db-2026-11-25-03-00-{:08x}", fnv1a32(a.arn.as_bytes()))
        );
        assert_ne!(copy_target_id(&a, "payments-dr"), ia);
        assert!(ia.starts_with("drpilot-rds-db-2026-11-25-03-00-"), "{ia}");
        let mut long = a.clone();
        long.id = "x".repeat(300);
        let il = copy_target_id(&long, "drpilot");
        assert!(il.len() <= 255 && !il.contains("--") && !il.ends_with('-'));
    }
}
