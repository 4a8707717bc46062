//! Restore: copy a point in time back into a target bucket, server-side, from the DR bucket's
//! versions the manifest names. A dry run lists every action and changes nothing. Objects the
//! target already holds (same size and ETag) are left alone; objects the point in time does
//! not have are listed, and deleted only when asked.

use super::manifest::{pin_key, state_key, BackupState, BaseCursor, ObjectFailure, Pin, PointReader};
use crate::config::BackupConfig;
use crate::error::{Error, Result};
use crate::model::BackupSpec;
use crate::plan::backup::{plan_restore, ManifestEntry, PointInTime, RestoreStep};
use crate::ports::{Documents, ObjectCopy, ObjectInfo, ObjectStore, StateStore};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use std::collections::VecDeque;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreRequest {
    /// A point in time's run id; `None` for the newest.
    pub point: Option<String>,
    pub target_bucket: String,
    /// Where the backup's prefix maps to in the target; `None`: the same keys as the source.
    pub target_prefix: Option<String>,
    /// Delete target objects (under the target prefix) that the point in time does not hold,
    /// so the target ends up exactly as the source was.
    pub delete_extra: bool,
    /// `false`: a dry run that only lists the actions.
    pub apply: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreReport {
    pub backup: String,
    pub point: PointInTime,
    pub target: String,
    pub applied: bool,
    pub copied: u64,
    pub bytes_copied: u64,
    pub unchanged: u64,
    /// Target objects not in the point in time.
    pub extra: u64,
    pub deleted: u64,
    pub failed: u64,
    pub failures: Vec<ObjectFailure>,
}

/// The points in time a backup can restore, oldest first.
pub async fn points<D: StateStore>(docs: &D, cfg: &BackupConfig, spec: &BackupSpec) -> Result<Vec<PointInTime>> {
    Ok(BackupState::read(docs, &state_key(&cfg.state, spec)).await?.points)
}

/// Lists the target bucket in key order, one page at a time.
struct TargetCursor<'a, O> {
    store: &'a O,
    bucket: &'a str,
    prefix: &'a str,
    after: Option<String>,
    more: bool,
    buffered: VecDeque<ObjectInfo>,
}

impl<O: ObjectStore> TargetCursor<'_, O> {
    async fn fill(&mut self) -> Result<bool> {
        if !self.buffered.is_empty() {
            return Ok(true);
        }
        if !self.more {
            return Ok(false);
        }
        let page = self
            .store
            .list_page(self.bucket, self.prefix, self.after.as_deref())
            .await?;
        self.more = page.more && !page.items.is_empty();
        self.after = page.items.last().map(|o| o.key.clone());
        self.buffered = page.items.into();
        Ok(!self.buffered.is_empty())
    }

    /// Every listed object whose key sorts at or before `key` (`None`: all that remain of the next page).
    async fn take_through(&mut self, key: Option<&str>) -> Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        while self.fill().await? {
            while self
                .buffered
                .front()
                .is_some_and(|o| key.is_none_or(|k| o.key.as_str() <= k))
            {
                out.extend(self.buffered.pop_front());
            }
            if key.is_none() || !self.buffered.is_empty() {
                break;
            }
        }
        Ok(out)
    }
}

/// Restores one point in time. `say` gets one line per action (and is how a dry run reports).
pub async fn restore<D, O>(
    docs: &D,
    target: &O,
    cfg: &BackupConfig,
    spec: &BackupSpec,
    req: &RestoreRequest,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<RestoreReport>
where
    D: StateStore + Documents,
    O: ObjectStore,
{
    if req.target_bucket == spec.dr_bucket {
        return Err(Error::Refused(format!(
            "s3://{} is the backup's own DR bucket; restore into another bucket",
            spec.dr_bucket
        )));
    }
    let key = state_key(&cfg.state, spec);
    let state = BackupState::read(docs, &key).await?;
    let chosen = state.point(req.point.as_deref()).cloned().ok_or_else(|| {
        let known: Vec<&str> = state.points.iter().map(|p| p.run_id.as_str()).collect();
        Error::Refused(format!(
            "backup {} has no point in time {}; available: {}",
            spec.name,
            req.point.as_deref().unwrap_or("(none completed yet)"),
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        ))
    })?;
    if !req.apply {
        // A dry run writes nothing anywhere, not even a pin.
        let cursor = state.cursor(&chosen.run_id).ok_or_else(|| {
            Error::RunFailed(format!(
                "point in time {} has no full point to read it through",
                chosen.run_id
            ))
        })?;
        return restore_point(docs, target, cfg, spec, req, (chosen, &cursor), say).await;
    }
    // Pin the point, then check it is still a point (not being expired): see `Run::retention`.
    let pin = Pin {
        run_id: chosen.run_id.clone(),
        holder: format!(
            "restore-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ),
        until: chrono::Utc::now() + chrono::Duration::hours(24),
    };
    let pin_key = pin_key(&cfg.state, spec, &pin);
    let body = serde_json::to_vec(&pin).map_err(|e| Error::RunFailed(format!("cannot encode the pin: {e}")))?;
    docs.put(&pin_key, body).await?;
    let result = match BackupState::read(docs, &key).await {
        Ok(now) if now.point(Some(&chosen.run_id)).is_some() => match now.cursor(&chosen.run_id) {
            Some(cursor) => restore_point(docs, target, cfg, spec, req, (chosen, &cursor), say).await,
            None => Err(Error::RunFailed(format!(
                "point in time {} of backup {} is a change point whose full point is gone",
                chosen.run_id, spec.name
            ))),
        },
        Ok(_) => Err(Error::Refused(format!(
            "point in time {} of backup {} is being expired by retention; restore a newer point",
            chosen.run_id, spec.name
        ))),
        Err(e) => Err(e),
    };
    if let Err(e) = docs.delete(&pin_key).await {
        say(format!(
            "could not remove the restore's pin {pin_key} ({e}); it lapses at {}",
            pin.until
        ));
    }
    result
}

async fn restore_point<D, O>(
    docs: &D,
    target: &O,
    cfg: &BackupConfig,
    spec: &BackupSpec,
    req: &RestoreRequest,
    (point, cursor): (PointInTime, &BaseCursor),
    say: &mut (dyn FnMut(String) + Send),
) -> Result<RestoreReport>
where
    D: StateStore + Documents,
    O: ObjectStore,
{
    let target_prefix = req.target_prefix.clone().unwrap_or_else(|| spec.prefix.clone());
    // Source keys and target keys differ only in the prefix, so both keep the same order.
    let rebase = |key: &str, from: &str, to: &str| format!("{to}{}", key.strip_prefix(from).unwrap_or(key));
    let to_target = |key: &str| rebase(key, &spec.prefix, &target_prefix);
    let to_source = |key: &str| rebase(key, &target_prefix, &spec.prefix);
    let mut report = RestoreReport {
        backup: spec.name.clone(),
        point: point.clone(),
        target: format!("s3://{}/{target_prefix}", req.target_bucket),
        applied: req.apply,
        ..Default::default()
    };
    let verb = if req.apply { "" } else { "would " };
    let what = match &point.base {
        None => format!("point {}, {} objects", point.run_id, point.objects),
        Some(base) => format!("change point {} on {base}, {} changes", point.run_id, point.objects),
    };
    say(format!(
        "{}restore {} as of {} ({what}) into {}",
        verb,
        spec.name,
        point
            .recovery_point()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        report.target
    ));
    // What the point holds: its full point's manifest with the changes of the change points
    // up to it applied.
    let mut manifest = PointReader::resume(docs, &cfg.state, spec, cursor);
    let mut listing = TargetCursor {
        store: target,
        bucket: &req.target_bucket,
        prefix: &target_prefix,
        after: None,
        more: true,
        buffered: VecDeque::new(),
    };
    while let Some(entries) = manifest.next_part().await? {
        let Some(last) = entries.last() else { continue };
        let present = map_keys(listing.take_through(Some(&to_target(&last.key))).await?, &to_source);
        let steps = plan_restore(&entries, &present);
        apply(steps, target, cfg, spec, req, &to_target, &mut report, say).await;
    }
    loop {
        let rest = map_keys(listing.take_through(None).await?, &to_source);
        if rest.is_empty() {
            break;
        }
        let steps = rest.iter().map(RestoreStep::Extra).collect();
        apply(steps, target, cfg, spec, req, &to_target, &mut report, say).await;
    }
    let (done, copy, delete) = if req.apply {
        ("done", "copied", "deleted")
    } else {
        ("dry run, nothing changed", "to copy", "to delete")
    };
    say(format!(
        "{done}: {} {copy} ({} bytes), {} unchanged, {} extra ({} {delete}), {} failed",
        report.copied, report.bytes_copied, report.unchanged, report.extra, report.deleted, report.failed
    ));
    Ok(report)
}

fn map_keys(mut objects: Vec<ObjectInfo>, to_source: &dyn Fn(&str) -> String) -> Vec<ObjectInfo> {
    for o in &mut objects {
        o.key = to_source(&o.key);
    }
    objects
}

#[allow(clippy::too_many_arguments)]
async fn apply<O: ObjectStore>(
    steps: Vec<RestoreStep<'_>>,
    target: &O,
    cfg: &BackupConfig,
    spec: &BackupSpec,
    req: &RestoreRequest,
    to_target: &(dyn Fn(&str) -> String + Sync),
    report: &mut RestoreReport,
    say: &mut (dyn FnMut(String) + Send),
) {
    let mut copies: Vec<&ManifestEntry> = vec![];
    let mut deletions: Vec<String> = vec![];
    for step in steps {
        match step {
            RestoreStep::Unchanged(_) => report.unchanged += 1,
            RestoreStep::Copy(e) => {
                if !req.apply {
                    say(format!(
                        "would copy {} ({} bytes, DR version {})",
                        to_target(&e.key),
                        e.size,
                        e.version
                    ));
                    report.copied += 1;
                    report.bytes_copied += e.size.max(0) as u64;
                }
                copies.push(e);
            }
            RestoreStep::Extra(o) => {
                report.extra += 1;
                let key = to_target(&o.key);
                match (req.delete_extra, req.apply) {
                    (true, true) => deletions.push(key),
                    (true, false) => {
                        say(format!("would delete {key} (not in the point in time)"));
                        report.deleted += 1;
                    }
                    (false, _) => say(format!(
                        "extra {key} (not in the point in time; kept, --delete-extra removes it)"
                    )),
                }
            }
        }
    }
    if !req.apply {
        return;
    }
    let copies: Vec<ObjectCopy> = copies
        .into_iter()
        .map(|e| ObjectCopy {
            from_bucket: spec.dr_bucket.clone(),
            from_key: e.key.clone(),
            from_version: Some(e.version.clone()),
            if_match: None,
            size: e.size,
            to_bucket: req.target_bucket.clone(),
            to_key: to_target(&e.key),
            kms_key_id: None,
            storage_class: None,
        })
        .collect();
    let results = stream::iter(copies)
        .map(|copy| async move {
            let result = target.copy(&copy).await;
            (copy, result)
        })
        .buffer_unordered(cfg.copy_concurrency as usize)
        .collect::<Vec<_>>()
        .await;
    for (copy, result) in results {
        match result {
            Ok(_) => {
                report.copied += 1;
                report.bytes_copied += copy.size.max(0) as u64;
                say(format!("copied {} ({} bytes)", copy.to_key, copy.size));
            }
            Err(err) => fail(report, say, copy.to_key, err),
        }
    }
    for key in deletions {
        match target.delete_object(&req.target_bucket, &key).await {
            Ok(()) => {
                report.deleted += 1;
                say(format!("deleted {key}"));
            }
            Err(err) => fail(report, say, key, err),
        }
    }
}

fn fail(report: &mut RestoreReport, say: &mut (dyn FnMut(String) + Send), key: String, err: Error) {
    report.failed += 1;
    say(format!("FAILED {key}: {err}"));
    if report.failures.len() < 20 {
        report.failures.push(ObjectFailure {
            key,
            reason: err.to_string(),
        });
    }
}
