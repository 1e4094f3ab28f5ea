//! Users and groups assigned to an enterprise app ("Users and groups"), and the app roles that
//! assignment gives them.

use super::GroupMembership;
use crate::directory::{AppRoleAssignment, AppRoleMemberType, Application, PrincipalType};
use crate::well_known::DEFAULT_ACCESS_ROLE_ID;

use crate::ids::{ServicePrincipalId, UserId};

/// How a user is assigned to an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignmentPath<'g> {
    /// The user holds an assignment themselves.
    Direct,
    /// Through groups: the first is a group the user is a direct member of, each next one
    /// contains the previous, the last is the assigned group.
    Group(Vec<&'g GroupMembership<'g>>),
}

impl AssignmentPath<'_> {
    /// "assigned to 'X' directly" / "through the group 'All Staff' (as a member of 'Sales', nested in 'All Staff')".
    pub fn describe(&self, user_name: &str, app_name: &str) -> String {
        match self {
            AssignmentPath::Direct => format!("{user_name} is assigned to '{app_name}' directly."),
            AssignmentPath::Group(chain) => {
                let Some(assigned) = chain.last() else {
                    return format!("{user_name} is assigned to '{app_name}' through a group.");
                };
                if chain.len() == 1 {
                    format!(
                        "{user_name} is assigned to '{app_name}' through the group '{}', of which they are a direct member.",
                        assigned.display_name
                    )
                } else {
                    let names: Vec<String> = chain.iter().map(|g| format!("'{}'", g.display_name)).collect();
                    format!(
                        "{user_name} is assigned to '{app_name}' through the group '{}' (as a member of {}, nested in {}).",
                        assigned.display_name,
                        names[0],
                        names[1..].join(", nested in ")
                    )
                }
            }
        }
    }
}

/// Whether the user holds an assignment to the service principal `sp_id`, directly or through
/// any of their (transitive) groups; the path found, preferring a direct assignment, then the
/// shortest group chain.
pub fn is_assigned<'g>(
    sp_id: ServicePrincipalId,
    user_id: UserId,
    groups: &'g [GroupMembership<'g>],
    assignments: &[AppRoleAssignment],
) -> Option<AssignmentPath<'g>> {
    let to_sp = || assignments.iter().filter(move |a| a.resource_sp_id == sp_id);
    if to_sp().any(|a| a.principal_type == PrincipalType::User && a.principal_id == user_id) {
        return Some(AssignmentPath::Direct);
    }
    let mut best: Option<Vec<&'g GroupMembership<'g>>> = None;
    for a in to_sp().filter(|a| a.principal_type == PrincipalType::Group) {
        if let Some(group) = groups.iter().find(|g| g.id == a.principal_id) {
            let chain = chain_to(groups, group);
            if best.as_ref().is_none_or(|b| chain.len() < b.len()) {
                best = Some(chain);
            }
        }
    }
    best.map(AssignmentPath::Group)
}

/// The membership chain ending at `group`, starting at the user's direct group. Follows `via`
/// links at most `groups.len()` times, so a malformed (cyclic) snapshot cannot loop.
fn chain_to<'g>(groups: &'g [GroupMembership<'g>], group: &'g GroupMembership<'g>) -> Vec<&'g GroupMembership<'g>> {
    let mut chain = vec![group];
    let mut current = group;
    while let Some(parent) = current.via {
        if chain.len() > groups.len() {
            break;
        }
        match groups.iter().find(|g| g.id == parent) {
            Some(g) if !chain.iter().any(|c| c.id == g.id) => {
                chain.push(g);
                current = g;
            }
            _ => break,
        }
    }
    chain.reverse();
    chain
}

/// Values of `client`'s app roles assigned to the user on the service principal `sp_id`,
/// directly or through groups — the `roles` claim. Default access (the nil role) has no value.
pub fn user_app_roles(
    client: &Application,
    sp_id: ServicePrincipalId,
    user_id: UserId,
    groups: &[GroupMembership<'_>],
    assignments: &[AppRoleAssignment],
) -> Vec<String> {
    let mut roles: Vec<String> = Vec::new();
    for a in assignments.iter().filter(|a| a.resource_sp_id == sp_id && a.app_role_id != DEFAULT_ACCESS_ROLE_ID) {
        let holds = match a.principal_type {
            PrincipalType::User => a.principal_id == user_id,
            PrincipalType::Group => groups.iter().any(|g| g.id == a.principal_id),
            PrincipalType::ServicePrincipal => false,
        };
        if !holds {
            continue;
        }
        if let Some(role) = client.app_role_by_id(a.app_role_id) {
            if role.allowed_member_types.contains(&AppRoleMemberType::User) && !roles.contains(&role.value) {
                roles.push(role.value.clone());
            }
        }
    }
    roles
}
