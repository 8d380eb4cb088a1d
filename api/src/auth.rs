//! Who is calling: HS256 JWTs with a subject and roles, and the tokens the
//! CLI mints for local use.

use std::{collections::BTreeSet, time::Duration};

use axum::{extract::FromRequestParts, http::request::Parts};
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

/// Signs and checks tokens with the shared secret.
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Auth {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// A token for `user` with `roles`, valid for `ttl`.
    pub fn mint(&self, user: &UserId, roles: &[Role], ttl: Duration) -> String {
        let claims = Claims {
            sub: user.to_string(),
            roles: roles.iter().map(|r| role_name(*r).to_owned()).collect(),
            exp: jsonwebtoken::get_current_timestamp() + ttl.as_secs(),
            nbf: None,
        };
        // HS256 over a struct of strings and numbers cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }

    pub fn verify(&self, token: &str) -> Result<Caller, Problem> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| Problem::unauthorized(format!("the token is not valid: {e}")))?;
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
    pub fn from_header(&self, parts: &Parts) -> Option<Result<Caller, Problem>> {
        let value = parts.headers.get(axum::http::header::AUTHORIZATION)?;
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

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        state
            .auth
            .from_header(parts)
            .unwrap_or_else(|| Err(Problem::unauthorized("this needs a bearer token")))
    }
}

/// A caller who may be anonymous; a token that is present must be valid.
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        state.auth.from_header(parts).transpose().map(MaybeCaller)
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
        let token = auth.mint(
            &user,
            &[Role::Organizer, Role::Staff],
            Duration::from_secs(60),
        );
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
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &auth.encoding).unwrap()
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
}
