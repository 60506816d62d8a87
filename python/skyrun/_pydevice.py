"""Python helpers of the native module for Python devices run as actors."""


def add_callback(status, fn):
    """``status.add_callback`` with a plain Python function (ophyd inspects the
    callback's signature, which a native function does not have)."""

    def done(status):
        fn(status)

    status.add_callback(done)
