#!/usr/bin/env bash
# Runs a command against a fresh moto server: starts it on a free 127.0.0.1 port, exports
# DRPILOT_EMULATOR_URL plus the standard AWS_ENDPOINT_URL / region / dummy credentials, runs
# the command, and stops the server whatever happens (success, failure, Ctrl-C).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${DRPILOT_VENV:-$repo/.venv}"
if [ ! -x "$venv/bin/moto_server" ]; then
  echo "with-moto: moto server is not installed in $venv; run 'make test' or 'make demo' (they install it)" >&2
  exit 1
fi
port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$(mktemp "${TMPDIR:-/tmp}/drpilot-moto.XXXXXX")"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
ready=""
for _ in $(seq 1 150); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "with-moto: moto server exited at start:" >&2; cat "$log" >&2; exit 1
  fi
  if "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
      "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.2
done
[ -n "$ready" ] || { echo "with-moto: moto server did not answer on port $port" >&2; cat "$log" >&2; exit 1; }
export DRPILOT_EMULATOR_URL="http://127.0.0.1:$port"
export AWS_ENDPOINT_URL="$DRPILOT_EMULATOR_URL" AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE
echo "with-moto: moto server on $DRPILOT_EMULATOR_URL" >&2
"$@"
