//! Failures around the event relay with real brokers and real processes: a RabbitMQ broker
//! stopped while users are created (a private node, so the machine's shared broker, which
//! other tests use at the same time, is never touched), and the lease holder among two
//! instances killed without a clean shutdown. Under `CI=true` a missing broker or
//! `rabbitmq-server` fails these tests; otherwise they say why they skip.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use serde_json::Value;
use sqlx::AnyPool;

use crate::cli::{command, serve_logged};
use crate::events::outbox_documents;
use crate::events_brokers::{
    QUICK, all_delivered, amqp_url, assert_once_in_order, collect, create_users, drain,
    last_errors, rabbit_queue, required,
};
use crate::helpers::{TestApp, TestDb, eventually, spawn_app_in, spawn_app_with};

/// The RabbitMQ start script itself: Debian's `/usr/sbin/rabbitmq-server` is a wrapper that,
/// run as root, switches to the `rabbitmq` user, who could not write the node's temporary
/// folder. `AUTH_TEST_RABBITMQ_SERVER` names another one.
fn rabbitmq_server() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("AUTH_TEST_RABBITMQ_SERVER") {
        return Some(PathBuf::from(path));
    }
    let debian = Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
    if debian.exists() {
        return Some(debian.to_path_buf());
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("rabbitmq-server"))
            .find(|p| p.exists())
    });
    match on_path {
        Some(path) => Some(path),
        None => required(
            "rabbitmq-server",
            "neither /usr/lib/rabbitmq/bin/rabbitmq-server nor rabbitmq-server on PATH".into(),
        ),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private RabbitMQ node: its own name, AMQP and distribution ports, database, logs,
/// configuration and Erlang cookie (its HOME) in a temporary folder; no plugins. Runs in a
/// process group of its own, killed on drop, even when the test panics.
struct RabbitNode {
    server: PathBuf,
    port: u16,
    dist_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RabbitNode {
    fn start() -> Option<Self> {
        let server = rabbitmq_server()?;
        let port = free_port();
        let dist_port = std::iter::repeat_with(free_port)
            .find(|p| *p != port)
            .unwrap();
        let dir =
            std::env::temp_dir().join(format!("auth-rabbitmq-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.1 = 127.0.0.1:{port}\n"),
        )
        .unwrap();
        // Neither the machine's rabbitmq-env.conf (its node name) nor its plugins.
        std::fs::write(dir.join("rabbitmq-env.conf"), "").unwrap();
        std::fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        let mut node = Self {
            server,
            port,
            dist_port,
            dir,
            child: None,
        };
        node.run();
        Some(node)
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// Starts the node (again: on the same database, so durable queues and persistent
    /// messages are back).
    fn run(&mut self) {
        use std::os::unix::process::CommandExt;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))
            .unwrap();
        let d = |name: &str| self.dir.join(name);
        let child = Command::new(&self.server)
            .env("HOME", &self.dir)
            .env("RABBITMQ_CONF_ENV_FILE", d("rabbitmq-env.conf"))
            .env("RABBITMQ_CONFIG_FILE", d("rabbitmq.conf"))
            .env(
                "RABBITMQ_NODENAME",
                format!("authtest-{}@localhost", self.port),
            )
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", d("mnesia"))
            .env("RABBITMQ_LOG_BASE", d("log"))
            .env("RABBITMQ_LOGS", "-")
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d("enabled_plugins"))
            .env("RABBITMQ_PLUGINS_EXPAND_DIR", d("plugins-expand"))
            .env("RABBITMQ_PID_FILE", d("pid"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            .env_remove("RABBITMQ_NODE_PORT")
            .env_remove("RABBITMQ_NODE_IP_ADDRESS")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("rabbitmq-server starts");
        self.child = Some(child);
    }

    /// Waits until the node accepts AMQP connections (a node boots in a few seconds, longer
    /// on a loaded machine); panics with its log when it exits or never does.
    async fn ready(&mut self) {
        let url = self.url();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let attempt = tokio::time::timeout(
                Duration::from_secs(5),
                Connection::connect(&url, ConnectionProperties::default()),
            )
            .await;
            if let Ok(Ok(conn)) = attempt {
                let _ = conn.close(0, "".into()).await;
                return;
            }
            let exited = self.child.as_mut().and_then(|c| c.try_wait().unwrap());
            assert!(
                exited.is_none() && std::time::Instant::now() < deadline,
                "the private RabbitMQ node did not start ({exited:?}):\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the node as an operator does: SIGTERM to the start script, which stops the
    /// broker cleanly and exits once it has; killed after a minute.
    async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(&child.id().to_string(), "-TERM");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                signal(&format!("-{}", child.id()), "-KILL");
                let _ = child.wait();
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `kill SIGNAL -- TARGET` (a pid, or `-pgid` for a process group); failures ignored.
fn signal(target: &str, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The whole group: the script and the Erlang VM with its helpers.
            signal(&format!("-{}", child.id()), "-KILL");
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A connection to `url` and a durable queue bound to the relay's exchange (`auth.events`,
/// declared as the relay does), so messages wait through a broker restart.
async fn durable_queue(url: &str, queue: &str) -> (Connection, lapin::Channel) {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            "auth.events".into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await
        .unwrap();
    let options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.into(),
            "auth.events".into(),
            "auth.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    (conn, channel)
}

/// A counter of `/metrics` for the event channel (0 when absent).
async fn metric(app: &TestApp, name: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    let prefix = format!("{name}{{channel=\"event\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map_or(0, |v| v.trim().parse().unwrap())
}

async fn pending(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM outbox WHERE channel = 'event' AND delivered_at IS NULL")
        .await
}

async fn parked(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM outbox WHERE parked_at IS NOT NULL")
        .await
}

#[tokio::test]
async fn rabbitmq_stopped_while_users_are_created_gets_every_event_once_in_order() {
    let Some(mut node) = RabbitNode::start() else {
        return;
    };
    node.ready().await;
    let url = node.url();
    let queue = "authtest.events";
    let (conn, _) = durable_queue(&url, queue).await;
    let _ = conn.close(0, "".into()).await;

    let mut env: Vec<(&str, &str)> = vec![("EVENTS_URL", &url)];
    env.extend(QUICK);
    let app = spawn_app_with(&env).await;
    create_users(&app, "up", 2).await;
    assert!(
        eventually(30, || all_delivered(&app)).await,
        "delivered while the broker is up: {:?}",
        last_errors(&app).await
    );
    let recorded_before = recorded(&app).await;

    // A real outage: the broker stops while nothing is in flight, users are created (the
    // service answers as usual), and the relay finds the broker away.
    node.stop().await;
    let failures = metric(&app, "auth_outbox_failures_total").await;
    create_users(&app, "down", 3).await;
    assert_eq!(app.get("/health").await.status(), 200, "healthy meanwhile");
    assert!(
        eventually(30, || async {
            metric(&app, "auth_outbox_failures_total").await > failures
        })
        .await,
        "the relay tried the stopped broker"
    );
    let during = recorded(&app).await - recorded_before;
    assert!(during > 0);
    assert_eq!(pending(&app).await, during, "every new event waits");
    assert_eq!(parked(&app).await, 0, "an outage parks nothing");

    // Started again on its database: the queue and its messages are back.
    node.run();
    node.ready().await;
    assert!(
        eventually(60, || all_delivered(&app)).await,
        "every event delivered after the outage: {:?}",
        last_errors(&app).await
    );
    assert_eq!(parked(&app).await, 0, "nothing parked");

    let outbox = outbox_documents(&app).await;
    let (_conn, channel) = durable_queue(&url, queue).await;
    let mut received = collect(&channel, queue, outbox.len()).await;
    // A moment more: a duplicate would come after the originals.
    tokio::time::sleep(Duration::from_millis(500)).await;
    received.extend(drain(&channel, queue).await);
    for (id, _, persistent_json, body) in &received {
        assert_eq!(body["id"], id.as_str(), "message id = event id");
        assert!(persistent_json, "{id}: delivery_mode 2, application/json");
    }
    let docs: Vec<Value> = received.into_iter().map(|r| r.3).collect();
    assert_once_in_order(&outbox, &docs);
}

/// Every event recorded so far.
async fn recorded(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM outbox WHERE channel = 'event'")
        .await
}

/// A service process killed (SIGKILL) on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every event's id and delivery time, in id order.
async fn delivery_times(app: &TestApp) -> Vec<(String, Option<i64>)> {
    sqlx::query_as("SELECT id, delivered_at FROM outbox WHERE channel = 'event' ORDER BY id")
        .fetch_all(app.pool())
        .await
        .unwrap()
}

/// The event channel's lease: (holder, expires_at).
async fn lease(pool: &AnyPool) -> Option<(String, i64)> {
    sqlx::query_as("SELECT holder, expires_at FROM outbox_leases WHERE channel = 'event'")
        .fetch_optional(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_killed_lease_holder_is_taken_over_and_each_event_delivered_once() {
    let Some((_conn, channel, exchange, queue)) = rabbit_queue().await else {
        return;
    };
    let url = amqp_url();
    let mut env: Vec<(&str, &str)> = vec![
        ("EVENTS_URL", &url),
        ("AUTH_EVENTS_EXCHANGE", &exchange),
        ("AUTH_OUTBOX_LEASE_SECONDS", "3"),
    ];
    env.extend(QUICK);

    // The first instance, a process of the binary, migrates the database and takes the lease.
    let (db, db_url) = TestDb::create().await;
    let mut cmd = command(&db_url);
    cmd.envs(env.iter().copied());
    let (child, child_addr, log) = serve_logged(cmd);
    let mut holder = Process(child);
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(&db_url).await.unwrap();
    assert!(
        eventually(30, || async { lease(&pool).await.is_some() }).await,
        "the first instance takes the lease"
    );
    let (first_holder, _) = lease(&pool).await.unwrap();

    // The second, in this process, finds the lease held.
    let app = spawn_app_in(db, &db_url, &env).await;
    let through_first = app.through(child_addr);
    create_users(&through_first, "first", 2).await;
    create_users(&app, "second", 1).await;
    assert!(
        eventually(30, || all_delivered(&app)).await,
        "delivered by the first instance: {:?}",
        last_errors(&app).await
    );
    assert_eq!(
        lease(&pool).await.unwrap().0,
        first_holder,
        "still held by the first instance: {:#?}",
        log.lock().unwrap()
    );
    let before = delivery_times(&app).await;
    assert_eq!(
        metric(&app, "auth_outbox_delivered_total").await,
        0,
        "the second instance delivered nothing while the first held the lease"
    );

    // Killed: no clean shutdown gives the lease up.
    let _ = holder.0.kill();
    let _ = holder.0.wait();
    let (dead_holder, dead_until) = lease(&pool).await.unwrap();
    assert_eq!(
        dead_holder, first_holder,
        "a killed instance keeps its lease"
    );

    create_users(&app, "after", 2).await;
    assert!(
        eventually(30, || all_delivered(&app)).await,
        "delivered by the second instance once the lease expired: {:?}",
        last_errors(&app).await
    );
    let (new_holder, _) = lease(&pool).await.unwrap();
    assert_ne!(new_holder, first_holder, "the lease changed hands");
    let after: Vec<(String, Option<i64>)> = delivery_times(&app)
        .await
        .into_iter()
        .filter(|(id, _)| !before.iter().any(|(b, _)| b == id))
        .collect();
    assert!(!after.is_empty());
    assert_eq!(
        metric(&app, "auth_outbox_delivered_total").await,
        after.len() as u64,
        "the events created after the kill went out through the second instance"
    );
    for (id, delivered_at) in &after {
        assert!(
            delivered_at.is_some_and(|at| at >= dead_until),
            "{id} went out once the dead instance's lease had expired ({dead_until}): {delivered_at:?}"
        );
    }
    pool.close().await;

    let outbox = outbox_documents(&app).await;
    let mut received = collect(&channel, &queue, outbox.len()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    received.extend(drain(&channel, &queue).await);
    let docs: Vec<Value> = received.into_iter().map(|r| r.3).collect();
    let _ = channel
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
    assert_once_in_order(&outbox, &docs);
}
