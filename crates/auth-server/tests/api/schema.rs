//! The OpenAPI document says what the service accepts: a request valid by the served document
//! is never refused with 422, and one it declares invalid is refused (what schemathesis checks
//! in CI, here pinned case by case).

use regex::Regex;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem, spawn_app, spawn_app_with};

/// The served document's schema of one component.
async fn component(app: &TestApp, name: &str) -> Value {
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    doc["components"]["schemas"][name].clone()
}

/// Whether `value` meets a string schema's `pattern` and lengths, and of `format: email`
/// what the patterns here leave to it: a local part of at most 64 characters (RFC 5321).
fn meets(schema: &Value, value: &str) -> bool {
    let chars = value.chars().count() as u64;
    let pattern = schema["pattern"].as_str().map(|p| Regex::new(p).unwrap());
    let email_ok = schema["format"] != "email"
        || value
            .rsplit_once('@')
            .is_some_and(|(local, _)| local.chars().count() <= 64);
    pattern.is_none_or(|p| p.is_match(value))
        && schema["minLength"].as_u64().is_none_or(|min| chars >= min)
        && schema["maxLength"].as_u64().is_none_or(|max| chars <= max)
        && email_ok
}

/// The emails and usernames the document allows at sign-up are exactly those it takes.
#[tokio::test]
async fn signup_takes_exactly_the_emails_and_usernames_the_document_allows() {
    let app = spawn_app().await;
    let schema = component(&app, "SignupRequest").await;
    let email = &schema["properties"]["email"];
    assert_eq!(email["format"], "email");
    let longest = format!(
        "{}@{}.{}.{}.com",
        "a".repeat(64),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(57)
    );
    let emails = [
        "",
        "plain",
        "a@localhost",
        " padded@example.com",
        "padded@example.com ",
        "zoë@example.com",
        "a@exämple.com",
        "a..b@example.com",
        "a.@example.com",
        "\"quoted\"@example.com",
        "a@ab--c.com",
        "a@example.com.",
        "a@[192.0.2.1]",
        "a@example.com\n",
        "x@y.z",
        "a@a--b.com",
        "O'Brien+tag@mail.example-host.org",
        "!#$%&'*+/=?^_`{|}~-@1.2",
        &longest,
        &format!("{longest}x"),
        &format!("{}@example.com", "a".repeat(65)),
        &format!("a@{}.com", "b".repeat(64)),
    ];
    for value in emails {
        let body = json!({"email": value, "password": PASSWORD});
        let r = app.post_json("/auth/signup", &body).await;
        if meets(email, value) {
            assert_eq!(r.status(), 201, "{value:?} is valid by the document");
        } else {
            let problem = assert_problem(r, 422, "validation_failed").await;
            assert_eq!(
                problem["errors"][0]["field"], "email",
                "{value:?}: {problem}"
            );
        }
    }
    let username = &schema["properties"]["username"];
    assert_eq!(username["type"], json!(["string", "null"]));
    for (i, value) in [
        "ab", "abc", "a.b_c-d", "-ab", "_ab", "a b", " abc", "bjørn", "Bob",
    ]
    .into_iter()
    .chain([&*"x".repeat(64), &*"x".repeat(65)])
    .enumerate()
    {
        let body =
            json!({"email": format!("u{i}@example.com"), "password": PASSWORD, "username": value});
        let r = app.post_json("/auth/signup", &body).await;
        if meets(username, value) {
            assert_eq!(r.status(), 201, "{value:?} is valid by the document");
        } else {
            let problem = assert_problem(r, 422, "validation_failed").await;
            assert_eq!(
                problem["errors"][0]["field"], "username",
                "{value:?}: {problem}"
            );
        }
    }
}

/// The served minimum is the configured one, and lengths count characters, as JSON Schema
/// counts them: 1024 two-byte characters are a valid password, and log in.
#[tokio::test]
async fn the_password_rules_of_the_document_are_the_configured_policy_in_characters() {
    let app = spawn_app_with(&[("AUTH_PASSWORD_MIN_LENGTH", "12")]).await;
    let password = &component(&app, "SignupRequest").await["properties"]["password"];
    assert_eq!(
        (
            password["minLength"].as_u64(),
            password["maxLength"].as_u64()
        ),
        (Some(12), Some(1024))
    );
    let cases = [
        ("é".repeat(11), false),
        ("é".repeat(12), true),
        ("é".repeat(1024), true),
        ("é".repeat(1025), false),
    ];
    for (i, (value, valid)) in cases.into_iter().enumerate() {
        assert_eq!(meets(password, &value), valid, "the document, case {i}");
        let email = format!("p{i}@example.com");
        let r = app
            .post_json("/auth/signup", &json!({"email": email, "password": value}))
            .await;
        if valid {
            assert_eq!(r.status(), 201, "case {i}");
            assert_eq!(app.login(&email, &value).await.status(), 200, "case {i}");
        } else {
            assert_problem(r, 422, "weak_password").await;
        }
    }
}

/// Login applies none of the rules for setting a name: whatever names no account is an
/// unknown user (401, the same answer as a wrong password), never a 422, and accounts keep
/// logging in under the name they gave, trimmed and in any case. These are the requests
/// schemathesis found refused with 422.
#[tokio::test]
async fn login_refuses_names_no_account_has_as_invalid_credentials_not_422() {
    let app = spawn_app().await;
    app.signup("ann@example.com").await;
    let mut wrong = assert_problem(
        app.login("ann@example.com", "wrong password").await,
        401,
        "invalid_credentials",
    )
    .await;
    wrong.as_object_mut().unwrap().remove("request_id");
    let json_bodies = [
        json!({"email": "", "password": ""}),
        json!({"email": "not an email", "password": PASSWORD}),
        json!({"username": "", "password": PASSWORD}),
        json!({"username": "x", "password": PASSWORD}),
        json!({"email": null, "username": "bjørn", "password": PASSWORD}),
        json!({"email": "ann@example.com", "password": PASSWORD, "tenant": ""}),
        json!({"email": "ann@example.com", "password": PASSWORD, "tenant": "Not A Tenant!"}),
        json!({"email": "ann@example.com", "password": "é".repeat(1025)}),
    ];
    for body in &json_bodies {
        let mut problem = assert_problem(
            app.post_json("/auth/login", body).await,
            401,
            "invalid_credentials",
        )
        .await;
        problem.as_object_mut().unwrap().remove("request_id");
        assert_eq!(problem, wrong, "{body}");
    }
    let forms: [(&str, &[(&str, &str)]); 2] = [
        (
            "/auth/login",
            &[
                ("email", ""),
                ("password", ""),
                ("tenant", ""),
                ("username", "null"),
            ],
        ),
        ("/auth/token/", &[("email", ""), ("password", "")]),
    ];
    for (path, form) in forms {
        let r = app
            .client
            .post(app.url(path))
            .form(form)
            .send()
            .await
            .unwrap();
        assert_problem(r, 401, "invalid_credentials").await;
    }
    let r = app
        .post_json("/auth/token/", &json!({"email": "", "password": PASSWORD}))
        .await;
    let problem = assert_problem(r, 401, "invalid_credentials").await;
    assert_eq!(
        problem["detail"],
        "No active account found with the given credentials"
    );

    for name in ["ann@example.com", "  ANN@Example.com\t"] {
        assert_eq!(app.login(name, PASSWORD).await.status(), 200, "{name:?}");
    }
    // Naming no one at all is still a malformed request.
    let problem = assert_problem(
        app.post_json("/auth/login", &json!({"password": PASSWORD}))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "email");
}

/// The login body's schema requires `email` or `username`, as the service does; neither
/// constrains their form, and the password has no minimum (existing clients send short ones).
#[tokio::test]
async fn the_login_schema_requires_a_name_and_no_password_rule() {
    let app = spawn_app().await;
    let login = component(&app, "LoginRequest").await;
    let any_of = login["allOf"][1]["anyOf"].as_array().unwrap();
    let required: Vec<&Value> = any_of.iter().map(|branch| &branch["required"][0]).collect();
    assert_eq!(required, [&json!("email"), &json!("username")]);
    let fields = &login["allOf"][0];
    assert_eq!(fields["required"], json!(["password"]));
    for field in ["email", "username", "password", "tenant"] {
        let schema = &fields["properties"][field];
        for keyword in ["minLength", "maxLength", "pattern", "format"] {
            assert!(schema.get(keyword).is_none(), "{field}.{keyword}: {schema}");
        }
    }
}

#[tokio::test]
async fn every_documented_answer_has_a_description() {
    // OpenAPI requires one; validators (schemathesis among them) refuse the document without.
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, answer) in op["responses"].as_object().into_iter().flatten() {
                let described = answer["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty());
                if !described && answer.get("$ref").is_none() {
                    missing.push(format!("{method} {path} {status}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "answers without a description: {missing:?}"
    );
}

#[tokio::test]
async fn the_document_has_no_null_where_openapi_wants_a_value() {
    // A `null` is a value only in examples, defaults and enumerations; elsewhere (a
    // `parameters: null`, say) validators refuse the whole operation.
    fn nulls(value: &Value, at: &str, found: &mut Vec<String>) {
        match value {
            Value::Null => found.push(at.to_owned()),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    nulls(item, &format!("{at}/{i}"), found);
                }
            }
            Value::Object(fields) => {
                for (key, item) in fields {
                    if !matches!(
                        key.as_str(),
                        "default" | "example" | "examples" | "enum" | "const"
                    ) {
                        nulls(item, &format!("{at}/{key}"), found);
                    }
                }
            }
            _ => {}
        }
    }
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut found = Vec::new();
    nulls(&doc, "", &mut found);
    assert!(found.is_empty(), "null at {found:?}");
}
