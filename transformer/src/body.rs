//! The raw blob's GET body as a blocking [`Read`] for the transform.
//!
//! The transform is CPU work on a blocking thread reading `std::io`; the body is an async stream.
//! [`reader`] joins them through a bounded channel (at most [`INPUT_CHUNKS`] body chunks queued),
//! so the blob is never held whole. A storage error reaches the reader as an I/O error, so a cut
//! body never reads as a short blob, and the feeding future returns the typed error.

use std::future::Future;
use std::io::{self, Read};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::mpsc;

/// Body chunks queued between the GET and the transform.
pub const INPUT_CHUNKS: usize = 16;

/// A blocking [`Read`] over the chunks of an async body (see [`reader`]).
#[derive(Debug)]
pub struct StreamReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// A blocking reader of `body` and the future that feeds it. The future ends when the body
/// ends (`Ok`), when the reader is dropped (`Ok`: the reader stopped on its own) or when the
/// body fails (that error; the reader gets an I/O error with its text).
pub fn reader(
    body: BoxStream<'static, object_store::Result<Bytes>>,
) -> (
    StreamReader,
    impl Future<Output = Result<(), object_store::Error>>,
) {
    let (tx, rx) = mpsc::channel(INPUT_CHUNKS);
    let feed = async move {
        let mut body = body;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(bytes) => {
                    if tx.send(Ok(bytes)).await.is_err() {
                        return Ok(());
                    }
                }
                Err(e) => {
                    // The reader must fail, not see an early end of the stream.
                    let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
                    return Err(e);
                }
            }
        }
        Ok(())
    };
    (
        StreamReader {
            rx,
            chunk: Bytes::new(),
        },
        feed,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    fn body(
        chunks: Vec<object_store::Result<Bytes>>,
    ) -> BoxStream<'static, object_store::Result<Bytes>> {
        stream::iter(chunks).boxed()
    }

    #[tokio::test]
    async fn reader_sees_every_body_byte_in_order() {
        let chunks = (0..100u8).map(|i| Ok(Bytes::from(vec![i; 1000]))).collect();
        let (mut r, feed) = reader(body(chunks));
        let read = tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            r.read_to_end(&mut all).map(|_| all)
        });
        let (fed, read) = tokio::join!(feed, read);
        fed.expect("fed");
        let all = read.expect("joined").expect("read");
        assert_eq!(all.len(), 100_000);
        assert!(
            all.chunks(1000)
                .enumerate()
                .all(|(i, c)| c.iter().all(|b| usize::from(*b) == i))
        );
    }

    #[tokio::test]
    async fn a_body_error_fails_the_reader_instead_of_ending_it() {
        let chunks = vec![
            Ok(Bytes::from_static(b"abc")),
            Err(object_store::Error::Generic {
                store: "test",
                source: "connection reset".into(),
            }),
        ];
        let (mut r, feed) = reader(body(chunks));
        let read = tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            r.read_to_end(&mut all)
        });
        let (fed, read) = tokio::join!(feed, read);
        assert!(fed.is_err(), "the feed returns the storage error");
        let err = read.expect("joined").expect_err("the reader fails");
        assert!(err.to_string().contains("connection reset"), "{err}");
    }
}
