//! inference.GRPCInferenceService: ModelInfer and ModelStreamInfer are queued for Python without taking the GIL;
//! every other method is forwarded.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_stream::Stream;
use tonic::body::BoxBody;
use tonic::codec::CompressionEncoding;
use tonic::server::{Grpc, NamedService, StreamingService, UnaryService};
use tonic::{Code, Request, Response, Status, Streaming};
use tower::Service;

use crate::codec::RawCodec;
use crate::handoff::{CancelGuard, HandOff, Job, MESSAGE, OPEN, UNARY};
use crate::metadata;
use crate::proxy::{BoxFuture, Proxy};

const MODEL_INFER: &str = "/inference.GRPCInferenceService/ModelInfer";
const MODEL_STREAM_INFER: &str = "/inference.GRPCInferenceService/ModelStreamInfer";
/// How long a refused stream's requests are read before the refusal is sent.
const REFUSAL_DRAIN: std::time::Duration = std::time::Duration::from_millis(200);
/// Python let a call go unanswered: it only does when the server stops with the call still queued.
const DROPPED: &str = "the server stopped before answering; retry";

pub struct Limits {
    pub max_message_bytes: usize,
    pub stream_window_bytes: usize,
    pub stream_read_ahead: usize,
}

#[derive(Clone)]
pub struct Inference {
    pub handoff: Arc<HandOff>,
    pub limits: Arc<Limits>,
    pub proxy: Proxy,
}

impl NamedService for Inference {
    const NAME: &'static str = "inference.GRPCInferenceService";
}

impl Service<http::Request<BoxBody>> for Inference {
    type Response = http::Response<BoxBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<BoxBody>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<BoxBody>) -> Self::Future {
        let max = self.limits.max_message_bytes;
        // Requests compressed with gzip are taken, as gRPC's own servers take them; answers go uncompressed, as
        // theirs do unless configured otherwise.
        let grpc = move || {
            Grpc::new(RawCodec)
                .accept_compressed(CompressionEncoding::Gzip)
                .apply_max_message_size_config(Some(max), Some(max))
        };
        // A compression the front does not decode (deflate) is left to the Python side, which takes it.
        let decodable = matches!(
            request.headers().get("grpc-encoding").map(|v| v.as_bytes()),
            None | Some(b"identity") | Some(b"gzip")
        );
        match request.uri().path() {
            _ if !decodable => self.proxy.forward(request),
            MODEL_INFER => {
                let unary = Unary(self.handoff.clone());
                Box::pin(async move {
                    let response = grpc().unary(unary, request).await;
                    // A refusal before the call ran (the message was too large) is a headers-only response.
                    if response.headers().get("grpc-status").map(|v| v.as_bytes()) == Some(b"11") {
                        if let Some(status) = Status::from_header_map(response.headers()) {
                            return Ok(size_status(status).into_http());
                        }
                    }
                    Ok(response)
                })
            }
            MODEL_STREAM_INFER => {
                let streamed = Streamed { handoff: self.handoff.clone(), limits: self.limits.clone() };
                Box::pin(async move { Ok(grpc().streaming(streamed, request).await) })
            }
            _ => self.proxy.forward(request),
        }
    }
}

/// tonic refuses a message over the size limit with OUT_OF_RANGE; gRPC's own servers, and the Python front, answer
/// RESOURCE_EXHAUSTED.
fn size_status(status: Status) -> Status {
    if status.code() == Code::OutOfRange && status.message().contains("message length too large") {
        Status::resource_exhausted(status.message().to_owned())
    } else {
        status
    }
}

/// Wait for Python's answer, up to the call's deadline.
async fn answer(
    reply: oneshot::Receiver<Result<Bytes, Status>>,
    deadline: Option<std::time::Instant>,
) -> Result<Bytes, Status> {
    let answered = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline.into(), reply)
            .await
            .map_err(|_| Status::deadline_exceeded("deadline exceeded before the answer was ready"))?,
        None => reply.await,
    };
    answered.map_err(|_| Status::unavailable(DROPPED))?
}

struct Unary(Arc<HandOff>);

impl UnaryService<Bytes> for Unary {
    type Response = Bytes;
    type Future = BoxFuture<Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let handoff = self.0.clone();
        Box::pin(async move {
            let deadline = metadata::deadline(request.metadata());
            let authorization = metadata::authorization(request.metadata());
            let (reply, answered) = oneshot::channel();
            let data = request.into_inner();
            let id = handoff.next_id();
            handoff.push(Job { kind: UNARY, id, data, authorization, deadline, reply: Some(reply) }, true)?;
            let mut guard = CancelGuard::new(handoff, id);
            let answered = answer(answered, deadline).await;
            if answered.is_ok() {
                guard.disarm();
            }
            Ok(Response::new(answered?))
        })
    }
}

/// What one stream holds: requests read and not answered, answers not yet written, in number and in bytes. Past
/// either bound the stream stops reading, and HTTP/2 flow control pushes back on the client.
struct Window {
    bytes: AtomicUsize,
    requests: AtomicUsize,
    max_bytes: usize,
    max_requests: usize,
    room: Notify,
}

impl Window {
    fn full(&self) -> bool {
        self.bytes.load(Ordering::Acquire) > self.max_bytes
            || self.requests.load(Ordering::Acquire) >= self.max_requests
    }

    /// Until there is room for one more request (one request always fits in an empty window).
    async fn wait_room(&self) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.full() {
                return;
            }
            notified.await;
        }
    }

    fn add_request(&self, size: usize) {
        self.bytes.fetch_add(size, Ordering::AcqRel);
        self.requests.fetch_add(1, Ordering::AcqRel);
    }

    fn add_bytes(&self, size: usize) {
        self.bytes.fetch_add(size, Ordering::AcqRel);
    }

    fn remove(&self, size: usize) {
        self.bytes.fetch_sub(size, Ordering::AcqRel);
        self.requests.fetch_sub(1, Ordering::AcqRel);
        self.room.notify_one();
    }
}

enum Pending {
    /// A request handed to Python, its bytes in the window.
    Answer(oneshot::Receiver<Result<Bytes, Status>>, usize),
    /// Reading failed (a message too large, a broken frame): the stream ends with this status.
    Failed(Status),
}

struct Streamed {
    handoff: Arc<HandOff>,
    limits: Arc<Limits>,
}

type Answers = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send + 'static>>;

impl StreamingService<Bytes> for Streamed {
    type Response = Bytes;
    type ResponseStream = Answers;
    type Future = BoxFuture<Result<Response<Answers>, Status>>;

    /// Requests run concurrently (so they batch together) and are answered in order; a failed request is answered
    /// in the stream (Python writes its `error_message`) and the stream goes on.
    fn call(&mut self, request: Request<Streaming<Bytes>>) -> Self::Future {
        let handoff = self.handoff.clone();
        let limits = self.limits.clone();
        Box::pin(async move {
            let deadline = metadata::deadline(request.metadata());
            let authorization = metadata::authorization(request.metadata());
            // The caller is authorized once, before anything is read.
            let (reply, answered) = oneshot::channel();
            let id = handoff.next_id();
            let opening = Job { kind: OPEN, id, data: Bytes::new(), authorization, deadline, reply: Some(reply) };
            handoff.push(opening, false)?;
            let opened = answer(answered, deadline).await;
            let mut inbound = request.into_inner();
            if let Err(status) = opened {
                // Refused: read what the client sent first, up to its end (for a moment at most). Answering with
                // its requests unread races h2's reset of the stream, which gRPC clients may report as INTERNAL
                // instead of the refusal.
                let drain = async { while let Ok(Some(_)) = inbound.message().await {} };
                let _ = tokio::time::timeout(REFUSAL_DRAIN, drain).await;
                return Err(status);
            }
            let window = Arc::new(Window {
                bytes: AtomicUsize::new(0),
                requests: AtomicUsize::new(0),
                max_bytes: limits.stream_window_bytes,
                max_requests: limits.stream_read_ahead,
                room: Notify::new(),
            });
            let (order, mut ordered) = mpsc::channel::<Pending>(limits.stream_read_ahead.max(1));
            let reader_window = window.clone();
            let mut guard = CancelGuard::new(handoff.clone(), id);
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = reader_window.wait_room() => {}
                        _ = order.closed() => return,
                    }
                    let message = tokio::select! {
                        message = inbound.message() => message,
                        // The answers' side is gone (the client cancelled): stop reading.
                        _ = order.closed() => return,
                    };
                    let pending = match message {
                        Ok(Some(data)) => {
                            let size = data.len();
                            reader_window.add_request(size);
                            let (reply, answered) = oneshot::channel();
                            // Bounded by the stream's window, not by the queue's: a refusal here could not be
                            // answered in the stream.
                            let job =
                                Job { kind: MESSAGE, id, data, authorization: None, deadline, reply: Some(reply) };
                            if let Err(status) = handoff.push(job, false) {
                                Pending::Failed(status)
                            } else {
                                Pending::Answer(answered, size)
                            }
                        }
                        Ok(None) => return,
                        Err(status) => Pending::Failed(size_status(status)),
                    };
                    let failed = matches!(pending, Pending::Failed(_));
                    if order.send(pending).await.is_err() || failed {
                        return;
                    }
                }
            });
            let answers = async_stream::stream! {
                while let Some(pending) = ordered.recv().await {
                    match pending {
                        Pending::Answer(answered, size) => match answered.await {
                            Ok(Ok(bytes)) => {
                                let written = bytes.len();
                                // Computed but maybe not read yet: the answer holds memory until it is written.
                                window.add_bytes(written);
                                yield Ok(bytes);
                                window.remove(size + written);
                            }
                            Ok(Err(status)) => {
                                yield Err(status);
                                return;
                            }
                            Err(_) => {
                                yield Err(Status::unavailable(DROPPED));
                                return;
                            }
                        },
                        Pending::Failed(status) => {
                            yield Err(status);
                            return;
                        }
                    }
                }
                // Every request read was answered: nothing is left to cancel.
                guard.disarm();
            };
            Ok(Response::new(Box::pin(answers) as Answers))
        })
    }
}
