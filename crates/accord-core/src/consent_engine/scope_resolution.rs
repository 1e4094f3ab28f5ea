//! Reading a request's scopes against the registrations: the resource a scope names, a named
//! (dynamic) delegated permission, the OpenID Connect scopes, and a `.default` that names a
//! resource the client does not list. Sign-in and admin consent both resolve through here, so
//! a scope is accepted or refused — with the same AADSTS code and words — whichever flow asks.

use super::permissions::application_role;
use super::{find_graph, find_resource, ConsentSnapshot, ResourceView, Rules};
use crate::aadsts::Aadsts;
use crate::directory::PermissionScope;
use crate::well_known::GRAPH_RESOURCE_URI;

/// The resource `name` (an identifier URI or an app id) designates in the tenant, or
/// AADSTS500011.
pub(super) fn named_resource<'a>(
    s: &ConsentSnapshot<'a>,
    name: &str,
    r: &mut Rules,
) -> Result<&'a ResourceView<'a>, Aadsts> {
    find_resource(s.resources, name).ok_or_else(|| {
        r.fail(
            "scope.resource",
            format!("No resource named '{name}' exists in '{}' (AADSTS500011).", s.tenant.display_name),
        );
        Aadsts::resource_not_found(name)
    })
}

/// The delegated permission `value` of `view`, named dynamically in a request for the resource
/// `named_as`. An application permission or an unknown value is AADSTS70011.
pub(super) fn named_scope<'a>(
    view: &ResourceView<'a>,
    named_as: &str,
    value: &str,
    r: &mut Rules,
) -> Result<&'a PermissionScope, Aadsts> {
    let app = view.app;
    if let Some(scope) = app.scope(value) {
        return Ok(scope);
    }
    let res = &app.display_name;
    if application_role(app, value).is_some() {
        r.fail(
            "scope.permission",
            format!("'{value}' is an application permission of '{res}', not a delegated one: named scopes grant delegated permissions only (AADSTS70011)."),
        );
        return Err(Aadsts::invalid_scope(&format!(
            "The scope '{value}' is an application permission of '{res}'; application permissions are requested with '{named_as}/.default'."
        )));
    }
    r.fail("scope.permission", format!("'{value}' is not a permission of '{res}' (AADSTS70011)."));
    Err(Aadsts::invalid_scope(&format!("The scope '{value}' does not exist on the resource '{named_as}'.")))
}

/// Microsoft Graph and the permissions the OpenID Connect scopes `oidc` stand for there.
pub(super) fn oidc_scopes<'a>(
    s: &ConsentSnapshot<'a>,
    oidc: &[&str],
    r: &mut Rules,
) -> Result<(&'a ResourceView<'a>, Vec<&'a PermissionScope>), Aadsts> {
    let Some(graph) = find_graph(s.resources) else {
        r.fail(
            "scope.resource",
            format!("Microsoft Graph has no service principal in '{}' (AADSTS500011).", s.tenant.display_name),
        );
        return Err(Aadsts::resource_not_found(GRAPH_RESOURCE_URI));
    };
    let mut scopes = Vec::new();
    for value in oidc {
        match graph.app.scope(value) {
            Some(scope) => scopes.push(scope),
            None => {
                r.fail("scope.permission", format!("'{value}' is not a permission of Microsoft Graph (AADSTS70011)."));
                return Err(Aadsts::invalid_scope(&format!("The scope '{value}' is not supported.")));
            }
        }
    }
    Ok((graph, scopes))
}

/// AADSTS650057: `{named_as}/.default` names `view`, which the client does not list among its
/// permissions.
pub(super) fn default_not_listed(
    s: &ConsentSnapshot<'_>,
    named_as: &str,
    view: &ResourceView<'_>,
    r: &mut Rules,
) -> Aadsts {
    let (app, res) = (&s.client.display_name, &view.app.display_name);
    r.fail(
        "scope.default",
        format!("'{named_as}/.default' asks for the static permissions of '{app}' on '{res}', but '{app}' lists no permission of '{res}' (AADSTS650057)."),
    );
    let valid: Vec<String> = s.client.required.iter().map(|q| q.resource_app_id.to_string()).collect();
    Aadsts::resource_not_in_required(
        &s.client.app_id.to_string(),
        app,
        named_as,
        &view.app.app_id.to_string(),
        &valid.join(", "),
    )
}
