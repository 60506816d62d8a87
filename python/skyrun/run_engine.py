"""``skyrun.RunEngine``: Bluesky's RunEngine API on skyrun's Rust engine.

``RE(plan)`` runs any generator of ``bluesky.utils.Msg`` (or of anything with
``command``, ``obj``, ``args``, ``kwargs``, ``run``) with Bluesky's protocol:
results are sent back into the generator, failures thrown into it, and it is
closed on halt. The generator is stepped on skyrun's engine thread; this
thread waits in short slices, so it notices a pause (``RE()`` then raises
``RunEngineInterrupted``, as Bluesky's does) and handles Ctrl-C as Bluesky's
``SigintHandler`` does.

``RunEngine`` is written in three files: this one (construction, state,
control, suspenders, commands, metadata, ``RE()``), ``_documents.py``
(``RE.subscribe`` and the delivery of documents to callbacks) and
``_waiting.py`` (how ``RE()`` waits, Ctrl-C, and what it returns or raises).
"""

import asyncio
import atexit
import collections
import copy
import datetime
import inspect
import sys
import threading
import warnings

from . import _loop, _otel, _skyrun
from ._documents import _Documents
from ._waiting import _SigintHandler, _Waiting

PAUSE_MSG = """
Your RunEngine is entering a paused state. These are your options for changing
the state of the RunEngine:

RE.resume()    Resume the plan.
RE.abort()     Perform cleanup, then kill plan. Mark exit_stats='aborted'.
RE.stop()      Perform cleanup, then kill plan. Mark exit_status='success'.
RE.halt()      Emergency Stop: Do not perform cleanup --- just stop.
"""


def _versions():
    v = {"skyrun": _skyrun.__version__}
    for mod in ("bluesky", "ophyd", "event_model"):
        m = sys.modules.get(mod)
        if m is None:
            try:
                m = __import__(mod)
            except ImportError:
                continue
        v[mod] = getattr(m, "__version__", "unknown")
    return v


def _ensure_generator(plan):
    if inspect.isgenerator(plan):
        return plan
    if hasattr(plan, "send") and hasattr(plan, "throw"):
        return plan

    def gen():
        # A list or other iterator cannot take results back: they are dropped.
        for msg in plan:
            yield msg

    return gen()


async def _wait_for(msg):
    # Bluesky's _wait_for: the factories' awaitables as tasks, waited with asyncio.wait's keywords.
    (futs,) = msg.args
    futs = [asyncio.ensure_future(f()) for f in futs]
    _, pending = await asyncio.wait(futs, **msg.kwargs)
    if pending:
        from .errors import WaitForTimeoutError

        raise WaitForTimeoutError("Plan failed to complete in the specified time")
    return futs


def _set_bluesky_event_loop(loop):
    # Bluesky's call_in_bluesky_event_loop / in_bluesky_event_loop use the newest RunEngine's loop.
    try:
        from bluesky import run_engine
    except ImportError:
        return
    run_engine.set_bluesky_event_loop(loop)


class _State(str):
    """The engine's state, with the tests of Bluesky's state machine."""

    is_idle = property(lambda self: self == "idle")
    is_running = property(lambda self: self == "running")
    is_paused = property(lambda self: self == "paused")
    is_panicked = property(lambda self: self == "panicked")


def _Msg(command, obj, *args, **kwargs):
    try:
        from bluesky.utils import Msg
    except ImportError:  # pragma: no cover
        return collections.namedtuple("Msg", "command obj args kwargs run")(command, obj, args, kwargs, None)
    return Msg(command, obj, *args, **kwargs)


def _default_scan_id_source(md):
    return md.get("scan_id", 0) + 1


def _default_md_validator(md):
    # Bluesky's default: 'sample' must be a string or a mapping.
    if "sample" in md and not (hasattr(md["sample"], "keys") or isinstance(md["sample"], str)):
        raise ValueError(
            "You specified 'sample' metadata. We give this field special significance in order to make your "
            "data easily searchable. Therefore, you must make 'sample' a string or a  dictionary, like so: "
            "GOOD: sample='dirt' GOOD: sample={'color': 'red', 'number': 5} BAD: sample=[1, 2] "
        )


try:
    from bluesky.run_engine import Dispatcher as _Dispatcher
except ImportError:  # pragma: no cover - bluesky is what skyrun runs
    _Dispatcher = None

def _default_context_managers():
    # Bluesky's default: [SigintHandler] (without bluesky, RE() handles Ctrl-C the same way itself).
    return [_SigintHandler] if _SigintHandler is not None else []


_atexit_registered = False
_own_pipeline = False


def use_skyrun_pipeline(target=None, profile=False):
    """Send skyrun's spans to skyrun's own pipeline: ``target`` is ``none``,
    ``console``, ``jsonl:FILE`` or ``otlp`` (None: from the OTEL_* variables);
    ``profile`` also records every span's duration (see ``profile_report``)."""
    global _own_pipeline
    _own_pipeline = True
    return _skyrun.init_telemetry(target, profile)


def _flush_at_exit():
    try:
        _skyrun.shutdown_spans()
        _skyrun.shutdown_telemetry()
    except Exception:  # pragma: no cover - best effort at exit
        pass


class RunEngine(_Documents, _Waiting):
    """Bluesky's RunEngine, running on skyrun.

    Parameters
    ----------
    md : dict, optional
        Metadata added to every start document (``RE.md``); ``scan_id`` is
        kept here between runs, as in Bluesky.
    run_trace : bool
        Make each run one trace (the run span parents every span of the run).
    trace_all_messages : bool
        Record a span for every message, not only Bluesky's set/wait/complete/collect.
    context_managers : list, optional
        As Bluesky's: pass ``[]`` to leave Ctrl-C alone (no pause on SIGINT).
    """

    def __init__(self, md=None, *, loop=None, preprocessors=None, context_managers=None, md_validator=None,
                 md_normalizer=None, scan_id_source=None, during_task=None, call_returns_result=False,
                 run_trace=False, trace_all_messages=False):
        global _atexit_registered
        if during_task is not None and type(during_task).__name__ != "DefaultDuringTask":
            raise NotImplementedError(
                "skyrun's RunEngine waits for plans its own way (in slices, handling Ctrl-C): "
                f"during_task={during_task!r} is not supported"
            )
        # Any mapping (Bluesky's PersistentDict too): kept, not copied, as Bluesky does.
        if md is None:
            md = {}
        self.md = md
        self.md.setdefault("versions", {})
        versions = dict(self.md["versions"])
        versions.update(_versions())
        self.md["versions"] = versions
        # The event loop plans run in (Bluesky's RE.loop), driven on the engine thread.
        if loop is None:
            loop = asyncio.new_event_loop()
        driven = _loop.DrivenLoop(loop)
        self._loop = loop
        self._loop_driver = _skyrun.drive_loop(driven)
        self._th = _loop.LoopThread(driven)
        self._loop_ident = driven.ident
        _set_bluesky_event_loop(loop)
        self._engine = _skyrun.Engine(run_trace, trace_all_messages, self._loop_driver)
        self._subs = {}
        self._next_token = 0
        # Bluesky's own Dispatcher (RE.dispatcher), when bluesky is installed.
        self.dispatcher = _Dispatcher() if _Dispatcher is not None else None
        self._engine_subscribed = False
        self._commands = {}
        self._builtin_local = {"subscribe", "unsubscribe", "RE_class", "input", "wait_for",
                               "install_suspender", "remove_suspender"}
        self._local_commands = set(self._builtin_local)
        for name in self._builtin_local:
            self._engine.register_local(name)
        self._call_md = {}
        self._plan = None
        self._temporary = []
        self._abort_reason = ""
        self._waiting = False
        self._interrupted = False
        self._raise_interrupted = False
        self._panicking = False
        self._dispatching = None
        self._ended_by_request = False
        self._callback_errors = []
        self._state_seen = "idle"
        self._deferred_pause = False
        self._rewindable_seen = True
        self._suspenders = set()
        self._start_md = collections.deque()
        self.preprocessors = list(preprocessors or [])
        self.context_managers = _default_context_managers() if context_managers is None else list(context_managers)
        self.md_validator = md_validator if md_validator is not None else _default_md_validator
        self.md_normalizer = md_normalizer if md_normalizer is not None else (lambda md: md)
        self.scan_id_source = scan_id_source if scan_id_source is not None else _default_scan_id_source
        self.call_returns_result = call_returns_result
        self.pause_msg = PAUSE_MSG
        self.msg_hook = None
        self.state_hook = None
        # Called with the statuses a `wait` waits on, then None (Bluesky's ProgressBarManager).
        self.waiting_hook = None
        self.max_depth = None
        self.NO_PLAN_RETURN = object()
        if not _atexit_registered:
            atexit.register(_flush_at_exit)
            _atexit_registered = True

    @property
    def _sigint(self):
        # Ctrl-C pauses when Bluesky's SigintHandler is among the context managers (or bluesky is missing).
        return _SigintHandler is None or _SigintHandler in self.context_managers

    @property
    def record_interruptions(self):
        """Bluesky's: each run records pauses, resumes and suspensions as
        events of its 'interruptions' stream (the Rust engine's setting)."""
        return self._engine.record_interruptions()

    @record_interruptions.setter
    def record_interruptions(self, v):
        self._engine.record_interruptions(bool(v))

    @property
    def deferred_pause_requested(self):
        """Whether a deferred pause (at the next checkpoint) is pending."""
        return self._deferred_pause

    def _set_state(self, new):
        old = self._state_seen
        if new == old:
            return
        self._state_seen = new
        if self.state_hook is not None:
            self.state_hook(new, old)

    # -- state and control ------------------------------------------------

    @property
    def loop(self):
        """The asyncio event loop plans run in (``RE.loop``, as Bluesky's)."""
        return self._loop

    @property
    def rewindable(self):
        """Whether a paused plan, when resumed, replays the messages since its
        last checkpoint (``True`` by default), as Bluesky's ``RE.rewindable``.
        Read from inside a plan (on the engine thread), it is the setting the
        plan last saw (its ``rewindable`` messages' answers)."""
        if threading.get_ident() == self._loop_ident:
            return self._rewindable_seen
        self._rewindable_seen = self._engine.rewindable()
        return self._rewindable_seen

    @rewindable.setter
    def rewindable(self, v):
        self._engine.rewindable(bool(v))
        self._rewindable_seen = bool(v)

    @property
    def state(self):
        """``'idle'``, ``'running'`` or ``'paused'`` (a string with Bluesky's
        ``is_idle``, ``is_running``, ``is_paused`` tests)."""
        return _State(self._engine.state)

    # -- suspenders -------------------------------------------------------

    def install_suspender(self, suspender):
        """Install a suspender (``bluesky.suspenders``): it suspends the plan
        while its condition holds (see ``request_suspend``)."""
        self._suspenders.add(suspender)
        suspender.install(self)

    def remove_suspender(self, suspender):
        """Uninstall a suspender."""
        if suspender in self._suspenders:
            suspender.remove()
        self._suspenders.discard(suspender)

    def clear_suspenders(self):
        """Uninstall every suspender."""
        for s in self.suspenders:
            self.remove_suspender(s)

    @property
    def suspenders(self):
        """The installed suspenders."""
        return tuple(self._suspenders)

    def request_suspend(self, fut, *, pre_plan=None, post_plan=None, justification=None):
        """Suspend the running plan until ``fut`` (an awaitable, or a function
        returning one, awaited on ``RE.loop``) is done: stop what it moved,
        run ``pre_plan``, wait, run ``post_plan``, rewind to the last
        checkpoint and go on. Carried out by skyrun's engine (one
        "Bluesky RunEngine suspend" span); a plan with no checkpoint is aborted."""
        print("Suspending....To get prompt hit Ctrl-C twice to pause.")
        print(f"Suspension occurred at {datetime.datetime.now().strftime('%Y-%m-%d %H:%M:%S')}.")
        if justification is not None:
            print(f"Justification for this suspension:\n{justification}")

        def plan_of(p):
            if p is None:
                return None
            return _ensure_generator(p() if callable(p) else p)

        factory = fut if callable(fut) else (lambda: fut)

        def suspended():
            # Bluesky's suspender plan: the pre-plan, then a wait_for of the
            # condition (a message msg_hook sees), awaited on RE.loop.
            if pre_plan is not None:
                yield from plan_of(pre_plan)
            yield _Msg("wait_for", None, [factory])

        if self._engine.state == "running":
            self._set_state("suspending")
            self._set_state("running")
        self._engine.suspend(None, self, suspended(), plan_of(post_plan),
                             justification if justification is not None else "suspended")

    def request_pause(self, defer=False):
        """Pause now, or at the next checkpoint when ``defer``."""
        self._engine.pause(defer)
        if defer:
            self._deferred_pause = True

    def pause(self, defer=False):
        """Same as ``request_pause``."""
        self.request_pause(defer)

    def resume(self):
        """Resume a paused plan (rewinding to its last checkpoint); returns as ``RE()``."""
        def start():
            self._engine.resume()
            self._interrupted = False
            self._ended_by_request = False
            self._set_state("running")

        return self._wait(start)

    def abort(self, reason=""):
        """Stop the plan, let it clean up, mark its runs ``abort`` with ``reason``."""
        self._abort_reason = reason
        return self._interrupt(lambda: self._engine.abort(reason))

    def stop(self):
        """Stop the plan, let it clean up, mark its runs ``success``."""
        return self._interrupt(lambda: self._engine.stop())

    def halt(self):
        """Stop the plan at once without cleanup; runs end ``abort``."""
        return self._interrupt(lambda: self._engine.halt())

    # -- commands ---------------------------------------------------------

    def register_command(self, name, func):
        """Handle messages with command ``name`` by ``func(msg)`` (a function or coroutine function)."""
        if not callable(func):
            raise ValueError(f"register_command needs a callable, got {func!r}")
        self._commands[name] = func
        self._local_commands.add(name)
        self._engine.register_local(name)

    def unregister_command(self, name):
        """Forget the command ``name`` registered with ``register_command``."""
        self._commands.pop(name, None)
        if name not in self._builtin_local:
            self._local_commands.discard(name)
            self._engine.unregister_local(name)

    @property
    def commands(self):
        """The commands registered with ``register_command``."""
        return list(self._commands)

    def _handle_local(self, msg):
        command = msg.command
        if command in self._commands:
            # A coroutine is awaited on RE.loop by the engine (the plan waits, the engine thread does not).
            return self._commands[command](msg)
        if command == "wait_for":
            return _wait_for(msg)
        if command == "install_suspender":
            return self.install_suspender(msg.args[0])
        if command == "remove_suspender":
            return self.remove_suspender(msg.args[0])
        if command == "subscribe":
            # For this plan only, as Bluesky's (unsubscribed when RE() returns).
            token = self.subscribe(*msg.args, **msg.kwargs)
            self._temporary.append(token)
            return token
        if command == "unsubscribe":
            # Documents reach subscribers on skyrun's document thread, a little
            # behind the plan: the subscription ends when the run's documents
            # have all been delivered (when RE() returns), so it sees every
            # document emitted while it was subscribed, as in Bluesky.
            token = msg.kwargs.get("token", msg.args[0] if msg.args else None)
            self._temporary.append(token)
            return None
        if command == "RE_class":
            return type(self)
        if command == "input":
            return input(msg.kwargs.get("prompt", ""))
        raise KeyError(f"unknown command {command!r}")

    def _close_run_kwargs(self, kwargs):
        # skyrun keeps an abort's reason in the stop document (Bluesky leaves it empty).
        kwargs = dict(kwargs or {})
        if kwargs.get("exit_status") == "abort" and not kwargs.get("reason") and self._abort_reason:
            kwargs["reason"] = self._abort_reason
        return kwargs

    def _open_run_kwargs(self, kwargs):
        # Bluesky's _open_run: scan_id from scan_id_source (sync or async), then the
        # metadata by precedence: per-call, the open_run message, the plan's type and name, RE.md;
        # validated, then normalized. An awaitable answer is awaited on RE.loop by the engine.
        scan_id = self.scan_id_source(self.md)
        if inspect.isawaitable(scan_id):
            async def finish():
                return self._run_metadata(await scan_id, kwargs)

            return finish()
        return self._run_metadata(scan_id, kwargs)

    def _run_metadata(self, scan_id, kwargs):
        self.md["scan_id"] = scan_id
        md = collections.ChainMap(
            self._call_md,
            dict(kwargs or {}),
            {"plan_type": type(self._plan).__name__, "plan_name": getattr(self._plan, "__name__", "")},
            self.md,
        )
        self.md_validator(dict(md))
        normalized = dict(self.md_normalizer(copy.deepcopy(md)))
        # The start document comes back through the engine as JSON data: its
        # fields get back the Python values they were given (tuples stay tuples).
        self._start_md.append(normalized)
        return normalized

    # -- running ----------------------------------------------------------

    def _configure_tracing(self):
        global _own_pipeline
        provider = _otel.sdk_provider()
        if provider is not None:
            _skyrun.bridge_spans_to(provider)
        elif not _own_pipeline:
            # No Python provider: skyrun's own pipeline, from the OTEL_* variables (OTLP when an endpoint is set).
            _skyrun.init_telemetry(None)
            _own_pipeline = True

    def __call__(self, plan, subs=None, /, **metadata_kw):
        """Run ``plan``; returns the uids of the runs it opened (a tuple), or a
        ``RunEngineResult`` when ``call_returns_result``."""
        if self._engine.busy:
            raise RuntimeError(f"The RunEngine is in a {self.state} state: resume, abort, stop or halt it first")
        if "raise_if_interrupted" in metadata_kw:
            # Bluesky's deprecated option: RE() always raises when interrupted.
            metadata_kw.pop("raise_if_interrupted")
            warnings.warn(
                "The 'raise_if_interrupted' flag has been removed; the RunEngine always raises "
                "RunEngineInterrupted when interrupted",
                UserWarning,
                stacklevel=2,
            )
        if self.max_depth is not None:
            depth = len(inspect.getouterframes(inspect.currentframe()))
            if depth > self.max_depth:
                raise RuntimeError(f"RE was called from {depth} frames deep, more than RE.max_depth={self.max_depth}")
        self._configure_tracing()
        self._call_md = metadata_kw
        self._callback_errors = []
        self._abort_reason = ""
        tokens = []
        if subs is not None:
            if callable(subs):
                subs = [subs]
            if isinstance(subs, dict):
                subs = [(f, n) for n, fs in subs.items() for f in (fs if isinstance(fs, (list, tuple)) else [fs])]
            for s in subs:
                tokens.append(self.subscribe(*s) if isinstance(s, tuple) else self.subscribe(s))
        self._temporary = tokens
        self._plan = plan
        self._interrupted = False
        self._panicking = False
        self._ended_by_request = False
        gen = _ensure_generator(plan)
        for wrapper in self.preprocessors:
            gen = wrapper(gen)
        gen = self._after_tripped_suspenders(gen)

        def start():
            self._engine.start(gen, self)
            self._set_state("running")

        return self._wait(start)

    def _after_tripped_suspenders(self, gen):
        # As Bluesky: a plan starts only when every installed suspender is ready.
        futs, why = [], []
        for s in self.suspenders:
            f, justification = s.get_futures()
            if f:
                futs.extend(f)
                why.append(justification)
        if not futs:
            return gen
        print("At least one suspender has tripped. The plan will begin when all suspenders are ready. Justification:")
        for i, j in enumerate(why):
            print(f"    {i + 1}. {j}")
        print()
        print("Suspending... To get to the prompt, hit Ctrl-C twice to pause.")

        def waiting_first():
            yield _Msg("wait_for", None, futs)
            return (yield from gen)

        return waiting_first()

    # -- native plans -----------------------------------------------------

    def run_native_count(self, detectors, num=1, delay=0.0):
        """skyrun's Rust ``count`` on skyrun devices (no Python per message); returns the run uids."""
        self._configure_tracing()
        r = self._engine.run_count([d._skyrun_core for d in detectors], num, delay)
        return self._finish(r)

    def run_native_scan(self, detectors, motor, start, stop, num):
        """skyrun's Rust ``scan`` on skyrun devices; returns the run uids."""
        self._configure_tracing()
        r = self._engine.run_scan([d._skyrun_core for d in detectors], motor._skyrun_core, start, stop, num)
        return self._finish(r)
