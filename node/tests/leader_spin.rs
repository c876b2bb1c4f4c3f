//! The leader's spin before parking (docs/adr/0021-leader-spin.md), in a
//! process of its own: finding the runtime's epoll instance needs no other
//! runtime to be built at the same moment, which other tests in one binary
//! would do.

use std::time::{Duration, Instant};

use aegis_node::leader_spin::{after_build, before_build, InFlight};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// With a proposal in flight and a budget of 2 s per park, 20 round trips
/// over a socket still take far less than 10 s: each spin ends when the
/// runtime's epoll has the next message, not when its budget runs out
/// (which would take at least 40 s).
#[test]
fn the_spin_ends_when_the_runtime_has_work() {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(1).enable_all();
    let Some(setup) = before_build(&mut builder, Duration::from_secs(2)) else {
        panic!("a non-zero budget installs the spin");
    };
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    assert!(after_build(setup), "the runtime's epoll was not found");
    let _in_flight = InFlight::start();
    let started = Instant::now();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let echo = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await?;
            for _ in 0..20 {
                let mut b = [0u8; 1];
                s.read_exact(&mut b).await?;
                s.write_all(&b).await?;
            }
            Ok::<_, std::io::Error>(())
        });
        let mut c = tokio::net::TcpStream::connect(addr).await?;
        for i in 0..20u8 {
            c.write_all(&[i]).await?;
            let mut b = [0u8; 1];
            c.read_exact(&mut b).await?;
            assert_eq!(b[0], i);
        }
        echo.await.map_err(std::io::Error::other)??;
        Ok::<_, std::io::Error>(())
    })
    .unwrap_or_else(|e| panic!("echo: {e}"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "20 round trips took {:?}: the spin ran out its budget",
        started.elapsed()
    );
}
