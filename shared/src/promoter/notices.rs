//! What responders read at each step of a failover, and when drpilot will not fail over.

use super::record::{CapacityStep, Failover};
use super::standby_name;
use crate::config::PromoterConfig;
use crate::model::DatabaseSpec;
use crate::notice::{Notice, Severity};
use crate::plan::lag::human_seconds;
use crate::plan::promotion::{Decision, MAINTENANCE};
use chrono::{DateTime, Utc};

/// The record as people write it (without the root's trailing dot).
fn record(db: &DatabaseSpec) -> &str {
    db.dns.record_name.trim_end_matches('.')
}

fn hms(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%SZ").to_string()
}

fn secs(a: DateTime<Utc>, b: DateTime<Utc>) -> String {
    human_seconds((b - a).num_milliseconds().max(0) as f64 / 1000.0)
}

fn rpo(f: &Failover) -> String {
    f.estimated_rpo_seconds
        .map(human_seconds)
        .unwrap_or_else(|| "unknown".into())
}

/// The exact command a responder runs to talk to the promoter.
pub fn command(cfg: &PromoterConfig, payload: serde_json::Value) -> String {
    format!(
        "aws lambda invoke --region {} --function-name {} --cli-binary-format raw-in-base64-out --payload '{}' /dev/stdout",
        cfg.dr_region, cfg.function_name, payload
    )
}

/// The command that fails `db` over by hand.
fn failover_command(cfg: &PromoterConfig, db: &DatabaseSpec) -> String {
    command(
        cfg,
        serde_json::json!({"action": "failover", "database": db.name, "reason": "WHY"}),
    )
}

fn with_ids(n: Notice, db: &DatabaseSpec, f: &Failover, step: &str) -> Notice {
    n.with_attribute("database", db.name.clone())
        .with_attribute("failover_id", f.id.clone())
        .with_attribute("step", step)
}

fn gates_text(gates: impl Iterator<Item = (bool, String, String)>) -> String {
    gates
        .map(|(passed, name, detail)| format!("  [{}] {name}: {detail}\n", if passed { "PASS" } else { "FAIL" }))
        .collect()
}

pub fn started(cfg: &PromoterConfig, db: &DatabaseSpec, f: &Failover) -> Notice {
    let target = f.target.as_deref().unwrap_or("?");
    let body = format!(
        "drpilot is failing over {db} to {dr}.\n\
         Why: {trigger}.\n\
         Evidence:\n{gates}\
         Plan: {block}promote {standby} in {dr}, {capacity}then point {record} at {target}.\n\
         Estimated data loss (RPO): {rpo}.\n\
         Failover id: {id}. Further notices follow at each step.\n",
        db = db.name,
        dr = cfg.dr_region,
        trigger = f.trigger,
        gates = gates_text(f.gates.iter().map(|g| (g.passed, g.name.clone(), g.detail.clone()))),
        block = if f.block_writes_first {
            "block writes on the primary (its parameter group), wait until the replica has caught up, "
        } else {
            ""
        },
        standby = standby_name(&db.standby),
        capacity = capacity_plan(f),
        record = record(db),
        rpo = rpo(f),
        id = f.id
    );
    let n = Notice::new(
        Severity::Critical,
        format!("drpilot: FAILOVER started: {} -> {}", db.name, cfg.dr_region),
        body,
    )
    .with_sms(format!(
        "drpilot: failover of {} to {} STARTED (est. data loss {}). id {}",
        db.name,
        cfg.dr_region,
        rpo(f),
        f.id
    ));
    with_ids(n, db, f, "started")
}

pub fn promoted(cfg: &PromoterConfig, db: &DatabaseSpec, f: &Failover) -> Notice {
    let (req, done) = (
        f.promote_requested_at.unwrap_or(f.decided_at),
        f.promoted_at.unwrap_or(f.decided_at),
    );
    let body = format!(
        "{standby} in {dr} is promoted and available ({took} after the request at {req}).\n\
         Next: {capacity}point {record} at {target}.\nFailover id: {id}.\n",
        standby = standby_name(&db.standby),
        dr = cfg.dr_region,
        took = secs(req, done),
        req = hms(req),
        capacity = capacity_plan(f),
        record = record(db),
        target = f.target.as_deref().unwrap_or("?"),
        id = f.id
    );
    let n = Notice::new(
        Severity::Critical,
        format!("drpilot: {}: {} promoted", db.name, standby_name(&db.standby)),
        body,
    )
    .with_sms(format!(
        "drpilot: {} promoted in {}. id {}",
        standby_name(&db.standby),
        cfg.dr_region,
        f.id
    ));
    with_ids(n, db, f, "promoted")
}

/// The recovery plan's capacity step as the plan line says it ("" without one).
fn capacity_plan(f: &Failover) -> String {
    if f.capacity.is_empty() {
        return String::new();
    }
    let groups: Vec<String> = f
        .capacity
        .iter()
        .map(|c| format!("{} to {}", c.label(), c.size(c.wanted)))
        .collect();
    format!(
        "scale {} and wait until healthy (up to {}{}), ",
        groups.join(" and "),
        human_seconds(f64::from(f.capacity_wait_seconds)),
        if f.capacity_strict {
            "; the plan is strict: DNS waits for it"
        } else {
            "; then DNS switches with or without it"
        }
    )
}

/// What was asked of a group: "asked for 10 (min 10, max 20), was 2", or that nothing was.
fn asked(c: &CapacityStep) -> String {
    match (c.resized, c.requested_at, c.before) {
        (true, _, Some(b)) => format!("asked for {}, was {}", c.size(c.wanted), b.desired),
        (true, _, None) => format!("asked for {}", c.size(c.wanted)),
        (false, Some(_), Some(b)) => format!(
            "already {} (the plan asks {}): nothing asked",
            b.desired,
            c.size(c.wanted)
        ),
        _ => format!("NOT asked for {} yet", c.size(c.wanted)),
    }
}

/// Each group of the plan: what was asked, and what AWS shows.
fn capacity_lines(f: &Failover) -> String {
    f.capacity
        .iter()
        .map(|c| {
            let state = match (c.healthy_at, c.requested_at) {
                (Some(t), Some(at)) => format!("ready in {}", secs(at, t)),
                (Some(_), None) => "ready".to_string(),
                _ => "NOT ready".to_string(),
            };
            format!("  {}: {state} ({}): {}\n", c.group, asked(c), c.last_seen())
        })
        .collect()
}

use crate::plan::recovery::CANNOT_BE_SCALED;

/// The capacity gate's reason without its groups ("<head>: <each group>").
fn reason_head(why: &str) -> &str {
    why.split_once(": ").map_or(why, |(head, _)| head)
}

/// Why DNS was let go without the capacity, as a sentence's start (from the gate's reason:
/// "<head>: <each group>").
fn let_go(why: &str, dr: &str) -> String {
    let head = reason_head(why);
    if head == CANNOT_BE_SCALED {
        format!(
            "drpilot cannot scale the application's capacity in {dr}: a configuration error (a group that does \
             not exist, or a role that may not scale it), which waiting does not fix"
        )
    } else if let Some(by) = head.strip_suffix(" let DNS switch without it") {
        format!("{by} let DNS switch without the application's capacity in {dr}, which is NOT ready")
    } else {
        format!("The application's capacity in {dr} is NOT ready: {head}")
    }
}

/// The capacity step settled: every group ready, or DNS switches without them.
pub fn capacity(cfg: &PromoterConfig, db: &DatabaseSpec, f: &Failover) -> Notice {
    let (why, at) = f.capacity_settled.clone().unwrap_or_else(|| ("?".into(), f.decided_at));
    let took = secs(f.promoted_at.unwrap_or(f.decided_at), at);
    let ready = why == "ready";
    let target = f.target.as_deref().unwrap_or("?");
    let body = if ready {
        format!(
            "The application's capacity in {dr} is ready, {took} after the promotion:\n{lines}\
             Next: point {record} at {target}.\nFailover id: {id}.\n",
            dr = cfg.dr_region,
            lines = capacity_lines(f),
            record = record(db),
            id = f.id
        )
    } else {
        let all_asked = f.capacity.iter().all(|c| c.requested_at.is_some());
        let then = if all_asked {
            format!(
                "AWS keeps the desired capacity and goes on launching; see why in the groups' scaling activities \
                 (aws autoscaling describe-scaling-activities --region {} --auto-scaling-group-name NAME).",
                cfg.dr_region
            )
        } else {
            "Not every group could be asked for its size (above): scale them yourself.".to_string()
        };
        format!(
            "{head}:\n{lines}\
             drpilot points {record} at {target} now without it: a degraded application beats a dead region. \
             {then}\nFailover id: {id}.\n",
            head = let_go(&why, &cfg.dr_region),
            lines = capacity_lines(f),
            record = record(db),
            id = f.id
        )
    };
    let (subject, sms) = if ready {
        (
            format!("drpilot: {}: capacity ready in {}", db.name, cfg.dr_region),
            format!(
                "drpilot: {} capacity ready in {} ({took}). id {}",
                db.name, cfg.dr_region, f.id
            ),
        )
    } else {
        (
            format!(
                "drpilot: {}: capacity NOT ready in {}, DNS switches without it",
                db.name, cfg.dr_region
            ),
            format!(
                "drpilot: {} capacity NOT ready in {}; DNS switches anyway. id {}",
                db.name, cfg.dr_region, f.id
            ),
        )
    };
    with_ids(
        Notice::new(Severity::Critical, subject, body).with_sms(sms),
        db,
        f,
        "capacity",
    )
}

/// A strict plan's wait is over (or its groups cannot be scaled) and capacity is not ready:
/// DNS waits. Sent once per failover. `why` is the gate's reason.
pub fn capacity_held(cfg: &PromoterConfig, db: &DatabaseSpec, f: &Failover, why: &str) -> Notice {
    let state = if reason_head(why) == CANNOT_BE_SCALED {
        format!(
            "drpilot cannot scale the application's capacity in {}: a configuration error (a group that does \
             not exist, or a role that may not scale it), which waiting does not fix. Fix the plan or the role, \
             or let DNS go",
            cfg.dr_region
        )
    } else {
        format!(
            "the application's capacity in {} is not ready {} after the promotion",
            cfg.dr_region,
            human_seconds(f64::from(f.capacity_wait_seconds))
        )
    };
    let split_brain = if f.planned {
        String::new()
    } else {
        format!(
            "While DNS is held, clients still go to the old primary's address: if {} comes back before DNS \
             switches, it takes writes beside the promoted standby (two primaries; what is written there is lost). \
             Let DNS go, or make sure the old primary stays down.\n",
            cfg.source_region
        )
    };
    let body = format!(
        "DNS for {record} is HELD: {db}'s recovery plan is strict, and {state}:\n{lines}\
         {standby} is promoted and takes writes.\n{split_brain}\
         drpilot keeps watching and switches DNS as soon as the capacity is ready. To switch now without it:\n  {cmd}\n\
         Failover id: {id}.\n",
        record = record(db),
        db = db.name,
        lines = capacity_lines(f),
        standby = standby_name(&db.standby),
        cmd = command(
            cfg,
            serde_json::json!({"action": "proceed", "database": db.name, "by": "YOUR NAME"})
        ),
        id = f.id
    );
    let n = Notice::new(
        Severity::Critical,
        format!(
            "drpilot: {}: DNS HELD, capacity not ready in {}",
            db.name, cfg.dr_region
        ),
        body,
    )
    .with_sms(format!(
        "drpilot: {} promoted but DNS HELD: capacity not ready in {}. id {}",
        db.name, cfg.dr_region, f.id
    ));
    with_ids(n, db, f, "capacity-held")
}

/// The health-check alarm of a switch by failover records (`None`: an UPSERT).
fn by_failover_records(f: &Failover) -> Option<&str> {
    f.dns_change_id.as_deref()?.strip_prefix(super::FAILOVER_RECORDS)
}

pub fn dns_switched(db: &DatabaseSpec, f: &Failover) -> Notice {
    let target = f.target.as_deref().unwrap_or("?");
    let how = match by_failover_records(f) {
        Some(alarm) => format!(
            "Route 53's failover records: alarm {alarm} is in ALARM, so the PRIMARY record's health check is \
             unhealthy and Route 53 answers the SECONDARY, {target}, from its data plane (no Route 53 API call; \
             resolvers holding the old answer keep it for the record's TTL)"
        ),
        None => format!("Route 53 change {} in sync", f.dns_change_id.as_deref().unwrap_or("?")),
    };
    let body = format!(
        "{record} now points at {target} ({how}).\nFailover id: {id}.\n",
        record = record(db),
        id = f.id
    );
    let n = Notice::new(
        Severity::Critical,
        format!("drpilot: {}: DNS switched to the DR region", db.name),
        body,
    )
    .with_sms(format!("drpilot: {} now -> {}. id {}", record(db), target, f.id));
    with_ids(n, db, f, "dns")
}

/// The failover's timeline and its measured RTO components.
pub fn timeline(f: &Failover) -> String {
    let lines: Vec<String> = timeline_entries(f)
        .into_iter()
        .map(|(t, what)| format!("  {}  {what}", hms(t)))
        .collect();
    lines.join("\n") + "\n"
}

/// The failover's steps so far, each with when it happened (the timeline's lines; the status
/// page shows them in full).
pub fn timeline_entries(f: &Failover) -> Vec<(DateTime<Utc>, String)> {
    let cause = if f.cause.is_empty() { &f.trigger } else { &f.cause };
    let mut lines = vec![
        (f.detected_at, format!("failure detected ({cause})")),
        (f.decided_at, "decided to promote: all gates passed".to_string()),
    ];
    if let Some(t) = f.promote_requested_at {
        lines.push((t, "promotion requested".into()));
    }
    if let Some(t) = f.promoted_at {
        lines.push((t, "standby promoted and available".into()));
    }
    for c in &f.capacity {
        if let Some(t) = c.requested_at {
            lines.push((t, format!("{} {}", c.label(), asked(c))));
        }
        if let Some(t) = c.healthy_at {
            lines.push((t, format!("{} ready: {}", c.group, c.seen.as_deref().unwrap_or(""))));
        }
    }
    if let Some((why, t)) = &f.capacity_settled {
        lines.push(match why.as_str() {
            "ready" => (*t, "capacity ready".to_string()),
            why => (
                *t,
                format!("capacity NOT ready ({}): DNS switches without it", reason_head(why)),
            ),
        });
    }
    let by_records = by_failover_records(f);
    if let Some(t) = f.dns_requested_at {
        lines.push(match by_records {
            Some(alarm) => (
                t,
                format!("FailedOver published in the DR region (sets off {alarm}, the PRIMARY record's health check)"),
            ),
            None => (
                t,
                format!("DNS change submitted ({})", f.dns_change_id.as_deref().unwrap_or("?")),
            ),
        });
    }
    if let Some(t) = f.dns_in_sync_at {
        lines.push(match by_records {
            Some(alarm) => (
                t,
                format!("{alarm} in ALARM: Route 53 answers the SECONDARY record (the standby)"),
            ),
            None => (t, "DNS change in sync".to_string()),
        });
    }
    if let Some((told, t)) = &f.automation {
        lines.push((*t, format!("automation: {told}")));
    }
    if let Some(t) = f.completed_at {
        lines.push((t, "completed".into()));
    }
    lines
}

/// A recovery plan's event for the user's own automation: the JSON document itself is the
/// message (with `event` and `database` as message attributes, for subscription filters).
pub fn automation_event(db: &DatabaseSpec, topic: &str, event: &str, detail: &serde_json::Value) -> Notice {
    let mut n = Notice::new(
        Severity::Info,
        format!("drpilot event: {event}: {}", db.name),
        detail.to_string(),
    );
    n.attributes.insert("event".into(), event.into());
    n.attributes.insert("database".into(), db.name.clone());
    n.topic = Some(topic.to_string());
    n
}

/// What a completed failover tells the user's automation: where the database is now, and how
/// the plan's capacity came out.
pub fn failover_event(cfg: &PromoterConfig, db: &DatabaseSpec, f: &Failover) -> serde_json::Value {
    serde_json::json!({
        "source": "drpilot",
        "event": "failover-completed",
        "database": db.name,
        "failover": f.id,
        // "alarm NAME", "operator request", or a drill's "drill PLAN"
        "trigger": f.trigger,
        "planned": f.planned,
        "from_region": cfg.source_region,
        "region": cfg.dr_region,
        "primary": standby_name(&db.standby),
        "endpoint": f.target,
        "record": record(db),
        "capacity": f.capacity.iter().map(|c| serde_json::json!({
            "kind": match &c.kind {
                crate::model::CapacityKind::AutoScalingGroup => "auto-scaling-group",
                crate::model::CapacityKind::EcsService { .. } => "ecs-service",
            },
            "cluster": match &c.kind {
                crate::model::CapacityKind::EcsService { cluster } => Some(cluster),
                crate::model::CapacityKind::AutoScalingGroup => None,
            },
            "name": c.group,
            "wanted": c.wanted.desired,
            "ready": c.healthy_at.is_some(),
            "seen": c.seen,
        })).collect::<Vec<_>>(),
        "capacity_settled": f.capacity_settled.as_ref().map(|(why, _)| why),
        "estimated_rpo_seconds": f.estimated_rpo_seconds,
        "promoted_at": f.promoted_at,
        "dns_in_sync_at": f.dns_in_sync_at,
    })
}

/// A completed failover's measured RTO and its components, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rto {
    /// The alarm -> the decision.
    pub decide: f64,
    /// The decision -> the standby promoted and available.
    pub promote: f64,
    /// The promotion -> the recovery plan's capacity settled (`None`: no plan).
    pub capacity: Option<f64>,
    /// Promoted (or capacity settled) -> the DNS change in sync.
    pub dns: f64,
    /// The alarm -> DNS in sync.
    pub total: f64,
}

impl Rto {
    /// What drpilot did after deciding: promote, capacity and DNS.
    pub fn acting(&self) -> f64 {
        self.promote + self.capacity.unwrap_or(0.0) + self.dns
    }
}

pub fn rto_components(f: &Failover) -> Option<Rto> {
    let s = |a: DateTime<Utc>, b: DateTime<Utc>| (b - a).num_milliseconds().max(0) as f64 / 1000.0;
    let (promoted, in_sync) = (f.promoted_at?, f.dns_in_sync_at?);
    let settled = f.capacity_settled.as_ref().map(|(_, t)| *t);
    Some(Rto {
        decide: s(f.detected_at, f.decided_at),
        promote: s(f.decided_at, promoted),
        capacity: settled.map(|t| s(promoted, t)),
        dns: s(settled.unwrap_or(promoted), in_sync),
        total: s(f.detected_at, in_sync),
    })
}

/// "within the RTO budget 15m" / "OVER the RTO budget 15m" / "" when no budget is set.
pub fn against_budget(measured: f64, budget: Option<f64>) -> String {
    match budget {
        Some(b) if measured <= b => format!("within the RTO budget {}", human_seconds(b)),
        Some(b) => format!("OVER the RTO budget {}", human_seconds(b)),
        None => String::new(),
    }
}

pub fn completed(cfg: &PromoterConfig, db: &DatabaseSpec, f: &Failover) -> Notice {
    let components = rto_components(f);
    let rto = components
        .map(|r| {
            format!(
                "RTO {} = detect->decide {} + promote {}{} + DNS {} (plus the alarm's own evaluation time before detection){}",
                human_seconds(r.total),
                human_seconds(r.decide),
                human_seconds(r.promote),
                r.capacity
                    .map(|c| format!(" + capacity {}", human_seconds(c)))
                    .unwrap_or_default(),
                human_seconds(r.dns),
                match against_budget(r.total, db.rto_seconds) {
                    b if b.is_empty() => b,
                    b => format!(": {b}"),
                }
            )
        })
        .unwrap_or_default();
    let body = format!(
        "Failover of {db} to {dr} completed. Traffic for {record} goes to {target}.\n\n\
         Timeline (UTC):\n{timeline}\n{rto}\n{capacity}\
         Estimated data loss (RPO): {rpo} (the last lag measured while replication worked; the limit for \
         automatic failover is {limit}).\n\n\
         What to do now: check the application against the new primary; rebuild a replica for it in \
         another region. Automatic failover of {db} stays off until a human acknowledges:\n  {ack}\n",
        db = db.name,
        dr = cfg.dr_region,
        record = record(db),
        target = f.target.as_deref().unwrap_or("?"),
        timeline = timeline(f),
        capacity = match &f.capacity_settled {
            Some((why, _)) if why != "ready" => format!(
                "The application's capacity in {} was NOT ready when DNS switched ({}):\n{}",
                cfg.dr_region,
                reason_head(why),
                capacity_lines(f)
            ),
            _ => String::new(),
        },
        rpo = rpo(f),
        limit = human_seconds(db.max_data_loss_seconds),
        ack = command(
            cfg,
            serde_json::json!({"action": "acknowledge", "database": db.name, "by": "YOUR NAME"})
        )
    );
    let total = components.map(|c| human_seconds(c.total)).unwrap_or_else(|| "?".into());
    let n = Notice::new(
        Severity::Critical,
        format!(
            "drpilot: FAILOVER completed: {} in {} (RTO {total})",
            db.name, cfg.dr_region
        ),
        body,
    )
    .with_sms(format!(
        "drpilot: failover of {} DONE, RTO {total}, est. data loss {}. Acknowledge to re-arm. id {}",
        db.name,
        rpo(f),
        f.id
    ));
    with_ids(n, db, f, "completed")
}

pub fn refused(cfg: &PromoterConfig, db: &DatabaseSpec, trigger: &str, d: &Decision) -> Notice {
    let gates = gates_text(d.gates.iter().map(|g| (g.passed, g.name.to_string(), g.detail.clone())));
    let what_to_do = if d.only_lag_failed() {
        format!(
            "Only the data-loss limit stopped the failover. If losing about {} of writes is better than staying down, \
             force it:\n  {}\n",
            d.estimated_rpo_seconds
                .map(human_seconds)
                .unwrap_or_else(|| "an unknown amount".into()),
            command(
                cfg,
                serde_json::json!({"action": "failover", "database": db.name, "force_data_loss": true, "reason": "accepting the data loss: WHY"})
            )
        )
    } else {
        format!(
            "Look at the failed checks above. To fail over by hand once you have decided:\n  {}\n",
            failover_command(cfg, db)
        )
    };
    let failed: Vec<&str> = d.failed_gates().iter().map(|g| g.name).collect();
    let body = format!(
        "drpilot is NOT failing over {db} automatically: manual decision needed.\nTrigger: {trigger}.\nChecks:\n{gates}\n{what_to_do}",
        db = db.name
    );
    // Routine work on the primary is the usual reason the alarm fires: say so up front.
    let why = match d.gates.iter().find(|g| g.name == MAINTENANCE && !g.passed) {
        Some(g) => g.detail.split(':').next().unwrap_or_default().to_string(),
        None => format!("{} failed", failed.join(", ")),
    };
    Notice::new(
        Severity::Critical,
        format!("drpilot: NOT failing over {}: {why}", db.name),
        body,
    )
    .with_sms(format!(
        "drpilot: {} NOT failed over ({} failed). Manual decision needed.",
        db.name,
        failed.join(", ")
    ))
    .with_attribute("database", db.name.clone())
    .with_attribute("step", "refused")
}

/// The database's member account cannot be entered (its role refuses drpilot): drpilot can
/// neither check nor promote it.
pub fn unreachable(cfg: &PromoterConfig, db: &DatabaseSpec, why: &str) -> Notice {
    let account = db.account.as_deref().unwrap_or("?");
    let body = format!(
        "drpilot is NOT failing over {name}: it cannot get into account {account}, where {name}'s primary and \
         standby are.\n{why}\n\nNothing was checked or changed. Fix the role (infra/modules/member in account \
         {account}: it must trust this deployment's role and ask for the external id in DRPILOT_ACCOUNTS), or \
         decide by hand in that account. Once drpilot can get in, fail over with:\n  {command}\n",
        name = db.name,
        command = failover_command(cfg, db)
    );
    Notice::new(
        Severity::Critical,
        format!("drpilot: NOT failing over {}: account {account} unreachable", db.name),
        body,
    )
    .with_sms(format!(
        "drpilot: {} NOT failed over: account {account} unreachable. Manual decision needed.",
        db.name
    ))
    .with_attribute("database", db.name.clone())
    .with_attribute("step", "unreachable")
}

pub fn advisory(cfg: &PromoterConfig, db: &DatabaseSpec, trigger: &str, d: &Decision, target: &str) -> Notice {
    let gates = gates_text(d.gates.iter().map(|g| (g.passed, g.name.to_string(), g.detail.clone())));
    let body =
        format!(
        "ADVISORY MODE: drpilot would promote {standby} in {dr} and point {record} at {target}{capacity}, but changes nothing.\n\
         Trigger: {trigger}.\nChecks:\n{gates}Estimated data loss: {rpo}.\n\
         To do it now:\n  {cmd}\n",
        standby = standby_name(&db.standby),
        dr = cfg.dr_region,
        record = record(db),
        capacity = match db.recovery.as_ref().filter(|p| !p.capacity.is_empty()) {
            Some(p) => format!(
                " after scaling {}",
                p.capacity
                    .iter()
                    .map(|g| format!("{} to {}", g.kind.label(&g.name), g.kind.size(g.size)))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            None => String::new(),
        },
        rpo = d.estimated_rpo_seconds.map(human_seconds).unwrap_or_else(|| "unknown".into()),
        cmd = failover_command(cfg, db)
    );
    Notice::new(
        Severity::Warning,
        format!("drpilot ADVISORY: would fail over {} to {}", db.name, cfg.dr_region),
        body,
    )
    .with_sms(format!(
        "drpilot advisory: would promote {} and point {} at it.",
        standby_name(&db.standby),
        record(db)
    ))
    .with_attribute("database", db.name.clone())
    .with_attribute("step", "advisory")
}

/// AWS answered the promotion request "not now" (the standby is busy): drpilot asks again.
/// Sent once per failover.
pub fn promotion_waits(
    cfg: &PromoterConfig,
    db: &DatabaseSpec,
    f: &Failover,
    standby: &crate::ports::StandbyState,
) -> Notice {
    let body = format!(
        "Failover {id} of {db}: AWS cannot promote {name} yet; it is {status}.\n\
         AWS says: {reason}.\n\
         drpilot asks again every {poll} or so (backing off) while the alarm that started this stays in ALARM, \
         and tells you when AWS accepts. Nothing needs doing unless this lasts.\n",
        id = f.id,
        db = db.name,
        name = standby_name(&db.standby),
        status = standby.status,
        reason = f.promote_waiting.as_deref().unwrap_or("?"),
        poll = human_seconds(cfg.poll_seconds as f64),
    );
    let n = Notice::new(
        Severity::Warning,
        format!("drpilot: failover of {} waits: standby is {}", db.name, standby.status),
        body,
    )
    .with_sms(format!(
        "drpilot: failover of {} waits for AWS ({} is {}); retrying. id {}",
        db.name,
        standby_name(&db.standby),
        standby.status,
        f.id
    ));
    with_ids(n, db, f, "waiting")
}

/// The failure ended before AWS accepted the promotion: nothing was changed.
pub fn aborted(cfg: &PromoterConfig, db: &DatabaseSpec, f: &Failover) -> Notice {
    let why = f.aborted.as_ref().map(|(w, _)| w.as_str()).unwrap_or("?");
    let body = format!(
        "Failover {id} of {db} is called off: {why}.\n\
         {name} in {dr} is still the replica it was.\n\
         If you still want to fail over:\n  {cmd}\n",
        id = f.id,
        db = db.name,
        name = standby_name(&db.standby),
        dr = cfg.dr_region,
        cmd = failover_command(cfg, db)
    );
    let n = Notice::new(
        Severity::Warning,
        format!("drpilot: failover of {} called off, nothing changed", db.name),
        body,
    )
    .with_sms(format!(
        "drpilot: failover of {} called off, primary back. id {}",
        db.name, f.id
    ));
    with_ids(n, db, f, "aborted")
}

/// The old primary is fenced: one writable primary again.
pub fn fenced(cfg: &PromoterConfig, db: &DatabaseSpec, f: &Failover) -> Notice {
    let (how, at) = f.fenced.clone().unwrap_or_default();
    let after = f.completed_at.map(|c| secs(c, at)).unwrap_or_else(|| "?".into());
    let body = format!(
        "{region} answers again, and the old primary of {db} is fenced: {how} at {at}, {after} after failover {id} completed.\n\
         Writes now go only to {name} in {dr}. {next}\n",
        next = match &db.standby {
            crate::model::Standby::AuroraGlobal { primary_cluster, .. } => format!(
                "Aurora rebuilds {primary_cluster} as a secondary; drpilot failback switches the global database back \
                 to it once it is in sync (nothing is replaced)."
            ),
            crate::model::Standby::RdsReplica { .. } => "RDS starts a stopped instance again after seven days: fail \
                 back before then (drpilot failback: the old primary is replaced by a replica of the new one)."
                .to_string(),
        },
        region = cfg.source_region,
        db = db.name,
        at = hms(at),
        id = f.id,
        name = standby_name(&db.standby),
        dr = cfg.dr_region,
    );
    let n = Notice::new(
        Severity::Warning,
        format!("drpilot: old primary of {} fenced", db.name),
        body,
    )
    .with_sms(format!(
        "drpilot: old primary of {} fenced ({how}). id {}",
        db.name, f.id
    ));
    with_ids(n, db, f, "fenced")
}

/// The old primary answers again and drpilot could not (or may not) fence it.
pub fn not_fenced(cfg: &PromoterConfig, db: &DatabaseSpec, f: &Failover) -> Notice {
    let why = f.fence_error.as_deref().unwrap_or("?");
    let body = format!(
        "SPLIT-BRAIN RISK: {region} answers again and the old primary of {db} is NOT fenced: {why}.\n\
         Applications that still reach it can write to it, and those writes are lost. Stop it, or block \
         its writes, now. drpilot tries again every minute and tells you when it is fenced.\n",
        region = cfg.source_region,
        db = db.name,
    );
    let n = Notice::new(
        Severity::Critical,
        format!("drpilot: old primary of {} NOT fenced: split-brain risk", db.name),
        body,
    )
    .with_sms(format!(
        "drpilot: old primary of {} back and NOT fenced. Split-brain risk. id {}",
        db.name, f.id
    ));
    with_ids(n, db, f, "not-fenced")
}

/// A step has taken far longer than AWS normally needs: a human should look. Sent once.
pub fn stuck(cfg: &PromoterConfig, db: &DatabaseSpec, f: &Failover, step: &str, seen: &str) -> Notice {
    let body = format!(
        "Failover {id} of {db} is still waiting for {step} after {waited}; AWS usually needs minutes.\n\
         Now: {seen}.\n\
         drpilot keeps waiting and finishes the failover by itself if it completes. Check the standby \
         in the console or with: aws rds describe-db-instances --region {dr} --db-instance-identifier {standby}\n\
         Failover status: {status}\n",
        id = f.id,
        db = db.name,
        waited = human_seconds(cfg.stuck_after_seconds as f64),
        dr = cfg.dr_region,
        standby = standby_name(&db.standby),
        status = command(cfg, serde_json::json!({"action": "status"}))
    );
    let n = Notice::new(
        Severity::Critical,
        format!("drpilot: failover of {} STUCK waiting for {step}", db.name),
        body,
    )
    .with_sms(format!(
        "drpilot: failover of {} stuck waiting for {step}. A human should look. id {}",
        db.name, f.id
    ));
    with_ids(n, db, f, "stuck")
}

pub fn acknowledged(db: &DatabaseSpec, f: &Failover, by: &str) -> Notice {
    let n = Notice::new(
        Severity::Info,
        format!("drpilot: failover of {} acknowledged by {by}", db.name),
        format!(
            "{by} acknowledged failover {}. Automatic failover of {} is armed again after the cooldown.\n",
            f.id, db.name
        ),
    );
    with_ids(n, db, f, "acknowledged")
}

#[cfg(test)]
mod tests {
    #[test]
    fn rto_against_budget() {
        assert_eq!(super::against_budget(600.0, Some(900.0)), "within the RTO budget 15m");
        assert_eq!(super::against_budget(900.0, Some(900.0)), "within the RTO budget 15m");
        assert_eq!(super::against_budget(901.0, Some(900.0)), "OVER the RTO budget 15m");
        assert_eq!(super::against_budget(901.0, None), "");
    }
}
