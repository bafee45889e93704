//! Key pairs from the simulation seed. ring only generates keys from the operating system's
//! random source, so the scalar comes from a seeded generator and the P-256 arithmetic from the
//! `p256` crate; the key is then handed to rcgen and rustls as ordinary PKCS#8.

use mesh_ca::{CaError, KeyFactory};
use p256::pkcs8::EncodePrivateKey;
use rand::{rngs::StdRng, RngCore, SeedableRng};
use rcgen::{KeyPair, SignatureAlgorithm};
use rustls_pki_types::PrivatePkcs8KeyDer;
use sha2::{Digest, Sha256};
use std::cell::RefCell;

/// A generator seeded from the simulation seed and a label, so independent users (the CA, the
/// foreign CA of the probes) draw from independent streams.
pub(crate) fn rng(seed: u64, label: &str) -> StdRng {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(label.as_bytes());
    StdRng::from_seed(h.finalize().into())
}

/// A [`KeyFactory`] whose keys are a function of the seed and the order of requests.
pub struct SeededKeys {
    rng: RefCell<StdRng>,
}

impl SeededKeys {
    pub fn new(seed: u64, label: &str) -> SeededKeys {
        SeededKeys {
            rng: RefCell::new(rng(seed, label)),
        }
    }
}

impl std::fmt::Debug for SeededKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeededKeys")
    }
}

impl KeyFactory for SeededKeys {
    fn generate(&self, alg: &'static SignatureAlgorithm) -> Result<KeyPair, CaError> {
        if alg != &rcgen::PKCS_ECDSA_P256_SHA256 {
            return Err(CaError::UnsupportedKey(
                "other than ec 256 in the simulator".into(),
            ));
        }
        // A random 32-byte string is a valid scalar except with probability ~2^-32; draw again.
        for _ in 0..16 {
            let mut bytes = [0u8; 32];
            self.rng.borrow_mut().fill_bytes(&mut bytes);
            let Ok(secret) = p256::SecretKey::from_bytes(&bytes.into()) else {
                continue;
            };
            let der = secret
                .to_pkcs8_der()
                .map_err(|e| CaError::Stored(e.to_string()))?;
            return KeyPair::from_pkcs8_der_and_sign_algo(
                &PrivatePkcs8KeyDer::from(der.as_bytes()),
                alg,
            )
            .map_err(CaError::KeyGeneration);
        }
        Err(CaError::Stored("no valid P-256 scalar drawn".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_keys_different_seed_different_keys() {
        let a = SeededKeys::new(7, "ca");
        let b = SeededKeys::new(7, "ca");
        let c = SeededKeys::new(8, "ca");
        let alg = &rcgen::PKCS_ECDSA_P256_SHA256;
        let ka = a.generate(alg).unwrap().serialize_der();
        assert_eq!(ka, b.generate(alg).unwrap().serialize_der());
        assert_ne!(ka, c.generate(alg).unwrap().serialize_der());
        assert!(a.generate(&rcgen::PKCS_ECDSA_P384_SHA384).is_err());
    }
}
