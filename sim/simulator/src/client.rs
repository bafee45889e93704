//! The HTTP/1.1 client agents and the operator use to reach the control plane: hyper over
//! turmoil's TCP, one request at a time per connection (a blocking query holds its connection).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{handshake, SendRequest};
use hyper_util::rt::TokioIo;
use std::io;
use turmoil::net::TcpStream;

/// An answer: status, `X-Consul-Index` (0 when absent) and body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub index: u64,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> io::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub(crate) struct Conn {
    send: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn connect(host: &str, port: u16) -> io::Result<Conn> {
        let stream = TcpStream::connect((host, port)).await?;
        let (send, conn) = handshake(TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        // Ends when the stream fails or `send` is dropped.
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        Ok(Conn { send })
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> io::Result<Reply> {
        self.send.ready().await.map_err(io::Error::other)?;
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", crate::server::HOST)
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(io::Error::other)?;
        let resp = self
            .send
            .send_request(req)
            .await
            .map_err(io::Error::other)?;
        let status = resp.status().as_u16();
        let index = resp
            .headers()
            .get("x-consul-index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(io::Error::other)?
            .to_bytes();
        Ok(Reply {
            status,
            index,
            body,
        })
    }

    pub async fn get(&mut self, path: &str) -> io::Result<Reply> {
        self.request("GET", path, None).await
    }
}
