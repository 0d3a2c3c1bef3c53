//! Publishing events to NATS JetStream: a stream over `auth.>` created or updated on connect
//! (subject = event type), each publish acknowledged by the stream and carrying the event id
//! as `Nats-Msg-Id`, so JetStream drops a duplicate within its window.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use auth_core::outbox::{Deliver, DeliveryError, OutboxEntry};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

/// The subjects of the stream: every event type.
pub const SUBJECTS: &str = "auth.>";
/// How long connecting (and creating the stream) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a publish may wait for the stream's acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes outbox events to a JetStream stream.
pub struct NatsPublisher {
    url: SecretString,
    stream: String,
    /// The JetStream context once connected (the client reconnects by itself after that);
    /// forgotten after a failed publish.
    context: Mutex<Option<jetstream::Context>>,
}

impl NatsPublisher {
    /// Connects on the first delivery, not here.
    pub fn new(url: SecretString, stream: String) -> Self {
        Self {
            url,
            stream,
            context: Mutex::new(None),
        }
    }

    async fn connect(&self) -> Result<jetstream::Context, String> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(CONNECT_TIMEOUT)
            .connect(self.url.expose_secret())
            .await
            .map_err(|e| format!("connecting to NATS: {e}"))?;
        let context = jetstream::new(client);
        let config = stream::Config {
            name: self.stream.clone(),
            subjects: vec![SUBJECTS.into()],
            storage: stream::StorageType::File,
            ..stream::Config::default()
        };
        context
            .create_or_update_stream(config)
            .await
            .map_err(|e| format!("creating the JetStream stream {}: {e}", self.stream))?;
        Ok(context)
    }

    async fn context(&self) -> Result<jetstream::Context, DeliveryError> {
        let mut context = self.context.lock().await;
        if let Some(c) = context.as_ref() {
            return Ok(c.clone());
        }
        let connected = tokio::time::timeout(CONNECT_TIMEOUT * 2, self.connect())
            .await
            .map_err(|_| DeliveryError::Unavailable("connecting to NATS timed out".into()))?
            .map_err(DeliveryError::Unavailable)?;
        tracing::info!(stream = %self.stream, "connected to NATS JetStream");
        *context = Some(connected.clone());
        Ok(connected)
    }

    async fn publish(
        &self,
        context: &jetstream::Context,
        entry: &OutboxEntry,
    ) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(&entry.payload)
            .map_err(|e| DeliveryError::Permanent(format!("unreadable event: {e}")))?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, entry.id.as_str());
        headers.insert("Content-Type", "application/json");
        let unavailable = |e: &dyn std::fmt::Display| {
            DeliveryError::Unavailable(format!("publishing to NATS JetStream: {e}"))
        };
        let ack = context
            .publish_with_headers(entry.kind.clone(), headers, body.into())
            .await
            .map_err(|e| unavailable(&e))?;
        tokio::time::timeout(ACK_TIMEOUT, ack)
            .await
            .map_err(|_| {
                DeliveryError::Unavailable("JetStream did not acknowledge in time".into())
            })?
            .map_err(|e| unavailable(&e))?;
        Ok(())
    }
}

impl Deliver for NatsPublisher {
    async fn deliver(&self, entry: &OutboxEntry) -> Result<(), DeliveryError> {
        let context = self.context().await?;
        let published = self.publish(&context, entry).await;
        if published.is_err() {
            // Connected afresh next time, which creates the stream again: a server that came
            // back without its store (a new one, a lost volume) has none, and every publish
            // would go unanswered (no responders) while the client's own reconnection succeeds.
            *self.context.lock().await = None;
        }
        published
    }
}
