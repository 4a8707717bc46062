#!/usr/bin/env bash
# Runs a command against a fresh simulator (moto server, served in-process with drsim's
# AWS-on-a-bad-night layer: tests/emulator/drsim): starts it on a free 127.0.0.1 port, exports
# DRPILOT_EMULATOR_URL plus the standard AWS_ENDPOINT_URL / region / dummy credentials, runs
# the command, and stops the server whatever happens (success, failure, Ctrl-C).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${DRPILOT_VENV:-$repo/.venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import moto.server' 2>/dev/null; then
  echo "with-simulator: moto is not installed in $venv; run 'make test' or 'make demo' (they install it)" >&2
  exit 1
fi
port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="${DRPILOT_SIMULATOR_LOG:-$(mktemp "${TMPDIR:-/tmp}/drpilot-simulator.XXXXXX")}"
PYTHONPATH="$repo/tests/emulator${PYTHONPATH:+:$PYTHONPATH}" "$venv/bin/python" -m drsim -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  # a model error is printed by the simulator's clock; show it rather than lose it
  grep -h "^drsim: clock tick failed" "$log" | sort | uniq -c | head -5 >&2 || true
  [ -n "${DRPILOT_SIMULATOR_LOG:-}" ] || rm -f "$log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ready=""
for _ in $(seq 1 150); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "with-simulator: the simulator exited at start:" >&2; cat "$log" >&2; exit 1
  fi
  if "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
      "http://127.0.0.1:$port/drsim" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.2
done
[ -n "$ready" ] || { echo "with-simulator: the simulator did not answer on port $port" >&2; cat "$log" >&2; exit 1; }
export DRPILOT_EMULATOR_URL="http://127.0.0.1:$port"
export AWS_ENDPOINT_URL="$DRPILOT_EMULATOR_URL" AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE
echo "with-simulator: moto and the simulator on $DRPILOT_EMULATOR_URL (control API: /drsim)" >&2
"$@"
