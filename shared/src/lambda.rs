//! One handler, two ways to run it: the Lambda Runtime API loop inside Lambda, and a single
//! local invocation (`--event FILE|-`) everywhere else.

use crate::error::Error;
use crate::events::Decode;
use lambda_runtime::{service_fn, Context, Diagnostic, LambdaEvent};
use serde_json::Value;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const USAGE: &str = "usage: FUNCTION --event <FILE|-> [--timeout-secs N]\n\
Runs the handler once on the event (a JSON file, or - for standard input), prints the JSON \
response on stdout and exits non-zero on error. Inside Lambda (AWS_LAMBDA_RUNTIME_API set) it \
serves the Lambda Runtime API instead.";

pub use crate::state::Invocation;

impl Invocation {
    pub fn from_context(ctx: &Context) -> Self {
        Invocation {
            request_id: ctx.request_id.clone(),
            deadline: chrono::DateTime::from_timestamp_millis(ctx.deadline as i64)
                .unwrap_or_else(|| chrono::Utc::now() + chrono::Duration::minutes(15)),
        }
    }

    /// When to stop starting work: `margin_seconds` before Lambda ends the invocation.
    pub fn stop_at(&self, margin_seconds: u32) -> tokio::time::Instant {
        let left = self.deadline - chrono::Utc::now() - chrono::Duration::seconds(i64::from(margin_seconds));
        tokio::time::Instant::now() + left.to_std().unwrap_or_default()
    }
}

/// The function's own account id, from its ARN (`None` for a local run).
pub fn own_account(ctx: &Context) -> Option<String> {
    let account = ctx.invoked_function_arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then(|| account.to_string())
}

fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// Logs: JSON in Lambda when the function's log format is JSON; always on stderr locally,
/// so that stdout carries only the response.
pub fn init_tracing() {
    if in_lambda() {
        lambda_runtime::tracing::init_default_subscriber();
    } else {
        lambda_runtime::tracing::init_default_subscriber_with_writer(std::io::stderr);
    }
}

/// Unwraps a cold-start result, or prints the error (which names the setting) and exits.
pub fn or_exit<T>(result: Result<T, Error>) -> T {
    result.unwrap_or_else(|e| {
        tracing::error!(error = %e, "cold start failed");
        eprintln!("drpilot: {e}");
        std::process::exit(2)
    })
}

/// Serves `handler` with each event decoded to `E` first: an event that does not decode is
/// answered with `drpilot.BadEvent` and never reaches the handler.
pub async fn serve<E, F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    E: Decode,
    F: Fn(E, Context) -> Fut,
    Fut: Future<Output = Result<Value, Error>> + Send,
{
    let handler = &handler;
    // Boxed: the handlers' futures are deep; nested inline in the runtime's, their layout
    // overflows the compiler's query depth.
    let decoded = move |event: Value, context: Context| {
        Box::pin(async move {
            let event = E::decode(event)?;
            handler(event, context).await
        })
    };
    if in_lambda() {
        return lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
            decoded(event.payload, event.context)
        }))
        .await;
    }
    let (event, timeout) = match local_args(std::env::args().skip(1).collect()) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let deadline = SystemTime::now() + timeout;
    let mut context = Context::default();
    context.request_id = format!("local-{}", std::process::id());
    context.deadline = deadline
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    context.invoked_function_arn = "local".into();
    match decoded(event, context).await {
        Ok(response) => {
            println!("{}", serde_json::to_string_pretty(&response)?);
            Ok(())
        }
        Err(e) => {
            let diagnostic = Diagnostic::from(e);
            eprintln!("{}", serde_json::to_string(&diagnostic)?);
            std::process::exit(1);
        }
    }
}

/// Parses `--event <FILE|->` and `--timeout-secs N` (default 900, Lambda's maximum).
fn local_args(args: Vec<String>) -> Result<(Value, Duration), String> {
    let mut event_arg: Option<String> = None;
    let mut timeout = Duration::from_secs(900);
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--event" => event_arg = Some(it.next().ok_or("--event needs a file name or -")?),
            "--timeout-secs" => {
                let v = it.next().ok_or("--timeout-secs needs a number")?;
                timeout = Duration::from_secs(
                    v.parse()
                        .map_err(|_| format!("--timeout-secs: {v:?} is not a number"))?,
                );
            }
            "-h" | "--help" => return Err("help".into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let event_arg =
        event_arg.ok_or("no --event given (and AWS_LAMBDA_RUNTIME_API is not set, so this is not Lambda)")?;
    let text = if event_arg == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("cannot read the event from stdin: {e}"))?
    } else {
        std::fs::read_to_string(&event_arg).map_err(|e| format!("cannot read event file {event_arg}: {e}"))?
    };
    let event = serde_json::from_str(&text).map_err(|e| format!("the event is not valid JSON: {e}"))?;
    Ok((event, timeout))
}
