//! A fast, deterministic hasher for the auditor's own indexes (ARN -> principal, document
//! text -> parsed document, node id -> node, edge pairs). At 200,000 roles the std SipHash
//! was the single largest cost of the audit (9% of its CPU, profiled with perf): its keys are
//! long ARNs and whole policy texts, hashed millions of times. This is the Fx hash of rustc
//! (a multiply and rotate per 8 bytes), written here to add no dependency.
//!
//! Not resistant to chosen collisions: the keys are the audited organisation's own IAM
//! names and documents, read by its own auditor, not requests from strangers; a crafted
//! export could at worst slow its own audit down.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// `HashMap` with [`FxHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// `HashSet` with [`FxHasher`].
pub type FastSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// rustc's Fx hash: fold each word in with a rotate, xor and multiply.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn equal_keys_hash_equal_and_near_keys_apart() {
        let h = |s: &str| {
            let mut x = FxHasher::default();
            x.write(s.as_bytes());
            x.finish()
        };
        let a = "arn:aws:iam::200000000001:role/rolehop-prod-deploy";
        assert_eq!(h(a), h(a));
        assert_ne!(
            h(a),
            h("arn:aws:iam::200000000002:role/rolehop-prod-deploy")
        );
        let mut m: FastMap<&str, usize> = FastMap::default();
        m.insert(a, 1);
        assert_eq!(m.get(a), Some(&1));
    }
}
