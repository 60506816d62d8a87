"""blueapi 1.21.1's own Python client running the benchmark task (issue 24).

Usage: python client_run.py URL [N]   (in blueapi's venv, XDG_CACHE_HOME set to a scratch folder)

Times `BlueapiClient.run_blocking(count {"detectors": ["det"], "num": 10,
"delay": 0})` N times (default 10, after 3 not counted) in one process, so
the CLI's own start (about 1.2 s of Python imports) is left out; this is what
`blueapi controller run` does in the foreground (WebSocket, no message bus).
Prints the median, min and max in ms as one JSON line; fails unless each
task's outcome is success.
"""

import json
import statistics
import sys
import time

from blueapi.client.client import BlueapiClient
from blueapi.config import ApplicationConfig, RestConfig
from blueapi.service.model import TaskRequest

url = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 10
client = BlueapiClient.from_config(ApplicationConfig(api=RestConfig(url=url)))
task = TaskRequest(
    name="count",
    params={"detectors": ["det"], "num": 10, "delay": 0},
    instrument_session="cm12345-1",
)
times = []
for i in range(n + 3):
    t0 = time.perf_counter()
    result = client.run_blocking(task)
    t1 = time.perf_counter()
    if result.result.outcome != "success":
        sys.exit(f"the task did not succeed: {result}")
    if i >= 3:
        times.append((t1 - t0) * 1000)
print(json.dumps({"url": url, "method": "blueapi client run_blocking", "n": n,
                  "total_ms_median": round(statistics.median(times), 2),
                  "total_ms_min": round(min(times), 2), "total_ms_max": round(max(times), 2)}))
