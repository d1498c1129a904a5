//! The plugin's stderr: the last few KiB kept, every write accepted.
//!
//! Rust plugins print their panic message to stderr just before they trap, so the host
//! keeps what was written there to explain the trap. wasmtime-wasi's `MemoryOutputPipe`
//! keeps the *first* bytes and then refuses writes: a plugin that printed a little debug
//! output before panicking lost its panic message, and one that printed more than the
//! capacity failed its next `eprintln!` (std panics when stderr refuses a write). A
//! [`TailPipe`] keeps the *last* bytes instead and never refuses a write, so host memory
//! stays bounded however much the plugin prints and the panic message, written last,
//! is always there.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Largest write permit handed to the guest. `write-zeroes` allocates up to this much on
/// the host, so it stays small; the guest simply writes in several chunks.
const WRITE_PERMIT: usize = 64 * 1024;

#[derive(Debug)]
struct Tail {
    buf: VecDeque<u8>,
    capacity: usize,
    dropped: u64,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        // Only the last `capacity` bytes of this write can survive anyway.
        let keep = &bytes[bytes.len().saturating_sub(self.capacity)..];
        self.dropped += (bytes.len() - keep.len()) as u64;
        let overflow = (self.buf.len() + keep.len()).saturating_sub(self.capacity);
        self.buf.drain(..overflow);
        self.dropped += overflow as u64;
        self.buf.extend(keep);
    }
}

/// An output stream that keeps the last `capacity` bytes written to it.
#[derive(Debug, Clone)]
pub struct TailPipe {
    inner: Arc<Mutex<Tail>>,
}

impl TailPipe {
    /// A pipe keeping at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Tail {
                buf: VecDeque::with_capacity(capacity.min(4096)),
                capacity,
                dropped: 0,
            })),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Tail) -> R) -> R {
        // A poisoned lock only means another writer panicked mid-push; the bytes are
        // still a valid (if partial) log.
        let mut tail = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut tail)
    }

    /// The bytes kept, oldest first.
    pub fn contents(&self) -> Vec<u8> {
        self.with(|t| t.buf.iter().copied().collect())
    }

    /// How many earlier bytes were discarded to stay within the capacity.
    pub fn dropped(&self) -> u64 {
        self.with(|t| t.dropped)
    }

    fn write_bytes(&self, bytes: &[u8]) {
        self.with(|t| t.push(bytes));
    }
}

#[async_trait::async_trait]
impl Pollable for TailPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for TailPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl tokio::io::AsyncWrite for TailPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for TailPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for TailPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_bytes_and_counts_the_rest() {
        let mut p = TailPipe::new(8);
        p.write(Bytes::from_static(b"hello ")).unwrap();
        p.write(Bytes::from_static(b"world")).unwrap();
        assert_eq!(p.contents(), b"lo world");
        assert_eq!(p.dropped(), 3);
        // A single write larger than the capacity keeps only its own tail.
        p.write(Bytes::from(vec![b'x'; 100])).unwrap();
        assert_eq!(p.contents(), b"xxxxxxxx");
        assert_eq!(p.dropped(), 3 + 8 + 92);
        assert_eq!(p.check_write().unwrap(), WRITE_PERMIT);
    }
}
