//! A night on the simulator: a two-region account with protected databases, drpilot's real
//! function binaries run as Lambda would run them (EventBridge schedules, the alarm's
//! deliveries, reserved concurrency, timeouts), CloudWatch evaluating the shipped alarm from
//! the metrics the real lag checker publishes, and a script of what goes wrong and when.
//!
//! Time is AWS's timeline scaled down by `scale` (20: a 60 s period takes 3 s): the alarm's
//! period, RDS's timings, the lag checker's schedule, the functions' timeouts and every
//! duration setting drpilot has are divided by it, so the timeline keeps its shape. Scripts
//! and reports speak AWS time; `Scale` converts.

use crate::account::{instance_endpoint, Received, Regions, Responders};
use crate::sim::{Outage, Simulator, Wire};
use crate::{function_binary, function_env, sdk, unique};
use drpilot::ports::Dns;
use drpilot::promoter::record::{DbRecord, Failover};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Notify, Semaphore};

/// AWS seconds per test-bed second. Divides 60, so that a period is a whole number of seconds.
#[derive(Debug, Clone, Copy)]
pub struct Scale(pub u32);

impl Scale {
    /// The metric and alarm period on the test bed (60 s on AWS).
    pub fn period(&self) -> u32 {
        60 / self.0
    }

    /// Test-bed time for `aws_seconds` of AWS time.
    pub fn real(&self, aws_seconds: f64) -> Duration {
        Duration::from_secs_f64(aws_seconds / f64::from(self.0))
    }

    pub fn real_secs(&self, aws_seconds: f64) -> f64 {
        aws_seconds / f64::from(self.0)
    }

    /// AWS time for `real_seconds` on the test bed.
    pub fn aws(&self, real_seconds: f64) -> f64 {
        real_seconds * f64::from(self.0)
    }

    /// A whole-seconds setting scaled down, never below `min` (what drpilot accepts).
    pub fn setting(&self, aws_seconds: u32, min: u32) -> String {
        (aws_seconds / self.0).max(min).to_string()
    }
}

/// A condition on the night, checked while it runs.
pub type Check<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>>;

pub fn minutes(m: f64) -> f64 {
    m * 60.0
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// One protected database: a primary in the source region, a cross-region read replica.
#[derive(Debug, Clone)]
pub struct DbPlan {
    pub name: String,
    /// Replica lag while replication works (AWS seconds).
    pub lag: f64,
    pub max_data_loss: f64,
    pub rto: f64,
    pub rpo_budget: f64,
    /// A Route 53 health check of the primary's endpoint (the checker quorum).
    pub health_check: bool,
    /// An Aurora global database (primary cluster, secondary cluster) instead of an RDS
    /// instance and its cross-region read replica.
    pub aurora: bool,
    /// The RDS engine (`postgres`, `mysql`).
    pub engine: &'static str,
    /// The app's record as failover records (`dns.mode: failover-records`) instead of one
    /// record the promoter UPSERTs.
    pub failover_records: bool,
    /// A recovery plan: the app's Auto Scaling group in the DR region and what a failover
    /// scales it to.
    pub recovery: Option<RecoverySpec>,
}

/// A database's recovery plan on the night: its app's Auto Scaling group runs `from`
/// instances in the DR region (warm standby); a failover asks for `to` (max twice that) and
/// waits `wait` AWS seconds for them, longer if `strict`. `tasks`: its API also runs as an ECS
/// service of that many tasks (from, to).
#[derive(Debug, Clone, Copy)]
pub struct RecoverySpec {
    pub from: u32,
    pub to: u32,
    pub wait: f64,
    pub strict: bool,
    pub tasks: Option<(u32, u32)>,
    /// The plan publishes its end event to an automation topic of the database's own.
    pub automation: bool,
}

/// What the night looks like before anything goes wrong.
#[derive(Debug, Clone)]
pub struct NightPlan {
    pub name: String,
    pub source: String,
    pub dr: String,
    pub scale: Scale,
    pub databases: Vec<DbPlan>,
    pub mode: String,
    /// The primary-down alarm's evaluation periods (`primary_down_periods`, 3).
    pub alarm_periods: u32,
    /// RDS: how long a promotion takes (AWS seconds).
    pub promotion: f64,
    /// Each alarm state change delivered this many times per channel (EventBridge, SNS,
    /// Lambda action). SNS and the Lambda action only reach the promoter when > 0 here.
    pub deliveries: (u32, u32, u32),
    pub promoter_env: Vec<(String, String)>,
    /// The promoter's Lambda timeout (AWS seconds; 900 as shipped).
    pub promoter_timeout: f64,
    /// The databases live in this member account; drpilot (the hub: alarms, metrics, Route 53,
    /// state, responders) in the test bed's own, reaching them through the member role.
    pub member: Option<String>,
    /// EC2 Auto Scaling: how long a launched instance takes to be in service (AWS seconds).
    pub launch: f64,
    /// ECS: how long a started task is PENDING before RUNNING (AWS seconds).
    pub task_start: f64,
}

impl NightPlan {
    pub fn new(name: &str, source: &str, dr: &str) -> Self {
        NightPlan {
            name: name.into(),
            source: source.into(),
            dr: dr.into(),
            scale: Scale(20),
            databases: vec![],
            mode: "automatic".into(),
            alarm_periods: 3,
            promotion: minutes(3.0),
            deliveries: (1, 0, 0),
            promoter_env: vec![],
            promoter_timeout: 900.0,
            member: None,
            // booting, the launch template's user data and the health check's grace period
            launch: minutes(3.0),
            // Fargate: the image pulled and the containers started
            task_start: minutes(1.0),
        }
    }

    /// The last database's app runs in an Auto Scaling group of `from` instances in the DR
    /// region, and its recovery plan scales it to `to` before DNS switches, waiting `wait`
    /// AWS seconds (and longer when `strict`).
    pub fn recovery_plan(mut self, from: u32, to: u32, wait: f64, strict: bool) -> Self {
        if let Some(d) = self.databases.last_mut() {
            d.recovery = Some(RecoverySpec {
                from,
                to,
                wait,
                strict,
                tasks: None,
                automation: false,
            });
        }
        self
    }

    /// The last database's recovery plan publishes its end events to an automation topic
    /// (read back with `Night::automation_events`).
    pub fn automation_topic(mut self) -> Self {
        if let Some(r) = self.databases.last_mut().and_then(|d| d.recovery.as_mut()) {
            r.automation = true;
        }
        self
    }

    /// The last database's recovery plan also scales its API, an ECS service running `from`
    /// tasks in the DR region, to `to`.
    pub fn ecs_tasks(mut self, from: u32, to: u32) -> Self {
        if let Some(r) = self.databases.last_mut().and_then(|d| d.recovery.as_mut()) {
            r.tasks = Some((from, to));
        }
        self
    }

    /// The databases are in member account `id` (`DRPILOT_ACCOUNTS`), drpilot in the hub.
    pub fn in_member_account(mut self, id: &str) -> Self {
        self.member = Some(id.into());
        self
    }

    /// A database replicating `lag` AWS seconds behind, with the warm-standby example's limits
    /// (RPO budget 60 s, RTO 15 min) and a data-loss limit of `max_data_loss`.
    pub fn database(mut self, name: &str, lag: f64, max_data_loss: f64) -> Self {
        self.databases.push(DbPlan {
            name: name.into(),
            lag,
            max_data_loss,
            rto: minutes(15.0),
            rpo_budget: 60.0,
            health_check: false,
            aurora: false,
            engine: "postgres",
            failover_records: false,
            recovery: None,
        });
        self
    }

    /// The last database's RDS engine (`mysql`: MySQL 8.0; `postgres` by default).
    pub fn engine(mut self, engine: &'static str) -> Self {
        if let Some(d) = self.databases.last_mut() {
            d.engine = engine;
        }
        self
    }

    /// An Aurora global database, its secondary cluster `lag` AWS seconds behind.
    pub fn aurora(mut self, name: &str, lag: f64, max_data_loss: f64) -> Self {
        self = self.database(name, lag, max_data_loss);
        if let Some(d) = self.databases.last_mut() {
            d.aurora = true;
        }
        self
    }

    /// The last database's primary endpoint is checked by Route 53's health checkers (as in
    /// the warm-standby example): the checker quorum confirms an outage, or denies it.
    pub fn health_checked(mut self) -> Self {
        if let Some(d) = self.databases.last_mut() {
            d.health_check = true;
        }
        self
    }

    /// The last database's record is a PRIMARY/SECONDARY pair of failover records, as
    /// Terraform makes them with `dns.mode = "failover-records"`: the PRIMARY (the primary's
    /// endpoint) health-checked by an alarm in the DR region on drpilot's `FailedOver` metric,
    /// the SECONDARY the standby's endpoint. Route 53's data plane switches, not its API.
    pub fn failover_records(mut self) -> Self {
        if let Some(d) = self.databases.last_mut() {
            d.failover_records = true;
        }
        self
    }

    pub fn mode(mut self, mode: &str) -> Self {
        self.mode = mode.into();
        self
    }

    pub fn deliveries(mut self, eventbridge: u32, sns: u32, lambda_action: u32) -> Self {
        self.deliveries = (eventbridge, sns, lambda_action);
        self
    }

    pub fn promoter_setting(mut self, name: &str, value: &str) -> Self {
        self.promoter_env.push((name.into(), value.into()));
        self
    }
}

/// A protected database as deployed.
#[derive(Debug, Clone)]
pub struct Db {
    pub plan: DbPlan,
    /// The Aurora global cluster (`plan.aurora`); `primary` and `replica` are then clusters.
    pub global_cluster: Option<String>,
    /// The lag checker's resource for this database (the alarm's `Resource` dimension).
    pub lag_resource: String,
    pub primary: String,
    pub replica: String,
    pub alarm: String,
    pub record: String,
    pub zone: String,
    pub primary_endpoint: String,
    pub health_check_id: Option<String>,
    /// `failover_records`: the alarm (DR region) the PRIMARY record's health check follows.
    pub failover_alarm: Option<String>,
    /// `recovery`: the app's Auto Scaling group in the DR region.
    pub app_group: Option<String>,
    /// `recovery.tasks`: the app's ECS service in the DR region (cluster, service).
    pub app_service: Option<(String, String)>,
    /// `recovery.automation`: the user's automation topic, a queue subscribed.
    pub automation: Option<Responders>,
}

/// The account a night runs in: what the user had before drpilot was deployed.
pub struct Account {
    pub r: Regions,
    pub responders: Responders,
    pub state_bucket: String,
    pub dbs: Vec<Db>,
    /// The lag checker's resources; by default one `rds-replica` per database.
    pub resources: Option<Vec<Value>>,
    pub route53: aws_sdk_route53::Client,
    /// `DRPILOT_ACCOUNTS`'s entry when the databases are in a member account.
    pub member: Option<Value>,
}

impl Account {
    /// The plan's databases: a primary each, a cross-region read replica, the app's DNS
    /// record pointing at the primary (and a health check where asked); the responders' topic
    /// and the state bucket in the DR region, as Terraform makes them.
    pub async fn create(plan: &NightPlan) -> Account {
        let (r, member) = match &plan.member {
            None => (Regions::new(&plan.source, &plan.dr).await, None),
            Some(id) => {
                // the member's administrator applies infra/modules/member there
                let m = crate::members::MemberAccount::enter(id).await;
                let external_id = unique("drpilot-ext");
                let role_arn = m.member_role(&unique("drpilot-member"), &external_id).await;
                let entry = json!({"id": id, "role_arn": role_arn, "external_id": external_id});
                (Regions::in_member(&m, &plan.source, &plan.dr).await, Some(entry))
            }
        };
        let route53 = aws_sdk_route53::Client::new(&sdk("us-east-1").await);
        let responders = Responders::new(&plan.dr, &unique(&format!("{}-responders", plan.name))).await;
        let state_bucket = unique("drpilot-state");
        r.create_bucket(&plan.dr, &state_bucket).await;
        let domain = format!("{}.example.com", unique(&plan.name));
        let zone = hosted_zone(&route53, &domain).await;
        let mut dbs = Vec::new();
        for p in &plan.databases {
            let (primary, replica) = (unique(&p.name), unique(&format!("{}-dr", p.name)));
            let global_cluster = if p.aurora {
                let global = unique(&format!("{}-global", p.name));
                r.create_global_database(&global, &primary, &replica).await;
                Some(global)
            } else {
                r.create_primary(&primary, p.engine).await;
                // MySQL: the replica has parameters of its own (a planned switch back blocks
                // writes on it once it is the primary)
                let family = (p.engine == "mysql").then_some("mysql8.0");
                r.create_replica_in(&primary, &replica, family).await;
                None
            };
            let primary_endpoint = match &global_cluster {
                Some(_) => crate::account::cluster_endpoint(&r.rds_source, &primary).await,
                None => instance_endpoint(&r.rds_source, &primary).await,
            };
            let record = format!("{}.{domain}", p.name);
            let failover_alarm = if p.failover_records {
                let standby_endpoint = match &global_cluster {
                    Some(_) => crate::account::cluster_endpoint(&r.rds_dr, &replica).await,
                    None => instance_endpoint(&r.rds_dr, &replica).await,
                };
                let alarm = unique(&format!("{}-failed-over", p.name));
                let cw = aws_sdk_cloudwatch::Client::new(&sdk(&plan.dr).await);
                failover_records(
                    &route53,
                    &cw,
                    plan,
                    p,
                    &zone,
                    &record,
                    &alarm,
                    &primary_endpoint,
                    &standby_endpoint,
                )
                .await;
                Some(alarm)
            } else {
                point(&route53, &zone, &record, &primary_endpoint).await;
                None
            };
            let health_check_id = if p.health_check {
                Some(health_check(&route53, &primary_endpoint).await)
            } else {
                None
            };
            let app_group = match &p.recovery {
                Some(spec) => Some(app_group(&plan.dr, &p.name, spec.from).await),
                None => None,
            };
            let app_service = match p.recovery.and_then(|r| r.tasks) {
                Some((from, _)) => Some(app_service(&plan.dr, &p.name, from).await),
                None => None,
            };
            let automation = match p.recovery.filter(|r| r.automation) {
                Some(_) => Some(Responders::new(&plan.dr, &unique(&format!("{}-automation", p.name))).await),
                None => None,
            };
            dbs.push(Db {
                app_group,
                app_service,
                automation,
                plan: p.clone(),
                global_cluster,
                lag_resource: p.name.clone(),
                alarm: unique(&format!("{}-primary-down", p.name)),
                primary,
                replica,
                record,
                zone: zone.clone(),
                primary_endpoint,
                health_check_id,
                failover_alarm,
            });
        }
        Account {
            r,
            responders,
            state_bucket,
            dbs,
            resources: None,
            route53,
            member,
        }
    }
}

/// The app's warm standby: an Auto Scaling group of `size` instances in `region`, min and max
/// `size` too (a failover must raise all three). Made with a launch configuration, which the
/// Auto Scaling API creates by itself (a launch template would need the EC2 SDK, and the test
/// bed's build time; the group behaves the same either way).
pub async fn app_group(region: &str, db: &str, size: u32) -> String {
    let asg = aws_sdk_autoscaling::Client::new(&sdk(region).await);
    let name = unique(&format!("{db}-web-dr"));
    asg.create_launch_configuration()
        .launch_configuration_name(&name)
        .image_id("ami-12c6146b")
        .instance_type("t3.large")
        .send()
        .await
        .unwrap();
    let size = size as i32;
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(&name)
        .launch_configuration_name(&name)
        .min_size(size)
        .desired_capacity(size)
        .max_size(size)
        .availability_zones(format!("{region}a"))
        .send()
        .await
        .unwrap();
    name
}

/// The app's API in the DR region: an ECS cluster and a Fargate service of `tasks` tasks in it
/// (a task definition registered for it, as a real service needs one). Returns (cluster,
/// service).
pub async fn app_service(region: &str, db: &str, tasks: u32) -> (String, String) {
    let ecs = aws_sdk_ecs::Client::new(&sdk(region).await);
    let cluster = unique(&format!("{db}-apps-dr"));
    ecs.create_cluster().cluster_name(&cluster).send().await.unwrap();
    let family = unique(&format!("{db}-api"));
    ecs.register_task_definition()
        .family(&family)
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("api")
                .image("public.ecr.aws/docker/library/nginx:stable")
                .memory(512)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let service = format!("{db}-api");
    ecs.create_service()
        .cluster(&cluster)
        .service_name(&service)
        .task_definition(&family)
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .desired_count(tasks as i32)
        .send()
        .await
        .unwrap();
    (cluster, service)
}

/// An ECS service's desired count and how many of its tasks are running.
pub async fn service_size(region: &str, cluster: &str, service: &str) -> (u32, u32) {
    let ecs = aws_sdk_ecs::Client::new(&sdk(region).await);
    let out = ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .unwrap();
    let s = &out.services()[0];
    (s.desired_count() as u32, s.running_count() as u32)
}

/// An Auto Scaling group's desired capacity and how many instances are in service and healthy.
pub async fn group_size(region: &str, name: &str) -> (u32, u32) {
    let asg = aws_sdk_autoscaling::Client::new(&sdk(region).await);
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .unwrap();
    let g = &out.auto_scaling_groups()[0];
    let healthy = g
        .instances()
        .iter()
        .filter(|i| i.lifecycle_state() == Some(&aws_sdk_autoscaling::types::LifecycleState::InService))
        .count();
    (g.desired_capacity().unwrap_or_default() as u32, healthy as u32)
}

/// A public hosted zone; returns its id.
pub async fn hosted_zone(route53: &aws_sdk_route53::Client, domain: &str) -> String {
    route53
        .create_hosted_zone()
        .name(domain)
        .caller_reference(unique("ref"))
        .send()
        .await
        .unwrap()
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string()
}

impl Db {
    /// `instances` or `clusters`, as the simulator's control API names them.
    pub fn kind(&self) -> &'static str {
        if self.global_cluster.is_some() {
            "clusters"
        } else {
            "instances"
        }
    }
}

/// How an invocation ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Ok(Value),
    Error(String),
    Killed,
    TimedOut,
}

#[derive(Debug, Clone)]
pub struct Invocation {
    pub function: String,
    pub trigger: String,
    pub started: f64,
    pub ended: f64,
    pub outcome: Outcome,
}

/// An invocation in flight: its id, function, trigger, and how to kill it.
struct Running {
    id: u64,
    function: String,
    trigger: String,
    kill: Arc<Notify>,
}

struct Function {
    env: BTreeMap<String, String>,
    timeout: Duration,
    slots: Arc<Semaphore>,
}

/// The Lambda service, as the shipped Terraform configures it: each function's reserved
/// concurrency (extra asynchronous events wait in Lambda's queue), its timeout, and no
/// retries of failed asynchronous invocations (`maximum_retry_attempts = 0`).
struct Lambda {
    functions: BTreeMap<String, Function>,
    log: Mutex<Vec<Invocation>>,
    running: Mutex<Vec<Running>>,
    ids: AtomicU64,
}

impl Lambda {
    async fn invoke(self: Arc<Self>, name: String, trigger: String, event: Value) -> Invocation {
        let f = &self.functions[&name];
        let _slot = f.slots.clone().acquire_owned().await.expect("semaphore");
        let started = unix_now();
        let id = self.ids.fetch_add(1, Ordering::SeqCst);
        let kill = Arc::new(Notify::new());
        self.running.lock().unwrap().push(Running {
            id,
            function: name.clone(),
            trigger: trigger.clone(),
            kill: kill.clone(),
        });
        let mut child = tokio::process::Command::new(function_binary(&name))
            .args([
                "--event",
                "-",
                "--timeout-secs",
                &f.timeout.as_secs().max(1).to_string(),
            ])
            .env_clear()
            .envs(&f.env)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let mut stdin = child.stdin.take().expect("stdin");
        let body = event.to_string();
        let _ = stdin.write_all(body.as_bytes()).await;
        drop(stdin);
        let mut stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let out = tokio::spawn(async move {
            let mut b = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut b).await;
            b
        });
        let err = tokio::spawn(async move {
            let mut b = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut b).await;
            b
        });
        let outcome = tokio::select! {
            status = child.wait() => {
                let status = status.expect("wait");
                let out = out.await.unwrap_or_default();
                let err = err.await.unwrap_or_default();
                if status.success() {
                    Outcome::Ok(serde_json::from_slice(&out).unwrap_or(Value::Null))
                } else {
                    Outcome::Error(String::from_utf8_lossy(&err).trim().to_string())
                }
            }
            _ = kill.notified() => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                Outcome::Killed
            }
            _ = tokio::time::sleep(f.timeout) => {
                // Lambda ends an invocation at its timeout
                let _ = child.start_kill();
                let _ = child.wait().await;
                Outcome::TimedOut
            }
        };
        self.running.lock().unwrap().retain(|r| r.id != id);
        let inv = Invocation {
            function: name,
            trigger,
            started,
            ended: unix_now(),
            outcome,
        };
        self.log.lock().unwrap().push(inv.clone());
        inv
    }

    fn spawn(self: &Arc<Self>, name: &str, trigger: &str, event: Value) {
        tokio::spawn(self.clone().invoke(name.into(), trigger.into(), event));
    }

    /// SIGKILL every running invocation of `name` woken by an event (not by a schedule): a
    /// Lambda worker lost mid-flight.
    fn kill(&self, name: &str) -> usize {
        let running = self.running.lock().unwrap();
        let victims: Vec<_> = running
            .iter()
            .filter(|r| r.function == name && !r.trigger.contains("schedule"))
            .collect();
        for r in &victims {
            r.kill.notify_one();
        }
        victims.len()
    }
}

/// The night, running.
pub struct Night {
    pub plan: NightPlan,
    pub sim: Simulator,
    pub r: Regions,
    pub dbs: Vec<Db>,
    pub responders: Responders,
    pub state_bucket: String,
    pub promoter_arn: String,
    alarm_topic: Option<String>,
    s3_dr: aws_sdk_s3::Client,
    cw_dr: aws_sdk_cloudwatch::Client,
    lambda: Arc<Lambda>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    /// When the night began (unix seconds) and where the wire log stood then.
    pub t0: f64,
    wire_mark: u64,
    received: Mutex<Vec<Received>>,
    events: Mutex<Vec<(f64, String)>>,
    status_env: BTreeMap<String, String>,
    faults: Arc<Mutex<Vec<u64>>>,
    cleanup: Option<Cleanup>,
}

pub const PROMOTER: &str = "failover-promoter";
pub const LAG_CHECKER: &str = "lag-checker";

/// The shipped primary-down alarm (infra/alarms.tf; a test keeps the two the same).
pub struct AlarmShape {
    pub metric: &'static str,
    pub statistic: &'static str,
    pub comparison: &'static str,
    pub threshold: f64,
    pub treat_missing_data: &'static str,
}

pub const PRIMARY_DOWN: AlarmShape = AlarmShape {
    metric: drpilot::lagcheck::metric::STATUS,
    statistic: "Maximum",
    comparison: "GreaterThanOrEqualToThreshold",
    threshold: 2.0,
    treat_missing_data: "ignore",
};

impl Night {
    /// Creates the account the plan describes, then deploys drpilot on it (`deploy`).
    pub async fn begin(plan: NightPlan) -> Night {
        let account = Account::create(&plan).await;
        Night::deploy(plan, account).await
    }

    /// Deploys drpilot on `account` as the shipped Terraform would (functions, triggers,
    /// reserved concurrency, timeouts, the primary-down alarms), runs it until every alarm has
    /// been evaluated OK, and starts the night's clock.
    pub async fn deploy(plan: NightPlan, account: Account) -> Night {
        let sim = Simulator::connect();
        let scale = plan.scale;
        let period = scale.period();
        let (eb, sns_times, lambda_times) = plan.deliveries;
        for region in [&plan.source, &plan.dr] {
            sim.configure(
                region,
                json!({
                    "rds_metrics": true,
                    "metric_period": period,
                    "promotion_seconds": scale.real_secs(plan.promotion),
                    "reboot_seconds": scale.real_secs(minutes(2.0)),
                    // Aurora: a managed failover or switchover takes a minute or two
                    "global_switch_seconds": scale.real_secs(minutes(2.0)),
                    "alarm_evaluation": true,
                    "deliveries": {"eventbridge": eb, "sns": sns_times, "lambda": lambda_times},
                    "asg_launch_seconds": scale.real_secs(plan.launch),
                    "ecs_task_start_seconds": scale.real_secs(plan.task_start),
                }),
            )
            .await;
        }
        // Route 53 (global): a change propagates to its servers within 60 s ("GetChange").
        sim.configure("global", json!({"dns_propagation_seconds": scale.real_secs(60.0)}))
            .await;
        for d in &account.dbs {
            sim.set_replication_of(
                &plan.dr,
                d.kind(),
                &d.replica,
                json!({"lag_seconds": scale.real_secs(d.plan.lag)}),
            )
            .await;
        }
        let Account {
            r,
            responders,
            state_bucket,
            dbs,
            resources,
            route53: _,
            member,
        } = account;

        // The promoter's triggers, as infra/triggers.tf wires them: an EventBridge rule on the
        // primary-down alarms going to ALARM; optionally also an SNS topic of alarm notices and
        // the alarm's Lambda action.
        let alarm_topic = if sns_times > 0 {
            Some(
                aws_sdk_sns::Client::new(&sdk(&plan.dr).await)
                    .create_topic()
                    .name(unique("drpilot-alarms"))
                    .send()
                    .await
                    .unwrap()
                    .topic_arn()
                    .unwrap()
                    .to_string(),
            )
        } else {
            None
        };
        let pattern = json!({
            "source": ["aws.cloudwatch"],
            "detail-type": ["CloudWatch Alarm State Change"],
            "detail": {"alarmName": dbs.iter().map(|d| d.alarm.clone()).collect::<Vec<_>>(), "state": {"value": ["ALARM"]}}
        });
        let promoter_name = unique("drpilot-failover-promoter");
        let promoter_arn = sim
            .register_function(
                &promoter_name,
                &plan.dr,
                json!([{"name": unique("promoter-alarms"), "pattern": pattern}]),
                alarm_topic.as_slice(),
            )
            .await;

        let base = |extra: &[(&str, String)]| {
            let mut v: Vec<(&str, String)> = vec![
                ("DRPILOT_SOURCE_REGION", plan.source.clone()),
                ("DRPILOT_DR_REGION", plan.dr.clone()),
                ("DRPILOT_STATE_BUCKET", state_bucket.clone()),
                ("DRPILOT_NOTIFY_TOPIC_ARN", responders.topic_arn.clone()),
                ("DRPILOT_S3_FORCE_PATH_STYLE", "true".into()),
                ("DRPILOT_METRIC_PERIOD_SECONDS", period.to_string()),
                ("RUST_LOG", "warn".into()),
            ];
            if let Some(m) = &member {
                v.push(("DRPILOT_ACCOUNTS", json!([m]).to_string()));
            }
            v.extend(extra.iter().cloned());
            function_env(&v)
        };
        let in_member = |mut entry: Value| {
            if let Some(m) = &member {
                entry["account"] = m["id"].clone();
            }
            entry
        };
        let resources = resources.unwrap_or_else(|| {
            dbs.iter()
                .map(|d| {
                    let rpo = scale.real_secs(d.plan.rpo_budget);
                    in_member(match &d.global_cluster {
                        Some(_) => json!({"name": d.plan.name, "kind": "aurora-global", "cluster": d.replica, "rpo_seconds": rpo}),
                        None => json!({"name": d.plan.name, "kind": "rds-replica", "replica": d.replica, "rpo_seconds": rpo}),
                    })
                })
                .collect()
        });
        let databases: Vec<Value> = dbs
            .iter()
            .map(|d| {
                let mut v = json!({
                    "name": d.plan.name, "alarms": [d.alarm], "lag_resource": d.lag_resource,
                    "max_data_loss_seconds": scale.real_secs(d.plan.max_data_loss),
                    "rto_seconds": scale.real_secs(d.plan.rto),
                    "dns": {"zone_id": d.zone, "record_name": d.record, "ttl": 30}
                });
                if let Some(alarm) = &d.failover_alarm {
                    v["dns"]["mode"] = "failover-records".into();
                    v["dns"]["alarm"] = alarm.clone().into();
                }
                if let Some(id) = &d.health_check_id {
                    v["health_check_id"] = id.clone().into();
                }
                if let (Some(spec), Some(group)) = (&d.plan.recovery, &d.app_group) {
                    let mut capacity = vec![json!({"auto_scaling_group": group, "desired": spec.to, "max": 2 * spec.to})];
                    if let (Some((_, to)), Some((cluster, service))) = (spec.tasks, &d.app_service) {
                        capacity.push(json!({"ecs_service": service, "cluster": cluster, "desired": to}));
                    }
                    let automation = d.automation.as_ref().map(|t| t.topic_arn.clone());
                    v["recovery_plan"] = json!({
                        "automation_topic_arn": automation,
                        "capacity": capacity,
                        "wait_seconds": scale.setting(spec.wait as u32, 1).parse::<u32>().unwrap(),
                        "strict": spec.strict,
                    });
                }
                let standby = match &d.global_cluster {
                    Some(g) => json!({"kind": "aurora-global", "global_cluster": g, "primary_cluster": d.primary, "secondary_cluster": d.replica}),
                    None => json!({"kind": "rds-replica", "primary": d.primary, "replica": d.replica}),
                };
                for (k, val) in standby.as_object().into_iter().flatten() {
                    v[k] = val.clone();
                }
                in_member(v)
            })
            .collect();
        let lag_env = base(&[
            ("DRPILOT_RESOURCES", Value::from(resources).to_string()),
            ("DRPILOT_LAG_WINDOW_SECONDS", (5 * period).to_string()),
            ("DRPILOT_DEADLINE_MARGIN_SECONDS", scale.setting(10, 1)),
        ]);
        let mut promoter_extra: Vec<(&str, String)> = vec![
            ("DRPILOT_DATABASES", Value::from(databases).to_string()),
            ("DRPILOT_MODE", plan.mode.clone()),
            ("DRPILOT_COOLDOWN_SECONDS", scale.setting(3600, 0)),
            ("DRPILOT_LAG_LOOKBACK_SECONDS", scale.setting(3600, 300)),
            ("DRPILOT_POLL_SECONDS", scale.setting(10, 1)),
            ("DRPILOT_DEADLINE_MARGIN_SECONDS", scale.setting(30, 1)),
            ("DRPILOT_STUCK_AFTER_SECONDS", scale.setting(1800, 1)),
            ("DRPILOT_PROBE_SPACING_MS", scale.setting(2000, 1)),
            ("AWS_LAMBDA_FUNCTION_NAME", promoter_name.clone()),
        ];
        for (k, v) in &plan.promoter_env {
            promoter_extra.retain(|(name, _)| *name != k.as_str());
            promoter_extra.push((k.as_str(), v.clone()));
        }
        let promoter_env = base(&promoter_extra);
        // what `drpilot status` reads (Terraform's dashboard_settings)
        let mut status_env = lag_env.clone();
        status_env.extend(promoter_env.clone());
        let mut functions = BTreeMap::new();
        // reserved concurrency and timeouts as infra/main.tf sets them
        functions.insert(
            LAG_CHECKER.to_string(),
            Function {
                env: lag_env,
                timeout: scale.real(55.0).max(Duration::from_secs(2)),
                slots: Arc::new(Semaphore::new(2)),
            },
        );
        functions.insert(
            PROMOTER.to_string(),
            Function {
                env: promoter_env,
                timeout: scale.real(plan.promoter_timeout),
                slots: Arc::new(Semaphore::new(5)),
            },
        );
        let lambda = Arc::new(Lambda {
            functions,
            log: Mutex::new(vec![]),
            running: Mutex::new(vec![]),
            ids: AtomicU64::new(0),
        });
        let s3_dr = crate::account::s3_client(&plan.dr).await;
        let cw_dr = aws_sdk_cloudwatch::Client::new(&sdk(&plan.dr).await);
        let mut night = Night {
            sim,
            r,
            dbs,
            responders,
            state_bucket,
            promoter_arn,
            alarm_topic,
            s3_dr,
            cw_dr,
            lambda,
            tasks: vec![],
            stop: Arc::new(AtomicBool::new(false)),
            t0: 0.0,
            wire_mark: 0,
            received: Mutex::new(vec![]),
            events: Mutex::new(vec![]),
            status_env,
            faults: Arc::new(Mutex::new(vec![])),
            cleanup: None,
            plan,
        };
        night.cleanup = Some(Cleanup {
            source: night.plan.source.clone(),
            dr: night.plan.dr.clone(),
            alarms: night
                .dbs
                .iter()
                .flat_map(|d| std::iter::once(d.alarm.clone()).chain(d.failover_alarm.clone()))
                .collect(),
            faults: night.faults.clone(),
        });
        night.start_schedules();
        night.start_queue_poller(&promoter_name).await;
        // The lag checker has been publishing for a while before the alarms exist (as after a
        // deployment: each alarm's first evaluation has its data).
        tokio::time::sleep(night.plan.scale.real(minutes(3.5))).await;
        for d in night.dbs.clone() {
            night.create_alarm(&d).await;
        }
        let alarms: Vec<String> = night.dbs.iter().map(|d| d.alarm.clone()).collect();
        night
            .until("every primary-down alarm is evaluated OK", minutes(10.0), |n| {
                let alarms = alarms.clone();
                Box::pin(async move {
                    for a in &alarms {
                        if n.alarm_state(a).await != "OK" {
                            return false;
                        }
                    }
                    true
                })
            })
            .await;
        night.t0 = unix_now();
        night.wire_mark = night.sim.wire_mark().await;
        night.responders.received().await; // nothing before the night counts
        night
    }

    fn start_schedules(&mut self) {
        let lambda = self.lambda.clone();
        let stop = self.stop.clone();
        let period = f64::from(self.plan.scale.period());
        let lag_event = crate::sample_event("lag-checker/schedule.json");
        let continue_event = crate::sample_event("failover-promoter/continue-schedule.json");
        self.tasks.push(tokio::spawn(async move {
            // EventBridge schedules fire at the start of each period (rate(1 minute)).
            while !stop.load(Ordering::SeqCst) {
                let now = unix_now();
                let next = (now / period).floor() * period + period + 0.25 * period;
                tokio::time::sleep(Duration::from_secs_f64(next - now)).await;
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                lambda.spawn(LAG_CHECKER, "schedule", lag_event.clone());
                lambda.spawn(PROMOTER, "continuation schedule", continue_event.clone());
            }
        }));
    }

    /// Lambda's side of asynchronous invocation: events queued for the promoter (EventBridge
    /// rule targets, SNS subscription, the alarm's Lambda action) are invoked as they come.
    async fn start_queue_poller(&mut self, function: &str) {
        let sqs = aws_sdk_sqs::Client::new(&sdk(&self.plan.dr).await);
        let url = sqs
            .get_queue_url()
            .queue_name(format!("drsim-fn-{function}"))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string();
        let lambda = self.lambda.clone();
        let stop = self.stop.clone();
        self.tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let Ok(batch) = sqs
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .send()
                    .await
                else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                for m in batch.messages() {
                    let body: Value = serde_json::from_str(m.body().unwrap_or("{}")).unwrap_or(Value::Null);
                    let (trigger, event) = lambda_event(body);
                    lambda.spawn(PROMOTER, &trigger, event);
                    let _ = sqs
                        .delete_message()
                        .queue_url(&url)
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .send()
                        .await;
                }
            }
        }));
    }

    /// The primary-down alarm as infra/alarms.tf defines it (`PRIMARY_DOWN`), on the scaled
    /// period.
    async fn create_alarm(&self, d: &Db) {
        use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
        let a = PRIMARY_DOWN;
        let mut actions = vec![self.responders.topic_arn.clone()];
        actions.extend(self.alarm_topic.clone());
        if self.plan.deliveries.2 > 0 {
            actions.push(self.promoter_arn.clone());
        }
        self.cw_dr
            .put_metric_alarm()
            .alarm_name(&d.alarm)
            .alarm_description(format!("drpilot: replication from {}'s primary is broken", d.plan.name))
            .namespace("drpilot")
            .metric_name(a.metric)
            .dimensions(Dimension::builder().name("Resource").value(&d.lag_resource).build())
            .statistic(Statistic::from(a.statistic))
            .period(self.plan.scale.period() as i32)
            .evaluation_periods(self.plan.alarm_periods as i32)
            .comparison_operator(ComparisonOperator::from(a.comparison))
            .threshold(a.threshold)
            .treat_missing_data(a.treat_missing_data)
            .set_alarm_actions(Some(actions))
            .ok_actions(&self.responders.topic_arn)
            .send()
            .await
            .unwrap();
    }

    pub async fn alarm_state(&self, alarm: &str) -> String {
        self.cw_dr
            .describe_alarms()
            .alarm_names(alarm)
            .send()
            .await
            .ok()
            .and_then(|o| {
                o.metric_alarms()
                    .first()
                    .and_then(|a| a.state_value().map(|s| s.as_str().to_string()))
            })
            .unwrap_or_default()
    }

    pub fn db(&self, name: &str) -> &Db {
        self.dbs
            .iter()
            .find(|d| d.plan.name == name)
            .unwrap_or_else(|| panic!("no database {name} tonight"))
    }

    fn note(&self, what: String) {
        self.events.lock().unwrap().push((unix_now(), what));
    }

    /// Lets `aws_seconds` of the night pass.
    pub async fn pass(&self, aws_seconds: f64) {
        tokio::time::sleep(self.plan.scale.real(aws_seconds)).await;
    }

    /// The primary region stops answering (connections dropped; no writes there).
    pub async fn region_goes_dark(&self) -> f64 {
        self.sim.region_goes_dark(&self.plan.source, Outage::Reset, false).await;
        self.note(format!("{} goes dark", self.plan.source));
        unix_now()
    }

    /// The primary region goes dark, and with it the global services whose API lives there
    /// (for us-east-1: Route 53's control plane, `ChangeResourceRecordSets` and
    /// `GetHealthCheckStatus`). Route 53's data plane goes on answering.
    pub async fn region_goes_dark_with_global_services(&self) -> f64 {
        self.sim.region_goes_dark_with_global_services(&self.plan.source).await;
        self.note(format!(
            "{} goes dark, Route 53's API (global, in us-east-1) with it",
            self.plan.source
        ));
        unix_now()
    }

    /// The primary region answers again, its databases as they were when it went dark.
    pub async fn region_returns(&self) -> f64 {
        self.sim.region_returns(&self.plan.source).await;
        self.note(format!("{} answers again", self.plan.source));
        unix_now()
    }

    /// The regions are cut off from each other; the primary still serves the internet.
    pub async fn region_partitioned(&self) -> f64 {
        self.sim.region_partitioned(&self.plan.source).await;
        self.note(format!(
            "{} is cut off from the other regions (a network partition)",
            self.plan.source
        ));
        unix_now()
    }

    /// Waits until `cond` holds, for at most `limit` AWS seconds; panics with the night's
    /// story when it does not.
    pub async fn until(&self, what: &str, limit: f64, cond: impl for<'a> Fn(&'a Night) -> Check<'a>) {
        let deadline = unix_now() + self.plan.scale.real_secs(limit);
        loop {
            if cond(self).await {
                return;
            }
            if unix_now() > deadline {
                panic!(
                    "{}: not within {} (AWS time): {what}\n{}",
                    self.plan.name,
                    drpilot::plan::lag::human_seconds(limit),
                    self.story().await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The database's failover record, as the promoter keeps it in the DR state bucket.
    pub async fn record(&self, db: &str) -> DbRecord {
        let key = format!("drpilot/failover-promoter/{db}.json");
        match self
            .s3_dr
            .get_object()
            .bucket(&self.state_bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(o) => {
                let body = o.body.collect().await.unwrap().into_bytes();
                serde_json::from_slice(&body).expect("failover record")
            }
            Err(_) => DbRecord::default(),
        }
    }

    pub async fn failover(&self, db: &str) -> Option<Failover> {
        self.record(db).await.current
    }

    pub async fn failover_completed(&self, db: &str) -> bool {
        self.failover(db).await.is_some_and(|f| f.completed_at.is_some())
    }

    /// Everything of this night's account that reached AWS since the night began (other
    /// nights share the simulator: their regions and hosted zones are not ours).
    pub async fn wire(&self) -> Wire {
        self.ours(self.sim.wire(self.wire_mark).await.0)
    }

    fn ours(&self, wire: Wire) -> Wire {
        let zone = self.dbs.first().map(|d| d.zone.clone()).unwrap_or_default();
        Wire(
            wire.0
                .into_iter()
                .filter(|e| match e.service.as_deref() {
                    Some("route53") => e.param("Id").is_some_and(|id| id.ends_with(&zone)),
                    _ => e
                        .region
                        .as_deref()
                        .is_some_and(|r| r == self.plan.source || r == self.plan.dr),
                })
                .collect(),
        )
    }

    /// Requests of `action` that AWS accepted, naming this database's instance or record.
    pub async fn accepted(&self, action: &str, db: &str) -> usize {
        self.naming(action, db).await.iter().filter(|e| e.accepted()).count()
    }

    /// Requests of `action` that reached AWS naming this database's instance or record,
    /// whatever AWS answered (AWS itself refuses a second promotion: counting only what it
    /// accepted would hide a duplicate).
    pub async fn requests(&self, action: &str, db: &str) -> usize {
        self.naming(action, db).await.len()
    }

    async fn naming(&self, action: &str, db: &str) -> Vec<crate::sim::WireEntry> {
        let d = self.db(db);
        self.wire()
            .await
            .calls(action)
            .filter(|e| {
                e.param("DBInstanceIdentifier") == Some(d.replica.as_str())
                    || d.global_cluster
                        .as_deref()
                        .is_some_and(|g| e.param("GlobalClusterIdentifier") == Some(g))
                    || e.param("Names")
                        .is_some_and(|n| n.split(',').any(|n| n.trim_end_matches('.') == d.record))
            })
            .cloned()
            .collect()
    }

    /// What responders got from drpilot's functions (not CloudWatch's own alarm notices).
    pub async fn notices(&self) -> Vec<Received> {
        let new = self.responders.received().await;
        let mut all = self.received.lock().unwrap();
        all.extend(new);
        all.iter()
            .filter(|n| n.attribute("source").is_some_and(|s| s.starts_with("drpilot")))
            .cloned()
            .collect()
    }

    /// The steps of the promoter's notices (`started`, `promoted`, ...), in the order
    /// responders got them.
    pub async fn promoter_steps(&self) -> Vec<String> {
        self.promoter_notices()
            .await
            .iter()
            .filter_map(|n| n.attribute("step").map(str::to_string))
            .collect()
    }

    /// Waits (at most 30 minutes of AWS time) until the failover of `db` has completed and
    /// the invocations running then have ended (the "completed" notice is sent after the
    /// record says so).
    pub async fn until_failed_over(&self, db: &str) {
        self.until(&format!("{db} failed over"), minutes(30.0), |n| {
            let db = db.to_string();
            Box::pin(async move { n.failover_completed(&db).await })
        })
        .await;
        let running: Vec<u64> = self.lambda.running.lock().unwrap().iter().map(|r| r.id).collect();
        self.until("the invocations that completed it ended", minutes(20.0), |n| {
            let running = running.clone();
            Box::pin(async move { !n.lambda.running.lock().unwrap().iter().any(|r| running.contains(&r.id)) })
        })
        .await;
    }

    /// What responders got from the failover promoter.
    pub async fn promoter_notices(&self) -> Vec<Received> {
        let mut all = self.notices().await;
        all.retain(|n| n.attribute("source") == Some("drpilot.failover-promoter"));
        all
    }

    /// The promoter's notices of one step (their `step` attribute), oldest first.
    pub async fn promoter_notices_at(&self, step: &str) -> Vec<Received> {
        let mut all = self.promoter_notices().await;
        all.retain(|n| n.attribute("step") == Some(step));
        all
    }

    /// Where the app's record sends clients now: what Route 53's resolvers answer (its data
    /// plane, which answers while its API in us-east-1 does not).
    pub async fn dns(&self, db: &str) -> Option<String> {
        self.dns_answer(db).await.values.first().cloned()
    }

    /// The database's app group in the DR region: desired capacity, instances in service.
    pub async fn app_group(&self, db: &str) -> (u32, u32) {
        let group = self.db(db).app_group.clone().expect("a database with a recovery plan");
        group_size(&self.plan.dr, &group).await
    }

    /// What the database's recovery plan published to the user's automation so far (taken off
    /// its queue).
    pub async fn automation_events(&self, db: &str) -> Vec<crate::account::Received> {
        self.db(db)
            .automation
            .as_ref()
            .expect("a plan with an automation topic")
            .received()
            .await
    }

    /// The database's app service in the DR region: desired count, tasks running.
    pub async fn app_service(&self, db: &str) -> (u32, u32) {
        let (cluster, service) = self
            .db(db)
            .app_service
            .clone()
            .expect("a database with ECS tasks in its plan");
        service_size(&self.plan.dr, &cluster, &service).await
    }

    /// How many instances the DR region's Auto Scaling groups can run in all (`None`: no
    /// limit): beyond it launches fail for want of capacity, as in a region-wide event when
    /// everyone scales up in the same DR region.
    pub async fn dr_capacity(&self, instances: Option<u32>) {
        self.sim
            .configure(&self.plan.dr, json!({"asg_capacity": instances}))
            .await;
    }

    /// Route 53's answer for the database's record, and which record gave it, and why.
    pub async fn dns_answer(&self, db: &str) -> crate::sim::DnsAnswer {
        let d = self.db(db);
        self.sim.resolve(&d.zone, &d.record).await
    }

    pub async fn replica_endpoint(&self, db: &str) -> String {
        let d = self.db(db);
        match d.global_cluster {
            Some(_) => crate::account::cluster_endpoint(&self.r.rds_dr, &d.replica).await,
            None => instance_endpoint(&self.r.rds_dr, &d.replica).await,
        }
    }

    /// Data a failover to the replica loses (AWS seconds of the primary's writing), as the
    /// simulator's replication model measures it: the primary's last write position minus
    /// the promoted replica's.
    pub async fn data_lost(&self, db: &str) -> f64 {
        let d = self.db(db);
        let rep = self.sim.replication_of(&self.plan.dr, d.kind(), &d.replica).await;
        self.plan
            .scale
            .aws(rep.replica.map(|r| r.behind_seconds).unwrap_or(0.0))
    }

    /// Kills (SIGKILL) the promoter's running invocations as soon as AWS has accepted a
    /// `action` request; returns how many were killed.
    pub async fn kill_promoter_after(&self, action: &str, limit: f64) -> usize {
        let deadline = unix_now() + self.plan.scale.real_secs(limit);
        let mut since = self.wire_mark;
        while unix_now() < deadline {
            let (wire, next) = self.sim.wire(since).await;
            since = next;
            if self.ours(wire).accepted(action) > 0 {
                let killed = self.lambda.kill(PROMOTER);
                self.note(format!(
                    "{killed} promoter invocation(s) killed (SIGKILL) after {action}"
                ));
                return killed;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        panic!(
            "{}: no {action} within the limit\n{}",
            self.plan.name,
            self.story().await
        )
    }

    /// The lag checker's verdicts on `db` since `since` (unix time; `RpoStatus`: 0 healthy,
    /// 1 breached, 2 broken), one per period, oldest first.
    pub async fn verdicts(&self, db: &str, since: f64) -> Vec<f64> {
        let resource = [("Resource", self.db(db).lag_resource.as_str())];
        let from = chrono::DateTime::from_timestamp(since as i64, 0).unwrap_or_default();
        let period = self.plan.scale.period() as i32;
        crate::account::maxima(&self.cw_dr, "drpilot", "RpoStatus", &resource, from, period)
            .await
            .into_iter()
            .map(|p| p.1)
            .collect()
    }

    /// Injects a fault (see `Simulator::fault`), removed when the night ends.
    pub async fn fault(&self, spec: Value) -> u64 {
        let id = self.sim.fault(spec).await;
        self.faults.lock().unwrap().push(id);
        id
    }

    /// Invokes one of the night's functions directly (an operator's command), waiting for
    /// its answer.
    pub async fn invoke(&self, function: &str, event: Value) -> Outcome {
        self.lambda
            .clone()
            .invoke(function.into(), "operator".into(), event)
            .await
            .outcome
    }

    pub async fn invoke_promoter(&self, event: Value) -> Outcome {
        self.invoke(PROMOTER, event).await
    }

    /// `drpilot status --json`, as a responder runs it with Terraform's dashboard settings.
    pub async fn status(&self) -> drpilot::dashboard::Dashboard {
        let out = tokio::process::Command::new(function_binary("drpilot"))
            .args(["status", "--json"])
            .env_clear()
            .envs(&self.status_env)
            .output()
            .await
            .expect("run drpilot status");
        assert!(
            out.status.success(),
            "drpilot status: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("drpilot status --json")
    }

    /// Tags the standby for a drill plan (`drpilot:drill-plan`).
    pub async fn tag_standby(&self, db: &str, plan: &str) {
        self.tag_standby_with(db, "drpilot:drill-plan", plan).await;
    }

    /// Sets a tag on the database's standby (an RDS replica, or an Aurora secondary cluster).
    pub async fn tag_standby_with(&self, db: &str, key: &str, value: &str) {
        let kind = if self.db(db).global_cluster.is_some() {
            "cluster"
        } else {
            "db"
        };
        let arn = format!(
            "arn:aws:rds:{}:{}:{kind}:{}",
            self.plan.dr,
            self.r.account,
            self.db(db).replica
        );
        self.r
            .rds_dr
            .add_tags_to_resource()
            .resource_name(arn)
            .tags(crate::account::rds_tags(&[(key, value)])[0].clone())
            .send()
            .await
            .unwrap();
    }

    /// The EventBridge event CloudWatch sent when the database's alarm last entered `state`
    /// (to deliver it again, as EventBridge's retries or a queue redrive would).
    pub async fn alarm_event(&self, db: &str, state: &str) -> Value {
        let d = self.db(db);
        let change = self
            .sim
            .alarm_changes(&self.plan.dr, &d.alarm)
            .await
            .into_iter()
            .rfind(|c| c.state == state)
            .unwrap_or_else(|| panic!("the alarm of {db} never entered {state}"));
        let at = chrono::DateTime::from_timestamp_millis((change.at * 1000.0) as i64).unwrap();
        let mut event = crate::sample_event("failover-promoter/alarm-eventbridge.json");
        event["time"] = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).into();
        event["region"] = self.plan.dr.clone().into();
        event["detail"]["alarmName"] = d.alarm.clone().into();
        event["detail"]["state"] = json!({
            "value": state,
            "reason": change.reason,
            "timestamp": at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
        });
        event
    }

    /// Puts the database's primary into `status` for `aws_seconds` (maintenance: a reboot,
    /// an upgrade), with replication paused while it lasts.
    pub async fn primary_in(&self, db: &str, status: &str, aws_seconds: f64) {
        let d = self.db(db);
        self.sim
            .hold_instance(
                &self.plan.source,
                &d.primary,
                status,
                self.plan.scale.real_secs(aws_seconds),
            )
            .await;
        self.note(format!(
            "{db}'s primary is {status} for {}",
            drpilot::plan::lag::human_seconds(aws_seconds)
        ));
    }

    /// RDS applies an OS update to the database's Multi-AZ primary for `aws_seconds` in its
    /// maintenance window: the pending maintenance action and RDS's "Applying off-line
    /// patches" event are reported; the status stays `available` while the update fails the
    /// instance over to its standby host, so the endpoint stops answering (every health
    /// checker fails) and cross-region replication breaks until it reconnects.
    pub async fn primary_patched_through_multi_az_failover(&self, db: &str, aws_seconds: f64) {
        let d = self.db(db).clone();
        let real = self.plan.scale.real_secs(aws_seconds);
        self.sim
            .apply_maintenance(
                &self.plan.source,
                d.kind(),
                &d.primary,
                json!({"action": "system-update", "description": "New Operating System update is available", "seconds": real}),
            )
            .await;
        if let Some(check) = &d.health_check_id {
            self.sim.health_checkers(check, Some("failing")).await;
        }
        self.sim
            .set_replication_of(&self.plan.dr, d.kind(), &d.replica, json!({"broken": true}))
            .await;
        self.note(format!(
            "{db}'s primary: OS update through a Multi-AZ failover for {} (status available, endpoint not answering, replication broken)",
            drpilot::plan::lag::human_seconds(aws_seconds)
        ));
        tokio::time::sleep(self.plan.scale.real(aws_seconds)).await;
        if let Some(check) = &d.health_check_id {
            self.sim.health_checkers(check, None).await;
        }
        self.sim
            .set_replication_of(&self.plan.dr, d.kind(), &d.replica, json!({"broken": false}))
            .await;
        self.note(format!("{db}'s primary: the update is done, replication resumes"));
    }

    /// Puts the database's standby into `status` for `aws_seconds`, still replicating
    /// (a backup, a modification).
    pub async fn standby_in(&self, db: &str, status: &str, aws_seconds: f64) {
        let d = self.db(db);
        self.sim
            .hold_instance_with(
                &self.plan.dr,
                &d.replica,
                json!({"status": status, "seconds": self.plan.scale.real_secs(aws_seconds), "pauses_replication": false}),
            )
            .await;
        self.note(format!(
            "{db}'s standby is {status} for {}",
            drpilot::plan::lag::human_seconds(aws_seconds)
        ));
    }

    /// The alarm returns to OK for a moment (SetAlarmState, as when someone tests it); its
    /// next evaluation takes it back to ALARM: a new alarm episode, delivered again.
    pub async fn alarm_flaps(&self, db: &str) {
        self.cw_dr
            .set_alarm_state()
            .alarm_name(&self.db(db).alarm)
            .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
            .state_reason("set to OK by hand")
            .send()
            .await
            .unwrap();
        self.note(format!("alarm of {db} set to OK by hand"));
    }

    pub fn invocations(&self) -> Vec<Invocation> {
        self.lambda.log.lock().unwrap().clone()
    }

    /// Stops the schedules and the event delivery; what ran, ran. With `STORY` set in the
    /// environment (`make scenarios STORY=1`), prints the night's story first.
    pub async fn end(&mut self) {
        if std::env::var_os("STORY").is_some() {
            println!(
                "\n--- the night of {} (AWS time from its start)\n{}",
                self.plan.name,
                self.story().await
            );
        }
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks.drain(..) {
            t.abort();
        }
        if let Some(c) = self.cleanup.take() {
            c.run().await;
        }
    }

    /// What happened, for a failing assertion: AWS time, from the night's start.
    pub async fn story(&self) -> String {
        let at = |t: f64| {
            format!(
                "{:>8}",
                drpilot::plan::lag::human_seconds(self.plan.scale.aws(t - self.t0).round())
            )
        };
        let mut lines: Vec<(f64, String)> = self.events.lock().unwrap().clone();
        for d in &self.dbs {
            for c in self.sim.alarm_changes(&self.plan.dr, &d.alarm).await {
                lines.push((c.at, format!("alarm {} -> {}: {}", d.alarm, c.state, c.reason)));
            }
        }
        for i in self.invocations() {
            if i.trigger == "schedule" || i.trigger == "continuation schedule" {
                if let Outcome::Ok(_) = i.outcome {
                    continue;
                }
            }
            let outcome = match &i.outcome {
                Outcome::Ok(v) => format!("ok {}", truncate(&v.to_string(), 300)),
                Outcome::Error(e) => format!("ERROR {}", truncate(e, 400)),
                Outcome::Killed => "KILLED".into(),
                Outcome::TimedOut => "TIMED OUT".into(),
            };
            lines.push((
                i.started,
                format!("{} ({}, {:.1}s): {outcome}", i.function, i.trigger, i.ended - i.started),
            ));
        }
        for n in self.notices().await {
            lines.push((0.0, format!("notice: {}", n.subject)));
        }
        lines.sort_by(|a, b| a.0.total_cmp(&b.0));
        lines
            .iter()
            .map(|(t, l)| format!("  {} {l}", if *t > 0.0 { at(*t) } else { "       -".into() }))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Night {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in &self.tasks {
            t.abort();
        }
        // A night that did not end (a failed assertion) still leaves the simulator as it
        // found it, so that one failure does not become others in later tests.
        if let Some(c) = self.cleanup.take() {
            crate::sim::blocking(move |_| c.run());
        }
    }
}

/// What a night changed in the simulator beyond its own resources.
struct Cleanup {
    source: String,
    dr: String,
    alarms: Vec<String>,
    faults: Arc<Mutex<Vec<u64>>>,
}

impl Cleanup {
    async fn run(self) {
        let sim = Simulator::connect();
        sim.region_returns(&self.source).await;
        sim.reset_region(&self.source).await;
        sim.reset_region(&self.dr).await;
        let faults: Vec<u64> = self.faults.lock().unwrap().clone();
        for id in faults {
            sim.clear_fault(id).await;
        }
        // its alarms would go on being evaluated (and delivered) for the rest of the run
        let cw = aws_sdk_cloudwatch::Client::new(&sdk(&self.dr).await);
        let _ = cw.delete_alarms().set_alarm_names(Some(self.alarms)).send().await;
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    }
}

/// What Lambda hands the function for a queued event: an SNS envelope becomes the `Records`
/// event of a subscribed function; EventBridge events and alarm Lambda-action payloads are
/// passed as they are.
fn lambda_event(body: Value) -> (String, Value) {
    if body.get("Type").and_then(Value::as_str) == Some("Notification") {
        let mut sns = body.clone();
        if let Some(o) = sns.as_object_mut() {
            if let Some(url) = o.remove("SigningCertURL") {
                o.insert("SigningCertUrl".into(), url);
            }
            o.entry("MessageAttributes").or_insert(json!({}));
        }
        let topic = body.get("TopicArn").and_then(Value::as_str).unwrap_or_default();
        return (
            "SNS".into(),
            json!({"Records": [{
                "EventSource": "aws:sns", "EventVersion": "1.0",
                "EventSubscriptionArn": format!("{topic}:drsim"), "Sns": sns
            }]}),
        );
    }
    if body.get("alarmData").is_some() {
        return ("alarm Lambda action".into(), body);
    }
    let mut event = body;
    if let Some(o) = event.as_object_mut() {
        o.remove("ingestion-time");
    }
    ("EventBridge".into(), event)
}

/// The app's record as the promoter's settings name it (a CNAME, TTL 30).
fn dns_spec(zone: &str, record: &str) -> drpilot::model::DnsSpec {
    drpilot::model::DnsSpec {
        zone_id: zone.to_string(),
        record_name: record.to_string(),
        record_type: "CNAME".into(),
        ttl: 30,
        switch: drpilot::model::DnsSwitch::Upsert,
    }
}

/// Points `record` at `target`, through drpilot's own Route 53 adapter.
pub async fn point(route53: &aws_sdk_route53::Client, zone: &str, record: &str, target: &str) {
    drpilot::aws::route53::Route53::with_client(route53.clone())
        .point(&dns_spec(zone, record), target)
        .await
        .expect("point the record");
}

/// What Terraform makes of `dns.mode = "failover-records"` (infra/dns.tf): the alarm on
/// drpilot's `FailedOver` metric in the DR region (missing data keeps its state), a
/// CLOUDWATCH_METRIC health check reading its data (its last known status while the data is
/// insufficient; healthy when new), the PRIMARY
/// record (the primary's endpoint, with that health check) and the SECONDARY (the standby's).
#[allow(clippy::too_many_arguments)]
async fn failover_records(
    route53: &aws_sdk_route53::Client,
    cw: &aws_sdk_cloudwatch::Client,
    plan: &NightPlan,
    p: &DbPlan,
    zone: &str,
    record: &str,
    alarm: &str,
    primary_endpoint: &str,
    standby_endpoint: &str,
) {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
    use aws_sdk_route53::types::{
        AlarmIdentifier, Change, ChangeAction, ChangeBatch, CloudWatchRegion, HealthCheckConfig, HealthCheckType,
        InsufficientDataHealthStatus, ResourceRecord, ResourceRecordSet, ResourceRecordSetFailover, RrType,
    };
    cw.put_metric_alarm()
        .alarm_name(alarm)
        .namespace("drpilot")
        .metric_name(drpilot::model::FAILED_OVER_METRIC)
        .dimensions(Dimension::builder().name("Database").value(&p.name).build())
        .statistic(Statistic::Maximum)
        .period(plan.scale.period() as i32)
        .evaluation_periods(1)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .threshold(1.0)
        .treat_missing_data("ignore")
        .send()
        .await
        .unwrap();
    let health_check = create_health_check(
        route53,
        HealthCheckConfig::builder()
            .r#type(HealthCheckType::CloudwatchMetric)
            .alarm_identifier(
                AlarmIdentifier::builder()
                    .region(CloudWatchRegion::from(plan.dr.as_str()))
                    .name(alarm)
                    .build()
                    .unwrap(),
            )
            .insufficient_data_health_status(InsufficientDataHealthStatus::LastKnownStatus),
    )
    .await;
    let set = |role: ResourceRecordSetFailover, target: &str, health: Option<&str>| {
        Change::builder()
            .action(ChangeAction::Create)
            .resource_record_set(
                ResourceRecordSet::builder()
                    .name(record)
                    .r#type(RrType::Cname)
                    .ttl(30)
                    .set_identifier(role.as_str().to_lowercase())
                    .failover(role)
                    .set_health_check_id(health.map(str::to_string))
                    .resource_records(ResourceRecord::builder().value(target).build().unwrap())
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(
            ChangeBatch::builder()
                .changes(set(
                    ResourceRecordSetFailover::Primary,
                    primary_endpoint,
                    Some(&health_check),
                ))
                .changes(set(ResourceRecordSetFailover::Secondary, standby_endpoint, None))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// A Route 53 TCP health check of `endpoint`; returns its id.
pub async fn health_check(route53: &aws_sdk_route53::Client, endpoint: &str) -> String {
    use aws_sdk_route53::types::{HealthCheckConfig, HealthCheckType};
    create_health_check(
        route53,
        HealthCheckConfig::builder()
            .fully_qualified_domain_name(endpoint)
            .port(5432)
            .r#type(HealthCheckType::Tcp)
            .failure_threshold(3)
            .request_interval(10),
    )
    .await
}

/// Creates the health check `config` describes; returns its id.
async fn create_health_check(
    route53: &aws_sdk_route53::Client,
    config: aws_sdk_route53::types::builders::HealthCheckConfigBuilder,
) -> String {
    route53
        .create_health_check()
        .caller_reference(unique("hc"))
        .health_check_config(config.build().unwrap())
        .send()
        .await
        .unwrap()
        .health_check()
        .unwrap()
        .id()
        .to_string()
}

/// A failover's timeline in AWS time (seconds), measured from when the region went dark.
#[derive(Debug, Clone, Default)]
pub struct FailoverTimes {
    /// Outage -> the alarm in ALARM (CloudWatch's evaluation of the shipped alarm).
    pub detect: f64,
    /// Alarm -> the promoter's decision (delivery, gates).
    pub decide: f64,
    /// Decision -> the standby promoted and available.
    pub promote: f64,
    /// Promoted -> the recovery plan's capacity settled (`None`: no plan).
    pub capacity: Option<f64>,
    /// Promoted (or capacity settled) -> the DNS change in sync.
    pub dns: f64,
    /// Outage -> DNS in sync: what the application saw.
    pub rto: f64,
    pub rto_budget: f64,
    /// drpilot's estimate of the data lost, at its decision.
    pub estimated_rpo: Option<f64>,
    pub data_loss_limit: f64,
}

impl Night {
    /// The failover of `db`, measured against the outage that began at `outage_at`.
    pub async fn times(&self, db: &str, outage_at: f64) -> Option<FailoverTimes> {
        let f = self.failover(db).await?;
        let at = |t: chrono::DateTime<chrono::Utc>| t.timestamp_millis() as f64 / 1000.0;
        let s = self.plan.scale;
        let (promoted, in_sync) = (at(f.promoted_at?), at(f.dns_in_sync_at?));
        let settled = f.capacity_settled.as_ref().map(|(_, t)| at(*t));
        let plan = &self.db(db).plan;
        Some(FailoverTimes {
            detect: s.aws(at(f.detected_at) - outage_at),
            decide: s.aws(at(f.decided_at) - at(f.detected_at)),
            promote: s.aws(promoted - at(f.decided_at)),
            capacity: settled.map(|t| s.aws(t - promoted)),
            dns: s.aws(in_sync - settled.unwrap_or(promoted)),
            rto: s.aws(in_sync - outage_at),
            rto_budget: plan.rto,
            estimated_rpo: f.estimated_rpo_seconds.map(|e| s.aws(e)),
            data_loss_limit: plan.max_data_loss,
        })
    }
}
