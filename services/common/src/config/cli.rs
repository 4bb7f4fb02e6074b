//! The command line of every service's `main`.

use serde::de::DeserializeOwned;

use super::{load, ConfigError, Sources, Validate, ENV_PREFIX};

/// Reads `--config PATH` from the command line, loads the configuration and
/// exits with code 2 and one line on stderr if it is bad. `--help` prints
/// usage and exits 0. For `main` functions only.
pub fn load_from_args<T>(binary: &str, list_keys: &[&str]) -> T
where
    T: DeserializeOwned + Validate,
{
    let mut args = std::env::args().skip(1);
    let mut file: Option<std::path::PathBuf> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => match args.next() {
                Some(p) => file = Some(p.into()),
                None => exit_config(binary, "--config needs a file path"),
            },
            "--help" | "-h" => {
                println!(
                    "usage: {binary} [--config FILE.toml]\n\nSettings: defaults, then the TOML file, then \
                     environment variables {ENV_PREFIX}__SECTION__KEY. See the README's configuration reference."
                );
                std::process::exit(0);
            }
            other => match other.strip_prefix("--config=") {
                Some(p) => file = Some(p.into()),
                None => exit_config(
                    binary,
                    &format!("unknown argument {other:?}; usage: {binary} [--config FILE]"),
                ),
            },
        }
    }
    let sources = Sources {
        file: file.as_deref(),
        env: None,
        list_keys,
    };
    match load(sources) {
        Ok(c) => c,
        Err(e) => exit_config(binary, &e.to_string()),
    }
}

/// Prints one line and exits with [`ConfigError::EXIT_CODE`].
fn exit_config(binary: &str, message: &str) -> ! {
    eprintln!("{binary}: {message}");
    std::process::exit(ConfigError::EXIT_CODE)
}
