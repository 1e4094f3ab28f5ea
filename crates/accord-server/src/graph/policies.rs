//! `/v1.0/policies/authorizationPolicy`: the tenant's user consent setting as Graph shows it,
//! `defaultUserRolePermissions.permissionGrantPoliciesAssigned`. Reading needs `Policy.Read.All`;
//! changing it `Policy.ReadWrite.Authorization` and a role the service layer accepts.

use super::auth::Caller;
use super::request::{actor, json_object, json_response, require, tenant};

use super::errors::GraphError;
use super::odata::{QueryOptions, ResourceSpec};
use accord_core::microsoft_graph::permissions::{
    AUTH_POLICY_READ as READ_DELEGATED, AUTH_POLICY_READ_APP as READ_APP, AUTH_POLICY_WRITE as WRITE,
};

use crate::service::administration;
use crate::state::SharedState;
use accord_core::directory::{Tenant, UserConsent};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

const POLICY_SELECT: &[&str] = &[
    "id",
    "allowedToSignUpEmailBasedSubscriptions",
    "allowedToUseSSPR",
    "allowEmailVerifiedUsersToJoinOrganization",
    "allowInvitesFrom",
    "blockMsolPowerShell",
    "defaultUserRolePermissions",
    "description",
    "displayName",
    "guestUserRoleId",
];

const POLICY_SPEC: ResourceSpec = ResourceSpec {
    type_name: "microsoft.graph.authorizationPolicy",
    select: POLICY_SELECT,
    filter: &[],
    orderby: &[],
    default_top: 1,
    max_top: 1,
    skiptoken_paging: false,
};

const SELF_PREFIX: &str = "ManagePermissionGrantsForSelf.";
const LOW: &str = "ManagePermissionGrantsForSelf.microsoft-user-default-low";
const LEGACY: &str = "ManagePermissionGrantsForSelf.microsoft-user-default-legacy";
/// Policies for resources a user owns (teams, chats): accepted and not modelled.
const OWNED_PREFIX: &str = "ManagePermissionGrantsForOwnedResource.";

fn assigned(setting: UserConsent) -> Vec<&'static str> {
    match setting {
        UserConsent::None => vec![],
        UserConsent::Low => vec![LOW],
        UserConsent::All => vec![LEGACY],
    }
}

fn policy_json(t: &Tenant) -> Value {
    json!({
        "id": "authorizationPolicy",
        "allowedToSignUpEmailBasedSubscriptions": true,
        "allowedToUseSSPR": true,
        "allowEmailVerifiedUsersToJoinOrganization": false,
        "allowInvitesFrom": "everyone",
        "blockMsolPowerShell": false,
        "defaultUserRolePermissions": {
            "allowedToCreateApps": true,
            "allowedToCreateSecurityGroups": true,
            "allowedToCreateTenants": true,
            "allowedToReadBitlockerKeysForOwnedDevice": true,
            "allowedToReadOtherUsers": true,
            "permissionGrantPoliciesAssigned": assigned(t.user_consent),
        },
        "description": "Used to manage authorization related settings across the company.",
        "displayName": "Authorization Policy",
        "guestUserRoleId": "10dae51f-b6af-4016-8d66-8c2a99b929b3",
    })
}

/// `GET /v1.0/policies/authorizationPolicy`
pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, GraphError> {
    require(&caller, READ_DELEGATED, READ_APP, "Policy.Read.All")?;
    let opts = QueryOptions::parse(query.as_deref(), &POLICY_SPEC)?;
    let tenant = tenant(&state, &caller).await?;
    let mut body = opts.project(policy_json(&tenant));
    if let Value::Object(m) = &mut body {
        let context = format!("{}/$entity", opts.context(&state.settings.public_url, "policies/authorizationPolicy"));
        m.insert("@odata.context".into(), json!(context));
    }
    Ok(json_response(StatusCode::OK, body, None))
}

fn bad(message: String) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

/// Case-insensitive prefix test that never splits a character.
fn has_prefix(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// The user consent setting a `permissionGrantPoliciesAssigned` list means: no self-consent
/// policy is "none", `…microsoft-user-default-low` is "low", `…microsoft-user-default-legacy`
/// is "all" (compared case-insensitively). Other self-consent policies are refused.
pub fn setting_of(list: &[String]) -> Result<UserConsent, GraphError> {
    let mut setting = UserConsent::None;
    for p in list {
        if p.eq_ignore_ascii_case(LEGACY) {
            setting = UserConsent::All;
        } else if p.eq_ignore_ascii_case(LOW) {
            if setting == UserConsent::None {
                setting = UserConsent::Low;
            }
        } else if has_prefix(p, OWNED_PREFIX) {
            continue;
        } else if has_prefix(p, SELF_PREFIX) {
            return Err(bad(format!(
                "Permission grant policy '{p}' is not supported: use '{LOW}', '{LEGACY}' or none."
            )));
        } else {
            return Err(bad(format!("'{p}' is not a permission grant policy assignment.")));
        }
    }
    Ok(setting)
}

/// `PATCH /v1.0/policies/authorizationPolicy`: `defaultUserRolePermissions.permissionGrantPoliciesAssigned`. 204.
pub async fn update(
    State(state): State<SharedState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require(&caller, WRITE, WRITE, "Policy.ReadWrite.Authorization")?;
    let m = json_object(body)?;
    if let Some(k) = m.keys().find(|k| k.as_str() != "defaultUserRolePermissions" && !k.starts_with("@odata.")) {
        return Err(bad(format!(
            "Property '{k}' cannot be changed here; Accord models only defaultUserRolePermissions.permissionGrantPoliciesAssigned."
        )));
    }
    let Some(perms) = m.get("defaultUserRolePermissions") else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let Value::Object(perms) = perms else {
        return Err(bad("Property 'defaultUserRolePermissions' must be an object.".into()));
    };
    if let Some(k) = perms.keys().find(|k| k.as_str() != "permissionGrantPoliciesAssigned") {
        return Err(bad(format!(
            "Property 'defaultUserRolePermissions.{k}' cannot be changed here; only permissionGrantPoliciesAssigned can."
        )));
    }
    let Some(list) = perms.get("permissionGrantPoliciesAssigned") else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let list: Vec<String> = match list {
        Value::Array(items) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).map(String::from).collect()
        }
        _ => return Err(bad("Property 'permissionGrantPoliciesAssigned' must be an array of strings.".into())),
    };
    let setting = setting_of(&list)?;
    let tenant = tenant(&state, &caller).await?;
    let actor = actor(&state, &caller, &tenant).await?;
    administration::set_user_consent(state.store.as_ref(), &actor, &tenant, setting).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn policy_lists_map_to_settings() {
        assert_eq!(setting_of(&[]).unwrap(), UserConsent::None);
        assert_eq!(
            setting_of(&s(&["managepermissiongrantsforself.MICROSOFT-user-default-low"])).unwrap(),
            UserConsent::Low
        );
        assert_eq!(setting_of(&s(&[LEGACY, LOW])).unwrap(), UserConsent::All);
        assert_eq!(
            setting_of(&s(&[
                "ManagePermissionGrantsForOwnedResource.microsoft-dynamically-managed-permissions-for-team"
            ]))
            .unwrap(),
            UserConsent::None
        );
        assert!(setting_of(&s(&["ManagePermissionGrantsForSelf.custom-policy"])).is_err());
        assert!(setting_of(&s(&["anything"])).is_err());
        assert!(setting_of(&s(&["é"])).is_err());
        assert!(setting_of(&s(&["ManagePermissionGrantsForSelféééééééééééééééééééééééééé"])).is_err());
    }
}
