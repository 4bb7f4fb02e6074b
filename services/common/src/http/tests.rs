use super::*;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

fn endpoint() -> Endpoint {
    let mut registry = Registry::with_prefix("meshflow");
    let readiness = Readiness::new(&[], &mut registry);
    Endpoint {
        registry: Arc::new(registry),
        readiness,
        statesets: Vec::new(),
    }
}

async fn start() -> (SocketAddr, CancellationToken) {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let shutdown = CancellationToken::new();
    serve(addr, endpoint(), shutdown.clone())
        .await
        .expect("serve");
    (addr, shutdown)
}

/// One complete request on a new connection; the whole response.
async fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads until the server closes the connection (EOF or reset).
/// `n` connections to `addr` that have sent `partial`, a request without its
/// end.
async fn half_sent(addr: SocketAddr, n: usize, partial: &[u8]) -> Vec<TcpStream> {
    let mut sent = Vec::new();
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(partial).await.expect("partial request");
        sent.push(s);
    }
    sent
}

async fn closed_by_server(s: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answers_while_half_open_connections_are_held() {
    let (addr, shutdown) = start().await;
    let mut stalled = half_sent(addr, 300, b"GET /metrics HTTP/1.1\r\nHost: t\r\n").await;
    // An idle keep-alive connection after one complete request.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 256];
    let n = idle.read(&mut buf).await.expect("response");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    for _ in 0..5 {
        let started = Instant::now();
        let resp = timeout(Duration::from_secs(2), get(addr, "/metrics"))
            .await
            .expect("/metrics answers while half-open connections are held");
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(resp.contains("meshflow_service_ready"), "{resp}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    let started = Instant::now();
    for s in stalled.iter_mut().chain(std::iter::once(&mut idle)) {
        timeout(Duration::from_secs(15), closed_by_server(s))
            .await
            .expect("a half-sent or idle connection is closed by the server");
    }
    println!("half-open connections closed after {:?}", started.elapsed());
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap_holds_new_clients_until_a_slot_frees() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let limits = Limits {
        header_read_timeout: Duration::from_secs(1),
        max_connections: 4,
        ..Limits::default()
    };
    let shutdown = CancellationToken::new();
    serve_on(listener, endpoint(), limits, shutdown.clone());
    let _stalled = half_sent(addr, 4, b"GET /metrics HTTP/1.1\r\n").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let resp = timeout(Duration::from_secs(5), get(addr, "/metrics"))
        .await
        .expect("answered once the stalled connections time out");
    let waited = started.elapsed();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(
        waited >= Duration::from_millis(600),
        "a fifth connection must wait for a slot, waited {waited:?}"
    );
    shutdown.cancel();
}

#[test]
fn accept_backoff_doubles_to_its_ceiling_and_resets() {
    let mut b = AcceptBackoff::new(Duration::from_millis(50));
    let pauses: Vec<u128> = (0..5).map(|_| b.failed().as_millis()).collect();
    assert_eq!(pauses, [10, 20, 40, 50, 50]);
    b.succeeded();
    assert_eq!(b.failed(), Duration::from_millis(10));
}
