//! A verified identity as the platform routes answer with it: the opening of its
//! introspection answer and its forward-auth headers, each rendered the first time it is
//! asked for and then kept with the identity ([`Identity::memo`]), shared by every token of
//! the identity (a cache hit renders nothing).

use std::sync::OnceLock;

use auth_core::token::Identity;
use auth_proto::ActiveIdentity;
use axum::http::HeaderMap;

/// The renderings kept with an identity.
#[derive(Default)]
struct Rendered {
    introspection: OnceLock<Box<str>>,
    headers: OnceLock<HeaderMap>,
}

/// The identity in wire form.
fn wire<R>(identity: &Identity, read: impl FnOnce(&ActiveIdentity<'_, &str>) -> R) -> R {
    let sub = identity.user_id.to_string();
    let sid = identity.session_id.map(|s| s.to_string());
    let roles: Vec<&str> = identity.roles.iter().map(|r| r.as_str()).collect();
    let permissions: Vec<&str> = identity.permissions.iter().map(|p| p.as_str()).collect();
    read(&ActiveIdentity {
        sub: &sub,
        sid: sid.as_deref(),
        roles: &roles,
        role: identity.role().map(|r| r.as_str()),
        permissions: &permissions,
        tenant: identity.tenant.as_str(),
        email: &identity.email,
    })
}

/// The members of an active introspection of this identity's tokens, up to their times
/// (see [`ActiveIdentity::render`]), with `read`.
pub fn introspection<R>(identity: &Identity, read: impl FnOnce(&str) -> R) -> R {
    identity.memo(
        |_| Rendered::default(),
        |rendered| {
            read(
                rendered
                    .introspection
                    .get_or_init(|| wire(identity, |w| w.render().into())),
            )
        },
    )
}

/// The `X-Auth-*` headers of a forward-auth answer for this identity's tokens (see
/// [`ActiveIdentity::headers`]), with `read`; an answer clones them, sharing their values.
pub fn forward_auth_headers<R>(identity: &Identity, read: impl FnOnce(&HeaderMap) -> R) -> R {
    identity.memo(
        |_| Rendered::default(),
        |rendered| {
            read(
                rendered
                    .headers
                    .get_or_init(|| wire(identity, |w| w.headers())),
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use auth_core::domain::{RoleName, SessionId, TenantId, User, UserId};

    use super::*;

    #[test]
    fn renderings_are_made_once_per_identity_and_carry_its_claims() {
        let tokens = auth_core::testing::hs256_tokens();
        let user = User {
            id: UserId::generate(),
            tenant: TenantId::trusted("tenant-é"),
            email: "q\"u\\o\te@exämple.com".into(),
            username: None,
            roles: vec![RoleName::trusted("ad\"min"), RoleName::user()],
            permissions: vec![],
            email_verified: false,
            disabled: false,
            created_at: 0,
            updated_at: 0,
        };
        let sid = SessionId::generate();
        let now = auth_core::now_unix();
        let first = tokens
            .check(&tokens.mint(&user, Some(sid), now).unwrap().token, now)
            .unwrap();
        let second = tokens
            .check(&tokens.mint(&user, Some(sid), now + 1).unwrap().token, now)
            .unwrap();
        let headers = forward_auth_headers(&first.identity, |h| h as *const HeaderMap);
        forward_auth_headers(&first.identity, |h| {
            assert_eq!(h[auth_proto::X_AUTH_SESSION_ID], sid.to_string().as_str());
            assert_eq!(h[auth_proto::X_AUTH_USER_ID], user.id.to_string().as_str());
            assert_eq!(h[auth_proto::X_AUTH_ROLES].as_bytes(), b"ad\"min,user");
            assert_eq!(
                h[auth_proto::X_AUTH_EMAIL].as_bytes(),
                user.email.as_bytes(),
                "a tab may be sent"
            );
        });
        assert!(std::ptr::eq(
            headers,
            forward_auth_headers(&second.identity, |h| h as *const HeaderMap)
        ));
        let opening = introspection(&first.identity, str::to_owned);
        let answer = auth_proto::introspection_answer(&opening, first.exp, first.iat);
        let parsed: auth_proto::Introspection = serde_json::from_slice(&answer).unwrap();
        assert!(parsed.active);
        assert_eq!(parsed.sub, Some(user.id.to_string()));
        assert_eq!(parsed.email.as_deref(), Some(user.email.as_str()));
        assert_eq!(parsed.tenant.as_deref(), Some("tenant-é"));
        assert_eq!(parsed.role.as_deref(), Some("ad\"min"));
        assert_eq!(parsed.exp, Some(first.exp));
    }
}
