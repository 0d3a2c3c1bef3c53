//! The connection loop. `axum::serve` sets no header-read timeout (hyper's needs a timer it
//! does not give) and offers no TLS, so the service accepts its own connections: each one on a
//! task of its own, its TLS handshake (when configured) bounded there, so a slow handshake
//! never holds up other accepts; then HTTP/1.1 with hyper (as `axum::serve` without its
//! `http2` feature), a request's headers bounded too. On shutdown it stops accepting and lets
//! every connection finish its requests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::tls::ServerConfig;

/// How connections are taken: with TLS or not, and how long a client may take to say what it
/// wants.
#[derive(Clone)]
pub struct Connections {
    pub tls: Option<Arc<ServerConfig>>,
    /// Bound of a TLS handshake, and of each request's headers.
    pub header_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes and every connection has finished:
/// the listener closes first (new connections are refused), idle keep-alive connections are
/// closed, requests in progress are answered (and their connections closed after them).
/// Handlers see the peer's address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    connections: Connections,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (listener, graceful) = accept(listener, app, &connections, shutdown).await;
    drop(listener);
    graceful.shutdown().await;
}

/// Serves `app` on `listener` until `until` completes; gives the listener back, with the
/// connections still open (to be shut down gracefully).
pub async fn accept(
    mut listener: TcpListener,
    app: Router,
    connections: &Connections,
    until: impl Future<Output = ()> + Send + 'static,
) -> (TcpListener, GracefulShutdown) {
    let acceptor = connections.tls.clone().map(TlsAcceptor::from);
    let timeout = connections.header_timeout;
    let mut builder = Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeout);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let mut until = std::pin::pin!(until);
    loop {
        // Accept errors (too many open files, ...) are waited out inside `accept`.
        let (stream, peer) = tokio::select! {
            accepted = axum::serve::Listener::accept(&mut listener) => accepted,
            () = &mut until => break,
        };
        let connection = Connection {
            builder: builder.clone(),
            app: app.clone(),
            peer,
            watcher: graceful.watcher(),
        };
        match &acceptor {
            None => {
                tokio::spawn(connection.serve(stream));
            }
            Some(acceptor) => {
                let handshake = acceptor.accept(stream);
                tokio::spawn(async move {
                    match tokio::time::timeout(timeout, handshake).await {
                        Ok(Ok(stream)) => connection.serve(stream).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
    (listener, graceful)
}

/// One accepted connection, ready to be served.
struct Connection {
    builder: Arc<Builder>,
    app: Router,
    peer: SocketAddr,
    watcher: Watcher,
}

impl Connection {
    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            builder,
            app,
            peer,
            watcher,
        } = self;
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let connection = builder.serve_connection(TokioIo::new(io), service);
        if let Err(e) = watcher.watch(connection).await {
            tracing::trace!(%peer, error = %e, "connection ended with an error");
        }
    }
}
