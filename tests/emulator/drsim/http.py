"""The WSGI layer in front of moto: it reads who a request is for (the SigV4 credential scope
names the region and service), applies region outages and injected faults, records the
request in the wire log, and serves the control API under ``/drsim/``.
"""

import contextlib
import gzip
import io
import json
import re
import socket
import time
import uuid
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from . import s3, sts
from .core import SIM, Fault, Outage, Request, now

SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")

# Throttling answers as each service gives them (error code, HTTP status). Query-protocol
# services answer `Throttling` ("Rate exceeded"); S3 answers `SlowDown` with 503; JSON
# services `ThrottlingException` (AWS General Reference, "Error retries and exponential
# backoff"; S3 API Reference, "Error responses").
THROTTLE = {
    "s3": ("SlowDown", 503),
    "kms": ("ThrottlingException", 400),
    "events": ("ThrottlingException", 400),
    "sqs": ("ThrottlingException", 400),
    "lambda": ("TooManyRequestsException", 429),
}
DEFAULT_THROTTLE = ("Throttling", 400)

XMLNS = {
    "rds": "http://rds.amazonaws.com/doc/2014-10-31/",
    "monitoring": "http://monitoring.amazonaws.com/doc/2010-08-01/",
    "sns": "http://sns.amazonaws.com/doc/2010-03-31/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "route53": "https://route53.amazonaws.com/doc/2013-04-01/",
}


def _scalar_params(d: dict[str, Any]) -> dict[str, str]:
    return {k: str(v)[:256] for k, v in d.items() if isinstance(v, (str, int, float, bool))}


ROUTE53 = [
    ("POST", re.compile(r"^/2013-04-01/hostedzone/([^/]+)/rrset/?$"), "ChangeResourceRecordSets"),
    ("GET", re.compile(r"^/2013-04-01/hostedzone/([^/]+)/rrset/?$"), "ListResourceRecordSets"),
    ("GET", re.compile(r"^/2013-04-01/change/([^/]+)$"), "GetChange"),
    ("GET", re.compile(r"^/2013-04-01/healthcheck/([^/]+)/status$"), "GetHealthCheckStatus"),
    ("POST", re.compile(r"^/2013-04-01/healthcheck$"), "CreateHealthCheck"),
    ("POST", re.compile(r"^/2013-04-01/hostedzone$"), "CreateHostedZone"),
    ("GET", re.compile(r"^/2013-04-01/hostedzone/([^/]+)$"), "GetHostedZone"),
]


def _route53(method: str, path: str, body: bytes) -> tuple[str, dict[str, str]]:
    for m, pattern, action in ROUTE53:
        found = pattern.match(path)
        if m == method and found:
            params = {"Id": found.group(1)} if found.groups() else {}
            if action == "ChangeResourceRecordSets":
                text = body.decode("utf-8", "replace")
                params["Names"] = ",".join(re.findall(r"<Name>([^<]*)</Name>", text))
                params["Values"] = ",".join(re.findall(r"<Value>([^<]*)</Value>", text))
                params["Actions"] = ",".join(re.findall(r"<Action>([^<]*)</Action>", text))
            return action, params
    return f"{method} {path}", {}


def _s3(environ: dict[str, Any], method: str, path: str, query: dict[str, list[str]]) -> tuple[str, dict[str, str]]:
    parts = path.lstrip("/").split("/", 1)
    bucket = parts[0]
    key = parts[1] if len(parts) > 1 else ""
    params = {"Bucket": bucket}
    if key:
        params["Key"] = key
    copy = "HTTP_X_AMZ_COPY_SOURCE" in environ
    if key:
        if method == "PUT":
            if "partNumber" in query:
                return ("UploadPartCopy" if copy else "UploadPart"), params
            return ("CopyObject" if copy else "PutObject"), params
        if method == "POST" and "uploads" in query:
            return "CreateMultipartUpload", params
        if method == "POST" and "uploadId" in query:
            return "CompleteMultipartUpload", params
        if method == "DELETE" and "uploadId" in query:
            return "AbortMultipartUpload", params
        return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(method, method), params
    for flag, action in (("versioning", "BucketVersioning"), ("versions", "ListObjectVersions"), ("delete", "DeleteObjects")):
        if flag in query:
            if flag == "versioning":
                return ("Get" if method == "GET" else "Put") + action, params
            return action, params
    if method == "GET":
        return ("ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"), params
    return {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}.get(method, method), params


def classify(environ: dict[str, Any]) -> Request:
    """Who the request is for, and what it asks. Reads (and puts back) small request bodies."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    found = SCOPE.search(auth)
    access_key = None
    if found:
        access_key, region, service = found.group(1), found.group(2), found.group(3)
    elif query.get("X-Amz-Credential"):
        scope = query["X-Amz-Credential"][0].split("/")
        access_key = scope[0]
        region, service = (scope[2], scope[3]) if len(scope) >= 4 else (None, None)
    else:
        region, service = None, None
    req = _classify(environ, query, region, service)
    req.access_key = access_key
    req.account = sts.caller_account(access_key) if service else None
    return req


def _classify(environ: dict[str, Any], query: dict[str, list[str]], region: str | None, service: str | None) -> Request:
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "")
    ctype = environ.get("CONTENT_TYPE", "")
    target = environ.get("HTTP_X_AMZ_TARGET")
    body = b""
    small = service != "s3" and int(environ.get("CONTENT_LENGTH") or 0) < 1_000_000
    if small and environ.get("CONTENT_LENGTH"):
        body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        environ["wsgi.input"] = io.BytesIO(body)
    if target:
        try:
            params = _scalar_params(json.loads(body or b"{}"))
        except ValueError:
            params = {}
        return Request(region, service, target.split(".")[-1], params, "json")
    if "x-www-form-urlencoded" in ctype or (method == "GET" and "Action" in query):
        if body and environ.get("HTTP_CONTENT_ENCODING") == "gzip":
            # the SDK compresses a large PutMetricData (CloudWatch's request compression)
            body = gzip.decompress(body)
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True) if body else query
        params = {k: v[0][:256] for k, v in form.items() if k not in ("Action", "Version")}
        action = (form.get("Action") or [None])[0]
        return Request(region, service, action, params, "query")
    if service == "route53":
        action, params = _route53(method, path, body)
        return Request(region, service, action, params, "rest-xml")
    if service == "s3":
        action, params = _s3(environ, method, path, query)
        return Request(region, service, action, params, "rest-xml")
    return Request(region, service, f"{method} {path}" if service else None, {}, "rest-json")


def error_body(req: Request, status: int, code: str, message: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """An error as the request's protocol carries it, so the SDK decodes the code."""
    rid = str(uuid.uuid4())
    reason = {400: "Bad Request", 404: "Not Found", 412: "Precondition Failed", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
    line = f"{status} {reason.get(status, 'Error')}"
    if req.protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        return line, [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", code), ("x-amzn-RequestId", rid)], body
    if req.service == "s3":
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{rid}</RequestId></Error>'
        return line, [("Content-Type", "application/xml"), ("x-amz-request-id", rid)], body.encode()
    kind = "Receiver" if status >= 500 else "Sender"
    xmlns = XMLNS.get(req.service or "", "")
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="{xmlns}"><Error><Type>{kind}</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
    )
    return line, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body.encode()


def drop_connection(environ: dict[str, Any]) -> None:
    """The connection goes away without an answer, as with an unreachable region."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    # werkzeug treats a ConnectionError from the app as a dropped connection, quietly.
    raise ConnectionAbortedError("drsim: connection dropped")


CODE = re.compile(rb"<Code>([^<]+)</Code>|\"__type\"\s*:\s*\"([^\"]+)\"")


class Simulator:
    """The WSGI app: the control API, then outages and faults, then moto."""

    def __init__(self, moto_app: Callable[..., Iterable[bytes]], routes: list[tuple[str, re.Pattern, Callable]]):
        self.moto = moto_app
        self.routes = routes

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/drsim" or path.startswith("/drsim/"):
            return self.control(environ, start_response)
        started = now()
        req = classify(environ)
        outage = SIM.outage_for(req)
        if outage is not None:
            return self.unreachable(environ, start_response, req, outage, started)
        fault = SIM.take_fault(req) if req.service else None
        if fault is not None:
            answered = self.inject(environ, start_response, req, fault, started)
            if answered is not None:
                return answered
        refused = sts.refusal(req)
        if refused is not None:
            SIM.record(req, 403, "AccessDenied", "answered", started)
            line, headers, body = error_body(req, 403, "AccessDenied", refused)
            start_response(line, headers)
            return [body]
        if req.service == "s3":
            s3.copy_into_locked_bucket(environ, req)
        unmet = s3.copy_precondition(environ, req) if req.service == "s3" else None
        if unmet is not None:
            status, code, message = unmet
            SIM.record(req, status, code, "answered", started)
            line, headers, body = error_body(req, status, code, message)
            start_response(line, headers)
            return [body]
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        # SQS long polls sleep inside moto: never under the lock (the models do not read SQS,
        # and moto's queues guard themselves)
        with contextlib.nullcontext() if req.service == "sqs" else SIM.lock:
            body = b"".join(self.moto(environ, capture))
        status = int(captured["status"].split(" ", 1)[0])
        error = None
        if status >= 300:
            found = CODE.search(body[:4096])
            error = (found.group(1) or found.group(2)).decode() if found else f"HTTP{status}"
            if error and "#" in error:
                error = error.split("#")[-1]
        if req.service:
            SIM.record(req, status, error, "answered", started)
        if fault is not None and fault.hold_ms:
            time.sleep(fault.hold_ms / 1000)
        if fault is not None and fault.mode == "lost":
            # AWS did the work; the answer never arrives (the caller's retry finds it done)
            drop_connection(environ)
            return []
        start_response(captured["status"], captured["headers"])
        return [body]

    def unreachable(self, environ: dict[str, Any], start_response: Callable, req: Request, outage: Outage, started: float) -> Iterable[bytes]:
        if outage.mode == "unavailable":
            SIM.record(req, 503, "ServiceUnavailable", "region-dark", started)
            line, headers, body = error_body(req, 503, "ServiceUnavailable", "Service Unavailable")
            start_response(line, headers)
            return [body]
        if outage.mode == "timeout":
            deadline = started + outage.hold_seconds
            # the region may come back while the request hangs: it still never gets an answer
            while now() < deadline:
                time.sleep(0.1)
        SIM.record(req, 0, "ConnectionDropped", "region-dark", started)
        drop_connection(environ)
        return []

    def inject(self, environ: dict[str, Any], start_response: Callable, req: Request, fault: Fault, started: float) -> Iterable[bytes] | None:
        if fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        if fault.mode in ("latency", "lost"):
            return None
        if fault.mode in ("reset", "timeout"):
            if fault.mode == "timeout":
                time.sleep(max(fault.hold_ms, 30_000) / 1000)
            SIM.record(req, 0, "ConnectionDropped", "injected", started)
            drop_connection(environ)
        if fault.mode == "throttle":
            code, status = THROTTLE.get(req.service or "", DEFAULT_THROTTLE)
            code, status = fault.code or code, fault.status or status
            message = fault.message or "Rate exceeded"
        else:
            code = fault.code or "InternalFailure"
            status = fault.status or 500
            message = fault.message or "injected by drsim"
        SIM.record(req, status, code, "injected", started)
        line, headers, body = error_body(req, status, code, message)
        start_response(line, headers)
        return [body]

    # -- control API -----------------------------------------------------------------------
    def control(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "").rstrip("/") or "/drsim"
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError as e:
            return self.reply(start_response, 400, {"error": f"the body is not JSON: {e}"})
        for m, pattern, handler in self.routes:
            found = pattern.match(path)
            if m == method and found:
                try:
                    with SIM.lock:
                        result = handler(body, query, *found.groups())
                except (ValueError, KeyError, TypeError) as e:
                    return self.reply(start_response, 400, {"error": str(e)})
                return self.reply(start_response, 200, result)
        return self.reply(start_response, 404, {"error": f"no control route {method} {path}"})

    @staticmethod
    def reply(start_response: Callable, status: int, payload: Any) -> Iterable[bytes]:
        body = json.dumps(payload, default=str).encode()
        start_response(f"{status} {'OK' if status == 200 else 'Error'}", [("Content-Type", "application/json")])
        return [body]
