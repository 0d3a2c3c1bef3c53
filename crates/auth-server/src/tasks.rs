//! Background tasks of every instance: reading revocations made by other instances, key
//! upkeep (promotion, automatic rotation, removal, reload), forgetting old failed-login counts
//! and of expired or used mailed tokens, the audit log's and the event outbox's retention
//! purges, the event relay (when a broker is configured, [`crate::outbox`]) and the mail relay.
//! All stop with the server.

use std::time::Duration;

use auth_core::now_unix;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;

/// Running background tasks.
pub struct Tasks {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

impl Tasks {
    /// Signals the tasks to stop and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for h in self.handles {
            let _ = h.await;
        }
    }
}

pub fn spawn(state: AppState, revocation_poll: Duration, key_reload: Duration) -> Tasks {
    let (stop, stopped) = watch::channel(false);
    let revocations = {
        let state = state.clone();
        every(revocation_poll, stopped.clone(), move || {
            let state = state.clone();
            async move {
                if let Err(e) = state.sessions.sync_revocations().await {
                    tracing::warn!(error = %e, "reading revocations failed; will retry");
                }
            }
        })
    };
    let login_failures = {
        let state = state.clone();
        every(Duration::from_secs(3600), stopped.clone(), move || {
            let state = state.clone();
            async move {
                match state.sessions.purge_login_failures(now_unix()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(purged = n, "forgot old failed-login counts"),
                    Err(e) => tracing::warn!(error = %e, "purging failed-login counts failed"),
                }
            }
        })
    };
    let action_tokens = {
        let state = state.clone();
        every(Duration::from_secs(3600), stopped.clone(), move || {
            let state = state.clone();
            async move {
                match state.accounts.purge_action_tokens(now_unix()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(purged = n, "forgot expired and used mailed tokens"),
                    Err(e) => tracing::warn!(error = %e, "purging mailed tokens failed"),
                }
            }
        })
    };
    let keys = {
        let state = state.clone();
        every(key_reload, stopped.clone(), move || {
            let state = state.clone();
            async move {
                if let Err(e) = state.keys().tick(now_unix()).await {
                    tracing::warn!(error = %e, "signing-key upkeep failed; will retry");
                }
            }
        })
    };
    let mut handles = vec![revocations, login_failures, action_tokens, keys];
    // Mail goes out through its relay (the log transport included; `off` keeps it in the
    // outbox): unordered, each row deleted once sent.
    if state.mailer.sends() {
        handles.push(crate::outbox::spawn_relay(
            state.store.clone(),
            state.mailer.clone(),
            state.store.mail_ready(),
            crate::outbox::RelayOptions::mail(state.events_config.retries),
            state.outbox_counters.channel(auth_store::MAIL_CHANNEL),
            stopped.clone(),
        ));
    }
    if let Some(broker) = &state.events_config.broker {
        handles.push(crate::outbox::spawn_relay(
            state.store.clone(),
            crate::outbox::EventPublisher::new(broker),
            state.store.events_ready(),
            crate::outbox::RelayOptions::events(state.events_config.retries),
            state.outbox_counters.channel(auth_store::EVENT_CHANNEL),
            stopped.clone(),
        ));
    }
    // At start, then hourly: entries expire by the day, and any instance may run it (a purge
    // deletes what is due, whoever runs it).
    let retention = tokio::spawn(async move {
        let mut stopped = stopped;
        let mut ticker = tokio::time::interval(AUDIT_PURGE_PERIOD);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if let Err(e) = state.audit.purge(state.audit_retention_days).await {
                        tracing::warn!(error = %e, "audit log purge failed; will retry");
                    }
                    let events = &state.events_config;
                    let undelivered = events.broker.is_none();
                    if let Err(e) = state.events.purge(events.retention_days, undelivered).await {
                        tracing::warn!(error = %e, "event outbox purge failed; will retry");
                    }
                    if let Err(e) = state.events.purge_mail().await {
                        tracing::warn!(error = %e, "mail outbox purge failed; will retry");
                    }
                }
                _ = stopped.changed() => break,
            }
        }
    });
    Tasks {
        stop,
        handles: {
            handles.push(retention);
            handles
        },
    }
}

/// How often the audit log's retention purge runs.
const AUDIT_PURGE_PERIOD: Duration = Duration::from_secs(3600);

/// Runs `job` every `period` until told to stop.
fn every<F, Fut>(period: Duration, mut stopped: watch::Receiver<bool>, job: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => job().await,
                _ = stopped.changed() => break,
            }
        }
    })
}
