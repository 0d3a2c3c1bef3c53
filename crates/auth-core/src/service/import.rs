//! Importing users exported from other services (`auth-service users import`): every record
//! is validated first (email, username, hash format, roles of the tenant, duplicates), all
//! problems reported with their line or record numbers; then every change is written in one
//! unit of work, or none is. Re-running an import changes nothing.

use std::collections::HashMap;

use serde_json::json;
use tracing::instrument;

use super::AccountService;
use crate::audit::{AuditEvent, AuditKind};
use crate::domain::{Email, LoginName, NewUser, RoleName, TenantId, User, UserId, Username};
use crate::events::{DomainEvent, EventType};
use crate::password::{HashKind, identify};
use crate::repo::{ImportReads, ImportWrites, UnitOfWork, UserReads, UserWrites};
use crate::{CoreError, StoreError, now_unix};

/// One user as read from an import file.
#[derive(Debug, Clone)]
pub struct ImportRecord {
    /// Its line (CSV) or record (JSON, Django) number, 1-based, for reports.
    pub at: usize,
    pub email: String,
    pub username: Option<String>,
    pub password_hash: String,
    /// Roles beyond `user`; `None` leaves an existing user's roles as they are.
    pub roles: Option<Vec<String>>,
    pub active: bool,
}

/// What to do with a record whose email already exists in the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Leave the existing user as it is.
    Skip,
    /// Make the existing user match the record (username, hash, active, roles when given).
    Update,
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    /// Existing users left as they are: identical (update) or not touched (skip).
    pub unchanged: usize,
    /// Problems, by line or record number; when there are any, nothing was written.
    pub errors: Vec<(usize, String)>,
}

/// A validated change.
enum Plan {
    Create {
        user: NewUser,
        disabled: bool,
        kind: HashKind,
        at: usize,
    },
    Update {
        id: UserId,
        tenant: TenantId,
        username: Option<Username>,
        hash: String,
        disabled: bool,
        roles: Option<Vec<RoleName>>,
        kind: HashKind,
        at: usize,
    },
}

impl<R> AccountService<R>
where
    R: UnitOfWork + UserReads + ImportReads,
    R::Tx: UserWrites + ImportWrites,
{
    /// Validates every record, then (unless `dry_run`, or when any record is invalid) writes
    /// every change in one unit of work.
    #[instrument(skip_all, err(level = "info"), fields(tenant = %tenant, records = records.len()))]
    pub async fn import_users(
        &self,
        tenant: &TenantId,
        records: Vec<ImportRecord>,
        on_conflict: OnConflict,
        dry_run: bool,
    ) -> Result<ImportReport, CoreError> {
        let mut report = ImportReport::default();
        let Some(known_roles) = Box::pin(self.repo.tenant_roles(tenant)).await? else {
            report
                .errors
                .push((0, format!("tenant {:?} does not exist", tenant.as_str())));
            return Ok(report);
        };
        let mut plans = Vec::new();
        let mut emails: HashMap<String, usize> = HashMap::new();
        let mut usernames: HashMap<String, usize> = HashMap::new();
        for record in records {
            let at = record.at;
            match self
                .plan(
                    tenant,
                    &known_roles,
                    record,
                    on_conflict,
                    &mut emails,
                    &mut usernames,
                )
                .await
            {
                Ok(Some(plan)) => plans.push(plan),
                Ok(None) => report.unchanged += 1,
                Err(Problems(list)) => report.errors.extend(list.into_iter().map(|m| (at, m))),
            }
        }
        for plan in &plans {
            match plan {
                Plan::Create { .. } => report.created += 1,
                Plan::Update { .. } => report.updated += 1,
            }
        }
        if !report.errors.is_empty() || dry_run || plans.is_empty() {
            return Ok(report);
        }
        let now = now_unix();
        Box::pin(self.repo.write(move |tx| {
            Box::pin(async move {
                for plan in plans {
                    write_plan(tx, plan, now).await?;
                }
                Ok(())
            })
        }))
        .await
        .map_err(|e| match e {
            StoreError::DuplicateEmail => CoreError::EmailTaken,
            StoreError::DuplicateUsername => CoreError::UsernameTaken,
            other => CoreError::Store(other),
        })?;
        Ok(report)
    }

    /// One record's change: `None` when nothing is to change, else the plan; or its problems.
    async fn plan(
        &self,
        tenant: &TenantId,
        known_roles: &[RoleName],
        record: ImportRecord,
        on_conflict: OnConflict,
        emails: &mut HashMap<String, usize>,
        usernames: &mut HashMap<String, usize>,
    ) -> Result<Option<Plan>, Problems> {
        let at = record.at;
        let mut problems = Problems::default();
        let email = Email::parse(&record.email).map_err(|m| problems.add("email", m));
        let username = match record.username.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(u) => Username::parse(u)
                .map_err(|m| problems.add("username", m))
                .ok(),
        };
        let kind = identify(&record.password_hash).map_err(|m| problems.add("password_hash", m));
        let roles = record.roles.map(|names| {
            let mut roles = vec![RoleName::user()];
            for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
                match RoleName::parse(name) {
                    Ok(r) if !known_roles.contains(&r) => problems.add(
                        "roles",
                        format!("role {name:?} does not exist in tenant {tenant}"),
                    ),
                    Ok(r) if !roles.contains(&r) => roles.push(r),
                    Ok(_) => {}
                    Err(m) => problems.add("roles", format!("{name:?} {m}")),
                }
            }
            roles
        });
        if let Ok(email) = &email
            && let Some(first) = emails.insert(email.normalized().to_owned(), at)
        {
            problems.add("email", format!("also on line/record {first}"));
        }
        if let Some(name) = &username
            && let Some(first) = usernames.insert(name.normalized().to_owned(), at)
        {
            problems.add("username", format!("also on line/record {first}"));
        }
        let (Ok(email), Ok(kind)) = (email, kind) else {
            return Err(problems);
        };
        let existing = self
            .existing(tenant, &LoginName::Email(email.clone()))
            .await
            .map_err(|e| Problems(vec![format!("cannot read the database: {e}")]))?;
        if let Some(name) = &username {
            let owner = self
                .existing(tenant, &LoginName::Username(name.clone()))
                .await
                .map_err(|e| Problems(vec![format!("cannot read the database: {e}")]))?;
            let owner_id = owner.map(|(u, _)| u.id);
            if owner_id.is_some() && owner_id != existing.as_ref().map(|(u, _)| u.id) {
                problems.add("username", "taken by another user of the tenant");
            }
        }
        if !problems.0.is_empty() {
            return Err(problems);
        }
        let disabled = !record.active;
        let Some((user, hash)) = existing else {
            return Ok(Some(Plan::Create {
                user: NewUser {
                    id: UserId::generate(),
                    tenant: tenant.clone(),
                    email,
                    username,
                    password_hash: record.password_hash,
                    roles: roles.unwrap_or_else(|| vec![RoleName::user()]),
                    now: 0,
                },
                disabled,
                kind,
                at,
            }));
        };
        if on_conflict == OnConflict::Skip {
            return Ok(None);
        }
        let same_roles = roles.as_ref().is_none_or(|r| {
            let mut wanted = r.clone();
            crate::domain::order_roles(&mut wanted);
            wanted == user.roles
        });
        let same = user.username.as_deref() == username.as_ref().map(|u| u.as_str())
            && hash == record.password_hash
            && user.disabled == disabled
            && same_roles;
        if same {
            return Ok(None);
        }
        Ok(Some(Plan::Update {
            id: user.id,
            tenant: tenant.clone(),
            username,
            hash: record.password_hash,
            disabled,
            roles: roles.filter(|_| !same_roles),
            kind,
            at,
        }))
    }

    async fn existing(
        &self,
        tenant: &TenantId,
        name: &LoginName,
    ) -> Result<Option<(User, String)>, StoreError> {
        let found = Box::pin(self.repo.find_credentials(tenant, name)).await?;
        Ok(found.map(|c| (c.user, c.password_hash)))
    }
}

async fn write_plan<T: UserWrites + ImportWrites>(
    tx: &mut T,
    plan: Plan,
    now: i64,
) -> Result<(), StoreError> {
    let (id, tenant, kind, at, action) = match plan {
        Plan::Create {
            mut user,
            disabled,
            kind,
            at,
        } => {
            user.now = now;
            let (id, tenant) = (user.id, user.tenant.clone());
            let (username, hash) = (user.username.clone(), user.password_hash.clone());
            let created = tx.insert_user(user).await?;
            tx.event(DomainEvent::user_created(&created, "import", now));
            if disabled {
                tx.import_update_user(&id, username.as_ref(), &hash, true, now)
                    .await?;
                tx.event(DomainEvent::new(EventType::UserDisabled, &tenant, id, now));
            }
            (id, tenant, kind, at, "created")
        }
        Plan::Update {
            id,
            tenant,
            username,
            hash,
            disabled,
            roles,
            kind,
            at,
        } => {
            tx.import_update_user(&id, username.as_ref(), &hash, disabled, now)
                .await?;
            if let Some(roles) = roles {
                tx.import_replace_roles(&id, &tenant, &roles, now).await?;
            }
            (id, tenant, kind, at, "updated")
        }
    };
    tx.audit(
        AuditEvent::new(AuditKind::UserImported, &tenant, now)
            .user(id)
            .detail(json!({ "action": action, "hash": kind.as_str(), "record": at })),
    );
    Ok(())
}

/// The problems of one record, each `field: message`.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, field: &str, message: impl std::fmt::Display) {
        self.0.push(format!("{field}: {message}"));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::password::PasswordPolicy;
    use crate::revocation::RevocationList;
    use crate::testing::{MemoryRepo, cheap_hasher};

    const BCRYPT: &str = "$2b$04$h8hY2pVMn5G4v5N.LOHUU.JYNuj2iZ61DCv96QiLyLAIgyG9IcBTW";

    fn service(repo: &MemoryRepo) -> AccountService<MemoryRepo> {
        AccountService::new(
            repo.clone(),
            cheap_hasher(1),
            PasswordPolicy::default(),
            Arc::new(RevocationList::starting_at(0)),
        )
    }

    fn record(at: usize, email: &str, hash: &str, roles: Option<&[&str]>) -> ImportRecord {
        ImportRecord {
            at,
            email: email.into(),
            username: None,
            password_hash: hash.into(),
            roles: roles.map(|r| r.iter().map(|s| s.to_string()).collect()),
            active: true,
        }
    }

    #[tokio::test]
    async fn an_import_is_all_or_nothing_and_a_second_run_changes_nothing() {
        let repo = MemoryRepo::default();
        let svc = service(&repo);
        let tenant = TenantId::default_tenant();
        let bad = vec![
            record(2, "a@example.com", BCRYPT, Some(&["admin"])),
            record(3, "b@example.com", "md5$x$y", None),
            record(4, "c@example.com", BCRYPT, Some(&["nope"])),
            record(5, "A@example.com", BCRYPT, None),
        ];
        let report = svc
            .import_users(&tenant, bad, OnConflict::Skip, false)
            .await
            .unwrap();
        let lines: Vec<usize> = report.errors.iter().map(|(at, _)| *at).collect();
        assert_eq!(lines, [3, 4, 5], "{:?}", report.errors);
        assert_eq!(repo.user_count(), 0, "nothing written");

        let good = || {
            vec![
                record(1, "a@example.com", BCRYPT, Some(&["admin"])),
                record(2, "b@example.com", BCRYPT, None),
            ]
        };
        let dry = svc
            .import_users(&tenant, good(), OnConflict::Skip, true)
            .await
            .unwrap();
        assert_eq!((dry.created, repo.user_count()), (2, 0));
        let done = svc
            .import_users(&tenant, good(), OnConflict::Skip, false)
            .await
            .unwrap();
        assert_eq!(
            (done.created, done.errors.len(), repo.user_count()),
            (2, 0, 2)
        );
        assert_eq!(repo.audit_kinds().len(), 2);
        for rule in [OnConflict::Skip, OnConflict::Update] {
            let again = svc
                .import_users(&tenant, good(), rule, false)
                .await
                .unwrap();
            assert_eq!(
                (again.created, again.updated, again.unchanged),
                (0, 0, 2),
                "{rule:?}"
            );
        }
        assert_eq!(repo.audit_kinds().len(), 2, "nothing written again");
        let unknown = TenantId::trusted("acme");
        let report = svc
            .import_users(&unknown, good(), OnConflict::Skip, false)
            .await
            .unwrap();
        assert_eq!(report.errors.len(), 1);
    }
}
