//! The callgrind section: instructions per message on the application
//! thread, held to the committed counts (see [`super::instructions`]).

use std::path::Path;

use crate::report::Row;
use crate::steps;

use super::{instructions, margin, Scale};

/// Instructions per message under callgrind; empty without valgrind.
pub fn callgrind(exe: &Path, dir: &Path, scale: Scale) -> Vec<Row> {
    let mut got = std::collections::HashMap::new();
    for (name, _) in steps::STEPS {
        if let Some(ir) = steps::instructions(exe, dir, name, scale.callgrind_steps) {
            eprintln!("  callgrind {name}: {ir:.0} instructions/message");
            got.insert(name, ir);
        }
    }
    let mut rows = Vec::new();
    // No goal of the issue's: held to today's level (see `margin`).
    let held = |row: Row, score: f64, today: f64| {
        let bound = today * (1.0 + margin::INSTRUCTIONS);
        let text = format!("<= {} (today's + 3 %)", crate::report::num(bound));
        row.goal(&text, score, bound, false, 0.0)
    };
    if let (Some(p), Some(m)) = (got.get("produce_plain"), got.get("produce_meshflow")) {
        let row = Row::pair(
            "callgrind",
            "in-process",
            "producer instructions/msg (app thread)",
            *p,
            *m,
        );
        rows.push(held(row, m / p, instructions::PRODUCER_RATIO));
    }
    if let Some(m) = got.get("consume_meshflow") {
        let row = Row::single(
            "callgrind",
            "in-process",
            "consumer instructions/msg added (app thread)",
            *m,
        );
        rows.push(held(row, *m, instructions::CONSUMER));
    }
    if let (Some(p), Some(m)) = (got.get("headers_baseline"), got.get("envelope_round_trip")) {
        let row = Row::pair(
            "callgrind",
            "in-process",
            "envelope round trip instructions/msg (plain: build headers)",
            *p,
            *m,
        );
        rows.push(held(row, *m, instructions::ENVELOPE_ROUND_TRIP));
    }
    rows
}
