//! The Graph-compatible consent-management API over real HTTPS against a real `accord` process:
//! the admin-consent request policy, appConsentRequests and userConsentRequests (OData, paging,
//! filterByCurrentUser), the Accord extensions approve/deny/block, and delegated permission
//! classifications — with permission refusals and tenant isolation. Requests are filed the way
//! users file them, through the sign-in pages. The world is tests/fixtures/consent_api_world.toml.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use support::graph_api::GraphApi;
use support::*;

const FABRIKAM: &str = "eeeeeeee-0000-4000-8000-000000000001";
const CONTOSO: &str = "eeeeeeee-0000-4000-8000-000000000002";
const ADMIN_ID: &str = "eeeeeeee-0000-4000-8000-0000000000a1";
const RITA_ID: &str = "eeeeeeee-0000-4000-8000-0000000000a3";
const MEETINGS: &str = "ffffffff-0000-4000-8000-000000000101";
const PLANNER: &str = "ffffffff-0000-4000-8000-000000000102";
const SYNC: &str = "ffffffff-0000-4000-8000-000000000103";
const CONSOLE: &str = "ffffffff-0000-4000-8000-000000000001";
const READ_ONLY_CONSOLE: &str = "ffffffff-0000-4000-8000-000000000002";
const PROFILE_ONLY: &str = "ffffffff-0000-4000-8000-000000000003";
const CONSENT_DAEMON: (&str, &str) = ("ffffffff-0000-4000-8000-000000000011", "consent-secret-1");
const USER_DAEMON: (&str, &str) = ("ffffffff-0000-4000-8000-000000000012", "user-secret-1");
const CONTOSO_CONSOLE: &str = "ffffffff-0000-4000-8000-000000000021";
const GRAPH_APP: &str = "00000003-0000-0000-c000-000000000000";
const REQUESTS: &str = "/v1.0/identityGovernance/appConsent/appConsentRequests";
const POLICY: &str = "/v1.0/policies/adminConsentRequestPolicy";

type Graph = GraphApi;

impl Graph {
    fn start() -> Graph {
        GraphApi::with_world("consent_api_world.toml")
    }

    /// A delegated Graph token by ROPC through a public client; the password is `{name}-password-1`.
    async fn user(&self, tenant: &str, app: &str, upn: &str) -> String {
        let password = format!("{}-password-1", upn.split('@').next().unwrap());
        self.ropc_token(tenant, app, upn, &password).await
    }

    async fn fabrikam(&self, app: &str, name: &str) -> String {
        self.user(FABRIKAM, app, &format!("{name}@fabrikam.test")).await
    }

    async fn contoso_admin(&self) -> String {
        self.user(CONTOSO, CONTOSO_CONSOLE, "admin@contoso.test").await
    }

    /// An app-only Graph token by client credentials.
    async fn app(&self, credentials: (&str, &str)) -> String {
        self.app_token(FABRIKAM, credentials).await
    }

    fn authorize(&self, app: &str, scope: &str) -> String {
        let mut url = reqwest::Url::parse(&self.server.url("/fabrikam.test/oauth2/v2.0/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", app)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", "https://vendor.example/cb")
            .append_pair("scope", scope)
            .append_pair("state", "st");
        url.to_string()
    }

    /// Files an admin consent request for `app` as a Fabrikam user, through the pages; returns
    /// the user's browser (signed in).
    async fn file_request(&self, app: &str, scope: &str, name: &str) -> reqwest::Client {
        let c = self.server.client();
        let url = self.authorize(app, scope);
        let password = format!("{name}-password-1");
        let page = match sign_in(&c, &self.server, &url, &format!("{name}@fabrikam.test"), &password).await {
            Ok(loc) => panic!("expected the approval page, got a redirect to {loc}"),
            Err((status, page)) => {
                assert_eq!(status, 200, "{page}");
                page
            }
        };
        assert!(page.contains("Approval required"), "{page}");
        let res = submit(&c, &self.server, &page, &[("reason", &format!("{name} needs {app}"))]).await;
        assert_eq!(res.status().as_u16(), 200);
        assert!(res.text().await.unwrap().contains("Request sent"));
        c
    }

    /// Meeting Insights by Frank and Grace, Board Planner by Henry, Calendar Sync by Frank.
    async fn file_all(&self) {
        self.file_request(MEETINGS, "openid profile User.Read Calendars.Read", "frank").await;
        self.file_request(MEETINGS, "openid profile User.Read Calendars.Read", "grace").await;
        self.file_request(PLANNER, "openid User.Read", "henry").await;
        self.file_request(SYNC, "openid Calendars.Read", "frank").await;
    }

    async fn service_principal(&self, token: &str, app_id: &str) -> Value {
        let (status, body) = self.get(token, &format!("/v1.0/servicePrincipals?$filter=appId eq '{app_id}'")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["value"].as_array().unwrap().len(), 1, "{body}");
        body["value"][0].clone()
    }
}

fn assert_graph_error(status: u16, body: &Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    let inner = &body["error"]["innerError"];
    assert!(inner["date"].is_string() && inner["request-id"].is_string() && inner["client-request-id"].is_string());
}

fn message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or_default().to_string()
}

fn ids(values: &[Value], key: &str) -> BTreeSet<String> {
    values.iter().map(|v| v[key].as_str().unwrap().to_string()).collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn request_policy_read_update_refusals_and_isolation() {
    let g = Graph::start();
    let admin = g.fabrikam(CONSOLE, "admin").await;

    let (status, body) = g.get(&admin, POLICY).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("/v1.0/$metadata#policies/adminConsentRequestPolicy/$entity"));
    assert_eq!(body["isEnabled"], true);
    assert_eq!(body["notifyReviewers"], true);
    assert_eq!(body["remindersEnabled"], true);
    assert_eq!(body["requestDurationInDays"], 7);
    assert_eq!(body["version"], 0);
    let reviewers = body["reviewers"].as_array().unwrap();
    assert_eq!(reviewers.len(), 3, "{body}");
    assert_eq!(
        reviewers[0],
        json!({"query": format!("/users/{ADMIN_ID}"), "queryType": "MicrosoftGraph", "queryRoot": null})
    );
    let group_query = reviewers[2]["query"].as_str().unwrap().to_string();
    assert!(group_query.starts_with("/groups/") && group_query.ends_with("/transitiveMembers/microsoft.graph.user"));

    let (status, body) = g.get(&admin, &format!("{POLICY}?$select=isEnabled,version")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys(&body), ["@odata.context", "isEnabled", "version"].iter().map(|s| s.to_string()).collect());
    let (status, body) = g.get(&admin, &format!("{POLICY}?$select=nonsense")).await;
    assert_graph_error(status, &body, 400, "BadRequest");

    // An update: the reviewers become Rita and the group; the duration 14 days.
    let (status, body) = g
        .patch(
            &admin,
            POLICY,
            json!({"requestDurationInDays": 14, "reviewers": [
                {"query": format!("/users/{RITA_ID}"), "queryType": "MicrosoftGraph", "queryRoot": null},
                {"query": group_query, "queryType": "MicrosoftGraph"}]}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (_, body) = g.get(&admin, POLICY).await;
    assert_eq!(body["requestDurationInDays"], 14);
    assert_eq!(body["version"], 1);
    assert_eq!(body["reviewers"][0]["query"], format!("/users/{RITA_ID}"));
    assert_eq!(body["reviewers"].as_array().unwrap().len(), 2);

    // Invalid values: the service layer's range, unknown reviewers, Graph's shapes.
    let (status, body) = g.patch(&admin, POLICY, json!({"requestDurationInDays": 45})).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest");
    assert!(message(&body).contains("requestDurationInDays"), "{body}");
    let stranger = "eeeeeeee-0000-4000-8000-00000000ffff";
    let (status, body) = g
        .patch(
            &admin,
            POLICY,
            json!({"reviewers": [{"query": format!("/users/{stranger}"), "queryType": "MicrosoftGraph"}]}),
        )
        .await;
    assert_graph_error(status, &body, 400, "Request_BadRequest");
    assert!(message(&body).contains("reviewers"), "{body}");
    let (status, body) = g.patch(&admin, POLICY, json!({"isEnabled": "yes"})).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest");
    assert!(message(&body).contains("isEnabled"), "{body}");
    let (status, body) =
        g.patch(&admin, POLICY, json!({"reviewers": [{"query": "/roles/x", "queryType": "MicrosoftGraph"}]})).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest");
    let (status, body) = g.patch(&admin, POLICY, json!({"color": "blue"})).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest");
    assert!(message(&body).contains("color"), "{body}");
    let (_, body) = g.get(&admin, POLICY).await;
    assert_eq!(body["version"], 1, "refused updates change nothing");

    // Refusals: the scope missing, the directory role missing.
    let profile = g.fabrikam(PROFILE_ONLY, "admin").await;
    let (status, body) = g.get(&profile, POLICY).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");
    assert!(message(&body).contains("Policy.Read.All"), "{body}");
    let read_only = g.fabrikam(READ_ONLY_CONSOLE, "admin").await;
    let (status, body) = g.patch(&read_only, POLICY, json!({"isEnabled": false})).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");
    assert!(message(&body).contains("Policy.ReadWrite.ConsentRequest"), "{body}");
    let nora = g.fabrikam(CONSOLE, "nora").await;
    let (status, body) = g.get(&nora, POLICY).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");
    let appadmin = g.fabrikam(CONSOLE, "appadmin").await;
    let (status, body) = g.get(&appadmin, POLICY).await;
    assert_eq!(status, 200, "a directory reader may read: {body}");
    let (status, body) = g.patch(&appadmin, POLICY, json!({"isEnabled": false})).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");

    // App-only: the application permission decides.
    let daemon = g.app(CONSENT_DAEMON).await;
    let (status, body) = g.get(&daemon, POLICY).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = g.patch(&daemon, POLICY, json!({"notifyReviewers": false, "remindersEnabled": false})).await;
    assert_eq!(status, 204, "{body}");
    let (_, body) = g.get(&daemon, POLICY).await;
    assert_eq!((body["notifyReviewers"].clone(), body["version"].clone()), (json!(false), json!(2)));
    let (status, body) = g.patch(&daemon, POLICY, json!({"remindersEnabled": true})).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest");
    let users_only = g.app(USER_DAEMON).await;
    let (status, body) = g.get(&users_only, POLICY).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");

    // Another tenant sees its own policy only.
    let contoso = g.contoso_admin().await;
    let (status, body) = g.get(&contoso, POLICY).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reviewers"].as_array().unwrap().len(), 1);
    assert!(!body.to_string().contains(RITA_ID) && !body.to_string().contains(ADMIN_ID), "{body}");

    let (status, body) = g.get(&admin, &format!("{POLICY}/extra")).await;
    assert_graph_error(status, &body, 400, "BadRequest");
    assert_eq!(message(&body), "Resource not found for the segment 'extra'.");
    let (status, body) = g.send(g.c.delete(g.url(POLICY)).bearer_auth(&admin)).await;
    assert_eq!(status, 405, "{body}");
}

#[tokio::test]
async fn app_consent_requests_odata_paging_reviewer_filter_and_isolation() {
    let g = Graph::start();
    g.file_all().await;
    let admin = g.fabrikam(CONSOLE, "admin").await;

    let (status, body) = g.get(&admin, REQUESTS).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("/v1.0/$metadata#identityGovernance/appConsent/appConsentRequests"));
    let apps = body["value"].as_array().unwrap();
    assert_eq!(ids(apps, "appId"), [MEETINGS, PLANNER, SYNC].iter().map(|s| s.to_string()).collect());
    let meetings = apps.iter().find(|a| a["appId"] == MEETINGS).unwrap();
    assert_eq!(
        keys(meetings),
        ["appDisplayName", "appId", "id", "pendingScopes"].iter().map(|s| s.to_string()).collect()
    );
    assert_eq!(meetings["appDisplayName"], "Meeting Insights");
    let scopes: BTreeSet<String> = meetings["pendingScopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["displayName"].as_str().unwrap().to_string())
        .collect();
    assert!(scopes.contains("User.Read") && scopes.contains("Calendars.Read"), "{meetings}");

    // $filter: eq, ne, or, and, startswith, and the lambda over the user requests.
    for (filter, want) in [
        ("appDisplayName eq 'Board Planner'", vec![PLANNER]),
        ("appDisplayName ne 'Board Planner'", vec![MEETINGS, SYNC]),
        ("appDisplayName eq 'Board Planner' or appId eq 'ffffffff-0000-4000-8000-000000000103'", vec![PLANNER, SYNC]),
        ("startswith(appDisplayName,'Meeting') and appId eq 'ffffffff-0000-4000-8000-000000000101'", vec![MEETINGS]),
        ("userConsentRequests/any(u:u/status eq 'InProgress')", vec![MEETINGS, PLANNER, SYNC]),
        ("userConsentRequests/any(u:u/status eq 'Completed')", vec![]),
    ] {
        let (status, body) = g.get(&admin, &format!("{REQUESTS}?$filter={filter}")).await;
        assert_eq!(status, 200, "{filter}: {body}");
        let got = ids(body["value"].as_array().unwrap(), "appId");
        assert_eq!(got, want.iter().map(|s| s.to_string()).collect(), "{filter}");
    }
    let (status, body) =
        g.get(&admin, &format!("{REQUESTS}?$select=appDisplayName&$filter=appId eq '{PLANNER}'")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys(&body["value"][0]), ["appDisplayName", "id"].iter().map(|s| s.to_string()).collect());
    assert!(body["@odata.context"].as_str().unwrap().ends_with("appConsentRequests(appDisplayName)"), "{body}");

    // Bad OData is Graph's 400.
    for bad in [
        "$filter=colour eq 'red'",
        "$filter=appDisplayName eq",
        "$top=0",
        "$orderby=pendingScopes",
        "$expand=userConsentRequests",
        "$select=nope",
    ] {
        let (status, body) = g.get(&admin, &format!("{REQUESTS}?{bad}")).await;
        assert_graph_error(status, &body, 400, "BadRequest");
    }

    // Paging: $top=1 walks the three apps.
    let (values, sizes) = g.all_pages(&admin, &format!("{REQUESTS}?$top=1")).await;
    assert_eq!(sizes, vec![1, 1, 1]);
    assert_eq!(ids(&values, "id").len(), 3);

    // One app, its user requests, one user request.
    let (status, body) = g.get(&admin, &format!("{REQUESTS}/{MEETINGS}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["appId"], MEETINGS);
    assert!(body["@odata.context"].as_str().unwrap().ends_with("appConsentRequests/$entity"));
    let (status, body) = g.get(&admin, &format!("{REQUESTS}/{MEETINGS}/userConsentRequests")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with(&format!("appConsentRequests('{MEETINGS}')/userConsentRequests")));
    let users = body["value"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    let upns: BTreeSet<String> =
        users.iter().map(|u| u["createdBy"]["user"]["userPrincipalName"].as_str().unwrap().to_string()).collect();
    assert_eq!(upns, ["frank@fabrikam.test", "grace@fabrikam.test"].iter().map(|s| s.to_string()).collect());
    for u in users {
        assert_eq!(u["status"], "InProgress");
        assert_eq!(u["approvalId"], u["id"]);
        assert!(u["reason"].as_str().unwrap().ends_with(MEETINGS), "{u}");
        assert!(u["createdDateTime"].as_str().unwrap().ends_with('Z'));
        assert!(u["completedDateTime"].is_null() && u["customData"].is_null());
        assert!(u["createdBy"]["user"]["id"].is_string() && u["createdBy"]["user"]["displayName"].is_string());
    }
    let frank_request = users.iter().find(|u| u["createdBy"]["user"]["displayName"] == "Frank Fisher").unwrap();
    let frank_id = frank_request["id"].as_str().unwrap();
    let (status, body) = g.get(&admin, &format!("{REQUESTS}/{MEETINGS}/userConsentRequests/{frank_id}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reason"], frank_request["reason"]);
    let (status, body) = g
        .get(&admin, &format!("{REQUESTS}/{MEETINGS}/userConsentRequests?$filter=status eq 'InProgress' and startswith(createdBy/user/userPrincipalName,'gr')"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    assert_eq!(body["value"][0]["createdBy"]["user"]["displayName"], "Grace Green");
    let (values, sizes) =
        g.all_pages(&admin, &format!("{REQUESTS}/{MEETINGS}/userConsentRequests?$top=1&$select=status")).await;
    assert_eq!(sizes, vec![1, 1]);
    assert_eq!(keys(&values[0]), ["id", "status"].iter().map(|s| s.to_string()).collect());
    let (status, body) = g.get(&admin, &format!("{REQUESTS}/{MEETINGS}/userConsentRequests?$filter=status eq 1")).await;
    assert_graph_error(status, &body, 400, "BadRequest");
    let (status, body) = g.get(&admin, &format!("{REQUESTS}/{MEETINGS}/userConsentRequests/{PLANNER}")).await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound");
    let (status, body) = g.get(&admin, &format!("{REQUESTS}/{GRAPH_APP}")).await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound");
    let (status, body) = g.get(&admin, &format!("{REQUESTS}/not-an-id")).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest");
    let (status, body) = g.get(&admin, &format!("{REQUESTS}/{MEETINGS}/approvals")).await;
    assert_graph_error(status, &body, 400, "BadRequest");
    assert_eq!(message(&body), "Resource not found for the segment 'approvals'.");

    // filterByCurrentUser(on='reviewer'): reviewers see the requests, others none.
    let rita = g.fabrikam(CONSOLE, "rita").await;
    for path in [
        format!("{REQUESTS}/filterByCurrentUser(on='reviewer')"),
        format!("{REQUESTS}/filterByCurrentUser(on=%27reviewer%27)?$filter=userConsentRequests/any(u:u/status eq 'InProgress')"),
    ] {
        let (status, body) = g.get(&rita, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["value"].as_array().unwrap().len(), 3, "{body}");
        assert!(body["@odata.context"].as_str().unwrap().ends_with("$metadata#Collection(appConsentRequest)"));
    }
    let (status, body) =
        g.get(&rita, &format!("{REQUESTS}/{SYNC}/userConsentRequests/filterByCurrentUser(on='reviewer')")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    let nora = g.fabrikam(CONSOLE, "nora").await;
    let (status, body) = g.get(&nora, &format!("{REQUESTS}/filterByCurrentUser(on='reviewer')")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], json!([]), "Nora reviews nothing");
    let (status, body) = g.get(&rita, &format!("{REQUESTS}/filterByCurrentUser(on='owner')")).await;
    assert_graph_error(status, &body, 400, "BadRequest");

    // Refusals: the scope missing; neither a reviewer nor a directory role; app roles.
    let profile = g.fabrikam(PROFILE_ONLY, "admin").await;
    let (status, body) = g.get(&profile, REQUESTS).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");
    assert!(message(&body).contains("ConsentRequest.Read.All"), "{body}");
    let (status, body) = g.get(&nora, REQUESTS).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");
    let read_only = g.fabrikam(READ_ONLY_CONSOLE, "rita").await;
    let (status, body) = g.get(&read_only, REQUESTS).await;
    assert_eq!(status, 200, "ConsentRequest.Read.All reads: {body}");
    let daemon = g.app(CONSENT_DAEMON).await;
    let (status, body) = g.get(&daemon, REQUESTS).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 3);
    let (status, body) = g.get(&daemon, &format!("{REQUESTS}/filterByCurrentUser(on='reviewer')")).await;
    assert_graph_error(status, &body, 400, "BadRequest");
    let users_only = g.app(USER_DAEMON).await;
    let (status, body) = g.get(&users_only, REQUESTS).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");

    // Another tenant's administrator sees none of Fabrikam's requests.
    let contoso = g.contoso_admin().await;
    let (status, body) = g.get(&contoso, REQUESTS).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], json!([]));
    for path in [
        format!("{REQUESTS}/{MEETINGS}"),
        format!("{REQUESTS}/{MEETINGS}/userConsentRequests"),
        format!("{REQUESTS}/{MEETINGS}/userConsentRequests/{frank_id}"),
    ] {
        let (status, body) = g.get(&contoso, &path).await;
        assert_graph_error(status, &body, 404, "Request_ResourceNotFound");
    }
}

#[tokio::test]
async fn accord_extensions_approve_deny_and_block_change_state() {
    let g = Graph::start();
    let frank = g.file_request(MEETINGS, "openid profile User.Read Calendars.Read", "frank").await;
    g.file_request(MEETINGS, "openid profile User.Read Calendars.Read", "grace").await;
    let henry = g.file_request(PLANNER, "openid User.Read", "henry").await;
    g.file_request(SYNC, "openid Calendars.Read", "grace").await;
    let admin = g.fabrikam(CONSOLE, "admin").await;
    let rita = g.fabrikam(CONSOLE, "rita").await;
    let approve = format!("{REQUESTS}/{MEETINGS}/accord.approve");

    // Refusals: the scope missing, app-only, a reviewer without a granting role, another tenant.
    let read_only = g.fabrikam(READ_ONLY_CONSOLE, "admin").await;
    let (status, body) = g.post(&read_only, &approve, json!({})).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");
    assert!(message(&body).contains("ConsentRequest.ReadWrite.All"), "{body}");
    let daemon = g.app(CONSENT_DAEMON).await;
    let (status, body) = g.post(&daemon, &approve, json!({})).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");
    assert!(message(&body).contains("delegated"), "{body}");
    let (status, body) = g.post(&rita, &approve, json!({})).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");
    let contoso = g.contoso_admin().await;
    let (status, body) = g.post(&contoso, &approve, json!({})).await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound");
    let nora = g.fabrikam(CONSOLE, "nora").await;
    let (status, body) =
        g.post(&nora, &format!("{REQUESTS}/{PLANNER}/accord.deny"), json!({"justification": "no"})).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");
    let (status, body) = g.post(&admin, &approve, json!({"justification": "approve takes none"})).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest");
    let (status, body) = g.get(&admin, &approve).await;
    assert_eq!(status, 405, "{body}");
    let (_, body) = g.get(&admin, &format!("{REQUESTS}/{MEETINGS}/userConsentRequests")).await;
    assert!(body["value"].as_array().unwrap().iter().all(|u| u["status"] == "InProgress"), "refusals change nothing");

    // Approve: both requests complete, the organisation grant exists, Frank gets in.
    let (status, body) = g.send(g.c.post(g.url(&approve)).bearer_auth(&admin)).await;
    assert_eq!(status, 204, "{body}");
    let (_, body) = g.get(&admin, &format!("{REQUESTS}/{MEETINGS}/userConsentRequests")).await;
    for u in body["value"].as_array().unwrap() {
        assert_eq!(u["status"], "Completed", "{u}");
        assert!(u["completedDateTime"].is_string(), "{u}");
    }
    let (_, body) = g.get(&admin, &format!("{REQUESTS}/{MEETINGS}")).await;
    assert_eq!(body["pendingScopes"], json!([]));
    let sp = g.service_principal(&admin, MEETINGS).await;
    let (status, body) = g
        .get(&admin, &format!("/v1.0/oauth2PermissionGrants?$filter=clientId eq '{}'", sp["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{body}");
    let grants = body["value"].as_array().unwrap();
    assert_eq!(grants.len(), 1, "{body}");
    assert_eq!(grants[0]["consentType"], "AllPrincipals");
    let scope = grants[0]["scope"].as_str().unwrap();
    assert!(scope.contains("User.Read") && scope.contains("Calendars.Read"), "{scope}");
    let loc = sign_in(
        &frank,
        &g.server,
        &g.authorize(MEETINGS, "openid profile User.Read Calendars.Read"),
        "frank@fabrikam.test",
        "frank-password-1",
    )
    .await
    .expect("approved: a code");
    assert!(query_param(&loc, "code").is_some(), "{loc}");
    let (status, body) = g.post(&admin, &approve, json!({})).await;
    assert_graph_error(status, &body, 409, "Conflict");

    // The approval of a pending request: not reviewed yet, and Rita's to decide.
    let (_, body) = g.get(&admin, &format!("{REQUESTS}/{PLANNER}/userConsentRequests")).await;
    let henrys = body["value"][0]["id"].as_str().unwrap().to_string();
    let approval = format!("{REQUESTS}/{PLANNER}/userConsentRequests/{henrys}/approval");
    let (status, body) = g.get(&rita, &approval).await;
    assert_eq!(status, 200, "{body}");
    let stage = &body["stages"][0];
    assert_eq!(
        (&stage["reviewResult"], &stage["status"], &stage["assignedToMe"]),
        (&json!("NotReviewed"), &json!("InProgress"), &json!(true)),
        "{body}"
    );
    assert!(stage["reviewedBy"].is_null() && stage["reviewedDateTime"].is_null(), "{body}");
    assert!(body["@odata.context"].as_str().unwrap().ends_with("/approval/$entity"), "{body}");

    // Deny needs a justification (a string); then Henry's request completes and he may ask again.
    let deny = format!("{REQUESTS}/{PLANNER}/accord.deny");
    let (status, body) = g.post(&rita, &deny, json!({})).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest");
    assert!(message(&body).contains("justification"), "{body}");
    let (status, body) = g.post(&rita, &deny, json!({"justification": 42})).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest");
    assert!(message(&body).contains("justification"), "{body}");
    let (status, body) = g.post(&rita, &deny, json!({"justification": "Not an approved vendor"})).await;
    assert_eq!(status, 204, "{body}");
    let (_, body) = g.get(&admin, &format!("{REQUESTS}/{PLANNER}/userConsentRequests")).await;
    assert_eq!(body["value"][0]["status"], "Completed");
    let (_, body) =
        g.get(&admin, &format!("{REQUESTS}?$filter=userConsentRequests/any(u:u/status eq 'InProgress')")).await;
    assert_eq!(ids(body["value"].as_array().unwrap(), "appId"), [SYNC.to_string()].into_iter().collect());
    let page = henry.get(g.authorize(PLANNER, "openid User.Read")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Request approval") && !page.contains("waiting for"), "{page}");
    let (status, body) = g.post(&rita, &deny, json!({"justification": "again"})).await;
    assert_graph_error(status, &body, 409, "Conflict");
    // The approval now says who denied it, when and why; an app with ConsentRequest.Read.All
    // reads it too (nothing is assigned to an app).
    let (status, body) = g.get(&daemon, &approval).await;
    assert_eq!(status, 200, "{body}");
    let stage = &body["stages"][0];
    assert_eq!(
        (&stage["reviewResult"], &stage["status"], &stage["assignedToMe"]),
        (&json!("Denied"), &json!("Completed"), &json!(false)),
        "{body}"
    );
    assert_eq!(stage["justification"], "Not an approved vendor");
    assert!(stage["reviewedBy"]["displayName"].as_str().unwrap().starts_with("Rita"), "{body}");
    assert!(stage["reviewedDateTime"].is_string(), "{body}");
    let (_, body) = g.get(&admin, &format!("{REQUESTS}/{MEETINGS}/userConsentRequests")).await;
    let approved =
        format!("{REQUESTS}/{MEETINGS}/userConsentRequests/{}/approval", body["value"][0]["id"].as_str().unwrap());
    let (_, body) = g.get(&admin, &approved).await;
    assert_eq!(body["stages"][0]["reviewResult"], "Approved", "{body}");
    let (status, body) = g
        .get(&admin, &format!("{REQUESTS}/{PLANNER}/userConsentRequests/filterByCurrentUser(on='reviewer')/approval"))
        .await;
    assert_graph_error(status, &body, 400, "BadRequest");
    let (status, body) = g.get(&admin, &format!("{REQUESTS}/{PLANNER}/userConsentRequests/{SYNC}/approval")).await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound");

    // Block: the app is disabled in Fabrikam, so users are refused and cannot ask again.
    let block = format!("{REQUESTS}/{SYNC}/accord.block");
    let (status, body) = g.post(&rita, &block, json!({"justification": "  "})).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest");
    let (status, body) = g.post(&rita, &block, json!({"justification": "Blocked by policy"})).await;
    assert_eq!(status, 204, "{body}");
    let sp = g.service_principal(&admin, SYNC).await;
    assert_eq!(sp["accountEnabled"], false, "{sp}");
    let (_, body) = g.get(&admin, &format!("{REQUESTS}/{SYNC}/userConsentRequests")).await;
    assert_eq!(body["value"][0]["status"], "Completed");
    // Henry (signed in) is refused the blocked app and no new request can be filed.
    let res = henry.get(g.authorize(SYNC, "openid Calendars.Read")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert!(res.text().await.unwrap().contains("AADSTS7000112"));
    let (_, body) = g.get(&admin, &format!("{REQUESTS}/{SYNC}/userConsentRequests")).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 1, "no new request: {body}");
    let (status, body) = g.post(&admin, &format!("{REQUESTS}/{SYNC}/accord.approve"), json!({})).await;
    assert_graph_error(status, &body, 409, "Conflict");
}

#[tokio::test]
async fn delegated_permission_classifications() {
    let g = Graph::start();
    let admin = g.fabrikam(CONSOLE, "admin").await;
    let graph_sp = g.service_principal(&admin, GRAPH_APP).await;
    let sp_id = graph_sp["id"].as_str().unwrap().to_string();
    let scope_id = |value: &str| {
        graph_sp["oauth2PermissionScopes"].as_array().unwrap().iter().find(|s| s["value"] == value).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let path = format!("/v1.0/servicePrincipals/{sp_id}/delegatedPermissionClassifications");

    let (status, body) = g.get(&admin, &path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], json!([]));
    assert!(body["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with(&format!("$metadata#servicePrincipals('{sp_id}')/delegatedPermissionClassifications")));

    let (status, body) = g.post(&admin, &path, json!({"permissionName": "User.Read", "classification": "low"})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["permissionName"], "User.Read");
    assert_eq!(body["permissionId"], scope_id("User.Read"));
    assert_eq!(body["classification"], "low");
    assert!(body["@odata.context"].as_str().unwrap().ends_with("delegatedPermissionClassifications/$entity"));
    let user_read = body["id"].as_str().unwrap().to_string();
    let (status, body) =
        g.post(&admin, &path, json!({"permissionId": scope_id("Calendars.Read"), "classification": "low"})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["permissionName"], "Calendars.Read");

    // Invalid bodies, each naming its field; admin-only permissions cannot be low impact.
    for (bad, field) in [
        (json!({"permissionName": "Directory.Read.All", "classification": "low"}), "permissionName"),
        (json!({"permissionName": "Nope.Read", "classification": "low"}), "permissionName"),
        (json!({"permissionName": "User.Read", "classification": "medium"}), "classification"),
        (json!({"permissionName": "User.Read"}), "classification"),
        (json!({"classification": "low"}), "permissionId"),
        (json!({"permissionId": "x", "classification": "low"}), "permissionId"),
        (
            json!({"permissionId": scope_id("User.Read"), "permissionName": "Calendars.Read", "classification": "low"}),
            "permissionName",
        ),
        (json!({"permissionName": "User.Read", "classification": "low", "extra": 1}), "extra"),
    ] {
        let (status, body) = g.post(&admin, &path, bad.clone()).await;
        assert_graph_error(status, &body, 400, "Request_BadRequest");
        assert!(message(&body).contains(field), "{bad}: {body}");
    }

    // Reads: OData and paging.
    let (values, sizes) = g.all_pages(&admin, &format!("{path}?$top=1")).await;
    assert_eq!(sizes, vec![1, 1]);
    assert_eq!(ids(&values, "permissionName"), ["Calendars.Read", "User.Read"].iter().map(|s| s.to_string()).collect());
    let (status, body) =
        g.get(&admin, &format!("{path}?$filter=permissionName eq 'User.Read'&$select=permissionId")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    assert_eq!(keys(&body["value"][0]), ["id", "permissionId"].iter().map(|s| s.to_string()).collect());
    let (status, body) = g.get(&admin, &format!("{path}?$filter=startswith(permissionName)")).await;
    assert_graph_error(status, &body, 400, "BadRequest");

    // Refusals: the scope missing (reads stay allowed), the role missing, app roles.
    let read_only = g.fabrikam(READ_ONLY_CONSOLE, "admin").await;
    let (status, body) = g.get(&read_only, &path).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = g.post(&read_only, &path, json!({"permissionName": "email", "classification": "low"})).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");
    assert!(message(&body).contains("Policy.ReadWrite.PermissionGrant"), "{body}");
    let rita = g.fabrikam(CONSOLE, "rita").await;
    let (status, body) = g.post(&rita, &path, json!({"permissionName": "email", "classification": "low"})).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");
    let (status, body) = g.delete(&rita, &format!("{path}/{user_read}")).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");
    let profile = g.fabrikam(PROFILE_ONLY, "admin").await;
    let (status, body) = g.get(&profile, &path).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");
    let daemon = g.app(CONSENT_DAEMON).await;
    let (status, body) = g.post(&daemon, &path, json!({"permissionName": "email", "classification": "low"})).await;
    assert_eq!(status, 201, "{body}");
    let users_only = g.app(USER_DAEMON).await;
    let (status, body) = g.get(&users_only, &path).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");

    // Another tenant: Fabrikam's service principal does not exist there.
    let contoso = g.contoso_admin().await;
    let (status, body) = g.get(&contoso, &path).await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound");
    let (status, body) = g.delete(&contoso, &format!("{path}/{user_read}")).await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound");

    // Delete: gone from the list; a second delete is a 404.
    let (status, body) = g.delete(&admin, &format!("{path}/{user_read}")).await;
    assert_eq!(status, 204, "{body}");
    let (_, body) = g.get(&admin, &path).await;
    assert_eq!(
        ids(body["value"].as_array().unwrap(), "permissionName"),
        ["Calendars.Read", "email"].iter().map(|s| s.to_string()).collect()
    );
    let (status, body) = g.delete(&admin, &format!("{path}/{user_read}")).await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound");
    let (status, body) = g.get(&admin, "/v1.0/servicePrincipals/not-a-guid/delegatedPermissionClassifications").await;
    assert_graph_error(status, &body, 400, "Request_BadRequest");
    let (status, body) = g.get(&admin, &format!("{path}/{user_read}/more")).await;
    assert_graph_error(status, &body, 400, "BadRequest");
    assert_eq!(message(&body), "Resource not found for the segment 'more'.");
}
