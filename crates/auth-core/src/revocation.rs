//! The in-memory set of revoked sessions that lets token verification refuse tokens of a
//! revoked session without a database query. Revocations made here enter it at once; those
//! made by other instances arrive through [`RevocationList::merge`], fed by a poller.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::domain::SessionId;

/// Revoked session ids with their revocation time. Entries older than the longest
/// access-token lifetime are pruned: tokens of those sessions have expired anyway.
#[derive(Default)]
pub struct RevocationList {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    revoked: HashMap<SessionId, i64>,
    /// Revocation time up to which the store has been read.
    cursor: i64,
}

impl RevocationList {
    /// An empty list whose first poll reads revocations from `cursor` on.
    pub fn starting_at(cursor: i64) -> Self {
        Self {
            inner: RwLock::new(Inner {
                revoked: HashMap::new(),
                cursor,
            }),
        }
    }

    pub fn is_revoked(&self, session_id: &SessionId) -> bool {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .revoked
            .contains_key(session_id)
    }

    /// Records revocations (from this instance or read from the store).
    pub fn insert(&self, session_ids: impl IntoIterator<Item = (SessionId, i64)>) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        for (id, at) in session_ids {
            inner.revoked.insert(id, at);
        }
    }

    /// Where the next poll of the store starts (inclusive, so same-second rows are not missed).
    pub fn cursor(&self) -> i64 {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).cursor
    }

    /// Merges rows read from the store, advances the cursor and drops entries revoked
    /// before `keep_after`.
    pub fn merge(&self, rows: Vec<(SessionId, i64)>, keep_after: i64) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        for (id, at) in rows {
            inner.cursor = inner.cursor.max(at);
            inner.revoked.insert(id, at);
        }
        inner.revoked.retain(|_, at| *at >= keep_after);
    }

    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .revoked
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_revocations_are_seen_and_old_ones_pruned() {
        let list = RevocationList::default();
        let [a, b, c] = [(); 3].map(|()| SessionId::generate());
        list.insert([(a, 10)]);
        assert!(list.is_revoked(&a));
        list.merge(vec![(b, 20), (c, 30)], 15);
        assert!(!list.is_revoked(&a), "pruned");
        assert!(list.is_revoked(&b) && list.is_revoked(&c));
        assert_eq!(list.cursor(), 30);
        assert_eq!(list.len(), 2);
    }
}
