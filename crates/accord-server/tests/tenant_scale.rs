//! Tenants of real size (issue 19): the same requests against a generated tenant of 1,000 users (100 groups)
//! and one of 10,000 (1,000 groups nested five deep, 100 apps) run the same number of SQL
//! statements — counted by the store for each request (test mode's `x-accord-statements`),
//! not timed. A request
//! whose statement count grows with the tenant (a query per member, per group, per app) fails
//! here; the benchmark measures the time (docs/benchmarks.md).

mod support;

use accord_core::scenario::generate::{self, TenantSize};
use std::collections::BTreeMap;
use support::*;

/// A request's own SQL statements, as test mode reports them (`x-accord-statements`): the
/// background jobs that share the store do not count.
fn statements(res: &reqwest::Response) -> u64 {
    res.headers()["x-accord-statements"].to_str().unwrap().parse().unwrap()
}

fn authorize_url(server: &TestServer, challenge: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", generate::BENCH_APP_ID)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", generate::BENCH_REDIRECT_URI)
        .append_pair("scope", "openid profile offline_access User.Read User.ReadBasic.All GroupMember.Read.All")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    server.url(&format!("/{}/oauth2/v2.0/authorize?{query}", generate::TENANT_ID))
}

/// Signs the member in (a fresh browser each time) and redeems the code; returns the tokens.
async fn sign_in_and_redeem(server: &TestServer, costs: Option<&mut BTreeMap<&'static str, u64>>) -> serde_json::Value {
    let client = server.client();
    let (verifier, challenge) = pkce_pair();
    let page = client.get(authorize_url(server, &challenge)).send().await.unwrap();
    let mut sign_in_cost = statements(&page);
    let html = page.text().await.unwrap();
    let (action, mut fields) = form_fields(&html);
    fields.retain(|(k, _)| k != "login" && k != "passwd");
    fields.push(("login".into(), generate::MEMBER_UPN.into()));
    fields.push(("passwd".into(), generate::MEMBER_PASSWORD.into()));
    let res = client.post(server.url(&action)).form(&fields).send().await.unwrap();
    sign_in_cost += statements(&res);
    assert!(res.status().is_redirection(), "sign-in: {}", res.text().await.unwrap());
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let code = query_param(&location, "code").unwrap_or_else(|| panic!("no code: {location}"));
    let res = client
        .post(server.url(&format!("/{}/oauth2/v2.0/token", generate::TENANT_ID)))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", generate::BENCH_APP_ID),
            ("client_secret", generate::BENCH_SECRET),
            ("code", &code),
            ("redirect_uri", generate::BENCH_REDIRECT_URI),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    if let Some(costs) = costs {
        costs.insert("sign-in (authorize, password → code)", sign_in_cost);
        costs.insert("code → token", statements(&res));
    }
    res.json().await.unwrap()
}

/// The statement count of each request against a generated tenant of `users` users.
/// The statements of each request at this size, and those of a restart with the same scenario.
async fn costs_at(users: usize) -> (BTreeMap<&'static str, u64>, u64) {
    let dir = std::env::temp_dir().join(format!("accord-scale-{users}-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("generated.toml");
    std::fs::write(&scenario, generate::tenant(TenantSize { users, passwords: false })).unwrap();
    // Without the directory cache: every read is a statement, so the counts are the reads a
    // request makes, not what happened to be cached (a generation check, an eviction).
    let server = TestServer::launch_with_env(dir.clone(), &scenario, &["--directory-cache", "off", "--test-mode"], &[]);
    let mut costs = BTreeMap::new();

    // Twice: the first flow creates what every tenant's first sign-in creates (the signing
    // key's first use, the client's first token); the second is what every later one costs.
    sign_in_and_redeem(&server, None).await;
    let tokens = sign_in_and_redeem(&server, Some(&mut costs)).await;
    let token = tokens["access_token"].as_str().unwrap();
    let res = server.client().get(server.url("/v1.0/me")).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    costs.insert("Graph /v1.0/me", statements(&res));
    // Graph's user list: the first page, and a page deep in (following the nextLink).
    let res = server.client().get(server.url("/v1.0/users?$top=100")).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    costs.insert("Graph /v1.0/users, first page", statements(&res));
    let body: serde_json::Value = res.json().await.unwrap();
    let next = body["@odata.nextLink"].as_str().expect("more than a page").to_string();
    let res = server.client().get(&next).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    costs.insert("Graph /v1.0/users, next page", statements(&res));
    let lookup = "/v1.0/users?$filter=userPrincipalName eq 'user000123@scale.test'";
    let res = server.client().get(server.url(lookup)).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    costs.insert("Graph user by UPN", statements(&res));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["value"][0]["displayName"], "User 000123");
    let res = server
        .client()
        .post(server.url(&format!("/{}/oauth2/v2.0/token", generate::TENANT_ID)))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", generate::BENCH_APP_ID),
            ("client_secret", generate::BENCH_SECRET),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    costs.insert("refresh", statements(&res));

    // The admin center's lists, a page each.
    let admin = server.client();
    let location = sign_in(
        &admin,
        &server,
        &server.url("/portal/signin?return_to=/admin"),
        generate::ADMIN_UPN,
        generate::ADMIN_PASSWORD,
    )
    .await
    .unwrap();
    assert_eq!(location, "/admin");
    for (name, path) in [
        ("admin home", "/admin"),
        ("admin users page", "/admin/users"),
        ("admin users search", "/admin/users?q=user0001"),
        ("admin groups page", "/admin/groups"),
        ("admin enterprise apps page", "/admin/enterprise-apps"),
        ("admin audit page", "/admin/audit"),
    ] {
        let res = admin.get(server.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        costs.insert(name, statements(&res));
    }
    // The root group's page: every user of the tenant is in it through nested groups.
    let found = admin.get(server.url("/admin/groups?q=Group%2000000")).send().await.unwrap().text().await.unwrap();
    let root =
        found.split("href=\"/admin/groups/").nth(1).and_then(|r| r.get(..36)).expect("the root group").to_string();
    let res = admin.get(server.url(&format!("/admin/groups/{root}"))).send().await.unwrap();
    assert_eq!(res.status(), 200);
    costs.insert("admin group page (every user nested)", statements(&res));
    // Graph's transitive members of the root, through the least privilege Graph documents for
    // it (delegated GroupMember.Read.All, granted by the administrator): two pages.
    let path = format!("/v1.0/groups/{root}/transitiveMembers?$top=100");
    let res = server.client().get(server.url(&path)).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    costs.insert("Graph transitiveMembers of the root, first page", statements(&res));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["value"].as_array().map(Vec::len), Some(100), "{body}");
    let next = body["@odata.nextLink"].as_str().expect("more than a page").to_string();
    let res = server.client().get(&next).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    costs.insert("Graph transitiveMembers of the root, next page", statements(&res));
    server.stop();

    // A restart with the same scenario writes nothing: what it reads grows only by the batches
    // its users and groups are compared in (the apps, one per hundred users, are read one by one).
    let again = TestServer::launch_with_env(dir.clone(), &scenario, &["--directory-cache", "off", "--test-mode"], &[]);
    let restart = again.metric("accord_store_statements_total").await;
    again.stop();
    (costs, restart)
}

#[tokio::test]
async fn requests_cost_the_same_statements_at_1000_and_at_10000_users() {
    let (small, small_restart) = costs_at(1_000).await;
    let (large, large_restart) = costs_at(10_000).await;
    eprintln!("statements per request,  1,000 users: {small:?}\n                         10,000 users: {large:?}");
    eprintln!("statements of a restart with the same scenario: {small_restart} and {large_restart}");
    // 9,000 more users and 900 more groups add to a restart only the batches they are compared
    // in (at most three reads for every 256 users, one for 256 groups' members: memory stays
    // bounded), and
    // the 90 more apps a few statements each, where each user and group used to be written again.
    let (small_size, large_size) =
        (TenantSize { users: 1_000, passwords: false }, TenantSize { users: 10_000, passwords: false });
    let more_apps = (large_size.apps() - small_size.apps()) as u64;
    let batches = |n: usize| n.div_ceil(accord_core::scenario::BATCH) as u64;
    let more_batches =
        3 * (batches(10_000) - batches(1_000)) + batches(large_size.groups()) - batches(small_size.groups());
    let bound = 6 * more_apps + more_batches;
    assert!(large_restart - small_restart <= bound, "{small_restart} → {large_restart}, at most {bound} more");
    assert_eq!(small, large, "statements per request must not grow with the tenant");
    // The counts are real: every request reads the store (a header stuck at 0 would pass above).
    assert!(small.values().all(|n| *n > 0), "{small:?}");
    assert!(small["sign-in (authorize, password → code)"] > 5, "{small:?}");
}
