//! Keys made here with rPGP from seeded RNGs, signatures made over commit-shaped bytes, and the
//! verdicts of [`super::super::verify`] on them.

use crate::signing::{verify, SignersError, TrustedKeys, Untrusted};
use pgp::composed::{
    ArmorOptions, DetachedSignature, KeyType, SecretKeyParamsBuilder, SignedPublicKey,
    SignedSecretKey, SubkeyParamsBuilder, SubpacketConfig,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{RevocationCode, SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::types::{KeyDetails, Password, SigningKey, Timestamp};
use rand_chacha_03::rand_core::SeedableRng;
use rand_chacha_03::ChaCha8Rng;

/// 2023-11-14T22:13:20Z, the keys' creation time.
const CREATED: u32 = 1_700_000_000;
const DAY: u32 = 86_400;
const COMMIT: &[u8] = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbe4904\nauthor a <a@example.com> 1700000000 +0000\ncommitter a <a@example.com> 1700000000 +0000\n\nmessage\n";

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A key made at [`CREATED`]; with `subkey`, one Ed25519 subkey that signs (`true`) or only
/// authenticates (`false`).
fn key(seed: u64, kind: KeyType, subkey: Option<bool>) -> SignedSecretKey {
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(kind)
        .can_certify(true)
        .can_sign(true)
        .created_at(Timestamp::from_secs(CREATED))
        .primary_user_id(format!("Signer {seed} <signer{seed}@example.com>"));
    if let Some(signs) = subkey {
        params.subkey(
            SubkeyParamsBuilder::default()
                .key_type(KeyType::Ed25519Legacy)
                .can_sign(signs)
                .can_authenticate(!signs)
                .created_at(Timestamp::from_secs(CREATED))
                .build()
                .unwrap(),
        );
    }
    params.build().unwrap().generate(rng(seed)).unwrap()
}

fn armored(public: &SignedPublicKey) -> String {
    public.to_armored_string(ArmorOptions::default()).unwrap()
}

/// A detached signature by `signer` made at `at`, armored as git stores it in `gpgsig`.
fn sign(signer: &impl SigningKey, at: u32, data: &[u8]) -> String {
    let hashed = vec![
        Subpacket::regular(SubpacketData::IssuerFingerprint(signer.fingerprint())).unwrap(),
        Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
            at,
        )))
        .unwrap(),
    ];
    DetachedSignature::sign_binary_data_with_subpackets(
        rng(u64::from(at)),
        signer,
        &Password::empty(),
        HashAlgorithm::Sha256,
        data,
        SubpacketConfig::UserDefined {
            hashed,
            unhashed: Vec::new(),
        },
    )
    .unwrap()
    .to_armored_string(ArmorOptions::default())
    .unwrap()
}

/// A self-signature by `secret` over its primary key, made at `at`, of type `typ`, with `extra`
/// subpackets (an expiration, a revocation reason).
fn key_signature(
    secret: &SignedSecretKey,
    typ: SignatureType,
    at: u32,
    extra: SubpacketData,
) -> pgp::packet::Signature {
    let mut config =
        SignatureConfig::v4(typ, secret.primary_key.algorithm(), HashAlgorithm::Sha256);
    config.hashed_subpackets = vec![
        Subpacket::regular(SubpacketData::IssuerFingerprint(
            secret.primary_key.fingerprint(),
        ))
        .unwrap(),
        Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
            at,
        )))
        .unwrap(),
        Subpacket::regular(extra).unwrap(),
    ];
    config
        .sign_key(
            &secret.primary_key,
            &Password::empty(),
            secret.primary_key.public_key(),
        )
        .unwrap()
}

fn trusting(keys: &[&SignedPublicKey]) -> TrustedKeys {
    let text: String = keys.iter().map(|k| armored(k)).collect();
    TrustedKeys::parse(&text).unwrap()
}

fn check(sig: &str, data: &[u8], trusted: &TrustedKeys) -> Result<String, Untrusted> {
    verify(sig.as_bytes(), data, trusted)
}

#[test]
fn a_signature_by_a_trusted_key_verifies_and_others_are_refused_with_the_reason() {
    let alice = key(1, KeyType::Ed25519Legacy, None);
    let mallory = key(2, KeyType::Ed25519Legacy, None);
    let trusted = trusting(&[&alice.to_public_key()]);
    assert_eq!(trusted.pgp.len(), 1);
    assert_eq!(trusted.pgp[0].name(), "Signer 1 <signer1@example.com>");
    let fpr = format!("{:X}", alice.primary_key.fingerprint());
    let at = CREATED + DAY;

    let good = sign(&alice.primary_key, at, COMMIT);
    assert_eq!(
        check(&good, COMMIT, &trusted).unwrap(),
        format!("Signer 1 <signer1@example.com> ({fpr})")
    );
    // One byte of the commit changed.
    let mut tampered = COMMIT.to_vec();
    tampered[5] ^= 1;
    assert_eq!(check(&good, &tampered, &trusted), Err(Untrusted::Forged));
    // Signed by a stranger: the refusal names the stranger's fingerprint.
    let other = format!("{:X}", mallory.primary_key.fingerprint());
    assert_eq!(
        check(&sign(&mallory.primary_key, at, COMMIT), COMMIT, &trusted),
        Err(Untrusted::PgpUnknownKey(other.clone()))
    );
    assert_eq!(
        Untrusted::PgpUnknownKey(other.clone()).to_string(),
        format!("signed by the OpenPGP key {other}, which is not trusted")
    );
    // Signed before the key existed.
    assert!(matches!(
        check(
            &sign(&alice.primary_key, CREATED - 1, COMMIT),
            COMMIT,
            &trusted
        ),
        Err(Untrusted::KeyNotYetValid { .. })
    ));
    // Not a signature at all.
    let garbage =
        "-----BEGIN PGP SIGNATURE-----\n\nbm90IGEgc2lnbmF0dXJl\n-----END PGP SIGNATURE-----\n";
    assert!(matches!(
        check(garbage, COMMIT, &trusted),
        Err(Untrusted::PgpUnreadable(_))
    ));
}

#[test]
fn an_rsa_key_as_github_signs_web_commits_verifies() {
    // GitHub's web-flow key is RSA; 2048 bits keeps the test's key generation short.
    let github = key(3, KeyType::Rsa(2048), None);
    let trusted = trusting(&[&github.to_public_key()]);
    let sig = sign(&github.primary_key, CREATED + DAY, COMMIT);
    assert!(check(&sig, COMMIT, &trusted).is_ok());
    assert_eq!(check(&sig, b"tree 0\n", &trusted), Err(Untrusted::Forged));
    // Over SHA-1 (RSA can still make one): refused whoever signed.
    let sha1 = DetachedSignature::sign_binary_data(
        rng(9),
        &github.primary_key,
        &Password::empty(),
        HashAlgorithm::Sha1,
        COMMIT,
    )
    .unwrap()
    .to_armored_string(ArmorOptions::default())
    .unwrap();
    assert_eq!(
        check(&sha1, COMMIT, &trusted),
        Err(Untrusted::WeakHash("SHA1".into()))
    );
}

#[test]
fn a_key_that_expired_verifies_only_what_it_signed_before() {
    let alice = key(4, KeyType::Ed25519Legacy, None);
    let mut public = alice.to_public_key();
    // A later self-signature: the key expires 30 days after its creation.
    public.details.direct_signatures.push(key_signature(
        &alice,
        SignatureType::Key,
        CREATED + 1,
        SubpacketData::KeyExpirationTime(pgp::types::Duration::from_secs(30 * DAY)),
    ));
    let trusted = trusting(&[&public]);
    let before = sign(&alice.primary_key, CREATED + 29 * DAY, COMMIT);
    assert!(check(&before, COMMIT, &trusted).is_ok());
    let after = sign(&alice.primary_key, CREATED + 31 * DAY, COMMIT);
    let refused = check(&after, COMMIT, &trusted).unwrap_err();
    assert!(matches!(refused, Untrusted::KeyExpired { .. }), "{refused}");
    assert!(
        refused
            .to_string()
            .contains("expired 2023-12-14T22:13:20Z, signed 2023-12-15T22:13:20Z"),
        "{refused}"
    );
}

#[test]
fn a_revoked_key_signs_nothing_and_a_retired_one_only_before_it_retired() {
    let alice = key(5, KeyType::Ed25519Legacy, None);
    let mut compromised = alice.to_public_key();
    compromised
        .details
        .revocation_signatures
        .push(key_signature(
            &alice,
            SignatureType::KeyRevocation,
            CREATED + 10 * DAY,
            SubpacketData::RevocationReason(RevocationCode::KeyCompromised, "leaked".into()),
        ));
    let early = sign(&alice.primary_key, CREATED + DAY, COMMIT);
    let refused = check(&early, COMMIT, &trusting(&[&compromised])).unwrap_err();
    assert!(
        refused
            .to_string()
            .ends_with("is revoked (compromised, on 2023-11-24T22:13:20Z)"),
        "{refused}"
    );
    // The revoked export appended after the old one: the two are one key, and it is revoked.
    let updated = trusting(&[&alice.to_public_key(), &compromised]);
    assert_eq!(updated.pgp.len(), 1);
    assert_eq!(check(&early, COMMIT, &updated), Err(refused));

    let mut retired = alice.to_public_key();
    retired.details.revocation_signatures.push(key_signature(
        &alice,
        SignatureType::KeyRevocation,
        CREATED + 10 * DAY,
        SubpacketData::RevocationReason(RevocationCode::KeyRetired, "".into()),
    ));
    let trusted = trusting(&[&retired]);
    assert!(check(&early, COMMIT, &trusted).is_ok());
    let late = sign(&alice.primary_key, CREATED + 11 * DAY, COMMIT);
    assert!(matches!(
        check(&late, COMMIT, &trusted),
        Err(Untrusted::KeyRevoked { .. })
    ));

    // A revocation someone else made is not the key's and does not count.
    let mallory = key(6, KeyType::Ed25519Legacy, None);
    let mut forged = alice.to_public_key();
    forged.details.revocation_signatures.push(key_signature(
        &mallory,
        SignatureType::KeyRevocation,
        CREATED + DAY,
        SubpacketData::RevocationReason(RevocationCode::KeyCompromised, "".into()),
    ));
    assert!(check(&late, COMMIT, &trusting(&[&forged])).is_ok());
}

#[test]
fn a_subkey_signs_only_if_bound_for_signing() {
    let signing = key(7, KeyType::Ed25519Legacy, Some(true));
    let trusted = trusting(&[&signing.to_public_key()]);
    let by_subkey = sign(&signing.secret_subkeys[0].key, CREATED + DAY, COMMIT);
    let who = check(&by_subkey, COMMIT, &trusted).unwrap();
    // The signer is told by its primary key.
    assert!(
        who.ends_with(&format!("({:X})", signing.primary_key.fingerprint())),
        "{who}"
    );

    let auth = key(8, KeyType::Ed25519Legacy, Some(false));
    let trusted = trusting(&[&auth.to_public_key()]);
    let by_subkey = sign(&auth.secret_subkeys[0].key, CREATED + DAY, COMMIT);
    let sub = format!("{:X}", auth.secret_subkeys[0].key.fingerprint());
    assert_eq!(
        check(&by_subkey, COMMIT, &trusted),
        Err(Untrusted::NotForSigning(sub))
    );
}

#[test]
fn a_file_holds_ssh_lines_and_openpgp_blocks_together() {
    use ssh_key::private::{Ed25519Keypair, PrivateKey};
    let ssh = PrivateKey::from(Ed25519Keypair::from_seed(&[9; 32]));
    let alice = key(10, KeyType::Ed25519Legacy, None);
    let bob = key(11, KeyType::Ed25519Legacy, None);
    let text = format!(
        "# release signers\nrelease@example.com {}\n{}\n{}",
        ssh.public_key().to_openssh().unwrap(),
        armored(&alice.to_public_key()),
        armored(&bob.to_public_key()),
    );
    let trusted = TrustedKeys::parse(&text).unwrap();
    assert_eq!((trusted.ssh.len(), trusted.pgp.len()), (1, 2));
    let ssh_sig = ssh
        .sign("git", ssh_key::HashAlg::Sha512, COMMIT)
        .unwrap()
        .to_pem(ssh_key::LineEnding::LF)
        .unwrap();
    assert_eq!(
        check(&ssh_sig, COMMIT, &trusted).unwrap(),
        "release@example.com"
    );
    for k in [&alice, &bob] {
        assert!(check(
            &sign(&k.primary_key, CREATED + DAY, COMMIT),
            COMMIT,
            &trusted
        )
        .is_ok());
    }
}

#[test]
fn key_file_errors_name_the_block_and_its_line() {
    let alice = key(12, KeyType::Ed25519Legacy, None);
    let good = armored(&alice.to_public_key());
    // The second block's base64 is cut short.
    let cut: String = good
        .lines()
        .enumerate()
        .filter(|(n, _)| *n != 3)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let err = TrustedKeys::parse(&format!("{good}\n{cut}")).unwrap_err();
    let first = good.lines().count() + 2;
    assert!(
        matches!(err, SignersError::Pgp { block: 2, line, .. } if line == first),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("OpenPGP key block 2 (line {first}): ")),
        "{err}"
    );
    let open = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nabc\n";
    assert_eq!(
        TrustedKeys::parse(open).unwrap_err().to_string(),
        "OpenPGP key block 1 (line 1): no `-----END PGP PUBLIC KEY BLOCK-----` line"
    );
    let secret = alice.to_armored_string(ArmorOptions::default()).unwrap();
    assert!(TrustedKeys::parse(&format!("\n{secret}"))
        .unwrap_err()
        .to_string()
        .starts_with("line 2: a private key block"));
    // Only comments: no key at all, which the command refuses at start.
    assert!(TrustedKeys::parse("# nobody yet\n").unwrap().is_empty());
}

/// GitHub's 2017 web-flow key as an older copy has it (one self-signature, no expiration) and as
/// published since 2024 (a self-signature of the same time with an expiration on
/// 2024-01-16T20:00:00Z): read together they are one key, and it expired then.
#[test]
fn the_web_flow_key_of_2017_expired_in_january_2024_whichever_export_comes_first() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let before = std::fs::read_to_string(format!("{data}/web-flow-2017.asc")).unwrap();
    let now = std::fs::read_to_string(format!("{data}/web-flow.asc")).unwrap();
    let expires = 1_705_435_200;
    for text in [format!("{before}{now}"), format!("{now}{before}")] {
        let trusted = TrustedKeys::parse(&text).unwrap();
        let old = &trusted.pgp[0];
        assert_eq!(
            old.fingerprint(),
            "5DE3E0509C47EA3CF04A42D34AEE18F83AFDEB23"
        );
        assert_eq!(super::valid_primary(old, expires - 1, true), Ok(()));
        assert_eq!(
            super::valid_primary(old, expires, true),
            Err(Untrusted::KeyExpired {
                key: old.fingerprint(),
                expired: "2024-01-16T20:00:00Z".into(),
                signed: "2024-01-16T20:00:00Z".into(),
            })
        );
    }
    // Alone, the old export is refused at load: its only self-signature does not verify (its
    // signed-hash prefix is not the hash's), so nothing could tell when the key expires.
    assert_eq!(
        TrustedKeys::parse(&format!("# GitHub\n{before}"))
            .unwrap_err()
            .to_string(),
        "OpenPGP key block 1 (line 2): the key 5DE3E0509C47EA3CF04A42D34AEE18F83AFDEB23 has no valid self-signature"
    );
}
