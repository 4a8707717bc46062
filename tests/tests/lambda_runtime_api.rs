//! The built binary really serves the Lambda Runtime API: a minimal stand-in for the
//! Runtime API hands out one invocation and receives the response or the error report.

use drpilot_tests::account::{Regions, Responders};
use drpilot_tests::{function_binary, function_env, repo_path, unique};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

fn read_request(stream: &mut TcpStream) -> Request {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    Request { method, path, body }
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &str) {
    // One request per connection, and the client is told so: otherwise it may send its next
    // request on this (closed) connection from its pool, fail, and exit.
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/json\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    stream.write_all(out.as_bytes()).unwrap();
}

/// Serves one invocation of `event` to the binary and returns (path it posted to, body).
fn invoke_once(env: std::collections::BTreeMap<String, String>, event: &str) -> (String, Value) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let mut child = std::process::Command::new(function_binary("snapshot-copier"))
        .env_clear()
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "drpilot-snapshot-copier")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/drpilot-snapshot-copier")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline_ms = (std::time::SystemTime::now() + Duration::from_secs(60))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let mut served = false;
    listener.set_nonblocking(true).unwrap();
    let started = std::time::Instant::now();
    let result = loop {
        // Never hang: fail if the function exits or goes quiet instead of calling the API.
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("the function exited ({status}) before posting its result");
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "the function did not call the Runtime API"
                );
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) => panic!("accept: {e}"),
        };
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let req = read_request(&mut stream);
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/2018-06-01/runtime/invocation/next") if !served => {
                served = true;
                respond(
                    &mut stream,
                    "200 OK",
                    &[
                        ("Lambda-Runtime-Aws-Request-Id", REQUEST_ID.into()),
                        ("Lambda-Runtime-Deadline-Ms", deadline_ms.to_string()),
                        (
                            "Lambda-Runtime-Invoked-Function-Arn",
                            "arn:aws:lambda:us-east-1:123456789012:function:drpilot-snapshot-copier".into(),
                        ),
                        (
                            "Lambda-Runtime-Trace-Id",
                            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1".into(),
                        ),
                    ],
                    event,
                );
            }
            ("POST", path) => {
                respond(&mut stream, "202 Accepted", &[], "{\"status\":\"OK\"}");
                break (path.to_string(), serde_json::from_slice(&req.body).unwrap());
            }
            (method, path) => panic!("unexpected runtime API call {method} {path}"),
        }
    };
    child.kill().ok();
    child.wait().ok();
    result
}

#[tokio::test]
async fn the_binary_serves_an_invocation_and_posts_the_response() {
    let r = Regions::new("eu-west-3", "ap-northeast-2").await;
    let db = unique("orders");
    r.create_instance(&db, false, &[]).await;
    let responders = Responders::new("eu-west-3", &unique("responders")).await;
    let env = function_env(&[
        ("DRPILOT_SOURCE_REGION", "eu-west-3".into()),
        ("DRPILOT_DR_REGION", "ap-northeast-2".into()),
        ("DRPILOT_DB_INSTANCES", db.clone()),
        ("DRPILOT_NOTIFY_TOPIC_ARN", responders.topic_arn.clone()),
    ]);
    // The event names the instance's automated snapshot, as RDS's would.
    let snapshot = r
        .source_snapshot_ids(&db)
        .await
        .pop()
        .expect("moto takes an automated snapshot");
    let event = std::fs::read_to_string(repo_path("events/snapshot-copier/rds-automated-snapshot-created.json"))
        .unwrap()
        .replace("us-east-1", "eu-west-3")
        .replace("rds:orders-db-2026-11-25-03-04", &snapshot);
    let (path, body) = tokio::task::spawn_blocking(move || invoke_once(env, &event))
        .await
        .unwrap();
    assert_eq!(path, format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/response"));
    let entry = &body["dbs"][0];
    assert_eq!(entry["db"], db.as_str(), "{body:#}");
    assert_eq!(entry["status"], "copied", "{body:#}");
    assert_eq!(r.dr_copies_of(&db).await.len(), 1);
}

#[test]
fn the_binary_reports_a_bad_event_as_an_invocation_error() {
    let env = function_env(&[
        ("DRPILOT_SOURCE_REGION", "us-east-1".into()),
        ("DRPILOT_DR_REGION", "us-west-2".into()),
        ("DRPILOT_DB_INSTANCES", "orders".into()),
        (
            "DRPILOT_NOTIFY_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:drpilot".into(),
        ),
    ]);
    let (path, body) = invoke_once(env, r#"{"detail-type": "Mystery", "source": "aws.nowhere"}"#);
    assert_eq!(path, format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/error"));
    assert_eq!(body["errorType"], "drpilot.BadEvent");
    assert!(
        body["errorMessage"].as_str().unwrap().contains("unsupported event"),
        "{body}"
    );
}
