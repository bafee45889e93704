//! mTLS between sidecars with rustls (ring), verified at simulated time: the inbound side
//! requires a client certificate chaining to the agent's current roots; the outbound side checks
//! the chain and that the server's SPIFFE ID names the destination it dialled. Public so the
//! benchmark can time the same handshakes outside the simulation.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::time_provider::TimeProvider;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use std::sync::Arc;

/// The wall clock of the simulation (turmoil's epoch plus simulated time), so certificate
/// validity is checked against simulated time and never against the machine's clock. Outside a
/// simulation (benchmarks) it stands still at the epoch.
#[derive(Debug)]
struct SimClock;

impl TimeProvider for SimClock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(
            turmoil::since_epoch().unwrap_or(std::time::Duration::from_secs(crate::EPOCH_UNIX)),
        ))
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain and its key, DER.
#[derive(Debug, Clone)]
pub struct Identity {
    pub chain: Vec<Vec<u8>>,
    pub key: Vec<u8>,
}

impl Identity {
    pub fn from_leaf(leaf: &mesh_ca::Leaf) -> Identity {
        Identity {
            chain: leaf.cert_chain_der().to_vec(),
            key: leaf.private_key_der().to_vec(),
        }
    }

    fn parts(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let chain = self
            .chain
            .iter()
            .map(|c| CertificateDer::from(c.clone()))
            .collect();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        (chain, key)
    }
}

fn store(roots: &[Vec<u8>]) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    for r in roots {
        store.add(CertificateDer::from(r.clone()))?;
    }
    Ok(store)
}

/// The inbound listener's config: client certificates required and verified against `roots`.
pub fn server_config(roots: &[Vec<u8>], me: &Identity) -> Result<Arc<ServerConfig>, Error> {
    let p = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(store(roots)?), p.clone())
        .build()
        .map_err(|e| Error::General(e.to_string()))?;
    let (chain, key) = me.parts();
    let cfg = ServerConfig::builder_with_details(p, Arc::new(SimClock))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    Ok(Arc::new(cfg))
}

/// An outbound config that accepts only a server proving `spiffe://<td>/.../svc/<expected>`.
/// Without `me`, no client certificate is sent (an adversarial probe).
pub fn client_config(
    roots: &[Vec<u8>],
    trust_domain: &str,
    expected: &str,
    me: Option<&Identity>,
) -> Result<Arc<ClientConfig>, Error> {
    let p = provider();
    let verifier = SpiffeServerVerifier {
        roots: store(roots)?,
        trust_domain: trust_domain.to_owned(),
        expected: expected.to_owned(),
        provider: p.clone(),
    };
    let builder = ClientConfig::builder_with_details(p, Arc::new(SimClock))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let cfg = match me {
        Some(me) => {
            let (chain, key) = me.parts();
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// The name sent in SNI; identity is checked through the SPIFFE ID, not this name.
pub fn server_name(service: &str) -> ServerName<'static> {
    ServerName::try_from(format!("{service}.service.consul"))
        .unwrap_or_else(|_| ServerName::try_from("service.consul".to_owned()).expect("valid name"))
}

/// The service named by the first SPIFFE service ID of `der` in `trust_domain`.
pub fn service_of(der: &[u8], trust_domain: &str) -> Option<String> {
    mesh_ca::spiffe_ids_from_der(der)
        .iter()
        .filter_map(|u| mesh_ca::parse_spiffe_service(u))
        .find(|(td, _, _)| td == trust_domain)
        .map(|(_, _, svc)| svc)
}

/// The linkerd `AnySanVerifier` pattern: webpki checks the chain, validity and EKU; the identity
/// check is ours, on the URI SAN.
#[derive(Debug)]
struct SpiffeServerVerifier {
    roots: RootCertStore,
    trust_domain: String,
    expected: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        match service_of(end_entity, &self.trust_domain) {
            Some(s) if s == self.expected => Ok(ServerCertVerified::assertion()),
            _ => Err(Error::InvalidCertificate(CertificateError::NotValidForName)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS error (a rejected certificate, an alert from the peer) as opposed to a transport one.
pub(crate) fn is_tls_error(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Error>())
}
