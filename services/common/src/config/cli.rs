//! The command line of every service's `main`: `--config FILE`, `--help`
//! (with every key, its default and its environment variable), `--version`
//! (version and git commit), `--check-config` and `--list-keys`.
//!
//! Exit codes: 0 after `--help`, `--version`, `--list-keys` and a valid
//! `--check-config`; 2 for a bad argument or a bad configuration (one line
//! naming the key). A running service exits 0 after SIGTERM/SIGINT and 1
//! when its work failed (see `skeleton`).

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::reference::{self, KeyDoc};
use super::{load, ConfigError, Sources, Validate, ENV_PREFIX};
use crate::build;

/// What the command line asks for.
#[derive(Debug, Parser)]
#[command(
    about = "Settings come from the defaults, then the TOML file given with --config, then \
             environment variables MESHFLOW__SECTION__KEY. `--help` lists every key."
)]
struct Args {
    /// TOML file with settings.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration and print the effective settings (secrets
    /// masked), then exit: 0 when valid, 2 naming the key when not.
    #[arg(long)]
    check_config: bool,
    /// Print every configuration key as a Markdown table (key, environment
    /// variable, default, meaning) and exit 0.
    #[arg(long, conflicts_with = "check_config")]
    list_keys: bool,
}

/// Parses the command line and loads the configuration; exits for
/// `--help`, `--version`, `--list-keys`, `--check-config` and for any
/// error, with the codes above. `keys` documents every key (shared ones
/// first). For `main` functions only.
pub fn load_from_args<T>(binary: &'static str, list_keys: &[&str], keys: &[&[KeyDoc]]) -> T
where
    T: DeserializeOwned + Validate + Serialize,
{
    let defaults = load::<T>(Sources::with_env(None, &[], list_keys))
        .unwrap_or_else(|e| exit_config(binary, &format!("the defaults: {e}")));
    // A key list out of step with the structs fails the crates' unit tests;
    // here it spoils only the listings, never a service's start.
    let reference = reference::rows(&defaults, keys, list_keys);
    let listing = match &reference {
        Ok(rows) => reference::help(rows),
        Err(e) => format!("  (no listing: {e})\n"),
    };
    let command = Args::command()
        .name(binary)
        .bin_name(binary)
        .version(build::VERSION_LINE)
        .after_long_help(format!(
            "Configuration keys (key, default, environment variable; {ENV_PREFIX}__SECTION__KEY, \
             lists comma-separated; meanings in docs/configuration.md or --list-keys):\n{}\n\
             Exit codes: 0 done (or stopped by SIGTERM/SIGINT), 1 the service failed, \
             2 bad argument or configuration.",
            listing
        ));
    let args = command
        .try_get_matches()
        .and_then(|m| Args::from_arg_matches(&m))
        .unwrap_or_else(|e| e.exit());
    if args.list_keys {
        match &reference {
            Ok(rows) => print!("{}", reference::markdown(rows)),
            Err(e) => exit_config(binary, &e.to_string()),
        }
        std::process::exit(0);
    }
    let sources = Sources {
        file: args.config.as_deref(),
        env: None,
        list_keys,
    };
    let config: T = match load(sources) {
        Ok(c) => c,
        Err(e) => exit_config(binary, &e.to_string()),
    };
    if args.check_config {
        match reference::rows(&config, keys, list_keys) {
            Ok(rows) => print!("{}", reference::settings(&rows)),
            Err(e) => exit_config(binary, &e.to_string()),
        }
        eprintln!("{binary}: configuration valid");
        std::process::exit(0);
    }
    config
}

/// Prints one line and exits with [`ConfigError::EXIT_CODE`].
fn exit_config(binary: &str, message: &str) -> ! {
    eprintln!("{binary}: {message}");
    std::process::exit(ConfigError::EXIT_CODE)
}
