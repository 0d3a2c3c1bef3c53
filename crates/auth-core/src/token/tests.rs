//! Tests of minting, checking and key rings.

use super::*;
use crate::domain::{Permission, RoleName, TenantId, UserId};
use crate::keys::KeyState;

fn settings() -> TokenSettings {
    TokenSettings {
        issuer: "https://auth.test".into(),
        audience: Some("platform".into()),
        access_ttl: Duration::from_secs(900),
    }
}

fn user() -> User {
    User {
        id: UserId::generate(),
        tenant: TenantId::default_tenant(),
        email: "a@example.com".into(),
        username: None,
        roles: vec![RoleName::trusted("admin"), RoleName::trusted("user")],
        permissions: vec![Permission::trusted("users:read")],
        email_verified: false,
        disabled: false,
        created_at: 0,
        updated_at: 0,
    }
}

fn eddsa() -> (TokenService, StoredKey) {
    let vault = KeyVault::new(None);
    let key = vault.generate(KeyState::Active, 0);
    let svc = TokenService::with_keys(settings(), std::slice::from_ref(&key), vault).unwrap();
    (svc, key)
}

#[test]
fn minted_tokens_verify_and_carry_the_rfc9068_claims() {
    let (svc, key) = eddsa();
    let now = crate::now_unix();
    let u = user();
    let sid = SessionId::generate();
    let t = svc.mint(&u, Some(sid), now).unwrap();
    let header = jsonwebtoken::decode_header(&t.token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));
    let claims = svc.verify_signature(&t.token, now).unwrap();
    assert_eq!(claims.sub, u.id.to_string());
    assert_eq!(claims.sid, Some(sid.to_string()));
    assert_eq!(claims.role.as_deref(), Some("admin"));
    assert_eq!(claims.roles, ["admin", "user"]);
    assert_eq!(claims.permissions, ["users:read"]);
    assert_eq!(
        (claims.iss.as_str(), claims.aud.as_deref()),
        ("https://auth.test", Some("platform"))
    );
    assert_eq!(claims.token_type.as_deref(), Some("access"));
    assert_eq!(claims.user_id, Some(claims.sub.clone()));
    assert_eq!(claims.exp - claims.iat, 900);
    assert_eq!(t.expires_at, claims.exp);
    assert_eq!(svc.jwks().keys.len(), 1);
}

#[test]
fn expired_foreign_and_wrong_audience_tokens_are_refused() {
    let (svc, _) = eddsa();
    let now = crate::now_unix();
    let old = svc.mint(&user(), None, now - 2000).unwrap();
    assert_eq!(svc.check(&old.token, now), Err(TokenRejection::Expired));

    let (other, _) = eddsa();
    let foreign = other.mint(&user(), None, now).unwrap();
    assert_eq!(
        svc.check(&foreign.token, now),
        Err(TokenRejection::UnknownKey)
    );

    let vault = KeyVault::new(None);
    let key = vault.generate(KeyState::Active, 0);
    let mut s = settings();
    s.audience = Some("elsewhere".into());
    let misaimed = TokenService::with_keys(s, std::slice::from_ref(&key), vault).unwrap();
    let both = TokenService::with_keys(settings(), &[key], vault).unwrap();
    let t = misaimed.mint(&user(), None, now).unwrap();
    assert_eq!(both.check(&t.token, now), Err(TokenRejection::Claims));
}

#[test]
fn without_an_audience_tokens_carry_none_and_one_that_does_is_refused() {
    let vault = KeyVault::new(None);
    let key = vault.generate(KeyState::Active, 0);
    let mut s = settings();
    s.audience = None;
    let none = TokenService::with_keys(s, std::slice::from_ref(&key), vault).unwrap();
    let aimed = TokenService::with_keys(settings(), &[key], vault).unwrap();
    let now = crate::now_unix();
    let t = none.mint(&user(), None, now).unwrap();
    let claims = none.verify_signature(&t.token, now).unwrap();
    assert_eq!(claims.aud, None);
    let payload = t.token.split('.').nth(1).unwrap();
    let json = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert!(!json.contains("\"aud\""), "{json}");
    assert_eq!(
        aimed.check(&t.token, now),
        Err(TokenRejection::Claims),
        "an audience of ours is required when there is one"
    );
    let with_aud = aimed.mint(&user(), None, now).unwrap();
    assert_eq!(
        none.check(&with_aud.token, now),
        Err(TokenRejection::Claims),
        "any audience is someone else's"
    );
}

#[test]
fn reloading_an_unchanged_ring_keeps_the_cache_and_a_changed_one_empties_it() {
    let vault = KeyVault::new(None);
    let key = vault.generate(KeyState::Active, 0);
    let svc = TokenService::with_keys(settings(), std::slice::from_ref(&key), vault).unwrap();
    let now = crate::now_unix();
    let token = svc.mint(&user(), None, now).unwrap().token;
    svc.check(&token, now).unwrap();
    assert_eq!(svc.cache.len(), 1);
    svc.install_keys(std::slice::from_ref(&key), vault).unwrap();
    assert_eq!(
        svc.cache.len(),
        1,
        "same keys, same states: nothing to redo"
    );
    let mut retired = key.clone();
    retired.state = KeyState::Retired;
    let next = vault.generate(KeyState::Active, 1);
    svc.install_keys(&[retired, next], vault).unwrap();
    assert!(
        svc.cache.is_empty(),
        "a changed ring drops cached verifications"
    );
    assert!(
        svc.check(&token, now).is_ok(),
        "the retired key still verifies"
    );
}

#[test]
fn checked_tokens_answer_their_own_claims_cached_or_not() {
    let (svc, _) = eddsa();
    let now = crate::now_unix();
    let mut u = user();
    // Escaped in the payload's JSON (quote, backslash, control character) or not (é):
    // both must read back exactly.
    u.email = "q\"u\\o\te@exämple.com".into();
    u.tenant = TenantId::trusted("tenant-é");
    u.roles = vec![RoleName::trusted("ad\"min"), RoleName::trusted("user")];
    for sid in [Some(SessionId::generate()), None] {
        let t = svc.mint(&u, sid, now).unwrap();
        let claims = svc.verify_signature(&t.token, now).unwrap();
        let expected = Verified {
            identity: Arc::new(Identity::of(&claims).unwrap()),
            exp: claims.exp,
            iat: claims.iat,
        };
        assert_eq!(
            svc.check(&t.token, now).unwrap(),
            expected,
            "verified in full"
        );
        let cached = svc.check(&t.token, now).unwrap();
        assert_eq!(cached, expected, "answered from the cache");
        assert_eq!(&*cached.identity.email, u.email);
        assert_eq!(cached.identity.session_id, sid);
        assert_eq!(cached.identity.tenant, u.tenant);
        assert_eq!(
            cached.identity.role().map(RoleName::as_str),
            Some("ad\"min")
        );
    }
    // Two tokens of one session share one identity; another session has its own.
    let s2 = Some(SessionId::generate());
    let first = svc
        .check(&svc.mint(&u, s2, now).unwrap().token, now)
        .unwrap();
    let second = svc
        .check(&svc.mint(&u, s2, now + 1).unwrap().token, now)
        .unwrap();
    assert!(Arc::ptr_eq(&first.identity, &second.identity));
    assert_eq!(second.iat, now + 1, "times are each token's own");
    let other = svc
        .check(
            &svc.mint(&u, Some(SessionId::generate()), now)
                .unwrap()
                .token,
            now,
        )
        .unwrap();
    assert!(!Arc::ptr_eq(&first.identity, &other.identity));

    let old = svc.mint(&u, None, now - 2000).unwrap();
    assert_eq!(svc.check(&old.token, now), Err(TokenRejection::Expired));
    let t = svc.mint(&u, None, now).unwrap();
    svc.check(&t.token, now).unwrap();
    let mut forged = t.token.clone();
    let last = forged.pop();
    forged.push(if last == Some('A') { 'Q' } else { 'A' });
    assert!(svc.check(&forged, now).is_err(), "one changed byte");
}

#[test]
fn the_algorithm_is_pinned() {
    let secret = SecretString::from("x".repeat(32));
    let hs = TokenService::with_shared_secret(settings(), &secret);
    let (ed, _) = eddsa();
    let now = crate::now_unix();
    let hs_token = hs.mint(&user(), None, now).unwrap().token;
    let ed_token = ed.mint(&user(), None, now).unwrap().token;
    assert!(hs.check(&hs_token, now).is_ok());
    assert_eq!(hs.check(&ed_token, now), Err(TokenRejection::Algorithm));
    assert_eq!(ed.check(&hs_token, now), Err(TokenRejection::Algorithm));
    assert!(hs.jwks().keys.is_empty());
}

#[test]
fn a_prepared_token_signed_again_is_the_same_token() {
    let (svc, _) = eddsa();
    let secret = SecretString::from("a shared secret of at least 32 bytes!");
    let hs = TokenService::with_shared_secret(settings(), &secret);
    let now = crate::now_unix();
    for svc in [&svc, &hs] {
        let unsigned = svc
            .prepare(&user(), Some(SessionId::generate()), now)
            .unwrap();
        assert_eq!(unsigned.input.matches('.').count(), 1, "header and claims");
        let first = svc.sign(unsigned.input.clone()).unwrap();
        let again = svc.sign(unsigned.input.clone()).unwrap();
        assert_eq!(first, again, "signatures are deterministic");
        assert!(first.starts_with(&format!("{}.", unsigned.input)));
        let claims = svc.verify_signature(&first, now).unwrap();
        assert_eq!(claims.exp, unsigned.expires_at);
        let refused = |input: String| matches!(svc.sign(input), Err(MintError::NotSigningInput));
        assert!(refused("no-dot".into()));
        assert!(refused(first), "signed already");
    }
    // What `mint` makes is what `prepare` and `sign` make.
    let minted = hs.mint(&user(), None, now).unwrap().token;
    let (input, _) = minted.rsplit_once('.').unwrap();
    assert_eq!(hs.sign(input.to_owned()).unwrap(), minted);
}

#[test]
fn an_input_signed_after_the_key_changed_gets_the_active_keys_header() {
    let vault = KeyVault::new(None);
    let key = vault.generate(KeyState::Active, 0);
    let svc = TokenService::with_keys(settings(), std::slice::from_ref(&key), vault).unwrap();
    let now = crate::now_unix();
    let unsigned = svc.prepare(&user(), None, now).unwrap();
    let mut retired = key.clone();
    retired.state = KeyState::Retired;
    let next = vault.generate(KeyState::Active, 1);
    svc.install_keys(&[retired, next.clone()], vault).unwrap();
    let token = svc.sign(unsigned.input.clone()).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(next.kid.as_str()));
    let claims = svc.verify_signature(&token, now).unwrap();
    let (_, prepared_claims) = unsigned.input.split_once('.').unwrap();
    assert_eq!(token.split('.').nth(1), Some(prepared_claims));
    assert_eq!(claims.exp, unsigned.expires_at);
}
