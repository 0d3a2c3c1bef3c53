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

impl Email {
    /// Accepts `local@domain` with a dotted domain, at most 254 bytes, no spaces or control
    /// characters. Surrounding whitespace is trimmed.
    pub fn parse(input: &str) -> Result<Self, String> {
        let email = input.trim();
        if email.is_empty() {
            return Err("must not be empty".into());
        }
        if email.len() > 254 {
            return Err("must be at most 254 bytes".into());
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces or control characters".into());
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err("must contain @".into());
        };
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err("has an invalid local part".into());
        }
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        if !domain.contains('.') || !labels_ok {
            return Err("has an invalid domain".into());
        }
        Ok(Self {
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

/// An optional login name: 3 to 64 characters of letters, digits, `.`, `_` and `-`, starting
/// with a letter or digit. Compared without regard to case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    original: String,
    normalized: String,
}

impl Username {
    pub fn parse(input: &str) -> Result<Self, String> {
        let name = input.trim();
        let len = name.chars().count();
        if !(3..=64).contains(&len) {
            return Err("must be 3 to 64 characters".into());
        }
        if !name.chars().next().is_some_and(char::is_alphanumeric) {
            return Err("must start with a letter or digit".into());
        }
        if !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err("may contain only letters, digits, '.', '_' and '-'".into());
        }
        Ok(Self {
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
    /// Maximum accepted length in bytes (bounds hashing cost).
    pub const MAX_BYTES: usize = 1024;

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

/// A tenant identifier: 1 to 64 characters of lower-case letters, digits and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A role name: 1 to 64 characters of lower-case letters, digits, `_`, `-` and `:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user as the domain knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub tenant: String,
    pub email: String,
    pub username: Option<String>,
    pub roles: Vec<String>,
    /// Permissions granted by the roles, sorted.
    pub permissions: Vec<String>,
    pub email_verified: bool,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A user together with the stored password hash, for credential checks only.
#[derive(Clone)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
}

/// Everything needed to insert a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: Uuid,
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
            ("a@exa mple.com", "space in domain"),
            ("a@-example.com", "label starting with -"),
            ("a@example..com", "empty label"),
            ("a@@example.com", "double @"),
        ];
        for (input, why) in cases {
            assert!(Email::parse(input).is_err(), "{input:?} should fail: {why}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err(), "over 254 bytes");
    }

    #[test]
    fn emails_keep_their_case_and_compare_lowercased() {
        let e = Email::parse("  Alice@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Alice@Example.COM");
        assert_eq!(e.normalized(), "alice@example.com");
    }

    #[test]
    fn usernames_are_validated() {
        for bad in ["ab", "-abc", "a b c", "abc!", &"x".repeat(65)] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should fail");
        }
        assert_eq!(Username::parse("Bob_1.x").unwrap().normalized(), "bob_1.x");
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
    }
}
