"""pytest-accord's own tests, against a real `accord serve --test-mode`.

    pytest                                   # from tools/test-helpers/python (pyproject.toml)
    pytest tools/test-helpers/python/tests   # from the repository root
    ACCORD_BIN=/path/to/accord pytest ...    # the server binary (else target/debug/accord, else PATH)

World: tests/scenario.toml (tenant "Helper Test", the daemon and public apps below).
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

import pytest
import requests

from pytest_accord import (
    AccordControlError,
    AccordServer,
    AccordStartError,
    configured_binary,
    start_accord,
)

SCENARIO = Path(__file__).with_name("scenario.toml")
TENANT = "Helper Test"
TID = "7e570000-0000-4000-8000-000000000001"
DAEMON = "7e570000-0000-4000-8000-0000000000a1"
DAEMON_SECRET = "helper-daemon-secret-1"
PUBLIC = "7e570000-0000-4000-8000-0000000000a2"
ALICE = "alice@helper.test"
ALICE_PASSWORD = "alice-Helper-pw-1"
GRAPH_DEFAULT = "https://graph.microsoft.com/.default"

SECOND_TID = "7e570000-0000-4000-8000-000000000002"
SECOND_TENANT = f"""
[[tenant]]
id = "{SECOND_TID}"
display_name = "Second"
domains = ["second.test"]
"""


def instant(text: str) -> datetime:
    """RFC 3339 with nanoseconds and Z, as Accord writes it."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(text)


def client_credentials(server: AccordServer) -> requests.Response:
    with server.session() as s:
        return s.post(
            server.token_endpoint(TENANT),
            data={
                "grant_type": "client_credentials",
                "client_id": DAEMON,
                "client_secret": DAEMON_SECRET,
                "scope": GRAPH_DEFAULT,
            },
            timeout=30,
        )


def ropc(server: AccordServer) -> requests.Response:
    with server.session() as s:
        return s.post(
            server.token_endpoint(TENANT),
            data={
                "grant_type": "password",
                "client_id": PUBLIC,
                "username": ALICE,
                "password": ALICE_PASSWORD,
                "scope": "User.Read",
            },
            timeout=30,
        )


def discovery(server: AccordServer, tenant: str) -> requests.Response:
    with server.session() as s:
        return s.get(server.openid_configuration_url(tenant), timeout=30)


# --------------------------------------------------------------------------- the fixtures


def test_accord_is_the_session_server_with_the_scenarios_tenants(accord, accord_server):
    assert accord is accord_server
    assert accord.running
    assert re.fullmatch(r"https://localhost:\d+", accord.base), accord.base
    assert Path(accord.ca).is_file()
    assert accord.tenant_ids == {TENANT: TID}
    assert accord.authority() == accord.authority(TENANT) == f"{accord.base}/{TID}"
    assert accord.authority("common") == f"{accord.base}/common"
    assert accord.token_endpoint(TENANT) == f"{accord.base}/{TID}/oauth2/v2.0/token"
    r = discovery(accord, TENANT)
    assert r.status_code == 200, r.text
    assert r.json()["issuer"] == f"{accord.base}/{TID}/v2.0"
    assert r.json()["token_endpoint"] == accord.token_endpoint(TENANT)


# --------------------------------------------------------------------------- the clock


def test_advance_moves_the_clock_by_what_was_asked(accord):
    before = accord.control.clock()
    after = accord.control.advance(days=1, hours=2, minutes=3, seconds=4)
    step = ((1 * 24 + 2) * 60 + 3) * 60 + 4
    assert after["offsetSeconds"] - before["offsetSeconds"] == step
    assert (instant(after["now"]) - instant(before["now"])).total_seconds() >= step
    assert isinstance(after["ran"], dict), after
    assert accord.control.clock()["offsetSeconds"] == after["offsetSeconds"]


def test_advance_by_nothing_is_refused_with_the_servers_words(accord):
    before = accord.control.clock()["offsetSeconds"]
    with pytest.raises(AccordControlError) as caught:
        accord.control.advance()
    e = caught.value
    assert e.status == 400
    assert "never goes back" in e.error, e.error
    assert "POST /_accord/test/clock/advance answered HTTP 400" in str(e)
    assert e.error in str(e)
    assert accord.control.clock()["offsetSeconds"] == before


# --------------------------------------------------------------------------- scenarios and reset


def test_reset_takes_the_world_back_to_the_scenario(accord):
    loaded = accord.control.load_scenario(SECOND_TENANT)
    assert loaded["loaded"]["tenants"] == 1, loaded
    assert discovery(accord, SECOND_TID).status_code == 200
    accord.control.add_fault({"match": {"endpoint": "graph"}, "action": {"status": 503}})
    assert client_credentials(accord).status_code == 200
    assert accord.control.journal()["entries"]

    loaded = accord.control.reset()
    assert loaded["loaded"]["tenants"] == 1 and loaded["loaded"]["apps"] == 2, loaded
    gone = discovery(accord, SECOND_TID)
    assert gone.status_code == 400, gone.text
    assert gone.json()["error_codes"] == [90002]  # tenant not found
    assert discovery(accord, TENANT).status_code == 200
    assert accord.control.faults() == []
    assert accord.control.journal() == {"entries": [], "last": 0}


def test_load_scenario_takes_a_path_too(accord, tmp_path):
    file = tmp_path / "second.toml"
    file.write_text(SECOND_TENANT)
    accord.control.load_scenario(file)
    assert discovery(accord, SECOND_TID).status_code == 200


def test_a_test_starts_from_the_scenario_again(accord):
    # Whatever the test before did (test_load_scenario_takes_a_path_too added this tenant).
    assert discovery(accord, SECOND_TID).status_code == 400


def test_a_bad_scenario_is_a_clear_error_and_loads_nothing(accord):
    with pytest.raises(AccordControlError) as caught:
        accord.control.load_scenario(f'{SECOND_TENANT}\n[[tenant]]\ndisplay_name = "No Domains"\n')
    e = caught.value
    assert e.status == 400
    assert "missing field `domains`" in e.error, e.error
    assert "POST /_accord/test/scenario answered HTTP 400" in str(e)
    assert discovery(accord, SECOND_TID).status_code == 400  # a scenario loads whole or not at all

    with pytest.raises(AccordControlError, match=r"HTTP 400: scenario \(control API\):1: .*expected"):
        accord.control.load_scenario("this is not [toml")


# --------------------------------------------------------------------------- fault rules


def test_a_fault_rule_fails_a_token_request_with_the_chosen_aadsts_code(accord):
    rule = accord.control.add_fault(
        {"match": {"endpoint": "token", "app": DAEMON}, "times": 1, "action": {"aadsts": 65001}}
    )
    assert rule["id"] and rule["match"]["app"] == DAEMON and rule["action"]["aadsts"] == 65001
    assert [r["id"] for r in accord.control.faults()] == [rule["id"]]

    failed = client_credentials(accord)
    assert failed.status_code == 400, failed.text
    body = failed.json()
    assert body["error"] == "invalid_grant"
    assert body["error_codes"] == [65001]
    assert body["error_description"].startswith("AADSTS65001")

    assert client_credentials(accord).status_code == 200  # times = 1: spent
    (listed,) = accord.control.faults()
    assert listed["injected"] == 1 and listed["matched"] >= 1, listed
    assert [e["kind"] for e in accord.control.journal()["entries"]] == ["fault", "app_only"]

    assert accord.control.clear_faults() is None
    assert accord.control.faults() == []


def test_a_bad_fault_rule_is_refused_with_the_servers_words(accord):
    with pytest.raises(AccordControlError) as caught:
        accord.control.add_fault({"match": {"endpoint": "nowhere"}, "action": {"aadsts": 65001}})
    assert caught.value.status == 400
    assert "match.endpoint 'nowhere'" in caught.value.error, caught.value.error


# --------------------------------------------------------------------------- the journal


def test_the_journal_shows_each_decision(accord):
    start = accord.control.journal()["last"]
    assert client_credentials(accord).status_code == 200
    refused = ropc(accord)
    assert refused.status_code == 400 and refused.json()["error_codes"] == [65001], refused.text

    journal = accord.control.journal(after=start)
    issued, asked = journal["entries"]
    assert issued["seq"] > start and asked["seq"] == journal["last"] > issued["seq"]
    assert (issued["kind"], issued["decision"], issued["clientAppId"], issued["tenantId"]) == (
        "app_only", "issue", DAEMON, TID,
    )
    assert issued["asked"] == GRAPH_DEFAULT and "User.Read.All" in issued["ruleText"]
    # The token endpoint's answer: the engine would prompt, the client is told AADSTS65001.
    assert (asked["kind"], asked["clientAppId"], asked["user"], asked["rule"]) == (
        "token", PUBLIC, ALICE, "consent.missing",
    )
    assert (asked["decision"], asked["aadsts"]) == ("refuse", 65001)

    later = accord.control.journal(after=issued["seq"])
    assert [e["seq"] for e in later["entries"]] == [asked["seq"]]
    assert accord.control.journal(after=journal["last"])["entries"] == []


# --------------------------------------------------------------------------- start_accord


def test_start_accord_outside_pytest_fixtures(pytestconfig, tmp_path):
    with start_accord(SCENARIO, bin=configured_binary(pytestconfig), data_dir=tmp_path / "data") as server:
        assert server.tenant_ids == {TENANT: TID}
        assert server.control.clock()["offsetSeconds"] == 0
        assert (tmp_path / "data" / "accord.log").is_file()
        pid = server.pid
    assert not server.running
    assert server.proc.pid == pid and server.proc.returncode is not None
    assert (tmp_path / "data" / "accord.log").is_file()  # a data dir it was given is kept


def test_start_accord_without_test_mode_has_no_control_api(pytestconfig):
    server = start_accord(SCENARIO, bin=configured_binary(pytestconfig), test_mode=False)
    data_dir = server.data_dir
    try:
        with pytest.raises(AccordControlError, match=r"HTTP 404: .*--test-mode"):
            server.control.clock()
    finally:
        server.stop()
    assert not data_dir.exists()  # a data dir it made is removed


def test_a_bad_scenario_file_fails_the_start_with_the_servers_words(pytestconfig, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[tenant]]\ndisplay_name = "No Domains"\n')
    with pytest.raises(AccordStartError) as caught:
        start_accord(bad, bin=configured_binary(pytestconfig), data_dir=tmp_path / "data")
    message = str(caught.value)
    assert "accord exited with status" in message, message
    assert "missing field `domains`" in message, message


def test_a_missing_binary_or_scenario_is_named(tmp_path):
    with pytest.raises(AccordStartError, match="accord binary not found at .*no-such-accord"):
        start_accord(SCENARIO, bin=tmp_path / "no-such-accord")
    with pytest.raises(AccordStartError, match="no `no-such-accord-binary` on PATH"):
        start_accord(SCENARIO, bin="no-such-accord-binary")
    with pytest.raises(AccordStartError, match="scenario file not found: .*nowhere.toml"):
        start_accord(tmp_path / "nowhere.toml", bin=shutil.which("true") or "/bin/true")


# --------------------------------------------------------------------------- the plugin in a suite


VENDOR_TESTS = f'''
import pytest

SECOND = """{SECOND_TENANT}"""


def test_one(accord):
    accord.control.load_scenario(SECOND)
    accord.control.add_fault({{"match": {{"endpoint": "graph"}}, "action": {{"status": 503}}}})
    accord.control.advance(hours=1)


def test_two(accord, accord_server):
    assert accord is accord_server
    assert accord.control.faults() == []
    with accord.session() as s:
        assert s.get(accord.openid_configuration_url("{SECOND_TID}")).status_code == 400
    assert accord.control.clock()["offsetSeconds"] >= 3600  # a reset leaves the clock alone
    assert accord.tenant_ids == {{"{TENANT}": "{TID}"}}
'''


@pytest.fixture
def vendor_suite(pytester, monkeypatch, pytestconfig):
    """A suite in a temporary directory that uses the plugin as a vendor would; returns a
    function running it in a child pytest."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    monkeypatch.delenv("ACCORD_SCENARIO", raising=False)
    shutil.copy(SCENARIO, pytester.path / "world.toml")
    pytester.makepyfile(test_vendor=VENDOR_TESTS)
    binary = configured_binary(pytestconfig)

    def run(*args: str):
        return pytester.runpytest_subprocess("-p", "pytest_accord", "-p", "no:cacheprovider", f"--accord-bin={binary}", *args)

    return run


def test_a_suite_configured_in_its_ini_file(pytester, vendor_suite):
    pytester.makeini("[pytest]\naccord_scenario = world.toml\n")
    result = vendor_suite()
    result.assert_outcomes(passed=2)


def test_a_suite_configured_on_the_command_line(pytester, vendor_suite):
    result = vendor_suite("--accord-scenario", str(pytester.path / "world.toml"))
    result.assert_outcomes(passed=2)


def test_a_suite_without_a_scenario_is_told_how_to_name_one(vendor_suite):
    result = vendor_suite()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*pytest-accord: no scenario. Name one with --accord-scenario FILE*"])
