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
mod tests;
