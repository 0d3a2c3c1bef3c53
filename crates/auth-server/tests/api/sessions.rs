use auth_core::audit::{AuditEvent, AuditKind};
use auth_core::now_unix;
use auth_core::repo::{
    Record, Records, RefreshRotation, Rotation, RotationOutcome, SessionWrites, UnitOfWork,
};
use auth_core::session::{RefreshRecord, RefreshToken, RevokeReason};
use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, Pair, TestApp, assert_problem, eventually, spawn_app, spawn_app_with,
};

#[tokio::test]
async fn login_opens_a_session_and_stores_only_the_refresh_token_hash() {
    let app = spawn_app().await;
    app.signup("s@example.com").await;
    let r = app
        .client
        .post(app.url("/auth/login"))
        .header("user-agent", "test-agent/1.0")
        .json(&json!({"email": "s@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pair = Pair::from(r.json::<Value>().await.unwrap());
    assert_eq!(pair.refresh.len(), 43);
    assert_eq!(pair.body["refresh_expires_in"], 7 * 24 * 3600);
    let verified = app.state.checks.check(&pair.access).unwrap();
    assert_eq!(
        verified.identity.session_id.map(|s| s.to_string()),
        Some(pair.session_id.clone())
    );

    let (ua, ip): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT user_agent, ip FROM sessions WHERE id = $1")
            .bind(&pair.session_id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(ua.as_deref(), Some("test-agent/1.0"));
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));
    let hashes: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
        .fetch_all(app.pool())
        .await
        .unwrap();
    let expected = RefreshToken::parse(&pair.refresh).unwrap().hash();
    assert_eq!(hashes, vec![expected]);
    assert_ne!(hashes[0], pair.refresh);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE kind = 'login.succeeded'")
            .await,
        1
    );
}

#[tokio::test]
async fn refresh_rotates_within_the_same_session() {
    let app = spawn_app().await;
    app.signup("r@example.com").await;
    let first = app.login_pair("r@example.com").await;
    let r = app.refresh(&first.refresh).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let second = Pair::from(r.json::<Value>().await.unwrap());
    assert_eq!(second.session_id, first.session_id);
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(second.body["token_type"], "bearer");
    assert_eq!(
        app.get_with_token("/auth/me", &second.access)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NOT NULL")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NULL")
            .await,
        1
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 1);
    // The chain goes on.
    let third = Pair::from(
        app.refresh(&second.refresh)
            .await
            .json::<Value>()
            .await
            .unwrap(),
    );
    assert_eq!(third.session_id, first.session_id);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE kind = 'refresh.succeeded'")
            .await,
        2
    );
}

#[tokio::test]
async fn a_retry_within_the_grace_window_gets_the_same_successor() {
    let app = spawn_app().await;
    app.signup("g@example.com").await;
    let first = app.login_pair("g@example.com").await;
    let a = Pair::from(
        app.refresh(&first.refresh)
            .await
            .json::<Value>()
            .await
            .unwrap(),
    );
    let r = app.refresh(&first.refresh).await;
    assert_eq!(r.status(), 200, "a lost response is retried");
    let b = Pair::from(r.json::<Value>().await.unwrap());
    assert_eq!(a.refresh, b.refresh);
    assert_eq!(a.access, b.access);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM refresh_tokens").await,
        2,
        "no second chain"
    );
    // The sealed successor is not readable from the database.
    let sealed: String =
        sqlx::query_scalar("SELECT successor_sealed FROM refresh_tokens WHERE used_at IS NOT NULL")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert!(!sealed.contains(&a.refresh));
    assert_eq!(
        app.refresh(&a.refresh).await.status(),
        200,
        "the successor still works"
    );
}

#[tokio::test]
async fn reuse_after_the_grace_window_revokes_the_whole_session() {
    let app = spawn_app_with(&[("AUTH_REFRESH_GRACE_SECONDS", "0")]).await;
    app.signup("x@example.com").await;
    let first = app.login_pair("x@example.com").await;
    let second = Pair::from(
        app.refresh(&first.refresh)
            .await
            .json::<Value>()
            .await
            .unwrap(),
    );
    assert_problem(
        app.refresh(&first.refresh).await,
        401,
        "refresh_token_reused",
    )
    .await;

    // Every token of the family stops working, the newest included.
    assert_problem(app.refresh(&second.refresh).await, 401, "token_revoked").await;
    assert_problem(
        app.get_with_token("/auth/me", &second.access).await,
        401,
        "token_revoked",
    )
    .await;
    assert_problem(
        app.get_with_token("/auth/me", &first.access).await,
        401,
        "token_revoked",
    )
    .await;
    let reason: Option<String> =
        sqlx::query_scalar("SELECT revoked_reason FROM sessions WHERE id = $1")
            .bind(&first.session_id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(reason.as_deref(), Some("refresh_token_reused"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE kind = 'refresh.reuse_detected'")
            .await,
        1
    );

    // Other sessions of the same user are untouched.
    let other = app.login_pair("x@example.com").await;
    assert_eq!(app.refresh(&other.refresh).await.status(), 200);
}

/// A grace window that is not zero ends: within it a replay gets the same successor, after it
/// the replay is reuse and revokes the session.
#[tokio::test]
async fn a_replay_after_a_grace_window_that_ended_revokes_the_session() {
    let app = spawn_app_with(&[("AUTH_REFRESH_GRACE_SECONDS", "1")]).await;
    app.signup("w@example.com").await;
    let first = app.login_pair("w@example.com").await;
    let r = app.refresh(&first.refresh).await;
    assert_eq!(r.status(), 200);
    let second = Pair::from(r.json::<Value>().await.unwrap());

    let r = app.refresh(&first.refresh).await;
    assert_eq!(r.status(), 200, "a replay within the window");
    let replayed = Pair::from(r.json::<Value>().await.unwrap());
    assert_eq!(replayed.refresh, second.refresh, "the same successor");
    assert_eq!(replayed.access, second.access);

    // Times are whole Unix seconds and the window holds while `now - used_at <= 1`: it has
    // ended for certain two seconds after the rotation. Letting the window run out is the
    // point of this test, so here a sleep is what is tested, not a wait for something.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;

    assert_problem(
        app.refresh(&first.refresh).await,
        401,
        "refresh_token_reused",
    )
    .await;
    let (revoked_at, reason): (Option<i64>, Option<String>) =
        sqlx::query_as("SELECT revoked_at, revoked_reason FROM sessions WHERE id = $1")
            .bind(&first.session_id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert!(revoked_at.is_some(), "the session is revoked");
    assert_eq!(reason.as_deref(), Some("refresh_token_reused"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE kind = 'refresh.reuse_detected'")
            .await,
        1
    );
    assert_problem(app.refresh(&second.refresh).await, 401, "token_revoked").await;
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_create_one_successor() {
    let app = spawn_app().await;
    app.signup("c@example.com").await;
    let first = app.login_pair("c@example.com").await;
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let request = app
                .client
                .post(app.url("/auth/refresh"))
                .json(&json!({"refresh_token": first.refresh}));
            tokio::spawn(async move { request.send().await.unwrap() })
        })
        .collect();
    let mut successors = std::collections::BTreeSet::new();
    for h in handles {
        let r = h.await.unwrap();
        assert_eq!(r.status(), 200);
        successors.insert(Pair::from(r.json::<Value>().await.unwrap()).refresh);
    }
    assert_eq!(successors.len(), 1, "every racer got the same successor");
    assert_eq!(app.count("SELECT COUNT(*) FROM refresh_tokens").await, 2);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NULL")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn concurrent_refreshes_without_grace_never_fork_the_chain() {
    let app = spawn_app_with(&[("AUTH_REFRESH_GRACE_SECONDS", "0")]).await;
    app.signup("c0@example.com").await;
    let first = app.login_pair("c0@example.com").await;
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let request = app
                .client
                .post(app.url("/auth/refresh"))
                .json(&json!({"refresh_token": first.refresh}));
            tokio::spawn(async move { request.send().await.unwrap() })
        })
        .collect();
    let mut ok = 0;
    for h in handles {
        match h.await.unwrap().status().as_u16() {
            200 => ok += 1,
            401 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 1, "exactly one racer wins");
    assert_eq!(app.count("SELECT COUNT(*) FROM refresh_tokens").await, 2);
}

#[tokio::test]
async fn refresh_slides_the_idle_expiry_up_to_the_absolute_lifetime() {
    let app = spawn_app_with(&[
        ("AUTH_SESSION_IDLE_SECONDS", "3600"),
        ("AUTH_SESSION_ABSOLUTE_SECONDS", "7200"),
    ])
    .await;
    app.signup("e@example.com").await;
    let first = app.login_pair("e@example.com").await;
    assert_eq!(first.body["refresh_expires_in"], 3600);
    // Move the session back in time: created 2 hours ago less 100 s, idle expiry soon.
    let now = auth_core::now_unix();
    sqlx::query("UPDATE sessions SET absolute_expires_at = $1, idle_expires_at = $2")
        .bind(now + 100)
        .bind(now + 50)
        .execute(app.pool())
        .await
        .unwrap();
    let second = Pair::from(
        app.refresh(&first.refresh)
            .await
            .json::<Value>()
            .await
            .unwrap(),
    );
    let expires_in = second.body["refresh_expires_in"].as_i64().unwrap();
    assert!(
        (99..=100).contains(&expires_in),
        "capped by the absolute expiry: {expires_in}"
    );
    let idle: i64 = sqlx::query_scalar("SELECT idle_expires_at FROM sessions")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(idle, now + 100);

    sqlx::query("UPDATE sessions SET idle_expires_at = $1")
        .bind(now - 1)
        .execute(app.pool())
        .await
        .unwrap();
    assert_problem(app.refresh(&second.refresh).await, 401, "token_expired").await;
}

#[tokio::test]
async fn unknown_and_misplaced_tokens_are_refused() {
    let app = spawn_app().await;
    app.signup("m@example.com").await;
    let pair = app.login_pair("m@example.com").await;
    let unknown = RefreshToken::generate();
    for (token, why) in [
        (unknown.as_str(), "unknown"),
        (pair.access.as_str(), "an access token"),
        ("", "empty"),
        ("x", "garbage"),
    ] {
        let r = app.refresh(token).await;
        assert_eq!(r.status(), 401, "{why}");
        assert_problem(r, 401, "token_invalid").await;
    }
    assert_problem(
        app.get_with_token("/auth/me", &pair.refresh).await,
        401,
        "token_invalid",
    )
    .await;
    assert_problem(
        app.post_json("/auth/refresh", &json!({})).await,
        422,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn logout_with_the_refresh_token_ends_that_session_only() {
    let app = spawn_app().await;
    app.signup("l@example.com").await;
    let one = app.login_pair("l@example.com").await;
    let two = app.login_pair("l@example.com").await;
    let r = app
        .post_json("/auth/logout", &json!({"refresh_token": one.refresh}))
        .await;
    assert_eq!(r.status(), 204);
    assert_problem(app.refresh(&one.refresh).await, 401, "token_revoked").await;
    assert_problem(
        app.get_with_token("/auth/me", &one.access).await,
        401,
        "token_revoked",
    )
    .await;
    assert_eq!(
        app.get_with_token("/auth/me", &two.access).await.status(),
        200
    );
    // Unknown tokens are accepted silently, and logging out twice is fine.
    assert_eq!(
        app.post_json(
            "/auth/logout",
            &json!({"refresh_token": RefreshToken::generate().as_str()})
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        app.post_json("/auth/logout", &json!({"refresh_token": one.refresh}))
            .await
            .status(),
        204
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE kind = 'logout.succeeded'")
            .await,
        1
    );
}

#[tokio::test]
async fn logout_with_a_bearer_token_ends_its_session() {
    let app = spawn_app().await;
    app.signup("lb@example.com").await;
    let pair = app.login_pair("lb@example.com").await;
    let r = app
        .client
        .post(app.url("/auth/logout"))
        .bearer_auth(&pair.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_problem(
        app.get_with_token("/auth/me", &pair.access).await,
        401,
        "token_revoked",
    )
    .await;
    assert_problem(app.refresh(&pair.refresh).await, 401, "token_revoked").await;
    let r = app
        .client
        .post(app.url("/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "token_invalid").await;
}

#[tokio::test]
async fn logout_all_ends_every_session_of_the_user() {
    let app = spawn_app().await;
    app.signup("la@example.com").await;
    app.signup("bystander@example.com").await;
    let sessions: Vec<Pair> = vec![
        app.login_pair("la@example.com").await,
        app.login_pair("la@example.com").await,
    ];
    let bystander = app.login_pair("bystander@example.com").await;
    let r = app
        .client
        .post(app.url("/auth/logout-all"))
        .bearer_auth(&sessions[0].access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    for s in &sessions {
        assert_problem(
            app.get_with_token("/auth/me", &s.access).await,
            401,
            "token_revoked",
        )
        .await;
        assert_problem(app.refresh(&s.refresh).await, 401, "token_revoked").await;
    }
    assert_eq!(
        app.get_with_token("/auth/me", &bystander.access)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn users_list_and_revoke_their_own_sessions_only() {
    let app = spawn_app().await;
    app.signup("ls@example.com").await;
    app.signup("other@example.com").await;
    let mine = app.login_pair("ls@example.com").await;
    let laptop = app.login_pair("ls@example.com").await;
    let theirs = app.login_pair("other@example.com").await;

    let r = app.get_with_token("/auth/sessions", &mine.access).await;
    assert_eq!(r.status(), 200);
    let list: Vec<Value> = r.json().await.unwrap();
    assert_eq!(list.len(), 2);
    let current: Vec<&Value> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], mine.session_id.as_str());
    assert_eq!(current[0]["ip"], "127.0.0.1");

    let delete = |id: String| {
        app.client
            .delete(app.url(&format!("/auth/sessions/{id}")))
            .bearer_auth(&mine.access)
            .send()
    };
    assert_problem(
        delete(theirs.session_id.clone()).await.unwrap(),
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        app.get_with_token("/auth/me", &theirs.access)
            .await
            .status(),
        200
    );
    assert_eq!(
        delete(laptop.session_id.clone()).await.unwrap().status(),
        204
    );
    assert_problem(
        app.get_with_token("/auth/me", &laptop.access).await,
        401,
        "token_revoked",
    )
    .await;
    assert_problem(
        delete(laptop.session_id.clone()).await.unwrap(),
        404,
        "not_found",
    )
    .await;
    let list: Vec<Value> = app
        .get_with_token("/auth/sessions", &mine.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
}

#[tokio::test]
async fn revocations_reach_other_instances_sharing_the_database() {
    let app = spawn_app().await;
    let (other_addr, other_state) = app.sibling(&[("AUTH_REVOCATION_POLL_MS", "100")]).await;
    app.signup("multi@example.com").await;
    let pair = app.login_pair("multi@example.com").await;
    let me_on_other = || {
        app.client
            .get(format!("{other_addr}/auth/me"))
            .bearer_auth(&pair.access)
            .send()
    };
    assert_eq!(me_on_other().await.unwrap().status(), 200);

    let r = app
        .post_json("/auth/logout", &json!({"refresh_token": pair.refresh}))
        .await;
    assert_eq!(r.status(), 204);
    let seen = eventually(5, || async { me_on_other().await.unwrap().status() == 401 }).await;
    assert!(
        seen,
        "the other instance refuses the revoked session's token"
    );
    let sid = auth_core::domain::SessionId::parse(&pair.session_id).unwrap();
    assert!(other_state.checks.revocations().is_revoked(&sid));
    let verify = app
        .client
        .get(format!("{other_addr}/auth/verify"))
        .bearer_auth(&pair.access)
        .send()
        .await
        .unwrap();
    assert_problem(verify, 401, "token_revoked").await;
}

/// A client that gives up mid-request (its timeout, a closed connection) makes the server drop
/// the request's future wherever it waits, between a transaction's statements too. Nothing
/// may be left behind: no 500 while it happens, and every write afterwards works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_give_up_mid_request_leave_no_transaction_behind() {
    use std::time::{Duration, Instant};

    let app = spawn_app().await;
    app.signup("gone@example.com").await;
    let mut pairs = Vec::new();
    for _ in 0..24 {
        pairs.push(app.login_pair("gone@example.com").await);
    }
    let mut chains = Vec::new();
    for (i, pair) in (0u64..).zip(pairs) {
        let (client, url) = (app.client.clone(), app.url("/auth/refresh"));
        chains.push(tokio::spawn(async move {
            let mut token = pair.refresh;
            let mut statuses = Vec::new();
            let deadline = Instant::now() + Duration::from_millis(1500);
            let mut n = i;
            while Instant::now() < deadline {
                n += 1;
                // From 50 us to 20 ms: cut off at every stage of the request (a debug build takes a
                // few milliseconds per rotation), or not at all; every fourth request waits for
                // its answer, so each chain is answered however loaded the machine is.
                let timeout = if n % 4 == 0 {
                    Duration::from_secs(30)
                } else {
                    Duration::from_micros(50 + (n * 7919) % 20_000)
                };
                let sent = client
                    .post(&url)
                    .timeout(timeout)
                    .json(&json!({"refresh_token": token}))
                    .send()
                    .await;
                let Ok(r) = sent else { continue };
                let status = r.status().as_u16();
                statuses.push(status);
                if status == 200 {
                    if let Ok(body) = r.json::<Value>().await {
                        token = body["refresh_token"].as_str().unwrap().to_owned();
                    }
                } else if status == 401 {
                    // A rotation that committed after its client gave up, retried once the
                    // grace window had passed, is a replay: that session ends, by design.
                    break;
                }
            }
            statuses
        }));
    }
    let mut answered = 0;
    for chain in chains {
        let statuses = chain.await.unwrap();
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 401),
            "{statuses:?}"
        );
        answered += statuses.len();
    }
    assert!(
        answered >= 24,
        "every chain was answered at least once: {answered}"
    );
    // Writes still work, on every path that writes.
    let pair = app.login_pair("gone@example.com").await;
    let r = app.refresh(&pair.refresh).await;
    assert_eq!(r.status(), 200);
    app.signup("after@example.com").await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE email = 'after@example.com'")
            .await,
        1
    );
}

/// A rotation is decided on a read that takes no lock and written only if what it relied on
/// still holds: here, between the read and the write (inside the plan), the session is revoked
/// in one case and the token rotated by another request in the other. Neither stale rotation
/// may write anything: no successor, no slid expiry, no audit event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_planned_on_what_changed_meanwhile_writes_nothing() {
    let app = spawn_app().await;
    let store = app.state.store.clone();
    let rt = tokio::runtime::Handle::current();
    app.signup("stale@example.com").await;
    let rotation_of = |record: &RefreshRecord, records: &mut Records| {
        let now = now_unix();
        let sealed = RefreshToken::generate().as_str().to_owned();
        let rotation = Rotation {
            successor_hash: RefreshToken::generate().hash(),
            successor_sealed: sealed,
            now,
            idle_expires_at: now + 60,
        };
        records.audit(
            AuditEvent::new(AuditKind::TokenRefreshed, &record.session.tenant, now)
                .session(record.session.id),
        );
        rotation
    };

    // The session is revoked after the read.
    let revoked = app.login_pair("stale@example.com").await;
    let idle_sql = format!(
        "SELECT idle_expires_at FROM sessions WHERE id = '{}'",
        revoked.session_id
    );
    let idle_before = app.count(&idle_sql).await;
    let hash = RefreshToken::parse(&revoked.refresh).unwrap().hash();
    let outcome = store
        .rotate_refresh_token(&hash, |record, records| {
            let id = record.session.id;
            let done = tokio::task::block_in_place(|| {
                rt.block_on(store.write(move |tx| {
                    Box::pin(async move {
                        tx.revoke_session(&id, None, RevokeReason::Logout, now_unix())
                            .await
                    })
                }))
            });
            assert!(done.unwrap(), "the session was live when read");
            Some(rotation_of(record, records))
        })
        .await
        .unwrap();
    assert!(matches!(outcome, RotationOutcome::Raced), "{outcome:?}");
    let sid = &revoked.session_id;
    assert_eq!(tokens_of(&app, sid, "").await, 1, "no successor");
    assert_eq!(
        tokens_of(&app, sid, "AND used_at IS NULL").await,
        1,
        "the presented token stays unused"
    );
    assert_eq!(
        app.count(&idle_sql).await,
        idle_before,
        "the idle expiry did not slide"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE kind = 'refresh.succeeded'")
            .await,
        0
    );
    // The client hears that its session is revoked.
    let r = app.refresh(&revoked.refresh).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "token_revoked");

    // The token is rotated by another request after the read.
    let raced = app.login_pair("stale@example.com").await;
    let hash = RefreshToken::parse(&raced.refresh).unwrap().hash();
    let outcome = store
        .rotate_refresh_token(&hash, |record, records| {
            let first = tokio::task::block_in_place(|| {
                rt.block_on(store.rotate_refresh_token(&hash, |record, records| {
                    Some(rotation_of(record, records))
                }))
            });
            assert!(matches!(first, Ok(RotationOutcome::Rotated)), "{first:?}");
            Some(rotation_of(record, records))
        })
        .await
        .unwrap();
    assert!(matches!(outcome, RotationOutcome::Raced), "{outcome:?}");
    assert_eq!(
        tokens_of(&app, &raced.session_id, "").await,
        2,
        "one successor, the first rotation's"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE kind = 'refresh.succeeded'")
            .await,
        1,
        "one audit event, the first rotation's"
    );
}

/// Refresh tokens of a session, with an extra condition.
async fn tokens_of(app: &TestApp, session_id: &str, and: &str) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) FROM refresh_tokens WHERE session_id = '{session_id}' {and}"
    ))
    .await
}
