//! Outputs written by the blocking transform, uploaded to `standard` as they are written, visible
//! only when finished.
//!
//! [`upload_sink`] is the transform's [`Sink`]: each file it creates becomes an [`UploadWriter`]
//! whose bytes (in [`OUTPUT_CHUNK_BYTES`] chunks, at most [`OUTPUT_CHUNKS`] queued) go to an
//! [`Upload`] driven by [`Uploads::run`]. An upload is one `put` when the file stays under
//! [`UploadOptions::part_bytes`], else a multipart upload with at most
//! [`UploadOptions::concurrency`] parts in flight. Either way nothing is visible until
//! [`Upload::finish`]; [`Uploads::abort`] drops what a failed blob started.

use std::io::{self, Write};
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayloadMut, WriteMultipart};
use tokio::sync::mpsc;

use crate::transform::Sink;

/// Output bytes gathered by an [`UploadWriter`] before they are handed to its upload.
pub const OUTPUT_CHUNK_BYTES: usize = 1 << 20;
/// Output chunks queued between the transform and the uploads (all outputs share the queue).
pub const OUTPUT_CHUNKS: usize = 4;

/// How outputs are uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadOptions {
    /// A file up to this size is one `put`; a larger one is a multipart upload of parts of this
    /// size (Azure allows 50 000 blocks per blob: 200 GiB at 4 MiB).
    pub part_bytes: usize,
    /// Parts in flight per file.
    pub concurrency: usize,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            part_bytes: 4 << 20,
            concurrency: 2,
        }
    }
}

/// One object being written: buffered up to one part, then a multipart upload. Visible only
/// after [`Upload::finish`].
pub struct Upload {
    store: Arc<dyn ObjectStore>,
    path: Path,
    opts: UploadOptions,
    state: UploadState,
}

enum UploadState {
    Buffer(PutPayloadMut),
    Parts(WriteMultipart),
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            UploadState::Buffer(b) => format!("buffer of {} bytes", b.content_length()),
            UploadState::Parts(_) => "multipart".to_owned(),
        };
        f.debug_struct("Upload")
            .field("path", &self.path.as_ref())
            .field("state", &state)
            .finish()
    }
}

impl Upload {
    /// An upload of `path` to `store`, nothing sent yet.
    pub fn new(store: Arc<dyn ObjectStore>, path: &str, opts: UploadOptions) -> Self {
        Upload {
            store,
            path: Path::from(path),
            opts,
            state: UploadState::Buffer(PutPayloadMut::new()),
        }
    }

    /// The object's name.
    pub fn path(&self) -> &str {
        self.path.as_ref()
    }

    /// Appends `bytes`; waits while the file's parts in flight are at the limit.
    pub async fn put(&mut self, bytes: Bytes) -> object_store::Result<()> {
        match &mut self.state {
            UploadState::Parts(parts) => {
                parts.wait_for_capacity(self.opts.concurrency).await?;
                parts.put(bytes);
            }
            UploadState::Buffer(buf)
                if buf.content_length() + bytes.len() <= self.opts.part_bytes =>
            {
                buf.push(bytes);
            }
            UploadState::Buffer(buf) => {
                let buffered = std::mem::take(buf).freeze();
                let upload = self.store.put_multipart(&self.path).await?;
                let mut parts = WriteMultipart::new_with_chunk_size(upload, self.opts.part_bytes);
                for chunk in buffered {
                    parts.put(chunk);
                }
                parts.put(bytes);
                self.state = UploadState::Parts(parts);
            }
        }
        Ok(())
    }

    /// Makes the object visible (overwriting any previous version): one `put`, or the last
    /// parts and the completion of the multipart upload.
    pub async fn finish(self) -> object_store::Result<()> {
        match self.state {
            UploadState::Buffer(buf) => self.store.put(&self.path, buf.freeze()).await.map(drop),
            UploadState::Parts(parts) => parts.finish().await.map(drop),
        }
    }

    /// Drops what was sent; the previous version of the object (if any) stays as it was.
    pub async fn abort(self) -> object_store::Result<()> {
        match self.state {
            UploadState::Buffer(_) => Ok(()),
            UploadState::Parts(parts) => parts.abort().await,
        }
    }
}

/// An upload that failed while the transform was still writing.
#[derive(Debug, thiserror::Error)]
#[error("uploading {path}: {source}")]
pub struct UploadError {
    /// The object's name.
    pub path: String,
    /// object_store's error.
    #[source]
    pub source: object_store::Error,
}

enum Message {
    Open { id: usize, path: String },
    Data { id: usize, bytes: Bytes },
}

/// The [`Sink`] of [`crate::process`]: every file the transform creates is an upload.
#[derive(Debug)]
pub struct UploadSink {
    tx: mpsc::Sender<Message>,
    next_id: usize,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Open { id, path } => write!(f, "open {id} {path}"),
            Message::Data { id, bytes } => write!(f, "{} bytes for {id}", bytes.len()),
        }
    }
}

/// The uploads stopped (one failed): the transform cannot go on.
fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the upload of the outputs stopped",
    )
}

impl Sink for UploadSink {
    type File = UploadWriter;

    fn create(&mut self, path: &str) -> io::Result<UploadWriter> {
        let id = self.next_id;
        self.next_id += 1;
        self.tx
            .blocking_send(Message::Open {
                id,
                path: path.to_owned(),
            })
            .map_err(|_| closed())?;
        Ok(UploadWriter {
            id,
            tx: self.tx.clone(),
            buf: Vec::new(),
        })
    }
}

/// A blocking [`Write`] into one upload; [`Write::flush`] hands over what it has gathered.
#[derive(Debug)]
pub struct UploadWriter {
    id: usize,
    tx: mpsc::Sender<Message>,
    buf: Vec<u8>,
}

impl UploadWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let bytes = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Message::Data { id: self.id, bytes })
            .map_err(|_| closed())
    }
}

impl Write for UploadWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.is_empty() {
            self.buf.reserve(OUTPUT_CHUNK_BYTES.max(data.len()));
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= OUTPUT_CHUNK_BYTES {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A sink for the blocking transform and the receiving end its uploads are driven from
/// ([`Uploads::run`]).
pub fn upload_sink() -> (UploadSink, UploadQueue) {
    let (tx, rx) = mpsc::channel(OUTPUT_CHUNKS);
    (UploadSink { tx, next_id: 0 }, UploadQueue { rx })
}

/// What an [`UploadSink`] sends, for [`Uploads::run`].
#[derive(Debug)]
pub struct UploadQueue {
    rx: mpsc::Receiver<Message>,
}

/// The uploads of one blob's outputs, none visible yet.
#[derive(Debug, Default)]
pub struct Uploads {
    open: Vec<Option<Upload>>,
}

impl Uploads {
    /// Drives the uploads of everything the sink sends until the sink and all its writers are
    /// dropped. On a failed upload it aborts them all and returns the error at once (the
    /// transform's next write then fails).
    pub async fn run(
        store: Arc<dyn ObjectStore>,
        mut queue: UploadQueue,
        opts: UploadOptions,
    ) -> Result<Uploads, UploadError> {
        let mut uploads = Uploads::default();
        while let Some(message) = queue.rx.recv().await {
            let (id, bytes) = match message {
                Message::Open { id, path } => {
                    uploads
                        .open
                        .resize_with(uploads.open.len().max(id + 1), || None);
                    uploads.open[id] = Some(Upload::new(store.clone(), &path, opts));
                    continue;
                }
                Message::Data { id, bytes } => (id, bytes),
            };
            let Some(upload) = uploads.open.get_mut(id).and_then(Option::as_mut) else {
                continue;
            };
            if let Err(source) = upload.put(bytes).await {
                let path = upload.path().to_owned();
                uploads.abort().await;
                return Err(UploadError { path, source });
            }
        }
        Ok(uploads)
    }

    /// Takes the upload of `path` out, to finish it.
    pub fn take(&mut self, path: &str) -> Option<Upload> {
        self.open
            .iter_mut()
            .find(|u| u.as_ref().is_some_and(|u| u.path() == path))
            .and_then(Option::take)
    }

    /// Aborts every upload not taken (best effort: an abandoned block list or temporary file is
    /// garbage the store cleans up; it is never visible).
    pub async fn abort(&mut self) {
        for upload in self.open.drain(..).flatten() {
            let path = upload.path().to_owned();
            if let Err(e) = upload.abort().await {
                tracing::debug!(event = "upload_abort_failed", path, error = %e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    async fn write_through(
        store: Arc<dyn ObjectStore>,
        opts: UploadOptions,
        files: Vec<(&'static str, Vec<u8>)>,
    ) -> Uploads {
        let (mut sink, queue) = upload_sink();
        let writing = tokio::task::spawn_blocking(move || -> io::Result<()> {
            for (path, data) in files {
                let mut w = sink.create(path)?;
                for piece in data.chunks(1000) {
                    w.write_all(piece)?;
                }
                w.flush()?;
            }
            Ok(())
        });
        let (uploads, written) = tokio::join!(Uploads::run(store, queue, opts), writing);
        written.expect("joined").expect("written");
        uploads.expect("uploaded")
    }

    #[tokio::test]
    async fn outputs_appear_only_when_finished_whole_and_in_parts() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let opts = UploadOptions {
            part_bytes: 10_000,
            concurrency: 2,
        };
        let big: Vec<u8> = (0..250_000u32).map(|i| (i % 251) as u8).collect();
        let small = b"one line\n".to_vec();
        let mut uploads = write_through(
            store.clone(),
            opts,
            vec![
                ("a/big.parquet", big.clone()),
                ("b/small.jsonl", small.clone()),
            ],
        )
        .await;
        for name in ["a/big.parquet", "b/small.jsonl"] {
            assert!(
                store.head(&Path::from(name)).await.is_err(),
                "{name} visible before it is finished"
            );
        }
        for (name, want) in [("a/big.parquet", big), ("b/small.jsonl", small)] {
            uploads
                .take(name)
                .expect("opened")
                .finish()
                .await
                .expect("finished");
            let got = store
                .get(&Path::from(name))
                .await
                .expect("get")
                .bytes()
                .await
                .expect("body");
            assert_eq!(got, want, "{name}");
        }
    }

    #[tokio::test]
    async fn aborted_uploads_leave_the_previous_version() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        store
            .put(
                &Path::from("a/big.parquet"),
                Bytes::from_static(b"old").into(),
            )
            .await
            .expect("put");
        let opts = UploadOptions {
            part_bytes: 10_000,
            concurrency: 1,
        };
        let mut uploads = write_through(
            store.clone(),
            opts,
            vec![("a/big.parquet", vec![7; 55_555])],
        )
        .await;
        uploads.abort().await;
        let got = store
            .get(&Path::from("a/big.parquet"))
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
        assert_eq!(got.as_ref(), b"old");
        assert!(uploads.take("a/big.parquet").is_none());
    }
}
