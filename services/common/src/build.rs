//! What a binary was built from: the same two values in `--version` and in
//! the build-info metric.

/// The workspace version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit, 12 hex digits, or `unknown` when built outside a git
/// checkout without `MESHFLOW_GIT_COMMIT`.
pub const COMMIT: &str = env!("MESHFLOW_GIT_COMMIT");

/// `--version`'s text after the binary's name: `0.1.0 (commit 0123456789ab)`.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MESHFLOW_GIT_COMMIT"),
    ")"
);
