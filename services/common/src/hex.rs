//! Lowercase hexadecimal, as W3C trace context writes ids: on the stack,
//! without the formatting machinery (these run for every message).

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lowercase hex into `out` (two digits a byte; `out` is
/// as long as that).
pub(crate) fn write_lower(out: &mut [u8], bytes: &[u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
}

/// Lowercase hex digits (at most 16) as a number; `None` for any other
/// character.
pub(crate) fn read_lower(digits: &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        n = n << 4 | u64::from(v);
    }
    Some(n)
}

/// 32 lowercase hex digits as the 16 bytes of a trace id.
pub(crate) fn read_trace_id(digits: &[u8]) -> Option<u128> {
    if digits.len() != 32 {
        return None;
    }
    Some(u128::from(read_lower(&digits[..16])?) << 64 | u128::from(read_lower(&digits[16..])?))
}
