//! Parsing of the `scope` parameter: OIDC scopes, `{resource}/{permission}` pairs, unprefixed
//! Microsoft Graph permissions and `{resource}/.default` (entra-reference.md §3).

use crate::aadsts::Aadsts;
use crate::microsoft_graph::is_oidc_scope;
use crate::well_known::GRAPH_RESOURCE_URI;

/// The OIDC scopes of a request: they shape the response rather than the access token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OidcScopes {
    pub openid: bool,
    pub profile: bool,
    pub email: bool,
    pub offline_access: bool,
}

impl OidcScopes {
    fn set(&mut self, value: &str) {
        match value.to_ascii_lowercase().as_str() {
            "openid" => self.openid = true,
            "profile" => self.profile = true,
            "email" => self.email = true,
            _ => self.offline_access = true,
        }
    }

    /// The values requested, in the canonical order Entra echoes them.
    pub fn values(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.profile {
            v.push("profile");
        }
        if self.openid {
            v.push("openid");
        }
        if self.email {
            v.push("email");
        }
        if self.offline_access {
            v.push("offline_access");
        }
        v
    }
}

/// What is asked of one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRequest {
    /// The resource as written (identifier URI or app id), without a trailing slash.
    pub resource: String,
    /// `{resource}/.default`: every statically registered permission.
    pub default: bool,
    /// Named permission values, de-duplicated case-insensitively, in request order.
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeRequest {
    pub oidc: OidcScopes,
    pub resources: Vec<ResourceRequest>,
}

/// Longest accepted scope parameter; Entra refuses far shorter ones in practice.
pub const MAX_SCOPE_LEN: usize = 8192;

impl ScopeRequest {
    /// Parses a space-separated scope parameter.
    pub fn parse(raw: &str) -> Result<Self, Aadsts> {
        if raw.len() > MAX_SCOPE_LEN {
            return Err(Aadsts::invalid_scope("The scope parameter is too long."));
        }
        let mut req = ScopeRequest::default();
        for token in raw.split([' ', '\t', '\n', '\r']).filter(|t| !t.is_empty()) {
            if is_oidc_scope(token) {
                req.oidc.set(token);
                continue;
            }
            let (resource, permission) = split_scope(token)?;
            req.add(resource, permission)?;
        }
        Ok(req)
    }

    fn add(&mut self, resource: &str, permission: &str) -> Result<(), Aadsts> {
        let idx = match self.resources.iter().position(|r| r.resource.eq_ignore_ascii_case(resource)) {
            Some(i) => i,
            None => {
                self.resources.push(ResourceRequest {
                    resource: resource.to_string(),
                    default: false,
                    permissions: Vec::new(),
                });
                self.resources.len() - 1
            }
        };
        let entry = &mut self.resources[idx];
        if permission == ".default" {
            entry.default = true;
        } else if !entry.permissions.iter().any(|p| p.eq_ignore_ascii_case(permission)) {
            entry.permissions.push(permission.to_string());
        }
        if entry.default && !entry.permissions.is_empty() {
            return Err(Aadsts::invalid_scope(&format!(
                "'.default' cannot be combined with other scopes for the resource '{}'.",
                entry.resource
            )));
        }
        Ok(())
    }

    /// The single resource a token can be issued for; more than one is AADSTS28000.
    pub fn single_resource(&self) -> Result<Option<&ResourceRequest>, Aadsts> {
        match self.resources.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            _ => Err(Aadsts::multiple_resources()),
        }
    }
}

/// Splits `https://host/path/Value` or `api://x/Value` at the last `/`; a bare value is Graph's.
fn split_scope(token: &str) -> Result<(&str, &str), Aadsts> {
    if token.chars().any(|c| c.is_control() || c == '"' || c == '<' || c == '>') {
        return Err(Aadsts::invalid_scope("The scope contains characters that are not allowed."));
    }
    let Some(slash) = token.rfind('/') else {
        return Ok((GRAPH_RESOURCE_URI, token));
    };
    let (resource, permission) = (&token[..slash], &token[slash + 1..]);
    // `https://graph.microsoft.com//.default` names the resource `https://graph.microsoft.com/`.
    let resource = resource.trim_end_matches('/');
    if permission.is_empty() || resource.is_empty() || resource.ends_with(':') {
        return Err(Aadsts::invalid_scope(&format!("'{token}' is not of the form '{{resource}}/{{permission}}'.")));
    }
    Ok((resource, permission))
}

/// A permission as a fully qualified scope: `https://graph.microsoft.com/Calendars.Read` for
/// Microsoft Graph, `{resource app id}/{value}` for any other API; [`ScopeRequest::parse`]
/// reads it back to the same resource.
pub fn qualified_scope(resource_app_id: crate::ids::AppId, value: &str) -> String {
    if resource_app_id == crate::well_known::GRAPH_APP_ID {
        format!("{}/{}", crate::well_known::GRAPH_RESOURCE_URI, value)
    } else {
        format!("{resource_app_id}/{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bare_scopes_belong_to_graph_and_oidc_is_separate() {
        let r =
            ScopeRequest::parse("openid profile offline_access User.Read https://graph.microsoft.com/Calendars.Read")
                .unwrap();
        assert!(r.oidc.openid && r.oidc.profile && r.oidc.offline_access && !r.oidc.email);
        assert_eq!(r.resources.len(), 1);
        assert_eq!(r.resources[0].resource, "https://graph.microsoft.com");
        assert_eq!(r.resources[0].permissions, vec!["User.Read", "Calendars.Read"]);
    }

    #[test]
    fn default_with_double_slash_and_guid_resources() {
        let r = ScopeRequest::parse("https://graph.microsoft.com//.default").unwrap();
        assert!(r.resources[0].default);
        assert_eq!(r.resources[0].resource, "https://graph.microsoft.com");
        let r = ScopeRequest::parse("00000003-0000-0000-c000-000000000000/.default").unwrap();
        assert_eq!(r.resources[0].resource, "00000003-0000-0000-c000-000000000000");
        let r = ScopeRequest::parse("api://notes/Notes.Read").unwrap();
        assert_eq!(r.resources[0].resource, "api://notes");
    }

    #[test]
    fn default_cannot_mix_with_named_scopes() {
        let e = ScopeRequest::parse("https://graph.microsoft.com/.default User.Read").unwrap_err();
        assert_eq!(e.code, 70011);
    }

    #[test]
    fn two_resources_are_refused_for_one_token() {
        let r = ScopeRequest::parse("User.Read api://notes/Notes.Read").unwrap();
        assert_eq!(r.single_resource().unwrap_err().code, 28000);
    }

    #[test]
    fn malformed_tokens_are_invalid_scope() {
        for bad in ["https://graph.microsoft.com/", "/User.Read", "api:/x", "a\u{7}b"] {
            assert_eq!(ScopeRequest::parse(bad).unwrap_err().code, 70011, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,200}") {
            let _ = ScopeRequest::parse(&s);
        }

        #[test]
        fn parsed_permissions_are_non_empty_and_unique(s in "[a-zA-Z./: _-]{0,80}") {
            if let Ok(r) = ScopeRequest::parse(&s) {
                for res in &r.resources {
                    prop_assert!(!res.resource.is_empty());
                    let mut seen = std::collections::HashSet::new();
                    for p in &res.permissions {
                        prop_assert!(!p.is_empty() && !p.contains(' '));
                        prop_assert!(seen.insert(p.to_ascii_lowercase()));
                    }
                }
            }
        }
    }

    #[test]
    fn qualified_scopes_read_back_to_their_resource() {
        let graph = qualified_scope(crate::well_known::GRAPH_APP_ID, "Calendars.Read");
        assert_eq!(graph, "https://graph.microsoft.com/Calendars.Read");
        let api = crate::ids::AppId::from_uuid(uuid::uuid!("11111111-1111-4111-8111-111111111111"));
        let other = qualified_scope(api, "Notes.Read");
        assert_eq!(other, "11111111-1111-4111-8111-111111111111/Notes.Read");
        let parsed = ScopeRequest::parse(&format!("{graph} {other}")).unwrap();
        let names: Vec<_> = parsed.resources.iter().map(|r| (r.resource.as_str(), r.permissions.clone())).collect();
        assert_eq!(
            names,
            [
                ("https://graph.microsoft.com", vec!["Calendars.Read".to_string()]),
                ("11111111-1111-4111-8111-111111111111", vec!["Notes.Read".to_string()]),
            ]
        );
    }
}
