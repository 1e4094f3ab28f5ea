"""Session fixture: one real `accord serve` process for the whole interop tier.

The server is started from the binary named by ACCORD_BIN (default target/debug/accord
under the repository root) with a fresh data dir, a free loopback port and
interop/scenario.toml. It generates its dev CA at <data-dir>/tls/ca.pem; every client
here trusts that CA through REQUESTS_CA_BUNDLE / SSL_CERT_FILE / CURL_CA_BUNDLE
(client-compat.md section 1: MSAL's verify= alone is overridden by those variables).

To run against a server you started yourself (already loaded with interop/scenario.toml):
    ACCORD_INTEROP_URL=https://localhost:8443 ACCORD_INTEROP_CA=/path/ca.pem pytest
"""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from support import REPO_ROOT, SCENARIO, World, load_world

READY_TIMEOUT_S = 60

# Every interop server: change notifications may go to the tests' own receivers on
# http://127.0.0.1 (https is required otherwise), and access to subscribed mailboxes is
# reviewed every 500 ms instead of every 5 s (test_graph_sync.py).
SERVER_FLAGS = ("--allow-http-notification-urls", "--subscription-review-ms", "500")

_server_log: Path | None = None  # for the failure summary


# --------------------------------------------------------------------------- server


@dataclass
class Accord:
    base: str  # https://localhost:PORT, the server's public URL
    ca: str  # path of the dev CA (PEM)
    world: World
    log: Path | None

    @property
    def tid(self) -> str:
        return self.world.tid

    def authority(self, tenant: str | None = None) -> str:
        return f"{self.base}/{tenant or self.world.tid}"

    def token_endpoint(self, tenant: str | None = None) -> str:
        return f"{self.authority(tenant)}/oauth2/v2.0/token"

    def openid_configuration_url(self, tenant: str | None = None) -> str:
        return f"{self.authority(tenant)}/v2.0/.well-known/openid-configuration"

    def session(self) -> requests.Session:
        """A fresh cookie-keeping HTTP client that trusts only the server's CA."""
        s = requests.Session()
        s.trust_env = False  # no proxies; verify below is not overridden by env vars
        s.verify = self.ca
        return s

    def log_tail(self, lines: int = 60) -> str:
        return _tail(self.log, lines)


def _tail(path: Path | None, lines: int) -> str:
    if path is None or not path.exists():
        return "(no server log)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def _die_with_parent() -> None:
    """In the child: get SIGTERM when pytest dies (killed by a timeout, say), so no
    server outlives the run. The child also stays in pytest's process group."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass


@dataclass
class Launched:
    proc: subprocess.Popen
    base: str
    ca: Path
    log: Path
    log_file: object
    name: str

    def stop(self) -> None:
        _stop(self.proc, self.log_file, self.log, self.name)


def launch(scenario: Path, data_dir: Path, name: str = "accord-interop-python") -> Launched:
    """Starts `accord serve` on a port the kernel picks (the server announces it on its first
    line of output, `accord listening on ADDR as URL`) and waits until it is ready."""
    binary = Path(os.environ.get("ACCORD_BIN", "target/debug/accord"))
    if not binary.is_absolute():
        binary = REPO_ROOT / binary
    if not binary.is_file():
        pytest.fail(f"accord binary not found at {binary}: run `cargo build --bins` or set ACCORD_BIN", pytrace=False)
    ca = data_dir / "tls" / "ca.pem"
    log = data_dir / "accord.log"
    cmd = [
        str(binary), "serve",
        "--data-dir", str(data_dir),
        "--listen", "127.0.0.1:0",
        "--public-url", "https://localhost:0",
        "--scenario", str(scenario),
        *SERVER_FLAGS,
    ]
    log_file = open(log, "wb")
    log_file.write(("$ " + " ".join(cmd) + "\n").encode())
    log_file.flush()
    # The server reads ACCORD_* variables (ACCORD_DATABASE_URL, ACCORD_CONFIG,
    # ACCORD_DISABLE_ROPC, ...): keep a developer's settings out of this world.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )
    try:
        base = _announced_url(proc, log)
        _wait_ready(proc, base, ca, log)
    except BaseException:
        _stop(proc, log_file, log)
        raise
    return Launched(proc, base, ca, log, log_file, name)


def _announced_url(proc: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("accord listening on ") and " as " in line:
                return line.rsplit(" as ", 1)[1].strip()
        time.sleep(0.1)
    pytest.fail(f"accord announced no URL.\n--- server log tail ({log}) ---\n{_tail(log, 80)}", pytrace=False)


def _wait_ready(proc: subprocess.Popen | None, base: str, ca: Path, log: Path | None) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no attempt yet"
    while True:
        if proc is not None and proc.poll() is not None:
            pytest.fail(
                f"accord exited with status {proc.returncode} before it was ready.\n"
                f"--- server log tail ({log}) ---\n{_tail(log, 80)}",
                pytrace=False,
            )
        if ca.exists():
            try:
                r = requests.get(f"{base}/readyz", verify=str(ca), timeout=2)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}: {r.text[:200]}"
            except (requests.RequestException, OSError, ssl.SSLError) as e:
                last = repr(e)
        else:
            last = f"{ca} does not exist yet"
        if time.monotonic() > deadline:
            pytest.fail(
                f"accord was not ready at {base}/readyz within {READY_TIMEOUT_S} s (last: {last}).\n"
                f"--- server log tail ({log}) ---\n{_tail(log, 80)}",
                pytrace=False,
            )
        time.sleep(0.2)


@pytest.fixture(scope="session")
def world() -> World:
    return load_world()


@pytest.fixture(scope="session")
def accord(world: World, tmp_path_factory: pytest.TempPathFactory):
    global _server_log
    proc = None
    log_file = None
    external = os.environ.get("ACCORD_INTEROP_URL")
    if external:
        base = external.rstrip("/")
        ca = Path(os.environ.get("ACCORD_INTEROP_CA", ""))
        if not ca.is_file():
            pytest.fail("ACCORD_INTEROP_URL is set: set ACCORD_INTEROP_CA to its CA (PEM) too", pytrace=False)
        log = None
        _wait_ready(None, base, ca, None)
    else:
        launched = launch(SCENARIO, tmp_path_factory.mktemp("accord-data"))
        proc, base, ca, log, log_file = launched.proc, launched.base, launched.ca, launched.log, launched.log_file
        _server_log = log

    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")}
    for k in saved:
        os.environ[k] = str(ca)
    try:
        yield Accord(base=base, ca=str(ca), world=world, log=log)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if proc is not None:
            _stop(proc, log_file, log)


def _stop(proc: subprocess.Popen, log_file, log: Path | None, name: str = "accord-interop-python") -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    if log_file is not None:
        log_file.close()
    keep = os.environ.get("ACCORD_INTEROP_LOG_DIR")
    if keep and log is not None and log.exists():
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(log, Path(keep) / f"{name}.log")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if exitstatus not in (0, 5) and _server_log is not None:
        terminalreporter.section("accord server log (tail)")
        terminalreporter.write_line(f"full log: {_server_log}")
        terminalreporter.write_line(_tail(_server_log, 60))
