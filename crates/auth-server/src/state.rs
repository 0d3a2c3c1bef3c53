//! The state shared by every handler.

use std::sync::Arc;

use auth_core::service::AuthService;
use auth_store::Store;

#[derive(Clone)]
pub struct AppState {
    pub auth: Arc<AuthService<Store>>,
    pub store: Store,
}
