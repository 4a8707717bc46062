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

log="$(mktemp "${TMPDIR:-/tmp}/drpilot-scenarios.XXXXXX")"
# In a process group of its own, so that an interrupted run stops all of it (the wrapper,
# cargo, the scenarios' binaries and their simulator), not just the wrapper.
setsid "$sim" cargo test --quiet -p drpilot-tests --test scenarios >"$log" 2>&1 &
scenarios=$!
stop() { kill -- -"$scenarios" 2>/dev/null; wait "$scenarios" 2>/dev/null; rm -f "$log"; }
trap 'stop; exit 130' INT TERM

echo "run-tests: the scenario suite runs meanwhile on its own simulator; its report follows the other tests" >&2
"$sim" cargo test --workspace
others=$?

wait "$scenarios"
nights=$?
trap - INT TERM
echo
echo "==== the scenario suite (its own simulator) ===="
cat "$log"
rm -f "$log"
if [ "$others" -ne 0 ] || [ "$nights" -ne 0 ]; then
  echo "run-tests: failed (other tests: exit $others; scenario suite: exit $nights)" >&2
  exit 1
fi
