//! The failover record: one JSON object per protected database in the DR state bucket. It
//! is the single-flight lock (every change is a conditional write), the progress log that
//! lets a failover resume after Lambda's time limit, and the anti-flapping memory.

pub use crate::model::GroupSize;
pub use crate::state::Lease;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DbRecord {
    /// The newest failover (running, completed, or acknowledged).
    pub current: Option<Failover>,
    /// The one before it.
    pub previous: Option<Failover>,
    /// The last alarm episode (or operator request) a decision was made for: duplicate
    /// deliveries of the same episode are recognised and ignored.
    pub last_episode: Option<Episode>,
    /// The way back after `current` (a failback of it), or the last one.
    #[serde(default)]
    pub failback: Option<Failback>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    pub key: String,
    pub verdict: String,
    pub decided_at: DateTime<Utc>,
    /// The gates that failed, to tell a changed refusal from the same one.
    #[serde(default)]
    pub failed_gates: Vec<String>,
    /// The last time a decision of this episode saw the primary available (taking writes).
    #[serde(default)]
    pub primary_serving_at: Option<DateTime<Utc>>,
    /// For an alarm episode: the alarm, so the continuation can re-check a refusal while
    /// the alarm stays in ALARM (confirmation often lags the alarm).
    #[serde(default)]
    pub alarm: Option<AlarmRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmRef {
    pub name: String,
    pub region: String,
    pub since: DateTime<Utc>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateRecord {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub by: String,
    pub at: DateTime<Utc>,
}

/// One failover. The next step is the first one without a timestamp, so the record alone
/// says where to resume; each step is recorded before and after it is done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Failover {
    pub id: String,
    pub database: String,
    /// Why, in full: the alarm and its reason, or the operator's reason.
    pub trigger: String,
    /// Why, in a few words (for timelines): "alarm NAME" or "operator request".
    #[serde(default)]
    pub cause: String,
    pub planned: bool,
    /// When the failure was detected (the alarm entered ALARM) or the operator asked.
    pub detected_at: DateTime<Utc>,
    pub decided_at: DateTime<Utc>,
    pub estimated_rpo_seconds: Option<f64>,
    pub gates: Vec<GateRecord>,
    /// The standby's endpoint, where DNS will point.
    pub target: Option<String>,
    /// A planned RDS failover: block writes on the primary and wait for the replica to catch
    /// up before promoting, so that nothing is lost.
    #[serde(default)]
    pub block_writes_first: bool,
    /// How and when writes were blocked on the primary.
    #[serde(default)]
    pub writes_blocked: Option<(String, DateTime<Utc>)>,
    /// When the replica reported no lag after writes were blocked.
    #[serde(default)]
    pub caught_up_at: Option<DateTime<Utc>>,
    pub promote_requested_at: Option<DateTime<Utc>>,
    /// Promotion requests AWS answered "not now" (the standby was busy), and its last reason.
    #[serde(default)]
    pub promote_refusals: u32,
    /// A promotion request was sent and its answer not yet learnt: it may have been accepted.
    #[serde(default)]
    pub promote_in_doubt: bool,
    #[serde(default)]
    pub promote_waiting: Option<String>,
    pub promote_accepted_at: Option<DateTime<Utc>>,
    pub promoted_at: Option<DateTime<Utc>>,
    pub dns_change_id: Option<String>,
    pub dns_requested_at: Option<DateTime<Utc>>,
    pub dns_in_sync_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Notices already sent, by step, so that a resumed run does not repeat them.
    pub notices_sent: Vec<String>,
    pub lease: Option<Lease>,
    pub acknowledged: Option<Acknowledgement>,
    /// Given up before promotion because the failure it was for ended (why, when).
    #[serde(default)]
    pub aborted: Option<(String, DateTime<Utc>)>,
    /// The old primary fenced after an unplanned failover (how, when); until then two
    /// writable primaries may exist once its region returns.
    #[serde(default)]
    pub fenced: Option<(String, DateTime<Utc>)>,
    /// The last reason fencing failed (told to responders once per reason).
    #[serde(default)]
    pub fence_error: Option<String>,
    /// The recovery plan's capacity, scaled up after the promotion and before DNS (empty: none).
    #[serde(default)]
    pub capacity: Vec<CapacityStep>,
    /// The plan's wait for capacity (seconds after the promotion) and whether DNS waits longer.
    #[serde(default)]
    pub capacity_wait_seconds: u32,
    #[serde(default)]
    pub capacity_strict: bool,
    /// When DNS was let go after the capacity steps, and why: `"ready"`, or what was not.
    #[serde(default)]
    pub capacity_settled: Option<(String, DateTime<Utc>)>,
    /// An operator let DNS switch without the capacity a strict plan waits for.
    #[serde(default)]
    pub capacity_waived: Option<Acknowledgement>,
    /// The recovery plan's event for the user's own automation, at the end: what became of
    /// it ("... published to TOPIC", or why not), and when.
    #[serde(default)]
    pub automation: Option<(String, DateTime<Utc>)>,
}

/// One Auto Scaling group or ECS service of a failover's recovery plan: asked for, then
/// waited on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityStep {
    /// What `group` names (records from before ECS services knew only groups).
    #[serde(default)]
    pub kind: crate::model::CapacityKind,
    pub group: String,
    /// What the plan asks for.
    pub wanted: GroupSize,
    /// The group's size before this failover scaled it (what a failback returns it to).
    #[serde(default)]
    pub before: Option<GroupSize>,
    /// When AWS accepted the new size (or the group was found at least that big already).
    #[serde(default)]
    pub requested_at: Option<DateTime<Utc>>,
    /// A new size was asked for (`false` with `requested_at`: the group was big enough).
    #[serde(default)]
    pub resized: bool,
    /// When as many instances as asked for were in service and healthy.
    #[serde(default)]
    pub healthy_at: Option<DateTime<Utc>>,
    /// What AWS showed at the last look, or why asking failed.
    #[serde(default)]
    pub seen: Option<String>,
}

impl CapacityStep {
    /// What AWS showed at the last look, for responders.
    pub fn last_seen(&self) -> &str {
        self.seen.as_deref().unwrap_or("not seen yet")
    }

    /// "Auto Scaling group web" / "ECS service api (cluster apps)".
    pub fn label(&self) -> String {
        self.kind.label(&self.group)
    }

    /// A size as this step's kind has it.
    pub fn size(&self, size: crate::model::GroupSize) -> String {
        self.kind.size(size)
    }

    pub fn new(group: &crate::model::CapacityGroup) -> Self {
        CapacityStep {
            kind: group.kind.clone(),
            group: group.name.clone(),
            wanted: group.size,
            before: None,
            requested_at: None,
            resized: false,
            healthy_at: None,
            seen: None,
        }
    }
}

/// A failback: after a failover, back to the original region and protected again. RDS: the
/// old primary retired (its final snapshot kept) and replaced by a cross-region replica of the
/// new primary under its name; once caught up, and once an operator says so, a planned
/// switch back (writes blocked, zero lag, promote, DNS, capacity back); then the old standby
/// is replaced the same way by a new replica in the DR region. Each step is recorded, so the
/// record alone says where to resume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Failback {
    pub id: String,
    /// An Aurora global database's way back: once the old primary cluster has rejoined as an
    /// in-sync secondary, a switchover to it (Aurora synchronizes before it switches), DNS and
    /// capacity back; the DR cluster is its secondary again by itself. Nothing is replaced.
    #[serde(default)]
    pub aurora: bool,
    /// The failover it undoes.
    pub failover: String,
    pub by: String,
    pub requested_at: DateTime<Utc>,
    /// The operator's go for the switch back (when it may start: at once, or a window).
    #[serde(default)]
    pub switch: Option<SwitchOrder>,
    /// The old primary in the original region, replaced by the new replica.
    #[serde(default)]
    pub old_primary: Option<Retired>,
    #[serde(default)]
    pub replica_requested_at: Option<DateTime<Utc>>,
    /// The new replica in the original region available and within the lag limit.
    #[serde(default)]
    pub replica_ready_at: Option<DateTime<Utc>>,
    /// What the last look at the step waited on showed.
    #[serde(default)]
    pub seen: Option<String>,
    #[serde(default)]
    pub writes_blocked: Option<(String, DateTime<Utc>)>,
    #[serde(default)]
    pub caught_up_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub promote_accepted_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub promoted_at: Option<DateTime<Utc>>,
    /// The promoted replica's parameter group lets it take writes (how, when).
    #[serde(default)]
    pub writes_allowed: Option<(String, DateTime<Utc>)>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub dns_change_id: Option<String>,
    #[serde(default)]
    pub dns_requested_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub dns_in_sync_at: Option<DateTime<Utc>>,
    /// The recovery plan's groups returned to their size before the failover (what was done
    /// for each, or why not).
    #[serde(default)]
    pub capacity_restored: Option<(Vec<String>, DateTime<Utc>)>,
    /// The old standby (the failover's promoted replica), replaced by a new DR replica.
    #[serde(default)]
    pub old_standby: Option<Retired>,
    #[serde(default)]
    pub standby_requested_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    /// Given up (why, when): before the switch nothing was lost and the failed-over primary serves.
    #[serde(default)]
    pub aborted: Option<(String, DateTime<Utc>)>,
    /// Switches back called off (the replica did not catch up); writes were given back.
    #[serde(default)]
    pub called_off: Vec<String>,
    /// A call-off under way (why): recorded before writes are given back, so that a run killed
    /// meanwhile gives them back again rather than promote.
    #[serde(default)]
    pub calling_off: Option<String>,
    /// The DR primary's parameter group writes are blocked through (recorded before the block).
    #[serde(default)]
    pub blocked_group: Option<String>,
    /// When RDS first showed the block in force (`in-sync`): the periods that prove the replica
    /// caught up begin after it.
    #[serde(default)]
    pub block_in_force_at: Option<DateTime<Utc>>,
    /// The recovery plan's event for the user's own automation, at the end (as a failover's).
    #[serde(default)]
    pub automation: Option<(String, DateTime<Utc>)>,
    /// Aurora: switchovers AWS accepted and then rolled back, asked again (bounded).
    #[serde(default)]
    pub switch_reasks: u32,
    #[serde(default)]
    pub notices_sent: Vec<String>,
    #[serde(default)]
    pub lease: Option<Lease>,
}

/// An operator's go for the switch back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchOrder {
    pub by: String,
    pub at: DateTime<Utc>,
    /// Not before then (a maintenance window); `None`: as soon as the replica is ready.
    #[serde(default)]
    pub not_before: Option<DateTime<Utc>>,
}

/// An instance a failback replaces: what its replacement takes over, its final snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retired {
    pub name: String,
    /// Its `DbiResourceId`: only this instance is ever deleted under the name.
    #[serde(default)]
    pub resource_id: String,
    pub shape: crate::model::InstanceShape,
    pub final_snapshot: String,
    /// `None`: it was already gone (its shape came from an earlier failback's record).
    #[serde(default)]
    pub requested_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub gone_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailbackStep {
    RetireOldPrimary,
    AwaitOldPrimaryGone,
    CreateReplica,
    AwaitReplica,
    /// Waits for the operator's go (or its window).
    AwaitSwitch,
    /// Gives writes back to the DR primary and records the call-off.
    CallOff,
    BlockWrites,
    AwaitCaughtUp,
    Promote,
    AwaitPromoted,
    AllowWrites,
    SwitchDns,
    AwaitDns,
    CapacityBack,
    RetireOldStandby,
    AwaitOldStandbyGone,
    CreateStandby,
    AwaitStandby,
    Done,
}

impl Failback {
    pub fn next_step(&self, now: DateTime<Utc>) -> FailbackStep {
        use FailbackStep::*;
        let gone = |r: &Option<Retired>| r.as_ref().and_then(|r| r.gone_at).is_some();
        let due = |f: &Failback| f.switch.as_ref().is_some_and(|s| s.not_before.is_none_or(|t| t <= now));
        match self {
            f if f.completed_at.is_some() || f.aborted.is_some() => Done,
            f if f.aurora => match f {
                f if f.replica_ready_at.is_none() => AwaitReplica,
                // a switchover asked goes on whatever the window
                f if f.promote_accepted_at.is_none() && !due(f) => AwaitSwitch,
                f if f.promote_accepted_at.is_none() => Promote,
                f if f.promoted_at.is_none() => AwaitPromoted,
                f if f.dns_requested_at.is_none() => SwitchDns,
                f if f.dns_in_sync_at.is_none() => AwaitDns,
                f if f.capacity_restored.is_none() => CapacityBack,
                _ => AwaitStandby,
            },
            f if f.old_primary.is_none() => RetireOldPrimary,
            f if !gone(&f.old_primary) => AwaitOldPrimaryGone,
            f if f.replica_requested_at.is_none() => CreateReplica,
            f if f.replica_ready_at.is_none() => AwaitReplica,
            f if f.calling_off.is_some() => CallOff,
            // a switch under way goes on (another invocation's clock may be a little behind)
            f if f.writes_blocked.is_none()
                && f.switch.as_ref().is_none_or(|s| s.not_before.is_some_and(|t| t > now)) =>
            {
                AwaitSwitch
            }
            f if f.writes_blocked.is_none() => BlockWrites,
            f if f.caught_up_at.is_none() => AwaitCaughtUp,
            f if f.promote_accepted_at.is_none() => Promote,
            f if f.promoted_at.is_none() => AwaitPromoted,
            f if f.writes_allowed.is_none() => AllowWrites,
            f if f.dns_requested_at.is_none() => SwitchDns,
            f if f.dns_in_sync_at.is_none() => AwaitDns,
            f if f.capacity_restored.is_none() => CapacityBack,
            f if f.old_standby.is_none() => RetireOldStandby,
            f if !gone(&f.old_standby) => AwaitOldStandbyGone,
            f if f.standby_requested_at.is_none() => CreateStandby,
            _ => AwaitStandby,
        }
    }

    pub fn is_active(&self) -> bool {
        self.completed_at.is_none() && self.aborted.is_none()
    }

    /// Switched back: DNS points at the original region again.
    pub fn switched(&self) -> bool {
        self.dns_in_sync_at.is_some()
    }

    pub fn leased_to_other(&self, me: &str, now: DateTime<Utc>) -> Option<&Lease> {
        self.lease.as_ref().filter(|l| l.held_by_other(me, now))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    BlockWrites,
    AwaitCaughtUp,
    Promote,
    AwaitPromoted,
    /// The recovery plan's capacity: scaled up, then waited on (or let go) before DNS.
    Capacity,
    SwitchDns,
    AwaitDns,
    Complete,
    Done,
}

impl Failover {
    pub fn next_step(&self) -> Step {
        match self {
            f if f.completed_at.is_some() || f.aborted.is_some() => Step::Done,
            f if f.block_writes_first && f.writes_blocked.is_none() => Step::BlockWrites,
            f if f.block_writes_first && f.caught_up_at.is_none() => Step::AwaitCaughtUp,
            f if f.promote_accepted_at.is_none() => Step::Promote,
            f if f.promoted_at.is_none() => Step::AwaitPromoted,
            f if !f.capacity.is_empty() && f.capacity_settled.is_none() => Step::Capacity,
            f if f.dns_requested_at.is_none() => Step::SwitchDns,
            f if f.dns_in_sync_at.is_none() => Step::AwaitDns,
            _ => Step::Complete,
        }
    }

    pub fn is_active(&self) -> bool {
        self.completed_at.is_none() && self.aborted.is_none()
    }

    /// Completed, unplanned, and the old primary not fenced yet: a split-brain risk.
    pub fn needs_fencing(&self) -> bool {
        self.completed_at.is_some() && !self.planned && self.fenced.is_none()
    }

    /// Held by someone else whose lease has not run out.
    pub fn leased_to_other(&self, me: &str, now: DateTime<Utc>) -> Option<&Lease> {
        self.lease.as_ref().filter(|l| l.held_by_other(me, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_failback_waits_for_its_go_and_its_window_and_resumes_where_the_record_says() {
        use FailbackStep::*;
        let t = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        let retired = |gone: bool| Retired {
            name: "orders-db".into(),
            resource_id: "db-ABC".into(),
            shape: Default::default(),
            final_snapshot: "orders-db-before-failback-1".into(),
            requested_at: Some(t),
            gone_at: gone.then_some(t),
        };
        let mut fb = Failback {
            id: "fb".into(),
            requested_at: t,
            ..Default::default()
        };
        assert_eq!(fb.next_step(t), RetireOldPrimary);
        fb.old_primary = Some(retired(false));
        assert_eq!(
            fb.next_step(t),
            AwaitOldPrimaryGone,
            "asked, not gone yet: ask again, never create"
        );
        fb.old_primary = Some(retired(true));
        assert_eq!(fb.next_step(t), CreateReplica);
        fb.replica_requested_at = Some(t);
        assert_eq!(fb.next_step(t), AwaitReplica);
        fb.replica_ready_at = Some(t);
        assert_eq!(fb.next_step(t), AwaitSwitch, "ready: nothing moves without the go");
        fb.switch = Some(SwitchOrder {
            by: "alice".into(),
            at: t,
            not_before: Some(t + chrono::Duration::hours(2)),
        });
        assert_eq!(
            fb.next_step(t + chrono::Duration::hours(1)),
            AwaitSwitch,
            "not before its window"
        );
        assert_eq!(fb.next_step(t + chrono::Duration::hours(2)), BlockWrites);
        fb.writes_blocked = Some(("read_only=1".into(), t));
        assert_eq!(
            fb.next_step(t),
            AwaitCaughtUp,
            "a started switch goes on whatever the window"
        );
        fb.caught_up_at = Some(t);
        fb.promote_accepted_at = Some(t);
        fb.promoted_at = Some(t);
        assert_eq!(fb.next_step(t), AllowWrites);
        fb.writes_allowed = Some(("{TrueIfReplica}".into(), t));
        assert_eq!(fb.next_step(t), SwitchDns);
        fb.dns_requested_at = Some(t);
        fb.dns_in_sync_at = Some(t);
        assert!(fb.switched());
        assert_eq!(fb.next_step(t), CapacityBack);
        fb.capacity_restored = Some((vec![], t));
        assert_eq!(fb.next_step(t), RetireOldStandby);
        fb.old_standby = Some(retired(true));
        fb.standby_requested_at = Some(t);
        assert_eq!(fb.next_step(t), AwaitStandby);
        fb.completed_at = Some(t);
        assert_eq!(fb.next_step(t), Done);
        assert!(!fb.is_active());
    }

    #[test]
    fn an_aurora_failback_waits_for_the_rejoin_and_its_go_then_switches_over_and_replaces_nothing() {
        use FailbackStep::*;
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let mut fb = Failback {
            id: "fb".into(),
            aurora: true,
            requested_at: t,
            ..Default::default()
        };
        assert_eq!(fb.next_step(t), AwaitReplica, "the old primary rejoins first");
        fb.replica_ready_at = Some(t);
        assert_eq!(fb.next_step(t), AwaitSwitch);
        fb.switch = Some(SwitchOrder {
            by: "alice".into(),
            at: t,
            not_before: Some(t + chrono::Duration::hours(2)),
        });
        assert_eq!(fb.next_step(t + chrono::Duration::hours(1)), AwaitSwitch);
        assert_eq!(
            fb.next_step(t + chrono::Duration::hours(2)),
            Promote,
            "no write block of drpilot's: Aurora's switchover synchronizes"
        );
        fb.promote_accepted_at = Some(t);
        assert_eq!(
            fb.next_step(t),
            AwaitPromoted,
            "an asked switchover goes on whatever the window"
        );
        fb.promoted_at = Some(t);
        assert_eq!(
            fb.next_step(t),
            SwitchDns,
            "nothing to allow: Aurora's writer takes writes"
        );
        fb.dns_requested_at = Some(t);
        fb.dns_in_sync_at = Some(t);
        assert_eq!(fb.next_step(t), CapacityBack);
        fb.capacity_restored = Some((vec![], t));
        assert_eq!(
            fb.next_step(t),
            AwaitStandby,
            "the DR cluster is the secondary again by itself: nothing retired, nothing created"
        );
        fb.completed_at = Some(t);
        assert_eq!(fb.next_step(t), Done);
    }

    #[test]
    fn the_next_step_follows_the_recorded_timestamps() {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let mut f = Failover {
            id: "fo".into(),
            database: "orders".into(),
            trigger: "alarm".into(),
            cause: "alarm".into(),
            planned: false,
            detected_at: t,
            decided_at: t,
            estimated_rpo_seconds: Some(1.0),
            gates: vec![],
            target: None,
            block_writes_first: false,
            writes_blocked: None,
            caught_up_at: None,
            promote_requested_at: None,
            promote_refusals: 0,
            promote_in_doubt: false,
            promote_waiting: None,
            promote_accepted_at: None,
            promoted_at: None,
            dns_change_id: None,
            dns_requested_at: None,
            dns_in_sync_at: None,
            completed_at: None,
            notices_sent: vec![],
            lease: None,
            acknowledged: None,
            aborted: None,
            fenced: None,
            fence_error: None,
            capacity: vec![],
            capacity_wait_seconds: 0,
            capacity_strict: false,
            capacity_settled: None,
            capacity_waived: None,
            automation: None,
        };
        assert_eq!(f.next_step(), Step::Promote);
        f.promote_requested_at = Some(t);
        assert_eq!(
            f.next_step(),
            Step::Promote,
            "requested but not accepted: ask again (AWS refuses a double)"
        );
        f.promote_accepted_at = Some(t);
        assert_eq!(f.next_step(), Step::AwaitPromoted);
        f.promoted_at = Some(t);
        assert_eq!(f.next_step(), Step::SwitchDns, "no recovery plan: DNS next");
        f.capacity = vec![CapacityStep::new(&crate::model::CapacityGroup {
            kind: crate::model::CapacityKind::AutoScalingGroup,
            name: "web".into(),
            size: GroupSize {
                min: 10,
                desired: 10,
                max: 20,
            },
        })];
        assert_eq!(f.next_step(), Step::Capacity, "a plan's capacity comes before DNS");
        f.capacity_settled = Some(("ready".into(), t));
        assert_eq!(f.next_step(), Step::SwitchDns);
        f.dns_requested_at = Some(t);
        assert_eq!(f.next_step(), Step::AwaitDns);
        f.dns_in_sync_at = Some(t);
        assert_eq!(f.next_step(), Step::Complete);
        f.completed_at = Some(t);
        assert_eq!(f.next_step(), Step::Done);
        assert!(!f.is_active());
        f.lease = Some(Lease {
            holder: "a".into(),
            until: t,
        });
        assert!(f.leased_to_other("b", t - chrono::Duration::seconds(1)).is_some());
        assert!(f.leased_to_other("a", t - chrono::Duration::seconds(1)).is_none());
    }
}
