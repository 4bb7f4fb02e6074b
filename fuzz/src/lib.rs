//! Input formats shared by the fuzz targets. Inputs are plain text-like
//! bytes so the committed seeds can be read and written by hand: one item a
//! line, `NAME=VALUE`, where a line without `=` is a header with no value.
//! Names and values may hold any bytes but a newline.

/// Splits `data` into (name, value) pairs, one per line.
pub fn pairs(data: &[u8]) -> Vec<(&[u8], Option<&[u8]>)> {
    if data.is_empty() {
        return Vec::new();
    }
    data.split(|&b| b == b'\n')
        .map(|line| match line.iter().position(|&b| b == b'=') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        })
        .collect()
}

/// A value with `\n` written as backslash-n turned into a newline, so a
/// seed can hold a value that ends in one (as a Kubernetes Secret may).
pub fn unescape(value: &str) -> String {
    value.replace("\\n", "\n")
}
