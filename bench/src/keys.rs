//! Key and value generation. A tiny xorshift generator is enough: keys only need to spread
//! over the key space, not to be unpredictable.

/// xorshift64* — deterministic per seed, no allocation, no shared state between workers.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // Zero is a fixed point of xorshift; mix the seed so nearby seeds diverge at once.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant for key spreading.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Key number `i` rendered as `prefix` + zero-padded decimal, padded so every key of the
/// space has the same length (at least `key_size` bytes when the prefix leaves room).
pub fn key(prefix: &str, i: u64, key_size: usize) -> Vec<u8> {
    let digits = key_size.saturating_sub(prefix.len()).max(1);
    format!("{prefix}{i:0digits$}").into_bytes()
}

/// A value of exactly `size` bytes (printable, so tools can show it).
pub fn value(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_fixed_width() {
        assert_eq!(key("k", 7, 8), b"k0000007".to_vec());
        assert_eq!(key("k", 1234567, 8), b"k1234567".to_vec());
        // A prefix longer than the size still yields distinct keys.
        assert_eq!(key("longprefix/", 3, 4), b"longprefix/3".to_vec());
    }

    #[test]
    fn value_has_requested_size() {
        assert_eq!(value(256).len(), 256);
        assert!(value(0).is_empty());
    }

    #[test]
    fn rng_spreads_and_is_deterministic() {
        let mut a = Rng::new(1);
        let mut b = Rng::new(1);
        let xs: Vec<u64> = (0..100).map(|_| a.below(10)).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.below(10)).collect();
        assert_eq!(xs, ys);
        let mut seen = [false; 10];
        for x in xs {
            seen[x as usize] = true;
        }
        assert!(
            seen.iter().all(|s| *s),
            "100 draws should hit all 10 buckets"
        );
    }
}
