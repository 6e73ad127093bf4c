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

/// One `run`'s work, published whole under a lock: a worker takes the generation, the task and
/// the task count from the same snapshot, so it never runs one run's task as another's.
#[derive(Clone, Copy)]
struct Job {
    generation: u64,
    task: Option<Task>,
    /// How many tasks this run has (workers at or above it sit it out).
    tasks: usize,
}

struct Shared {
    /// `job.generation`, readable without the lock: workers spin on it.
    generation: AtomicU64,
    job: Mutex<Job>,
    /// Tasks of the current generation not yet finished.
    pending: AtomicUsize,
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
            job: Mutex::new(Job {
                generation: 0,
                task: None,
                tasks: 0,
            }),
            pending: AtomicUsize::new(0),
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
    /// others on the workers; returns when all have finished. `&mut self`: one run at a time,
    /// and none from inside a task.
    pub fn run(&mut self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
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
        {
            let mut job = s.job.lock().unwrap_or_else(|e| e.into_inner());
            // No worker of the previous run is left (`pending` reached zero), and none takes
            // this job before the lock is released, by which time all of it is in place.
            s.pending.store(tasks - 1, Ordering::Relaxed);
            *job = Job {
                generation: job.generation + 1,
                task: Some(task),
                tasks,
            };
            s.generation.store(job.generation, Ordering::Release);
        }
        if *s.sleepers.lock().unwrap_or_else(|e| e.into_inner()) > 0 {
            s.wake.notify_all();
        }
        let caller = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(0)));
        let mut spins = 0u32;
        while s.pending.load(Ordering::Acquire) > 0 {
            relax(&mut spins);
        }
        s.job.lock().unwrap_or_else(|e| e.into_inner()).task = None;
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
    let mut spins = 0u32;
    loop {
        let generation = s.generation.load(Ordering::Acquire);
        if s.quit.load(Ordering::Relaxed) {
            return;
        }
        if generation == seen {
            if idle_since.elapsed() < SPIN {
                relax(&mut spins);
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
        // The job as published: its own generation, task and count, together.
        let job = *s.job.lock().unwrap_or_else(|e| e.into_inner());
        seen = job.generation;
        if k < job.tasks {
            if let Some(Task(f)) = job.task {
                // SAFETY: `run` keeps the closure alive until `pending` reaches zero, which
                // happens only after this call (this worker is one of the `tasks - 1` it
                // waits for: `k < tasks` of this very job).
                let f = unsafe { &*f };
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(k))).is_err() {
                    s.panicked.store(true, Ordering::Relaxed);
                }
                s.pending.fetch_sub(1, Ordering::Release);
            }
        }
        idle_since = Instant::now();
        spins = 0;
    }
}

/// One turn of a wait loop: a spin hint, and every 64th turn the processor to another thread
/// (with more threads than cores, the one waited for may need it).
fn relax(spins: &mut u32) {
    *spins = spins.wrapping_add(1);
    if (*spins).is_multiple_of(64) {
        std::thread::yield_now();
    } else {
        std::hint::spin_loop();
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
        let mut pool = Pool::new(3);
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

    /// Runs of different sizes in turn (a worker that sits one out must not take the next
    /// run's task as this one's): every task of every run exactly once.
    #[test]
    fn runs_of_different_sizes_do_not_mix() {
        let mut pool = Pool::new(4);
        let counts: Vec<AtomicUsize> = (0..4).map(|_| AtomicUsize::new(0)).collect();
        let mut want = [0usize; 4];
        for i in 0..1_000 {
            let tasks = [2, 4, 3, 1][i % 4];
            pool.run(tasks, &|k| {
                counts[k].fetch_add(1, Ordering::Relaxed);
            });
            for w in want.iter_mut().take(tasks) {
                *w += 1;
            }
        }
        let got: Vec<usize> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        assert_eq!(got, want);
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
        let mut pool = Pool::new(2);
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
