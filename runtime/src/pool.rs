//! Worker threads for the parts of a step that split over elements (`--threads`).
//!
//! A step of a benchmark network takes microseconds, so handing work to a sleeping thread
//! (tens of microseconds to wake) would cost more than it saves: workers spin while steps
//! keep coming and sleep after a millisecond without work. `run` gives task `k` of `tasks` to
//! worker `k - 1` (task 0 runs on the calling thread) and returns once all are done, so a
//! task may borrow from the caller's stack.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The task of one `run`: a borrowed closure with its lifetime erased (`run` outlives every
/// use of it).
#[derive(Clone, Copy)]
struct Task(*const (dyn Fn(usize) + Sync));

// SAFETY: the closure behind the pointer is `Sync`, and `run` keeps it alive until every
// worker has finished calling it.
unsafe impl Send for Task {}

struct Shared {
    /// Bumped once per `run`; a worker runs the task of each new generation once.
    generation: AtomicU64,
    task: Mutex<Option<Task>>,
    /// Tasks of this generation not yet finished.
    pending: AtomicUsize,
    /// How many tasks this generation has (workers above it sit it out).
    tasks: AtomicUsize,
    quit: AtomicBool,
    /// Sleeping workers wait here for the next generation.
    wake: Condvar,
    sleepers: Mutex<usize>,
    /// A task panicked (its panic is reported by `run`).
    panicked: AtomicBool,
}

/// A fixed set of worker threads (none for one thread).
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

/// How long an idle worker spins before it sleeps.
const SPIN: Duration = Duration::from_millis(1);

impl Pool {
    /// A pool running tasks on `threads` threads: the caller's and `threads - 1` workers.
    pub fn new(threads: usize) -> Pool {
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            task: Mutex::new(None),
            pending: AtomicUsize::new(0),
            tasks: AtomicUsize::new(0),
            quit: AtomicBool::new(false),
            wake: Condvar::new(),
            sleepers: Mutex::new(0),
            panicked: AtomicBool::new(false),
        });
        let workers = (1..threads.max(1))
            .map(|k| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("neurograph-{k}"))
                    .spawn(move || worker(&shared, k))
                    .expect("spawn a worker thread")
            })
            .collect();
        Pool { shared, workers }
    }

    /// Threads tasks run on, the caller's included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// `f(0)`, …, `f(tasks - 1)` (at most `threads()` tasks), task 0 on this thread, the
    /// others on the workers; returns when all have finished.
    pub fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        let tasks = tasks.min(self.threads());
        if tasks <= 1 {
            f(0);
            return;
        }
        let s = &*self.shared;
        // SAFETY: only the pointer's lifetime is erased; `run` waits below until `pending`
        // is zero, that is until no worker uses the closure any more.
        let task = Task(unsafe {
            std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const (dyn Fn(usize) + Sync)>(
                f,
            )
        });
        *s.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        s.tasks.store(tasks, Ordering::Relaxed);
        s.pending.store(tasks - 1, Ordering::Relaxed);
        s.generation.fetch_add(1, Ordering::Release);
        if *s.sleepers.lock().unwrap_or_else(|e| e.into_inner()) > 0 {
            s.wake.notify_all();
        }
        let caller = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(0)));
        while s.pending.load(Ordering::Acquire) > 0 {
            std::hint::spin_loop();
        }
        *s.task.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Err(payload) = caller {
            std::panic::resume_unwind(payload);
        }
        if s.panicked.swap(false, Ordering::Relaxed) {
            panic!("a worker thread's task panicked");
        }
    }
}

fn worker(s: &Shared, k: usize) {
    let mut seen = 0u64;
    let mut idle_since = Instant::now();
    loop {
        let generation = s.generation.load(Ordering::Acquire);
        if s.quit.load(Ordering::Relaxed) {
            return;
        }
        if generation == seen {
            if idle_since.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            let mut sleepers = s.sleepers.lock().unwrap_or_else(|e| e.into_inner());
            *sleepers += 1;
            // Checked under the lock `run` takes before it notifies: no wake-up is lost.
            while s.generation.load(Ordering::Acquire) == seen && !s.quit.load(Ordering::Relaxed) {
                sleepers = s.wake.wait(sleepers).unwrap_or_else(|e| e.into_inner());
            }
            *sleepers -= 1;
            continue;
        }
        seen = generation;
        if k < s.tasks.load(Ordering::Relaxed) {
            let task = *s.task.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(Task(f)) = task {
                // SAFETY: `run` keeps the closure alive until `pending` reaches zero, which
                // happens only after this call.
                let f = unsafe { &*f };
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(k))).is_err() {
                    s.panicked.store(true, Ordering::Relaxed);
                }
            }
            s.pending.fetch_sub(1, Ordering::Release);
        }
        idle_since = Instant::now();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.quit.store(true, Ordering::Relaxed);
        {
            let _sleepers = self.shared.sleepers.lock();
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// `0..n` split into `parts` ranges of whole pairs of elements (so that every range but the
/// last starts and ends on an even index, as the two-lane loops expect), in order.
pub fn split(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.max(1);
    let pairs = n.div_ceil(2);
    (0..parts)
        .map(|k| {
            let a = (pairs * k / parts * 2).min(n);
            let b = (pairs * (k + 1) / parts * 2).min(n);
            a..b
        })
        .filter(|r| !r.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_per_run() {
        let pool = Pool::new(3);
        let counts: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
        for _ in 0..2_000 {
            pool.run(3, &|k| {
                counts[k].fetch_add(1, Ordering::Relaxed);
            });
        }
        for c in &counts {
            assert_eq!(c.load(Ordering::Relaxed), 2_000);
        }
        // After the workers have gone to sleep, a run still wakes them.
        std::thread::sleep(Duration::from_millis(20));
        pool.run(3, &|k| {
            counts[k].fetch_add(1, Ordering::Relaxed);
        });
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 2_001));
    }

    #[test]
    fn ranges_cover_in_order_on_pairs() {
        for n in [0, 1, 2, 3, 7, 4000, 4001] {
            for parts in 1..=4 {
                let r = split(n, parts);
                let flat: Vec<usize> = r.iter().flat_map(|r| r.clone()).collect();
                assert_eq!(flat, (0..n).collect::<Vec<_>>(), "{n} in {parts}");
                assert!(r.iter().all(|r| r.start % 2 == 0));
            }
        }
    }

    #[test]
    fn a_panicking_task_is_reported() {
        let pool = Pool::new(2);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.run(2, &|k| assert!(k == 0, "task {k}"))
        }));
        assert!(r.is_err());
        // The pool still works.
        let done = AtomicUsize::new(0);
        pool.run(2, &|_| {
            done.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(done.load(Ordering::Relaxed), 2);
    }
}
