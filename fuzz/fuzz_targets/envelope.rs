//! Envelope parse from arbitrary header (name, value) pairs, names that are
//! not UTF-8 included, both as plain pairs and through librdkafka's own
//! header list (what the consumer and the exporter read).

#![no_main]

use libfuzzer_sys::fuzz_target;
use meshflow_common::envelope::{
    Envelope, EnvelopeError, HeaderList, HeaderView, MAX_PRODUCER_ID_BYTES,
};

fuzz_target!(|data: &[u8]| {
    let pairs = meshflow_fuzz::pairs(data);
    let parsed = Envelope::parse(pairs.iter().copied());

    if pairs.iter().any(|(name, _)| std::str::from_utf8(name).is_err()) {
        assert_eq!(parsed, Err(EnvelopeError::HeaderNameNotUtf8));
    }
    match &parsed {
        Ok(Some(envelope)) => {
            assert!(!envelope.producer.is_empty());
            assert!(envelope.producer.len() <= MAX_PRODUCER_ID_BYTES);
            // What parses writes back and parses to the same envelope.
            let mut written = HeaderList::new();
            envelope.write_to(&mut written);
            assert_eq!(Envelope::parse(written.iter()), Ok(Some(envelope.clone())));
        }
        Ok(None) => {}
        Err(e) => assert!(!e.reason().is_empty()),
    }

    // librdkafka keeps names NUL-terminated, so a name with a NUL byte
    // reads back cut short; every other header reads back as written.
    if pairs.iter().all(|(name, _)| !name.contains(&0)) {
        let mut list = HeaderList::new();
        for (name, value) in &pairs {
            list.push(name, *value);
        }
        let owned = list.to_owned_headers();
        assert_eq!(Envelope::from_headers(Some(&owned)), parsed);
        let view = HeaderView::of(Some(&owned));
        assert_eq!(view.iter().collect::<Vec<_>>(), pairs);
        assert_eq!(HeaderList::copy_of(Some(&owned)), list);
    }
});
