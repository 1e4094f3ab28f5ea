"""The plugin's own tests: they load tests/scenario.toml whatever ACCORD_SCENARIO or an ini
file say (the accord_scenario fixture, overridden the way a vendor's conftest.py may)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SCENARIO = Path(__file__).with_name("scenario.toml")
HERE = Path(__file__).resolve()
REPO_ROOT = HERE.parents[4] if len(HERE.parents) > 4 else None  # tools/test-helpers/python/tests


def pytest_configure(config: pytest.Config) -> None:
    # In an Accord checkout without ACCORD_BIN or --accord-bin: the server cargo built.
    if REPO_ROOT is None or config.getoption("accord_bin") or os.environ.get("ACCORD_BIN"):
        return
    built = REPO_ROOT / "target" / "debug" / "accord"
    if built.is_file():
        os.environ["ACCORD_BIN"] = str(built)


@pytest.fixture(scope="session")
def accord_scenario() -> Path:
    return SCENARIO
