"""How ``python -m skyrun service`` sees Python modules as blueapi does:
which objects are devices and which functions are plans, and the pydantic
model of a plan's parameters (so its JSON schema is the one blueapi's
context builds: a parameter typed with a Bluesky protocol or a device class
takes a device's name, its schema names the type and lists the devices
that fit). ``Schemas`` is the part of ``skyrun.service.Environment`` that
builds them, over the environment's ``devices``."""

import dataclasses
import inspect
import json
import types
import typing
from collections.abc import Generator


def _protocols():
    # Bluesky's device protocols, as blueapi lists them (its `Device` union).
    from bluesky import protocols as p

    names = ("Checkable", "Flyable", "Movable", "Pausable", "Readable", "Stageable", "Stoppable",
             "Subscribable", "WritesExternalAssets", "Configurable", "Triggerable")
    found = [getattr(p, n) for n in names if hasattr(p, n)]
    try:
        from ophyd_async.core import Device as AsyncDevice
    except ImportError:  # pragma: no cover - ophyd-async is optional
        AsyncDevice = None
    if AsyncDevice is not None:
        found.append(AsyncDevice)
    return tuple(found), AsyncDevice


def is_device(obj):
    """Whether ``obj`` is a device: an instance (not a class) following a Bluesky protocol."""
    protocols, _ = _protocols()
    return not inspect.isclass(obj) and isinstance(obj, protocols)


def is_plan(func):
    """Whether ``func`` is a plan function: its return annotation is ``MsgGenerator``."""
    from bluesky.utils import Msg

    try:
        ret = typing.get_type_hints(func).get("return")
    except (TypeError, NameError):
        return False
    args = typing.get_args(ret)
    return typing.get_origin(ret) is Generator and bool(args) and args[0] == Msg


def _qualified_name(target):
    if isinstance(target, typing.TypeVar):
        return "Any"
    module = getattr(target, "__module__", "builtins")
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", repr(target))
    return name if module == "builtins" else f"{module}.{name}"


def _generic_name(target):
    args = typing.get_args(target)
    inner = "[" + ", ".join(_qualified_name(a) for a in args) + "]" if args else ""
    return _qualified_name(target) + inner


def _generic_bounds(device, protocol):
    # The type arguments `device`'s class gives `protocol` among its direct bases (Movable[float]: float).
    for base in getattr(device, "__orig_bases__", ()):
        if (typing.get_origin(base) or base) == protocol:
            return typing.get_args(base)
    return ()


def _args_fit(device, origin, wanted):
    if not wanted:
        return True
    for expected, actual in zip(wanted, _generic_bounds(device, origin)):
        if actual is typing.Any or isinstance(actual, typing.TypeVar) or isinstance(expected, typing.TypeVar):
            continue
        if expected == actual:
            continue
        if not (inspect.isclass(actual) and inspect.isclass(expected) and issubclass(actual, expected)):
            return False
    return True


def _result_json(value):
    """blueapi's ``TaskResult``: the value as JSON (None when pydantic cannot), its type's name."""
    from pydantic import TypeAdapter

    kind = type(value).__name__
    try:
        dumped = TypeAdapter(type(value)).dump_python(value, mode="json")
        text = json.dumps(dumped)
    except Exception:  # not serializable: blueapi gives None, with the type's name
        text = "null"
    return text, kind


@dataclasses.dataclass
class Plan:
    name: str
    func: typing.Callable
    model: type
    description: typing.Optional[str]


class Schemas:
    """Builds the plans' parameter models against ``self.devices`` (a dict of name to device)."""

    def find_device(self, address):
        """The device called ``address`` (``"stage.x"``: a child of ``stage``), or None."""
        parts = address.split(".") if isinstance(address, str) else list(address)
        found = self.devices.get(parts[0])
        for part in parts[1:]:
            if found is None:
                return None
            found = getattr(found, part, None)
        return found if found is None or is_device(found) else None

    def _is_device_type(self, typ):
        protocols, async_device = _protocols()
        return (typ in protocols or isinstance(typ, protocols)
                or (async_device is not None and inspect.isclass(typ) and issubclass(typ, async_device)))

    def _reference(self, target):
        """A type pydantic validates from a device's name to the device (which
        must be a ``target``); its JSON schema names the type and lists the
        devices that fit."""
        if target in self._references:
            return self._references[target]
        from pydantic_core import core_schema

        env = self
        origin = typing.get_origin(target) or target
        wanted = typing.get_args(target)

        def lookup(name):
            device = env.find_device(name)
            if not device:
                raise ValueError(f"Device {name} cannot be found")
            if not (isinstance(device, origin) and _args_fit(device, origin, wanted)):
                raise ValueError(
                    f"Device {name} ({_qualified_name(type(device))}) is not of type {_generic_name(target)}")
            return device

        def core(cls, source, handler):
            return core_schema.no_info_after_validator_function(lookup, handler(str))

        def json_schema(cls, schema, handler):
            out = handler.resolve_ref_schema(handler(schema))
            out["type"] = _qualified_name(target)
            out["enum"] = sorted(n for n, d in env.devices.items() if isinstance(d, origin))
            if wanted:
                out["types"] = [_qualified_name(a) for a in wanted]
            return out

        ref = type("Reference", (origin,), {
            "__get_pydantic_core_schema__": classmethod(core),
            "__get_pydantic_json_schema__": classmethod(json_schema),
        })
        self._references[target] = ref
        return ref

    def _convert(self, typ, no_default=True):
        from pydantic.json_schema import SkipJsonSchema

        if typ is type(None) and not no_default:
            return SkipJsonSchema[type(None)]
        root = typing.get_origin(typ)
        if self._is_device_type(root or typ):
            return self._reference(typ)
        args = typing.get_args(typ)
        if not args:
            return typ
        converted = tuple(self._convert(a, no_default) for a in args)
        if root is types.UnionType:
            root = typing.Union
        return root[converted] if root else typ

    def _composite(self, cls):
        # A parameter typed with a model or dataclass of devices, its default a string: built from the devices
        # named as its fields.
        def make():
            names = (list(cls.model_fields) if hasattr(cls, "model_fields")
                     else [f.name for f in dataclasses.fields(cls)])
            return cls(**{n: self.find_device(n) for n in names})

        return make

    def _plan(self, func):
        from pydantic import BaseModel, ConfigDict, create_model
        from pydantic.fields import FieldInfo
        from pydantic.json_schema import SkipJsonSchema

        hints = typing.get_type_hints(func)
        fields = {}
        for name, param in inspect.signature(func).parameters.items():
            if name not in hints:
                raise ValueError(f"Type annotation is required for '{name}' in '{func.__name__}'")
            typ = hints[name]
            no_default = param.default is inspect.Parameter.empty
            composite = inspect.isclass(typ) and (issubclass(typ, BaseModel) or dataclasses.is_dataclass(typ))
            if composite and isinstance(param.default, str):
                fields[name] = (SkipJsonSchema[self._convert(typ, no_default)],
                                FieldInfo(default_factory=self._composite(typ)))
            elif no_default:
                fields[name] = (self._convert(typ, no_default), FieldInfo(default_factory=None))
            elif param.default is None:
                fields[name] = (self._convert(typ, no_default), FieldInfo(default_factory=lambda: None))
            else:
                fields[name] = (self._convert(typ, no_default), FieldInfo(default=param.default))
        config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, validate_default=True)
        model = create_model(func.__name__, __config__=config, **fields)
        return Plan(func.__name__, func, model, func.__doc__)
