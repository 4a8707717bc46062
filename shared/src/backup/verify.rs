//! Restore tests of S3 backups: a sample of the newest point in time is restored, server-side
//! from the DR versions its manifest names, into a scratch prefix of the state bucket, read
//! back in full and compared with what the backup recorded (size; the SHA-256 S3 stored with
//! the DR copy, or the source's ETag where it is an MD5), then deleted, version and all. What
//! it finds is a verification like a database's: the point used, its age (the backup tier's
//! RPO), how long the sample took to restore and read, and the checks.

use super::manifest::{pin_key, state_key, BackupState, Pin, PointReader};
use crate::error::{Error, Result};
use crate::model::{BackupSpec, StateLocation};
use crate::plan::verify::Verification;
use crate::plan::verify::{compare_content, Check, Content, Sample};
use crate::ports::{Documents, ObjectCopy, ObjectStore, StateStore};
use chrono::{DateTime, Duration, Utc};
use tracing::{info, warn};

pub use crate::model::SampleSize;

/// Where restore tests of S3 backups put what they restore: under this prefix of the state
/// bucket (lifecycle rules there expire anything left within two to three days).
pub fn scratch_prefix(state: &StateLocation) -> String {
    state.key("restore-verifier/s3/")
}

/// The scratch key of the `i`th sampled object of `backup` in run `run` (keys are numbered,
/// not copied: a source key near S3's 1,024-byte limit would not fit under a prefix).
fn scratch_key(state: &StateLocation, run: &str, backup: &str, i: usize) -> String {
    format!("{}{run}/{backup}/{i:05}", scratch_prefix(state))
}

/// What the restore of one sampled object found.
#[derive(Debug, Default)]
struct Tally {
    restored: u32,
    sizes_ok: u32,
    by_checksum: u32,
    by_md5: u32,
    not_comparable: u32,
    problems: Vec<String>,
    scratch_left: Vec<String>,
    out_of_time: bool,
}

/// What a restore test found, and the scratch objects it could not delete (for the run's
/// report: a cleanup problem, not the backup's).
pub struct Tested {
    pub verification: Verification,
    pub scratch_left: Vec<String>,
    /// It ran out of the invocation's time (the verification says how far it got).
    pub out_of_time: bool,
}

/// Restores a sample of `spec`'s newest point in time and checks it; never fails (what went
/// wrong is the verification's failure). `dr` is an object store in the DR region (the DR
/// bucket and the state bucket are both there). A test not done by `stop` (the invocation's
/// time) fails saying how far it got, and says it ran out of time (the caller tries once more
/// at the start of an invocation: one that cannot be done within a whole one never would be).
#[allow(clippy::too_many_arguments)]
pub async fn verify_backup<D, O>(
    docs: &D,
    dr: &O,
    state: &StateLocation,
    spec: &BackupSpec,
    sample: SampleSize,
    run: &str,
    stop: tokio::time::Instant,
) -> Tested
where
    D: StateStore + Documents,
    O: ObjectStore,
{
    let started = Utc::now();
    let mut v = Verification {
        run: run.into(),
        passed: false,
        finished: started,
        copy: None,
        copy_time: None,
        copy_age_seconds: None,
        restore_seconds: None,
        checks: vec![],
        failure: None,
    };
    let mut t = Tally::default();
    let at = Bounds { started, stop };
    if let Err(e) = restore_sample(docs, dr, state, spec, sample, run, at, &mut v, &mut t).await {
        v.failure = Some(e.to_string());
    }
    v.finished = Utc::now();
    v.passed = v.failure.is_none() && !v.checks.is_empty() && v.checks.iter().all(|c| c.passed);
    if v.failure.is_none() && !v.passed {
        let failed: Vec<String> = v
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        v.failure = Some(format!("checks failed: {}", failed.join("; ")));
    }
    if let Some(why) = &v.failure {
        warn!(backup = %spec.name, %why, "S3 restore test failed");
    } else {
        info!(backup = %spec.name, checks = ?v.checks, "S3 restore test passed");
    }
    Tested {
        verification: v,
        scratch_left: t.scratch_left,
        out_of_time: t.out_of_time,
    }
}

/// When the test began, and when the invocation's time is up.
#[derive(Clone, Copy)]
struct Bounds {
    started: DateTime<Utc>,
    stop: tokio::time::Instant,
}

impl Bounds {
    /// Time is up: the test stops where it is (`what`: how far it got; `advice`: what would
    /// let it finish).
    fn check(&self, t: &mut Tally, what: String, advice: &str) -> Result<()> {
        if tokio::time::Instant::now() < self.stop {
            return Ok(());
        }
        t.out_of_time = true;
        Err(Error::RunFailed(format!(
            "not done within the invocation's time ({what}); {advice}"
        )))
    }
}

const SMALLER_SAMPLE: &str = "draw a smaller sample (DRPILOT_VERIFY_S3_SAMPLE, DRPILOT_VERIFY_S3_MAX_OBJECT_MB)";
const MANIFEST_TOO_LARGE: &str =
    "the point's manifest is too large to read within one invocation: this bucket cannot be restore-tested this way";

#[allow(clippy::too_many_arguments)]
async fn restore_sample<D, O>(
    docs: &D,
    dr: &O,
    state: &StateLocation,
    spec: &BackupSpec,
    size: SampleSize,
    run: &str,
    at: Bounds,
    v: &mut Verification,
    t: &mut Tally,
) -> Result<()>
where
    D: StateStore + Documents,
    O: ObjectStore,
{
    let started = at.started;
    let key = state_key(state, spec);
    let point = BackupState::read(docs, &key)
        .await?
        .point(None)
        .cloned()
        .ok_or_else(|| Error::RunFailed(format!("backup {} has no point in time yet", spec.name)))?;
    v.copy = Some(format!(
        "s3://{}/{} point {}",
        spec.dr_bucket, spec.prefix, point.run_id
    ));
    v.copy_time = Some(point.recovery_point());
    v.copy_age_seconds = Some(seconds(started - point.recovery_point()));
    // Pinned while it is read, as a restore pins it: retention keeps a pinned point.
    let pin = Pin {
        run_id: point.run_id.clone(),
        holder: format!("verify-{run}"),
        until: started + Duration::hours(6),
    };
    let pinned = pin_key(state, spec, &pin);
    let body = serde_json::to_vec(&pin).map_err(|e| Error::RunFailed(format!("cannot encode the pin: {e}")))?;
    docs.put(&pinned, body).await?;
    let result = async {
        let now = BackupState::read(docs, &key).await?;
        let cursor = now.cursor(&point.run_id).ok_or_else(|| {
            Error::RunFailed(format!(
                "point in time {} of backup {} is being expired by retention",
                point.run_id, spec.name
            ))
        })?;
        // The whole manifest is read (that it reads is the first check), the sample drawn from it.
        let mut reader = PointReader::resume(docs, state, spec, &cursor);
        let mut draw = Sample::new(run, size.objects as usize, size.max_object_bytes);
        loop {
            at.check(t, format!("{} entries of the manifest read", draw.offered), MANIFEST_TOO_LARGE)?;
            let Some(entries) = reader.next_part().await? else { break };
            entries.iter().for_each(|e| draw.offer(e));
        }
        let entries = draw.offered;
        let too_large = draw.too_large;
        let full = point.base.is_none();
        v.checks.push(Check {
            name: "manifest".into(),
            passed: !full || entries == point.objects,
            detail: match full {
                true if entries == point.objects => format!("read in full: {entries} objects"),
                true => format!("read {entries} objects; the point records {}", point.objects),
                false => format!(
                    "read in full: {entries} objects (a change point on {})",
                    point.base_id()
                ),
            },
        });
        let drawn = draw.entries();
        if drawn.is_empty() {
            v.checks.push(Check {
                name: "restored".into(),
                passed: entries == 0,
                detail: match entries {
                    0 => "the point holds no object".into(),
                    _ => format!(
                        "no object drawn: all {too_large} are larger than the sample's bound ({} bytes)",
                        size.max_object_bytes
                    ),
                },
            });
            return Ok(());
        }
        let n = drawn.len() as u32;
        let sample_started = Utc::now();
        for (i, entry) in drawn.iter().enumerate() {
            at.check(t, format!("{i} of {n} sampled objects restored"), SMALLER_SAMPLE)?;
            check_one(dr, state, spec, run, i, entry, t).await;
        }
        v.restore_seconds = Some(seconds(Utc::now() - sample_started));
        v.checks.push(Check {
            name: "restored".into(),
            passed: t.restored == n,
            detail: format!(
                "{} of {n} sampled objects restored from their DR versions{}",
                t.restored,
                if too_large > 0 {
                    format!(" ({too_large} larger than {} bytes never drawn)", size.max_object_bytes)
                } else {
                    String::new()
                }
            ),
        });
        v.checks.push(Check {
            name: "sizes".into(),
            passed: t.sizes_ok == t.restored,
            detail: format!("{} of {} as the manifest records", t.sizes_ok, t.restored),
        });
        let compared = t.by_checksum + t.by_md5;
        v.checks.push(Check {
            name: "content".into(),
            passed: compared + t.not_comparable == t.sizes_ok,
            detail: match (compared, t.not_comparable) {
                (_, 0) => format!(
                    "{} same by the SHA-256 stored with the DR copy, {} by the source's MD5 ETag{}",
                    t.by_checksum,
                    t.by_md5,
                    match t.sizes_ok - compared {
                        0 => String::new(),
                        differ => format!("; {differ} differ"),
                    }
                ),
                (0, _) => format!(
                    "sizes only: nothing recorded what the bytes of these {} copies were (copies made before drpilot asked S3 for a checksum, of SSE-KMS or multipart sources)",
                    t.not_comparable
                ),
                _ => format!(
                    "{} same by the SHA-256 stored with the DR copy, {} by the source's MD5 ETag; sizes only for {} (nothing recorded what their bytes were)",
                    t.by_checksum, t.by_md5, t.not_comparable
                ),
            },
        });
        if !t.problems.is_empty() {
            let shown: Vec<&str> = t.problems.iter().take(5).map(String::as_str).collect();
            v.failure = Some(format!(
                "{} of {n} sampled objects failed: {}{}",
                t.problems.len(),
                shown.join("; "),
                if t.problems.len() > 5 { "; ..." } else { "" }
            ));
        }
        Ok(())
    }
    .await;
    if let Err(e) = docs.delete(&pinned).await {
        warn!(pin = %pinned, error = %e, "could not remove the restore test's pin; it lapses");
    }
    result
}

/// Restores one sampled object into the scratch prefix, reads it back, compares, deletes it.
async fn check_one<O: ObjectStore>(
    dr: &O,
    state: &StateLocation,
    spec: &BackupSpec,
    run: &str,
    i: usize,
    entry: &crate::plan::backup::ManifestEntry,
    t: &mut Tally,
) {
    let what = format!("{} (DR version {})", entry.key, entry.version);
    let stored = match dr.stored_version(&spec.dr_bucket, &entry.key, &entry.version).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            t.problems.push(format!("{what}: gone from s3://{}", spec.dr_bucket));
            return;
        }
        Err(e) => {
            t.problems.push(format!("{what}: {e}"));
            return;
        }
    };
    let to_key = scratch_key(state, run, &spec.name, i);
    let copy = ObjectCopy {
        from_bucket: spec.dr_bucket.clone(),
        from_key: entry.key.clone(),
        from_version: Some(entry.version.clone()),
        if_match: None,
        size: entry.size,
        to_bucket: state.bucket.clone(),
        to_key: to_key.clone(),
        kms_key_id: None, // the state bucket's own encryption
        storage_class: None,
    };
    let version = match dr.copy(&copy).await {
        Ok(version) => version,
        Err(e) => {
            t.problems.push(format!("{what}: not restored: {e}"));
            // an answer lost after S3 copied leaves a copy: removed if there is one
            let left = match dr.head(&state.bucket, &to_key).await {
                Ok(Some(_)) => dr.delete_object(&state.bucket, &to_key).await,
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = left {
                t.scratch_left.push(format!("{to_key}: {e}"));
            }
            return;
        }
    };
    t.restored += 1;
    match dr.digest(&state.bucket, &to_key).await {
        Ok(Some(read)) if read.size as i64 != entry.size => {
            t.problems.push(format!(
                "{what}: {} bytes read back, the manifest records {}",
                read.size, entry.size
            ));
        }
        Ok(Some(read)) => {
            t.sizes_ok += 1;
            match compare_content(entry, &stored, &read) {
                Content::Same(how) if how.starts_with("SHA") => t.by_checksum += 1,
                Content::Same(_) => t.by_md5 += 1,
                Content::NotComparable(_) => t.not_comparable += 1,
                Content::Differs(why) => t.problems.push(format!("{what}: {why}")),
            }
        }
        Ok(None) => t.problems.push(format!("{what}: its restored copy is not there")),
        Err(e) => t
            .problems
            .push(format!("{what}: its restored copy cannot be read: {e}")),
    }
    let removed = match version.is_empty() {
        true => dr.delete_object(&state.bucket, &to_key).await.map(|_| vec![]),
        false => dr.delete_versions(&state.bucket, &[(to_key.clone(), version)]).await,
    };
    match removed {
        Ok(not) if not.is_empty() => {}
        Ok(not) => t
            .scratch_left
            .extend(not.into_iter().map(|n| format!("{}: {}", n.key, n.reason))),
        Err(e) => t.scratch_left.push(format!("{to_key}: {e}")),
    }
}

/// Deletes what earlier runs' S3 restore tests left in the scratch prefix (a run that died
/// between a copy and its delete); the `current` run's are its own. In the versioned state
/// bucket a delete leaves a noncurrent version, which the bucket's lifecycle rule for the
/// prefix expires. Returns what it deleted and what it could not.
pub async fn sweep_scratch<O: ObjectStore>(
    dr: &O,
    state: &StateLocation,
    current: Option<&str>,
) -> (Vec<String>, Vec<String>) {
    let prefix = scratch_prefix(state);
    let (mut swept, mut failed) = (vec![], vec![]);
    let mut after: Option<String> = None;
    loop {
        let page = match dr.list_page(&state.bucket, &prefix, after.as_deref()).await {
            Ok(page) => page,
            Err(e) => {
                failed.push(format!("cannot list s3://{}/{prefix}: {e}", state.bucket));
                break;
            }
        };
        after = page.items.last().map(|o| o.key.clone());
        for o in &page.items {
            if current.is_some_and(|run| o.key[prefix.len()..].starts_with(&format!("{run}/"))) {
                continue;
            }
            match dr.delete_object(&state.bucket, &o.key).await {
                Ok(()) => swept.push(format!("s3://{}/{}", state.bucket, o.key)),
                Err(e) => failed.push(format!("s3://{}/{}: {e}", state.bucket, o.key)),
            }
        }
        if !page.more || page.items.is_empty() {
            break;
        }
    }
    (swept, failed)
}

fn seconds(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}
