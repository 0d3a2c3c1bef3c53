//! Accounts: the mailed flows (password reset and email verification links, how long they
//! last) and whether a login needs a verified address.

use std::time::Duration;

use auth_core::action_token::FlowSettings;

use super::RawConfig;
use super::definition::{DefaultTo, Definition, Problems, Secrecy, Setting};

static REQUIRE_VERIFIED_EMAIL: Setting<bool> = Setting {
    key: "require_verified_email",
    env: &["AUTH_REQUIRE_VERIFIED_EMAIL"],
    default: DefaultTo::Value(|| FlowSettings::default().require_verified_email),
    range: None,
    secrecy: Secrecy::Public,
    help: "a login needs a verified address (`403 email_not_verified` otherwise), and a sign-up with a taken address is answered as a new one while the owner is mailed (docs/ACCOUNT-RECOVERY.md)",
};

static RESET_TTL_MINUTES: Setting<u64> = Setting {
    key: "password_reset_ttl_minutes",
    env: &["AUTH_PASSWORD_RESET_TTL_MINUTES"],
    default: DefaultTo::Value(|| FlowSettings::default().reset_ttl.as_secs() / 60),
    range: Some(1..=24 * 60),
    secrecy: Secrecy::Public,
    help: "how long a password-reset link works",
};

static VERIFY_TTL_HOURS: Setting<u64> = Setting {
    key: "email_verify_ttl_hours",
    env: &["AUTH_EMAIL_VERIFY_TTL_HOURS"],
    default: DefaultTo::Value(|| FlowSettings::default().verify_ttl.as_secs() / 3600),
    range: Some(1..=30 * 24),
    secrecy: Secrecy::Public,
    help: "how long an email-verification link works",
};

static SEND_VERIFICATION: Setting<bool> = Setting {
    key: "send_verification_email",
    env: &["AUTH_SEND_VERIFICATION_EMAIL"],
    default: DefaultTo::Value(|| FlowSettings::default().send_verification),
    range: None,
    secrecy: Secrecy::Public,
    help: "sign-up and email changes mail a verification link (always on with `require_verified_email`)",
};

pub(super) static SETTINGS: &[&dyn Definition] = &[
    &REQUIRE_VERIFIED_EMAIL,
    &RESET_TTL_MINUTES,
    &VERIFY_TTL_HOURS,
    &SEND_VERIFICATION,
];

#[derive(Debug, Clone)]
pub struct Accounts {
    pub flows: FlowSettings,
}

pub(super) fn load(raw: &RawConfig, p: &mut Problems) -> Option<Accounts> {
    let require = REQUIRE_VERIFIED_EMAIL.value(raw, p);
    let reset = RESET_TTL_MINUTES.value(raw, p);
    let verify = VERIFY_TTL_HOURS.value(raw, p);
    let send = SEND_VERIFICATION.value(raw, p);
    if require == Some(true) && send == Some(false) {
        p.add(
            &SEND_VERIFICATION,
            "cannot be false with require_verified_email: nobody could verify an address",
        );
        return None;
    }
    Some(Accounts {
        flows: FlowSettings {
            reset_ttl: Duration::from_secs(reset? * 60),
            verify_ttl: Duration::from_secs(verify? * 3600),
            require_verified_email: require?,
            send_verification: send?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::load as raw;

    #[test]
    fn defaults_and_the_one_combination_refused() {
        let config = raw(&[]).validate().unwrap();
        let flows = config.accounts.flows;
        assert_eq!(flows.reset_ttl.as_secs(), 30 * 60);
        assert_eq!(flows.verify_ttl.as_secs(), 48 * 3600);
        assert!(!flows.require_verified_email && flows.send_verification);
        let on = raw(&[
            ("AUTH_REQUIRE_VERIFIED_EMAIL", "true"),
            ("AUTH_PASSWORD_RESET_TTL_MINUTES", "10"),
        ])
        .validate()
        .unwrap();
        assert!(on.accounts.flows.require_verified_email);
        assert_eq!(on.accounts.flows.reset_ttl.as_secs(), 600);
        assert!(
            on.sessions.lifetimes.require_verified_email,
            "login follows"
        );
        let problems = raw(&[
            ("AUTH_REQUIRE_VERIFIED_EMAIL", "true"),
            ("AUTH_SEND_VERIFICATION_EMAIL", "false"),
        ])
        .validate()
        .unwrap_err();
        assert!(
            problems[0].contains("AUTH_SEND_VERIFICATION_EMAIL"),
            "{problems:?}"
        );
        let bad = raw(&[("AUTH_REQUIRE_VERIFIED_EMAIL", "maybe")])
            .validate()
            .unwrap_err();
        assert!(bad[0].contains("AUTH_REQUIRE_VERIFIED_EMAIL"), "{bad:?}");
        assert!(
            raw(&[("AUTH_PASSWORD_RESET_TTL_MINUTES", "0")])
                .validate()
                .is_err()
        );
    }
}
