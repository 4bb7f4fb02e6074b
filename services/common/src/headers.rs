//! Message headers as meshflow handles them: a list where setting a header
//! replaces every earlier copy (W3C trace context must never appear twice),
//! and a view of a consumed message's headers read from librdkafka once.
//!
//! Header names are kept as bytes. Kafka defines them as UTF-8 strings, but
//! nothing on the wire enforces it, and rdkafka's `Headers::iter`/`try_get`
//! panic on a name that is not UTF-8. Headers are therefore read with
//! `rd_kafka_header_get_all` directly ([`raw_entries`]); whoever interprets
//! them decides what a bad name means (the envelope parse calls the message
//! invalid). Everything else here works on plain `(name, value)` pairs.

use std::ffi::CStr;

use rdkafka::bindings as rdsys;
use rdkafka::message::{BorrowedHeaders, Headers, OwnedHeaders};

/// One header as raw bytes: name and optional value.
pub type RawHeader<'a> = (&'a [u8], Option<&'a [u8]>);

/// rdkafka header collections that can be read without rdkafka's
/// UTF-8 assumption.
pub trait RawHeaders {
    /// The collection as rdkafka's borrowed form.
    fn as_borrowed_headers(&self) -> &BorrowedHeaders;
}

impl RawHeaders for BorrowedHeaders {
    fn as_borrowed_headers(&self) -> &BorrowedHeaders {
        self
    }
}

impl RawHeaders for OwnedHeaders {
    fn as_borrowed_headers(&self) -> &BorrowedHeaders {
        self.as_borrowed()
    }
}

/// The native header list behind rdkafka's borrowed form. rdkafka 0.39
/// represents `&BorrowedHeaders` as the `rd_kafka_headers_t` pointer itself
/// (its own `Headers` impl casts it the same way); the round-trip test below
/// fails should that ever change.
fn native(headers: &BorrowedHeaders) -> *mut rdsys::rd_kafka_headers_t {
    headers as *const BorrowedHeaders as *mut rdsys::rd_kafka_headers_t
}

/// Calls `f` with every header in order as raw bytes, never panicking on
/// the name.
fn for_each_raw<'h, H: RawHeaders + ?Sized>(headers: &'h H, mut f: impl FnMut(RawHeader<'h>)) {
    let borrowed = headers.as_borrowed_headers();
    let ptr = native(borrowed);
    for idx in 0..borrowed.count() {
        let mut name: *const std::ffi::c_char = std::ptr::null();
        let mut value: *const std::ffi::c_void = std::ptr::null();
        let mut size: usize = 0;
        // SAFETY: `ptr` is a live header list borrowed for the lifetime of
        // the returned slices; librdkafka hands back pointers into it.
        let err =
            unsafe { rdsys::rd_kafka_header_get_all(ptr, idx, &mut name, &mut value, &mut size) };
        if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            break;
        }
        // SAFETY: librdkafka stores every name NUL-terminated and every
        // value as `size` bytes, both owned by the header list.
        let name = unsafe { CStr::from_ptr(name) }.to_bytes();
        let value = (!value.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) });
        f((name, value));
    }
}

/// Every header in order as raw bytes, never panicking on the name.
pub fn raw_entries<H: RawHeaders + ?Sized>(headers: &H) -> Vec<RawHeader<'_>> {
    let mut out = Vec::with_capacity(headers.as_borrowed_headers().count());
    for_each_raw(headers, |h| out.push(h));
    out
}

/// A new message's headers, built straight into rdkafka's native list:
/// every [`add`](MessageHeaders::add) appends, and librdkafka copies name
/// and value. For headers written once each (a fresh message) nothing needs
/// replacing, so no intermediate list is kept.
#[derive(Debug)]
pub struct MessageHeaders {
    headers: OwnedHeaders,
}

impl MessageHeaders {
    /// An empty list with room for `capacity` headers.
    pub fn with_capacity(capacity: usize) -> Self {
        MessageHeaders {
            headers: OwnedHeaders::new_with_capacity(capacity),
        }
    }

    /// Appends a header with a text name.
    pub fn add(&mut self, name: &str, value: &[u8]) {
        self.add_raw(name.as_bytes(), Some(value));
    }

    /// Appends a header whose name may be any bytes (kept as given).
    pub fn add_raw(&mut self, name: &[u8], value: Option<&[u8]>) {
        let (value_ptr, value_len) = match value {
            Some(v) => (v.as_ptr().cast::<std::ffi::c_void>(), v.len() as isize),
            None => (std::ptr::null(), 0),
        };
        // SAFETY: `self.headers` owns a writable list; librdkafka copies
        // name and value. Adding to an owned list cannot fail (rdkafka
        // asserts the same in `OwnedHeaders::insert`).
        unsafe {
            rdsys::rd_kafka_header_add(
                native(self.headers.as_borrowed()),
                name.as_ptr().cast(),
                name.len() as isize,
                value_ptr,
                value_len,
            );
        }
    }

    /// The finished list, ready for a record.
    pub fn into_owned(self) -> OwnedHeaders {
        self.headers
    }
}

/// Message headers in order, where setting a header replaces every earlier
/// copy instead of appending a second one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderList {
    entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl HeaderList {
    /// An empty list.
    pub fn new() -> Self {
        HeaderList::default()
    }

    /// A copy of a consumed message's headers, names kept as they are.
    pub fn copy_of<H: RawHeaders>(headers: Option<&H>) -> Self {
        let entries = headers
            .map(|h| {
                raw_entries(h)
                    .into_iter()
                    .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        HeaderList { entries }
    }

    /// Its entries, names and values as they are, in order.
    pub fn into_entries(self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.entries
    }

    /// Sets `name` to `value`, removing every existing copy first.
    pub fn set(&mut self, name: &str, value: &[u8]) {
        self.remove(name);
        self.entries
            .push((name.as_bytes().to_vec(), Some(value.to_vec())));
    }

    /// Appends a header as given, keeping earlier copies: for re-publishing
    /// and for tests that need duplicated or odd headers.
    pub fn push(&mut self, name: &[u8], value: Option<&[u8]>) {
        self.entries
            .push((name.to_vec(), value.map(<[u8]>::to_vec)));
    }

    /// Removes every copy of `name`.
    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|(k, _)| k != name.as_bytes());
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .and_then(|(_, v)| v.as_deref())
    }

    /// How many copies of `name` there are.
    pub fn count(&self, name: &str) -> usize {
        self.entries
            .iter()
            .filter(|(k, _)| k == name.as_bytes())
            .count()
    }

    /// Iterates in order as raw (name, value).
    pub fn iter(&self) -> impl Iterator<Item = RawHeader<'_>> {
        self.entries
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
    }

    /// The rdkafka form, for producing; names that are not UTF-8 are kept.
    pub fn to_owned_headers(&self) -> OwnedHeaders {
        let mut headers = MessageHeaders::with_capacity(self.entries.len());
        for (k, v) in &self.entries {
            headers.add_raw(k, v.as_deref());
        }
        headers.into_owned()
    }
}

/// Headers a view holds without allocating: meshflow's five and room for
/// a few more.
const INLINE_HEADERS: usize = 8;

/// A view's entries: inline up to [`INLINE_HEADERS`], on the heap beyond.
/// The inline variant is the large one on purpose: it is the one used, and
/// it lives on the stack of one message's handling.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Entries<'a> {
    Inline(usize, [RawHeader<'a>; INLINE_HEADERS]),
    Heap(Vec<RawHeader<'a>>),
}

impl Default for Entries<'_> {
    fn default() -> Self {
        Entries::Inline(0, [(&[], None); INLINE_HEADERS])
    }
}

impl<'a> Entries<'a> {
    fn as_slice(&self) -> &[RawHeader<'a>] {
        match self {
            Entries::Inline(len, items) => &items[..*len],
            Entries::Heap(items) => items,
        }
    }
}

/// A consumed message's headers, read from librdkafka once so that the
/// envelope parser and the trace extractor do not each walk them again.
/// Nothing is copied: the view borrows names and values from the message.
#[derive(Debug, Clone, Default)]
pub struct HeaderView<'a> {
    entries: Entries<'a>,
}

impl<'a> HeaderView<'a> {
    /// Reads every header of a message; never panics on a name.
    pub fn of<H: RawHeaders>(headers: Option<&'a H>) -> Self {
        let Some(headers) = headers else {
            return HeaderView::default();
        };
        if headers.as_borrowed_headers().count() > INLINE_HEADERS {
            return HeaderView::from_entries(raw_entries(headers));
        }
        let mut entries = Entries::default();
        if let Entries::Inline(len, items) = &mut entries {
            for_each_raw(headers, |h| {
                if *len < INLINE_HEADERS {
                    items[*len] = h;
                    *len += 1;
                }
            });
        }
        HeaderView { entries }
    }

    /// A view of plain (name, value) pairs, as [`HeaderView::of`] reads them.
    pub fn from_entries(entries: Vec<RawHeader<'a>>) -> Self {
        HeaderView {
            entries: Entries::Heap(entries),
        }
    }

    /// Iterates in order as raw (name, value).
    pub fn iter(&self) -> impl Iterator<Item = RawHeader<'a>> + '_ {
        self.entries.as_slice().iter().copied()
    }

    /// The first value of `name`, compared without regard to ASCII case.
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.entries
            .as_slice()
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
            .and_then(|(_, v)| *v)
    }

    /// Whether a header `name` is present, with or without a value.
    pub fn has(&self, name: &str) -> bool {
        self.entries
            .as_slice()
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// Names that are UTF-8, in order (others are left out).
    pub fn text_names(&self) -> Vec<&'a str> {
        self.entries
            .as_slice()
            .iter()
            .filter_map(|(k, _)| std::str::from_utf8(k).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::TRACEPARENT;

    #[test]
    fn header_list_replaces_and_copies() {
        let mut list = HeaderList::new();
        list.set(TRACEPARENT, b"a");
        list.set("x", b"1");
        list.set(TRACEPARENT, b"b");
        assert_eq!(list.count(TRACEPARENT), 1);
        assert_eq!(list.get(TRACEPARENT), Some(&b"b"[..]));
        let owned = list.to_owned_headers();
        let copy = HeaderList::copy_of(Some(&owned));
        assert_eq!(copy, list);
        assert_eq!(HeaderList::copy_of::<OwnedHeaders>(None), HeaderList::new());
    }

    #[test]
    fn names_that_are_not_utf8_survive_a_round_trip() {
        let mut list = HeaderList::new();
        list.set("a", b"1");
        list.push(b"mf-\xff", Some(b"2"));
        list.push(b"\xc3\x28", None);
        list.push(b"b", Some(b""));
        let owned = list.to_owned_headers();
        let copy = HeaderList::copy_of(Some(&owned));
        assert_eq!(copy, list);
        let view = HeaderView::of(Some(&owned));
        let got: Vec<_> = view.iter().collect();
        let want: Vec<_> = list.iter().collect();
        assert_eq!(got, want);
        assert_eq!(view.text_names(), ["a", "b"]);
        assert!(view.has("A"));
        assert_eq!(view.get("b"), Some(&b""[..]));
    }
}
