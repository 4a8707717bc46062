//! Failback: after a failover, back to the original region, and protected again.
//!
//! RDS has no way to make a standalone instance a replica again, so the way back replaces
//! instances, each under its own name (endpoints, alarms, the lag checker and Terraform keep
//! meaning what they meant): the old primary is retired (deleted, its final snapshot kept:
//! it may hold the writes an unplanned failover lost) and a cross-region replica of the
//! failed-over primary takes its name in the original region, with the old primary's key,
//! class, network and parameter group. Once it has caught up, and once an operator says so
//! (at once or in a window), a planned switch back: writes blocked on the failed-over primary,
//! the replica's `ReplicaLag` at 0 for a whole period, promote, writes allowed, DNS back, the
//! recovery plan's groups back to their size before the failover. Then the old standby is
//! replaced the same way by a new replica in the DR region: protected again.

use super::record::{Acknowledgement, DbRecord, Failback, FailbackStep, Retired, SwitchOrder};
use super::{notices, Promoter, FAILOVER_RECORDS};
use crate::error::{Error, Result};
use crate::model::{DatabaseSpec, DnsSwitch, InstanceShape, Standby, FAILED_OVER_METRIC};
use crate::notice::{Notice, Severity};
use crate::plan::lag::human_seconds;
use crate::plan::promotion::PrimaryView;
use crate::ports::{
    AlarmView, Capacity, Dns, HealthChecks, Instances, MetricId, MetricUnit, MetricValue, Metrics, Notifier,
    PrimaryProbe, Promotion, ReplicaRequest, RestoreStarted, StandbyControl, StateStore,
};
use crate::state::Lease;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use tracing::{info, warn};

/// The tag on what a failback creates: its id.
pub const FAILBACK_TAG: &str = "drpilot:failback";

/// The final snapshot of an instance a failback retires (a valid identifier: the instance's
/// name, letters, digits and single hyphens).
fn final_snapshot(name: &str, fb: &Failback) -> String {
    format!("{name}-before-failback-{}", fb.requested_at.format("%Y%m%d-%H%M%S"))
}

/// What the replacement takes over from the instance it replaces: AWS's own tags are not
/// anyone's to set, and drpilot's failback tag names this failback.
fn shape_for(shape: &InstanceShape, fb: &Failback) -> InstanceShape {
    let mut shape = shape.clone();
    shape.tags.retain(|k, _| !k.starts_with("aws:"));
    shape.tags.insert(FAILBACK_TAG.to_string(), fb.id.clone());
    shape
}

/// A final snapshot's tags: the failback that kept it (not `drpilot:managed-by`, which marks
/// the copier's copies: retention never counts or prunes these).
fn snapshot_tags(fb: &Failback) -> std::collections::BTreeMap<String, String> {
    [(FAILBACK_TAG.to_string(), fb.id.clone())].into()
}

/// Why a failback stopped at an instance that took a retired one's name.
const STRANGER: &str = "is not the one this failback recorded";

/// What one look at an instance being retired found.
enum Retiring {
    Gone,
    Waiting(String),
    /// Another instance has the name now: nothing is deleted.
    Stranger(String),
}

/// The statuses of a standalone instance that serves (RDS backs a promoted replica up).
const SERVES: &[&str] = &["available", "backing-up", "modifying", "storage-optimization"];

/// The database's two sides: the original primary and the standby (RDS instances, or an
/// Aurora global database's primary and secondary clusters).
fn names(db: &DatabaseSpec) -> Result<(&str, &str)> {
    match &db.standby {
        Standby::RdsReplica { primary, replica } => Ok((primary, replica)),
        Standby::AuroraGlobal {
            primary_cluster,
            secondary_cluster,
            ..
        } => Ok((primary_cluster, secondary_cluster)),
    }
}

/// The Aurora global database's identifier (`None`: an RDS replica).
fn global_of(db: &DatabaseSpec) -> Option<&str> {
    match &db.standby {
        Standby::AuroraGlobal { global_cluster, .. } => Some(global_cluster),
        Standby::RdsReplica { .. } => None,
    }
}

fn failback_notice(
    db: &DatabaseSpec,
    fb: &Failback,
    step: &str,
    severity: Severity,
    subject: String,
    body: String,
) -> Notice {
    Notice::new(severity, subject.clone(), body)
        .with_sms(subject)
        .with_attribute("database", db.name.clone())
        .with_attribute("failover_id", fb.failover.clone())
        .with_attribute("failback_id", fb.id.clone())
        .with_attribute("step", step)
}

fn secs_between(a: DateTime<Utc>, b: DateTime<Utc>) -> String {
    human_seconds((b - a).num_milliseconds().max(0) as f64 / 1000.0)
}

impl<A, P, H, M, S, D, St, N, C> Promoter<'_, A, P, H, M, S, D, St, N, C>
where
    A: AlarmView,
    P: PrimaryProbe + Instances,
    H: HealthChecks,
    M: Metrics,
    S: StandbyControl + Instances,
    D: Dns,
    St: StateStore,
    N: Notifier,
    C: Capacity,
{
    /// The operator's failback command: starts one (after a completed failover whose old
    /// primary is fenced, the original region answering), or gives a prepared one its go.
    pub async fn failback(
        &self,
        database: &str,
        by: &str,
        confirm: &str,
        switch: bool,
        not_before: Option<DateTime<Utc>>,
    ) -> Result<Value> {
        self.failback_command(database, by, confirm, switch, not_before, false)
            .await
    }

    /// The failback command in full: `cancel` stops a failback that has not begun its switch
    /// back (nothing has moved then: the failed-over primary serves as before).
    pub async fn failback_command(
        &self,
        database: &str,
        by: &str,
        confirm: &str,
        switch: bool,
        not_before: Option<DateTime<Utc>>,
        cancel: bool,
    ) -> Result<Value> {
        let db = self.database(database)?;
        if not_before.is_some() && !switch {
            return Err(Error::BadEvent(
                "\"at\" is the switch back's window: it needs \"switch\": true; nothing was changed".into(),
            ));
        }
        if confirm != db.name {
            return Err(Error::Refused(format!(
                "a failback replaces instances of {0} and moves its traffic: confirm it by naming the database \
                 (confirm = \"{0}\"); nothing was changed",
                db.name
            )));
        }
        names(db)?;
        if let Some(account) = &db.account {
            return Err(Error::Refused(format!(
                "{} is in member account {account}, whose drpilot role may not replace instances: fail it back by \
                 hand there; nothing was changed",
                db.name
            )));
        }
        let (mut record, etag) = self.load(&db.name).await?;
        let now = Utc::now();
        let Some(f) = record.current.as_ref().filter(|f| f.completed_at.is_some()) else {
            return Err(Error::BadEvent(format!(
                "{} has no completed failover to fail back from{}; nothing was changed",
                db.name,
                if record.current.as_ref().is_some_and(|f| f.is_active()) {
                    " (one is in progress)"
                } else {
                    ""
                }
            )));
        };
        if f.needs_fencing() {
            return Err(Error::Refused(format!(
                "the old primary of {} is not fenced yet (its region has not answered, or fencing failed: {}): \
                 a failback starts once it cannot take writes; nothing was changed",
                db.name,
                f.fence_error.as_deref().unwrap_or("no answer yet")
            )));
        }
        let order = switch.then(|| SwitchOrder {
            by: by.to_string(),
            at: now,
            not_before,
        });
        if cancel {
            let Some(fb) = record
                .failback
                .as_mut()
                .filter(|fb| fb.failover == f.id && fb.is_active())
            else {
                return Err(Error::BadEvent(format!(
                    "{} has no failback to cancel; nothing was changed",
                    db.name
                )));
            };
            // An invocation advancing it may be about to block writes only once the replica is
            // ready and a switch is ordered; before that it only waits, and its next save fails.
            let holder = fb.leased_to_other(&self.invocation.request_id, now);
            if let Some(lease) = holder.filter(|_| fb.replica_ready_at.is_some() && fb.switch.is_some()) {
                return Err(Error::Refused(format!(
                    "failback {} is being advanced by {} right now: ask again in a minute; nothing was changed",
                    fb.id, lease.holder
                )));
            }
            let due = fb.replica_ready_at.is_some()
                && fb
                    .switch
                    .as_ref()
                    .is_some_and(|o| o.not_before.is_none_or(|t| t <= now));
            if due || fb.writes_blocked.is_some() || fb.switched() {
                return Err(Error::Refused(format!(
                    "failback {} has begun its switch back (or it is due): it cannot be cancelled now; nothing was changed",
                    fb.id
                )));
            }
            let id = fb.id.clone();
            let why = format!("cancelled by {by}");
            return self
                .abort_failback(db, record, etag.as_deref().unwrap_or_default(), why, Vec::new())
                .await
                .map(|_| json!({"database": db.name, "failback": id, "cancelled_by": by}));
        }
        match record.failback.as_mut() {
            Some(fb) if fb.failover == f.id && fb.is_active() => {
                let due = fb.replica_ready_at.is_some()
                    && fb
                        .switch
                        .as_ref()
                        .is_some_and(|o| o.not_before.is_none_or(|t| t <= now));
                let changes = match (&order, &fb.switch) {
                    (Some(_), None) => true,
                    // a new window, while the switch is not due yet
                    (Some(o), Some(s)) if o.not_before != s.not_before => {
                        if due || fb.writes_blocked.is_some() {
                            return Err(Error::Refused(format!(
                                "the switch back of failback {} is due or under way: its window cannot move now; \
                                 nothing was changed",
                                fb.id
                            )));
                        }
                        true
                    }
                    _ => false,
                };

                if changes {
                    info!(db = %db.name, failback = %fb.id, %by, "the switch back is ordered");
                    fb.switch = order;
                    self.save(&db.name, &record, etag.as_deref()).await?.ok_or_else(|| {
                        Error::Refused(format!("the record of {} changed meanwhile; try again", db.name))
                    })?;
                }
                self.resume_failback(db).await
            }
            Some(fb) if fb.failover == f.id && fb.completed_at.is_some() => {
                Ok(json!({"database": db.name, "failback": fb.id, "completed": true, "already": true}))
            }
            previous => {
                // The original region must answer: everything below happens there first.
                if let PrimaryView::Unreachable(why) = self.at(db).primary.primary(&db.standby).await {
                    return Err(Error::Refused(format!(
                        "{} does not answer ({why}): a failback starts once it is back; nothing was changed",
                        self.cfg.source_region
                    )));
                }
                // An aborted failback of the same failover hands over the old primary it retired.
                let carried = previous
                    .as_ref()
                    .filter(|p| p.failover == f.id && p.aborted.is_some())
                    .filter(|p| !p.aborted.as_ref().is_some_and(|(why, _)| why.contains(STRANGER)))
                    .and_then(|p| p.old_primary.clone())
                    .filter(|r| r.requested_at.is_some());
                // Everything the way back needs, checked before anything is deleted.
                match global_of(db) {
                    Some(global) => self.aurora_preflight(db, global).await?,
                    None => self.failback_preflight(db, carried.is_some()).await?,
                }
                let fb = Failback {
                    aurora: global_of(db).is_some(),
                    id: format!("fb-{}-{}", db.name, now.format("%Y%m%dT%H%M%SZ")),
                    failover: f.id.clone(),
                    by: by.to_string(),
                    requested_at: now,
                    switch: order,
                    old_primary: carried,
                    ..Default::default()
                };
                info!(db = %db.name, failback = %fb.id, %by, "failback requested");
                record.failback = Some(fb);
                self.save(&db.name, &record, etag.as_deref())
                    .await?
                    .ok_or_else(|| Error::Refused(format!("the record of {} changed meanwhile; try again", db.name)))?;
                self.resume_failback(db).await
            }
        }
    }

    /// Whether the way back can be gone all the way, asked before the old primary is deleted:
    /// a failback that could not switch back would leave the original region without it.
    async fn failback_preflight(&self, db: &DatabaseSpec, old_primary_retired: bool) -> Result<()> {
        let (primary, replica) = names(db)?;
        let (src, dr) = (&self.cfg.source_region, &self.cfg.dr_region);
        let refuse = |why: String| Err(Error::Refused(format!("{why}; nothing was changed")));
        let Some(serving) = self.at(db).standby.instance(replica).await? else {
            return refuse(format!("the failed-over primary {replica} is not in {dr}"));
        };
        if serving.replica_of.is_some() || !SERVES.contains(&serving.status.as_str()) {
            return refuse(format!(
                "the failed-over primary {replica} in {dr} is {}{}: a failback starts from a standalone instance that serves",
                serving.status,
                if serving.replica_of.is_some() { ", a replica" } else { "" }
            ));
        }
        // A cross-Region replica takes a parameter group of its own only for MySQL
        // (CreateDBInstanceReadReplica, DBParameterGroupName), and only MySQL's ReplicaLag
        // proves a replica has every write once writes are blocked.
        if !serving.engine.starts_with("mysql") {
            return refuse(format!(
                "drpilot fails back RDS for MySQL; {replica} runs {}: fail it back by hand",
                serving.engine
            ));
        }
        if serving.shape.backup_retention_days <= 0 {
            return refuse(format!(
                "{replica} keeps no automated backups: RDS makes a read replica only of an instance that does \
                 (set a backup retention period)"
            ));
        }
        if serving.deletion_protection {
            return refuse(format!(
                "{replica} has deletion protection: the failback replaces it in the end (its final snapshot \
                 kept); turn it off and ask again"
            ));
        }
        if let Err(e) = self.at(db).standby.can_block_writes(replica).await {
            return refuse(format!("the switch back blocks writes on {replica}, and cannot: {e}"));
        }
        // Never replace what may be serving: DNS must point at the failed-over primary.
        if let Some(endpoint) = &serving.endpoint {
            if let Some((false, points)) = self.dns_now(db, endpoint).await? {
                return refuse(format!(
                    "{} points at {points}, not at {replica}: someone may have failed back by hand, and \
                     drpilot replaces nothing that may be serving",
                    db.dns.record_name.trim_end_matches('.')
                ));
            }
        }
        match self.at(db).primary.instance(primary).await? {
            None if old_primary_retired => {}
            None => {
                return refuse(format!(
                    "{primary} is not in {src}: the new replica takes its key, class, network and parameter group \
                     from the instance it replaces; create a read replica of {replica} named {primary} in {src} by hand"
                ))
            }
            Some(old) if old.deletion_protection => {
                return refuse(format!(
                    "{primary} in {src} has deletion protection: turn it off (its final snapshot is kept) and ask again"
                ))
            }
            Some(old) if old.replica_of.is_some() => {
                return refuse(format!(
                    "{primary} in {src} is a replica (of {}): it is not the old primary",
                    old.replica_of.unwrap_or_default()
                ))
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// An Aurora global database's way back, checked before anything moves: the DR cluster is
    /// the global writer and serves, DNS points at it, and the old primary cluster is still a
    /// member (it rejoins as a secondary once its region answers; a detached one cannot be
    /// switched to).
    async fn aurora_preflight(&self, db: &DatabaseSpec, global: &str) -> Result<()> {
        let (primary, replica) = names(db)?;
        let refuse = |why: String| Err(Error::Refused(format!("{why}; nothing was changed")));
        let standby = &self.at(db).standby;
        let Some(g) = standby.global(global).await? else {
            return refuse(format!("the global database {global} is not there"));
        };
        if !g.member(replica).is_some_and(|m| m.is_writer) {
            return refuse(format!(
                "{replica} is not the writer of {global}: a failback starts from the failed-over cluster"
            ));
        }
        if g.member(primary).is_none() {
            return refuse(format!(
                "{primary} is no longer a member of {global} (detached?): there is nothing to switch back to; add it \
                 back as a secondary, or fail back by hand"
            ));
        }
        let Some(serving) = standby.cluster(replica).await? else {
            return refuse(format!("{replica} is not in {}", self.cfg.dr_region));
        };
        if let Some(endpoint) = &serving.endpoint {
            if let Some((false, points)) = self.dns_now(db, endpoint).await? {
                return refuse(format!(
                    "{} points at {points}, not at {replica}: someone may have moved it by hand",
                    db.dns.record_name.trim_end_matches('.')
                ));
            }
        }
        Ok(())
    }

    /// Takes the lease of an active failback and advances it (the continuation calls this
    /// every minute for a failback that is not waiting for its go).
    pub(super) async fn resume_failback(&self, db: &DatabaseSpec) -> Result<Value> {
        let (mut record, etag) = self.load(&db.name).await?;
        let Some(fb) = record.failback.as_mut().filter(|fb| fb.is_active()) else {
            return Ok(json!({"database": db.name, "failback_in_progress": false}));
        };
        if let Some(lease) = fb.leased_to_other(&self.invocation.request_id, Utc::now()) {
            return Ok(json!({"database": db.name, "failback": fb.id, "advanced_by": lease.holder}));
        }
        fb.lease = Some(Lease::to(&self.invocation));
        let Some(etag) = self.save(&db.name, &record, etag.as_deref()).await? else {
            return Ok(json!({"database": db.name, "advanced_by": "another invocation"}));
        };
        let result = self.advance_failback(db, record, etag).await;
        if let Err(e) = &result {
            warn!(db = %db.name, error = %e, "failback step failed: releasing the lease for the next attempt");
            if let Ok((mut record, etag)) = self.load(&db.name).await {
                if let Some(fb) = record.failback.as_mut().filter(|fb| {
                    fb.lease
                        .as_ref()
                        .is_some_and(|l| l.holder == self.invocation.request_id)
                }) {
                    fb.lease = None;
                    let _ = self.save(&db.name, &record, etag.as_deref()).await;
                }
            }
        }
        result
    }

    /// Once per step (`key`): a wait longer than `DRPILOT_STUCK_AFTER_SECONDS` is told
    /// (critical), with what AWS shows; the wait goes on. `true`: told now (save it).
    #[allow(clippy::too_many_arguments)]
    async fn stuck_once(
        &self,
        undelivered: &mut Vec<String>,
        db: &DatabaseSpec,
        fb: &mut Failback,
        key: &str,
        what: &str,
        since: DateTime<Utc>,
        seen: &str,
    ) -> bool {
        let waited = Utc::now() - since;
        if waited <= Duration::seconds(i64::from(self.cfg.stuck_after_seconds))
            || fb.notices_sent.iter().any(|n| n == key)
        {
            return false;
        }
        // the cancel the command would take: before the switch back is due or under way
        let due = fb.replica_ready_at.is_some()
            && fb
                .switch
                .as_ref()
                .is_some_and(|o| o.not_before.is_none_or(|t| t <= Utc::now()));
        let cancel = if fb.writes_blocked.is_none() && fb.promote_accepted_at.is_none() && !due && !fb.switched() {
            let left = match (&fb.old_primary, fb.replica_requested_at) {
                (Some(r), Some(_)) => format!(
                    " DNS and writes have not moved; the old primary is retired (final snapshot {}) and the replica \
                     being made stays (delete it before a new failback).",
                    r.final_snapshot
                ),
                (Some(r), None) => format!(
                    " DNS and writes have not moved; the old primary is being retired (final snapshot {}).",
                    r.final_snapshot
                ),
                _ => " Nothing has moved yet.".to_string(),
            };
            format!(
                "{left} To give up: {}",
                notices::command(
                    self.cfg,
                    json!({"action": "failback", "database": db.name, "by": "NAME", "confirm": db.name, "cancel": true})
                )
            )
        } else {
            String::new()
        };
        let n = failback_notice(
            db,
            fb,
            "failback-stuck",
            Severity::Critical,
            format!("drpilot: failback of {} STUCK waiting for {what}", db.name),
            format!(
                "Failback {} has waited {} for {what}: {seen}. drpilot keeps waiting.{cancel}\n",
                fb.id,
                human_seconds(waited.num_seconds() as f64)
            ),
        );
        self.tell(undelivered, &n).await;
        fb.notices_sent.push(key.to_string());
        true
    }

    /// One look at a step that waits on AWS: told once when it waits too long (`what`: the
    /// notice's key and words), what it saw saved when that changed, then a nap. Returns the
    /// record's etag after any save.
    #[allow(clippy::too_many_arguments)]
    async fn wait_on(
        &self,
        undelivered: &mut Vec<String>,
        db: &DatabaseSpec,
        record: &mut DbRecord,
        mut etag: String,
        what: (&str, &str),
        since: DateTime<Utc>,
        seen: String,
    ) -> Result<String> {
        let fb = record.failback.as_mut().expect("advancing a failback");
        let told = self.stuck_once(undelivered, db, fb, what.0, what.1, since, &seen).await;
        let changed = fb.seen.as_deref() != Some(seen.as_str());
        fb.seen = Some(seen);
        if told || changed {
            etag = self.fb_commit(db, record, &etag).await?;
        }
        self.nap(std::time::Duration::from_secs(u64::from(self.cfg.poll_seconds)))
            .await;
        Ok(etag)
    }

    fn fb_commit_error(db: &DatabaseSpec) -> Error {
        Error::Refused(format!(
            "the failback record of {} changed under this invocation; stopping (the other one continues)",
            db.name
        ))
    }

    async fn fb_commit(&self, db: &DatabaseSpec, record: &DbRecord, etag: &str) -> Result<String> {
        self.save(&db.name, record, Some(etag))
            .await?
            .ok_or_else(|| Self::fb_commit_error(db))
    }

    /// The failback's remaining steps, until done, waiting for its go, or near the deadline.
    async fn advance_failback(&self, db: &DatabaseSpec, mut record: DbRecord, mut etag: String) -> Result<Value> {
        let (primary, replica) = names(db)?;
        let (src, dr) = (self.cfg.source_region.as_str(), self.cfg.dr_region.as_str());
        let margin = Duration::seconds(i64::from(self.cfg.deadline_margin_seconds));
        let poll = std::time::Duration::from_secs(u64::from(self.cfg.poll_seconds));
        let stuck_after = Duration::seconds(i64::from(self.cfg.stuck_after_seconds));
        let origin = &self.at(db).primary;
        let standby = &self.at(db).standby;
        let mut undelivered: Vec<String> = Vec::new();
        loop {
            let now = Utc::now();
            let capacity_steps = record.current.as_ref().map(|f| f.capacity.clone()).unwrap_or_default();
            let fb = record
                .failback
                .as_mut()
                .ok_or_else(|| Error::RunFailed("no failback to advance".into()))?;
            let step = fb.next_step(now);
            if step == FailbackStep::Done {
                let id = fb.id.clone();
                let done = fb.completed_at.is_some();
                super::undelivered_error(&id, undelivered)?;
                return Ok(json!({"database": db.name, "failback": id, "completed": done, "aborted": !done}));
            }
            if step == FailbackStep::AwaitSwitch || self.invocation.deadline - now < margin {
                // waiting for the operator's go (or its window), or out of time: the lease goes
                // back, and the command or the continuation takes it up
                fb.lease = None;
                let id = fb.id.clone();
                self.fb_commit(db, &record, &etag).await?;
                super::undelivered_error(&id, undelivered)?;
                return Ok(
                    json!({"database": db.name, "failback": id, "in_progress": true, "next_step": format!("{step:?}")}),
                );
            }
            if !fb.notices_sent.iter().any(|n| n == "started") {
                let body = if fb.aurora {
                    format!(
                        "drpilot is failing {db} back to {src} (failback {id}, asked by {by}, after failover {fo}).\n\
                         Plan: wait until {primary} in {src} has rejoined the global database as a secondary and is \
                         in sync (Aurora rebuilds it after a failover); then, {switch}: switch the global database \
                         over to {primary} (SwitchoverGlobalCluster: Aurora synchronizes it before it switches, so \
                         nothing is lost; writes pause for a minute or two), point {record} at it, the recovery \
                         plan's capacity back to its size. {replica} in {dr} is its secondary again. Nothing is \
                         deleted. Further notices follow at each step.\n",
                        db = db.name,
                        id = fb.id,
                        by = fb.by,
                        fo = fb.failover,
                        switch = switch_words(fb),
                        record = db.dns.record_name.trim_end_matches('.'),
                    )
                } else {
                    format!(
                        "drpilot is failing {db} back to {src} (failback {id}, asked by {by}, after failover {fo}).\n\
                     Plan: retire the old primary {primary} in {src} (deleted, its final snapshot kept: {snap}), \
                     create a read replica of {replica} ({dr}) in its place, with its key, class, network and \
                     parameter group; once it has caught up, {switch}: writes paused on {replica}, promote \
                     {primary}, point {record} at it, the recovery plan's groups back to their size; then a new \
                     replica {replica} in {dr}. Further notices follow at each step.\n",
                        db = db.name,
                        id = fb.id,
                        by = fb.by,
                        fo = fb.failover,
                        snap = fb
                            .old_primary
                            .as_ref()
                            .map_or_else(|| final_snapshot(primary, fb), |r| r.final_snapshot.clone()),
                        switch = switch_words(fb),
                        record = db.dns.record_name.trim_end_matches('.'),
                    )
                };
                let n = failback_notice(
                    db,
                    fb,
                    "failback-started",
                    Severity::Warning,
                    format!("drpilot: FAILBACK started: {} -> {src}", db.name),
                    body,
                );
                self.tell(&mut undelivered, &n).await;
                fb.notices_sent.push("started".into());
                etag = self.fb_commit(db, &record, &etag).await?;
                continue;
            }
            match step {
                FailbackStep::RetireOldPrimary => {
                    let serving = standby.instance(replica).await?;
                    if !serving.is_some_and(|i| i.replica_of.is_none() && SERVES.contains(&i.status.as_str())) {
                        let why = format!(
                            "the failed-over primary {replica} in {dr} is not an available standalone instance: a \
                             failback starts from it; nothing was changed"
                        );
                        return self.abort_failback(db, record, &etag, why, undelivered).await;
                    }
                    match origin.instance(primary).await? {
                        Some(old) if old.deletion_protection => {
                            let why = format!(
                                "{primary} in {src} has deletion protection: turn it off (its final snapshot is kept) \
                                 and ask again; nothing was changed"
                            );
                            return self.abort_failback(db, record, &etag, why, undelivered).await;
                        }
                        Some(old) if old.replica_of.is_some() => {
                            let why = format!(
                                "{primary} in {src} is already a replica (of {}): it is not the old primary; \
                                 nothing was changed",
                                old.replica_of.unwrap_or_default()
                            );
                            return self.abort_failback(db, record, &etag, why, undelivered).await;
                        }
                        Some(old) => {
                            info!(db = %db.name, failback = %fb.id, status = %old.status, "the old primary is retired next");
                            fb.old_primary = Some(Retired {
                                name: primary.to_string(),
                                resource_id: old.resource_id,
                                final_snapshot: final_snapshot(primary, fb),
                                shape: old.shape,
                                requested_at: None,
                                gone_at: None,
                            });
                        }
                        None => {
                            let why = format!(
                                "{primary} is not in {src}: the new replica takes its key, class, network and \
                                 parameter group from the instance it replaces; create a read replica of {replica} \
                                 named {primary} in {src} by hand; nothing was changed"
                            );
                            return self.abort_failback(db, record, &etag, why, undelivered).await;
                        }
                    }
                }
                FailbackStep::AwaitOldPrimaryGone => {
                    match self.await_retired(db, &mut record, &mut etag, true).await? {
                        Retiring::Gone => {}
                        Retiring::Waiting(tag) => {
                            etag = tag;
                            continue;
                        }
                        Retiring::Stranger(why) => {
                            return self.abort_failback(db, record, &etag, why, undelivered).await
                        }
                    }
                }
                FailbackStep::CreateReplica => {
                    let Some(serving) = standby.instance(replica).await? else {
                        let why = format!("the failed-over primary {replica} is not in {dr}");
                        return self.abort_failback(db, record, &etag, why, undelivered).await;
                    };
                    let old = fb.old_primary.clone().expect("retired before the replica");
                    let req = ReplicaRequest {
                        id: primary.to_string(),
                        source_arn: serving.arn,
                        shape: shape_for(&old.shape, fb),
                    };
                    match origin.create_replica(&req).await? {
                        RestoreStarted::Started => {
                            info!(db = %db.name, failback = %fb.id, "replica requested in the original region");
                        }
                        RestoreStarted::AlreadyExists => {
                            let mine = origin
                                .instance(primary)
                                .await?
                                .is_some_and(|i| i.shape.tags.get(FAILBACK_TAG) == Some(&fb.id));
                            if !mine {
                                let why = format!("{primary} exists in {src} and is not this failback's replica");
                                return self.abort_failback(db, record, &etag, why, undelivered).await;
                            }
                        }
                        RestoreStarted::Refused { code, message } => {
                            let why = format!(
                                "AWS refused the replica {primary} in {src} ({code}: {message}); the old primary's \
                                 data is in its final snapshot {}; fix the cause and ask again (the next failback \
                                 starts from here)",
                                old.final_snapshot
                            );
                            return self.abort_failback(db, record, &etag, why, undelivered).await;
                        }
                    }
                    fb.replica_requested_at = Some(Utc::now());
                }
                FailbackStep::AwaitReplica => {
                    let (ready, seen) = match global_of(db) {
                        Some(global) => self.aurora_rejoined(db, global).await?,
                        None => {
                            let found = origin.instance(primary).await?;
                            let lag = match &found {
                                Some(i) if i.status == "available" && i.replica_of.is_some() => {
                                    let period = self.cfg.metric_period_seconds;
                                    let span = Duration::seconds(i64::from(period));
                                    self.replica_lag(db, primary, now - span * 3, now).await?
                                }
                                _ => None,
                            };
                            let seen = match (&found, lag) {
                                (None, _) => "not listed yet".to_string(),
                                (Some(i), _) if i.status != "available" => format!("{} is {}", primary, i.status),
                                (Some(_), None) => "no ReplicaLag reported yet".to_string(),
                                (Some(_), Some(l)) if l < 0.0 => {
                                    "replication is not running (ReplicaLag -1)".to_string()
                                }
                                (Some(_), Some(l)) => format!("ReplicaLag {}", human_seconds(l)),
                            };
                            (lag.is_some_and(|l| (0.0..=db.max_data_loss_seconds).contains(&l)), seen)
                        }
                    };
                    match ready {
                        true => {
                            fb.replica_ready_at = Some(Utc::now());
                            fb.seen = Some(seen.clone());
                            etag = self.fb_commit(db, &record, &etag).await?;
                            let fb = record.failback.as_mut().expect("advancing a failback");
                            let go = match &fb.switch {
                                Some(_) => format!("The switch back starts {}.", switch_words(fb)),
                                None => format!(
                                    "Nothing has moved: writes and DNS stay on {replica} in {dr}. To switch back \
                                     ({}):\n  {}\n(add \"at\": \"<RFC 3339 time>\" for a window).",
                                    if fb.aurora {
                                        "Aurora's switchover pauses writes for a minute or two"
                                    } else {
                                        "writes pause for about two metric periods and the promotion"
                                    },
                                    notices::command(
                                        self.cfg,
                                        json!({"action": "failback", "database": db.name, "by": "NAME", "confirm": db.name, "switch": true})
                                    )
                                ),
                            };
                            let n = failback_notice(
                                db,
                                fb,
                                "failback-ready",
                                Severity::Warning,
                                format!("drpilot: failback of {} READY to switch to {src}", db.name),
                                format!(
                                    "{} {primary} in {src} is available and has caught up ({seen}), {} after the \
                                     failback began.\n{go}\n",
                                    if fb.aurora {
                                        "The old primary cluster"
                                    } else {
                                        "The replica"
                                    },
                                    secs_between(fb.requested_at, Utc::now())
                                ),
                            );
                            self.tell(&mut undelivered, &n).await;
                            fb.notices_sent.push("ready".into());
                        }
                        false => {
                            let since = fb.replica_requested_at.unwrap_or(fb.requested_at);
                            let what = ("replica-stuck", "the replica in the primary region");
                            etag = self
                                .wait_on(&mut undelivered, db, &mut record, etag, what, since, seen)
                                .await?;
                            continue;
                        }
                    }
                }
                FailbackStep::AwaitSwitch => unreachable!("handled above"),
                FailbackStep::BlockWrites if fb.blocked_group.is_none() => {
                    match standby.can_block_writes(replica).await {
                        // the group goes on the record before the block: a call-off gives back that one
                        Ok(group) => fb.blocked_group = Some(group),
                        Err(e @ Error::Refused(_)) => {
                            let why = format!("writes could not be blocked on {replica} ({e}); nothing was changed");
                            return self.call_off_switch(db, record, &etag, why, false, undelivered).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
                FailbackStep::BlockWrites => match standby.block_writes_on(replica).await {
                    Ok(how) => {
                        info!(db = %db.name, %how, "writes blocked on the failed-over primary");
                        fb.writes_blocked = Some((how, Utc::now()));
                    }
                    Err(e @ Error::Refused(_)) => {
                        let why = format!("writes could not be blocked on {replica} ({e})");
                        return self.call_off_switch(db, record, &etag, why, true, undelivered).await;
                    }
                    // a throttled call, a lost answer: block again (the same setting) next look
                    Err(e) => return Err(e),
                },
                FailbackStep::CallOff => {
                    let why = fb.calling_off.clone().unwrap_or_default();
                    return self.call_off_switch(db, record, &etag, why, true, undelivered).await;
                }
                FailbackStep::AwaitCaughtUp => {
                    // RDS applies a parameter group change asynchronously: the periods that prove
                    // the replica caught up begin once it is in force ("in-sync").
                    let blocked_at = fb.writes_blocked.as_ref().map_or(now, |(_, t)| *t);
                    if fb.block_in_force_at.is_none() {
                        let applied = standby.instance(replica).await?.is_some_and(|i| i.parameters_applied);
                        if applied {
                            fb.block_in_force_at = Some(now);
                            etag = self.fb_commit(db, &record, &etag).await?;
                        } else if now - blocked_at > stuck_after {
                            let why = format!(
                                "the block on {replica} was not in force (its parameter group not in-sync) within {}",
                                human_seconds(stuck_after.num_seconds() as f64)
                            );
                            return self.call_off_switch(db, record, &etag, why, true, undelivered).await;
                        }
                        self.nap(poll).await;
                        continue;
                    }
                    let in_force_at = fb.block_in_force_at.unwrap_or(blocked_at);
                    // RDS's ReplicaLag: the Maximum over a whole period that began after the
                    // block and has ended (as a planned failover; a partial one may be lucky).
                    let lag = match super::settled_period(in_force_at, now, self.cfg.metric_period_seconds) {
                        Some((from, to)) => self.replica_lag(db, primary, from, to).await.unwrap_or_else(|e| {
                            warn!(db = %db.name, error = %e, "ReplicaLag could not be read: asked again");
                            None
                        }),
                        None => None,
                    };
                    match lag {
                        Some(0.0) => {
                            info!(db = %db.name, "the replica in the original region has every write");
                            fb.caught_up_at = Some(now);
                        }
                        seen if now - blocked_at > stuck_after => {
                            let why = format!(
                                "{primary} did not catch up within {} of blocking writes ({})",
                                human_seconds(stuck_after.num_seconds() as f64),
                                seen.map_or_else(
                                    || "no ReplicaLag for a whole period".to_string(),
                                    |l| format!("ReplicaLag {l}")
                                )
                            );
                            return self.call_off_switch(db, record, &etag, why, true, undelivered).await;
                        }
                        _ => {
                            self.nap(poll).await;
                            continue;
                        }
                    }
                }
                FailbackStep::Promote if fb.aurora => {
                    let global = global_of(db).unwrap_or_default();
                    let g = standby.global(global).await?;
                    let member = g.as_ref().and_then(|g| g.member(primary));
                    let under_way = g.as_ref().is_some_and(|g| g.switching_to(primary));
                    let busy = g.as_ref().is_some_and(|g| g.switching || g.status != "available");
                    match member {
                        None => {
                            let why = format!("{primary} is no longer a member of {global}: nothing to switch to");
                            return self.call_off_switch(db, record, &etag, why, false, undelivered).await;
                        }
                        // an earlier request took (its answer lost, or its run killed), done or
                        // under way: never asked again, never called off
                        Some(m) if m.is_writer || under_way => fb.promote_accepted_at = Some(Utc::now()),
                        Some(m) => match standby.switchover(global, &m.arn.clone()).await? {
                            Promotion::Accepted => {
                                info!(db = %db.name, failback = %fb.id, "switchover back asked");
                                fb.promote_accepted_at = Some(Utc::now());
                            }
                            Promotion::NotNow { code, message } => {
                                // Nothing was blocked: the DR cluster serves as before. Asked
                                // again until the limit (from when the switch became due and the
                                // old primary was ready), then called off (a new go tries again);
                                // never while the global database is switching.
                                let due_at = fb
                                    .switch
                                    .as_ref()
                                    .map_or(now, |o| o.not_before.unwrap_or(o.at).max(o.at));
                                let since = fb.replica_ready_at.map_or(due_at, |r| r.max(due_at));
                                if now - since > stuck_after && !busy {
                                    let why = format!(
                                        "AWS would not switch {global} over to {primary} within {} ({code}: {message})",
                                        human_seconds(stuck_after.num_seconds() as f64)
                                    );
                                    return self.call_off_switch(db, record, &etag, why, false, undelivered).await;
                                }
                                let seen = format!("{code}: {message}; {replica} in {dr} serves as before");
                                let what = ("promote-stuck", "AWS to switch over");
                                etag = self
                                    .wait_on(&mut undelivered, db, &mut record, etag, what, since, seen)
                                    .await?;
                                continue;
                            }
                        },
                    }
                }
                FailbackStep::AwaitPromoted if fb.aurora => {
                    let global = global_of(db).unwrap_or_default();
                    let g = standby.global(global).await?;
                    let cluster = origin.cluster(primary).await?;
                    let writer = g.as_ref().and_then(|g| g.member(primary)).is_some_and(|m| m.is_writer);
                    let settled = g.as_ref().is_some_and(|g| g.status == "available" && !g.switching);
                    let dr_writer = g.as_ref().and_then(|g| g.member(replica)).is_some_and(|m| m.is_writer);
                    let asked = fb.promote_accepted_at.unwrap_or(now);
                    match cluster {
                        Some(c) if writer && settled && c.status == "available" => {
                            fb.promoted_at = Some(Utc::now());
                            fb.target = c.endpoint;
                        }
                        // settled with the DR cluster still the writer, well after the ask: AWS
                        // cancelled or never ran the switchover; asked again (nothing moved)
                        _ if settled && dr_writer && now - asked > Duration::seconds(3 * poll.as_secs() as i64) => {
                            if fb.switch_reasks >= 2 {
                                let why = format!(
                                    "AWS accepted the switchover of {global} to {primary} and rolled it back {} times",
                                    fb.switch_reasks + 1
                                );
                                return self.call_off_switch(db, record, &etag, why, false, undelivered).await;
                            }
                            warn!(db = %db.name, failback = %fb.id, "the switchover back did not take: asking again");
                            fb.switch_reasks += 1;
                            fb.seen = Some(format!(
                                "the switchover to {primary} did not take ({replica} is still the writer): asked again"
                            ));
                            fb.promote_accepted_at = None;
                        }
                        found => {
                            let seen = format!(
                                "{global} is {}; {primary} is {}{}",
                                g.as_ref().map_or("not listed", |g| g.status.as_str()),
                                found.as_ref().map_or("not listed", |c| c.status.as_str()),
                                if writer { ", the writer" } else { ", not the writer yet" }
                            );
                            let since = fb.promote_accepted_at.unwrap_or(now);
                            let what = ("promotion-stuck", "the switchover back");
                            etag = self
                                .wait_on(&mut undelivered, db, &mut record, etag, what, since, seen)
                                .await?;
                            continue;
                        }
                    }
                }
                FailbackStep::Promote => {
                    let found = origin.instance(primary).await?;
                    let retention = fb.old_primary.as_ref().map_or(0, |r| r.shape.backup_retention_days);
                    if found.is_none() {
                        let why = format!("{primary} is no longer in {src}: nothing to promote");
                        return self.call_off_switch(db, record, &etag, why, true, undelivered).await;
                    } else if found.as_ref().is_some_and(|i| i.replica_of.is_none()) {
                        fb.promote_accepted_at = Some(Utc::now()); // an earlier request took
                    } else {
                        match origin.promote_instance(primary, retention).await? {
                            Promotion::Accepted => fb.promote_accepted_at = Some(Utc::now()),
                            Promotion::NotNow { code, message } => {
                                let blocked_at = fb.writes_blocked.as_ref().map_or(now, |(_, t)| *t);
                                // Still an idle replica (no promotion of ours under way): writes
                                // go back to the DR primary rather than stay blocked for ever.
                                let idle = found.as_ref().is_none_or(|i| i.status == "available");
                                if idle && now - blocked_at > stuck_after {
                                    let why = format!(
                                        "AWS would not promote {primary} within {} of blocking writes ({code}: {message})",
                                        human_seconds(stuck_after.num_seconds() as f64)
                                    );
                                    return self.call_off_switch(db, record, &etag, why, true, undelivered).await;
                                }
                                let seen = format!(
                                    "{code}: {message} ({}); writes stay blocked on {replica}: the application cannot write",
                                    found.as_ref().map_or("not listed".to_string(), |i| format!("{primary} is {}", i.status))
                                );
                                let what = ("promote-stuck", "AWS to promote");
                                etag = self
                                    .wait_on(&mut undelivered, db, &mut record, etag, what, blocked_at, seen)
                                    .await?;
                                continue;
                            }
                        }
                    }
                }
                FailbackStep::AwaitPromoted => match origin.instance(primary).await? {
                    Some(i) if i.replica_of.is_none() && i.status == "available" => {
                        fb.promoted_at = Some(Utc::now());
                        fb.target = i.endpoint;
                    }
                    found => {
                        // Accepted: the promotion is AWS's now; writes stay blocked until it ends.
                        let seen = found.map_or_else(|| "not listed".into(), |i| format!("{primary} is {}", i.status));
                        let since = fb.promote_accepted_at.unwrap_or(now);
                        let what = ("promotion-stuck", "the promotion back");
                        etag = self
                            .wait_on(&mut undelivered, db, &mut record, etag, what, since, seen)
                            .await?;
                        continue;
                    }
                },
                FailbackStep::AllowWrites => {
                    let group = fb.old_primary.as_ref().and_then(|r| r.shape.parameter_group.clone());
                    let how = origin.allow_writes_in(group.as_deref().unwrap_or_default()).await?;
                    fb.writes_allowed = Some((format!("{how} of {primary}"), Utc::now()));
                }
                FailbackStep::SwitchDns => {
                    let target = fb
                        .target
                        .clone()
                        .ok_or_else(|| Error::RunFailed(format!("{primary} has no endpoint to point DNS at")))?;
                    let change = match &db.dns.switch {
                        DnsSwitch::Upsert => self.hub().dns.point(&db.dns, &target).await?,
                        DnsSwitch::FailoverRecords { alarm } => {
                            // The PRIMARY record's health check follows this alarm: FailedOver 0
                            // makes it healthy, and Route 53 answers the PRIMARY again.
                            let back = MetricValue {
                                name: FAILED_OVER_METRIC.into(),
                                dimensions: vec![("Database".into(), db.name.clone())],
                                value: 0.0,
                                unit: MetricUnit::Count,
                                at: Utc::now(),
                            };
                            self.hub().metrics.publish(&self.cfg.namespace, &[back]).await?;
                            format!("{FAILOVER_RECORDS}{alarm}")
                        }
                    };
                    fb.dns_change_id = Some(change);
                    fb.dns_requested_at = Some(Utc::now());
                }
                FailbackStep::AwaitDns => {
                    let change = fb.dns_change_id.clone().unwrap_or_default();
                    let switched = match change.strip_prefix(FAILOVER_RECORDS) {
                        None => self.hub().dns.in_sync(&change).await?,
                        Some(alarm) => self.failed_over_state(alarm).await? == "OK",
                    };
                    if !switched {
                        self.nap(poll).await;
                        continue;
                    }
                    fb.dns_in_sync_at = Some(Utc::now());
                    etag = self.fb_commit(db, &record, &etag).await?;
                    let fb = record.failback.as_mut().expect("advancing a failback");
                    let paused = match (&fb.writes_blocked, &fb.writes_allowed) {
                        (Some((_, a)), Some((_, b))) => secs_between(*a, *b),
                        _ => "?".into(),
                    };
                    let how = if fb.aurora {
                        format!(
                            "Data loss: none (Aurora's switchover synchronized {primary} before it switched; the \
                             switch took {}). Next: the recovery plan's capacity back to its size; {replica} in \
                             {dr} is its secondary again.",
                            match (fb.promote_accepted_at, fb.promoted_at) {
                                (Some(a), Some(b)) => secs_between(a, b),
                                _ => "?".into(),
                            }
                        )
                    } else {
                        format!(
                            "Data loss: none (writes were blocked on {replica} until {primary} had every one; they \
                             were paused for {paused}). Next: the recovery plan's groups back to their size, then a \
                             new replica {replica} in {dr}."
                        )
                    };
                    let n = failback_notice(
                        db,
                        fb,
                        "failback-switched",
                        Severity::Warning,
                        format!("drpilot: {} is back in {src}", db.name),
                        format!(
                            "{primary} in {src} is the primary of {} again and {} points at it ({}). {how}\n",
                            db.name,
                            db.dns.record_name.trim_end_matches('.'),
                            fb.target.as_deref().unwrap_or("?")
                        ),
                    );
                    self.tell(&mut undelivered, &n).await;
                    fb.notices_sent.push("switched".into());
                }
                FailbackStep::CapacityBack => {
                    let mut done = Vec::new();
                    for step in &capacity_steps {
                        let Some(before) = step.before else {
                            done.push(format!(
                                "{}: its size before the failover is not on record; left as it is",
                                step.group
                            ));
                            continue;
                        };
                        let size = step.size(before);
                        done.push(
                            match self.at(db).capacity.resize(&step.kind, &step.group, before).await {
                                Ok(()) => format!("{}: back to {size}", step.group),
                                Err(e) => format!("{}: could not be returned to {size}: {e}", step.group),
                            },
                        );
                    }
                    fb.capacity_restored = Some((done, Utc::now()));
                }
                FailbackStep::RetireOldStandby => match standby.instance(replica).await? {
                    Some(old) if old.deletion_protection || old.replica_of.is_some() => {
                        let why =
                            format!(
                            "{replica} in {dr} {}: it is not replaced; {} is back in {src}, without a replica: turn \
                             that off and create the replica by hand",
                            if old.deletion_protection { "has deletion protection" } else { "is a replica" },
                            db.name
                        );
                        return self.abort_failback(db, record, &etag, why, undelivered).await;
                    }
                    Some(old) => {
                        fb.old_standby = Some(Retired {
                            name: replica.to_string(),
                            resource_id: old.resource_id,
                            final_snapshot: final_snapshot(replica, fb),
                            shape: old.shape,
                            requested_at: None,
                            gone_at: None,
                        });
                    }
                    None => {
                        let why = format!(
                            "{replica} is not in {dr}: a new DR replica takes its key, class, network and parameter \
                             group from it; {} is back in {src}, without a replica: create one by hand",
                            db.name
                        );
                        return self.abort_failback(db, record, &etag, why, undelivered).await;
                    }
                },
                FailbackStep::AwaitOldStandbyGone => match self.await_retired(db, &mut record, &mut etag, false).await?
                {
                    Retiring::Gone => {}
                    Retiring::Waiting(tag) => {
                        etag = tag;
                        continue;
                    }
                    Retiring::Stranger(why) => return self.abort_failback(db, record, &etag, why, undelivered).await,
                },
                FailbackStep::CreateStandby => {
                    let source = origin
                        .instance(primary)
                        .await?
                        .ok_or_else(|| Error::RunFailed(format!("{primary} is not in {src}")))?;
                    let old = fb.old_standby.clone().expect("retired before the new standby");
                    let req = ReplicaRequest {
                        id: replica.to_string(),
                        source_arn: source.arn,
                        shape: shape_for(&old.shape, fb),
                    };
                    match standby.create_replica(&req).await? {
                        RestoreStarted::Started => fb.standby_requested_at = Some(Utc::now()),
                        RestoreStarted::AlreadyExists => {
                            let mine = standby
                                .instance(replica)
                                .await?
                                .is_some_and(|i| i.shape.tags.get(FAILBACK_TAG) == Some(&fb.id));
                            if !mine {
                                let why = format!("{replica} exists in {dr} and is not this failback's replica");
                                return self.abort_failback(db, record, &etag, why, undelivered).await;
                            }
                            fb.standby_requested_at = Some(Utc::now());
                        }
                        RestoreStarted::Refused { code, message } => {
                            // The database is served: tell once, and ask again at each look.
                            let seen = format!("AWS refused the replica {replica} in {dr}: {code}: {message}");
                            if fb.seen.as_deref() != Some(seen.as_str()) {
                                warn!(db = %db.name, %seen, "the new DR replica was refused");
                                let n = failback_notice(
                                    db,
                                    fb,
                                    "failback-standby-refused",
                                    Severity::Critical,
                                    format!("drpilot: {} has NO DR replica: AWS refused it", db.name),
                                    format!("{seen}. drpilot asks again every minute: fix the cause.\n"),
                                );
                                self.tell(&mut undelivered, &n).await;
                                fb.seen = Some(seen);
                                etag = self.fb_commit(db, &record, &etag).await?;
                            }
                            self.nap(poll * 6).await;
                            continue;
                        }
                    }
                }
                FailbackStep::AwaitStandby => {
                    let (done, seen) = match global_of(db) {
                        // the old DR cluster follows as a secondary again, by the switchover itself
                        Some(global) => {
                            let g = standby.global(global).await?;
                            let member = g.as_ref().and_then(|g| g.member(replica)).cloned();
                            let cluster = standby.cluster(replica).await?;
                            let status = cluster.map_or_else(|| "not listed".to_string(), |c| c.status);
                            let done =
                                member.as_ref().is_some_and(|m| !m.is_writer && m.in_sync) && status == "available";
                            let seen = match member {
                                None => format!("{replica} is not a member of {global}"),
                                Some(m) if m.is_writer => format!("{replica} is still the writer of {global}"),
                                Some(m) if !m.in_sync => format!("{replica} is being resynchronized (pending-resync)"),
                                Some(_) => format!("{replica} is {status}, a secondary of {global}"),
                            };
                            (done, seen)
                        }
                        None => match standby.instance(replica).await? {
                            Some(i)
                                if i.status == "available"
                                    && i.replica_of
                                        .as_deref()
                                        .is_some_and(|s| s == primary || s.ends_with(&format!(":db:{primary}")))
                                    && i.shape.tags.get(FAILBACK_TAG) == Some(&fb.id) =>
                            {
                                (true, format!("{replica} replicates {primary}"))
                            }
                            found => (
                                false,
                                found.map_or_else(|| "not listed yet".into(), |i| format!("{replica} is {}", i.status)),
                            ),
                        },
                    };
                    if !done {
                        let since = fb.standby_requested_at.or(fb.dns_in_sync_at).unwrap_or(fb.requested_at);
                        let what = ("standby-stuck", "the new DR replica");
                        etag = self
                            .wait_on(&mut undelivered, db, &mut record, etag, what, since, seen)
                            .await?;
                        continue;
                    }
                    // The plan's event for the user's automation, before completion (as a
                    // failover's: at least once, the failback id tells a repeat).
                    if fb.automation.is_none() {
                        let event = serde_json::json!({
                            "source": "drpilot",
                            "event": "failback-completed",
                            "database": db.name,
                            "failback": fb.id,
                            "failover": fb.failover,
                            "region": self.cfg.source_region,
                            "primary": primary,
                            "endpoint": fb.target,
                            "standby_region": self.cfg.dr_region,
                            "standby": replica,
                            "record": db.dns.record_name.trim_end_matches('.'),
                            "capacity_restored": fb.capacity_restored.as_ref().map(|(g, _)| g),
                            "dns_in_sync_at": fb.dns_in_sync_at,
                        });
                        if let Some(told) = self.announce(db, "failback-completed", event).await {
                            fb.automation = Some((told, Utc::now()));
                        }
                    }
                    fb.completed_at = Some(Utc::now());
                    fb.lease = None;
                    let by = fb.by.clone();
                    let at = Utc::now();
                    if let Some(f) = record.current.as_mut().filter(|f| f.acknowledged.is_none()) {
                        f.acknowledged = Some(Acknowledgement { by, at });
                    }
                    etag = self.fb_commit(db, &record, &etag).await?;
                    let fb = record.failback.as_mut().expect("advancing a failback");
                    let n = self.failback_completed(db, fb);
                    self.tell(&mut undelivered, &n).await;
                    fb.notices_sent.push("completed".into());
                    if let Err(e) = self.drill_failback_done(db, fb, None).await {
                        undelivered.push(format!("the drill's last word: {e}"));
                    }
                }
                FailbackStep::Done => unreachable!("handled above"),
            }
            etag = self.fb_commit(db, &record, &etag).await?;
        }
    }

    /// Whether the old primary cluster has rejoined the global database as an in-sync secondary
    /// (Aurora rebuilds it once its region answers after a failover), and what AWS shows.
    async fn aurora_rejoined(&self, db: &DatabaseSpec, global: &str) -> Result<(bool, String)> {
        let (primary, _) = names(db)?;
        let g = self.at(db).standby.global(global).await?;
        let cluster = self.at(db).primary.cluster(primary).await?;
        let status = cluster.map_or_else(|| "not listed".to_string(), |c| c.status);
        Ok(match (g, &status) {
            (None, _) => (false, format!("the global database {global} is not there")),
            (Some(g), status) => match g.member(primary) {
                None => (false, format!("{primary} is not a member of {global}")),
                Some(m) if m.is_writer => (false, format!("{primary} is the writer of {global}")),
                Some(m) if !m.in_sync => (
                    false,
                    format!("{primary} is being rebuilt as a secondary of {global} (pending-resync)"),
                ),
                Some(_) if status != "available" || g.status != "available" || g.switching => {
                    (false, format!("{primary} is {status}; {global} is {}", g.status))
                }
                Some(_) => (true, format!("{primary} rejoined {global} as a secondary, in sync")),
            },
        })
    }

    /// RDS's `ReplicaLag` (Maximum) of the replica in the original region, from that region's
    /// CloudWatch.
    async fn replica_lag(
        &self,
        db: &DatabaseSpec,
        id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Option<f64>> {
        let metric = MetricId::new("AWS/RDS", "ReplicaLag", &[("DBInstanceIdentifier", id)]);
        let period = self.cfg.metric_period_seconds;
        Ok(self
            .at(db)
            .origin_metrics
            .newest(&metric, period, from, to)
            .await?
            .map(|p| p.value))
    }

    /// One look at an instance being retired: asks for its deletion (final snapshot kept)
    /// until AWS has it, and records when it is gone. `Some(etag)`: looked, not gone yet.
    async fn await_retired(
        &self,
        db: &DatabaseSpec,
        record: &mut DbRecord,
        etag: &mut String,
        old_primary: bool,
    ) -> Result<Retiring> {
        let fb = record.failback.as_mut().expect("advancing a failback");
        let tags = snapshot_tags(fb);
        let slot = if old_primary {
            &mut fb.old_primary
        } else {
            &mut fb.old_standby
        };
        // The deletion is on the record before it is asked for (a run killed after asking
        // still names the final snapshot in the notices).
        if let Some(r) = slot.as_mut().filter(|r| r.requested_at.is_none()) {
            r.requested_at = Some(Utc::now());
            *etag = self.fb_commit(db, record, etag).await?;
        }
        let fb = record.failback.as_mut().expect("advancing a failback");
        let slot = if old_primary {
            &mut fb.old_primary
        } else {
            &mut fb.old_standby
        };
        let retired = slot.clone().expect("recorded before it is retired");
        let look = if old_primary {
            retire_look(&self.at(db).primary, &self.cfg.source_region, &retired, &tags, false).await?
        } else {
            retire_look(&self.at(db).standby, &self.cfg.dr_region, &retired, &tags, true).await?
        };
        match look {
            Retiring::Gone => {
                if let Some(r) = slot.as_mut() {
                    r.gone_at = Some(Utc::now());
                }
                Ok(Retiring::Gone)
            }
            Retiring::Stranger(why) => Ok(Retiring::Stranger(why)),
            Retiring::Waiting(_) => {
                info!(db = %db.name, instance = %retired.name, snapshot = %retired.final_snapshot, "retiring (final snapshot kept)");
                self.nap(std::time::Duration::from_secs(u64::from(self.cfg.poll_seconds)))
                    .await;
                Ok(Retiring::Waiting(etag.clone()))
            }
        }
    }

    async fn abort_failback(
        &self,
        db: &DatabaseSpec,
        mut record: DbRecord,
        etag: &str,
        why: String,
        mut undelivered: Vec<String>,
    ) -> Result<Value> {
        let fb = record.failback.as_mut().expect("advancing a failback");
        warn!(db = %db.name, failback = %fb.id, %why, "failback stopped");
        fb.aborted = Some((why.clone(), Utc::now()));
        fb.lease = None;
        let id = fb.id.clone();
        self.fb_commit(db, &record, etag).await?;
        let fb = record.failback.as_ref().expect("advancing a failback");
        let serving = if fb.switched() && fb.aurora {
            format!(
                "{} is served from {}; {} in {} follows it as the global database's secondary",
                db.name,
                self.cfg.source_region,
                names(db)?.1,
                self.cfg.dr_region
            )
        } else if fb.switched() {
            // The old standby's group had writes blocked for the switch: a replica made with it
            // by hand, once promoted in a future failover, must take writes.
            let group = fb
                .old_standby
                .as_ref()
                .and_then(|r| r.shape.parameter_group.clone())
                .or_else(|| fb.blocked_group.clone())
                .unwrap_or_default();
            let gone = fb.old_standby.as_ref().is_some_and(|r| r.gone_at.is_some());
            let given = if !gone {
                // the old DR primary still exists: writable again, it would take stale writes
                format!(
                    "parameter group {group} keeps read_only=1 from the switch while {} exists: once it is deleted, \
                     set read_only back to {{TrueIfReplica}} before a replica uses the group",
                    names(db)?.1
                )
            } else {
                match self.at(db).standby.allow_writes_in(&group).await {
                    Ok(how) => format!("{how} (blocked for the switch, given back)"),
                    Err(e) => format!(
                        "parameter group {group} still has read_only=1 from the switch ({e}): set it back to \
                         {{TrueIfReplica}} before a replica uses it"
                    ),
                }
            };
            format!("{} is served from {}; {given}", db.name, self.cfg.source_region)
        } else {
            format!(
                "{} stays on {} in {} (DNS and writes unchanged)",
                db.name,
                names(db)?.1,
                self.cfg.dr_region
            )
        };
        let n = failback_notice(
            db,
            fb,
            "failback-stopped",
            Severity::Critical,
            format!("drpilot: failback of {} STOPPED", db.name),
            format!("Failback {id} stopped: {why}.\n{serving}.\n"),
        );
        self.tell(&mut undelivered, &n).await;
        if let Err(e) = self.drill_failback_done(db, fb, Some(&why)).await {
            undelivered.push(format!("the drill's last word: {e}"));
        }
        super::undelivered_error(&id, undelivered)?;
        Ok(json!({"database": db.name, "failback": id, "aborted": why}))
    }

    /// The switch back could not go on before the promotion: writes are given back to the
    /// failed-over primary (when they were blocked) and the failback waits for a new go.
    async fn call_off_switch(
        &self,
        db: &DatabaseSpec,
        mut record: DbRecord,
        etag: &str,
        why: String,
        blocked: bool,
        mut undelivered: Vec<String>,
    ) -> Result<Value> {
        let (_, replica) = names(db)?;
        let mut etag = etag.to_string();
        let restored = if blocked {
            // The call-off is on the record before writes are given back: a run killed in
            // between gives them back again (CallOff) and never promotes. Giving them back
            // is tried at each look until it is done.
            let fb = record.failback.as_mut().expect("advancing a failback");
            if fb.calling_off.is_none() {
                fb.calling_off = Some(why.clone());
                etag = self.fb_commit(db, &record, &etag).await?;
            }
            let fb = record.failback.as_ref().expect("advancing a failback");
            let group = match fb.blocked_group.clone() {
                Some(g) => g,
                // a record from before the group was recorded: the instance's own
                None => self
                    .at(db)
                    .standby
                    .instance(replica)
                    .await?
                    .and_then(|i| i.shape.parameter_group)
                    .unwrap_or_default(),
            };
            let how = self.at(db).standby.allow_writes_in(&group).await?;
            format!("writes restored on {replica} ({how})")
        } else {
            format!("writes on {replica} were not touched")
        };
        let etag = etag.as_str();
        let fb = record.failback.as_mut().expect("advancing a failback");
        fb.calling_off = None;
        fb.blocked_group = None;
        fb.block_in_force_at = None;
        fb.switch_reasks = 0;
        fb.promote_accepted_at = None;
        fb.notices_sent
            .retain(|n| !matches!(n.as_str(), "promote-stuck" | "promotion-stuck"));
        warn!(db = %db.name, failback = %fb.id, %why, "switch back called off");
        fb.called_off
            .push(format!("{}: {why}", crate::model::stamp(Utc::now())));
        fb.switch = None;
        fb.writes_blocked = None;
        fb.caught_up_at = None;
        fb.lease = None;
        fb.notices_sent.retain(|n| n != "ready");
        let id = fb.id.clone();
        self.fb_commit(db, &record, etag).await?;
        let fb = record.failback.as_ref().expect("advancing a failback");
        let n = failback_notice(
            db,
            fb,
            "failback-called-off",
            Severity::Critical,
            format!("drpilot: switch back of {} CALLED OFF", db.name),
            format!(
                "The switch back of {} was called off: {why}; {restored}. {} keeps serving from {}. The replica \
                 stays; ask for the switch again when it has caught up.\n",
                db.name, replica, self.cfg.dr_region
            ),
        );
        self.tell(&mut undelivered, &n).await;
        if let Err(e) = self
            .drill_failback_done(db, fb, Some(&format!("switch back called off: {why}")))
            .await
        {
            undelivered.push(format!("the drill's last word: {e}"));
        }
        super::undelivered_error(&id, undelivered)?;
        Ok(json!({"database": db.name, "failback": id, "called_off": why}))
    }

    fn failback_completed(&self, db: &DatabaseSpec, fb: &Failback) -> Notice {
        let (primary, replica) = names(db).unwrap_or_default();
        let (src, dr) = (&self.cfg.source_region, &self.cfg.dr_region);
        let mut lines = Vec::new();
        let mut line = |what: &str, a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| {
            if let (Some(a), Some(b)) = (a, b) {
                lines.push(format!("  {what}: {}", secs_between(a, b)));
            }
        };
        line(
            "old primary retired",
            fb.old_primary.as_ref().and_then(|r| r.requested_at),
            fb.old_primary.as_ref().and_then(|r| r.gone_at),
        );
        line(
            "replica made and caught up",
            fb.replica_requested_at,
            fb.replica_ready_at,
        );
        line(
            "writes paused (blocked -> allowed)",
            fb.writes_blocked.as_ref().map(|w| w.1),
            fb.writes_allowed.as_ref().map(|w| w.1),
        );
        line(
            "switch back (blocked -> DNS in sync)",
            fb.writes_blocked.as_ref().map(|w| w.1),
            fb.dns_in_sync_at,
        );
        line("new DR replica", fb.standby_requested_at, fb.completed_at);
        if fb.aurora {
            line(
                "old primary rejoined and in sync",
                Some(fb.requested_at),
                fb.replica_ready_at,
            );
            line("switchover (asked -> writer)", fb.promote_accepted_at, fb.promoted_at);
            line(
                "switch back (asked -> DNS in sync)",
                fb.promote_accepted_at,
                fb.dns_in_sync_at,
            );
        }
        line("whole failback", Some(fb.requested_at), fb.completed_at);
        let mut groups = fb
            .capacity_restored
            .as_ref()
            .filter(|(g, _)| !g.is_empty())
            .map(|(g, _)| format!("Recovery plan: {}.\n", g.join("; ")))
            .unwrap_or_default();
        if let Some((told, _)) = &fb.automation {
            groups.push_str(&format!("Automation: {told}.\n"));
        }
        let snapshots: Vec<&str> = [&fb.old_primary, &fb.old_standby]
            .into_iter()
            .flatten()
            .filter(|r| r.requested_at.is_some())
            .map(|r| r.final_snapshot.as_str())
            .collect();
        failback_notice(
            db,
            fb,
            "failback-completed",
            Severity::Info,
            format!("drpilot: {} PROTECTED again ({src} -> {dr})", db.name),
            format!(
                "Failback {id} of {db} completed: {primary} in {src} is the primary, {record} points at it, and \
                 {replica} in {dr} is its replica again. Automatic failover is armed (failover {fo} acknowledged \
                 by {by}).\nTimeline:\n{timeline}\n{groups}{snaps}\n",
                id = fb.id,
                db = db.name,
                record = db.dns.record_name.trim_end_matches('.'),
                fo = fb.failover,
                by = fb.by,
                timeline = lines.join("\n"),
                snaps = match (fb.aurora, snapshots.is_empty()) {
                    (true, _) => format!(
                        "Nothing was deleted. Writes the failover lost are not in {primary}: Aurora rebuilt it from \
                         the new primary when it rejoined."
                    ),
                    (false, true) => "Final snapshots kept: none.".to_string(),
                    (false, false) => format!(
                        "Final snapshots kept (delete them when you no longer need them): {}. The old primary's \
                         may hold writes the failover lost.",
                        snapshots.join(", ")
                    ),
                },
            ),
        )
    }
}

/// When the switch back starts, in words.
fn switch_words(fb: &Failback) -> String {
    match &fb.switch {
        None => "on an operator's go (a second failback command with \"switch\": true)".into(),
        Some(SwitchOrder {
            not_before: Some(t), ..
        }) => format!(
            "not before {} (ordered by {})",
            crate::model::stamp(*t),
            fb.switch.as_ref().map_or("", |s| &s.by)
        ),
        Some(s) => format!("as soon as the replica has caught up (ordered by {})", s.by),
    }
}

/// One look at an instance a failback retires, in its region: gone (its final snapshot then
/// carries the failback's tag, and an old standby's parameter group, blocked for the switch,
/// lets a future promotion take writes again); another instance under its name (nothing is
/// deleted); or still there, its deletion asked for (again: AWS's "already being deleted" is
/// no error).
async fn retire_look<I: Instances>(
    instances: &I,
    region: &str,
    retired: &Retired,
    tags: &std::collections::BTreeMap<String, String>,
    give_writes_back: bool,
) -> Result<Retiring> {
    match instances.instance(&retired.name).await? {
        None => {
            match instances.tag_snapshot(&retired.final_snapshot, tags).await {
                Ok(true) => {}
                Ok(false) => warn!(snapshot = %retired.final_snapshot, %region, "the final snapshot is not listed"),
                Err(e) => {
                    warn!(snapshot = %retired.final_snapshot, error = %e, "the final snapshot could not be tagged")
                }
            }
            if give_writes_back {
                let group = retired.shape.parameter_group.clone().unwrap_or_default();
                instances.allow_writes_in(&group).await?;
            }
            Ok(Retiring::Gone)
        }
        Some(i) if !retired.resource_id.is_empty() && i.resource_id != retired.resource_id => {
            Ok(Retiring::Stranger(format!(
                "the instance named {} in {region} {STRANGER} (resource {} now, {} then): nothing was deleted",
                retired.name, i.resource_id, retired.resource_id
            )))
        }
        Some(i) => {
            if i.status != "deleting" {
                instances.retire(&retired.name, &retired.final_snapshot).await?;
            }
            Ok(Retiring::Waiting(String::new()))
        }
    }
}
