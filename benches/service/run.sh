#!/usr/bin/env bash
# The service benchmark of issue 24: `skyrun service` vs blueapi 1.21.1's `blueapi serve`,
# one after the other in one session, on loopback, no message bus.
#
#   cargo build --release --bin skyrun
#   benches/service/run.sh [BLUEAPI_VENV] [SKYRUN]     # defaults: .ci/blueapi-venv, target/release/skyrun
#
# Measures GET /worker/state with ApacheBench (`ab -k`, 1 and 4 clients), and the
# time from a run request to the task's completion for a 10-point zero-delay count
# (task_latency.py: REST and WebSocket; client_run.py: blueapi's own client), plus the plan's own time outside a service
# (plan_time.py: Bluesky's RunEngine in-process; `skyrun bench count.toml`) and
# `skyrun run count.toml` as a process, and blueapi's CLI `controller run` on each. Ports 8000 (skyrun) and 8001 (blueapi).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${1:-$root/.ci/blueapi-venv}
skyrun=${2:-${CARGO_TARGET_DIR:-$root/target}/release/skyrun}
py=$venv/bin/python
# shellcheck source=common.sh
. "$here/common.sh"

echo "# $(date -Is)  $(nproc) cores  load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$skyrun" service --devices "$here/devices.toml" --bind 127.0.0.1:8000 --state-dir "$state" \
  --trace none >"$state/skyrun.log" 2>&1 & pids+=($!)
(cd "$here" && PYTHONPATH=$here exec "$venv/bin/blueapi" -c blueapi.yaml serve) \
  >"$state/blueapi.log" 2>&1 & pids+=($!)
wait_up http://127.0.0.1:8000
wait_up http://127.0.0.1:8001

for round in 1 2; do
  echo "## round $round, load: $(cut -d' ' -f1-3 /proc/loadavg)"
  rps http://127.0.0.1:8000 1 20000
  rps http://127.0.0.1:8001 1 2000
  rps http://127.0.0.1:8000 4 40000
  rps http://127.0.0.1:8001 4 4000
  "$py" "$here/task_latency.py" http://127.0.0.1:8000 30
  "$py" "$here/task_latency.py" http://127.0.0.1:8001 30
  "$py" "$here/task_latency.py" http://127.0.0.1:8000 30 --ws
  "$py" "$here/task_latency.py" http://127.0.0.1:8001 30 --ws
  XDG_CACHE_HOME=$state/cache "$py" "$here/client_run.py" http://127.0.0.1:8000 10
  XDG_CACHE_HOME=$state/cache "$py" "$here/client_run.py" http://127.0.0.1:8001 10
done
echo "## the plan's own time, load: $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$here" && PYTHONPATH=$here "$py" plan_time.py 30)
(cd "$here" && "$skyrun" bench count.toml --repeat 9 --json)
echo "## skyrun run count.toml as a process (wall time in ms, 10 runs):"
for _ in $(seq 10); do
  t0=$(date +%s%N); "$skyrun" run "$here/count.toml" --quiet --trace none >/dev/null; t1=$(date +%s%N)
  printf '%d.%02d ' $(( (t1 - t0) / 1000000 )) $(( (t1 - t0) / 10000 % 100 ))
done; echo
echo "## blueapi's CLI, \`controller run\` in the foreground (WebSocket), wall time in ms, alternating:"
export XDG_CACHE_HOME=$state/cache
for port in 8000 8001; do printf 'api:\n  url: http://127.0.0.1:%s\n' $port >"$state/cli$port.yaml"; done
for _ in $(seq 5); do
  for port in 8000 8001; do
    t0=$(date +%s%N)
    "$venv/bin/blueapi" -c "$state/cli$port.yaml" controller run -i cm12345-1 count \
      '{"detectors": ["det"], "num": 10, "delay": 0}' >"$state/cli.out" 2>&1
    t1=$(date +%s%N)
    grep -q "Plan succeeded" "$state/cli.out" || { echo "the CLI's run on $port failed" >&2; exit 1; }
    printf '%s:%d ' $port $(( (t1 - t0) / 1000000 ))
  done
done; echo
echo "# end, load: $(cut -d' ' -f1-3 /proc/loadavg)"
