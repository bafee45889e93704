//! The Connect CA as Consul's built-in provider runs it: a root per trust domain
//! `<cluster-id>.consul`, leaf certificates with SPIFFE URI SANs and Consul's common names,
//! rotation with the new root cross-signed by the old one, and pruning of rotated roots
//! (consul-semantics section 4).
//!
//! Pure apart from key generation, which goes through [`KeyFactory`] so a seeded generator can
//! stand in: every operation takes `now`; serial numbers come from a counter in the state.
//! The state is serde-serializable so the control plane can persist it; its private keys never
//! appear in `Debug` output.

mod spiffe;

pub use spiffe::{parse_spiffe_service, service_cn, service_uri, spiffe_ids_from_der};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber, SignatureAlgorithm,
};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("unsupported by this build: {0} keys (supported: ec 256, ec 384)")]
    UnsupportedKey(String),
    #[error("failed to generate a key: {0}")]
    KeyGeneration(rcgen::Error),
    #[error("failed to sign a certificate: {0}")]
    Signing(rcgen::Error),
    #[error("failed to read the CA's stored key or certificate: {0}")]
    Stored(String),
    #[error("the CA has no active root")]
    NoActiveRoot,
    #[error("invalid service name {0:?} for a certificate")]
    ServiceName(String),
}

/// Settings the CA needs (parsed from the CA configuration by the semantics crate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaParams {
    pub leaf_ttl: Duration,
    pub root_ttl: Duration,
    /// `ec` (or `rsa`, which this build cannot generate).
    pub key_type: String,
    pub key_bits: u32,
}

impl Default for CaParams {
    fn default() -> Self {
        CaParams {
            leaf_ttl: Duration::from_secs(72 * 3600),
            root_ttl: Duration::from_secs(87_600 * 3600),
            key_type: "ec".into(),
            key_bits: 256,
        }
    }
}

impl CaParams {
    fn algorithm(&self) -> Result<&'static SignatureAlgorithm, CaError> {
        match (self.key_type.as_str(), self.key_bits) {
            ("ec", 256) => Ok(&rcgen::PKCS_ECDSA_P256_SHA256),
            ("ec", 384) => Ok(&rcgen::PKCS_ECDSA_P384_SHA384),
            (t, b) => Err(CaError::UnsupportedKey(format!("{t} {b}"))),
        }
    }
}

/// Where key pairs come from.
pub trait KeyFactory {
    fn generate(&self, alg: &'static SignatureAlgorithm) -> Result<KeyPair, CaError>;
}

/// Keys from the operating system's random source (ring).
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomKeys;

impl KeyFactory for RandomKeys {
    fn generate(&self, alg: &'static SignatureAlgorithm) -> Result<KeyPair, CaError> {
        KeyPair::generate_for(alg).map_err(CaError::KeyGeneration)
    }
}

/// A private key in PEM, redacted from `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrivateKeyPem(pub String);

impl std::fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKeyPem(<redacted>)")
    }
}

/// One CA root, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootRecord {
    /// Colon-hex SHA-1 fingerprint of the certificate, as Consul's root IDs.
    pub id: String,
    pub name: String,
    pub serial_number: u64,
    /// Colon-hex subject key identifier.
    pub signing_key_id: String,
    pub not_before: u64,
    pub not_after: u64,
    pub root_cert_pem: String,
    /// Intermediates leaves must carry: during a rotation, the new root cross-signed by the old.
    pub intermediate_certs: Vec<String>,
    pub active: bool,
    pub rotated_out_at: Option<u64>,
    pub private_key_type: String,
    pub private_key_bits: u32,
    signing_key: PrivateKeyPem,
}

/// The CA's whole state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaState {
    pub cluster_id: String,
    pub trust_domain: String,
    pub params: CaParams,
    pub roots: Vec<RootRecord>,
    next_serial: u64,
}

/// The `/v1/connect/ca/roots` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootsView {
    #[serde(rename = "ActiveRootID")]
    pub active_root_id: String,
    pub trust_domain: String,
    pub roots: Vec<RootView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootView {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub serial_number: u64,
    #[serde(rename = "SigningKeyID")]
    pub signing_key_id: String,
    pub external_trust_domain: String,
    pub not_before: String,
    pub not_after: String,
    pub root_cert: String,
    pub intermediate_certs: Vec<String>,
    pub active: bool,
    pub private_key_type: String,
    pub private_key_bits: u32,
}

/// A leaf certificate (`/v1/agent/connect/ca/leaf/:service`).
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Leaf {
    pub serial_number: String,
    /// The leaf followed by the intermediates of the signing root.
    #[serde(rename = "CertPEM")]
    pub cert_pem: String,
    #[serde(rename = "PrivateKeyPEM")]
    pub private_key_pem: String,
    pub service: String,
    #[serde(rename = "ServiceURI")]
    pub service_uri: String,
    pub valid_after: String,
    pub valid_before: String,
    #[serde(skip)]
    pub valid_after_unix: u64,
    #[serde(skip)]
    pub valid_before_unix: u64,
    #[serde(skip)]
    chain_der: Vec<Vec<u8>>,
    #[serde(skip)]
    key_der: Vec<u8>,
}

impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf")
            .field("serial_number", &self.serial_number)
            .field("service_uri", &self.service_uri)
            .field("valid_after", &self.valid_after)
            .field("valid_before", &self.valid_before)
            .field("private_key_pem", &"<redacted>")
            .finish()
    }
}

impl Leaf {
    /// The leaf and its intermediates, DER, for rustls.
    pub fn cert_chain_der(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    /// The PKCS#8 private key, DER, for rustls.
    pub fn private_key_der(&self) -> &[u8] {
        &self.key_der
    }
}

/// The outcome of a configuration change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationOutcome {
    /// Only settings changed (TTLs): no new root.
    ConfigOnly,
    /// A new root, cross-signed by the old one, is active.
    Rotated,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn offset(secs: u64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn rfc3339(secs: u64) -> String {
    offset(secs)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Clock skew tolerated on `not_before`, as Consul backdates certificates.
const BACKDATE: u64 = 60;

impl CaState {
    /// A new CA with its first root.
    pub fn bootstrap(
        cluster_id: &str,
        params: CaParams,
        now: SystemTime,
        keys: &dyn KeyFactory,
    ) -> Result<CaState, CaError> {
        let mut state = CaState {
            cluster_id: cluster_id.to_owned(),
            trust_domain: format!("{cluster_id}.consul"),
            params,
            roots: Vec::new(),
            next_serial: 1,
        };
        let (root, _, _) = state.new_root(now, keys)?;
        state.roots.push(root);
        Ok(state)
    }

    fn serial(&mut self) -> u64 {
        let s = self.next_serial;
        self.next_serial += 1;
        s
    }

    fn root_params(&mut self, now: u64) -> CertificateParams {
        let serial = self.serial();
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("Consul CA {serial}"));
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        if let Ok(uri) = format!("spiffe://{}", self.trust_domain).try_into() {
            p.subject_alt_names = vec![SanType::URI(uri)];
        }
        p.serial_number = Some(SerialNumber::from(serial));
        p.not_before = offset(now.saturating_sub(BACKDATE));
        p.not_after = offset(now + self.params.root_ttl.as_secs());
        p.use_authority_key_identifier_extension = true;
        p
    }

    /// A new self-signed root (not yet added), its params and key (for cross-signing).
    fn new_root(
        &mut self,
        now: SystemTime,
        keys: &dyn KeyFactory,
    ) -> Result<(RootRecord, CertificateParams, KeyPair), CaError> {
        let alg = self.params.algorithm()?;
        let key = keys.generate(alg)?;
        let now = unix(now);
        let params = self.root_params(now);
        let cert = params.self_signed(&key).map_err(CaError::Signing)?;
        let serial = self.next_serial - 1;
        let record = RootRecord {
            id: fingerprint(cert.der()),
            name: format!("Consul CA Primary Cert {serial}"),
            serial_number: serial,
            signing_key_id: subject_key_id(cert.der()),
            not_before: now.saturating_sub(BACKDATE),
            not_after: now + self.params.root_ttl.as_secs(),
            root_cert_pem: cert.pem(),
            intermediate_certs: Vec::new(),
            active: true,
            rotated_out_at: None,
            private_key_type: self.params.key_type.clone(),
            private_key_bits: self.params.key_bits,
            signing_key: PrivateKeyPem(key.serialize_pem()),
        };
        Ok((record, params, key))
    }

    pub fn active_root(&self) -> Option<&RootRecord> {
        self.roots.iter().find(|r| r.active)
    }

    fn issuer(root: &RootRecord) -> Result<Issuer<'static, KeyPair>, CaError> {
        let key =
            KeyPair::from_pem(&root.signing_key.0).map_err(|e| CaError::Stored(e.to_string()))?;
        Issuer::from_ca_cert_pem(&root.root_cert_pem, key)
            .map_err(|e| CaError::Stored(e.to_string()))
    }

    /// The roots as `/v1/connect/ca/roots` shows them.
    pub fn roots(&self) -> RootsView {
        RootsView {
            active_root_id: self.active_root().map(|r| r.id.clone()).unwrap_or_default(),
            trust_domain: self.trust_domain.clone(),
            roots: self
                .roots
                .iter()
                .map(|r| RootView {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    serial_number: r.serial_number,
                    signing_key_id: r.signing_key_id.clone(),
                    external_trust_domain: self.trust_domain.clone(),
                    not_before: rfc3339(r.not_before),
                    not_after: rfc3339(r.not_after),
                    root_cert: r.root_cert_pem.clone(),
                    intermediate_certs: r.intermediate_certs.clone(),
                    active: r.active,
                    private_key_type: r.private_key_type.clone(),
                    private_key_bits: r.private_key_bits,
                })
                .collect(),
        }
    }

    /// DER of every root certificate (the trust bundle, rotated-out roots included).
    pub fn trust_bundle_der(&self) -> Vec<Vec<u8>> {
        self.roots
            .iter()
            .filter_map(|r| pem_to_der(&r.root_cert_pem))
            .collect()
    }

    /// A leaf for `service` in `datacenter`, signed by the active root.
    pub fn issue_leaf(
        &mut self,
        service: &str,
        datacenter: &str,
        now: SystemTime,
        keys: &dyn KeyFactory,
    ) -> Result<Leaf, CaError> {
        let uri = service_uri(&self.trust_domain, datacenter, service);
        let cn = service_cn(service, &self.trust_domain);
        if cn.is_empty() {
            return Err(CaError::ServiceName(service.to_owned()));
        }
        let root = self.active_root().ok_or(CaError::NoActiveRoot)?.clone();
        let issuer = Self::issuer(&root)?;
        let key = keys.generate(self.params.algorithm()?)?;
        let now_s = unix(now);
        let serial = self.serial();
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        p.distinguished_name = dn;
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyAgreement,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.subject_alt_names = vec![SanType::URI(
            uri.clone()
                .try_into()
                .map_err(|_| CaError::ServiceName(service.to_owned()))?,
        )];
        p.serial_number = Some(SerialNumber::from(serial));
        p.use_authority_key_identifier_extension = true;
        let valid_after = now_s.saturating_sub(BACKDATE);
        let valid_before = now_s + self.params.leaf_ttl.as_secs();
        p.not_before = offset(valid_after);
        p.not_after = offset(valid_before);
        let cert = p.signed_by(&key, &issuer).map_err(CaError::Signing)?;
        let mut cert_pem = cert.pem();
        let mut chain_der = vec![cert.der().to_vec()];
        for inter in &root.intermediate_certs {
            cert_pem.push_str(inter);
            if let Some(der) = pem_to_der(inter) {
                chain_der.push(der);
            }
        }
        Ok(Leaf {
            serial_number: colon_hex(&serial.to_be_bytes()),
            cert_pem,
            private_key_pem: key.serialize_pem(),
            service: service.to_owned(),
            service_uri: uri,
            valid_after: rfc3339(valid_after),
            valid_before: rfc3339(valid_before),
            valid_after_unix: valid_after,
            valid_before_unix: valid_before,
            chain_der,
            key_der: key.serialize_der(),
        })
    }

    /// Applies new settings: a change of key type or size (or `force`) generates a new root,
    /// cross-signed by the old one; TTL changes only update the settings.
    pub fn rotate(
        &mut self,
        params: CaParams,
        force: bool,
        now: SystemTime,
        keys: &dyn KeyFactory,
    ) -> Result<RotationOutcome, CaError> {
        params.algorithm()?;
        let key_changed =
            params.key_type != self.params.key_type || params.key_bits != self.params.key_bits;
        self.params = params;
        if !key_changed && !force {
            return Ok(RotationOutcome::ConfigOnly);
        }
        let old = self.active_root().ok_or(CaError::NoActiveRoot)?.clone();
        let old_issuer = Self::issuer(&old)?;
        let (mut new_root, new_params, new_key) = self.new_root(now, keys)?;
        // The cross-signed certificate: the new root's subject and key, issued by the old root,
        // with its own serial.
        let mut cross_params = new_params;
        cross_params.serial_number = Some(SerialNumber::from(self.serial()));
        let cross = cross_params
            .signed_by(&new_key, &old_issuer)
            .map_err(CaError::Signing)?;
        new_root.intermediate_certs.insert(0, cross.pem());
        let now_s = unix(now);
        for r in &mut self.roots {
            if r.active {
                r.active = false;
                r.rotated_out_at = Some(now_s);
            }
        }
        self.roots.push(new_root);
        Ok(RotationOutcome::Rotated)
    }

    /// Removes inactive roots rotated out more than twice the leaf TTL ago.
    pub fn prune(&mut self, now: SystemTime) -> usize {
        let now = unix(now);
        let keep_for = 2 * self.params.leaf_ttl.as_secs();
        let before = self.roots.len();
        self.roots
            .retain(|r| r.active || r.rotated_out_at.is_none_or(|t| now < t + keep_for));
        before - self.roots.len()
    }
}

fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|c| c.to_vec())
}

fn fingerprint(der: &[u8]) -> String {
    colon_hex(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref())
}

fn subject_key_id(der: &[u8]) -> String {
    use x509_parser::prelude::*;
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return String::new();
    };
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectKeyIdentifier(id) = ext.parsed_extension() {
            return colon_hex(id.0);
        }
    }
    String::new()
}

#[cfg(test)]
mod tests;
