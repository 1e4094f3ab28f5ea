//! The Graph-compatible directory writes over real HTTPS against a real `accord` process:
//! app registrations (`applications`), directory roles and their members, and user and group
//! writes, each with its permission and role checks, tenant isolation, bad input and OData.
//! Writes are verified by reading back. The world is tests/fixtures/directory_writes_world.toml.

mod support;

use serde_json::{json, Value};
use support::graph_api::{ropc_form, GraphApi};

const CONTOSO: &str = "eeeeeeee-0000-4000-8000-000000000001";
const FABRIKAM: &str = "eeeeeeee-0000-4000-8000-000000000002";
const ALICE: &str = "eeeeeeee-0000-4000-8000-0000000000a1";
const BOB: &str = "eeeeeeee-0000-4000-8000-0000000000b1";
const ADMIN: &str = "eeeeeeee-0000-4000-8000-0000000000e1";
const PRA: &str = "eeeeeeee-0000-4000-8000-0000000000e2";
const ADMIN_CONSOLE: &str = "eeeeeeee-1111-4000-8000-000000000001";
const READER_CONSOLE: &str = "eeeeeeee-1111-4000-8000-000000000002";
const PROFILE_CONSOLE: &str = "eeeeeeee-1111-4000-8000-000000000005";
const WRITES_DAEMON: (&str, &str) = ("eeeeeeee-1111-4000-8000-000000000003", "writes-secret-1");
const READ_DAEMON: (&str, &str) = ("eeeeeeee-1111-4000-8000-000000000004", "read-secret-1");
const USERS_DAEMON: (&str, &str) = ("eeeeeeee-1111-4000-8000-000000000006", "users-secret-1");
const PASSWORD_DAEMON: (&str, &str) = ("eeeeeeee-1111-4000-8000-000000000007", "password-secret-1");
const FABRIKAM_WRITER: (&str, &str) = ("ffffffff-0000-4000-8000-000000000002", "fabrikam-writer-1");
const EXPENSES_API: &str = "eeeeeeee-1111-4000-8000-000000000010";
const FABRIKAM_PORTAL: &str = "ffffffff-0000-4000-8000-000000000001";
const GRAPH: &str = "00000003-0000-0000-c000-000000000000";
const GLOBAL_ADMIN_TEMPLATE: &str = "62e90394-69f5-4237-9190-012177145e10";
const APP_ADMIN_TEMPLATE: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
const USER_READ_ID: &str = "e1fe6dd8-ba31-4d61-89e7-88639da4683d";
const USER_READ_ALL_ROLE_ID: &str = "df021288-bdef-4463-88db-98f22de89214";

type Graph = GraphApi;

impl Graph {
    fn start() -> Graph {
        GraphApi::with_world("directory_writes_world.toml")
    }

    /// A delegated Graph token of a Contoso user by ROPC through a public client.
    async fn user(&self, app: &str, upn: &str, password: &str) -> String {
        self.token(CONTOSO, &ropc_form(app, upn, password)).await
    }

    async fn admin(&self) -> String {
        self.user(ADMIN_CONSOLE, "admin@contoso.test", "admin-password-1").await
    }

    async fn alice(&self) -> String {
        self.user(ADMIN_CONSOLE, "alice@contoso.test", "alice-password-1").await
    }

    /// An app-only Graph token by client credentials.
    async fn app(&self, tenant: &str, credentials: (&str, &str)) -> String {
        self.app_token(tenant, credentials).await
    }

    /// The object id of one of Contoso's applications, by app id.
    async fn app_object_id(&self, token: &str, app_id: &str) -> String {
        let (status, body) = self.get(token, &format!("/v1.0/applications?$filter=appId eq '{app_id}'")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["value"].as_array().unwrap().len(), 1, "{body}");
        body["value"][0]["id"].as_str().unwrap().to_string()
    }

    async fn group_id(&self, token: &str, name: &str) -> String {
        let (status, body) = self.get(token, &format!("/v1.0/groups?$filter=displayName eq '{name}'")).await;
        assert_eq!(status, 200, "{body}");
        body["value"][0]["id"].as_str().unwrap_or_else(|| panic!("no group {name}: {body}")).to_string()
    }

    /// The display names of a role's members (by template id).
    async fn role_members(&self, token: &str, template: &str) -> Vec<String> {
        let (status, body) =
            self.get(token, &format!("/v1.0/directoryRoles(roleTemplateId='{template}')/members")).await;
        assert_eq!(status, 200, "{body}");
        names(body["value"].as_array().unwrap())
    }
}

fn names(values: &[Value]) -> Vec<String> {
    values.iter().map(|v| v["displayName"].as_str().unwrap().to_string()).collect()
}

fn assert_graph_error(status: u16, body: &Value, want_status: u16, code: &str, mentions: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(mentions), "'{mentions}' not in: {body}");
    let inner = &body["error"]["innerError"];
    assert!(inner["date"].is_string() && inner["request-id"].is_string() && inner["client-request-id"].is_string());
}

fn directory_object(id: &str) -> Value {
    json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}") })
}

// ------------------------------------------------------------------------------ applications

#[tokio::test]
async fn applications_list_get_filter_select_paging() {
    let g = Graph::start();
    let reader = g.user(READER_CONSOLE, "alice@contoso.test", "alice-password-1").await;
    for token in [reader.clone(), g.app(CONTOSO, READ_DAEMON).await] {
        let (status, body) = g.get(&token, "/v1.0/applications").await;
        assert_eq!(status, 200, "{body}");
        assert!(body["@odata.context"].as_str().unwrap().ends_with("/v1.0/$metadata#applications"), "{body}");
        let all = body["value"].as_array().unwrap();
        // Contoso's own registrations only: Fabrikam's multi-tenant app is not one of them.
        assert_eq!(
            names(all),
            [
                "Admin Console",
                "Expenses API",
                "Password Daemon",
                "Profile Console",
                "Read Daemon",
                "Reader Console",
                "Users Daemon",
                "Writes Daemon"
            ]
        );
        assert!(!body.to_string().contains(FABRIKAM_PORTAL));
    }
    let (_, body) = g.get(&reader, &format!("/v1.0/applications?$filter=appId eq '{EXPENSES_API}'")).await;
    let api = &body["value"][0];
    assert_eq!(api["appId"], EXPENSES_API);
    assert_eq!(api["displayName"], "Expenses API");
    assert_eq!(api["signInAudience"], "AzureADMyOrg");
    assert_eq!(api["identifierUris"], json!(["api://expenses"]));
    assert_eq!(api["web"]["redirectUris"], json!(["https://expenses.example/cb"]));
    assert_eq!(api["publicClient"]["redirectUris"], json!([]));
    assert_eq!(api["isFallbackPublicClient"], false);
    assert_eq!(api["publisherDomain"], "contoso.test");
    assert_eq!(api["api"]["oauth2PermissionScopes"][0]["value"], "Expenses.Read");
    assert_eq!(api["api"]["oauth2PermissionScopes"][0]["type"], "User");
    assert_eq!(api["appRoles"][0]["value"], "Expenses.Approve.All");
    assert_eq!(api["appRoles"][0]["allowedMemberTypes"], json!(["Application"]));
    assert_eq!(api["passwordCredentials"], json!([]));
    // Created by the world without a service principal at home: no creation time to show.
    assert!(api["createdDateTime"].is_null(), "{api}");

    // A public client's URIs are publicClient's; requiredResourceAccess carries Graph's ids.
    let (_, body) = g.get(&reader, &format!("/v1.0/applications?$filter=appId eq '{ADMIN_CONSOLE}'")).await;
    let console = &body["value"][0];
    assert_eq!(console["isFallbackPublicClient"], true);
    assert_eq!(console["publicClient"]["redirectUris"], json!(["http://localhost:5001/cb"]));
    assert_eq!(console["web"]["redirectUris"], json!([]));
    let rra = &console["requiredResourceAccess"][0];
    assert_eq!(rra["resourceAppId"], GRAPH);
    assert!(rra["resourceAccess"].as_array().unwrap().contains(&json!({"id": USER_READ_ID, "type": "Scope"})), "{rra}");

    // A daemon's secrets show without their text.
    let (_, body) = g.get(&reader, &format!("/v1.0/applications?$filter=appId eq '{}'", WRITES_DAEMON.0)).await;
    let creds = body["value"][0]["passwordCredentials"].as_array().unwrap();
    assert_eq!(creds.len(), 1, "{body}");
    assert!(creds[0]["secretText"].is_null() && creds[0]["keyId"].is_string(), "{body}");
    assert!(!body.to_string().contains("writes-secret-1"));

    let (_, body) =
        g.get(&reader, "/v1.0/applications?$filter=startswith(displayName,'read')&$select=displayName,appId").await;
    assert!(body["@odata.context"].as_str().unwrap().ends_with("#applications(displayName,appId)"), "{body}");
    assert_eq!(names(body["value"].as_array().unwrap()), ["Read Daemon", "Reader Console"]);
    let first = body["value"][0].as_object().unwrap();
    let mut keys: Vec<_> = first.keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["appId", "displayName", "id"]);

    let (values, sizes) = g.all_pages(&reader, "/v1.0/applications?$top=2").await;
    assert_eq!(sizes, [2, 2, 2, 2]);
    assert_eq!(
        names(&values),
        [
            "Admin Console",
            "Expenses API",
            "Password Daemon",
            "Profile Console",
            "Read Daemon",
            "Reader Console",
            "Users Daemon",
            "Writes Daemon"
        ]
    );

    // One application, by object id and by appId.
    let id = g.app_object_id(&reader, EXPENSES_API).await;
    let (status, body) = g.get(&reader, &format!("/v1.0/applications/{id}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["@odata.context"].as_str().unwrap().ends_with("#applications/$entity"), "{body}");
    assert_eq!(body["appId"], EXPENSES_API);
    let (status, body) =
        g.get(&reader, &format!("/v1.0/applications(appId='{EXPENSES_API}')?$select=displayName")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["displayName"], "Expenses API");
    assert!(body.get("appId").is_none());

    // Fabrikam's app is not an application here, by either key.
    let (status, body) = g.get(&reader, &format!("/v1.0/applications(appId='{FABRIKAM_PORTAL}')")).await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound", FABRIKAM_PORTAL);
}

#[tokio::test]
async fn applications_permissions_tenants_and_bad_requests() {
    let g = Graph::start();
    let admin = g.admin().await;
    let id = g.app_object_id(&admin, EXPENSES_API).await;

    // No Application.* permission in the token.
    let no_scope = g.user(READER_CONSOLE, "admin@contoso.test", "admin-password-1").await;
    let (status, body) = g.patch(&no_scope, &format!("/v1.0/applications/{id}"), json!({"displayName": "X"})).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied", "Application.ReadWrite.All");
    let (status, body) = g.post(&no_scope, "/v1.0/applications", json!({"displayName": "X"})).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied", "Application.ReadWrite.All");
    let read_daemon = g.app(CONTOSO, READ_DAEMON).await;
    let (status, body) = g.post(&read_daemon, &format!("/v1.0/applications/{id}/addPassword"), json!({})).await;
    assert_graph_error(
        status,
        &body,
        403,
        "Authorization_RequestDenied",
        "application permission Application.ReadWrite.All",
    );
    let reader = g.user(READER_CONSOLE, "bob@contoso.test", "bob-password-1").await;
    let (status, _) = g.get(&reader, "/v1.0/applications").await;
    assert_eq!(status, 200, "Application.Read.All is enough to read");
    let profile = g.user(PROFILE_CONSOLE, "admin@contoso.test", "admin-password-1").await;
    for path in ["/v1.0/applications".to_string(), format!("/v1.0/applications(appId='{EXPENSES_API}')")] {
        let (status, body) = g.get(&profile, &path).await;
        assert_graph_error(status, &body, 403, "Authorization_RequestDenied", "Application.Read.All");
    }

    // The permission without a role: Alice is no administrator.
    let alice = g.alice().await;
    let (status, body) = g.patch(&alice, &format!("/v1.0/applications/{id}"), json!({"displayName": "X"})).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied", "changing app registrations");
    let (status, body) = g.post(&alice, "/v1.0/applications", json!({"displayName": "Alice's app"})).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied", "app registrations");
    let (_, body) = g.get(&admin, "/v1.0/applications?$filter=displayName eq 'Alice''s app'").await;
    assert_eq!(body["value"], json!([]), "a refused create creates nothing");

    // Fabrikam's writer sees none of Contoso's registrations and changes none.
    let fabrikam = g.app(FABRIKAM, FABRIKAM_WRITER).await;
    let (_, body) = g.get(&fabrikam, "/v1.0/applications").await;
    assert_eq!(names(body["value"].as_array().unwrap()), ["Fabrikam Portal", "Fabrikam Writer"]);
    let (status, body) = g.get(&fabrikam, &format!("/v1.0/applications/{id}")).await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound", &id);
    let (status, _) = g.patch(&fabrikam, &format!("/v1.0/applications/{id}"), json!({"displayName": "Pwned"})).await;
    assert_eq!(status, 404);
    let (status, _) = g.post(&fabrikam, &format!("/v1.0/applications/{id}/addPassword"), json!({})).await;
    assert_eq!(status, 404);
    let (status, _) = g
        .patch(&fabrikam, &format!("/v1.0/applications(appId='{EXPENSES_API}')"), json!({"displayName": "Pwned"}))
        .await;
    assert_eq!(status, 404);
    let (_, body) = g.get(&admin, &format!("/v1.0/applications/{id}")).await;
    assert_eq!(body["displayName"], "Expenses API");
    assert_eq!(body["passwordCredentials"], json!([]));

    // Bad input names the property; bad OData and bad ids are 400.
    for (patch, mentions) in [
        (json!({"displayName": 5}), "displayName"),
        (json!({"displayName": ""}), "displayName"),
        (json!({"signInAudience": "PersonalMicrosoftAccount"}), "signInAudience"),
        (json!({"web": {"redirectUris": ["ftp://x.example/cb"]}}), "web.redirectUris"),
        (json!({"web": {"redirectUris": "https://x.example/cb"}}), "web.redirectUris"),
        (json!({"publicClient": {"redirectUris": ["http://localhost/cb"]}}), "publicClient.redirectUris"),
        (json!({"spa": {"redirectUris": ["http://x.example/"]}}), "spa.redirectUris"),
        (json!({"spa": {"redirectUris": ["https://x.example/#top"]}}), "spa.redirectUris"),
        (json!({"groupMembershipClaims": "Everything"}), "groupMembershipClaims"),
        (json!({"optionalClaims": {"idToken": [{"name": "ssn"}]}}), "optionalClaims"),
        (json!({"optionalClaims": {"saml2Token": [{"name": "upn"}]}}), "optionalClaims.saml2Token"),
        (json!({"optionalClaims": {"saml2Token": "upn"}}), "optionalClaims.saml2Token"),
        (json!({"identifierUris": ["api://other"]}), "identifierUris"),
        (json!({"isFallbackPublicClient": "yes"}), "isFallbackPublicClient"),
        (
            json!({"requiredResourceAccess": [{"resourceAppId": GRAPH, "resourceAccess": [{"id": USER_READ_ID, "type": "Role"}]}]}),
            "requiredResourceAccess",
        ),
        (
            json!({"requiredResourceAccess": [{"resourceAppId": "not-a-guid", "resourceAccess": []}]}),
            "requiredResourceAccess.resourceAppId",
        ),
        (
            json!({"requiredResourceAccess": [{"resourceAppId": "12345678-0000-4000-8000-000000000999", "resourceAccess": []}]}),
            "requiredResourceAccess",
        ),
        (
            json!({"requiredResourceAccess": [{"resourceAppId": GRAPH, "resourceAccess": [{"id": USER_READ_ID, "type": "Delegated"}]}]}),
            "requiredResourceAccess.resourceAccess.type",
        ),
    ] {
        let (status, body) = g.patch(&admin, &format!("/v1.0/applications/{id}"), patch.clone()).await;
        assert_graph_error(status, &body, 400, "Request_BadRequest", mentions);
    }
    // Single-page-app redirect URIs: written and read back; one platform per URI.
    let spa = json!({"spa": {"redirectUris": ["http://localhost:5173/", "https://expenses.example/spa"]}});
    let (status, body) = g.patch(&admin, &format!("/v1.0/applications/{id}"), spa).await;
    assert_eq!(status, 204, "{body}");
    let (_, body) = g.get(&admin, &format!("/v1.0/applications/{id}")).await;
    assert_eq!(body["spa"]["redirectUris"], json!(["http://localhost:5173/", "https://expenses.example/spa"]));
    let both = json!({"spa": {"redirectUris": ["https://expenses.example/cb"]}});
    let (status, body) = g.patch(&admin, &format!("/v1.0/applications/{id}"), both).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest", "spa.redirectUris");
    let (status, _) = g.patch(&admin, &format!("/v1.0/applications/{id}"), json!({"spa": {"redirectUris": []}})).await;
    assert_eq!(status, 204);
    // Token configuration: groups and optional claims, read back as Graph shows them.
    let claims = json!({"groupMembershipClaims": "securitygroup", "optionalClaims": {"idToken": [{"name": "upn"}], "accessToken": [{"name": "email", "essential": false}]}});
    assert_eq!(g.patch(&admin, &format!("/v1.0/applications/{id}"), claims).await.0, 204);
    let (_, body) =
        g.get(&admin, &format!("/v1.0/applications/{id}?$select=groupMembershipClaims,optionalClaims")).await;
    assert_eq!(body["groupMembershipClaims"], "SecurityGroup");
    assert_eq!(body["optionalClaims"]["idToken"][0]["name"], "upn");
    assert_eq!(body["optionalClaims"]["accessToken"][0]["name"], "email");
    // The API's settings: v1 tokens, a pre-authorized client for one of its scopes.
    let (_, body) = g.get(&admin, &format!("/v1.0/applications/{id}")).await;
    let scope_id = body["api"]["oauth2PermissionScopes"][0]["id"].as_str().unwrap().to_string();
    let client = "eeeeeeee-1111-4000-8000-000000000001";
    let api = json!({"api": {"requestedAccessTokenVersion": 1, "preAuthorizedApplications": [{"appId": client, "delegatedPermissionIds": [scope_id]}]}});
    assert_eq!(g.patch(&admin, &format!("/v1.0/applications/{id}"), api).await.0, 204);
    let (_, body) = g.get(&admin, &format!("/v1.0/applications/{id}")).await;
    assert_eq!(body["api"]["requestedAccessTokenVersion"], 1);
    assert_eq!(
        body["api"]["preAuthorizedApplications"],
        json!([{"appId": client, "delegatedPermissionIds": [scope_id]}])
    );
    let unknown = json!({"api": {"preAuthorizedApplications": [{"appId": client, "delegatedPermissionIds": ["00000000-0000-0000-0000-000000000001"]}]}});
    let (status, body) = g.patch(&admin, &format!("/v1.0/applications/{id}"), unknown).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest", "delegatedPermissionIds");
    let known = json!({"api": {"knownClientApplications": [client]}});
    assert_eq!(g.patch(&admin, &format!("/v1.0/applications/{id}"), known).await.0, 204);
    let (_, body) = g.get(&admin, &format!("/v1.0/applications/{id}")).await;
    assert_eq!(body["api"]["knownClientApplications"], json!([client]));
    let bad_known = json!({"api": {"knownClientApplications": ["x"]}});
    let (status, body) = g.patch(&admin, &format!("/v1.0/applications/{id}"), bad_known).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest", "api.knownClientApplications");
    let mapped = json!({"api": {"acceptMappedClaims": true}});
    let (status, body) = g.patch(&admin, &format!("/v1.0/applications/{id}"), mapped).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest", "api.acceptMappedClaims");
    let back = json!({"api": {"requestedAccessTokenVersion": 2, "preAuthorizedApplications": [], "knownClientApplications": []}});
    assert_eq!(g.patch(&admin, &format!("/v1.0/applications/{id}"), back).await.0, 204);
    let reset = json!({"groupMembershipClaims": null, "optionalClaims": null});
    assert_eq!(g.patch(&admin, &format!("/v1.0/applications/{id}"), reset).await.0, 204);
    let (_, body) = g.get(&admin, &format!("/v1.0/applications/{id}")).await;
    assert!(body["groupMembershipClaims"].is_null() && body["optionalClaims"].is_null(), "{body}");
    let (status, body) =
        g.send(g.c.patch(g.url(&format!("/v1.0/applications/{id}"))).bearer_auth(&admin).body("{nope")).await;
    assert_graph_error(status, &body, 400, "UnableToDeserializePostBody", "JSON");
    let (status, body) = g.post(&admin, "/v1.0/applications", json!({"signInAudience": "AzureADMyOrg"})).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest", "displayName");
    let (status, body) = g.get(&admin, "/v1.0/applications?$filter=appId eq").await;
    assert_graph_error(status, &body, 400, "BadRequest", "");
    let (status, body) = g.get(&admin, "/v1.0/applications?$select=secretText").await;
    assert_graph_error(status, &body, 400, "BadRequest", "secretText");
    let (status, body) = g.get(&admin, "/v1.0/applications?$top=0").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = g.get(&admin, "/v1.0/applications/not-a-guid").await;
    assert_graph_error(status, &body, 400, "Request_BadRequest", "not-a-guid");
    let (status, body) = g.get(&admin, "/v1.0/applications(appId='nope')").await;
    assert_graph_error(status, &body, 400, "Request_BadRequest", "appId");
    // A 405 names the methods that are served (RFC 9110), by object id and by appId alike.
    for path in [format!("/v1.0/applications/{id}"), format!("/v1.0/applications(appId='{EXPENSES_API}')")] {
        let res = g.c.put(g.server.url(&path)).bearer_auth(&admin).json(&json!({})).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 405, "{path}");
        assert_eq!(res.headers()["allow"], "GET, HEAD, PATCH, DELETE", "{path}");
    }
    let members =
        format!("/v1.0/directoryRoles(roleTemplateId='62e90394-69f5-4237-9190-012177145e10')/members/{id}/$ref");
    let res = g.c.get(g.server.url(&members)).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 405, "{members}");
    assert_eq!(res.headers()["allow"], "DELETE", "{members}");
}

/// `DELETE /applications/{id}` (and by appId): the registration goes with its enterprise
/// application, so its secret no longer gets a token; other tenants and readers cannot delete.
#[tokio::test]
async fn applications_delete_with_their_enterprise_apps() {
    let g = Graph::start();
    let admin = g.admin().await;
    let (status, created) = g
        .post(
            &admin,
            "/v1.0/applications",
            json!({"displayName": "Short-lived", "signInAudience": "AzureADMultipleOrgs",
                   "web": {"redirectUris": ["https://short.example/cb"]}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let (id, app_id) = (created["id"].as_str().unwrap().to_string(), created["appId"].as_str().unwrap().to_string());
    let (_, cred) = g.post(&admin, &format!("/v1.0/applications/{id}/addPassword"), json!({})).await;
    let secret = cred["secretText"].as_str().unwrap().to_string();
    let credentials = [
        ("grant_type", "client_credentials"),
        ("client_id", app_id.as_str()),
        ("client_secret", secret.as_str()),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let (status, body) = g.try_token(CONTOSO, &credentials).await;
    assert_eq!(status, 200, "{body}");
    let (_, sps) = g.get(&admin, &format!("/v1.0/servicePrincipals?$filter=appId eq '{app_id}'")).await;
    assert_eq!(sps["value"].as_array().unwrap().len(), 1, "{sps}");

    // Refused: no write permission in the token; another tenant's writer does not see it.
    let reader = g.user(READER_CONSOLE, "admin@contoso.test", "admin-password-1").await;
    let (status, body) = g.delete(&reader, &format!("/v1.0/applications/{id}")).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied", "Application.ReadWrite.All");
    let fabrikam = g.app(FABRIKAM, FABRIKAM_WRITER).await;
    let (status, body) = g.delete(&fabrikam, &format!("/v1.0/applications(appId='{app_id}')")).await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound", &app_id);

    let (status, body) = g.delete(&admin, &format!("/v1.0/applications(appId='{app_id}')")).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = g.get(&admin, &format!("/v1.0/applications/{id}")).await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound", &id);
    let (_, sps) = g.get(&admin, &format!("/v1.0/servicePrincipals?$filter=appId eq '{app_id}'")).await;
    assert_eq!(sps["value"], json!([]), "its enterprise application went with it");
    let (status, body) = g.try_token(CONTOSO, &credentials).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")), "{body}");
    assert_eq!(body["error_codes"], json!([700016]), "{body}");
    let (status, body) = g.delete(&admin, &format!("/v1.0/applications/{id}")).await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound", &id);
}

#[tokio::test]
async fn applications_create_update_and_passwords() {
    let g = Graph::start();
    for (token, who) in [
        (g.admin().await, "delegated"),
        (g.user(ADMIN_CONSOLE, "appadmin@contoso.test", "appadmin-password-1").await, "app admin"),
        (g.app(CONTOSO, WRITES_DAEMON).await, "app-only"),
    ] {
        let name = format!("Created by {who}");
        let (status, created) = g
            .post(
                &token,
                "/v1.0/applications",
                json!({
                    "displayName": name,
                    "signInAudience": "AzureADMultipleOrgs",
                    "web": {"redirectUris": ["https://created.example/cb"]},
                    "requiredResourceAccess": [{"resourceAppId": GRAPH, "resourceAccess": [
                        {"id": USER_READ_ID, "type": "Scope"}, {"id": USER_READ_ALL_ROLE_ID, "type": "Role"}]}],
                }),
            )
            .await;
        assert_eq!(status, 201, "{who}: {created}");
        assert!(created["@odata.context"].as_str().unwrap().ends_with("#applications/$entity"), "{created}");
        assert_eq!(created["displayName"], name.as_str());
        assert_eq!(created["signInAudience"], "AzureADMultipleOrgs");
        assert_eq!(created["publisherDomain"], "contoso.test");
        assert!(created["createdDateTime"].as_str().is_some_and(|d| d.ends_with('Z')), "{created}");
        assert_eq!(created["web"]["redirectUris"], json!(["https://created.example/cb"]));
        let id = created["id"].as_str().unwrap().to_string();
        let app_id = created["appId"].as_str().unwrap().to_string();
        assert_ne!(id, app_id);

        // Read back, then change each writable property.
        let (_, back) = g.get(&token, &format!("/v1.0/applications(appId='{app_id}')")).await;
        assert_eq!(back["id"], id.as_str());
        assert_eq!(
            back["requiredResourceAccess"],
            json!([{"resourceAppId": GRAPH, "resourceAccess": [
                {"id": USER_READ_ID, "type": "Scope"}, {"id": USER_READ_ALL_ROLE_ID, "type": "Role"}]}])
        );
        // Its service principal exists in the home tenant.
        let (_, sps) = g.get(&token, &format!("/v1.0/servicePrincipals?$filter=appId eq '{app_id}'")).await;
        assert_eq!(sps["value"].as_array().map(Vec::len), Some(1), "{sps}");

        let (status, body) = g
            .patch(
                &token,
                &format!("/v1.0/applications/{id}"),
                json!({
                    "displayName": format!("{name} (renamed)"),
                    "signInAudience": "AzureADMyOrg",
                    "isFallbackPublicClient": true,
                    "publicClient": {"redirectUris": ["http://localhost:7000/cb"]},
                    "web": {"redirectUris": []},
                    "requiredResourceAccess": [{"resourceAppId": EXPENSES_API, "resourceAccess": [
                        {"id": g_scope_id(&g, &token).await, "type": "Scope"}]}],
                }),
            )
            .await;
        assert_eq!(status, 204, "{who}: {body}");
        let (_, back) = g.get(&token, &format!("/v1.0/applications/{id}")).await;
        assert_eq!(back["displayName"], format!("{name} (renamed)"));
        assert_eq!(back["signInAudience"], "AzureADMyOrg");
        assert_eq!(back["isFallbackPublicClient"], true);
        assert_eq!(back["publicClient"]["redirectUris"], json!(["http://localhost:7000/cb"]));
        assert_eq!(back["web"]["redirectUris"], json!([]));
        assert_eq!(back["requiredResourceAccess"][0]["resourceAppId"], EXPENSES_API);

        // Passwords: the text once, never again; it works at the token endpoint; removal.
        let (status, cred) = g
            .post(
                &token,
                &format!("/v1.0/applications/{id}/addPassword"),
                json!({"passwordCredential": {"displayName": "ci"}}),
            )
            .await;
        assert_eq!(status, 200, "{cred}");
        assert!(cred["@odata.context"].as_str().unwrap().ends_with("#microsoft.graph.passwordCredential"), "{cred}");
        let secret = cred["secretText"].as_str().unwrap().to_string();
        let key_id = cred["keyId"].as_str().unwrap().to_string();
        assert_eq!(cred["displayName"], "ci");
        assert_eq!(cred["hint"], &secret[..3]);
        let end = time::OffsetDateTime::parse(
            cred["endDateTime"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let lifetime = end - time::OffsetDateTime::now_utc();
        assert!((729..=730).contains(&lifetime.whole_days()), "two years by default: {cred}");
        let (_, back) = g.get(&token, &format!("/v1.0/applications/{id}")).await;
        assert_eq!(back["passwordCredentials"][0]["keyId"], key_id.as_str());
        assert!(back["passwordCredentials"][0]["secretText"].is_null());
        assert!(!back.to_string().contains(&secret));
        // A confidential use of the new secret: the app is now a public client, so make it
        // confidential again first.
        let (status, _) = g
            .patch(&token, &format!("/v1.0/applications/{id}"), json!({"isFallbackPublicClient": false, "publicClient": {"redirectUris": []}, "web": {"redirectUris": ["https://created.example/cb"]}}))
            .await;
        assert_eq!(status, 204);
        let (status, body) = g
            .try_token(
                CONTOSO,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &app_id),
                    ("client_secret", &secret),
                    ("scope", "https://graph.microsoft.com/.default"),
                ],
            )
            .await;
        assert_eq!(status, 200, "the new secret works: {body}");

        let (status, body) =
            g.post(&token, &format!("/v1.0/applications/{id}/removePassword"), json!({"keyId": key_id})).await;
        assert_eq!(status, 204, "{body}");
        let (_, back) = g.get(&token, &format!("/v1.0/applications/{id}")).await;
        assert_eq!(back["passwordCredentials"], json!([]));
        let (status, _) = g
            .try_token(
                CONTOSO,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &app_id),
                    ("client_secret", &secret),
                    ("scope", "https://graph.microsoft.com/.default"),
                ],
            )
            .await;
        assert_eq!(status, 401, "a removed secret no longer works");
        let (status, body) =
            g.post(&token, &format!("/v1.0/applications/{id}/removePassword"), json!({"keyId": key_id})).await;
        assert_graph_error(status, &body, 404, "Request_ResourceNotFound", "secret");
    }

    // Bad action bodies name the property; a past end is yesterday, whatever today is.
    let yesterday = (time::OffsetDateTime::now_utc() - time::Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let admin = g.admin().await;
    let id = g.app_object_id(&admin, EXPENSES_API).await;
    for (body, mentions) in [
        (json!({"passwordCredential": {"endDateTime": "yesterday"}}), "passwordCredential.endDateTime"),
        (json!({"passwordCredential": {"endDateTime": yesterday}}), "passwordCredential.endDateTime"),
        (json!({"passwordCredential": {"displayName": 3}}), "passwordCredential.displayName"),
        (json!({"keyId": "x"}), "passwordCredential"),
    ] {
        let (status, res) = g.post(&admin, &format!("/v1.0/applications/{id}/addPassword"), body).await;
        assert_graph_error(status, &res, 400, "Request_BadRequest", mentions);
    }
    for (body, mentions) in [(json!({}), "keyId"), (json!({"keyId": "x"}), "keyId"), (json!({"keyId": 4}), "keyId")] {
        let (status, res) = g.post(&admin, &format!("/v1.0/applications/{id}/removePassword"), body).await;
        assert_graph_error(status, &res, 400, "Request_BadRequest", mentions);
    }
    // By appId, with an explicit end two days out.
    let end = time::OffsetDateTime::now_utc() + time::Duration::days(2);
    let end = end.format(&time::format_description::well_known::Rfc3339).unwrap();
    let (status, cred) = g
        .post(
            &admin,
            &format!("/v1.0/applications(appId='{EXPENSES_API}')/addPassword"),
            json!({"passwordCredential": {"displayName": "short", "endDateTime": end}}),
        )
        .await;
    assert_eq!(status, 200, "{cred}");
    assert_eq!(&cred["endDateTime"].as_str().unwrap()[..10], &end[..10]);
}

/// The id of the Expenses API's `Expenses.Read` scope, as Graph shows it.
async fn g_scope_id(g: &Graph, token: &str) -> String {
    let (_, body) = g.get(token, &format!("/v1.0/applications(appId='{EXPENSES_API}')")).await;
    body["api"]["oauth2PermissionScopes"][0]["id"].as_str().unwrap().to_string()
}

// --------------------------------------------------------------------------- directory roles

#[tokio::test]
async fn directory_roles_read() {
    let g = Graph::start();
    let reader = g.user(READER_CONSOLE, "alice@contoso.test", "alice-password-1").await;
    for token in [reader.clone(), g.app(CONTOSO, READ_DAEMON).await] {
        let (status, body) = g.get(&token, "/v1.0/directoryRoles").await;
        assert_eq!(status, 200, "{body}");
        assert!(body["@odata.context"].as_str().unwrap().ends_with("/v1.0/$metadata#directoryRoles"), "{body}");
        assert_eq!(
            names(body["value"].as_array().unwrap()),
            [
                "Application Administrator",
                "Cloud Application Administrator",
                "Global Administrator",
                "Privileged Role Administrator"
            ]
        );
        let ga = body["value"].as_array().unwrap().iter().find(|r| r["displayName"] == "Global Administrator").unwrap();
        assert_eq!(ga["roleTemplateId"], GLOBAL_ADMIN_TEMPLATE);
        assert_ne!(ga["id"], GLOBAL_ADMIN_TEMPLATE);
        assert!(ga["description"].as_str().is_some_and(|d| !d.is_empty()));
        let id = ga["id"].as_str().unwrap();
        for key in [id, GLOBAL_ADMIN_TEMPLATE] {
            let (status, one) = g.get(&token, &format!("/v1.0/directoryRoles/{key}")).await;
            assert_eq!(status, 200, "{one}");
            assert!(one["@odata.context"].as_str().unwrap().ends_with("#directoryRoles/$entity"), "{one}");
            assert_eq!(one["id"], id);
        }
        let (status, one) = g
            .get(&token, &format!("/v1.0/directoryRoles(roleTemplateId='{GLOBAL_ADMIN_TEMPLATE}')?$select=displayName"))
            .await;
        assert_eq!(status, 200, "{one}");
        assert_eq!(one["displayName"], "Global Administrator");
        assert!(one.get("description").is_none());
        assert_eq!(g.role_members(&token, GLOBAL_ADMIN_TEMPLATE).await, ["Contoso Admin"]);
        let (_, members) = g.get(&token, &format!("/v1.0/directoryRoles/{id}/members")).await;
        assert!(members["@odata.context"].as_str().unwrap().ends_with("#directoryObjects"), "{members}");
        assert_eq!(members["value"][0]["@odata.type"], "#microsoft.graph.user");
        assert_eq!(members["value"][0]["id"], ADMIN);
    }
    let (_, body) =
        g.get(&reader, &format!("/v1.0/directoryRoles?$filter=roleTemplateId eq '{APP_ADMIN_TEMPLATE}'")).await;
    assert_eq!(names(body["value"].as_array().unwrap()), ["Application Administrator"]);
    let (values, sizes) = g.all_pages(&reader, "/v1.0/directoryRoles?$top=3").await;
    assert_eq!((values.len(), sizes), (4, vec![3, 1]));

    // Each tenant has its own role objects; another tenant's role id is nothing here.
    let fabrikam = g.app(FABRIKAM, FABRIKAM_WRITER).await;
    let (_, theirs) = g.get(&fabrikam, &format!("/v1.0/directoryRoles/{GLOBAL_ADMIN_TEMPLATE}")).await;
    let (_, ours) = g.get(&reader, &format!("/v1.0/directoryRoles/{GLOBAL_ADMIN_TEMPLATE}")).await;
    assert_ne!(theirs["id"], ours["id"]);
    let (status, body) = g.get(&reader, &format!("/v1.0/directoryRoles/{}", theirs["id"].as_str().unwrap())).await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound", theirs["id"].as_str().unwrap());
    assert_eq!(g.role_members(&fabrikam, GLOBAL_ADMIN_TEMPLATE).await, ["Frank Fischer"]);

    // Refusals and bad requests.
    let writer = g.admin().await;
    let (status, _) = g.get(&writer, "/v1.0/directoryRoles").await;
    assert_eq!(status, 200, "RoleManagement.ReadWrite.Directory reads too");
    let writes_only = g.app(CONTOSO, WRITES_DAEMON).await;
    let (status, _) = g.get(&writes_only, "/v1.0/directoryRoles").await;
    assert_eq!(status, 200);
    let profile = g.user(PROFILE_CONSOLE, "admin@contoso.test", "admin-password-1").await;
    for path in ["/v1.0/directoryRoles".to_string(), format!("/v1.0/directoryRoles/{GLOBAL_ADMIN_TEMPLATE}/members")] {
        let (status, body) = g.get(&profile, &path).await;
        assert_graph_error(status, &body, 403, "Authorization_RequestDenied", "RoleManagement.Read.Directory");
    }
    // The same assignments through the unified RBAC API.
    let (status, body) = g.get(&reader, "/v1.0/roleManagement/directory/roleAssignments").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["@odata.context"].as_str().unwrap().ends_with("#roleManagement/directory/roleAssignments"), "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 3, "admin, PRA and app admin: {body}");
    let (_, body) = g
        .get(&reader, &format!("/v1.0/roleManagement/directory/roleAssignments?$filter=principalId eq '{ADMIN}'"))
        .await;
    let only = body["value"].as_array().unwrap();
    assert_eq!(only.len(), 1, "{body}");
    assert_eq!(only[0]["roleDefinitionId"], GLOBAL_ADMIN_TEMPLATE);
    assert_eq!(only[0]["directoryScopeId"], "/");
    assert!(only[0]["id"].as_str().is_some_and(|id| id.ends_with("-1")), "{body}");
    let (_, body) = g
        .get(&fabrikam, &format!("/v1.0/roleManagement/directory/roleAssignments?$filter=principalId eq '{ADMIN}'"))
        .await;
    assert_eq!(body["value"], json!([]), "Contoso's assignments are not Fabrikam's");
    let (status, body) = g.get(&profile, "/v1.0/roleManagement/directory/roleAssignments").await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied", "RoleManagement.Read.Directory");
    let (status, body) =
        g.get(&reader, "/v1.0/roleManagement/directory/roleAssignments?$filter=principal eq 'x'").await;
    assert_graph_error(status, &body, 400, "BadRequest", "principal");

    // Unknown segments under the new paths are Graph's 400 naming the segment.
    for (path, segment) in [
        (format!("/v1.0/directoryRoles/{GLOBAL_ADMIN_TEMPLATE}/scopedMembers"), "scopedMembers"),
        (format!("/v1.0/directoryRoles(roleTemplateId='{GLOBAL_ADMIN_TEMPLATE}')/owners"), "owners"),
        ("/v1.0/roleManagement/directory/roleDefinitions".to_string(), "roleDefinitions"),
        (format!("/v1.0/applications(appId='{EXPENSES_API}')/owners"), "owners"),
        ("/v1.0/applicationTemplates".to_string(), "applicationTemplates"),
    ] {
        let (status, body) = g.get(&reader, &path).await;
        assert_graph_error(status, &body, 400, "BadRequest", &format!("'{segment}'"));
    }

    let (status, body) = g.get(&reader, "/v1.0/directoryRoles/not-a-guid").await;
    assert_graph_error(status, &body, 400, "Request_BadRequest", "not-a-guid");
    let (status, body) = g.get(&reader, "/v1.0/directoryRoles/11111111-2222-4333-8444-555555555555").await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound", "11111111-2222-4333-8444-555555555555");
    let (status, body) = g.get(&reader, "/v1.0/directoryRoles?$filter=nope eq 1").await;
    assert_graph_error(status, &body, 400, "BadRequest", "nope");
    let (status, body) = g.get(&reader, "/v1.0/directoryRoles?$expand=members").await;
    assert_graph_error(status, &body, 400, "BadRequest", "$expand");
}

#[tokio::test]
async fn directory_role_members_write() {
    let g = Graph::start();
    let admin = g.admin().await;
    let pra = g.user(ADMIN_CONSOLE, "pra@contoso.test", "pra-password-1").await;
    let (_, role) = g.get(&admin, &format!("/v1.0/directoryRoles/{APP_ADMIN_TEMPLATE}")).await;
    let role_id = role["id"].as_str().unwrap().to_string();

    // A Privileged Role Administrator adds Bob by object id; the Global Administrator removes him.
    let (status, body) =
        g.post(&pra, &format!("/v1.0/directoryRoles/{role_id}/members/$ref"), directory_object(BOB)).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(g.role_members(&admin, APP_ADMIN_TEMPLATE).await, ["Andy Apps", "Bob Brown"]);
    let (status, body) =
        g.post(&pra, &format!("/v1.0/directoryRoles/{role_id}/members/$ref"), directory_object(BOB)).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest", "already exist");
    // Bob's new role takes effect: he may now change app registrations.
    let bob = g.user(ADMIN_CONSOLE, "bob@contoso.test", "bob-password-1").await;
    let (status, body) = g.post(&bob, "/v1.0/applications", json!({"displayName": "Bob's app"})).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = g.delete(&admin, &format!("/v1.0/directoryRoles/{role_id}/members/{BOB}/$ref")).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(g.role_members(&admin, APP_ADMIN_TEMPLATE).await, ["Andy Apps"]);
    let (status, body) = g.delete(&admin, &format!("/v1.0/directoryRoles/{role_id}/members/{BOB}/$ref")).await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound", BOB);

    // By template id, app-only with RoleManagement.ReadWrite.Directory.
    let daemon = g.app(CONTOSO, WRITES_DAEMON).await;
    let by_template = format!("/v1.0/directoryRoles(roleTemplateId='{APP_ADMIN_TEMPLATE}')/members");
    let (status, body) = g.post(&daemon, &format!("{by_template}/$ref"), directory_object(ALICE)).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(g.role_members(&admin, APP_ADMIN_TEMPLATE).await, ["Alice Adams", "Andy Apps"]);
    let (status, body) = g.delete(&daemon, &format!("{by_template}/{ALICE}/$ref")).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(g.role_members(&admin, APP_ADMIN_TEMPLATE).await, ["Andy Apps"]);

    // A Privileged Role Administrator cannot make a Global Administrator; Alice cannot change
    // roles at all; a token without RoleManagement.ReadWrite.Directory neither.
    let (status, body) = g
        .post(&pra, &format!("/v1.0/directoryRoles/{GLOBAL_ADMIN_TEMPLATE}/members/$ref"), directory_object(BOB))
        .await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied", "Global Administrator");
    let alice = g.alice().await;
    let (status, body) =
        g.post(&alice, &format!("/v1.0/directoryRoles/{role_id}/members/$ref"), directory_object(ALICE)).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied", "assigning directory roles");
    let reader = g.user(READER_CONSOLE, "admin@contoso.test", "admin-password-1").await;
    let (status, body) =
        g.post(&reader, &format!("/v1.0/directoryRoles/{role_id}/members/$ref"), directory_object(BOB)).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied", "RoleManagement.ReadWrite.Directory");
    let read_daemon = g.app(CONTOSO, READ_DAEMON).await;
    let (status, body) = g.delete(&read_daemon, &format!("/v1.0/directoryRoles/{role_id}/members/{PRA}/$ref")).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied", "RoleManagement.ReadWrite.Directory");
    assert_eq!(g.role_members(&admin, GLOBAL_ADMIN_TEMPLATE).await, ["Contoso Admin"]);

    // Fabrikam's writer cannot touch Contoso's users through its own roles, nor Contoso's roles.
    let fabrikam = g.app(FABRIKAM, FABRIKAM_WRITER).await;
    let (status, body) = g
        .post(&fabrikam, &format!("/v1.0/directoryRoles/{GLOBAL_ADMIN_TEMPLATE}/members/$ref"), directory_object(BOB))
        .await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound", BOB);
    let (status, _) = g.delete(&fabrikam, &format!("/v1.0/directoryRoles/{role_id}/members/{ADMIN}/$ref")).await;
    assert_eq!(status, 404);
    assert_eq!(g.role_members(&admin, GLOBAL_ADMIN_TEMPLATE).await, ["Contoso Admin"]);

    // Bad references name @odata.id.
    for body in [
        json!({}),
        json!({"@odata.id": 5}),
        json!({"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/xyz"}),
        json!({"@odata.id": "https://graph.microsoft.com/v1.0/devices/eeeeeeee-0000-4000-8000-0000000000b1"}),
    ] {
        let (status, res) = g.post(&admin, &format!("/v1.0/directoryRoles/{role_id}/members/$ref"), body).await;
        assert_graph_error(status, &res, 400, "Request_BadRequest", "@odata.id");
    }
    let (status, body) = g.delete(&admin, &format!("/v1.0/directoryRoles/{role_id}/members/nope/$ref")).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest", "nope");
}

// ---------------------------------------------------------------------------------- users

#[tokio::test]
async fn users_create_and_update() {
    let g = Graph::start();
    for (token, who) in [(g.admin().await, "admin"), (g.app(CONTOSO, WRITES_DAEMON).await, "daemon")] {
        let upn = format!("new-{who}@contoso.example");
        let (status, user) = g
            .post(
                &token,
                "/v1.0/users",
                json!({
                    "accountEnabled": true,
                    "displayName": format!("New {who}"),
                    "mailNickname": format!("new-{who}"),
                    "userPrincipalName": upn,
                    "passwordProfile": {"forceChangePasswordNextSignIn": false, "password": "first-password-1"},
                }),
            )
            .await;
        assert_eq!(status, 201, "{who}: {user}");
        assert!(user["@odata.context"].as_str().unwrap().ends_with("#users/$entity"), "{user}");
        assert_eq!(user["userPrincipalName"], upn.as_str());
        assert_eq!(user["displayName"], format!("New {who}"));
        let id = user["id"].as_str().unwrap().to_string();
        let (_, back) = g.get(&token, &format!("/v1.0/users/{id}")).await;
        assert_eq!(back["userPrincipalName"], upn.as_str());
        // The password works.
        g.user(ADMIN_CONSOLE, &upn, "first-password-1").await;

        let (status, body) = g
            .patch(
                &token,
                &format!("/v1.0/users/{id}"),
                json!({"displayName": format!("Renamed {who}"), "passwordProfile": {"password": "second-password-2"}}),
            )
            .await;
        assert_eq!(status, 204, "{body}");
        let (_, back) = g.get(&token, &format!("/v1.0/users/{upn}")).await;
        assert_eq!(back["displayName"], format!("Renamed {who}"));
        let (status, body) = g.try_token(CONTOSO, &ropc_form(ADMIN_CONSOLE, &upn, "first-password-1")).await;
        assert_eq!((status, &body["error_codes"]), (400, &json!([50126])), "the old password no longer works: {body}");
        g.user(ADMIN_CONSOLE, &upn, "second-password-2").await;

        let (status, body) = g.patch(&token, &format!("/v1.0/users/{upn}"), json!({"accountEnabled": false})).await;
        assert_eq!(status, 204, "{body}");
        let (status, body) = g.try_token(CONTOSO, &ropc_form(ADMIN_CONSOLE, &upn, "second-password-2")).await;
        assert_eq!((status, &body["error_codes"]), (400, &json!([50057])), "a disabled account cannot sign in: {body}");
        let (status, _) = g.patch(&token, &format!("/v1.0/users/{id}"), json!({"accountEnabled": true})).await;
        assert_eq!(status, 204);
        g.user(ADMIN_CONSOLE, &upn, "second-password-2").await;
    }

    // Created disabled.
    let admin = g.admin().await;
    let (status, body) = g
        .post(
            &admin,
            "/v1.0/users",
            json!({"accountEnabled": false, "displayName": "Dora Disabled", "mailNickname": "dora",
                   "userPrincipalName": "dora@contoso.test", "passwordProfile": {"password": "dora-password-1"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = g.try_token(CONTOSO, &ropc_form(ADMIN_CONSOLE, "dora@contoso.test", "dora-password-1")).await;
    assert_eq!((status, &body["error_codes"]), (400, &json!([50057])), "created disabled: {body}");
}

/// Issue 12, finding 2: an Application Administrator adding a secret to an app that holds
/// privileged Graph application permissions takes those permissions; Accord asks for a Global
/// Administrator (or Privileged Role Administrator), and no app may, whatever it holds.
#[tokio::test]
async fn credentials_for_privileged_apps_need_a_global_administrator() {
    let g = Graph::start();
    let app_admin = g.user(ADMIN_CONSOLE, "appadmin@contoso.test", "appadmin-password-1").await;
    let writes = g.app_object_id(&app_admin, WRITES_DAEMON.0).await;
    let reads = g.app_object_id(&app_admin, READ_DAEMON.0).await;
    let (status, res) = g.post(&app_admin, &format!("/v1.0/applications/{writes}/addPassword"), json!({})).await;
    assert_graph_error(status, &res, 403, "Authorization_RequestDenied", "privileged application permissions");
    assert!(res["error"]["message"].as_str().unwrap().contains("User.ReadWrite.All"), "{res}");
    let daemon = g.app(CONTOSO, WRITES_DAEMON).await;
    let (status, res) = g.post(&daemon, &format!("/v1.0/applications/{writes}/addPassword"), json!({})).await;
    assert_eq!(status, 403, "not even the app itself: {res}");
    // An app with nothing privileged: the Application Administrator's to manage, as in Entra.
    let (status, res) = g.post(&app_admin, &format!("/v1.0/applications/{reads}/addPassword"), json!({})).await;
    assert_eq!(status, 200, "{res}");
    // A Global Administrator may, and the secret works.
    let admin = g.admin().await;
    let (status, cred) = g.post(&admin, &format!("/v1.0/applications/{writes}/addPassword"), json!({})).await;
    assert_eq!(status, 200, "{cred}");
    let secret = cred["secretText"].as_str().unwrap().to_string();
    g.app(CONTOSO, (WRITES_DAEMON.0, &secret)).await;
}

/// Issue 12, finding 1: an app holding User.ReadWrite.All could reset a Global Administrator's
/// password and disable them. As in Entra: passwords need User-PasswordProfile.ReadWrite.All (or,
/// delegated, a role that may reset them), and a user holding a directory role can be reset,
/// disabled or deleted only by a Global Administrator, never app-only.
#[tokio::test]
async fn privileged_users_and_passwords_are_protected() {
    let g = Graph::start();
    let users_daemon = g.app(CONTOSO, USERS_DAEMON).await;
    let writes_daemon = g.app(CONTOSO, WRITES_DAEMON).await;
    let new_password = json!({"passwordProfile": {"password": "taken-over-password-1"}});

    // User.ReadWrite.All sets no password, not even an ordinary user's.
    let (status, res) = g.patch(&users_daemon, &format!("/v1.0/users/{BOB}"), new_password.clone()).await;
    assert_graph_error(status, &res, 403, "Authorization_RequestDenied", "resetting passwords");
    // With User-PasswordProfile.ReadWrite.All an app resets an ordinary user's password...
    let (status, res) = g.patch(&writes_daemon, &format!("/v1.0/users/{BOB}"), new_password.clone()).await;
    assert_eq!(status, 204, "{res}");
    g.user(ADMIN_CONSOLE, "bob@contoso.test", "taken-over-password-1").await;
    // User-PasswordProfile.ReadWrite.All alone sets a password, and nothing else.
    let password_daemon = g.app(CONTOSO, PASSWORD_DAEMON).await;
    let (status, res) = g
        .patch(
            &password_daemon,
            &format!("/v1.0/users/{BOB}"),
            json!({"passwordProfile": {"password": "by-password-daemon-1"}}),
        )
        .await;
    assert_eq!(status, 204, "{res}");
    g.user(ADMIN_CONSOLE, "bob@contoso.test", "by-password-daemon-1").await;
    let (status, res) = g
        .patch(
            &password_daemon,
            &format!("/v1.0/users/{BOB}"),
            json!({"displayName": "Bob?", "passwordProfile": {"password": "x-password-2"}}),
        )
        .await;
    assert_graph_error(status, &res, 403, "Authorization_RequestDenied", "User.ReadWrite.All");
    // ...but no app resets, disables or deletes an administrator, whatever it holds.
    for token in [&users_daemon, &writes_daemon] {
        let (status, res) = g.patch(token, &format!("/v1.0/users/{PRA}"), new_password.clone()).await;
        assert_eq!(status, 403, "{res}");
        let (status, res) = g.patch(token, &format!("/v1.0/users/{ADMIN}"), json!({"accountEnabled": false})).await;
        assert_graph_error(status, &res, 403, "Authorization_RequestDenied", "privileged directory role");
        let (status, res) = g.delete(token, &format!("/v1.0/users/{PRA}")).await;
        assert_graph_error(status, &res, 403, "Authorization_RequestDenied", "only a Global Administrator");
    }
    // The administrators still sign in with their own passwords.
    g.admin().await;
    g.user(ADMIN_CONSOLE, "pra@contoso.test", "pra-password-1").await;
    // A Global Administrator may reset another administrator.
    let admin = g.admin().await;
    let (status, res) = g
        .patch(&admin, &format!("/v1.0/users/{PRA}"), json!({"passwordProfile": {"password": "reset-by-admin-1"}}))
        .await;
    assert_eq!(status, 204, "{res}");
    g.user(ADMIN_CONSOLE, "pra@contoso.test", "reset-by-admin-1").await;
}

/// Issue 12, finding 5: a password reset, a disabled account and `revokeSignInSessions` end
/// the user's refresh tokens (and sessions), as in Entra.
#[tokio::test]
async fn resets_and_revoke_sign_in_sessions_end_refresh_tokens() {
    let g = Graph::start();
    let admin = g.admin().await;
    let refresh_token_of = |upn: &'static str, password: &'static str| {
        let g = &g;
        async move {
            let (status, body) = g
                .try_token(
                    CONTOSO,
                    &[
                        ("grant_type", "password"),
                        ("client_id", ADMIN_CONSOLE),
                        ("username", upn),
                        ("password", password),
                        ("scope", "https://graph.microsoft.com/User.Read offline_access"),
                    ],
                )
                .await;
            assert_eq!(status, 200, "{body}");
            body["refresh_token"].as_str().expect("a refresh token").to_string()
        }
    };
    let refresh = |rt: String| {
        let g = &g;
        async move {
            g.try_token(
                CONTOSO,
                &[("grant_type", "refresh_token"), ("client_id", ADMIN_CONSOLE), ("refresh_token", &rt)],
            )
            .await
        }
    };
    // Before: the token refreshes.
    let rt = refresh_token_of("bob@contoso.test", "bob-password-1").await;
    let (status, body) = refresh(rt.clone()).await;
    assert_eq!(status, 200, "{body}");
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    // A password reset signs Bob out everywhere.
    let (status, res) = g
        .patch(&admin, &format!("/v1.0/users/{BOB}"), json!({"passwordProfile": {"password": "bob-new-password-2"}}))
        .await;
    assert_eq!(status, 204, "{res}");
    let revoked = json!([50173]);
    let (status, body) = refresh(rt).await;
    assert_eq!(
        (status, body["error"].as_str(), &body["error_codes"]),
        (400, Some("invalid_grant"), &revoked),
        "{body}"
    );
    // revokeSignInSessions does the same, answering as Graph does; it takes no parameters, so a
    // body that is not JSON is refused (and signs nobody out).
    let rt = refresh_token_of("bob@contoso.test", "bob-new-password-2").await;
    let revoke = format!("/v1.0/users/{BOB}/revokeSignInSessions");
    let garbage =
        g.c.post(g.url(&revoke)).bearer_auth(&admin).header("content-type", "application/json").body("\u{1}x{");
    let (status, res) = g.send(garbage).await;
    assert_graph_error(status, &res, 400, "UnableToDeserializePostBody", "JSON");
    let (status, res) = g.post(&admin, &revoke, json!({})).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["value"], true);
    assert!(res["@odata.context"].as_str().unwrap().ends_with("$metadata#Edm.Boolean"), "{res}");
    let (status, body) = refresh(rt).await;
    assert_eq!((status, &body["error_codes"]), (400, &revoked), "{body}");
    // Disabled, a user's refresh token is refused as the account is (AADSTS50057)...
    let rt = refresh_token_of("bob@contoso.test", "bob-new-password-2").await;
    let (status, res) = g.patch(&admin, &format!("/v1.0/users/{BOB}"), json!({"accountEnabled": false})).await;
    assert_eq!(status, 204, "{res}");
    let (status, body) = refresh(rt.clone()).await;
    assert_eq!((status, &body["error_codes"]), (400, &json!([50057])), "{body}");
    // ...and enabling the account again gives no token back: disabling ended its sign-ins.
    let (status, res) = g.patch(&admin, &format!("/v1.0/users/{BOB}"), json!({"accountEnabled": true})).await;
    assert_eq!(status, 204, "{res}");
    let (status, body) = refresh(rt).await;
    assert_eq!((status, &body["error_codes"]), (400, &revoked), "{body}");
    // Only who may manage users may sign them out.
    let reader = g.app(CONTOSO, READ_DAEMON).await;
    let (status, res) = g.post(&reader, &format!("/v1.0/users/{BOB}/revokeSignInSessions"), json!({})).await;
    assert_eq!(status, 403, "{res}");
}

#[tokio::test]
async fn users_refusals_and_bad_input() {
    let g = Graph::start();
    let admin = g.admin().await;
    let body = |upn: &str| {
        json!({"accountEnabled": true, "displayName": "Eve", "mailNickname": "eve",
               "userPrincipalName": upn, "passwordProfile": {"password": "eve-password-1"}})
    };
    // Scope missing, role missing, another tenant.
    let no_scope = g.user(READER_CONSOLE, "admin@contoso.test", "admin-password-1").await;
    let (status, res) = g.post(&no_scope, "/v1.0/users", body("eve@contoso.test")).await;
    assert_graph_error(status, &res, 403, "Authorization_RequestDenied", "User.ReadWrite.All");
    let (status, res) = g.patch(&no_scope, &format!("/v1.0/users/{BOB}"), json!({"displayName": "X"})).await;
    assert_graph_error(status, &res, 403, "Authorization_RequestDenied", "User.ReadWrite.All");
    let pra = g.user(ADMIN_CONSOLE, "pra@contoso.test", "pra-password-1").await;
    let (status, res) = g.post(&pra, "/v1.0/users", body("eve@contoso.test")).await;
    assert_graph_error(status, &res, 403, "Authorization_RequestDenied", "managing users");
    let (status, res) =
        g.patch(&pra, &format!("/v1.0/users/{BOB}"), json!({"displayName": "X", "accountEnabled": false})).await;
    assert_graph_error(status, &res, 403, "Authorization_RequestDenied", "managing users");
    let fabrikam = g.app(FABRIKAM, FABRIKAM_WRITER).await;
    let (status, res) = g.post(&fabrikam, "/v1.0/users", body("eve@contoso.test")).await;
    assert_graph_error(status, &res, 400, "Request_BadRequest", "userPrincipalName");
    let (status, _) = g.patch(&fabrikam, &format!("/v1.0/users/{BOB}"), json!({"accountEnabled": false})).await;
    assert_eq!(status, 404);
    let (_, bob) = g.get(&admin, &format!("/v1.0/users/{BOB}")).await;
    assert_eq!(bob["displayName"], "Bob Brown", "nothing of Bob changed");
    g.user(ADMIN_CONSOLE, "bob@contoso.test", "bob-password-1").await;
    let (_, list) = g.get(&admin, "/v1.0/users?$filter=displayName eq 'Eve'").await;
    assert_eq!(list["value"], json!([]));

    // Bad input names the property.
    let mut cases = vec![
        (body("eve@elsewhere.test"), "userPrincipalName"),
        (body("not-an-upn"), "userPrincipalName"),
        (body("alice@contoso.test"), "alice@contoso.test"),
    ];
    for (drop, name) in [
        ("accountEnabled", "accountEnabled"),
        ("displayName", "displayName"),
        ("mailNickname", "mailNickname"),
        ("userPrincipalName", "userPrincipalName"),
        ("passwordProfile", "passwordProfile"),
    ] {
        let mut b = body("eve@contoso.test");
        b.as_object_mut().unwrap().remove(drop);
        cases.push((b, name));
    }
    for (key, value, name) in [
        ("accountEnabled", json!("yes"), "accountEnabled"),
        ("mailNickname", json!("has space"), "mailNickname"),
        ("passwordProfile", json!({"password": "short"}), "password"),
        (
            "passwordProfile",
            json!({"password": "long-enough-1", "forceChangePasswordNextSignIn": true}),
            "forceChangePasswordNextSignIn",
        ),
        ("jobTitle", json!("CEO"), "jobTitle"),
    ] {
        let mut b = body("eve@contoso.test");
        b[key] = value;
        cases.push((b, name));
    }
    for (b, mentions) in cases {
        let (status, res) = g.post(&admin, "/v1.0/users", b.clone()).await;
        assert_graph_error(status, &res, 400, "Request_BadRequest", mentions);
    }
    for (b, mentions) in [
        (json!({"displayName": ""}), "displayName"),
        (json!({"accountEnabled": "no"}), "accountEnabled"),
        (json!({"passwordProfile": {"password": "short"}}), "password"),
        (json!({"userPrincipalName": "x@contoso.test"}), "userPrincipalName"),
    ] {
        let (status, res) = g.patch(&admin, &format!("/v1.0/users/{BOB}"), b).await;
        assert_graph_error(status, &res, 400, "Request_BadRequest", mentions);
    }
    // The admin cannot disable their own account.
    let (status, res) = g.patch(&admin, &format!("/v1.0/users/{ADMIN}"), json!({"accountEnabled": false})).await;
    assert_graph_error(status, &res, 400, "Request_BadRequest", "accountEnabled");
    let (status, res) = g.patch(&admin, "/v1.0/users/nobody@contoso.test", json!({"displayName": "X"})).await;
    assert_graph_error(status, &res, 404, "Request_ResourceNotFound", "nobody@contoso.test");
    // Nor can they delete themselves.
    let (status, res) = g.delete(&admin, &format!("/v1.0/users/{ADMIN}")).await;
    assert_graph_error(status, &res, 400, "Request_BadRequest", "own account");
}

/// `DELETE /users/{id or UPN}`: the user goes with their memberships and can no longer sign in;
/// refusals for a missing scope or role and for other tenants leave them be.
#[tokio::test]
async fn users_delete() {
    let g = Graph::start();
    let admin = g.admin().await;
    let alice = format!("/v1.0/users/{ALICE}");
    let no_scope = g.user(READER_CONSOLE, "admin@contoso.test", "admin-password-1").await;
    let (status, res) = g.delete(&no_scope, &alice).await;
    assert_graph_error(status, &res, 403, "Authorization_RequestDenied", "User.ReadWrite.All");
    let pra = g.user(ADMIN_CONSOLE, "pra@contoso.test", "pra-password-1").await;
    let (status, res) = g.delete(&pra, &alice).await;
    assert_graph_error(status, &res, 403, "Authorization_RequestDenied", "managing users");
    let fabrikam = g.app(FABRIKAM, FABRIKAM_WRITER).await;
    let (status, _) = g.delete(&fabrikam, &alice).await;
    assert_eq!(status, 404);
    let (status, _) = g.get(&admin, &alice).await;
    assert_eq!(status, 200, "refusals delete nothing");

    let (status, res) = g.delete(&admin, "/v1.0/users/alice@contoso.test").await;
    assert_eq!(status, 204, "{res}");
    let (status, res) = g.get(&admin, &alice).await;
    assert_graph_error(status, &res, 404, "Request_ResourceNotFound", ALICE);
    let sales = g.group_id(&admin, "Sales").await;
    let (_, members) = g.get(&admin, &format!("/v1.0/groups/{sales}/members")).await;
    assert_eq!(members["value"], json!([]), "her membership went with her");
    let (status, body) =
        g.try_token(CONTOSO, &ropc_form(ADMIN_CONSOLE, "alice@contoso.test", "alice-password-1")).await;
    // As any unknown name: invalid username or password, telling nothing of who exists.
    assert_eq!((status, &body["error_codes"]), (400, &json!([50126])), "she can no longer sign in: {body}");
    let (status, res) = g.delete(&admin, &alice).await;
    assert_graph_error(status, &res, 404, "Request_ResourceNotFound", ALICE);
    g.user(ADMIN_CONSOLE, "bob@contoso.test", "bob-password-1").await;
}

// --------------------------------------------------------------------------------- groups

#[tokio::test]
async fn groups_create_and_members() {
    let g = Graph::start();
    let admin = g.admin().await;
    let daemon = g.app(CONTOSO, WRITES_DAEMON).await;
    let (status, group) = g
        .post(
            &admin,
            "/v1.0/groups",
            json!({"displayName": "Finance", "mailNickname": "finance", "mailEnabled": false, "securityEnabled": true}),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    assert!(group["@odata.context"].as_str().unwrap().ends_with("#groups/$entity"), "{group}");
    assert_eq!(group["displayName"], "Finance");
    assert_eq!(group["securityEnabled"], true);
    assert_eq!(group["mailEnabled"], false);
    let finance = group["id"].as_str().unwrap().to_string();
    assert_eq!(g.group_id(&daemon, "Finance").await, finance);

    // Members: a user and a nested group, by admin and by daemon; read back; removal.
    let sales = g.group_id(&admin, "Sales").await;
    let (status, body) = g.post(&admin, &format!("/v1.0/groups/{finance}/members/$ref"), directory_object(BOB)).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = g
        .post(
            &daemon,
            &format!("/v1.0/groups/{finance}/members/$ref"),
            json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/groups/{sales}")}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (_, members) = g.get(&admin, &format!("/v1.0/groups/{finance}/members")).await;
    assert_eq!(names(members["value"].as_array().unwrap()), ["Bob Brown", "Sales"]);
    let (_, members) = g.get(&admin, &format!("/v1.0/groups/{finance}/transitiveMembers")).await;
    assert_eq!(names(members["value"].as_array().unwrap()), ["Alice Adams", "Bob Brown", "Sales"]);
    let (status, body) = g.post(&admin, &format!("/v1.0/groups/{finance}/members/$ref"), directory_object(BOB)).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest", "already exist");
    // A cycle is refused.
    let (status, body) =
        g.post(&admin, &format!("/v1.0/groups/{sales}/members/$ref"), directory_object(&finance)).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest", "cycle");
    let (status, body) = g.delete(&daemon, &format!("/v1.0/groups/{finance}/members/{BOB}/$ref")).await;
    assert_eq!(status, 204, "{body}");
    let (_, members) = g.get(&admin, &format!("/v1.0/groups/{finance}/members")).await;
    assert_eq!(names(members["value"].as_array().unwrap()), ["Sales"]);
    let (status, body) = g.delete(&admin, &format!("/v1.0/groups/{finance}/members/{BOB}/$ref")).await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound", BOB);

    // Created by the daemon too.
    let (status, group) = g
        .post(
            &daemon,
            "/v1.0/groups",
            json!({"displayName": "Ops", "mailNickname": "ops", "mailEnabled": false, "securityEnabled": true, "groupTypes": []}),
        )
        .await;
    assert_eq!(status, 201, "{group}");
}

#[tokio::test]
async fn groups_refusals_and_bad_input() {
    let g = Graph::start();
    let admin = g.admin().await;
    let sales = g.group_id(&admin, "Sales").await;
    let engineering = g.group_id(&admin, "Engineering").await;
    let new_group =
        json!({"displayName": "Legal", "mailNickname": "legal", "mailEnabled": false, "securityEnabled": true});

    let no_scope = g.user(READER_CONSOLE, "admin@contoso.test", "admin-password-1").await;
    let (status, res) = g.post(&no_scope, "/v1.0/groups", new_group.clone()).await;
    assert_graph_error(status, &res, 403, "Authorization_RequestDenied", "Group.ReadWrite.All");
    let (status, res) = g.post(&no_scope, &format!("/v1.0/groups/{sales}/members/$ref"), directory_object(BOB)).await;
    assert_graph_error(status, &res, 403, "Authorization_RequestDenied", "Group.ReadWrite.All");
    let read_daemon = g.app(CONTOSO, READ_DAEMON).await;
    let (status, res) = g.delete(&read_daemon, &format!("/v1.0/groups/{sales}/members/{ALICE}/$ref")).await;
    assert_graph_error(status, &res, 403, "Authorization_RequestDenied", "application permission Group.ReadWrite.All");
    let alice = g.alice().await;
    let (status, res) = g.post(&alice, "/v1.0/groups", new_group.clone()).await;
    assert_graph_error(status, &res, 403, "Authorization_RequestDenied", "managing groups");
    let (status, res) =
        g.post(&alice, &format!("/v1.0/groups/{engineering}/members/$ref"), directory_object(ALICE)).await;
    assert_graph_error(status, &res, 403, "Authorization_RequestDenied", "managing groups");
    let (status, res) = g.delete(&alice, &format!("/v1.0/groups/{sales}/members/{ALICE}/$ref")).await;
    assert_graph_error(status, &res, 403, "Authorization_RequestDenied", "managing groups");

    // Fabrikam: Contoso's groups and users do not exist for it.
    let fabrikam = g.app(FABRIKAM, FABRIKAM_WRITER).await;
    let (status, res) = g.post(&fabrikam, &format!("/v1.0/groups/{sales}/members/$ref"), directory_object(BOB)).await;
    assert_graph_error(status, &res, 404, "Request_ResourceNotFound", &sales);
    let (status, _) = g.delete(&fabrikam, &format!("/v1.0/groups/{sales}/members/{ALICE}/$ref")).await;
    assert_eq!(status, 404);
    let (status, body) = g.post(&fabrikam, "/v1.0/groups", new_group.clone()).await;
    assert_eq!(status, 201, "{body}");
    let fab_group = body["id"].as_str().unwrap().to_string();
    let (status, res) =
        g.post(&fabrikam, &format!("/v1.0/groups/{fab_group}/members/$ref"), directory_object(BOB)).await;
    assert_graph_error(status, &res, 404, "Request_ResourceNotFound", BOB);
    let (_, list) = g.get(&admin, "/v1.0/groups").await;
    assert_eq!(names(list["value"].as_array().unwrap()), ["Engineering", "Sales"], "Fabrikam's group is not Contoso's");
    let (_, members) = g.get(&admin, &format!("/v1.0/groups/{sales}/members")).await;
    assert_eq!(names(members["value"].as_array().unwrap()), ["Alice Adams"]);

    // Bad input names the property.
    let mut cases = Vec::new();
    for drop in ["displayName", "mailNickname", "mailEnabled", "securityEnabled"] {
        let mut b = new_group.clone();
        b.as_object_mut().unwrap().remove(drop);
        cases.push((b, drop));
    }
    for (key, value, name) in [
        ("mailEnabled", json!(true), "mailEnabled"),
        ("securityEnabled", json!(false), "securityEnabled"),
        ("groupTypes", json!(["Unified"]), "groupTypes"),
        ("mailNickname", json!("a@b"), "mailNickname"),
        ("displayName", json!(7), "displayName"),
        ("visibility", json!("Private"), "visibility"),
    ] {
        let mut b = new_group.clone();
        b[key] = value;
        cases.push((b, name));
    }
    let mut dup = new_group.clone();
    dup["displayName"] = json!("Sales");
    cases.push((dup, "Sales"));
    for (b, mentions) in cases {
        let (status, res) = g.post(&admin, "/v1.0/groups", b).await;
        assert_graph_error(status, &res, 400, "Request_BadRequest", mentions);
    }
    for b in [json!({}), json!({"@odata.id": "nope"})] {
        let (status, res) = g.post(&admin, &format!("/v1.0/groups/{sales}/members/$ref"), b).await;
        assert_graph_error(status, &res, 400, "Request_BadRequest", "@odata.id");
    }
    let (status, res) = g.post(&admin, "/v1.0/groups/not-a-guid/members/$ref", directory_object(BOB)).await;
    assert_graph_error(status, &res, 400, "Request_BadRequest", "not-a-guid");
    let (status, res) = g.delete(&admin, &format!("/v1.0/groups/{sales}/members/nope/$ref")).await;
    assert_graph_error(status, &res, 400, "Request_BadRequest", "nope");
    let (status, res) = g
        .post(
            &admin,
            &format!("/v1.0/groups/{sales}/members/$ref"),
            directory_object("11111111-2222-4333-8444-555555555555"),
        )
        .await;
    assert_graph_error(status, &res, 404, "Request_ResourceNotFound", "11111111-2222-4333-8444-555555555555");
}

#[tokio::test]
async fn federated_identity_credentials_crud() {
    let g = Graph::start();
    let admin = g.admin().await;
    let reader = g.app(CONTOSO, READ_DAEMON).await;
    let (_, body) = g.get(&admin, &format!("/v1.0/applications?$filter=appId eq '{EXPENSES_API}'")).await;
    let id = body["value"][0]["id"].as_str().unwrap().to_string();
    let base = format!("/v1.0/applications/{id}/federatedIdentityCredentials");
    let github = json!({
        "name": "github-main",
        "issuer": "https://token.actions.githubusercontent.com",
        "subject": "repo:contoso/expenses:ref:refs/heads/main",
        "description": "deploys",
    });

    // Created (201, the default audience), listed, got by id and by name.
    let (status, created) = g.post(&admin, &base, github.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert!(created["@odata.context"].as_str().unwrap().ends_with("/federatedIdentityCredentials/$entity"));
    assert_eq!(created["audiences"], json!(["api://AzureADTokenExchange"]));
    let fic = created["id"].as_str().unwrap().to_string();
    let (status, list) = g.get(&reader, &base).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    assert_eq!(list["value"][0]["subject"], "repo:contoso/expenses:ref:refs/heads/main");
    for key in [fic.as_str(), "github-main"] {
        let (status, one) = g.get(&reader, &format!("{base}/{key}")).await;
        assert_eq!((status, one["name"].as_str()), (200, Some("github-main")), "{one}");
    }
    let by_app_id = format!("/v1.0/applications(appId='{EXPENSES_API}')/federatedIdentityCredentials");
    let (status, list) = g.get(&reader, &by_app_id).await;
    assert_eq!((status, list["value"].as_array().map(Vec::len)), (200, Some(1)), "{list}");

    // Updated (204); the name is immutable; a reader may not write.
    let (status, _) =
        g.patch(&admin, &format!("{base}/{fic}"), json!({"subject": "repo:contoso/expenses:environment:prod"})).await;
    assert_eq!(status, 204);
    let (_, one) = g.get(&reader, &format!("{base}/{fic}")).await;
    assert_eq!(one["subject"], "repo:contoso/expenses:environment:prod");
    let (status, body) = g.patch(&admin, &format!("{base}/{fic}"), json!({"name": "renamed"})).await;
    assert_graph_error(status, &body, 400, "Request_BadRequest", "name");
    let (status, _) =
        g.post(&reader, &base, json!({"name": "x-y-z", "issuer": "https://i.example", "subject": "s"})).await;
    assert_eq!(status, 403);

    // Bad input names the property; names and issuer+subject pairs are unique.
    for (body, mentions) in [
        (json!({"name": "no spaces here", "issuer": "https://i.example", "subject": "s"}), "name"),
        (json!({"name": "bad-issuer", "issuer": "http://i.example", "subject": "s"}), "issuer"),
        (
            json!({"name": "two-audiences", "issuer": "https://i.example", "subject": "s", "audiences": ["a", "b"]}),
            "audiences",
        ),
        (json!({"name": "no-subject", "issuer": "https://i.example"}), "subject"),
        (json!({"name": "extra", "issuer": "https://i.example", "subject": "s", "jwks": "{}"}), "jwks"),
        (
            json!({"name": "same-pair", "issuer": "https://token.actions.githubusercontent.com", "subject": "repo:contoso/expenses:environment:prod"}),
            "subject",
        ),
    ] {
        let (status, answer) = g.post(&admin, &base, body).await;
        assert_graph_error(status, &answer, 400, "Request_BadRequest", mentions);
    }
    let (status, answer) = g.post(&admin, &base, github.clone()).await;
    assert_eq!(status, 409, "{answer}");

    // At most twenty.
    for i in 1..20 {
        let body = json!({"name": format!("ci-{i}"), "issuer": "https://i.example", "subject": format!("s{i}")});
        assert_eq!(g.post(&admin, &base, body).await.0, 201);
    }
    let (status, answer) =
        g.post(&admin, &base, json!({"name": "ci-20", "issuer": "https://i.example", "subject": "s20"})).await;
    assert_graph_error(status, &answer, 400, "Request_BadRequest", "at most 20");

    // Deleted by name (204), then gone (404).
    let (status, _) = g.delete(&admin, &format!("{base}/github-main")).await;
    assert_eq!(status, 204);
    let (status, _) = g.get(&reader, &format!("{base}/{fic}")).await;
    assert_eq!(status, 404);
    let (status, _) = g.delete(&admin, &format!("{by_app_id}/ci-1")).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn continuous_access_evaluation_challenges_tokens_of_ended_sign_ins() {
    let g = Graph::start();
    let admin = g.admin().await;
    const CP1: &str = r#"{"access_token":{"xms_cc":{"values":["CP1"]}},"id_token":{"login_hint":{"essential":false}}}"#;
    let sign_in = |claims: Option<String>| {
        let g = &g;
        async move {
            let mut form = vec![
                ("grant_type", "password".to_string()),
                ("client_id", ADMIN_CONSOLE.to_string()),
                ("username", "bob@contoso.test".to_string()),
                ("password", "bob-password-1".to_string()),
                ("scope", "https://graph.microsoft.com/User.Read".to_string()),
            ];
            if let Some(c) = claims {
                form.push(("claims", c));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            g.try_token(CONTOSO, &form).await
        }
    };

    // A client that declares cp1 gets a long-lived token carrying xms_cc; others the usual hour.
    let (status, body) = sign_in(Some(CP1.into())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 86400);
    let capable = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(support::jwt_claims(&capable)["xms_cc"], json!(["cp1"]));
    let (_, body) = sign_in(None).await;
    let plain = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(body["expires_in"], 3599);
    assert!(support::jwt_claims(&plain).get("xms_cc").is_none());
    assert_eq!(g.get(&capable, "/v1.0/me").await.0, 200);

    // The administrator ends Bob's sign-ins: the capable token is challenged at once.
    support::next_second().await;
    let (status, _) = g.post(&admin, &format!("/v1.0/users/{BOB}/revokeSignInSessions"), json!({})).await;
    assert_eq!(status, 200);
    let res = g.c.get(g.url("/v1.0/me")).bearer_auth(&capable).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(challenge.starts_with("Bearer ") && challenge.contains("error=\"insufficient_claims\""), "{challenge}");
    // Kiota's rule: the claims value is double-quoted.
    let claims_b64 = challenge.split("claims=\"").nth(1).unwrap().split('"').next().unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, claims_b64).unwrap(),
    )
    .unwrap();
    let nbf: i64 = claims["access_token"]["nbf"]["value"].as_str().unwrap().parse().unwrap();
    assert_eq!(claims["access_token"]["nbf"]["essential"], true);
    let body: Value = res.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("TokenIssuedBeforeRevocationTimestamp"), "{body}");
    // The hour-long token is not re-evaluated (as in Entra).
    assert_eq!(g.get(&plain, "/v1.0/me").await.0, 200);

    // The client answers the challenge: a new sign-in with the challenge's claims; Graph accepts it.
    let answer =
        CP1.replace(r#""access_token":{"#, &format!(r#""access_token":{{"nbf":{{"essential":true,"value":"{nbf}"}},"#));
    if time::OffsetDateTime::now_utc().unix_timestamp() < nbf {
        support::next_second().await;
    }
    let (status, body) = sign_in(Some(answer)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(g.get(body["access_token"].as_str().unwrap(), "/v1.0/me").await.0, 200);
    // An old grant cannot answer a challenge newer than itself.
    let too_new =
        CP1.replace(r#""access_token":{"#, r#""access_token":{"nbf":{"essential":true,"value":"99999999999"},"#);
    let (status, body) = sign_in(Some(too_new)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("interaction_required")), "{body}");
    let (status, body) = sign_in(Some("[not an object]".into())).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("claims"), "{body}");

    // A token issued in the same second as the revocation, before it, is challenged too: `iat`
    // holds whole seconds, so the revocation's second counts as after every token of it (the
    // token and the revocation share a second here unless the machine stalls for most of one).
    support::next_second().await;
    let (_, body) = sign_in(Some(CP1.into())).await;
    let same_second = body["access_token"].as_str().unwrap().to_string();
    let (status, _) = g.post(&admin, &format!("/v1.0/users/{BOB}/revokeSignInSessions"), json!({})).await;
    assert_eq!(status, 200);
    let res = g.c.get(g.url("/v1.0/me")).bearer_auth(&same_second).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("TokenIssuedBeforeRevocationTimestamp"));

    // Disabling Bob: challenged too.
    support::next_second().await;
    let (_, body) = sign_in(Some(CP1.into())).await;
    let capable = body["access_token"].as_str().unwrap().to_string();
    let (status, _) = g.patch(&admin, &format!("/v1.0/users/{BOB}"), json!({"accountEnabled": false})).await;
    assert_eq!(status, 204);
    let res = g.c.get(g.url("/v1.0/me")).bearer_auth(&capable).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("UserDisabled"));
}

/// Authorization codes are sealed, not stored: what deleting the unredeemed codes did, checks
/// at redemption do. A code issued before the user's sign-ins were ended is refused
/// (AADSTS70000), and so is a code altered by one character; a fresh code works.
#[tokio::test]
async fn a_code_issued_before_sign_ins_ended_is_refused() {
    let g = &Graph::start();
    let admin = g.admin().await;
    let redirect = "http://localhost:5001/cb";
    let code_of_bob = || async move {
        let (verifier, challenge) = support::pkce_pair();
        let mut url = reqwest::Url::parse(&g.server.url(&format!("/{CONTOSO}/oauth2/v2.0/authorize"))).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", ADMIN_CONSOLE)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect)
            .append_pair("scope", "User.Read offline_access")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let browser = g.server.client();
        let loc = support::sign_in(&browser, &g.server, url.as_str(), "bob@contoso.test", "bob-password-1")
            .await
            .expect("Bob signs in");
        assert!(loc.starts_with(redirect), "{loc}");
        (support::query_param(&loc, "code").expect("a code"), verifier)
    };
    let redeem = |code: String, verifier: String| async move {
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", ADMIN_CONSOLE),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", verifier.as_str()),
        ];
        g.try_token(CONTOSO, &form).await
    };

    // One character changed: not a code Accord issued.
    let (code, verifier) = code_of_bob().await;
    let mut tampered: Vec<char> = code.chars().collect();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == 'A' { 'B' } else { 'A' };
    let (status, body) = redeem(tampered.into_iter().collect(), verifier.clone()).await;
    assert_eq!((status, body["error_codes"][0].as_u64()), (400, Some(70000)), "{body}");
    // The untouched code still works: the tampered one did not use it up.
    let (status, body) = redeem(code, verifier).await;
    assert_eq!(status, 200, "{body}");

    // A code minted, then Bob's sign-ins end before the app redeems it.
    let (code, verifier) = code_of_bob().await;
    let (status, res) = g.post(&admin, &format!("/v1.0/users/{BOB}/revokeSignInSessions"), json!({})).await;
    assert_eq!(status, 200, "{res}");
    let (status, body) = redeem(code, verifier).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    assert_eq!(body["error_codes"][0], 70000, "{body}");
    // Signing in again gives a code that works.
    let (code, verifier) = code_of_bob().await;
    let (status, body) = redeem(code, verifier).await;
    assert_eq!(status, 200, "{body}");
}
