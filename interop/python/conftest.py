"""Session fixture: one real `accord serve` process for the whole interop tier.

The server is started through pytest-accord's start_accord() (tools/test-helpers/python, the
helper vendors use; imported from the checkout, see below) from the binary named by ACCORD_BIN
(default target/debug/accord under the repository root) with a fresh data dir, a loopback port
the kernel picks, interop/scenario.toml, SERVER_FLAGS and --test-mode (so a test may drive
the control API through `accord.control`). It generates its dev CA at <data-dir>/tls/ca.pem;
every client here trusts that CA through REQUESTS_CA_BUNDLE / SSL_CERT_FILE / CURL_CA_BUNDLE
(client-compat.md section 1: MSAL's verify= alone is overridden by those variables).

To run against a server you started yourself (already loaded with interop/scenario.toml):
    ACCORD_INTEROP_URL=https://localhost:8443 ACCORD_INTEROP_CA=/path/ca.pem pytest
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from support import REPO_ROOT, SCENARIO, World, load_world

# pytest-accord from this checkout, not from the venv: requirements.txt does not install it
# (pip reads a relative path there from the current directory, not from the file, and the
# venv is only refreshed when requirements.txt changes, so an installed copy would go stale).
# The plugin itself is not registered here: this tier keeps its own `accord` fixture.
sys.path.insert(0, str(REPO_ROOT / "tools" / "test-helpers" / "python"))
from pytest_accord import AccordServer, AccordStartError, ControlClient, start_accord, tail, wait_ready  # noqa: E402

READY_TIMEOUT_S = 60

# Every interop server: change notifications may go to the tests' own receivers on
# http://127.0.0.1 (https is required otherwise), and access to subscribed mailboxes is
# reviewed every 500 ms instead of every 5 s (test_graph_sync.py). start_accord adds
# --test-mode.
SERVER_FLAGS = ("--allow-http-notification-urls", "--subscription-review-ms", "500")

_server_log: Path | None = None  # for the failure summary


# --------------------------------------------------------------------------- server


@dataclass
class Accord:
    base: str  # https://localhost:PORT, the server's public URL
    ca: str  # path of the dev CA (PEM)
    world: World
    log: Path | None
    control: ControlClient | None = None  # the test-mode control API (pytest-accord)

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
    return tail(path, lines)


@dataclass
class Launched:
    server: AccordServer
    name: str

    @property
    def proc(self):
        return self.server.proc

    @property
    def base(self) -> str:
        return self.server.base

    @property
    def ca(self) -> Path:
        return Path(self.server.ca)

    @property
    def log(self) -> Path:
        return self.server.log

    @property
    def control(self) -> ControlClient:
        return self.server.control

    def stop(self) -> None:
        self.server.stop()
        _keep_log(self.log, self.name)


def _binary() -> Path:
    binary = Path(os.environ.get("ACCORD_BIN", "target/debug/accord"))
    if not binary.is_absolute():
        binary = REPO_ROOT / binary
    if not binary.is_file():
        pytest.fail(f"accord binary not found at {binary}: run `cargo build --bins` or set ACCORD_BIN", pytrace=False)
    return binary


def launch(scenario: Path, data_dir: Path, name: str = "accord-interop-python") -> Launched:
    """Starts `accord serve --test-mode` on a port the kernel picks (the server announces it on
    its first line of output, `accord listening on ADDR as URL`) and waits until it is ready;
    every ACCORD_* variable is kept out of its environment (ACCORD_DATABASE_URL, ACCORD_CONFIG,
    ACCORD_DISABLE_ROPC, ... of a developer's shell)."""
    try:
        server = start_accord(
            scenario,
            bin=_binary(),
            args=SERVER_FLAGS,
            data_dir=data_dir,
            cwd=REPO_ROOT,
            ready_timeout=READY_TIMEOUT_S,
        )
    except AccordStartError as e:
        _keep_log(data_dir / "accord.log", name)
        pytest.fail(str(e), pytrace=False)
    return Launched(server, name)


@pytest.fixture(scope="session")
def world() -> World:
    return load_world()


@pytest.fixture(scope="session")
def accord(world: World, tmp_path_factory: pytest.TempPathFactory):
    global _server_log
    launched = None
    external = os.environ.get("ACCORD_INTEROP_URL")
    if external:
        base = external.rstrip("/")
        ca = Path(os.environ.get("ACCORD_INTEROP_CA", ""))
        if not ca.is_file():
            pytest.fail("ACCORD_INTEROP_URL is set: set ACCORD_INTEROP_CA to its CA (PEM) too", pytrace=False)
        log = None
        try:
            wait_ready(base, ca, READY_TIMEOUT_S)
        except AccordStartError as e:
            pytest.fail(str(e), pytrace=False)
        control = ControlClient(base, ca)
    else:
        launched = launch(SCENARIO, tmp_path_factory.mktemp("accord-data"))
        base, ca, log, control = launched.base, launched.ca, launched.log, launched.control
        _server_log = log

    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")}
    for k in saved:
        os.environ[k] = str(ca)
    try:
        yield Accord(base=base, ca=str(ca), world=world, log=log, control=control)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if launched is not None:
            launched.stop()


def _keep_log(log: Path | None, name: str) -> None:
    """With ACCORD_INTEROP_LOG_DIR set: a copy of the server's log there, as NAME.log."""
    keep = os.environ.get("ACCORD_INTEROP_LOG_DIR")
    if keep and log is not None and log.exists():
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(log, Path(keep) / f"{name}.log")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if exitstatus not in (0, 5) and _server_log is not None:
        terminalreporter.section("accord server log (tail)")
        terminalreporter.write_line(f"full log: {_server_log}")
        terminalreporter.write_line(_tail(_server_log, 60))
