//! The simulator's control API (`tests/emulator/drsim`, under `/drsim/` on the emulator's
//! address): switch its models per region, take a region dark, inject faults, and read the
//! wire log of everything that reached "AWS".

use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Clone)]
pub struct Simulator {
    http: reqwest::Client,
    base: String,
}

/// How a dark region fails its callers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outage {
    /// The connection closes without an answer.
    Reset,
    /// The request hangs for `hold` seconds, then the connection closes.
    Timeout { hold_seconds: f64 },
    /// HTTP 503 ServiceUnavailable.
    Unavailable,
}

/// Route 53's answer to a DNS query (the simulator's resolver).
#[derive(Debug, Clone, Deserialize)]
pub struct DnsAnswer {
    pub values: Vec<String>,
    /// PRIMARY, SECONDARY or simple.
    pub record: String,
    pub why: String,
}

/// One request as it reached the simulated AWS.
#[derive(Debug, Clone, Deserialize)]
pub struct WireEntry {
    pub seq: u64,
    /// Unix time the request arrived.
    pub at: f64,
    pub region: Option<String>,
    /// The account the request's credentials belong to.
    #[serde(default)]
    pub account: Option<String>,
    /// The access key that signed it (which process sent it, when each has its own).
    #[serde(default)]
    pub access_key: Option<String>,
    pub service: Option<String>,
    pub action: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// 0 when the connection was dropped (outage, injected reset).
    pub status: u16,
    pub error: Option<String>,
    /// answered | injected | region-dark
    pub outcome: String,
}

impl WireEntry {
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// What reached AWS during some stretch of time.
#[derive(Debug, Clone, Default)]
pub struct Wire(pub Vec<WireEntry>);

impl Wire {
    pub fn calls<'a>(&'a self, action: &'a str) -> impl Iterator<Item = &'a WireEntry> + 'a {
        self.0.iter().filter(move |e| e.action.as_deref() == Some(action))
    }

    /// Requests of `action` that AWS answered with success: what took effect.
    pub fn accepted(&self, action: &str) -> usize {
        self.calls(action).filter(|e| e.accepted()).count()
    }

    pub fn count(&self, action: &str) -> usize {
        self.calls(action).count()
    }
}

/// A replica's (or primary's) replication, as the simulator models it.
#[derive(Debug, Clone, Deserialize)]
pub struct Replication {
    pub writer: Option<Writer>,
    pub replica: Option<ReplicaState>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Writer {
    pub position: f64,
    pub takes_writes: bool,
    pub last_write_at: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReplicaState {
    pub applied: f64,
    pub link: String,
    pub promoted_at: Option<f64>,
    /// Writes the primary has that this replica has not (what a failover to it loses).
    pub behind_writes: f64,
    /// The same, as seconds of the primary's writing.
    pub behind_seconds: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AlarmChange {
    pub state: String,
    pub at: f64,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CopiesInFlight {
    pub in_flight: u32,
    pub max_in_flight: u32,
    pub quota: u32,
}

/// A region's settings, reset when dropped.
pub struct RegionSettings(String);

/// A dark region, back when dropped.
pub struct DarkRegion(String);

/// Runs `f` on the simulator from a thread of its own: usable in `Drop`, also while a failed
/// assertion unwinds.
pub(crate) fn blocking<F, Fut>(f: F)
where
    F: FnOnce(Simulator) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            rt.block_on(f(Simulator::connect()));
        }
    })
    .join()
    .ok();
}

impl Drop for RegionSettings {
    fn drop(&mut self) {
        let region = self.0.clone();
        blocking(|sim| async move { sim.reset_region(&region).await });
    }
}

impl Drop for DarkRegion {
    fn drop(&mut self) {
        let region = self.0.clone();
        blocking(|sim| async move { sim.region_returns(&region).await });
    }
}

impl Default for Simulator {
    fn default() -> Self {
        Self::connect()
    }
}

impl Simulator {
    pub fn connect() -> Self {
        Simulator {
            http: reqwest::Client::new(),
            base: format!("{}/drsim", crate::emulator_url()),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("simulator control API {method} {path}: {e}"));
        let status = resp.status();
        let value: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "simulator control API {method} {path}: {status} {value}"
        );
        value
    }

    /// Settings of one region's models (`"*"`: every region); see `drsim/core.py` DEFAULTS.
    pub async fn configure(&self, region: &str, settings: Value) -> Value {
        self.call(reqwest::Method::PUT, &format!("/regions/{region}"), Some(settings))
            .await
    }

    /// Like `configure`, for as long as the returned guard lives (dropped, even by a failing
    /// test, the region gets the defaults back).
    pub async fn configure_for(&self, region: &str, settings: Value) -> RegionSettings {
        self.configure(region, settings).await;
        RegionSettings(region.to_string())
    }

    /// Drops a region's settings: its models behave as the defaults say again.
    pub async fn reset_region(&self, region: &str) {
        self.call(reqwest::Method::DELETE, &format!("/regions/{region}"), None)
            .await;
    }

    /// Every request signed for `region` fails as `outage` says, until `region_returns`.
    /// `writes_continue`: the primary keeps taking writes inside the region (a partition).
    pub async fn region_goes_dark(&self, region: &str, outage: Outage, writes_continue: bool) {
        let mut body = match outage {
            Outage::Reset => json!({"mode": "reset"}),
            Outage::Timeout { hold_seconds } => json!({"mode": "timeout", "hold_seconds": hold_seconds}),
            Outage::Unavailable => json!({"mode": "unavailable"}),
        };
        body["writes_continue"] = writes_continue.into();
        self.call(reqwest::Method::POST, &format!("/outages/{region}"), Some(body))
            .await;
    }

    /// Like `region_goes_dark`, and the global services whose API lives in `region` fail too
    /// (for us-east-1: Route 53's control plane). Route 53's data plane, its resolvers and
    /// health checks, goes on answering.
    pub async fn region_goes_dark_with_global_services(&self, region: &str) {
        let body = json!({"mode": "reset", "include_global": true});
        self.call(reqwest::Method::POST, &format!("/outages/{region}"), Some(body))
            .await;
    }

    /// What Route 53's resolvers answer for `name` in hosted zone `zone` now.
    pub async fn resolve(&self, zone: &str, name: &str) -> DnsAnswer {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/route53/zones/{zone}/resolve/{}", name.trim_end_matches('.')),
                None,
            )
            .await;
        serde_json::from_value(v).expect("a DNS answer")
    }

    /// A network partition: `region` is cut off from the other regions (its API as drpilot
    /// calls it, cross-region replication), not from the internet: Route 53's health
    /// checkers still reach its endpoints, and its databases keep taking writes.
    pub async fn region_partitioned(&self, region: &str) {
        let body = json!({"mode": "reset", "partition": true});
        self.call(reqwest::Method::POST, &format!("/outages/{region}"), Some(body))
            .await;
    }

    /// Like `region_goes_dark`, for as long as the returned guard lives.
    pub async fn dark_while(&self, region: &str, outage: Outage) -> DarkRegion {
        self.region_goes_dark(region, outage, false).await;
        DarkRegion(region.to_string())
    }

    pub async fn region_returns(&self, region: &str) {
        self.call(reqwest::Method::DELETE, &format!("/outages/{region}"), None)
            .await;
    }

    /// Injects a fault (see `drsim/core.py` Fault): e.g. `{"service": "route53", "action":
    /// "ChangeResourceRecordSets", "mode": "error", "status": 400, "code": "InvalidInput",
    /// "count": 1}`. Returns its id.
    pub async fn fault(&self, spec: Value) -> u64 {
        self.call(reqwest::Method::POST, "/faults", Some(spec)).await["id"]
            .as_u64()
            .expect("fault id")
    }

    pub async fn clear_fault(&self, id: u64) {
        self.call(reqwest::Method::DELETE, &format!("/faults/{id}"), None).await;
    }

    /// The wire log from `since` (a sequence number; 0 for everything), and where it ends.
    pub async fn wire(&self, since: u64) -> (Wire, u64) {
        let v = self
            .call(reqwest::Method::GET, &format!("/wire?since={since}"), None)
            .await;
        let entries: Vec<WireEntry> = serde_json::from_value(v["entries"].clone()).expect("wire entries");
        (Wire(entries), v["next"].as_u64().unwrap_or(since))
    }

    /// Where the wire log ends now.
    pub async fn wire_mark(&self) -> u64 {
        self.call(reqwest::Method::GET, "/wire?since=999999999", None).await["next"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Maintenance: the instance shows `status` for `seconds` (replication paused), then
    /// `available`.
    pub async fn hold_instance(&self, region: &str, instance: &str, status: &str, seconds: f64) {
        self.hold_instance_with(region, instance, json!({"status": status, "seconds": seconds}))
            .await;
    }

    /// `{"status", "seconds", "then", "pauses_replication"}` (see `drsim/rds.py` hold_status).
    pub async fn hold_instance_with(&self, region: &str, instance: &str, hold: Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/rds/{region}/instances/{instance}/status"),
            Some(hold),
        )
        .await;
    }

    /// RDS applies a pending maintenance action to `id` (`kind`: instances or clusters) now:
    /// `{"action", "description", "seconds"}`. It is reported as pending, with RDS's
    /// maintenance events, until done.
    pub async fn apply_maintenance(&self, region: &str, kind: &str, id: &str, body: Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/rds/{region}/{kind}/{id}/maintenance"),
            Some(body),
        )
        .await;
    }

    /// `{"write_rate": w}` for a primary; `{"lag_seconds": s, "broken": b}` for a replica.
    pub async fn set_replication(&self, region: &str, instance: &str, settings: Value) -> Replication {
        self.set_replication_of(region, "instances", instance, settings).await
    }

    /// The same for `kind` `instances` or `clusters` (an Aurora global database's members).
    pub async fn set_replication_of(&self, region: &str, kind: &str, id: &str, settings: Value) -> Replication {
        let v = self
            .call(
                reqwest::Method::PUT,
                &format!("/rds/{region}/{kind}/{id}/replication"),
                Some(settings),
            )
            .await;
        serde_json::from_value(v).expect("replication")
    }

    pub async fn replication(&self, region: &str, instance: &str) -> Replication {
        self.replication_of(region, "instances", instance).await
    }

    pub async fn replication_of(&self, region: &str, kind: &str, id: &str) -> Replication {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/rds/{region}/{kind}/{id}/replication"),
                None,
            )
            .await;
        serde_json::from_value(v).expect("replication")
    }

    /// S3 delivers the bucket's inventory reports now, as its daily schedule would (see
    /// `drsim/s3.py`; `body` may set `taken`, the scan's start in epoch seconds).
    pub async fn deliver_inventory(&self, bucket: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, &format!("/s3/{bucket}/inventory"), Some(body))
            .await
    }

    pub async fn copies(&self, region: &str) -> CopiesInFlight {
        let v = self
            .call(reqwest::Method::GET, &format!("/rds/{region}/copies"), None)
            .await;
        serde_json::from_value(v).expect("copies")
    }

    /// A VPC with two subnets, a security group without rules and a DB subnet group `name`
    /// over the subnets, in `account` (what `infra/verifier.tf` makes for restore tests).
    /// Returns (subnet group, security group id).
    pub async fn isolated_network(&self, region: &str, account: &str, name: &str) -> (String, String) {
        let v = self
            .call(
                reqwest::Method::POST,
                &format!("/rds/{region}/network"),
                Some(json!({"name": name, "account": account})),
            )
            .await;
        (
            v["subnet_group"].as_str().expect("subnet group").to_string(),
            v["security_group"].as_str().expect("security group").to_string(),
        )
    }

    /// Every state change the simulator's CloudWatch made to the alarm, oldest first.
    pub async fn alarm_changes(&self, region: &str, alarm: &str) -> Vec<AlarmChange> {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/cloudwatch/{region}/alarms/{alarm}"),
                None,
            )
            .await;
        serde_json::from_value(v["changes"].clone()).expect("alarm changes")
    }

    /// Route 53 health checkers report `status` (`failing`/`healthy`) for the check, or follow
    /// the endpoint's region again (`None`).
    pub async fn health_checkers(&self, health_check_id: &str, status: Option<&str>) {
        self.call(
            reqwest::Method::PUT,
            &format!("/route53/healthchecks/{health_check_id}"),
            Some(json!({"status": status})),
        )
        .await;
    }

    /// A Lambda function's triggers as AWS wires them (EventBridge rules, SNS subscriptions, the
    /// alarm's Lambda action), all ending in the function's queue `drsim-fn-<name>`. Returns
    /// the function's ARN.
    pub async fn register_function(&self, name: &str, region: &str, rules: Value, topics: &[String]) -> String {
        let v = self
            .call(
                reqwest::Method::PUT,
                &format!("/functions/{name}"),
                Some(json!({"region": region, "rules": rules, "topics": topics})),
            )
            .await;
        v["arn"].as_str().expect("function arn").to_string()
    }
}
