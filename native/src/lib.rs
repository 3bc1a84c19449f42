//! Stage-gate spike: a compiled Open Inference Protocol (KServe v2) gRPC front for Conduit.
//!
//! tonic terminates gRPC on a tokio runtime with the GIL released; ModelInfer requests are decoded and validated in
//! Rust. In `native` mode each request is answered at once with zero-filled outputs (the front alone). In `python`
//! mode requests are queued per model and one worker thread per model collects whatever arrived while Python was busy
//! into one batch, takes the GIL once, calls `handler(model_name, {input: ndarray})` and splits the returned arrays
//! back into per-request answers, encoded in Rust. This is a measurement, not the product.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use numpy::{IxDyn, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};

#[allow(clippy::all)]
mod pb {
    tonic::include_proto!("inference");
}

use pb::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};
use pb::model_infer_response::InferOutputTensor;
use pb::model_metadata_response::TensorMetadata;

/// One graph input or output: its shape without the batch dimension (-1 where dynamic).
#[derive(Clone)]
struct Tensor {
    name: String,
    datatype: String,
    dims: Vec<i64>,
}

fn element_size(datatype: &str) -> Option<usize> {
    match datatype {
        "BOOL" | "INT8" | "UINT8" => Some(1),
        "FP16" | "INT16" | "UINT16" => Some(2),
        "FP32" | "INT32" | "UINT32" => Some(4),
        "FP64" | "INT64" | "UINT64" => Some(8),
        _ => None,
    }
}

/// One request's share of a batch.
struct Job {
    rows: usize,
    inputs: Vec<Bytes>,
    reply: oneshot::Sender<Result<Vec<(Tensor, Vec<i64>, Bytes)>, Status>>,
}

struct Model {
    name: String,
    version: String,
    max_batch_size: usize,
    inputs: Vec<Tensor>,
    outputs: Vec<Tensor>,
    /// `None`: answered natively; otherwise the queue of the model's Python worker.
    queue: Option<mpsc::UnboundedSender<Job>>,
    requests: AtomicU64,
    batches: AtomicU64,
}

struct Front {
    models: HashMap<String, Arc<Model>>,
}

impl Front {
    fn model(&self, name: &str) -> Result<&Arc<Model>, Status> {
        self.models.get(name).ok_or_else(|| Status::not_found(format!("unknown model '{name}'")))
    }
}

fn metadata(tensors: &[Tensor]) -> Vec<TensorMetadata> {
    tensors
        .iter()
        .map(|t| TensorMetadata {
            name: t.name.clone(),
            datatype: t.datatype.clone(),
            shape: std::iter::once(-1).chain(t.dims.iter().copied()).collect(),
        })
        .collect()
}

fn config_type(datatype: &str) -> i32 {
    pb::DataType::from_str_name(&format!("TYPE_{datatype}")).map_or(0, |t| t as i32)
}

/// Decode and check one request against the model: the row count and each input's raw bytes, in declared order.
fn validate(model: &Model, request: &mut pb::ModelInferRequest) -> Result<(usize, Vec<Bytes>), Status> {
    if request.inputs.len() != model.inputs.len() {
        return Err(Status::invalid_argument(format!(
            "model '{}' expects {} inputs, got {}",
            model.name,
            model.inputs.len(),
            request.inputs.len()
        )));
    }
    if request.raw_input_contents.len() != request.inputs.len() {
        return Err(Status::invalid_argument("every input must be sent in raw_input_contents"));
    }
    let mut rows: Option<usize> = None;
    let mut raw: Vec<Option<Bytes>> = vec![None; model.inputs.len()];
    let contents = std::mem::take(&mut request.raw_input_contents);
    for (tensor, bytes) in request.inputs.iter().zip(contents) {
        let index = model
            .inputs
            .iter()
            .position(|t| t.name == tensor.name)
            .ok_or_else(|| Status::invalid_argument(format!("unknown input '{}'", tensor.name)))?;
        let expected = &model.inputs[index];
        if tensor.datatype != expected.datatype {
            return Err(Status::invalid_argument(format!(
                "input '{}' must be {}, got {}",
                tensor.name, expected.datatype, tensor.datatype
            )));
        }
        let shape_ok = tensor.shape.len() == expected.dims.len() + 1
            && tensor.shape[0] >= 1
            && tensor.shape[1..].iter().zip(&expected.dims).all(|(got, want)| *want < 0 || got == want);
        if !shape_ok {
            return Err(Status::invalid_argument(format!(
                "input '{}' has shape {:?}, expected [-1]+{:?}",
                tensor.name, tensor.shape, expected.dims
            )));
        }
        let n = tensor.shape[0] as usize;
        if *rows.get_or_insert(n) != n {
            return Err(Status::invalid_argument("inputs disagree on the batch dimension"));
        }
        if n > model.max_batch_size {
            return Err(Status::invalid_argument(format!(
                "batch of {n} exceeds max_batch_size {}",
                model.max_batch_size
            )));
        }
        let elements: i64 = tensor.shape.iter().product();
        let size = element_size(&tensor.datatype).unwrap_or(0);
        if bytes.len() != elements as usize * size {
            return Err(Status::invalid_argument(format!(
                "input '{}' has {} bytes, shape {:?} needs {}",
                tensor.name,
                bytes.len(),
                tensor.shape,
                elements as usize * size
            )));
        }
        if raw[index].replace(bytes).is_some() {
            return Err(Status::invalid_argument(format!("input '{}' sent twice", tensor.name)));
        }
    }
    Ok((rows.unwrap_or(0), raw.into_iter().map(Option::unwrap_or_default).collect()))
}

/// The front alone: zero-filled outputs of the declared shapes (dynamic dimensions as 1).
fn native_answer(model: &Model, rows: usize) -> Vec<(Tensor, Vec<i64>, Bytes)> {
    model
        .outputs
        .iter()
        .map(|t| {
            let shape: Vec<i64> = std::iter::once(rows as i64).chain(t.dims.iter().map(|d| (*d).max(1))).collect();
            let size = shape.iter().product::<i64>() as usize * element_size(&t.datatype).unwrap_or(0);
            (t.clone(), shape, Bytes::from(vec![0u8; size]))
        })
        .collect()
}

#[tonic::async_trait]
impl GrpcInferenceService for Front {
    async fn server_live(&self, _: Request<pb::ServerLiveRequest>) -> Result<Response<pb::ServerLiveResponse>, Status> {
        Ok(Response::new(pb::ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<pb::ServerReadyRequest>,
    ) -> Result<Response<pb::ServerReadyResponse>, Status> {
        Ok(Response::new(pb::ServerReadyResponse { ready: true }))
    }

    async fn model_ready(
        &self,
        request: Request<pb::ModelReadyRequest>,
    ) -> Result<Response<pb::ModelReadyResponse>, Status> {
        let ready = self.models.contains_key(&request.get_ref().name);
        Ok(Response::new(pb::ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _: Request<pb::ServerMetadataRequest>,
    ) -> Result<Response<pb::ServerMetadataResponse>, Status> {
        Ok(Response::new(pb::ServerMetadataResponse {
            name: "conduit-native-spike".into(),
            version: "0".into(),
            extensions: vec![],
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<pb::ModelMetadataRequest>,
    ) -> Result<Response<pb::ModelMetadataResponse>, Status> {
        let model = self.model(&request.get_ref().name)?;
        Ok(Response::new(pb::ModelMetadataResponse {
            name: model.name.clone(),
            versions: vec![model.version.clone()],
            platform: "onnxruntime_onnx".into(),
            inputs: metadata(&model.inputs),
            outputs: metadata(&model.outputs),
        }))
    }

    async fn model_config(
        &self,
        request: Request<pb::ModelConfigRequest>,
    ) -> Result<Response<pb::ModelConfigResponse>, Status> {
        let model = self.model(&request.get_ref().name)?;
        let config = pb::ModelConfig {
            name: model.name.clone(),
            platform: "onnxruntime_onnx".into(),
            max_batch_size: model.max_batch_size as i32,
            input: model
                .inputs
                .iter()
                .map(|t| pb::ModelInput {
                    name: t.name.clone(),
                    data_type: config_type(&t.datatype),
                    dims: t.dims.clone(),
                    ..Default::default()
                })
                .collect(),
            output: model
                .outputs
                .iter()
                .map(|t| pb::ModelOutput {
                    name: t.name.clone(),
                    data_type: config_type(&t.datatype),
                    dims: t.dims.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        Ok(Response::new(pb::ModelConfigResponse { config: Some(config) }))
    }

    async fn model_statistics(
        &self,
        request: Request<pb::ModelStatisticsRequest>,
    ) -> Result<Response<pb::ModelStatisticsResponse>, Status> {
        let model = self.model(&request.get_ref().name)?;
        let requests = model.requests.load(Ordering::Relaxed);
        // Python mode: one execution per hand-off. Native mode: every request is its own execution.
        let batches = if model.queue.is_some() { model.batches.load(Ordering::Relaxed) } else { requests };
        let duration = |count: u64| Some(pb::StatisticDuration { count, ns: 0 });
        Ok(Response::new(pb::ModelStatisticsResponse {
            model_stats: vec![pb::ModelStatistics {
                name: model.name.clone(),
                version: model.version.clone(),
                inference_count: requests,
                execution_count: batches,
                inference_stats: Some(pb::InferStatistics {
                    success: duration(requests),
                    fail: duration(0),
                    queue: duration(requests),
                    compute_input: duration(requests),
                    compute_infer: duration(requests),
                    compute_output: duration(requests),
                    cache_hit: duration(0),
                    cache_miss: duration(0),
                }),
                ..Default::default()
            }],
        }))
    }

    async fn model_infer(
        &self,
        request: Request<pb::ModelInferRequest>,
    ) -> Result<Response<pb::ModelInferResponse>, Status> {
        let mut request = request.into_inner();
        let model = self.model(&request.model_name)?;
        let (rows, inputs) = validate(model, &mut request)?;
        model.requests.fetch_add(1, Ordering::Relaxed);
        let answer = match &model.queue {
            None => native_answer(model, rows),
            Some(queue) => {
                let (reply, answer) = oneshot::channel();
                queue
                    .send(Job { rows, inputs, reply })
                    .map_err(|_| Status::unavailable("the model's worker has stopped"))?;
                answer.await.map_err(|_| Status::internal("the model's worker dropped the request"))??
            }
        };
        let mut response = pb::ModelInferResponse {
            model_name: model.name.clone(),
            model_version: model.version.clone(),
            id: request.id,
            ..Default::default()
        };
        for (tensor, shape, bytes) in answer {
            response.outputs.push(InferOutputTensor {
                name: tensor.name,
                datatype: tensor.datatype,
                shape,
                ..Default::default()
            });
            response.raw_output_contents.push(bytes);
        }
        Ok(Response::new(response))
    }
}

/// A new numpy array of `shape` holding the concatenation of `parts` (their total length was validated).
fn concatenate<'py, T: numpy::Element>(py: Python<'py>, shape: &[usize], parts: &[&Bytes]) -> Bound<'py, PyAny> {
    // SAFETY: the array is fresh and C-contiguous with exactly sum(parts) bytes; every byte is written below.
    unsafe {
        let array = PyArrayDyn::<T>::new(py, IxDyn(shape), false);
        let mut dst = array.data() as *mut u8;
        for part in parts {
            std::ptr::copy_nonoverlapping(part.as_ptr(), dst, part.len());
            dst = dst.add(part.len());
        }
        array.into_any()
    }
}

fn input_array<'py>(py: Python<'py>, tensor: &Tensor, shape: &[usize], parts: &[&Bytes]) -> PyResult<Bound<'py, PyAny>> {
    Ok(match tensor.datatype.as_str() {
        "FP32" => concatenate::<f32>(py, shape, parts),
        "FP64" => concatenate::<f64>(py, shape, parts),
        "INT32" => concatenate::<i32>(py, shape, parts),
        "INT64" => concatenate::<i64>(py, shape, parts),
        other => return Err(PyValueError::new_err(format!("input datatype {other} is not supported"))),
    })
}

fn datatype_of(array: &Bound<'_, PyUntypedArray>) -> PyResult<&'static str> {
    let dtype = array.dtype();
    Ok(match (dtype.kind(), dtype.itemsize()) {
        (b'f', 4) => "FP32",
        (b'f', 8) => "FP64",
        (b'i', 4) => "INT32",
        (b'i', 8) => "INT64",
        (b'b', 1) => "BOOL",
        (kind, size) => {
            return Err(PyValueError::new_err(format!(
                "output dtype kind '{}' of {size} bytes is not supported",
                kind as char
            )))
        }
    })
}

type Answers = Vec<Vec<(Tensor, Vec<i64>, Bytes)>>;

/// One GIL acquisition: build the batch's arrays, call the handler, copy each output out once.
fn run_batch(model: &Model, handler: &PyObject, jobs: &[Job]) -> PyResult<Answers> {
    let rows: usize = jobs.iter().map(|j| j.rows).sum();
    Python::with_gil(|py| {
        let feeds = PyDict::new(py);
        for (i, tensor) in model.inputs.iter().enumerate() {
            let shape: Vec<usize> =
                std::iter::once(rows).chain(tensor.dims.iter().map(|d| (*d).max(1) as usize)).collect();
            let parts: Vec<&Bytes> = jobs.iter().map(|j| &j.inputs[i]).collect();
            feeds.set_item(&tensor.name, input_array(py, tensor, &shape, &parts)?)?;
        }
        let result = handler.bind(py).call1((model.name.as_str(), feeds))?;
        let result = result.downcast::<PyDict>()?;
        let mut answers: Answers = jobs.iter().map(|_| Vec::with_capacity(model.outputs.len())).collect();
        for tensor in &model.outputs {
            let value = result
                .get_item(&tensor.name)?
                .ok_or_else(|| PyRuntimeError::new_err(format!("handler returned no output '{}'", tensor.name)))?;
            let array = value.downcast::<PyUntypedArray>()?;
            let shape = array.shape().to_vec();
            if shape.first() != Some(&rows) || !array.is_c_contiguous() {
                return Err(PyRuntimeError::new_err(format!(
                    "output '{}' must be C-contiguous with {rows} rows, got shape {shape:?}",
                    tensor.name
                )));
            }
            let datatype = datatype_of(array)?;
            let total = array.len() * array.dtype().itemsize();
            // SAFETY: a C-contiguous array's data pointer addresses `total` bytes while we hold the GIL and `array`.
            let all = Bytes::copy_from_slice(unsafe {
                std::slice::from_raw_parts((*array.as_array_ptr()).data as *const u8, total)
            });
            let per_row = if rows == 0 { 0 } else { total / rows };
            let mut offset = 0;
            for (job, answer) in jobs.iter().zip(answers.iter_mut()) {
                let shape: Vec<i64> =
                    std::iter::once(job.rows as i64).chain(shape[1..].iter().map(|d| *d as i64)).collect();
                let end = offset + job.rows * per_row;
                let named = Tensor { name: tensor.name.clone(), datatype: datatype.into(), dims: vec![] };
                answer.push((named, shape, all.slice(offset..end)));
                offset = end;
            }
        }
        Ok(answers)
    })
}

/// The model's Python worker: take what is queued (up to max_batch_size rows), hand it to Python once, answer all.
fn worker(model: Arc<Model>, handler: PyObject, mut queue: mpsc::UnboundedReceiver<Job>) {
    let mut pending: Option<Job> = None;
    loop {
        let first = match pending.take() {
            Some(job) => job,
            None => match queue.blocking_recv() {
                Some(job) => job,
                None => return,
            },
        };
        let mut rows = first.rows;
        let mut jobs = vec![first];
        while rows < model.max_batch_size {
            match queue.try_recv() {
                Ok(job) if rows + job.rows > model.max_batch_size => {
                    pending = Some(job);
                    break;
                }
                Ok(job) => {
                    rows += job.rows;
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        model.batches.fetch_add(1, Ordering::Relaxed);
        match run_batch(&model, &handler, &jobs) {
            Ok(answers) => {
                for (job, answer) in jobs.into_iter().zip(answers) {
                    let _ = job.reply.send(Ok(answer));
                }
            }
            Err(error) => {
                let message = Python::with_gil(|py| error.value(py).to_string());
                for job in jobs {
                    let _ = job.reply.send(Err(Status::internal(format!("model handler failed: {message}"))));
                }
            }
        }
    }
}

type TensorSpec = (String, String, Vec<i64>);

/// Serve until SIGINT: `models` is a list of (name, version, max_batch_size, inputs, outputs), each tensor
/// (name, datatype, dims without the batch dimension). With `handler`, every model runs in Python
/// (`handler(model_name, {input_name: ndarray}) -> {output_name: ndarray}`), one call per batch; without it, the
/// front answers natively with zero-filled outputs.
#[pyfunction]
#[pyo3(signature = (host, port, models, handler=None, threads=2))]
fn serve(
    py: Python<'_>,
    host: String,
    port: u16,
    models: Vec<(String, String, usize, Vec<TensorSpec>, Vec<TensorSpec>)>,
    handler: Option<PyObject>,
    threads: usize,
) -> PyResult<()> {
    let tensor = |(name, datatype, dims): TensorSpec| -> PyResult<Tensor> {
        element_size(&datatype).ok_or_else(|| PyValueError::new_err(format!("unsupported datatype {datatype}")))?;
        Ok(Tensor { name, datatype, dims })
    };
    let mut table = HashMap::new();
    let mut workers = Vec::new();
    for (name, version, max_batch_size, inputs, outputs) in models {
        let (queue, receiver) = match &handler {
            Some(_) => {
                let (tx, rx) = mpsc::unbounded_channel();
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let model = Arc::new(Model {
            name: name.clone(),
            version,
            max_batch_size: max_batch_size.max(1),
            inputs: inputs.into_iter().map(tensor).collect::<PyResult<_>>()?,
            outputs: outputs.into_iter().map(tensor).collect::<PyResult<_>>()?,
            queue,
            requests: AtomicU64::new(0),
            batches: AtomicU64::new(0),
        });
        if let (Some(rx), Some(handler)) = (receiver, &handler) {
            let (model, handler) = (model.clone(), handler.clone_ref(py));
            workers.push(
                std::thread::Builder::new()
                    .name(format!("py-{name}"))
                    .spawn(move || worker(model, handler, rx))
                    .map_err(|e| PyRuntimeError::new_err(e.to_string()))?,
            );
        }
        table.insert(name, model);
    }
    let address: SocketAddr =
        format!("{host}:{port}").parse().map_err(|e| PyValueError::new_err(format!("bad address: {e}")))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("front")
        .enable_all()
        .build()
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    let front = Front { models: table };
    let served = py.allow_threads(|| {
        runtime.block_on(async move {
            tonic::transport::Server::builder()
                .add_service(GrpcInferenceServiceServer::new(front))
                .serve_with_shutdown(address, async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
        })
    });
    // Dropping the service closed every queue, so the workers return.
    py.allow_threads(|| {
        for w in workers {
            let _ = w.join();
        }
    });
    served.map_err(|e| PyRuntimeError::new_err(format!("gRPC server failed: {e}")))
}

#[pymodule]
fn conduit_native_spike(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(serve, m)?)
}
