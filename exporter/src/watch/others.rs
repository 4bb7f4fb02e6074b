//! The discovered groups' lag and status: what one poll's [`Others`] does
//! to the metrics. Each group is a [`TrackedGroup`]: one status tracker
//! per topic, the worst topic's status. Series of a group or partition
//! that is gone, or whose offsets could not be read, are removed rather
//! than left at old values.

use std::collections::{BTreeSet, HashMap};

use super::tracked::{LagPoint, TrackedGroup};
use crate::cluster::Others;
use crate::metrics::ExporterMetrics;
use crate::status::StatusConfig;
use crate::Error;

/// Trackers and published series of the discovered groups.
#[derive(Debug)]
pub struct OtherWatch {
    status: StatusConfig,
    groups: HashMap<String, TrackedGroup>,
}

impl OtherWatch {
    /// No group yet.
    pub fn new(status: &StatusConfig) -> Self {
        OtherWatch {
            status: status.clone(),
            groups: HashMap::new(),
        }
    }

    /// How many groups are watched.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Applies one poll's findings at `now_ns`.
    pub fn apply(
        &mut self,
        others: &Result<Others, Error>,
        at_ns: u64,
        metrics: &ExporterMetrics,
        now_ns: u64,
    ) {
        let others = match others {
            Ok(others) => others,
            Err(e) => {
                // The groups could not be listed: nothing known is current.
                let error = e.to_string();
                for (name, watched) in &mut self.groups {
                    watched.failed(name, at_ns, &error, &self.status, metrics);
                    watched.publish(name, metrics, now_ns);
                }
                return;
            }
        };
        metrics.set_left_out(others.groups_left_out, others.partitions_left_out);
        let seen: BTreeSet<&str> = others.groups.iter().map(|g| g.name.as_str()).collect();
        self.groups.retain(|name, watched| {
            let keep = seen.contains(name.as_str());
            if !keep {
                watched.forget(name, metrics);
                tracing::info!(group = %name, "consumer group no longer listed");
            }
            keep
        });
        for group in &others.groups {
            let status = &self.status;
            let watched = self.groups.entry(group.name.clone()).or_default();
            match &group.partitions {
                Err(e) => watched.failed(&group.name, at_ns, &e.to_string(), status, metrics),
                Ok(partitions) => {
                    let lags = partitions.iter().map(|lag| LagPoint {
                        topic: &lag.topic,
                        partition: lag.partition,
                        messages: lag.messages,
                        offsets: lag.offsets,
                        sample: &lag.sample,
                    });
                    watched.record(&group.name, at_ns, lags, status, metrics);
                }
            }
            watched.publish(&group.name, metrics, now_ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry;

    use super::*;
    use crate::cluster::{OtherGroup, TopicLag};
    use crate::groups::Groups;
    use crate::lag::{LagSample, PartitionOffsets};
    use crate::testing::{sample, value};

    const SEC: u64 = 1_000_000_000;
    const T0: u64 = 1_795_813_600 * SEC;

    /// Partition `partition` of `topic`, `behind` messages behind with the
    /// oldest unconsumed record `waited_s` old (`None`: unread).
    fn lag(topic: &str, partition: i32, at: u64, behind: i64, waited_s: Option<i64>) -> TopicLag {
        let offsets = PartitionOffsets {
            low: 0,
            high: 1_000,
            committed: Some(1_000 - behind),
        };
        let timestamp = waited_s.map(|s| (at / 1_000_000) as i64 - s * 1_000);
        TopicLag {
            topic: topic.to_string(),
            partition,
            messages: offsets.lag_messages().ok(),
            offsets: Some(offsets),
            sample: LagSample::new(at, offsets, timestamp),
        }
    }

    fn group(name: &str, partitions: Vec<TopicLag>) -> OtherGroup {
        OtherGroup {
            name: name.to_string(),
            partitions: Ok(partitions),
        }
    }

    fn others(groups: Vec<OtherGroup>) -> Result<Others, Error> {
        Ok(Others {
            groups,
            groups_left_out: 2,
            partitions_left_out: 0,
        })
    }

    fn watching() -> (Registry, ExporterMetrics, OtherWatch) {
        let mut registry = Registry::with_prefix("meshflow");
        let metrics = ExporterMetrics::register(&mut registry, &Groups::new(["meshflow"]));
        (registry, metrics, OtherWatch::new(&StatusConfig::default()))
    }

    fn lag_series(name: &str, group: &str, topic: &str, partition: i32) -> String {
        format!("meshflow_consumer_lag_{name}{{kafka_cluster=\"default\",group=\"{group}\",topic=\"{topic}\",partition=\"{partition}\"}}")
    }

    fn status(registry: &Registry, group: &str, state: &str) -> Option<f64> {
        sample(
            registry,
            &format!("meshflow_consumer_group_status{{kafka_cluster=\"default\",group=\"{group}\",meshflow_consumer_group_status=\"{state}\"}}"),
        )
    }

    #[test]
    fn every_partition_of_every_topic_gets_lag_and_the_group_a_status() {
        let (registry, metrics, mut watch) = watching();
        let found = others(vec![
            group(
                "billing",
                vec![
                    lag("orders", 0, T0, 40, Some(7)),
                    lag("payments", 3, T0, 0, None),
                ],
            ),
            group("audit", vec![lag("orders", 1, T0, 5, Some(2))]),
        ]);
        watch.apply(&found, T0, &metrics, T0);
        let expected = [
            ("messages", "billing", "orders", 0, 40.0),
            ("seconds", "billing", "orders", 0, 7.0),
            ("messages", "billing", "payments", 3, 0.0),
            ("seconds", "billing", "payments", 3, 0.0),
            ("messages", "audit", "orders", 1, 5.0),
        ];
        for (name, group, topic, partition, want) in expected {
            let series = lag_series(name, group, topic, partition);
            assert_eq!(value(&registry, &series), want, "{series}");
        }
        assert_eq!(status(&registry, "billing", "OK"), Some(1.0));
        assert_eq!(status(&registry, "audit", "OK"), Some(1.0));
        assert_eq!(
            value(
                &registry,
                "meshflow_exporter_discovery_left_out{kafka_cluster=\"default\",what=\"groups\"}"
            ),
            2.0
        );
        assert_eq!(watch.len(), 2);
    }

    #[test]
    fn what_is_gone_or_unreadable_is_removed_not_left_at_an_old_value() {
        let (registry, metrics, mut watch) = watching();
        let first = others(vec![
            group(
                "billing",
                vec![
                    lag("orders", 0, T0, 40, Some(7)),
                    lag("orders", 1, T0, 3, Some(1)),
                ],
            ),
            group("audit", vec![lag("orders", 1, T0, 5, Some(2))]),
        ]);
        watch.apply(&first, T0, &metrics, T0);

        // billing left partition 1 and its record at partition 0 could not
        // be read in time; audit is no longer listed.
        let t1 = T0 + 5 * SEC;
        let second = others(vec![group("billing", vec![lag("orders", 0, t1, 41, None)])]);
        watch.apply(&second, t1, &metrics, t1);
        assert_eq!(
            value(&registry, &lag_series("messages", "billing", "orders", 0)),
            41.0
        );
        assert_eq!(
            sample(&registry, &lag_series("seconds", "billing", "orders", 0)),
            None
        );
        assert_eq!(
            value(
                &registry,
                "meshflow_exporter_lag_seconds_unknown_total{kafka_cluster=\"default\"}"
            ),
            1.0
        );
        assert_eq!(
            sample(&registry, &lag_series("messages", "billing", "orders", 1)),
            None
        );
        assert_eq!(
            sample(&registry, &lag_series("messages", "audit", "orders", 1)),
            None
        );
        assert_eq!(status(&registry, "audit", "OK"), None);
        assert_eq!(watch.len(), 1);

        // The groups cannot be listed: no lag is current, every status ERR.
        let t2 = t1 + 5 * SEC;
        let refused = Err(Error::UnknownTopic { topic: "x".into() });
        watch.apply(&refused, t2, &metrics, t2);
        assert_eq!(
            sample(&registry, &lag_series("messages", "billing", "orders", 0)),
            None
        );
        assert_eq!(status(&registry, "billing", "ERR"), Some(1.0));

        // A group whose own offsets failed: ERR, no lag series.
        let t3 = t2 + 5 * SEC;
        let failed = others(vec![OtherGroup {
            name: "billing".into(),
            partitions: Err(Error::UnknownTopic { topic: "y".into() }),
        }]);
        watch.apply(&failed, t3, &metrics, t3);
        assert_eq!(status(&registry, "billing", "ERR"), Some(1.0));
    }

    #[test]
    fn a_group_takes_its_worst_topics_status() {
        let config = StatusConfig {
            stop_after: std::time::Duration::from_secs(10),
            ..StatusConfig::default()
        };
        let mut registry = Registry::with_prefix("meshflow");
        let metrics = ExporterMetrics::register(&mut registry, &Groups::new(["meshflow"]));
        let mut watch = OtherWatch::new(&config);
        // Caught up on payments, stuck 40 behind on orders for 15 s: STOP.
        for step in 0..4 {
            let at = T0 + step * 5 * SEC;
            let found = others(vec![group(
                "billing",
                vec![
                    lag("orders", 0, at, 40, Some(60)),
                    lag("payments", 0, at, 0, None),
                ],
            )]);
            watch.apply(&found, at, &metrics, at);
        }
        assert_eq!(status(&registry, "billing", "STOP"), Some(1.0));
        assert_eq!(status(&registry, "billing", "OK"), Some(0.0));
        // The same as Burrow's numbers, for the group and each partition.
        let code = |series: &str| value(&registry, series);
        assert_eq!(
            code(
                "meshflow_consumer_group_status_code{kafka_cluster=\"default\",group=\"billing\"}"
            ),
            4.0
        );
        let partition = |topic: &str| {
            format!("meshflow_consumer_partition_status_code{{kafka_cluster=\"default\",group=\"billing\",topic=\"{topic}\",partition=\"0\"}}")
        };
        assert_eq!(code(&partition("orders")), 4.0);
        assert_eq!(code(&partition("payments")), 1.0);
    }
}
