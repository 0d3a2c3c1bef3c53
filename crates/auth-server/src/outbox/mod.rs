//! Delivering the transactional outbox: a generic relay per channel ([`relay`]) and the
//! event publishers it hands entries to (RabbitMQ in [`rabbit`], NATS JetStream in [`nats`]).
//!
//! Every instance runs one relay per channel, but only the holder of the channel's lease
//! (`outbox_leases`, renewed while it runs, taken over once it expires) delivers, so entries
//! go out once and in order. A relay wakes when a commit of its own process wrote to its
//! channel (the store's `Notify`), else every `AUTH_OUTBOX_POLL_MS`, and stops with the
//! server's other background tasks, finishing the entry in flight.
//!
//! Another channel is started with the same relay and its own [`auth_core::outbox::Deliver`]:
//!
//! ```ignore
//! let handle = outbox::spawn_relay(
//!     state.store.clone(),                // the OutboxRepository
//!     mailer,                             // impl Deliver
//!     state.store.mail_ready(),           // woken by commits that wrote mail
//!     RelayOptions::mail(state.events.retries), // ordered: false, delete_on_delivery: true
//!     state.outbox_counters.channel(auth_store::MAIL_CHANNEL),
//!     stopped.clone(),                    // the tasks' stop signal
//! );
//! ```

mod backoff;
pub mod nats;
pub mod rabbit;
pub mod relay;

use auth_core::outbox::{Deliver, DeliveryError, OutboxEntry};

pub use backoff::Backoff;
pub use relay::{RelayOptions, spawn_relay};

use crate::config::Broker;

/// The publisher of the configured broker.
pub enum EventPublisher {
    Amqp(rabbit::AmqpPublisher),
    Nats(nats::NatsPublisher),
}

impl EventPublisher {
    pub fn new(broker: &Broker) -> Self {
        match broker {
            Broker::Amqp { url, exchange } => {
                Self::Amqp(rabbit::AmqpPublisher::new(url.clone(), exchange.clone()))
            }
            Broker::Nats { url, stream } => {
                Self::Nats(nats::NatsPublisher::new(url.clone(), stream.clone()))
            }
        }
    }
}

impl Deliver for EventPublisher {
    async fn deliver(&self, entry: &OutboxEntry) -> Result<(), DeliveryError> {
        match self {
            Self::Amqp(p) => p.deliver(entry).await,
            Self::Nats(p) => p.deliver(entry).await,
        }
    }
}
