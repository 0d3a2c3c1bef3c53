//! The relay against the in-memory outbox: order, parking, outages, leases and stopping.

use std::sync::Mutex;

use auth_core::domain::{TenantId, UserId};
use auth_core::events::{DomainEvent, EventType};
use auth_core::outbox::EventStatus;
use auth_core::testing::MemoryRepo;

use super::*;

/// What a test's destination answers: each call takes the next planned answer (the last one
/// repeats), and the ids it accepted are kept in order.
#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<Vec<Result<(), DeliveryError>>>>,
    accepted: Arc<Mutex<Vec<String>>>,
    calls: Arc<std::sync::atomic::AtomicUsize>,
}

impl Script {
    fn answering(answers: Vec<Result<(), DeliveryError>>) -> Self {
        Self {
            answers: Arc::new(Mutex::new(answers)),
            ..Self::default()
        }
    }

    fn set(&self, answers: Vec<Result<(), DeliveryError>>) {
        *self.answers.lock().unwrap() = answers;
    }

    fn accepted(&self) -> Vec<String> {
        self.accepted.lock().unwrap().clone()
    }
}

impl Deliver for Script {
    async fn deliver(&self, entry: &OutboxEntry) -> Result<(), DeliveryError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let answer = {
            let mut answers = self.answers.lock().unwrap();
            if answers.len() > 1 {
                answers.remove(0)
            } else {
                answers.first().cloned().unwrap_or(Ok(()))
            }
        };
        if answer.is_ok() {
            self.accepted.lock().unwrap().push(entry.id.clone());
        }
        answer
    }
}

fn retries(max_attempts: u32) -> Retries {
    Retries {
        poll: Duration::from_millis(20),
        max_attempts,
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
        lease: Duration::from_secs(3),
    }
}

fn push_events(repo: &MemoryRepo, n: usize) -> Vec<String> {
    let tenant = TenantId::default_tenant();
    let user = UserId::generate();
    for at in 0..n {
        repo.push_event(DomainEvent::new(
            EventType::UserUpdated,
            &tenant,
            user,
            now_unix() - 10 + at as i64,
        ));
    }
    repo.outbox_rows("event")
        .into_iter()
        .map(|r| r.id)
        .collect()
}

struct Running {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
    counters: Arc<ChannelCounters>,
}

fn start(repo: &MemoryRepo, script: &Script, options: RelayOptions) -> Running {
    let (stop, stopped) = watch::channel(false);
    let counters = Arc::new(ChannelCounters::default());
    let handle = spawn_relay(
        repo.clone(),
        script.clone(),
        Arc::new(Notify::new()),
        options,
        counters.clone(),
        stopped,
    );
    Running {
        stop,
        handle,
        counters,
    }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        self.handle.await.unwrap();
    }
}

async fn until(seconds: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

fn statuses(repo: &MemoryRepo) -> Vec<EventStatus> {
    repo.outbox_rows("event")
        .iter()
        .map(|r| r.status())
        .collect()
}

#[tokio::test]
async fn entries_go_out_once_in_order_and_are_marked_delivered() {
    let repo = MemoryRepo::default();
    let ids = push_events(&repo, 5);
    let script = Script::default();
    let relay = start(&repo, &script, RelayOptions::events(retries(3)));
    assert!(until(5, || script.accepted().len() == 5).await);
    relay.stop().await;
    assert_eq!(script.accepted(), ids);
    assert_eq!(statuses(&repo), vec![EventStatus::Delivered; 5]);
    assert!(
        repo.take_lease("event", "another", now_unix(), now_unix() + 5)
            .await
            .unwrap(),
        "a stopped relay gives its lease up"
    );
}

#[tokio::test]
async fn a_failing_entry_holds_back_the_ones_behind_it_and_is_parked_after_n_attempts() {
    let repo = MemoryRepo::default();
    let ids = push_events(&repo, 3);
    let refused = || Err(DeliveryError::Retry("refused".into()));
    // The first entry fails three times (parked at the third), the rest go out.
    let script = Script::answering(vec![refused(), refused(), refused(), Ok(())]);
    let relay = start(&repo, &script, RelayOptions::events(retries(3)));
    assert!(
        until(15, || script.accepted().len() == 2).await,
        "{:?}",
        statuses(&repo)
    );
    let counters = relay.counters.clone();
    relay.stop().await;
    assert_eq!(
        script.accepted(),
        ids[1..],
        "nothing passed it while it was retried"
    );
    let rows = repo.outbox_rows("event");
    assert_eq!(rows[0].status(), EventStatus::Parked);
    assert_eq!(rows[0].attempts, 3);
    assert_eq!(rows[0].last_error.as_deref(), Some("refused"));
    assert_eq!(
        counters.failures.load(std::sync::atomic::Ordering::SeqCst),
        3
    );

    // Re-queued (as the admin API does), it goes out.
    assert!(repo.requeue_event(None, &ids[0], now_unix()).await.unwrap());
    let relay = start(&repo, &script, RelayOptions::events(retries(3)));
    assert!(until(5, || script.accepted().len() == 3).await);
    relay.stop().await;
    assert_eq!(statuses(&repo), vec![EventStatus::Delivered; 3]);
}

#[tokio::test]
async fn a_permanent_refusal_parks_at_once_and_unordered_channels_go_on() {
    let repo = MemoryRepo::default();
    let ids = push_events(&repo, 3);
    let script = Script::answering(vec![
        Ok(()),
        Err(DeliveryError::Permanent("malformed".into())),
        Ok(()),
    ]);
    let options = RelayOptions {
        channel: "event",
        ..RelayOptions::mail(retries(5))
    };
    let relay = start(&repo, &script, options);
    assert!(until(5, || script.accepted().len() == 2).await);
    relay.stop().await;
    assert_eq!(script.accepted(), [ids[0].clone(), ids[2].clone()]);
    // Unordered with deletion: delivered rows are gone, the parked one stays.
    let rows = repo.outbox_rows("event");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].id.as_str(), rows[0].status()),
        (ids[1].as_str(), EventStatus::Parked)
    );
    assert_eq!(rows[0].attempts, 1);
}

#[tokio::test]
async fn an_unreachable_destination_parks_nothing_and_everything_goes_out_once_it_is_back() {
    let repo = MemoryRepo::default();
    let ids = push_events(&repo, 4);
    let script = Script::answering(vec![Err(DeliveryError::Unavailable("down".into()))]);
    let relay = start(&repo, &script, RelayOptions::events(retries(2)));
    assert!(
        until(5, || script.calls.load(std::sync::atomic::Ordering::SeqCst)
            >= 5)
        .await
    );
    let rows = repo.outbox_rows("event");
    assert!(
        rows.iter()
            .all(|r| r.status() == EventStatus::Pending && r.attempts == 0)
    );
    script.set(vec![Ok(())]);
    assert!(until(5, || script.accepted().len() == 4).await);
    relay.stop().await;
    assert_eq!(script.accepted(), ids);
}

#[tokio::test]
async fn one_relay_per_channel_delivers_and_another_takes_over_when_it_stops() {
    let repo = MemoryRepo::default();
    push_events(&repo, 3);
    let (first, second) = (Script::default(), Script::default());
    let a = start(&repo, &first, RelayOptions::events(retries(3)));
    assert!(until(5, || first.accepted().len() == 3).await);
    let b = start(&repo, &second, RelayOptions::events(retries(3)));
    let more = push_events(&repo, 2)[3..].to_vec();
    assert!(until(5, || first.accepted().len() == 5).await);
    assert!(
        second.accepted().is_empty(),
        "the lease holder alone delivers"
    );
    a.stop().await;
    let later = push_events(&repo, 1)[5..].to_vec();
    assert!(
        until(5, || second.accepted() == later).await,
        "{:?}",
        second.accepted()
    );
    b.stop().await;
    assert_eq!(first.accepted()[3..], more);
}
