//! The reads of [`MemoryRepo`] on its current state, and the refresh rotation (a read, then a
//! claim conditional on it, as the store's).

use std::sync::atomic::Ordering;

use crate::StoreError;
use crate::action_token::{ActionPurpose, ActionTokenRecord};
use crate::audit::{AuditQuery, AuditRecord, AuditRepository};
use crate::domain::{LoginName, RoleName, SessionId, TenantId, User, UserCredentials, UserId};
use crate::repo::{
    ActionTokenReads, HealthRepository, ImportReads, PasswordReads, Records, RefreshRotation,
    Rotation, RotationOutcome, SessionReads, UserReads,
};
use crate::session::{RefreshRecord, Session};

use super::{MemoryRepo, StoredToken};

impl ActionTokenReads for MemoryRepo {
    async fn find_action_token(
        &self,
        hash: &str,
        purpose: ActionPurpose,
    ) -> Result<Option<ActionTokenRecord>, StoreError> {
        Ok(self
            .state()
            .action_tokens
            .iter()
            .find(|(t, _)| t.hash == hash && t.purpose == purpose)
            .map(|(t, used)| ActionTokenRecord {
                user: t.user,
                email: t.email.clone(),
                expires_at: t.expires_at,
                used_at: *used,
            }))
    }
}

impl PasswordReads for MemoryRepo {
    async fn credentials_by_id(&self, id: UserId) -> Result<Option<UserCredentials>, StoreError> {
        Ok(self.state().user(id).map(|u| UserCredentials {
            user: u.user.clone(),
            password_hash: u.password_hash.clone(),
            lockout: u.lockout,
        }))
    }

    async fn password_history(&self, id: UserId, limit: usize) -> Result<Vec<String>, StoreError> {
        Ok(self
            .state()
            .history
            .iter()
            .rev()
            .filter(|(u, _, _)| *u == id)
            .take(limit)
            .map(|(_, h, _)| h.clone())
            .collect())
    }
}

impl ImportReads for MemoryRepo {
    async fn tenant_roles(&self, tenant: &TenantId) -> Result<Option<Vec<RoleName>>, StoreError> {
        Ok((*tenant == TenantId::default_tenant())
            .then(|| vec![RoleName::trusted("admin"), RoleName::user()]))
    }
}

impl UserReads for MemoryRepo {
    async fn find_credentials(
        &self,
        tenant: &TenantId,
        name: &LoginName,
    ) -> Result<Option<UserCredentials>, StoreError> {
        self.0.credential_reads.fetch_add(1, Ordering::SeqCst);
        let state = self.state();
        let found = state.users.iter().find(|u| {
            u.user.tenant == *tenant
                && match name {
                    LoginName::Email(e) => u.email == e.normalized(),
                    LoginName::Username(n) => u.username.as_deref() == Some(n.normalized()),
                }
        });
        Ok(found.map(|u| UserCredentials {
            user: u.user.clone(),
            password_hash: u.password_hash.clone(),
            lockout: u.lockout,
        }))
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.state().user(id).map(|u| u.user.clone()))
    }
}

impl SessionReads for MemoryRepo {
    async fn find_refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        Ok(self.state().record(token_hash))
    }

    async fn active_sessions(&self, user: UserId, now: i64) -> Result<Vec<Session>, StoreError> {
        let mut sessions: Vec<Session> = self
            .state()
            .sessions
            .iter()
            .map(|(s, _)| s.clone())
            .filter(|s| s.user_id == user && s.is_active(now))
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse((s.created_at, s.id)));
        Ok(sessions)
    }

    async fn revoked_since(&self, since: i64) -> Result<Vec<(SessionId, i64)>, StoreError> {
        Ok(self
            .state()
            .sessions
            .iter()
            .filter_map(|(s, _)| s.revoked_at.filter(|at| *at >= since).map(|at| (s.id, at)))
            .collect())
    }
}

impl RefreshRotation for MemoryRepo {
    async fn rotate_refresh_token<F>(
        &self,
        token_hash: &str,
        plan: F,
    ) -> Result<RotationOutcome, StoreError>
    where
        F: FnOnce(&RefreshRecord, &mut Records) -> Option<Rotation> + Send,
    {
        let Some(record) = self.state().record(token_hash) else {
            return Ok(RotationOutcome::Unknown);
        };
        if record.used_at.is_some() {
            return Ok(RotationOutcome::Used(Box::new(record)));
        }
        let mut records = Records::default();
        let Some(rotation) = plan(&record, &mut records) else {
            return Ok(RotationOutcome::Declined);
        };
        let _turn = self.0.writing.clone().lock_owned().await;
        let mut state = self.state();
        let session_live = state
            .sessions
            .iter()
            .any(|(s, _)| s.id == record.session.id && s.revoked_at.is_none());
        let Some(token) = state
            .tokens
            .iter_mut()
            .find(|t| t.hash == token_hash && t.used_at.is_none())
            .filter(|_| session_live)
        else {
            return Ok(RotationOutcome::Raced);
        };
        token.used_at = Some(rotation.now);
        token.successor_sealed = Some(rotation.successor_sealed);
        state.tokens.push(StoredToken {
            hash: rotation.successor_hash,
            session: record.session.id,
            used_at: None,
            successor_sealed: None,
        });
        if let Some((session, _)) = state
            .sessions
            .iter_mut()
            .find(|(s, _)| s.id == record.session.id)
        {
            session.last_used_at = rotation.now;
            session.idle_expires_at = rotation.idle_expires_at;
        }
        state.audit.extend(records.take_audit_events());
        Ok(RotationOutcome::Rotated)
    }
}

impl HealthRepository for MemoryRepo {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Entries are identified by their position, zero-padded so ids compare as their order.
impl AuditRepository for MemoryRepo {
    async fn audit_page(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let state = self.state();
        let mut rows: Vec<AuditRecord> = state
            .audit
            .iter()
            .enumerate()
            .map(|(i, e)| AuditRecord {
                id: format!("{i:08}"),
                tenant: e.tenant.as_str().to_owned(),
                kind: e.kind.as_str().to_owned(),
                actor_id: e.actor_id.map(|id| id.to_string()),
                user_id: e.user_id.map(|id| id.to_string()),
                session_id: e.session_id.map(|id| id.to_string()),
                ip: e.client.ip.clone(),
                user_agent: e.client.user_agent.clone(),
                request_id: e.client.request_id.clone(),
                outcome: e.outcome.as_str().to_owned(),
                detail: e.detail.clone(),
                at: e.at,
            })
            .filter(|r| r.tenant == q.tenant.as_str())
            .filter(|r| q.user.is_none() || r.user_id == q.user)
            .filter(|r| q.kind.is_none_or(|k| r.kind == k.as_str()))
            .filter(|r| q.since.is_none_or(|t| r.at >= t))
            .filter(|r| q.until.is_none_or(|t| r.at < t))
            .filter(|r| {
                q.after
                    .as_ref()
                    .is_none_or(|p| (r.at, r.id.as_str()) < (p.at, p.id.as_str()))
            })
            .collect();
        rows.sort_by(|a, b| (b.at, &b.id).cmp(&(a.at, &a.id)));
        rows.truncate(q.limit);
        Ok(rows)
    }

    async fn purge_audit(&self, before: i64, batch: usize) -> Result<u64, StoreError> {
        let mut state = self.state();
        let mut purged = 0;
        state.audit.retain(|e| {
            let purge = e.at < before && purged < batch;
            purged += usize::from(purge);
            !purge
        });
        Ok(purged as u64)
    }
}
