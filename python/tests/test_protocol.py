"""Bluesky's plan protocol on skyrun: results are sent back into the plan,
failures thrown into it (a plan may catch them; finalize_wrapper cleanup
runs), adaptive plans decide from what they read, and commands the engine
does not know are handled as Bluesky handles them."""

import math

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import bluesky.preprocessors as bpp
import ophyd.sim as osim
import pytest
from bluesky.utils import FailedStatus, Msg

import skyrun.sim as ssim
from skyrun import RunEngine

from conftest import assert_same_stream, collect, validate


def test_adaptive_scan_matches_bluesky(bluesky_RE, skyrun_RE):
    # The real bluesky.plans.adaptive_scan: each step depends on the last reading.
    def plan(s):
        return bp.adaptive_scan([s.det], "det", s.motor, start=-3, stop=3, min_step=0.1, max_step=1.0,
                                target_delta=0.05, backstep=True)

    osim.motor.set(0).wait(5)
    ssim.motor.set(0).wait(5)
    _, b = collect(bluesky_RE, plan(osim))
    _, s = collect(skyrun_RE, plan(ssim))
    validate(s)
    assert_same_stream(b, s)
    assert sum(1 for n, _ in s if n == "event") > 10


def test_a_plan_reads_and_decides_where_to_go(skyrun_RE):
    # A hand-written adaptive plan: climb the peak by reading the detector.
    def climb():
        x, step, prev = -2.0, 0.5, None
        yield from bps.open_run()
        for _ in range(30):
            yield from bps.mv(ssim.motor, x)
            reading = yield from bps.trigger_and_read([ssim.det, ssim.motor])
            y = reading["det"]["value"]
            if prev is not None and y < prev:
                step = -step / 2  # went past the peak: turn back, smaller steps
            prev = y
            x += step
        yield from bps.close_run()

    _, docs = collect(skyrun_RE, climb())
    xs = [d["data"]["motor"] for n, d in docs if n == "event"]
    assert len(xs) == 30 and abs(xs[-1]) < 0.1, xs[-5:]


def test_a_failed_move_is_thrown_into_the_plan_which_catches_it():
    RE = RunEngine()
    m = ssim.SynAxis(name="limited", limits=(-5, 5))
    caught = []

    def plan():
        yield from bps.open_run()
        try:
            yield from bps.mv(m, 10)
        except FailedStatus as e:
            caught.append(str(e))
            yield from bps.mv(m, 1)
        yield from bps.trigger_and_read([m])
        yield from bps.close_run()

    uids, docs = collect(RE, plan())
    assert len(caught) == 1 and "outside the limits" in caught[0], caught
    assert [d["data"]["limited"] for n, d in docs if n == "event"] == [1.0]
    assert docs[-1][1]["exit_status"] == "success"


def test_an_uncaught_failure_runs_finalize_cleanup_and_fails_the_run():
    RE = RunEngine()
    m = ssim.SynAxis(name="limited2", limits=(-5, 5))
    cleaned = []

    def cleanup():
        cleaned.append("cleanup")
        yield from bps.mv(m, 0)

    def plan():
        yield from bps.mv(m, 2)
        yield from bps.mv(m, 10)

    docs = []
    RE.subscribe(lambda n, d: docs.append((n, d)))
    with pytest.raises(FailedStatus, match="outside the limits"):
        RE(bpp.run_wrapper(bpp.finalize_wrapper(plan(), cleanup())))
    assert cleaned == ["cleanup"]
    assert m.position == 0.0
    assert docs[-1][0] == "stop" and docs[-1][1]["exit_status"] == "fail"
    assert "outside the limits" in docs[-1][1]["reason"]
    # The engine is usable afterwards.
    assert len(RE(bp.count([ssim.det]))) == 1


def test_a_python_exception_in_the_plan_is_raised_by_RE_and_closes_the_run():
    RE = RunEngine()
    docs = []
    RE.subscribe(lambda n, d: docs.append((n, d)))

    def plan():
        yield from bps.open_run()
        raise ZeroDivisionError("plan bug")

    with pytest.raises(ZeroDivisionError, match="plan bug"):
        RE(plan())
    assert docs[-1][1]["exit_status"] == "fail"
    # str(exception), as Bluesky writes the reason.
    assert docs[-1][1]["reason"] == "plan bug"
    assert RE.state == "idle"


def test_results_are_sent_back_into_the_plan(skyrun_RE):
    got = {}

    def plan():
        got["uid"] = yield from bps.open_run()
        got["status"] = yield Msg("set", ssim.motor, 0.5, group="g")
        yield Msg("wait", None, group="g")
        got["read"] = yield Msg("read", ssim.motor)
        got["close"] = yield from bps.close_run()

    uids = skyrun_RE(plan())
    assert got["uid"] == uids[0] == got["close"]
    assert got["status"].done and got["status"].success
    assert got["read"]["motor"]["value"] == 0.5 and "timestamp" in got["read"]["motor"]
    ssim.motor.set(0).wait(5)


def test_any_iterable_of_message_like_objects_runs(skyrun_RE):
    class MyMsg:
        def __init__(self, command, obj=None, *args, **kwargs):
            self.command, self.obj, self.args, self.kwargs, self.run = command, obj, args, kwargs, None

    plan = [MyMsg("open_run"), MyMsg("create", name="primary"), MyMsg("read", ssim.det), MyMsg("save"),
            MyMsg("close_run")]
    uids, docs = collect(skyrun_RE, plan)
    assert [n for n, _ in docs] == ["start", "descriptor", "event", "stop"]


def test_register_command_and_subscribe_messages(skyrun_RE):
    seen = []

    async def custom(msg):
        seen.append(msg.args)
        return "custom result"

    skyrun_RE.register_command("my_command", custom)
    results = []
    names = []

    def plan():
        results.append((yield Msg("my_command", None, 1, 2)))
        yield from bp.count([ssim.det])

    skyrun_RE(bpp.subs_wrapper(plan(), {"start": [lambda n, d: names.append(n)]}))
    assert seen == [(1, 2)] and results == ["custom result"]
    assert names == ["start"]
    assert "my_command" in skyrun_RE.commands


def test_an_unknown_command_fails_with_its_name(skyrun_RE):
    with pytest.raises(KeyError, match="frobnicate"):
        skyrun_RE([Msg("frobnicate")])


def test_bluesky_callbacks_work_unchanged(skyrun_RE, capsys):
    from bluesky.callbacks import LiveTable
    from event_model import RunRouter

    started = []

    def factory(name, doc):
        started.append(doc["uid"])
        return [lambda n, d: None], []

    skyrun_RE.subscribe(RunRouter([factory]))
    uids = skyrun_RE(bp.scan([ssim.det], ssim.motor, -1, 1, 3), LiveTable(["motor", "det"]))
    out = capsys.readouterr().out
    assert "motor" in out and "det" in out and out.count("|") > 10
    assert started == list(uids)


def test_locate_answers_setpoint_and_readback(skyrun_RE):
    got = []

    def plan():
        yield from bps.mv(ssim.motor1, 1.5, ssim.motor2, -2)
        got.append((yield from bps.locate(ssim.motor1)))
        got.append((yield Msg("locate", ssim.motor1, ssim.motor2)))
        yield from bps.trigger(ssim.det1, wait=True)  # a detector's value changes on trigger, as in ophyd.sim
        got.append((yield from bps.rd(ssim.det1)))

    skyrun_RE(plan())
    assert got[0] == {"setpoint": 1.5, "readback": 1.5}
    assert got[1] == [{"setpoint": 1.5, "readback": 1.5}, {"setpoint": -2.0, "readback": -2.0}]
    assert got[2] == pytest.approx(5 * math.exp(-(1.5**2) / (2 * 0.5**2)))
    for m in (ssim.motor1, ssim.motor2):
        m.set(0).wait(5)


class _Gathered:
    """A Locatable whose coroutine ``locate()`` yields to the loop between
    reading a shared clock and advancing it (Bluesky's
    test_locatable_message_multiple_objects): objects located at once read
    the same tick; one after the other, each a later one. ``fail`` makes its
    locate raise."""

    clock = 0

    def __init__(self, name, fail=False):
        self.name = name
        self.parent = None
        self.fail = fail

    def set(self, value):
        return osim.NullStatus()

    async def locate(self):
        import asyncio

        tick = _Gathered.clock
        await asyncio.sleep(0)
        _Gathered.clock += 1
        if self.fail:
            raise OSError(f"{self.name}: encoder lost")
        return {"setpoint": tick, "readback": tick}


@pytest.mark.parametrize("engine", ["bluesky", "skyrun"])
def test_locate_of_several_objects_runs_their_coroutines_at_once(engine, bluesky_RE, skyrun_RE):
    RE = {"bluesky": bluesky_RE, "skyrun": skyrun_RE}[engine]
    _Gathered.clock = 0
    a, b, c = _Gathered("a"), _Gathered("b"), _Gathered("c")
    got = []

    def plan():
        got.append((yield Msg("locate", a)))
        got.append((yield Msg("locate", a, b, c)))
        got.append((yield Msg("locate", c, squeeze=False)))

    RE(plan())
    assert got == [
        {"setpoint": 0, "readback": 0},
        [{"setpoint": 1, "readback": 1}] * 3,
        [{"setpoint": 4, "readback": 4}],
    ]
    # What one of them raises is raised by RE, as it is.
    with pytest.raises(OSError, match="bad: encoder lost"):
        RE([Msg("locate", a, _Gathered("bad", fail=True))])
