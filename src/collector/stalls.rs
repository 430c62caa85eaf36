//! What the intake and the page bound so that no client can starve them:
//! requests still being received, counted by where they come from
//! ([`Source`]), at most [`MAX_UNFINISHED`](super::server::MAX_UNFINISHED) in
//! all and [`MAX_UNFINISHED_PER_ADDRESS`](super::server::MAX_UNFINISHED_PER_ADDRESS)
//! from one address; a newcomer past either bound cuts the oldest of its own
//! address, or of the address that has the most ([`Receiving::admit`]).

use super::server::{MAX_UNFINISHED, MAX_UNFINISHED_PER_ADDRESS};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use tokio::task::AbortHandle;

/// Where connections come from, as counted: an IPv4 address (an IPv4-mapped
/// IPv6 address as that IPv4 address), or the /64 of an IPv6 address (what
/// one host or site is normally given).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Source(IpAddr);

impl Source {
    pub fn of(ip: IpAddr) -> Source {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                Source(IpAddr::V6(Ipv6Addr::from(bits)))
            }
            v4 => Source(v4),
        }
    }
}

/// The requests being received, oldest first by source, each with what cuts
/// its connection.
#[derive(Default)]
pub struct Receiving {
    inner: Mutex<ReceivingInner>,
}

#[derive(Default)]
struct ReceivingInner {
    next_id: u64,
    total: usize,
    by_source: HashMap<Source, VecDeque<(u64, AbortHandle)>>,
}

impl Receiving {
    fn lock(&self) -> std::sync::MutexGuard<'_, ReceivingInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn next_id(&self) -> u64 {
        let mut inner = self.lock();
        inner.next_id += 1;
        inner.next_id
    }

    /// Counts a new connection's request as being received, first cutting
    /// one to make room if a bound is reached: the oldest from its own
    /// source when that source is at its bound, otherwise, when all are
    /// taken, the oldest from the source that has the most (of those with
    /// as many, the one whose oldest is oldest).
    pub fn admit(&self, source: Source, id: u64, cut: AbortHandle) {
        let mut inner = self.lock();
        let own = inner.by_source.get(&source).map_or(0, VecDeque::len);
        let victim = if own >= MAX_UNFINISHED_PER_ADDRESS {
            Some(source)
        } else if inner.total >= MAX_UNFINISHED {
            // Among sources with as many, the one whose oldest is oldest.
            inner
                .by_source
                .iter()
                .max_by_key(|(_, queue)| {
                    let oldest = queue.front().map_or(u64::MAX, |(id, _)| *id);
                    (queue.len(), std::cmp::Reverse(oldest))
                })
                .map(|(s, _)| *s)
        } else {
            None
        };
        if let Some(victim) = victim {
            if let Some((_, handle)) = inner
                .by_source
                .get_mut(&victim)
                .and_then(VecDeque::pop_front)
            {
                handle.abort();
                inner.total -= 1;
            }
            if inner.by_source.get(&victim).is_some_and(VecDeque::is_empty) {
                inner.by_source.remove(&victim);
            }
        }
        inner
            .by_source
            .entry(source)
            .or_default()
            .push_back((id, cut));
        inner.total += 1;
    }

    /// The request is no longer being received: it was, whole, or its
    /// connection ended (if it was cut for room, it is no longer counted).
    pub fn release(&self, source: Source, id: u64) {
        let mut inner = self.lock();
        let Some(queue) = inner.by_source.get_mut(&source) else {
            return;
        };
        let Some(at) = queue.iter().position(|(i, _)| *i == id) else {
            return;
        };
        queue.remove(at);
        if queue.is_empty() {
            inner.by_source.remove(&source);
        }
        inner.total -= 1;
    }

    pub fn is_counted(&self, source: Source, id: u64) -> bool {
        self.lock()
            .by_source
            .get(&source)
            .is_some_and(|queue| queue.iter().any(|(i, _)| *i == id))
    }
}

/// A connection's request while it is being received; no longer counted when
/// the connection ends, however it ends.
pub struct Unfinished {
    pub receiving: Arc<Receiving>,
    pub source: Source,
    pub id: u64,
}

impl Unfinished {
    /// Whether the request was received whole.
    pub fn is_received(&self) -> bool {
        !self.receiving.is_counted(self.source, self.id)
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        self.receiving.release(self.source, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(ip: &str) -> Source {
        Source::of(ip.parse().unwrap())
    }

    #[test]
    fn an_ipv6_address_counts_as_its_64_and_an_ipv4_mapped_one_as_ipv4() {
        assert_eq!(
            source("2001:db8:1:2::1"),
            source("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_eq!(
            source("2001:db8:1:2::1"),
            Source("2001:db8:1:2::".parse().unwrap())
        );
        assert_ne!(source("2001:db8:1:2::1"), source("2001:db8:1:3::1"));
        assert_eq!(source("::ffff:127.0.0.2"), source("127.0.0.2"));
        assert_eq!(
            source("::ffff:127.0.0.2"),
            Source("127.0.0.2".parse().unwrap())
        );
        assert_ne!(source("127.0.0.2"), source("127.0.0.3"));
    }
}
