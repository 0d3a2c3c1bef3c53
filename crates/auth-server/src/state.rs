//! The state shared by every handler and background task.

use std::sync::Arc;

use auth_core::service::AuthService;
use auth_core::signing::{KeyManager, RotationSettings};
use auth_store::Store;
use secrecy::SecretString;

use crate::config::IpNet;

#[derive(Clone)]
pub struct AppState {
    pub auth: Arc<AuthService<Store>>,
    pub store: Store,
    pub master_key: Option<SecretString>,
    pub rotation: RotationSettings,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<[IpNet]>,
}

impl AppState {
    /// Rotation and upkeep of the signing keys.
    pub fn keys(&self) -> KeyManager<'_, Store> {
        KeyManager {
            repo: &self.store,
            tokens: self.auth.tokens(),
            master_key: self.master_key.as_ref(),
            rotation: self.rotation,
        }
    }
}
