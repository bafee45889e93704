use super::*;
use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{anchor_from_trusted_cert, EndEntityCert, KeyUsage};

const H: u64 = 3600;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

const T0: u64 = 1_900_000_000;

fn verify(
    leaf: &Leaf,
    trust: &[Vec<u8>],
    intermediates: bool,
    now: u64,
) -> Result<(), webpki::Error> {
    let anchors_der: Vec<CertificateDer> = trust
        .iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect();
    let anchors: Vec<_> = anchors_der
        .iter()
        .map(|d| anchor_from_trusted_cert(d).unwrap())
        .collect();
    let chain = leaf.cert_chain_der();
    let ee_der = CertificateDer::from(chain[0].clone());
    let ee = EndEntityCert::try_from(&ee_der)?;
    let inter: Vec<CertificateDer> = if intermediates {
        chain[1..]
            .iter()
            .map(|d| CertificateDer::from(d.clone()))
            .collect()
    } else {
        Vec::new()
    };
    let algs = [
        webpki::ring::ECDSA_P256_SHA256,
        webpki::ring::ECDSA_P384_SHA384,
    ];
    let t = UnixTime::since_unix_epoch(Duration::from_secs(now));
    ee.verify_for_usage(
        &algs,
        &anchors,
        &inter,
        t,
        KeyUsage::server_auth(),
        None,
        None,
    )?;
    ee.verify_for_usage(
        &algs,
        &anchors,
        &inter,
        t,
        KeyUsage::client_auth(),
        None,
        None,
    )?;
    Ok(())
}

fn ca() -> CaState {
    CaState::bootstrap(
        "11111111-2222-3333-4444-555555555555",
        CaParams::default(),
        at(T0),
        &RandomKeys,
    )
    .unwrap()
}

#[test]
fn a_leaf_verifies_against_the_root_and_carries_its_spiffe_id() {
    let mut ca = ca();
    let leaf = ca.issue_leaf("web", "dc1", at(T0), &RandomKeys).unwrap();
    let trust = ca.trust_bundle_der();
    verify(&leaf, &trust, true, T0 + 10).unwrap();
    let ids = spiffe_ids_from_der(&leaf.cert_chain_der()[0]);
    assert_eq!(
        ids,
        ["spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/web"]
    );
    assert_eq!(leaf.service_uri, ids[0]);
    assert_eq!(
        parse_spiffe_service(&ids[0]),
        Some((
            "11111111-2222-3333-4444-555555555555.consul".into(),
            "dc1".into(),
            "web".into()
        ))
    );
    // Validity follows the leaf TTL at the given time.
    assert_eq!(leaf.valid_before_unix, T0 + 72 * H);
    assert!(matches!(
        verify(&leaf, &trust, true, T0 + 73 * H),
        Err(webpki::Error::CertExpired { .. })
    ));
    assert!(matches!(
        verify(&leaf, &trust, true, T0 - 3600),
        Err(webpki::Error::CertNotValidYet { .. })
    ));
    // A foreign CA does not vouch for it.
    let other = CaState::bootstrap(
        "99999999-2222-3333-4444-555555555555",
        CaParams::default(),
        at(T0),
        &RandomKeys,
    )
    .unwrap();
    assert!(verify(&leaf, &other.trust_bundle_der(), true, T0 + 10).is_err());
}

#[test]
fn leaves_keep_verifying_across_a_root_rotation() {
    let mut ca = ca();
    let before = ca.issue_leaf("web", "dc1", at(T0), &RandomKeys).unwrap();
    let old_trust = ca.trust_bundle_der();
    let outcome = ca
        .rotate(
            CaParams {
                key_bits: 384,
                ..CaParams::default()
            },
            false,
            at(T0 + H),
            &RandomKeys,
        )
        .unwrap();
    assert_eq!(outcome, RotationOutcome::Rotated);
    let roots = ca.roots();
    assert_eq!(roots.roots.len(), 2);
    assert_eq!(roots.roots.iter().filter(|r| r.active).count(), 1);
    assert_eq!(roots.active_root_id, roots.roots[1].id);
    assert_eq!(
        roots.roots[1].intermediate_certs.len(),
        1,
        "the cross-signed root"
    );
    let after = ca
        .issue_leaf("api", "dc1", at(T0 + H), &RandomKeys)
        .unwrap();
    let now = T0 + 2 * H;
    // Old-root-only trust: verifies through the cross-signed intermediate, not without it.
    verify(&after, &old_trust, true, now).unwrap();
    assert!(matches!(
        verify(&after, &old_trust, false, now),
        Err(webpki::Error::UnknownIssuer)
    ));
    // New trust bundle (both roots): both generations verify.
    let bundle = ca.trust_bundle_der();
    verify(&after, &bundle, false, now).unwrap();
    verify(&before, &bundle, true, now).unwrap();
}

#[test]
fn ttl_changes_do_not_rotate_and_rotated_roots_are_pruned_after_twice_the_leaf_ttl() {
    let mut ca = ca();
    let outcome = ca
        .rotate(
            CaParams {
                leaf_ttl: Duration::from_secs(24 * H),
                ..CaParams::default()
            },
            false,
            at(T0),
            &RandomKeys,
        )
        .unwrap();
    assert_eq!(outcome, RotationOutcome::ConfigOnly);
    assert_eq!(ca.roots.len(), 1);
    ca.rotate(ca.params.clone(), true, at(T0 + H), &RandomKeys)
        .unwrap();
    assert_eq!(ca.roots.len(), 2);
    assert_eq!(ca.prune(at(T0 + H + 47 * H)), 0, "kept for 2 x 24h");
    assert_eq!(ca.prune(at(T0 + H + 48 * H)), 1);
    assert!(ca.roots[0].active);
}

#[test]
fn serials_are_unique_and_unsupported_keys_are_errors() {
    let mut ca = ca();
    let a = ca.issue_leaf("web", "dc1", at(T0), &RandomKeys).unwrap();
    let b = ca.issue_leaf("web", "dc1", at(T0), &RandomKeys).unwrap();
    assert_ne!(a.serial_number, b.serial_number);
    let err = ca.rotate(
        CaParams {
            key_type: "rsa".into(),
            key_bits: 2048,
            ..CaParams::default()
        },
        false,
        at(T0),
        &RandomKeys,
    );
    assert!(matches!(err, Err(CaError::UnsupportedKey(_))));
    assert!(CaState::bootstrap(
        "x",
        CaParams {
            key_bits: 521,
            ..CaParams::default()
        },
        at(T0),
        &RandomKeys
    )
    .is_err());
}

#[test]
fn names_follow_consul() {
    assert_eq!(
        service_cn("Web_API", "11111111-2222.consul"),
        "webapi.svc.default.11111111.consul"
    );
    assert_eq!(service_cn(&"a".repeat(80), "td").len(), 64);
    assert_eq!(
        parse_spiffe_service("spiffe://td/agent/client/dc/dc1/id/x"),
        None
    );
}

#[test]
fn private_keys_never_appear_in_debug_output_and_state_round_trips() {
    let mut ca = ca();
    let leaf = ca.issue_leaf("web", "dc1", at(T0), &RandomKeys).unwrap();
    let debug = format!("{ca:?} {leaf:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    let json = serde_json::to_string(&ca).unwrap();
    let back: CaState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, ca);
    let roots = serde_json::to_value(ca.roots()).unwrap();
    assert!(roots["Roots"][0]["RootCert"]
        .as_str()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    assert!(!roots.to_string().contains("PRIVATE KEY"));
}

#[test]
fn leaves_work_for_a_real_mtls_handshake() {
    use rustls::pki_types::PrivateKeyDer;
    use std::sync::Arc;
    let mut ca = ca();
    let server_leaf = ca.issue_leaf("db", "dc1", at(T0), &RandomKeys).unwrap();
    let client_leaf = ca.issue_leaf("web", "dc1", at(T0), &RandomKeys).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for der in ca.trust_bundle_der() {
        roots.add(CertificateDer::from(der)).unwrap();
    }
    let roots = Arc::new(roots);
    let chain = |l: &Leaf| {
        l.cert_chain_der()
            .iter()
            .map(|d| CertificateDer::from(d.clone()))
            .collect::<Vec<_>>()
    };
    let key = |l: &Leaf| PrivateKeyDer::try_from(l.private_key_der().to_vec()).unwrap();
    // Certificates are checked at the time they were issued for, not at the wall clock.
    let time: Arc<dyn rustls::time_provider::TimeProvider> = Arc::new(FixedTime);
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        roots.clone(),
        provider.clone(),
    )
    .build()
    .unwrap();
    let server_cfg = rustls::ServerConfig::builder_with_details(provider.clone(), time)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain(&server_leaf), key(&server_leaf))
        .unwrap();
    let client_cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SpiffeVerifier {
            roots,
            expect: server_leaf.service_uri.clone(),
        }))
        .with_client_auth_cert(chain(&client_leaf), key(&client_leaf))
        .unwrap();
    let mut client =
        rustls::ClientConnection::new(Arc::new(client_cfg), "db.invalid".try_into().unwrap())
            .unwrap();
    let mut server = rustls::ServerConnection::new(Arc::new(server_cfg)).unwrap();
    for _ in 0..10 {
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            server.read_tls(&mut buf.as_slice()).unwrap();
            server.process_new_packets().unwrap();
        }
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            client.read_tls(&mut buf.as_slice()).unwrap();
            client.process_new_packets().unwrap();
        }
        if !client.is_handshaking() && !server.is_handshaking() {
            break;
        }
    }
    assert!(!client.is_handshaking() && !server.is_handshaking());
    let peer = server.peer_certificates().unwrap();
    assert_eq!(
        spiffe_ids_from_der(&peer[0]),
        std::slice::from_ref(&client_leaf.service_uri)
    );
}

/// Checks the chain at the leaf's own validity time (these leaves are dated in the future) and
/// that the server's SPIFFE ID is the expected one.
#[derive(Debug)]
struct SpiffeVerifier {
    roots: std::sync::Arc<rustls::RootCertStore>,
    expect: String,
}

impl rustls::client::danger::ServerCertVerifier for SpiffeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            UnixTime::since_unix_epoch(Duration::from_secs(T0 + 10)),
            algs.all,
        )?;
        if spiffe_ids_from_der(end_entity) != std::slice::from_ref(&self.expect) {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ));
        }
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[derive(Debug)]
struct FixedTime;

impl rustls::time_provider::TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_secs(T0 + 10)))
    }
}
