# Sourced by run.sh and run_python.sh (the service benchmarks of issue 24): a temporary
# state folder, the servers' pids (killed, and the folder removed, at exit), waiting for a
# server to answer, and GET /worker/state's rate with ApacheBench.
state=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$state"; }
trap cleanup EXIT

wait_up() {  # URL: GET /worker/state answers within 60 s
  for _ in $(seq 600); do curl -sf "$1/worker/state" >/dev/null && return 0; sleep 0.1; done
  echo "no answer from $1" >&2; exit 1
}

rps() {  # URL CLIENTS N
  ab -k -q -c "$2" -n "$3" "$1/worker/state" 2>&1 | awk -v u="$1" -v c="$2" \
    '/^Requests per second/ {r=$4} /^Failed requests/ {f=$3} /^Non-2xx/ {x=$3}
     END {printf "%s GET /worker/state, %s client(s): %s req/s (failed %s, non-2xx %s)\n", u, c, r, f, x+0}'
}
