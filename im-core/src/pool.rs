//! Bounded pools for blocking work (store calls, bcrypt).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::error::PoolError;

/// Runs blocking closures on tokio's blocking threads, at most `size` at a
/// time; callers beyond that wait asynchronously, never on an actor thread.
///
/// A pool made with [`BlockingPool::with_max_wait`] also refuses work
/// ([`PoolError::Busy`]) that would wait longer than the bound for a
/// thread, judged from the jobs ahead of it and how long recent jobs took,
/// so a storm of bcrypt logins is answered promptly instead of queueing
/// for minutes.
#[derive(Clone, Debug)]
pub struct BlockingPool {
    permits: Arc<Semaphore>,
    size: usize,
    /// The wait bound and what the estimate is made of; `None` for a pool
    /// without a bound, which then keeps no count at all (the store's pool
    /// runs every store call).
    bound: Option<(Duration, Arc<Load>)>,
}

/// Jobs admitted and not finished, and a moving average of how long one
/// takes (µs), for the wait estimate.
#[derive(Debug, Default)]
struct Load {
    in_flight: AtomicUsize,
    avg_micros: AtomicU64,
}

/// Gives the admitted job's place back however the caller's future ends.
struct Admitted(Arc<Load>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Load {
    /// Folds one job's duration into the average (weight 1/8).
    fn observe(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let old = self.avg_micros.load(Ordering::Relaxed);
        let new = if old == 0 { us } else { old - old / 8 + us / 8 };
        self.avg_micros.store(new, Ordering::Relaxed);
    }
}

impl BlockingPool {
    /// A pool running at most `size` closures at once (at least 1).
    pub fn new(size: usize) -> BlockingPool {
        let size = size.max(1);
        BlockingPool {
            permits: Arc::new(Semaphore::new(size)),
            size,
            bound: None,
        }
    }

    /// Like [`BlockingPool::new`], refusing work that would wait more than
    /// `max_wait` for a thread.
    pub fn with_max_wait(size: usize, max_wait: Duration) -> BlockingPool {
        BlockingPool {
            bound: Some((max_wait, Arc::default())),
            ..BlockingPool::new(size)
        }
    }

    /// How long a job admitted now would wait for a thread: the rounds of
    /// jobs ahead of it times the average job's duration.
    pub fn expected_wait(&self) -> Duration {
        let Some((_, load)) = &self.bound else {
            return Duration::ZERO;
        };
        let ahead = load.in_flight.load(Ordering::Relaxed);
        let rounds = (ahead / self.size) as u32;
        Duration::from_micros(load.avg_micros.load(Ordering::Relaxed)) * rounds
    }

    /// Runs `f` off the async threads and returns its result.
    pub async fn run<T, F>(&self, f: F) -> Result<T, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let acquire = self.permits.clone().acquire_owned();
        let (permit, _admitted, load) = match &self.bound {
            None => (acquire.await, None, None),
            Some((max, load)) => {
                if self.expected_wait() > *max {
                    return Err(PoolError::Busy);
                }
                load.in_flight.fetch_add(1, Ordering::Relaxed);
                let admitted = Admitted(load.clone());
                // The estimate can be wrong (jobs got slower); the bound
                // holds anyway.
                let permit = tokio::time::timeout(*max, acquire)
                    .await
                    .map_err(|_| PoolError::Busy)?;
                (permit, Some(admitted), Some(load.clone()))
            }
        };
        let permit = permit.map_err(|_| PoolError::Closed)?;
        // The permit goes with the closure and is released the moment it
        // returns, not when the caller next gets polled: a caller that is
        // slow to be polled (an actor busy in `ctx.wait`) must not keep a
        // finished job's place, or callers could wait on each other's
        // places in a cycle.
        tokio::task::spawn_blocking(move || {
            let started = load.as_ref().map(|_| Instant::now());
            let out = f();
            if let (Some(load), Some(started)) = (load, started) {
                load.observe(started.elapsed());
            }
            drop(permit);
            out
        })
        .await
        .map_err(|_| PoolError::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_that_would_wait_past_the_bound_is_refused_at_once() {
        let pool = BlockingPool::with_max_wait(1, Duration::from_millis(150));
        // Teach the pool that a job takes about 100 ms.
        pool.run(|| std::thread::sleep(Duration::from_millis(100)))
            .await
            .unwrap();
        let jobs: Vec<_> = (0..6)
            .map(|_| {
                let p = pool.clone();
                tokio::spawn(async move {
                    p.run(|| std::thread::sleep(Duration::from_millis(100)))
                        .await
                })
            })
            .collect();
        let mut done = 0;
        let mut busy = 0;
        for j in jobs {
            match j.await.unwrap() {
                Ok(()) => done += 1,
                Err(PoolError::Busy) => busy += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(done >= 1, "the pool still works");
        assert!(
            busy >= 3,
            "only {busy} of 6 refused with one thread and a 150 ms bound"
        );
        // Once the queue has drained, work is admitted again.
        assert_eq!(pool.expected_wait(), Duration::ZERO);
        pool.run(|| ()).await.unwrap();
    }

    #[tokio::test]
    async fn without_a_bound_everything_waits_its_turn() {
        let pool = BlockingPool::new(1);
        let jobs: Vec<_> = (0..4)
            .map(|_| {
                let p = pool.clone();
                tokio::spawn(async move {
                    p.run(|| std::thread::sleep(Duration::from_millis(20)))
                        .await
                })
            })
            .collect();
        for j in jobs {
            j.await.unwrap().unwrap();
        }
    }
}
