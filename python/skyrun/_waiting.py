"""How ``RE()`` waits for the plan skyrun's engine runs: in short slices
(Python's signal handlers run every few ms meanwhile), noticing a pause
(``RE()`` raises ``RunEngineInterrupted``, as Bluesky's does), handling
Ctrl-C as Bluesky's ``SigintHandler`` does, and turning the engine's summary
into what Bluesky's ``RE()`` returns or raises."""

import collections
import contextlib
import time

from .errors import RunEngineInterrupted, TransitionError

# How often the waiting thread looks at the engine (pause, Ctrl-C).
_SLICE = 0.05

try:
    from bluesky.run_engine import RunEngineResult
    from bluesky.utils import SigintHandler as _SigintHandler
except ImportError:  # pragma: no cover - bluesky is what skyrun runs
    _SigintHandler = None

    class RunEngineResult(collections.namedtuple(
            "RunEngineResult", "run_start_uids plan_result exit_status interrupted reason exception")):
        """What ``RE()`` returns with ``call_returns_result=True``."""


class _Waiting:
    """The waiting side of ``skyrun.RunEngine`` (a part of it)."""

    def _interrupt(self, request):
        # From another thread while RE() waits: that RE() raises RunEngineInterrupted
        # (decided before the engine is asked, so the plan cannot end first).
        waited = self._waiting
        self._interrupted, self._raise_interrupted = True, waited
        self._ended_by_request = True
        try:
            request()
        except BaseException:
            self._raise_interrupted = False
            raise
        if waited:
            return ()
        return self._wait()

    def _wait(self, start=None):
        # As Bluesky's RunEngine: the context managers (Bluesky's SigintHandler
        # by default: Ctrl-C once pauses at the next checkpoint, again within
        # 10 s pauses now) are entered before the plan starts (or resumes) and
        # left when RE() returns.
        self._waiting = True
        try:
            with contextlib.ExitStack() as stack:
                for mgr in self.context_managers:
                    stack.enter_context(mgr(self))
                if start is not None:
                    start()
                return self._wait_loop()
        finally:
            self._waiting = False

    def _wait_loop(self):
        hits = []
        while True:
            try:
                while True:
                    r = self._engine.wait(_SLICE)
                    if r is not None:
                        return self._finish(r)
                    if self._engine.state == "paused":
                        self._deferred_pause = False
                        self._set_state("pausing")
                        self._set_state("paused")
                        self._interrupted = True
                        raise RunEngineInterrupted(self.pause_msg) from None
            except KeyboardInterrupt:
                self._interrupted = True
                if _SigintHandler is not None or not self._sigint:
                    # Ctrl-C got through (SigintHandler gave up after 10 hits, or
                    # there is none): stop the plan at once, as Bluesky does.
                    self._panic_stop()
                    raise RunEngineInterrupted(self.pause_msg) from None
                # Without bluesky installed: SigintHandler's behaviour, here.
                now = time.monotonic()
                hits = [t for t in hits if now - t < 10.0] + [now]
                try:
                    if len(hits) == 1:
                        print(
                            "A 'deferred pause' has been requested. The RunEngine will pause at the next "
                            "checkpoint. To pause immediately, hit Ctrl+C again in the next 10 seconds."
                        )
                        self.request_pause(True)
                    else:
                        print("A 'hard pause' has been requested.")
                        self._engine.pause(False)
                except TransitionError:
                    pass

    def _panic_stop(self):
        # The plan may be blocked in Python code (a time.sleep in the plan):
        # raise into the engine thread, as Bluesky raises into its loop's
        # thread, then halt; wait (bounded) for the plan to end.
        import ctypes

        self._panicking = True
        if self._engine.state != "idle":
            for ident in {self._loop_ident, self._dispatching} - {None}:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt))
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            try:
                self._engine.halt()
            except TransitionError:
                pass
            except Exception:
                pass
            r = self._engine.wait(0.1)
            if r is not None:
                self._finish_quietly(r)
                return

    def _finish_quietly(self, r):
        for t in self._temporary:
            self.unsubscribe(t)
        self._temporary = []
        self._engine.take_error()
        self._engine.take_result()
        self.last_summary = r
        self._set_state("idle")

    def _finish(self, r):
        for t in self._temporary:
            self.unsubscribe(t)
        self._temporary = []
        error = self._engine.take_error()
        plan_result = self._engine.take_result()
        self.last_summary = r
        self._set_state("idle")
        interrupted = self._interrupted or r["interrupted"] is not None
        if r["exit_status"] == "fail":
            if error is not None:
                raise error
            from .errors import PlanFailed

            raise PlanFailed(r["reason"])
        if self._callback_errors:
            raise self._callback_errors[0]
        if self._raise_interrupted:
            self._raise_interrupted = False
            # Stopped, aborted or halted from another thread while RE() waited: Bluesky raises.
            raise RunEngineInterrupted(self.pause_msg) from None
        if r["interrupted"] is not None and not self._ended_by_request:
            # Interrupted by the engine itself (a pause or suspension with no
            # checkpoint to rewind to aborts the plan; a plan raising
            # KeyboardInterrupt is halted): Bluesky's RE() raises too.
            self._interrupted = True
            raise RunEngineInterrupted(self.pause_msg) from None
        if self.call_returns_result:
            return RunEngineResult(tuple(r["run_uids"]), plan_result if not interrupted else self.NO_PLAN_RETURN,
                                   r["exit_status"], interrupted, r["reason"], error)
        return tuple(r["run_uids"])
