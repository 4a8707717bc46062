//! Which of drpilot's own DR copies may be deleted. Conservative by construction:
//! only copies drpilot tagged as its own, made from this source region, available (never
//! in progress), and never the newest available copy of a database.

use crate::model::{tags, DbKind, Snapshot};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

/// Both limits are upper bounds: a copy goes when it is beyond the newest `keep_last`
/// copies of its database, or older than `max_age_days` (counted from when the source
/// snapshot was taken). Unset means no limit of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub keep_last: Option<u32>,
    pub max_age_days: Option<u32>,
}

/// A source database, as retention groups copies: (kind, identifier).
pub type DbKey = (DbKind, String);

/// The copies to delete, grouped by source database.
pub fn prunable<'a>(
    dr: &'a [Snapshot],
    keep: &Retention,
    source_region: &str,
    deployment: &str,
    now: DateTime<Utc>,
) -> BTreeMap<DbKey, Vec<&'a Snapshot>> {
    let mut groups: BTreeMap<DbKey, Vec<(DateTime<Utc>, &Snapshot)>> = BTreeMap::new();
    for s in dr
        .iter()
        .filter(|s| s.is_copy_of(deployment) && s.is_available() && s.tag(tags::SOURCE_REGION) == Some(source_region))
    {
        // A copy whose age cannot be told is never pruned, nor counted.
        if let (Some(db), Some(t)) = (s.tag(tags::SOURCE_DB), s.source_time()) {
            groups.entry((s.kind, db.to_string())).or_default().push((t, s));
        }
    }
    let mut out = BTreeMap::new();
    for (key, mut copies) in groups {
        copies.sort_by(|a, b| (b.0, &b.1.id).cmp(&(a.0, &a.1.id)));
        let doomed: Vec<&Snapshot> = copies
            .iter()
            .enumerate()
            .skip(1) // the newest available copy always stays
            .filter(|(rank, (taken, _))| {
                let over_count = keep.keep_last.is_some_and(|n| *rank >= n as usize);
                let too_old = keep
                    .max_age_days
                    .is_some_and(|d| now - *taken > Duration::days(i64::from(d)));
                over_count || too_old
            })
            .map(|(_, (_, s))| *s)
            .collect();
        if !doomed.is_empty() {
            out.insert(key, doomed);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::copy::tests::{at, dr_copy_of, snap};
    use proptest::prelude::*;

    fn copies(db: &str, days: &[u32]) -> Vec<Snapshot> {
        days.iter()
            .map(|d| {
                dr_copy_of(
                    &snap(DbKind::Instance, db, &format!("{db}-{d}"), "available", at(*d, 0), true),
                    "available",
                )
            })
            .collect()
    }

    fn pruned_ids(dr: &[Snapshot], keep: Retention, now: DateTime<Utc>) -> Vec<String> {
        let mut ids: Vec<String> = prunable(dr, &keep, "us-east-1", "drpilot", now)
            .values()
            .flatten()
            .map(|s| s.tag(tags::SOURCE_ARN).unwrap().rsplit(':').next().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn keeps_the_newest_n_per_database() {
        let mut dr = copies("a", &[1, 2, 3, 4]);
        dr.extend(copies("b", &[1, 2]));
        let keep = Retention {
            keep_last: Some(2),
            max_age_days: None,
        };
        assert_eq!(pruned_ids(&dr, keep, at(5, 0)), vec!["a-1", "a-2"]);
    }

    #[test]
    fn prunes_by_age_but_never_the_newest() {
        let dr = copies("a", &[1, 2, 3]);
        let keep = Retention {
            keep_last: None,
            max_age_days: Some(1),
        };
        // at day 3 12:00, copies of days 1 and 2 are older than one day; day 3 is not
        assert_eq!(pruned_ids(&dr, keep, at(3, 12)), vec!["a-1", "a-2"]);
        // far in the future everything is too old, yet the newest stays
        assert_eq!(pruned_ids(&dr, keep, at(30, 0)), vec!["a-1", "a-2"]);
    }

    #[test]
    fn either_limit_prunes() {
        let dr = copies("a", &[1, 2, 3, 4, 5]);
        // age limit bites first: days 1-3 are older than two days
        let keep = Retention {
            keep_last: Some(4),
            max_age_days: Some(2),
        };
        assert_eq!(pruned_ids(&dr, keep, at(5, 12)), vec!["a-1", "a-2", "a-3"]);
        // count limit bites first: only the newest two stay
        let keep = Retention {
            keep_last: Some(2),
            max_age_days: Some(30),
        };
        assert_eq!(pruned_ids(&dr, keep, at(5, 12)), vec!["a-1", "a-2", "a-3"]);
        let keep = Retention {
            keep_last: Some(3),
            max_age_days: Some(30),
        };
        assert_eq!(pruned_ids(&dr, keep, at(5, 12)), vec!["a-1", "a-2"]);
    }

    #[test]
    fn in_progress_untagged_and_foreign_region_copies_are_never_pruned() {
        let mut dr = copies("a", &[5]);
        let old = snap(DbKind::Instance, "a", "a-1", "available", at(1, 0), true);
        dr.push(dr_copy_of(&old, "copying"));
        let mut untagged = dr_copy_of(
            &snap(DbKind::Instance, "a", "a-2", "available", at(2, 0), true),
            "available",
        );
        untagged.tags.clear();
        dr.push(untagged);
        let mut other_region = dr_copy_of(
            &snap(DbKind::Instance, "a", "a-3", "available", at(3, 0), true),
            "available",
        );
        other_region.tags.insert(tags::SOURCE_REGION.into(), "eu-west-1".into());
        dr.push(other_region);
        let keep = Retention {
            keep_last: Some(1),
            max_age_days: Some(1),
        };
        assert!(pruned_ids(&dr, keep, at(20, 0)).is_empty());
    }

    #[test]
    fn a_newer_copy_still_in_progress_does_not_make_the_available_one_prunable() {
        let mut dr = copies("a", &[1]);
        dr.push(dr_copy_of(
            &snap(DbKind::Instance, "a", "a-2", "available", at(2, 0), true),
            "pending",
        ));
        let keep = Retention {
            keep_last: Some(1),
            max_age_days: Some(1),
        };
        assert!(pruned_ids(&dr, keep, at(20, 0)).is_empty());
    }

    fn arb_snapshot() -> impl Strategy<Value = Snapshot> {
        (
            0..3usize,
            1..28u32,
            0..24u32,
            prop::bool::ANY,
            prop::bool::ANY,
            0..4usize,
            prop::bool::ANY,
            0..3usize,
        )
            .prop_map(|(db, day, hour, managed, cluster, status, same_region, deployment)| {
                let kind = if cluster { DbKind::Cluster } else { DbKind::Instance };
                let db = format!("db{db}");
                let src = snap(
                    kind,
                    &db,
                    &format!("{db}-{day}-{hour}"),
                    "available",
                    at(day, hour),
                    true,
                );
                let status = ["available", "copying", "pending", "failed"][status];
                let mut c = dr_copy_of(&src, status);
                if !managed {
                    c.tags.remove(tags::MANAGED_BY);
                }
                if !same_region {
                    c.tags.insert(tags::SOURCE_REGION.into(), "eu-west-1".into());
                }
                // made by this deployment ("hub"), by another in the account, or before copies
                // carried the tag (the default deployment's)
                match deployment {
                    0 => c.tags.insert(tags::DEPLOYMENT.into(), "hub".into()),
                    1 => c.tags.insert(tags::DEPLOYMENT.into(), "payments-dr".into()),
                    _ => c.tags.remove(tags::DEPLOYMENT),
                };
                c
            })
    }

    proptest! {
        /// Whatever the retention setting: the newest available copy of every database, every
        /// snapshot drpilot did not tag and every copy another deployment made survive; only
        /// available copies are pruned.
        #[test]
        fn newest_copy_and_untagged_snapshots_survive_any_retention(
            dr in prop::collection::vec(arb_snapshot(), 0..40),
            keep_last in prop::option::of(1..10u32),
            max_age_days in prop::option::of(1..30u32),
            now_day in 1..28u32,
        ) {
            let keep = Retention { keep_last, max_age_days };
            let pruned = prunable(&dr, &keep, "us-east-1", "hub", at(now_day, 0));
            let pruned: Vec<&Snapshot> = pruned.values().flatten().copied().collect();
            for p in &pruned {
                prop_assert!(p.is_managed_copy());
                prop_assert_eq!(p.tag(tags::DEPLOYMENT), Some("hub"));
                prop_assert!(p.is_available());
                prop_assert_eq!(p.tag(tags::SOURCE_REGION), Some("us-east-1"));
            }
            // the newest available managed copy of each database survives
            let mut newest: BTreeMap<(DbKind, String), &Snapshot> = BTreeMap::new();
            for s in dr.iter().filter(|s| s.is_copy_of("hub") && s.is_available() && s.tag(tags::SOURCE_REGION) == Some("us-east-1")) {
                let key = (s.kind, s.tag(tags::SOURCE_DB).unwrap().to_string());
                let e = newest.entry(key).or_insert(s);
                if (s.source_time(), &s.id) > (e.source_time(), &e.id) { *e = s; }
            }
            for n in newest.values() {
                prop_assert!(!pruned.iter().any(|p| std::ptr::eq(*p, *n)), "newest copy {} was pruned", n.id);
            }
        }
    }
}
