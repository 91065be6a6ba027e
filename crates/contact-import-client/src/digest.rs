//! The SHA-256 of a file, computed while the file streams to the uploads bucket: the file is
//! read once, and never whole into memory.

use std::pin::Pin;
use std::task::{Context, Poll};

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

/// Passes a reader's bytes through unchanged and hashes them on the way.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// The digest of every byte read so far, as 64 lower-case hex digits.
    pub fn hex_digest(self) -> String {
        self.hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for HashingReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let already = buffer.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(context, buffer);
        if let Poll::Ready(Ok(())) = &polled {
            this.hasher.update(&buffer.filled()[already..]);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn the_digest_is_the_sha256_of_every_byte_passed_through_in_small_reads() {
        let mut reader = HashingReader::new(&b"abc"[..]);
        let mut copied = Vec::new();
        let mut one = [0_u8; 1];
        while reader.read(&mut one).await.expect("reads") == 1 {
            copied.push(one[0]);
        }
        assert_eq!(copied, b"abc");
        // The FIPS 180-2 test vector for "abc".
        assert_eq!(
            reader.hex_digest(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            HashingReader::new(&b""[..]).hex_digest(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
