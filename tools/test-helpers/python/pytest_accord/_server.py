"""Starting a real `accord serve --test-mode` and driving its control API (no pytest here).

    server = start_accord("world.toml")            # binary: bin=, else $ACCORD_BIN, else `accord`
    try:
        server.control.advance(days=31)
        ...
    finally:
        server.stop()

The server listens on a port the kernel picks (`--listen 127.0.0.1:0`); it announces it on its
output (`accord listening on ADDR as URL`), writes its dev CA to DATA_DIR/tls/ca.pem, and is
ready once URL/readyz answers 200 over TLS trusting that CA.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import requests

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
CONTROL_PREFIX = "/_accord/test"
_ANNOUNCEMENT = "accord listening on "

StrPath = Union[str, "os.PathLike[str]"]


class AccordError(Exception):
    """Base class of this package's errors."""


class AccordStartError(AccordError):
    """The server could not be started or never got ready (the message holds its log's tail)."""


class AccordControlError(AccordError):
    """A control API call answered something other than 2xx (or did not answer).

    `status` is the HTTP status (None when there was no answer), `error` the server's own
    `error` text, `body` the raw answer.
    """

    def __init__(self, method: str, path: str, status: int | None, error: str, body: str = ""):
        self.method = method
        self.path = path
        self.status = status
        self.error = error
        self.body = body
        where = f"{method} {CONTROL_PREFIX}{path}"
        if status is None:
            super().__init__(f"{where}: {error}")
        else:
            super().__init__(f"{where} answered HTTP {status}: {error}")


# --------------------------------------------------------------------------- control API


def _error_text(r: requests.Response) -> str:
    """The server's `error` text: a string on the control API; Graph-shaped
    ({"error": {"code", "message"}}) on an unknown path."""
    try:
        doc = r.json()
    except ValueError:
        doc = None
    if isinstance(doc, dict) and "error" in doc:
        err = doc["error"]
        if isinstance(err, dict):
            text = ": ".join(str(err[k]) for k in ("code", "message") if err.get(k))
        else:
            text = str(err)
        if isinstance(doc.get("error_description"), str):  # an OAuth-shaped answer
            text = f"{text}: {doc['error_description']}"
    else:
        text = r.text.strip()[:500] or f"{r.reason or 'no reason given'} (empty body)"
    if r.status_code == 404:
        text += " (is the server running with --test-mode?)"
    return text


class ControlClient:
    """Client of the test-mode control API at BASE/_accord/test, trusting only `ca`.

    Every call returns the decoded JSON answer (None for 204) and raises AccordControlError
    with the server's `error` text on any other status than 2xx.
    """

    def __init__(self, base: str, ca: StrPath, timeout: float = 30.0):
        self.base = base.rstrip("/")
        self.ca = str(ca)
        self.timeout = timeout
        self._http = requests.Session()
        self._http.trust_env = False  # no proxies, and REQUESTS_CA_BUNDLE cannot override verify
        self._http.verify = self.ca

    def close(self) -> None:
        self._http.close()

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        url = f"{self.base}{CONTROL_PREFIX}{path}"
        try:
            r = self._http.request(
                method, url, json=json, data=data, headers=headers, params=params, timeout=self.timeout
            )
        except requests.RequestException as e:
            raise AccordControlError(method, path, None, f"no answer from {url}: {e}") from e
        if not 200 <= r.status_code < 300:
            raise AccordControlError(method, path, r.status_code, _error_text(r), r.text)
        if r.status_code == 204 or not r.content:
            return None
        try:
            return r.json()
        except ValueError as e:
            raise AccordControlError(method, path, r.status_code, f"not JSON: {r.text[:200]!r}", r.text) from e

    def clock(self) -> dict:
        """`{"now": RFC 3339, "offsetSeconds": n}` on Accord's clock."""
        return self._call("GET", "/clock")

    def advance(self, days: int = 0, hours: int = 0, minutes: int = 0, seconds: int = 0) -> dict:
        """Moves Accord's clock forward (at least one second in all; it never goes back).
        Returns the new clock and `ran`: what came due."""
        body = {k: v for k, v in (("days", days), ("hours", hours), ("minutes", minutes), ("seconds", seconds)) if v}
        return self._call("POST", "/clock/advance", json=body)

    def reset(self) -> dict:
        """Back to the world the server started with (fault rules and the journal cleared; the
        clock is not moved back). Returns `{"loaded": {...}}`."""
        return self._call("POST", "/reset")

    def load_scenario(self, text: str | bytes | os.PathLike) -> dict:
        """Loads a scenario over the current world: TOML text (str or bytes), or a path
        (pathlib.Path / os.PathLike) to read it from. Returns `{"loaded": {...}}`; a bad
        scenario raises AccordControlError (status 400) naming the problem."""
        if isinstance(text, os.PathLike):
            text = Path(text).read_bytes()
        if isinstance(text, str):
            text = text.encode("utf-8")
        return self._call("POST", "/scenario", data=text, headers={"Content-Type": "application/toml"})

    def journal(self, after: int = 0) -> dict:
        """The decision journal after entry `after`: `{"entries": [...], "last": n}`."""
        return self._call("GET", "/journal", params={"after": after})

    def add_fault(self, rule: Mapping[str, Any]) -> dict:
        """Adds a fault rule (`{"match": {...}, "after", "every", "times", "action": {...}}`);
        returns it as the server stored it (with its `id`)."""
        return self._call("POST", "/faults", json=dict(rule))

    def faults(self) -> list[dict]:
        """The fault rules, each with how often it `matched` and `injected`."""
        return self._call("GET", "/faults")["rules"]

    def clear_faults(self) -> None:
        """Removes every fault rule."""
        self._call("DELETE", "/faults")


# --------------------------------------------------------------------------- the scenario


def _load_toml(text: str) -> dict:
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10: pytest depends on tomli there
        import tomli as tomllib
    return tomllib.loads(text)


_VAR = re.compile(r"\$\{([A-Za-z0-9_.-]+)\}")


def read_tenant_ids(scenario: StrPath, vars: Mapping[str, str] | None = None) -> dict[str, str]:
    """`display_name -> id` of the scenario's tenants that have an `id` in the file, after
    `${name}` variables are replaced (the file's `[variables]` defaults, then `vars`)."""
    text = Path(scenario).read_text(encoding="utf-8")
    doc = _load_toml(text)
    values = {k: str(v) for k, v in (doc.get("variables") or {}).items()}
    values.update({k: str(v) for k, v in (vars or {}).items()})
    if values:
        doc = _load_toml(_VAR.sub(lambda m: values.get(m.group(1), m.group(0)), text))
    return {t["display_name"]: t["id"] for t in doc.get("tenant", []) if t.get("id") and t.get("display_name")}


# --------------------------------------------------------------------------- the server


def tail(path: StrPath | None, lines: int = 60) -> str:
    """The last `lines` lines of a log file."""
    if path is None or not Path(path).exists():
        return "(no server log)"
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def resolve_binary(bin: StrPath | None = None) -> Path:
    """`bin`, else $ACCORD_BIN, else `accord` on PATH. A name without a slash is looked up on
    PATH; a path is taken relative to the current directory."""
    named = os.fspath(bin) if bin is not None else (os.environ.get("ACCORD_BIN") or "accord")
    if os.sep not in named and "/" not in named:
        found = shutil.which(named)
        if not found:
            raise AccordStartError(
                f"no `{named}` on PATH: build the server (cargo build -p accord-server) and put it on PATH, "
                "or name the binary (ACCORD_BIN, --accord-bin, start_accord(bin=...))"
            )
        return Path(found)
    path = Path(named).expanduser().absolute()
    if not path.is_file():
        raise AccordStartError(
            f"accord binary not found at {path}: build it (cargo build -p accord-server) or set ACCORD_BIN"
        )
    return path


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """In the child (Linux): get SIGTERM when the parent dies (killed by a timeout, say), so
    no server outlives the test run."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass


def wait_ready(
    base: str,
    ca: StrPath,
    timeout: float = READY_TIMEOUT_S,
    *,
    proc: subprocess.Popen | None = None,
    log: StrPath | None = None,
) -> None:
    """Polls BASE/readyz (trusting `ca` once it exists) until it answers 200. `proc`, when
    given, is the server: its exit ends the wait. Raises AccordStartError."""
    deadline = time.monotonic() + timeout
    ca = Path(ca)
    last = "no attempt yet"
    while True:
        if proc is not None and proc.poll() is not None:
            raise AccordStartError(
                f"accord exited with status {proc.returncode} before it was ready.\n"
                f"--- server log tail ({log}) ---\n{tail(log, 80)}"
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
            raise AccordStartError(
                f"accord was not ready at {base}/readyz within {timeout:g} s (last: {last})."
                + (f"\n--- server log tail ({log}) ---\n{tail(log, 80)}" if log else "")
            )
        time.sleep(0.2)


def _announced_url(proc: subprocess.Popen, log: Path, timeout: float) -> str:
    """The URL of the server's `accord listening on ADDR as URL` line."""
    deadline = time.monotonic() + timeout
    seen = 0
    pending = ""
    while True:
        with open(log, "rb") as f:
            f.seek(seen)
            chunk = f.read()
        seen += len(chunk)
        pending += chunk.decode("utf-8", errors="replace")
        *lines, pending = pending.split("\n")
        for line in lines:
            if line.startswith(_ANNOUNCEMENT) and " as " in line:
                return line.rsplit(" as ", 1)[1].strip().rstrip("/")
        if proc.poll() is not None:
            raise AccordStartError(
                f"accord exited with status {proc.returncode} before it announced its URL.\n"
                f"--- server log tail ({log}) ---\n{tail(log, 80)}"
            )
        if time.monotonic() > deadline:
            raise AccordStartError(
                f"accord announced no URL within {timeout:g} s.\n--- server log tail ({log}) ---\n{tail(log, 80)}"
            )
        time.sleep(0.05)


class AccordServer:
    """A running `accord serve` (see start_accord)."""

    def __init__(
        self,
        *,
        proc: subprocess.Popen,
        base: str,
        ca: Path,
        data_dir: Path,
        log: Path,
        log_file,
        scenario: Path | None,
        tenant_ids: dict[str, str],
        remove_data_dir: bool,
    ):
        self.proc = proc
        self.base = base
        self.ca = str(ca)
        self.data_dir = data_dir
        self.log = log
        self.scenario = scenario
        self.tenant_ids = tenant_ids
        self.control = ControlClient(base, ca)
        self._log_file = log_file
        self._remove_data_dir = remove_data_dir
        self._stopped = False
        atexit.register(self._stop_at_exit)

    def __repr__(self) -> str:
        return f"<AccordServer {self.base} pid={self.pid} data_dir={self.data_dir}>"

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def tenant(self, tenant: str | None = None) -> str:
        """The path segment for `tenant`: a display name of the scenario's tenants maps to its
        id; anything else (an id, a domain, `common`, `organizations`) is used as given. With no
        argument, the scenario's only tenant with an id."""
        if tenant is None:
            if len(self.tenant_ids) == 1:
                return next(iter(self.tenant_ids.values()))
            raise ValueError(
                f"name a tenant: the scenario gives ids to {len(self.tenant_ids)} tenants "
                f"({', '.join(self.tenant_ids) or 'none'})"
            )
        return self.tenant_ids.get(tenant, tenant)

    def authority(self, tenant: str | None = None) -> str:
        """https://localhost:PORT/{tenant id}: the authority MSAL and azure-identity take."""
        return f"{self.base}/{self.tenant(tenant)}"

    def token_endpoint(self, tenant: str | None = None) -> str:
        return f"{self.authority(tenant)}/oauth2/v2.0/token"

    def openid_configuration_url(self, tenant: str | None = None) -> str:
        return f"{self.authority(tenant)}/v2.0/.well-known/openid-configuration"

    def session(self) -> requests.Session:
        """A fresh requests session that trusts only the server's CA (and no proxy)."""
        s = requests.Session()
        s.trust_env = False
        s.verify = self.ca
        return s

    def log_tail(self, lines: int = 60) -> str:
        return tail(self.log, lines)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds. Removes the data dir when
        start_accord made it. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self._stop_at_exit)
        self.control.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        if self._log_file is not None:
            self._log_file.close()
        if self._remove_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _stop_at_exit(self) -> None:
        self.stop(timeout=2.0)

    def __enter__(self) -> "AccordServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_accord(
    scenario: StrPath | None = None,
    *,
    bin: StrPath | None = None,
    args: Sequence[str] = (),
    data_dir: StrPath | None = None,
    vars: Mapping[str, str] | None = None,
    test_mode: bool = True,
    cwd: StrPath | None = None,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = READY_TIMEOUT_S,
) -> AccordServer:
    """Starts `accord serve --test-mode` and waits until it is ready.

    scenario   the world to load (`--scenario`); None: the server's demo world
    bin        the server binary (else $ACCORD_BIN, else `accord` on PATH)
    args       more `accord serve` arguments, after the helper's own
    data_dir   where the server keeps its database, TLS material and accord.log (kept);
               None: a fresh temporary directory, removed by stop()
    vars       scenario variables (`--var name=value`)
    test_mode  serve the control API (`--test-mode`)
    cwd, env   of the server process; every ACCORD_* variable is left out of its environment
               (ACCORD_DATABASE_URL, ACCORD_CONFIG, ... of a developer's shell)

    Raises AccordStartError (with the tail of the server's log) when it cannot start.
    """
    binary = resolve_binary(bin)
    scenario_path = None
    if scenario is not None:
        scenario_path = Path(scenario).expanduser().absolute()
        if not scenario_path.is_file():
            raise AccordStartError(f"scenario file not found: {scenario_path}")
    remove = data_dir is None
    data = Path(tempfile.mkdtemp(prefix="accord-")) if data_dir is None else Path(data_dir).absolute()
    data.mkdir(parents=True, exist_ok=True)
    ca = data / "tls" / "ca.pem"
    log = data / "accord.log"
    cmd = [
        str(binary), "serve",
        "--data-dir", str(data),
        "--listen", "127.0.0.1:0",
        "--public-url", "https://localhost:0",
    ]
    if scenario_path is not None:
        cmd += ["--scenario", str(scenario_path)]
    for name, value in (vars or {}).items():
        cmd += ["--var", f"{name}={value}"]
    if test_mode:
        cmd.append("--test-mode")
    cmd += [str(a) for a in args]

    child_env = {k: v for k, v in (os.environ if env is None else env).items() if not k.startswith("ACCORD_")}
    log_file = open(log, "wb")
    log_file.write(("$ " + " ".join(cmd) + "\n").encode())
    log_file.flush()
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=None if cwd is None else str(cwd),
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    except OSError as e:
        log_file.close()
        raise AccordStartError(f"cannot start {binary}: {e}") from e
    try:
        deadline = time.monotonic() + ready_timeout
        base = _announced_url(proc, log, ready_timeout)
        wait_ready(base, ca, max(deadline - time.monotonic(), 1.0), proc=proc, log=log)
        tenant_ids = read_tenant_ids(scenario_path, vars) if scenario_path is not None else {}
    except BaseException:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log_file.close()
        raise  # the data dir (and its log) stays for a look
    return AccordServer(
        proc=proc,
        base=base,
        ca=ca,
        data_dir=data,
        log=log,
        log_file=log_file,
        scenario=scenario_path,
        tenant_ids=tenant_ids,
        remove_data_dir=remove,
    )
