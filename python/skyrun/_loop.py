"""The RunEngine's asyncio event loop, run on skyrun's engine thread.

Bluesky runs its plans inside an asyncio event loop (``RE.loop``), on a
thread of its own. skyrun steps plans on its engine thread, so that is
where the loop runs too: the engine thread hosts both skyrun's Rust
executor and the loop, and gives the loop an iteration whenever it has
something to do (a file descriptor ready, a timer due, a callback
scheduled). The Rust side (``_skyrun.drive_loop``) watches the loop's
selector and timers; this module is the loop's side of that.

So, as with Bluesky's RunEngine: plans run with ``RE.loop`` as the running
loop (``asyncio.create_task`` and ``in_bluesky_event_loop()`` work in a
plan), coroutines given to the engine (``wait_for``, registered commands, an
async ``scan_id_source``) are awaited on it, and other threads reach it with
``call_in_bluesky_event_loop`` or ``asyncio.run_coroutine_threadsafe``:
``loop.is_running()`` is true while the RunEngine drives it.
``loop.stop()`` ends the driving (``RE._th`` then ends, as Bluesky's thread
does), after which the loop can be closed.

One call into the loop (``DrivenLoop.iterate``, a crossing from Rust into
Python) runs the loop for as long as it has work ready (callbacks, timers
due), up to ``BUDGET`` seconds, as Bluesky's ``run_forever`` would, rather
than one iteration a call: a loop kept busy by a device (a detector writing
frames) then costs one crossing every ``BUDGET``, not one per iteration. It
returns early when the loop completed a status the engine waits for
(:func:`hand_off`), so the engine goes on where Bluesky's RunEngine would:
after the iteration that completed it.

Only asyncio's own selector event loop can be driven this way (it needs
the loop's selector); another kind of loop is refused with a clear error.
"""

import asyncio
import select
import sys
import threading
import time
from asyncio import events

#: How long one call of ``DrivenLoop.iterate`` may keep the loop running while
#: it has work ready, in seconds (the engine's other actors wait meanwhile).
BUDGET = 0.001

#: Whether the engine has something to go on with (see :func:`hand_off`).
_handoff = False


def _noop():
    pass


def hand_off():
    """Called on the engine thread from the loop's code (a status completed):
    the running ``iterate`` returns after this iteration, so the engine goes
    on with what it waited for before the loop's other work."""
    global _handoff
    _handoff = True


class DrivenLoop:
    """One asyncio loop driven from skyrun's engine thread."""

    def __init__(self, loop):
        if not isinstance(loop, asyncio.BaseEventLoop) or not hasattr(loop, "_selector"):
            raise TypeError(
                f"skyrun's RunEngine runs its event loop on its engine thread and needs asyncio's "
                f"selector event loop (asyncio.new_event_loop()); got {type(loop).__name__}"
            )
        if loop.is_running():
            raise RuntimeError(
                "the event loop given to skyrun's RunEngine is already running on another thread; "
                "give it a new loop (asyncio.new_event_loop()), which it runs itself"
            )
        loop._check_closed()
        self.loop = loop
        self.ended = threading.Event()
        self.ident = None
        self._hooks = None

    def attach(self):
        """On the engine thread: the loop is now running there. Returns its selector's fd."""
        loop = self.loop
        loop._thread_id = self.ident = threading.get_ident()
        loop._set_coroutine_origin_tracking(loop._debug)
        self._hooks = (loop._asyncgen_firstiter_hook, loop._asyncgen_finalizer_hook)
        # Whether the selector has events waiting (its epoll instance is
        # readable), asked when the loop is about to wait: the driver watches
        # that fd edge-triggered, so events left after an iteration (a reader
        # that did not read everything) must be seen here, once, not by
        # wrapping every iteration's select.
        fd = loop._selector.fileno()
        self._pending = select.poll()
        self._pending.register(fd, select.POLLIN)
        return fd

    def iterate(self):
        """Runs the loop without blocking: one iteration, then more while
        callbacks are ready or timers due, for at most ``BUDGET`` seconds and
        until a status the engine waits for completed (:func:`hand_off`).
        Returns when the next one is needed: 0.0 (callbacks ready), seconds
        until the next timer, None (only I/O or another thread can wake it),
        or -1.0 when the loop was stopped (the driving ends)."""
        global _handoff
        loop = self.loop
        if loop.is_closed():
            return -1.0
        old_hooks = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(*self._hooks)
        events._set_running_loop(loop)
        _handoff = False
        ready = loop._ready  # (asyncio replaces its `_scheduled` list, never `_ready`)
        try:
            # Something ready makes the select inside poll without blocking.
            ready.append(events.Handle(_noop, (), loop))
            loop._run_once()
            end = None
            clock, run_once = time.monotonic, loop._run_once
            # Ready callbacks or a timer due: the select inside polls without blocking.
            while (ready or (loop._scheduled and loop._scheduled[0]._when <= loop.time())) and not (
                    _handoff or loop._stopping):
                if end is None:
                    end = clock() + BUDGET
                elif clock() >= end:
                    break
                run_once()
        finally:
            _handoff = False
            events._set_running_loop(None)
            sys.set_asyncgen_hooks(*old_hooks)
        if loop._stopping:
            return -1.0
        if ready or self._pending.poll(0):
            return 0.0
        if loop._scheduled:
            return max(0.0, loop._scheduled[0]._when - loop.time())
        return None

    def detach(self):
        """The driving ended (the loop was stopped): it is not running anymore."""
        loop = self.loop
        loop._stopping = False
        loop._thread_id = None
        try:
            loop._set_coroutine_origin_tracking(False)
        except Exception:  # pragma: no cover - the loop was closed under us
            pass
        self.ended.set()


class LoopThread:
    """What ``RE._th`` is: ends when the loop is no longer driven (after
    ``loop.stop()``), like the thread Bluesky runs its loop on."""

    def __init__(self, driven):
        self._driven = driven
        self.name = "skyrun-event-loop"
        self.daemon = True

    def join(self, timeout=None):
        self._driven.ended.wait(timeout)

    def is_alive(self):
        return not self._driven.ended.is_set()
