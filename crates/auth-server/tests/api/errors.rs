use serde_json::json;

use crate::helpers::{PASSWORD, assert_problem, spawn_app};

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = spawn_app().await;
    for body in ["{\"email\": \"a@example.com\"", "not json", ""] {
        let r = app
            .client
            .post(app.url("/auth/signup"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_problem(r, 400, "malformed_request").await;
    }
}

/// A body is an object: the same fields as an array, in order (which serde's derived types
/// would take), are refused, and nothing is written.
#[tokio::test]
async fn a_json_array_in_place_of_the_object_is_a_422() {
    let app = spawn_app().await;
    app.signup("array@example.com").await;
    let pair = app.login_pair("array@example.com").await;
    for (path, body) in [
        ("/auth/signup", json!(["array-2@example.com", PASSWORD])),
        ("/auth/login", json!(["array@example.com", null, PASSWORD])),
        ("/auth/refresh", json!([pair.refresh])),
        ("/auth/token/refresh/", json!([pair.refresh])),
        ("/auth/validate", json!([pair.access])),
        ("/auth/logout", json!([pair.refresh])),
    ] {
        let body = assert_problem(app.post_json(path, &body).await, 422, "validation_failed").await;
        assert_eq!(body["errors"][0]["field"], ".", "{path}: {body}");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE email = 'array-2@example.com'")
            .await,
        0
    );
    assert_eq!(
        app.refresh(&pair.refresh).await.status(),
        200,
        "the token was not used"
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let app = spawn_app().await;
    for ct in [None, Some("text/plain"), Some("application/xml")] {
        let mut request = app.client.post(app.url("/auth/signup")).body("{}");
        if let Some(ct) = ct {
            request = request.header("content-type", ct);
        }
        assert_problem(request.send().await.unwrap(), 415, "unsupported_media_type").await;
    }
    let r = app
        .client
        .post(app.url("/auth/login"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_problem(r, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn a_body_over_64_kib_is_a_413() {
    let app = spawn_app().await;
    let big =
        json!({"email": "a@example.com", "password": PASSWORD, "username": "x".repeat(70 * 1024)});
    assert_problem(
        app.post_json("/auth/signup", &big).await,
        413,
        "payload_too_large",
    )
    .await;
    let r = app
        .client
        .post(app.url("/auth/login"))
        .form(&[
            ("username", "x".repeat(70 * 1024).as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_problem(r, 413, "payload_too_large").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_problem_bodies() {
    let app = spawn_app().await;
    assert_problem(app.get("/no/such/route").await, 404, "not_found").await;
    assert_problem(app.get("/auth/login").await, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn the_request_id_is_kept_when_sane_and_made_up_otherwise() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "gw-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "gw-123");
    let r = app
        .client
        .get(app.url("/no/route"))
        .header("x-request-id", "gw-456")
        .send()
        .await
        .unwrap();
    let body = assert_problem(r, 404, "not_found").await;
    assert_eq!(body["request_id"], "gw-456");
    let r = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "x".repeat(300))
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap();
    assert!(
        uuid::Uuid::parse_str(id).is_ok(),
        "an overlong id is replaced: {id}"
    );
    let r = app.get("/health").await;
    assert!(uuid::Uuid::parse_str(r.headers()["x-request-id"].to_str().unwrap()).is_ok());
}

/// Sends `head` and then each of `parts` a moment apart on one connection (`Connection:
/// close`) and answers with the status and body of the response.
async fn raw_request(app_addr: &str, head: &str, parts: &[&[u8]]) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app_addr.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    for part in parts {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        socket.write_all(part).await.unwrap();
    }
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let (headers, body) = answer.split_once("\r\n\r\n").unwrap();
    let body = if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // One chunk and the last: `<size>\r\n<data>\r\n0\r\n\r\n`.
        body.split("\r\n").nth(1).unwrap_or_default()
    } else {
        body
    };
    (status, serde_json::from_str(body).unwrap_or_default())
}

#[tokio::test]
async fn bodies_arriving_in_pieces_are_read_whole() {
    let app = spawn_app().await;
    app.signup("pieces@example.com").await;
    let token = app.login_pair("pieces@example.com").await.access;
    let body = format!(r#"{{"token":"{token}"}}"#);
    let (first, second) = body.as_bytes().split_at(body.len() / 2);

    // A declared length, sent in two writes.
    let head = format!(
        "POST /auth/validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (status, answer) = raw_request(&app.addr, &head, &[first, second]).await;
    assert_eq!((status, answer["active"].as_bool()), (200, Some(true)));

    // Chunked, in two chunks.
    let head = "POST /auth/validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let chunk = |data: &[u8]| [format!("{:x}\r\n", data.len()).as_bytes(), data, b"\r\n"].concat();
    let (a, b) = (chunk(first), chunk(second));
    let (status, answer) = raw_request(&app.addr, head, &[&a, &b, b"0\r\n\r\n"]).await;
    assert_eq!((status, answer["active"].as_bool()), (200, Some(true)));
}
