"""pytest-accord: a real Accord server in test mode for your tests.

Fixtures (the plugin is registered through the `pytest11` entry point when installed, or
with `-p pytest_accord`):

    accord_server   session: one `accord serve --test-mode` for the whole run, loaded with the
                    scenario; stopped at the end (SIGTERM, then SIGKILL)
    accord          function: the same server after `control.reset()`, so every test starts
                    from the scenario (fault rules and the journal cleared)
    accord_scenario session: the scenario's path; override it in a conftest.py to make one

Configuration (the command line wins, then the environment, then the ini file):

    --accord-scenario FILE   ACCORD_SCENARIO   accord_scenario = FILE   (required)
    --accord-bin PATH        ACCORD_BIN        accord_bin = PATH        (default: `accord` on PATH)
    --accord-arg=ARG ...                       accord_args = ARG ...    (more `accord serve` args)

A relative path is taken from the directory pytest was started in (command line and
environment) or from the ini file's directory. Outside pytest: `start_accord(...)`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from ._server import (
    AccordControlError,
    AccordError,
    AccordServer,
    AccordStartError,
    ControlClient,
    read_tenant_ids,
    resolve_binary,
    start_accord,
    tail,
    wait_ready,
)

__all__ = [
    "AccordControlError",
    "AccordError",
    "AccordServer",
    "AccordStartError",
    "ControlClient",
    "read_tenant_ids",
    "resolve_binary",
    "start_accord",
    "tail",
    "wait_ready",
]

_started = pytest.StashKey[list]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("accord", "Accord test server (pytest-accord)")
    group.addoption(
        "--accord-scenario",
        dest="accord_scenario",
        metavar="FILE",
        help="scenario file the accord_server fixture loads (env ACCORD_SCENARIO, ini accord_scenario)",
    )
    group.addoption(
        "--accord-bin",
        dest="accord_bin",
        metavar="PATH",
        help="the accord server binary (env ACCORD_BIN, ini accord_bin; default: accord on PATH)",
    )
    group.addoption(
        "--accord-arg",
        dest="accord_args",
        action="append",
        default=[],
        metavar="ARG",
        help="one more `accord serve` argument, repeatable (--accord-arg=--var --accord-arg=name=value)",
    )
    parser.addini("accord_scenario", "scenario file the accord_server fixture loads", default="")
    parser.addini("accord_bin", "the accord server binary (default: accord on PATH)", default="")
    parser.addini("accord_args", "more `accord serve` arguments", type="args", default=[])


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_started] = []


def _ini_dir(config: pytest.Config) -> Path:
    return config.inipath.parent if config.inipath is not None else config.rootpath


def _configured(config: pytest.Config, option: str, env: str) -> tuple[str, Path] | None:
    """(value, directory a relative value is taken from), or None."""
    here = config.invocation_params.dir
    value = config.getoption(option)
    if value:
        return value, here
    value = os.environ.get(env)
    if value:
        return value, here
    value = config.getini(option)
    if value:
        return value, _ini_dir(config)
    return None


def configured_scenario(config: pytest.Config) -> Path | None:
    found = _configured(config, "accord_scenario", "ACCORD_SCENARIO")
    if found is None:
        return None
    value, base = found
    return (base / Path(value).expanduser()).absolute()


def configured_binary(config: pytest.Config) -> str:
    found = _configured(config, "accord_bin", "ACCORD_BIN")
    if found is None:
        return "accord"
    value, base = found
    if "/" not in value and os.sep not in value:
        return value  # a name looked up on PATH
    return str((base / Path(value).expanduser()).absolute())


@pytest.fixture(scope="session")
def accord_scenario(pytestconfig: pytest.Config) -> Path:
    """The scenario accord_server loads. Override this fixture to build one (a copy of a file
    with a certificate made for the run, say)."""
    scenario = configured_scenario(pytestconfig)
    if scenario is None:
        pytest.fail(
            "pytest-accord: no scenario. Name one with --accord-scenario FILE, the ACCORD_SCENARIO "
            "environment variable or `accord_scenario = FILE` in the ini file.",
            pytrace=False,
        )
    return scenario


@pytest.fixture(scope="session")
def accord_server(
    pytestconfig: pytest.Config, accord_scenario: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccordServer]:
    """One `accord serve --test-mode` for the session, on a port the kernel picks."""
    args = [*pytestconfig.getini("accord_args"), *pytestconfig.getoption("accord_args")]
    try:
        server = start_accord(
            accord_scenario,
            bin=configured_binary(pytestconfig),
            args=args,
            data_dir=tmp_path_factory.mktemp("accord"),
        )
    except AccordStartError as e:
        pytest.fail(f"pytest-accord: {e}", pytrace=False)
    pytestconfig.stash[_started].append(server)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def accord(accord_server: AccordServer) -> Iterator[AccordServer]:
    """The session's server, reset to the scenario (world, fault rules, journal) first."""
    accord_server.control.reset()
    yield accord_server


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    if exitstatus in (0, 5):
        return
    for server in config.stash.get(_started, []):
        terminalreporter.section("accord server log (tail)")
        terminalreporter.write_line(f"full log: {server.log}")
        terminalreporter.write_line(server.log_tail(60))
