//! Reading a service's `/metrics` and health endpoints.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// `GET path` on 127.0.0.1:port; returns (status, body). `None` when the
/// endpoint does not answer.
pub fn get(port: u16, path: &str, accept: Option<&str>) -> Option<(u16, String)> {
    get_at(([127, 0, 0, 1], port).into(), path, accept)
}

/// [`get`] on any address.
pub fn get_at(addr: SocketAddr, path: &str, accept: Option<&str>) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{accept}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Samples of the Prometheus text format: full series text (name and
/// labels, as written) to value.
pub fn samples(port: u16) -> Option<HashMap<String, f64>> {
    let (status, body) = get(port, "/metrics", None)?;
    if status != 200 {
        return None;
    }
    Some(parse(&body))
}

/// Parses Prometheus text format sample lines.
pub fn parse(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of the series of `name` whose labels include `labels`, or
/// `None` when no such series is published: an assertion on a figure must
/// not read a missing (renamed, never published) series as zero.
pub fn value(samples: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for (series, v) in samples {
        let (n, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
        if n == name
            && labels
                .iter()
                .all(|(k, l)| rest.contains(&format!("{k}=\"{l}\"")))
        {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// Sum of every sample of `name` whose labels contain all of `labels`
/// (`key="value"` pairs), or NaN when no such series is published. NaN
/// equals nothing and compares with nothing, so a missing (renamed, never
/// published) series fails `assert_eq!(sum(..), 0.0)` and every bound,
/// and a waiting loop such as `sum(..) >= n` keeps waiting for it.
pub fn sum(samples: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(samples, name, labels).unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_series_is_no_figure() {
        let s = parse("a_total{stage=\"log\"} 0\na_total{stage=\"processed\"} 2\n");
        assert_eq!(sum(&s, "a_total", &[("stage", "log")]), 0.0);
        assert_eq!(sum(&s, "a_total", &[]), 2.0);
        assert_eq!(value(&s, "b_total", &[]), None);
        let missing = sum(&s, "b_total", &[]);
        assert!(missing != 0.0 && missing.partial_cmp(&0.0).is_none());
        assert_eq!(value(&s, "a_total", &[("stage", "other")]), None);
    }
}
