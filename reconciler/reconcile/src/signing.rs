//! `--require-signed`: the head commit must carry a signature by a trusted key, either SSH
//! (git's `gpg.format = ssh`) or OpenPGP (git's default `gpg.format = openpgp`, and what GitHub
//! puts on the commits its web interface makes). Both are verified in-process: SSH with the
//! `ssh-key` crate, OpenPGP with rPGP (the `pgp` crate, in `signing/pgp.rs`); gpg is never run.
//!
//! The trusted-keys file holds either kind, or both: ASCII-armored OpenPGP public key blocks
//! (`-----BEGIN PGP PUBLIC KEY BLOCK-----` to its END line, as `gpg --export --armor` writes
//! them) and, outside them, allowed-signers lines (the format `ssh-keygen -Y verify` and git's
//! `gpg.ssh.allowedSignersFile` read).
//!
//! Allowed signers: `principals [options] keytype base64 [comment]` lines, `#` comments, the
//! `namespaces="..."` option (the signature's namespace must be `git`), `cert-authority` lines
//! are rejected as unsupported, `valid-after`/`valid-before` are not evaluated.

mod pgp;

use ssh_key::{PublicKey, SshSig};

pub use self::pgp::PgpKey;

/// One trusted SSH key.
#[derive(Debug, Clone)]
pub struct Signer {
    pub principals: String,
    pub key: PublicKey,
}

/// The keys of a trusted-keys file: SSH keys from its allowed-signers lines, OpenPGP keys from
/// its armored blocks.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    pub ssh: Vec<Signer>,
    pub pgp: Vec<PgpKey>,
}

impl From<Vec<Signer>> for TrustedKeys {
    fn from(ssh: Vec<Signer>) -> TrustedKeys {
        TrustedKeys {
            ssh,
            pgp: Vec::new(),
        }
    }
}

impl TrustedKeys {
    /// Reads a trusted-keys file: armored OpenPGP public key blocks, and allowed-signers
    /// lines around them. Errors name the line, or the block (counted from 1) and its line.
    pub fn parse(text: &str) -> Result<TrustedKeys, SignersError> {
        let mut out = TrustedKeys::default();
        let mut lines = text.lines().enumerate();
        let mut blocks = 0;
        while let Some((n, raw)) = lines.next() {
            let line = raw.trim();
            if line == pgp::BEGIN {
                blocks += 1;
                let mut armored = String::from(pgp::BEGIN);
                armored.push('\n');
                let mut ended = false;
                for (_, raw) in lines.by_ref() {
                    armored.push_str(raw.trim());
                    armored.push('\n');
                    if raw.trim() == pgp::END {
                        ended = true;
                        break;
                    }
                }
                if !ended {
                    return Err(SignersError::Unterminated {
                        block: blocks,
                        line: n + 1,
                    });
                }
                let keys = pgp::parse_block(&armored, blocks, n + 1).map_err(|error| {
                    SignersError::Pgp {
                        block: blocks,
                        line: n + 1,
                        error,
                    }
                })?;
                pgp::merge(&mut out.pgp, keys);
            } else if line.starts_with("-----BEGIN PGP PRIVATE KEY BLOCK") {
                return Err(SignersError::PrivateKey(n + 1));
            } else if let Some(signer) = allowed_signer(n + 1, line)? {
                out.ssh.push(signer);
            }
        }
        pgp::finish(&mut out.pgp)?;
        Ok(out)
    }

    /// No key at all: nothing could ever be applied.
    pub fn is_empty(&self) -> bool {
        self.ssh.is_empty() && self.pgp.is_empty()
    }
}

/// Why a trusted-keys file cannot be read; every variant names the line (1-based), and an
/// OpenPGP block its number in the file too.
#[derive(Debug, thiserror::Error)]
pub enum SignersError {
    #[error("line {0}: no public key")]
    NoKey(usize),
    #[error("line {0}: expected `principals [options] keytype key`")]
    Shape(usize),
    #[error("line {0}: cert-authority keys are not supported")]
    CertAuthority(usize),
    #[error("line {line}: invalid public key: {error}")]
    InvalidKey { line: usize, error: ssh_key::Error },
    #[error(
        "line {0}: a private key block; trusted keys are public keys (`gpg --export --armor`)"
    )]
    PrivateKey(usize),
    #[error(
        "OpenPGP key block {block} (line {line}): no `-----END PGP PUBLIC KEY BLOCK-----` line"
    )]
    Unterminated { block: usize, line: usize },
    #[error("OpenPGP key block {block} (line {line}): {error}")]
    Pgp {
        block: usize,
        line: usize,
        error: String,
    },
}

/// Why a commit's signature is not trusted (the reason a refusal records).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    #[error("the signature is not text")]
    NotText,
    #[error("the commit is signed, but neither with SSH nor with OpenPGP (X.509 signatures are not supported)")]
    Unsupported,
    #[error("unreadable SSH signature: {0}")]
    Unreadable(String),
    #[error("the signature is for the namespace {0:?}, not \"git\"")]
    Namespace(String),
    #[error("signed by a key that is not trusted")]
    UnknownKey,
    #[error("the signature does not verify: the commit was altered or the signature forged")]
    Forged,
    #[error("unreadable OpenPGP signature: {0}")]
    PgpUnreadable(String),
    #[error("signed by the OpenPGP key {0}, which is not trusted")]
    PgpUnknownKey(String),
    #[error("the OpenPGP signature uses the hash {0}, too weak to trust (SHA-224 or stronger is needed)")]
    WeakHash(String),
    #[error("the OpenPGP key {key} had expired when the commit was signed (expired {expired}, signed {signed})")]
    KeyExpired {
        key: String,
        expired: String,
        signed: String,
    },
    #[error(
        "the commit was signed ({signed}) before the OpenPGP key {key} was created ({created})"
    )]
    KeyNotYetValid {
        key: String,
        created: String,
        signed: String,
    },
    #[error("the OpenPGP key {key} is revoked ({reason})")]
    KeyRevoked { key: String, reason: String },
    #[error("the OpenPGP subkey {0} is not bound to its key for signing")]
    NotForSigning(String),
}

/// Parses an allowed-signers file (SSH keys only); errors name the line.
pub fn parse_allowed_signers(text: &str) -> Result<Vec<Signer>, SignersError> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        out.extend(allowed_signer(n + 1, raw.trim())?);
    }
    Ok(out)
}

/// One allowed-signers line (trimmed), number `n`: `None` for a blank line, a comment, or a
/// key limited to namespaces other than `git`.
fn allowed_signer(n: usize, line: &str) -> Result<Option<Signer>, SignersError> {
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let tokens = tokens(line);
    let Some(at) = tokens.iter().position(|t| is_key_type(t)) else {
        return Err(SignersError::NoKey(n));
    };
    if at == 0 || at + 1 >= tokens.len() {
        return Err(SignersError::Shape(n));
    }
    let options = &tokens[1..at];
    if options
        .iter()
        .any(|o| o.eq_ignore_ascii_case("cert-authority"))
    {
        return Err(SignersError::CertAuthority(n));
    }
    if let Some(ns) = options.iter().find_map(|o| {
        o.strip_prefix("namespaces=")
            .map(|v| v.trim_matches('"').to_owned())
    }) {
        if !ns.split(',').any(|n| n.trim() == "git") {
            return Ok(None);
        }
    }
    let key = PublicKey::from_openssh(&format!("{} {}", tokens[at], tokens[at + 1]))
        .map_err(|error| SignersError::InvalidKey { line: n, error })?;
    Ok(Some(Signer {
        principals: tokens[0].clone(),
        key,
    }))
}

/// Splits on whitespace, keeping double-quoted parts (option values) whole.
fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn is_key_type(t: &str) -> bool {
    t.starts_with("ssh-")
        || t.starts_with("ecdsa-sha2-")
        || t.starts_with("sk-ssh-")
        || t.starts_with("sk-ecdsa-")
}

/// Verifies a commit signature over `signed` (the commit without its `gpgsig` header); returns
/// who signed (the SSH principals, or the OpenPGP key's user ID and fingerprint), or why the
/// commit is not trusted. The kind is told by the armor's first line, as git does
/// (`gpg-interface.c`, `get_format_by_sig`).
pub fn verify(signature: &[u8], signed: &[u8], trusted: &TrustedKeys) -> Result<String, Untrusted> {
    let text = std::str::from_utf8(signature).map_err(|_| Untrusted::NotText)?;
    let head = text.trim_start();
    if head.starts_with("-----BEGIN PGP SIGNATURE-----")
        || head.starts_with("-----BEGIN PGP MESSAGE-----")
    {
        return pgp::verify(head, signed, &trusted.pgp);
    }
    if !head.starts_with("-----BEGIN SSH SIGNATURE-----") {
        return Err(Untrusted::Unsupported);
    }
    let sig = SshSig::from_pem(text.trim()).map_err(|e| Untrusted::Unreadable(e.to_string()))?;
    if sig.namespace() != "git" {
        return Err(Untrusted::Namespace(sig.namespace().to_owned()));
    }
    let signer = trusted
        .ssh
        .iter()
        .find(|s| s.key.key_data() == sig.public_key())
        .ok_or(Untrusted::UnknownKey)?;
    signer
        .key
        .verify("git", signed, &sig)
        .map_err(|_| Untrusted::Forged)?;
    Ok(signer.principals.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::private::{Ed25519Keypair, PrivateKey};
    use ssh_key::{HashAlg, LineEnding};

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
    }

    fn sign(k: &PrivateKey, ns: &str, msg: &[u8]) -> Vec<u8> {
        k.sign(ns, HashAlg::Sha512, msg)
            .unwrap()
            .to_pem(LineEnding::LF)
            .unwrap()
            .into_bytes()
    }

    #[test]
    fn trusted_signatures_verify_and_others_do_not() {
        let alice = key(1);
        let mallory = key(2);
        let line = format!(
            "# comment\nalice@example.com namespaces=\"git\" {}\n",
            alice.public_key().to_openssh().unwrap()
        );
        let trusted = TrustedKeys::parse(&line).unwrap();
        assert_eq!(trusted.ssh.len(), 1);
        let msg = b"tree 0000\nauthor a\n\nmessage\n";
        assert_eq!(
            verify(&sign(&alice, "git", msg), msg, &trusted).unwrap(),
            "alice@example.com"
        );
        assert!(verify(&sign(&alice, "git", msg), b"tampered", &trusted)
            .unwrap_err()
            .to_string()
            .contains("does not verify"));
        assert!(verify(&sign(&mallory, "git", msg), msg, &trusted)
            .unwrap_err()
            .to_string()
            .contains("not trusted"));
        assert!(verify(&sign(&alice, "file", msg), msg, &trusted)
            .unwrap_err()
            .to_string()
            .contains("namespace"));
        assert!(verify(b"-----BEGIN PGP SIGNATURE-----\n", msg, &trusted)
            .unwrap_err()
            .to_string()
            .starts_with("unreadable OpenPGP signature"));
        assert_eq!(
            verify(b"-----BEGIN SIGNED MESSAGE-----\n", msg, &trusted),
            Err(Untrusted::Unsupported)
        );
        assert!(verify(b"-----BEGIN SSH SIGNATURE-----\ngarbage\n", msg, &trusted).is_err());
    }

    #[test]
    fn allowed_signers_errors_name_the_line() {
        assert!(parse_allowed_signers("alice ssh-ed25519 AAAA!!\n")
            .unwrap_err()
            .to_string()
            .starts_with("line 1"));
        assert!(parse_allowed_signers("\njust-a-name\n")
            .unwrap_err()
            .to_string()
            .starts_with("line 2"));
        assert!(parse_allowed_signers("").unwrap().is_empty());
        // A key limited to another namespace is not trusted for git.
        let k = key(3).public_key().to_openssh().unwrap();
        assert!(
            parse_allowed_signers(&format!("bob namespaces=\"file\" {k}"))
                .unwrap()
                .is_empty()
        );
    }
}
