//! The database unreachable while the service runs: every request that needs it answers 503
//! `unavailable` with `Retry-After` (never 500), readiness says so, and the service recovers
//! once the database is back. PostgreSQL only: a SQLite file has no server to go away.

use std::net::SocketAddr;

use reqwest::{Client, Response};
use serde_json::{Value, json};
use sqlx::{AnyPool, Connection};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::helpers::{PASSWORD, Pair, TestDb, assert_problem, build};

/// The PostgreSQL URL of the run, or None (and a line saying why the test does not apply).
fn postgres_url(test: &str) -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => Some(url),
        _ => {
            eprintln!(
                "{test}: does not apply to SQLite (runs when TEST_DATABASE_URL is PostgreSQL)"
            );
            None
        }
    }
}

/// The `host:port` of a URL.
fn authority(url: &str) -> String {
    let rest = url.split_once("://").expect("a URL").1;
    let rest = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

/// `url` with its `host:port` replaced.
fn with_authority(url: &str, authority: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (before, after) = rest.split_at(end);
    let user = before.rsplit_once('@').map(|(user, _)| format!("{user}@"));
    format!("{scheme}://{}{authority}{after}", user.unwrap_or_default())
}

/// `url` pointing at the database `name` of the same server.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(end);
    let query = after.split_once('?').map(|(_, q)| format!("?{q}"));
    format!("{scheme}://{authority}/{name}{}", query.unwrap_or_default())
}

/// A database of its own on the test server (connections are refused per database), dropped
/// at the end even if the test fails.
struct OwnDatabase {
    admin_url: String,
    name: String,
}

impl OwnDatabase {
    async fn create(admin_url: &str) -> (Self, String) {
        sqlx::any::install_default_drivers();
        let name = format!("outage_{}", uuid::Uuid::now_v7().simple());
        let admin = AnyPool::connect(admin_url).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let url = with_database(admin_url, &name);
        let db = Self {
            admin_url: admin_url.to_owned(),
            name,
        };
        (db, url)
    }

    /// Refuses new connections and terminates the open ones, as an operator taking the
    /// database offline does; returns how many were terminated.
    async fn refuse_connections(&self) -> usize {
        let admin = AnyPool::connect(&self.admin_url).await.unwrap();
        sqlx::query(&format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
            self.name
        ))
        .execute(&admin)
        .await
        .unwrap();
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
        )
        .bind(&self.name)
        .fetch_all(&admin)
        .await
        .unwrap();
        admin.close().await;
        killed.into_iter().filter(|k| *k).count()
    }

    async fn allow_connections(&self) {
        let admin = AnyPool::connect(&self.admin_url).await.unwrap();
        sqlx::query(&format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS true",
            self.name
        ))
        .execute(&admin)
        .await
        .unwrap();
        admin.close().await;
    }
}

impl Drop for OwnDatabase {
    fn drop(&mut self) {
        let name = &self.name;
        crate::helpers::run_admin_from_drop(
            &self.admin_url,
            vec![
                format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"),
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ],
        );
    }
}

/// A TCP relay in front of the PostgreSQL server that can be stopped and started again:
/// stopped, the server is gone as a stopped one is (open connections cut, new ones refused).
struct Relay {
    addr: SocketAddr,
    upstream: String,
    stop: watch::Sender<bool>,
}

impl Relay {
    async fn start(upstream: &str, addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let upstream_addr = upstream.to_owned();
        tokio::spawn(async move {
            let mut accept_stopped = stopped.clone();
            loop {
                let (mut inbound, _) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => return,
                    },
                    _ = accept_stopped.changed() => return,
                };
                let upstream = upstream_addr.clone();
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = stopped.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            upstream: upstream.to_owned(),
            stop,
        }
    }

    /// Cuts every relayed connection and stops listening.
    fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// Serves the application on `database_url`; returns its address.
async fn serve(database_url: &str) -> (String, auth_server::state::AppState) {
    let (app, _config) = build(database_url, &[]).await;
    let addr = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    (addr, state)
}

/// Every request that needs the database, sent together.
async fn requests_needing_the_database(addr: &str, pair: &Pair) -> Vec<(&'static str, Response)> {
    let client = Client::new();
    let post = |path: &str, body: Value| client.post(format!("{addr}{path}")).json(&body).send();
    let get = |path: &str| {
        client
            .get(format!("{addr}{path}"))
            .bearer_auth(&pair.access)
            .send()
    };
    let credentials = json!({"email": "before@example.com", "password": PASSWORD});
    let newcomer = json!({"email": "during@example.com", "password": PASSWORD});
    let logout_all = client
        .post(format!("{addr}/auth/logout-all"))
        .bearer_auth(&pair.access)
        .send();
    let (login, signup, refresh, me, sessions, logout_all, ready) = tokio::join!(
        post("/auth/login", credentials),
        post("/auth/signup", newcomer),
        post("/auth/refresh", json!({"refresh_token": pair.refresh})),
        get("/auth/me"),
        get("/auth/sessions"),
        logout_all,
        client.get(format!("{addr}/health/ready")).send(),
    );
    vec![
        ("login", login.unwrap()),
        ("signup", signup.unwrap()),
        ("refresh", refresh.unwrap()),
        ("me", me.unwrap()),
        ("sessions", sessions.unwrap()),
        ("logout-all", logout_all.unwrap()),
        ("ready", ready.unwrap()),
    ]
}

async fn assert_all_unavailable(answers: Vec<(&'static str, Response)>) {
    for (what, r) in answers {
        let status = r.status();
        if status != 503 {
            panic!("{what} answered {status}, not 503: {:?}", r.text().await);
        }
        assert!(r.headers().contains_key("retry-after"), "{what}");
        let body = assert_problem(r, 503, "unavailable").await;
        assert!(
            body.get("detail").is_none(),
            "{what}: no internals in {body}"
        );
    }
}

/// Signs up and logs in `before@example.com`.
async fn a_user_with_a_session(addr: &str) -> Pair {
    let client = Client::new();
    let body = json!({"email": "before@example.com", "password": PASSWORD});
    let r = client
        .post(format!("{addr}/auth/signup"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    login(addr).await
}

async fn login(addr: &str) -> Pair {
    let r = Client::new()
        .post(format!("{addr}/auth/login"))
        .json(&json!({"email": "before@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    Pair::from(r.json::<Value>().await.unwrap())
}

/// An operator takes the database offline (`ALLOW_CONNECTIONS false`, its sessions
/// terminated): reconnecting fails with FATAL 55000 ("database ... is not currently accepting
/// connections"), outside the connection classes, which made login, sign-up, sessions and
/// logout-all answer 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_refusing_connections_makes_requests_unavailable_until_it_is_back() {
    let Some(admin_url) = postgres_url("a_database_refusing_connections_makes_requests_...") else {
        return;
    };
    let (db, url) = OwnDatabase::create(&admin_url).await;
    let (addr, state) = serve(&url).await;
    let pair = a_user_with_a_session(&addr).await;

    assert!(
        db.refuse_connections().await > 0,
        "the service had connections"
    );
    // What the service meets when it reconnects: FATAL 55000 (object_not_in_prerequisite_state)
    // "database ... is not currently accepting connections", not a connection-class code.
    let refused = match sqlx::AnyConnection::connect(&url).await {
        Ok(_) => panic!("the database accepts connections"),
        Err(e) => e,
    };
    let code = match &refused {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    };
    assert_eq!(code.as_deref(), Some("55000"), "{refused}");
    assert_all_unavailable(requests_needing_the_database(&addr, &pair).await).await;

    db.allow_connections().await;
    // A pooled connection is pinged before use only once idle for half a second (see
    // `PING_WHEN_IDLE_FOR` in the store): one the outage killed may otherwise serve, and fail,
    // one more request. Waiting that long is the point here, not a wait for start-up.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let after = login(&addr).await;
    let r = Client::new()
        .get(format!("{addr}/auth/me"))
        .bearer_auth(&after.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "recovered");
    state.store.close().await;
}

/// The PostgreSQL server stops (seen through a relay that cuts every connection and refuses
/// new ones), then comes back. Reconnecting is refused (and retried by the pool until its
/// acquire timeout, 5 s, so the requests go together).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_server_makes_requests_unavailable_until_it_is_back() {
    let Some(admin_url) = postgres_url("a_stopped_database_server_makes_requests_...") else {
        return;
    };
    let (_db, url) = TestDb::create().await;
    let relay = Relay::start(&authority(&admin_url), "127.0.0.1:0".parse().unwrap()).await;
    let (addr, state) = serve(&with_authority(&url, &relay.addr.to_string())).await;
    let pair = a_user_with_a_session(&addr).await;

    relay.stop();
    assert_all_unavailable(requests_needing_the_database(&addr, &pair).await).await;

    let _relay = Relay::start(&relay.upstream, relay.addr).await;
    // Connections cut by the stop are pinged, and replaced, once idle half a second (see the
    // test above).
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    login(&addr).await;
    state.store.close().await;
}
