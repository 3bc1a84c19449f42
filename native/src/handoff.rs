//! The queue between the front's threads and Python: calls wait here until Python's event loop takes them, all at
//! once, when it wakes on the queue's file descriptor. No front thread ever takes the GIL.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;
use tonic::Status;

/// A unary ModelInfer: `data` is the request message, the answer a ModelInferResponse.
pub const UNARY: u8 = 0;
/// A ModelStreamInfer stream opens: no data, the answer empty (go on) or a status (refused).
pub const OPEN: u8 = 1;
/// One request of a stream: `data` is the request message, the answer a ModelStreamInferResponse.
pub const MESSAGE: u8 = 2;
/// The caller of `id` went away (cancelled, or past its deadline): what Python still computes for it is wasted.
pub const CANCEL: u8 = 3;

pub type Reply = oneshot::Sender<Result<Bytes, Status>>;

/// One call waiting for Python.
pub struct Job {
    pub kind: u8,
    /// The unary call, or the stream, this belongs to.
    pub id: u64,
    pub data: Bytes,
    pub authorization: Option<String>,
    pub deadline: Option<Instant>,
    pub reply: Option<Reply>,
}

struct Queue {
    jobs: Vec<Job>,
    /// A wake-up byte is written and not yet read: calls queued meanwhile are taken with it.
    woken: bool,
}

pub struct HandOff {
    queue: Mutex<Queue>,
    ids: AtomicU64,
    queued_bytes: AtomicUsize,
    max_bytes: usize,
    wake_tx: UnixStream,
    wake_rx: UnixStream,
}

impl HandOff {
    pub fn new(max_bytes: usize) -> std::io::Result<Self> {
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        Ok(Self {
            queue: Mutex::new(Queue { jobs: Vec::new(), woken: false }),
            ids: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
            max_bytes,
            wake_tx,
            wake_rx,
        })
    }

    /// The descriptor Python's event loop watches: readable when calls wait and Python is not taking anyway.
    pub fn wake_fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.wake_rx.as_raw_fd()
    }

    /// Queue `job`; a unary call whose bytes would take the queue past its bound is refused at once.
    pub fn push(&self, job: Job, bounded: bool) -> Result<(), Status> {
        let size = job.data.len();
        let before = self.queued_bytes.fetch_add(size, Ordering::Relaxed);
        if bounded && before + size > self.max_bytes {
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            return Err(Status::resource_exhausted(format!(
                "server busy: a request of {size} bytes would take the requests waiting for the model workers past \
                 {} bytes; retry later",
                self.max_bytes
            )));
        }
        let wake = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.jobs.push(job);
            let wake = !queue.woken;
            queue.woken = true;
            wake
        };
        // One wake-up for all the calls that queue before Python takes them. (Python polling at every turn of its
        // loop instead, while calls keep coming, measured slower: its loop then never sleeps, and turns more often
        // for fewer calls each.)
        if wake {
            let _ = (&self.wake_tx).write(&[1]);
        }
        Ok(())
    }

    /// Calls waiting for Python now.
    pub fn len(&self) -> usize {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).jobs.len()
    }

    /// A new call or stream id.
    pub fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Everything queued now, oldest first.
    pub fn take(&self) -> Vec<Job> {
        // Read the wake-ups before taking: a byte written after the take below stays, for the calls it announces.
        // (A byte written before the take for a call the take gets makes one empty take later; none is lost.)
        let mut sink = [0u8; 16];
        while matches!((&self.wake_rx).read(&mut sink), Ok(n) if n > 0) {}
        let jobs = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.woken = false;
            std::mem::take(&mut queue.jobs)
        };
        let size: usize = jobs.iter().map(|j| j.data.len()).sum();
        self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
        jobs
    }
}

/// Tells Python that call or stream `id` is over when dropped before `disarm`: the future that awaited its answer
/// was dropped because the client cancelled, the connection closed or the deadline passed.
pub struct CancelGuard {
    handoff: Arc<HandOff>,
    id: u64,
    armed: bool,
}

impl CancelGuard {
    pub fn new(handoff: Arc<HandOff>, id: u64) -> Self {
        Self { handoff, id, armed: true }
    }

    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if self.armed {
            let job =
                Job { kind: CANCEL, id: self.id, data: Bytes::new(), authorization: None, deadline: None, reply: None };
            let _ = self.handoff.push(job, false);
        }
    }
}
