//! Conduit's compiled gRPC front.
//!
//! tonic terminates gRPC (and TLS, with rustls) on a tokio runtime that never takes the GIL. ModelInfer and
//! ModelStreamInfer calls are framed here and queued; Python's event loop wakes on the queue's descriptor and takes
//! everything waiting at once, so the calls that arrived while Python was busy reach the dynamic batchers together.
//! Every other call is forwarded to the process's own grpc.aio server on a private Unix socket, which serves health,
//! reflection, metadata and the repository protocol exactly as the Python front does.

// tonic::Status, 176 bytes, is the error of every gRPC handler and of what they call.
#![allow(clippy::result_large_err)]

mod codec;
mod handoff;
mod infer;
mod listen;
mod metadata;
mod proxy;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic::{Code, Status};

use handoff::{HandOff, Job, Reply};
use infer::{Inference, Limits};
use proxy::{Health, Proxy, Reflection};

/// One call waiting for Python: answer it exactly once, with `reply` or `fail`.
#[pyclass(frozen, module = "conduit_native")]
struct Call {
    kind: u8,
    id: u64,
    data: Bytes,
    authorization: Option<String>,
    deadline: Option<Instant>,
    reply: Mutex<Option<Reply>>,
}

impl Call {
    fn answer(&self, answer: Result<Bytes, Status>) {
        let reply = self.reply.lock().unwrap_or_else(|e| e.into_inner()).take();
        // A caller gone (cancelled, past its deadline) no longer listens: nothing to do.
        if let Some(reply) = reply {
            let _ = reply.send(answer);
        }
    }
}

#[pymethods]
impl Call {
    /// UNARY, OPEN, MESSAGE or CANCEL.
    #[getter]
    fn kind(&self) -> u8 {
        self.kind
    }

    /// The unary call or the stream this belongs to.
    #[getter]
    fn id(&self) -> u64 {
        self.id
    }

    /// The request message as received.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.data)
    }

    /// The call's `authorization` header; `None` when it sent none (and for the requests of a stream, authorized
    /// when it opened).
    #[getter]
    fn authorization(&self) -> Option<&str> {
        self.authorization.as_deref()
    }

    /// Seconds left before the caller's deadline, now; `None` without one.
    #[getter]
    fn timeout_s(&self) -> Option<f64> {
        self.deadline.map(|d| d.saturating_duration_since(Instant::now()).as_secs_f64())
    }

    /// Answer with the serialized response message.
    fn reply(&self, data: &[u8]) {
        self.answer(Ok(Bytes::copy_from_slice(data)));
    }

    /// Answer with a gRPC status: `code` as in grpc.StatusCode's numbers.
    fn fail(&self, code: i32, message: &str) {
        self.answer(Err(Status::new(Code::from_i32(code), message)));
    }
}

impl From<Job> for Call {
    fn from(job: Job) -> Self {
        Self {
            kind: job.kind,
            id: job.id,
            data: job.data,
            authorization: job.authorization,
            deadline: job.deadline,
            reply: Mutex::new(job.reply),
        }
    }
}

struct Running {
    runtime: tokio::runtime::Runtime,
    stop: watch::Sender<bool>,
    served: tokio::task::JoinHandle<Result<(), String>>,
}

/// The gRPC front of one server process.
///
/// `threads` is the size of the tokio runtime; the limits are those of `conduit serve`'s settings of the same names.
#[pyclass(frozen, module = "conduit_native")]
struct Front {
    host: String,
    port: u16,
    reuse_port: bool,
    threads: usize,
    limits: Arc<Limits>,
    handoff: Arc<HandOff>,
    tls: Mutex<Option<Arc<listen::Tls>>>,
    running: Mutex<Option<Running>>,
}

#[pymethods]
impl Front {
    #[new]
    #[pyo3(signature = (
        host, port, *, reuse_port=false, threads=2, max_message_bytes=64 * 1024 * 1024,
        max_queued_bytes=512 * 1024 * 1024, stream_window_bytes=16 * 1024 * 1024, stream_read_ahead=1024
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        host: String,
        port: u16,
        reuse_port: bool,
        threads: usize,
        max_message_bytes: usize,
        max_queued_bytes: usize,
        stream_window_bytes: usize,
        stream_read_ahead: usize,
    ) -> PyResult<Self> {
        let handoff = HandOff::new(max_queued_bytes).map_err(|e| PyOSError::new_err(e.to_string()))?;
        Ok(Self {
            host,
            port,
            reuse_port,
            threads: threads.max(1),
            limits: Arc::new(Limits { max_message_bytes, stream_window_bytes, stream_read_ahead }),
            handoff: Arc::new(handoff),
            tls: Mutex::new(None),
            running: Mutex::new(None),
        })
    }

    /// Serve TLS with this PEM certificate chain and key (and require client certificates signed by `client_ca`).
    /// Before `start`, it turns TLS on; after, it replaces the configuration for the next connections.
    #[pyo3(signature = (cert, key, client_ca=None))]
    fn set_tls(&self, cert: &[u8], key: &[u8], client_ca: Option<&[u8]>) -> PyResult<()> {
        let config = listen::server_config(cert, key, client_ca).map_err(PyValueError::new_err)?;
        let mut tls = self.tls.lock().unwrap_or_else(|e| e.into_inner());
        match tls.as_ref() {
            Some(current) => current.replace(config),
            None if self.running.lock().unwrap_or_else(|e| e.into_inner()).is_some() => {
                return Err(PyRuntimeError::new_err("TLS cannot be turned on once the front serves plaintext"))
            }
            None => *tls = Some(Arc::new(listen::Tls::new(config))),
        }
        Ok(())
    }

    /// Listen and serve in the background; returns the bound port. `internal` is the Unix socket of the process's
    /// grpc.aio server, where every call but ModelInfer and ModelStreamInfer goes.
    fn start(&self, py: Python<'_>, internal: PathBuf) -> PyResult<u16> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.is_some() {
            return Err(PyRuntimeError::new_err("the front is already serving"));
        }
        let listener = listen::bind(&self.host, self.port, self.reuse_port)
            .map_err(|e| PyOSError::new_err(format!("cannot listen on {}:{}: {e}", self.host, self.port)))?;
        let port = listener.local_addr().map_err(|e| PyOSError::new_err(e.to_string()))?.port();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.threads)
            .thread_name("conduit-front")
            .enable_all()
            .build()
            .map_err(|e| PyOSError::new_err(e.to_string()))?;
        let proxy = {
            let _entered = runtime.enter();
            Proxy::new(internal).map_err(|e| PyRuntimeError::new_err(e.to_string()))?
        };
        let inference = Inference { handoff: self.handoff.clone(), limits: self.limits.clone(), proxy: proxy.clone() };
        let tls = self.tls.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (stop, stopped) = watch::channel(false);
        let served = py.allow_threads(|| {
            runtime.spawn(async move {
                let listener = TcpListener::from_std(listener).map_err(|e| e.to_string())?;
                let router = Server::builder()
                    .add_service(inference)
                    .add_service(Health(proxy.clone()))
                    .add_service(Reflection(proxy));
                let mut until = stopped.clone();
                let signal = async move {
                    let _ = until.wait_for(|stopped| *stopped).await;
                };
                match tls {
                    None => {
                        let incoming = TcpIncoming::from_listener(listener, true, None).map_err(|e| e.to_string())?;
                        router.serve_with_incoming_shutdown(incoming, signal).await
                    }
                    Some(tls) => {
                        let (secured, incoming) = mpsc::channel(128);
                        tokio::spawn(listen::accept_tls(listener, tls, secured, stopped));
                        router.serve_with_incoming_shutdown(ReceiverStream::new(incoming), signal).await
                    }
                }
                .map_err(|e| e.to_string())
            })
        });
        *running = Some(Running { runtime, stop, served });
        Ok(port)
    }

    /// The descriptor that becomes readable when calls wait to be taken.
    fn wake_fd(&self) -> i32 {
        self.handoff.wake_fd()
    }

    /// How many calls wait for Python now.
    fn queued(&self) -> usize {
        self.handoff.len()
    }

    /// Every call waiting now, oldest first.
    fn take<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let calls =
            self.handoff.take().into_iter().map(|job| Bound::new(py, Call::from(job))).collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, calls)
    }

    /// Stop listening and answer the calls in flight, for up to `grace_s` seconds; True when they all finished.
    /// Python must keep taking and answering calls meanwhile: call it off the event loop.
    fn stop(&self, py: Python<'_>, grace_s: f64) -> bool {
        let Some(running) = self.running.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return true;
        };
        py.allow_threads(move || {
            let _ = running.stop.send(true);
            let grace = Duration::from_secs_f64(grace_s.max(0.0));
            let drained = running.runtime.block_on(async { tokio::time::timeout(grace, running.served).await.is_ok() });
            running.runtime.shutdown_timeout(Duration::from_millis(200));
            drained
        })
    }
}

#[pymodule]
fn conduit_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Front>()?;
    m.add_class::<Call>()?;
    m.add("UNARY", handoff::UNARY)?;
    m.add("OPEN", handoff::OPEN)?;
    m.add("MESSAGE", handoff::MESSAGE)?;
    m.add("CANCEL", handoff::CANCEL)?;
    Ok(())
}
