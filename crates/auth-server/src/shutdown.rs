//! The signals that stop the service: SIGTERM (an orchestrator; shutdown's delay applies) and
//! SIGINT (Ctrl-C in a terminal; it stops at once).

use std::future::Future;

/// Which signal asked the service to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: stop without delay.
    Interrupt,
    /// SIGTERM: stop after the delay (`AUTH_SHUTDOWN_DELAY_SECONDS`).
    Terminate,
}

/// Completes on SIGINT or SIGTERM with the signal. The handlers are installed when this is
/// called, not when the future is first polled, so a signal that arrives as soon as the
/// service says it listens is never lost to the default action.
pub fn shutdown_signal() -> impl Future<Output = Signal> + Send + 'static {
    #[cfg(unix)]
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        let signal = {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt.take()) => Signal::Interrupt,
                () = wait(terminate.take()) => Signal::Terminate,
            }
        };
        #[cfg(not(unix))]
        let signal = {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Interrupt
        };
        tracing::info!(?signal, "shutdown signal received");
        signal
    }
}
