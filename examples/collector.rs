//! A telemetry collector on loopback, for trying the library out:
//! `cargo run --example collector -- [ADDR]` (default 127.0.0.1:0).
//! Prints `listening on http://ADDR/` and then each received report body,
//! one JSON line each, on stdout.

#[path = "../tests/support/collector.rs"]
mod collector;

use std::time::Duration;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let c = collector::Collector::start_on(&addr, collector::Behaviour::Accept);
    println!("listening on http://{}/", c.addr);
    let mut shown = 0;
    loop {
        let received = c.received();
        for r in &received[shown..] {
            println!("{}", r.body);
        }
        shown = received.len();
        std::thread::sleep(Duration::from_millis(50));
    }
}
