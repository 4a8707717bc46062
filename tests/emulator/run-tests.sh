#!/usr/bin/env bash
# `make test`'s Rust tests: the scenario suite on a simulator of its own, alongside every other
# test on another. Both halves mostly wait on AWS's (scaled) clock rather than compute, so on
# CI's 2-core machine they overlap well: the wall time is the longer half, not the sum. Two
# simulators also keep the halves from seeing each other's outages and settings (a region
# outage is simulator-wide). The scenario suite's output is printed when it ends; the exit
# status is non-zero if either half failed.
set -uo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
sim="tests/emulator/with-simulator.sh"

# Build once, before either half starts, so neither waits on the other's compilation.
cargo test --workspace --no-run --quiet || exit $?
cargo test -p drpilot-tests --test scenarios --no-run --quiet || exit $?

# Clippy (make lint's) runs meanwhile at the lowest priority: the tests mostly wait on the
# simulator's scaled clock, so it takes the idle CPU, not theirs. Its own target directory
# keeps it from ever holding the tests' build lock.
lintlog="$(mktemp "${TMPDIR:-/tmp}/drpilot-clippy.XXXXXX")"
CARGO_TARGET_DIR="$repo/target/clippy" nice -n 19 \
  cargo clippy --workspace --all-targets --quiet -- -D warnings >"$lintlog" 2>&1 &
lint=$!

log="$(mktemp "${TMPDIR:-/tmp}/drpilot-scenarios.XXXXXX")"
# In a process group of its own, so that an interrupted run stops all of it (the wrapper,
# cargo, the scenarios' binaries and their simulator), not just the wrapper.
setsid "$sim" cargo test --quiet -p drpilot-tests --test scenarios >"$log" 2>&1 &
scenarios=$!
stop() {
  kill -- -"$scenarios" 2>/dev/null; kill "$lint" 2>/dev/null
  wait "$scenarios" "$lint" 2>/dev/null; rm -f "$log" "$lintlog"
}
trap 'stop; exit 130' INT TERM

echo "run-tests: the scenario suite runs meanwhile on its own simulator; its report follows the other tests" >&2
"$sim" cargo test --workspace
others=$?

wait "$scenarios"
nights=$?
wait "$lint"
lints=$?
trap - INT TERM
echo
echo "==== the scenario suite (its own simulator) ===="
cat "$log"
echo "==== cargo clippy --workspace --all-targets -- -D warnings: exit $lints ===="
cat "$lintlog"
rm -f "$log" "$lintlog"
if [ "$others" -ne 0 ] || [ "$nights" -ne 0 ] || [ "$lints" -ne 0 ]; then
  echo "run-tests: failed (other tests: exit $others; scenario suite: exit $nights; clippy: exit $lints)" >&2
  exit 1
fi
