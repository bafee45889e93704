//! What `--require-signed` costs per commit: reading a trusted-keys file, and verifying a
//! commit's signature (SSH Ed25519, OpenPGP Ed25519, OpenPGP RSA 4096 as GitHub's web-flow key
//! is). `cargo bench -p mesh-reconcile --bench signing`; `MESH_BENCH_ROUNDS` (default 200).

#[path = "../tests/pgp_keys/mod.rs"]
mod pgp_keys;

use mesh_reconcile::signing::{verify, TrustedKeys};
use pgp_keys::{armored, key, sign, Kind, CREATED, DAY};
use ssh_key::private::{Ed25519Keypair, PrivateKey};
use std::time::Instant;

const COMMIT: &[u8] = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbe4904\nparent 8ad3406f0e7d1e7f1a2b3c4d5e6f708192a3b4c5\nauthor a <a@example.com> 1700000000 +0000\ncommitter GitHub <noreply@github.com> 1700000000 +0000\n\nMerge pull request #1 (#1)\n";

fn main() {
    let rounds: u32 = std::env::var("MESH_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let ssh = PrivateKey::from(Ed25519Keypair::from_seed(&[1; 32]));
    let start = Instant::now();
    let ed = key(1, Kind::Ed25519Legacy);
    let rsa = key(2, Kind::Rsa(4096));
    println!(
        "key generation (Ed25519 + RSA 4096): {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let file = format!(
        "release@example.com {}\n{}{}",
        ssh.public_key().to_openssh().expect("openssh"),
        armored(&ed.to_public_key()),
        armored(&rsa.to_public_key()),
    );
    let start = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(TrustedKeys::parse(&file).expect("parses"));
    }
    println!(
        "parse a trusted-keys file (1 SSH line, 2 OpenPGP keys, {} bytes): {:.0} µs",
        file.len(),
        start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
    );
    let trusted = TrustedKeys::parse(&file).expect("parses");
    let ssh_sig = ssh
        .sign("git", ssh_key::HashAlg::Sha512, COMMIT)
        .expect("signs")
        .to_pem(ssh_key::LineEnding::LF)
        .expect("pem");
    let cases = [
        ("SSH Ed25519", ssh_sig),
        ("OpenPGP Ed25519", sign(&ed, CREATED + DAY, COMMIT)),
        ("OpenPGP RSA 4096", sign(&rsa, CREATED + DAY, COMMIT)),
    ];
    for (name, sig) in &cases {
        let start = Instant::now();
        for _ in 0..rounds {
            verify(sig.as_bytes(), COMMIT, &trusted).expect("verifies");
        }
        println!(
            "verify a commit signed with {name}: {:.0} µs ({rounds} rounds)",
            start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
        );
    }
}
