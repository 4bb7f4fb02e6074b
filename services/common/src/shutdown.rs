//! Shutdown on SIGTERM or SIGINT, and when a task dies.
//!
//! `main` owns one [`CancellationToken`] and passes it to every loop; a
//! signal cancels it, and each loop stops at a safe point. A second signal
//! exits at once, for an operator who does not want to wait.
//!
//! A background task that ends on its own (returns early or panics) must
//! not leave a process that looks healthy while its numbers are frozen.
//! Tasks spawned through a [`Supervisor`] cancel the same token when they
//! end before shutdown: every loop then stops as for a signal (flushing and
//! committing what it can), and the supervisor's [`Supervisor::result`]
//! names the task, so `main` exits non-zero and the supervisor or
//! Kubernetes starts a fresh process.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A supervised task ended before shutdown was requested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task {task} {how} before shutdown")]
pub struct TaskEnded {
    /// The task's name, as given to [`Supervisor::spawn`].
    pub task: &'static str,
    /// `returned` or `panicked`.
    pub how: &'static str,
}

/// Spawns tasks whose unexpected end stops the whole service.
#[derive(Debug, Clone)]
pub struct Supervisor {
    shutdown: CancellationToken,
    ended: Arc<Mutex<Option<TaskEnded>>>,
}

impl Supervisor {
    /// Supervises tasks under `shutdown`, which it cancels when one dies.
    pub fn new(shutdown: CancellationToken) -> Self {
        Supervisor {
            shutdown,
            ended: Arc::default(),
        }
    }

    /// Spawns `task` as `name`. If it ends, returning or panicking, before
    /// `shutdown` was cancelled, the first such end is recorded and
    /// `shutdown` is cancelled. The handle resolves when the task has ended.
    pub fn spawn<F>(&self, name: &'static str, task: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let inner = tokio::spawn(task);
        let watcher = self.clone();
        tokio::spawn(async move {
            let how = match inner.await {
                Ok(()) => "returned",
                Err(e) if e.is_panic() => "panicked",
                Err(_) => "was cancelled",
            };
            if !watcher.shutdown.is_cancelled() {
                tracing::error!(task = name, how, "task ended before shutdown; stopping");
                if let Ok(mut ended) = watcher.ended.lock() {
                    ended.get_or_insert(TaskEnded { task: name, how });
                }
                watcher.shutdown.cancel();
            }
        })
    }

    /// The token it cancels when a task dies.
    pub fn token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// `Err` naming the first task that ended before shutdown, if any did.
    pub fn result(&self) -> Result<(), TaskEnded> {
        match self.ended.lock().ok().and_then(|ended| ended.clone()) {
            Some(ended) => Err(ended),
            None => Ok(()),
        }
    }
}

/// Cancels the returned token on the first SIGTERM or SIGINT; exits the
/// process with status 130 on the second.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let fired = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        fired.cancel();
        wait_for_signal().await;
        tracing::warn!("second signal, exiting now");
        std::process::exit(130);
    });
    token
}

/// Resolves on the next SIGTERM or SIGINT.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A shutdown token and a supervisor under it.
    fn supervised() -> (CancellationToken, Supervisor) {
        let shutdown = CancellationToken::new();
        (shutdown.clone(), Supervisor::new(shutdown))
    }

    #[tokio::test]
    async fn a_task_that_returns_early_stops_the_service_and_is_named() {
        let (shutdown, supervisor) = supervised();
        let long = supervisor.spawn("long", shutdown.clone().cancelled_owned());
        let short = supervisor.spawn("short", async {});
        tokio::time::timeout(Duration::from_secs(5), async {
            short.await.expect("watcher");
            long.await.expect("watcher");
        })
        .await
        .expect("every task stops once one dies");
        assert!(shutdown.is_cancelled());
        assert_eq!(
            supervisor.result(),
            Err(TaskEnded {
                task: "short",
                how: "returned"
            })
        );
    }

    #[tokio::test]
    async fn a_panicking_task_stops_the_service() {
        let (shutdown, supervisor) = supervised();
        let handle = supervisor.spawn("reader", async { panic!("boom") });
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .expect("in time")
            .expect("watcher");
        assert!(shutdown.is_cancelled());
        let ended = supervisor.result().expect_err("recorded");
        assert_eq!((ended.task, ended.how), ("reader", "panicked"));
        assert_eq!(ended.to_string(), "task reader panicked before shutdown");
    }

    #[tokio::test]
    async fn tasks_ending_at_shutdown_are_fine() {
        let (shutdown, supervisor) = supervised();
        let handle = supervisor.spawn("loop", shutdown.clone().cancelled_owned());
        shutdown.cancel();
        handle.await.expect("watcher");
        assert_eq!(supervisor.result(), Ok(()));
    }
}
