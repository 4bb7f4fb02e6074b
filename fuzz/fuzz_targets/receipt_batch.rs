//! Receipt-record decode, as the exporter reads `meshflow.receipts`, in
//! both formats: the first byte picks the format (even: format 1, JSON;
//! odd: format 2, binary) and the rest is the body. Any body is refused or
//! decoded; what decodes encodes back to the same batch; a format-2 body
//! yields at most one entry per 4 bytes, so nothing is allocated beyond
//! its size.

#![no_main]

use libfuzzer_sys::fuzz_target;
use meshflow_common::receipt::{binary, decode, ReceiptBatch};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    if pick % 2 == 0 {
        if let Ok(batch) = serde_json::from_slice::<ReceiptBatch>(body) {
            let encoded = serde_json::to_vec(&batch).expect("a decoded batch encodes");
            let decoded: ReceiptBatch =
                serde_json::from_slice(&encoded).expect("an encoded batch decodes");
            assert_eq!(decoded, batch);
        }
        return;
    }
    if let Ok(batch) = binary::decode(body) {
        assert!(batch.len() <= body.len() / 4, "{} entries", batch.len());
        let mut encoded = Vec::new();
        batch.encode(&mut encoded);
        assert_eq!(binary::decode(&encoded).expect("an encoded batch decodes"), batch);
        // The record view gives every entry, with times in nanoseconds.
        let record = decode(Some(b"2"), body).expect("decodes as a record");
        let mut n = 0;
        record.for_each_entry(|e| {
            assert!(e.processed_ns % 1_000 == 0 && e.created_ns % 1_000 == 0);
            n += 1;
        });
        assert_eq!(n, batch.len());
    }
});
