//! The listening socket (shared with other workers through SO_REUSEPORT) and TLS termination.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A TLS handshake not done within this is dropped: a client that connects and says nothing holds no task for long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bind `host:port`; with `reuse_port`, other processes may bind the same port and the kernel spreads connections.
pub fn bind(host: &str, port: u16, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let address: SocketAddr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::AddrNotAvailable, format!("{host} has no address")))?;
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if address.is_ipv6() {
        // "::" takes IPv4 callers too, as gRPC's own server does.
        socket.set_only_v6(false)?;
    }
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The server's TLS configuration, replaced whole when its certificate files change: connections already open keep
/// the one they started with.
pub struct Tls {
    current: RwLock<Arc<ServerConfig>>,
}

impl Tls {
    pub fn new(config: Arc<ServerConfig>) -> Self {
        Self { current: RwLock::new(config) }
    }

    pub fn replace(&self, config: Arc<ServerConfig>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    fn current(&self) -> Arc<ServerConfig> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A server configuration from PEM: the certificate chain, its key and, for mutual TLS, the CAs callers' certificates
/// must chain to. HTTP/2 only, as gRPC speaks nothing else.
pub fn server_config(cert: &[u8], key: &[u8], client_ca: Option<&[u8]>) -> Result<Arc<ServerConfig>, String> {
    // ring rather than aws-lc-rs: it builds with a C compiler alone. Its provider lacks only the post-quantum key
    // exchange, which gRPC clients do not require.
    #[allow(deprecated)]
    let provider = Arc::new(ring::default_provider());
    let chain = rustls_pemfile::certs(&mut &cert[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate: {e}"))?;
    if chain.is_empty() {
        return Err("no certificate in the certificate file".into());
    }
    let key = rustls_pemfile::private_key(&mut &key[..])
        .map_err(|e| format!("private key: {e}"))?
        .ok_or("no private key in the key file")?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for certificate in rustls_pemfile::certs(&mut &ca[..]) {
                let certificate = certificate.map_err(|e| format!("client CA: {e}"))?;
                roots.add(certificate).map_err(|e| format!("client CA: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("client CA: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| format!("certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Accept connections and shake hands concurrently, handing each secured connection to the server, until `stop`.
pub async fn accept_tls(
    listener: TcpListener,
    tls: Arc<Tls>,
    secured: mpsc::Sender<io::Result<TlsStream<TcpStream>>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stopped| *stopped) => return,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(_) => {
                // Out of descriptors or a connection reset before it was accepted: try again shortly.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = TlsAcceptor::from(tls.current());
        let secured = secured.clone();
        tokio::spawn(async move {
            // A failed handshake (no client certificate, an untrusted one, not TLS at all) closes that connection only.
            if let Ok(Ok(stream)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                let _ = secured.send(Ok(stream)).await;
            }
        });
    }
}
