//! Who is calling: JWTs with a subject and roles, signed with the shared
//! HS256 secret (the tokens the CLI mints for local use) or by an identity
//! provider whose RS256 or EdDSA public key is configured.

use std::{collections::BTreeSet, time::Duration};

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{HeaderMap, request::Parts},
    middleware::Next,
    response::Response,
};
use eventsys_messages::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{AppState, problem::Problem};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Organizer,
    Attendee,
    Staff,
    Admin,
}

impl Role {
    pub fn parse(raw: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(raw.to_owned())).ok()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    roles: Vec<String>,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
}

/// The longest a token may be valid for: a token that claims more (a
/// year-9999 `exp`) is refused, so a leaked one cannot live forever.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// Clock skew forgiven on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 5;

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: UserId,
    pub roles: BTreeSet<Role>,
    /// When the token stops being valid (seconds since the Unix epoch): a
    /// live connection ends then.
    pub expires_at: u64,
}

impl Caller {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// How long until the token runs out, on the clock tokens are checked by.
    pub fn lifetime(&self) -> Duration {
        Duration::from_secs(
            self.expires_at
                .saturating_sub(jsonwebtoken::get_current_timestamp()),
        )
    }

    pub fn is_admin(&self) -> bool {
        self.has(Role::Admin)
    }

    /// Refuses callers holding none of `roles` (admins hold them all).
    pub fn require(&self, roles: &[Role]) -> Result<(), Problem> {
        if self.is_admin() || roles.iter().any(|r| self.has(*r)) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| role_name(*r)).collect();
            Err(Problem::forbidden(format!(
                "this needs the role {}",
                names.join(" or ")
            )))
        }
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Organizer => "organizer",
        Role::Attendee => "attendee",
        Role::Staff => "staff",
        Role::Admin => "admin",
    }
}

/// What tokens are checked against: at least one key, and the issuer and
/// audience they must name when those are configured.
#[derive(Default)]
pub struct TokenKeys {
    /// HS256: the shared secret (the CLI mints tokens with it).
    pub secret: Option<Vec<u8>>,
    /// RS256 or EdDSA: an identity provider's public key, PEM.
    pub public_key_pem: Option<Vec<u8>>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// Token keys that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenKeyError {
    #[error("no token key: configure a secret or a public key")]
    None,
    #[error("the token public key is neither an RSA nor an Ed25519 public key in PEM")]
    PublicKey,
}

/// Signs (with the secret) and checks tokens.
pub struct Auth {
    encoding: Option<EncodingKey>,
    /// One decoding key per algorithm accepted; a token's header picks one.
    decoding: Vec<(Algorithm, DecodingKey)>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl Auth {
    /// HS256 with `secret`, no issuer or audience: local use and tests.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: Some(EncodingKey::from_secret(secret)),
            decoding: vec![(Algorithm::HS256, DecodingKey::from_secret(secret))],
            issuer: None,
            audience: None,
        }
    }

    pub fn configured(keys: TokenKeys) -> Result<Self, TokenKeyError> {
        let mut decoding = Vec::new();
        let encoding = keys.secret.as_deref().map(|secret| {
            decoding.push((Algorithm::HS256, DecodingKey::from_secret(secret)));
            EncodingKey::from_secret(secret)
        });
        if let Some(pem) = keys.public_key_pem.as_deref() {
            let key = DecodingKey::from_rsa_pem(pem)
                .map(|key| (Algorithm::RS256, key))
                .or_else(|_| DecodingKey::from_ed_pem(pem).map(|key| (Algorithm::EdDSA, key)))
                .map_err(|_| TokenKeyError::PublicKey)?;
            decoding.push(key);
        }
        if decoding.is_empty() {
            return Err(TokenKeyError::None);
        }
        Ok(Self {
            encoding,
            decoding,
            issuer: keys.issuer,
            audience: keys.audience,
        })
    }

    /// A token for `user` with `roles`, valid for `ttl`, naming the
    /// configured issuer and audience; `None` without a secret to sign with.
    pub fn mint(&self, user: &UserId, roles: &[Role], ttl: Duration) -> Option<String> {
        let claims = Claims {
            sub: user.to_string(),
            roles: roles.iter().map(|r| role_name(*r).to_owned()).collect(),
            exp: jsonwebtoken::get_current_timestamp() + ttl.as_secs(),
            nbf: None,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            self.encoding.as_ref()?,
        )
        .ok()
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        // Configured means required: a token that names none is refused.
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".into());
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        validation
    }

    pub fn verify(&self, token: &str) -> Result<Caller, Problem> {
        let invalid = |e: jsonwebtoken::errors::Error| {
            Problem::unauthorized(format!("the token is not valid: {e}"))
        };
        let algorithm = jsonwebtoken::decode_header(token).map_err(invalid)?.alg;
        let (_, key) = self
            .decoding
            .iter()
            .find(|(accepted, _)| *accepted == algorithm)
            .ok_or_else(|| {
                Problem::unauthorized(format!("tokens signed with {algorithm:?} are not accepted"))
            })?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation(algorithm))
            .map_err(invalid)?;
        let latest =
            jsonwebtoken::get_current_timestamp() + MAX_TOKEN_LIFETIME.as_secs() + LEEWAY_SECS;
        if data.claims.exp > latest {
            return Err(Problem::unauthorized(format!(
                "the token is valid for longer than the {} days allowed",
                MAX_TOKEN_LIFETIME.as_secs() / 86_400
            )));
        }
        let user = UserId::parse(&data.claims.sub)
            .ok_or_else(|| Problem::unauthorized("the token's subject is not a valid user id"))?;
        // Roles this build does not know grant nothing.
        let roles = data
            .claims
            .roles
            .iter()
            .filter_map(|r| Role::parse(r))
            .collect();
        Ok(Caller {
            user,
            roles,
            expires_at: data.claims.exp,
        })
    }

    /// The caller named by an `Authorization: Bearer` header, if any.
    pub fn from_headers(&self, headers: &HeaderMap) -> Option<Result<Caller, Problem>> {
        let value = headers.get(axum::http::header::AUTHORIZATION)?;
        let token = value.to_str().ok().and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
        Some(match token {
            Some(token) => self.verify(token.trim()),
            None => Err(Problem::unauthorized(
                "expected `Authorization: Bearer <token>`",
            )),
        })
    }
}

/// Verifies the bearer token once per request, before anything else looks
/// at the caller (the write limits, the handler): a valid one is kept in the
/// request's extensions; an invalid one is left for the handler to refuse.
pub async fn identify(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if let Some(Ok(caller)) = state.auth.from_headers(request.headers()) {
        tracing::Span::current().record("user", caller.user.as_str());
        request.extensions_mut().insert(caller);
    }
    next.run(request).await
}

impl Auth {
    /// The caller of a request that went through [`identify`], if any;
    /// `None` when the request carries no bearer token.
    pub fn of(&self, parts: &Parts) -> Option<Result<Caller, Problem>> {
        match parts.extensions.get::<Caller>() {
            Some(caller) => Some(Ok(caller.clone())),
            // No token, or one that did not verify: say which.
            None => self.from_headers(&parts.headers),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        state
            .auth
            .of(parts)
            .unwrap_or_else(|| Err(Problem::unauthorized("this needs a bearer token")))
    }
}

/// A caller who may be anonymous; a token that is present must be valid.
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        state.auth.of(parts).transpose().map(MaybeCaller)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_minted_token_verifies_with_its_roles_and_not_with_another_secret() {
        let auth = Auth::new(b"0123456789abcdef0123456789abcdef");
        let user = UserId::parse("ann").unwrap();
        let token = auth
            .mint(
                &user,
                &[Role::Organizer, Role::Staff],
                Duration::from_secs(60),
            )
            .unwrap();
        let caller = auth.verify(&token).unwrap();
        assert_eq!(caller.user, user);
        assert!(caller.has(Role::Organizer) && caller.has(Role::Staff) && !caller.is_admin());
        assert!(caller.require(&[Role::Attendee]).is_err());
        assert!(
            Auth::new(b"another secret, just as long....")
                .verify(&token)
                .is_err()
        );
    }

    fn signed(auth: &Auth, claims: serde_json::Value) -> String {
        let key = auth.encoding.as_ref().unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key).unwrap()
    }

    #[test]
    fn a_token_is_refused_before_its_time_after_it_and_when_it_claims_too_long_a_life() {
        let auth = Auth::new(b"0123456789abcdef0123456789abcdef");
        let now = jsonwebtoken::get_current_timestamp();
        let refused = |claims| auth.verify(&signed(&auth, claims)).is_err();
        assert!(!refused(json!({ "sub": "ann", "exp": now + 60 })));
        assert!(
            refused(json!({ "sub": "ann", "exp": now + 600, "nbf": now + 300 })),
            "not yet"
        );
        assert!(refused(json!({ "sub": "ann", "exp": now - 60 })), "expired");
        assert!(refused(json!({ "sub": "ann" })), "no exp at all");
        assert!(
            refused(json!({ "sub": "ann", "exp": 253_402_300_799_u64 })),
            "year 9999"
        );
        let longest = now + MAX_TOKEN_LIFETIME.as_secs();
        assert!(!refused(json!({ "sub": "ann", "exp": longest })));
        assert!(refused(json!({ "sub": "ann", "exp": longest + 3600 })));
    }

    #[test]
    fn issuer_and_audience_are_required_once_configured() {
        let secret = b"0123456789abcdef0123456789abcdef".to_vec();
        let auth = Auth::configured(TokenKeys {
            secret: Some(secret.clone()),
            issuer: Some("https://id.example".into()),
            audience: Some("eventsys".into()),
            ..TokenKeys::default()
        })
        .unwrap();
        let now = jsonwebtoken::get_current_timestamp();
        let refused = |claims| auth.verify(&signed(&auth, claims)).is_err();
        let exp = now + 60;
        assert!(!refused(
            json!({ "sub": "ann", "exp": exp, "iss": "https://id.example", "aud": "eventsys" })
        ));
        assert!(refused(
            json!({ "sub": "ann", "exp": exp, "aud": "eventsys" })
        ));
        assert!(refused(
            json!({ "sub": "ann", "exp": exp, "iss": "https://evil.example", "aud": "eventsys" })
        ));
        assert!(refused(
            json!({ "sub": "ann", "exp": exp, "iss": "https://id.example", "aud": "other" })
        ));
        // What the CLI mints names them.
        let user = UserId::parse("ann").unwrap();
        let minted = auth.mint(&user, &[Role::Attendee], Duration::from_secs(60));
        assert!(auth.verify(&minted.unwrap()).is_ok());
    }

    #[test]
    fn an_identity_providers_eddsa_token_verifies_with_its_public_key_only() {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
        use base64::Engine;
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        // SubjectPublicKeyInfo for Ed25519: a fixed prefix, then the key.
        let mut spki = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        spki.extend_from_slice(pair.public_key().as_ref());
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&spki)
        );
        let auth = Auth::configured(TokenKeys {
            public_key_pem: Some(pem.into_bytes()),
            ..TokenKeys::default()
        })
        .unwrap();
        let claims = json!({ "sub": "ann", "roles": ["staff"],
            "exp": jsonwebtoken::get_current_timestamp() + 60 });
        let key = EncodingKey::from_ed_der(pkcs8.as_ref());
        let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).unwrap();
        assert!(auth.verify(&token).unwrap().has(Role::Staff));
        // Nobody can mint with only a public key, and HS256 is not accepted.
        let user = UserId::parse("ann").unwrap();
        assert!(
            auth.mint(&user, &[Role::Admin], Duration::from_secs(60))
                .is_none()
        );
        let other = Auth::new(b"0123456789abcdef0123456789abcdef");
        let forged = other
            .mint(&user, &[Role::Admin], Duration::from_secs(60))
            .unwrap();
        assert!(auth.verify(&forged).is_err());
    }

    proptest::proptest! {
        #[test]
        fn no_made_up_token_verifies(token in "\\PC{0,300}|[A-Za-z0-9_-]{10,60}\\.[A-Za-z0-9_-]{10,120}\\.[A-Za-z0-9_-]{0,90}") {
            let auth = Auth::new(b"0123456789abcdef0123456789abcdef");
            proptest::prop_assert!(auth.verify(&token).is_err());
        }
    }
}
