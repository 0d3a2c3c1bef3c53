//! Validated domain values. Input is parsed into these once, at the edge; the services accept
//! nothing else, so an unchecked email or password cannot reach the store.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

/// The tenant every deployment starts with.
pub const DEFAULT_TENANT: &str = "default";
/// Built-in role given to every new user.
pub const ROLE_USER: &str = "user";
/// Built-in role of administrators.
pub const ROLE_ADMIN: &str = "admin";

/// An email address, kept as given and compared in its normalized (lower-case) form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    original: String,
    normalized: String,
}

/// The characters of an email's local part besides `.` (RFC 5322 `atext`).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c)
}

/// A domain label: 1 to 63 ASCII letters, digits and `-`, neither first nor last, and not
/// both third and fourth (`ab--c`: the form reserved for IDNA's `xn--` labels).
fn is_domain_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
        && !(bytes.len() >= 4 && bytes[2] == b'-' && bytes[3] == b'-')
}

impl Email {
    /// The rule for an address being set (sign-up), exactly what the OpenAPI document's
    /// `SignupRequest.email` says (`pattern`, `format: email`, `maxLength`): at most 254
    /// characters, `local@domain` with an ASCII dot-atom local part of at most 64 characters
    /// and a domain of at least two labels. Nothing is trimmed.
    pub fn parse(input: &str) -> Result<Self, String> {
        if input.is_empty() {
            return Err("must not be empty".into());
        }
        if input.chars().count() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let Some((local, domain)) = input.rsplit_once('@') else {
            return Err("must contain @".into());
        };
        let local_ok = (1..=64).contains(&local.len())
            && local
                .split('.')
                .all(|atom| !atom.is_empty() && atom.chars().all(is_atext));
        if !local_ok {
            return Err(
                "has an invalid local part (1 to 64 of A-Z, a-z, 0-9 and !#$%&'*+/=?^_`{|}~-, \
                 dots only between them)"
                    .into(),
            );
        }
        if !domain.contains('.') || !domain.split('.').all(is_domain_label) {
            return Err("has an invalid domain (labels of A-Z, a-z, 0-9 and -)".into());
        }
        Ok(Self {
            original: input.to_owned(),
            normalized: input.to_lowercase(),
        })
    }

    /// An address as a login names it, to be looked up: trimmed, and only `None` when nothing
    /// is left. It need not be valid by [`Email::parse`]: accounts made under older rules
    /// keep logging in, and one that matches no account is an unknown user.
    pub fn for_lookup(input: &str) -> Option<Self> {
        let email = input.trim();
        (!email.is_empty()).then(|| Self {
            original: email.to_owned(),
            normalized: email.to_lowercase(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.original
    }

    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

/// An optional login name: 3 to 64 ASCII letters, digits, `.`, `_` and `-`, starting with a
/// letter or digit. Compared without regard to case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    original: String,
    normalized: String,
}

impl Username {
    /// The rule for a name being set, exactly the OpenAPI document's `pattern`
    /// (`^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$`). Nothing is trimmed.
    pub fn parse(input: &str) -> Result<Self, String> {
        if !(3..=64).contains(&input.chars().count()) {
            return Err("must be 3 to 64 characters".into());
        }
        if !input.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err("must start with a letter or digit (A-Z, a-z, 0-9)".into());
        }
        if !input
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err("may contain only A-Z, a-z, 0-9, '.', '_' and '-'".into());
        }
        Ok(Self {
            original: input.to_owned(),
            normalized: input.to_lowercase(),
        })
    }

    /// A name as a login gives it, to be looked up: trimmed, and only `None` when nothing is
    /// left (see [`Email::for_lookup`]).
    pub fn for_lookup(input: &str) -> Option<Self> {
        let name = input.trim();
        (!name.is_empty()).then(|| Self {
            original: name.to_owned(),
            normalized: name.to_lowercase(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.original
    }

    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

/// A password as typed by the user. Never printed; only its length is checked here, the
/// policy lives in [`crate::password::PasswordPolicy`].
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    /// Maximum accepted length in characters (bounds hashing cost: at most 4 KiB), counted
    /// as the OpenAPI document's `maxLength` counts them.
    pub const MAX_CHARS: usize = 1024;

    pub fn new(input: String) -> Self {
        Self(SecretString::from(input))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A new id (UUIDv7: ordered by creation time).
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// Reads an id from the text it prints as (a lower-case hyphenated UUID);
            /// anything else, other spellings of a UUID included, is `None`.
            pub fn parse(text: &str) -> Option<Self> {
                let id = Uuid::try_parse(text).ok()?;
                let mut canonical = [0u8; uuid::fmt::Hyphenated::LENGTH];
                (id.hyphenated().encode_lower(&mut canonical).as_bytes() == text.as_bytes())
                    .then_some(Self(id))
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A user's id.
    UserId
);
uuid_id!(
    /// A session's id: the `sid` claim of its access tokens.
    SessionId
);

/// A tenant identifier: 1 to 64 characters of lower-case letters, digits and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(input: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&input.len())
            && input
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err("must be 1 to 64 characters of a-z, 0-9 and '-'".into())
        }
    }

    pub fn default_tenant() -> Self {
        Self(DEFAULT_TENANT.to_owned())
    }

    /// A tenant id read back from storage or a verified token, where it was validated when
    /// it was written.
    pub fn trusted(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A role name: 1 to 64 characters of lower-case letters, digits, `_`, `-` and `:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct RoleName(String);

impl RoleName {
    pub fn parse(input: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&input.len())
            && input
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-:".contains(c));
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err("must be 1 to 64 characters of a-z, 0-9, '_', '-' and ':'".into())
        }
    }

    /// A role name read back from storage or a verified token.
    pub fn trusted(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn user() -> Self {
        Self(ROLE_USER.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for RoleName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A permission a role grants, such as `users:write`: 1 to 128 characters of lower-case
/// letters, digits, `_`, `-`, `.`, `*` and `:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Permission(String);

impl Permission {
    pub fn parse(input: &str) -> Result<Self, String> {
        let ok = (1..=128).contains(&input.len())
            && input
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.*:".contains(c));
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err("must be 1 to 128 characters of a-z, 0-9, '_', '-', '.', '*' and ':'".into())
        }
    }

    /// A permission read back from storage or a verified token.
    pub fn trusted(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Permission {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user as the domain knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub tenant: TenantId,
    pub email: String,
    pub username: Option<String>,
    /// The administrative roles first (the first is the `role` claim): `admin`, then custom
    /// roles by name, then `user`.
    pub roles: Vec<RoleName>,
    /// Permissions granted by the roles, sorted.
    pub permissions: Vec<Permission>,
    pub email_verified: bool,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Orders a user's roles as tokens list them: `admin` first (it is the `role` claim of older
/// clients), `user` last, others by name between; duplicates dropped.
pub fn order_roles(roles: &mut Vec<RoleName>) {
    let rank = |role: &RoleName| match role.as_str() {
        ROLE_ADMIN => 0,
        ROLE_USER => 2,
        _ => 1,
    };
    roles.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    roles.dedup();
}

/// A user together with the stored password hash, for credential checks only.
#[derive(Clone)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
    /// Failed logins and lock ([`crate::lockout`]).
    pub lockout: crate::lockout::LockoutState,
}

/// Everything needed to insert a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub tenant: TenantId,
    pub email: Email,
    pub username: Option<Username>,
    pub password_hash: String,
    pub roles: Vec<RoleName>,
    pub now: i64,
}

/// Who a login names: an email or a username, within a tenant.
#[derive(Debug, Clone)]
pub enum LoginName {
    Email(Email),
    Username(Username),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_validated_with_a_reason_per_case() {
        let cases = [
            ("", "empty"),
            ("plain", "no @"),
            ("@example.com", "empty local part"),
            ("a@", "empty domain"),
            ("a@localhost", "undotted domain"),
            ("a b@example.com", "space"),
            (" a@example.com", "surrounding space: nothing is trimmed"),
            ("a@exa mple.com", "space in domain"),
            ("a@-example.com", "label starting with -"),
            ("a@example-.com", "label ending with -"),
            ("a@ab--c.com", "-- third and fourth: IDNA's reserved form"),
            ("a@example..com", "empty label"),
            ("a@example.com.", "trailing dot"),
            ("a@@example.com", "double @"),
            ("a..b@example.com", "empty atom"),
            (".a@example.com", "leading dot"),
            ("a(b)@example.com", "not atext"),
            ("zoë@example.com", "not ASCII"),
            ("a@exämple.com", "not ASCII"),
            ("a@exa_mple.com", "underscore in domain"),
        ];
        for (input, why) in cases {
            assert!(Email::parse(input).is_err(), "{input:?} should fail: {why}");
        }
        for fine in [
            "a@b.co",
            "a.b+c!#$%&'*/=?^_`{|}~-@b-c.d1",
            "a@a--b.com",
            "a@abc--d.com",
            "a@1.2",
        ] {
            assert!(Email::parse(fine).is_ok(), "{fine:?} should pass");
        }
        let local = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&local).is_err(), "local part over 64");
        let label = format!("a@{}.com", "b".repeat(64));
        assert!(Email::parse(&label).is_err(), "label over 63");
        let longest = format!(
            "{}@{}.{}.{}.com",
            "a".repeat(64),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(57)
        );
        assert_eq!(longest.len(), 254);
        assert!(Email::parse(&longest).is_ok(), "254 characters");
        let long = format!(
            "{}@{}.{}.{}.com",
            "a".repeat(64),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(58)
        );
        assert!(Email::parse(&long).is_err(), "over 254 characters");
    }

    #[test]
    fn emails_keep_their_case_and_compare_lowercased() {
        let e = Email::parse("Alice@Example.COM").unwrap();
        assert_eq!(e.as_str(), "Alice@Example.COM");
        assert_eq!(e.normalized(), "alice@example.com");
    }

    #[test]
    fn login_names_are_trimmed_lowercased_and_only_refused_when_empty() {
        let e = Email::for_lookup("  Zoë@Example.COM ").unwrap();
        assert_eq!(e.normalized(), "zoë@example.com");
        let u = Username::for_lookup(" Bjørn ").unwrap();
        assert_eq!(u.normalized(), "bjørn");
        for empty in ["", "  \t"] {
            assert!(Email::for_lookup(empty).is_none(), "{empty:?}");
            assert!(Username::for_lookup(empty).is_none(), "{empty:?}");
        }
    }

    #[test]
    fn usernames_are_validated() {
        for bad in [
            "ab",
            "-abc",
            "a b c",
            "abc!",
            " abc",
            "bjørn",
            &"x".repeat(65),
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should fail");
        }
        assert_eq!(Username::parse("Bob_1.x").unwrap().normalized(), "bob_1.x");
        assert!(Username::parse(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let p = Password::new("hunter22hunter22".into());
        assert!(!format!("{p:?}").contains("hunter"));
    }

    #[test]
    fn tenant_and_role_names_are_restricted() {
        assert!(TenantId::parse("acme-1").is_ok());
        assert!(TenantId::parse("Acme").is_err());
        assert!(TenantId::parse("").is_err());
        assert!(RoleName::parse("users:write").is_ok());
        assert!(RoleName::parse("Admin").is_err());
        assert!(Permission::parse("users:write").is_ok());
        assert!(Permission::parse("Users:Write").is_err());
        assert!(Permission::parse("").is_err());
    }

    #[test]
    fn ids_read_back_what_they_print_and_refuse_anything_else() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(&id.to_string()), Some(id));
        assert_eq!(SessionId::parse("not-a-uuid"), None);
        let text = id.to_string();
        for other in [
            text.to_uppercase(),
            text.replace('-', ""),
            format!("{{{text}}}"),
            format!("urn:uuid:{text}"),
        ] {
            assert_eq!(UserId::parse(&other), None, "{other}");
        }
    }
}
