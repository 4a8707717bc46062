//! The failover promoter: alarm → evidence → decision (pure, `plan::promotion`) → a
//! resumable, single-flight failover recorded in the DR state bucket → responders told at
//! every step.

pub mod drill;
pub mod event;
pub mod failback;
pub mod notices;
pub mod record;

use crate::accounts::Accounts;
use crate::config::PromoterConfig;
use crate::error::{Error, Result};
use crate::lagcheck::metric;
use crate::model::{CapacityKind, DatabaseSpec, DnsSwitch, Standby, FAILED_OVER_METRIC};
use crate::plan::promotion::{
    classify, decide, AlarmWindow, Decision, Disarm, Evidence, Policy, PreviousFailover, PrimaryView, ReplicaState,
    Request, StatusClass, Verdict, CONFIRMED, DISARM_TAG,
};
use crate::plan::recovery::{capacity_gate, describe, ready, scale_up, CapacityGate, Unready};
use crate::ports::{
    AlarmView, Capacity, Dns, HealthChecks, Instances, MetricId, MetricUnit, MetricValue, Metrics, Notifier,
    PrimaryProbe, Promotion, StandbyControl, StateStore,
};
use crate::state::{Lease, Loaded, Record};
use chrono::{Duration, Timelike, Utc};
pub use event::{AlarmSignal, Command, PromoterEvent};
use record::{Acknowledgement, AlarmRef, DbRecord, Episode, Failover, GateRecord, Step};
use serde_json::{json, Value};
use tracing::{info, warn};

pub struct PromoterPorts<A, P, H, M, S, D, St, N, C> {
    pub alarms: A,
    pub primary: P,
    pub health: H,
    /// drpilot's metrics in the DR region (the lag history).
    pub metrics: M,
    pub standby: S,
    pub dns: D,
    pub state: St,
    pub notifier: N,
    /// The DR region's Auto Scaling groups and ECS services a recovery plan scales (the
    /// database's account).
    pub capacity: C,
    /// The primary region's CloudWatch in the database's account (a failback's replica lag).
    pub origin_metrics: M,
}

type AwsPromoterPorts = PromoterPorts<
    crate::aws::cloudwatch::CloudWatchAlarms,
    crate::aws::rds::RdsPrimaryProbe,
    crate::aws::route53::Route53,
    crate::aws::cloudwatch::CloudWatchMetrics,
    crate::aws::rds::RdsStandby,
    crate::aws::route53::Route53,
    crate::aws::s3::S3State,
    crate::aws::sns::SnsNotifier,
    crate::aws::capacity::AppCapacity,
>;

impl AwsPromoterPorts {
    pub fn aws(sdk: &aws_config::SdkConfig, cfg: &PromoterConfig) -> Self {
        Self::aws_in(sdk, sdk, cfg)
    }

    /// One account's adapters: its databases (`account`: the function's own or a member's
    /// role) and the hub's alarms, metrics, Route 53, state and notices.
    pub fn aws_in(account: &aws_config::SdkConfig, sdk: &aws_config::SdkConfig, cfg: &PromoterConfig) -> Self {
        use crate::aws::{cloudwatch, rds, route53, s3, sns};
        PromoterPorts {
            alarms: cloudwatch::CloudWatchAlarms::new(sdk),
            primary: rds::RdsPrimaryProbe::new(account, &cfg.source_region)
                .spacing(std::time::Duration::from_millis(u64::from(cfg.probe_spacing_ms))),
            health: route53::Route53::new(sdk),
            metrics: cloudwatch::CloudWatchMetrics::new(sdk, &cfg.dr_region),
            standby: rds::RdsStandby::new(rds::client_in(account, &cfg.dr_region)),
            dns: route53::Route53::new(sdk),
            state: s3::S3State::new(
                s3::client_in(sdk, &cfg.dr_region, cfg.s3_force_path_style),
                &cfg.state.bucket,
            ),
            notifier: sns::SnsNotifier::new(sdk, &cfg.notify_topic_arn, "drpilot.failover-promoter"),
            capacity: crate::aws::capacity::AppCapacity::new(account, &cfg.dr_region),
            origin_metrics: cloudwatch::CloudWatchMetrics::new(account, &cfg.source_region),
        }
    }

    /// The function's own account's adapters and each member account's.
    pub fn accounts(sdk: &aws_config::SdkConfig, cfg: &PromoterConfig) -> Accounts<Self> {
        Accounts::build(sdk, &cfg.accounts, "drpilot-failover-promoter", |account, hub, _| {
            Self::aws_in(account, hub, cfg)
        })
    }
}

pub use crate::state::Invocation;

/// The failed gate an episode records when the database's account cannot be entered.
const ACCOUNT_REACHABLE: &str = "account reachable";

/// The alarm an episode belongs to, for the continuation to re-check.
fn alarm_ref(trigger: &Trigger) -> Option<AlarmRef> {
    match trigger {
        Trigger::Alarm(a, _) => Some(AlarmRef {
            name: a.name.clone(),
            region: a.region.clone(),
            since: a.since,
            reason: a.reason.clone(),
        }),
        Trigger::Operator { .. } => None,
    }
}

use crate::model::stamp;

/// `Failover.dns_change_id` of a switch by failover records: this, then the alarm's name.
pub(crate) const FAILOVER_RECORDS: &str = "failover-records:";

/// The `FailedOver` datapoint that sets off the PRIMARY record's health-check alarm.
fn failed_over(db: &DatabaseSpec) -> MetricValue {
    MetricValue {
        name: FAILED_OVER_METRIC.into(),
        dimensions: vec![("Database".into(), db.name.clone())],
        value: 1.0,
        unit: MetricUnit::Count,
        at: Utc::now(),
    }
}

/// Where a database's failover record lives (the promoter writes it; the dashboard reads it).
pub fn record_key(state: &crate::model::StateLocation, db: &str) -> String {
    state.key(&format!("failover-promoter/{db}.json"))
}

/// The promoter's adapters in each account it works in.
pub type PromoterAccounts<A, P, H, M, S, D, St, N, C> = Accounts<PromoterPorts<A, P, H, M, S, D, St, N, C>>;

pub struct Promoter<'a, A, P, H, M, S, D, St, N, C> {
    /// The function's own account's adapters (alarms, metrics, Route 53, state, notices, and
    /// its own databases), and each member account's (its databases).
    pub accounts: &'a PromoterAccounts<A, P, H, M, S, D, St, N, C>,
    pub cfg: &'a PromoterConfig,
    pub invocation: Invocation,
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
    pub async fn handle(&self, event: PromoterEvent) -> Result<Value> {
        match event {
            PromoterEvent::Alarm(signal) => self.on_alarm(signal).await,
            PromoterEvent::Continue => self.on_continue().await,
            PromoterEvent::Command(Command::Status {}) => self.status().await,
            PromoterEvent::Command(Command::Acknowledge { database, by }) => self.acknowledge(&database, &by).await,
            PromoterEvent::Command(Command::Proceed { database, by }) => self.proceed(&database, &by).await,
            PromoterEvent::Command(Command::Failback {
                database,
                by,
                confirm,
                switch,
                at,
                cancel,
            }) => {
                self.failback_command(&database, &by, &confirm, switch, at, cancel)
                    .await
            }
            PromoterEvent::Command(Command::Drill {
                database,
                plan,
                confirm,
                failback,
            }) => {
                let report = self.drill(&database, &plan, &confirm, failback).await?;
                serde_json::to_value(&report).map_err(|e| Error::RunFailed(format!("cannot encode the report: {e}")))
            }
            PromoterEvent::Command(Command::Failover {
                database,
                reason,
                force_data_loss,
                planned,
            }) => {
                let db = self.database(&database)?;
                self.decide_and_act(
                    db,
                    Trigger::Operator {
                        reason,
                        force_data_loss,
                        planned,
                    },
                    false,
                )
                .await
            }
        }
    }

    /// Where alarms, drpilot's metrics, Route 53, failover records and notices live.
    fn hub(&self) -> &PromoterPorts<A, P, H, M, S, D, St, N, C> {
        &self.accounts.own
    }

    /// The adapters of the account `db` is in (its primary and standby).
    fn at(&self, db: &DatabaseSpec) -> &PromoterPorts<A, P, H, M, S, D, St, N, C> {
        self.accounts.get(db.account.as_deref()).0
    }

    fn database(&self, name: &str) -> Result<&DatabaseSpec> {
        self.cfg.database(name).ok_or_else(|| {
            let known: Vec<&str> = self.cfg.databases.iter().map(|d| d.name.as_str()).collect();
            Error::BadEvent(format!("unknown database {name:?}; protected: {}", known.join(", ")))
        })
    }

    fn record(&self, db: &str) -> Record<'_, St> {
        Record::new(&self.hub().state, record_key(&self.cfg.state, db))
    }

    async fn load(&self, db: &str) -> Result<(DbRecord, Option<String>)> {
        match self.record(db).read().await? {
            Loaded::Absent => Ok((DbRecord::default(), None)),
            Loaded::Found { value, etag } => Ok((value, Some(etag))),
            Loaded::Unreadable { error, .. } => Err(Error::Refused(format!(
                "the failover record of {db} is unreadable ({error}); refusing to act until a human fixes or removes s3://{}/{}",
                self.cfg.state.bucket,
                record_key(&self.cfg.state, db)
            ))),
        }
    }

    /// Compare-and-swap: `Ok(None)` when someone else wrote first.
    async fn save(&self, db: &str, record: &DbRecord, etag: Option<&str>) -> Result<Option<String>> {
        self.record(db).write_own(record, etag).await
    }

    async fn on_alarm(&self, signal: AlarmSignal) -> Result<Value> {
        let Some(db) = self.cfg.database_for_alarm(&signal.name) else {
            info!(alarm = %signal.name, "not one of the configured alarms: ignored");
            return Ok(json!({"ignored": format!("alarm {} is not configured for any database", signal.name)}));
        };
        if signal.state != "ALARM" {
            info!(alarm = %signal.name, state = %signal.state, "not an ALARM transition: ignored");
            return Ok(json!({"ignored": format!("alarm {} is {}, not ALARM", signal.name, signal.state)}));
        }
        // In a region outage every database's alarm fires within the same minute or two, and
        // Lambda runs only a few invocations at once: this one decides every database whose
        // alarm is in ALARM now, all together, and watches their failovers together. The
        // other databases' own events then find their episode decided, or its failover
        // leased to this invocation, and return at once.
        let region = signal.region.clone();
        let own = async {
            match self.alarm_trigger(signal).await {
                Ok(trigger) => self.decide_and_act(db, trigger, false).await,
                Err(ignored) => Ok(json!({"database": db.name, "ignored": ignored})),
            }
        };
        let others = self.also_in_alarm(db, &region).await;
        let others = others
            .into_iter()
            .map(|(other, trigger)| async move { (other, self.decide_and_act(other, trigger, false).await) });
        let (own, others) = futures::join!(own, futures::future::join_all(others));
        let (also, errors) = outcomes(others);
        let mut own = own?;
        if !also.is_empty() {
            own["also_decided"] = also.into();
        }
        if errors.is_empty() {
            Ok(own)
        } else {
            Err(Error::RunFailed(format!(
                "{} was handled; deciding the others in ALARM failed for {}",
                db.name,
                errors.join("; ")
            )))
        }
    }

    /// The other databases whose alarm (in `region`) is in ALARM now, as CloudWatch reports it.
    async fn also_in_alarm<'c>(&'c self, db: &DatabaseSpec, region: &str) -> Vec<(&'c DatabaseSpec, Trigger)> {
        let others: Vec<&DatabaseSpec> = self.cfg.databases.iter().filter(|d| d.name != db.name).collect();
        let names: Vec<String> = others.iter().flat_map(|d| d.alarms.iter().cloned()).collect();
        if names.is_empty() {
            return vec![];
        }
        let states = match self.hub().alarms.alarms(region, &names).await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot read the other databases' alarms; their own events decide them");
                return vec![];
            }
        };
        let firing = |d: &DatabaseSpec| {
            let (name, a) = d.alarms.iter().find_map(|name| {
                let a = states.get(name).filter(|a| a.value == "ALARM")?;
                Some((name, a))
            })?;
            let signal = AlarmSignal {
                name: name.clone(),
                region: region.to_string(),
                state: "ALARM".into(),
                since: a.since?,
                reason: a.reason.clone(),
            };
            let reading = AlarmReading {
                firing: Some(true),
                window: a.window,
            };
            Some(Trigger::Alarm(signal, reading))
        };
        others.into_iter().filter_map(|d| Some((d, firing(d)?))).collect()
    }

    /// The alarm as CloudWatch sees it now decides which episode an event belongs to: an
    /// event is a message about the past (EventBridge retries for up to a day, a queue may be
    /// redriven), the alarm's state time is the truth. `Err`: nothing to decide (the alarm
    /// is no longer in ALARM: the episode ended, or the event is stale).
    async fn alarm_trigger(&self, mut signal: AlarmSignal) -> std::result::Result<Trigger, String> {
        let (firing, window) = match self.hub().alarms.alarm(&signal.region, &signal.name).await {
            Ok(Some(a)) if a.value == "ALARM" => {
                if let Some(since) = a.since.filter(|s| *s != signal.since) {
                    info!(alarm = %signal.name, event = %stamp(signal.since), cloudwatch = %stamp(since),
                        "the event's state time is not CloudWatch's: deciding CloudWatch's episode");
                    signal.since = since;
                }
                (Some(true), a.window)
            }
            Ok(Some(a)) => {
                let since = a.since.map(stamp).unwrap_or_else(|| "?".into());
                info!(alarm = %signal.name, state = %a.value, %since, "the alarm is no longer in ALARM: nothing to decide");
                return Err(format!(
                    "alarm {} has been {} since {since}; this event of its ALARM at {} is stale or its episode ended",
                    signal.name,
                    a.value,
                    stamp(signal.since)
                ));
            }
            Ok(None) => (Some(false), None),
            Err(e) => {
                warn!(error = %e, "cannot re-read the alarm");
                (None, None)
            }
        };
        Ok(Trigger::Alarm(signal, AlarmReading { firing, window }))
    }

    async fn gather(&self, db: &DatabaseSpec, trigger: &Trigger, record: &DbRecord) -> Evidence {
        let (alarm_still_firing, alarm_since, alarm_window) = match trigger {
            Trigger::Alarm(signal, reading) => (reading.firing, signal.since, reading.window),
            Trigger::Operator { .. } => (None, Utc::now(), None),
        };
        let primary = self.at(db).primary.primary(&db.standby).await;
        // A primary that looks available while the alarm fires: RDS's own word on maintenance
        // (events from long enough before the failure to pair a begin with its end). A broken
        // primary is a failure whatever maintenance led to it; a planned status vetoes anyway.
        let maintenance = match (trigger, &primary) {
            (Trigger::Alarm(..), PrimaryView::Available) => {
                let explains = alarm_window.map_or(Duration::minutes(5), |w| w.explains());
                let since = alarm_since - explains - crate::plan::promotion::MAINTENANCE_LOOKBACK;
                let report = self.at(db).primary.maintenance(&db.standby, since).await;
                if !report.unread.is_empty() {
                    warn!(unread = ?report.unread, "cannot read all of the primary's maintenance");
                }
                report
            }
            _ => Default::default(),
        };
        let checkers = match &db.health_check_id {
            Some(id) => match self.hub().health.checkers(id).await {
                Ok(c) => Some(c),
                Err(e) => {
                    warn!(error = %e, "cannot read the health checkers");
                    None
                }
            },
            None => None,
        };
        // The lag history ends where replication stopped reporting: look back from the failure.
        let lookback = Duration::seconds(i64::from(self.cfg.lag_lookback_seconds));
        let id = MetricId::new(
            &self.cfg.namespace,
            metric::RECOVERY_POINT,
            &[(metric::DIMENSION, &db.lag_resource)],
        );
        let period = self.cfg.metric_period_seconds;
        // Period-aligned, as CloudWatch recommends: each datapoint is stamped with the start
        // of the period it was measured in.
        let from = alarm_since - lookback;
        let from = from - Duration::seconds(from.timestamp().rem_euclid(i64::from(period)));
        let from = from.with_nanosecond(0).unwrap_or(from);
        let last_healthy_lag = match self
            .hub()
            .metrics
            .newest(&id, period, from, alarm_since + Duration::seconds(i64::from(period)))
            .await
        {
            Ok(p) => p.map(|p| (p.at, p.value)),
            Err(e) => {
                warn!(error = %e, "cannot read the lag history");
                None
            }
        };
        let standby = self.at(db).standby.state(&db.standby).await;
        let disarm = standby
            .as_ref()
            .ok()
            .and_then(|s| s.tags.get(DISARM_TAG))
            .map(|v| event::parse_time(v.trim()).map_or_else(|| Disarm::Unreadable(v.clone()), Disarm::Until));
        let name = standby_name(&db.standby);
        let replica = match standby {
            Ok(s) if !s.exists => ReplicaState::NotReady(format!("the standby {name} does not exist")),
            Ok(s) if s.promoted => ReplicaState::NotReady(format!(
                "the standby {name} is no longer replicating (already promoted?)"
            )),
            Ok(s) => match classify(&s.status) {
                StatusClass::Available => ReplicaState::Ready {
                    endpoint: s.endpoint.unwrap_or_default(),
                },
                StatusClass::Planned if BUSY_STANDBY.contains(&s.status.as_str()) => ReplicaState::Busy {
                    endpoint: s.endpoint.unwrap_or_default(),
                    status: s.status,
                },
                _ => ReplicaState::NotReady(format!("the standby {name} is {}", s.status)),
            },
            Err(e) => ReplicaState::NotReady(format!("cannot read the standby {name}: {e}")),
        };
        // An aborted failover never promoted anything: the one before it is what counts.
        let last = record
            .current
            .as_ref()
            .filter(|f| f.aborted.is_none())
            .or(record.previous.as_ref());
        let previous = last.map(|f| PreviousFailover {
            id: f.id.clone(),
            completed_at: f.completed_at,
            acknowledged: f.acknowledged.is_some(),
        });
        Evidence {
            alarm_still_firing,
            alarm_since,
            alarm_window,
            primary,
            checkers,
            last_healthy_lag,
            replica,
            disarm,
            primary_serving_at: None,
            previous,
            maintenance,
        }
    }

    /// Decides once per episode. `recheck`: the continuation re-deciding a refused episode
    /// whose alarm is still firing; it stays silent unless the outcome changed.
    async fn decide_and_act(&self, db: &DatabaseSpec, trigger: Trigger, recheck: bool) -> Result<Value> {
        let (mut record, etag) = self.load(&db.name).await?;
        if let Some(f) = record.current.as_ref().filter(|f| f.is_active()) {
            info!(db = %db.name, failover = %f.id, "a failover is in progress: resuming it rather than starting another");
            if let Trigger::Operator { .. } = trigger {
                return Err(Error::Refused(format!(
                    "failover {} of {} is already in progress",
                    f.id, db.name
                )));
            }
            return self.resume(db).await;
        }
        // A failback moves this database's roles itself: no failover decides meanwhile (its
        // alarms watch an old primary that is being replaced).
        if let Some(fb) = record.failback.as_ref().filter(|fb| fb.is_active()) {
            info!(db = %db.name, failback = %fb.id, "a failback is in progress: no failover meanwhile");
            return match trigger {
                Trigger::Operator { .. } => Err(Error::Refused(format!(
                    "failback {} of {} is in progress; nothing was changed",
                    fb.id, db.name
                ))),
                Trigger::Alarm(..) => {
                    Ok(json!({"database": db.name, "ignored": format!("failback {} in progress", fb.id)}))
                }
            };
        }
        let episode = trigger.episode_key(&self.invocation);
        if !recheck && record.last_episode.as_ref().is_some_and(|e| e.key == episode) {
            info!(db = %db.name, %episode, "duplicate delivery of an episode already decided");
            return Ok(json!({"database": db.name, "duplicate": episode}));
        }

        // A member account drpilot cannot get into: nothing about its databases can be seen
        // or done. The episode is recorded as refused for it (the continuation decides it again
        // while the alarm fires, so a fixed role lets the failover go on), and responders hear
        // it once per episode, not once per delivery or per minute.
        if let Err(e) = self.accounts.get(db.account.as_deref()).1.check().await {
            let told = record
                .last_episode
                .as_ref()
                .is_some_and(|l| l.key == episode && l.failed_gates == [ACCOUNT_REACHABLE]);
            if !told {
                record.last_episode = Some(Episode {
                    key: episode.clone(),
                    verdict: format!("{:?}", Verdict::Refuse),
                    decided_at: Utc::now(),
                    failed_gates: vec![ACCOUNT_REACHABLE.to_string()],
                    primary_serving_at: record.last_episode.as_ref().and_then(|l| l.primary_serving_at),
                    alarm: alarm_ref(&trigger),
                });
                if self.save(&db.name, &record, etag.as_deref()).await?.is_some() {
                    let notice = notices::unreachable(self.cfg, db, &e.to_string());
                    if let Err(n) = self.hub().notifier.notify(&notice).await {
                        warn!(error = %n, "could not notify responders");
                    }
                }
            }
            return Err(e);
        }
        let mut evidence = self.gather(db, &trigger, &record).await;
        // The primary seen serving while this episode was refused: it took writes that
        // replication (stopped since the last healthy lag) never carried.
        let now = Utc::now();
        let seen_before = record
            .last_episode
            .as_ref()
            .filter(|e| e.key == episode)
            .and_then(|e| e.primary_serving_at);
        // Seen taking writes, or not seen at all (throttled, denied): either way it may have.
        let seen_now = match &evidence.primary {
            PrimaryView::Available | PrimaryView::Unknown(_) => Some(now),
            PrimaryView::Planned(s) if crate::plan::promotion::TAKES_WRITES.contains(&s.as_str()) => Some(now),
            _ => None,
        };
        evidence.primary_serving_at = seen_now.or(seen_before);
        let policy = Policy {
            mode: self.cfg.mode,
            max_data_loss_seconds: db.max_data_loss_seconds,
            checker_quorum_percent: self.cfg.checker_quorum_percent,
            cooldown: Duration::seconds(i64::from(self.cfg.cooldown_seconds)),
            lag_lookback: Duration::seconds(i64::from(self.cfg.lag_lookback_seconds)),
            metric_period: Duration::seconds(i64::from(self.cfg.metric_period_seconds)),
        };
        let decision = decide(&evidence, &policy, &trigger.request(), now);
        info!(db = %db.name, verdict = ?decision.verdict, "decided");

        let failed_gates: Vec<String> = decision.failed_gates().iter().map(|g| g.name.to_string()).collect();
        // Deciding a refused episode again: responders hear of it only when the failure is
        // now confirmed and something else still blocks (a human must decide). The same
        // refusal, or one because the failure is (still or again) unconfirmed, such as a
        // primary back from its reboot, is remembered quietly.
        let unconfirmed = decision.failed_gates().iter().any(|g| g.name == CONFIRMED);
        if recheck && decision.verdict == Verdict::Refuse {
            if let Some(e) = record
                .last_episode
                .as_mut()
                .filter(|e| e.failed_gates == failed_gates || unconfirmed)
            {
                if e.primary_serving_at != evidence.primary_serving_at || e.failed_gates != failed_gates {
                    e.primary_serving_at = evidence.primary_serving_at;
                    e.failed_gates = failed_gates;
                    self.save(&db.name, &record, etag.as_deref()).await?;
                }
                return Ok(json!({"database": db.name, "verdict": "refused", "unchanged": true}));
            }
        }
        record.last_episode = Some(Episode {
            key: episode.clone(),
            verdict: format!("{:?}", decision.verdict),
            decided_at: now,
            failed_gates,
            primary_serving_at: evidence.primary_serving_at,
            alarm: alarm_ref(&trigger),
        });
        let target = match &evidence.replica {
            ReplicaState::Ready { endpoint } | ReplicaState::Busy { endpoint, .. } => Some(endpoint.clone()),
            ReplicaState::NotReady(_) => None,
        };
        if decision.verdict == Verdict::Promote {
            let failover = Failover {
                id: format!("fo-{}-{}", db.name, now.format("%Y%m%dT%H%M%SZ")),
                database: db.name.clone(),
                trigger: trigger.describe(),
                cause: trigger.label(),
                planned: trigger.planned(),
                detected_at: evidence.alarm_since,
                decided_at: now,
                estimated_rpo_seconds: decision.estimated_rpo_seconds,
                gates: gate_records(&decision),
                target: target.clone(),
                block_writes_first: trigger.planned() && matches!(db.standby, Standby::RdsReplica { .. }),
                lease: Some(Lease::to(&self.invocation)),
                capacity: db
                    .recovery
                    .iter()
                    .flat_map(|p| &p.capacity)
                    .map(record::CapacityStep::new)
                    .collect(),
                capacity_wait_seconds: db.recovery.as_ref().map_or(0, |p| p.wait_seconds),
                capacity_strict: db.recovery.as_ref().is_some_and(|p| p.strict),
                ..Default::default()
            };
            record.previous = record.current.take();
            record.current = Some(failover);
        }
        let Some(etag) = self.save(&db.name, &record, etag.as_deref()).await? else {
            info!(db = %db.name, "another invocation decided first; leaving it to that one");
            return Ok(json!({"database": db.name, "duplicate": episode}));
        };

        let (verdict, notice) = match decision.verdict {
            Verdict::Promote => return self.advance(db, record, etag).await,
            Verdict::Refuse => (
                "refused",
                notices::refused(self.cfg, db, &trigger.describe(), &decision),
            ),
            Verdict::WouldPromote => (
                "would-promote",
                notices::advisory(
                    self.cfg,
                    db,
                    &trigger.describe(),
                    &decision,
                    target.as_deref().unwrap_or("?"),
                ),
            ),
        };
        self.hub().notifier.notify(&notice).await?;
        Ok(json!({"database": db.name, "verdict": verdict, "gates": decision.gates}))
    }

    /// Takes the lease of an active failover (unless someone else holds it) and advances it.
    async fn resume(&self, db: &DatabaseSpec) -> Result<Value> {
        let (mut record, etag) = self.load(&db.name).await?;
        let now = Utc::now();
        let Some(f) = record.current.as_mut().filter(|f| f.is_active()) else {
            return Ok(json!({"database": db.name, "in_progress": false}));
        };
        if let Some(lease) = f.leased_to_other(&self.invocation.request_id, now) {
            info!(db = %db.name, holder = %lease.holder, "another invocation is advancing this failover");
            return Ok(
                json!({"database": db.name, "failover": f.id, "in_progress": true, "advanced_by": lease.holder}),
            );
        }
        f.lease = Some(Lease::to(&self.invocation));
        match self.save(&db.name, &record, etag.as_deref()).await? {
            Some(etag) => self.advance(db, record, etag).await,
            None => Ok(json!({"database": db.name, "in_progress": true, "advanced_by": "another invocation"})),
        }
    }

    /// Runs the remaining steps; if one fails, gives the lease back so that the next
    /// continuation tick resumes at once (a killed invocation's lease expires at its deadline).
    async fn advance(&self, db: &DatabaseSpec, record: DbRecord, etag: String) -> Result<Value> {
        let result = self.advance_steps(db, record, etag).await;
        if let Err(e) = &result {
            warn!(db = %db.name, error = %e, "failover step failed: releasing the lease for the next attempt");
            if let Ok((mut record, etag)) = self.load(&db.name).await {
                if let Some(f) = record
                    .current
                    .as_mut()
                    .filter(|f| f.lease.as_ref().is_some_and(|l| l.holder == self.invocation.request_id))
                {
                    f.lease = None;
                    let _ = self.save(&db.name, &record, etag.as_deref()).await;
                }
            }
        }
        result
    }

    /// Runs the failover's remaining steps until done or until the deadline is near.
    async fn advance_steps(&self, db: &DatabaseSpec, mut record: DbRecord, mut etag: String) -> Result<Value> {
        let margin = Duration::seconds(i64::from(self.cfg.deadline_margin_seconds));
        let poll = std::time::Duration::from_secs(u64::from(self.cfg.poll_seconds));
        let stuck_after = Duration::seconds(i64::from(self.cfg.stuck_after_seconds));
        let poll_span = Duration::seconds(i64::from(self.cfg.poll_seconds));
        // The alarm an alarm-driven failover is for (the episode it was decided in).
        let alarm = record.last_episode.as_ref().and_then(|e| e.alarm.clone());
        // Notices are best effort here: traffic recovery never waits on SNS. What could not be
        // sent fails the invocation once the failover has advanced (so the Errors alarm fires).
        let mut undelivered: Vec<String> = Vec::new();
        loop {
            let f = record
                .current
                .as_mut()
                .ok_or_else(|| Error::RunFailed("no failover to advance".into()))?;
            let step = f.next_step();
            if step == Step::Done {
                let id = f.id.clone();
                return undelivered_error(&id, undelivered)
                    .map(|_| json!({"database": db.name, "failover": id, "completed": true}));
            }
            if self.invocation.deadline - Utc::now() < margin {
                f.lease = None; // let the continuation schedule pick it up at once
                let id = f.id.clone();
                self.commit_progress(db, &mut record, &etag).await?;
                info!(db = %db.name, failover = %id, ?step, "deadline near: progress saved, the continuation schedule resumes");
                return Ok(
                    json!({"database": db.name, "failover": id, "in_progress": true, "next_step": format!("{step:?}")}),
                );
            }
            if !f.notices_sent.iter().any(|n| n == "started") {
                self.tell(&mut undelivered, &notices::started(self.cfg, db, f)).await;
                f.notices_sent.push("started".into());
                etag = self.commit(db, &record, &etag).await?;
                continue;
            }
            match step {
                Step::BlockWrites => {
                    // A planned RDS failover loses nothing: no writes on the primary from here.
                    match self.at(db).primary.block_writes(&db.standby).await {
                        Ok(how) => {
                            info!(db = %db.name, %how, "writes blocked on the primary");
                            f.writes_blocked = Some((how, Utc::now()));
                        }
                        Err(e) => {
                            // Nothing changed yet: call the planned failover off and say why
                            // (an unanswering primary region wants an unplanned failover).
                            let why = format!("writes could not be blocked on the primary ({e}); nothing was changed");
                            return self.call_off_now(db, record, &etag, why, undelivered).await;
                        }
                    }
                }
                Step::AwaitCaughtUp => {
                    let blocked_at = f.writes_blocked.as_ref().map_or(f.decided_at, |(_, t)| *t);
                    let Standby::RdsReplica { replica, .. } = &db.standby else {
                        return Err(Error::RunFailed("only an RDS replica waits to catch up".into()));
                    };
                    // RDS's own ReplicaLag: the Maximum over a whole period that began after the
                    // block and has ended (a partial bucket may hold one lucky sample).
                    let id = MetricId::new("AWS/RDS", "ReplicaLag", &[("DBInstanceIdentifier", replica)]);
                    let period = self.cfg.metric_period_seconds;
                    let now = Utc::now();
                    let lag = match settled_period(blocked_at, now, period) {
                        Some((from, to)) => self.hub().metrics.newest(&id, period, from, to).await?,
                        None => None,
                    };
                    match lag {
                        Some(p) if p.value == 0.0 => {
                            info!(db = %db.name, "the replica caught up with the blocked primary");
                            f.caught_up_at = Some(now);
                            f.estimated_rpo_seconds = Some(0.0);
                        }
                        seen if now - blocked_at > stuck_after => {
                            let seen = match seen {
                                Some(p) => format!("ReplicaLag {} in the period from {}", p.value, stamp(p.at)),
                                None => "no ReplicaLag for a whole period since writes were blocked".into(),
                            };
                            let why = format!(
                                "the replica did not catch up within {} of blocking writes ({seen})",
                                crate::plan::lag::human_seconds(stuck_after.num_seconds() as f64)
                            );
                            return self.call_off_now(db, record, &etag, why, undelivered).await;
                        }
                        _ => {
                            self.nap(poll).await;
                            continue;
                        }
                    }
                }
                Step::Promote => {
                    // Before each request the record says its answer is in doubt; a definite
                    // answer clears it. A request whose answer was never learnt (a killed run, a
                    // lost response) may have been accepted: while in doubt, AWS's "not now"
                    // may be that promotion under way, and the failover is never called off.
                    let doubt = f.promote_in_doubt;
                    let state = self.at(db).standby.state(&db.standby).await?;
                    if state.promoted {
                        // an earlier request took
                        f.promote_accepted_at = Some(Utc::now());
                        f.promote_in_doubt = false;
                        f.promote_waiting = None;
                        etag = self.commit(db, &record, &etag).await?;
                        continue;
                    }
                    if !doubt && f.promote_refusals > 0 {
                        let alarm = alarm.as_ref().filter(|_| f.cause.starts_with("alarm "));
                        if let Some(why) = self.call_off(&state, alarm).await {
                            return self.call_off_now(db, record, &etag, why, undelivered).await;
                        }
                    }
                    f.promote_requested_at.get_or_insert_with(Utc::now);
                    f.promote_in_doubt = true;
                    etag = self.commit(db, &record, &etag).await?;
                    let f = current(&mut record)?;
                    let answer = self.at(db).standby.promote(&db.standby, f.planned).await?;
                    // A promotion passes through these on its way (RDS: modifying, rebooting,
                    // backing-up; Aurora: the global cluster switching).
                    let under_way = ["modifying", "rebooting", "backing-up"].contains(&state.status.as_str())
                        || state.status.contains("switching");
                    match answer {
                        Promotion::NotNow { .. } if doubt && under_way => {
                            info!(db = %db.name, status = %state.status, "an earlier request's promotion is under way");
                            f.promote_accepted_at = Some(Utc::now());
                            f.promote_in_doubt = false;
                        }
                        Promotion::Accepted => {
                            f.promote_accepted_at = Some(Utc::now());
                            f.promote_in_doubt = false;
                            f.promote_waiting = None;
                            info!(db = %db.name, failover = %f.id, "promotion accepted by AWS");
                        }
                        Promotion::NotNow { code, message } => {
                            // Busy (a backup, a modification): AWS accepts once that ends.
                            f.promote_in_doubt = false;
                            f.promote_refusals += 1;
                            f.promote_waiting = Some(format!("{code}: {message} (status {})", state.status));
                            if !f.notices_sent.iter().any(|n| n == "waiting") {
                                self.tell(&mut undelivered, &notices::promotion_waits(self.cfg, db, f, &state))
                                    .await;
                                f.notices_sent.push("waiting".into());
                            }
                            let waited = Utc::now() - f.promote_requested_at.unwrap_or(f.decided_at);
                            if waited > stuck_after && !f.notices_sent.iter().any(|n| n == "stuck") {
                                let seen = f.promote_waiting.clone().unwrap_or_default();
                                self.tell(
                                    &mut undelivered,
                                    &notices::stuck(self.cfg, db, f, "AWS to accept the promotion", &seen),
                                )
                                .await;
                                f.notices_sent.push("stuck".into());
                            }
                            let wait = backoff(poll, f.promote_refusals);
                            etag = self.commit(db, &record, &etag).await?;
                            self.nap(wait).await;
                            continue;
                        }
                    }
                }
                Step::AwaitPromoted => {
                    let state = self.at(db).standby.state(&db.standby).await?;
                    let waited = Utc::now() - f.promote_accepted_at.unwrap_or(f.decided_at);
                    if state.exists && !state.promoted && state.status == "available" && waited > poll_span * 3 {
                        // Accepted, yet still an available replica well after: the promotion
                        // did not take. Ask again rather than wait forever.
                        warn!(db = %db.name, failover = %f.id, "the standby is still a replica: asking AWS again");
                        f.promote_accepted_at = None;
                        etag = self.commit(db, &record, &etag).await?;
                        continue;
                    }
                    if !(state.exists && state.promoted && state.status == "available") {
                        if waited > stuck_after && !f.notices_sent.iter().any(|n| n == "stuck") {
                            let seen = format!("{} (promoted: {})", state.status, state.promoted);
                            self.tell(
                                &mut undelivered,
                                &notices::stuck(self.cfg, db, f, "the promotion", &seen),
                            )
                            .await;
                            f.notices_sent.push("stuck".into());
                            etag = self.commit(db, &record, &etag).await?;
                        }
                        self.nap(poll).await;
                        continue;
                    }
                    f.promoted_at = Some(Utc::now());
                    if let Some(endpoint) = state.endpoint {
                        f.target = Some(endpoint);
                    }
                    etag = self.commit(db, &record, &etag).await?;
                    let f = current(&mut record)?;
                    self.tell(&mut undelivered, &notices::promoted(self.cfg, db, f)).await;
                    f.notices_sent.push("promoted".into());
                }
                Step::Capacity => {
                    // An operator's "proceed" lands in the stored record while this one waits.
                    if let Some(tag) = self.adopt_waiver(db, &mut record).await? {
                        etag = tag;
                    }
                    let capacity = &self.at(db).capacity;
                    let f = current(&mut record)?;
                    // Each group's size before anything is asked of it, on the record first: a
                    // run killed after its request must not take the new size for the old.
                    let mut noted = false;
                    for step in f
                        .capacity
                        .iter_mut()
                        .filter(|s| s.before.is_none() && s.requested_at.is_none())
                    {
                        if let Ok(Some(state)) = capacity.group(&step.kind, &step.group).await {
                            step.before = Some(state.size);
                            noted = true;
                        }
                    }
                    if noted {
                        etag = self.commit_progress(db, &mut record, &etag).await?;
                        continue;
                    }
                    let before = f.capacity.clone();
                    let mut unready = Vec::new();
                    for step in f.capacity.iter_mut().filter(|s| s.healthy_at.is_none()) {
                        if let Some(u) = scale_and_check(capacity, step).await {
                            unready.push(u);
                        }
                    }
                    let promoted = f.promoted_at.unwrap_or(f.decided_at);
                    let waited = (Utc::now() - promoted).num_milliseconds() as f64 / 1000.0;
                    let gate = capacity_gate(
                        waited,
                        f64::from(f.capacity_wait_seconds),
                        f.capacity_strict,
                        &unready,
                        f.capacity_waived.as_ref().map(|w| w.by.as_str()),
                    );
                    match gate {
                        CapacityGate::Ready | CapacityGate::SwitchWithout(_) => {
                            let why = match &gate {
                                CapacityGate::SwitchWithout(why) => why.clone(),
                                _ => "ready".to_string(),
                            };
                            info!(db = %db.name, failover = %f.id, %why, "capacity settled: DNS next");
                            f.capacity_settled = Some((why, Utc::now()));
                            etag = self.commit_progress(db, &mut record, &etag).await?;
                            let f = current(&mut record)?;
                            self.tell(&mut undelivered, &notices::capacity(self.cfg, db, f)).await;
                            f.notices_sent.push("capacity".into());
                        }
                        CapacityGate::Hold(why) => {
                            let mut changed = f.capacity != before;
                            if !f.notices_sent.iter().any(|n| n == "capacity-held") {
                                warn!(db = %db.name, failover = %f.id, %why, "strict plan: DNS waits for capacity");
                                self.tell(&mut undelivered, &notices::capacity_held(self.cfg, db, f, &why))
                                    .await;
                                f.notices_sent.push("capacity-held".into());
                                changed = true;
                            }
                            if changed {
                                etag = self.commit_progress(db, &mut record, &etag).await?;
                            }
                            self.nap(poll).await;
                            continue;
                        }
                        CapacityGate::Wait => {
                            if f.capacity != before {
                                etag = self.commit_progress(db, &mut record, &etag).await?;
                            }
                            self.nap(poll).await;
                            continue;
                        }
                    }
                }
                Step::SwitchDns => {
                    let target = f
                        .target
                        .clone()
                        .ok_or_else(|| Error::RunFailed("no endpoint to point DNS at".into()))?;
                    let change = match &db.dns.switch {
                        DnsSwitch::Upsert => self.hub().dns.point(&db.dns, &target).await?,
                        DnsSwitch::FailoverRecords { alarm } => {
                            // Route 53's data plane does the switch: the PRIMARY record's
                            // health check follows this alarm. Publishing twice is harmless.
                            self.hub()
                                .metrics
                                .publish(&self.cfg.namespace, &[failed_over(db)])
                                .await?;
                            format!("{FAILOVER_RECORDS}{alarm}")
                        }
                    };
                    f.dns_change_id = Some(change);
                    f.dns_requested_at = Some(Utc::now());
                }
                Step::AwaitDns => {
                    let change = f.dns_change_id.clone().unwrap_or_default();
                    let (switched, seen) = match change.strip_prefix(FAILOVER_RECORDS) {
                        None => (
                            self.hub().dns.in_sync(&change).await?,
                            format!("Route 53 change {change} still PENDING"),
                        ),
                        Some(alarm) => {
                            let value = self.failed_over_state(alarm).await?;
                            (
                                value == "ALARM",
                                format!("alarm {alarm} (the PRIMARY record's health check) is {value}, not ALARM"),
                            )
                        }
                    };
                    if !switched {
                        let waited = Utc::now() - f.dns_requested_at.unwrap_or(f.decided_at);
                        if waited > stuck_after && !f.notices_sent.iter().any(|n| n == "stuck") {
                            self.tell(
                                &mut undelivered,
                                &notices::stuck(self.cfg, db, f, "the DNS change", &seen),
                            )
                            .await;
                            f.notices_sent.push("stuck".into());
                            etag = self.commit(db, &record, &etag).await?;
                        }
                        self.nap(poll).await;
                        continue;
                    }
                    f.dns_in_sync_at = Some(Utc::now());
                    etag = self.commit(db, &record, &etag).await?;
                    let f = current(&mut record)?;
                    self.tell(&mut undelivered, &notices::dns_switched(db, f)).await;
                    f.notices_sent.push("dns".into());
                }
                Step::Complete => {
                    // The plan's event for the user's automation, before the failover is
                    // complete: a run killed in between publishes it again (at least once; the
                    // failover id tells a repeat).
                    if f.automation.is_none() {
                        let event = notices::failover_event(self.cfg, db, f);
                        if let Some(told) = self.announce(db, "failover-completed", event).await {
                            f.automation = Some((told, Utc::now()));
                        }
                    }
                    f.completed_at = Some(Utc::now());
                    f.lease = None;
                    etag = self.commit(db, &record, &etag).await?;
                    let f = current(&mut record)?;
                    self.tell(&mut undelivered, &notices::completed(self.cfg, db, f)).await;
                    f.notices_sent.push("completed".into());
                }
                Step::Done => unreachable!("handled above"),
            }
            etag = self.commit_progress(db, &mut record, &etag).await?;
        }
    }

    /// While AWS cannot promote yet, and no request of this failover may have been accepted:
    /// should it be called off? When the standby broke, when an operator disarmed automatic
    /// failover, or when the alarm it was for is OK again (the primary is back); the last two
    /// only for an alarm's failover (`alarm`), never for an operator's.
    async fn call_off(&self, standby: &crate::ports::StandbyState, alarm: Option<&AlarmRef>) -> Option<String> {
        if classify(&standby.status) == StatusClass::Broken {
            return Some(format!(
                "the standby is {}: AWS cannot promote it; nothing was changed",
                standby.status
            ));
        }
        let alarm = alarm?;
        if let Some(until) = standby.tags.get(DISARM_TAG) {
            let held = event::parse_time(until.trim()).is_none_or(|t| t > Utc::now());
            if held {
                return Some(format!(
                    "an operator disarmed automatic failover ({DISARM_TAG}={until}) while AWS could not promote yet; nothing was changed"
                ));
            }
        }
        match self.hub().alarms.alarm(&alarm.region, &alarm.name).await {
            Ok(Some(a)) if a.value != "ALARM" => Some(format!(
                "alarm {} is {} again before AWS could start the promotion (the primary is back); nothing was changed",
                alarm.name, a.value
            )),
            _ => None,
        }
    }

    /// Records the failover as called off (nothing changed at AWS), gives up its lease and
    /// tells responders why.
    async fn call_off_now(
        &self,
        db: &DatabaseSpec,
        mut record: DbRecord,
        etag: &str,
        why: String,
        mut undelivered: Vec<String>,
    ) -> Result<Value> {
        let f = record
            .current
            .as_mut()
            .ok_or_else(|| Error::RunFailed("no failover to call off".into()))?;
        // A planned failover that blocked writes gives them back before it stops.
        let why = match &f.writes_blocked {
            None => why,
            Some(_) => match self.at(db).primary.unblock_writes(&db.standby).await {
                Ok(how) => format!("{why}; writes are restored on the primary ({how})"),
                Err(e) => format!(
                    "{why}; the primary is STILL READ-ONLY: restoring its writes failed ({e}); set read_only=0 in its parameter group"
                ),
            },
        };
        f.aborted = Some((why, Utc::now()));
        f.lease = None;
        self.commit(db, &record, etag).await?;
        let f = current(&mut record)?;
        self.tell(&mut undelivered, &notices::aborted(self.cfg, db, f)).await;
        undelivered_error(&f.id, undelivered).map(|_| json!({"database": db.name, "failover": f.id, "aborted": true}))
    }

    /// Sleeps, but never past the point where progress must be saved before the deadline.
    pub(super) async fn nap(&self, wait: std::time::Duration) {
        let margin = Duration::seconds(i64::from(self.cfg.deadline_margin_seconds));
        let left = (self.invocation.deadline - margin - Utc::now())
            .to_std()
            .unwrap_or_default();
        tokio::time::sleep(wait.min(left)).await;
    }

    /// Sends a notice during a failover; a failure is logged and remembered, never fatal.
    /// Publishes a recovery plan's event for the user's own automation (`None`: the plan has no
    /// automation topic). What became of it, for the record and the notices; a failure is
    /// reported, never a reason to stop.
    pub(super) async fn announce(&self, db: &DatabaseSpec, event: &str, detail: Value) -> Option<String> {
        let topic = db.recovery.as_ref()?.automation_topic.as_deref()?;
        let n = notices::automation_event(db, topic, event, &detail);
        let poll = std::time::Duration::from_secs(u64::from(self.cfg.poll_seconds));
        let mut tries = 0;
        Some(loop {
            tries += 1;
            match self.hub().notifier.notify(&n).await {
                Ok(()) => break format!("{event} published to {topic}"),
                // throttled, 5xx, a timeout: asked again a little later (the SDK retried already)
                Err(e) if e.is_retryable() && tries < 3 => {
                    warn!(db = %db.name, %topic, error = %e, "the automation event was not published; asking again");
                    self.nap(poll).await;
                }
                Err(e) => {
                    warn!(db = %db.name, %topic, error = %e, "the automation event was not published");
                    break format!("{event} NOT published to {topic}: {e}");
                }
            }
        })
    }

    /// Tells responders; a notice that cannot be delivered is reported and never stops a step.
    pub(super) async fn tell(&self, undelivered: &mut Vec<String>, notice: &crate::notice::Notice) {
        if let Err(e) = self.hub().notifier.notify(notice).await {
            warn!(subject = %notice.subject, error = %e, "notice not delivered; the failover goes on");
            undelivered.push(format!("{:?}: {e}", notice.subject));
        }
    }

    /// Saves progress; losing the race means another invocation took the failover over.
    async fn commit(&self, db: &DatabaseSpec, record: &DbRecord, etag: &str) -> Result<String> {
        self.save(&db.name, record, Some(etag)).await?.ok_or_else(|| {
            Error::Refused(format!(
                "the failover record of {} changed under this invocation; stopping (the other one continues)",
                db.name
            ))
        })
    }

    /// Saves a failover's progress. An operator's "proceed" is the one write anyone else makes
    /// to a failover this invocation holds (accepted from the promotion on): if it landed
    /// meanwhile, it is taken in and the save made again; any other change means another
    /// invocation took over.
    async fn commit_progress(&self, db: &DatabaseSpec, record: &mut DbRecord, etag: &str) -> Result<String> {
        if let Some(tag) = self.save(&db.name, record, Some(etag)).await? {
            return Ok(tag);
        }
        match self.adopt_waiver(db, record).await? {
            Some(tag) => self.commit(db, record, &tag).await,
            None => self.commit(db, record, etag).await, // fails, saying why
        }
    }

    /// Takes an operator's "proceed" from the stored record into `record`, when the stored
    /// failover is the same one and still leased to this invocation; returns the stored etag.
    async fn adopt_waiver(&self, db: &DatabaseSpec, record: &mut DbRecord) -> Result<Option<String>> {
        let Some(mine) = record.current.as_mut().filter(|f| f.capacity_waived.is_none()) else {
            return Ok(None);
        };
        // A state store that cannot be read now is asked again at the next look.
        let Ok((stored, Some(tag))) = self.load(&db.name).await else {
            return Ok(None);
        };
        let Some(theirs) = stored
            .current
            .filter(|t| t.id == mine.id && t.lease.as_ref().is_some_and(|l| l.holder == self.invocation.request_id))
        else {
            return Ok(None);
        };
        match theirs.capacity_waived {
            Some(waived) => {
                info!(db = %db.name, failover = %mine.id, by = %waived.by, "DNS may switch without the plan's capacity");
                mine.capacity_waived = Some(waived);
                Ok(Some(tag))
            }
            None => Ok(None),
        }
    }

    /// Resumes every failover in progress and re-decides every refused episode, all at once:
    /// in a region outage they are many, and each waits on AWS for minutes.
    async fn on_continue(&self) -> Result<Value> {
        let each = self.cfg.databases.iter().map(|db| async move {
            let outcome = match self.load(&db.name).await {
                Err(e) => Some(Err(e)),
                Ok((record, _)) if record.current.as_ref().is_some_and(Failover::is_active) => {
                    Some(self.resume(db).await)
                }
                Ok((record, _))
                    if record.failback.as_ref().is_some_and(|fb| {
                        fb.is_active() && fb.next_step(Utc::now()) != record::FailbackStep::AwaitSwitch
                    }) =>
                {
                    Some(self.resume_failback(db).await)
                }
                Ok((record, etag)) if record.current.as_ref().is_some_and(Failover::needs_fencing) => {
                    self.fence(db, record, etag).await.transpose()
                }
                Ok((record, _)) => self.recheck(db, &record).await,
            };
            (db, outcome)
        });
        let done = futures::future::join_all(each).await;
        let (out, errors) = outcomes(done.into_iter().filter_map(|(db, outcome)| Some((db, outcome?))));
        if errors.is_empty() {
            Ok(json!({"resumed": out}))
        } else {
            Err(Error::RunFailed(format!(
                "continuation failed for {}",
                errors.join("; ")
            )))
        }
    }

    /// The state of a failover-records health-check alarm (DR region), or "missing".
    pub(super) async fn failed_over_state(&self, alarm: &str) -> Result<String> {
        let state = self.hub().alarms.alarm(&self.cfg.dr_region, alarm).await?;
        Ok(state.map_or_else(|| "missing".to_string(), |s| s.value))
    }

    /// Where the app's record sends clients now: whether at the promoted standby `target`,
    /// and a description. `None` when the record does not exist. With failover records,
    /// Route 53 answers the SECONDARY while the PRIMARY's health-check alarm is in ALARM; the
    /// SECONDARY's value is checked against `target` when Route 53's API answers.
    pub(crate) async fn dns_now(&self, db: &DatabaseSpec, target: &str) -> Result<Option<(bool, String)>> {
        match &db.dns.switch {
            DnsSwitch::Upsert => Ok(self.hub().dns.current(&db.dns).await?.map(|now_at| {
                let at_standby = crate::model::same_name(&now_at, target);
                (at_standby, now_at)
            })),
            DnsSwitch::FailoverRecords { alarm } => {
                let value = self.failed_over_state(alarm).await?;
                if value != "ALARM" {
                    return Ok(Some((false, format!("the PRIMARY record (alarm {alarm} is {value})"))));
                }
                // Route 53 answers the SECONDARY: is that the promoted standby? Its API may be
                // dark (us-east-1): then the alarm is all there is to go by.
                Ok(Some(match self.hub().dns.secondary(&db.dns).await {
                    Ok(Some(secondary)) if crate::model::same_name(&secondary, target) => (
                        true,
                        format!("{target} (the SECONDARY record: alarm {alarm} is in ALARM)"),
                    ),
                    Ok(Some(secondary)) => (
                        false,
                        format!("{secondary} (the SECONDARY record, alarm {alarm} in ALARM), not the promoted standby"),
                    ),
                    Ok(None) => (
                        false,
                        format!("no SECONDARY failover record (alarm {alarm} is in ALARM)"),
                    ),
                    Err(e) => (
                        true,
                        format!(
                            "{target} (the SECONDARY record: alarm {alarm} is in ALARM; its value not verified: {e})"
                        ),
                    ),
                }))
            }
        }
    }

    /// After an unplanned failover the old primary's region comes back with the old primary
    /// in it, writable: two primaries, and writes to the old one are lost. As soon as the
    /// region answers, drpilot stops it (RDS), or checks that Aurora made it a secondary,
    /// records it and tells responders. `None` while the region is still dark.
    async fn fence(&self, db: &DatabaseSpec, mut record: DbRecord, mut etag: Option<String>) -> Result<Option<Value>> {
        let view = self.at(db).primary.primary(&db.standby).await;
        if matches!(view, PrimaryView::Unreachable(_) | PrimaryView::Unknown(_)) {
            return Ok(None); // still dark: the next continuation asks again
        }
        let Some(f) = record.current.as_mut() else {
            return Ok(None);
        };
        let now = Utc::now();
        // If DNS no longer points at the promoted standby, someone failed back by hand: the
        // "old" primary may be the live one again. Never stop it then.
        if let Some(target) = f.target.as_deref() {
            let seen = match self.dns_now(db, target).await {
                Ok(Some((false, now_at))) => Some(format!("now points at {now_at}, not the promoted standby {target}")),
                Ok(None) => Some(format!(
                    "does not exist: where clients go is unknown, not the promoted standby {target}"
                )),
                Err(e) => Some(format!(
                    "cannot be read ({e}); it may not point at the promoted standby {target}"
                )),
                Ok(_) => None,
            };
            if let Some(seen) = seen {
                let why = format!(
                    "{} {seen}: not fencing what may be the live primary",
                    db.dns.record_name
                );
                if f.fence_error.as_deref() != Some(why.as_str()) {
                    warn!(db = %db.name, %why, "fencing skipped");
                    f.fence_error = Some(why);
                    self.save(&db.name, &record, etag.as_deref()).await?;
                }
                return Ok(None);
            }
        }
        let already = match &view {
            PrimaryView::Planned(s) if s == "stopped" || s == "stopping" => Some(s.clone()),
            PrimaryView::Broken(s) if s == "not found" => Some("gone".to_string()),
            _ => None,
        };
        // Stopping the old primary is claimed first (the failover's lease, by compare-and-swap):
        // two continuations that both found it back stop it once. The claim lasts two metric
        // periods, not the invocation's deadline: if its holder dies or cannot record the
        // outcome, a continuation soon after tries again.
        if matches!(db.standby, Standby::RdsReplica { .. })
            && db.fence == crate::model::Fence::Stop
            && already.is_none()
        {
            if f.leased_to_other(&self.invocation.request_id, now).is_some() {
                return Ok(None);
            }
            let claim = now + Duration::seconds(2 * i64::from(self.cfg.metric_period_seconds));
            f.lease = Some(Lease {
                until: claim.min(self.invocation.deadline),
                ..Lease::to(&self.invocation)
            });
            match self.save(&db.name, &record, etag.as_deref()).await? {
                Some(claimed) => etag = Some(claimed),
                None => return Ok(None), // another continuation is fencing
            }
        }
        let Some(f) = record.current.as_mut() else {
            return Ok(None);
        };
        f.lease = None;
        let outcome: std::result::Result<String, String> = match (&db.standby, db.fence) {
            (Standby::RdsReplica { primary, .. }, _) if already.is_some() => {
                Ok(format!("{primary} is {}", already.as_deref().unwrap_or_default()))
            }
            (Standby::AuroraGlobal { primary_cluster, .. }, _) => match self.at(db).standby.state(&db.standby).await {
                Ok(s) if s.promoted => Ok(format!(
                    "Aurora keeps one writer: {primary_cluster} is no longer the global database's writer (it rejoins as a secondary)"
                )),
                Ok(_) => Err(format!(
                    "{primary_cluster} answers and the DR cluster is not the global writer"
                )),
                Err(e) => Err(e.to_string()),
            },
            (Standby::RdsReplica { primary, .. }, crate::model::Fence::None) => Err(format!(
                "{primary} answers again and drpilot does not fence it (fence: none): stop it or block its writes"
            )),
            (Standby::RdsReplica { primary, .. }, crate::model::Fence::Stop) => {
                match self.at(db).primary.stop(&db.standby).await {
                    Ok(status) => Ok(format!("stopped {primary} (StopDBInstance; it is {status})")),
                    Err(e) => Err(format!("StopDBInstance of {primary} failed: {e}")),
                }
            }
        };
        let notice = match outcome {
            Ok(how) => {
                info!(db = %db.name, %how, "old primary fenced");
                f.fenced = Some((how, now));
                f.fence_error = None;
                Some(notices::fenced(self.cfg, db, f))
            }
            Err(why) if f.fence_error.as_deref() == Some(why.as_str()) => None,
            Err(why) => {
                warn!(db = %db.name, %why, "the old primary is back and not fenced");
                f.fence_error = Some(why);
                Some(notices::not_fenced(self.cfg, db, f))
            }
        };
        let id = f.id.clone();
        let fenced = f.fenced.is_some();
        let Some(etag) = self.save(&db.name, &record, etag.as_deref()).await? else {
            return Ok(None); // another continuation got there first
        };
        if let Some(n) = notice {
            if let Err(e) = self.hub().notifier.notify(&n).await {
                // Undelivered: forget the reason so that the next minute tells it again.
                if let Some(f) = record.current.as_mut().filter(|_| !fenced) {
                    f.fence_error = None;
                    self.save(&db.name, &record, Some(&etag)).await?;
                }
                return Err(e);
            }
        }
        Ok(Some(json!({"database": db.name, "failover": id, "fenced": fenced})))
    }

    /// A refused alarm episode is decided again while its alarm is still in ALARM, for as long
    /// as the lag lookback (after that the lag gate could not pass anyway).
    async fn recheck(&self, db: &DatabaseSpec, record: &DbRecord) -> Option<Result<Value>> {
        let episode = record
            .last_episode
            .as_ref()
            .filter(|e| e.verdict == format!("{:?}", Verdict::Refuse))?;
        let alarm = episode.alarm.as_ref()?;
        if Utc::now() - alarm.since > Duration::seconds(i64::from(self.cfg.lag_lookback_seconds)) {
            return None;
        }
        let signal = AlarmSignal {
            name: alarm.name.clone(),
            region: alarm.region.clone(),
            state: "ALARM".into(),
            since: alarm.since,
            reason: alarm.reason.clone(),
        };
        let trigger = self.alarm_trigger(signal).await.ok()?;
        // A new episode of the alarm is decided as new (its own event is a duplicate then).
        let same = matches!(&trigger, Trigger::Alarm(s, _) if s.since == alarm.since);
        info!(db = %db.name, alarm = %alarm.name, same, "alarm still firing: deciding again");
        Some(self.decide_and_act(db, trigger, same).await)
    }

    async fn acknowledge(&self, database: &str, by: &str) -> Result<Value> {
        let db = self.database(database)?;
        let (mut record, etag) = self.load(&db.name).await?;
        // A called-off failover changed nothing: the one before it is what is acknowledged.
        let target = match record.current.as_ref() {
            Some(f) if f.aborted.is_some() => record.previous.as_mut(),
            _ => record.current.as_mut(),
        };
        let Some(f) = target else {
            return Err(Error::BadEvent(format!("{database} has no failover to acknowledge")));
        };
        if f.is_active() {
            return Err(Error::BadEvent(format!(
                "failover {} of {database} has not completed yet",
                f.id
            )));
        }
        if let Some(ack) = &f.acknowledged {
            return Ok(json!({"database": database, "failover": f.id, "acknowledged_by": ack.by, "already": true}));
        }
        f.acknowledged = Some(Acknowledgement {
            by: by.to_string(),
            at: Utc::now(),
        });
        let notice = notices::acknowledged(db, f, by);
        let id = f.id.clone();
        self.save(&db.name, &record, etag.as_deref())
            .await?
            .ok_or_else(|| Error::Refused(format!("the record of {database} changed meanwhile; try again")))?;
        self.hub().notifier.notify(&notice).await?;
        Ok(json!({"database": database, "failover": id, "acknowledged_by": by}))
    }

    /// An operator lets DNS switch without the capacity a strict recovery plan waits for. The
    /// invocation advancing the failover reads it at its next look.
    async fn proceed(&self, database: &str, by: &str) -> Result<Value> {
        let db = self.database(database)?;
        let (mut record, etag) = self.load(&db.name).await?;
        let Some(f) = record
            .current
            .as_mut()
            .filter(|f| f.is_active() && f.next_step() == Step::Capacity)
        else {
            return Err(Error::BadEvent(format!(
                "{database} has no failover waiting for capacity (a promoted standby whose recovery plan's capacity is not ready yet); nothing was changed"
            )));
        };
        if let Some(w) = &f.capacity_waived {
            return Ok(json!({"database": database, "failover": f.id, "proceed_by": w.by, "already": true}));
        }
        f.capacity_waived = Some(Acknowledgement {
            by: by.to_string(),
            at: Utc::now(),
        });
        let id = f.id.clone();
        self.save(&db.name, &record, etag.as_deref())
            .await?
            .ok_or_else(|| Error::Refused(format!("the record of {database} changed meanwhile; try again")))?;
        info!(db = %db.name, failover = %id, %by, "DNS may switch without the plan's capacity");
        Ok(json!({"database": database, "failover": id, "proceed_by": by}))
    }

    async fn status(&self) -> Result<Value> {
        let mut dbs = Vec::new();
        for db in &self.cfg.databases {
            let (record, _) = self.load(&db.name).await?;
            dbs.push(json!({"database": db.name, "mode": self.cfg.mode, "record": record}));
        }
        Ok(json!({"databases": dbs}))
    }
}

/// One group or service of a recovery plan, one look: asks AWS for the plan's size once, then
/// marks it healthy once enough instances are in service (tasks running). `Some`: not ready
/// yet, and what AWS shows (or why asking failed; it is asked again at the next look).
async fn scale_and_check<C: Capacity>(capacity: &C, step: &mut record::CapacityStep) -> Option<Unready> {
    let state = match capacity.group(&step.kind, &step.group).await {
        Ok(Some(state)) => state,
        Ok(None) => {
            let what = match &step.kind {
                CapacityKind::AutoScalingGroup => "no such Auto Scaling group in the DR region".to_string(),
                CapacityKind::EcsService { cluster } => {
                    format!("no such ECS service in cluster {cluster} in the DR region (or it is draining or deleted)")
                }
            };
            return seen(step, what, true);
        }
        Err(e) => {
            let broken = cannot_be_fixed_by_waiting(&e);
            return seen(step, format!("cannot read the {}: {e}", step.label()), broken);
        }
    };
    if step.requested_at.is_none() {
        let Some(before) = step.before else {
            // On the record before anything is asked (the look that should have saved it
            // could not read the group): the next look asks.
            step.before = Some(state.size);
            return seen(
                step,
                format!("{} now; the plan's size is asked for next", step.size(state.size)),
                false,
            );
        };
        if let Some(size) = scale_up(state.size, step.wanted) {
            if let Err(e) = capacity.resize(&step.kind, &step.group, size).await {
                warn!(group = %step.group, error = %e, "cannot scale the group up; asking again");
                let broken = cannot_be_fixed_by_waiting(&e);
                return seen(step, format!("asking for {} failed: {e}", step.size(size)), broken);
            }
            info!(group = %step.group, %size, "scaled up");
            step.requested_at = Some(Utc::now());
            step.resized = true;
            let what = format!("asked for {}; was {}", step.size(size), step.size(state.size));
            return seen(step, what, false);
        }
        step.requested_at = Some(Utc::now());
        // Big enough already. Bigger than it was: an earlier request whose answer was lost (a
        // killed run) took, or a policy grew it.
        step.resized = state.size != before;
    }
    let what = describe(&state, step.wanted.desired, &step.kind);
    if ready(&state, step.wanted.desired, &step.kind) {
        step.healthy_at = Some(Utc::now());
        step.seen = Some(what);
        return None;
    }
    seen(step, what, false)
}

/// Records what a group not ready yet shows.
fn seen(step: &mut record::CapacityStep, what: String, broken: bool) -> Option<Unready> {
    let unready = Unready {
        what: format!("{}: {what}", step.group),
        broken,
    };
    step.seen = Some(what);
    Some(unready)
}

/// AWS's answers that mean a configuration error (a group that does not exist, a denied or
/// invalid request): waiting does not fix them.
fn cannot_be_fixed_by_waiting(e: &Error) -> bool {
    const CODES: &[&str] = &[
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "ValidationError",
        // ECS: a service that is not active, or a parameter it refuses
        "ServiceNotActiveException",
        "ServiceNotFoundException",
        "InvalidParameterException",
    ];
    matches!(e, Error::Aws { code, .. } if CODES.contains(&code.as_str()))
}

/// Waits between promotion requests AWS refused for now: the poll interval, doubling up to
/// eight times it.
/// The whole metric periods that began after `blocked_at` and have ended by `now`, as one
/// range (`None`: none yet). A replica has every write once its ReplicaLag's Maximum over
/// such a period is 0: a partial period may hold one lucky sample, and a period that began
/// before the block may hold writes made before it. The caller reads the newest datapoint in
/// the range: a replica still catching up in one period is seen caught up in a later one, and
/// a datapoint CloudWatch publishes late is read when it arrives.
pub(crate) fn settled_period(
    blocked_at: chrono::DateTime<Utc>,
    now: chrono::DateTime<Utc>,
    period: u32,
) -> Option<(chrono::DateTime<Utc>, chrono::DateTime<Utc>)> {
    let p = i64::from(period.max(1));
    let first = (blocked_at.timestamp().div_euclid(p) + 1) * p;
    let end = now.timestamp().div_euclid(p) * p;
    (end >= first + p).then(|| {
        Some((
            chrono::DateTime::from_timestamp(first, 0)?,
            chrono::DateTime::from_timestamp(end, 0)?,
        ))
    })?
}

fn backoff(poll: std::time::Duration, refusals: u32) -> std::time::Duration {
    poll * 2u32.pow(refusals.saturating_sub(1).min(3))
}

/// The failover being advanced, borrowed again after a step saved the record.
fn current(record: &mut DbRecord) -> Result<&mut Failover> {
    record
        .current
        .as_mut()
        .ok_or_else(|| Error::RunFailed("the failover left the record".into()))
}

/// The values of the outcomes that succeeded, and "database: error" for those that failed.
fn outcomes<'d>(all: impl IntoIterator<Item = (&'d DatabaseSpec, Result<Value>)>) -> (Vec<Value>, Vec<String>) {
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for (db, outcome) in all {
        match outcome {
            Ok(v) => values.push(v),
            Err(e) => errors.push(format!("{}: {e}", db.name)),
        }
    }
    (values, errors)
}

pub(super) fn undelivered_error(failover: &str, undelivered: Vec<String>) -> Result<()> {
    if undelivered.is_empty() {
        Ok(())
    } else {
        Err(Error::RunFailed(format!(
            "failover {failover} advanced, but {} notice(s) could not be sent: {}",
            undelivered.len(),
            undelivered.join("; ")
        )))
    }
}

pub fn standby_name(s: &Standby) -> &str {
    match s {
        Standby::RdsReplica { replica, .. } => replica,
        Standby::AuroraGlobal { secondary_cluster, .. } => secondary_cluster,
    }
}

fn gate_records(d: &Decision) -> Vec<GateRecord> {
    d.gates
        .iter()
        .map(|g| GateRecord {
            name: g.name.into(),
            passed: g.passed,
            detail: g.detail.clone(),
        })
        .collect()
}

/// The alarm re-read from CloudWatch when the event arrived.
#[derive(Debug, Clone, Copy)]
pub struct AlarmReading {
    /// Still in ALARM (`None`: could not be re-read).
    pub firing: Option<bool>,
    pub window: Option<AlarmWindow>,
}

/// Transitions a standby ends by itself, after which AWS accepts a promotion: the decision
/// lets them pass and the promotion is retried until AWS accepts it. Anything else that is
/// not `available` (rebooting, failed, storage-full, ...) refuses.
const BUSY_STANDBY: &[&str] = &[
    "backing-up",
    "modifying",
    "maintenance",
    "upgrading",
    "storage-optimization",
    "configuring-enhanced-monitoring",
    "configuring-iam-database-auth",
    "configuring-log-exports",
    "rebooting",
];

pub enum Trigger {
    Alarm(AlarmSignal, AlarmReading),
    Operator {
        reason: String,
        force_data_loss: bool,
        planned: bool,
    },
}

impl Trigger {
    fn request(&self) -> Request {
        match self {
            Trigger::Alarm(..) => Request::Alarm,
            Trigger::Operator {
                force_data_loss,
                planned,
                ..
            } => Request::Operator {
                force_data_loss: *force_data_loss,
                planned: *planned,
            },
        }
    }

    fn planned(&self) -> bool {
        matches!(self, Trigger::Operator { planned: true, .. })
    }

    /// One decision per key: an alarm episode (name + when it went ALARM), or one request.
    fn episode_key(&self, invocation: &Invocation) -> String {
        match self {
            Trigger::Alarm(a, _) => format!("alarm:{}@{}", a.name, stamp(a.since)),
            Trigger::Operator { .. } => format!("operator:{}", invocation.request_id),
        }
    }

    pub fn label(&self) -> String {
        match self {
            Trigger::Alarm(a, _) => format!("alarm {}", a.name),
            Trigger::Operator { planned: true, .. } => "planned operator request".into(),
            Trigger::Operator { .. } => "operator request".into(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Trigger::Alarm(a, _) => format!("alarm {} in ALARM since {} ({})", a.name, stamp(a.since), a.reason),
            Trigger::Operator { reason, planned, .. } => {
                format!("operator request{}: {reason}", if *planned { " (planned)" } else { "" })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::settled_period;
    use chrono::{TimeZone, Utc};

    #[test]
    fn catching_up_is_read_from_whole_periods_after_the_block() {
        let t = |s: u32| Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap() + chrono::Duration::seconds(s.into());
        let blocked = t(10);
        assert_eq!(
            settled_period(blocked, t(100), 60),
            None,
            "the first whole period has not ended"
        );
        assert_eq!(settled_period(blocked, t(120), 60), Some((t(60), t(120))));
        assert_eq!(
            settled_period(blocked, t(200), 60),
            Some((t(60), t(180))),
            "a later look reads later periods too: one that still had lag is not read forever"
        );
        assert_eq!(
            settled_period(t(60), t(120), 60),
            None,
            "a period beginning at the block is not after it"
        );
    }
}
