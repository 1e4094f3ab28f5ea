//! The Graph-compatible directory API over real HTTPS against a real `accord` process: users and
//! groups (members, transitive members), with permission checks, tenant isolation, OData options
//! and paging. The world is tests/fixtures/directory_world.toml.

mod support;

use serde_json::{json, Value};
use support::graph_api::GraphApi;

const CONTOSO: &str = "dddddddd-0000-4000-8000-000000000001";
const FABRIKAM: &str = "dddddddd-0000-4000-8000-000000000002";
const ALICE: &str = "dddddddd-0000-4000-8000-0000000000a1";
const BOB: &str = "dddddddd-0000-4000-8000-0000000000b1";
const READER_APP: &str = "cccccccc-0000-4000-8000-000000000001";
const PROFILE_APP: &str = "cccccccc-0000-4000-8000-000000000002";
const DIRECTORY_DAEMON: (&str, &str) = ("cccccccc-0000-4000-8000-000000000003", "directory-secret-1");
const USER_DAEMON: (&str, &str) = ("cccccccc-0000-4000-8000-000000000004", "user-secret-1");
const FABRIKAM_DAEMON: (&str, &str) = ("cccccccc-0000-4000-8000-000000000005", "fabrikam-secret-1");
const EXPENSES_API: &str = "cccccccc-0000-4000-8000-000000000010";
const MANAGER_APP: &str = "cccccccc-0000-4000-8000-000000000011";
const APP_ADMIN_DAEMON: (&str, &str) = ("cccccccc-0000-4000-8000-000000000012", "appadmin-secret-1");
const POLICY_DAEMON: (&str, &str) = ("cccccccc-0000-4000-8000-000000000013", "policy-secret-1");

type Graph = GraphApi;

impl Graph {
    fn start() -> Graph {
        GraphApi::with_world("directory_world.toml")
    }

    /// A delegated Graph token by ROPC through a public client.
    async fn user(&self, app: &str, upn: &str, password: &str) -> String {
        self.ropc_token(CONTOSO, app, upn, password).await
    }

    async fn alice(&self, app: &str) -> String {
        self.user(app, "alice@contoso.test", "alice-password-1").await
    }

    async fn admin(&self, app: &str) -> String {
        self.user(app, "admin@contoso.test", "admin-password-1").await
    }

    /// An app-only Graph token by client credentials.
    async fn app(&self, tenant: &str, credentials: (&str, &str)) -> String {
        self.app_token(tenant, credentials).await
    }

    async fn group_id(&self, token: &str, name: &str) -> String {
        let (status, body) = self.get(token, &format!("/v1.0/groups?$filter=displayName eq '{name}'")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["value"].as_array().unwrap().len(), 1, "{body}");
        body["value"][0]["id"].as_str().unwrap().to_string()
    }
}

fn names(values: &[Value]) -> Vec<String> {
    values.iter().map(|v| v["displayName"].as_str().unwrap().to_string()).collect()
}

fn assert_graph_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    let inner = &body["error"]["innerError"];
    assert!(inner["date"].is_string() && inner["request-id"].is_string() && inner["client-request-id"].is_string());
}

#[tokio::test]
async fn users_list_filter_select_and_paging() {
    let g = Graph::start();
    let token = g.alice(READER_APP).await;
    let (status, body) = g.get(&token, "/v1.0/users").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["@odata.context"].as_str().unwrap().ends_with("/v1.0/$metadata#users"), "{body}");
    let all = body["value"].as_array().unwrap();
    assert_eq!(names(all), ["Alice Adams", "Bob Brown", "Carol Clark", "Contoso Admin", "Dave Dunn"]);
    assert_eq!(all[0]["id"], ALICE);
    assert_eq!(all[0]["userPrincipalName"], "alice@contoso.test");
    assert!(body.get("@odata.nextLink").is_none());

    let (_, body) = g.get(&token, "/v1.0/users?$filter=startswith(displayName,'bob')").await;
    assert_eq!(names(body["value"].as_array().unwrap()), ["Bob Brown"]);
    assert_eq!(body["value"][0]["id"], BOB);
    let (_, body) = g.get(&token, "/v1.0/users?$filter=userPrincipalName eq 'CAROL@contoso.test'").await;
    assert_eq!(names(body["value"].as_array().unwrap()), ["Carol Clark"]);
    // A user looked up by key (no directory scan): either operand order, by id, or none.
    let (_, body) =
        g.get_eventual(&token, "/v1.0/users?$filter='carol@contoso.test' eq userPrincipalName&$count=true").await;
    assert_eq!(names(body["value"].as_array().unwrap()), ["Carol Clark"]);
    assert_eq!(body["@odata.count"], 1);
    let (_, body) = g.get(&token, &format!("/v1.0/users?$filter=id eq '{BOB}'&$select=displayName")).await;
    assert_eq!(names(body["value"].as_array().unwrap()), ["Bob Brown"]);
    for missing in [
        "userPrincipalName eq 'nobody@contoso.test'",
        "id eq 'not-a-guid'",
        "userPrincipalName eq 'alice@fabrikam.test'",
    ] {
        let (status, body) = g.get(&token, &format!("/v1.0/users?$filter={missing}")).await;
        assert_eq!((status, body["value"].as_array().unwrap().len()), (200, 0), "{missing}: {body}");
    }
    let (_, body) = g
        .get_eventual(&token, "/v1.0/users?$filter=startswith(mail,'d') or displayName eq 'Alice Adams'&$count=true")
        .await;
    assert_eq!(names(body["value"].as_array().unwrap()), ["Alice Adams", "Dave Dunn"]);
    assert_eq!(body["@odata.count"], 2);

    let (_, body) = g.get(&token, "/v1.0/users?$select=displayName&$orderby=displayName desc&$top=1").await;
    assert!(body["@odata.context"].as_str().unwrap().ends_with("#users(displayName)"), "{body}");
    let first = body["value"][0].as_object().unwrap();
    assert_eq!(first.keys().collect::<Vec<_>>(), ["displayName", "id"]);
    assert_eq!(first["displayName"], "Dave Dunn");

    // Paging: 2 + 2 + 1, following the nextLink (an absolute URL with a $skiptoken).
    let (_, body) = g.get(&token, "/v1.0/users?$top=2").await;
    let next = body["@odata.nextLink"].as_str().unwrap();
    assert!(next.starts_with("https://") && next.contains("$skiptoken=") && next.contains("$top=2"), "{next}");
    let (values, sizes) = g.all_pages(&token, "/v1.0/users?$top=2").await;
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(names(&values), ["Alice Adams", "Bob Brown", "Carol Clark", "Contoso Admin", "Dave Dunn"]);
    // The plain listing is read from the index a page at a time (a keyset $skiptoken, issue 19):
    // $select, $count and $top are kept on every page.
    let (values, sizes) = g.all_pages_as(&token, "/v1.0/users?$top=3&$select=displayName&$count=true", true).await;
    assert_eq!(sizes, [3, 2]);
    assert_eq!(names(&values), ["Alice Adams", "Bob Brown", "Carol Clark", "Contoso Admin", "Dave Dunn"]);
    assert!(values.iter().all(|v| v.as_object().unwrap().len() == 2), "{values:?}");
    let (_, body) = g.get_eventual(&token, "/v1.0/users?$top=3&$count=true").await;
    assert_eq!(body["@odata.count"], 5);
    let next = body["@odata.nextLink"].as_str().unwrap().to_string();
    let token_value = next.split("$skiptoken=").nth(1).unwrap().split('&').next().unwrap().to_string();
    // startswith on displayName or userPrincipalName is served by the index too, any case,
    // paged with the filter kept in the nextLink.
    let (values, sizes) = g.all_pages(&token, "/v1.0/users?$filter=startswith(displayName,'C')&$top=1").await;
    assert_eq!(sizes, [1, 1]);
    assert_eq!(names(&values), ["Carol Clark", "Contoso Admin"]);
    let (_, body) =
        g.get_eventual(&token, "/v1.0/users?$filter=startswith(userPrincipalName,'CAROL@')&$count=true").await;
    assert_eq!(names(body["value"].as_array().unwrap()), ["Carol Clark"]);
    assert_eq!(body["@odata.count"], 1);
    let (_, body) = g.get(&token, "/v1.0/users?$filter=startswith(displayName,'carol@')").await;
    assert_eq!(names(body["value"].as_array().unwrap()), Vec::<String>::new(), "the name only, not the UPN");
    // A keyset token is refused where it does not belong, and a forged one everywhere.
    let (status, body) = g.get(&token, &format!("/v1.0/groups?$orderby=displayName&$skiptoken={token_value}")).await;
    assert_eq!(status, 400, "{body}");
    use base64::Engine;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("k=not-a-guid:bob");
    let (status, body) = g.get(&token, &format!("/v1.0/users?$skiptoken={forged}")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("$skiptoken"), "{body}");

    // Counting directory objects is an advanced query: without `ConsistencyLevel: eventual`
    // Graph refuses `$count=true` and the `/$count` segment.
    for path in ["/v1.0/users?$count=true", "/v1.0/groups?$count=true"] {
        let (status, body) = g.get(&token, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_graph_error(&body, "Request_BadRequest");
        assert_eq!(body["error"]["message"], "$count is not currently supported.", "{path}");
    }
    let (status, _, text) = g.get_text(&token, "/v1.0/users/$count", false).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("$count is not currently supported."), "{text}");
    let (status, kind, text) = g.get_text(&token, "/v1.0/users/$count", true).await;
    assert_eq!((status, kind.as_str(), text.as_str()), (200, "text/plain; charset=utf-8", "5"));
    let (_, _, text) = g.get_text(&token, "/v1.0/users/$count?$filter=startswith(displayName,'c')", true).await;
    assert_eq!(text, "2", "Carol Clark and Contoso Admin");
    let (_, _, text) = g.get_text(&token, "/v1.0/users/$count?$filter=startswith(mail,'dave@')", true).await;
    assert_eq!(text, "1");
    let (_, _, text) = g.get_text(&token, "/v1.0/users/$count?$filter=displayName eq 'Bob Brown'", true).await;
    assert_eq!(text, "1", "a filter off the index is counted too");
    // `mail` (the UPN here) is a key and an indexed prefix like userPrincipalName.
    let (_, body) = g.get(&token, "/v1.0/users?$filter=mail eq 'Bob@contoso.test'").await;
    assert_eq!(names(body["value"].as_array().unwrap()), ["Bob Brown"]);
    let (values, sizes) = g.all_pages(&token, "/v1.0/users?$filter=startswith(mail,'c')&$top=1").await;
    assert_eq!((names(&values), sizes), (vec!["Carol Clark".to_string()], vec![1]));

    // App-only with User.Read.All or Directory.Read.All.
    for daemon in [USER_DAEMON, DIRECTORY_DAEMON] {
        let app = g.app(CONTOSO, daemon).await;
        let (status, body) = g.get(&app, "/v1.0/users?$filter=displayName eq 'Carol Clark'").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(names(body["value"].as_array().unwrap()), ["Carol Clark"]);
    }
}

#[tokio::test]
async fn groups_members_and_transitive_members() {
    let g = Graph::start();
    for token in [g.alice(READER_APP).await, g.app(CONTOSO, DIRECTORY_DAEMON).await] {
        let (status, body) = g.get(&token, "/v1.0/groups").await;
        assert_eq!(status, 200, "{body}");
        assert!(body["@odata.context"].as_str().unwrap().ends_with("/v1.0/$metadata#groups"), "{body}");
        assert_eq!(names(body["value"].as_array().unwrap()), ["Engineering", "Sales", "Team Leads"]);
        assert_eq!(body["value"][0]["securityEnabled"], true);

        let sales = g.group_id(&token, "Sales").await;
        let (status, body) = g.get(&token, &format!("/v1.0/groups/{sales}?$select=displayName")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["displayName"], "Sales");
        assert_eq!(body["id"], sales.as_str());
        assert!(body.get("securityEnabled").is_none());
        assert!(body["@odata.context"].as_str().unwrap().ends_with("#groups(displayName)/$entity"), "{body}");

        // Direct members: Alice and the Team Leads group, typed.
        let (status, body) = g.get(&token, &format!("/v1.0/groups/{sales}/members")).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["@odata.context"].as_str().unwrap().ends_with("#directoryObjects"), "{body}");
        let members = body["value"].as_array().unwrap();
        assert_eq!(names(members), ["Alice Adams", "Team Leads"]);
        assert_eq!(members[0]["@odata.type"], "#microsoft.graph.user");
        assert_eq!(members[1]["@odata.type"], "#microsoft.graph.group");

        // Transitive: also Bob through Team Leads; the cycle back to Sales is walked once and
        // Sales is not its own member.
        let (status, body) = g.get(&token, &format!("/v1.0/groups/{sales}/transitiveMembers")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(names(body["value"].as_array().unwrap()), ["Alice Adams", "Bob Brown", "Team Leads"]);

        // $select keeps @odata.type; $filter and paging work on members.
        let (_, body) = g
            .get(
                &token,
                &format!(
                    "/v1.0/groups/{sales}/transitiveMembers?$select=displayName&$filter=startswith(displayName,'b')"
                ),
            )
            .await;
        let only = body["value"][0].as_object().unwrap();
        assert_eq!(only["displayName"], "Bob Brown");
        assert_eq!(only["@odata.type"], "#microsoft.graph.user");
        assert!(only.get("userPrincipalName").is_none());
        // The plain list pages by position (a keyset $skiptoken) across users into groups;
        // $select keeps the type.
        let path = format!("/v1.0/groups/{sales}/transitiveMembers?$top=1&$select=displayName");
        let (values, sizes) = g.all_pages(&token, &path).await;
        assert_eq!(
            (names(&values), sizes),
            (vec!["Alice Adams".into(), "Bob Brown".into(), "Team Leads".into()], vec![1, 1, 1])
        );
        assert_eq!(values[2]["@odata.type"], "#microsoft.graph.group");
        assert!(values.iter().all(|v| v.get("userPrincipalName").is_none()), "{values:?}");
        let (_, body) = g.get(&token, &path).await;
        let next = body["@odata.nextLink"].as_str().unwrap();
        assert!(next.contains("$skiptoken=") && next.contains("$top=1"), "{next}");
        let engineering = g.group_id(&token, "Engineering").await;
        let (values, sizes) = g.all_pages(&token, &format!("/v1.0/groups/{engineering}/members?$top=1")).await;
        assert_eq!(sizes, [1, 1]);
        assert_eq!(names(&values), ["Carol Clark", "Dave Dunn"]);
        let (values, sizes) = g.all_pages(&token, "/v1.0/groups?$top=2").await;
        assert_eq!(sizes, [2, 1]);
        assert_eq!(names(&values), ["Engineering", "Sales", "Team Leads"]);
        // Groups are read a page at a time from the index too (a keyset $skiptoken), by a
        // display-name prefix in any case, or by id; and counted with ConsistencyLevel.
        let (_, body) = g.get(&token, "/v1.0/groups?$top=2").await;
        assert!(body["@odata.nextLink"].as_str().unwrap().contains("$skiptoken="), "{body}");
        let (values, _) = g.all_pages(&token, "/v1.0/groups?$filter=startswith(displayName,'TEAM')&$top=1").await;
        assert_eq!(names(&values), ["Team Leads"]);
        let (_, body) = g.get(&token, &format!("/v1.0/groups?$filter=id eq '{sales}'")).await;
        assert_eq!(names(body["value"].as_array().unwrap()), ["Sales"]);
        let (_, body) = g.get_eventual(&token, "/v1.0/groups?$top=1&$count=true").await;
        assert_eq!((body["@odata.count"].as_u64(), body["value"].as_array().unwrap().len()), (Some(3), 1), "{body}");
        let (status, _, text) = g.get_text(&token, "/v1.0/groups/$count", true).await;
        assert_eq!((status, text.as_str()), (200, "3"));
        let (_, _, text) = g.get_text(&token, "/v1.0/groups/$count?$filter=startswith(displayName,'s')", true).await;
        assert_eq!(text, "1");
    }
}

#[tokio::test]
async fn service_principals_and_applications_are_found_by_key() {
    let g = Graph::start();
    let app = g.app(CONTOSO, DIRECTORY_DAEMON).await;
    let (status, all) = g.get(&app, "/v1.0/servicePrincipals").await;
    assert_eq!(status, 200, "{all}");
    let reader =
        all["value"].as_array().unwrap().iter().find(|v| v["appId"] == READER_APP).expect("reader's SP").clone();
    // `appId eq` (either case of the GUID) and `id eq` read the one service principal.
    for filter in [
        format!("appId eq '{READER_APP}'"),
        format!("appId eq '{}'", READER_APP.to_uppercase()),
        format!("id eq '{}'", reader["id"].as_str().unwrap()),
    ] {
        let (status, body) = g.get(&app, &format!("/v1.0/servicePrincipals?$filter={filter}")).await;
        assert_eq!(status, 200, "{filter}: {body}");
        assert_eq!(body["value"].as_array().unwrap(), &vec![reader.clone()], "{filter}");
    }
    for filter in ["appId eq 'not-a-guid'", "appId eq '00000000-0000-4000-8000-00000000dead'"] {
        let (status, body) = g.get(&app, &format!("/v1.0/servicePrincipals?$filter={filter}")).await;
        assert_eq!((status, body["value"].as_array().unwrap().len()), (200, 0), "{filter}: {body}");
    }
    let (status, body) = g.get(&app, "/v1.0/servicePrincipals?$count=true").await;
    assert_eq!((status, body["error"]["message"].as_str()), (400, Some("$count is not currently supported.")));
    let (_, body) = g.get_eventual(&app, "/v1.0/servicePrincipals?$count=true&$top=1").await;
    assert_eq!(body["@odata.count"].as_u64(), Some(all["value"].as_array().unwrap().len() as u64), "{body}");
}

#[tokio::test]
async fn permissions_are_refused_with_graph_errors() {
    let g = Graph::start();
    let reader = g.alice(READER_APP).await;
    let sales = g.group_id(&reader, "Sales").await;

    // User.Read alone reaches neither the user list nor groups.
    let profile = g.alice(PROFILE_APP).await;
    for path in [
        "/v1.0/users".to_string(),
        "/v1.0/groups".to_string(),
        format!("/v1.0/groups/{sales}"),
        format!("/v1.0/groups/{sales}/members"),
        format!("/v1.0/groups/{sales}/transitiveMembers"),
    ] {
        let (status, body) = g.get(&profile, &path).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_graph_error(&body, "Authorization_RequestDenied");
    }
    let (_, body) = g.get(&profile, "/v1.0/groups").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("Group.Read.All"), "{body}");

    // An app with User.Read.All only lists users, not groups.
    let users_only = g.app(CONTOSO, USER_DAEMON).await;
    let (status, _) = g.get(&users_only, "/v1.0/users").await;
    assert_eq!(status, 200);
    let (status, body) = g.get(&users_only, &format!("/v1.0/groups/{sales}/members")).await;
    assert_eq!(status, 403, "{body}");
    assert_graph_error(&body, "Authorization_RequestDenied");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application permission GroupMember.Read.All or Group.Read.All"),
        "{body}"
    );

    // No token at all.
    let res = g.c.get(g.server.url("/v1.0/groups")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
}

#[tokio::test]
async fn other_tenants_see_nothing_of_this_one() {
    let g = Graph::start();
    let contoso = g.alice(READER_APP).await;
    let sales = g.group_id(&contoso, "Sales").await;
    let fabrikam = g.app(FABRIKAM, FABRIKAM_DAEMON).await;

    let (status, body) = g.get(&fabrikam, "/v1.0/users").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(body["value"].as_array().unwrap()), ["Frank Fischer"]);
    let (_, body) = g.get(&fabrikam, "/v1.0/groups").await;
    assert_eq!(names(body["value"].as_array().unwrap()), ["Fabrikam Finance"]);
    for path in [
        format!("/v1.0/groups/{sales}"),
        format!("/v1.0/groups/{sales}/members"),
        format!("/v1.0/groups/{sales}/transitiveMembers"),
    ] {
        let (status, body) = g.get(&fabrikam, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_graph_error(&body, "Request_ResourceNotFound");
    }
    // And the other way round.
    let (_, body) = g.get(&fabrikam, "/v1.0/groups").await;
    let finance = body["value"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = g.get(&contoso, &format!("/v1.0/groups/{finance}/members")).await;
    assert_eq!(status, 404, "{body}");
    let (_, body) = g.get(&contoso, "/v1.0/users?$filter=userPrincipalName eq 'frank@fabrikam.test'").await;
    assert_eq!(body["value"].as_array().unwrap().len(), 0, "{body}");
}

#[tokio::test]
async fn bad_odata_and_bad_ids_are_400() {
    let g = Graph::start();
    let token = g.alice(READER_APP).await;
    let sales = g.group_id(&token, "Sales").await;
    for path in [
        "/v1.0/users?$filter=displayName eq".to_string(),
        "/v1.0/users?$filter=nope eq 'x'".to_string(),
        "/v1.0/users?$filter=displayName eq 3".to_string(),
        "/v1.0/users?$select=nope".to_string(),
        "/v1.0/users?$top=0".to_string(),
        "/v1.0/users?$expand=manager".to_string(),
        "/v1.0/users?$top=1&$top=2".to_string(),
        "/v1.0/groups?$orderby=mail".to_string(),
        "/v1.0/groups?$skiptoken=garbage".to_string(),
        format!("/v1.0/groups/{sales}/members?$filter=startswith(displayName)"),
    ] {
        let (status, body) = g.get(&token, &path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_graph_error(&body, "BadRequest");
    }
    let (status, body) = g.get(&token, "/v1.0/groups/not-a-guid/members").await;
    assert_eq!(status, 400, "{body}");
    assert_graph_error(&body, "Request_BadRequest");
    let (status, body) = g.get(&token, "/v1.0/groups/00000000-0000-4000-8000-000000000000").await;
    assert_eq!(status, 404, "{body}");
    assert_graph_error(&body, "Request_ResourceNotFound");
    let (status, body) = g.get(&token, &format!("/v1.0/groups/{sales}/owners")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("'owners'"), "{body}");
}

async fn sp_id(g: &Graph, token: &str, app_id: &str) -> String {
    let (status, body) = g.get(token, &format!("/v1.0/servicePrincipals?$filter=appId eq '{app_id}'")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 1, "{body}");
    body["value"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn service_principals_read() {
    let g = Graph::start();
    for token in [g.alice(MANAGER_APP).await, g.app(CONTOSO, DIRECTORY_DAEMON).await] {
        let (status, body) = g.get(&token, "/v1.0/servicePrincipals").await;
        assert_eq!(status, 200, "{body}");
        assert!(body["@odata.context"].as_str().unwrap().ends_with("$metadata#servicePrincipals"), "{body}");
        let listed = names(body["value"].as_array().unwrap());
        assert!(
            listed.contains(&"Expenses API".to_string()) && listed.contains(&"App Manager".to_string()),
            "{listed:?}"
        );
        assert!(!listed.contains(&"Fabrikam Directory Daemon".to_string()), "{listed:?}");

        let id = sp_id(&g, &token, EXPENSES_API).await;
        let (status, sp) = g.get(&token, &format!("/v1.0/servicePrincipals/{id}")).await;
        assert_eq!(status, 200, "{sp}");
        assert_eq!(sp["appId"], EXPENSES_API);
        assert_eq!(sp["displayName"], "Expenses API");
        assert_eq!(sp["appOwnerOrganizationId"], CONTOSO);
        assert_eq!(sp["accountEnabled"], true);
        assert_eq!(sp["appRoleAssignmentRequired"], false);
        assert_eq!(sp["servicePrincipalType"], "Application");
        assert_eq!(sp["appRoles"][0]["value"], "Expenses.Approver");
        assert_eq!(sp["appRoles"][0]["allowedMemberTypes"], json!(["User"]));
        assert_eq!(sp["oauth2PermissionScopes"][0]["value"], "Expenses.Read");
        assert_eq!(sp["oauth2PermissionScopes"][0]["type"], "User");
        assert!(sp["servicePrincipalNames"].as_array().unwrap().contains(&json!("api://expenses")), "{sp}");
        assert!(sp["verifiedPublisher"].is_object());
        assert!(sp["@odata.context"].as_str().unwrap().ends_with("#servicePrincipals/$entity"), "{sp}");

        let (_, body) = g.get(&token, "/v1.0/servicePrincipals?$filter=startswith(displayName,'exp')").await;
        assert_eq!(names(body["value"].as_array().unwrap()), ["Expenses API"]);
        let (_, body) = g.get(&token, &format!("/v1.0/servicePrincipals/{id}?$select=appId,displayName")).await;
        assert_eq!(body.as_object().unwrap().len(), 4, "{body}"); // id, appId, displayName, @odata.context
        let (values, sizes) = g.all_pages(&token, "/v1.0/servicePrincipals?$top=2").await;
        assert!(sizes.len() >= 2 && sizes.iter().all(|s| *s <= 2), "{sizes:?}");
        assert_eq!(values.len(), listed.len());
    }

    // Refused, other tenants, bad OData.
    let profile = g.alice(PROFILE_APP).await;
    let (status, body) = g.get(&profile, "/v1.0/servicePrincipals").await;
    assert_eq!(status, 403, "{body}");
    assert_graph_error(&body, "Authorization_RequestDenied");
    assert!(body["error"]["message"].as_str().unwrap().contains("Application.Read.All"), "{body}");
    let manager = g.alice(MANAGER_APP).await;
    let id = sp_id(&g, &manager, EXPENSES_API).await;
    let fabrikam = g.app(FABRIKAM, FABRIKAM_DAEMON).await;
    let (status, body) = g.get(&fabrikam, &format!("/v1.0/servicePrincipals/{id}")).await;
    assert_eq!(status, 404, "{body}");
    assert_graph_error(&body, "Request_ResourceNotFound");
    let (_, body) = g.get(&fabrikam, &format!("/v1.0/servicePrincipals?$filter=appId eq '{EXPENSES_API}'")).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 0, "{body}");
    for path in [
        "/v1.0/servicePrincipals?$filter=appId eq",
        "/v1.0/servicePrincipals?$filter=appId eq 5",
        "/v1.0/servicePrincipals?$select=secret",
    ] {
        let (status, body) = g.get(&manager, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_graph_error(&body, "BadRequest");
    }
    let (status, _) = g.get(&manager, "/v1.0/servicePrincipals/nope").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn service_principals_update() {
    let g = Graph::start();
    let admin = g.admin(MANAGER_APP).await;
    let id = sp_id(&g, &admin, EXPENSES_API).await;
    let path = format!("/v1.0/servicePrincipals/{id}");

    // A Global Administrator with Application.ReadWrite.All.
    let (status, body) = g.patch(&admin, &path, json!({"appRoleAssignmentRequired": true})).await;
    assert_eq!(status, 204, "{body}");
    let (_, sp) = g.get(&admin, &path).await;
    assert_eq!((sp["appRoleAssignmentRequired"].as_bool(), sp["accountEnabled"].as_bool()), (Some(true), Some(true)));

    // An app with the application permission.
    let daemon = g.app(CONTOSO, APP_ADMIN_DAEMON).await;
    let (status, body) = g.patch(&daemon, &path, json!({"accountEnabled": false})).await;
    assert_eq!(status, 204, "{body}");
    let (_, sp) = g.get(&admin, &path).await;
    assert_eq!(sp["accountEnabled"], false);
    let (_, body) = g.get(&admin, "/v1.0/servicePrincipals?$filter=accountEnabled eq false").await;
    assert_eq!(names(body["value"].as_array().unwrap()), ["Expenses API"]);

    // The scope without a directory role; an app without the permission; no scope.
    let alice = g.alice(MANAGER_APP).await;
    let (status, body) = g.patch(&alice, &path, json!({"accountEnabled": true})).await;
    assert_eq!(status, 403, "{body}");
    assert_graph_error(&body, "Authorization_RequestDenied");
    let reader = g.app(CONTOSO, DIRECTORY_DAEMON).await;
    let (status, body) = g.patch(&reader, &path, json!({"accountEnabled": true})).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Application.ReadWrite.All"), "{body}");
    let (_, sp) = g.get(&admin, &path).await;
    assert_eq!(sp["accountEnabled"], false, "refused changes leave no trace");

    // Bad bodies, other tenants.
    let (status, body) = g.patch(&admin, &path, json!({"accountEnabled": "yes"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = g.patch(&admin, &path, json!({"displayName": "Renamed"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = g.send(g.c.patch(g.server.url(&path)).bearer_auth(&admin).body("not json")).await;
    assert_eq!(status, 400, "{body}");
    assert_graph_error(&body, "UnableToDeserializePostBody");
    let fabrikam = g.app(FABRIKAM, FABRIKAM_DAEMON).await;
    let (status, body) = g.patch(&fabrikam, &path, json!({"accountEnabled": true})).await;
    assert_eq!(status, 403, "{body}"); // no Application.ReadWrite.All at all
    let (status, _) = g
        .patch(&admin, "/v1.0/servicePrincipals/00000000-0000-4000-8000-000000000000", json!({"accountEnabled": true}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn oauth2_permission_grants() {
    let g = Graph::start();
    let admin = g.admin(MANAGER_APP).await;
    let expenses = sp_id(&g, &admin, EXPENSES_API).await;
    let profile_sp = sp_id(&g, &admin, PROFILE_APP).await;
    let reader_sp = sp_id(&g, &admin, READER_APP).await;

    // The fixture's admin consent for the Directory Reader, found by Graph's usual filter.
    let (status, body) = g
        .get(
            &admin,
            &format!(
                "/v1.0/oauth2PermissionGrants?$filter=clientId eq '{reader_sp}' and consentType eq 'AllPrincipals'"
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["@odata.context"].as_str().unwrap().ends_with("$metadata#oauth2PermissionGrants"), "{body}");
    let grants = body["value"].as_array().unwrap();
    assert_eq!(grants.len(), 1, "{body}");
    assert_eq!(grants[0]["scope"], "User.Read User.ReadBasic.All Group.Read.All");
    let (_, body) = g.get(&admin, "/v1.0/oauth2PermissionGrants?$filter=scope eq 'User.Read'").await;
    assert_eq!(body["value"].as_array().unwrap().len(), 1, "{body}"); // Profile Only
    assert_eq!(grants[0]["principalId"], Value::Null);

    // Create (admin consent for Profile Only to the Expenses API), read, update, delete.
    let new = json!({"clientId": profile_sp, "consentType": "AllPrincipals", "resourceId": expenses, "scope": "Expenses.Read"});
    let (status, created) =
        g.send(g.c.post(g.server.url("/v1.0/oauth2PermissionGrants")).bearer_auth(&admin).json(&new)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["clientId"], profile_sp.as_str());
    assert_eq!(created["resourceId"], expenses.as_str());
    assert_eq!(created["scope"], "Expenses.Read");
    assert!(created["@odata.context"].as_str().unwrap().ends_with("#oauth2PermissionGrants/$entity"), "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("/v1.0/oauth2PermissionGrants/{id}");
    let (status, got) = g.get(&admin, &path).await;
    assert_eq!((status, &got["scope"]), (200, &json!("Expenses.Read")), "{got}");
    // A second grant for the same client, resource and principal is refused.
    let (status, body) =
        g.send(g.c.post(g.server.url("/v1.0/oauth2PermissionGrants")).bearer_auth(&admin).json(&new)).await;
    assert_eq!(status, 400, "{body}");
    // An unknown scope is refused by the service layer.
    let (status, body) = g.patch(&admin, &path, json!({"scope": "Expenses.Delete"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Expenses.Delete"), "{body}");

    // An app-only caller with the application permission may change it too.
    let daemon = g.app(CONTOSO, APP_ADMIN_DAEMON).await;
    let (status, body) = g.patch(&daemon, &path, json!({"scope": "expenses.read"})).await;
    assert_eq!(status, 204, "{body}");

    // Refusals: the scope without a role, a token without the scope, another tenant.
    let alice = g.alice(MANAGER_APP).await;
    let (status, body) = g.patch(&alice, &path, json!({"scope": "Expenses.Read"})).await;
    assert_eq!(status, 403, "{body}");
    assert_graph_error(&body, "Authorization_RequestDenied");
    let reader = g.alice(READER_APP).await;
    let (status, body) = g.send(g.c.delete(g.server.url(&path)).bearer_auth(&reader)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("DelegatedPermissionGrant.ReadWrite.All"), "{body}");
    let (status, body) = g.get(&reader, "/v1.0/oauth2PermissionGrants").await;
    assert_eq!(status, 403, "{body}"); // no Directory.Read.All
    let fabrikam = g.app(FABRIKAM, FABRIKAM_DAEMON).await;
    let (status, body) = g.get(&fabrikam, &path).await;
    assert_eq!(status, 404, "{body}");
    assert_graph_error(&body, "Request_ResourceNotFound");
    let (_, body) = g.get(&fabrikam, "/v1.0/oauth2PermissionGrants").await;
    assert!(body["value"].as_array().unwrap().iter().all(|v| v["id"] != id.as_str()), "{body}");

    // Bad OData and bad bodies.
    for bad in [
        "/v1.0/oauth2PermissionGrants?$filter=clientId eq",
        "/v1.0/oauth2PermissionGrants?$orderby=scope",
        "/v1.0/oauth2PermissionGrants?$top=1000",
    ] {
        let (status, body) = g.get(&admin, bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_graph_error(&body, "BadRequest");
    }
    for bad in [
        json!({"clientId": profile_sp, "consentType": "Principal", "resourceId": expenses, "scope": "Expenses.Read"}),
        json!({"clientId": "x", "consentType": "AllPrincipals", "resourceId": expenses, "scope": "Expenses.Read"}),
        json!({"clientId": profile_sp, "consentType": "AllPrincipals", "resourceId": expenses}),
        json!({"clientId": profile_sp, "consentType": "AllPrincipals", "resourceId": expenses, "scope": "Expenses.Read", "color": "red"}),
    ] {
        let (status, body) =
            g.send(g.c.post(g.server.url("/v1.0/oauth2PermissionGrants")).bearer_auth(&admin).json(&bad)).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // Paging over the tenant's grants, then delete.
    let (all, _) = g.all_pages(&admin, "/v1.0/oauth2PermissionGrants").await;
    let (paged, sizes) = g.all_pages(&admin, "/v1.0/oauth2PermissionGrants?$top=1").await;
    assert_eq!(paged, all);
    assert!(sizes.len() >= 3 && sizes.iter().all(|s| *s == 1), "{sizes:?}");
    let (status, body) = g.send(g.c.delete(g.server.url(&path)).bearer_auth(&admin)).await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = g.get(&admin, &path).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn app_role_assignments() {
    let g = Graph::start();
    let admin = g.admin(MANAGER_APP).await;
    let expenses = sp_id(&g, &admin, EXPENSES_API).await;
    let (_, sp) = g.get(&admin, &format!("/v1.0/servicePrincipals/{expenses}")).await;
    let approver = sp["appRoles"][0]["id"].as_str().unwrap().to_string();
    let sales = g.group_id(&g.app(CONTOSO, DIRECTORY_DAEMON).await, "Sales").await;
    let assigned_to = format!("/v1.0/servicePrincipals/{expenses}/appRoleAssignedTo");
    let post = |token: &str, body: Value| g.send(g.c.post(g.server.url(&assigned_to)).bearer_auth(token).json(&body));

    // A Global Administrator assigns Alice as approver; a daemon assigns the Sales group.
    let (status, a) = post(&admin, json!({"principalId": ALICE, "resourceId": expenses, "appRoleId": approver})).await;
    assert_eq!(status, 201, "{a}");
    assert_eq!(a["principalType"], "User");
    assert_eq!(a["principalDisplayName"], "Alice Adams");
    assert_eq!(a["resourceDisplayName"], "Expenses API");
    assert_eq!(a["appRoleId"], approver.as_str());
    let alice_assignment = a["id"].as_str().unwrap().to_string();
    let daemon = g.app(CONTOSO, APP_ADMIN_DAEMON).await;
    let (status, a) = post(
        &daemon,
        json!({"principalId": sales, "resourceId": expenses, "appRoleId": "00000000-0000-0000-0000-000000000000"}),
    )
    .await;
    assert_eq!(status, 201, "{a}");
    assert_eq!(a["principalType"], "Group");
    let group_assignment = a["id"].clone();
    let (status, again) = post(&admin, json!({"principalId": sales, "resourceId": expenses})).await;
    assert_eq!((status, &again["id"]), (201, &group_assignment), "assigning again returns the assignment");

    let (status, body) = g.get(&admin, &assigned_to).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with(&format!("#servicePrincipals('{expenses}')/appRoleAssignedTo")),
        "{body}"
    );
    let principals: Vec<_> =
        body["value"].as_array().unwrap().iter().map(|a| a["principalDisplayName"].clone()).collect();
    assert_eq!(principals, [json!("Alice Adams"), json!("Sales")]);
    let (_, body) = g.get(&admin, &format!("{assigned_to}?$filter=principalType eq 'Group'&$select=principalId")).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["value"][0]["principalId"], sales.as_str());
    let (values, sizes) = g.all_pages(&admin, &format!("{assigned_to}?$top=1")).await;
    assert_eq!((values.len(), sizes), (2, vec![1, 1]));

    // appRoleAssignments: the application permissions a service principal holds.
    let daemon_sp = sp_id(&g, &admin, DIRECTORY_DAEMON.0).await;
    let (status, body) = g.get(&admin, &format!("/v1.0/servicePrincipals/{daemon_sp}/appRoleAssignments")).await;
    assert_eq!(status, 200, "{body}");
    let held = body["value"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{body}");
    assert_eq!(held[0]["appRoleId"], "7ab1d382-f21e-4acd-a863-ba3e13f7da61");
    assert_eq!(held[0]["resourceDisplayName"], "Microsoft Graph");
    assert_eq!(held[0]["principalType"], "ServicePrincipal");

    // Refusals: the scope without a role, a token without the scope, another tenant.
    let alice = g.alice(MANAGER_APP).await;
    let (status, body) = post(&alice, json!({"principalId": BOB, "resourceId": expenses})).await;
    assert_eq!(status, 403, "{body}");
    assert_graph_error(&body, "Authorization_RequestDenied");
    let reader = g.app(CONTOSO, DIRECTORY_DAEMON).await;
    let (status, body) = post(&reader, json!({"principalId": BOB, "resourceId": expenses})).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("AppRoleAssignment.ReadWrite.All"), "{body}");
    let profile = g.alice(PROFILE_APP).await;
    let (status, _) = g.get(&profile, &assigned_to).await;
    assert_eq!(status, 403);
    let fabrikam = g.app(FABRIKAM, FABRIKAM_DAEMON).await;
    let (status, body) = g.get(&fabrikam, &assigned_to).await;
    assert_eq!(status, 404, "{body}");
    assert_graph_error(&body, "Request_ResourceNotFound");

    // Bad OData, bad bodies.
    let (status, body) = g.get(&admin, &format!("{assigned_to}?$filter=principalType eq")).await;
    assert_eq!(status, 400, "{body}");
    assert_graph_error(&body, "BadRequest");
    for bad in [
        json!({"principalId": BOB, "resourceId": sales}),
        json!({"principalId": "bob", "resourceId": expenses}),
        json!({"principalId": BOB, "resourceId": expenses, "appRoleId": "cccccccc-0000-4000-8000-0000000000ff"}),
        json!({"principalId": "dddddddd-0000-4000-8000-0000000000f1", "resourceId": expenses}),
    ] {
        let (status, body) = post(&admin, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // Delete.
    let (status, body) =
        g.send(g.c.delete(g.server.url(&format!("{assigned_to}/{alice_assignment}"))).bearer_auth(&alice)).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) =
        g.send(g.c.delete(g.server.url(&format!("{assigned_to}/{alice_assignment}"))).bearer_auth(&admin)).await;
    assert_eq!(status, 204, "{body}");
    let (status, _) =
        g.send(g.c.delete(g.server.url(&format!("{assigned_to}/{alice_assignment}"))).bearer_auth(&admin)).await;
    assert_eq!(status, 404);
    let (_, body) = g.get(&admin, &assigned_to).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 1, "{body}");
}

#[tokio::test]
async fn authorization_policy_user_consent() {
    let g = Graph::start();
    let admin = g.admin(MANAGER_APP).await;
    let path = "/v1.0/policies/authorizationPolicy";
    let assigned = |body: &Value| body["defaultUserRolePermissions"]["permissionGrantPoliciesAssigned"].clone();

    let (status, body) = g.get(&admin, path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], "authorizationPolicy");
    assert!(body["@odata.context"].as_str().unwrap().ends_with("#policies/authorizationPolicy/$entity"), "{body}");
    assert_eq!(assigned(&body), json!([]), "the fixture has user consent off");

    let low = "ManagePermissionGrantsForSelf.microsoft-user-default-low";
    let legacy = "ManagePermissionGrantsForSelf.microsoft-user-default-legacy";
    let set = |list: Value| json!({"defaultUserRolePermissions": {"permissionGrantPoliciesAssigned": list}});
    let (status, body) = g.patch(&admin, path, set(json!([low.to_lowercase()]))).await;
    assert_eq!(status, 204, "{body}");
    let (_, body) = g.get(&admin, path).await;
    assert_eq!(assigned(&body), json!([low]));
    let daemon = g.app(CONTOSO, APP_ADMIN_DAEMON).await;
    let (status, body) = g.get(&daemon, &format!("{path}?$select=defaultUserRolePermissions")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(assigned(&body), json!([low]));
    assert!(body.get("displayName").is_none());
    let (status, _) = g
        .patch(
            &admin,
            path,
            set(json!([
                legacy,
                "ManagePermissionGrantsForOwnedResource.microsoft-dynamically-managed-permissions-for-team"
            ])),
        )
        .await;
    assert_eq!(status, 204);
    let (_, body) = g.get(&admin, path).await;
    assert_eq!(assigned(&body), json!([legacy]));

    // Another tenant's policy is its own.
    let fabrikam = g.app(FABRIKAM, FABRIKAM_DAEMON).await;
    let (status, body) = g.get(&fabrikam, path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(assigned(&body), json!([]));

    // Refusals: no role, no permission (delegated and app-only).
    let alice = g.alice(MANAGER_APP).await;
    let (status, body) = g.patch(&alice, path, set(json!([]))).await;
    assert_eq!(status, 403, "{body}");
    assert_graph_error(&body, "Authorization_RequestDenied");
    let reader = g.alice(READER_APP).await;
    let (status, body) = g.get(&reader, path).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Policy.Read.All"), "{body}");
    let (status, body) = g.patch(&daemon, path, set(json!([]))).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Policy.ReadWrite.Authorization"), "{body}");
    let (_, body) = g.get(&admin, path).await;
    assert_eq!(assigned(&body), json!([legacy]), "refused changes leave no trace");

    // Bad OData and bodies.
    for bad in [format!("{path}?$select=nope"), format!("{path}?$filter=id eq 'x'"), format!("{path}?$expand=x")] {
        let (status, body) = g.get(&admin, &bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_graph_error(&body, "BadRequest");
    }
    for bad in [
        set(json!(["ManagePermissionGrantsForSelf.custom"])),
        set(json!("ManagePermissionGrantsForSelf.microsoft-user-default-low")),
        json!({"allowInvitesFrom": "none"}),
        json!({"defaultUserRolePermissions": {"allowedToCreateApps": false}}),
    ] {
        let (status, body) = g.patch(&admin, path, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // An app with the application permission Policy.ReadWrite.Authorization (no role involved).
    let policy_daemon = g.app(CONTOSO, POLICY_DAEMON).await;
    let (status, body) = g.patch(&policy_daemon, path, set(json!([low]))).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = g.get(&policy_daemon, path).await;
    assert_eq!((status, assigned(&body)), (200, json!([low])), "{body}");

    // Back to none.
    let (status, _) = g.patch(&admin, path, set(json!([]))).await;
    assert_eq!(status, 204);
    let (_, body) = g.get(&admin, path).await;
    assert_eq!(assigned(&body), json!([]));
}
