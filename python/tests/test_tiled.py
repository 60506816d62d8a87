"""Runs stored in a real Tiled server: Bluesky 1.15.1's ``TiledWriter``
subscribed to skyrun's RunEngine writes an ophyd-async step scan (SimStage
and SimPointDetector) and a SimBlobDetector fly scan (``blob_fly`` of
test_ophyd_async) into ``tiled serve catalog`` (a new catalog in the test's
temporary folder, on a loopback port, with an API key). Read back through
Tiled's Python client, a run gives its documents' data: the scan's columns,
and the detector's frames from the HDF5 file its StreamResource points at.
The same plans on Bluesky's RunEngine, written by the same writer, give
the same structure and data."""

import json
import os
import pathlib
import re
import secrets
import subprocess
import sys
import time
import urllib.parse

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import h5py
import httpx
import numpy as np
import pytest
from bluesky.callbacks.tiled_writer import TiledWriter
from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider, init_devices
from ophyd_async.sim import PatternGenerator, SimBlobDetector, SimPointDetector, SimStage
from tiled.client import from_uri

from conftest import validate
from test_ophyd_async import blob_fly, bluesky_engine, skyrun_engine

EXAMPLES = pathlib.Path(__file__).parents[1] / "examples"
API_KEY = secrets.token_hex(16)  # the single-user key of the tests' own server (alphanumeric, as tiled asks)
START_TIMEOUT = 60.0  # seconds for the server to answer
ENGINES = (bluesky_engine, skyrun_engine)


class Server:
    """``tiled serve catalog`` on 127.0.0.1, port chosen by the system."""

    def __init__(self, folder, readable):
        folder.mkdir()
        (folder / "data").mkdir()
        self.log_path = folder / "tiled.log"
        tiled = pathlib.Path(sys.executable).parent / "tiled"
        args = [str(tiled), "serve", "catalog", str(folder / "catalog.db"), "--init",
                "-w", str(folder / "data"), "-w", f"duckdb:///{folder / 'data.duckdb'}", "-r", str(readable),
                "--api-key", API_KEY, "--host", "127.0.0.1", "--port", "0"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self.uri = self._wait_up()
        except BaseException:
            self.kill()
            raise

    def log(self):
        return re.sub(r"\x1b\[[0-9;]*m", "", self.log_path.read_text(errors="replace"))

    def _wait_up(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"tiled exited with {self.proc.returncode}:\n{self.log()}")
            found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", self.log())
            if found:
                uri = found.group(1)
                try:
                    if httpx.get(f"{uri}/api/v1/", timeout=5).status_code == 200:
                        return uri
                except httpx.TransportError:
                    pass
            time.sleep(0.1)
        raise AssertionError(f"tiled did not answer within {START_TIMEOUT:g} s:\n{self.log()}")

    def kill(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def detector_data(tmp_path_factory):
    """Where the detectors write their HDF5 files: the server may read there."""
    return tmp_path_factory.mktemp("detectors")


@pytest.fixture(scope="module")
def server(tmp_path_factory, detector_data):
    server = Server(tmp_path_factory.mktemp("tiled") / "server", detector_data)
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def tiled(server):
    return from_uri(server.uri, api_key=API_KEY)


def devices(directory):
    """A stage, a point detector and a blob detector following it, connected."""
    with init_devices():
        gen = PatternGenerator()
        stage = SimStage(gen)
        det = SimPointDetector(gen, num_channels=2)
        blob = SimBlobDetector(StaticPathProvider(UUIDFilenameProvider(), directory), gen)
    return stage, det, blob


def fast(stage):
    # The stage's motors move at 1 mm/s by default: fast enough for a short test.
    yield from bps.mv(stage.x.velocity, 1000.0, stage.y.velocity, 1000.0)


def step_scan(stage, det, blob):
    yield from fast(stage)
    return (yield from bp.scan([det], stage.x, -1.0, 1.0, 5, md={"sample": "Au"}))


def fly_scan(stage, det, blob):
    # Away from the origin, so that the frames are not blank.
    yield from fast(stage)
    yield from bps.mv(stage.x, 1.5, stage.y, 0.5)
    return (yield from blob_fly(blob, None, frames=4, livetime=0.05))


def write_run(engine, plan_of, tiled, directory, **writer_options):
    """Runs ``plan_of`` on a new engine with a TiledWriter subscribed; returns
    the run's uid and its documents."""
    RE = engine()
    directory.mkdir()
    docs = []
    RE.subscribe(lambda name, doc: docs.append((name, json.loads(json.dumps(doc)))))
    RE.subscribe(TiledWriter(tiled, **writer_options))
    RE(plan_of(*devices(directory)))
    validate(docs)
    (start,) = [doc for name, doc in docs if name == "start"]
    return start["uid"], docs


def file_of(uri):
    """The local file a ``file://`` URI names (ophyd-async writes ``file://localhost/...``)."""
    parsed = urllib.parse.urlparse(uri)
    assert parsed.scheme == "file" and parsed.netloc in ("", "localhost"), uri
    return pathlib.Path(urllib.parse.unquote(parsed.path))


TIMES = re.compile(r"^(time|ts_.*)$")


def stored(tiled, uid):
    """What Tiled gives back for run ``uid``: the start and stop documents'
    shared content, and per stream its data keys and every column (times
    apart: their values are the clock's) as arrays."""
    run = tiled[uid]
    start, stop = run.metadata["start"], run.metadata["stop"]
    out = {
        "start": {k: start.get(k) for k in ("plan_name", "detectors", "motors", "num_points", "hints", "sample")},
        "stop": {k: stop[k] for k in ("exit_status", "num_events")},
        "specs": [s.name for s in run.specs],
        "streams": {},
    }
    for name in run:
        stream = run[name]
        table = stream.read()
        out["streams"][name] = {
            # An external key's source is its file, which differs from run to run.
            "data_keys": {k: {f: v for f, v in dk.items() if not (f == "source" and dk.get("external"))}
                          for k, dk in stream.metadata["data_keys"].items()},
            "sources": {k: dk["source"] for k, dk in stream.metadata["data_keys"].items() if dk.get("external")},
            "columns": sorted(table.data_vars),
            "values": {k: table[k].values for k in table.data_vars if not TIMES.match(k)},
        }
    return out


def assert_same(a, b):
    """Two stored runs are equal (numpy arrays compared element by element)."""
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            assert_same(a[k], b[k])
        elif isinstance(a[k], np.ndarray):
            assert a[k].shape == b[k].shape and a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


def test_a_step_scan_is_stored_in_tiled_with_its_columns(tiled, detector_data):
    runs = []
    for engine in ENGINES:
        uid, docs = write_run(engine, step_scan, tiled, detector_data / f"scan-{engine.__name__}")
        run = stored(tiled, uid)
        events = [doc for name, doc in docs if name == "event"]
        assert len(events) == 5 and run["stop"] == {"exit_status": "success", "num_events": {"primary": 5}}
        assert run["start"]["plan_name"] == "scan" and run["start"]["sample"] == "Au"
        assert run["specs"] == ["BlueskyRun"]
        primary = run["streams"]["primary"]
        # Every column of the events, their timestamps (ts_), seq_num and time.
        keys = sorted(events[0]["data"])
        assert primary["columns"] == sorted(["seq_num", "time", *keys, *(f"ts_{k}" for k in keys)])
        for key in keys:
            assert primary["values"][key].tolist() == [e["data"][key] for e in events], key
        assert primary.pop("sources") == {}
        assert primary["values"]["stage-x"].tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
        assert primary["values"]["seq_num"].tolist() == [1, 2, 3, 4, 5]
        # The detector follows the stage: its readings vary along the scan.
        assert len(set(primary["values"]["det-channel-1-value"].tolist())) > 1
        runs.append(run)
    assert_same(runs[0], runs[1])


def test_a_fly_scan_s_detector_frames_are_read_back_through_the_stream_resource(tiled, detector_data):
    runs = []
    for engine in ENGINES:
        directory = detector_data / f"fly-{engine.__name__}"
        # batch_size=1: each stream datum written as it comes, as TiledWriter's docs advise for streaming.
        uid, docs = write_run(engine, fly_scan, tiled, directory, batch_size=1)
        run = stored(tiled, uid)
        resources = {doc["data_key"]: doc for name, doc in docs if name == "stream_resource"}
        assert set(resources) == {"blob", "blob-sum"}
        primary = run["streams"]["primary"]
        assert primary["columns"] == ["blob", "blob-sum"]
        assert primary["data_keys"]["blob"]["external"] == "STREAM:"
        (path,) = directory.glob("*.h5")
        # The frames Tiled serves are those of the HDF5 file the StreamResource names.
        with h5py.File(path, "r") as f:
            for key, resource in resources.items():
                assert file_of(resource["uri"]) == path
                written = f[resource["parameters"]["dataset"]][()]
                assert primary["values"][key].dtype == written.dtype
                assert np.array_equal(primary["values"][key], written), key
        frames = primary["values"]["blob"]
        assert frames.shape == (4, *primary["data_keys"]["blob"]["shape"][1:]) and frames.any()
        assert primary["values"]["blob-sum"].tolist() == frames.sum(axis=(1, 2)).tolist()
        assert {file_of(uri) for uri in primary.pop("sources").values()} == {path}
        node = tiled[uid]["primary"]["blob"]
        assert file_of(node.data_sources()[0].assets[0].data_uri) == path
        runs.append(run)
    assert_same(runs[0], runs[1])


PLAN = """
import bluesky.plan_stubs as bps
import bluesky.plans as bp

md = {"sample": "Cu"}


def plan():
    yield from bps.mv(stage.x.velocity, 1000.0)
    yield from bp.scan([det], stage.x, 0.0, 2.0, 3)
"""


def test_the_command_line_writes_its_runs_into_tiled(tiled, server, tmp_path):
    """``python -m skyrun run PLAN.py --devices beamline.py --tiled URI``."""
    (tmp_path / "plan.py").write_text(PLAN)
    docs_path = tmp_path / "docs.jsonl"
    env = {**os.environ, "TILED_API_KEY": API_KEY, "SKYRUN_DATA": str(tmp_path)}

    def skyrun(*args):
        return subprocess.run([sys.executable, "-m", "skyrun", "run", str(tmp_path / "plan.py"), "--devices",
                               str(EXAMPLES / "beamline.py"), *args], capture_output=True, text=True, timeout=120,
                              env=env, cwd=tmp_path)

    p = skyrun("--tiled", server.uri, "--documents", str(docs_path))
    assert p.returncode == 0, p.stdout + p.stderr
    docs = [json.loads(line) for line in docs_path.read_text().splitlines()]
    start = docs[0][1]
    events = [doc for name, doc in docs if name == "event"]
    run = stored(tiled, start["uid"])
    assert run["start"]["sample"] == "Cu" and run["stop"]["exit_status"] == "success"
    primary = run["streams"]["primary"]
    assert primary["values"]["stage-x"].tolist() == [0.0, 1.0, 2.0]
    for key in events[0]["data"]:
        assert primary["values"][key].tolist() == [e["data"][key] for e in events], key
    # A server that does not answer, or refuses the key: said before anything runs.
    env["TILED_API_KEY"] = "wrong" + API_KEY
    p = skyrun("--tiled", server.uri)
    assert p.returncode == 2 and f"--tiled {server.uri}:" in p.stderr, p.stderr
    assert "0 run(s)" not in p.stdout
