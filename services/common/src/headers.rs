//! Message headers as meshflow handles them: a list where setting a header
//! replaces every earlier copy (W3C trace context must never appear twice),
//! and a view of a consumed message's headers read from librdkafka once.

use rdkafka::message::{Header, Headers, OwnedHeaders};

/// Message headers in order, where setting a header replaces every earlier
/// copy instead of appending a second one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderList {
    entries: Vec<(String, Option<Vec<u8>>)>,
}

impl HeaderList {
    /// An empty list.
    pub fn new() -> Self {
        HeaderList::default()
    }

    /// A copy of a consumed message's headers.
    pub fn copy_of<H: Headers>(headers: Option<&H>) -> Self {
        let entries = headers
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        HeaderList { entries }
    }

    /// Sets `name` to `value`, removing every existing copy first.
    pub fn set(&mut self, name: &str, value: &[u8]) {
        self.remove(name);
        self.entries.push((name.to_string(), Some(value.to_vec())));
    }

    /// Removes every copy of `name`.
    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|(k, _)| k != name);
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// How many copies of `name` there are.
    pub fn count(&self, name: &str) -> usize {
        self.entries.iter().filter(|(k, _)| k == name).count()
    }

    /// Iterates in order as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_deref()))
    }

    /// The rdkafka form, for producing.
    pub fn to_owned_headers(&self) -> OwnedHeaders {
        self.entries.iter().fold(
            OwnedHeaders::new_with_capacity(self.entries.len()),
            |h, (k, v)| {
                h.insert(Header {
                    key: k,
                    value: v.as_deref(),
                })
            },
        )
    }
}

/// A consumed message's headers, read from librdkafka once so that the
/// envelope parser and the trace extractor do not each walk them again.
#[derive(Debug, Clone, Default)]
pub struct HeaderView<'a> {
    entries: Vec<(&'a str, Option<&'a [u8]>)>,
}

impl<'a> HeaderView<'a> {
    /// Reads every header of a message.
    pub fn of<H: Headers>(headers: Option<&'a H>) -> Self {
        let entries = headers
            .map(|h| {
                let mut v = Vec::with_capacity(h.count());
                v.extend(h.iter().map(|h| (h.key, h.value)));
                v
            })
            .unwrap_or_default();
        HeaderView { entries }
    }

    /// Iterates in order as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + '_ {
        self.entries.iter().copied()
    }

    /// The first value of `name`, compared without regard to ASCII case.
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| *v)
    }

    /// Whether a header `name` is present, with or without a value.
    pub fn has(&self, name: &str) -> bool {
        self.entries
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
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
}
