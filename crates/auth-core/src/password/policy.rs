//! The password policy of NIST SP 800-63B-4: a minimum length (15 characters by default, for a
//! password that is the only factor), at most 1024 characters, no composition rules, refusal of
//! common passwords and of passwords made from the account's own names, and Unicode NFKC
//! normalisation so that one text typed two ways is one password.

use std::borrow::Cow;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

use crate::CoreError;
use crate::domain::{Email, Password, Username};

/// Django 5.2's list of 19,640 common passwords (lower-case), shipped in the binary; see
/// `common-passwords.LICENSE` next to it. One per line, sorted by bytes (`LC_ALL=C sort`), so
/// that it is searched where it lies, without building a set on the heap.
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

/// A name of the account (the email's local part, the username) is looked for inside a
/// password only when it has at least this many characters: shorter ones (`al`, `bob`) occur
/// inside too many good passwords by chance.
pub const MIN_NAME_CHARS: usize = 4;

/// The NFKC form of a password: what is hashed, and verified first at login.
pub fn normalize(password: &str) -> Cow<'_, str> {
    if password.is_ascii() || is_nfkc_quick(password.chars()) == IsNormalized::Yes {
        Cow::Borrowed(password)
    } else {
        let normalized: String = password.nfkc().collect();
        if normalized == password {
            Cow::Borrowed(password)
        } else {
            Cow::Owned(normalized)
        }
    }
}

/// Whether `needle` is a whole line of `sorted` (lines sorted by bytes, each ending in `\n`):
/// a binary search over the text itself, each probe widened to the line it falls in. A needle
/// holding a `\n` never equals a line, so it is never found.
fn has_line(sorted: &str, needle: &str) -> bool {
    let (text, needle) = (sorted.as_bytes(), needle.as_bytes());
    // `lo` is always the start of a line; the line searched for starts in `lo..hi`.
    let (mut lo, mut hi) = (0, text.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let start = text[lo..mid]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(lo, |i| lo + i + 1);
        let end = text[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| start + i);
        match text[start..end].cmp(needle) {
            std::cmp::Ordering::Equal => return true,
            std::cmp::Ordering::Less => lo = end + 1,
            std::cmp::Ordering::Greater => hi = start,
        }
    }
    false
}

/// Whether a password is on the common-password list (compared in lower case).
pub fn is_common(password: &str) -> bool {
    has_line(COMMON_PASSWORDS, &normalize(password).to_lowercase())
}

/// Rules a new password must meet.
#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    /// Minimum length in characters (of the NFKC form).
    pub min_chars: usize,
    /// How many of the user's passwords a new one may not repeat (the current one and those
    /// before it); 0 turns the history off.
    pub history: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars: 15,
            history: 0,
        }
    }
}

impl PasswordPolicy {
    /// Highest history length: checking it costs one hash verification per entry.
    pub const MAX_HISTORY: usize = 24;

    /// Checks length (in characters, at most [`Password::MAX_CHARS`]), the common-password
    /// list, and that the password does not contain the
    /// account's email local part or username (names of [`MIN_NAME_CHARS`] or more) nor is
    /// the email. Applies when a password is set, never at login.
    pub fn check(
        &self,
        password: &Password,
        email: &Email,
        username: Option<&Username>,
    ) -> Result<(), CoreError> {
        self.check_stored(
            password,
            email.normalized(),
            username.map(|u| u.normalized()),
        )
    }

    /// [`PasswordPolicy::check`] for an account as stored (its email and username as text,
    /// compared in lower case).
    pub fn check_stored(
        &self,
        password: &Password,
        email: &str,
        username: Option<&str>,
    ) -> Result<(), CoreError> {
        let weak = |why: String| Err(CoreError::WeakPassword(why));
        let raw = password.expose();
        let text = normalize(raw);
        // Lengths count characters as typed, exactly as the API document's `minLength` and
        // `maxLength` do, so the document and the service agree on every password.
        let typed = raw.chars().count();
        if typed > Password::MAX_CHARS {
            return weak(format!(
                "must be at most {} characters",
                Password::MAX_CHARS
            ));
        }
        if typed < self.min_chars {
            return weak(format!("must be at least {} characters", self.min_chars));
        }
        let lowered = text.to_lowercase();
        if has_line(COMMON_PASSWORDS, &lowered) {
            return weak("is too common: it is on a list of common passwords".into());
        }
        let email_text = email.to_lowercase();
        if lowered == email_text.as_str() {
            return weak("must not be the email address".into());
        }
        if let Some((local, _)) = email_text.split_once('@') {
            let local = normalize(local).to_lowercase();
            if lowered == local
                || (local.chars().count() >= MIN_NAME_CHARS && lowered.contains(&local))
            {
                return weak("must not contain the email address's name".into());
            }
        }
        if let Some(name) = username {
            let name = normalize(name).to_lowercase();
            if lowered == name
                || (name.chars().count() >= MIN_NAME_CHARS && lowered.contains(&name))
            {
                return weak("must not contain the username".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pw: &str, email: &str, username: Option<&str>) -> Result<(), String> {
        let policy = PasswordPolicy::default();
        let email = Email::parse(email).unwrap();
        let user = username.map(|u| Username::parse(u).unwrap());
        policy
            .check(&Password::new(pw.into()), &email, user.as_ref())
            .map_err(|e| match e {
                CoreError::WeakPassword(why) => why,
                other => panic!("{other:?}"),
            })
    }

    fn common_passwords() -> Vec<&'static str> {
        COMMON_PASSWORDS.lines().collect()
    }

    #[test]
    fn the_list_has_django_s_entries_and_matches_without_regard_to_case() {
        assert_eq!(common_passwords().len(), 19_640);
        assert!(is_common("Password"));
        assert!(is_common("QwErTy"));
        assert!(!is_common("correct horse battery staple"));
    }

    #[test]
    fn the_list_is_sorted_by_bytes_and_every_entry_is_found() {
        let list = common_passwords();
        assert!(COMMON_PASSWORDS.ends_with('\n'));
        assert!(
            list.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
        assert!(list.iter().all(|p| !p.is_empty() && *p == p.to_lowercase()));
        for p in &list {
            assert!(has_line(COMMON_PASSWORDS, p), "{p} not found");
        }
        // Not on it: before the first entry, after the last, between two, a prefix of one, an
        // entry with more after it, and text spanning two lines.
        let (first, last) = (list[0], list[list.len() - 1]);
        for absent in [
            "",
            "\u{0}",
            "\u{10FFFF}",
            "passwor",
            "password\n",
            "zzzzzzzzzzzzzzzzzz",
        ] {
            assert!(!list.contains(&absent), "{absent:?} is on the list");
            assert!(!has_line(COMMON_PASSWORDS, absent), "{absent:?} found");
        }
        assert!(!has_line(
            COMMON_PASSWORDS,
            &format!("{first}\n{}", list[1])
        ));
        assert!(!has_line(COMMON_PASSWORDS, &format!("{last}0")));
        assert!(!is_common(""));
        assert!(!is_common("password\nqwerty"));
    }

    #[test]
    fn weak_passwords_are_refused_each_with_its_reason() {
        let long_common = common_passwords()
            .iter()
            .find(|p| p.chars().count() >= 15)
            .unwrap()
            .to_uppercase();
        let cases: [(&str, Option<&str>, &str, &str); 8] = [
            ("fourteen chars", None, "at least 15", "under 15 characters"),
            (
                &long_common,
                None,
                "common",
                "a common password, in upper case",
            ),
            ("alice.smith@example.com", None, "email", "the email itself"),
            (
                "my name is ALICE.SMITH!",
                None,
                "email",
                "contains the local part",
            ),
            (
                "a long passphrase for bobby99",
                Some("bobby99"),
                "username",
                "contains the username",
            ),
            ("x", None, "at least 15", "one character"),
            (
                &"x".repeat(1025),
                None,
                "1024 characters",
                "over 1024 characters",
            ),
            (
                &"é".repeat(1025),
                None,
                "1024 characters",
                "1025 two-byte characters",
            ),
        ];
        for (pw, user, expected, why) in cases {
            let err = check(pw, "Alice.Smith@example.com", user).expect_err(why);
            assert!(err.contains(expected), "{why}: {err}");
        }
    }

    #[test]
    fn short_names_are_not_looked_for_and_composition_is_free() {
        // "al" (2 characters) inside a password is chance, not a reuse of the name.
        assert!(check("totally legal passphrase", "al@example.com", Some("bob")).is_ok());
        // But the short name alone is still refused.
        assert!(check("bob", "al@example.com", Some("bob")).is_err());
        // No composition rules: lower-case letters and spaces only is fine.
        assert!(check("correct horse battery staple", "ann@example.com", None).is_ok());
        // Length counts as the API document does, characters as typed: 16 typed characters
        // that compose to 8 are long enough, 14 that expand to 16 (`¼` is `1⁄4`) are not.
        assert!(check(&"e\u{301}".repeat(8), "ann@example.com", None).is_ok());
        assert!(check(&"\u{bc}".repeat(14), "ann@example.com", None).is_err());
        // Fifteen multi-byte characters are fifteen characters.
        assert!(check(&"é".repeat(15), "ann@example.com", None).is_ok());
    }

    #[test]
    fn nfkc_makes_composed_decomposed_and_compatibility_forms_one_text() {
        let composed = "caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e";
        let decomposed = "cafe\u{301} cre\u{300}me bru\u{302}le\u{301}e";
        assert_ne!(composed, decomposed);
        assert_eq!(normalize(composed), normalize(decomposed));
        assert!(matches!(normalize(composed), Cow::Borrowed(_)));
        // Full-width letters are their ASCII compatibility forms.
        assert_eq!(normalize("ｐａｓｓ"), "pass");
    }
}
