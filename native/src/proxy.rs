//! Every call the front does not answer itself goes, frames and trailers unchanged, to the process's own grpc.aio
//! server on a private Unix socket: health, reflection, metadata, configuration, statistics and the repository are
//! served by the one implementation both fronts share.

use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::body::BoxBody;
use tonic::server::NamedService;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::Status;
use tower::{service_fn, Service, ServiceExt};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

#[derive(Clone)]
pub struct Proxy {
    channel: Channel,
}

impl Proxy {
    /// A proxy to the server listening on the Unix socket `path` (connected on first use, and again after a failure).
    pub fn new(path: PathBuf) -> Result<Self, tonic::transport::Error> {
        let endpoint = Endpoint::try_from("http://conduit.internal")?;
        let channel = endpoint.connect_with_connector_lazy(service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }));
        Ok(Self { channel })
    }

    pub fn forward(&self, request: http::Request<BoxBody>) -> BoxFuture<Result<http::Response<BoxBody>, Infallible>> {
        let channel = self.channel.clone();
        let deadline = request.headers().get("grpc-timeout").and_then(|v| crate::metadata::deadline_of(v.as_bytes()));
        Box::pin(async move {
            match channel.oneshot(request).await {
                Ok(response) => Ok(response),
                // The Python side ends a call whose deadline passed by resetting it: that is the deadline.
                Err(_) if deadline.is_some_and(|d| std::time::Instant::now() >= d) => {
                    Ok(Status::deadline_exceeded("deadline exceeded before the answer was ready").into_http())
                }
                Err(error) => {
                    Ok(Status::unavailable(format!("the server's Python side did not answer: {error}")).into_http())
                }
            }
        })
    }
}

/// A whole gRPC service served by the Python side, under its own name.
macro_rules! forwarded {
    ($ty:ident, $name:literal) => {
        #[derive(Clone)]
        pub struct $ty(pub Proxy);

        impl NamedService for $ty {
            const NAME: &'static str = $name;
        }

        impl Service<http::Request<BoxBody>> for $ty {
            type Response = http::Response<BoxBody>;
            type Error = Infallible;
            type Future = BoxFuture<Result<http::Response<BoxBody>, Infallible>>;

            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }

            fn call(&mut self, request: http::Request<BoxBody>) -> Self::Future {
                self.0.forward(request)
            }
        }
    };
}

forwarded!(Health, "grpc.health.v1.Health");
forwarded!(Reflection, "grpc.reflection.v1alpha.ServerReflection");
