//! Runs the example downstream service on `PORT` (default 3000).
#![forbid(unsafe_code)]

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let verifier = downstream_example::verifier_from_env(|name| std::env::var(name).ok())?;
    // Fails early when the auth service cannot be reached; later failures keep the last keys.
    verifier.refresh_keys().await?;
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port.parse::<u16>()?)).await?;
    println!("downstream-example listening on {}", listener.local_addr()?);
    axum::serve(listener, downstream_example::router(verifier)).await?;
    Ok(())
}
