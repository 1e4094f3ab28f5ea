//! The Microsoft-Graph-compatible API (`/v1.0/…`): shared error body and request ids
//! ([`errors`]), the caller from the bearer token ([`auth`]), OData query options ([`odata`]),
//! time zones ([`timezone`]) and the endpoints ([`calendar`], [`directory`], …), described by
//! [`openapi`]. See docs/graph-api.md.

pub mod applications;
pub mod assignments;
pub mod auth;
pub mod batch;
pub mod calendar;
pub mod consent_policies;
pub mod consent_requests;
pub mod consent_webhooks;
pub mod directory;
pub mod directory_roles;
pub mod directory_writes;
pub mod errors;
pub mod federated_credentials;
pub mod grants;
pub mod keyed;
pub mod memberships;
pub mod odata;
pub mod openapi;
pub mod policies;
pub mod request;
pub mod service_principals;
pub mod subscriptions;
pub mod timezone;
pub mod users;

use crate::state::SharedState;
use auth::Caller;
use axum::extract::{MatchedPath, OriginalUri, State};
use axum::http::HeaderMap;
use axum::routing::{any, delete, get, post, MethodRouter};
use axum::{middleware, Router};
use calendar::Collection;
use errors::GraphError;
use request::GraphPath;

/// Every Graph route, with the request-id middleware. Merge into the application router.
pub fn routes() -> Router<SharedState> {
    let mut r = Router::new();
    for (path, methods) in route_table() {
        r = r.route(&path, methods);
    }
    // Entity keys in a segment (`applications(appId='…')`) are matched by `keyed`; it answers
    // every other path with Graph's unknown-segment error.
    // The Graph SDKs call functions with parentheses (`calendarView/delta()`); Graph takes both.
    for prefix in ["/v1.0/me", "/v1.0/users/{user}"] {
        for segment in ["calendarView", "calendar/calendarView"] {
            r = r.route(
                &format!("{prefix}/{segment}/delta()"),
                get(calendar::delta::delta).fallback(method_not_allowed),
            );
        }
    }
    r.route("/v1.0", any(unknown_segment))
        .route("/v1.0/{*rest}", any(keyed::dispatch))
        .route("/openapi/graph-v1.0.json", get(openapi::serve))
        .layer(middleware::from_fn(errors::context))
}

/// The path of every route `routes` registers (besides the keyed catch-all), for the OpenAPI
/// document's sync test.
#[cfg(test)]
pub fn route_paths() -> Vec<String> {
    route_table().into_iter().map(|(path, _)| path).collect()
}

/// Further Graph resources add their routes here (and their operations to `openapi::OPERATIONS`).
fn route_table() -> Vec<(String, MethodRouter<SharedState>)> {
    let mut table: Vec<(String, MethodRouter<SharedState>)> = vec![
        ("/v1.0/me".into(), get(users::me).fallback(method_not_allowed)),
        ("/v1.0/$batch".into(), post(batch::batch).fallback(method_not_allowed)),
        (
            "/v1.0/subscriptions".into(),
            get(subscriptions::list).post(subscriptions::create).fallback(method_not_allowed),
        ),
        (
            "/v1.0/subscriptions/{id}".into(),
            get(subscriptions::get)
                .patch(subscriptions::update)
                .delete(subscriptions::delete)
                .fallback(method_not_allowed),
        ),
        ("/v1.0/subscriptions/{id}/reauthorize".into(), post(subscriptions::reauthorize).fallback(method_not_allowed)),
        ("/v1.0/me/transitiveMemberOf".into(), get(memberships::my_transitive_member_of).fallback(method_not_allowed)),
        ("/v1.0/me/getMemberObjects".into(), post(memberships::my_member_objects).fallback(method_not_allowed)),
        (
            "/v1.0/users/{user}/transitiveMemberOf".into(),
            get(memberships::user_transitive_member_of).fallback(method_not_allowed),
        ),
        (
            "/v1.0/users/{user}/getMemberObjects".into(),
            post(memberships::user_member_objects).fallback(method_not_allowed),
        ),
        ("/v1.0/users/$count".into(), get(directory::count_users).fallback(method_not_allowed)),
        ("/v1.0/groups/$count".into(), get(directory::count_groups).fallback(method_not_allowed)),
        (
            "/v1.0/users".into(),
            get(directory::list_users).post(directory_writes::create_user).fallback(method_not_allowed),
        ),
        (
            "/v1.0/users/{user}".into(),
            get(users::user)
                .patch(directory_writes::update_user)
                .delete(directory_writes::delete_user)
                .fallback(method_not_allowed),
        ),
        (
            "/v1.0/users/{user}/revokeSignInSessions".into(),
            post(directory_writes::revoke_sign_in_sessions).fallback(method_not_allowed),
        ),
        (
            "/v1.0/groups".into(),
            get(directory::list_groups).post(directory_writes::create_group).fallback(method_not_allowed),
        ),
        (
            "/v1.0/groups/{group}/members/$ref".into(),
            post(directory_writes::add_group_member).fallback(method_not_allowed),
        ),
        (
            "/v1.0/groups/{group}/members/{member}/$ref".into(),
            delete(directory_writes::remove_group_member).fallback(method_not_allowed),
        ),
        ("/v1.0/applications".into(), get(applications::list).post(applications::create).fallback(method_not_allowed)),
        (
            "/v1.0/applications/{app}".into(),
            get(applications::get).patch(applications::update).delete(applications::delete).fallback(method_not_allowed),
        ),
        ("/v1.0/applications/{app}/addPassword".into(), post(applications::add_password).fallback(method_not_allowed)),
        (
            "/v1.0/applications/{app}/removePassword".into(),
            post(applications::remove_password).fallback(method_not_allowed),
        ),
        ("/v1.0/applications/{app}/addKey".into(), post(applications::add_key).fallback(method_not_allowed)),
        (
            "/v1.0/applications/{app}/accord.consentWebhooks".into(),
            get(consent_webhooks::list).post(consent_webhooks::create).fallback(method_not_allowed),
        ),
        (
            "/v1.0/applications/{app}/accord.consentWebhooks/{webhook}".into(),
            delete(consent_webhooks::delete).fallback(method_not_allowed),
        ),
        (
            "/v1.0/applications/{app}/accord.consentWebhooks/{webhook}/accord.rotateSecret".into(),
            post(consent_webhooks::rotate_secret).fallback(method_not_allowed),
        ),
        (
            "/v1.0/applications/{app}/accord.consentWebhooks/{webhook}/deliveries".into(),
            get(consent_webhooks::deliveries).fallback(method_not_allowed),
        ),
        ("/v1.0/applications/{app}/removeKey".into(), post(applications::remove_key).fallback(method_not_allowed)),
        (
            "/v1.0/applications/{app}/federatedIdentityCredentials".into(),
            get(federated_credentials::list).post(federated_credentials::create).fallback(method_not_allowed),
        ),
        (
            "/v1.0/applications/{app}/federatedIdentityCredentials/{credential}".into(),
            get(federated_credentials::get)
                .patch(federated_credentials::update)
                .delete(federated_credentials::delete)
                .fallback(method_not_allowed),
        ),
        ("/v1.0/directoryRoles".into(), get(directory_roles::list).fallback(method_not_allowed)),
        ("/v1.0/directoryRoles/{role}".into(), get(directory_roles::get).fallback(method_not_allowed)),
        ("/v1.0/directoryRoles/{role}/members".into(), get(directory_roles::members).fallback(method_not_allowed)),
        (
            "/v1.0/directoryRoles/{role}/members/$ref".into(),
            post(directory_roles::add_member).fallback(method_not_allowed),
        ),
        (
            "/v1.0/directoryRoles/{role}/members/{member}/$ref".into(),
            delete(directory_roles::remove_member).fallback(method_not_allowed),
        ),
        (
            "/v1.0/roleManagement/directory/roleAssignments".into(),
            get(directory_roles::role_assignments).fallback(method_not_allowed),
        ),
        ("/v1.0/groups/{group}".into(), get(directory::get_group).fallback(method_not_allowed)),
        ("/v1.0/groups/{group}/members".into(), get(directory::group_members).fallback(method_not_allowed)),
        ("/v1.0/oauth2PermissionGrants".into(), get(grants::list).post(grants::create).fallback(method_not_allowed)),
        (
            "/v1.0/oauth2PermissionGrants/{grant}".into(),
            get(grants::get).patch(grants::update).delete(grants::delete).fallback(method_not_allowed),
        ),
        (
            "/v1.0/servicePrincipals/{sp}/appRoleAssignedTo".into(),
            get(assignments::list_assigned_to).post(assignments::create).fallback(method_not_allowed),
        ),
        (
            "/v1.0/servicePrincipals/{sp}/appRoleAssignedTo/{assignment}".into(),
            delete(assignments::delete).fallback(method_not_allowed),
        ),
        (
            "/v1.0/servicePrincipals/{sp}/appRoleAssignments".into(),
            get(assignments::list_assignments).fallback(method_not_allowed),
        ),
        (
            "/v1.0/policies/authorizationPolicy".into(),
            get(policies::get).patch(policies::update).fallback(method_not_allowed),
        ),
        ("/v1.0/servicePrincipals".into(), get(service_principals::list).fallback(method_not_allowed)),
        (
            "/v1.0/servicePrincipals/{sp}".into(),
            get(service_principals::get)
                .patch(service_principals::update)
                .delete(service_principals::delete)
                .fallback(method_not_allowed),
        ),
        (
            "/v1.0/groups/{group}/transitiveMembers".into(),
            get(directory::group_transitive_members).fallback(method_not_allowed),
        ),
        (
            "/v1.0/policies/adminConsentRequestPolicy".into(),
            get(consent_policies::get_request_policy)
                .patch(consent_policies::update_request_policy)
                .put(consent_policies::update_request_policy)
                .fallback(method_not_allowed),
        ),
        (
            "/v1.0/servicePrincipals/{sp}/delegatedPermissionClassifications".into(),
            get(consent_policies::list_classifications)
                .post(consent_policies::create_classification)
                .fallback(method_not_allowed),
        ),
        (
            "/v1.0/servicePrincipals/{sp}/delegatedPermissionClassifications/{classification}".into(),
            delete(consent_policies::delete_classification).fallback(method_not_allowed),
        ),
        (
            "/v1.0/identityGovernance/appConsent/appConsentRequests".into(),
            get(consent_requests::list_apps).fallback(method_not_allowed),
        ),
        (
            "/v1.0/identityGovernance/appConsent/appConsentRequests/{request}".into(),
            get(consent_requests::get_app).fallback(method_not_allowed),
        ),
        (
            "/v1.0/identityGovernance/appConsent/appConsentRequests/{request}/userConsentRequests".into(),
            get(consent_requests::list_users).fallback(method_not_allowed),
        ),
        (
            "/v1.0/identityGovernance/appConsent/appConsentRequests/{request}/userConsentRequests/{user_request}"
                .into(),
            get(consent_requests::get_user).fallback(method_not_allowed),
        ),
        (
            "/v1.0/identityGovernance/appConsent/appConsentRequests/{request}/userConsentRequests/{user_request}/approval"
                .into(),
            get(consent_requests::get_approval).fallback(method_not_allowed),
        ),
    ];
    // Accord extensions (not in Microsoft Graph): a reviewer decides an app's pending requests.
    for (action, decision) in [
        ("accord.approve", consent_requests::Decision::Approve),
        ("accord.deny", consent_requests::Decision::Deny),
        ("accord.block", consent_requests::Decision::Block),
    ] {
        table.push((
            format!("/v1.0/identityGovernance/appConsent/appConsentRequests/{{request}}/{action}"),
            consent_requests::action(decision).fallback(method_not_allowed),
        ));
    }
    for prefix in ["/v1.0/me", "/v1.0/users/{user}"] {
        for (segment, collection) in [("events", Collection::Events), ("calendar/events", Collection::CalendarEvents)] {
            table.push((
                format!("{prefix}/{segment}"),
                list(collection).post(calendar::create).fallback(method_not_allowed),
            ));
            table.push((
                format!("{prefix}/{segment}/{{id}}"),
                get(calendar::get_one).patch(calendar::update).delete(calendar::delete).fallback(method_not_allowed),
            ));
        }
        for (segment, collection) in
            [("calendarView", Collection::CalendarView), ("calendar/calendarView", Collection::CalendarCalendarView)]
        {
            table.push((format!("{prefix}/{segment}"), list(collection).fallback(method_not_allowed)));
            table.push((format!("{prefix}/{segment}/delta"), get(calendar::delta::delta).fallback(method_not_allowed)));
        }
    }
    table
}

fn list(collection: Collection) -> MethodRouter<SharedState> {
    get(move |state: State<SharedState>, caller: Caller, path: GraphPath, headers: HeaderMap, uri: OriginalUri| {
        calendar::list(collection, state, caller, path, headers, uri)
    })
}

async fn method_not_allowed(matched: Option<MatchedPath>) -> GraphError {
    let path = matched.as_ref().map(|m| m.as_str().trim_start_matches("/v1.0")).unwrap_or_default();
    GraphError::method_not_allowed(path)
}

/// Graph's answer for a path it does not serve: names the first segment it does not know.
async fn unknown_segment(OriginalUri(uri): OriginalUri) -> GraphError {
    let rest = uri.path().strip_prefix("/v1.0").unwrap_or_default();
    let segments: Vec<String> = rest.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    let mut unknown = segments.last().cloned().unwrap_or_default();
    let mut i = 0;
    while i < segments.len() {
        // `applications(appId='…')` names an entity by key: the collection is known and no id
        // segment follows it.
        let (s, keyed) = match segments[i].split_once('(') {
            Some((name, _)) if segments[i].ends_with(')') => (name, true),
            _ => (segments[i].as_str(), false),
        };
        if ![
            "me",
            "users",
            "events",
            "calendar",
            "calendarView",
            "delta",
            "subscriptions",
            "reauthorize",
            "groups",
            "members",
            "transitiveMembers",
            "servicePrincipals",
            "policies",
            "adminConsentRequestPolicy",
            "delegatedPermissionClassifications",
            "identityGovernance",
            "appConsent",
            "appConsentRequests",
            "userConsentRequests",
            "applications",
            "addPassword",
            "removePassword",
            "directoryRoles",
            "$ref",
            "roleManagement",
            "directory",
            "roleAssignments",
        ]
        .contains(&s)
        {
            unknown = segments[i].clone();
            break;
        }
        i += if !keyed
            && (s == "users"
                || s == "events"
                || s == "groups"
                || s == "servicePrincipals"
                || s == "oauth2PermissionGrants"
                || s == "applications"
                || s == "directoryRoles"
                || s == "delegatedPermissionClassifications"
                || s == "appConsentRequests"
                || s == "userConsentRequests"
                || s == "subscriptions")
        {
            2
        } else {
            1
        };
    }
    GraphError::bad_request(format!("Resource not found for the segment '{unknown}'."))
}

fn percent_decode(s: &str) -> String {
    let encoded = format!("x={}", s.replace('+', "%2B"));
    form_urlencoded::parse(encoded.as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}
