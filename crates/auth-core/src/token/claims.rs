//! What an access token says (its claims, as signed) and what a verified one answers with
//! (its [`Identity`] and times).

use std::any::Any;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use crate::domain::{Permission, RoleName, SessionId, TenantId, UserId};
use crate::error::TokenRejection;

pub use auth_proto::claims::{ACCESS_TOKEN_TYP, AccessClaims};

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;
/// The `client_id` claim: tokens are issued to first-party clients of this service.
pub const CLIENT_ID: &str = "auth-service";
/// The `token_type` claim of access tokens, as Django SimpleJWT reads it.
pub const SIMPLEJWT_ACCESS: &str = "access";

/// Whom a verified access token speaks for: the claims that token checks answer with, other
/// than the token's times. The tokens of one session carry the same identity until its roles
/// change, so the verified-token cache keeps each distinct identity once and shares it.
///
/// An identity can keep one rendering of itself for whoever serves it ([`Identity::memo`]):
/// the server keeps its introspection answer and forward-auth headers there, made once for
/// every token of the identity.
pub struct Identity {
    pub user_id: UserId,
    pub email: Box<str>,
    pub tenant: TenantId,
    pub session_id: Option<SessionId>,
    /// In token order: the first is the `role` claim.
    pub roles: Box<[RoleName]>,
    pub permissions: Box<[Permission]>,
    memo: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl Identity {
    /// The identity of verified claims; a subject or session that is not one of our ids is
    /// refused as invalid claims.
    pub fn of(claims: &AccessClaims) -> Result<Self, TokenRejection> {
        let user_id = UserId::parse(&claims.sub).ok_or(TokenRejection::Claims)?;
        // The SimpleJWT claims, when there, must agree with the token's own.
        if claims
            .token_type
            .as_deref()
            .is_some_and(|t| t != SIMPLEJWT_ACCESS)
            || claims.user_id.as_deref().is_some_and(|u| u != claims.sub)
        {
            return Err(TokenRejection::Claims);
        }
        let session_id = match claims.sid.as_deref() {
            Some(sid) => Some(SessionId::parse(sid).ok_or(TokenRejection::Claims)?),
            None => None,
        };
        Ok(Self {
            user_id,
            email: claims.email.as_str().into(),
            tenant: TenantId::trusted(claims.tenant.as_str()),
            session_id,
            roles: claims.roles.iter().map(RoleName::trusted).collect(),
            permissions: claims.permissions.iter().map(Permission::trusted).collect(),
            memo: OnceLock::new(),
        })
    }

    /// The first role, as the `role` claim carries it.
    pub fn role(&self) -> Option<&RoleName> {
        self.roles.first()
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|have| have.as_str() == role)
    }

    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions
            .iter()
            .any(|have| have.as_str() == permission)
    }

    /// Reads the rendering kept with this identity, made by `make` the first time. One kind
    /// of rendering is kept; asked for another kind, `make` runs and nothing is kept.
    pub fn memo<T: Any + Send + Sync, R>(
        &self,
        make: impl Fn(&Identity) -> T,
        read: impl FnOnce(&T) -> R,
    ) -> R {
        let kept = self.memo.get_or_init(|| Box::new(make(self)));
        match kept.downcast_ref::<T>() {
            Some(kept) => read(kept),
            None => read(&make(self)),
        }
    }

    /// The claims, without what is kept alongside.
    fn fields(&self) -> impl Eq + Hash + '_ {
        (
            &self.user_id,
            &self.email,
            &self.tenant,
            &self.session_id,
            &self.roles,
            &self.permissions,
        )
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("user_id", &self.user_id)
            .field("tenant", &self.tenant)
            .field("session_id", &self.session_id)
            .field("roles", &self.roles)
            .field("permissions", &self.permissions)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        self.fields() == other.fields()
    }
}

impl Eq for Identity {}

impl Hash for Identity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.fields().hash(state);
    }
}

/// A verified access token of a live session: whose it is and when it was issued and expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub identity: Arc<Identity>,
    pub exp: i64,
    pub iat: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, sid: Option<&str>) -> AccessClaims {
        AccessClaims {
            iss: "iss".into(),
            sub: sub.into(),
            aud: Some("api".into()),
            exp: 1000,
            iat: 100,
            nbf: None,
            jti: "j".into(),
            client_id: CLIENT_ID.into(),
            tenant: "default".into(),
            roles: vec!["admin".into(), "user".into()],
            permissions: vec!["users:read".into()],
            role: Some("admin".into()),
            email: "a@example.com".into(),
            email_verified: false,
            sid: sid.map(str::to_owned),
            token_type: Some(SIMPLEJWT_ACCESS.into()),
            user_id: Some(sub.into()),
        }
    }

    #[test]
    fn identities_take_typed_ids_and_refuse_others() {
        let user = UserId::generate().to_string();
        let sid = SessionId::generate().to_string();
        let identity = Identity::of(&claims(&user, Some(&sid))).unwrap();
        assert_eq!(identity.user_id.to_string(), user);
        assert_eq!(identity.role().map(RoleName::as_str), Some("admin"));
        assert!(identity.has_permission("users:read") && !identity.has_permission("users"));
        assert_eq!(
            Identity::of(&claims("u-1", None)),
            Err(TokenRejection::Claims)
        );
        assert_eq!(
            Identity::of(&claims(&user, Some("s-1"))),
            Err(TokenRejection::Claims)
        );
        let mut refresh = claims(&user, None);
        refresh.token_type = Some("refresh".into());
        assert_eq!(Identity::of(&refresh), Err(TokenRejection::Claims));
        let mut other = claims(&user, None);
        other.user_id = Some(UserId::generate().to_string());
        assert_eq!(Identity::of(&other), Err(TokenRejection::Claims));
        let mut older = claims(&user, None);
        (older.token_type, older.user_id) = (None, None);
        assert!(Identity::of(&older).is_ok(), "tokens of older versions");
    }

    #[test]
    fn a_rendering_is_made_once_and_another_kind_is_not_kept() {
        let identity = Identity::of(&claims(&UserId::generate().to_string(), None)).unwrap();
        let made = std::sync::atomic::AtomicUsize::new(0);
        let make = |i: &Identity| {
            made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            i.email.to_string()
        };
        assert_eq!(identity.memo(make, String::clone), "a@example.com");
        assert_eq!(identity.memo(make, String::len), 13);
        assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(
            identity.memo(|_| 7u8, |n| *n),
            7,
            "another kind is made each time"
        );
        assert_eq!(identity.memo(make, String::len), 13);
    }
}
