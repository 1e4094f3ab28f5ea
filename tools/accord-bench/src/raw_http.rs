//! A lean HTTP/1.1 keep-alive client for the single-request workloads (client credentials and
//! the baselines): the request is encoded once and written as is, the response read by its
//! `Content-Length`, as wrk does.
//!
//! Why: the load generator shares the two cores with the server it measures. reqwest (URL
//! parsing, form encoding, its pool and cookie jar, hyper's client) took ~0.04 ms of CPU a
//! request, a tenth of a token's whole cost; the server and the peer alike lose that CPU.
//! This client spends a TLS record each way and a few header comparisons. The auth-code flow
//! keeps reqwest: it needs cookies and redirects.

use anyhow::{bail, ensure, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Responses larger than this are refused (a token response is ~2 KB).
const MAX_RESPONSE: usize = 256 * 1024;

/// One keep-alive connection that sends the same request again and again.
pub struct RawClient {
    connector: TlsConnector,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    request: Vec<u8>,
    conn: Option<TlsStream<TcpStream>>,
    buf: Vec<u8>,
}

/// A response: its status and body.
pub struct RawResponse {
    pub status: u16,
    pub body: String,
}

impl RawClient {
    /// A client for `method` on `url` (https only), with an optional form body, trusting only
    /// the CA in `ca_pem`.
    pub fn new(
        url: &url::Url,
        ca_pem: &[u8],
        method: &str,
        form: Option<&[(&str, &str)]>,
    ) -> anyhow::Result<RawClient> {
        ensure!(url.scheme() == "https", "the lean client speaks HTTPS only, not {}", url.scheme());
        let host = url.host_str().context("URL without a host")?.to_string();
        let port = url.port_or_known_default().context("URL without a port")?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            roots.add(cert.context("reading the CA's PEM")?)?;
        }
        // reqwest brings ring as well: name the provider (aws-lc, as the server) explicitly.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let server_name = ServerName::try_from(host.clone()).context("the URL's host as a TLS server name")?;
        let request = encode_request(method, url, &host, port, form);
        Ok(RawClient {
            connector: TlsConnector::from(Arc::new(config)),
            host,
            port,
            server_name,
            request,
            conn: None,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends the request once. A kept connection the server closed while idle (its keep-alive
    /// timeout, between runs) is replaced once, transparently; any other failure is an error.
    pub async fn send(&mut self) -> anyhow::Result<RawResponse> {
        let reused = self.conn.is_some();
        let mut result = self.exchange().await;
        if reused && matches!(result, Err(Exchange::Stale)) {
            // `exchange` dropped the kept connection: one try on a fresh one.
            result = self.exchange().await;
        }
        match result {
            Ok(response) => Ok(response),
            Err(Exchange::Stale) => bail!("the server closed the connection without answering"),
            Err(Exchange::Failed(e)) => Err(e),
        }
    }

    async fn exchange(&mut self) -> Result<RawResponse, Exchange> {
        if self.conn.is_none() {
            let tcp = TcpStream::connect((self.host.as_str(), self.port)).await.map_err(failed)?;
            tcp.set_nodelay(true).map_err(failed)?;
            let tls = self.connector.connect(self.server_name.clone(), tcp).await.map_err(failed)?;
            self.conn = Some(tls);
        }
        let result = self.write_and_read().await;
        if !matches!(result, Ok((_, true))) {
            self.conn = None;
        }
        result.map(|(response, _)| response)
    }

    /// Writes the request and reads one response; also says whether the connection stays open.
    async fn write_and_read(&mut self) -> Result<(RawResponse, bool), Exchange> {
        let conn = self.conn.as_mut().expect("connected above");
        if conn.write_all(&self.request).await.is_err() {
            return Err(Exchange::Stale);
        }
        self.buf.clear();
        let head = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&self.buf).map_err(|e| failed(format!("malformed response head: {e}")))? {
                httparse::Status::Complete(len) => break Head::read(&response, len).map_err(Exchange::Failed)?,
                httparse::Status::Partial => {}
            }
            if read_more(conn, &mut self.buf).await? == 0 {
                return Err(if self.buf.is_empty() { Exchange::Stale } else { failed("response cut short") });
            }
        };
        let end = head.len + head.content_length;
        if end > MAX_RESPONSE {
            return Err(failed(format!("response of {end} bytes is too large")));
        }
        while self.buf.len() < end {
            if read_more(conn, &mut self.buf).await? == 0 {
                return Err(failed("response body cut short"));
            }
        }
        let body = String::from_utf8_lossy(&self.buf[head.len..end]).into_owned();
        Ok((RawResponse { status: head.status, body }, head.keep_alive && self.buf.len() == end))
    }
}

/// Why an exchange failed: `Stale` means the connection was closed before any byte of the
/// response arrived (safe to retry once on a new one).
enum Exchange {
    Stale,
    Failed(anyhow::Error),
}

fn failed(e: impl std::fmt::Display) -> Exchange {
    Exchange::Failed(anyhow::anyhow!("{e}"))
}

async fn read_more(conn: &mut TlsStream<TcpStream>, buf: &mut Vec<u8>) -> Result<usize, Exchange> {
    let mut chunk = [0u8; 8192];
    let n = conn.read(&mut chunk).await.map_err(failed)?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// What the head of a response says about reading the rest.
struct Head {
    status: u16,
    len: usize,
    content_length: usize,
    keep_alive: bool,
}

impl Head {
    fn read(response: &httparse::Response, len: usize) -> anyhow::Result<Head> {
        let mut content_length = None;
        let mut keep_alive = true;
        for header in response.headers.iter() {
            let value = std::str::from_utf8(header.value).unwrap_or("");
            if header.name.eq_ignore_ascii_case("content-length") {
                content_length = Some(value.trim().parse::<usize>().context("Content-Length")?);
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                bail!("chunked responses are not read by the lean client");
            } else if header.name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
                keep_alive = false;
            }
        }
        Ok(Head {
            status: response.code.context("response without a status")?,
            len,
            content_length: content_length.context("response without Content-Length")?,
            keep_alive,
        })
    }
}

/// The request's bytes: request line, Host, and for a form its type, length and body.
fn encode_request(method: &str, url: &url::Url, host: &str, port: u16, form: Option<&[(&str, &str)]>) -> Vec<u8> {
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: */*\r\n");
    let body = form.map(|pairs| url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish());
    if let Some(body) = &body {
        head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default().as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_request_is_encoded_with_its_length() {
        let url = url::Url::parse("https://localhost:8443/t/oauth2/v2.0/token").unwrap();
        let bytes = encode_request("POST", &url, "localhost", 8443, Some(&[("a", "b c"), ("d", "/")]));
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text,
            "POST /t/oauth2/v2.0/token HTTP/1.1\r\nHost: localhost:8443\r\nAccept: */*\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\na=b+c&d=%2F"
        );
    }

    #[test]
    fn a_head_without_length_or_chunked_is_refused() {
        let parse = |raw: &[u8]| {
            let mut headers = [httparse::EMPTY_HEADER; 8];
            let mut response = httparse::Response::new(&mut headers);
            let len = match response.parse(raw).unwrap() {
                httparse::Status::Complete(len) => len,
                httparse::Status::Partial => panic!("partial"),
            };
            Head::read(&response, len).map(|h| (h.status, h.content_length, h.keep_alive))
        };
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").unwrap(), (200, 5, true));
        assert_eq!(
            parse(b"HTTP/1.1 400 Bad\r\ncontent-length: 0\r\nConnection: close\r\n\r\n").unwrap(),
            (400, 0, false)
        );
        assert!(parse(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
    }
}
