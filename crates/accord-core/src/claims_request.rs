//! The OpenID Connect `claims` request parameter as Entra clients send it, reduced to what
//! Accord acts on: the client's declared capabilities (`access_token.xms_cc`, where `cp1`
//! means it handles continuous access evaluation's claims challenges) and a challenge's
//! `access_token.nbf` (tokens must come from a sign-in no older than that).
//!
//! MSAL always sends a `claims` parameter (msal-common asks for optional ID token claims), so
//! members Accord does not know are ignored; only JSON that is not an object is an error.

use serde_json::Value;

/// What a `claims` parameter asks of the access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClaimsRequest {
    /// The client handles claims challenges (`xms_cc` contains `cp1`, in any case).
    pub cp1: bool,
    /// A claims challenge: the sign-in must not be older than this (Unix seconds).
    pub not_before: Option<i64>,
}

impl ClaimsRequest {
    /// Parses the parameter's value (JSON). `Err` names what is wrong with it.
    pub fn parse(text: &str) -> Result<ClaimsRequest, String> {
        let value: Value = serde_json::from_str(text.trim()).map_err(|e| format!("it is not JSON: {e}"))?;
        let Value::Object(root) = value else { return Err("it must be a JSON object".into()) };
        let access = root.get("access_token");
        let cp1 = access
            .and_then(|a| a.get("xms_cc"))
            .and_then(|c| c.get("values"))
            .and_then(Value::as_array)
            .is_some_and(|values| values.iter().filter_map(Value::as_str).any(|v| v.eq_ignore_ascii_case("cp1")));
        let not_before = access.and_then(|a| a.get("nbf")).and_then(|n| n.get("value")).and_then(|v| match v {
            Value::String(s) => s.trim().parse::<i64>().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        });
        Ok(ClaimsRequest { cp1, not_before })
    }

    /// The challenge Graph sends when a capable client's token predates a revocation: the
    /// `claims` value of `WWW-Authenticate` (before base64), asking for a token issued from a
    /// sign-in at `not_before` or later.
    pub fn challenge(not_before: i64) -> String {
        serde_json::json!({"access_token": {"nbf": {"essential": true, "value": not_before.to_string()}}}).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_case_insensitive_and_unknown_members_ignored() {
        let msal_common = r#"{"id_token":{"signin_state":{"essential":false},"login_hint":{"essential":false}}}"#;
        assert_eq!(ClaimsRequest::parse(msal_common), Ok(ClaimsRequest::default()));
        let azure_identity = r#"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#;
        assert!(ClaimsRequest::parse(azure_identity).unwrap().cp1);
        let other = r#"{"access_token":{"xms_cc":{"values":["cp2"]}}}"#;
        assert!(!ClaimsRequest::parse(other).unwrap().cp1);
        assert!(ClaimsRequest::parse("[1]").is_err());
        assert!(ClaimsRequest::parse("{nope").is_err());
    }

    #[test]
    fn a_challenge_round_trips() {
        let challenge = ClaimsRequest::challenge(1_700_000_000);
        let merged = challenge.replace(r#""access_token":{"#, r#""access_token":{"xms_cc":{"values":["cp1"]},"#);
        let parsed = ClaimsRequest::parse(&merged).unwrap();
        assert_eq!(parsed, ClaimsRequest { cp1: true, not_before: Some(1_700_000_000) });
        assert_eq!(ClaimsRequest::parse(r#"{"access_token":{"nbf":{"value":17}}}"#).unwrap().not_before, Some(17));
    }
}
