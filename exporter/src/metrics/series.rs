//! Handles on the series kept per stage and per group, and how one
//! observation lands in them.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;

use super::TraceLabels;
use crate::observation::{Latency, Observed, Rejection};
use crate::window::Outcome;

/// Handles on the counters of one stage (and group).
#[derive(Clone, Debug)]
pub(super) struct StageSeries {
    pub(super) messages: Counter,
    pub(super) lost: Counter,
    pub(super) duplicated: Counter,
    pub(super) clock_skew: Counter,
    pub(super) unjudged: Counter,
    /// One per [`Rejection`], in [`Rejection::ALL`] order.
    pub(super) rejected: Vec<Counter>,
}

/// Handles on the series of one watched group.
#[derive(Clone, Debug)]
pub(super) struct GroupSeries {
    pub(super) processed: StageSeries,
    pub(super) e2e_latency: HistogramWithExemplars<TraceLabels>,
    pub(super) unmatched: Counter,
}

/// Counts one observation into a stage's series; `observe` gets a measured
/// latency in seconds.
pub(super) fn record(series: &StageSeries, observed: Observed, observe: impl FnOnce(f64)) {
    if let Some(why) = observed.rejected {
        if let Some(index) = Rejection::ALL.iter().position(|r| *r == why) {
            series.rejected[index].inc();
        }
        return;
    }
    match observed.outcome {
        Outcome::New | Outcome::Late | Outcome::Overdue => series.messages.inc(),
        Outcome::Duplicate => series.duplicated.inc(),
        Outcome::Ignored => 0,
    };
    match observed.latency {
        Latency::Measured(latency) => observe(latency.as_secs_f64()),
        Latency::ClockSkew(_) => {
            series.clock_skew.inc();
        }
        Latency::NotMeasured => {}
    }
}

/// 32 lowercase hex digits, not all zero: a W3C trace id.
pub(super) fn valid_trace_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && id.bytes().any(|b| b != b'0')
}
