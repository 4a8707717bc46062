//! Where a backup keeps its points in time, and streaming reads of their manifests.
//!
//! In the state bucket, per backup:
//! - `s3-backup/<name>/state.json`: the completed points in time, the run in progress (its
//!   lease and how far it got) and the points being expired. Changed only by conditional
//!   writes, so two invocations never both believe they own a run.
//! - `s3-backup/<name>/runs/<run id>/<part>.<invocation>.jsonl`: the run's manifest, one part
//!   per page of keys (a listing's 1,000, or an inventory report's 10,000), parts in key order, each named by the
//!   invocation that wrote it. Reading one part at a time keeps memory flat however large the
//!   bucket.
//! - `s3-backup/<name>/pins/<run id>.<holder>.json`: restores reading a point in time.

use crate::error::{Error, Result};
use crate::model::{BackupSpec, StateLocation};
use crate::plan::backup::{apply_changes, part_writer, ManifestEntry, PartWriter, PointInTime};
use crate::ports::{Documents, StateStore};
use crate::state::{Loaded, Record};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The backup's state object, relative to the state prefix (the lag checker reads it too).
pub fn backup_state_path(backup: &str) -> String {
    format!("s3-backup/{backup}/state.json")
}

pub fn state_key(state: &StateLocation, spec: &BackupSpec) -> String {
    state.key(&backup_state_path(&spec.name))
}

/// A manifest part: `<part>.<invocation that wrote it>.jsonl`.
pub fn part_key(state: &StateLocation, spec: &BackupSpec, run_id: &str, part: u32, writers: &[PartWriter]) -> String {
    let invocation = part_writer(writers, part);
    state.key(&format!(
        "s3-backup/{}/runs/{run_id}/{part:06}.{invocation}.jsonl",
        spec.name
    ))
}

/// A restore reading a point in time: retention keeps the point while a live pin names it.
/// One object per restore (`pins/<run id>.<holder>.json`), so concurrent restores never
/// overwrite each other's pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub run_id: String,
    pub holder: String,
    pub until: DateTime<Utc>,
}

pub fn pins_prefix(state: &StateLocation, spec: &BackupSpec) -> String {
    state.key(&format!("s3-backup/{}/pins/", spec.name))
}

pub fn pin_key(state: &StateLocation, spec: &BackupSpec, pin: &Pin) -> String {
    format!("{}{}.{}.json", pins_prefix(state, spec), pin.run_id, pin.holder)
}

/// The run ids that live pins name (a pin that cannot be read counts as live).
pub async fn pinned<D: Documents>(
    docs: &D,
    state: &StateLocation,
    spec: &BackupSpec,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let prefix = pins_prefix(state, spec);
    let mut out = Vec::new();
    for key in docs.keys(&prefix).await? {
        let run_id = key[prefix.len()..].split('.').next().unwrap_or_default().to_string();
        let live = match docs.get(&key).await? {
            Some(body) => serde_json::from_slice::<Pin>(&body).map_or(true, |p| p.until > now),
            None => false,
        };
        if live {
            out.push(run_id);
        }
    }
    Ok(out)
}

/// Counts of one run (or one invocation's share of it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCounts {
    /// Objects listed at the source (or read from the inventory report, with the entries that
    /// stand where the report has not caught up).
    pub listed: u64,
    pub copied: u64,
    pub bytes_copied: u64,
    /// Same as in the previous point in time: no request beyond the listing.
    pub unchanged: u64,
    pub failed: u64,
    /// Changed or deleted at the source after the inventory report the run reads was taken
    /// (its copy found another ETag, or nothing): the version the previous point holds stands
    /// in until the event path or the next run records the change. Not a failure.
    #[serde(default)]
    pub moved_on: u64,
    /// In the previous point in time, gone from the source now (older points keep them).
    pub deleted_at_source: u64,
    /// Objects and bytes the new point in time holds.
    pub objects: u64,
    pub bytes: u64,
}

impl RunCounts {
    pub fn add(&mut self, other: &RunCounts) {
        self.listed += other.listed;
        self.copied += other.copied;
        self.bytes_copied += other.bytes_copied;
        self.unchanged += other.unchanged;
        self.failed += other.failed;
        self.moved_on += other.moved_on;
        self.deleted_at_source += other.deleted_at_source;
        self.objects += other.objects;
        self.bytes += other.bytes;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectFailure {
    pub key: String,
    pub reason: String,
}

/// The previous point in time, and how far the run's merge has read its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseCursor {
    pub run_id: String,
    pub parts: u32,
    #[serde(default)]
    pub writers: Vec<PartWriter>,
    /// The part to read from when the run resumes (entries up to `after_key` are skipped).
    pub resume_part: u32,
    /// The change points on the full point, oldest first, up to the point this cursor reads
    /// (none for a full point): their changes are applied as the full point is read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ManifestRef>,
}

/// Where a point's own manifest is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRef {
    pub run_id: String,
    pub parts: u32,
    #[serde(default)]
    pub writers: Vec<PartWriter>,
}

impl ManifestRef {
    pub fn of(point: &PointInTime) -> Self {
        ManifestRef {
            run_id: point.run_id.clone(),
            parts: point.parts,
            writers: point.writers.clone(),
        }
    }
}

pub use crate::state::Lease;

/// A run that has started and not finished: it resumes where it stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunProgress {
    pub run_id: String,
    pub started: DateTime<Utc>,
    pub base: Option<BaseCursor>,
    /// The last source key recorded in the manifest; the listing goes on after it.
    pub after_key: Option<String>,
    pub parts: u32,
    pub counts: RunCounts,
    /// The first failures, for the report (the count is in `counts.failed`).
    pub failures: Vec<ObjectFailure>,
    pub lease: Lease,
    /// Invocations that have held the run, counting this one (each one's number tags its parts).
    pub invocations: u32,
    #[serde(default)]
    pub writers: Vec<PartWriter>,
    /// Multipart copies an invocation stopped in the middle of: the next one goes on with them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uploads: Vec<PendingUpload>,
    /// Copies an invocation finished past where it cut its page: the next one records them
    /// instead of copying again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copied_ahead: Vec<CopiedAhead>,
    /// The S3 Inventory report the run reads its keys from (`None`: it lists the bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<super::inventory::ReportRef>,
    /// When the report the run started on was taken: the point's recovery point, even if the
    /// rest of the run lists the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<DateTime<Utc>>,
}

/// A copy of `key` (as listed, `etag`) made past a page's cut, and its DR version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopiedAhead {
    pub key: String,
    pub etag: String,
    pub version: String,
}

/// A multipart copy of `key` (as it was when listed, `etag`) that goes on across invocations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingUpload {
    pub key: String,
    pub etag: String,
    pub upload: crate::ports::Upload,
}

/// Everything a backup remembers between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupState {
    /// Completed runs, oldest first: the points in time a restore can choose.
    #[serde(default)]
    pub points: Vec<PointInTime>,
    #[serde(default)]
    pub running: Option<RunProgress>,
    /// Points past retention whose manifests and unneeded versions are being removed.
    #[serde(default)]
    pub expiring: Vec<PointInTime>,
    /// Held while retention deletes versions; no run starts meanwhile.
    #[serde(default)]
    pub retention_lease: Option<Lease>,
    /// The last key whose expiring versions are deleted: an interrupted retention resumes after
    /// it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned_through: Option<String>,
    /// Restore pins are still to be looked for, once, after the expiring set was recorded
    /// (before that, a pin keeps its point); once looked for, none counts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pins_pending: bool,
    /// The expiring points' versions are pruned; only their manifests are left to delete.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub versions_pruned: bool,
    /// The DR bucket's Object Lock retentions that retention honours, longest first
    /// (`plan::backup::locks_to_honour`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locks: Vec<crate::plan::backup::LockSeen>,
}

impl BackupState {
    /// The state at `key` and the version a write must match; the empty state (and no
    /// version) when the backup has not run yet.
    pub async fn load<S: StateStore>(store: &S, key: &str) -> Result<(Self, Option<String>)> {
        match Record::new(store, key).read().await? {
            Loaded::Absent => Ok((Self::default(), None)),
            Loaded::Found { value, etag } => Ok((value, Some(etag))),
            Loaded::Unreadable { error, .. } => {
                Err(Error::RunFailed(format!("backup state {key} is unreadable: {error}")))
            }
        }
    }

    pub async fn read<S: StateStore>(store: &S, key: &str) -> Result<Self> {
        Ok(Self::load(store, key).await?.0)
    }

    /// The point in time with this run id, or the newest for `None`.
    pub fn point(&self, run_id: Option<&str>) -> Option<&PointInTime> {
        match run_id {
            Some(id) => self.points.iter().find(|p| p.run_id == id),
            None => self.points.last(),
        }
    }

    /// A run id for a point started `now`, unique among every point that still has a
    /// manifest (`20261127T070000Z`, then `-2`, ...).
    pub fn new_run_id(&self, now: DateTime<Utc>) -> String {
        self.unused_run_id(now.format("%Y%m%dT%H%M%SZ").to_string())
    }

    /// A change point's run id: the time, and a short hash of the invocation's request id
    /// (`20261127T070000Z-c3f2a1b0`): no scheduled run's id, and no other invocation's.
    pub fn new_run_id_for(&self, now: DateTime<Utc>, request_id: &str) -> String {
        let hash = crate::plan::copy::fnv1a32(request_id.as_bytes());
        self.unused_run_id(format!("{}-c{hash:08x}", now.format("%Y%m%dT%H%M%SZ")))
    }

    /// `base`, or `base-2`, `base-3`, ...: the first no point with a manifest has.
    fn unused_run_id(&self, base: String) -> String {
        let taken = |id: &str| self.points.iter().chain(&self.expiring).any(|p| p.run_id == id);
        std::iter::once(base.clone())
            .chain((2..).map(|n| format!("{base}-{n}")))
            .find(|id| !taken(id))
            .unwrap_or(base)
    }

    /// How to read what point `run_id` holds, from its first part: its full point's manifest
    /// and the change points on it up to it. `None` if it is not a (complete) retained point.
    pub fn cursor(&self, run_id: &str) -> Option<BaseCursor> {
        let chain = crate::plan::backup::chain(&self.points, run_id)?;
        let (full, changes) = chain.split_first()?;
        Some(BaseCursor {
            run_id: full.run_id.clone(),
            parts: full.parts,
            writers: full.writers.clone(),
            resume_part: 1,
            changes: changes.iter().map(|p| ManifestRef::of(p)).collect(),
        })
    }
}

/// The entries of change points, by key, the latest change winning (deletions included).
pub async fn changes_of<D: Documents>(
    docs: &D,
    state: &StateLocation,
    spec: &BackupSpec,
    changes: &[ManifestRef],
) -> Result<std::collections::BTreeMap<String, ManifestEntry>> {
    let mut overlay = std::collections::BTreeMap::new();
    for change in changes {
        let cursor = BaseCursor {
            run_id: change.run_id.clone(),
            parts: change.parts,
            writers: change.writers.clone(),
            resume_part: 1,
            changes: vec![],
        };
        let mut reader = ManifestReader::resume(docs, state, spec, &cursor);
        while let Some(entries) = reader.next_part().await? {
            overlay.extend(entries.into_iter().map(|e| (e.key.clone(), e)));
        }
    }
    Ok(overlay)
}

/// Reads what a point holds, part by part in key order: its full point's manifest, one part at
/// a time, with the changes of the change points on it applied (those are small: the changes
/// between two scheduled runs, held in memory).
pub struct PointReader<'a, D> {
    full: ManifestReader<'a, D>,
    changes: Vec<ManifestRef>,
    overlay: Option<std::collections::BTreeMap<String, ManifestEntry>>,
    done: bool,
}

impl<'a, D: Documents> PointReader<'a, D> {
    pub fn resume(docs: &'a D, state: &'a StateLocation, spec: &'a BackupSpec, cursor: &BaseCursor) -> Self {
        PointReader {
            full: ManifestReader::resume(docs, state, spec, cursor),
            changes: cursor.changes.clone(),
            overlay: None,
            done: false,
        }
    }

    /// The change points' entries by key, the latest change winning (read once).
    async fn overlay(&mut self) -> Result<&mut std::collections::BTreeMap<String, ManifestEntry>> {
        if self.overlay.is_none() {
            self.overlay = Some(changes_of(self.full.docs, self.full.state, self.full.spec, &self.changes).await?);
        }
        Ok(self.overlay.get_or_insert_with(Default::default))
    }

    /// The part a resumed reader must start from to see every entry not yet taken.
    pub fn resume_part(&self) -> u32 {
        self.full.resume_part()
    }

    /// The next part's entries, changes applied; `None` once every entry has been read.
    pub async fn next_part(&mut self) -> Result<Option<Vec<ManifestEntry>>> {
        if self.done {
            return Ok(None);
        }
        self.overlay().await?;
        // A part can be empty (a page whose every copy failed with no earlier version): it
        // says nothing of where the next changes end, so the next part is read instead.
        let part = loop {
            match self.full.next_part().await? {
                Some(entries) if entries.is_empty() => continue,
                other => break other,
            }
        };
        let overlay = self.overlay.get_or_insert_with(Default::default);
        match part {
            Some(entries) => {
                let last = entries.last().map(|e| e.key.clone());
                Ok(Some(apply_changes(entries, overlay, last.as_deref())))
            }
            None => {
                // Keys the changes added after the full point's last key.
                self.done = true;
                let rest = apply_changes(vec![], overlay, None);
                Ok((!rest.is_empty()).then_some(rest))
            }
        }
    }

    /// Every entry whose key sorts at or before `key`, in order, changes applied.
    pub async fn take_through(&mut self, key: &str) -> Result<Vec<ManifestEntry>> {
        self.overlay().await?;
        let entries = self.full.take_through(key).await?;
        Ok(apply_changes(
            entries,
            self.overlay.get_or_insert_with(Default::default),
            Some(key),
        ))
    }
}

/// Reads a manifest part by part, in key order, holding at most one part at a time.
pub struct ManifestReader<'a, D> {
    docs: &'a D,
    state: &'a StateLocation,
    spec: &'a BackupSpec,
    run_id: String,
    parts: u32,
    writers: Vec<PartWriter>,
    next_part: u32,
    buffered: VecDeque<ManifestEntry>,
    /// A missing part ends the manifest instead of failing the read (`lenient`).
    lenient: bool,
}

impl<'a, D: Documents> ManifestReader<'a, D> {
    /// Reads a point in time's manifest from its first part.
    pub fn new(docs: &'a D, state: &'a StateLocation, spec: &'a BackupSpec, point: &PointInTime) -> Self {
        let base = BaseCursor {
            run_id: point.run_id.clone(),
            parts: point.parts,
            writers: point.writers.clone(),
            resume_part: 1,
            changes: vec![],
        };
        Self::resume(docs, state, spec, &base)
    }

    /// Reads a run's base manifest from where the run got to.
    pub fn resume(docs: &'a D, state: &'a StateLocation, spec: &'a BackupSpec, base: &BaseCursor) -> Self {
        ManifestReader {
            docs,
            state,
            spec,
            run_id: base.run_id.clone(),
            parts: base.parts,
            writers: base.writers.clone(),
            next_part: base.resume_part.max(1),
            buffered: VecDeque::new(),
            lenient: false,
        }
    }

    /// Reads what is left of a manifest that may be partly deleted (an expiring point's, after
    /// an interrupted cleanup): a missing part ends it.
    pub fn lenient(mut self) -> Self {
        self.lenient = true;
        self
    }

    /// The part a resumed reader must start from to see every entry not yet taken.
    pub fn resume_part(&self) -> u32 {
        self.next_part - u32::from(!self.buffered.is_empty())
    }

    /// The next part's entries; `None` once every part has been read.
    pub async fn next_part(&mut self) -> Result<Option<Vec<ManifestEntry>>> {
        if !self.buffered.is_empty() {
            return Ok(Some(self.buffered.drain(..).collect()));
        }
        if self.next_part > self.parts {
            return Ok(None);
        }
        let key = part_key(self.state, self.spec, &self.run_id, self.next_part, &self.writers);
        let Some(body) = self.docs.get(&key).await? else {
            if self.lenient {
                tracing::warn!(%key, "manifest part missing: the rest of this manifest is not read");
                self.next_part = self.parts + 1;
                return Ok(None);
            }
            return Err(Error::RunFailed(format!(
                "manifest part {key} of point in time {} is missing",
                self.run_id
            )));
        };
        self.next_part += 1;
        let text = String::from_utf8_lossy(&body);
        let entries = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| Error::RunFailed(format!("manifest part {key}: {e}"))))
            .collect::<Result<Vec<ManifestEntry>>>()?;
        Ok(Some(entries))
    }

    /// The last key of the part in memory, reading the next part when none is: how far a merge
    /// of several manifests can take from each without holding more than a part of any.
    /// `None` once every entry has been taken.
    pub async fn buffered_end(&mut self) -> Result<Option<String>> {
        while self.buffered.is_empty() {
            match self.next_part().await? {
                Some(part) => self.buffered = part.into(),
                None => return Ok(None),
            }
        }
        Ok(self.buffered.back().map(|e| e.key.clone()))
    }

    /// Drops every entry whose key sorts at or before `key` (a resumed walk's skip), holding at
    /// most one part.
    pub async fn skip_through(&mut self, key: &str) -> Result<()> {
        loop {
            while self.buffered.front().is_some_and(|e| e.key.as_str() <= key) {
                self.buffered.pop_front();
            }
            if !self.buffered.is_empty() {
                return Ok(());
            }
            match self.next_part().await? {
                Some(part) => self.buffered = part.into(),
                None => return Ok(()),
            }
        }
    }

    /// Every entry whose key sorts at or before `key`, in order.
    pub async fn take_through(&mut self, key: &str) -> Result<Vec<ManifestEntry>> {
        let mut out = Vec::new();
        loop {
            while self.buffered.front().is_some_and(|e| e.key.as_str() <= key) {
                out.extend(self.buffered.pop_front());
            }
            if !self.buffered.is_empty() {
                return Ok(out);
            }
            match self.next_part().await? {
                Some(part) => self.buffered = part.into(),
                None => return Ok(out),
            }
        }
    }
}

/// Encodes a manifest part: one JSON line per entry.
pub fn encode_part(entries: &[ManifestEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 120);
    for e in entries {
        // Serializing plain strings and numbers cannot fail.
        if let Ok(line) = serde_json::to_vec(e) {
            out.extend(line);
            out.push(b'\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::backup::ManifestEntry;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Docs(Mutex<HashMap<String, Vec<u8>>>);

    impl Documents for Docs {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
            Ok(self.0.lock().unwrap().get(key).cloned())
        }
        async fn put(&self, key: &str, body: Vec<u8>) -> Result<()> {
            self.0.lock().unwrap().insert(key.into(), body);
            Ok(())
        }
        async fn delete(&self, key: &str) -> Result<()> {
            self.0.lock().unwrap().remove(key);
            Ok(())
        }
        async fn keys(&self, prefix: &str) -> Result<Vec<String>> {
            Ok(self
                .0
                .lock()
                .unwrap()
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect())
        }
    }

    fn e(key: &str, version: &str) -> ManifestEntry {
        ManifestEntry {
            key: key.into(),
            size: 1,
            etag: version.into(),
            modified: None,
            version: version.into(),
            deleted: false,
        }
    }

    fn gone(key: &str) -> ManifestEntry {
        ManifestEntry {
            deleted: true,
            version: String::new(),
            ..e(key, "")
        }
    }

    fn spec() -> BackupSpec {
        crate::config::BackupConfig::from_vars(&HashMap::from([
            ("DRPILOT_SOURCE_REGION", "us-east-1"),
            ("DRPILOT_DR_REGION", "us-west-2"),
            (
                "DRPILOT_S3_BACKUPS",
                r#"[{"name": "assets", "source_bucket": "a-prod", "dr_bucket": "a-dr"}]"#,
            ),
            ("DRPILOT_STATE_BUCKET", "drpilot-state"),
            ("DRPILOT_NOTIFY_TOPIC_ARN", "arn:aws:sns:us-west-2:123456789012:drpilot"),
        ]))
        .unwrap()
        .backups[0]
            .clone()
    }

    /// A point's manifest, one part per slice.
    async fn write(
        docs: &Docs,
        state: &StateLocation,
        spec: &BackupSpec,
        run_id: &str,
        parts: &[Vec<ManifestEntry>],
    ) -> ManifestRef {
        let writers = vec![PartWriter {
            from_part: 1,
            invocation: 1,
        }];
        for (i, part) in parts.iter().enumerate() {
            docs.put(
                &part_key(state, spec, run_id, i as u32 + 1, &writers),
                encode_part(part),
            )
            .await
            .unwrap();
        }
        ManifestRef {
            run_id: run_id.into(),
            parts: parts.len() as u32,
            writers,
        }
    }

    fn keys_versions(entries: &[ManifestEntry]) -> Vec<(String, String)> {
        entries.iter().map(|e| (e.key.clone(), e.version.clone())).collect()
    }

    #[tokio::test]
    async fn a_point_reads_as_its_full_manifest_with_each_change_applied_in_order() {
        let (docs, spec) = (Docs::default(), spec());
        let state = StateLocation {
            bucket: "drpilot-state".into(),
            prefix: "drpilot/".into(),
        };
        // the full point: three parts, the second empty (a page whose copies all failed)
        let full = write(
            &docs,
            &state,
            &spec,
            "F",
            &[vec![e("b", "1"), e("d", "1")], vec![], vec![e("f", "1"), e("h", "1")]],
        )
        .await;
        let c1 = write(&docs, &state, &spec, "C1", &[vec![e("a", "2"), gone("d"), e("g", "2")]]).await;
        let c2 = write(
            &docs,
            &state,
            &spec,
            "C2",
            &[vec![e("a", "3"), e("d", "3"), gone("h"), e("z", "3")]],
        )
        .await;
        let cursor = BaseCursor {
            run_id: full.run_id.clone(),
            parts: full.parts,
            writers: full.writers.clone(),
            resume_part: 1,
            changes: vec![c1, c2],
        };
        let mut reader = PointReader::resume(&docs, &state, &spec, &cursor);
        let mut all = vec![];
        while let Some(part) = reader.next_part().await.unwrap() {
            all.extend(part);
        }
        let want = [("a", "3"), ("b", "1"), ("d", "3"), ("f", "1"), ("g", "2"), ("z", "3")];
        assert_eq!(keys_versions(&all), want.map(|(k, v)| (k.to_string(), v.to_string())));

        // read by key ranges (a scheduled run's pages), and resumed past a key
        let mut reader = PointReader::resume(&docs, &state, &spec, &cursor);
        assert_eq!(
            keys_versions(&reader.take_through("c").await.unwrap()),
            [("a".into(), "3".into()), ("b".into(), "1".into())]
        );
        assert_eq!(keys_versions(&reader.take_through("g").await.unwrap()).len(), 3);
        assert_eq!(
            keys_versions(&reader.take_through("zz").await.unwrap()),
            [("z".into(), "3".into())]
        );
        let mut resumed = PointReader::resume(&docs, &state, &spec, &cursor);
        resumed.take_through("d").await.unwrap();
        assert_eq!(
            keys_versions(&resumed.take_through("zz").await.unwrap()).len(),
            3,
            "f, g, z"
        );
    }
}
