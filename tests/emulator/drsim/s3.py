"""S3 Inventory delivery. moto stores a bucket's inventory configurations
(PutBucketInventoryConfiguration) but never delivers a report; AWS delivers one daily or
weekly. ``POST /drsim/s3/<bucket>/inventory`` delivers now what S3 would deliver at its next
scheduled time, for each enabled configuration of the bucket (or the one named by ``id``),
as the AWS S3 User Guide describes it ("Amazon S3 Inventory"; "Locating your inventory
list"; "Inventory manifest"):

- the report's folder is ``<destination prefix>/<source bucket>/<config id>/YYYY-MM-DDTHH-MMZ/``,
  named by when the scan began; in it ``manifest.json`` (``sourceBucket``,
  ``destinationBucket`` as an ARN, ``version``, ``creationTimestamp`` in epoch milliseconds,
  ``fileFormat``, ``fileSchema``, ``files`` with each file's ``key``, ``size`` and
  ``MD5checksum``), ``manifest.checksum`` (the manifest's MD5) and
  ``hive/dt=YYYY-MM-DD-HH-MM/symlink.txt``;
- the data files under ``<destination prefix>/<source bucket>/<config id>/data/``: gzipped
  CSV, no header, every field quoted, keys URL-encoded, columns ``Bucket, Key`` then the
  configuration's optional fields in S3's order;
- the report lists the bucket as it was when the scan began (``taken``, an epoch second the
  test may set: an older scan models a report that has not caught up), current versions only,
  under the configuration's prefix filter. drpilot's Terraform asks for current versions;
  moto does not keep a configuration's ``IncludedObjectVersions``.

Data files hold at most ``rows_per_file`` rows (AWS splits large reports into several files).
The delivery's own writes are S3's, not a client's: they are not in the wire log.

Copies pinned to an ETag: moto copies whatever the source holds and ignores
``x-amz-copy-source-if-match``. AWS copies only if the source's ETag matches, and answers
``412 PreconditionFailed`` otherwise (S3 API Reference, CopyObject and UploadPartCopy,
"x-amz-copy-source-if-match"), or ``404 NoSuchKey`` when the source key is gone.
``copy_precondition`` answers so before moto sees the request.
"""

import csv
import gzip
import hashlib
import io
import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote_plus, unquote

from moto.s3.models import FakeDeleteMarker, S3Backend, s3_backends

from .core import ACCOUNT, SIM, Request

# S3's column order for the optional fields (AWS S3 User Guide, "Inventory manifest": fileSchema).
FIELD_ORDER = [
    "Size",
    "LastModifiedDate",
    "ETag",
    "StorageClass",
    "IsMultipartUploaded",
    "ReplicationStatus",
    "EncryptionStatus",
]


def _fields(config: Any) -> list[str]:
    raw = (config.optional_fields or {}).get("Field", []) if isinstance(config.optional_fields, dict) else []
    wanted = [raw] if isinstance(raw, str) else list(raw)
    unknown = sorted(set(wanted) - set(FIELD_ORDER))
    if unknown:
        raise ValueError(f"drsim does not model the inventory fields {unknown}; it has {FIELD_ORDER}")
    return [f for f in FIELD_ORDER if f in wanted]


def _utc(t: datetime) -> datetime:
    """moto keeps naive UTC times."""
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _value(key: Any, field: str) -> str:
    if field == "Size":
        return str(key.size)
    if field == "LastModifiedDate":
        return _utc(key.last_modified).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if field == "ETag":
        return key.etag.strip('"')
    if field == "StorageClass":
        return key.storage_class or "STANDARD"
    if field == "IsMultipartUploaded":
        return "true" if "-" in key.etag else "false"
    if field == "ReplicationStatus":
        return ""
    return "SSE-KMS" if key.encryption == "aws:kms" else ("SSE-S3" if key.encryption else "NOT-SSE")


def deliver(body: dict[str, Any], _q: dict[str, str], bucket_name: str) -> dict[str, Any]:
    known = {"id", "taken", "rows_per_file", "account"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ValueError(f"unknown inventory delivery fields {unknown}; known: {sorted(known)}")
    taken = float(body.get("taken", time.time()))
    rows_per_file = int(body.get("rows_per_file", 100_000))
    backend = s3_backends[body.get("account", ACCOUNT)]["global"]
    delivered = []
    with SIM.lock:
        bucket = backend.get_bucket(bucket_name)
        configs = [c for c in bucket.inventory_configs.values() if body.get("id") in (None, c.id)]
        if not configs:
            raise ValueError(f"bucket {bucket_name} has no inventory configuration {body.get('id') or ''}".strip())
        for config in configs:
            if str(config.is_enabled).lower() != "true":
                continue
            delivered.append(_deliver_one(backend, bucket, config, taken, rows_per_file))
    return {"bucket": bucket_name, "reports": delivered}


def _deliver_one(backend: Any, bucket: Any, config: Any, taken: float, rows_per_file: int) -> dict[str, Any]:
    dest = config.destination["S3BucketDestination"]
    if dest.get("Format", "CSV") != "CSV":
        raise ValueError("drsim delivers CSV inventory reports only")
    dest_arn = dest["Bucket"]
    dest_bucket = dest_arn.split(":::", 1)[-1]
    prefix = (config.filters or {}).get("Prefix") or ""
    fields = _fields(config)
    base = "/".join(p for p in [(dest.get("Prefix") or "").strip("/"), bucket.name, config.id] if p)
    scan = datetime.fromtimestamp(taken, timezone.utc)
    rows = []
    for name in sorted(bucket.keys.keys()):
        if not name.startswith(prefix):
            continue
        # the current version as it was when the scan began (a versioned bucket keeps them all)
        versions = [v for v in bucket.keys.getlist(name, []) if _utc(v.last_modified).timestamp() <= taken]
        current = versions[-1] if versions else None
        if current is None or isinstance(current, FakeDeleteMarker):
            continue
        rows.append([bucket.name, quote_plus(name)] + [_value(current, f) for f in fields])
    files = []
    for start in range(0, max(len(rows), 1), rows_per_file):
        text = io.StringIO()
        csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows[start : start + rows_per_file])
        data = gzip.compress(text.getvalue().encode())
        key = f"{base}/data/{uuid.uuid4()}.csv.gz"
        backend.put_object(dest_bucket, key, data, disable_notification=True)
        files.append({"key": key, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()})
    manifest = {
        "sourceBucket": bucket.name,
        "destinationBucket": dest_arn,
        "version": "2016-11-30",
        "creationTimestamp": str(int(taken * 1000)),
        "fileFormat": "CSV",
        "fileSchema": ", ".join(["Bucket", "Key"] + fields),
        "files": files,
    }
    folder = f"{base}/{scan.strftime('%Y-%m-%dT%H-%MZ')}"
    body = json.dumps(manifest, indent=2).encode()
    backend.put_object(dest_bucket, f"{folder}/manifest.json", body, disable_notification=True)
    backend.put_object(
        dest_bucket, f"{folder}/manifest.checksum", hashlib.md5(body).hexdigest().encode(), disable_notification=True
    )
    symlink = "\n".join(f"s3://{dest_bucket}/{f['key']}" for f in files).encode()
    backend.put_object(
        dest_bucket, f"{base}/hive/dt={scan.strftime('%Y-%m-%d-%H-%M')}/symlink.txt", symlink, disable_notification=True
    )
    return {"id": config.id, "manifest": f"s3://{dest_bucket}/{folder}/manifest.json", "objects": len(rows), "files": len(files)}


def copy_precondition(environ: dict[str, Any], req: Request) -> tuple[int, str, str] | None:
    """The error AWS gives a CopyObject / UploadPartCopy whose source does not match its
    ``x-amz-copy-source-if-match``; ``None`` lets moto answer."""
    wanted = environ.get("HTTP_X_AMZ_COPY_SOURCE_IF_MATCH")
    if req.action not in ("CopyObject", "UploadPartCopy") or not wanted:
        return None
    source, _, version = environ.get("HTTP_X_AMZ_COPY_SOURCE", "").partition("?versionId=")
    bucket, _, key = unquote(source).lstrip("/").partition("/")
    backend = s3_backends[req.account or ACCOUNT]["global"]
    with SIM.lock:
        try:
            current = backend.get_object(bucket, key, version_id=version or None)
        except Exception:  # no such bucket: moto answers that itself
            return None
        if current is None or isinstance(current, FakeDeleteMarker):
            return 404, "NoSuchKey", "The specified key does not exist."
        if current.etag.strip('"') != wanted.strip('"'):
            return 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"
    return None


def copy_into_locked_bucket(environ: dict[str, Any], req: Request) -> None:
    """Lets a CopyObject into a bucket with a default Object Lock retention through, as AWS
    does. moto asks every key PUT there for ``Content-MD5`` or ``x-amz-sdk-checksum-algorithm``;
    AWS asks it of requests that upload an object's bytes ("The Content-MD5 or
    x-amz-sdk-checksum-algorithm header is required for any request to upload an object with a
    retention period configured using Amazon S3 Object Lock": S3 API Reference, PutObject and
    UploadPart). CopyObject carries no bytes and its reference asks for neither: the copy gets
    the bucket's default retention. So the header moto looks for is supplied for a copy (moto
    reads it for nothing else on that path)."""
    if req.action != "CopyObject":
        return
    if "HTTP_CONTENT_MD5" in environ or "HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM" in environ:
        return
    environ["HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM"] = environ.get("HTTP_X_AMZ_CHECKSUM_ALGORITHM", "CRC64NVME")


def install() -> None:
    """Patches moto where its S3 differs from AWS.

    Object Lock on a bucket that holds objects: AWS enables it on an existing versioned bucket
    and changes its default retention whenever asked ("You can enable Object Lock for new or
    existing buckets": S3 API Reference, PutObjectLockConfiguration); what is already locked
    stays locked as it was. moto refuses any change once the bucket holds an object."""
    original = S3Backend.put_object_lock_configuration

    def put_object_lock_configuration(
        self: S3Backend,
        bucket_name: str,
        lock_enabled: bool,
        mode: str | None = None,
        days: int | None = None,
        years: int | None = None,
    ) -> None:
        bucket = self.get_bucket(bucket_name)
        if not (bucket.is_versioned and bucket.keys.item_size() > 0):
            return original(self, bucket_name, lock_enabled, mode=mode, days=days, years=years)
        if lock_enabled:
            bucket.object_lock_enabled = True
        bucket.default_lock_mode = mode
        bucket.default_lock_days = days
        bucket.default_lock_years = years
        return None

    S3Backend.put_object_lock_configuration = put_object_lock_configuration  # type: ignore[method-assign]
