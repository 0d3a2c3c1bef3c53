//! Run to completion: a write whose client goes away still runs to its end, and shutdown
//! waits for such requests before it closes the database.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::error::ApiError;
use super::request_id;

/// Requests running on tasks of their own ([`to_completion`]): each task holds a clone until
/// it ends, so shutdown can wait for them before it closes the database pool.
#[derive(Clone)]
pub struct InFlight {
    _open: mpsc::Sender<()>,
}

/// Completes once every [`InFlight`] clone is gone.
pub struct Drained(mpsc::Receiver<()>);

impl InFlight {
    pub fn new() -> (Self, Drained) {
        let (tx, rx) = mpsc::channel(1);
        (Self { _open: tx }, Drained(rx))
    }
}

impl Drained {
    /// Waits until the router and every request task it handed off are gone.
    pub async fn wait(mut self) {
        while self.0.recv().await.is_some() {}
    }
}

/// Runs the rest of the request to its end even if its client does not wait for it. When a
/// client gives up (a timeout, a closed connection), hyper drops the request's future wherever
/// it waits, also between a transaction's statements; sqlx's SQLite driver can then be left
/// believing a transaction is still open on the writer connection, and every later write fails
/// (reproduced under load; the test `clients_that_give_up_mid_request_leave_no_transaction_behind`).
/// A login, refresh or logout whose client left is completed: it is the same as one whose answer
/// was lost on the way back. The request runs in place, and only if it is dropped unfinished
/// does the rest of it move to a task of its own (spawning every request's task cost a task, a
/// copy of its future and a wake-up each).
pub async fn to_completion(
    State(in_flight): State<InFlight>,
    request: Request,
    next: Next,
) -> Response {
    let handled = request_id::carried(next.run(request)).instrument(tracing::Span::current());
    Completing(Some((Box::pin(handled), in_flight))).await
}

/// A request's future that, dropped before it is done, finishes on a task of its own; its
/// [`InFlight`] clone goes with it, so shutdown waits for it.
struct Completing<F: Future<Output = Response> + Send + 'static>(Option<(Pin<Box<F>>, InFlight)>);

impl<F: Future<Output = Response> + Send + 'static> Future for Completing<F> {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let Some((handled, _)) = self.0.as_mut() else {
            return Poll::Ready(
                ApiError::internal(&"request polled after it ended").into_response(),
            );
        };
        let response = std::task::ready!(handled.as_mut().poll(cx));
        self.0 = None;
        Poll::Ready(response)
    }
}

impl<F: Future<Output = Response> + Send + 'static> Drop for Completing<F> {
    fn drop(&mut self) {
        // A request that panicked is not resumed (CatchPanicLayer answers it); nor is one
        // whose runtime is gone (shutdown is over).
        if std::thread::panicking() {
            return;
        }
        if let Some((handled, in_flight)) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _in_flight = in_flight;
                handled.await
            });
        }
    }
}
