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

/// Sum of every sample of `name` whose labels contain all of `labels`
/// (`key="value"` pairs).
pub fn sum(samples: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| v)
        .sum()
}
