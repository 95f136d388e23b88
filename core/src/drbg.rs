//! Deterministic random bit generator seeded by the shell.
//!
//! The core never asks the OS for randomness. Shells hand in seed material from their CSPRNG
//! ([`crate::Input::Entropy`]); the core stretches it with ChaCha20 for IVs, request ids and
//! generated data keys. The simulator seeds it from its run seed, so runs replay exactly.
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// A ChaCha20 stream keyed by shell-provided entropy; mixes in every reseed.
pub struct Drbg {
    rng: Option<ChaCha20Rng>,
}

impl std::fmt::Debug for Drbg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.rng.is_some() {
            "Drbg(seeded)"
        } else {
            "Drbg(unseeded)"
        })
    }
}

impl Default for Drbg {
    fn default() -> Self {
        Self::new()
    }
}

impl Drbg {
    /// An unseeded generator; [`Drbg::fill`] fails until [`Drbg::reseed`] is called.
    pub fn new() -> Self {
        Drbg { rng: None }
    }

    /// Mixes 32 bytes of fresh entropy into the state.
    pub fn reseed(&mut self, entropy: &[u8; 32]) {
        let mut seed = *entropy;
        if let Some(rng) = self.rng.as_mut() {
            let mut old = [0u8; 32];
            rng.fill_bytes(&mut old);
            for (s, o) in seed.iter_mut().zip(old) {
                *s ^= o;
            }
        }
        self.rng = Some(ChaCha20Rng::from_seed(seed));
    }

    /// Whether entropy has been supplied.
    pub fn is_seeded(&self) -> bool {
        self.rng.is_some()
    }

    /// Fills `out` with random bytes; `false` (and `out` untouched) if never seeded.
    pub fn fill(&mut self, out: &mut [u8]) -> bool {
        match self.rng.as_mut() {
            Some(rng) => {
                rng.fill_bytes(out);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unseeded_refuses_and_seeded_is_deterministic() {
        let mut d = Drbg::new();
        let mut buf = [0u8; 16];
        assert!(!d.fill(&mut buf));
        d.reseed(&[7; 32]);
        let mut e = Drbg::new();
        e.reseed(&[7; 32]);
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        assert!(d.fill(&mut a) && e.fill(&mut b));
        assert_eq!(a, b);
        assert_ne!(a, [0u8; 16]);
        d.reseed(&[7; 32]);
        d.fill(&mut a);
        e.fill(&mut b);
        assert_ne!(a, b, "a reseed mixes with the old state");
    }
}
