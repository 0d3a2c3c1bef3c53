//! The relay of one outbox channel: holds the channel's lease, hands due entries to a
//! [`Deliver`] in id order, and records each outcome (delivered, retried after a backoff, or
//! parked). See the module documentation of [`crate::outbox`] for how it is started.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_core::now_unix;
use auth_core::outbox::{Deliver, DeliveryError, OutboxEntry, OutboxRepository};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::backoff::{Backoff, whole_seconds};
use crate::config::Retries;
use crate::metrics::ChannelCounters;

/// How a relay runs.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// The outbox channel (`event`, `mail`).
    pub channel: &'static str,
    /// Stop a batch at the first failure and retry that entry before any later one, so
    /// entries go out in the order they were recorded (events: per-subject order). Unordered
    /// (mail), a failed entry waits for its backoff while the next ones go out.
    pub ordered: bool,
    /// Delete a row once delivered (mail: it holds an address and maybe a token) instead of
    /// marking it delivered.
    pub delete_on_delivery: bool,
    pub retries: Retries,
    /// Entries read per batch.
    pub batch: usize,
    /// The longest a delivery may take before it counts as a failure (destination away): at
    /// most a third of the lease, so a lease renewed before a delivery is still held after it
    /// and no other instance delivers the same entries meanwhile.
    pub delivery_timeout: Duration,
}

impl RelayOptions {
    /// The event channel: ordered, rows kept (for the admin API, until their retention).
    pub fn events(retries: Retries) -> Self {
        Self {
            channel: auth_store::EVENT_CHANNEL,
            ordered: true,
            delete_on_delivery: false,
            batch: 100,
            delivery_timeout: Duration::from_secs(30).min(retries.lease / 3),
            retries,
        }
    }

    /// The mail channel: unordered, rows deleted once sent.
    pub fn mail(retries: Retries) -> Self {
        Self {
            channel: auth_store::MAIL_CHANNEL,
            ordered: false,
            delete_on_delivery: true,
            ..Self::events(retries)
        }
    }
}

/// What a batch ended with.
#[derive(Debug, PartialEq)]
enum Batch {
    /// Nothing due is left: wait for a wake-up or the poll.
    Drained,
    /// A full batch went out: read the next one at once.
    More,
    /// Try again after this delay (an entry's backoff, or the destination's).
    RetryIn(Duration),
    /// The lease was lost or the relay was told to stop.
    Interrupted,
}

/// Starts the relay of `options.channel` on its own task: it wakes on `wake` (a commit of
/// this process wrote to the channel) or every poll interval, and stops (finishing the entry
/// in flight and giving its lease up) once `stopped` turns true.
pub fn spawn_relay<R, D>(
    repo: R,
    deliver: D,
    wake: Arc<Notify>,
    options: RelayOptions,
    counters: Arc<ChannelCounters>,
    stopped: watch::Receiver<bool>,
) -> JoinHandle<()>
where
    R: OutboxRepository + 'static,
    D: Deliver + 'static,
{
    let relay = Relay {
        repo,
        deliver,
        backoff: Backoff {
            base: options.retries.backoff_base,
            max: options.retries.backoff_max,
        },
        holder: uuid::Uuid::now_v7().to_string(),
        options,
        counters,
        stopped,
        renewed: None,
        outage: 0,
    };
    tokio::spawn(relay.run(wake))
}

struct Relay<R, D> {
    repo: R,
    deliver: D,
    options: RelayOptions,
    backoff: Backoff,
    /// This relay's name in the lease table.
    holder: String,
    counters: Arc<ChannelCounters>,
    stopped: watch::Receiver<bool>,
    /// When the lease was last taken or renewed, while held.
    renewed: Option<Instant>,
    /// Consecutive attempts that found the destination unreachable.
    outage: u32,
}

impl<R: OutboxRepository, D: Deliver> Relay<R, D> {
    async fn run(mut self, wake: Arc<Notify>) {
        let channel = self.options.channel;
        tracing::info!(channel, holder = %self.holder, "outbox relay started");
        loop {
            if *self.stopped.borrow() {
                break;
            }
            let wait = if self.hold_lease().await {
                match self.batch().await {
                    Batch::Drained | Batch::Interrupted => self.options.retries.poll,
                    Batch::More => Duration::ZERO,
                    Batch::RetryIn(delay) => delay.min(self.options.retries.poll),
                }
            } else {
                self.options.retries.poll
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                _ = self.stopped.changed() => {}
            }
        }
        if self.renewed.is_some()
            && let Err(e) = self.repo.release_lease(channel, &self.holder).await
        {
            tracing::warn!(channel, error = %e, "could not give the outbox lease up");
        }
        tracing::info!(channel, "outbox relay stopped");
    }

    /// Takes or renews the channel's lease when a third of its time has passed since the
    /// last renewal; whether this relay holds it.
    async fn hold_lease(&mut self) -> bool {
        let ttl = self.options.retries.lease;
        if self.renewed.is_some_and(|at| at.elapsed() < ttl / 3) {
            return true;
        }
        let started = Instant::now();
        let now = now_unix();
        let until = now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let channel = self.options.channel;
        match self
            .repo
            .take_lease(channel, &self.holder, now, until)
            .await
        {
            Ok(true) => {
                if self.renewed.is_none() {
                    tracing::info!(channel, holder = %self.holder, "outbox lease taken");
                }
                self.renewed = Some(started);
                true
            }
            Ok(false) => {
                if self.renewed.take().is_some() {
                    tracing::warn!(channel, "outbox lease lost to another instance");
                }
                false
            }
            Err(e) => {
                tracing::warn!(channel, error = %e, "outbox lease could not be renewed");
                self.renewed = None;
                false
            }
        }
    }

    async fn batch(&mut self) -> Batch {
        let o = &self.options;
        let found = self
            .repo
            .pending_entries(o.channel, now_unix(), o.ordered, o.batch)
            .await;
        let entries = match found {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(channel = o.channel, error = %e, "reading the outbox failed");
                return Batch::RetryIn(self.options.retries.poll);
            }
        };
        let full = entries.len() == self.options.batch;
        let mut retry_in: Option<Duration> = None;
        for entry in &entries {
            // Checked between entries: the one in flight is always finished.
            if *self.stopped.borrow() || !self.hold_lease().await {
                return Batch::Interrupted;
            }
            match self.attempt(entry).await {
                Ok(()) => {}
                Err(delay) if self.options.ordered => return Batch::RetryIn(delay),
                Err(delay) => {
                    retry_in = Some(retry_in.map_or(delay, |d| d.min(delay)));
                    if self.outage > 0 {
                        // The destination is away: the next entries would fail alike.
                        return Batch::RetryIn(delay);
                    }
                }
            }
        }
        match (full, retry_in) {
            (true, _) => Batch::More,
            (false, Some(delay)) => Batch::RetryIn(delay),
            (false, None) => Batch::Drained,
        }
    }

    /// Delivers one entry and records the outcome; on failure, when to try again.
    async fn attempt(&mut self, entry: &OutboxEntry) -> Result<(), Duration> {
        let o = &self.options;
        let outcome = tokio::time::timeout(o.delivery_timeout, self.deliver.deliver(entry))
            .await
            .unwrap_or_else(|_| Err(DeliveryError::Unavailable("delivery timed out".into())));
        let (channel, id, now) = (o.channel, entry.id.as_str(), now_unix());
        let recorded = match outcome {
            Ok(()) => {
                self.counters
                    .delivered
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if self.outage > 0 {
                    tracing::info!(channel, "outbox destination reachable again");
                    self.outage = 0;
                }
                match self
                    .repo
                    .mark_delivered(id, now, o.delete_on_delivery)
                    .await
                {
                    Ok(()) => return Ok(()),
                    // Delivered but not recorded: it goes out again (at least once).
                    Err(e) => Err(e),
                }
            }
            Err(DeliveryError::Unavailable(error)) => {
                self.counters
                    .failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.outage = self.outage.saturating_add(1);
                if self.outage == 1 {
                    tracing::warn!(channel, %error, "outbox destination unreachable; retrying");
                } else {
                    tracing::debug!(channel, %error, attempt = self.outage, "still unreachable");
                }
                return Err(self.backoff.delay(self.outage));
            }
            Err(DeliveryError::Retry(error)) => {
                self.counters
                    .failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let attempts = entry.attempts.saturating_add(1);
                let delay = self.backoff.delay(attempts);
                if attempts >= o.retries.max_attempts {
                    tracing::warn!(channel, id, attempts, %error, "outbox entry parked");
                    self.repo.record_failure(id, &error, now, Some(now)).await
                } else {
                    tracing::info!(channel, id, attempts, %error, "outbox delivery failed; will retry");
                    let next = now.saturating_add(whole_seconds(delay));
                    match self.repo.record_failure(id, &error, next, None).await {
                        Ok(()) => return Err(delay),
                        Err(e) => Err(e),
                    }
                }
            }
            Err(DeliveryError::Permanent(error)) => {
                self.counters
                    .failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(channel, id, %error, "outbox entry refused for good; parked");
                self.repo.record_failure(id, &error, now, Some(now)).await
            }
        };
        match recorded {
            // Parked: the entries behind it go on.
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(channel, id, error = %e, "recording an outbox outcome failed");
                Err(self.options.retries.poll)
            }
        }
    }
}

#[cfg(test)]
mod tests;
