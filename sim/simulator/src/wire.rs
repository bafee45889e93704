//! What travels between applications and proxies on the simulated network: the minimal HTTP/1.1
//! they speak (one request per connection). Agents and the server speak Consul's HTTP API
//! through hyper (`client`, `server`).

use mesh_semantics::intention::HttpRequest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest response accepted; bigger input is refused, not buffered.
const MAX_LINE: usize = 1 << 20;
const MAX_HEAD: usize = 16 * 1024;

/// Where a service's sidecars listen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Endpoint {
    pub host: String,
    pub port: u16,
    /// The sidecar's service ID and `Service.Meta` (a sidecar registered without its own meta
    /// carries its service's), what a resolver subset's filter reads.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
}

/// Reads up to and including the blank line ending an HTTP head. Returns what was read, which is
/// incomplete when the peer closed early.
pub(crate) async fn read_head<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte, so nothing after the head is consumed (the proxy forwards the rest).
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() >= MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too long"));
        }
        if r.read(&mut byte).await? == 0 {
            break;
        }
        buf.push(byte[0]);
    }
    Ok(buf)
}

/// Parses a request head; `None` when it is not HTTP.
pub(crate) fn parse_request(head: &[u8]) -> Option<HttpRequest> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    if method.is_empty() || !path.starts_with('/') {
        return None;
    }
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(HttpRequest {
        method,
        path,
        headers,
    })
}

pub(crate) fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

pub(crate) fn render_request(req: &HttpRequest) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\r\n", req.method, req.path);
    for (k, v) in &req.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// A response with a body and extra headers.
pub(crate) fn response(status: u16, reason: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

/// A parsed response: status, lower-cased headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedResponse {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

pub(crate) fn parse_response(bytes: &[u8]) -> Option<ParsedResponse> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(ParsedResponse {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// Reads one response from a kept connection: its head, then a body of its `content-length`
/// (every response in the simulation carries one). Empty when the peer closed before a byte.
pub(crate) async fn read_response<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut out = read_head(r).await?;
    if out.is_empty() {
        return Ok(out);
    }
    if !out.ends_with(b"\r\n\r\n") {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed inside a response head",
        ));
    }
    let length = std::str::from_utf8(&out)
        .ok()
        .and_then(|head| {
            head.split("\r\n")
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        })
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no content-length"))?;
    if length > MAX_LINE {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "too long"));
    }
    let start = out.len();
    out.resize(start + length, 0);
    r.read_exact(&mut out[start..]).await?;
    Ok(out)
}

/// Reads until end of stream, keeping what arrived before an error.
pub(crate) async fn read_all<R: AsyncRead + Unpin>(r: &mut R) -> (Vec<u8>, Option<io::Error>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) => return (out, None),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > MAX_LINE {
                    return (
                        out,
                        Some(io::Error::new(io::ErrorKind::InvalidData, "too long")),
                    );
                }
            }
            Err(e) => return (out, Some(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip() {
        let req = HttpRequest {
            method: "GET".into(),
            path: "/v1/orders".into(),
            headers: vec![("x-a".into(), "1".into())],
        };
        assert_eq!(parse_request(&render_request(&req)), Some(req));
        let r = parse_response(&response(
            403,
            "Forbidden",
            &[("x-b", "2")],
            "RBAC: access denied",
        ))
        .unwrap();
        assert_eq!(r.status, 403);
        assert_eq!(r.headers["x-b"], "2");
        assert_eq!(r.body, "RBAC: access denied");
        assert_eq!(parse_request(b"\x00garbage"), None);
        assert_eq!(parse_response(b"nothing"), None);
    }

    #[tokio::test]
    async fn a_kept_connection_reads_one_response_at_a_time() {
        let one = response(200, "OK", &[("x-sim-service", "api")], "api");
        let two = response(403, "Forbidden", &[], "RBAC: access denied");
        let both = [one.clone(), two.clone()].concat();
        let mut r = &both[..];
        assert_eq!(read_response(&mut r).await.unwrap(), one);
        assert_eq!(read_response(&mut r).await.unwrap(), two);
        assert!(read_response(&mut r).await.unwrap().is_empty());
        let mut cut = &one[..one.len() - 1];
        assert!(read_response(&mut cut).await.is_err());
        let mut bare = &b"HTTP/1.1 200 OK\r\n\r\nbody"[..];
        assert!(read_response(&mut bare).await.is_err());
        assert_eq!(parse_response(b"nothing"), None);
    }
}
