"""Time from a `run` request to the task's completion, against a blueapi-API server (issue 24).

Usage: python task_latency.py URL [N] [--ws]   (URL e.g. http://127.0.0.1:8000)

Runs N (default 30, after 3 not counted) tasks `count {"detectors": ["det"],
"num": 10, "delay": 0}` one after the other, the same way for `skyrun service`
and `blueapi serve`:

- REST (default): POST /tasks, PUT /worker/task, then GET /tasks/{id} every
  1 ms (one keep-alive connection) until `is_complete`; time from before the
  POST to the answer that says complete. The task's outcome must be success.
- --ws: blueapi's foreground `run` route, WS /api/v2/run_plan: submit, read
  the updates until the WorkerEvent whose task_status is complete; time from
  before the connect to that event. The run's own time (stop.time -
  start.time of its DataEvents) is printed next to it, so the service's share
  is (total - run).

Prints the median, 10th and 90th percentiles in ms as one JSON line. Needs only
the standard library (and `websockets` for --ws: blueapi's venv has it).
"""

import http.client
import json
import statistics
import sys
import time
import urllib.parse

PARAMS = {"detectors": ["det"], "num": 10, "delay": 0.0}
TASK = {"name": "count", "params": PARAMS, "instrument_session": "cm12345-1"}
HEADERS = {"content-type": "application/json"}


def call(conn, method, path, body=None):
    data = None if body is None else json.dumps(body)
    conn.request(method, path, body=data, headers=HEADERS)
    resp = conn.getresponse()
    raw = resp.read()
    return resp.status, (json.loads(raw) if raw else None)


def wait_idle(conn):
    for _ in range(5000):
        status, state = call(conn, "GET", "/worker/state")
        if state == "IDLE":
            return
        time.sleep(0.002)
    sys.exit("the worker did not become IDLE within 10 s")


def rest_once(conn):
    wait_idle(conn)
    t0 = time.perf_counter()
    status, created = call(conn, "POST", "/tasks", TASK)
    assert status == 201, (status, created)
    task_id = created["task_id"]
    status, body = call(conn, "PUT", "/worker/task", {"task_id": task_id})
    assert status == 200, (status, body)
    deadline = t0 + 10
    while True:
        status, task = call(conn, "GET", f"/tasks/{task_id}")
        if task["is_complete"]:
            t1 = time.perf_counter()
            break
        if time.perf_counter() > deadline:
            sys.exit(f"task {task_id} not complete within 10 s: {task}")
        time.sleep(0.001)
    assert not task["errors"], task
    outcome = task.get("outcome")
    assert outcome is None or outcome.get("outcome") == "success", task
    call(conn, "DELETE", f"/tasks/{task_id}")
    return (t1 - t0) * 1000, None


def ws_once(url, conn):
    from websockets.sync.client import connect

    wait_idle(conn)
    u = urllib.parse.urlparse(url)
    t0 = time.perf_counter()
    docs = {}
    with connect(f"ws://{u.netloc}/api/v2/run_plan", open_timeout=10) as ws:
        ws.send(json.dumps({"kind": "submit", "task": TASK}))
        while True:
            msg = json.loads(ws.recv(timeout=10))
            assert msg["kind"] == "update", msg
            data = msg["data"]
            if "doc" in data and data.get("name") in ("start", "stop"):
                docs[data["name"]] = data["doc"]["time"]
            status = data.get("task_status")
            if status and status.get("task_complete"):
                t1 = time.perf_counter()
                assert not status.get("task_failed"), data
                break
    run_ms = (docs["stop"] - docs["start"]) * 1000
    return (t1 - t0) * 1000, run_ms


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    ws = "--ws" in sys.argv
    url = args[0]
    n = int(args[1]) if len(args) > 1 else 30
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    totals, runs = [], []
    for i in range(n + 3):
        total, run = ws_once(url, conn) if ws else rest_once(conn)
        if i >= 3:
            totals.append(total)
            if run is not None:
                runs.append(run)
    out = {
        "url": url,
        "method": "ws" if ws else "rest",
        "n": n,
        "total_ms_median": round(statistics.median(totals), 2),
        "total_ms_p10": round(pct(totals, 0.1), 2),
        "total_ms_p90": round(pct(totals, 0.9), 2),
    }
    if runs:
        out["run_ms_median"] = round(statistics.median(runs), 2)
        added = [t - r for t, r in zip(totals, runs)]
        out["added_ms_median"] = round(statistics.median(added), 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
