//! Shutdown on SIGTERM or SIGINT.
//!
//! `main` owns one [`CancellationToken`] and passes it to every loop; a
//! signal cancels it, and each loop stops at a safe point. A second signal
//! exits at once, for an operator who does not want to wait.

use tokio_util::sync::CancellationToken;

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
