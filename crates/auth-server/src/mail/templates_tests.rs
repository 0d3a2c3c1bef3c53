//! Templates: the built-in ones, placeholders filled and escaped, subjects kept on one line.

use super::*;

fn values() -> Values {
    Values {
        link: "https://id.example/reset-password?token=a&b=<c>".into(),
        email: "\"Bob\" <bob@example.com>".into(),
        product: "R&D <Portal>".into(),
        expires_in_minutes: "30".into(),
    }
}

#[test]
fn every_built_in_template_parses_and_carries_its_link() {
    let templates = Templates::load(None).expect("the built-in templates parse");
    for template in MailTemplate::ALL {
        let rendered = templates.render(template, &values());
        let name = template.as_str();
        assert!(!rendered.subject.is_empty(), "{name}");
        assert!(
            rendered
                .text
                .contains("https://id.example/reset-password?token=a&b=<c>"),
            "{name}"
        );
        assert!(
            rendered
                .html
                .contains("href=\"https://id.example/reset-password?token=a&amp;b=&lt;c&gt;\""),
            "{name}: {}",
            rendered.html
        );
        assert!(
            !rendered.text.contains("{{") && !rendered.html.contains("{{"),
            "{name}"
        );
        // No external resource: nothing is fetched when the mail is opened.
        assert!(!rendered.html.contains("src="), "{name}");
        assert!(rendered.html.contains("<html lang=\"en\">"), "{name}");
    }
}

#[test]
fn values_are_html_escaped_in_the_html_part_only() {
    let rendered = Templates::built_in().render(MailTemplate::PasswordReset, &values());
    assert!(
        rendered
            .html
            .contains("&quot;Bob&quot; &lt;bob@example.com&gt;")
    );
    assert!(rendered.html.contains("R&amp;D &lt;Portal&gt;"));
    assert!(!rendered.html.contains("<Portal>"));
    assert!(rendered.text.contains("\"Bob\" <bob@example.com>"));
    assert!(rendered.text.contains("within 30 minutes"));
    assert_eq!(rendered.subject, "Reset your R&D <Portal> password");
}

#[test]
fn a_subject_stays_on_one_line_whatever_the_values() {
    let mut v = values();
    v.product = "Evil\r\nBcc: victim@example.com\u{0}".into();
    let rendered = Templates::built_in().render(MailTemplate::PasswordChanged, &v);
    assert!(
        !rendered.subject.contains(['\r', '\n', '\u{0}']),
        "{:?}",
        rendered.subject
    );
    assert_eq!(
        rendered.subject,
        "Your Evil Bcc: victim@example.com password was changed"
    );
}

#[test]
fn placeholders_are_parsed_strictly() {
    let cases: &[(&str, Result<&str, &str>)] = &[
        ("plain", Ok("plain")),
        ("{{link}}", Ok("L")),
        ("a {{ email }} b{{product}}c", Ok("a E bPc")),
        ("{{expires_in_minutes}}{{link}}", Ok("30L")),
        ("{ {link} }", Ok("{ {link} }")),
        ("{{token}}", Err("unknown placeholder {{token}}")),
        ("{{link}", Err("without its `}}`")),
        ("x {{", Err("without its `}}`")),
    ];
    let v = Values {
        link: "L".into(),
        email: "E".into(),
        product: "P".into(),
        expires_in_minutes: "30".into(),
    };
    for (text, expected) in cases {
        let got = Template::parse(text).map(|t| t.render(&v, push_plain));
        match (expected, got) {
            (Ok(want), Ok(got)) => assert_eq!(&got, want, "{text:?}"),
            (Err(want), Err(got)) => assert!(got.contains(want), "{text:?}: {got}"),
            (want, got) => panic!("{text:?}: expected {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn file_names_map_to_a_template_and_a_part() {
    assert_eq!(
        file_part("password_reset.subject.txt"),
        Some((MailTemplate::PasswordReset, Part::Subject))
    );
    assert_eq!(
        file_part("verify_email.txt"),
        Some((MailTemplate::VerifyEmail, Part::Text))
    );
    assert_eq!(
        file_part("signup_attempt.html"),
        Some((MailTemplate::SignupAttempt, Part::Html))
    );
    for bad in [
        "password_reset.htm",
        "reset.txt",
        "password_reset",
        "verify_email.subject.html",
    ] {
        assert_eq!(file_part(bad), None, "{bad}");
    }
}
