//! The writes of [`MemoryRepo`]'s units of work ([`MemoryTx`]), on the staged copy of its
//! state that a commit makes current.

use crate::StoreError;
use crate::action_token::{ActionPurpose, NewActionToken};
use crate::domain::{
    NewUser, Permission, RoleName, SessionId, TenantId, User, UserId, Username, order_roles,
};
use crate::lockout::{LockoutPolicy, LockoutState};
use crate::repo::{
    ActionTokenWrites, BoxFuture, ImportWrites, LockoutWrites, PasswordWrites, SessionWrites,
    UserWrites,
};
use crate::session::{RevokeReason, Session};

use super::{MemoryTx, StoredToken, StoredUser, permissions_of};

impl UserWrites for MemoryTx {
    fn insert_user(&mut self, new: NewUser) -> BoxFuture<'_, Result<User, StoreError>> {
        Box::pin(async move {
            let state = &mut self.staged;
            let same_tenant = |u: &&StoredUser| u.user.tenant == new.tenant;
            if state
                .users
                .iter()
                .filter(same_tenant)
                .any(|u| u.email == new.email.normalized())
            {
                return Err(StoreError::DuplicateEmail);
            }
            let username = new.username.as_ref().map(|u| u.normalized().to_owned());
            if username.is_some()
                && state
                    .users
                    .iter()
                    .filter(same_tenant)
                    .any(|u| u.username == username)
            {
                return Err(StoreError::DuplicateUsername);
            }
            let mut permissions = Vec::new();
            for role in &new.roles {
                let granted = permissions_of(role.as_str())
                    .filter(|_| new.tenant == TenantId::default_tenant())
                    .ok_or_else(|| StoreError::MissingReference(format!("role {role}")))?;
                permissions.extend(granted.iter().map(|p| Permission::trusted(*p)));
            }
            permissions.sort();
            permissions.dedup();
            let mut roles = new.roles.clone();
            order_roles(&mut roles);
            let user = User {
                id: new.id,
                tenant: new.tenant.clone(),
                email: new.email.as_str().to_owned(),
                username: new.username.as_ref().map(|u| u.as_str().to_owned()),
                roles,
                permissions,
                email_verified: false,
                disabled: false,
                created_at: new.now,
                updated_at: new.now,
            };
            state.users.push(StoredUser {
                user: user.clone(),
                password_hash: new.password_hash,
                lockout: LockoutState::default(),
                email: new.email.normalized().to_owned(),
                username,
            });
            Ok(user)
        })
    }
}

impl PasswordWrites for MemoryTx {
    fn set_password_hash<'a>(
        &'a mut self,
        user: &'a UserId,
        hash: &'a str,
        expected: Option<&'a str>,
        at: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let Some(u) = self.staged.user_mut(user) else {
                return Ok(false);
            };
            if expected.is_some_and(|e| e != u.password_hash) {
                return Ok(false);
            }
            u.password_hash = hash.to_owned();
            u.user.updated_at = at;
            Ok(true)
        })
    }

    fn push_password_history<'a>(
        &'a mut self,
        user: &'a UserId,
        hash: &'a str,
        at: i64,
        keep: usize,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let history = &mut self.staged.history;
            history.push((*user, hash.to_owned(), at));
            let mine = history.iter().filter(|(u, _, _)| u == user).count();
            let mut drop = mine.saturating_sub(keep);
            history.retain(|(u, _, _)| {
                let gone = u == user && drop > 0;
                drop -= usize::from(gone);
                !gone
            });
            Ok(())
        })
    }
}

impl ImportWrites for MemoryTx {
    fn import_update_user<'a>(
        &'a mut self,
        user: &'a UserId,
        username: Option<&'a Username>,
        hash: &'a str,
        disabled: bool,
        at: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let u = self
                .staged
                .user_mut(user)
                .ok_or_else(|| StoreError::MissingReference("user".into()))?;
            u.username = username.map(|n| n.normalized().to_owned());
            u.user.username = username.map(|n| n.as_str().to_owned());
            u.password_hash = hash.to_owned();
            u.user.disabled = disabled;
            u.user.updated_at = at;
            Ok(())
        })
    }

    fn import_replace_roles<'a>(
        &'a mut self,
        user: &'a UserId,
        _tenant: &'a TenantId,
        roles: &'a [RoleName],
        _at: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let u = self
                .staged
                .user_mut(user)
                .ok_or_else(|| StoreError::MissingReference("user".into()))?;
            let mut roles = roles.to_vec();
            order_roles(&mut roles);
            let mut permissions: Vec<Permission> = roles
                .iter()
                .filter_map(|r| permissions_of(r.as_str()))
                .flatten()
                .map(|p| Permission::trusted(*p))
                .collect();
            permissions.sort();
            permissions.dedup();
            u.user.roles = roles;
            u.user.permissions = permissions;
            Ok(())
        })
    }
}

impl SessionWrites for MemoryTx {
    fn create_session(&mut self, session: Session, token_hash: String) {
        self.staged.tokens.push(StoredToken {
            hash: token_hash,
            session: session.id,
            used_at: None,
            successor_sealed: None,
        });
        self.staged.sessions.push((session, None));
    }

    fn revoke_session<'a>(
        &'a mut self,
        id: &'a SessionId,
        owner: Option<&'a UserId>,
        reason: RevokeReason,
        at: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let found = self.staged.sessions.iter_mut().find(|(s, _)| {
                s.id == *id && s.revoked_at.is_none() && owner.is_none_or(|o| s.user_id == *o)
            });
            Ok(match found {
                Some((session, why)) => {
                    session.revoked_at = Some(at);
                    *why = Some(reason);
                    true
                }
                None => false,
            })
        })
    }

    fn revoke_user_sessions<'a>(
        &'a mut self,
        user: &'a UserId,
        reason: RevokeReason,
        at: i64,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, StoreError>> {
        Box::pin(async move {
            let mut ids = Vec::new();
            for (session, why) in &mut self.staged.sessions {
                if session.user_id == *user && session.revoked_at.is_none() {
                    session.revoked_at = Some(at);
                    *why = Some(reason);
                    ids.push(session.id);
                }
            }
            Ok(ids)
        })
    }

    fn revoke_other_sessions<'a>(
        &'a mut self,
        user: &'a UserId,
        keep: &'a SessionId,
        reason: RevokeReason,
        at: i64,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, StoreError>> {
        Box::pin(async move {
            let mut ids = Vec::new();
            for (session, why) in &mut self.staged.sessions {
                if session.user_id == *user && session.id != *keep && session.revoked_at.is_none() {
                    session.revoked_at = Some(at);
                    *why = Some(reason);
                    ids.push(session.id);
                }
            }
            Ok(ids)
        })
    }
}

/// One more failure on `state` unless locked at `now`; the end of the lock it started.
fn count_failure(state: &mut LockoutState, policy: &LockoutPolicy, now: i64) -> Option<i64> {
    if state.locked_for(now).is_some() {
        return None;
    }
    state.failed_logins += 1;
    if !policy.locks_at(state.failed_logins) {
        return None;
    }
    let until = policy.locked_until(state.lockouts, now);
    *state = LockoutState {
        failed_logins: 0,
        locked_until: Some(until),
        lockouts: state.lockouts + 1,
    };
    Some(until)
}

impl LockoutWrites for MemoryTx {
    fn count_login_failure<'a>(
        &'a mut self,
        user: &'a UserId,
        policy: &'a LockoutPolicy,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, StoreError>> {
        Box::pin(async move {
            Ok(self
                .staged
                .user_mut(user)
                .and_then(|u| count_failure(&mut u.lockout, policy, now)))
        })
    }

    fn count_unknown_login_failure<'a>(
        &'a mut self,
        key: &'a str,
        policy: &'a LockoutPolicy,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, StoreError>> {
        Box::pin(async move {
            let failures = &mut self.staged.unknown_failures;
            let at = match failures.iter().position(|(k, _, _)| k == key) {
                Some(at) => at,
                None => {
                    failures.push((key.to_owned(), LockoutState::default(), now));
                    failures.len() - 1
                }
            };
            let (_, state, seen) = &mut failures[at];
            *seen = now;
            Ok(count_failure(state, policy, now))
        })
    }

    fn reset_login_failures<'a>(
        &'a mut self,
        user: &'a UserId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if let Some(u) = self.staged.user_mut(user) {
                u.lockout = LockoutState::default();
            }
            Ok(())
        })
    }

    fn purge_unknown_login_failures(
        &mut self,
        before: i64,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let failures = &mut self.staged.unknown_failures;
            let count = failures.len();
            failures.retain(|(_, _, seen)| *seen >= before);
            Ok((count - failures.len()) as u64)
        })
    }
}

impl ActionTokenWrites for MemoryTx {
    fn issue_action_token<'a>(
        &'a mut self,
        token: &'a NewActionToken,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if self.staged.user(token.user).is_none() {
                return Err(StoreError::MissingReference("user".into()));
            }
            let tokens = &mut self.staged.action_tokens;
            tokens.retain(|(t, used)| {
                !(t.user == token.user && t.purpose == token.purpose && used.is_none())
            });
            tokens.push((token.clone(), None));
            Ok(())
        })
    }

    fn consume_action_token<'a>(
        &'a mut self,
        hash: &'a str,
        purpose: ActionPurpose,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<(UserId, String)>, StoreError>> {
        Box::pin(async move {
            let found = self.staged.action_tokens.iter_mut().find(|(t, used)| {
                t.hash == hash && t.purpose == purpose && used.is_none() && t.expires_at > now
            });
            Ok(found.map(|(t, used)| {
                *used = Some(now);
                (t.user, t.email.clone())
            }))
        })
    }

    fn mark_email_verified<'a>(
        &'a mut self,
        user: &'a UserId,
        email: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let Some(u) = self.staged.user_mut(user) else {
                return Ok(false);
            };
            if u.email != email.to_lowercase() || u.user.email_verified {
                return Ok(false);
            }
            u.user.email_verified = true;
            u.user.updated_at = now;
            Ok(true)
        })
    }

    fn purge_action_tokens(&mut self, before: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let tokens = &mut self.staged.action_tokens;
            let count = tokens.len();
            tokens.retain(|(t, used)| t.expires_at >= before && used.is_none_or(|u| u >= before));
            Ok((count - tokens.len()) as u64)
        })
    }
}
