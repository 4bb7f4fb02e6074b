//! Throughput and memory of the accounting core.
//!
//! Workload: 1,000 producer instances interleaved round-robin, each in
//! sequence order, with 0.1% of messages missing (gaps) and 0.1% delivered
//! twice (duplicates); one watched consumer group; a sweep every 100,000
//! entries; entries are 10 µs apart in exporter time, so 10M entries span
//! 100 s and gaps pass the 30 s grace. Under `cargo bench` a summary is
//! printed first:
//!
//! - entries/s through the core (receipts only, and log + receipt per
//!   message), and the same process's baseline: inserting `(producer, seq)`
//!   into a plain `HashSet`, the exact but unbounded way to deduplicate;
//! - live heap bytes after 1M and after 10M entries, counted by a global
//!   allocator, next to `Accounting::memory_bytes()`.
//!
//! Then criterion measures the same paths.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use criterion::{criterion_group, Criterion, Throughput};
use meshflow_exporter::{Accounting, AccountingConfig, Horizon, LogRecord, PerGroup, ReceiptEntry};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const PRODUCERS: u64 = 1_000;
const T0: u64 = 1_795_813_600_000_000_000;
const SWEEP_EVERY: u64 = 100_000;

/// Producer ids shaped like the producer's: pod name plus a random suffix.
fn producer_ids() -> Vec<String> {
    (0..PRODUCERS)
        .map(|i| format!("meshflow-producer-7d9f8b6c5-{i:05x}-{:08x}", mix(i) as u32))
        .collect()
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One entry of the workload: producer index, seq, partition, time.
#[derive(Clone, Copy)]
struct Entry {
    producer: usize,
    seq: u64,
    partition: i32,
    now_ns: u64,
}

/// Calls `f` for the entries of message slots `from..to`: gaps skipped,
/// duplicates given twice. Returns the number of entries given.
fn drive(from: u64, to: u64, mut f: impl FnMut(Entry)) -> u64 {
    let mut given = 0;
    for k in from..to {
        let roll = mix(k) % 1000;
        if roll == 0 {
            continue;
        }
        let entry = Entry {
            producer: (k % PRODUCERS) as usize,
            seq: k / PRODUCERS,
            partition: (mix(k) >> 32) as i32 & 7,
            now_ns: T0 + k * 10_000,
        };
        f(entry);
        given += 1;
        if roll == 1 {
            f(entry);
            given += 1;
        }
    }
    given
}

fn receipt<'a>(ids: &'a [String], entry: Entry) -> ReceiptEntry<'a> {
    ReceiptEntry {
        group: "meshflow",
        producer: &ids[entry.producer],
        seq: entry.seq,
        partition: entry.partition,
        created_ns: entry.now_ns - 4_000_000,
        processed_ns: entry.now_ns - 1_000_000,
    }
}

fn log_record(ids: &[String], entry: Entry) -> LogRecord<'_> {
    LogRecord {
        producer: &ids[entry.producer],
        seq: entry.seq,
        partition: entry.partition,
        created_ns: entry.now_ns - 2_000_000,
        read_ns: entry.now_ns,
        settled: None,
    }
}

/// Sweeps as a caught-up exporter does: everything judged up to `now_ns`.
fn sweep_caught_up(accounting: &mut Accounting, now_ns: u64) -> meshflow_exporter::SweepReport {
    let processed_ns = Some(now_ns.saturating_sub(60_000_000_000));
    accounting.set_horizon(&Horizon {
        log_ns: Some(now_ns),
        processed_ns: PerGroup::filled(accounting.groups(), processed_ns),
    });
    accounting.sweep()
}

fn new_accounting() -> Accounting {
    Accounting::new(&AccountingConfig::default(), ["meshflow"])
}

/// Receipts only; returns entries fed.
fn feed_receipts(accounting: &mut Accounting, ids: &[String], from: u64, to: u64) -> u64 {
    drive(from, to, |entry| {
        black_box(accounting.observe_receipt(&receipt(ids, entry), entry.now_ns));
        if entry.seq % (SWEEP_EVERY / PRODUCERS) == 0 && entry.producer == 0 {
            black_box(sweep_caught_up(accounting, entry.now_ns));
        }
    })
}

/// Each message read from the log, then its receipt; returns messages fed.
fn feed_both(accounting: &mut Accounting, ids: &[String], from: u64, to: u64) -> u64 {
    drive(from, to, |entry| {
        black_box(accounting.observe_log(&log_record(ids, entry)));
        black_box(accounting.observe_receipt(&receipt(ids, entry), entry.now_ns));
        if entry.seq % (SWEEP_EVERY / PRODUCERS) == 0 && entry.producer == 0 {
            black_box(sweep_caught_up(accounting, entry.now_ns));
        }
    })
}

/// Baseline: exact deduplication in a set that grows with traffic.
fn feed_baseline<'a>(
    set: &mut HashSet<(&'a str, u64)>,
    ids: &'a [String],
    from: u64,
    to: u64,
) -> u64 {
    drive(from, to, |entry| {
        black_box(set.insert((ids[entry.producer].as_str(), entry.seq)));
    })
}

fn rate(entries: u64, f: impl FnOnce() -> u64) -> f64 {
    let start = Instant::now();
    let fed = f();
    assert_eq!(fed, entries);
    entries as f64 / start.elapsed().as_secs_f64()
}

fn summary() {
    const MILLION: u64 = 1_000_000;
    let ids = producer_ids();
    let entries_1m = drive(0, MILLION, |_| {});
    let entries_10m = drive(0, 10 * MILLION, |_| {});

    // Warm up each path once, then measure on a fresh state.
    let mut warm = new_accounting();
    feed_both(&mut warm, &ids, 0, MILLION);
    drop(warm);

    let mut set = HashSet::new();
    let baseline = rate(entries_1m, || feed_baseline(&mut set, &ids, 0, MILLION));
    let baseline_bytes = set.capacity() * (std::mem::size_of::<(&str, u64)>() + 1);
    drop(set);

    let mut accounting = new_accounting();
    let receipts = rate(entries_1m, || {
        feed_receipts(&mut accounting, &ids, 0, MILLION)
    });
    drop(accounting);

    let live_before = LIVE.load(Ordering::Relaxed);
    let mut accounting = new_accounting();
    let both_1m = rate(entries_1m, || feed_both(&mut accounting, &ids, 0, MILLION));
    let live_1m = LIVE.load(Ordering::Relaxed) - live_before;
    let counted_1m = accounting.memory_bytes();
    let both_10m = rate(entries_10m - entries_1m, || {
        feed_both(&mut accounting, &ids, MILLION, 10 * MILLION)
    });
    let live_10m = LIVE.load(Ordering::Relaxed) - live_before;
    let counted_10m = accounting.memory_bytes();
    let log = accounting.log_counters();
    let processed = accounting
        .processed_counters("meshflow")
        .unwrap_or_default();

    let kib = |bytes: usize| bytes as f64 / 1024.0;
    println!("accounting core: 1,000 producers interleaved, 1 group, 0.1% gaps, 0.1% duplicates");
    println!("  baseline HashSet<(&str, u64)> insert: {baseline:>12.0} entries/s (1M entries, {:.0} KiB and growing)", kib(baseline_bytes));
    println!(
        "  receipt entries (observe_receipt):    {receipts:>12.0} entries/s = {:.2} x baseline",
        receipts / baseline
    );
    println!("  log + receipt per message, first 1M:  {both_1m:>12.0} messages/s = {:.2} x baseline ({:.0} observations/s)", both_1m / baseline, 2.0 * both_1m);
    println!(
        "  log + receipt per message, next 9M:   {both_10m:>12.0} messages/s = {:.2} x baseline",
        both_10m / baseline
    );
    println!("memory for 1,000 producers (live heap from a counting allocator / Accounting::memory_bytes):");
    println!(
        "  after  1M entries: {:>8.0} KiB / {:>8.0} KiB",
        kib(live_1m),
        kib(counted_1m)
    );
    println!(
        "  after 10M entries: {:>8.0} KiB / {:>8.0} KiB",
        kib(live_10m),
        kib(counted_10m)
    );
    println!(
        "  per producer: {:.1} KiB; checks: log {} messages, {} lost, {} duplicated; processed {} messages, {} duplicated",
        kib(counted_10m) / PRODUCERS as f64,
        log.messages,
        log.lost,
        log.duplicated,
        processed.messages,
        processed.duplicated,
    );
}

fn criterion_benches(c: &mut Criterion) {
    const BATCH: u64 = 10_000;
    let ids = producer_ids();
    let mut group = c.benchmark_group("accounting");
    group.throughput(Throughput::Elements(BATCH));

    let mut set = HashSet::new();
    let mut k = 0;
    group.bench_function("baseline_hashset_insert", |b| {
        b.iter(|| {
            if set.len() > 1_000_000 {
                set.clear();
            }
            feed_baseline(&mut set, &ids, k, k + BATCH);
            k += BATCH;
        })
    });

    type Feed = fn(&mut Accounting, &[String], u64, u64) -> u64;
    let feeds: [(&str, Feed); 2] = [
        ("observe_receipt", feed_receipts),
        ("observe_log_and_receipt", feed_both),
    ];
    for (name, feed) in feeds {
        let mut accounting = new_accounting();
        let mut k = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                feed(&mut accounting, &ids, k, k + BATCH);
                k += BATCH;
            })
        });
    }
    group.finish();
}

criterion_group!(benches, criterion_benches);

fn main() {
    if std::env::args().any(|arg| arg == "--bench") {
        summary();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
