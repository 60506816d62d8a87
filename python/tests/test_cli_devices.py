"""``python -m skyrun run PLAN.py --devices beamline.py``: a Python device
module, as blueapi's are (ophyd-async, ophyd and skyrun devices at its top
level, known by their names), its ophyd-async devices connected on the
RunEngine's loop; run in a subprocess, its documents read back from
``--documents``."""

import json
import pathlib
import subprocess
import sys
import textwrap

import h5py

from conftest import validate

EXAMPLES = pathlib.Path(__file__).parents[1] / "examples"


def skyrun(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "skyrun", "run", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=env)


def documents(path):
    docs = [tuple(json.loads(line)) for line in path.read_text().splitlines()]
    validate(docs)
    return docs


def runs(docs):
    """The documents split into runs: [[(name, doc), ...], ...]."""
    out = []
    for name, doc in docs:
        if name == "start":
            out.append([])
        out[-1].append((name, doc))
    return out


def test_the_example_plan_file_runs_on_the_example_ophyd_async_beamline(tmp_path):
    """The plan file of the TOML device file's example, unchanged, on the
    ophyd-async devices of python/examples/beamline.py."""
    docs_path = tmp_path / "docs.jsonl"
    p = skyrun(EXAMPLES / "scan_plan.py", "--devices", EXAMPLES / "beamline.py", "--documents", docs_path)
    assert p.returncode == 0, p.stderr
    assert "2 run(s), 16 events" in p.stdout and "success, success" in p.stdout, p.stdout
    coarse, fine = runs(documents(docs_path))
    start = coarse[0][1]
    assert (start["plan_name"], start["detectors"], start["motors"]) == ("scan", ["det"], ["motor"])
    assert start["purpose"] == "example"
    (descriptor,) = [doc for name, doc in coarse if name == "descriptor"]
    assert set(descriptor["data_keys"]) == {"motor", "det-channel-1-value", "det-channel-2-value"}
    assert descriptor["data_keys"]["motor"]["source"] == "soft://motor"
    assert [doc["data"]["motor"] for name, doc in coarse if name == "event"] == [float(x) for x in range(-5, 6)]
    assert [doc["data"]["motor"] for name, doc in fine if name == "event"] == [-0.5, -0.25, 0.0, 0.25, 0.5]
    assert [name for name, _ in fine][-1] == "stop" and fine[-1][1]["exit_status"] == "success"


BEAMLINE = """
from ophyd.sim import SynAxis
from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider, init_devices
from ophyd_async.sim import PatternGenerator, SimBlobDetector, SimMotor, SimPointDetector, SimStage
import skyrun.sim

with init_devices():
    pattern = PatternGenerator()
    stage = SimStage(pattern)
    det = SimPointDetector(pattern)
    blob = SimBlobDetector(StaticPathProvider(UUIDFilenameProvider(), {data!r}), pattern)

# Left to the command line: named after its variable and connected on the engine's loop.
loose = SimMotor(instant=True)
ophyd_axis = SynAxis(name="ophyd_axis")
rust_axis = skyrun.sim.SynAxis(name="rust_axis")
"""

PLAN = """
import bluesky.plan_stubs as bps
import bluesky.plans as bp
import bluesky.preprocessors as bpp
from ophyd_async.core import TriggerInfo

import beamline  # the device module, by its name: the same objects

assert beamline.loose is loose and devices["blob"] is beamline.blob


def fly(frames):
    @bpp.stage_decorator([blob])
    @bpp.run_decorator()
    def inner():
        yield from bps.prepare(blob, TriggerInfo(number_of_events=frames, livetime=0.05, deadtime=0.001), wait=True)
        yield from bps.declare_stream(blob, name="primary", collect=True)
        yield from bps.kickoff(blob, wait=True)
        yield from bps.collect_while_completing(flyers=[blob], dets=[blob], flush_period=0.05)

    return (yield from inner())


def plan():
    yield from bps.mv(stage.x.velocity, 1000.0, stage.y.velocity, 1000.0)
    yield from bps.mv(loose, 2.0, ophyd_axis, 3.0, rust_axis, 4.0, stage.x, 1.5)
    yield from bp.count([det, loose, ophyd_axis, rust_axis])
    yield from fly(3)
"""


def test_a_device_module_of_ophyd_async_ophyd_and_skyrun_devices(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "beamline.py").write_text(BEAMLINE.format(data=str(data)))
    (tmp_path / "plan.py").write_text(PLAN)
    docs_path = tmp_path / "docs.jsonl"
    p = skyrun(tmp_path / "plan.py", "--devices", tmp_path / "beamline.py", "--documents", docs_path)
    assert p.returncode == 0, p.stdout + p.stderr
    # One event (the count); the fly scan gives stream documents only, as on Bluesky.
    assert "2 run(s), 1 events" in p.stdout and "success, success" in p.stdout, p.stdout
    count, fly = runs(documents(docs_path))
    (event,) = [doc for name, doc in count if name == "event"]
    assert event["data"]["loose"] == 2.0
    assert event["data"]["ophyd_axis"] == 3.0 and event["data"]["rust_axis"] == 4.0
    assert set(event["data"]) >= {"det-channel-1-value", "ophyd_axis_setpoint"}
    # The fly scan: Bluesky's stream documents, pointing at the HDF5 file the detector wrote.
    names = [name for name, _ in fly]
    assert names[:2] == ["start", "descriptor"] and names[-1] == "stop", names
    resources = [doc for name, doc in fly if name == "stream_resource"]
    assert {r["data_key"] for r in resources} == {"blob", "blob-sum"}
    (h5,) = data.glob("*.h5")
    assert all(r["uri"].endswith(str(h5)) for r in resources)
    datums = [doc for name, doc in fly if name == "stream_datum" and doc["stream_resource"] == resources[0]["uid"]]
    assert datums[0]["indices"]["start"] == 0 and datums[-1]["indices"]["stop"] == 3
    with h5py.File(h5, "r") as f:
        assert f[resources[0]["parameters"]["dataset"]].shape[0] == 3
    assert fly[-1][1]["exit_status"] == "success"


def test_a_bad_device_module_is_named_with_what_is_wrong(tmp_path):
    (tmp_path / "plan.py").write_text("import bluesky.plans as bp\ndef plan():\n    yield from bp.count([m])\n")

    def run_with(module, text):
        path = tmp_path / module
        path.write_text(textwrap.dedent(text))
        return skyrun(tmp_path / "plan.py", "--devices", path)

    p = run_with("broken.py", "import nowhere_to_be_found\n")
    assert p.returncode == 2, p.stderr
    assert "broken.py: ModuleNotFoundError: No module named 'nowhere_to_be_found'" in p.stderr, p.stderr
    p = run_with("typo.py", "m = (\n")
    assert p.returncode == 2 and "typo.py: SyntaxError:" in p.stderr, p.stderr
    p = skyrun(tmp_path / "plan.py", "--devices", tmp_path / "missing.py")
    assert p.returncode == 2 and "missing.py: FileNotFoundError: no such file" in p.stderr, p.stderr
    p = run_with("unplugged.py", """
        from ophyd_async.core import StandardReadable

        class Unplugged(StandardReadable):
            async def connect(self, mock=False, timeout=10.0, force_reconnect=False):
                raise ConnectionError("no IOC answers for BL01:M1")

        m = Unplugged()
    """)
    assert p.returncode == 1, p.stderr
    assert "unplugged.py: device 'm' did not connect: ConnectionError: no IOC answers for BL01:M1" in p.stderr
    (tmp_path / "one.py").write_text("from ophyd.sim import SynAxis\nm = SynAxis(name='m')\n")
    (tmp_path / "two.py").write_text("from ophyd.sim import SynAxis\nm = SynAxis(name='m')\n")
    p = skyrun(tmp_path / "plan.py", "--devices", tmp_path / "one.py", "--devices", tmp_path / "two.py")
    assert p.returncode == 2 and "two.py: ValueError: a device named 'm' comes from an earlier --devices too" \
        in p.stderr, p.stderr
