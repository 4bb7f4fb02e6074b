use super::*;

/// Parses each JSON text as a `T` and checks what comes of it: the wanted
/// value, which also validates; or the key its validation names; or
/// `parse` for a text that does not parse.
fn check_from_text<T>(cases: &[(&str, Result<T, &str>)], validate: fn(&T) -> Result<(), Error>)
where
    T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    for (text, want) in cases {
        match (serde_json::from_str::<T>(text), want) {
            (Ok(config), Ok(want)) => {
                assert_eq!(&config, want, "{text}");
                assert_eq!(validate(&config), Ok(()), "{text}");
            }
            (Ok(config), Err(key)) => match validate(&config) {
                Err(Error::Config { key: got, .. }) => assert_eq!(got, *key, "{text}"),
                other => panic!("{text}: {other:?}"),
            },
            (Err(_), Err(key)) => assert_eq!(*key, "parse", "{text}"),
            (Err(e), Ok(_)) => panic!("{text}: {e}"),
        }
    }
}

#[test]
fn defaults_are_valid() {
    assert_eq!(AccountingConfig::default().validate(), Ok(()));
    assert_eq!(StatusConfig::default().validate(), Ok(()));
}

#[test]
fn accounting_from_text() {
    let cases: &[(&str, Result<AccountingConfig, &str>)] = &[
        ("{}", Ok(AccountingConfig::default())),
        (
            r#"{"grace":"10s","sla":"2m","idle_timeout":"10m","max_producers":5,"window_bits":1024}"#,
            Ok(AccountingConfig {
                grace: Duration::from_secs(10),
                sla: Duration::from_secs(120),
                idle_timeout: Duration::from_secs(600),
                max_producers: 5,
                window_bits: 1024,
                ..AccountingConfig::default()
            }),
        ),
        (r#"{"grace":"0s"}"#, Err("exporter.grace")),
        (r#"{"sla":"0s"}"#, Err("exporter.sla")),
        (r#"{"idle_timeout":"60s"}"#, Err("exporter.idle_timeout")),
        (r#"{"max_producers":0}"#, Err("exporter.max_producers")),
        (r#"{"window_bits":1000}"#, Err("exporter.window_bits")),
        (r#"{"window_bits":32}"#, Err("exporter.window_bits")),
        (r#"{"max_clock_skew":"0s"}"#, Err("exporter.max_clock_skew")),
        (
            r#"{"max_clock_skew":"1h","max_record_age":"30m"}"#,
            Err("exporter.max_record_age"),
        ),
        (r#"{"grace":"soon"}"#, Err("parse")),
        (r#"{"graze":"30s"}"#, Err("parse")),
    ];
    check_from_text(cases, AccountingConfig::validate);
}

#[test]
fn status_from_text() {
    let cases: &[(&str, Result<StatusConfig, &str>)] = &[
        ("{}", Ok(StatusConfig::default())),
        (
            r#"{"window":"1m","min_samples":3,"stop_after":"2m","stall_min_lag":5,"warn_min_growth":7}"#,
            Ok(StatusConfig {
                window: Duration::from_secs(60),
                min_samples: 3,
                stop_after: Duration::from_secs(120),
                stall_min_lag: 5,
                warn_min_growth: 7,
            }),
        ),
        (r#"{"window":"0s"}"#, Err("exporter.status.window")),
        (r#"{"stop_after":"0s"}"#, Err("exporter.status.stop_after")),
        (r#"{"min_samples":1}"#, Err("exporter.status.min_samples")),
        (
            r#"{"min_samples":100000}"#,
            Err("exporter.status.min_samples"),
        ),
        (r#"{"windows":"1m"}"#, Err("parse")),
    ];
    check_from_text(cases, StatusConfig::validate);
}

#[test]
fn errors_name_key_value_and_what_is_allowed() {
    let config = AccountingConfig {
        idle_timeout: Duration::from_secs(45),
        ..AccountingConfig::default()
    };
    let message = config.validate().unwrap_err().to_string();
    assert_eq!(
        message,
        "invalid value \"45s\" for exporter.idle_timeout: \
         a duration longer than both exporter.grace and exporter.sla"
    );
}

mod service {
    use super::super::*;
    use meshflow_common::config::{load, Sources};
    use meshflow_common::testing::{assert_each_invalid, assert_each_refused, config_from};

    fn from_env(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        config_from(vars, LIST_KEYS)
    }

    #[test]
    fn every_key_is_documented_once_and_every_documented_key_exists() {
        let c = from_env(&[]).unwrap();
        meshflow_common::testing::assert_keys_documented_once(&c, KEYS, LIST_KEYS);
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = from_env(&[]).unwrap();
        let e = &c.exporter;
        assert_eq!(e.topics, ["meshflow.events"]);
        assert_eq!(e.max_topics, 10);
        assert_eq!(e.judged_bound(), 1);
        assert_eq!(e.receipts_topic, "meshflow.receipts");
        assert_eq!(e.groups, ["meshflow"]);
        assert_eq!(e.group_id, "meshflow-exporter");
        assert_eq!(e.poll_interval, Duration::from_secs(5));
        assert_eq!(e.accounting(), AccountingConfig::default());
        assert_eq!(e.status, StatusConfig::default());
        assert_eq!(c.http.listen.port(), 9466);
        assert_eq!(c.kafka.bootstrap_servers, "localhost:9092");
    }

    #[test]
    fn env_sets_lists_durations_and_the_status_table() {
        let c = from_env(&[
            ("MESHFLOW__EXPORTER__GROUPS", "orders,billing"),
            ("MESHFLOW__EXPORTER__GRACE", "3s"),
            ("MESHFLOW__EXPORTER__SLA", "5s"),
            ("MESHFLOW__EXPORTER__POLL_INTERVAL", "500ms"),
            ("MESHFLOW__EXPORTER__GROUP_ID", "exp-1"),
            ("MESHFLOW__EXPORTER__STATUS__STOP_AFTER", "20s"),
            ("MESHFLOW__EXPORTER__STATUS__MIN_SAMPLES", "4"),
            ("MESHFLOW__EXPORTER__WINDOW_BITS", "1024"),
            ("MESHFLOW__EXPORTER__CLUSTER__BROKERS", "1"),
            ("MESHFLOW__EXPORTER__CLUSTER__MIN_INSYNC_REPLICAS", "1"),
        ])
        .unwrap();
        let e = &c.exporter;
        assert_eq!(e.groups, ["orders", "billing"]);
        assert_eq!(e.grace, Duration::from_secs(3));
        assert_eq!(e.sla, Duration::from_secs(5));
        assert_eq!(e.poll_interval, Duration::from_millis(500));
        assert_eq!(e.group_id, "exp-1");
        assert_eq!(e.status.stop_after, Duration::from_secs(20));
        assert_eq!(e.status.min_samples, 4);
        assert_eq!(e.accounting().window_bits, 1024);
        assert_eq!((e.cluster.brokers, e.cluster.min_insync_replicas), (1, 1));
        // A single group is a one-element list.
        let c = from_env(&[("MESHFLOW__EXPORTER__GROUPS", "solo")]).unwrap();
        assert_eq!(c.exporter.groups, ["solo"]);
    }

    fn from_file(name: &str, text: &str) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!("exporter-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let loaded = load(Sources::with_env(Some(&path), &[], LIST_KEYS));
        std::fs::remove_file(&path).unwrap();
        loaded
    }

    #[test]
    fn a_file_sets_the_same_keys() {
        let c = from_file(
            "keys.toml",
            "[exporter]\ngroups = [\"a\", \"b\"]\ngrace = \"10s\"\n\n[exporter.status]\nwindow = \"2m\"\n",
        )
        .unwrap();
        assert_eq!(c.exporter.groups, ["a", "b"]);
        assert_eq!(c.exporter.grace, Duration::from_secs(10));
        assert_eq!(c.exporter.status.window, Duration::from_secs(120));
    }

    #[test]
    fn further_clusters_come_from_the_file_each_with_its_own_settings() {
        let c = from_env(&[]).unwrap();
        assert_eq!(c.exporter.cluster_name, "default");
        assert!(c.exporter.clusters.is_empty(), "one cluster unless told");
        assert_eq!(c.exporter.max_clusters, 4);
        let text = "[exporter]\ncluster_name = \"eu\"\n\n\
            [[exporter.clusters]]\nname = \"us\"\n\
            [exporter.clusters.kafka]\nbootstrap_servers = \"us-kafka:9092\"\n\
            [exporter.clusters.discovery]\nallow_groups = \"orders-.*\"\n\
            [exporter.clusters.cluster]\nbrokers = 1\nmin_insync_replicas = 1\n\n\
            [[exporter.clusters]]\nname = \"ap\"\n";
        let c = from_file("clusters.toml", text).unwrap();
        let e = &c.exporter;
        assert_eq!(e.cluster_name, "eu");
        let names: Vec<&str> = e.clusters.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["us", "ap"]);
        assert_eq!(e.clusters[0].kafka.bootstrap_servers, "us-kafka:9092");
        assert_eq!(e.clusters[0].discovery.allow_groups, "orders-.*");
        assert_eq!(e.clusters[0].cluster.brokers, 1);
        assert_eq!(
            e.clusters[1].kafka,
            meshflow_common::config::KafkaConfig::default()
        );
        assert_eq!(
            c.kafka.bootstrap_servers, "localhost:9092",
            "home untouched"
        );

        let key = |text: &str| match from_file("bad-clusters.toml", text) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("{text}: {other:?}"),
        };
        let twice = "[[exporter.clusters]]\nname = \"us\"\n[[exporter.clusters]]\nname = \"us\"\n";
        assert_eq!(key(twice), "exporter.clusters[1].name");
        let home = "[[exporter.clusters]]\nname = \"default\"\n";
        assert_eq!(key(home), "exporter.clusters[0].name");
        let spaced = "[[exporter.clusters]]\nname = \"u s\"\n";
        assert_eq!(key(spaced), "exporter.clusters[0].name");
        let many = "[exporter]\nmax_clusters = 2\n[[exporter.clusters]]\nname = \"a\"\n\
            [[exporter.clusters]]\nname = \"b\"\n";
        assert_eq!(key(many), "exporter.clusters");
        let owned = "[[exporter.clusters]]\nname = \"a\"\n\
            [exporter.clusters.kafka.librdkafka]\n\"group.id\" = \"x\"\n";
        assert!(
            key(owned).starts_with("exporter.clusters[0].kafka."),
            "{}",
            key(owned)
        );
        // Each further cluster's poll counts against the memory budget:
        // two groups' accounting (about 333 MiB) leaves room for one
        // cluster at the default 100,000 partitions (33 MiB), not two.
        let budget = |clusters: &str| {
            let mut text = "[exporter]\ngroups = [\"a\", \"b\"]\n".to_string();
            for name in clusters.split(',') {
                text.push_str(&format!("[[exporter.clusters]]\nname = \"{name}\"\n"));
            }
            from_file("budget.toml", &text)
        };
        assert!(budget("us").is_ok(), "{:?}", budget("us"));
        let refused = budget("us,ap")
            .expect_err("two further clusters do not fit")
            .to_string();
        assert!(
            refused.contains("`exporter.memory_budget_mib`"),
            "{refused}"
        );
        assert!(refused.contains("at least 399 MiB"), "{refused}");
        assert!(
            refused.contains("plus 65 MiB for the 2 exporter.clusters"),
            "{refused}"
        );
        let unknown = "[[exporter.clusters]]\nname = \"a\"\nbrokers = 3\n";
        assert!(matches!(
            from_file("unknown.toml", unknown),
            Err(ConfigError::Load(_))
        ));
    }

    #[test]
    fn a_memory_budget_too_small_for_the_worst_case_is_refused_with_the_figure() {
        let text = from_env(&[
            ("MESHFLOW__EXPORTER__MAX_PRODUCERS", "100000"),
            ("MESHFLOW__EXPORTER__MEMORY_BUDGET_MIB", "384"),
        ])
        .expect_err("100,000 producers do not fit 384 MiB")
        .to_string();
        assert!(text.contains("`exporter.memory_budget_mib`"), "{text}");
        assert!(text.contains("at least 2"), "names the figure: {text}");
        let ok = from_env(&[
            ("MESHFLOW__EXPORTER__MAX_PRODUCERS", "100000"),
            ("MESHFLOW__EXPORTER__WINDOW_BITS", "1024"),
        ]);
        assert!(ok.is_ok(), "small windows fit: {ok:?}");
        // The default configuration fits its default budget with two groups.
        let two = from_env(&[("MESHFLOW__EXPORTER__GROUPS", "a,b")]);
        assert!(two.is_ok(), "{two:?}");
    }

    #[test]
    fn judged_topics_are_a_list_of_names_and_patterns() {
        let c = from_env(&[
            ("MESHFLOW__EXPORTER__TOPICS", "orders,^pay.*"),
            ("MESHFLOW__EXPORTER__MEMORY_BUDGET_MIB", "4096"),
        ])
        .unwrap();
        assert_eq!(c.exporter.topics, ["orders", "^pay.*"]);
        assert_eq!(c.exporter.judged_bound(), 10, "a pattern: max_topics");
        let matcher = c.exporter.topic_matcher().unwrap();
        assert!(matcher.matches("payments") && matcher.matches("orders"));
        assert!(!matcher.matches("orders-2"));
        let c = from_env(&[
            ("MESHFLOW__EXPORTER__TOPICS", "a,b"),
            ("MESHFLOW__EXPORTER__MEMORY_BUDGET_MIB", "1024"),
        ])
        .unwrap();
        assert_eq!(c.exporter.judged_bound(), 2, "literals only: their number");
        let c = from_file(
            "topics.toml",
            "[exporter]\ntopics = [\"a\", \"^b.*\"]\nmax_topics = 3\nmemory_budget_mib = 1024\n",
        )
        .unwrap();
        assert_eq!(c.exporter.topics, ["a", "^b.*"]);
        assert_eq!(c.exporter.judged_bound(), 3);
    }

    #[test]
    fn the_probe_topic_is_never_judged_nor_a_judged_topic() {
        let c = from_env(&[
            ("MESHFLOW__EXPORTER__TOPICS", "^meshflow\\..*"),
            ("MESHFLOW__EXPORTER__MEMORY_BUDGET_MIB", "4096"),
        ])
        .unwrap();
        let matcher = c.exporter.topic_matcher().unwrap();
        assert!(matcher.matches("meshflow.events"));
        assert!(!matcher.matches("meshflow.probe"), "the probe's own topic");
        assert!(!matcher.matches("meshflow.receipts"));
        let refused = from_env(&[
            ("MESHFLOW__EXPORTER__TOPICS", "orders"),
            ("MESHFLOW__EXPORTER__PROBE__TOPIC", "orders"),
        ])
        .expect_err("the probe writes a topic of its own");
        assert!(
            refused.to_string().contains("exporter.probe.topic"),
            "{refused}"
        );
    }

    #[test]
    fn a_bad_pattern_or_the_receipts_topic_names_exporter_topics() {
        for topics in ["^(", "^a{1000}{1000}", "meshflow.receipts", "bad name"] {
            let text = from_env(&[("MESHFLOW__EXPORTER__TOPICS", topics)])
                .expect_err(topics)
                .to_string();
            assert!(text.contains("`exporter.topics`"), "{topics}: {text}");
        }
        let text = from_env(&[
            ("MESHFLOW__EXPORTER__TOPICS", "a,b,c"),
            ("MESHFLOW__EXPORTER__MAX_TOPICS", "2"),
        ])
        .expect_err("three literals over a bound of two")
        .to_string();
        assert!(text.contains("`exporter.topics`"), "{text}");
    }

    #[test]
    fn the_memory_budget_multiplies_by_the_judged_topics() {
        // One topic fits the default budget; a pattern may judge ten.
        assert!(from_env(&[("MESHFLOW__EXPORTER__TOPICS", "a")]).is_ok());
        let text = from_env(&[("MESHFLOW__EXPORTER__TOPICS", "a,^b.*")])
            .expect_err("ten topics of 10,000 producers do not fit 384 MiB")
            .to_string();
        assert!(text.contains("`exporter.memory_budget_mib`"), "{text}");
        assert!(text.contains("× 10 judged topics"), "{text}");
        let two = from_env(&[
            ("MESHFLOW__EXPORTER__TOPICS", "a,^b.*"),
            ("MESHFLOW__EXPORTER__MAX_TOPICS", "2"),
            ("MESHFLOW__EXPORTER__MEMORY_BUDGET_MIB", "1024"),
        ]);
        assert!(two.is_ok(), "{two:?}");
        let three = from_env(&[
            ("MESHFLOW__EXPORTER__TOPICS", "a,b,c"),
            ("MESHFLOW__EXPORTER__MEMORY_BUDGET_MIB", "512"),
        ])
        .expect_err("three literal topics")
        .to_string();
        assert!(three.contains("× 3 judged topics"), "{three}");
    }

    #[test]
    fn bad_values_name_their_key() {
        // Each refused by validation, naming the key it was set at.
        #[rustfmt::skip]
        let invalid: &[(&str, &str)] = &[
            ("exporter.topics", "no spaces"),
            ("exporter.topics", "events,^(unclosed"),
            ("exporter.topics", "meshflow.receipts"),
            ("exporter.topics", "a,a"),
            ("exporter.max_topics", "0"),
            ("exporter.max_topics", "101"),
            ("exporter.groups", "a,a"),
            ("exporter.groups", "a,"),
            ("exporter.group_id", "meshflow"),
            ("exporter.group_id", ""),
            ("exporter.poll_interval", "10ms"),
            ("exporter.poll_interval", "1h"),
            ("exporter.grace", "0s"),
            ("exporter.sla", "0s"),
            ("exporter.idle_timeout", "45s"),
            ("exporter.max_producers", "0"),
            ("exporter.window_bits", "1000"),
            ("exporter.status.min_samples", "1"),
            ("exporter.status.window", "20s"),
            ("exporter.max_clock_skew", "0s"),
            ("exporter.cluster.min_insync_replicas", "4"),
            ("exporter.cluster.brokers", "10001"),
        ];
        assert_each_invalid::<Config>(invalid, LIST_KEYS);
        // Refused for what they make of another key, or by serde.
        let refused: &[(&str, &str, &str)] = &[
            (
                "EXPORTER__MAX_PRODUCERS",
                "1000000",
                "`exporter.memory_budget_mib`",
            ),
            (
                "EXPORTER__RECEIPTS_TOPIC",
                "meshflow.events",
                "`exporter.topics`",
            ),
            ("EXPORTER__GRACE", "soon", "grace"),
            ("EXPORTER__COLOUR", "blue", "colour"),
            ("EXPORTER__STATUS__COLOUR", "blue", "colour"),
        ];
        assert_each_refused::<Config>(refused, LIST_KEYS);
    }

    #[test]
    fn librdkafka_keys_the_exporter_owns_are_refused() {
        for key in OWNED_KEYS {
            let err = from_file(
                "owned.toml",
                &format!("[kafka.librdkafka]\n\"{key}\" = \"x\"\n"),
            )
            .err()
            .unwrap_or_else(|| panic!("{key} accepted"));
            assert!(
                err.to_string().contains(&format!("kafka.librdkafka.{key}")),
                "{err}"
            );
        }
        let c = from_file("free.toml", "[kafka.librdkafka]\n\"client.rack\" = \"a\"\n").unwrap();
        assert_eq!(c.kafka.librdkafka["client.rack"], "a");
    }

    #[test]
    fn the_probes_acks_all_cannot_be_turned_off_from_librdkafka() {
        // The probe's producer is idempotent with acks=all; the user's
        // `kafka.librdkafka` settings are applied to every client, so one
        // of these would silently weaken it.
        for (key, value) in [
            ("acks", "1"),
            ("request.required.acks", "0"),
            ("enable.idempotence", "false"),
        ] {
            let err = from_file(
                "weaker.toml",
                &format!("[kafka.librdkafka]\n\"{key}\" = \"{value}\"\n"),
            )
            .err()
            .unwrap_or_else(|| panic!("{key} = {value} accepted"));
            assert!(
                err.to_string().contains(&format!("kafka.librdkafka.{key}")),
                "{err}"
            );
        }
    }

    #[test]
    fn an_error_is_one_line_with_key_value_and_what_is_allowed() {
        let err = from_env(&[("MESHFLOW__EXPORTER__POLL_INTERVAL", "10ms")])
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "config key `exporter.poll_interval`: invalid value \"10ms\": a duration from 100ms to 10m"
        );
        let err = from_env(&[("MESHFLOW__EXPORTER__GRACE", "0s")])
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "config key `exporter.grace`: invalid value \"0ns\": a duration greater than zero, such as 30s"
        );
    }
}
