"""``python -m skyrun service --token-file``: the same bearer-token check as
``skyrun service`` (the Rust service's code): 401 with ``WWW-Authenticate:
Bearer`` without a right token, the open routes open, bad token files and an
unprotected network address refused."""

import os
import subprocess
import sys

from service_support import BEAMLINE, PLANS, Service

TOKENS = "py-token-0123456789\n"


def _tokens(tmp_path, mode=0o600, text=TOKENS):
    p = tmp_path / "tokens"
    p.write_text(text)
    os.chmod(p, mode)
    return p


def test_a_token_file_guards_every_route_but_the_open_ones(tmp_path):
    svc = Service(tmp_path, extra=("--token-file", str(_tokens(tmp_path))))
    try:
        code, body = svc.get("/worker/state")
        assert (code, body) == (401, {"detail": "Not authenticated"})
        assert svc.call("GET", "/plans", headers={"Authorization": "Bearer py-token-012345678"})[0] == 401
        assert svc.call("GET", "/worker/state", headers={"Authorization": "Bearer py-token-0123456789"}) \
            == (200, "IDLE")
        assert svc.get("/healthz")[0] == 200
        assert svc.get("/config/oidc")[0] == 204
    finally:
        svc.stop()


def _refused(tmp_path, *args):
    (tmp_path / "beamline.py").write_text(BEAMLINE)
    (tmp_path / "plans.py").write_text(PLANS)
    out = subprocess.run(
        [sys.executable, "-m", "skyrun", "service", "--devices", str(tmp_path / "beamline.py"),
         "--plans", str(tmp_path / "plans.py"), "--no-state", *args],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode != 0, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    return out.stderr


def test_bad_token_files_and_an_unprotected_network_address_are_refused(tmp_path):
    open_file = _tokens(tmp_path, mode=0o644)
    err = _refused(tmp_path, "--bind", "127.0.0.1:0", "--token-file", str(open_file))
    assert f"token file {open_file}: readable by every user" in err
    empty = tmp_path / "empty"
    empty.write_text("\n")
    os.chmod(empty, 0o600)
    err = _refused(tmp_path, "--bind", "127.0.0.1:0", "--token-file", str(empty))
    assert f"token file {empty}: holds no token" in err
    err = _refused(tmp_path, "--bind", "127.0.0.1:0", "--token-file", str(tmp_path / "nope"))
    assert f"token file {tmp_path / 'nope'}: no such file" in err
    err = _refused(tmp_path, "--bind", "0.0.0.0:0")
    assert "refusing to listen on 0.0.0.0:0 without authentication" in err
