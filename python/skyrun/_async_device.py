"""Python helpers of the native module for asyncio devices (ophyd-async's).

ophyd-async devices return coroutines from ``read``/``describe``/``locate``
and awaitable statuses (``AsyncStatus``, ``WatchableAsyncStatus``) from
``set``/``trigger``/``kickoff``/``stage``..., all bound to Bluesky's event
loop, which skyrun drives on its engine thread (``skyrun._loop``). The
native device layer (``src/async_device.rs``) uses these helpers:

* :func:`run_nested` runs that loop on the engine thread until a coroutine
  is done, for the device requests whose answer is a value (a reading, data
  keys, a location) or that must finish before the engine goes on (stage);
* :func:`start` runs a coroutine as a task and answers when it is done, for
  the requests whose answer may come later (a ``locate``: the engine locates
  several devices at once, as Bluesky gathers their coroutines);
* :func:`follow` completes skyrun's Status when an awaitable status does, and
  passes ``watch`` updates on.
"""

import asyncio
import inspect

from ._loop import hand_off

#: What a value of a watch update becomes on a span event, by its key.
WATCH_KEYS = (
    "name",
    "current",
    "initial",
    "target",
    "unit",
    "precision",
    "fraction",
    "time_elapsed",
    "time_remaining",
)


def _noop():
    pass


def is_awaitable(value):
    return value is not None and inspect.isawaitable(value)


def run_nested(loop, aw, timeout, what):
    """Runs ``loop`` (the running loop of this thread, not inside one of its
    iterations) until the awaitable ``aw`` is done; returns its result or
    raises its exception. Raises TimeoutError naming ``what`` after
    ``timeout`` seconds (the awaitable is then cancelled)."""
    fut = asyncio.ensure_future(aw, loop=loop)
    if fut.done():
        return fut.result()
    deadline = loop.time() + timeout
    bound = None
    try:
        while not fut.done():
            if loop.time() >= deadline:
                fut.cancel()
                raise TimeoutError(f"{what} did not finish within {timeout} s")
            if bound is None and not loop._ready:
                # The select inside may block: nothing waits past the deadline. (Only
                # then: a cancelled timer stays in the loop's heap, and each costs every
                # timer's push and pop a comparison.)
                bound = loop.call_at(deadline, _noop)
            loop._run_once()
    finally:
        if bound is not None:
            bound.cancel()
    return fut.result()


def start(loop, aw, done):
    """Runs the awaitable ``aw`` as a task on ``loop`` without waiting for it:
    ``done(result, None)`` when it returns, ``done(None, exception)`` when it
    raises or is cancelled. Returns the task."""
    task = asyncio.ensure_future(aw, loop=loop)

    def finished(t):
        if t.cancelled():
            done(None, asyncio.CancelledError(f"{aw!r} was cancelled"))
        elif t.exception() is not None:
            done(None, t.exception())
        else:
            done(t.result(), None)
        hand_off()

    task.add_done_callback(finished)
    return task


def _failure(status):
    try:
        exc = status.exception()
    except BaseException as e:  # a cancelled task raises CancelledError here
        exc = e
    return exc if exc is not None else RuntimeError(f"{status!r} failed")


def follow(aw, done, watch=None, finish=None):
    """Calls ``done(None)`` when the awaitable status ``aw`` succeeds, else
    ``done(exception)``. ``watch(update: dict)`` gets each ``watch`` update of a
    watchable status. On success, ``finish()`` (a coroutine function, e.g. the
    position a move ended at) is awaited first and its result given as
    ``done(None, result)``. Returns what was followed (a task for a bare
    coroutine)."""

    def finished(exc):
        if exc is None and finish is not None:

            async def then():
                try:
                    value = await finish()
                except Exception:
                    value = None
                done(None, value)
                hand_off()

            asyncio.ensure_future(then())
        else:
            done(exc, None)
            hand_off()

    if hasattr(aw, "add_callback") and hasattr(aw, "exception"):
        if watch is not None and callable(getattr(aw, "watch", None)):

            def watcher(*args, **update):
                watch({k: update.get(k) for k in WATCH_KEYS})

            aw.watch(watcher)

        def callback(status):
            finished(None if status.success else _failure(status))

        aw.add_callback(callback)
        return aw
    fut = asyncio.ensure_future(aw)

    def task_done(task):
        if task.cancelled():
            finished(asyncio.CancelledError(f"{aw!r} was cancelled"))
        else:
            finished(task.exception())

    fut.add_done_callback(task_done)
    return fut


async def drain(agen):
    """The items of async iterator ``agen``, as a list (ophyd-async's
    ``collect_asset_docs`` is an async generator; Bluesky iterates it with
    ``iterate_maybe_async``)."""
    return [item async for item in agen]
