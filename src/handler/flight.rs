//! Single-flight: concurrent callers asking for the same run share one engine run.
//!
//! Every probe is traffic into a private network, so a burst of HTTP callers (a dashboard
//! refreshing in ten tabs, a retrying monitor) must not multiply it. The run is spawned on
//! its own task rather than driven by the first caller, so a caller that hangs up does not
//! cancel the run for the others who joined it.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Whether this caller started the run or joined one already under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Led,
    Joined,
}

/// The run's task ended without a value (it panicked). Callers answer 500; the next
/// request starts a fresh run because the entry is removed on unwind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandoned;

type Flights<K, V> = Arc<Mutex<HashMap<K, watch::Receiver<Option<V>>>>>;

pub struct SingleFlight<K, V> {
    flights: Flights<K, V>,
    started: AtomicUsize,
    waiting: Arc<AtomicUsize>,
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        SingleFlight {
            flights: Arc::new(Mutex::new(HashMap::new())),
            started: AtomicUsize::new(0),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Returns the value of the run for `key`: the one in flight if there is one,
    /// otherwise a new run built by `make`.
    pub async fn run<F, Fut>(&self, key: K, make: F) -> Result<(V, Role), Abandoned>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        let (mut rx, role) = {
            // A std mutex: held only for a map lookup, never across an await.
            let mut map = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(&key) {
                Some(rx) => (rx.clone(), Role::Joined),
                None => {
                    let (tx, rx) = watch::channel(None);
                    map.insert(key.clone(), rx.clone());
                    self.started.fetch_add(1, Ordering::SeqCst);
                    let fut = make();
                    let cleanup = Cleanup {
                        flights: Arc::clone(&self.flights),
                        key: Some(key),
                    };
                    tokio::spawn(async move {
                        let value = fut.await;
                        // Remove first: a caller arriving after this starts a new run
                        // instead of reading a finished one as if it were current.
                        drop(cleanup);
                        let _ = tx.send(Some(value));
                    });
                    (rx, Role::Led)
                }
            }
        };
        let _waiter = Waiter::enter(&self.waiting);
        let out = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().ok_or(Abandoned),
            Err(_) => Err(Abandoned),
        };
        out.map(|v| (v, role))
    }

    /// Runs started so far (not joins).
    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Callers currently waiting for a run, leaders included.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

/// Removes the flight's entry when the run ends, including by panic (drop on unwind),
/// so a crashed run cannot wedge its key forever.
struct Cleanup<K: Eq + Hash, V> {
    flights: Flights<K, V>,
    key: Option<K>,
}

impl<K: Eq + Hash, V> Drop for Cleanup<K, V> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            let mut map = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            map.remove(&k);
        }
    }
}

struct Waiter(Arc<AtomicUsize>);

impl Waiter {
    fn enter(count: &Arc<AtomicUsize>) -> Waiter {
        count.fetch_add(1, Ordering::SeqCst);
        Waiter(Arc::clone(count))
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    async fn until(cond: impl Fn() -> bool) {
        while !cond() {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let sf: Arc<SingleFlight<&'static str, u32>> = Arc::new(SingleFlight::default());
        let (release, gate) = oneshot::channel::<u32>();
        let mut gate = Some(gate);
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let sf2 = Arc::clone(&sf);
            let g = gate.take();
            tasks.push(tokio::spawn(async move {
                sf2.run("k", move || async move {
                    match g {
                        Some(g) => g.await.unwrap_or(0),
                        None => unreachable!("only the leader builds the run"),
                    }
                })
                .await
            }));
            // Let each caller register before the next, so only the first leads.
            let n = tasks.len();
            until(|| sf.waiting() == n).await;
        }
        release.send(7).unwrap();
        let mut roles = Vec::new();
        for t in tasks {
            let (v, role) = t.await.unwrap().unwrap();
            assert_eq!(v, 7);
            roles.push(role);
        }
        assert_eq!(sf.started(), 1);
        assert_eq!(roles.iter().filter(|r| **r == Role::Led).count(), 1);
        assert_eq!(sf.waiting(), 0);
        // The flight is over: the next caller starts a new run.
        let (v, role) = sf.run("k", || async { 9 }).await.unwrap();
        assert_eq!((v, role, sf.started()), (9, Role::Led, 2));
    }

    #[tokio::test]
    async fn different_keys_do_not_share() {
        let sf: SingleFlight<u8, u8> = SingleFlight::default();
        let (a, b) = tokio::join!(sf.run(1, || async { 1 }), sf.run(2, || async { 2 }));
        assert_eq!(a.unwrap().0, 1);
        assert_eq!(b.unwrap().0, 2);
        assert_eq!(sf.started(), 2);
    }

    #[tokio::test]
    async fn a_panicking_run_is_abandoned_and_does_not_wedge_the_key() {
        let sf: SingleFlight<u8, u8> = SingleFlight::default();
        let r = sf.run(1, || async { panic!("run failed") }).await;
        assert_eq!(r, Err(Abandoned));
        let (v, role) = sf.run(1, || async { 3 }).await.unwrap();
        assert_eq!((v, role), (3, Role::Led));
    }
}
