//! The status page: the dashboard as one self-contained HTML page (no script, no external
//! font, style or image) that a responder's phone opens while the primary region is down. The
//! verdict in words, every resource with its recovery point over the last 24 hours against its
//! budget (an inline SVG sparkline), each database's DR phase with its failover's timeline, the
//! last drill and the restore tests. `drpilot status --html FILE` writes it; the lag checker
//! can publish it to the DR state bucket every five periods.

use crate::config::DashboardConfig;
use crate::dashboard::{Dashboard, DatabaseRow, ResourceRow, Verdict};
use crate::error::Result;
use crate::lagcheck::metric;
use crate::plan::lag::{human_seconds, Datapoint};
use crate::ports::{DrSnapshotStore, MetricId, Metrics, PagePublisher, StandbyControl, StateStore};
use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use std::collections::BTreeMap;

/// The sparkline's window, in metric periods: 24 hours of one-minute periods on AWS.
pub const HISTORY_PERIODS: i64 = 24 * 60;
/// Each point of a sparkline is the worst (Maximum) recovery point of this many periods: 288
/// points a day, one GetMetricData for up to 350 resources.
pub const BUCKET_PERIODS: i64 = 5;
/// The sparkline's drawing box (SVG user units; it scales to the page's width).
pub const SPARK_WIDTH: f64 = 288.0;
pub const SPARK_HEIGHT: f64 = 40.0;
/// Where the page is published in the DR state bucket (under the deployment's state prefix).
pub const PAGE_OBJECT: &str = "status/index.html";

/// Each resource's recovery point over the window, oldest first, or why it could not be read.
#[derive(Debug, Clone)]
pub struct History {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket_seconds: i64,
    pub series: BTreeMap<String, std::result::Result<Vec<Datapoint>, String>>,
    /// Why there is no history at all (CloudWatch refused the whole read).
    pub unavailable: Option<String>,
}

impl History {
    /// No history, and why: the page without sparklines, saying so in each resource's row.
    pub fn unavailable(cfg: &DashboardConfig, to: DateTime<Utc>, why: String) -> Self {
        let period = i64::from(cfg.metric_period_seconds);
        History {
            from: to - Duration::seconds(period * HISTORY_PERIODS),
            to,
            bucket_seconds: period * BUCKET_PERIODS,
            series: BTreeMap::new(),
            unavailable: Some(why),
        }
    }
}

/// Reads every resource's `RecoveryPointSeconds` over the last `HISTORY_PERIODS` periods.
pub async fn history<M: Metrics>(cfg: &DashboardConfig, metrics: &M, now: DateTime<Utc>) -> Result<History> {
    let period = i64::from(cfg.metric_period_seconds);
    let bucket = period * BUCKET_PERIODS;
    // Whole buckets, the last one holding now: CloudWatch truncates times to the second, so a
    // window ending at `now` could miss a datapoint published within this very second.
    let end = (now.timestamp().div_euclid(bucket) + 1) * bucket;
    let to = DateTime::from_timestamp(end, 0).unwrap_or(now);
    let from = to - Duration::seconds(period * HISTORY_PERIODS);
    let ids: Vec<MetricId> = cfg
        .resources
        .iter()
        .map(|r| {
            MetricId::new(
                &cfg.namespace,
                metric::RECOVERY_POINT,
                &[(metric::DIMENSION, r.name.as_str())],
            )
        })
        .collect();
    let answers = metrics.series_each(&ids, bucket as u32, from, to).await?;
    let series = cfg
        .resources
        .iter()
        .zip(answers)
        .map(|(r, a)| (r.name.clone(), a.map_err(|e| e.to_string())))
        .collect();
    Ok(History {
        from,
        to,
        bucket_seconds: bucket,
        series,
        unavailable: None,
    })
}

/// The top of a sparkline's scale: its budget or its worst point, whichever is higher, with a
/// quarter's headroom (so the budget line is never the frame's edge).
pub fn scale_top(points: &[Datapoint], budget: f64) -> f64 {
    let top = points.iter().map(|p| p.value).fold(budget, f64::max) * 1.25;
    if top > 0.0 {
        top
    } else {
        1.0
    }
}

/// The sparkline's polylines: one per unbroken run of datapoints (a gap longer than two
/// buckets, when nothing was measured, breaks the line), each as SVG `points`.
pub fn polylines(h: &History, points: &[Datapoint], budget: f64) -> Vec<String> {
    let span = (h.to - h.from).num_milliseconds().max(1) as f64;
    let top = scale_top(points, budget);
    let mut lines: Vec<Vec<String>> = vec![];
    let mut last: Option<DateTime<Utc>> = None;
    for p in points.iter().filter(|p| p.at >= h.from && p.at <= h.to) {
        let x = (p.at - h.from).num_milliseconds() as f64 / span * SPARK_WIDTH;
        let y = SPARK_HEIGHT - p.value.max(0.0) / top * SPARK_HEIGHT;
        let broken = last.is_none_or(|l| (p.at - l).num_seconds() > 2 * h.bucket_seconds);
        if broken {
            lines.push(vec![]);
        }
        if let Some(line) = lines.last_mut() {
            line.push(format!("{x:.1},{y:.1}"));
        }
        last = Some(p.at);
    }
    // A lone point is drawn as a dot: a line of no length, with round caps.
    lines
        .into_iter()
        .map(|l| match l.as_slice() {
            [one] => format!("{one} {one}"),
            _ => l.join(" "),
        })
        .collect()
}

const STYLE: &str = r#"
:root { color-scheme: light; --ok: #1b7f3b; --warn: #8a5100; --bad: #b3261e; --line: #8884; }
* { box-sizing: border-box; }
body { font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; padding: 1rem; max-width: 72rem; }
h1 { font-size: 1.6rem; margin: .2rem 0; }
h2 { font-size: 1.2rem; margin: 1.6rem 0 .4rem; border-bottom: 1px solid var(--line); }
.verdict { padding: .8rem 1rem; border-radius: .4rem; border: 3px solid; }
.verdict.protected { border-color: var(--ok); }
.verdict.at-risk { border-color: var(--warn); }
.verdict.not-protected { border-color: var(--bad); }
.word { font-weight: 700; letter-spacing: .02em; }
.protected .word, .word.healthy, .word.pass { color: var(--ok); }
.at-risk .word, .word.breached, .word.unknown { color: var(--warn); }
.not-protected .word, .word.broken, .word.stale, .word.fail { color: var(--bad); }
.meta { color: #555; font-size: .9rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem; border-bottom: 1px solid var(--line); }
td, li, .meta { overflow-wrap: anywhere; }
svg.spark { width: 100%; max-width: 18rem; height: 2.5rem; display: block; }
svg.spark polyline { fill: none; stroke: currentColor; stroke-width: 2; stroke-linecap: round; stroke-linejoin: round; vector-effect: non-scaling-stroke; }
svg.spark line.budget { stroke: var(--bad); stroke-dasharray: 4 3; vector-effect: non-scaling-stroke; }
ol.timeline { margin: .3rem 0; padding-left: 1.2rem; }
ol.timeline time { font-variant-numeric: tabular-nums; }
@media (max-width: 40rem) {
  table, thead, tbody, tr, th, td { display: block; }
  thead { position: absolute; left: -9999px; }
  tr { border: 1px solid var(--line); border-radius: .4rem; margin: 0 0 .8rem; padding: .3rem; }
  td { border: none; padding: .2rem .3rem; }
  td[data-label]::before { content: attr(data-label) ": "; font-weight: 600; }
}
"#;

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Protected => "protected",
        Verdict::AtRisk => "at-risk",
        Verdict::NotProtected => "not-protected",
    }
}

/// A sign before the verdict's word (the word carries the meaning; the sign and colour help).
fn verdict_sign(v: Verdict) -> &'static str {
    match v {
        Verdict::Protected => "\u{2714}",
        Verdict::AtRisk => "\u{26a0}",
        Verdict::NotProtected => "\u{2716}",
    }
}

fn seconds(v: Option<f64>) -> String {
    v.map(human_seconds).unwrap_or_else(|| "not measured".into())
}

fn sparkline(h: &History, r: &ResourceRow) -> Markup {
    let window = human_seconds((h.to - h.from).num_seconds() as f64);
    if let Some(why) = &h.unavailable {
        return html! { span.meta { "no history: " (why) } };
    }
    let points = match h.series.get(&r.name) {
        Some(Ok(points)) if !points.is_empty() => points,
        Some(Err(e)) => return html! { span.meta { "no history: CloudWatch: " (e) } },
        _ => return html! { span.meta { "no recovery point measured in the last " (window) } },
    };
    let top = scale_top(points, r.rpo_seconds);
    let budget_y = SPARK_HEIGHT - r.rpo_seconds / top * SPARK_HEIGHT;
    let worst = points.iter().map(|p| p.value).fold(f64::MIN, f64::max);
    let over = points.iter().filter(|p| p.value > r.rpo_seconds).count();
    // the newest with its time (a point is the worst of its five minutes): while replication
    // is broken nothing is published, and the newest point is the last measured before the break
    let newest = points.last().map_or_else(String::new, |p| {
        format!(
            "{} in the {} from {}",
            human_seconds(p.value),
            human_seconds(h.bucket_seconds as f64),
            p.at.format("%m-%d %H:%MZ")
        )
    });
    let label = format!(
        "Recovery point over the last {window}: worst {}, newest {newest}, budget {}; {over} of {} points over budget",
        human_seconds(worst),
        human_seconds(r.rpo_seconds),
        points.len()
    );
    html! {
        svg.spark viewBox=(format!("0 0 {SPARK_WIDTH} {SPARK_HEIGHT}")) preserveAspectRatio="none"
            role="img" aria-label=(label) data-top=(format!("{top}")) {
            title { (label) }
            line.budget x1="0" x2=(SPARK_WIDTH) y1=(format!("{budget_y:.1}")) y2=(format!("{budget_y:.1}")) {}
            @for line in polylines(h, points, r.rpo_seconds) {
                polyline points=(line) {}
            }
        }
        span.meta { "worst " (human_seconds(worst)) " in " (window) "; dashed: budget" }
    }
}

fn resources(board: &Dashboard, h: &History) -> Markup {
    let history = format!("Last {}", human_seconds((h.to - h.from).num_seconds() as f64));
    html! {
        h2 { "Resources (recovery point against the RPO budget)" }
        table {
            thead { tr {
                th scope="col" { "Resource" } th scope="col" { "Status" } th scope="col" { "Recovery point" }
                th scope="col" { "Budget" }
                th scope="col" { (history) }
                th scope="col" { "Newest DR copy" }
            } }
            tbody {
                @for r in &board.resources {
                    tr id=(format!("resource-{}", r.name)) {
                        td data-label="Resource" { strong { (r.name) } br; span.meta { (r.kind) } }
                        td data-label="Status" {
                            span.word.(r.status) { (r.status.to_uppercase()) }
                            @if let Some(since) = &r.since { br; span.meta { "since " (since) } }
                        }
                        td data-label="Recovery point" { (seconds(r.recovery_point_seconds)) }
                        td data-label="Budget" { (human_seconds(r.rpo_seconds)) }
                        td data-label=(history) { (sparkline(h, r)) }
                        td data-label="Newest DR copy" {
                            @match (&r.newest_dr_copy, r.newest_dr_copy_age_seconds) {
                                (Some(id), Some(age)) => { (id) " (" (human_seconds(age)) " old)" }
                                _ => { "-" }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn database(d: &DatabaseRow) -> Markup {
    html! {
        section id=(format!("database-{}", d.name)) {
            h3 { (d.name) " " span.meta { "standby " (d.standby) } }
            p {
                "Phase: " span.word { (d.phase.to_uppercase()) }
                @if let Some(detail) = &d.phase_detail { " (" (detail) ")" }
                br;
                "Failover: " span.word { (d.failover.to_uppercase()) }
                @if let Some(detail) = &d.failover_detail { " " (detail) }
                @if d.old_primary_unfenced { br; strong { "Split-brain risk: the old primary is NOT FENCED." } }
                @if let Some(until) = &d.disarmed_until { br; "Automatic failover disarmed by an operator until " (until) "." }
                br;
                "Last drill: "
                @match &d.last_drill {
                    None => { span.word.fail { "NEVER" } }
                    Some(x) => {
                        @let word = if x.passed { "pass" } else { "fail" };
                        span.word.(word) { (word.to_uppercase()) }
                        " " (crate::model::stamp(x.at))
                        " (RTO " (seconds(x.rto_seconds)) ", data lost " (seconds(x.rpo_seconds)) ")"
                        @if let Some(fb) = &x.failback { "; failback: " (fb) }
                    }
                }
            }
            @if !d.timeline.is_empty() {
                p { "Newest failover's timeline (UTC):" }
                ol.timeline {
                    @for e in &d.timeline {
                        li { time datetime=(e.at) { (e.at) } " " (e.what) }
                    }
                }
            }
        }
    }
}

fn verifications(board: &Dashboard) -> Markup {
    html! {
        h2 { "Restore tests" }
        table {
            thead { tr {
                th scope="col" { "Backup" } th scope="col" { "Last" } th scope="col" { "Finished" }
                th scope="col" { "Restore took" } th scope="col" { "Data age" } th scope="col" { "Detail" }
            } }
            tbody {
                @for v in &board.verifications {
                    @let last = v.last.as_ref();
                    tr {
                        td data-label="Backup" { (v.db) " " span.meta { (v.kind) } }
                        td data-label="Last" {
                            @match last {
                                None => { span.word.fail { "NEVER" } }
                                Some(l) if l.passed => { span.word.pass { "VERIFIED" } }
                                Some(_) => { span.word.fail { "FAILED" } }
                            }
                        }
                        td data-label="Finished" { (last.map(|l| crate::model::stamp(l.finished)).unwrap_or_else(|| "-".into())) }
                        td data-label="Restore took" { (last.and_then(|l| l.restore_seconds).map(human_seconds).unwrap_or_else(|| "-".into())) }
                        td data-label="Data age" { (last.and_then(|l| l.copy_age_seconds).map(human_seconds).unwrap_or_else(|| "-".into())) }
                        td data-label="Detail" {
                            (v.in_progress.clone().or_else(|| last.and_then(|l| l.failure.clone())).or_else(|| v.risk.clone()).unwrap_or_else(|| "-".into()))
                        }
                    }
                }
            }
        }
    }
}

/// The page. It never reloads itself: a published page is read through a presigned link that
/// expires, and a reload after that would replace the last good page with S3's refusal.
pub fn render(board: &Dashboard, h: &History) -> String {
    let v = board.verdict;
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // nothing but the page's own style, even if a text ever escaped escaping
                meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'";
                title { "DR " (v.as_str()) " - drpilot " (board.primary_region) " to " (board.dr_region) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header.verdict.(verdict_class(v)) aria-label="Verdict" {
                    h1 { span aria-hidden="true" { (verdict_sign(v)) " " } "DR status: " span.word { (v.as_str()) } }
                    div.meta {
                        "Primary " (board.primary_region) ", DR " (board.dr_region) ". As of "
                        time datetime=(board.at) { (board.at) } " UTC. This page does not change by itself: " code { "drpilot status" } " (or "
                        code { "drpilot status --url" } " for the newest published page) says how things are now."
                    }
                    @if board.reasons.is_empty() {
                        p { "Every resource is within its RPO budget and every database is ready to fail over." }
                    } @else {
                        ul { @for r in &board.reasons { li { (r) } } }
                    }
                }
                main {
                    (resources(board, h))
                    @if !board.databases.is_empty() {
                        h2 { "Databases (failover)" }
                        @for d in &board.databases { (database(d)) }
                    }
                    @if !board.verifications.is_empty() { (verifications(board)) }
                }
                footer.meta { p { "drpilot " (env!("CARGO_PKG_VERSION")) ". Text from the same state as " code { "drpilot status" } "." } }
            }
        }
    };
    page.into_string()
}

/// What the dashboard and the page read, all in the DR region (they must work while the
/// primary region is dark), and where the page is published.
pub struct StatusPorts<M, D, S, C> {
    pub metrics: M,
    pub copies: D,
    pub state: S,
    pub standbys: C,
}

impl
    StatusPorts<
        crate::aws::cloudwatch::CloudWatchMetrics,
        crate::aws::rds::RdsDr,
        crate::aws::s3::S3State,
        crate::aws::rds::RdsStandby,
    >
{
    pub fn aws(sdk: &aws_config::SdkConfig, cfg: &DashboardConfig) -> Self {
        use crate::aws::{cloudwatch, rds, s3};
        let s3 = s3::client_in(sdk, &cfg.dr_region, cfg.s3_force_path_style);
        StatusPorts {
            metrics: cloudwatch::CloudWatchMetrics::new(sdk, &cfg.dr_region),
            copies: rds::RdsDr::new(rds::client_in(sdk, &cfg.dr_region)),
            state: s3::S3State::new(s3, &cfg.state.bucket),
            standbys: rds::RdsStandby::new(rds::client_in(sdk, &cfg.dr_region)),
        }
    }
}

impl<M, D, S, C> StatusPorts<M, D, S, C>
where
    M: Metrics,
    D: DrSnapshotStore,
    S: StateStore + PagePublisher,
    C: StandbyControl,
{
    /// `drpilot status`'s board.
    pub async fn board(&self, cfg: &DashboardConfig, now: DateTime<Utc>) -> Result<Dashboard> {
        crate::dashboard::gather(cfg, &self.metrics, &self.copies, &self.state, &self.standbys, now).await
    }

    /// The page, with its sparklines; without them, saying why, when CloudWatch cannot
    /// serve the history (the board itself matters more than its past).
    pub async fn page(&self, cfg: &DashboardConfig, board: &Dashboard, now: DateTime<Utc>) -> String {
        let h = history(cfg, &self.metrics, now)
            .await
            .unwrap_or_else(|e| History::unavailable(cfg, now, format!("CloudWatch: {e}")));
        render(board, &h)
    }

    /// What the lag checker does after its runs with `DRPILOT_STATUS_PAGE` on: unless the
    /// published page is younger than `BUCKET_PERIODS` periods (five minutes on AWS: a
    /// sparkline's point), gathers the board and publishes the page. So one run in five pays
    /// for the page (a `HeadObject` in the others). Returns the key written, if any.
    pub async fn publish_when_due(&self, cfg: &DashboardConfig, now: DateTime<Utc>) -> Result<Option<String>> {
        let key = cfg.state.key(PAGE_OBJECT);
        if !due(self.state.page_written(&key).await?, cfg.metric_period_seconds, now) {
            return Ok(None);
        }
        let board = self.board(cfg, now).await?;
        self.state.put_page(&key, self.page(cfg, &board, now).await).await?;
        Ok(Some(key))
    }
}

/// Whether a page written at `written` is old enough to be written again: half a period short
/// of `BUCKET_PERIODS` periods, so that a schedule's jitter of a second does not skip a slot.
pub fn due(written: Option<DateTime<Utc>>, period_seconds: u32, now: DateTime<Utc>) -> bool {
    let every = Duration::milliseconds(i64::from(period_seconds) * (BUCKET_PERIODS * 1000 - 500));
    written.is_none_or(|w| now - w >= every)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::{TimelineEntry, VerificationRow};
    use crate::promoter::drill::DrillSummary;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn resource(name: &str, status: &str, point: Option<f64>, budget: f64) -> ResourceRow {
        ResourceRow {
            name: name.into(),
            kind: "rds-replica".into(),
            status: status.into(),
            since: Some("2026-11-27T23:40:00Z".into()),
            recovery_point_seconds: point,
            rpo_seconds: budget,
            newest_dr_copy: None,
            newest_dr_copy_age_seconds: None,
        }
    }

    /// A night seen from the morning after: orders failed over and is awaiting acknowledgement,
    /// its replica is over budget, billing's history could not be read.
    fn seeded() -> (Dashboard, History, Vec<Datapoint>) {
        let at = |s: i64| t0() + Duration::seconds(s);
        let board = Dashboard {
            at: "2026-11-28T00:00:00Z".into(),
            primary_region: "us-east-1".into(),
            dr_region: "us-west-2".into(),
            verdict: Verdict::AtRisk,
            reasons: vec![
                "orders-replica is over its RPO budget".into(),
                "orders: failed over; automatic failover is disarmed until acknowledged <b>now</b>".into(),
            ],
            resources: vec![
                resource("orders-replica", "breached", Some(95.0), 60.0),
                resource("billing", "healthy", Some(2.0), 300.0),
            ],
            databases: vec![DatabaseRow {
                name: "orders".into(),
                standby: "orders-dr".into(),
                failover: "awaiting-acknowledgement".into(),
                failover_detail: Some("f-1 completed 2026-11-27T03:12:40Z".into()),
                phase: "failed over".into(),
                phase_detail: None,
                old_primary_unfenced: false,
                disarmed_until: None,
                last_drill: Some(DrillSummary {
                    at: at(-86_400 * 10),
                    passed: true,
                    rto_seconds: Some(412.0),
                    rpo_seconds: Some(0.0),
                    failback: None,
                }),
                timeline: vec![
                    TimelineEntry {
                        at: "2026-11-27T03:01:10Z".into(),
                        what: "failure detected (alarm orders-primary-down)".into(),
                    },
                    TimelineEntry {
                        at: "2026-11-27T03:12:40Z".into(),
                        what: "completed".into(),
                    },
                ],
            }],
            verifications: vec![VerificationRow {
                db: "orders-db".into(),
                kind: "instance".into(),
                last: None,
                in_progress: None,
                risk: Some("never verified".into()),
            }],
        };
        // Four buckets, then nothing for an hour (the lag checker did not run), then two more.
        let points: Vec<Datapoint> = [
            (0, 10.0),
            (300, 30.0),
            (600, 90.0),
            (900, 45.0),
            (5_400, 20.0),
            (5_700, 95.0),
        ]
        .into_iter()
        .map(|(s, value)| Datapoint { at: at(s), value })
        .collect();
        let history = History {
            from: t0(),
            to: t0() + Duration::hours(24),
            bucket_seconds: 300,
            series: BTreeMap::from([
                ("orders-replica".to_string(), Ok(points.clone())),
                (
                    "billing".to_string(),
                    Err("GetMetricData: Throttling: slow down".to_string()),
                ),
            ]),
            unavailable: None,
        };
        (board, history, points)
    }

    /// Every `points="..."` of the page's polylines, as (x, y) pairs.
    fn polylines_in(page: &str) -> Vec<Vec<(f64, f64)>> {
        page.split("<polyline points=\"")
            .skip(1)
            .map(|rest| {
                rest[..rest.find('"').unwrap()]
                    .split(' ')
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_page_says_the_verdict_in_words_names_every_resource_and_shows_the_timeline() {
        let (board, history, _) = seeded();
        let page = render(&board, &history);
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert!(
            page.contains("DR status: <span class=\"word\">AT RISK</span>"),
            "{page}"
        );
        assert!(page.contains("<title>DR AT RISK - drpilot us-east-1 to us-west-2</title>"));
        for r in &board.resources {
            assert!(page.contains(&format!("id=\"resource-{}\"", r.name)), "{}", r.name);
        }
        assert!(page.contains(">BREACHED<") && page.contains(">HEALTHY<"));
        assert!(page.contains("orders-replica is over its RPO budget"));
        // text is escaped: a reason cannot inject markup
        assert!(page.contains("&lt;b&gt;now&lt;/b&gt;") && !page.contains("<b>now"));
        // the failover's timeline, in order, with machine-readable times
        let detected = page
            .find("<time datetime=\"2026-11-27T03:01:10Z\">2026-11-27T03:01:10Z</time> failure detected (alarm orders-primary-down)")
            .expect("the timeline's first step");
        let completed = page.find("</time> completed</li>").expect("the timeline's last step");
        assert!(detected < completed);
        assert!(page.contains("AWAITING-ACKNOWLEDGEMENT") && page.contains("FAILED OVER"));
        assert!(
            page.contains(">PASS</span> 2026-11-17T00:00:00Z (RTO 6m52s, data lost 0s)"),
            "{page}"
        );
        // the restore tests: never verified, in words
        assert!(page.contains(">NEVER<") && page.contains("never verified"));
        // history that could not be read says so, in that resource's row
        assert!(page.contains("no history: CloudWatch: GetMetricData: Throttling: slow down"));
        // self-contained and readable on a phone
        assert!(page.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
        for external in ["<script", "src=", "href=", "@import", "url("] {
            assert!(!page.contains(external), "{external} in the page");
        }
        assert!(
            !page.contains("http-equiv=\"refresh\""),
            "a page read through a link that expires never reloads"
        );
        assert!(page.contains("Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\""));
    }

    /// One `series_each` call: the metrics, the period, the window.
    type Ask = (Vec<MetricId>, u32, DateTime<Utc>, DateTime<Utc>);

    /// A CloudWatch that records what it was asked, and answers with nothing.
    struct Asked(std::sync::Mutex<Vec<Ask>>);

    impl Metrics for Asked {
        async fn newest_each(
            &self,
            _: &[MetricId],
            _: u32,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
        ) -> Result<Vec<Result<Option<Datapoint>>>> {
            Ok(vec![])
        }
        async fn series_each(
            &self,
            ids: &[MetricId],
            period: u32,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
        ) -> Result<Vec<Result<Vec<Datapoint>>>> {
            self.0.lock().unwrap().push((ids.to_vec(), period, from, to));
            Ok(ids.iter().map(|_| Ok(vec![])).collect())
        }
        async fn publish(&self, _: &str, _: &[crate::ports::MetricValue]) -> Result<()> {
            Ok(())
        }
    }

    fn dashboard_cfg(period: &'static str) -> DashboardConfig {
        DashboardConfig::from_vars(&std::collections::HashMap::from([
            ("DRPILOT_SOURCE_REGION", "us-east-1"),
            ("DRPILOT_DR_REGION", "us-west-2"),
            ("DRPILOT_STATE_BUCKET", "state"),
            ("DRPILOT_METRIC_PERIOD_SECONDS", period),
            (
                "DRPILOT_RESOURCES",
                r#"[{"name": "orders", "kind": "rds-replica", "replica": "orders-dr", "rpo_seconds": 60},
                    {"name": "ledger", "kind": "aurora-global", "cluster": "ledger-dr", "rpo_seconds": 5}]"#,
            ),
        ]))
        .unwrap()
    }

    #[tokio::test]
    async fn the_history_is_a_days_five_minute_maxima_of_each_recovery_point_in_whole_buckets() {
        let now = DateTime::parse_from_rfc3339("2026-11-28T10:02:30.400Z")
            .unwrap()
            .with_timezone(&Utc);
        let asked = Asked(Default::default());
        let h = history(&dashboard_cfg("60"), &asked, now).await.unwrap();
        let (ids, period, from, to) = asked.0.lock().unwrap().pop().unwrap();
        assert_eq!(period, 300);
        // the bucket holding now is whole (a datapoint of this very second is inside it)
        assert_eq!(to, DateTime::parse_from_rfc3339("2026-11-28T10:05:00Z").unwrap());
        assert_eq!(to - from, Duration::hours(24));
        assert_eq!((h.from, h.to, h.bucket_seconds), (from, to, 300));
        let one = |r: &str| MetricId::new("drpilot", "RecoveryPointSeconds", &[("Resource", r)]);
        assert_eq!(ids, vec![one("orders"), one("ledger")]);
        // the test bed's scaled clock keeps the shape: 1,440 periods, five to a point
        asked.0.lock().unwrap().clear();
        let h = history(&dashboard_cfg("3"), &asked, now).await.unwrap();
        assert_eq!((h.to - h.from, h.bucket_seconds), (Duration::seconds(4_320), 15));
    }

    #[test]
    fn without_its_history_the_page_still_stands_and_says_why() {
        let (board, _, _) = seeded();
        let cfg = dashboard_cfg("60");
        let h = History::unavailable(&cfg, t0(), "CloudWatch: GetMetricData: Throttling".into());
        let page = render(&board, &h);
        assert!(page.contains("AT RISK") && !page.contains("<polyline"));
        assert_eq!(
            page.matches("no history: CloudWatch: GetMetricData: Throttling")
                .count(),
            2,
            "{page}"
        );
    }

    #[test]
    fn a_page_is_written_again_once_it_is_a_sparkline_point_old() {
        let now = t0();
        let ago = |s: i64| Some(now - Duration::seconds(s));
        assert!(due(None, 60, now), "none yet");
        assert!(!due(ago(60), 60, now) && !due(ago(269), 60, now));
        assert!(
            due(ago(270), 60, now),
            "four and a half minutes: the fifth run's jitter does not skip it"
        );
        assert!(due(ago(300), 60, now));
        assert!(!due(ago(13), 3, now) && due(ago(14), 3, now), "scaled");
    }

    #[test]
    fn the_sparkline_draws_each_datapoint_at_its_time_and_value_and_breaks_where_none_were_measured() {
        let (board, history, points) = seeded();
        let page = render(&board, &history);
        let lines = polylines_in(&page);
        assert_eq!(lines.len(), 2, "an hour without datapoints breaks the line: {lines:?}");
        assert_eq!(lines.iter().map(Vec::len).collect::<Vec<_>>(), [4, 2]);
        // The frame is 288 x 40 for 24 hours; its top is the worst point (95 s, over the
        // 60 s budget) with a quarter's headroom.
        let top = 95.0 * 1.25;
        let drawn = lines.concat();
        for (p, (x, y)) in points.iter().zip(drawn) {
            let seconds = x / 288.0 * 86_400.0;
            let value = (40.0 - y) / 40.0 * top;
            let want = (p.at - t0()).num_seconds() as f64;
            assert!(
                (seconds - want).abs() <= 15.0,
                "x {x} is {seconds} s, the datapoint is at {want} s"
            );
            assert!(
                (value - p.value).abs() <= 0.2,
                "y {y} is {value}, the datapoint is {}",
                p.value
            );
        }
        // the budget's line: 60 s on that scale
        let budget_y = 40.0 - 60.0 / top * 40.0;
        assert!(page.contains(&format!("y1=\"{budget_y:.1}\"")), "{page}");
        // and in words, for a screen reader
        assert!(
            page.contains("worst 95s, newest 95s in the 5m from 11-27 01:35Z, budget 60s; 2 of 6 points over budget"),
            "{page}"
        );
    }
}
