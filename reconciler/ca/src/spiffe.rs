//! SPIFFE identities and Consul's certificate names (`agent/connect/uri_service.go`,
//! `common_names.go`).

/// `spiffe://<trust-domain>/ns/default/dc/<dc>/svc/<service>`.
pub fn service_uri(trust_domain: &str, datacenter: &str, service: &str) -> String {
    format!("spiffe://{trust_domain}/ns/default/dc/{datacenter}/svc/{service}")
}

/// Parses a service identity: `(trust domain, datacenter, service)`.
pub fn parse_spiffe_service(uri: &str) -> Option<(String, String, String)> {
    let rest = uri.strip_prefix("spiffe://")?;
    let (td, path) = rest.split_once('/')?;
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["ns", _ns, "dc", dc, "svc", svc] | ["ap", _, "ns", _ns, "dc", dc, "svc", svc]
            if !td.is_empty() && !dc.is_empty() && !svc.is_empty() =>
        {
            Some((td.to_owned(), (*dc).to_owned(), (*svc).to_owned()))
        }
        _ => None,
    }
}

/// Consul's leaf common name: the service lower-cased with non-DNS characters removed,
/// `.svc.default.`, the first 8 characters of the trust domain, `.consul`; at most 64 characters.
pub fn service_cn(service: &str, trust_domain: &str) -> String {
    let name: String = service
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    if name.is_empty() {
        return String::new();
    }
    let td: String = trust_domain.chars().take(8).collect();
    let mut cn = format!("{name}.svc.default.{td}.consul");
    cn.truncate(64);
    cn
}

/// The URI SANs of a certificate.
pub fn spiffe_ids_from_der(der: &[u8]) -> Vec<String> {
    use x509_parser::prelude::*;
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(u) = name {
                out.push((*u).to_owned());
            }
        }
    }
    out
}
