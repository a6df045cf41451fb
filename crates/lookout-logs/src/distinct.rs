//! Counting distinct clients: exact up to a bound, then HyperLogLog — and always able to say which.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use serde::Serialize;

/// Above this many distinct values the exact set becomes a HyperLogLog sketch.
pub const EXACT_LIMIT: usize = 100_000;
const HLL_BITS: u32 = 14; // 16,384 registers: ~0.8% standard error, 16 KiB
const HLL_REGISTERS: usize = 1 << HLL_BITS;

/// How a count was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    Exact,
    /// HyperLogLog estimate, about ±0.8%.
    Estimate,
}

/// Hashes a value that is already a well-mixed 64-bit hash ([`hash`]) by passing it through: the set is probed
/// once per log line, and hashing a hash again with SipHash cost more than the rest of the insert.
#[derive(Clone, Copy, Debug, Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; fold anything else in case that changes.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A set of [`hash`] values.
pub type HashSet64 = HashSet<u64, BuildHasherDefault<PassThrough>>;

/// A mergeable distinct counter over 64-bit hashes.
#[derive(Clone, Debug)]
pub enum Distinct {
    Exact(HashSet64),
    Sketch(Box<[u8]>),
}

impl Default for Distinct {
    fn default() -> Self {
        Distinct::Exact(HashSet64::default())
    }
}

/// What counts as one client when counting the clients affected: an approximation of users either way (several
/// users can share an address behind a NAT, one user can have several).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientKey {
    /// The client address (`%a`/`%h`).
    #[default]
    Address,
    /// Address and User-Agent: tells apart users behind one address, counts one user with two browsers twice.
    AddressAndUserAgent,
}

impl ClientKey {
    pub fn parse(name: &str) -> Option<ClientKey> {
        match name {
            "address" => Some(ClientKey::Address),
            "address+user-agent" => Some(ClientKey::AddressAndUserAgent),
            _ => None,
        }
    }

    /// What was counted, for reports: "client addresses" or "client address + User-Agent pairs".
    pub fn describe(self) -> &'static str {
        match self {
            ClientKey::Address => "client addresses",
            ClientKey::AddressAndUserAgent => "client address + User-Agent pairs",
        }
    }

    pub fn hash(self, client: &str, user_agent: &str) -> u64 {
        match self {
            ClientKey::Address => hash(client.as_bytes()),
            ClientKey::AddressAndUserAgent => {
                let mut key = Vec::with_capacity(client.len() + user_agent.len() + 1);
                key.extend_from_slice(client.as_bytes());
                key.push(0);
                key.extend_from_slice(user_agent.as_bytes());
                hash(&key)
            }
        }
    }
}

/// A fast 64-bit hash of a client key (FNV-1a, then a SplitMix64 finaliser for HyperLogLog's sake).
pub fn hash(key: &[u8]) -> u64 {
    let mut h = lookout_core::hash::fnv1a(key);
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl Distinct {
    pub fn insert_hash(&mut self, h: u64) {
        match self {
            Distinct::Exact(set) => {
                set.insert(h);
                if set.len() > EXACT_LIMIT {
                    let mut regs = vec![0u8; HLL_REGISTERS].into_boxed_slice();
                    for &v in set.iter() {
                        sketch_add(&mut regs, v);
                    }
                    *self = Distinct::Sketch(regs);
                }
            }
            Distinct::Sketch(regs) => sketch_add(regs, h),
        }
    }

    pub fn insert(&mut self, key: &[u8]) {
        self.insert_hash(hash(key));
    }

    pub fn merge(&mut self, other: &Distinct) {
        match other {
            Distinct::Exact(set) => {
                for &h in set {
                    self.insert_hash(h);
                }
            }
            Distinct::Sketch(theirs) => {
                if let Distinct::Exact(set) = self {
                    let mut regs = vec![0u8; HLL_REGISTERS].into_boxed_slice();
                    for &v in set.iter() {
                        sketch_add(&mut regs, v);
                    }
                    *self = Distinct::Sketch(regs);
                }
                if let Distinct::Sketch(mine) = self {
                    for (m, t) in mine.iter_mut().zip(theirs.iter()) {
                        *m = (*m).max(*t);
                    }
                }
            }
        }
    }

    pub fn count(&self) -> u64 {
        match self {
            Distinct::Exact(set) => set.len() as u64,
            Distinct::Sketch(regs) => estimate(regs),
        }
    }

    pub fn precision(&self) -> Precision {
        match self {
            Distinct::Exact(_) => Precision::Exact,
            Distinct::Sketch(_) => Precision::Estimate,
        }
    }
}

fn sketch_add(regs: &mut [u8], h: u64) {
    let idx = (h >> (64 - HLL_BITS)) as usize;
    let rank = ((h << HLL_BITS) | (1 << (HLL_BITS - 1))).leading_zeros() as u8 + 1;
    if let Some(r) = regs.get_mut(idx) {
        *r = (*r).max(rank);
    }
}

fn estimate(regs: &[u8]) -> u64 {
    let m = regs.len() as f64;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let sum: f64 = regs.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
    let raw = alpha * m * m / sum;
    let zeros = regs.iter().filter(|&&r| r == 0).count();
    let e = if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw };
    e.round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_the_limit() {
        let mut d = Distinct::default();
        for i in 0..1000u32 {
            d.insert(format!("10.0.{}.{}", i / 256, i % 256).as_bytes());
            d.insert(format!("10.0.{}.{}", i / 256, i % 256).as_bytes());
        }
        assert_eq!(d.count(), 1000);
        assert_eq!(d.precision(), Precision::Exact);
    }

    #[test]
    fn estimate_above_the_limit_within_two_percent() {
        let mut d = Distinct::default();
        let n = 300_000u32;
        for i in 0..n {
            d.insert(&i.to_le_bytes());
        }
        assert_eq!(d.precision(), Precision::Estimate);
        let err = (d.count() as f64 - f64::from(n)).abs() / f64::from(n);
        assert!(err < 0.02, "estimate {} for {n}", d.count());
    }

    #[test]
    fn merge_exact_and_sketch() {
        let mut a = Distinct::default();
        let mut b = Distinct::default();
        for i in 0..500u32 {
            a.insert(&i.to_le_bytes());
            b.insert(&(i + 250).to_le_bytes());
        }
        a.merge(&b);
        assert_eq!(a.count(), 750);
        let mut big = Distinct::default();
        for i in 0..(EXACT_LIMIT as u32 + 10) {
            big.insert(&i.to_le_bytes());
        }
        let mut small = Distinct::default();
        small.insert(b"x");
        small.merge(&big);
        assert_eq!(small.precision(), Precision::Estimate);
        let err = (small.count() as f64 - (EXACT_LIMIT + 11) as f64).abs() / EXACT_LIMIT as f64;
        assert!(err < 0.02);
    }
}
