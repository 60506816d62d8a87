#!/usr/bin/env bash
# The EPICS bench (BENCHMARKS.md): one pythonSoftIOC with N ao records on a
# free loopback port, then skyrun (epics_bench), ophyd and ophyd-async
# against it, in one session. Needs a venv with softioc==4.7.2,
# ophyd==1.11.2, pyepics, ophyd-async[ca]==0.21.3 and bluesky==1.15.1
# ($EPICS_BENCH_PYTHON, default .ci/epics-bench-venv/bin/python).
#   epics/bench/run.sh [N1,N2 [PUTS [EVENTS]]]
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${EPICS_BENCH_PYTHON:-.ci/epics-bench-venv/bin/python}
ns=${1:-1000,5000}; puts=${2:-2000}; events=${3:-2000}
max=$(echo "$ns" | tr ',' '\n' | sort -n | tail -1)
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rport=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export EPICS_CA_AUTO_ADDR_LIST=NO EPICS_CA_ADDR_LIST="127.0.0.1:$port" EPICS_CA_REPEATER_PORT=$rport \
  EPICS_CAS_INTF_ADDR_LIST=127.0.0.1 EPICS_CAS_AUTO_BEACON_ADDR_LIST=NO EPICS_CAS_BEACON_ADDR_LIST=127.0.0.1 \
  EPICS_CAS_BEACON_PORT=$rport EPICS_CA_MAX_ARRAY_BYTES=100000
cargo build -q --release -p skyrun-epics --example epics_bench
log=$(mktemp)
EPICS_CA_SERVER_PORT=$port $py epics/tests/iocs/signals_ioc.py BENCH "$max" >"$log" 2>&1 </dev/null &
ioc=$!
trap 'kill $ioc 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 600); do grep -q READY "$log" && break; sleep 0.1; done
grep -q READY "$log" || { echo "the IOC did not start" >&2; cat "$log" >&2; exit 1; }
echo "== skyrun (epics-ca-rs 0.31.0)"
"${CARGO_TARGET_DIR:-target}/release/examples/epics_bench" "127.0.0.1:$port" BENCH "$ns" "$puts" "$events"
echo "== ophyd 1.11.2 / ophyd-async 0.21.3"
$py epics/bench/compare.py BENCH "$ns" "$puts" "$events"
