//! Password hashing is memory-hard on purpose (argon2id, 19 MiB per check), so an unbounded
//! number of checks at once is a way to exhaust the server's memory without knowing any
//! account. Every password check and hash goes through here: at most one per core runs at a
//! time, a bounded number wait their turn for a bounded time, and the rest are told at once to
//! come back later (the surfaces answer 429 with `Retry-After`).
//!
//! The checks run on a few threads of their own rather than on tokio's blocking pool: the
//! allocator keeps each thread's freed 19 MiB for reuse, so memory stays at one check per
//! worker thread however many requests came, instead of one per thread the pool happened to
//! start.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};

type Job = Box<dyn FnOnce() + Send>;

/// How long a caller may wait for its turn, and what `Retry-After` says when it could not.
pub const RETRY_AFTER_SECONDS: u64 = 5;

/// The work could not start: too many checks are running or waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// A bound on concurrent password work.
pub struct PasswordWork {
    permits: Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
    wait: Duration,
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl PasswordWork {
    /// `concurrent` worker threads, at most `max_waiting` callers waiting, each at most `wait`.
    pub fn new(concurrent: usize, max_waiting: usize, wait: Duration) -> Self {
        let concurrent = concurrent.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..concurrent {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("accord-password-{n}"))
                .spawn(move || loop {
                    // The lock is held only while taking a job, never while running it.
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        // A panicking check must not take its worker with it; its caller sees Busy.
                        Ok(job) => {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                        Err(_) => return, // the sender is gone: shut down
                    }
                })
                .expect("spawning a password worker thread");
        }
        PasswordWork {
            permits: Semaphore::new(concurrent),
            waiting: AtomicUsize::new(0),
            max_waiting,
            wait,
            jobs: Mutex::new(tx),
        }
    }

    /// Runs `f` on the blocking pool once a slot is free; `Busy` when the queue is full or the
    /// wait ran out.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy);
        }
        let permit = tokio::time::timeout(self.wait, self.permits.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let _permit = match permit {
            Ok(Ok(p)) => p,
            _ => return Err(Busy),
        };
        metrics::counter!("accord_password_checks_total").increment(1);
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(f());
        });
        self.jobs.lock().map_err(|_| Busy)?.send(job).map_err(|_| Busy)?;
        result.await.map_err(|_| Busy)
    }
}

/// The server's bound: one check per core, 32 waiting per core, each for at most
/// `RETRY_AFTER_SECONDS`.
pub fn global() -> &'static PasswordWork {
    static WORK: LazyLock<PasswordWork> = LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        PasswordWork::new(cores, 32 * cores, Duration::from_secs(RETRY_AFTER_SECONDS))
    });
    &WORK
}

/// `verify_password` within the bound.
pub async fn verify(password: String, phc: String) -> Result<bool, Busy> {
    global().run(move || crate::crypto::verify_password(&password, &phc)).await
}

/// `hash_password` within the bound.
pub async fn hash(password: String) -> Result<String, Busy> {
    global().run(move || crate::crypto::hash_password(&password)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Blocks the pool's `n` workers until `release` gets `n` messages; returns once all run.
    async fn occupy(
        work: &Arc<PasswordWork>,
        n: usize,
    ) -> (mpsc::Sender<()>, Vec<tokio::task::JoinHandle<Result<(), Busy>>>) {
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let started = Arc::new(AtomicUsize::new(0));
        let mut jobs = Vec::new();
        for _ in 0..n {
            let (work, gate, started) = (work.clone(), gate.clone(), started.clone());
            jobs.push(tokio::spawn(async move {
                work.run(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    let _ = gate.lock().unwrap().recv();
                })
                .await
            }));
        }
        for _ in 0..1000 {
            if started.load(Ordering::SeqCst) == n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(started.load(Ordering::SeqCst), n, "the workers did not start");
        (release, jobs)
    }

    async fn until_waiting(work: &PasswordWork, n: usize) {
        for _ in 0..1000 {
            if work.waiting.load(Ordering::SeqCst) == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} waiting, not {n}", work.waiting.load(Ordering::SeqCst));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_the_bound_runs_a_few_wait_and_the_rest_are_refused_at_once() {
        let work = Arc::new(PasswordWork::new(2, 3, Duration::from_secs(60)));
        let (release, running) = occupy(&work, 2).await;
        // Both workers are busy: three callers wait their turn...
        let waiters: Vec<_> = (0..3)
            .map(|i| {
                let work = work.clone();
                tokio::spawn(async move { work.run(move || i).await })
            })
            .collect();
        until_waiting(&work, 3).await;
        // ...and the next is told at once to come back.
        assert_eq!(work.run(|| 99).await, Err(Busy));
        for _ in 0..2 {
            release.send(()).unwrap();
        }
        for job in running {
            assert_eq!(job.await.unwrap(), Ok(()));
        }
        let mut done: Vec<_> = Vec::new();
        for w in waiters {
            done.push(w.await.unwrap().unwrap());
        }
        done.sort();
        assert_eq!(done, [0, 1, 2], "the waiters ran once a worker was free");
        assert_eq!(work.run(|| 7).await, Ok(7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wait_that_runs_out_is_busy_and_a_panic_keeps_the_worker() {
        let work = Arc::new(PasswordWork::new(1, 10, Duration::from_millis(50)));
        let (release, running) = occupy(&work, 1).await;
        assert_eq!(work.run(|| ()).await, Err(Busy), "the only worker is busy past the wait");
        release.send(()).unwrap();
        assert_eq!(running.into_iter().next().unwrap().await.unwrap(), Ok(()));
        // A check that panics is the caller's Busy, and the worker goes on.
        assert_eq!(work.run(|| -> u8 { panic!("a broken check") }).await, Err(Busy));
        assert_eq!(work.run(|| 7).await, Ok(7), "free again");
    }
}
