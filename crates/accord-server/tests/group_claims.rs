//! Groups and optional claims (issue 14, part 4): an app's `groupMembershipClaims` puts the
//! user's groups — nested ones included — in its ID tokens (and in access tokens for it as a
//! resource; Graph's own tokens carry none), `ApplicationGroup` only the groups assigned to it,
//! more than 200 become the overage indicator, and Graph serves the full list
//! (`getMemberObjects`, `transitiveMemberOf`).

mod support;

use serde_json::Value;
use std::path::PathBuf;
use support::*;

/// The test world with the web app's token settings, and `extra` Contoso tables.
fn world_with(settings: &str, extra: &str) -> PathBuf {
    let text = std::fs::read_to_string(world()).unwrap();
    let anchor = format!("app_id = \"{WEB_APP}\"");
    let mut with = text.replacen(&anchor, &format!("{anchor}\n{settings}"), 1);
    // Contoso's tables go before the second tenant (Fabrikam).
    let second = with.match_indices("\n[[tenant]]").nth(1).map(|(i, _)| i).unwrap();
    with.insert_str(second, &format!("\n{extra}\n"));
    let dir = std::env::temp_dir().join(format!("accord-groups-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("world.toml");
    std::fs::write(&path, with).unwrap();
    path
}

/// Signs `upn` in to the web app; returns (id token claims, access token).
async fn tokens(server: &TestServer, upn: &str, password: &str) -> (Value, String) {
    let mut url = reqwest::Url::parse(&server.url(&format!("/{CONTOSO}/oauth2/v2.0/authorize"))).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", WEB_APP)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", WEB_REDIRECT)
        .append_pair("scope", "openid profile User.Read");
    let loc = sign_in(&server.client(), server, url.as_str(), upn, password).await.expect("signed in");
    let code = query_param(&loc, "code").unwrap_or_else(|| panic!("{loc}"));
    let res = server
        .client()
        .post(server.url(&format!("/{CONTOSO}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", WEB_APP),
            ("client_secret", WEB_SECRET),
            ("code", &code),
            ("redirect_uri", WEB_REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    let id = jwt_claims(body["id_token"].as_str().unwrap_or_else(|| panic!("{body}")));
    (id, body["access_token"].as_str().unwrap().to_string())
}

async fn graph(server: &TestServer, token: &str, method: reqwest::Method, path: &str) -> (u16, Value) {
    let mut req = server.client().request(method.clone(), server.url(path)).bearer_auth(token);
    if method == reqwest::Method::POST {
        req = req.json(&serde_json::json!({"securityEnabledOnly": true}));
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn ids(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
    out.sort();
    out
}

#[tokio::test]
async fn security_groups_nested_included_in_id_tokens_and_graph_lists_them() {
    let settings = "group_membership_claims = \"SecurityGroup\"\noptional_claims = { id_token = [\"upn\"] }";
    let server = TestServer::start_with(&world_with(settings, ""));

    // Bob is in Sales Leads, which is in Sales: both.
    let (id, access) = tokens(&server, "bob@contoso.test", "bob-password-1").await;
    let (status, objects) = graph(&server, &access, reqwest::Method::POST, "/v1.0/me/getMemberObjects").await;
    assert_eq!(status, 200, "{objects}");
    assert_eq!(objects["value"].as_array().unwrap().len(), 2, "{objects}");
    assert_eq!(ids(&id["groups"]), ids(&objects["value"]), "the token lists what Graph does");
    let (_, groups) = graph(&server, &access, reqwest::Method::GET, "/v1.0/me/transitiveMemberOf").await;
    let mut names: Vec<&str> =
        groups["value"].as_array().unwrap().iter().map(|g| g["displayName"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["Sales", "Sales Leads"]);
    assert_eq!(groups["value"][0]["@odata.type"], "#microsoft.graph.group");
    assert_eq!(id["upn"], "bob@contoso.test", "the optional claim");
    // Graph's own access tokens are built from Graph's manifest: no groups.
    assert!(jwt_claims(&access).get("groups").is_none());

    // The administrator's directory role comes as wids with SecurityGroup.
    let (id, _) = tokens(&server, "admin@contoso.test", "admin-password-1").await;
    assert_eq!(id["wids"], serde_json::json!(["62e90394-69f5-4237-9190-012177145e10"]), "{id}");
    assert!(id["groups"].as_array().unwrap().is_empty(), "{id}");

    // Another user's memberships need a directory permission: Bob's User.Read is not one.
    let (status, _) =
        graph(&server, &access, reqwest::Method::GET, "/v1.0/users/alice@contoso.test/transitiveMemberOf").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn application_groups_and_the_overage_indicator() {
    // Only the groups assigned to the app: Sales (Bob is in it through Sales Leads).
    let assigned = format!("[[tenant.assignment]]\napp = \"{WEB_APP}\"\nprincipal = \"group:Sales\"\n");
    let server = TestServer::start_with(&world_with("group_membership_claims = \"ApplicationGroup\"", &assigned));
    let (id, access) = tokens(&server, "bob@contoso.test", "bob-password-1").await;
    let (_, groups) = graph(&server, &access, reqwest::Method::GET, "/v1.0/me/transitiveMemberOf").await;
    let sales = groups["value"].as_array().unwrap().iter().find(|g| g["displayName"] == "Sales").unwrap()["id"].clone();
    assert_eq!(id["groups"], serde_json::json!([sales]), "{id}");
    server.stop();

    // 201 groups: too many for a JWT; the token says where the list is, and it is served there.
    let many: String = (0..201)
        .map(|i| format!("[[tenant.group]]\ndisplay_name = \"Team {i:03}\"\nmembers = [\"alice@contoso.test\"]\n\n"))
        .collect();
    let server = TestServer::start_with(&world_with("group_membership_claims = \"All\"", &many));
    let (id, access) = tokens(&server, "alice@contoso.test", "alice-password-1").await;
    assert!(id.get("groups").is_none(), "no groups claim over the limit");
    assert_eq!(id["_claim_names"]["groups"], "src1");
    let endpoint = id["_claim_sources"]["src1"]["endpoint"].as_str().unwrap();
    assert!(endpoint.starts_with(&server.url("/v1.0/users/")) && endpoint.ends_with("/getMemberObjects"), "{endpoint}");
    let path = endpoint.strip_prefix(&server.base).unwrap();
    // Alice's own token may read her memberships at that address.
    let (status, objects) = graph(&server, &access, reqwest::Method::POST, path).await;
    assert_eq!(status, 200, "{objects}");
    assert_eq!(objects["value"].as_array().unwrap().len(), 202, "201 teams and Sales");
}
