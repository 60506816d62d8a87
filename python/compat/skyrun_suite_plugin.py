"""A pytest plugin that runs Bluesky's own test suite on skyrun's RunEngine.

Bluesky's tests get their RunEngine from the ``RE`` fixture of
``bluesky/tests/conftest.py``, which builds ``RunEngine({},
call_returns_result=..., loop=loop)``. With ``SKYRUN_SUITE_ENGINE=skyrun``
(the default) this plugin makes that very fixture build
``skyrun.RunEngine`` with the same arguments: it swaps the name
``RunEngine`` in the conftest module when pytest loads it, so no file of
Bluesky's is edited and tests that construct ``bluesky.run_engine.RunEngine``
themselves still get Bluesky's. ``SKYRUN_SUITE_ENGINE=bluesky`` leaves the
fixture alone (the baseline column).

Use: ``python -m pytest -p skyrun_suite_plugin --pyargs bluesky.tests.test_plans``
with this folder on ``PYTHONPATH``.
"""

import os

ENGINE = os.environ.get("SKYRUN_SUITE_ENGINE", "skyrun")


def pytest_plugin_registered(plugin, manager):
    name = getattr(plugin, "__name__", "") or ""
    path = getattr(plugin, "__file__", "") or ""
    if ENGINE != "skyrun" or not path.endswith("conftest.py") or "bluesky" not in name:
        return
    if not hasattr(plugin, "RunEngine"):
        return
    import skyrun

    plugin.RunEngine = skyrun.RunEngine


def pytest_report_header(config):
    return f"RE fixture: {ENGINE}'s RunEngine"
