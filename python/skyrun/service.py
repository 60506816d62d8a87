"""``python -m skyrun service``: blueapi's REST API (1.21.1) over Python plans
and Python devices, so blueapi's own client drives them::

    python -m skyrun service --devices beamline.py --plans plans.py [--bind 127.0.0.1:8000]
        [--token-file FILE | --allow-unauthenticated]

The routes, the task life cycle, the task record and the WebSocket are those
of ``skyrun service`` (Rust, ``skyrun::service``): only the plans, the
devices and the engine differ. This module is the Python half:

* the **devices** are the top-level device objects of each ``--devices``
  module (a ``.py`` file or an importable module name; a ``.toml`` skyrun
  device file is read with ``skyrun.load_devices``): every object that
  follows one of Bluesky's protocols (ophyd, ``ophyd.sim``, ophyd-async,
  ``skyrun.sim``), known by its ``name`` (an ophyd-async device left
  without one is named after its variable, and one never connected is
  connected on the engine's loop, as blueapi's device manager leaves its
  devices), and the devices a top-level device manager builds and
  connects (an object with blueapi's ``DeviceManager.build_and_connect``,
  such as dodal's: blueapi's ``deviceManager`` source);
* the **plans** are the generator functions of each ``--plans`` module whose
  return annotation is ``MsgGenerator`` (defined in the module, or listed in
  its ``__all__``), found as blueapi finds them; each parameter needs a type
  annotation. Their signatures give the JSON schema of the parameters, built
  by pydantic as blueapi builds it: a parameter typed with a Bluesky
  protocol or a device class takes a device's name (``enum``: the devices
  that fit); the docstring is the description;
* a task's parameters are checked by that model (422 with pydantic's
  errors), and its plan runs on a ``skyrun.RunEngine`` — the engine's thread
  and its Python driver, as ``RE(plan)`` runs it — with the task's
  ``instrument_session`` and ``task_id`` in its runs' start documents.

``Environment`` is what the native service (``skyrun._skyrun.start_service``)
calls; ``serve`` runs the service until Ctrl-C or SIGTERM.
"""

import contextlib
import dataclasses
import importlib
import importlib.util
import inspect
import json
import os
import pathlib
import sys
import typing

from ._service_schema import Schemas, _generic_bounds, _protocols, _result_json, is_device, is_plan

__all__ = ["Environment", "LoadError", "serve", "main"]


def _public_members(mod):
    # What `from mod import *` would give: __export__, else __all__, else the public names.
    names = getattr(mod, "__export__", None) or getattr(mod, "__all__", None)
    if names is None:
        names = [n for n in vars(mod) if not n.startswith("_")]
    return [getattr(mod, n) for n in names]


def _load_source(source, fresh=False):
    """The module ``source`` names: a ``.py`` file (its folder goes on
    ``sys.path``, and it is importable by its stem, so plan modules can
    import the device module and get the same devices) or a module name."""
    path = pathlib.Path(source)
    if source.endswith(".py") or path.is_file():
        if not path.is_file():
            raise FileNotFoundError("no such file")
        path = path.resolve()
        folder = str(path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        name = path.stem
        old = sys.modules.get(name)
        if old is not None and not fresh and getattr(old, "__file__", None) == str(path):
            return old
        if old is not None and getattr(old, "__file__", None) != str(path):
            name = f"skyrun_service_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            if old is not None:
                sys.modules[name] = old
            else:
                sys.modules.pop(name, None)
            raise
        return mod
    mod = importlib.import_module(source)
    return importlib.reload(mod) if fresh else mod


def _attach(carrier):
    # The context of `carrier` made current (a token for _detach), or None without OpenTelemetry's API.
    try:
        from opentelemetry import context, propagate
    except ImportError:
        return None
    return context.attach(propagate.extract(carrier)) if carrier else None


def _detach(token):
    if token is not None:
        from opentelemetry import context

        context.detach(token)


def _build_and_connect(source, manager):
    # blueapi's `deviceManager` source: the devices a DeviceManager (dodal's, or any object
    # with its `build_and_connect`) builds and connects; what fails is reported, as blueapi does.
    result = manager.build_and_connect(mock=False, fixtures={})
    for what in ("build_errors", "connection_errors"):
        for name, error in (getattr(result, what, None) or {}).items():
            print(f"skyrun service: {source}: device '{name}' left out ({what.replace('_', ' ')[:-1]}): "
                  f"{type(error).__name__}: {error}", file=sys.stderr)
    return list(result.devices.values())


class LoadError(Exception):
    """A device or plan module that does not load: ``SOURCE: ExcType: message``."""


@contextlib.contextmanager
def _naming(source):
    # What goes wrong while loading `source` names it.
    try:
        yield
    except LoadError:
        raise
    except Exception as e:
        raise LoadError(f"{source}: {type(e).__name__}: {e}") from e


@dataclasses.dataclass
class _Prepared:
    """A task's plan with its checked parameters (devices already looked up)."""

    func: typing.Callable
    kwargs: dict
    metadata: dict
    token: typing.Any = None


class Environment(Schemas):
    """The devices and the plans of modules, as blueapi's context holds them.

    ``devices`` and ``plans`` are lists of sources: ``.py`` files, module
    names (or, for devices, skyrun ``.toml`` device files). A module's
    ophyd-async devices without a name are named after their variables, and
    those never connected are connected on ``loop`` (default: Bluesky's
    event loop, run by the RunEngine) within ``connect_timeout`` seconds, as
    blueapi's device manager builds and connects its devices
    (``skyrun._devices_module``); one that does not connect is left out
    (said on stderr with ``report``, as blueapi logs it) and listed in
    ``not_connected`` as ``(source, name, exception)``.
    """

    def __init__(self, devices=(), plans=(), loop=None, connect_timeout=10.0, report=True):
        self._device_sources = list(devices)
        self._plan_sources = list(plans)
        self._loop, self._connect_timeout, self._report = loop, connect_timeout, report
        self.not_connected = []
        self.devices = {}
        self.plans = {}
        self._references = {}
        self._plans_json = "[]"
        self._devices_json = "[]"
        self._load(fresh=False)

    # -- loading ----------------------------------------------------------

    def _load(self, fresh):
        devices, references = {}, {}
        self.not_connected = []
        old = (self.devices, self._references)
        # The plans' schemas are built against the new devices.
        self.devices, self._references = devices, references
        try:
            for source in self._device_sources:
                with _naming(source):
                    self._add_devices(source, fresh, devices)
            plans = {}
            for source in self._plan_sources:
                with _naming(source):
                    self._add_plans(source, fresh, plans)
            plans_json = json.dumps([
                {"name": p.name, "description": p.description, "schema": p.model.model_json_schema()}
                for p in plans.values()
            ])
            devices_json = json.dumps([
                {"name": name, "protocols": self._protocol_info(d)} for name, d in devices.items()
            ])
        except BaseException:
            self.devices, self._references = old
            raise
        self.plans = plans
        self._plans_json, self._devices_json = plans_json, devices_json

    def _add_devices(self, source, fresh, devices):
        from ._devices_module import connect_unconnected, name_unnamed

        if source.endswith(".toml"):
            from .devices import load_devices

            found = list(load_devices(source).values())
        else:
            # Modules, classes and functions are not devices, even when they have a protocol's
            # names (`bluesky.plan_stubs` has `stage` and `unstage`).
            mod = _load_source(source, fresh)
            name_unnamed(mod, _public_members(mod))
            members = [obj for obj in _public_members(mod)
                       if not (inspect.ismodule(obj) or inspect.isroutine(obj) or inspect.isclass(obj))]
            found = [obj for obj in members if is_device(obj)]
            # A device manager: `devices` (blueapi's default name, listed in __all__ or not) or any other.
            managers = [obj for obj in [getattr(mod, "devices", None), *members]
                        if callable(getattr(obj, "build_and_connect", None)) and not inspect.isclass(obj)]
            for manager in {id(m): m for m in managers}.values():
                found.extend(_build_and_connect(source, manager))
        mine = {}
        for device in found:
            name = getattr(device, "name", None)
            if not isinstance(name, str) or not name:
                print(f"skyrun service: {source}: {device!r} follows Bluesky's protocols but has no name: "
                      "left out", file=sys.stderr)
                continue
            if name in devices and devices[name] is not device:
                raise ValueError(f"two devices are named '{name}'")
            devices[name] = device
            mine[name] = device
        for name, error in connect_unconnected(mine, self._loop, self._connect_timeout):
            if self._report:
                print(f"skyrun service: {source}: device '{name}' left out (connection error): "
                      f"{type(error).__name__}: {error}", file=sys.stderr)
            del devices[name]
            self.not_connected.append((source, name, error))

    def _add_plans(self, source, fresh, plans):
        mod = _load_source(source, fresh)
        listed = hasattr(mod, "__all__")
        for obj in _public_members(mod):
            if callable(obj) and is_plan(obj) and (listed or getattr(obj, "__module__", None) == mod.__name__):
                plans[obj.__name__] = self._plan(obj)

    def reload(self):
        """Loads the modules anew (``DELETE /environment``); on failure keeps what it had and raises."""
        self._load(fresh=True)

    @staticmethod
    def _protocol_info(device):
        protocols, _ = _protocols()
        return [
            {"name": p.__name__, "types": [getattr(a, "__name__", str(a)) for a in _generic_bounds(device, p)]}
            for p in protocols
            if isinstance(device, p)
        ]

    # -- what the native service calls -------------------------------------

    def plans_json(self):
        """``GET /plans``' plans, as JSON."""
        return self._plans_json

    def devices_json(self):
        """``GET /devices``' devices, as JSON."""
        return self._devices_json

    def has_plan(self, name):
        return name in self.plans

    def prepare(self, name, params_json, metadata_json):
        """Checks a task's parameters: ``(None, prepared)``, or ``(errors, None)``
        with pydantic's errors as blueapi's 422 lists them (JSON)."""
        from pydantic import ValidationError

        plan = self.plans[name]
        try:
            checked = plan.model.model_validate(json.loads(params_json))
        except ValidationError as e:
            errors = [
                {"loc": ["body", "params", *err.get("loc", ())], "msg": err.get("msg"),
                 "type": err.get("type"), "input": err.get("input")}
                for err in e.errors(include_url=False)
            ]
            return json.dumps(errors, default=repr), None
        kwargs = {f: getattr(checked, f) for f in type(checked).model_fields}
        return None, _Prepared(plan.func, kwargs, json.loads(metadata_json))

    def begin(self, prepared, RE, carrier):
        """The task's generator, ``RE`` set up as ``RE(plan, **metadata)`` sets it up
        (called on the engine's thread as the task starts). ``carrier`` (W3C
        headers) is the task span's context: made Python's current context on
        the engine's thread until ``end``, so the plan's messages (its run
        first) are spans of the task's trace, as a plan's spans are under a
        Python span around ``RE(plan)``."""
        from .run_engine import _ensure_generator

        prepared.token = _attach(carrier)
        gen = _ensure_generator(prepared.func(**prepared.kwargs))
        RE._call_md = dict(prepared.metadata)
        RE._abort_reason = ""
        RE._callback_errors = []
        RE._interrupted = False
        RE._plan = gen
        RE._start_md.clear()
        for wrapper in RE.preprocessors:
            gen = wrapper(gen)
        return gen

    def end(self, prepared):
        """The task has ended: Python's context on the engine's thread is what it was."""
        token, prepared.token = prepared.token, None
        _detach(token)

    def result(self, value):
        """``(json, type name)`` of what a plan returned."""
        return _result_json(value)

def _default_state_dir():
    base = os.environ.get("XDG_STATE_HOME") or (
        os.path.join(os.environ["HOME"], ".local", "state") if os.environ.get("HOME") else None)
    return os.path.join(base, "skyrun", "python-service") if base else None


def add_parser(sub):
    """Adds ``service`` to ``python -m skyrun``'s subcommands."""
    s = sub.add_parser("service", help="serve blueapi's REST API over Python plans and devices")
    s.add_argument("--devices", action="append", default=[], metavar="MODULE",
                   help="a module of devices: a .py file, a module name or a skyrun .toml device file (repeatable)")
    s.add_argument("--plans", action="append", default=[], metavar="MODULE",
                   help="a module of plan functions: a .py file or a module name (repeatable)")
    s.add_argument("--bind", default="127.0.0.1:8000", metavar="ADDR",
                   help="where to listen: loopback unless told otherwise (port 0: any free port)")
    auth = s.add_mutually_exclusive_group()
    auth.add_argument("--token-file", metavar="FILE",
                      help="bearer tokens, one a line (not readable by every user): every route but "
                      "/config/oidc and /healthz then requires 'Authorization: Bearer TOKEN'")
    auth.add_argument("--allow-unauthenticated", action="store_true",
                      help="listen on a non-loopback --bind without --token-file: anyone on the network "
                      "who can reach the service may run plans (said on stderr at start)")
    s.add_argument("--state-dir", metavar="DIR", help="the folder of the task record (tasks.jsonl) "
                   "[default: $XDG_STATE_HOME/skyrun/python-service, else ~/.local/state/skyrun/python-service]")
    s.add_argument("--no-state", action="store_true", help="keep the tasks in memory only")
    s.add_argument("--trace", metavar="TARGET", help="none | console | jsonl:FILE | otlp (default: otlp when "
                   "OTEL_EXPORTER_OTLP_ENDPOINT is set, else none)")
    return s


def serve(env, RE=None, bind="127.0.0.1:8000", state_dir=None, on_listening=None, token_file=None,
          allow_unauthenticated=False):
    """Serves blueapi's API over ``env`` on ``RE`` (a new ``skyrun.RunEngine``
    when None) until Ctrl-C or SIGTERM; ``on_listening(address)`` is called
    once it listens. With ``token_file`` (bearer tokens, one a line), every
    route but ``/config/oidc`` and ``/healthz`` requires a token; a
    non-loopback ``bind`` needs it or ``allow_unauthenticated`` (ValueError
    otherwise)."""
    import signal

    from . import _skyrun
    from .run_engine import RunEngine

    if RE is None:
        RE = RunEngine(context_managers=[])
    RE._configure_tracing()
    handle = _skyrun.start_service(env, RE, bind, state_dir, token_file, allow_unauthenticated)
    if on_listening is not None:
        on_listening(handle.address)

    def terminate(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        while not handle.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        handle.stop()
        handle.wait(10.0)


def main(args):
    """``python -m skyrun service``'s body; returns the exit status."""
    from . import _skyrun
    from .run_engine import RunEngine, use_skyrun_pipeline

    if not args.plans:
        print("skyrun service: no plans: name a module of plan functions with --plans", file=sys.stderr)
        return 2
    try:
        use_skyrun_pipeline(args.trace)
    except ValueError as e:
        print(f"skyrun service: --trace: {e}", file=sys.stderr)
        return 2
    # The RunEngine first: its loop is Bluesky's event loop, which ophyd-async
    # devices connect on (`init_devices()` in a device module).
    RE = RunEngine(context_managers=[])
    # The modules are executed anew on a reload: no stale bytecode of an edited file.
    sys.dont_write_bytecode = True
    try:
        env = Environment(args.devices, args.plans)
    except LoadError as e:
        print(f"skyrun service: {e}", file=sys.stderr)
        return 2
    state_dir = None if args.no_state else (args.state_dir or _default_state_dir())
    kept = f"tasks kept in {state_dir}" if state_dir else "tasks in memory only"

    def listening(address):
        print(f"skyrun service: {len(env.plans)} plans, {len(env.devices)} devices, {kept}; "
              f"listening on http://{address}", file=sys.stderr, flush=True)

    try:
        serve(env, RE, bind=args.bind, state_dir=state_dir, on_listening=listening,
              token_file=args.token_file, allow_unauthenticated=args.allow_unauthenticated)
    except (OSError, ValueError) as e:
        print(f"skyrun service: {e}", file=sys.stderr)
        return 1
    finally:
        report = _skyrun.shutdown_telemetry()
        if report and "dropped" in report and " 0 dropped" not in report:
            print(f"skyrun service: trace export: {report}", file=sys.stderr)
    return 0
