"""Groups in tokens (issue 14, part 4) with unmodified clients: an app whose registration asks
for security groups gets its users' groups — nested ones included — in the ID tokens MSAL
Python receives, and msgraph-sdk reads the same list from Graph (`/me/transitiveMemberOf`).

The test starts its own server: interop/scenario.toml with the public client asking for
groups, and two nested groups around Alice."""

import asyncio
import os

import msal
import pytest
from azure.identity import UsernamePasswordCredential
from msgraph import GraphServiceClient

from conftest import launch
from support import GRAPH, HTTP_TIMEOUT_S, SCENARIO, load_world

PUBLIC_ANCHOR = 'app_id = "c0c0c0c0-1111-4111-8111-000000000002"'
GROUPS = '''
[[tenant.group]]
display_name = "Interop Sales"
members = ["group:Interop Sales Leads"]

[[tenant.group]]
display_name = "Interop Sales Leads"
members = ["alice@interop.test"]
'''


@pytest.fixture(scope="module")
def groups_world(tmp_path_factory):
    text = SCENARIO.read_text()
    assert PUBLIC_ANCHOR in text
    scenario = tmp_path_factory.mktemp("groups-world") / "scenario.toml"
    scenario.write_text(
        text.replace(PUBLIC_ANCHOR, f'{PUBLIC_ANCHOR}\ngroup_membership_claims = "SecurityGroup"', 1) + GROUPS
    )
    launched = launch(scenario, tmp_path_factory.mktemp("accord-groups-data"), "accord-interop-groups")
    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")}
    for k in saved:
        os.environ[k] = str(launched.ca)
    try:
        yield {"base": launched.base, "world": load_world()}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        launched.stop()


def test_id_token_groups_match_what_the_graph_sdk_reads(groups_world):
    w, world = groups_world, groups_world["world"]
    alice = world.alice
    msal.authority.Authority._domains_without_user_realm_discovery.add("localhost")
    pca = msal.PublicClientApplication(
        world.public.app_id, authority=f"{w['base']}/{world.tid}", instance_discovery=False, timeout=HTTP_TIMEOUT_S
    )
    result = pca.acquire_token_by_username_password(alice.upn, alice.password, scopes=["User.Read"])
    assert "access_token" in result, result
    in_token = sorted(result["id_token_claims"].get("groups", []))
    assert len(in_token) == 2, result["id_token_claims"]

    cred = UsernamePasswordCredential(
        world.public.app_id, alice.upn, alice.password, tenant_id=world.tid,
        authority=w["base"], disable_instance_discovery=True,
    )
    client = GraphServiceClient(credentials=cred, scopes=[f"{GRAPH}/User.Read"])
    client.request_adapter.base_url = f"{w['base']}/v1.0"

    async def main():
        try:
            return await client.me.transitive_member_of.get()
        finally:
            http = client.request_adapter._http_client
            await http.aclose()
            inner = getattr(http._transport, "transport", None)
            if inner is not None:
                await inner.aclose()

    try:
        page = asyncio.run(main())
    finally:
        cred.close()
    from_graph = sorted(o.id for o in page.value)
    assert from_graph == in_token, (from_graph, in_token)
    names = sorted(o.display_name for o in page.value)
    assert names == ["Interop Sales", "Interop Sales Leads"], names
