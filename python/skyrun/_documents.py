"""Documents of ``skyrun.RunEngine``: ``RE.subscribe`` and the delivery of
each document skyrun's engine emits to the callbacks, through Bluesky's own
``Dispatcher`` (``RE.dispatcher``) when bluesky is installed. Documents
arrive on skyrun's document thread, a little behind the plan."""

import threading
import traceback
import warnings

try:
    from event_model import DocumentNames as _DocumentNames
except ImportError:  # pragma: no cover - bluesky is what skyrun runs
    _DocumentNames = None


def _same_data(a, b):
    # Equal as JSON data: tuples and lists alike.
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_data(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_data(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _restore(doc, given):
    # The start document's fields get back the Python values the plan gave
    # (Bluesky keeps them as given: a grid scan's snaking is a tuple).
    for k, v in given.items():
        if k in doc and isinstance(v, (tuple, dict, list)) and _same_data(doc[k], v):
            doc[k] = v


class _Documents:
    """The subscription side of ``skyrun.RunEngine`` (a part of it)."""

    def subscribe(self, func, name="all"):
        """Call ``func(name, doc)`` for every document (or those named ``name``);
        returns a token. Documents go through Bluesky's own ``Dispatcher``
        (``RE.dispatcher``) when bluesky is installed."""
        if isinstance(func, str) and callable(name):
            # Bluesky's old argument order, accepted with its warning.
            warnings.warn(
                "The order of the arguments to subscribe changed: subscribe(func, name), not subscribe(name, func)",
                UserWarning,
                stacklevel=2,
            )
            func, name = name, func
        if not callable(func):
            raise ValueError(f"subscribe needs a callable, got {func!r}")
        if self.dispatcher is not None:
            token = self.dispatcher.subscribe(func, name)
        else:
            if name not in ("all", "start", "descriptor", "event", "stop", "event_page", "resource", "datum"):
                raise ValueError(f"unknown document name {name!r}")
            token = self._next_token
            self._next_token += 1
            self._subs[token] = (name, func)
        if not self._engine_subscribed:
            self._engine.subscribe(self._dispatch)
            self._engine_subscribed = True
        return token

    def unsubscribe(self, token):
        """Remove the subscription ``token``."""
        if self.dispatcher is not None:
            self.dispatcher.unsubscribe(token)
        else:
            self._subs.pop(token, None)

    # Bluesky's back-compatible aliases.
    subscribe_lossless = subscribe
    unsubscribe_lossless = unsubscribe

    @property
    def ignore_callback_exceptions(self):
        """Bluesky's: a callback's exception is a warning, not a failure of ``RE()``."""
        return self.dispatcher is not None and self.dispatcher.ignore_exceptions

    @ignore_callback_exceptions.setter
    def ignore_callback_exceptions(self, val):
        if self.dispatcher is None:
            raise NotImplementedError("ignore_callback_exceptions needs bluesky's Dispatcher (pip install bluesky)")
        self.dispatcher.ignore_exceptions = val

    def _dispatch(self, name, doc):
        # The thread delivering documents (skyrun's document thread), known
        # while it is in a callback: Ctrl-C hammered through a hanging
        # callback interrupts it (see _panic_stop), as it would interrupt
        # Bluesky's loop thread, where Bluesky calls callbacks.
        self._dispatching = threading.get_ident()
        try:
            self._dispatch_to_callbacks(name, doc)
        except KeyboardInterrupt:
            if not self._panicking:
                raise
        finally:
            self._dispatching = None

    def _dispatch_to_callbacks(self, name, doc):
        if name == "start" and self._start_md:
            _restore(doc, self._start_md.popleft())
        if self.dispatcher is not None:
            try:
                self.dispatcher.process(_DocumentNames[name], doc)
            except Exception as e:
                self._callback_errors.append(e)
                traceback.print_exc()
            return
        for which, func in list(self._subs.values()):
            if which == "all" or which == name:
                try:
                    func(name, doc)
                except Exception as e:
                    self._callback_errors.append(e)
                    traceback.print_exc()
