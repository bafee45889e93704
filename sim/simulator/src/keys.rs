//! Key pairs from the simulation seed. ring only generates keys from the operating system's
//! random source, so the scalar comes from a seeded generator and the P-256 (or P-384)
//! arithmetic from the `p256` (`p384`) crate; the key is then handed to rcgen and rustls as
//! ordinary PKCS#8.

use mesh_ca::{CaError, KeyFactory};
use p256::pkcs8::EncodePrivateKey;
use rand::{rngs::StdRng, RngCore, SeedableRng};
use rcgen::{KeyPair, SignatureAlgorithm};
use rustls_pki_types::PrivatePkcs8KeyDer;
use sha2::{Digest, Sha256};
use std::sync::Mutex;

/// A generator seeded from the simulation seed and a label, so independent users (the CA, the
/// foreign CA of the probes) draw from independent streams.
pub(crate) fn rng(seed: u64, label: &str) -> StdRng {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(label.as_bytes());
    StdRng::from_seed(h.finalize().into())
}

/// A [`KeyFactory`] whose keys are a function of the seed and the order of requests. (A mutex,
/// not a cell, because the control plane shares its key factory across threads; in the
/// simulation there is only one.)
pub struct SeededKeys {
    rng: Mutex<StdRng>,
}

impl SeededKeys {
    pub fn new(seed: u64, label: &str) -> SeededKeys {
        SeededKeys {
            rng: Mutex::new(rng(seed, label)),
        }
    }

    fn fill(&self, bytes: &mut [u8]) {
        self.rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fill_bytes(bytes);
    }
}

impl std::fmt::Debug for SeededKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeededKeys")
    }
}

impl KeyFactory for SeededKeys {
    fn generate(&self, alg: &'static SignatureAlgorithm) -> Result<KeyPair, CaError> {
        let p384 = if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            false
        } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
            true
        } else {
            return Err(CaError::UnsupportedKey(
                "other than ec 256 or ec 384 in the simulator".into(),
            ));
        };
        // A random string is a valid scalar except with negligible probability; draw again.
        for _ in 0..16 {
            let der = if p384 {
                let mut bytes = [0u8; 48];
                self.fill(&mut bytes);
                let Ok(secret) = p384::SecretKey::from_bytes(&bytes.into()) else {
                    continue;
                };
                secret.to_pkcs8_der()
            } else {
                let mut bytes = [0u8; 32];
                self.fill(&mut bytes);
                let Ok(secret) = p256::SecretKey::from_bytes(&bytes.into()) else {
                    continue;
                };
                secret.to_pkcs8_der()
            }
            .map_err(|e| CaError::Stored(e.to_string()))?;
            return KeyPair::from_pkcs8_der_and_sign_algo(
                &PrivatePkcs8KeyDer::from(der.as_bytes()),
                alg,
            )
            .map_err(CaError::KeyGeneration);
        }
        Err(CaError::Stored("no valid scalar drawn".into()))
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
        let p384 = &rcgen::PKCS_ECDSA_P384_SHA384;
        assert_eq!(
            a.generate(p384).unwrap().serialize_der(),
            b.generate(p384).unwrap().serialize_der()
        );
        assert!(a.generate(&rcgen::PKCS_ED25519).is_err());
    }
}
