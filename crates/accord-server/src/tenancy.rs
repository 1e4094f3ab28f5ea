//! The `{tenant}` path segment: a tenant GUID, a verified domain, `common` or `organizations`.

use accord_core::directory::Tenant;
use accord_core::ids::TenantId;
use accord_core::Aadsts;
use accord_store::Store;

#[derive(Debug, Clone)]
pub enum TenantPath {
    /// A specific tenant, named by GUID or domain.
    Tenant(Tenant),
    /// `common` or `organizations`: the user's home tenant, found from their UPN.
    MultiTenant { segment: &'static str },
}

impl TenantPath {
    pub async fn resolve(store: &dyn Store, segment: &str) -> Result<TenantPath, TenantPathError> {
        if segment.eq_ignore_ascii_case("common") {
            return Ok(TenantPath::MultiTenant { segment: "common" });
        }
        if segment.eq_ignore_ascii_case("organizations") {
            return Ok(TenantPath::MultiTenant { segment: "organizations" });
        }
        let found = if let Ok(id) = segment.parse::<TenantId>() {
            store.tenant(id).await
        } else if is_domain_like(segment) {
            store.tenant_by_domain(&segment.to_ascii_lowercase()).await
        } else {
            Ok(None)
        };
        match found {
            Ok(Some(t)) => Ok(TenantPath::Tenant(t)),
            Ok(None) => Err(TenantPathError::NotFound(Aadsts::tenant_not_found(&sanitize(segment)))),
            Err(e) => Err(TenantPathError::Store(e)),
        }
    }

    /// The segment to use in URLs this server emits for the request.
    pub fn url_segment(&self) -> String {
        match self {
            TenantPath::Tenant(t) => t.id.to_string(),
            TenantPath::MultiTenant { segment } => segment.to_string(),
        }
    }

    pub fn tenant(&self) -> Option<&Tenant> {
        match self {
            TenantPath::Tenant(t) => Some(t),
            TenantPath::MultiTenant { .. } => None,
        }
    }
}

#[derive(Debug)]
pub enum TenantPathError {
    NotFound(Aadsts),
    Store(accord_store::StoreError),
}

fn is_domain_like(s: &str) -> bool {
    s.len() <= 253 && s.contains('.') && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// Echo only harmless characters of user input in error messages.
pub fn sanitize(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric() || "-._@".contains(*c)).take(100).collect()
}
