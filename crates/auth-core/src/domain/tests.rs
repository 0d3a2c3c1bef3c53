//! Tests of the domain values' parsing and rules.

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
