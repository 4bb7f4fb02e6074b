//! The meshflow envelope: the `mf-*` headers every produced message carries,
//! and a header list that sets a header by replacing it.
//!
//! A message with no `mf-*` header is unenveloped (any third-party producer
//! may write to the topic) and still processed. A message with some `mf-*`
//! header that is missing, duplicated, not a number, not UTF-8 or too long is
//! invalid: parsing returns an [`EnvelopeError`] whose [`reason`] is a fixed
//! string for metric labels and the dead-letter `mf-error` header. So is any
//! message with a header name that is not UTF-8, enveloped or not: Kafka
//! defines header names as strings, and a mangled name could hide an `mf-*`
//! header. Parsing never panics, whatever the bytes.
//!
//! [`reason`]: EnvelopeError::reason

pub use crate::headers::{HeaderList, HeaderView, MessageHeaders, RawHeaders};

/// Producer instance id header.
pub const PRODUCER: &str = "mf-producer";
/// Per-instance sequence number header.
pub const SEQ: &str = "mf-seq";
/// Creation time header, unix nanoseconds.
pub const CREATED_NS: &str = "mf-created-ns";
/// Delivery progress header, optional: every `mf-seq` of the producer
/// instance below this value was settled (acknowledged by Kafka, or given
/// up and counted as failed) when the message was handed over.
pub const SETTLED: &str = "mf-settled";
/// Why a message went to the dead-letter topic.
pub const ERROR: &str = "mf-error";
/// W3C trace context headers.
pub const TRACEPARENT: &str = "traceparent";
/// W3C trace state header.
pub const TRACESTATE: &str = "tracestate";
/// Upper bound of `mf-producer`, in bytes.
pub const MAX_PRODUCER_ID_BYTES: usize = 128;

/// The envelope of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Producer instance id, new for every producer process.
    pub producer: String,
    /// 0 for the instance's first message, +1 for each message handed to Kafka.
    pub seq: u64,
    /// Unix time in nanoseconds when the producer created the message.
    pub created_ns: u64,
    /// `mf-settled`, when the producer writes it: every sequence number of
    /// this instance below it was settled when this message was handed
    /// over. A gap at or above it may still be in the producer's hands (a
    /// partition refusing writes while the others take them), so the
    /// exporter does not judge it lost yet.
    pub settled: Option<u64>,
}

/// Why an envelope is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Some `mf-*` headers are present but this one is missing.
    #[error("header {0} missing")]
    Missing(&'static str),
    /// The header appears more than once.
    #[error("header {0} duplicated")]
    Duplicated(&'static str),
    /// The header has no value or its value is not UTF-8.
    #[error("header {0} is not UTF-8 text")]
    NotUtf8(&'static str),
    /// The header is not a decimal u64.
    #[error("header {0} is not a decimal u64")]
    NotANumber(&'static str),
    /// `mf-producer` is empty.
    #[error("header mf-producer is empty")]
    EmptyProducer,
    /// `mf-producer` is longer than [`MAX_PRODUCER_ID_BYTES`].
    #[error("header mf-producer is longer than 128 bytes")]
    ProducerTooLong,
    /// Some header's name is not UTF-8.
    #[error("a header name is not UTF-8")]
    HeaderNameNotUtf8,
}

impl EnvelopeError {
    /// A fixed label for metrics and for the `mf-error` header.
    pub fn reason(&self) -> &'static str {
        match self {
            EnvelopeError::Missing(_) => "missing_header",
            EnvelopeError::Duplicated(_) => "duplicated_header",
            EnvelopeError::NotUtf8(_) => "not_utf8",
            EnvelopeError::NotANumber(_) => "not_a_number",
            EnvelopeError::EmptyProducer => "empty_producer",
            EnvelopeError::ProducerTooLong => "producer_too_long",
            EnvelopeError::HeaderNameNotUtf8 => "header_name_not_utf8",
        }
    }
}

impl Envelope {
    /// Reads the envelope from a message's headers, given as (name, value)
    /// pairs with names as text or raw bytes. `Ok(None)`: no `mf-*` header
    /// at all, an unenveloped message.
    pub fn parse<'a, N, I>(headers: I) -> Result<Option<Envelope>, EnvelopeError>
    where
        N: AsRef<[u8]>,
        I: IntoIterator<Item = (N, Option<&'a [u8]>)>,
    {
        let mut producer: Option<Option<&[u8]>> = None;
        let mut seq: Option<Option<&[u8]>> = None;
        let mut created: Option<Option<&[u8]>> = None;
        let mut settled: Option<Option<&[u8]>> = None;
        // Every header is looked at before a duplicate is reported, so a bad
        // name anywhere gives the same reason whatever precedes it.
        let mut duplicated = None;
        for (name, value) in headers {
            let name = name.as_ref();
            // ASCII is UTF-8; only other names need the full check.
            if !name.is_ascii() && std::str::from_utf8(name).is_err() {
                return Err(EnvelopeError::HeaderNameNotUtf8);
            }
            let (slot, key) = match name {
                b"mf-producer" => (&mut producer, PRODUCER),
                b"mf-seq" => (&mut seq, SEQ),
                b"mf-created-ns" => (&mut created, CREATED_NS),
                b"mf-settled" => (&mut settled, SETTLED),
                _ => continue,
            };
            if slot.is_some() {
                duplicated = duplicated.or(Some(key));
            }
            *slot = Some(value);
        }
        if let Some(key) = duplicated {
            return Err(EnvelopeError::Duplicated(key));
        }
        if producer.is_none() && seq.is_none() && created.is_none() && settled.is_none() {
            return Ok(None);
        }
        let producer = text(PRODUCER, producer)?;
        if producer.is_empty() {
            return Err(EnvelopeError::EmptyProducer);
        }
        if producer.len() > MAX_PRODUCER_ID_BYTES {
            return Err(EnvelopeError::ProducerTooLong);
        }
        let seq = decimal_header(SEQ, seq)?;
        let created_ns = decimal_header(CREATED_NS, created)?;
        // Optional: absent, the producer does not say (an older one).
        let settled = match settled {
            None => None,
            value => Some(decimal_header(SETTLED, value)?),
        };
        Ok(Some(Envelope {
            producer: producer.to_string(),
            seq,
            created_ns,
            settled,
        }))
    }

    /// Reads the envelope from rdkafka headers: [`Envelope::parse`] over
    /// the raw header list, so a name that is not UTF-8 is an error, not a
    /// panic.
    pub fn from_headers<H: RawHeaders>(
        headers: Option<&H>,
    ) -> Result<Option<Envelope>, EnvelopeError> {
        match headers {
            None => Ok(None),
            Some(h) => Envelope::parse(crate::headers::raw_entries(h)),
        }
    }

    /// Writes the envelope into a header list, replacing any previous copy.
    pub fn write_to(&self, headers: &mut HeaderList) {
        let mut buf = [0u8; 20];
        headers.set(PRODUCER, self.producer.as_bytes());
        headers.set(SEQ, decimal(self.seq, &mut buf));
        headers.set(CREATED_NS, decimal(self.created_ns, &mut buf));
        match self.settled {
            Some(settled) => headers.set(SETTLED, decimal(settled, &mut buf)),
            None => headers.remove(SETTLED),
        }
    }

    /// Appends the envelope to a new message's headers (which must not
    /// carry it yet).
    pub fn add_to(&self, headers: &mut MessageHeaders) {
        let mut buf = [0u8; 20];
        headers.add(PRODUCER, self.producer.as_bytes());
        headers.add(SEQ, decimal(self.seq, &mut buf));
        headers.add(CREATED_NS, decimal(self.created_ns, &mut buf));
        if let Some(settled) = self.settled {
            headers.add(SETTLED, decimal(settled, &mut buf));
        }
    }
}

/// The value of a header as UTF-8 text.
fn text<'a>(key: &'static str, value: Option<Option<&'a [u8]>>) -> Result<&'a str, EnvelopeError> {
    match value {
        None => Err(EnvelopeError::Missing(key)),
        Some(None) => Err(EnvelopeError::NotUtf8(key)),
        Some(Some(bytes)) => std::str::from_utf8(bytes).map_err(|_| EnvelopeError::NotUtf8(key)),
    }
}

/// `n` in decimal, formatted into `buf` (20 digits hold any u64).
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// A decimal header's value: digits only are read directly; anything else
/// goes through [`text`] and [`number`], so the reason for a bad value is
/// the same either way (not UTF-8 before not a number).
fn decimal_header(key: &'static str, value: Option<Option<&[u8]>>) -> Result<u64, EnvelopeError> {
    if let Some(Some(digits)) = value {
        if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
            return digits
                .iter()
                .try_fold(0u64, |n, d| {
                    n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
                })
                .ok_or(EnvelopeError::NotANumber(key));
        }
    }
    number(key, text(key, value)?)
}

/// A strict decimal u64: digits only, no sign, no spaces.
fn number(key: &'static str, text: &str) -> Result<u64, EnvelopeError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EnvelopeError::NotANumber(key));
    }
    text.parse().map_err(|_| EnvelopeError::NotANumber(key))
}

/// Current unix time in nanoseconds.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
