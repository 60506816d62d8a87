"""Pause/resume (rewinding to the last checkpoint), abort, stop, halt,
RE.state and Ctrl-C, as Bluesky's RunEngine does them."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import pytest
from bluesky.utils import Msg

import skyrun.sim as ssim
from skyrun import RunEngine, RunEngineInterrupted


def names(docs):
    return [n for n, _ in docs]


def plan():
    """A reading after a checkpoint, a pause in the plan, another reading."""
    yield from bps.open_run()
    yield from bps.checkpoint()
    yield from bps.trigger_and_read([ssim.det])
    yield from bps.pause()
    yield from bps.trigger_and_read([ssim.det])
    yield from bps.close_run()


def test_a_pause_in_the_plan_interrupts_RE_and_resume_finishes_it():
    RE = RunEngine()
    docs = []
    RE.subscribe(lambda n, d: docs.append((n, d)))

    with pytest.raises(RunEngineInterrupted, match="paused state"):
        RE(plan())
    assert RE.state == "paused"
    assert names(docs) == ["start", "descriptor", "event"]
    uids = RE.resume()
    assert RE.state == "idle"
    # Bluesky rewinds to the checkpoint: the first reading is taken again.
    assert names(docs) == ["start", "descriptor", "event", "event", "event", "stop"]
    assert docs[-1][1]["exit_status"] == "success" and uids == (docs[0][1]["uid"],)


def _pause_soon(RE, defer):
    def go():
        deadline = time.monotonic() + 10
        while RE.state != "running" and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)
        RE.request_pause(defer=defer)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("ending", ["abort", "stop", "halt"])
def test_a_paused_plan_can_be_aborted_stopped_or_halted(ending):
    RE = RunEngine()
    docs = []
    RE.subscribe(lambda n, d: docs.append((n, d)))
    closed = []

    def plan():
        try:
            yield from bp.count([ssim.det], num=200, delay=0.01)
        finally:
            closed.append("finally")

    _pause_soon(RE, defer=False)
    with pytest.raises(RunEngineInterrupted):
        RE(plan())
    assert RE.state == "paused"
    if ending == "abort":
        uids = RE.abort("sample fell off")
    elif ending == "stop":
        uids = RE.stop()
    else:
        uids = RE.halt()
    assert RE.state == "idle"
    stop = docs[-1][1]
    assert docs[-1][0] == "stop" and uids == (docs[0][1]["uid"],)
    assert stop["exit_status"] == {"abort": "abort", "stop": "success", "halt": "abort"}[ending]
    if ending == "abort":
        assert stop["reason"] == "sample fell off"
    # abort/stop throw into the plan (cleanup runs); halt closes it: either way `finally` runs once.
    assert closed == ["finally"]
    assert stop["num_events"]["primary"] < 200
    # The engine is usable again.
    assert len(RE(bp.count([ssim.det]))) == 1


def test_a_deferred_pause_waits_for_the_next_checkpoint():
    RE = RunEngine()
    docs = []
    RE.subscribe(lambda n, d: docs.append((n, d)))
    _pause_soon(RE, defer=True)
    with pytest.raises(RunEngineInterrupted):
        RE(bp.count([ssim.det], num=100, delay=0.01))
    n_paused = names(docs).count("event")
    assert 0 < n_paused < 100
    RE.resume()
    assert names(docs).count("event") == 100
    assert docs[-1][1]["exit_status"] == "success"


def test_control_requests_in_the_wrong_state_are_refused():
    from skyrun.errors import TransitionError

    RE = RunEngine()
    with pytest.raises(TransitionError, match="idle"):
        RE.resume()
    with pytest.raises(TransitionError):
        RE.request_pause()


CTRL_C = textwrap.dedent(
    """
    import sys
    import bluesky.plans as bp
    from skyrun import RunEngine, RunEngineInterrupted
    from skyrun.sim import det
    RE = RunEngine()
    docs = []
    RE.subscribe(lambda n, d: docs.append((n, d)))
    RE.subscribe(lambda n, d: print("started", flush=True), "start")
    try:
        RE(bp.count([det], num=150, delay=0.02))
        print("finished without pausing")
    except RunEngineInterrupted:
        print("interrupted; state", RE.state, flush=True)
        RE.{ending}
        print("stop", docs[-1][1]["exit_status"], repr(docs[-1][1]["reason"]), docs[-1][1]["num_events"])
    """
)


@pytest.mark.parametrize("ending,expect", [("abort('ctrl-c')", "stop abort 'ctrl-c'"), ("stop()", "stop success ''"),
                                           ("resume()", "stop success '' {'primary': 150}")])
def test_ctrl_c_pauses_as_in_bluesky(tmp_path, ending, expect):
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C.replace("{ending}", ending))
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = p.stdout.readline()
        assert line.strip() == "started", line
        time.sleep(0.1)
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=60)
    finally:
        p.kill()
    assert "A 'deferred pause' has been requested" in out, out
    assert "interrupted; state paused" in out, out
    assert expect in out, out


def test_a_second_ctrl_c_pauses_at_once(tmp_path):
    script = tmp_path / "ctrl_c2.py"
    # No checkpoints between the two Ctrl-C: only a hard pause stops it early.
    script.write_text(textwrap.dedent(
        """
        import bluesky.plan_stubs as bps
        from skyrun import RunEngine, RunEngineInterrupted
        RE = RunEngine()
        def plan():
            print("started", flush=True)
            yield from bps.sleep(30)
        try:
            RE(plan())
        except RunEngineInterrupted:
            print("interrupted; state", RE.state, flush=True)
            RE.abort()
        """
    ))
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert p.stdout.readline().strip() == "started"
        time.sleep(0.2)
        p.send_signal(signal.SIGINT)
        time.sleep(0.2)
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=20)
    finally:
        p.kill()
    assert "A 'hard pause' has been requested." in out, out
    assert "interrupted; state paused" in out, out


def test_abort_from_another_thread_while_RE_runs():
    RE = RunEngine()
    docs = []
    RE.subscribe(lambda n, d: docs.append((n, d)))

    def go():
        deadline = time.monotonic() + 10
        while RE.state != "running" and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)
        assert RE.abort("from a thread") == ()

    t = threading.Thread(target=go)
    t.start()
    # As Bluesky's: RE() raises RunEngineInterrupted when the plan was aborted under it.
    from bluesky.utils import RunEngineInterrupted

    with pytest.raises(RunEngineInterrupted):
        RE(bp.count([ssim.det], num=500, delay=0.01))
    t.join(10)
    assert docs[-1][1]["exit_status"] == "abort" and docs[-1][1]["reason"] == "from a thread"
    assert RE.last_summary["run_uids"] == [docs[0][1]["uid"]] and RE.state == "idle"


def test_bluesky_rewindable_wrapper_resumes_without_replaying():
    import bluesky.preprocessors as bpp
    from bluesky.utils import Msg

    RE = RunEngine()
    docs = []
    RE.subscribe(lambda n, d: docs.append((n, d)))

    with pytest.raises(RunEngineInterrupted, match="paused state"):
        RE(bpp.rewindable_wrapper(plan(), False))
    RE.resume()
    # Not rewindable: the reading before the pause is not taken again.
    assert names(docs) == ["start", "descriptor", "event", "event", "stop"]
    # Bluesky's wrapper restores the setting in its finalize.
    seen = []

    def asks():
        seen.append((yield Msg("rewindable", None, None)))

    RE(asks())
    assert seen == [True] and RE.rewindable is True

    # RE.rewindable, as Bluesky's: the same, set on the engine.
    RE.rewindable = False
    docs.clear()
    with pytest.raises(RunEngineInterrupted, match="paused state"):
        RE(plan())
    RE.resume()
    assert names(docs) == ["start", "descriptor", "event", "event", "stop"]
    seen.clear()
    RE(asks())
    assert seen == [False] and RE.rewindable is False


def test_a_plan_that_cannot_resume_is_aborted_by_a_pause_and_RE_raises():
    # Bluesky's FailedPause: after clear_checkpoint a pause aborts the plan.
    RE = RunEngine({})
    docs = []
    seen = []

    def unresumable():
        yield from bps.open_run()
        yield from bps.clear_checkpoint()
        try:
            yield from bps.pause()
        except Exception as e:
            seen.append(type(e).__name__)
            raise
        yield from bps.close_run()

    with pytest.raises(RunEngineInterrupted):
        RE(unresumable(), lambda n, d: docs.append((n, d)))
    assert RE.state == "idle"
    assert len(seen) == 1, "the plan is told, and may clean up"
    stop = docs[-1][1]
    assert (stop["exit_status"], stop["reason"]) == ("abort", "no checkpoint to rewind to: cannot pause")


def test_a_plan_raising_keyboard_interrupt_is_halted_as_in_bluesky(capsys):
    RE = RunEngine({})
    docs = []

    def rogue():
        yield from bps.open_run()
        yield from bps.checkpoint()
        raise KeyboardInterrupt()

    with pytest.raises(RunEngineInterrupted):
        RE(rogue(), lambda n, d: docs.append((n, d)))
    assert RE.state == "idle"
    assert docs[-1][1]["exit_status"] == "abort"
    assert "improperly raised KeyboardInterrupt" in capsys.readouterr().out
    RE([Msg("null")])  # and the RunEngine is usable afterwards
