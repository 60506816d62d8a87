"""Shared helpers: run a plan on both engines and reduce documents to what
must match between Bluesky's RunEngine (on ophyd.sim) and skyrun's (on
skyrun.sim)."""

import json
import math

import event_model
import pytest


def collect(RE, plan, **md):
    """Runs ``plan`` on ``RE``; returns (uids, [(name, doc)]) with docs as plain JSON data."""
    docs = []
    token = RE.subscribe(lambda name, doc: docs.append((name, json.loads(json.dumps(doc)))))
    try:
        uids = RE(plan, **md)
    finally:
        RE.unsubscribe(token)
    return uids, docs


def validate(docs):
    """Every document is valid under event-model's JSON schema for its kind."""
    for name, doc in docs:
        event_model.schema_validators[event_model.DocumentNames[name]].validate(doc)


# What must be equal, per document kind (values whose meaning both engines share).
START_KEYS = ("plan_type", "plan_name", "detectors", "motors", "num_points", "num_intervals", "hints",
              "plan_pattern", "plan_pattern_module", "plan_pattern_args", "scan_id", "purpose")
# Start keys both emit but with device reprs inside (ophyd's repr vs skyrun's): compare the keys only.
REPR_KEYS = ("plan_args",)


def _close(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, abs_tol=1e-9)
    return a == b


def essence(docs):
    """The part of a document stream both engines must agree on."""
    out = []
    for name, doc in docs:
        if name == "start":
            e = {k: doc.get(k) for k in START_KEYS if k in doc}
            e["_keys"] = sorted(k for k in doc if k != "versions")
            e["_repr_keys"] = {k: sorted(doc[k]) for k in REPR_KEYS if isinstance(doc.get(k), dict)}
        elif name == "descriptor":
            e = {
                "name": doc["name"],
                "data_keys": sorted(doc["data_keys"]),
                "object_keys": doc["object_keys"],
                "hints": doc.get("hints"),
                "configuration": sorted(doc["configuration"]),
            }
        elif name == "event":
            e = {"seq_num": doc["seq_num"], "data": doc["data"], "timestamps": sorted(doc["timestamps"])}
        elif name == "stop":
            e = {k: doc[k] for k in ("exit_status", "num_events")}
        else:
            e = {}
        out.append((name, e))
    return out


def assert_same_stream(bluesky_docs, skyrun_docs):
    b, s = essence(bluesky_docs), essence(skyrun_docs)
    assert [n for n, _ in b] == [n for n, _ in s], "document names differ"
    for i, ((name, eb), (_, es)) in enumerate(zip(b, s)):
        if name == "event":
            assert eb["seq_num"] == es["seq_num"]
            assert sorted(eb["data"]) == sorted(es["data"]), f"event {i} data keys"
            for k in eb["data"]:
                assert _close(eb["data"][k], es["data"][k]), f"event {i} {k}: {eb['data'][k]} != {es['data'][k]}"
            assert eb["timestamps"] == es["timestamps"]
        else:
            assert eb == es, f"document {i} ({name}) differs"


@pytest.fixture
def bluesky_RE():
    from bluesky import RunEngine

    return RunEngine(context_managers=[])


@pytest.fixture
def skyrun_RE():
    from skyrun import RunEngine

    return RunEngine()
