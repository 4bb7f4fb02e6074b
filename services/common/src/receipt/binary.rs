//! Receipt format 2: a compact binary batch.
//!
//! All integers are LEB128 varints; a signed one is zigzag-encoded first.
//! A string is its length in bytes, then its UTF-8 bytes.
//!
//! ```text
//! batch   = version(=2) group consumer
//!           count(topics)    string*       the topics the runs name
//!           count(producers) string*       the producer instances they name
//!           count(runs)      run*
//!           count(traces)    trace*
//! run     = topic-index producer-index zigzag(partition) count(entries) entry*
//! entry   = zigzag(offset - previous offset - 1)
//!           zigzag(seq - previous seq)
//!           zigzag(processed µs - previous processed µs)
//!           zigzag(processed µs - created µs)
//! trace   = entry-index 16 bytes       entry-index counts across runs and
//!                                      rises strictly
//! ```
//!
//! The previous offset is -1 at the start of each run, so a run of
//! consecutive offsets costs a byte an offset; the previous seq and
//! processed time carry on from run to run (0 at the start of the batch),
//! so only the batch's first entry spells out a time. Times are
//! microseconds since the Unix epoch (format 1 carried nanoseconds): the
//! exporter's latency buckets start at a millisecond. Seq, offset and time
//! deltas wrap at 64 bits, so every value has exactly one encoding.
//!
//! Decoding checks everything a forged record could get wrong: lengths and
//! counts beyond the bytes left (so nothing is allocated beyond the input's
//! size), indexes outside their table, partitions and offsets out of range,
//! times that do not fit in nanoseconds, strings that are not UTF-8, trace
//! indexes out of order, trailing bytes.

use std::fmt;

/// The version byte a format-2 batch starts with.
pub const VERSION: u8 = 2;

/// Why a format-2 body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The body ended inside a value.
    Truncated,
    /// The first byte is not [`VERSION`].
    Version(u8),
    /// A varint longer than 10 bytes or above 64 bits.
    Varint,
    /// A string that is not UTF-8.
    NotUtf8,
    /// A count larger than the bytes left could hold.
    Count,
    /// A topic or producer index outside its table.
    Index,
    /// A partition outside `0..=i32::MAX` or an offset below 0.
    Position,
    /// A time that does not fit in 64-bit nanoseconds.
    Time,
    /// Trace entry indexes not rising, or beyond the entries.
    Trace,
    /// Bytes after the last trace.
    Trailing,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("truncated"),
            DecodeError::Version(v) => write!(f, "version {v}, expected {VERSION}"),
            DecodeError::Varint => f.write_str("varint over 64 bits"),
            DecodeError::NotUtf8 => f.write_str("string not UTF-8"),
            DecodeError::Count => f.write_str("count beyond the body's length"),
            DecodeError::Index => f.write_str("table index out of range"),
            DecodeError::Position => f.write_str("partition or offset out of range"),
            DecodeError::Time => f.write_str("time out of range"),
            DecodeError::Trace => f.write_str("trace indexes out of order or range"),
            DecodeError::Trailing => f.write_str("bytes after the batch"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// One entry as format 2 carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Offset of the message.
    pub offset: i64,
    /// `mf-seq` of the message.
    pub seq: u64,
    /// `mf-created-ns` of the message, to the microsecond.
    pub created_us: u64,
    /// When processing finished, Unix microseconds (consumer's clock).
    pub processed_us: u64,
}

/// Entries of one topic partition from one producer instance, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Index into [`Batch::topics`].
    pub topic: usize,
    /// Index into [`Batch::producers`].
    pub producer: usize,
    /// The partition.
    pub partition: i32,
    /// The entries.
    pub entries: Vec<Entry>,
}

/// A format-2 batch, its strings borrowed from the body it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<'a> {
    /// The consumer group that processed the messages.
    pub group: &'a str,
    /// The consumer instance that processed them.
    pub consumer: &'a str,
    /// Topics named by the runs.
    pub topics: Vec<&'a str>,
    /// Producer instances named by the runs.
    pub producers: Vec<&'a str>,
    /// The entries, by topic partition and producer.
    pub runs: Vec<Run>,
    /// Trace ids kept, by entry index across runs, rising.
    pub traces: Vec<(usize, [u8; 16])>,
}

/// The smallest encoded entry: four one-byte varints.
const MIN_ENTRY_BYTES: usize = 4;
/// The smallest encoded run: three one-byte varints, a count, one entry.
const MIN_RUN_BYTES: usize = 4 + MIN_ENTRY_BYTES;
/// The largest encoded entry: four ten-byte varints.
pub const MAX_ENTRY_BYTES: usize = 40;
/// The largest run header: two indexes, a partition and a count.
pub const MAX_RUN_BYTES: usize = 4 * 5;
/// The largest trace: an index and 16 bytes.
pub const MAX_TRACE_BYTES: usize = 10 + 16;

impl Batch<'_> {
    /// Writes the batch to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        put_str(out, self.group);
        put_str(out, self.consumer);
        put_varint(out, self.topics.len() as u64);
        for t in &self.topics {
            put_str(out, t);
        }
        put_varint(out, self.producers.len() as u64);
        for p in &self.producers {
            put_str(out, p);
        }
        put_varint(out, self.runs.len() as u64);
        let (mut seq, mut processed) = (0u64, 0u64);
        for run in &self.runs {
            put_varint(out, run.topic as u64);
            put_varint(out, run.producer as u64);
            put_signed(out, i64::from(run.partition));
            put_varint(out, run.entries.len() as u64);
            let mut offset = -1i64;
            for e in &run.entries {
                put_signed(out, e.offset.wrapping_sub(offset).wrapping_sub(1));
                put_signed(out, e.seq.wrapping_sub(seq) as i64);
                put_signed(out, e.processed_us.wrapping_sub(processed) as i64);
                put_signed(out, e.processed_us.wrapping_sub(e.created_us) as i64);
                (offset, seq, processed) = (e.offset, e.seq, e.processed_us);
            }
        }
        put_varint(out, self.traces.len() as u64);
        for (index, id) in &self.traces {
            put_varint(out, *index as u64);
            out.extend_from_slice(id);
        }
    }

    /// The entries across runs.
    pub fn len(&self) -> usize {
        self.runs.iter().map(|r| r.entries.len()).sum()
    }

    /// Whether the batch has no entry.
    pub fn is_empty(&self) -> bool {
        self.runs.iter().all(|r| r.entries.is_empty())
    }
}

/// Reads a format-2 body.
pub fn decode(body: &[u8]) -> Result<Batch<'_>, DecodeError> {
    let mut r = Reader { rest: body };
    let version = r.byte()?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let group = r.str()?;
    let consumer = r.str()?;
    let topics = r.strs()?;
    let producers = r.strs()?;
    let runs_count = r.count(MIN_RUN_BYTES)?;
    let mut runs = Vec::with_capacity(runs_count);
    let mut total = 0usize;
    let (mut seq, mut processed) = (0u64, 0u64);
    for _ in 0..runs_count {
        let topic = r.index(topics.len())?;
        let producer = r.index(producers.len())?;
        let partition = i32::try_from(r.signed()?).map_err(|_| DecodeError::Position)?;
        if partition < 0 {
            return Err(DecodeError::Position);
        }
        let n = r.count(MIN_ENTRY_BYTES)?;
        let mut entries = Vec::with_capacity(n);
        let mut offset = -1i64;
        for _ in 0..n {
            offset = offset.wrapping_add(r.signed()?).wrapping_add(1);
            seq = seq.wrapping_add(r.signed()? as u64);
            processed = processed.wrapping_add(r.signed()? as u64);
            let created = processed.wrapping_sub(r.signed()? as u64);
            if offset < 0 {
                return Err(DecodeError::Position);
            }
            if processed.checked_mul(1_000).is_none() || created.checked_mul(1_000).is_none() {
                return Err(DecodeError::Time);
            }
            entries.push(Entry {
                offset,
                seq,
                created_us: created,
                processed_us: processed,
            });
        }
        total += n;
        runs.push(Run {
            topic,
            producer,
            partition,
            entries,
        });
    }
    let traces_count = r.count(1 + 16)?;
    let mut traces = Vec::with_capacity(traces_count);
    for _ in 0..traces_count {
        let index = usize::try_from(r.varint()?).map_err(|_| DecodeError::Trace)?;
        let rising = traces.last().is_none_or(|&(last, _)| index > last);
        if !rising || index >= total {
            return Err(DecodeError::Trace);
        }
        let id: [u8; 16] = r.take(16)?.try_into().map_err(|_| DecodeError::Truncated)?;
        traces.push((index, id));
    }
    if !r.rest.is_empty() {
        return Err(DecodeError::Trailing);
    }
    Ok(Batch {
        group,
        consumer,
        topics,
        producers,
        runs,
        traces,
    })
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.rest.split_first().ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            // The tenth byte may only hold the 64th bit.
            if i == 9 && bits > 1 {
                return Err(DecodeError::Varint);
            }
            value |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Varint)
    }

    fn signed(&mut self) -> Result<i64, DecodeError> {
        let z = self.varint()?;
        Ok((z >> 1) as i64 ^ -((z & 1) as i64))
    }

    /// A count of items each at least `min_bytes` long, checked against
    /// the bytes left before anything is allocated for them.
    fn count(&mut self, min_bytes: usize) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.rest.len() / min_bytes => Ok(n),
            _ => Err(DecodeError::Count),
        }
    }

    fn index(&mut self, len: usize) -> Result<usize, DecodeError> {
        match usize::try_from(self.varint()?) {
            Ok(i) if i < len => Ok(i),
            _ => Err(DecodeError::Index),
        }
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::try_from(self.varint()?).map_err(|_| DecodeError::Truncated)?;
        std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError::NotUtf8)
    }

    fn strs(&mut self) -> Result<Vec<&'a str>, DecodeError> {
        let n = self.count(1)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.str()?);
        }
        Ok(out)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_signed(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Encoded length of `s` as a string.
pub fn str_len(s: &str) -> usize {
    varint_len(s.len() as u64) + s.len()
}

fn varint_len(v: u64) -> usize {
    (64 - v.max(1).leading_zeros() as usize).div_ceil(7)
}
