//! `--require-signed`: the head commit must carry an SSH signature (git's `gpg.format = ssh`)
//! by a key in an allowed-signers file (the format `ssh-keygen -Y verify` and git's
//! `gpg.ssh.allowedSignersFile` read). Verified in-process with the `ssh-key` crate.
//!
//! Supported: `principals [options] keytype base64 [comment]` lines, `#` comments, the
//! `namespaces="..."` option (the signature's namespace must be `git`), `cert-authority` lines
//! are rejected as unsupported, `valid-after`/`valid-before` are not evaluated.

use ssh_key::{PublicKey, SshSig};

/// One trusted key.
#[derive(Debug, Clone)]
pub struct Signer {
    pub principals: String,
    pub key: PublicKey,
}

/// Why an allowed-signers file cannot be read; every variant names the line (1-based).
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
}

/// Why a commit's signature is not trusted (the reason a refusal records).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    #[error("the signature is not text")]
    NotText,
    #[error("the commit is signed, but not with an SSH key (GPG and X.509 signatures are not supported)")]
    NotSsh,
    #[error("unreadable SSH signature: {0}")]
    Unreadable(String),
    #[error("the signature is for the namespace {0:?}, not \"git\"")]
    Namespace(String),
    #[error("signed by a key that is not trusted")]
    UnknownKey,
    #[error("the signature does not verify: the commit was altered or the signature forged")]
    Forged,
}

/// Parses an allowed-signers file; errors name the line.
pub fn parse_allowed_signers(text: &str) -> Result<Vec<Signer>, SignersError> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let tokens = tokens(line);
        let Some(at) = tokens.iter().position(|t| is_key_type(t)) else {
            return Err(SignersError::NoKey(n + 1));
        };
        if at == 0 || at + 1 >= tokens.len() {
            return Err(SignersError::Shape(n + 1));
        }
        let options = &tokens[1..at];
        if options
            .iter()
            .any(|o| o.eq_ignore_ascii_case("cert-authority"))
        {
            return Err(SignersError::CertAuthority(n + 1));
        }
        if let Some(ns) = options.iter().find_map(|o| {
            o.strip_prefix("namespaces=")
                .map(|v| v.trim_matches('"').to_owned())
        }) {
            if !ns.split(',').any(|n| n.trim() == "git") {
                continue;
            }
        }
        let key = PublicKey::from_openssh(&format!("{} {}", tokens[at], tokens[at + 1]))
            .map_err(|error| SignersError::InvalidKey { line: n + 1, error })?;
        out.push(Signer {
            principals: tokens[0].clone(),
            key,
        });
    }
    Ok(out)
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
/// the signer's principals, or why the commit is not trusted.
pub fn verify(signature: &[u8], signed: &[u8], trusted: &[Signer]) -> Result<String, Untrusted> {
    let text = std::str::from_utf8(signature).map_err(|_| Untrusted::NotText)?;
    if !text
        .trim_start()
        .starts_with("-----BEGIN SSH SIGNATURE-----")
    {
        return Err(Untrusted::NotSsh);
    }
    let sig = SshSig::from_pem(text.trim()).map_err(|e| Untrusted::Unreadable(e.to_string()))?;
    if sig.namespace() != "git" {
        return Err(Untrusted::Namespace(sig.namespace().to_owned()));
    }
    let signer = trusted
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
        let trusted = parse_allowed_signers(&line).unwrap();
        assert_eq!(trusted.len(), 1);
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
            .contains("not with an SSH key"));
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
