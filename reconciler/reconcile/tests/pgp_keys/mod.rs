//! OpenPGP keys and commit signatures for the tests, made with rPGP from seeded RNGs: the same
//! keys on every run, and signatures made at a given time, as `git commit -S` with gpg makes them.

#![allow(dead_code)] // each test file uses a part

use pgp::composed::{
    ArmorOptions, DetachedSignature, KeyType, SecretKeyParamsBuilder, SignedPublicKey,
    SignedSecretKey, SubpacketConfig,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::types::{KeyDetails, Password, Timestamp};
use rand_chacha_03::rand_core::SeedableRng;
use rand_chacha_03::ChaCha8Rng;

pub use pgp::composed::KeyType as Kind;

/// 2023-11-14T22:13:20Z, when every key is made.
pub const CREATED: u32 = 1_700_000_000;
pub const DAY: u32 = 86_400;

/// A key that certifies and signs, made at [`CREATED`] from `seed`.
pub fn key(seed: u64, kind: KeyType) -> SignedSecretKey {
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(kind)
        .can_certify(true)
        .can_sign(true)
        .created_at(Timestamp::from_secs(CREATED))
        .primary_user_id(format!("Signer {seed} <signer{seed}@example.com>"));
    params
        .build()
        .unwrap()
        .generate(ChaCha8Rng::seed_from_u64(seed))
        .unwrap()
}

/// The public key, armored as `gpg --export --armor` writes it.
pub fn armored(public: &SignedPublicKey) -> String {
    public.to_armored_string(ArmorOptions::default()).unwrap()
}

/// The key's public part, made to expire `days` after its creation by a later self-signature.
pub fn expiring(secret: &SignedSecretKey, days: u32) -> SignedPublicKey {
    let mut config = SignatureConfig::v4(
        SignatureType::Key,
        secret.primary_key.algorithm(),
        HashAlgorithm::Sha256,
    );
    config.hashed_subpackets = vec![
        Subpacket::regular(SubpacketData::IssuerFingerprint(
            secret.primary_key.fingerprint(),
        ))
        .unwrap(),
        Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
            CREATED + 1,
        )))
        .unwrap(),
        Subpacket::regular(SubpacketData::KeyExpirationTime(
            pgp::types::Duration::from_secs(days * DAY),
        ))
        .unwrap(),
    ];
    let expiry = config
        .sign_key(
            &secret.primary_key,
            &Password::empty(),
            secret.primary_key.public_key(),
        )
        .unwrap();
    let mut public = secret.to_public_key();
    public.details.direct_signatures.push(expiry);
    public
}

/// An armored detached signature over `data` by `secret`'s primary key, made at `at`.
pub fn sign(secret: &SignedSecretKey, at: u32, data: &[u8]) -> String {
    let signer = &secret.primary_key;
    let hashed = vec![
        Subpacket::regular(SubpacketData::IssuerFingerprint(signer.fingerprint())).unwrap(),
        Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
            at,
        )))
        .unwrap(),
    ];
    let unhashed =
        vec![Subpacket::regular(SubpacketData::IssuerKeyId(signer.legacy_key_id())).unwrap()];
    DetachedSignature::sign_binary_data_with_subpackets(
        ChaCha8Rng::seed_from_u64(u64::from(at)),
        signer,
        &Password::empty(),
        HashAlgorithm::Sha512,
        data,
        SubpacketConfig::UserDefined { hashed, unhashed },
    )
    .unwrap()
    .to_armored_string(ArmorOptions::default())
    .unwrap()
}

/// The primary key's fingerprint as refusals show it.
pub fn fingerprint(secret: &SignedSecretKey) -> String {
    format!("{:X}", secret.primary_key.fingerprint())
}
