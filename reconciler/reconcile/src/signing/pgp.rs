//! OpenPGP commit signatures (`git commit -S` with gpg, and GitHub's web-flow key): the
//! `gpgsig` header is an armored detached signature over the commit without that header.
//! Verified with rPGP (the `pgp` crate); the rules are RFC 9580's.
//!
//! A signature is trusted when it verifies with a trusted key's primary key or one of its
//! subkeys, and that key was valid at the signature's creation time: created before it, not
//! expired then (the key expiration time of the self-signature, or subkey binding, in force
//! then), and not revoked. Judging at the signature's own time, not the reconciler's clock,
//! keeps a commit's verdict the same on every replica and after a restart, and a commit signed
//! while a key was valid stays applicable after it expires (GitHub's web-flow keys expire and
//! are replaced). A revocation (RFC 9580 §5.2.3.31) that says the key was superseded or
//! retired counts only from its own creation time; any other (compromised, or no reason)
//! counts for every signature, past ones too. Only self-made revocations in the trusted file
//! count (designated revokers are not followed). A subkey signs only with a binding that
//! grants signing and carries a valid back-signature (§5.2.1, primary key binding).

use super::{SignersError, Untrusted};
use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey, SignedPublicSubKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{
    PublicKey, PublicSubkey, RevocationCode, Signature, SignatureType, SubpacketData,
};
use pgp::types::{KeyDetails, Tag};
use std::time::{Duration, UNIX_EPOCH};

pub(super) const BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
pub(super) const END: &str = "-----END PGP PUBLIC KEY BLOCK-----";

/// One trusted OpenPGP key (a certificate: the primary key, its user IDs and subkeys).
#[derive(Debug, Clone)]
pub struct PgpKey {
    key: SignedPublicKey,
    /// The primary user ID, for logs.
    name: String,
    /// Where it first appears in the file: the block's number and first line.
    block: usize,
    line: usize,
}

impl PgpKey {
    /// The primary key's fingerprint, upper-case hex.
    pub fn fingerprint(&self) -> String {
        format!("{:X}", self.key.primary_key.fingerprint())
    }

    /// The primary user ID (empty if none).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The keys of one armored public key block (it may hold several), found in block `block`
/// starting on line `line`.
pub(super) fn parse_block(armored: &str, block: usize, line: usize) -> Result<Vec<PgpKey>, String> {
    let (keys, _) =
        SignedPublicKey::from_armor_many(armored.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for key in keys {
        out.push(PgpKey {
            key: key.map_err(|e| e.to_string())?,
            name: String::new(),
            block,
            line,
        });
    }
    if out.is_empty() {
        return Err("no public key in the block".into());
    }
    Ok(out)
}

/// Adds `keys` to `into`, merging a key already there (the same primary fingerprint, say an
/// updated export appended to the file) so that its revocations and new bindings all count.
pub(super) fn merge(into: &mut Vec<PgpKey>, keys: Vec<PgpKey>) {
    for k in keys {
        let fpr = k.key.primary_key.fingerprint();
        match into
            .iter_mut()
            .find(|o| o.key.primary_key.fingerprint() == fpr)
        {
            Some(o) => {
                let (old, new) = (&mut o.key.details, k.key.details);
                old.revocation_signatures.extend(new.revocation_signatures);
                old.direct_signatures.extend(new.direct_signatures);
                old.users.extend(new.users);
                o.key.public_subkeys.extend(k.key.public_subkeys);
            }
            None => into.push(k),
        }
    }
}

/// Once every block is merged: each key needs a valid self-signature (else it could never be
/// checked for expiry or revocation), and gets its name, the primary user ID. Errors name the
/// block where the key first appears.
pub(super) fn finish(keys: &mut [PgpKey]) -> Result<(), SignersError> {
    for k in keys {
        let selfsigs = self_signatures(&k.key);
        if selfsigs.is_empty() {
            return Err(SignersError::Pgp {
                block: k.block,
                line: k.line,
                error: format!("the key {} has no valid self-signature", k.fingerprint()),
            });
        }
        k.name = selfsigs
            .iter()
            .find(|(s, n)| s.is_primary() && !n.is_empty())
            .or_else(|| selfsigs.iter().find(|(_, n)| !n.is_empty()))
            .map(|(_, n)| n.clone())
            .unwrap_or_default();
    }
    Ok(())
}

/// The primary key's self-signatures that verify (direct-key signatures and user ID
/// certifications by the key itself), each with its user ID (empty for a direct-key one).
fn self_signatures(key: &SignedPublicKey) -> Vec<(&Signature, String)> {
    let primary = &key.primary_key;
    let direct = key
        .details
        .direct_signatures
        .iter()
        .filter(|s| s.typ() == Some(SignatureType::Key) && s.verify_key(primary).is_ok())
        .map(|s| (s, String::new()));
    let users = key.details.users.iter().flat_map(|u| {
        let name = String::from_utf8_lossy(u.id.id()).into_owned();
        u.signatures
            .iter()
            .filter(|s| s.typ() != Some(SignatureType::CertRevocation))
            .filter(|s| s.verify_certification(primary, Tag::UserId, &u.id).is_ok())
            .map(move |s| (s, name.clone()))
    });
    direct.chain(users).collect()
}

/// The key that made a signature: the primary key or one subkey of a trusted key.
enum Component<'a> {
    Primary(&'a PgpKey),
    Subkey(&'a PgpKey, &'a SignedPublicSubKey),
}

/// Verifies an armored detached signature over `data` against `trusted`.
pub(super) fn verify(armored: &str, data: &[u8], trusted: &[PgpKey]) -> Result<String, Untrusted> {
    let (sig, _) = DetachedSignature::from_string(armored)
        .map_err(|e| Untrusted::PgpUnreadable(e.to_string()))?;
    let sig = sig.signature;
    if !matches!(sig.typ(), Some(SignatureType::Binary | SignatureType::Text)) {
        return Err(Untrusted::PgpUnreadable(format!(
            "a {:?} signature, not one over data",
            sig.typ()
        )));
    }
    let Some(at) = sig.created().map(|t| t.as_secs()) else {
        return Err(Untrusted::PgpUnreadable("no creation time".into()));
    };
    // SHA-1 and older are collision-prone (RFC 9580 §9.5: MUST NOT be used to make data
    // signatures); a commit signed with them could have a twin.
    if let Some(h @ (HashAlgorithm::Md5 | HashAlgorithm::Sha1 | HashAlgorithm::Ripemd160)) =
        sig.hash_alg()
    {
        return Err(Untrusted::WeakHash(h.to_string()));
    }
    let candidates = candidates(&sig, trusted);
    if candidates.is_empty() {
        return Err(Untrusted::PgpUnknownKey(issuer(&sig)));
    }
    let signer = candidates
        .into_iter()
        .find(|s| match s {
            Component::Primary(k) => sig.verify(&k.key.primary_key, data).is_ok(),
            Component::Subkey(_, sub) => sig.verify(&sub.key, data).is_ok(),
        })
        .ok_or(Untrusted::Forged)?;
    let key = match signer {
        Component::Primary(k) => {
            valid_primary(k, at, true)?;
            k
        }
        Component::Subkey(k, sub) => {
            valid_primary(k, at, false)?;
            valid_subkey(&k.key.primary_key, sub, at)?;
            k
        }
    };
    Ok(format!("{} ({})", key.name, key.fingerprint()))
}

/// The trusted keys whose fingerprint or key ID the signature names as its issuer; all of
/// them when it names none (then the one that verifies is the signer).
fn candidates<'a>(sig: &Signature, trusted: &'a [PgpKey]) -> Vec<Component<'a>> {
    let fprs = sig.issuer_fingerprint();
    let ids = sig.issuer_key_id();
    let named = |k: &dyn KeyDetails| {
        (fprs.is_empty() && ids.is_empty())
            || fprs.iter().any(|f| **f == k.fingerprint())
            || ids.iter().any(|i| **i == k.legacy_key_id())
    };
    let mut out = Vec::new();
    for k in trusted {
        if named(&k.key.primary_key) {
            out.push(Component::Primary(k));
        }
        for sub in &k.key.public_subkeys {
            if named(&sub.key) {
                out.push(Component::Subkey(k, sub));
            }
        }
    }
    out
}

/// How a refusal names the signature's issuer: its fingerprint, else its key ID.
fn issuer(sig: &Signature) -> String {
    if let Some(f) = sig.issuer_fingerprint().first() {
        format!("{f:X}")
    } else if let Some(id) = sig.issuer_key_id().first() {
        id.to_string().to_uppercase()
    } else {
        "(no issuer named)".into()
    }
}

/// The signature among `sigs` in force at `at`: the newest made no later than it, else (a
/// component signed before its first binding) the oldest. Of two made at the same second, the
/// one that sets an expiration wins (GitHub re-issued its 2017 web-flow key's self-signature
/// with an expiration and the original's creation time).
fn in_force<'a>(sigs: impl Iterator<Item = &'a Signature>, at: u32) -> Option<&'a Signature> {
    let mut sigs: Vec<&Signature> = sigs.collect();
    sigs.sort_by_key(|s| {
        let expires = s.key_expiration_time().is_some_and(|d| d.as_secs() > 0);
        (s.created().map(|t| t.as_secs()), expires)
    });
    sigs.iter()
        .rev()
        .find(|s| s.created().is_some_and(|t| t.as_secs() <= at))
        .or(sigs.first())
        .copied()
}

/// The primary key was valid at `at`; `signs`: it made the signature itself, so its key
/// flags (when its self-signature has any) must allow signing.
fn valid_primary(k: &PgpKey, at: u32, signs: bool) -> Result<(), Untrusted> {
    let primary = &k.key.primary_key;
    let fpr = k.fingerprint();
    let revocations = k
        .key
        .details
        .revocation_signatures
        .iter()
        .filter(|s| s.verify_key(primary).is_ok());
    revoked(revocations, at, &fpr)?;
    let selfsigs = self_signatures(&k.key);
    let binding = in_force(selfsigs.iter().map(|(s, _)| *s), at);
    lifetime(primary.created_at().as_secs(), binding, at, &fpr)?;
    if signs && binding.is_some_and(|b| has_key_flags(b) && !b.key_flags().sign()) {
        return Err(Untrusted::NotForSigning(fpr));
    }
    Ok(())
}

/// The subkey was bound to `primary` for signing, and valid, at `at`: the binding in force
/// then grants signing and carries a valid primary key binding (back-signature) made by the
/// subkey.
fn valid_subkey(primary: &PublicKey, sub: &SignedPublicSubKey, at: u32) -> Result<(), Untrusted> {
    let fpr = format!("{:X}", sub.key.fingerprint());
    let verified = |typ: SignatureType| {
        sub.signatures.iter().filter(move |s| {
            s.typ() == Some(typ) && s.verify_subkey_binding(primary, &sub.key).is_ok()
        })
    };
    revoked(verified(SignatureType::SubkeyRevocation), at, &fpr)?;
    let binding = in_force(verified(SignatureType::SubkeyBinding), at)
        .filter(|b| signs(primary, &sub.key, b))
        .ok_or_else(|| Untrusted::NotForSigning(fpr.clone()))?;
    lifetime(sub.key.created_at().as_secs(), Some(binding), at, &fpr)
}

/// A subkey binding grants signing, with the back-signature RFC 9580 §5.2.1 requires.
fn signs(primary: &PublicKey, sub: &PublicSubkey, binding: &Signature) -> bool {
    binding.key_flags().sign()
        && binding
            .embedded_signature()
            .is_some_and(|back| back.verify_primary_key_binding(sub, primary).is_ok())
}

fn has_key_flags(s: &Signature) -> bool {
    s.config().is_some_and(|c| {
        c.hashed_subpackets()
            .any(|p| matches!(p.data, SubpacketData::KeyFlags(_)))
    })
}

/// A key created at `created`, whose binding in force is `binding`, was valid at `at`.
fn lifetime(
    created: u32,
    binding: Option<&Signature>,
    at: u32,
    fpr: &str,
) -> Result<(), Untrusted> {
    if at < created {
        return Err(Untrusted::KeyNotYetValid {
            key: fpr.to_owned(),
            created: time(u64::from(created)),
            signed: time(u64::from(at)),
        });
    }
    // A key expiration time is seconds after the key's creation; zero means never.
    let expires = binding
        .and_then(Signature::key_expiration_time)
        .map(|d| d.as_secs())
        .filter(|d| *d > 0)
        .map(|d| u64::from(created) + u64::from(d));
    match expires {
        Some(end) if u64::from(at) >= end => Err(Untrusted::KeyExpired {
            key: fpr.to_owned(),
            expired: time(end),
            signed: time(u64::from(at)),
        }),
        _ => Ok(()),
    }
}

/// Refuses if one of the (verified) revocations applies at `at`: a soft one (superseded,
/// retired) from its creation on, any other always.
fn revoked<'a>(
    revocations: impl Iterator<Item = &'a Signature>,
    at: u32,
    fpr: &str,
) -> Result<(), Untrusted> {
    for r in revocations {
        let code = r.revocation_reason_code();
        let soft = matches!(
            code,
            Some(RevocationCode::KeySuperseded | RevocationCode::KeyRetired)
        );
        let since = r.created().map(|t| t.as_secs());
        if soft && since.is_some_and(|t| at < t) {
            continue;
        }
        let mut reason = match code {
            Some(RevocationCode::KeySuperseded) => "superseded",
            Some(RevocationCode::KeyCompromised) => "compromised",
            Some(RevocationCode::KeyRetired) => "retired",
            _ => "no reason given",
        }
        .to_owned();
        if let Some(t) = since {
            reason.push_str(&format!(", on {}", time(u64::from(t))));
        }
        return Err(Untrusted::KeyRevoked {
            key: fpr.to_owned(),
            reason,
        });
    }
    Ok(())
}

fn time(secs: u64) -> String {
    crate::status::rfc3339(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests;
