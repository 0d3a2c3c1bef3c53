//! Micro-benchmarks of the hot paths: access-token signing and verification, sealing and
//! opening a refresh-token successor, and password hashing. `cargo bench -p auth-core`.

use std::hint::black_box;
use std::time::Duration;

use auth_core::domain::{Password, RoleName, SessionId, TenantId, User, UserId};
use auth_core::keys::{KeyState, KeyVault};
use auth_core::password::{Argon2Settings, HashingLimits, PasswordHasher};
use auth_core::session::{RefreshToken, SealedAccess, Successor};
use auth_core::token::{TokenService, TokenSettings};
use criterion::{Criterion, criterion_group, criterion_main};

fn tokens(c: &mut Criterion) {
    let vault = KeyVault::new(None);
    let key = vault.generate(KeyState::Active, 0);
    let settings = TokenSettings {
        issuer: "http://127.0.0.1".into(),
        audience: Some("api".into()),
        access_ttl: Duration::from_secs(900),
    };
    let service = TokenService::with_keys(settings, &[key], vault).unwrap();
    let user = User {
        id: UserId::generate(),
        tenant: TenantId::default_tenant(),
        email: "bench@example.com".into(),
        username: None,
        roles: vec![RoleName::user()],
        permissions: vec![],
        email_verified: false,
        disabled: false,
        created_at: 0,
        updated_at: 0,
    };
    let now = auth_core::now_unix();
    let sid = Some(SessionId::generate());
    let token = service.mint(&user, sid, now).unwrap().token;
    c.bench_function("access_token_sign", |b| {
        b.iter(|| service.mint(black_box(&user), sid, now).unwrap())
    });
    c.bench_function("access_token_verify", |b| {
        b.iter(|| service.verify_signature(black_box(&token), now).unwrap())
    });
    c.bench_function("access_token_check_cached", |b| {
        b.iter(|| service.check(black_box(&token), now).unwrap())
    });
}

fn sealing(c: &mut Criterion) {
    let parent = RefreshToken::generate();
    let successor = Successor {
        refresh_token: RefreshToken::generate().as_str().to_owned(),
        access: SealedAccess::Unsigned("x".repeat(600)),
        access_expires_at: 0,
    };
    let sealed = parent.seal_successor(&successor);
    c.bench_function("refresh_successor_seal", |b| {
        b.iter(|| parent.seal_successor(black_box(&successor)))
    });
    c.bench_function("refresh_successor_open", |b| {
        b.iter(|| parent.open_successor(black_box(&sealed)).unwrap())
    });
    c.bench_function("refresh_token_generate_and_hash", |b| {
        b.iter(|| RefreshToken::generate().hash())
    });
}

fn hashing(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let hasher = PasswordHasher::new(
        Argon2Settings::default(),
        HashingLimits {
            max_in_flight: 1,
            queue_timeout: Duration::from_secs(60),
        },
    )
    .unwrap();
    let password = Password::new("correct horse battery".into());
    let hash = rt.block_on(hasher.hash(&password)).unwrap();
    let mut group = c.benchmark_group("password");
    group.sample_size(10);
    group.bench_function("argon2id_hash_default_params", |b| {
        b.iter(|| rt.block_on(hasher.hash(black_box(&password))).unwrap())
    });
    group.bench_function("argon2id_verify_default_params", |b| {
        b.iter(|| {
            rt.block_on(hasher.verify(Some(hash.clone()), black_box(&password)))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, tokens, sealing, hashing);
criterion_main!(benches);
