#!/usr/bin/env bash
# `python -m skyrun service` (Python plans and devices on skyrun's Python RunEngine) next to
# `skyrun service` and blueapi 1.21.1's `blueapi serve`, in one session, on loopback: the same
# environment module for the Python service and blueapi (blueapi_env.py: its device manager and
# its `count` plan function), devices.toml for `skyrun service`.
#
#   benches/service/run_python.sh [SKYRUN_VENV] [BLUEAPI_VENV] [SKYRUN]
#   # defaults: python/.venv (skyrun installed), .ci/blueapi-venv, target/release/skyrun
#
# Ports 8000 (skyrun service), 8001 (blueapi), 8002 (python -m skyrun service). Measures
# GET /worker/state with ApacheBench (1 and 4 clients) and the time from a run request to the
# task's completion for a 10-point zero-delay count (task_latency.py, REST and WebSocket).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
skyvenv=${1:-$root/python/.venv}
venv=${2:-$root/.ci/blueapi-venv}
skyrun=${3:-${CARGO_TARGET_DIR:-$root/target}/release/skyrun}
py=$venv/bin/python
# shellcheck source=common.sh
. "$here/common.sh"

echo "# $(date -Is)  $(nproc) cores  load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$skyrun" service --devices "$here/devices.toml" --bind 127.0.0.1:8000 --state-dir "$state/rs" \
  --trace none >"$state/skyrun.log" 2>&1 & pids+=($!)
(cd "$here" && PYTHONPATH=$here exec "$venv/bin/blueapi" -c blueapi.yaml serve) \
  >"$state/blueapi.log" 2>&1 & pids+=($!)
"$skyvenv/bin/python" -m skyrun service --devices "$here/blueapi_env.py" --plans "$here/blueapi_env.py" \
  --bind 127.0.0.1:8002 --state-dir "$state/py" --trace none >"$state/python.log" 2>&1 & pids+=($!)
for port in 8000 8001 8002; do wait_up "http://127.0.0.1:$port"; done

for round in 1 2; do
  echo "## round $round, load: $(cut -d' ' -f1-3 /proc/loadavg)"
  rps http://127.0.0.1:8000 1 20000
  rps http://127.0.0.1:8002 1 20000
  rps http://127.0.0.1:8001 1 2000
  rps http://127.0.0.1:8000 4 40000
  rps http://127.0.0.1:8002 4 40000
  rps http://127.0.0.1:8001 4 4000
  for port in 8000 8002 8001; do "$py" "$here/task_latency.py" "http://127.0.0.1:$port" 30; done
  for port in 8000 8002 8001; do "$py" "$here/task_latency.py" "http://127.0.0.1:$port" 30 --ws; done
done
echo "# end, load: $(cut -d' ' -f1-3 /proc/loadavg)"
