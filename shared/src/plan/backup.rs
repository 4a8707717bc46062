//! S3 backup decisions: what a run copies, which points in time expire, which DR object
//! versions no retained point in time needs, and what a restore does. All inputs are sorted
//! by key, as S3 lists them (UTF-8 byte order, which is also Rust's `str` order), so every
//! decision works on one page at a time and memory stays flat as buckets grow.

use crate::model::ObjectInfo;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::HashSet;

/// One object of a point in time: the source object as it was listed, and the DR-bucket
/// version that holds its bytes. Manifests are JSON lines of these, sorted by key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    #[serde(rename = "k")]
    pub key: String,
    #[serde(rename = "s")]
    pub size: i64,
    /// The source object's ETag (the DR copy's own ETag differs when it is KMS-encrypted).
    #[serde(rename = "e")]
    pub etag: String,
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<DateTime<Utc>>,
    /// The DR bucket's version id of the copy.
    #[serde(rename = "v")]
    pub version: String,
    /// In a change point's manifest: the key was deleted at the source (no version).
    #[serde(rename = "d", default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

/// Anything listed in key order.
pub trait Keyed {
    fn key(&self) -> &str;
}

impl Keyed for ManifestEntry {
    fn key(&self) -> &str {
        &self.key
    }
}

impl Keyed for ObjectInfo {
    fn key(&self) -> &str {
        &self.key
    }
}

/// One step of a merge of two key-sorted lists.
#[derive(Debug, PartialEq)]
pub enum Joined<'a, L, R> {
    Left(&'a L),
    Right(&'a R),
    Both(&'a L, &'a R),
}

/// Merges two lists sorted by key (keys unique within each list) in one pass.
pub fn join_by_key<'a, L: Keyed, R: Keyed>(left: &'a [L], right: &'a [R]) -> Vec<Joined<'a, L, R>> {
    let mut out = Vec::with_capacity(left.len().max(right.len()));
    let (mut i, mut j) = (0, 0);
    while i < left.len() || j < right.len() {
        let order = match (left.get(i), right.get(j)) {
            (Some(l), Some(r)) => l.key().cmp(r.key()),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                out.push(Joined::Left(&left[i]));
                i += 1;
            }
            Ordering::Greater => {
                out.push(Joined::Right(&right[j]));
                j += 1;
            }
            Ordering::Equal => {
                out.push(Joined::Both(&left[i], &right[j]));
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// What a backup run does with one listed source object.
#[derive(Debug, PartialEq)]
pub enum Change<'a> {
    /// Same size, ETag and last-modified as in the previous point in time: its DR version
    /// is carried into the new manifest; no request at all.
    Unchanged(&'a ManifestEntry),
    /// New, or changed since the previous point in time: copy it.
    Copy {
        object: &'a ObjectInfo,
        previous: Option<&'a ManifestEntry>,
    },
}

#[derive(Debug, PartialEq, Default)]
pub struct PageDiff<'a> {
    pub changes: Vec<Change<'a>>,
    /// In the previous point in time but no longer at the source. Older points in time keep
    /// them; the new one does not list them.
    pub deleted: Vec<&'a ManifestEntry>,
}

/// Compares one page of the source listing with the previous point in time's entries for the
/// same key range.
pub fn diff_page<'a>(source: &'a [ObjectInfo], previous: &'a [ManifestEntry]) -> PageDiff<'a> {
    diff(source, previous, None)
}

/// The previous point's entries an S3 Inventory report (taken at `taken`) lacks although they
/// were last modified before it was taken: deleted since, or missed (a report is eventually
/// consistent; S3 recommends a `HeadObject` before acting on one). The run looks at each.
pub fn unlisted<'a>(
    source: &'a [ObjectInfo],
    previous: &'a [ManifestEntry],
    taken: DateTime<Utc>,
) -> Vec<&'a ManifestEntry> {
    join_by_key(source, previous)
        .into_iter()
        .filter_map(|joined| match joined {
            Joined::Right(entry) if before(entry, taken) => Some(entry),
            _ => None,
        })
        .collect()
}

/// As `diff_page`, for one page of an S3 Inventory report taken at `taken`, which may be older
/// than what the previous point holds (a change point recorded since): an entry the report
/// lacks stands if it was modified at or after `taken`, or if the object is still at the source
/// (`present`: looked at since, see `unlisted`); otherwise it was deleted. A key the report
/// shows otherwise than the previous point is copied as the report saw it, and only if it still
/// is so (the copy is pinned to that ETag): Last-Modified is not trusted to say which version is
/// newer.
pub fn diff_inventory_page<'a>(
    source: &'a [ObjectInfo],
    previous: &'a [ManifestEntry],
    taken: DateTime<Utc>,
    present: &HashSet<&str>,
) -> PageDiff<'a> {
    diff(source, previous, Some((taken, present)))
}

/// One page's merge. `report`: the keys are an inventory report's, taken then, and of the keys
/// it lacks, these are still at the source.
fn diff<'a>(
    source: &'a [ObjectInfo],
    previous: &'a [ManifestEntry],
    report: Option<(DateTime<Utc>, &HashSet<&str>)>,
) -> PageDiff<'a> {
    let stands = |entry: &ManifestEntry| {
        report.is_some_and(|(taken, present)| !before(entry, taken) || present.contains(entry.key.as_str()))
    };
    let mut diff = PageDiff::default();
    for joined in join_by_key(source, previous) {
        match joined {
            Joined::Left(object) => diff.changes.push(Change::Copy { object, previous: None }),
            Joined::Right(entry) if stands(entry) => diff.changes.push(Change::Unchanged(entry)),
            Joined::Right(entry) => diff.deleted.push(entry),
            Joined::Both(object, entry) => diff.changes.push(if unchanged(object, entry) {
                Change::Unchanged(entry)
            } else {
                Change::Copy {
                    object,
                    previous: Some(entry),
                }
            }),
        }
    }
    diff
}

/// Last modified before `taken` (an entry without a time counts as before).
fn before(entry: &ManifestEntry, taken: DateTime<Utc>) -> bool {
    entry.modified.is_none_or(|m| m.timestamp() < taken.timestamp())
}

fn unchanged(object: &ObjectInfo, entry: &ManifestEntry) -> bool {
    object.size == entry.size && object.etag == entry.etag && same_time(object.last_modified, entry.modified)
}

/// Two last-modified times of one object version, as S3 gives them: to the second (listings
/// carry milliseconds, always .000 on S3; `HeadObject`'s HTTP date has none).
pub fn same_time(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> bool {
    a.map(|t| t.timestamp()) == b.map(|t| t.timestamp())
}

/// The invocation that wrote a run's manifest parts from `from_part` on. Each invocation
/// writes part objects of its own, so an invocation that lost its lease can never overwrite a
/// part the state names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartWriter {
    pub from_part: u32,
    pub invocation: u32,
}

/// Which invocation wrote `part`.
pub fn part_writer(writers: &[PartWriter], part: u32) -> u32 {
    writers
        .iter()
        .rev()
        .find(|w| w.from_part <= part)
        .map_or(0, |w| w.invocation)
}

/// A completed backup run: a point in time a restore can return to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointInTime {
    pub run_id: String,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub objects: u64,
    pub bytes: u64,
    /// Objects that could not be copied in this run (their earlier version, if any, stands in).
    pub failed: u64,
    /// Manifest parts, numbered from 1.
    pub parts: u32,
    #[serde(default)]
    pub writers: Vec<PartWriter>,
    /// A *change point*, made from S3's event notifications: its manifest holds only the keys
    /// that changed (copies and deletions) since the point before it, and `base` names the
    /// full point (a scheduled run's) its chain of change points starts from. What it holds is
    /// the base's manifest with every change of the chain, up to it, applied in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// When the run read its keys from an S3 Inventory report: when S3 began that scan. The
    /// point holds the bucket as of then (with the changes recorded since), not as of `started`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<DateTime<Utc>>,
}

impl PointInTime {
    /// The time a restore of this point returns the bucket to, and its recovery point.
    pub fn recovery_point(&self) -> DateTime<Utc> {
        self.as_of.map_or(self.started, |t| t.min(self.started))
    }

    /// The full point this point's chain starts from (itself, for a full point).
    pub fn base_id(&self) -> &str {
        self.base.as_deref().unwrap_or(&self.run_id)
    }
}

/// The chain a point belongs to, oldest first: its full point, then the change points on it
/// up to `run_id`. `None` if the point or its base is not in `points` (kept oldest first).
pub fn chain<'a>(points: &'a [PointInTime], run_id: &str) -> Option<Vec<&'a PointInTime>> {
    let at = points.iter().position(|p| p.run_id == run_id)?;
    let base = points[at].base_id();
    let start = points.iter().position(|p| p.run_id == base && p.base.is_none())?;
    Some(points[start..=at].iter().filter(|p| p.base_id() == base).collect())
}

/// Applies a chain's changes (`overlay`: by key, the latest change wins) to a full point's
/// entries sorted by key, taking out of `overlay` every change up to `through` (all, for
/// `None`): the entries of the point the chain ends at, sorted, deletions gone.
pub fn apply_changes(
    base: Vec<ManifestEntry>,
    overlay: &mut std::collections::BTreeMap<String, ManifestEntry>,
    through: Option<&str>,
) -> Vec<ManifestEntry> {
    let taken: Vec<ManifestEntry> = match through {
        None => std::mem::take(overlay).into_values().collect(),
        Some(key) => {
            let rest = overlay.split_off(&format!("{key}\0"));
            std::mem::replace(overlay, rest).into_values().collect()
        }
    };
    let mut out = Vec::with_capacity(base.len() + taken.len());
    for joined in join_by_key(&base, &taken) {
        match joined {
            Joined::Left(e) => out.push(e.clone()),
            Joined::Right(change) | Joined::Both(_, change) => {
                if !change.deleted {
                    out.push(change.clone());
                }
            }
        }
    }
    out
}

pub use crate::model::BackupRetention;

/// The points in time that retention expires: older than the window and not among the newest
/// `min_points`. The newest point in time never expires. A full point and the change points on
/// it expire together, once every one of them would (a change point is read through its full
/// point, and the oldest retained point must be a full one).
pub fn expired_points<'a>(points: &'a [PointInTime], keep: &BackupRetention, now: DateTime<Utc>) -> Vec<&'a str> {
    let mut by_age: Vec<&PointInTime> = points.iter().collect();
    by_age.sort_by(|a, b| b.finished.cmp(&a.finished).then_with(|| b.run_id.cmp(&a.run_id)));
    let cutoff = now - Duration::days(i64::from(keep.days));
    let kept: HashSet<&str> = by_age
        .iter()
        .enumerate()
        .filter(|(i, p)| *i < keep.min_points.max(1) as usize || p.finished >= cutoff)
        .map(|(_, p)| p.base_id())
        .collect();
    by_age
        .into_iter()
        .filter(|p| !kept.contains(p.base_id()))
        .map(|p| p.run_id.as_str())
        .collect()
}

/// The Object Lock default retention drpilot has seen on a DR bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockSeen {
    pub mode: String,
    pub days: u32,
    /// When the bucket was first seen with a shorter retention, or none: a copy that landed
    /// before then may stay locked until `days` after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lowered: Option<DateTime<Utc>>,
}

/// The locks retention must honour now, longest first: the bucket's current default retention
/// (`current`: mode and days), and each longer one seen before, for as long as a copy made
/// under it may still be locked (S3 locks each version from when it lands, with the retention
/// in force then; shortening the bucket's retention unlocks nothing). A lock seen shorter is
/// counted from when it was first seen so, the latest a copy under it can have landed.
pub fn locks_to_honour(seen: &[LockSeen], current: Option<(String, u32)>, now: DateTime<Utc>) -> Vec<LockSeen> {
    let current_days = current.as_ref().map_or(0, |(_, d)| *d);
    let mut out: Vec<LockSeen> = seen
        .iter()
        .filter(|s| s.days > current_days)
        .map(|s| LockSeen {
            lowered: Some(s.lowered.unwrap_or(now)),
            ..s.clone()
        })
        .filter(|s| s.lowered.is_some_and(|at| now < at + Duration::days(i64::from(s.days))))
        .collect();
    out.extend(current.map(|(mode, days)| LockSeen {
        mode,
        days,
        lowered: None,
    }));
    out.sort_by_key(|l| std::cmp::Reverse(l.days));
    out
}

/// The DR versions retention deletes: those the expiring points in time name and the oldest
/// retained one does not. Only versions drpilot wrote are ever named (each manifest entry is a
/// version drpilot copied, or carried over from a point before), so nothing another writer put
/// in the DR bucket is ever a candidate. The oldest retained point alone decides: points are
/// made one after another, each run starting from the point before it, so a version a later
/// point names, every point between names too. `(key, version id)` pairs, in key order; an
/// entry without a version id (an unversioned copy) is never a candidate.
pub fn prunable_versions<'a>(
    expiring: impl IntoIterator<Item = &'a ManifestEntry>,
    kept: impl IntoIterator<Item = &'a ManifestEntry>,
) -> Vec<(String, String)> {
    let kept: HashSet<(&str, &str)> = kept.into_iter().map(|e| (e.key.as_str(), e.version.as_str())).collect();
    let doomed: std::collections::BTreeSet<(&str, &str)> = expiring
        .into_iter()
        .map(|e| (e.key.as_str(), e.version.as_str()))
        .filter(|(_, version)| !version.is_empty())
        .filter(|v| !kept.contains(v))
        .collect();
    doomed
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What a restore does with one key.
#[derive(Debug, PartialEq)]
pub enum RestoreStep<'a> {
    /// Copy the point in time's version into the target.
    Copy(&'a ManifestEntry),
    /// The target already holds these bytes (same size and ETag).
    Unchanged(&'a ManifestEntry),
    /// In the target but not in the point in time: deleted only when asked.
    Extra(&'a ObjectInfo),
}

/// Compares a point in time's entries with the target's listing of the same key range (target
/// keys already mapped into the backup's key space).
pub fn plan_restore<'a>(point: &'a [ManifestEntry], target: &'a [ObjectInfo]) -> Vec<RestoreStep<'a>> {
    join_by_key(point, target)
        .into_iter()
        .map(|joined| match joined {
            Joined::Left(entry) => RestoreStep::Copy(entry),
            Joined::Right(object) => RestoreStep::Extra(object),
            Joined::Both(entry, object) if object.size == entry.size && object.etag == entry.etag => {
                RestoreStep::Unchanged(entry)
            }
            Joined::Both(entry, _) => RestoreStep::Copy(entry),
        })
        .collect()
}

const MIB: i64 = 1024 * 1024;
/// S3's limits for a multipart copy.
const MIN_PART: i64 = 5 * MIB;
const MAX_PART: i64 = 5 * 1024 * MIB;
const MAX_PARTS: i64 = 10_000;

/// The byte ranges (inclusive, as `x-amz-copy-source-range` takes them) of a multipart copy:
/// 512 MiB parts (or the threshold, if lower), larger when 10,000 parts would not cover the
/// object, always within S3's 5 MiB..=5 GiB.
pub fn copy_part_ranges(size: i64, threshold: i64) -> Vec<(i64, i64)> {
    let needed = (size + MAX_PARTS - 1) / MAX_PARTS;
    let part = threshold.min(512 * MIB).max(needed).clamp(MIN_PART, MAX_PART);
    (0..size)
        .step_by(part as usize)
        .map(|start| (start, (start + part).min(size) - 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, h, 0, 0).unwrap()
    }

    fn obj(key: &str, size: i64, etag: &str, h: u32) -> ObjectInfo {
        ObjectInfo {
            key: key.into(),
            size,
            etag: etag.into(),
            last_modified: Some(t(h)),
        }
    }

    fn entry(key: &str, size: i64, etag: &str, h: u32, version: &str) -> ManifestEntry {
        ManifestEntry {
            key: key.into(),
            size,
            etag: etag.into(),
            modified: Some(t(h)),
            version: version.into(),
            deleted: false,
        }
    }

    #[test]
    fn a_first_run_copies_every_object() {
        let source = [obj("a", 1, "e1", 1), obj("b", 2, "e2", 1)];
        let diff = diff_page(&source, &[]);
        assert!(diff.deleted.is_empty());
        assert_eq!(
            diff.changes,
            vec![
                Change::Copy {
                    object: &source[0],
                    previous: None
                },
                Change::Copy {
                    object: &source[1],
                    previous: None
                }
            ]
        );
    }

    #[test]
    fn unchanged_objects_are_carried_and_changed_ones_copied() {
        let source = [
            obj("a", 1, "e1", 1), // unchanged
            obj("b", 3, "e2", 1), // size changed
            obj("c", 1, "e9", 1), // etag changed
            obj("d", 1, "e4", 5), // rewritten with the same bytes: last-modified changed
            obj("e", 1, "e5", 1), // new
        ];
        let previous = [
            entry("a", 1, "e1", 1, "v1"),
            entry("b", 2, "e2", 1, "v2"),
            entry("c", 1, "e3", 1, "v3"),
            entry("d", 1, "e4", 1, "v4"),
            entry("gone", 1, "e6", 1, "v6"),
        ];
        let diff = diff_page(&source, &previous);
        assert_eq!(diff.changes[0], Change::Unchanged(&previous[0]));
        for (i, change) in diff.changes.iter().enumerate().skip(1).take(3) {
            assert_eq!(
                *change,
                Change::Copy {
                    object: &source[i],
                    previous: Some(&previous[i])
                },
                "object {i}"
            );
        }
        assert_eq!(
            diff.changes[4],
            Change::Copy {
                object: &source[4],
                previous: None
            }
        );
        assert_eq!(diff.deleted, vec![&previous[4]]);
    }

    #[test]
    fn an_inventory_older_than_the_previous_point_never_undoes_it() {
        let taken = t(10);
        let previous = vec![
            entry("changed-before", 1, "\"e1\"", 5, "v1"),
            entry("changed-since", 1, "\"e2\"", 12, "v2"),
            entry("created-since", 1, "\"e3\"", 11, "v3"),
            entry("deleted", 1, "\"e4\"", 5, "v4"),
            entry("missed", 1, "\"e5\"", 9, "v5"),
            entry("same", 1, "\"e6\"", 5, "v6"),
        ];
        let report = vec![
            obj("changed-before", 2, "\"e1b\"", 8),
            obj("changed-since", 1, "\"e2-old\"", 6),
            obj("new", 1, "\"e7\"", 9),
            obj("same", 1, "\"e6\"", 5),
        ];
        let looked: Vec<&str> = unlisted(&report, &previous, taken)
            .iter()
            .map(|e| e.key.as_str())
            .collect();
        assert_eq!(looked, ["deleted", "missed"]);
        // the look found "missed" still there, "deleted" gone
        let present: HashSet<&str> = ["missed"].into();
        let diff = diff_inventory_page(&report, &previous, taken, &present);
        let copied: Vec<&str> = diff
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Copy { object, .. } => Some(object.key.as_str()),
                Change::Unchanged(_) => None,
            })
            .collect();
        let kept: Vec<&str> = diff
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Unchanged(e) => Some(e.key.as_str()),
                Change::Copy { .. } => None,
            })
            .collect();
        // (changed-since is copied as the report saw it, pinned to that ETag: S3 refuses, and the
        // run looks again; Last-Modified is not trusted to order versions)
        assert_eq!(copied, ["changed-before", "changed-since", "new"]);
        assert_eq!(kept, ["created-since", "missed", "same"]);
        assert_eq!(
            diff.deleted.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            ["deleted"]
        );
        // in key order, as a page's manifest part is written
        let order: Vec<&str> = diff
            .changes
            .iter()
            .map(|c| match c {
                Change::Unchanged(e) => e.key.as_str(),
                Change::Copy { object, .. } => object.key.as_str(),
            })
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    }

    #[test]
    fn keys_compare_in_s3_listing_order() {
        // S3 lists in UTF-8 byte order: "B" < "a" < "é"; "a/" < "a0".
        let source = [
            obj("B", 1, "x", 1),
            obj("a/", 0, "d", 1),
            obj("a0", 1, "y", 1),
            obj("é", 1, "z", 1),
        ];
        let previous = [entry("a0", 1, "y", 1, "v"), entry("é", 1, "z", 1, "w")];
        let diff = diff_page(&source, &previous);
        assert!(diff.deleted.is_empty());
        assert_eq!(
            diff.changes
                .iter()
                .filter(|c| matches!(c, Change::Unchanged(_)))
                .count(),
            2
        );
    }

    fn point(id: &str, finished_h: u32) -> PointInTime {
        PointInTime {
            run_id: id.into(),
            started: t(finished_h),
            finished: t(finished_h),
            objects: 1,
            bytes: 1,
            failed: 0,
            parts: 1,
            writers: vec![],
            base: None,
            as_of: None,
        }
    }

    #[test]
    fn each_part_is_read_from_the_invocation_that_wrote_it() {
        let writers = [
            PartWriter {
                from_part: 1,
                invocation: 1,
            },
            PartWriter {
                from_part: 4,
                invocation: 3,
            },
        ];
        assert_eq!(part_writer(&writers, 1), 1);
        assert_eq!(part_writer(&writers, 3), 1);
        assert_eq!(part_writer(&writers, 4), 3);
        assert_eq!(part_writer(&writers, 9), 3);
    }

    #[test]
    fn points_expire_after_the_window_but_the_newest_stay() {
        let points = [point("r1", 1), point("r2", 2), point("r3", 3), point("r4", 4)];
        let now = t(4) + Duration::days(10);
        let keep = BackupRetention { days: 7, min_points: 1 };
        assert_eq!(expired_points(&points, &keep, now), vec!["r3", "r2", "r1"]);
        let keep = BackupRetention { days: 7, min_points: 2 };
        assert_eq!(expired_points(&points, &keep, now), vec!["r2", "r1"]);
        let keep = BackupRetention {
            days: 30,
            min_points: 1,
        };
        assert!(expired_points(&points, &keep, now).is_empty());
        // min_points 0 still keeps the newest.
        let keep = BackupRetention { days: 0, min_points: 0 };
        assert_eq!(expired_points(&points, &keep, now).len(), 3);
    }

    fn change_point(id: &str, finished_h: u32, base: &str) -> PointInTime {
        PointInTime {
            base: Some(base.into()),
            ..point(id, finished_h)
        }
    }

    #[test]
    fn a_full_point_and_its_change_points_expire_together() {
        // r1 <- c1, c2 (changes on r1); r3 <- c4
        let points = [
            point("r1", 1),
            change_point("c1", 2, "r1"),
            change_point("c2", 3, "r1"),
            point("r3", 4),
            change_point("c4", 5, "r3"),
        ];
        let keep = BackupRetention { days: 7, min_points: 1 };
        let mut gone = expired_points(&points, &keep, t(5) + Duration::days(10));
        gone.sort();
        assert_eq!(gone, vec!["c1", "c2", "r1"], "the newest chain stays whole");
        // c2 still within the window: r1 and c1 stay for it (c2 is read through them)
        let now = t(3) + Duration::days(7) - Duration::minutes(30);
        assert!(expired_points(&points, &keep, now).is_empty());
        assert_eq!(
            chain(&points, "c2")
                .unwrap()
                .iter()
                .map(|p| p.run_id.as_str())
                .collect::<Vec<_>>(),
            ["r1", "c1", "c2"]
        );
        assert_eq!(chain(&points, "r3").unwrap().len(), 1);
        assert!(
            chain(&points[1..], "c2").is_none(),
            "a change point without its full point"
        );
    }

    #[test]
    fn changes_apply_in_order_and_deletions_drop_keys() {
        let full = [
            entry("a", 1, "ea", 1, "va"),
            entry("b", 1, "eb", 1, "vb"),
            entry("d", 1, "ed", 1, "vd"),
        ];
        let mut overlay: std::collections::BTreeMap<String, ManifestEntry> = [
            (
                "b".to_string(),
                ManifestEntry {
                    deleted: true,
                    version: String::new(),
                    ..entry("b", 0, "", 1, "")
                },
            ),
            ("c".to_string(), entry("c", 2, "ec", 2, "vc")),
            ("d".to_string(), entry("d", 3, "ed2", 2, "vd2")),
            ("e".to_string(), entry("e", 1, "ee", 2, "ve")),
        ]
        .into();
        // the first part of the full point ends at "b": changes up to "b" only
        let first = apply_changes(full[..2].to_vec(), &mut overlay, Some("b"));
        assert_eq!(first.iter().map(|e| e.version.as_str()).collect::<Vec<_>>(), ["va"]);
        let second = apply_changes(full[2..].to_vec(), &mut overlay, Some("d"));
        assert_eq!(
            second.iter().map(|e| e.version.as_str()).collect::<Vec<_>>(),
            ["vc", "vd2"]
        );
        let rest = apply_changes(vec![], &mut overlay, None);
        assert_eq!(rest.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["e"]);
        assert!(overlay.is_empty());
    }

    fn named(key: &str, version: &str) -> ManifestEntry {
        entry(key, 1, "\"e\"", 1, version)
    }

    #[test]
    fn prunes_the_versions_only_expiring_points_name_once_each() {
        // Two expiring points and the oldest retained one: "a" changed twice, "b" was deleted
        // at the source, "c" never changed, "d" was copied to an unversioned bucket.
        let older = [named("a", "a1"), named("b", "b1"), named("c", "c1"), named("d", "")];
        let newer = [named("a", "a2"), named("b", "b1"), named("c", "c1")];
        let kept = [named("a", "a3"), named("c", "c1")];
        let pruned = prunable_versions(older.iter().chain(&newer), &kept);
        assert_eq!(
            pruned,
            [("a", "a1"), ("a", "a2"), ("b", "b1")].map(|(k, v)| (k.to_string(), v.to_string()))
        );
        // Nothing expiring, nothing pruned: a version no manifest names (another writer's, or a
        // copy an invocation killed before it recorded it) is never a candidate.
        assert!(prunable_versions(&[], &kept).is_empty());
    }

    #[test]
    fn restore_copies_what_differs_and_reports_extras() {
        let point = [
            entry("a", 1, "e1", 1, "v1"),
            entry("b", 2, "e2", 1, "v2"),
            entry("c", 3, "e3", 1, "v3"),
        ];
        let target = [obj("a", 1, "e1", 7), obj("b", 2, "changed", 7), obj("z", 1, "e", 7)];
        let steps = plan_restore(&point, &target);
        assert_eq!(
            steps,
            vec![
                RestoreStep::Unchanged(&point[0]),
                RestoreStep::Copy(&point[1]),
                RestoreStep::Copy(&point[2]),
                RestoreStep::Extra(&target[2]),
            ]
        );
    }

    #[test]
    fn multipart_copies_stay_within_s3_part_limits() {
        let ranges = copy_part_ranges(12 * MIB, 5 * MIB);
        assert_eq!(
            ranges,
            vec![(0, 5 * MIB - 1), (5 * MIB, 10 * MIB - 1), (10 * MIB, 12 * MIB - 1)]
        );
        // 6 GiB at the default 5 GiB threshold: 512 MiB parts.
        assert_eq!(copy_part_ranges(6 * 1024 * MIB, 5 * 1024 * MIB).len(), 12);
        // 5 TiB, S3's largest object: parts grow so that 10,000 suffice.
        let huge = 5 * 1024 * 1024 * MIB;
        let ranges = copy_part_ranges(huge, 5 * 1024 * MIB);
        assert!(ranges.len() <= 10_000);
        assert_eq!(ranges.last().unwrap().1, huge - 1);
        assert!(ranges.windows(2).all(|w| w[1].0 == w[0].1 + 1));
    }

    #[test]
    fn manifest_lines_are_compact_json() {
        let e = entry("photos/1.jpg", 10, "\"abc\"", 1, "v1");
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(
            line,
            r#"{"k":"photos/1.jpg","s":10,"e":"\"abc\"","m":"2026-11-01T01:00:00Z","v":"v1"}"#
        );
        assert_eq!(serde_json::from_str::<ManifestEntry>(&line).unwrap(), e);
    }

    proptest! {
        /// Whatever the two listings, the merge sees every key of both exactly once, in order.
        #[test]
        fn join_visits_every_key_once_in_order(
            left in proptest::collection::btree_set("[a-c]{1,3}", 0..20),
            right in proptest::collection::btree_set("[a-c]{1,3}", 0..20),
        ) {
            let l: Vec<ObjectInfo> = left.iter().map(|k| obj(k, 1, "e", 1)).collect();
            let r: Vec<ManifestEntry> = right.iter().map(|k| entry(k, 1, "e", 1, "v")).collect();
            let keys: Vec<&str> = join_by_key(&l, &r).iter().map(|j| match j {
                Joined::Left(o) => o.key.as_str(),
                Joined::Right(e) => e.key.as_str(),
                Joined::Both(o, e) => { assert_eq!(o.key, e.key); o.key.as_str() }
            }).collect();
            let expected: Vec<&str> = left.union(&right).map(String::as_str).collect();
            prop_assert_eq!(keys, expected);
        }

        /// A run that finds nothing changed copies nothing and carries every entry.
        #[test]
        fn an_unchanged_bucket_copies_nothing(keys in proptest::collection::btree_set("[a-z/]{1,8}", 0..50)) {
            let source: Vec<ObjectInfo> = keys.iter().map(|k| obj(k, k.len() as i64, k, 2)).collect();
            let previous: Vec<ManifestEntry> = keys.iter().map(|k| entry(k, k.len() as i64, k, 2, "v")).collect();
            let diff = diff_page(&source, &previous);
            prop_assert!(diff.deleted.is_empty());
            prop_assert!(diff.changes.iter().all(|c| matches!(c, Change::Unchanged(_))));
        }

        /// Retention never expires the newest point in time.
        #[test]
        fn the_newest_point_survives_any_policy(
            hours in proptest::collection::vec(0u32..24, 1..10),
            days in 0u32..5,
            min_points in 0u32..3,
        ) {
            let points: Vec<PointInTime> = hours.iter().enumerate().map(|(i, h)| point(&format!("r{i:02}"), *h)).collect();
            let newest = points.iter().max_by(|a, b| a.finished.cmp(&b.finished).then_with(|| a.run_id.cmp(&b.run_id))).unwrap();
            let expired = expired_points(&points, &BackupRetention { days, min_points }, t(23) + Duration::days(30));
            prop_assert!(!expired.contains(&newest.run_id.as_str()));
        }
    }

    #[test]
    fn a_shortened_or_removed_lock_is_honoured_until_copies_made_under_the_longer_one_lapse() {
        let now = t(10);
        let lock = |days| Some(("COMPLIANCE".to_string(), days));
        let seen = |days, lowered| LockSeen {
            mode: "COMPLIANCE".into(),
            days,
            lowered,
        };
        let days = |locks: Vec<LockSeen>| locks.iter().map(|l| (l.days, l.lowered)).collect::<Vec<_>>();
        assert_eq!(locks_to_honour(&[], None, now), vec![]);
        assert_eq!(locks_to_honour(&[], lock(30), now), vec![seen(30, None)]);
        // longer now: the new one alone
        assert_eq!(days(locks_to_honour(&[seen(10, None)], lock(30), now)), [(30, None)]);
        // shortened (or removed): the longer one too, from when the change was first seen
        assert_eq!(
            days(locks_to_honour(&[seen(30, None)], lock(7), now)),
            [(30, Some(now)), (7, None)]
        );
        assert_eq!(days(locks_to_honour(&[seen(30, None)], None, now)), [(30, Some(now))]);
        let later = now + Duration::days(29);
        assert_eq!(
            days(locks_to_honour(&[seen(30, Some(now)), seen(7, None)], lock(7), later)),
            [(30, Some(now)), (7, None)]
        );
        // 30 days, shortened at `now`; raised to 20 at day 25 and shortened again to 1 at
        // day 26: each is honoured for its own copies
        let day = |d| now + Duration::days(d);
        let at25 = locks_to_honour(&[seen(30, Some(now))], lock(20), day(25));
        let at26 = locks_to_honour(&at25, lock(1), day(26));
        assert_eq!(days(at26.clone()), [(30, Some(now)), (20, Some(day(26))), (1, None)]);
        let at31 = locks_to_honour(&at26, lock(1), day(31));
        assert_eq!(
            days(at31.clone()),
            [(20, Some(day(26))), (1, None)],
            "the 30 days lapsed"
        );
        // every copy made under them has lapsed: the bucket's own again
        assert_eq!(days(locks_to_honour(&at31, lock(1), day(46))), [(1, None)]);
        let removed = locks_to_honour(&at31, None, day(46));
        assert_eq!(
            days(removed.clone()),
            [(1, Some(day(46)))],
            "removed: a day more for the last copies"
        );
        assert_eq!(locks_to_honour(&removed, None, day(48)), vec![]);
    }
}
