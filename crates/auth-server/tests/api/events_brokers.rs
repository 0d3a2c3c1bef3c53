//! Events relayed to the real brokers of the machine. RabbitMQ (`TEST_AMQP_URL`, the shared
//! broker): each test publishes to an exchange of its own and reads a temporary queue bound to
//! it. NATS: each test starts a private `nats-server` (`/usr/sbin/nats-server`, JetStream, a
//! store in a temporary folder) on a free port, so a real outage (the server stopped while
//! users are created, then started again on the same store or an empty one) breaks no other
//! test. Under `CI=true` a missing broker fails these tests; otherwise they say why they skip.

use std::collections::HashMap;
use std::process::{Child, Command};
use std::time::Duration;

use lapin::options::{
    BasicGetOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use serde_json::Value;

use crate::events::outbox_documents;
use crate::helpers::{TestApp, eventually, spawn_app_with};

pub(crate) fn required<T>(what: &str, why: String) -> Option<T> {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} is required under CI: {why}"
    );
    eprintln!("skipping: {what}: {why}");
    None
}

pub(crate) fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Settings that make retries quick.
pub(crate) const QUICK: [(&str, &str); 3] = [
    ("AUTH_OUTBOX_POLL_MS", "100"),
    ("AUTH_OUTBOX_BACKOFF_BASE_MS", "100"),
    ("AUTH_OUTBOX_BACKOFF_MAX_MS", "500"),
];

/// A temporary queue bound to a fresh exchange of the shared RabbitMQ; None when unreachable.
pub(crate) async fn rabbit_queue() -> Option<(Connection, lapin::Channel, String, String)> {
    let conn = match Connection::connect(&amqp_url(), ConnectionProperties::default()).await {
        Ok(c) => c,
        Err(e) => return required("RabbitMQ (TEST_AMQP_URL)", e.to_string()),
    };
    let channel = conn.create_channel().await.unwrap();
    let exchange = format!("auth.events.test.{}", uuid::Uuid::now_v7().simple());
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await
        .unwrap();
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let queue = queue.name().as_str().to_owned();
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "auth.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    Some((conn, channel, exchange, queue))
}

/// The messages the queue holds: (message id, type property, persistent, body).
pub(crate) async fn drain(
    channel: &lapin::Channel,
    queue: &str,
) -> Vec<(String, String, bool, Value)> {
    let mut got = Vec::new();
    while let Some(m) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        let p = &m.delivery.properties;
        got.push((
            p.message_id()
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default(),
            p.kind().as_ref().map(|s| s.to_string()).unwrap_or_default(),
            *p.delivery_mode() == Some(2)
                && p.content_type().as_ref().map(|c| c.as_str()) == Some("application/json"),
            serde_json::from_slice(&m.delivery.data).unwrap(),
        ));
    }
    got
}

/// Reads the queue until it has held `n` messages (10 s at most).
pub(crate) async fn collect(
    channel: &lapin::Channel,
    queue: &str,
    n: usize,
) -> Vec<(String, String, bool, Value)> {
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while got.len() < n && std::time::Instant::now() < deadline {
        got.extend(drain(channel, queue).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    got
}

/// Checks that `received` holds every event of the outbox exactly once, and each subject's
/// events in the order they were recorded.
pub(crate) fn assert_once_in_order(outbox: &[Value], received: &[Value]) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for doc in received {
        *seen.entry(doc["id"].as_str().unwrap()).or_default() += 1;
    }
    for doc in outbox {
        let id = doc["id"].as_str().unwrap();
        assert_eq!(
            seen.get(id),
            Some(&1),
            "{id} ({}) received once",
            doc["type"]
        );
    }
    assert_eq!(received.len(), outbox.len(), "nothing else");
    let order = |docs: &[Value], subject: &str| -> Vec<String> {
        docs.iter()
            .filter(|d| d["subject"] == subject)
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    };
    for doc in outbox {
        let subject = doc["subject"].as_str().unwrap();
        assert_eq!(
            order(received, subject),
            order(outbox, subject),
            "order of {subject}"
        );
    }
}

pub(crate) async fn all_delivered(app: &TestApp) -> bool {
    app.count("SELECT COUNT(*) FROM outbox WHERE channel = 'event' AND delivered_at IS NULL")
        .await
        == 0
}

/// The errors of the events not delivered, to say why.
pub(crate) async fn last_errors(app: &TestApp) -> Vec<Option<String>> {
    sqlx::query_scalar(
        "SELECT last_error FROM outbox WHERE channel = 'event' AND delivered_at IS NULL",
    )
    .fetch_all(app.pool())
    .await
    .unwrap()
}

pub(crate) async fn create_users(app: &TestApp, prefix: &str, n: usize) {
    for i in 0..n {
        let email = format!("{prefix}{i}@example.com");
        app.signup(&email).await;
        let pair = app.login_pair(&email).await;
        let r = app
            .client
            .post(app.url("/auth/logout-all"))
            .bearer_auth(&pair.access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
}

#[tokio::test]
async fn rabbitmq_gets_every_event_once_in_order_as_persistent_json() {
    let Some((_conn, channel, exchange, queue)) = rabbit_queue().await else {
        return;
    };
    let url = amqp_url();
    let mut env: Vec<(&str, &str)> =
        vec![("EVENTS_URL", &url), ("AUTH_EVENTS_EXCHANGE", &exchange)];
    env.extend(QUICK);
    let app = spawn_app_with(&env).await;
    create_users(&app, "rabbit", 3).await;
    assert!(
        eventually(20, || all_delivered(&app)).await,
        "every event delivered: {:?}",
        last_errors(&app).await
    );
    let outbox = outbox_documents(&app).await;
    let received = collect(&channel, &queue, outbox.len()).await;
    for (id, kind, persistent_json, body) in &received {
        assert_eq!(body["id"], id.as_str());
        assert_eq!(body["type"], kind.as_str());
        assert!(persistent_json, "{id}: delivery_mode 2, application/json");
    }
    let docs: Vec<Value> = received.into_iter().map(|r| r.3).collect();
    let _ = channel
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
    assert_once_in_order(&outbox, &docs);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(&format!(
            "auth_outbox_delivered_total{{channel=\"event\"}} {}",
            outbox.len()
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn two_instances_on_one_database_deliver_each_event_once() {
    let Some((_conn, channel, exchange, queue)) = rabbit_queue().await else {
        return;
    };
    let url = amqp_url();
    let mut env: Vec<(&str, &str)> =
        vec![("EVENTS_URL", &url), ("AUTH_EVENTS_EXCHANGE", &exchange)];
    env.extend(QUICK);
    let app = spawn_app_with(&env).await;
    let (sibling_addr, _) = app.sibling(&env).await;
    let sibling = app.through(sibling_addr);
    let (a, b) = tokio::join!(
        create_users(&app, "one", 3),
        create_users(&sibling, "two", 3)
    );
    let _ = (a, b);
    assert!(
        eventually(20, || all_delivered(&app)).await,
        "every event delivered: {:?}",
        last_errors(&app).await
    );
    let outbox = outbox_documents(&app).await;
    let mut received = collect(&channel, &queue, outbox.len()).await;
    // A moment more: a duplicate would arrive after the originals.
    tokio::time::sleep(Duration::from_millis(500)).await;
    received.extend(drain(&channel, &queue).await);
    let docs: Vec<Value> = received.into_iter().map(|r| r.3).collect();
    let _ = channel
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
    assert_once_in_order(&outbox, &docs);
}

/// A private nats-server with JetStream, its store in a temporary folder; stopped on drop.
struct NatsServer {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    fn start() -> Option<Self> {
        let bin = "/usr/sbin/nats-server";
        if !std::path::Path::new(bin).exists() {
            return required("nats-server", format!("{bin} is not installed"));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("auth-nats-{}", uuid::Uuid::now_v7().simple()));
        let mut server = Self {
            port,
            dir,
            child: None,
        };
        server.run();
        Some(server)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn run(&mut self) {
        let child = Command::new("/usr/sbin/nats-server")
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
    }

    async fn ready(&self) -> bool {
        eventually(10, || async {
            tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
        })
        .await
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every message of the stream, in order.
async fn stream_messages(url: &str, stream: &str) -> Vec<(String, Value)> {
    let client = async_nats::connect(url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut s = js.get_stream(stream).await.unwrap();
    let last = s.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let m = s.get_raw_message(seq).await.unwrap();
        let id = m
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.to_string())
            .unwrap_or_default();
        out.push((id, serde_json::from_slice(&m.payload).unwrap()));
    }
    out
}

#[tokio::test]
async fn nats_gets_every_event_once_and_none_is_lost_while_the_server_is_down() {
    let Some(mut nats) = NatsServer::start() else {
        return;
    };
    assert!(nats.ready().await, "nats-server listens");
    let url = nats.url();
    let mut env: Vec<(&str, &str)> =
        vec![("EVENTS_URL", &url), ("AUTH_EVENTS_STREAM", "AUTH_EVENTS")];
    env.extend(QUICK);
    let app = spawn_app_with(&env).await;
    create_users(&app, "before", 2).await;
    assert!(
        eventually(20, || all_delivered(&app)).await,
        "delivered while up"
    );

    // A real outage: the server stops, users are created, and it starts again on its store.
    nats.stop();
    create_users(&app, "during", 3).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !all_delivered(&app).await,
        "nothing can be delivered while it is down"
    );
    let parked = app
        .count("SELECT COUNT(*) FROM outbox WHERE parked_at IS NOT NULL")
        .await;
    assert_eq!(parked, 0, "an outage parks nothing");
    nats.run();
    assert!(nats.ready().await, "nats-server listens again");
    assert!(
        eventually(30, || all_delivered(&app)).await,
        "every event delivered after the outage"
    );

    let outbox = outbox_documents(&app).await;
    let messages = stream_messages(&url, "AUTH_EVENTS").await;
    for (id, body) in &messages {
        assert_eq!(body["id"], id.as_str(), "Nats-Msg-Id is the event id");
    }
    let docs: Vec<Value> = messages.into_iter().map(|m| m.1).collect();
    assert_once_in_order(&outbox, &docs);
}

/// A NATS server that comes back without its store (a new server, a lost volume) has no
/// stream: the relay creates it again rather than retrying into the void.
#[tokio::test]
async fn nats_that_lost_its_stream_gets_it_again_and_every_later_event() {
    let Some(mut nats) = NatsServer::start() else {
        return;
    };
    assert!(nats.ready().await, "nats-server listens");
    let url = nats.url();
    let mut env: Vec<(&str, &str)> =
        vec![("EVENTS_URL", &url), ("AUTH_EVENTS_STREAM", "AUTH_EVENTS")];
    env.extend(QUICK);
    let app = spawn_app_with(&env).await;
    create_users(&app, "kept", 1).await;
    assert!(
        eventually(20, || all_delivered(&app)).await,
        "delivered while up"
    );
    let lost = outbox_documents(&app).await.len();

    nats.stop();
    let old = std::mem::replace(
        &mut nats.dir,
        std::env::temp_dir().join(format!("auth-nats-{}", uuid::Uuid::now_v7().simple())),
    );
    let _ = std::fs::remove_dir_all(old);
    nats.run();
    assert!(
        nats.ready().await,
        "nats-server listens again, on an empty store"
    );
    create_users(&app, "after", 2).await;
    assert!(
        eventually(30, || all_delivered(&app)).await,
        "every later event delivered: {:?}",
        last_errors(&app).await
    );
    let outbox = outbox_documents(&app).await;
    let docs: Vec<Value> = stream_messages(&url, "AUTH_EVENTS")
        .await
        .into_iter()
        .map(|m| m.1)
        .collect();
    assert_once_in_order(&outbox[lost..], &docs);
}
