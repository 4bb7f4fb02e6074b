//! Receipt-batch JSON decode, as the exporter reads `meshflow.receipts`:
//! any bytes are refused or decoded, and what decodes encodes back to the
//! same batch.

#![no_main]

use libfuzzer_sys::fuzz_target;
use meshflow_common::receipt::ReceiptBatch;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = serde_json::from_slice::<ReceiptBatch>(data) {
        let encoded = serde_json::to_vec(&batch).expect("a decoded batch encodes");
        let decoded: ReceiptBatch =
            serde_json::from_slice(&encoded).expect("an encoded batch decodes");
        assert_eq!(decoded, batch);
    }
});
