//! The exporter's accounting core under a receipt stream: 10,000 producer
//! instances, 100,000 messages per second of exporter time (entries 10 µs
//! apart, round-robin over the producers, each in sequence order), 0.1 %
//! missing and 0.1 % delivered twice, a caught-up sweep every second.
//!
//! Throughput is entries per second of one core through
//! `Accounting::observe_receipt` (and, per message, `observe_log` plus
//! `observe_receipt`); memory is `Accounting::memory_bytes` after one and
//! after all batches, which must not grow with traffic. Beside it the exact
//! but unbounded way: a `HashSet` of `(producer, seq)`.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::Instant;

use meshflow_exporter::{Accounting, AccountingConfig, Horizon, LogRecord, PerGroup, ReceiptEntry};

/// Producer instances in the stream.
pub const PRODUCERS: u64 = 10_000;
/// Nanoseconds between entries: 100,000 per second.
const STEP_NS: u64 = 10_000;
/// Entries between sweeps: one second of traffic.
const SWEEP_EVERY: u64 = 100_000;
const T0: u64 = 1_795_813_600_000_000_000;

/// What the accounting core did.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ExporterFigures {
    /// Receipt entries per second, receipts only.
    pub receipts_per_sec: f64,
    /// Messages per second with a log record and a receipt each.
    pub messages_per_sec: f64,
    /// `(producer, seq)` inserts per second into a `HashSet`.
    pub hash_set_per_sec: f64,
    /// Accounting memory after the first batch, bytes.
    pub memory_first: usize,
    /// Accounting memory after every batch, bytes.
    pub memory_last: usize,
    /// Estimated `HashSet` memory after every batch, bytes.
    pub hash_set_memory: usize,
    /// Entries fed.
    pub entries: u64,
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Producer ids shaped like the producer's own (pod name, random suffix).
fn producer_ids() -> Vec<String> {
    (0..PRODUCERS)
        .map(|i| format!("meshflow-producer-7d9f8b6c5-{i:05x}-{:08x}", mix(i) as u32))
        .collect()
}

/// Message slots `from..to`: `(producer, seq, partition, now_ns, copies)`.
fn slots(from: u64, to: u64) -> impl Iterator<Item = (usize, u64, i32, u64, u32)> {
    (from..to).filter_map(|k| {
        let roll = mix(k) % 1000;
        let copies = match roll {
            0 => return None,
            1 => 2,
            _ => 1,
        };
        Some((
            (k % PRODUCERS) as usize,
            k / PRODUCERS,
            ((mix(k) >> 32) & 7) as i32,
            T0 + k * STEP_NS,
            copies,
        ))
    })
}

fn sweep(accounting: &mut Accounting, now_ns: u64) {
    let processed_ns = Some(now_ns.saturating_sub(60_000_000_000));
    accounting.set_horizon(&Horizon {
        log_ns: Some(now_ns),
        processed_ns: PerGroup::filled(accounting.groups(), processed_ns),
    });
    black_box(accounting.sweep());
}

/// Feeds `from..to`; with `log`, each message's log record first.
fn feed(accounting: &mut Accounting, ids: &[String], from: u64, to: u64, log: bool) -> u64 {
    let mut fed = 0;
    for (p, seq, partition, now, copies) in slots(from, to) {
        for _ in 0..copies {
            if log {
                black_box(accounting.observe_log(&LogRecord {
                    producer: &ids[p],
                    seq,
                    partition,
                    created_ns: now - 2_000_000,
                    read_ns: now,
                    settled: None,
                }));
            }
            black_box(accounting.observe_receipt(
                &ReceiptEntry {
                    group: "meshflow",
                    producer: &ids[p],
                    seq,
                    partition,
                    created_ns: now - 4_000_000,
                    processed_ns: now - 1_000_000,
                },
                now,
            ));
            fed += 1;
        }
        if ((now - T0) / STEP_NS).is_multiple_of(SWEEP_EVERY) {
            sweep(accounting, now);
        }
    }
    fed
}

/// Runs the stream for `batches` batches of one million message slots.
pub fn measure(batches: u64) -> ExporterFigures {
    const BATCH: u64 = 1_000_000;
    let ids = producer_ids();
    let config = AccountingConfig::default();
    let mut figures = ExporterFigures::default();

    let mut accounting = Accounting::new(&config, ["meshflow"]);
    let (mut fed, mut secs) = (0, 0.0);
    for b in 0..batches {
        let start = Instant::now();
        fed += feed(&mut accounting, &ids, b * BATCH, (b + 1) * BATCH, false);
        // The first batch meets every producer for the first time.
        if b == 0 {
            figures.memory_first = accounting.memory_bytes();
        } else {
            secs += start.elapsed().as_secs_f64();
        }
    }
    figures.memory_last = accounting.memory_bytes();
    figures.entries = fed;
    let measured = fed as f64 * (batches.saturating_sub(1)) as f64 / batches as f64;
    figures.receipts_per_sec = measured / secs.max(1e-9);

    let mut accounting = Accounting::new(&config, ["meshflow"]);
    let start = Instant::now();
    let messages = feed(&mut accounting, &ids, 0, batches * BATCH, true);
    figures.messages_per_sec = messages as f64 / start.elapsed().as_secs_f64();

    let mut set: HashSet<(&str, u64)> = HashSet::new();
    let start = Instant::now();
    let mut inserted = 0u64;
    for (p, seq, _, _, copies) in slots(0, batches * BATCH) {
        for _ in 0..copies {
            black_box(set.insert((ids[p].as_str(), seq)));
            inserted += 1;
        }
    }
    figures.hash_set_per_sec = inserted as f64 / start.elapsed().as_secs_f64();
    // Buckets of (&str, u64) plus a control byte each.
    figures.hash_set_memory = set.capacity() * (std::mem::size_of::<(&str, u64)>() + 1);
    figures
}
