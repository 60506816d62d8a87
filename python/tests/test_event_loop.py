"""The RunEngine's event loop (RE.loop, driven on skyrun's engine thread),
the hooks and options Bluesky's RunEngine has, and plans that never wait:
each asserted on skyrun's RunEngine, the way Bluesky's behaves."""

import asyncio
import threading
import time

import bluesky.plan_stubs as bps
import pytest
from bluesky.run_engine import RunEngineResult, call_in_bluesky_event_loop, in_bluesky_event_loop
from bluesky.utils import Msg, RunEngineInterrupted

from skyrun import RunEngine


@pytest.fixture
def RE():
    loop = asyncio.new_event_loop()
    RE = RunEngine({}, loop=loop)
    yield RE
    if RE.state != "idle":
        RE.halt()
    loop.call_soon_threadsafe(loop.stop)
    RE._th.join(10)
    assert not RE._th.is_alive(), "the loop is no longer driven once stopped"
    loop.close()


def test_plans_run_in_the_loop_and_other_threads_reach_it(RE):
    async def which():
        return asyncio.get_running_loop()

    assert call_in_bluesky_event_loop(which(), timeout=10) is RE.loop
    seen = {}

    async def later():
        await asyncio.sleep(0.01)
        return 42

    def plan():
        yield from bps.null()
        seen["in_loop"] = in_bluesky_event_loop()
        task = asyncio.create_task(later())
        (done,) = yield Msg("wait_for", None, [lambda: task])
        seen["result"] = done.result()

    RE(plan())
    assert seen == {"in_loop": True, "result": 42}
    assert not in_bluesky_event_loop()


def test_wait_for_times_out_with_blueskys_error(RE):
    from bluesky.run_engine import WaitForTimeoutError

    with pytest.raises(WaitForTimeoutError, match="Plan failed to complete in the specified time"):
        RE([Msg("wait_for", None, [lambda: asyncio.sleep(10)], timeout=0.05)])


def test_async_scan_id_source_and_result(RE):
    async def scan_id(md):
        await asyncio.sleep(0)
        return md.get("scan_id", 0) + 10

    RE.scan_id_source = scan_id
    RE.call_returns_result = True

    def plan():
        uid = yield from bps.open_run()
        yield from bps.close_run()
        return uid

    starts = []
    r = RE(plan(), {"start": lambda name, doc: starts.append(doc)})
    assert isinstance(r, RunEngineResult)
    assert r.exit_status == "success" and not r.interrupted
    assert r.plan_result == r.run_start_uids[0]
    assert starts[0]["scan_id"] == 10


def test_hooks_see_messages_and_states(RE):
    msgs, states = [], []
    RE.msg_hook = lambda msg: msgs.append(msg.command)
    RE.state_hook = lambda new, old: states.append((new, old))
    with pytest.raises(RunEngineInterrupted):
        RE([Msg("open_run"), Msg("pause"), Msg("close_run")])
    RE.resume()
    assert msgs[:2] == ["open_run", "pause"] and msgs[-1] == "close_run"
    assert states == [("running", "idle"), ("pausing", "running"), ("paused", "pausing"),
                      ("running", "paused"), ("idle", "running")]


def test_unsupported_options_raise_at_once(RE):
    class MyDuringTask:
        pass

    with pytest.raises(NotImplementedError, match="during_task"):
        RunEngine({}, during_task=MyDuringTask())
    with pytest.raises(TypeError):
        RunEngine({}, not_an_option=True)
    # record_interruptions is supported: the Rust engine's setting.
    assert RE.record_interruptions is False
    RE.record_interruptions = True
    assert RE.record_interruptions is True


def test_waiting_hook_sees_the_statuses_of_a_wait_then_none(RE):
    from skyrun.sim import SynAxis

    motor = SynAxis(name="m")
    seen = []
    RE.waiting_hook = lambda statuses: seen.append(None if statuses is None else len(statuses))
    RE(bps.mv(motor, 1.0))
    assert seen == [1, None]


def endless(counter):
    while True:
        yield Msg("null")
        counter[0] += 1


def test_an_endless_python_plan_is_paused_resumed_and_aborted(RE):
    n = [0]
    threading.Timer(0.3, RE.request_pause).start()
    with pytest.raises(RunEngineInterrupted):
        RE(endless(n))
    assert RE.state == "paused"
    at_pause = n[0]
    assert at_pause > 0
    time.sleep(0.1)
    assert n[0] == at_pause, "a paused plan does not run"
    threading.Timer(0.3, RE.abort, ("enough",)).start()
    with pytest.raises(RunEngineInterrupted):
        RE.resume()
    assert n[0] > at_pause
    assert RE.state == "idle"
    # The engine is usable afterwards.
    assert RE([Msg("null")]) == ()


def test_an_endless_python_plan_is_halted_from_another_thread(RE):
    n = [0]
    threading.Timer(0.2, RE.halt).start()
    with pytest.raises(RunEngineInterrupted):
        RE(endless(n))
    assert RE.state == "idle" and n[0] > 0


def test_a_task_that_never_stops_yielding_shares_the_engine_thread(RE):
    """One turn of the loop on the engine thread runs what is ready for a
    bounded time only: with a task that always has work (as a detector
    writing frames), ophyd-async moves still complete, and a pause
    requested from another thread gets through."""
    from ophyd_async.core import init_devices
    from ophyd_async.sim import SimMotor

    with init_devices():
        m = SimMotor(instant=True)
    spins = [0]

    async def spin():
        while True:
            spins[0] += 1
            await asyncio.sleep(0)

    tasks = []

    def moves():
        tasks.append(asyncio.create_task(spin()))
        for x in range(20):
            yield from bps.mv(m, float(x))
        return (yield from bps.rd(m))

    RE.call_returns_result = True
    assert RE(moves()).plan_result == 19.0
    assert spins[0] > 20, "the spinning task ran alongside the moves"
    n = [0]
    threading.Timer(0.3, RE.request_pause).start()
    with pytest.raises(RunEngineInterrupted):
        RE(endless(n))
    assert RE.state == "paused" and n[0] > 0
    before = spins[0]
    time.sleep(0.1)
    assert spins[0] > before, "the loop goes on while the plan is paused"
    RE.abort("enough")
    RE.loop.call_soon_threadsafe(tasks[0].cancel)


def test_a_reader_that_reads_a_little_at_a_time_gets_everything(RE):
    """The driver watches the loop's selector edge-triggered: data a reader
    left behind must still be read, without another byte arriving."""
    import socket

    a, b = socket.socketpair()
    a.setblocking(False)
    got = bytearray()
    all_read = threading.Event()

    def on_readable():
        got.extend(a.recv(1))
        if len(got) == 100:
            all_read.set()

    RE.loop.call_soon_threadsafe(RE.loop.add_reader, a.fileno(), on_readable)
    try:
        b.sendall(bytes(range(100)))
        assert all_read.wait(10), f"{len(got)} of 100 bytes read"
        assert bytes(got) == bytes(range(100))
    finally:
        RE.loop.call_soon_threadsafe(RE.loop.remove_reader, a.fileno())
        time.sleep(0.05)
        a.close()
        b.close()


def test_a_wait_for_is_paused_while_it_waits_and_replayed_on_resume(RE):
    # The engine carries out wait_for (a pause breaks in, a rewind replays it,
    # msg_hook sees it replayed), as Bluesky's does; a registered coroutine
    # command goes the same way.
    release = asyncio.Event()
    seen = []
    RE.msg_hook = lambda msg: seen.append(msg.command)

    async def answer(msg):
        return "answered"

    RE.register_command("ask", answer)

    def plan():
        yield Msg("checkpoint")
        (task,) = yield Msg("wait_for", None, [release.wait])
        return (yield Msg("ask")), task.result()

    threading.Timer(0.3, RE.request_pause).start()
    with pytest.raises(RunEngineInterrupted):
        RE(plan())
    assert RE.state == "paused"
    assert seen == ["checkpoint", "wait_for"]
    RE.loop.call_soon_threadsafe(release.set)
    RE.call_returns_result = True
    result = RE.resume()
    assert result.plan_result == ("answered", True)
    assert seen == ["checkpoint", "wait_for", "wait_for", "ask"]


def test_a_suspension_asked_for_while_paused_runs_its_pre_plan_first_and_its_error_reaches_the_plan(RE):
    caught = []

    def plan():
        yield Msg("checkpoint")
        try:
            yield Msg("pause")
        except Exception as e:
            caught.append(e)
            raise

    def pre_plan():
        yield Msg("null")
        raise RuntimeError("shutter does not answer")

    with pytest.raises(RunEngineInterrupted):
        RE(plan())
    RE.request_suspend(None, pre_plan=pre_plan())
    with pytest.raises(RuntimeError, match="shutter does not answer") as raised:
        RE.resume()
    assert caught == [raised.value], "the pre-plan's own exception went through the plan"
    assert RE.state == "idle"


def test_a_generator_exit_from_a_pre_plan_closes_the_plan_as_bluesky_does(RE, capsys):
    def yields_on_close():
        try:
            yield Msg("checkpoint")
            yield Msg("pause")
        finally:
            yield Msg("null")

    def pre_plan():
        yield Msg("null")
        raise GeneratorExit("this one")

    with pytest.raises(RunEngineInterrupted):
        RE(yields_on_close())
    RE.request_suspend(None, pre_plan=pre_plan())
    capsys.readouterr()
    with pytest.raises(ValueError) as raised:
        RE.resume()
    assert isinstance(raised.value.__cause__, GeneratorExit)
    out, _ = capsys.readouterr()
    assert out.startswith("The plan ")
    assert out.endswith(" tried to yield a value on close.  Please fix your plan.\n")


def test_a_suspension_with_nothing_to_rewind_to_interrupts_the_call(RE):
    # Bluesky's FailedPause: the plan is aborted, and RE() raises RunEngineInterrupted.
    threading.Timer(0.2, RE.request_suspend, kwargs={"fut": lambda: asyncio.sleep(0)}).start()
    with pytest.raises(RunEngineInterrupted):
        RE([Msg("clear_checkpoint"), Msg("sleep", None, 10)])
    assert RE.last_summary["exit_status"] == "abort"


def test_a_coroutine_command_a_pause_breaks_into_is_cancelled_then_replayed(RE):
    release = asyncio.Event()
    calls, cancelled = [], []

    async def hold(msg):
        calls.append(1)
        try:
            await release.wait()
        except asyncio.CancelledError:
            cancelled.append(1)
            raise
        return "released"

    RE.register_command("hold", hold)

    def plan():
        yield Msg("checkpoint")
        return (yield Msg("hold"))

    threading.Timer(0.3, RE.request_pause).start()
    with pytest.raises(RunEngineInterrupted):
        RE(plan())
    # The cancellation reaches the coroutine at the loop's next turn.
    deadline = time.monotonic() + 5
    while not cancelled and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (len(calls), len(cancelled)) == (1, 1), "the awaited coroutine was cancelled at the pause"
    RE.loop.call_soon_threadsafe(release.set)
    RE.call_returns_result = True
    assert RE.resume().plan_result == "released"
    assert (len(calls), len(cancelled)) == (2, 1), "the rewind called the command again"
