//! Bounded pools for blocking work (store calls, bcrypt).

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::error::PoolError;

/// Runs blocking closures on tokio's blocking threads, at most `size` at a
/// time; callers beyond that wait asynchronously, never on an actor thread.
#[derive(Clone, Debug)]
pub struct BlockingPool {
    permits: Arc<Semaphore>,
}

impl BlockingPool {
    /// A pool running at most `size` closures at once (at least 1).
    pub fn new(size: usize) -> BlockingPool {
        BlockingPool {
            permits: Arc::new(Semaphore::new(size.max(1))),
        }
    }

    /// Runs `f` off the async threads and returns its result.
    pub async fn run<T, F>(&self, f: F) -> Result<T, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PoolError)?;
        // The permit goes with the closure and is released the moment it
        // returns, not when the caller next gets polled: a caller that is
        // slow to be polled (an actor busy in `ctx.wait`) must not keep a
        // finished job's place, or callers could wait on each other's
        // places in a cycle.
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|_| PoolError)
    }
}
