//! Requests that address an entity by an alternate key in the first segment,
//! `applications(appId='…')` and `directoryRoles(roleTemplateId='…')`. The router cannot match a
//! parameter inside a segment, so the catch-all `/v1.0/{*rest}` route comes here first; anything
//! that is not such a key is Graph's unknown-segment error, as before.

use super::applications::{self, AppKey};
use super::auth::authenticate;
use super::directory_roles::{self, RoleKey};
use super::errors::GraphError;
use super::federated_credentials;
use crate::state::SharedState;
use accord_core::ids::AppId;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

const FIC: &str = "federatedIdentityCredentials";

/// `name(key='value')` → the value, when the segment is exactly that (quotes optional).
fn alternate_key<'a>(segment: &'a str, name: &str, key: &str) -> Option<&'a str> {
    let inner = segment.strip_prefix(name)?.strip_prefix('(')?.strip_suffix(')')?;
    let value = inner.strip_prefix(key)?.trim_start().strip_prefix('=')?.trim();
    Some(value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(value))
}

fn app_key(value: &str) -> Result<AppKey, GraphError> {
    value.parse::<AppId>().map(AppKey::AppId).map_err(|_| {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            format!("Invalid value '{value}' for key property 'appId': a GUID is required."),
        )
    })
}

/// The catch-all `/v1.0/…` handler.
pub async fn dispatch(
    State(state): State<SharedState>,
    method: Method,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let rest = uri.path().strip_prefix("/v1.0/").unwrap_or_default();
    let segments: Vec<String> = rest.split('/').map(super::percent_decode).collect();
    let Some(first) = segments.first() else { return super::unknown_segment(OriginalUri(uri)).await.into_response() };
    let tail: Vec<&str> = segments[1..].iter().map(String::as_str).collect();
    let result = if let Some(value) = alternate_key(first, "applications", "appId") {
        let value = value.to_string();
        match authenticate(&state, &headers).await {
            Err(e) => Err(e),
            Ok(caller) => {
                let key = app_key(&value);
                match (tail.as_slice(), method) {
                    ([], Method::GET) => applications::get_by(&state, caller, key, &uri).await,
                    ([], Method::PATCH) => applications::update_by(&state, caller, key, body).await,
                    ([], Method::DELETE) => applications::delete_by(&state, caller, key).await,
                    (["addPassword"], Method::POST) => applications::add_password_by(&state, caller, key, body).await,
                    (["removePassword"], Method::POST) => {
                        applications::remove_password_by(&state, caller, key, body).await
                    }
                    (["addKey"], Method::POST) => applications::add_key_by(&state, caller, key, body).await,
                    (["removeKey"], Method::POST) => applications::remove_key_by(&state, caller, key, body).await,
                    ([FIC], Method::GET) => federated_credentials::list_by(&state, caller, key).await,
                    ([FIC], Method::POST) => federated_credentials::create_by(&state, caller, key, body).await,
                    ([FIC, one], Method::GET) => federated_credentials::get_by(&state, caller, key, one).await,
                    ([FIC, one], Method::PATCH) => {
                        federated_credentials::update_by(&state, caller, key, one, body).await
                    }
                    ([FIC, one], Method::DELETE) => federated_credentials::delete_by(&state, caller, key, one).await,
                    ([] | ["addPassword"] | ["removePassword"] | ["addKey"] | ["removeKey"] | [FIC], _) => {
                        Err(GraphError::method_not_allowed(&keyed_path("applications(appId='{appId}')", &tail)))
                    }
                    ([FIC, _], _) => Err(GraphError::method_not_allowed(&keyed_path(
                        "applications(appId='{appId}')",
                        &[FIC, "{credential}"],
                    ))),
                    _ => return super::unknown_segment(OriginalUri(uri)).await.into_response(),
                }
            }
        }
    } else if let Some(value) = alternate_key(first, "directoryRoles", "roleTemplateId") {
        let key = RoleKey::TemplateId(value.to_string());
        match authenticate(&state, &headers).await {
            Err(e) => Err(e),
            Ok(caller) => match (tail.as_slice(), method) {
                ([], Method::GET) => directory_roles::get_by(&state, caller, key, &uri).await,
                (["members"], Method::GET) => directory_roles::members_by(&state, caller, key, &uri).await,
                (["members", "$ref"], Method::POST) => directory_roles::add_member_by(&state, caller, key, body).await,
                (["members", member, "$ref"], Method::DELETE) => {
                    directory_roles::remove_member_by(&state, caller, key, member).await
                }
                ([] | ["members"] | ["members", "$ref"] | ["members", _, "$ref"], _) => {
                    let tail = if tail.len() == 3 { vec!["members", "{member}", "$ref"] } else { tail.clone() };
                    Err(GraphError::method_not_allowed(&keyed_path(
                        "directoryRoles(roleTemplateId='{roleTemplateId}')",
                        &tail,
                    )))
                }
                _ => return super::unknown_segment(OriginalUri(uri)).await.into_response(),
            },
        }
    } else {
        return super::unknown_segment(OriginalUri(uri)).await.into_response();
    };
    result.into_response()
}

/// The catalogue's path of a keyed segment and the segments after it.
fn keyed_path(segment: &str, tail: &[&str]) -> String {
    std::iter::once(segment).chain(tail.iter().copied()).fold(String::new(), |path, s| path + "/" + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternate_keys() {
        assert_eq!(alternate_key("applications(appId='abc')", "applications", "appId"), Some("abc"));
        assert_eq!(alternate_key("applications(appId=abc)", "applications", "appId"), Some("abc"));
        assert_eq!(alternate_key("applications(id='abc')", "applications", "appId"), None);
        assert_eq!(alternate_key("applicationsX(appId='abc')", "applications", "appId"), None);
        assert_eq!(alternate_key("applications", "applications", "appId"), None);
    }
}
