//! The OpenAPI 3.0 description of the Graph-compatible API, served at
//! `/openapi/graph-v1.0.json`. [`operations`] is the one catalogue of what the API serves and
//! what each operation needs; `tests/graph_openapi.rs` keeps it in step with the router (every
//! documented operation answers, every other method on a documented path is a 405, and every
//! registered route is documented).

use crate::state::SharedState;
use accord_core::microsoft_graph::permissions::*;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// How a path reaches its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// A route of `graph::route_table` with exactly this path.
    Route,
    /// A segment with an entity key or a bound function (`applications(appId='…')`,
    /// `filterByCurrentUser(on='reviewer')`), matched inside a handler.
    InSegment,
}

/// One operation of the API.
#[derive(Debug, Clone)]
pub struct Operation {
    /// Lower case: `get`, `post`, `patch`, `put` or `delete`.
    pub method: &'static str,
    /// Below `/v1.0`, with `{name}` parameters.
    pub path: String,
    pub summary: &'static str,
    /// Any one of these delegated permissions (`scp`) lets a signed-in user call it.
    pub delegated: &'static [&'static str],
    /// Any one of these application permissions (`roles`) lets an app call it.
    pub application: &'static [&'static str],
    /// The status of a successful answer.
    pub success: u16,
    /// A list that takes the OData query options.
    pub collection: bool,
    /// Not in Microsoft Graph: an Accord extension.
    pub extension: bool,
    pub served: Served,
}

const NONE: &[&str] = &[];
/// `$batch` needs no permission of its own: each request in it needs its own.
const BATCH: &[&str] = &["(each request's own)"];
/// An application's federated identity credentials, and one of them.
const FIC: &str = "/applications/{app}/federatedIdentityCredentials";
const WEBHOOKS: &str = "/applications/{app}/accord.consentWebhooks";
const FIC_ONE: &str = "/applications/{app}/federatedIdentityCredentials/{credential}";

/// Shorthand for the catalogue below.
fn op(
    method: &'static str,
    path: &str,
    summary: &'static str,
    delegated: &'static [&'static str],
    application: &'static [&'static str],
) -> Operation {
    let success = match method {
        "post" => 201,
        "delete" => 204,
        _ => 200,
    };
    Operation {
        method,
        path: path.to_string(),
        summary,
        delegated,
        application,
        success,
        collection: false,
        extension: false,
        served: Served::Route,
    }
}

impl Operation {
    fn list(mut self) -> Self {
        self.collection = true;
        self
    }
    fn status(mut self, success: u16) -> Self {
        self.success = success;
        self
    }
    fn in_segment(mut self) -> Self {
        self.served = Served::InSegment;
        self
    }
    fn extension(mut self) -> Self {
        self.extension = true;
        self
    }
}

/// Every operation the API serves.
pub fn operations() -> Vec<Operation> {
    let mut ops = directory_operations();
    ops.extend(enterprise_app_operations());
    ops.extend(consent_operations());
    ops.extend(calendar_operations());
    ops
}

fn directory_operations() -> Vec<Operation> {
    let app_key = "/applications(appId='{appId}')";
    let role_key = "/directoryRoles(roleTemplateId='{roleTemplateId}')";
    vec![
        op("get", "/me", "The signed-in user", ME, NONE),
        op("post", "/$batch", "Up to 20 requests in one round trip, each authorised as if sent alone", BATCH, BATCH)
            .status(200),
        op("get", "/me/transitiveMemberOf", "The signed-in user's groups, nested included", ME, NONE).list(),
        op("post", "/me/getMemberObjects", "Ids of the signed-in user's groups", ME, NONE).status(200),
        op(
            "get",
            "/users/{user}/transitiveMemberOf",
            "A user's groups, nested included",
            MEMBERSHIP_READ,
            MEMBERSHIP_READ_APP,
        )
        .list(),
        op("post", "/users/{user}/getMemberObjects", "Ids of a user's groups", MEMBERSHIP_READ, MEMBERSHIP_READ_APP)
            .status(200),
        op("get", "/users", "List users", USER_READ_ANY, USER_READ_APP).list(),
        op("get", "/users/$count", "Count users (with ConsistencyLevel: eventual)", USER_READ_ANY, USER_READ_APP),
        op("post", "/users", "Create a user", USER_WRITE, USER_WRITE_APP),
        op("get", "/users/{user}", "Get a user by id or userPrincipalName", USER_READ_ANY, USER_READ_APP),
        op(
            "patch",
            "/users/{user}",
            "Update a user (accountEnabled, displayName, passwordProfile)",
            USER_WRITE,
            USER_WRITE_APP,
        )
        .status(204),
        op("delete", "/users/{user}", "Delete a user and what exists only through them", USER_WRITE, USER_WRITE_APP),
        op(
            "post",
            "/users/{user}/revokeSignInSessions",
            "End the user's sessions and refresh tokens",
            USER_WRITE,
            USER_WRITE_APP,
        )
        .status(200),
        op("get", "/groups", "List groups", GROUP_READ, GROUP_READ_APP).list(),
        op("get", "/groups/$count", "Count groups (with ConsistencyLevel: eventual)", GROUP_READ, GROUP_READ_APP),
        op("post", "/groups", "Create a security group", GROUP_WRITE, GROUP_WRITE_APP),
        op("get", "/groups/{group}", "Get a group", GROUP_READ, GROUP_READ_APP),
        op("get", "/groups/{group}/members", "Direct members of a group", GROUP_READ, GROUP_READ_APP).list(),
        op(
            "get",
            "/groups/{group}/transitiveMembers",
            "Members, also through nested groups",
            GROUP_READ,
            GROUP_READ_APP,
        )
        .list(),
        op("post", "/groups/{group}/members/$ref", "Add a member", GROUP_WRITE, GROUP_WRITE_APP).status(204),
        op("delete", "/groups/{group}/members/{member}/$ref", "Remove a member", GROUP_WRITE, GROUP_WRITE_APP),
        op("get", "/applications", "List the tenant's app registrations", APP_READ, APP_READ_APP).list(),
        op("post", "/applications", "Register an application", APP_WRITE, APP_WRITE_APP),
        op("get", "/applications/{app}", "Get an app registration by object id", APP_READ, APP_READ_APP),
        op("patch", "/applications/{app}", "Update an app registration", APP_WRITE, APP_WRITE_APP).status(204),
        op(
            "delete",
            "/applications/{app}",
            "Delete an app registration and its enterprise applications",
            APP_WRITE,
            APP_WRITE_APP,
        ),
        op("post", "/applications/{app}/addPassword", "Add a client secret (shown once)", APP_WRITE, APP_WRITE_APP)
            .status(200),
        op("post", "/applications/{app}/removePassword", "Remove a client secret", APP_WRITE, APP_WRITE_APP)
            .status(204),
        // As in Graph, the proof of possession in the body authorizes these even without the
        // listed permissions (an app rolling its own certificates).
        op(
            "post",
            "/applications/{app}/addKey",
            "Add a certificate, proven by a current one",
            APP_WRITE,
            APP_WRITE_APP,
        )
        .status(200),
        op(
            "post",
            "/applications/{app}/removeKey",
            "Remove a certificate, proven by a current one",
            APP_WRITE,
            APP_WRITE_APP,
        )
        .status(204),
        op("post", WEBHOOKS, "Register a consent webhook (Accord extension)", APP_WRITE, APP_WRITE_APP)
            .status(201)
            .extension(),
        op("get", WEBHOOKS, "An app's consent webhooks (Accord extension)", APP_READ, APP_READ_APP).extension(),
        op(
            "delete",
            &format!("{WEBHOOKS}/{{webhook}}"),
            "Remove a consent webhook (Accord extension)",
            APP_WRITE,
            APP_WRITE_APP,
        )
        .extension(),
        op(
            "post",
            &format!("{WEBHOOKS}/{{webhook}}/accord.rotateSecret"),
            "Rotate a consent webhook's secret (Accord extension)",
            APP_WRITE,
            APP_WRITE_APP,
        )
        .status(200)
        .extension(),
        op(
            "get",
            &format!("{WEBHOOKS}/{{webhook}}/deliveries"),
            "A consent webhook's delivery log (Accord extension)",
            APP_READ,
            APP_READ_APP,
        )
        .extension(),
        op("get", FIC, "List an app's federated identity credentials", APP_READ, APP_READ_APP).list(),
        op("post", FIC, "Add a federated identity credential", APP_WRITE, APP_WRITE_APP).status(201),
        op("get", FIC_ONE, "Get a federated identity credential by id or name", APP_READ, APP_READ_APP),
        op("patch", FIC_ONE, "Update a federated identity credential", APP_WRITE, APP_WRITE_APP).status(204),
        op("delete", FIC_ONE, "Delete a federated identity credential", APP_WRITE, APP_WRITE_APP),
        op(
            "get",
            &format!("{app_key}/federatedIdentityCredentials"),
            "List federated credentials, by appId",
            APP_READ,
            APP_READ_APP,
        )
        .list()
        .in_segment(),
        op(
            "post",
            &format!("{app_key}/federatedIdentityCredentials"),
            "Add a federated credential, by appId",
            APP_WRITE,
            APP_WRITE_APP,
        )
        .status(201)
        .in_segment(),
        op(
            "get",
            &format!("{app_key}/federatedIdentityCredentials/{{credential}}"),
            "Get a federated credential, by appId",
            APP_READ,
            APP_READ_APP,
        )
        .in_segment(),
        op(
            "patch",
            &format!("{app_key}/federatedIdentityCredentials/{{credential}}"),
            "Update a federated credential, by appId",
            APP_WRITE,
            APP_WRITE_APP,
        )
        .status(204)
        .in_segment(),
        op(
            "delete",
            &format!("{app_key}/federatedIdentityCredentials/{{credential}}"),
            "Delete a federated credential, by appId",
            APP_WRITE,
            APP_WRITE_APP,
        )
        .in_segment(),
        op("get", app_key, "Get an app registration by appId", APP_READ, APP_READ_APP).in_segment(),
        op("patch", app_key, "Update an app registration by appId", APP_WRITE, APP_WRITE_APP).status(204).in_segment(),
        op("delete", app_key, "Delete an app registration by appId", APP_WRITE, APP_WRITE_APP).in_segment(),
        op("post", &format!("{app_key}/addPassword"), "Add a client secret, by appId", APP_WRITE, APP_WRITE_APP)
            .status(200)
            .in_segment(),
        op("post", &format!("{app_key}/removePassword"), "Remove a client secret, by appId", APP_WRITE, APP_WRITE_APP)
            .status(204)
            .in_segment(),
        op("post", &format!("{app_key}/addKey"), "Add a certificate, by appId", APP_WRITE, APP_WRITE_APP)
            .status(200)
            .in_segment(),
        op("post", &format!("{app_key}/removeKey"), "Remove a certificate, by appId", APP_WRITE, APP_WRITE_APP)
            .status(204)
            .in_segment(),
        op("get", "/directoryRoles", "List the activated directory roles", ROLE_READ, ROLE_READ_APP).list(),
        op("get", "/directoryRoles/{role}", "Get a directory role", ROLE_READ, ROLE_READ_APP),
        op("get", "/directoryRoles/{role}/members", "Holders of a role", ROLE_READ, ROLE_READ_APP).list(),
        op("post", "/directoryRoles/{role}/members/$ref", "Give a user the role", ROLE_WRITE, ROLE_WRITE).status(204),
        op(
            "delete",
            "/directoryRoles/{role}/members/{member}/$ref",
            "Take the role from a user",
            ROLE_WRITE,
            ROLE_WRITE,
        ),
        op("get", role_key, "Get a directory role by template id", ROLE_READ, ROLE_READ_APP).in_segment(),
        op("get", &format!("{role_key}/members"), "Holders of a role, by template id", ROLE_READ, ROLE_READ_APP)
            .list()
            .in_segment(),
        op("post", &format!("{role_key}/members/$ref"), "Give a user the role, by template id", ROLE_WRITE, ROLE_WRITE)
            .status(204)
            .in_segment(),
        op(
            "delete",
            &format!("{role_key}/members/{{member}}/$ref"),
            "Take the role from a user, by template id",
            ROLE_WRITE,
            ROLE_WRITE,
        )
        .in_segment(),
        op("get", "/roleManagement/directory/roleAssignments", "Directory role assignments", ROLE_READ, ROLE_READ_APP)
            .list(),
    ]
}

fn enterprise_app_operations() -> Vec<Operation> {
    let grants = "/oauth2PermissionGrants";
    vec![
        op("get", "/servicePrincipals", "List enterprise applications", APP_READ, APP_READ_APP).list(),
        op("get", "/servicePrincipals/{sp}", "Get an enterprise application", APP_READ, APP_READ_APP),
        op(
            "patch",
            "/servicePrincipals/{sp}",
            "Enable or disable an app; require assignment",
            APP_WRITE,
            APP_WRITE_APP,
        )
        .status(204),
        op(
            "delete",
            "/servicePrincipals/{sp}",
            "Delete an enterprise application with its grants and assignments",
            APP_WRITE,
            APP_WRITE_APP,
        )
        .status(204),
        op(
            "get",
            "/servicePrincipals/{sp}/appRoleAssignedTo",
            "Users and groups assigned",
            ASSIGNMENT_READ,
            ASSIGNMENT_READ_APP,
        )
        .list(),
        op(
            "post",
            "/servicePrincipals/{sp}/appRoleAssignedTo",
            "Assign a user or group",
            ASSIGNMENT_WRITE,
            ASSIGNMENT_WRITE,
        ),
        op(
            "delete",
            "/servicePrincipals/{sp}/appRoleAssignedTo/{assignment}",
            "Remove an assignment",
            ASSIGNMENT_WRITE,
            ASSIGNMENT_WRITE,
        ),
        op(
            "get",
            "/servicePrincipals/{sp}/appRoleAssignments",
            "Application permissions the app holds",
            ASSIGNMENT_READ,
            ASSIGNMENT_READ_APP,
        )
        .list(),
        op("get", grants, "List delegated permission grants", GRANT_READ, GRANT_READ_APP).list(),
        op("post", grants, "Grant delegated permissions", GRANT_WRITE, GRANT_WRITE),
        op("get", &format!("{grants}/{{grant}}"), "Get a grant", GRANT_READ, GRANT_READ_APP),
        op("patch", &format!("{grants}/{{grant}}"), "Change a grant's scopes", GRANT_WRITE, GRANT_WRITE).status(204),
        op("delete", &format!("{grants}/{{grant}}"), "Revoke a grant", GRANT_WRITE, GRANT_WRITE),
        op("get", "/policies/authorizationPolicy", "The user consent setting", AUTH_POLICY_READ, AUTH_POLICY_READ_APP),
        op(
            "patch",
            "/policies/authorizationPolicy",
            "Change the user consent setting",
            AUTH_POLICY_WRITE,
            AUTH_POLICY_WRITE,
        )
        .status(204),
    ]
}

fn consent_operations() -> Vec<Operation> {
    let requests = "/identityGovernance/appConsent/appConsentRequests";
    let mine = "filterByCurrentUser(on='reviewer')";
    let classifications = "/servicePrincipals/{sp}/delegatedPermissionClassifications";
    let mut ops = vec![
        op(
            "get",
            "/policies/adminConsentRequestPolicy",
            "The admin consent request policy",
            REQUEST_POLICY_READ,
            REQUEST_POLICY_READ,
        ),
        op(
            "patch",
            "/policies/adminConsentRequestPolicy",
            "Change the admin consent request policy",
            REQUEST_POLICY_WRITE,
            REQUEST_POLICY_WRITE,
        )
        .status(204),
        op(
            "put",
            "/policies/adminConsentRequestPolicy",
            "Change the admin consent request policy (Graph documents PUT)",
            REQUEST_POLICY_WRITE,
            REQUEST_POLICY_WRITE,
        )
        .status(204),
        op("get", requests, "Apps with admin consent requests", REQUESTS_READ, REQUESTS_READ).list(),
        op("get", &format!("{requests}/{{request}}"), "One app's requests", REQUESTS_READ, REQUESTS_READ),
        op("get", &format!("{requests}/{mine}"), "Apps whose requests the caller reviews", REQUESTS_READ, NONE)
            .list()
            .in_segment(),
        op(
            "get",
            &format!("{requests}/{{request}}/userConsentRequests"),
            "The users' requests for one app",
            REQUESTS_READ,
            REQUESTS_READ,
        )
        .list(),
        op(
            "get",
            &format!("{requests}/{{request}}/userConsentRequests/{{user_request}}"),
            "One user's request",
            REQUESTS_READ,
            REQUESTS_READ,
        ),
        op(
            "get",
            &format!("{requests}/{{request}}/userConsentRequests/{{user_request}}/approval"),
            "The reviewers' decision on one user's request",
            REQUESTS_READ,
            REQUESTS_READ,
        ),
        op(
            "get",
            &format!("{requests}/{{request}}/userConsentRequests/{mine}"),
            "The users' requests the caller reviews",
            REQUESTS_READ,
            NONE,
        )
        .list()
        .in_segment(),
        op("get", classifications, "Permission classifications", CLASSIFICATION_READ, CLASSIFICATION_READ_APP).list(),
        op("post", classifications, "Classify a delegated permission", CLASSIFICATION_WRITE, CLASSIFICATION_WRITE),
        op(
            "delete",
            &format!("{classifications}/{{classification}}"),
            "Remove a classification",
            CLASSIFICATION_WRITE,
            CLASSIFICATION_WRITE,
        ),
    ];
    for (action, summary) in [
        ("accord.approve", "Accord extension: approve an app's pending requests (grants admin consent)"),
        ("accord.deny", "Accord extension: deny an app's pending requests, with a justification"),
        ("accord.block", "Accord extension: deny and block the app in the tenant, with a justification"),
    ] {
        ops.push(
            op("post", &format!("{requests}/{{request}}/{action}"), summary, REQUESTS_WRITE, NONE)
                .status(204)
                .extension(),
        );
    }
    ops
}

fn calendar_operations() -> Vec<Operation> {
    let mut ops = vec![
        op("post", "/subscriptions", "Subscribe to changes of a mailbox's events", CALENDAR_READ, CALENDAR_READ_APP),
        op("get", "/subscriptions", "The caller's subscriptions", CALENDAR_READ, CALENDAR_READ_APP),
        op("get", "/subscriptions/{id}", "A subscription", CALENDAR_READ, CALENDAR_READ_APP),
        op("patch", "/subscriptions/{id}", "Renew or move a subscription", CALENDAR_READ, CALENDAR_READ_APP),
        op("delete", "/subscriptions/{id}", "End a subscription", CALENDAR_READ, CALENDAR_READ_APP),
        op("post", "/subscriptions/{id}/reauthorize", "Resume a paused subscription", CALENDAR_READ, CALENDAR_READ_APP)
            .status(204),
    ];
    for prefix in ["/me", "/users/{user}"] {
        // `/me` needs a signed-in user: no application permission reaches it.
        let (read_app, write_app) =
            if prefix == "/me" { (NONE, NONE) } else { (CALENDAR_READ_APP, CALENDAR_WRITE_APP) };
        for segment in ["events", "calendar/events"] {
            let list = format!("{prefix}/{segment}");
            let one = format!("{list}/{{id}}");
            ops.push(op("get", &list, "List events", CALENDAR_READ, read_app).list());
            ops.push(op("post", &list, "Create an event", CALENDAR_WRITE, write_app));
            ops.push(op("get", &one, "Get an event", CALENDAR_READ, read_app));
            ops.push(op("patch", &one, "Update an event", CALENDAR_WRITE, write_app));
            ops.push(op("delete", &one, "Delete an event", CALENDAR_WRITE, write_app));
        }
        for segment in ["calendarView", "calendar/calendarView"] {
            ops.push(
                op("get", &format!("{prefix}/{segment}"), "Events in a time window", CALENDAR_READ, read_app).list(),
            );
            ops.push(op(
                "get",
                &format!("{prefix}/{segment}/delta"),
                "Changes to events in a time window",
                CALENDAR_READ,
                read_app,
            ));
        }
    }
    ops
}

/// `GET /openapi/graph-v1.0.json`.
pub async fn serve(State(state): State<SharedState>) -> Response {
    Json(document(&state.settings.public_url)).into_response()
}

/// The OpenAPI 3.0.3 document, with URLs under `public_url`.
pub fn document(public_url: &str) -> Value {
    let mut paths = Map::new();
    for o in operations() {
        let item = paths.entry(o.path.clone()).or_insert_with(|| json!({}));
        item[o.method] = operation_object(&o);
    }
    let delegated: BTreeSet<&str> = operations().iter().flat_map(|o| o.delegated.iter().copied()).collect();
    let scopes: Map<String, Value> = delegated
        .into_iter()
        .map(|p| (format!("https://graph.microsoft.com/{p}"), Value::String(format!("Delegated permission {p}"))))
        .collect();
    let authority = format!("{public_url}/organizations/oauth2/v2.0");
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Accord: Microsoft-Graph-compatible API",
            "version": "v1.0",
            "description": "The part of Microsoft Graph v1.0 Accord serves (directory, enterprise apps, consent \
                management, calendars), with Graph's shapes and error body. Operations marked \
                x-accord-extension are not in Microsoft Graph. x-permissions lists the delegated (scp) \
                and application (roles) permissions of which a token needs one; directory roles are \
                checked as well (docs/graph-api.md)."
        },
        "servers": [{"url": format!("{public_url}/v1.0")}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "accord": {
                    "type": "oauth2",
                    "flows": {
                        "authorizationCode": {
                            "authorizationUrl": format!("{authority}/authorize"),
                            "tokenUrl": format!("{authority}/token"),
                            "scopes": scopes
                        },
                        "clientCredentials": {
                            "tokenUrl": format!("{public_url}/{{tenant}}/oauth2/v2.0/token"),
                            "scopes": {"https://graph.microsoft.com/.default": "The application permissions granted to the app"}
                        }
                    }
                }
            },
            "schemas": {
                "GraphError": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {
                        "type": "object",
                        "required": ["code", "message", "innerError"],
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "innerError": {
                                "type": "object",
                                "properties": {
                                    "date": {"type": "string"},
                                    "request-id": {"type": "string"},
                                    "client-request-id": {"type": "string"}
                                }
                            }
                        }
                    }}
                }
            },
            "responses": {
                "Error": {
                    "description": "Graph's error body",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GraphError"}}}
                }
            }
        }
    })
}

fn operation_object(o: &Operation) -> Value {
    let mut parameters: Vec<Value> = path_parameters(&o.path)
        .into_iter()
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": path_parameter_schema(&name)}))
        .collect();
    if o.collection {
        for (name, what, schema) in [
            (
                "$filter",
                "OData filter (eq, ne, and, or, not, startswith, any)",
                json!({"type": "string", "minLength": 1}),
            ),
            ("$select", "Properties to return", json!({"type": "string", "pattern": "^[A-Za-z@.]+(,[A-Za-z@.]+)*$"})),
            ("$top", "Page size", json!({"type": "integer", "minimum": 1, "maximum": 999})),
            ("$orderby", "Sort order", json!({"type": "string", "pattern": "^[A-Za-z/]+( (asc|desc))?$"})),
            ("$count", "Include @odata.count", json!({"type": "boolean"})),
        ] {
            parameters
                .push(json!({"name": name, "in": "query", "required": false, "description": what, "schema": schema}));
        }
    }
    let success = match o.success {
        204 => json!({"description": "Done; no body"}),
        status => json!({
            "description": if status == 201 { "Created" } else { "OK" },
            "content": {"application/json": {"schema": {"type": "object"}}}
        }),
    };
    let mut responses = Map::new();
    responses.insert(o.success.to_string(), success);
    for status in ["400", "401", "403", "404"] {
        responses.insert(status.into(), json!({"$ref": "#/components/responses/Error"}));
    }
    let mut object = json!({
        "operationId": operation_id(o),
        "summary": o.summary,
        "tags": [tag(&o.path)],
        "parameters": parameters,
        "responses": responses,
        "security": [{"accord": o.delegated.iter().map(|p| format!("https://graph.microsoft.com/{p}")).collect::<Vec<_>>()}],
        "x-permissions": {"delegated": o.delegated, "application": o.application},
    });
    if matches!(o.method, "post" | "patch" | "put") {
        object["requestBody"] = json!({
            "required": !o.extension || o.path.ends_with("accord.deny") || o.path.ends_with("accord.block"),
            "content": {"application/json": {"schema": request_body_schema(o)}}
        });
    }
    if o.extension {
        object["x-accord-extension"] = Value::Bool(true);
    }
    object
}

/// The `Allow` header for `path` (below `/v1.0`, with `{name}` parameters): the methods the
/// catalogue documents there, GET's HEAD included.
pub fn allowed_methods(path: &str) -> String {
    let documented: Vec<&str> = operations().iter().filter(|o| o.path == path).map(|o| o.method).collect();
    let mut allow = Vec::new();
    for method in ["get", "post", "put", "patch", "delete"] {
        if documented.contains(&method) {
            allow.push(method.to_uppercase());
            if method == "get" {
                allow.push("HEAD".into());
            }
        }
    }
    allow.join(", ")
}

/// Every key in a path is an object id (a GUID, as Accord's event ids are too) but a user's,
/// which may also be the userPrincipalName.
fn path_parameter_schema(name: &str) -> Value {
    match name {
        "user" => json!({
            "type": "string",
            "description": "The user's object id or userPrincipalName",
            "pattern": "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[^@/]+@[^@/]+)$"
        }),
        _ => json!({"type": "string", "format": "uuid"}),
    }
}

/// The body a creating operation needs: its required properties and their types, as the
/// handlers check them. Updates take any subset of the resource's writable properties. Other
/// properties are refused by most handlers, but `@odata.type` (which Graph SDKs send) is not, so
/// the objects stay open.
fn request_body_schema(o: &Operation) -> Value {
    let string = || json!({"type": "string"});
    let boolean = || json!({"type": "boolean"});
    let guid = || json!({"type": "string", "format": "uuid"});
    let object = |required: &[&str], properties: Value| json!({"type": "object", "required": required, "properties": properties});
    let zoned = || object(&["dateTime", "timeZone"], json!({"dateTime": string(), "timeZone": string()}));
    let last = o.path.rsplit('/').next().unwrap_or_default();
    match (o.method, last) {
        ("post", "users") => object(
            &["accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile"],
            json!({
                "accountEnabled": boolean(), "displayName": string(), "mailNickname": string(),
                "userPrincipalName": string(),
                "passwordProfile": object(&["password"], json!({
                    "password": string(), "forceChangePasswordNextSignIn": boolean()
                })),
            }),
        ),
        ("post", "groups") => object(
            &["displayName", "mailNickname", "mailEnabled", "securityEnabled"],
            json!({"displayName": string(), "mailNickname": string(), "mailEnabled": boolean(),
                   "securityEnabled": boolean(), "description": string()}),
        ),
        ("post", "applications") => object(
            &["displayName"],
            json!({"displayName": string(), "signInAudience": {"type": "string", "enum": ["AzureADMyOrg", "AzureADMultipleOrgs"]}}),
        ),
        ("post", "oauth2PermissionGrants") => object(
            &["clientId", "consentType", "resourceId", "scope"],
            json!({"clientId": guid(), "consentType": {"type": "string", "enum": ["AllPrincipals", "Principal"]},
                   "principalId": guid(), "resourceId": guid(), "scope": string()}),
        ),
        ("post", "appRoleAssignedTo") => object(
            &["principalId", "resourceId", "appRoleId"],
            json!({"principalId": guid(), "resourceId": guid(), "appRoleId": guid()}),
        ),
        ("post", "delegatedPermissionClassifications") => object(
            &["classification"],
            json!({"classification": {"type": "string", "enum": ["low"]}, "permissionId": guid(), "permissionName": string()}),
        ),
        ("post", "events") => object(
            &["subject", "start", "end"],
            json!({"subject": string(), "start": zoned(), "end": zoned(), "isOnlineMeeting": boolean()}),
        ),
        ("post", "$ref") => object(&["@odata.id"], json!({"@odata.id": {"type": "string", "format": "uri"}})),
        ("post", "addPassword") => object(
            &[],
            json!({"passwordCredential": {"type": "object", "properties": {"displayName": string(), "endDateTime": {"type": "string", "format": "date-time"}}}}),
        ),
        ("post", "removePassword") => object(&["keyId"], json!({"keyId": guid()})),
        ("post", "addKey") => object(
            &["keyCredential", "proof"],
            json!({"keyCredential": {"type": "object", "properties": {"type": string(), "usage": string(), "key": string(), "displayName": string()}}, "passwordCredential": {"type": "null"}, "proof": string()}),
        ),
        ("post", "removeKey") => object(&["keyId", "proof"], json!({"keyId": guid(), "proof": string()})),
        ("post", "accord.deny" | "accord.block") => object(&[], json!({"justification": string()})),
        _ => json!({"type": "object"}),
    }
}

/// `{name}` parameters of a path, in order.
pub fn path_parameters(path: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else { break };
        names.push(rest[start + 1..start + len].to_string());
        rest = &rest[start + len + 1..];
    }
    names
}

fn tag(path: &str) -> String {
    let first = path.trim_start_matches('/').split(['/', '(']).next().unwrap_or_default();
    first.to_string()
}

/// `get_users_user_calendar_events` style: unique per (method, path).
fn operation_id(o: &Operation) -> String {
    let mut id = o.method.to_string();
    for part in o.path.split(|c: char| !c.is_ascii_alphanumeric()) {
        if !part.is_empty() {
            id.push('_');
            id.push_str(part);
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_unique_and_paths_well_formed() {
        let ops = operations();
        let ids: BTreeSet<String> = ops.iter().map(operation_id).collect();
        assert_eq!(ids.len(), ops.len(), "two operations share an operationId");
        for o in &ops {
            assert!(o.path.starts_with('/') && !o.path.ends_with('/'), "{}", o.path);
            assert!(["get", "post", "patch", "put", "delete"].contains(&o.method), "{}", o.method);
            assert!(!o.delegated.is_empty(), "{} {} has no delegated permission", o.method, o.path);
        }
        assert_eq!(path_parameters("/users/{user}/events/{id}"), ["user", "id"]);
        assert_eq!(tag("/applications(appId='{appId}')"), "applications");
    }

    #[test]
    fn every_table_route_is_documented_and_every_documented_route_is_in_the_table() {
        let routes: BTreeSet<String> =
            super::super::route_paths().into_iter().map(|p| p.trim_start_matches("/v1.0").to_string()).collect();
        let documented: BTreeSet<String> =
            operations().into_iter().filter(|o| o.served == Served::Route).map(|o| o.path).collect();
        let undocumented: Vec<_> = routes.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routes).collect();
        assert!(undocumented.is_empty(), "routes missing from the OpenAPI document: {undocumented:?}");
        assert!(unrouted.is_empty(), "documented paths with no route: {unrouted:?}");
    }

    /// What a generated client or a fuzzer reads off the document: keys are GUIDs (but a user's,
    /// which may be a UPN), $top's bounds, and what a create needs.
    #[test]
    fn parameters_and_bodies_are_typed() {
        let doc = document("https://id.example");
        let op = |path: &str, method: &str| doc["paths"][path][method].clone();
        let params = |o: &Value| o["parameters"].as_array().unwrap().clone();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, o) in item.as_object().unwrap() {
                for p in params(o).iter().filter(|p| p["in"] == "path" && p["name"] != "user") {
                    assert_eq!(p["schema"]["format"], "uuid", "{method} {path}: {p}");
                }
            }
        }
        let top = params(&op("/users", "get")).into_iter().find(|p| p["name"] == "$top").unwrap();
        assert_eq!(top["schema"], json!({"type": "integer", "minimum": 1, "maximum": 999}));
        let user = params(&op("/users/{user}", "get"))[0]["schema"]["pattern"].as_str().unwrap().to_string();
        assert!(user.contains("[0-9a-fA-F]{12}|[^@/]+@[^@/]+"), "a user key is a GUID or a UPN: {user}");
        let create = &op("/users", "post")["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(
            create["required"],
            json!(["accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile"])
        );
        let grant = &op("/oauth2PermissionGrants", "post")["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(grant["properties"]["consentType"]["enum"], json!(["AllPrincipals", "Principal"]));
        let patch = &op("/users/{user}", "patch")["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(patch, &json!({"type": "object"}));
    }
}
