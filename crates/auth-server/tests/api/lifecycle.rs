//! The service's life as an orchestrator sees it: answering while it starts (liveness 200,
//! the rest 503), `auth-service healthcheck`, and shutdown on SIGTERM (a delay during which
//! readiness says 503 and requests are still served, then no request cut off).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command};
use std::time::Duration;

use auth_server::startup::Starting;
use serde_json::{Value, json};

use crate::cli::{command, serve_logged};
use crate::helpers::{PASSWORD, TestDb, assert_problem, config, spawn_app};

/// Bound before migrations: liveness answers, readiness and every other route 503
/// `unavailable` with `Retry-After`; once built, ready.
#[tokio::test]
async fn the_port_answers_while_the_service_starts() {
    let (_db, url) = TestDb::create().await;
    let config = config(&url, &[]);
    let starting = Starting::bind(&config).await.unwrap();
    let addr = format!("http://{}", starting.local_addr());
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{addr}{path}")).send();
    let r = get("/health").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let r = get("/health/ready").await.unwrap();
    assert_eq!(r.headers()["retry-after"], "1");
    assert_problem(r, 503, "unavailable").await;
    let login = json!({"email": "a@example.com", "password": PASSWORD});
    let r = client
        .post(format!("{addr}/auth/login"))
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_problem(r, 503, "unavailable").await;

    let app = starting.finish(&config).await.unwrap();
    assert_eq!(
        format!("http://{}", app.local_addr()),
        addr,
        "the same port"
    );
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let r = reqwest::get(format!("{addr}/health/ready")).await.unwrap();
    assert_eq!(r.status(), 200);
}

/// `healthcheck`: 0 when the service is ready (read from the same settings), 1 when nothing
/// listens or the service is not ready yet; one line either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_0_when_ready_and_1_otherwise() {
    let app = spawn_app().await;
    let url = app.config.database.url.clone();
    let url = secrecy::ExposeSecret::expose_secret(&url).to_owned();
    let port = app.addr.rsplit(':').next().unwrap().to_owned();
    let check = |args: &[&str], port: &str| {
        let out = command(&url)
            .env("PORT", port)
            .arg("healthcheck")
            .args(args)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(said.lines().count(), 1, "{said}");
        (out.status.code(), said)
    };
    let (code, said) = check(&[], &port);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.starts_with("ready: 200"), "{said}");

    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nothing = free.local_addr().unwrap().port().to_string();
    drop(free);
    let (code, said) = check(&[], &nothing);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.starts_with("unhealthy"), "{said}");

    let (_db, other) = TestDb::create().await;
    let starting = Starting::bind(&config(&other, &[])).await.unwrap();
    let ready = format!("http://{}/health/ready", starting.local_addr());
    let (code, said) = check(&["--url", &ready], &nothing);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.starts_with("not ready: 503"), "{said}");
}

/// Sends SIGTERM without waiting for the process to end.
fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn socket_addr(addr: &str) -> SocketAddr {
    addr.trim_start_matches("http://").parse().unwrap()
}

/// Reads one answer off `stream`: `None` when the connection ends (closed or reset) before any
/// byte of it; else the whole answer (head and `Content-Length` body), or a panic if it is cut.
fn read_answer(stream: &mut TcpStream) -> Option<String> {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buffer) {
            Ok(n) => n,
            Err(e) if bytes.is_empty() => {
                eprintln!("connection ended before an answer: {e}");
                return None;
            }
            Err(e) => panic!("answer cut: {e}: {:?}", String::from_utf8_lossy(&bytes)),
        };
        if n == 0 {
            assert!(
                bytes.is_empty(),
                "answer cut: {:?}",
                String::from_utf8_lossy(&bytes)
            );
            return None;
        }
        bytes.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                return Some(text);
            }
        }
    }
}

fn get_on(stream: &mut TcpStream, path: &str) -> std::io::Result<()> {
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// SIGTERM: for the delay, new connections are still accepted and answered (each answer
/// closing its connection, a keep-alive one included) while readiness answers 503; then the
/// port refuses connections and the process exits 0.
#[tokio::test]
async fn on_sigterm_requests_are_served_through_the_delay_while_readiness_says_503() {
    let (_db, url) = TestDb::create().await;
    let mut cmd = command(&url);
    cmd.env("AUTH_SHUTDOWN_DELAY_SECONDS", "4");
    let (mut server, addr, _log) = serve_logged(cmd);
    let addr = socket_addr(&addr);
    let mut kept = connect(addr);
    get_on(&mut kept, "/health").unwrap();
    let answer = read_answer(&mut kept).expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    terminate(&server);
    let signalled = std::time::Instant::now();
    // Ready until the signal is handled, then draining; each time on a new connection.
    let answer = loop {
        let mut fresh = connect(addr);
        get_on(&mut fresh, "/health/ready").unwrap();
        let answer = read_answer(&mut fresh).expect("a new connection is answered");
        if answer.starts_with("HTTP/1.1 503") || signalled.elapsed() > Duration::from_secs(3) {
            break answer;
        }
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("\"status\":\"draining\""), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    let mut fresh = connect(addr);
    get_on(&mut fresh, "/.well-known/jwks.json").unwrap();
    let answer = read_answer(&mut fresh).expect("every route is served");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The keep-alive connection opened before: answered, then closed.
    get_on(&mut kept, "/health").unwrap();
    let answer = read_answer(&mut kept).expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert_eq!(kept.read(&mut [0u8; 16]).unwrap_or(0), 0, "then closed");

    let refused = loop {
        match TcpStream::connect(addr) {
            Err(_) => break signalled.elapsed(),
            Ok(_) if signalled.elapsed() > Duration::from_secs(20) => {
                panic!("still accepting 20 s after SIGTERM")
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert!(refused >= Duration::from_secs(4), "{refused:?}");
    assert_eq!(server.wait().unwrap().code(), Some(0));
}

/// SIGTERM (no delay): a request in progress is answered whole, and requests sent on idle
/// keep-alive connections around the moment of shutdown get an answer or a close before any
/// byte, never an answer cut off.
#[tokio::test]
async fn on_sigterm_no_request_is_cut_off() {
    let (_db, url) = TestDb::create().await;
    let (mut server, addr, _log) = serve_logged(command(&url));
    let addr = socket_addr(&addr);
    // A sign-up whose body is on its way when SIGTERM arrives.
    let body = json!({"email": "late@example.com", "password": PASSWORD}).to_string();
    let mut in_progress = connect(addr);
    let head = format!(
        "POST /auth/signup HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    in_progress.write_all(head.as_bytes()).unwrap();
    in_progress.write_all(&body.as_bytes()[..5]).unwrap();
    // Idle keep-alive connections, each with one answered request behind it.
    let mut idle: Vec<TcpStream> = (0..6)
        .map(|_| {
            let mut s = connect(addr);
            get_on(&mut s, "/health").unwrap();
            assert!(read_answer(&mut s).is_some());
            s
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;

    terminate(&server);
    for (i, s) in idle.iter_mut().enumerate() {
        tokio::time::sleep(Duration::from_millis(5 * i as u64)).await;
        if get_on(s, "/health").is_ok()
            && let Some(answer) = read_answer(s)
        {
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
    }
    in_progress.write_all(&body.as_bytes()[5..]).unwrap();
    let answer = read_answer(&mut in_progress).expect("the request in progress is answered");
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert_eq!(server.wait().unwrap().code(), Some(0));
}

/// SIGINT (Ctrl-C in a terminal) skips the delay: the port refuses at once.
#[tokio::test]
async fn on_sigint_the_service_stops_without_the_delay() {
    let (_db, url) = TestDb::create().await;
    let mut cmd = command(&url);
    cmd.env("AUTH_SHUTDOWN_DELAY_SECONDS", "60");
    let (mut server, addr, _log) = serve_logged(cmd);
    let status = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    assert_eq!(server.wait().unwrap().code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(TcpStream::connect(socket_addr(&addr)).is_err());
}
