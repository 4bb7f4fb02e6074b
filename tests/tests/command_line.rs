//! The three binaries' command lines, run as a user would: `--help` lists
//! every key with its default and environment variable, `--version` names
//! the version and commit, `--check-config` validates and masks secrets,
//! and the exit codes are 0 and 2 as docs/configuration.md says. No broker
//! is started.

use std::process::{Command, Output};

use meshflow_tests::config_reference::{list_keys, row_key};
use meshflow_tests::process::binary;
use meshflow_tests::scrape;

const BINARIES: [&str; 3] = [
    "meshflow-producer",
    "meshflow-consumer",
    "meshflow-exporter",
];

fn run(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(binary(name))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_every_key_with_its_default_and_environment_variable() {
    for name in BINARIES {
        let out = run(name, &["--help"], &[]);
        assert_eq!(out.status.code(), Some(0), "{name} --help: {out:?}");
        let help = text(&out.stdout);
        let (_, rows) = list_keys(name);
        assert!(rows.len() >= 25, "{name}: {} keys", rows.len());
        for row in &rows {
            let key = row_key(row);
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let env = cells[2].trim_matches('`');
            let default = cells[3].trim_matches('`');
            let line = help
                .lines()
                .find(|l| l.split_whitespace().next() == Some(key))
                .unwrap_or_else(|| panic!("{name} --help has no line for {key}:\n{help}"));
            assert!(
                line.contains(env),
                "{name}: {key}'s variable {env} in {line:?}"
            );
            assert!(
                line.contains(default),
                "{name}: {key}'s default {default} in {line:?}"
            );
        }
        println!("{name} --help: {} keys", rows.len());
    }
}

#[test]
fn version_names_the_version_and_commit() {
    for name in BINARIES {
        let out = run(name, &["--version"], &[]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let line = text(&out.stdout);
        println!("{}", line.trim());
        let rest = line
            .trim()
            .strip_prefix(&format!("{name} {} (commit ", env!("CARGO_PKG_VERSION")))
            .unwrap_or_else(|| panic!("{name} --version: {line:?}"));
        let commit = rest.strip_suffix(')').expect("closing parenthesis");
        assert!(
            commit == "unknown"
                || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
            "{commit:?}"
        );
    }
}

#[test]
fn check_config_prints_the_effective_settings_with_secrets_masked() {
    let env = [
        ("MESHFLOW__KAFKA__SECURITY_PROTOCOL", "sasl_ssl"),
        ("MESHFLOW__KAFKA__SASL_MECHANISM", "PLAIN"),
        ("MESHFLOW__KAFKA__SASL_USERNAME", "svc"),
        ("MESHFLOW__KAFKA__SASL_PASSWORD", "hunter2-secret"),
        ("MESHFLOW__KAFKA__BOOTSTRAP_SERVERS", "broker-7:9093"),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("exporter.toml");
    std::fs::write(
        &file,
        "[exporter]\ngroups = [\"orders\"]\n[kafka.librdkafka]\n\"client.rack\" = \"r1\"\n\"ssl.key.password\" = \"pem-pass\"\n",
    )
    .expect("write config");
    for name in BINARIES {
        let mut args = vec!["--check-config"];
        if name == "meshflow-exporter" {
            args.extend(["--config", file.to_str().expect("UTF-8 path")]);
        }
        let out = run(name, &args, &env);
        let stdout = text(&out.stdout);
        println!(
            "{name} --check-config: exit {:?}\n{stdout}",
            out.status.code()
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            stdout.contains("kafka.bootstrap_servers = \"broker-7:9093\""),
            "{stdout}"
        );
        assert!(stdout.contains("kafka.sasl_username = \"svc\""), "{stdout}");
        assert!(
            stdout.contains("kafka.sasl_password = [redacted]"),
            "{stdout}"
        );
        assert!(!stdout.contains("hunter2"), "{stdout}");
        let (_, rows) = list_keys(name);
        assert_eq!(stdout.lines().count(), rows.len(), "one line per key");
        if name == "meshflow-exporter" {
            assert!(
                stdout.contains("exporter.groups = [\"orders\"]"),
                "{stdout}"
            );
            assert!(stdout.contains("\"client.rack\" = \"r1\""), "{stdout}");
            assert!(!stdout.contains("pem-pass"), "{stdout}");
        }
    }
}

#[test]
fn a_bad_value_exits_2_naming_the_key() {
    let cases = [
        (
            "meshflow-producer",
            "MESHFLOW__PRODUCER__RATE_PER_SEC",
            "0",
            "producer.rate_per_sec",
        ),
        (
            "meshflow-consumer",
            "MESHFLOW__CONSUMER__HEARTBEAT_INTERVAL",
            "10s",
            "consumer.heartbeat_interval",
        ),
        (
            "meshflow-exporter",
            "MESHFLOW__EXPORTER__POLL_INTERVAL",
            "10ms",
            "exporter.poll_interval",
        ),
    ];
    for (name, var, value, key) in cases {
        let out = run(name, &["--check-config"], &[(var, value)]);
        let stderr = text(&out.stderr);
        println!(
            "{name} {var}={value}: exit {:?}: {}",
            out.status.code(),
            stderr.trim()
        );
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(&format!("`{key}`")), "{stderr}");
        assert!(out.stdout.is_empty(), "nothing printed as settings");
    }
}

#[test]
fn two_clusters_with_one_name_exit_2_naming_the_entry() {
    let dir = std::env::temp_dir().join(format!("clusters-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("exporter.toml");
    let twice = "[[exporter.clusters]]\nname = \"b\"\n[[exporter.clusters]]\nname = \"b\"\n";
    std::fs::write(&path, twice).unwrap();
    let config = path.to_str().unwrap();
    let out = run(
        "meshflow-exporter",
        &["--config", config, "--check-config"],
        &[],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`exporter.clusters[1].name`"), "{stderr}");
    // Two names, and one cluster's SASL password, which the effective
    // settings never print.
    let secured = "\n[exporter.clusters.kafka]\nsecurity_protocol = \"sasl_plaintext\"\n\
        sasl_mechanism = \"PLAIN\"\nsasl_username = \"u\"\nsasl_password = \"hunter2\"\n";
    let two = format!("{}{secured}", twice.replacen("\"b\"", "\"a\"", 1));
    std::fs::write(&path, two).unwrap();
    let out = run(
        "meshflow-exporter",
        &["--config", config, "--check-config"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("exporter.clusters"), "{stdout}");
    assert!(!stdout.contains("hunter2"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_exit_2() {
    for name in BINARIES {
        for args in [&["--bogus"][..], &["--config"][..], &["extra"][..]] {
            let out = run(name, args, &[]);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {out:?}");
        }
        let out = run(name, &["--config", "/nonexistent/meshflow.toml"], &[]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(text(&out.stderr).contains("/nonexistent/meshflow.toml"));
    }
}

#[test]
fn version_and_build_info_say_the_same() {
    for name in BINARIES {
        let version = text(&run(name, &["--version"], &[]).stdout);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let listen = format!("127.0.0.1:{port}");
        // No broker: the endpoint answers while the client keeps trying.
        let mut child = Command::new(binary(name))
            .env_clear()
            .env("MESHFLOW__KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
            .env("MESHFLOW__HTTP__LISTEN", &listen)
            .envs(
                (name == "meshflow-exporter")
                    .then_some(("MESHFLOW__EXPORTER__DISCOVERY__ENABLED", "false")),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the service");
        let samples = meshflow_tests::stack_checks::wait(
            &format!("{name}'s /metrics"),
            std::time::Duration::from_secs(20),
            || scrape::samples(port),
        );
        let _ = child.kill();
        let _ = child.wait();
        let mut infos: Vec<&String> = samples
            .keys()
            .filter(|k| {
                k.starts_with("meshflow_service_build_info{")
                    || k.starts_with("meshflow_exporter_build_info{")
            })
            .collect();
        infos.sort();
        assert_eq!(
            infos.len(),
            if name == "meshflow-exporter" { 2 } else { 1 },
            "{infos:?}"
        );
        for info in infos {
            let label = |l: &str| {
                info.split(&format!("{l}=\""))
                    .nth(1)
                    .and_then(|v| v.split('"').next())
                    .unwrap_or_else(|| panic!("{l} in {info}"))
                    .to_string()
            };
            let expected = format!("{name} {} (commit {})", label("version"), label("commit"));
            assert_eq!(version.trim(), expected, "{info}");
            println!("{name}: {info} = --version {}", version.trim());
        }
    }
}

#[test]
fn the_stack_and_the_test_script_answer_help_and_refuse_unknown_commands() {
    let home = tempfile::tempdir().expect("temp dir");
    let root = meshflow_tests::repo_root();
    let script = |path: &str, args: &[&str]| {
        Command::new(root.join(path))
            .args(args)
            .env("MESHFLOW_HOME", home.path())
            .output()
            .unwrap_or_else(|e| panic!("run {path}: {e}"))
    };
    let help = script("deploy/local/stack", &["--help"]);
    assert_eq!(help.status.code(), Some(0), "{help:?}");
    let help = text(&help.stdout);
    for command in [
        "up",
        "status",
        "status --raw",
        "attack",
        "kill-broker",
        "kill-consumer",
        "down",
    ] {
        assert!(
            help.contains(&format!("deploy/local/stack {command} ")),
            "stack --help lacks {command}:\n{help}"
        );
    }
    for args in [&["frobnicate"][..], &[][..], &["status", "--bogus"][..]] {
        let out = script("deploy/local/stack", args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "stack {args:?}: {stderr}");
        assert!(
            stderr.contains("deploy/local/stack --help"),
            "stack {args:?}: {stderr}"
        );
    }
    let quick = script("scripts/test", &["--help"]);
    assert_eq!(quick.status.code(), Some(0), "{quick:?}");
    assert!(text(&quick.stdout).contains("scripts/test --quick"));
    let wrong = script("scripts/test", &["--fast"]);
    assert_eq!(wrong.status.code(), Some(2), "{wrong:?}");
    assert!(text(&wrong.stderr).contains("scripts/test --help"));
}
