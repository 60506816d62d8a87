#!/usr/bin/env bash
# The EPICS bench (BENCHMARKS.md): one pythonSoftIOC with N ao records and
# one caproto motor-record IOC with MOTORS motors (at 1,000 mm/s: a move is
# one IOC tick), each on a free loopback port of its own; then, in one
# session against them, `skyrun bench --scenario epics` (release build),
# ophyd and ophyd-async (compare.py). Needs a venv with softioc==4.7.2,
# caproto==1.3.0, ophyd==1.11.2, pyepics, ophyd-async[ca]==0.21.3 and
# bluesky==1.15.1 ($EPICS_BENCH_PYTHON, default .ci/epics-bench-venv/bin/python);
# with the skyrun package in it too (python/.venv, which python/run-tests
# makes), skyrun.epics is measured from Python as well.
#   epics/bench/run.sh [N1,N2 [OPERATIONS [MOTORS [MOVES]]]]
# OPERATIONS: puts with completion, and events of the count.
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${EPICS_BENCH_PYTHON:-.ci/epics-bench-venv/bin/python}
ns=${1:-1000,5000}; ops=${2:-2000}; motors=${3:-100}; moves=${4:-20}
max=$(echo "$ns" | tr ',' '\n' | sort -n | tail -1)
free_port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sport=$(free_port); mport=$(free_port); rport=$(free_port)
export EPICS_CA_AUTO_ADDR_LIST=NO EPICS_CA_ADDR_LIST="127.0.0.1:$sport 127.0.0.1:$mport" EPICS_CA_REPEATER_PORT=$rport \
  EPICS_CAS_INTF_ADDR_LIST=127.0.0.1 EPICS_CAS_AUTO_BEACON_ADDR_LIST=NO EPICS_CAS_BEACON_ADDR_LIST=127.0.0.1 \
  EPICS_CAS_BEACON_PORT=$rport EPICS_CA_MAX_ARRAY_BYTES=100000
cargo build -q --release --bin skyrun
slog=$(mktemp); mlog=$(mktemp)
EPICS_CA_SERVER_PORT=$sport $py epics/tests/iocs/signals_ioc.py BENCH "$max" >"$slog" 2>&1 </dev/null &
sioc=$!
EPICS_CA_SERVER_PORT=$mport $py epics/tests/iocs/motor_ioc.py BENCHM "$motors" --velocity 1000 >"$mlog" 2>&1 </dev/null &
mioc=$!
trap 'kill $sioc $mioc 2>/dev/null || true; rm -f "$slog" "$mlog"' EXIT
for log in "$slog" "$mlog"; do
  for _ in $(seq 600); do grep -q READY "$log" && break; sleep 0.1; done
  grep -q READY "$log" || { echo "an IOC did not start" >&2; cat "$log" >&2; exit 1; }
done
echo "== skyrun bench --scenario epics (epics-ca-rs 0.31.0)"
"${CARGO_TARGET_DIR:-target}/release/skyrun" bench --scenario epics --ca-addr "127.0.0.1:$sport,127.0.0.1:$mport" \
  --pv 'BENCH:AO:{i:05}' --pvs "$ns" --messages "$ops" --repeat "${REPEAT:-3}" \
  --motor 'BENCHM:MTR{i}' --motors "$motors" --moves "$moves" ${JSON:+--json}
echo "== ophyd 1.11.2 / ophyd-async 0.21.3"
$py epics/bench/compare.py BENCH "$ns" "$ops" "$ops" BENCHM "$motors" "$moves"
