//! Access tokens: JWT, HS256 only. A token is evidence of a server-side session, never a
//! session by itself: every request also checks the session row (see `identity::session`).

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::kinds::Role;
use crate::error::{AppError, AppResult};

/// The one algorithm accepted: the allow-list has one entry, so `alg: none`, RS/ES
/// confusion and every other algorithm are refused before the signature is looked at.
pub const ALGORITHM: Algorithm = Algorithm::HS256;
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: Uuid,
    /// Tenant; absent for the platform-wide SYSTEM_ADMIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<Uuid>,
    pub role: Role,
    /// Server-side session id.
    pub sid: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

pub struct TokenKeys {
    /// Seals paging cursors: derived from the signing secret, so every replica accepts the
    /// cursors of the others, and a cursor cannot be forged or edited.
    cursor_key: [u8; 32],
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys").field("issuer", &self.issuer).field("audience", &self.audience).finish()
    }
}

impl TokenKeys {
    pub fn new(secret: &[u8], issuer: &str, audience: &str) -> AppResult<Self> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(AppError::Internal(format!("token secret must be at least {MIN_SECRET_LEN} bytes")));
        }
        let mut validation = Validation::new(ALGORITHM);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        // Expiry is checked against the injectable clock in `verify`, not the library's
        // wall clock, so tests can move time; zero leeway either way.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        Ok(Self {
            cursor_key: hmac_sha256(secret, b"coachgraph cursor key v1"),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        tenant_id: Option<Uuid>,
        role: Role,
        session_id: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> AppResult<String> {
        let claims = Claims {
            sub: user_id,
            tid: tenant_id,
            role,
            sid: session_id,
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        jsonwebtoken::encode(&Header::new(ALGORITHM), &claims, &self.encoding).map_err(AppError::internal)
    }

    /// Signature, algorithm, issuer, audience, claim types, `exp` (strictly in the future)
    /// and `iat` (not in the future). Any failure is `Unauthenticated`, with no detail.
    /// The integrity tag of a paging cursor's payload.
    pub fn cursor_tag(&self, payload: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.cursor_key, payload)
    }

    /// Whether `tag` is `payload`'s integrity tag (constant time).
    pub fn cursor_tag_matches(&self, payload: &[u8], tag: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.cursor_tag(payload).as_slice().ct_eq(tag))
    }

    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> AppResult<Claims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            tracing::debug!(error = %e, "token refused");
            AppError::Unauthenticated
        })?;
        let claims = data.claims;
        let now = now.timestamp();
        if claims.exp <= now || claims.iat > now + 5 {
            return Err(AppError::Unauthenticated);
        }
        Ok(claims)
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chrono::Duration;

    fn keys() -> TokenKeys {
        TokenKeys::new(&[7u8; 32], "coachgraph", "coachgraph-api").expect("keys")
    }

    fn token(now: DateTime<Utc>) -> String {
        keys()
            .issue(Uuid::new_v4(), Some(Uuid::new_v4()), Role::Coach, Uuid::new_v4(), now, now + Duration::hours(1))
            .expect("token")
    }

    #[test]
    fn a_fresh_token_verifies() {
        let now = Utc::now();
        let claims = keys().verify(&token(now), now).expect("valid");
        assert_eq!(claims.role, Role::Coach);
    }

    #[test]
    fn an_expired_token_is_refused() {
        let now = Utc::now();
        assert!(keys().verify(&token(now), now + Duration::hours(1)).is_err());
    }

    #[test]
    fn a_token_issued_in_the_future_is_refused() {
        let now = Utc::now();
        assert!(keys().verify(&token(now + Duration::minutes(10)), now).is_err());
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let now = Utc::now();
        let other = TokenKeys::new(&[8u8; 32], "coachgraph", "coachgraph-api").expect("keys");
        let t = other
            .issue(Uuid::new_v4(), None, Role::SystemAdmin, Uuid::new_v4(), now, now + Duration::hours(1))
            .expect("token");
        assert!(keys().verify(&t, now).is_err());
    }

    #[test]
    fn wrong_audience_or_issuer_is_refused() {
        let now = Utc::now();
        for (iss, aud) in [("coachgraph", "other-api"), ("someone-else", "coachgraph-api")] {
            let k = TokenKeys::new(&[7u8; 32], iss, aud).expect("keys");
            let t =
                k.issue(Uuid::new_v4(), None, Role::Coachee, Uuid::new_v4(), now, now + Duration::hours(1)).expect("t");
            assert!(keys().verify(&t, now).is_err(), "{iss}/{aud}");
        }
    }

    fn forge(header: &str, payload: serde_json::Value, signature: &str) -> String {
        format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload.to_string()), signature)
    }

    fn payload(now: DateTime<Utc>) -> serde_json::Value {
        serde_json::json!({
            "sub": Uuid::new_v4(), "tid": Uuid::new_v4(), "role": "COACH", "sid": Uuid::new_v4(),
            "iat": now.timestamp(), "exp": now.timestamp() + 3600, "iss": "coachgraph", "aud": "coachgraph-api"
        })
    }

    #[test]
    fn alg_none_is_refused() {
        let now = Utc::now();
        let t = forge(r#"{"alg":"none","typ":"JWT"}"#, payload(now), "");
        assert!(keys().verify(&t, now).is_err());
    }

    #[test]
    fn string_exp_is_refused() {
        let now = Utc::now();
        // Correctly signed, but `exp` is a string.
        let mut p = payload(now);
        p["exp"] = serde_json::json!((now.timestamp() + 3600).to_string());
        let t = jsonwebtoken::encode(&Header::new(ALGORITHM), &p, &EncodingKey::from_secret(&[7u8; 32])).expect("t");
        assert!(keys().verify(&t, now).is_err());
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let now = Utc::now();
        let t = token(now);
        let parts: Vec<&str> = t.split('.').collect();
        let mut p = payload(now);
        p["role"] = serde_json::json!("SYSTEM_ADMIN");
        let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(p.to_string()), parts[2]);
        assert!(keys().verify(&forged, now).is_err());
    }

    #[test]
    fn missing_claims_are_refused() {
        let now = Utc::now();
        let mut p = payload(now);
        p.as_object_mut().expect("object").remove("exp");
        let t = jsonwebtoken::encode(&Header::new(ALGORITHM), &p, &EncodingKey::from_secret(&[7u8; 32])).expect("t");
        assert!(keys().verify(&t, now).is_err());
    }

    #[test]
    fn short_secrets_are_rejected() {
        assert!(TokenKeys::new(b"short", "i", "a").is_err());
    }
}
