//! Many accounts: a hub deployment of drpilot works in its own account and in each member
//! account of `DRPILOT_ACCOUNTS`, through a role there (`sts:AssumeRole`, with the external id
//! the member's trust policy asks for). Each member gets its own set of adapters, built at cold
//! start on credentials that are assumed on first use and cached until five minutes before they
//! expire, so a warm function calls STS once an hour per account, not once per invocation.
//!
//! A member whose role cannot be assumed is *unreachable*: its work is reported as such (the
//! reason AWS gave, and the role), and every other account's work goes on.

use crate::aws::aws_error;
use crate::error::{Error, Result};
use crate::notice::{Notice, Severity};
use aws_config::SdkConfig;
use aws_credential_types::provider::{error::CredentialsError, future, ProvideCredentials};
use aws_credential_types::Credentials;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use crate::model::AccountSpec;

/// How long assumed credentials are asked for, and how long before expiry they are renewed.
const SESSION: Duration = Duration::from_secs(3600);
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// A refusal is remembered this long: the many callers of one run (each of an unreachable
/// account's resources) get it at once instead of asking STS again one after another.
const RETRY_REFUSED_AFTER: Duration = Duration::from_secs(60);
/// STS that does not answer in this long counts as a refusal (a run must not hang on it).
const ASSUME_TIMEOUT: Duration = Duration::from_secs(10);

/// Credentials for one member account's role: assumed on first use, cached, renewed before
/// they expire. Cloned adapters share the cache.
#[derive(Clone, Debug)]
pub struct Role {
    inner: Arc<RoleInner>,
}

#[derive(Debug)]
struct RoleInner {
    spec: AccountSpec,
    session_name: String,
    source: Source,
    /// One assume at a time per role: callers meanwhile wait for its answer.
    cached: tokio::sync::Mutex<Cached>,
    /// `AssumeRole` calls made (what the cache saves).
    assumed: std::sync::atomic::AtomicU32,
}

#[derive(Debug, Default)]
enum Cached {
    #[default]
    Nothing,
    Credentials(Credentials),
    Refused {
        reason: String,
        at: std::time::Instant,
    },
}

#[derive(Debug)]
enum Source {
    Sts(aws_sdk_sts::Client),
    /// Unit tests: credentials, or the error an assume attempt gets.
    #[cfg(test)]
    Fixed(std::result::Result<Credentials, String>),
}

impl Role {
    /// `session_name` names the function in the member's CloudTrail (`drpilot-<function>`).
    pub fn new(hub: &SdkConfig, spec: &AccountSpec, session_name: &str) -> Self {
        Self::with_source(spec, session_name, Source::Sts(aws_sdk_sts::Client::new(hub)))
    }

    fn with_source(spec: &AccountSpec, session_name: &str, source: Source) -> Self {
        Role {
            inner: Arc::new(RoleInner {
                spec: spec.clone(),
                session_name: session_name.to_string(),
                source,
                cached: tokio::sync::Mutex::new(Cached::Nothing),
                assumed: std::sync::atomic::AtomicU32::new(0),
            }),
        }
    }

    #[cfg(test)]
    pub(crate) fn fixed(spec: &AccountSpec, answer: std::result::Result<Credentials, String>) -> Self {
        Self::with_source(spec, "drpilot-test", Source::Fixed(answer))
    }

    pub fn account(&self) -> &str {
        &self.inner.spec.id
    }

    pub fn spec(&self) -> &AccountSpec {
        &self.inner.spec
    }

    /// The role's credentials: cached ones while they last, else a new `AssumeRole`. The
    /// error names the account and the role, and keeps AWS's code (`AccessDenied`, ...); a
    /// refusal is remembered for a minute.
    pub async fn credentials(&self) -> Result<Credentials> {
        let spec = &self.inner.spec;
        let unreachable = |reason: String| Error::Unreachable {
            account: spec.id.clone(),
            reason: format!("cannot assume {}: {reason}", spec.role_arn),
        };
        let mut cached = self.inner.cached.lock().await;
        match &*cached {
            Cached::Credentials(c) if c.expiry().is_none_or(|at| at > SystemTime::now() + RENEW_BEFORE) => {
                return Ok(c.clone());
            }
            Cached::Refused { reason, at } if at.elapsed() < RETRY_REFUSED_AFTER => {
                return Err(unreachable(reason.clone()));
            }
            _ => {}
        }
        self.inner.assumed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let answer = match tokio::time::timeout(ASSUME_TIMEOUT, self.assume()).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("STS did not answer within {} s", ASSUME_TIMEOUT.as_secs())),
        };
        match answer {
            Ok(c) => {
                *cached = Cached::Credentials(c.clone());
                Ok(c)
            }
            Err(reason) => {
                *cached = Cached::Refused {
                    reason: reason.clone(),
                    at: std::time::Instant::now(),
                };
                Err(unreachable(reason))
            }
        }
    }

    async fn assume(&self) -> std::result::Result<Credentials, String> {
        let spec = &self.inner.spec;
        match &self.inner.source {
            Source::Sts(sts) => {
                let out = sts
                    .assume_role()
                    .role_arn(&spec.role_arn)
                    .role_session_name(&self.inner.session_name)
                    .set_external_id(spec.external_id.clone())
                    .duration_seconds(SESSION.as_secs() as i32)
                    .send()
                    .await
                    .map_err(|e| aws_error("AssumeRole", e).to_string())?;
                let c = out
                    .credentials()
                    .ok_or_else(|| "AssumeRole answered without credentials".to_string())?;
                Ok(Credentials::new(
                    c.access_key_id(),
                    c.secret_access_key(),
                    Some(c.session_token().to_string()),
                    SystemTime::try_from(*c.expiration()).ok(),
                    "drpilot-assume-role",
                ))
            }
            #[cfg(test)]
            Source::Fixed(answer) => answer.clone(),
        }
    }

    /// An SDK configuration like the hub's, on this role's credentials.
    pub fn sdk(&self, hub: &SdkConfig) -> SdkConfig {
        hub.to_builder()
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                self.clone(),
            ))
            .build()
    }
}

impl ProvideCredentials for Role {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(
            async move { self.credentials().await.map_err(CredentialsError::provider_error) },
        )
    }
}

/// The account a function works in, and how it gets in.
#[derive(Debug, Clone)]
pub enum Access {
    /// The function's own account, on its own credentials.
    Own,
    Member(Role),
}

/// The adapters `P` for each account a deployment covers: its own first, then each member's.
#[derive(Debug)]
pub struct Accounts<P> {
    pub own: P,
    pub members: Vec<Member<P>>,
}

#[derive(Debug)]
pub struct Member<P> {
    pub role: Role,
    pub ports: P,
}

/// The label an account goes by in reports and notices.
pub const OWN: &str = "this account";

/// One account's outcome in a report: its own report, or why drpilot could not get in.
#[derive(Debug, Serialize)]
pub struct AccountOutcome<R> {
    pub account: String,
    #[serde(flatten)]
    pub result: Outcome<R>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome<R> {
    Report(R),
    Unreachable(String),
}

impl<P> Accounts<P> {
    /// One account: the function's own (no `DRPILOT_ACCOUNTS`).
    pub fn single(own: P) -> Self {
        Accounts { own, members: vec![] }
    }

    /// The own account's adapters from `hub`, and each member's from an SDK configuration on
    /// its role (`build(member_sdk, hub_sdk, member)`: a member's adapters may still call the
    /// hub for what lives there, like notices and state; `member` is `None` for the own).
    pub fn build(
        hub: &SdkConfig,
        members: &[AccountSpec],
        session_name: &str,
        build: impl Fn(&SdkConfig, &SdkConfig, Option<&AccountSpec>) -> P,
    ) -> Self {
        Accounts {
            own: build(hub, hub, None),
            members: members
                .iter()
                .map(|spec| {
                    let role = Role::new(hub, spec, session_name);
                    let ports = build(&role.sdk(hub), hub, Some(spec));
                    Member { role, ports }
                })
                .collect(),
        }
    }

    pub fn is_fleet(&self) -> bool {
        !self.members.is_empty()
    }

    /// The adapters for `account` (a member's id; anything else is the function's own).
    pub fn get(&self, account: Option<&str>) -> (&P, Access) {
        match account.and_then(|id| self.member(id)) {
            Some(m) => (&m.ports, Access::Member(m.role.clone())),
            None => (&self.own, Access::Own),
        }
    }

    pub fn member(&self, account: &str) -> Option<&Member<P>> {
        self.members.iter().find(|m| m.role.account() == account)
    }

    /// `work` in every account at once (given the member's entry, `None` for the own
    /// account), the own account first in the answer. A member whose role cannot be assumed
    /// is `Unreachable` and does no work; the others go on.
    pub async fn each<'a, R, F, Fut>(&'a self, work: F) -> Vec<AccountOutcome<R>>
    where
        F: Fn(Option<&'a AccountSpec>, &'a P) -> Fut,
        Fut: std::future::Future<Output = R>,
    {
        let own = async { (OWN.to_string(), Outcome::Report(work(None, &self.own).await)) };
        let members = self.members.iter().map(|m| {
            let work = &work;
            async move {
                let outcome = match m.role.credentials().await {
                    Ok(_) => Outcome::Report(work(Some(m.role.spec()), &m.ports).await),
                    Err(e) => Outcome::Unreachable(e.to_string()),
                };
                (m.role.account().to_string(), outcome)
            }
        });
        let (own, members) = futures::join!(own, futures::future::join_all(members));
        std::iter::once(own)
            .chain(members)
            .map(|(account, result)| AccountOutcome { account, result })
            .collect()
    }
}

/// The adapters a run picks per account: an `Accounts`, or one set of adapters for a single
/// account (what a test or a local run builds).
pub trait ForAccounts<P> {
    /// The function's own account's adapters (where drpilot keeps state and sends notices).
    fn own_ports(&self) -> &P;
    /// The adapters for `account`, and how drpilot gets in.
    fn ports_for(&self, account: Option<&str>) -> (&P, Access);
}

impl<P> ForAccounts<P> for P {
    fn own_ports(&self) -> &P {
        self
    }
    fn ports_for(&self, _account: Option<&str>) -> (&P, Access) {
        (self, Access::Own)
    }
}

impl<P> ForAccounts<P> for Accounts<P> {
    fn own_ports(&self) -> &P {
        &self.own
    }
    fn ports_for(&self, account: Option<&str>) -> (&P, Access) {
        self.get(account)
    }
}

/// One notice for a run over many accounts: each failing account's own notice, and each
/// unreachable account with the reason AWS gave. `None` when every account's run succeeded.
pub fn fleet_notice<R>(
    what: &str,
    outcomes: &[AccountOutcome<R>],
    notice: impl Fn(&R) -> Option<Notice>,
) -> Option<Notice> {
    let mut severity = Severity::Info;
    let mut kind = None;
    let mut failing = vec![];
    let mut body = String::new();
    for o in outcomes {
        match &o.result {
            Outcome::Report(r) => {
                if let Some(n) = notice(r) {
                    severity = severity.max(n.severity);
                    kind = kind.or_else(|| n.attributes.get("kind").cloned());
                    body.push_str(&format!("== account {}: {}\n{}\n", o.account, n.subject, n.body));
                    failing.push(o.account.as_str());
                }
            }
            Outcome::Unreachable(why) => {
                severity = severity.max(Severity::Warning);
                body.push_str(&format!(
                    "== account {}: UNREACHABLE, nothing was done there\n{why}\nWhat to do: check the \
                     member role (infra/modules/member) exists, trusts this deployment's role, and asks for \
                     the external id in DRPILOT_ACCOUNTS.\n\n",
                    o.account
                ));
                failing.push(o.account.as_str());
            }
        }
    }
    if failing.is_empty() {
        return None;
    }
    let subject = format!(
        "drpilot: {what} failed in {} of {} accounts ({})",
        failing.len(),
        outcomes.len(),
        failing.join(", ")
    );
    let mut n = Notice::new(severity, subject, body).with_attribute("accounts", failing.join(","));
    if let Some(kind) = kind {
        n = n.with_attribute("kind", kind);
    }
    Some(n)
}

impl Access {
    /// Whether drpilot can get into the account now (`Unreachable` if its role refuses).
    pub async fn check(&self) -> Result<()> {
        match self {
            Access::Own => Ok(()),
            Access::Member(role) => role.credentials().await.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str) -> AccountSpec {
        AccountSpec {
            id: id.into(),
            role_arn: format!("arn:aws:iam::{id}:role/drpilot-member"),
            external_id: Some("x-1".into()),
            dr_kms_key_id: None,
        }
    }

    fn creds(expiry: Option<SystemTime>) -> Credentials {
        Credentials::new("AK", "SK", Some("T".into()), expiry, "test")
    }

    #[tokio::test]
    async fn an_unassumable_role_is_unreachable_and_the_others_still_work() {
        let accounts = Accounts {
            own: "own",
            members: vec![
                Member {
                    role: Role::fixed(&spec("111111111111"), Ok(creds(None))),
                    ports: "a",
                },
                Member {
                    role: Role::fixed(
                        &spec("222222222222"),
                        Err("AssumeRole failed: AccessDenied: not trusted".into()),
                    ),
                    ports: "b",
                },
            ],
        };
        let out = accounts.each(|_, p| async move { p.to_uppercase() }).await;
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json[0], serde_json::json!({"account": "this account", "report": "OWN"}));
        assert_eq!(json[1], serde_json::json!({"account": "111111111111", "report": "A"}));
        assert_eq!(
            json[2]["unreachable"],
            "account 222222222222 is unreachable: cannot assume arn:aws:iam::222222222222:role/drpilot-member: \
             AssumeRole failed: AccessDenied: not trusted"
        );
        assert!(matches!(accounts.get(Some("222222222222")).1, Access::Member(_)));
        assert!(matches!(accounts.get(Some("999999999999")).1, Access::Own));
        assert!(accounts.get(Some("222222222222")).1.check().await.is_err());
    }

    #[tokio::test]
    async fn credentials_are_cached_until_five_minutes_before_they_expire() {
        let assumed = |r: &Role| r.inner.assumed.load(std::sync::atomic::Ordering::Relaxed);
        let lasting = Role::fixed(&spec("111111111111"), Ok(creds(Some(SystemTime::now() + SESSION))));
        for _ in 0..3 {
            assert_eq!(lasting.credentials().await.unwrap().access_key_id(), "AK");
        }
        assert_eq!(assumed(&lasting), 1);

        let ending = Role::fixed(&spec("111111111111"), Ok(creds(Some(SystemTime::now() + SESSION))));
        let soon = SystemTime::now() + Duration::from_secs(60);
        *ending.inner.cached.lock().await = Cached::Credentials(Credentials::new("OLD", "S", None, Some(soon), "t"));
        assert_eq!(
            ending.credentials().await.unwrap().access_key_id(),
            "AK",
            "renewed before expiry"
        );
        assert_eq!(assumed(&ending), 1);
    }

    #[tokio::test]
    async fn a_refusal_is_remembered_for_a_minute_then_asked_again() {
        let assumed = |r: &Role| r.inner.assumed.load(std::sync::atomic::Ordering::Relaxed);
        let refused = Role::fixed(&spec("222222222222"), Err("AssumeRole failed: AccessDenied: no".into()));
        for _ in 0..5 {
            let e = refused.credentials().await.unwrap_err();
            assert!(e.to_string().contains("AccessDenied"), "{e}");
        }
        assert_eq!(assumed(&refused), 1, "the run's other callers get the refusal at once");
        *refused.inner.cached.lock().await = Cached::Refused {
            reason: "old".into(),
            at: std::time::Instant::now() - RETRY_REFUSED_AFTER,
        };
        assert!(refused.credentials().await.is_err());
        assert_eq!(assumed(&refused), 2, "asked again after a minute");
    }
}
