//! Accord's own pages (My Apps, the admin center) sign people in with the same sign-in form
//! and SSO session as the protocol endpoints. `PortalUser` is the signed-in person of a page
//! request; without a session the browser is sent to the sign-in form and back.

use crate::protocol::authorization_request::{sign_in_page, AuthorizeRequest, FlowKind, ResponseMode};
use crate::protocol::errors::PageFailure;
use crate::service::administration::Actor;
use crate::state::{AppState, SharedState};
use crate::tenancy::TenantPath;
use crate::web::cookies;
use crate::web::forms::found;
use crate::web::session::current_session;
use accord_core::directory::{Tenant, User};
use accord_core::ids::AppId;
use axum::extract::{FromRequestParts, OriginalUri, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;

pub use crate::protocol::portal_client::{portal_application, safe_return_to};

#[derive(Deserialize)]
pub struct SignInQuery {
    return_to: Option<String>,
}

/// `GET /portal/signin?return_to=/admin/...`
pub async fn portal_sign_in(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> Response {
    let return_to = safe_return_to(q.return_to.as_deref());
    let path = TenantPath::MultiTenant { segment: "organizations" };
    let req = AuthorizeRequest {
        kind: FlowKind::Portal,
        tenant_segment: "organizations".into(),
        client_id: AppId::NIL,
        redirect_uri: return_to.clone(),
        scope: String::new(),
        response_mode: ResponseMode::Query,
        state: None,
        nonce: None,
        prompt: None,
        login_hint: None,
        code_challenge: None,
        code_challenge_method: None,
        issued_at: accord_core::clock::now().unix_timestamp(),
        device_code_hash: None,
        claims_not_before: None,
    };
    sign_in_page(&state, &headers, &path, &portal_application(&return_to), &req, None, StatusCode::OK)
}

/// The signed-in person of a page request, with their tenant and roles, and the CSRF token
/// their forms must carry.
pub struct PortalUser {
    pub user: User,
    pub tenant: Tenant,
    pub actor: Actor,
    pub csrf: String,
    /// A Set-Cookie header to add when the CSRF cookie was just created.
    pub set_csrf_cookie: Option<axum::http::HeaderValue>,
}

impl PortalUser {
    /// Checks a submitted form's CSRF token.
    pub fn check_csrf(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        form: &HashMap<String, String>,
    ) -> Result<(), accord_core::Aadsts> {
        let ok = cookies::get(headers, cookies::CSRF, state.settings.secure_cookies)
            .zip(form.get("csrf"))
            .is_some_and(|(secret, token)| state.keyring.csrf_valid(&secret, token));
        if ok {
            Ok(())
        } else {
            Err(accord_core::Aadsts::form_expired("The form did not come from this site or has expired."))
        }
    }
}

/// Sends the browser to sign in and come back.
pub struct SignInRedirect(Response);

impl IntoResponse for SignInRedirect {
    fn into_response(self) -> Response {
        self.0
    }
}

impl FromRequestParts<SharedState> for PortalUser {
    type Rejection = SignInRedirect;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        let uri = parts.extensions.get::<OriginalUri>().map(|u| u.0.clone()).unwrap_or_else(|| parts.uri.clone());
        let return_to = safe_return_to(Some(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/myapps")));
        let to_sign_in = || {
            let q = form_urlencoded::Serializer::new(String::new()).append_pair("return_to", &return_to).finish();
            SignInRedirect(found(&format!("/portal/signin?{q}")))
        };
        let session = match current_session(state, &parts.headers).await {
            Ok(Some((_, user))) => user,
            Ok(None) => return Err(to_sign_in()),
            Err(e) => return Err(SignInRedirect(PageFailure(e.into()).into_response())),
        };
        let tenant = match state.store.tenant(session.tenant_id).await {
            Ok(Some(t)) => t,
            _ => return Err(to_sign_in()),
        };
        let actor = match Actor::user(&*state.store, session.clone()).await {
            Ok(a) => a,
            Err(e) => return Err(SignInRedirect(PageFailure(e.into()).into_response())),
        };
        let (secret, set_csrf_cookie) = crate::web::session::csrf_cookie(state, &parts.headers);
        Ok(PortalUser { csrf: state.keyring.csrf_token(&secret), user: session, tenant, actor, set_csrf_cookie })
    }
}
