//! Verification in shared-secret (HS256) mode: valid tokens pass, hostile ones are refused
//! with the right error and never a panic.

mod common;

use auth_client::{Audience, Verifier, VerifierSettings, VerifyError};
use common::*;
use jsonwebtoken::Algorithm;
use serde_json::Value;

fn verifier(audience: Audience) -> Verifier {
    Verifier::shared_secret(SECRET, VerifierSettings::new(ISSUER, audience)).unwrap()
}

fn with(change: impl FnOnce(&mut Value)) -> Value {
    let mut claims = claims();
    change(&mut claims);
    claims
}

#[tokio::test]
async fn a_valid_hs256_token_verifies_and_gives_its_claims() {
    let claims = verifier(Audience::expect(AUDIENCE))
        .verify(&hs256(&claims()))
        .await
        .unwrap();
    assert_eq!(claims.email, "a@example.com");
    assert_eq!(claims.aud.as_deref(), Some(AUDIENCE));
    assert!(claims.has_permission("profile:read") && claims.email_verified);
}

#[tokio::test]
async fn hostile_and_invalid_tokens_are_refused_with_their_reason() {
    let now = now();
    let long = "a".repeat(9000);
    let cases: Vec<(String, VerifyError, &str)> = vec![
        ("".into(), VerifyError::Malformed, "empty"),
        ("garbage".into(), VerifyError::Malformed, "not a JWT"),
        ("a.b.c".into(), VerifyError::Malformed, "not base64 JSON"),
        ("..".into(), VerifyError::Malformed, "empty parts"),
        (long.clone(), VerifyError::Malformed, "too long"),
        (
            raw(
                &format!(r#"{{"alg":"HS256","typ":"at+jwt","x":"{long}"}}"#),
                "{}",
            ),
            VerifyError::Malformed,
            "huge header",
        ),
        (
            raw(r#"{"alg":"none","typ":"at+jwt"}"#, &claims().to_string()),
            VerifyError::Malformed,
            "alg none",
        ),
        (
            sign_hs(&header(Algorithm::HS512, None), &claims(), SECRET),
            VerifyError::Algorithm,
            "another HMAC algorithm",
        ),
        (
            {
                let mut h = header(Algorithm::HS256, None);
                h.typ = Some("JWT".into());
                sign_hs(&h, &claims(), SECRET)
            },
            VerifyError::Type,
            "not typ at+jwt",
        ),
        (
            {
                let mut h = header(Algorithm::HS256, None);
                h.crit = Some(vec!["exp".into()]);
                sign_hs(&h, &claims(), SECRET)
            },
            VerifyError::Malformed,
            "a critical extension",
        ),
        (
            sign_hs(
                &header(Algorithm::HS256, None),
                &claims(),
                b"another secret of thirty-two bytes!",
            ),
            VerifyError::Signature,
            "another secret",
        ),
        (
            {
                let token = hs256(&claims());
                let (rest, _) = token.rsplit_once('.').unwrap();
                let tampered = hs256(&with(|c| c["roles"] = serde_json::json!(["admin"])));
                let payload = tampered.split('.').nth(1).unwrap();
                format!(
                    "{}.{payload}.{}",
                    rest.split('.').next().unwrap(),
                    token.rsplit('.').next().unwrap()
                )
            },
            VerifyError::Signature,
            "payload swapped",
        ),
        (
            hs256(&with(|c| {
                c["exp"] = (now - 3600).into();
                c["iat"] = (now - 4500).into();
            })),
            VerifyError::Expired,
            "expired an hour ago",
        ),
        (
            hs256(&with(|c| c["nbf"] = (now + 3600).into())),
            VerifyError::Immature,
            "not before an hour from now",
        ),
        (
            hs256(&with(|c| c["iat"] = (now + 3600).into())),
            VerifyError::Immature,
            "issued in the future",
        ),
        (
            hs256(&with(|c| c["iss"] = "https://evil.test".into())),
            VerifyError::Claims,
            "wrong issuer",
        ),
        (
            hs256(&with(|c| c["aud"] = "other".into())),
            VerifyError::Claims,
            "wrong audience",
        ),
        (
            hs256(&with(|c| {
                c.as_object_mut().unwrap().remove("aud");
            })),
            VerifyError::Claims,
            "no audience",
        ),
        (
            hs256(&with(|c| c["exp"] = "9999999999".into())),
            VerifyError::Malformed,
            "exp as a string",
        ),
        (
            hs256(&with(|c| {
                c.as_object_mut().unwrap().remove("sub");
            })),
            VerifyError::Malformed,
            "no subject",
        ),
        (
            hs256(&with(|c| c["roles"] = "admin".into())),
            VerifyError::Malformed,
            "roles not a list",
        ),
    ];
    let verifier = verifier(Audience::expect(AUDIENCE));
    for (token, want, why) in cases {
        assert_eq!(verifier.verify(&token).await, Err(want), "{why}");
    }
}

#[tokio::test]
async fn with_no_audience_expected_only_tokens_without_aud_pass() {
    let verifier = verifier(Audience::from_setting("none"));
    let without = hs256(&with(|c| {
        c.as_object_mut().unwrap().remove("aud");
    }));
    assert_eq!(verifier.verify(&without).await.unwrap().aud, None);
    assert_eq!(
        verifier.verify(&hs256(&claims())).await,
        Err(VerifyError::Claims),
        "a token for an audience is someone else's"
    );
}

#[test]
fn settings_are_checked_when_the_verifier_is_made() {
    let settings = || VerifierSettings::new(ISSUER, Audience::expect(AUDIENCE));
    let short = Verifier::shared_secret(b"short", settings());
    assert!(matches!(short, Err(VerifyError::Settings(_))));
    let hmac = VerifierSettings {
        algorithm: Algorithm::HS256,
        ..settings()
    };
    let jwks = Verifier::jwks("http://127.0.0.1:1/jwks", hmac);
    assert!(
        matches!(jwks, Err(VerifyError::Settings(_))),
        "no HMAC key from a JWKS"
    );
    for url in ["not a url", "file:///etc/passwd"] {
        assert!(
            matches!(
                Verifier::jwks(url, settings()),
                Err(VerifyError::Settings(_))
            ),
            "{url}"
        );
    }
    assert_eq!(Audience::from_setting(" api "), Audience::expect("api"));
    assert_eq!(Audience::from_setting(""), Audience::None);
}
