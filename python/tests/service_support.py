"""Shared by the service tests: ``python -m skyrun service`` on a free
loopback port (always killed at the end), a plain HTTP client, a minimal
WebSocket client of ``/api/v2/run_plan`` (the standard library's sockets,
every read bounded), and blueapi 1.21.1's CLI (``$SKYRUN_BLUEAPI``) pointed
at the service."""

import base64
import json
import os
import pathlib
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

# ophyd.sim's devices, an ophyd-async motor (connected on the RunEngine's loop,
# made after it) and a skyrun.sim signal.
BEAMLINE = """
from ophyd.sim import det, det1, motor, motor1
from ophyd_async.core import init_devices
from ophyd_async.sim import SimMotor
from skyrun.sim import SynSignal

with init_devices():
    stage_x = SimMotor(instant=True)
sig = SynSignal(name="sig", value=1.0)
"""

PLANS = '''
import bluesky.plan_stubs as bps
import bluesky.plans as bp
from bluesky.plans import scan  # imported, not defined here: not a plan of this module
from bluesky.protocols import Movable, Readable
from bluesky.utils import MsgGenerator


def count_plan(detectors: list[Readable], num: int = 1, delay: float = 0.0) -> MsgGenerator:
    """Take num readings of the detectors."""
    yield from bp.count(detectors, num=num, delay=delay)


def move_then_count(motor: Movable, position: float, detectors: list[Readable]) -> MsgGenerator[int]:
    """Move the motor, count once; return how many detectors were read."""
    yield from bps.mv(motor, position)
    yield from bp.count(detectors)
    return len(detectors)


def fails(message: str) -> MsgGenerator:
    """Raise ValueError(message) inside a run."""
    yield from bps.open_run()
    raise ValueError(message)


def _helper() -> MsgGenerator:
    yield from bps.null()


def not_a_plan(x: int) -> int:
    return x
'''

BLUEAPI = os.environ.get("SKYRUN_BLUEAPI")


def needs_blueapi():
    if not BLUEAPI:
        pytest.skip("SKYRUN_BLUEAPI is unset: blueapi 1.21.1's CLI is needed (scripts/test installs it in "
                    ".ci/blueapi-venv and sets it)")


class Service:
    """A running ``python -m skyrun service`` on the beamline and plans above (or given ones)."""

    def __init__(self, tmp_path, beamline=BEAMLINE, plans=PLANS, extra=()):
        (tmp_path / "beamline.py").write_text(beamline)
        (tmp_path / "plans.py").write_text(plans)
        self.spans = tmp_path / "spans.jsonl"
        self.dir = tmp_path
        env = dict(os.environ)
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "skyrun", "service", "--devices", str(tmp_path / "beamline.py"),
             "--plans", str(tmp_path / "plans.py"), "--bind", "127.0.0.1:0", "--state-dir",
             str(tmp_path / "state"), "--trace", f"jsonl:{self.spans}", *extra],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=tmp_path, env=env)
        self.log = []
        found = queue.Queue()

        def read():
            for line in self.proc.stderr:
                self.log.append(line)
                if "listening on " in line:
                    found.put(line.split("listening on ", 1)[1].strip())
            found.put(None)

        threading.Thread(target=read, daemon=True).start()
        try:
            self.url = found.get(timeout=120)
        except queue.Empty:
            self.kill()
            raise AssertionError("python -m skyrun service did not say where it listens within 120 s") from None
        if self.url is None:
            self.kill()
            raise AssertionError("python -m skyrun service ended before listening:\n" + "".join(self.log))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self):
        """SIGTERM (the spans are flushed), at most 30 s; the spans written."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("the service did not stop within 30 s of SIGTERM") from None
        assert code == 0, f"the service exited with {code}:\n" + "".join(self.log)
        if not self.spans.exists():
            return []
        return [json.loads(line) for line in self.spans.read_text().splitlines() if line.strip()]

    def call(self, method, path, body=None, headers=None):
        """``(status, JSON body or None)``."""
        data = None if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("content-type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                code, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            code, text = e.code, e.read()
        try:
            return code, json.loads(text) if text else None
        except ValueError:
            return code, text.decode(errors="replace")

    def get(self, path):
        return self.call("GET", path)

    def submit(self, name, params, session="cm1-1"):
        code, r = self.call("POST", "/tasks", {"name": name, "params": params, "instrument_session": session})
        assert code == 201, f"POST /tasks {name} {params}: {code} {r}"
        return r["task_id"]

    def begin(self, task_id, headers=None):
        code, r = self.call("PUT", "/worker/task", {"task_id": task_id}, headers)
        assert code == 200, f"PUT /worker/task: {code} {r}"

    def set_state(self, new_state, **kw):
        return self.call("PUT", "/worker/state", {"new_state": new_state, **kw})

    def wait_state(self, state, limit=60):
        end = time.monotonic() + limit
        while True:
            _, s = self.get("/worker/state")
            if s == state:
                return
            assert time.monotonic() < end, f"worker state not {state} within {limit} s: {s}"
            time.sleep(0.02)

    def wait_complete(self, task_id, limit=120):
        end = time.monotonic() + limit
        while True:
            code, task = self.get(f"/tasks/{task_id}")
            assert code == 200, f"GET /tasks/{task_id}: {code} {task}"
            if task["is_complete"]:
                return task
            assert time.monotonic() < end, f"task {task_id} not complete within {limit} s: {task}"
            time.sleep(0.05)

    def run_plan(self, task, headers=None):
        """A WebSocket to ``/api/v2/run_plan`` that has submitted ``task``."""
        return Ws(self.url, task, headers or {})

    def blueapi(self, *args, limit=120):
        """``blueapi -c config.yaml controller ARGS``: the finished process (stdout and stderr as text)."""
        config = self.dir / "blueapi.yaml"
        config.write_text(f"api:\n  url: {self.url}\n")
        env = dict(os.environ, XDG_CACHE_HOME=str(self.dir / "cache"))
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        try:
            return subprocess.run([BLUEAPI, "-c", str(config), "controller", *args], capture_output=True,
                                  text=True, timeout=limit, env=env)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"blueapi {args} did not finish within {limit} s") from None

    def blueapi_ok(self, *args):
        p = self.blueapi(*args)
        assert p.returncode == 0, f"blueapi {args} failed:\n{p.stdout}\n{p.stderr}"
        return p.stdout


class Ws:
    """A client of blueapi's ``/api/v2/run_plan`` WebSocket (RFC 6455, text frames)."""

    LIMIT = 120

    def __init__(self, url, task, headers):
        host, port = url.split("://", 1)[1].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.sock.sendall((f"GET /api/v2/run_plan HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"{extra}\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self._send(json.dumps({"kind": "submit", "task": task}).encode())

    def _recv(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("the service closed the connection")
        return chunk

    def _take(self, n):
        while len(self.buf) < n:
            self.buf += self._recv()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send(self, payload, opcode=1):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def next(self):
        """The next message (JSON), None once the service closes; fails after 120 s."""
        end = time.monotonic() + self.LIMIT
        message = b""
        while True:
            assert time.monotonic() < end, "no WebSocket message within 120 s"
            try:
                b0, b1 = self._take(2)
            except EOFError:
                return None
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack(">H", self._take(2))
            elif n == 127:
                (n,) = struct.unpack(">Q", self._take(8))
            payload = self._take(n)
            opcode = b0 & 0x0F
            if opcode == 8:
                return None
            if opcode in (0, 1, 2):
                message += payload
                if b0 & 0x80:
                    return json.loads(message)

    def until(self, what, want):
        """Updates' ``data`` until one satisfies ``want``; fails if the socket closes first."""
        while True:
            msg = self.next()
            assert msg is not None, f"the WebSocket closed before {what}"
            assert msg["kind"] == "update", msg
            if want(msg["data"]):
                return msg["data"]

    def rest(self):
        """Every update's ``data`` until the service closes the socket."""
        out = []
        while (msg := self.next()) is not None:
            out.append(msg["data"])
        self.sock.close()
        return out


@pytest.fixture
def service(tmp_path):
    svc = Service(tmp_path)
    try:
        yield svc
    finally:
        svc.kill()


HERE = pathlib.Path(__file__).parent
