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

/// Parses an allowed-signers file; errors name the line.
pub fn parse_allowed_signers(text: &str) -> Result<Vec<Signer>, String> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let tokens = tokens(line);
        let Some(at) = tokens.iter().position(|t| is_key_type(t)) else {
            return Err(format!("line {}: no public key", n + 1));
        };
        if at == 0 || at + 1 >= tokens.len() {
            return Err(format!(
                "line {}: expected `principals [options] keytype key`",
                n + 1
            ));
        }
        let options = &tokens[1..at];
        if options
            .iter()
            .any(|o| o.eq_ignore_ascii_case("cert-authority"))
        {
            return Err(format!(
                "line {}: cert-authority keys are not supported",
                n + 1
            ));
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
            .map_err(|e| format!("line {}: invalid public key: {e}", n + 1))?;
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
pub fn verify(signature: &[u8], signed: &[u8], trusted: &[Signer]) -> Result<String, String> {
    let text =
        std::str::from_utf8(signature).map_err(|_| "the signature is not text".to_owned())?;
    if !text
        .trim_start()
        .starts_with("-----BEGIN SSH SIGNATURE-----")
    {
        return Err("the commit is signed, but not with an SSH key (GPG and X.509 signatures are not supported)".into());
    }
    let sig =
        SshSig::from_pem(text.trim()).map_err(|e| format!("unreadable SSH signature: {e}"))?;
    if sig.namespace() != "git" {
        return Err(format!(
            "the signature is for the namespace {:?}, not \"git\"",
            sig.namespace()
        ));
    }
    let signer = trusted
        .iter()
        .find(|s| s.key.key_data() == sig.public_key())
        .ok_or_else(|| "signed by a key that is not trusted".to_owned())?;
    signer.key.verify("git", signed, &sig).map_err(|_| {
        "the signature does not verify: the commit was altered or the signature forged".to_owned()
    })?;
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
            .contains("does not verify"));
        assert!(verify(&sign(&mallory, "git", msg), msg, &trusted)
            .unwrap_err()
            .contains("not trusted"));
        assert!(verify(&sign(&alice, "file", msg), msg, &trusted)
            .unwrap_err()
            .contains("namespace"));
        assert!(verify(b"-----BEGIN PGP SIGNATURE-----\n", msg, &trusted)
            .unwrap_err()
            .contains("not with an SSH key"));
        assert!(verify(b"-----BEGIN SSH SIGNATURE-----\ngarbage\n", msg, &trusted).is_err());
    }

    #[test]
    fn allowed_signers_errors_name_the_line() {
        assert!(parse_allowed_signers("alice ssh-ed25519 AAAA!!\n")
            .unwrap_err()
            .starts_with("line 1"));
        assert!(parse_allowed_signers("\njust-a-name\n")
            .unwrap_err()
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
