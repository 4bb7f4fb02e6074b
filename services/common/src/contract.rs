//! The names and limits the services, dashboards, alerts and manifests
//! share, defined once. `docs/contracts.md` lists the same in its tables;
//! a test below reads that file and fails when the two differ.

/// Default topic and group names.
pub mod topic {
    /// The data topic.
    pub const EVENTS: &str = "meshflow.events";
    /// The receipts topic.
    pub const RECEIPTS: &str = "meshflow.receipts";
    /// Suffix of a data topic's dead-letter topic (`<topic>.dlq`).
    pub const DLQ_SUFFIX: &str = ".dlq";
    /// The consumer group.
    pub const GROUP: &str = "meshflow";
    /// The exporter's own group (its read position).
    pub const EXPORTER_GROUP: &str = "meshflow-exporter";
}

/// Kafka header names.
pub mod header {
    pub use crate::envelope::{CREATED_NS, ERROR, PRODUCER, SEQ, SETTLED, TRACEPARENT, TRACESTATE};
    /// Where a dead letter came from: `<topic>/<partition>/<offset>`.
    pub const SOURCE: &str = "mf-source";
}

/// Readiness conditions, as a 503 `/readyz` names them.
pub mod ready {
    /// Metadata requests are answered (every service).
    pub const KAFKA: &str = "kafka";
    /// No librdkafka fatal error (producer and consumer).
    pub use crate::fatal::READY_CLIENT as CLIENT;
    /// Partitions are assigned (consumer).
    pub const ASSIGNED: &str = "assigned";
    /// No partition is parked on a dead letter refused for good (consumer).
    pub const PARTITIONS_FLOWING: &str = "partitions_flowing";
    /// The exporter reads every partition of the data topic.
    pub const LOG_ASSIGNED: &str = "log_assigned";
    /// The exporter reads every partition of the receipts topic.
    pub const RECEIPTS_ASSIGNED: &str = "receipts_assigned";
}

/// Default HTTP ports (`/metrics`, `/healthz`, `/readyz`).
pub mod port {
    /// `meshflow-producer`.
    pub const PRODUCER: u16 = 9464;
    /// `meshflow-consumer`.
    pub const CONSUMER: u16 = 9465;
    /// `meshflow-exporter`.
    pub const EXPORTER: u16 = 9466;
}

pub use crate::envelope::MAX_PRODUCER_ID_BYTES;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::EnvelopeError;

    const DOC: &str = include_str!("../../../docs/contracts.md");

    /// The first cell of each row of the table under `## heading`, without
    /// backquotes.
    fn first_column(heading: &str) -> Vec<String> {
        column(heading, 1)
            .into_iter()
            .map(|cell| cell.trim_matches('`').to_string())
            .collect()
    }

    /// The cells of `column` in the rows of the table under `## heading`.
    fn column(heading: &str, column: usize) -> Vec<String> {
        let start = DOC
            .find(&format!("\n## {heading}\n"))
            .unwrap_or_else(|| panic!("docs/contracts.md has no section `## {heading}`"));
        DOC[start..]
            .lines()
            .skip(2)
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .map(|l| l.split('|').nth(column).unwrap_or("").trim().to_string())
            .collect()
    }

    #[test]
    fn topics_match_the_document() {
        assert_eq!(
            first_column("Topics"),
            [
                topic::EVENTS.to_string(),
                topic::RECEIPTS.to_string(),
                format!("<topic>{}", topic::DLQ_SUFFIX),
            ]
        );
        assert_eq!(
            first_column("Groups"),
            [topic::GROUP, topic::EXPORTER_GROUP]
        );
    }

    #[test]
    fn headers_match_the_document() {
        assert_eq!(
            first_column("Headers"),
            [
                header::PRODUCER,
                header::SEQ,
                header::CREATED_NS,
                header::SETTLED,
                header::TRACEPARENT,
                header::TRACESTATE,
                header::ERROR,
                header::SOURCE,
            ]
        );
        let limits = column("Headers", 4);
        assert!(
            limits[0].contains(&format!("{MAX_PRODUCER_ID_BYTES} bytes")),
            "the mf-producer limit: {}",
            limits[0]
        );
    }

    #[test]
    fn readiness_conditions_match_the_document() {
        assert_eq!(
            first_column("Readiness conditions"),
            [
                ready::KAFKA,
                ready::CLIENT,
                ready::ASSIGNED,
                ready::PARTITIONS_FLOWING,
                ready::LOG_ASSIGNED,
                ready::RECEIPTS_ASSIGNED,
            ]
        );
    }

    #[test]
    fn ports_match_the_document() {
        let ports = column("Ports", 3);
        assert_eq!(
            ports[..3],
            [
                port::PRODUCER.to_string(),
                port::CONSUMER.to_string(),
                port::EXPORTER.to_string(),
            ]
        );
    }

    #[test]
    fn invalid_envelope_reasons_match_the_document() {
        use crate::envelope::EnvelopeError as E;
        let all = [
            E::Missing(header::SEQ),
            E::Duplicated(header::SEQ),
            E::NotUtf8(header::SEQ),
            E::NotANumber(header::SEQ),
            E::EmptyProducer,
            E::ProducerTooLong,
            E::HeaderNameNotUtf8,
        ];
        let reasons: Vec<&str> = all.iter().map(EnvelopeError::reason).collect();
        assert_eq!(first_column("Invalid-envelope reasons"), reasons);
    }
}
