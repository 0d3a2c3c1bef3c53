//! Publishing events to RabbitMQ: a durable topic exchange (routing key = event type),
//! persistent JSON messages, publisher confirms; connected lazily and again after a loss.

use std::time::Duration;

use auth_core::outbox::{Deliver, DeliveryError, OutboxEntry};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

/// How long connecting (and declaring the exchange) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a publish may wait for its confirm.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes outbox events to a RabbitMQ topic exchange.
pub struct AmqpPublisher {
    url: SecretString,
    exchange: String,
    /// The connection and its confirm-mode channel, once open.
    open: Mutex<Option<(Connection, Channel)>>,
}

impl AmqpPublisher {
    /// Connects on the first delivery, not here: a broker that is down at start delays
    /// nothing but the events.
    pub fn new(url: SecretString, exchange: String) -> Self {
        Self {
            url,
            exchange,
            open: Mutex::new(None),
        }
    }

    async fn connect(&self) -> Result<(Connection, Channel), lapin::Error> {
        let conn =
            Connection::connect(self.url.expose_secret(), ConnectionProperties::default()).await?;
        let channel = conn.create_channel().await?;
        channel
            .exchange_declare(
                self.exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok((conn, channel))
    }

    /// The open channel, connecting first when there is none or it was lost.
    async fn channel(&self) -> Result<Channel, DeliveryError> {
        let mut open = self.open.lock().await;
        if let Some((conn, channel)) = open.as_ref() {
            if conn.status().connected() && channel.status().connected() {
                return Ok(channel.clone());
            }
            *open = None;
        }
        let opened = tokio::time::timeout(CONNECT_TIMEOUT, self.connect())
            .await
            .map_err(|_| unavailable("connecting to RabbitMQ timed out"))?
            .map_err(|e| unavailable(&format!("connecting to RabbitMQ: {e}")))?;
        tracing::info!(exchange = %self.exchange, "connected to RabbitMQ");
        let channel = opened.1.clone();
        *open = Some(opened);
        Ok(channel)
    }

    /// Forgets the connection after a failure: the next delivery opens a new one.
    async fn drop_connection(&self) {
        if let Some((conn, _)) = self.open.lock().await.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.close(0, "".into())).await;
        }
    }

    async fn publish(&self, channel: &Channel, entry: &OutboxEntry) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(&entry.payload)
            .map_err(|e| DeliveryError::Permanent(format!("unreadable event: {e}")))?;
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(entry.id.as_str().into())
            .with_type(entry.kind.as_str().into())
            .with_timestamp(u64::try_from(entry.created_at).unwrap_or(0));
        let confirm = channel
            .basic_publish(
                self.exchange.as_str().into(),
                entry.kind.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                properties,
            )
            .await
            .map_err(|e| unavailable(&format!("publishing to RabbitMQ: {e}")))?;
        let confirmation = tokio::time::timeout(CONFIRM_TIMEOUT, confirm)
            .await
            .map_err(|_| unavailable("RabbitMQ did not confirm in time"))?
            .map_err(|e| unavailable(&format!("waiting for RabbitMQ's confirm: {e}")))?;
        if confirmation.is_ack() {
            Ok(())
        } else {
            Err(DeliveryError::Retry(
                "RabbitMQ refused the message (nack)".into(),
            ))
        }
    }
}

fn unavailable(message: &str) -> DeliveryError {
    DeliveryError::Unavailable(message.to_owned())
}

impl Deliver for AmqpPublisher {
    async fn deliver(&self, entry: &OutboxEntry) -> Result<(), DeliveryError> {
        let channel = self.channel().await?;
        let published = self.publish(&channel, entry).await;
        if matches!(published, Err(DeliveryError::Unavailable(_))) {
            self.drop_connection().await;
        }
        published
    }
}
