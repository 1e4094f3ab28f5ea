//! A strict, independent OpenID Connect client (the `openidconnect` crate) against a real
//! server: discovery with exact issuer match, JWKS, RS256 signature, audience, expiry, nonce,
//! PKCE and client_secret_basic.

mod support;

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use support::*;

#[tokio::test]
async fn openidconnect_crate_accepts_discovery_code_flow_and_id_token() {
    let server = TestServer::start();
    let http = openidconnect::reqwest::Client::builder()
        .add_root_certificate(openidconnect::reqwest::Certificate::from_pem(&server.ca_pem).unwrap())
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let issuer = IssuerUrl::new(format!("{}/{CONTOSO}/v2.0", server.base)).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &http).await.expect("strict discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(WEB_APP.to_string()),
        Some(ClientSecret::new(WEB_SECRET.to_string())),
    )
    .set_redirect_uri(RedirectUrl::new(WEB_REDIRECT.to_string()).unwrap())
    .set_auth_type(AuthType::BasicAuth);

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .add_scope(Scope::new("User.Read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = server.client();
    let location = sign_in(&browser, &server, auth_url.as_str(), "alice@contoso.test", "alice-password-1")
        .await
        .expect("sign-in redirects back");
    assert_eq!(query_param(&location, "state").as_deref(), Some(csrf.secret().as_str()));
    let code = query_param(&location, "code").expect("code");

    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint configured")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange with client_secret_basic");
    let id_token = token.id_token().expect("id token");
    // Verifies the RS256 signature against the JWKS, iss, aud, exp and nonce.
    let claims = id_token.claims(&client.id_token_verifier(), &nonce).expect("id token verifies");
    assert_eq!(claims.preferred_username().map(|u| u.as_str()), Some("alice@contoso.test"));
    assert_eq!(claims.issuer().as_str(), format!("{}/{CONTOSO}/v2.0", server.base));
    assert!(token.refresh_token().is_some());

    // A wrong nonce is rejected by the same client.
    let wrong = Nonce::new("not-the-nonce".into());
    assert!(id_token.claims(&client.id_token_verifier(), &wrong).is_err());

    // Refresh through the same strict client.
    let refreshed = client
        .exchange_refresh_token(token.refresh_token().unwrap())
        .expect("token endpoint configured")
        .request_async(&http)
        .await
        .expect("refresh");
    assert_ne!(refreshed.access_token().secret(), token.access_token().secret());
}
