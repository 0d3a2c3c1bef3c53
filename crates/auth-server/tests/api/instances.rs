//! Several instances on one PostgreSQL database and one Redis, as behind a load balancer: they
//! agree on the issuer without `AUTH_ISSUER`, honour each other's tokens, logouts, key
//! rotations and rate limits, race on one refresh token without forking its chain, and one
//! of them stopping while requests are in flight loses nothing at the other.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::{Cluster, claims_of};
use crate::helpers::{PASSWORD, Pair, eventually};
use crate::helpers::{kid_of, rotate_key_now};

#[tokio::test]
async fn instances_without_an_issuer_setting_agree_and_honour_each_others_tokens() {
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    let limit = [("AUTH_RATE_LOGIN_ACCOUNT", "4/1h")];
    // Started at the same moment, on different addresses: each would derive its own issuer.
    let (a, b) = tokio::join!(
        cluster.start("127.0.0.1", &limit),
        cluster.start("127.0.0.2", &limit)
    );
    assert_ne!(a.addr, b.addr);
    assert_eq!(a.issuer(), b.issuer(), "one issuer, the first recorded");
    assert!(
        [&a.addr, &b.addr].contains(&&a.issuer()),
        "the address of the first: {}",
        a.issuer()
    );
    let recorded: String =
        sqlx::query_scalar("SELECT value FROM service_settings WHERE name = 'issuer'")
            .fetch_one(a.state.store.pool())
            .await
            .unwrap();
    assert_eq!(recorded, a.issuer());
    // One started later takes the recorded issuer too.
    let c = cluster.start("127.0.0.3", &limit).await;
    assert_eq!(c.issuer(), a.issuer());

    // A token from A verifies at B.
    let pair = cluster.signup_and_login(&a, "many@example.com").await;
    assert_eq!(claims_of(&pair.access)["iss"], a.issuer());
    assert_eq!(cluster.me_status(&b, &pair.access).await, 200);
    let r = cluster
        .post(&b, "/auth/validate", &json!({"token": pair.access}))
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["active"], true);

    // A logout at A is refused at B within its poll interval (100 ms here).
    let r = cluster
        .post(&a, "/auth/logout", &json!({"refresh_token": pair.refresh}))
        .await;
    assert_eq!(r.status(), 204);
    let refused = eventually(5, || async {
        cluster.me_status(&b, &pair.access).await == 401
    })
    .await;
    assert!(refused, "B refuses the token of the session A ended");

    // The per-account login limit is counted in Redis, across instances.
    let wrong = json!({"email": "many@example.com", "password": "not the password at all"});
    let mut statuses = Vec::new();
    for at in [&a, &b, &c, &a, &b] {
        statuses.push(
            cluster
                .post(at, "/auth/login", &wrong)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 429, 429],
        "the limit 4/1h took the login above"
    );
}

#[tokio::test]
async fn a_key_rotated_at_one_instance_signs_and_verifies_at_the_other() {
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    let a = cluster.start("127.0.0.1", &[]).await;
    let b = cluster.start("127.0.0.1", &[]).await;
    let old = cluster.signup_and_login(&a, "rot@example.com").await.access;
    let old_kid = kid_of(&old);

    let new_kid = rotate_key_now(&a.state).await;
    assert_ne!(new_kid, old_kid);
    let login = json!({"email": "rot@example.com", "password": PASSWORD});
    let from_a = Pair::from(
        cluster
            .post(&a, "/auth/login", &login)
            .await
            .json::<Value>()
            .await
            .unwrap(),
    );
    assert_eq!(kid_of(&from_a.access), new_kid, "A signs with the new key");
    let verified = eventually(5, || async {
        cluster.me_status(&b, &from_a.access).await == 200
    })
    .await;
    assert!(verified, "B verifies A's token of the new key");
    let signs = eventually(5, || async {
        let r = cluster.post(&b, "/auth/login", &login).await;
        let pair = Pair::from(r.json::<Value>().await.unwrap());
        kid_of(&pair.access) == new_kid
    })
    .await;
    assert!(signs, "B signs with the new key");
    assert_eq!(
        cluster.me_status(&b, &old).await,
        200,
        "the old key still verifies"
    );
    assert_eq!(cluster.me_status(&a, &old).await, 200);
}

#[tokio::test]
async fn refreshes_of_one_token_racing_across_instances_make_one_successor_chain() {
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    let a = cluster.start("127.0.0.1", &[]).await;
    let b = cluster.start("127.0.0.1", &[]).await;
    let first = cluster.signup_and_login(&a, "race@example.com").await;
    let racers: Vec<_> = (0..12)
        .map(|i| {
            let at = if i % 2 == 0 { &a.addr } else { &b.addr };
            let request = cluster
                .client
                .post(format!("{at}/auth/refresh"))
                .json(&json!({"refresh_token": first.refresh}));
            tokio::spawn(async move { request.send().await.unwrap() })
        })
        .collect();
    let mut successors = BTreeSet::new();
    for racer in racers {
        let r = racer.await.unwrap();
        assert_eq!(r.status(), 200);
        successors.insert(Pair::from(r.json::<Value>().await.unwrap()).refresh);
    }
    assert_eq!(successors.len(), 1, "every racer got the same successor");
    assert_eq!(
        cluster
            .count(&a, "SELECT COUNT(*) FROM refresh_tokens")
            .await,
        2
    );
    let live = "SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NULL";
    assert_eq!(cluster.count(&a, live).await, 1);
    let open = "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL";
    assert_eq!(cluster.count(&a, open).await, 1);

    // The chain goes on from the successor, at either instance.
    let next = successors.pop_first().unwrap();
    let r = cluster
        .post(&b, "/auth/refresh", &json!({"refresh_token": next}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(cluster.count(&a, live).await, 1);
    assert_eq!(
        cluster
            .count(&a, "SELECT COUNT(*) FROM refresh_tokens")
            .await,
        3
    );
}

/// How one request of the stream ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Answered by the instance it was sent to.
    Answered,
    /// Refused by A's shutdown (no connection, or 503) and answered by B.
    Retried,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_an_instance_with_requests_in_flight_loses_nothing_at_the_other() {
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    // Load shedding is not what this tests: on a busy machine (a parallel build, the rest of
    // the suite) 40 sign-ups and logins could wait more than the default second for a hashing
    // slot and be shed with 503 by B, which has no one to hand them to.
    let patient = [("AUTH_HASH_QUEUE_TIMEOUT_MS", "30000")];
    let mut a = cluster.start("127.0.0.1", &patient).await;
    let b = cluster.start("127.0.0.1", &patient).await;
    const N: usize = 40;
    let mut stream = Vec::new();
    for i in 0..N {
        if i == N / 2 {
            // A stops while the first half is in flight; the rest finds it gone.
            if let Some(stop) = a.stop.take() {
                let _ = stop.send(());
            }
        }
        let targets = if i % 2 == 0 {
            vec![a.addr.clone(), b.addr.clone()]
        } else {
            vec![b.addr.clone()]
        };
        let client = cluster.client.clone();
        stream.push(tokio::spawn(async move {
            let body = json!({"email": format!("stream-{i}@example.com"), "password": PASSWORD});
            let mut outcomes = Vec::new();
            for (path, want) in [("/auth/signup", 201), ("/auth/login", 200)] {
                let mut outcome = Outcome::Answered;
                let mut answered = None;
                for at in &targets {
                    match client.post(format!("{at}{path}")).json(&body).send().await {
                        Ok(r) if r.status() == 503 && at != targets.last().unwrap() => {}
                        Ok(r) => {
                            answered = Some(r.status().as_u16());
                            break;
                        }
                        Err(e) if at != targets.last().unwrap() => {
                            assert!(!e.is_timeout(), "{e}");
                        }
                        Err(e) => panic!("{path} of {i} at {at}: {e}"),
                    }
                    outcome = Outcome::Retried;
                }
                assert_eq!(answered, Some(want), "{path} of stream-{i}");
                outcomes.push(outcome);
            }
            outcomes
        }));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (mut retried, mut answered_by_a) = (0, 0);
    for (i, request) in stream.into_iter().enumerate() {
        for outcome in request.await.unwrap() {
            match outcome {
                Outcome::Retried => retried += 1,
                Outcome::Answered if i % 2 == 0 => answered_by_a += 1,
                Outcome::Answered => {}
            }
        }
    }
    a.stop().await;
    assert!(retried > 0, "the second half found A stopped");
    assert!(answered_by_a > 0, "A answered the first half");
    eprintln!("A answered {answered_by_a}, B took over {retried}");

    // Exactly the rows of the requests that succeeded: one user and one session each.
    let users = "SELECT COUNT(*) FROM users WHERE email LIKE 'stream-%'";
    assert_eq!(cluster.count(&b, users).await, N as i64);
    let sessions = "SELECT COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id \
                    WHERE u.email LIKE 'stream-%'";
    assert_eq!(cluster.count(&b, sessions).await, N as i64);
    assert_eq!(
        cluster
            .count(&b, "SELECT COUNT(*) FROM refresh_tokens")
            .await,
        N as i64
    );
}
