//! Reading an uploaded file from the object store one stored chunk at a time.
//!
//! The client library's object reader subscribes to the whole object and lets the server push
//! every chunk at once; when the reader is slower than the server (it parses and publishes as
//! it goes), the undelivered chunks pile up in memory, up to the file's size. Here each chunk is
//! fetched by a direct request when it is needed, so memory holds one chunk whatever the size.

use async_nats::jetstream::{self, stream::Stream};
use bytes::Bytes;
use contact_contract::{AccountId, ImportId, Namespace};

use crate::split::SplitError;

/// One uploaded file, read in order.
pub struct UploadReader {
    stream: Stream<()>,
    chunk_subject: String,
    next_sequence: u64,
    chunks_left: usize,
    bytes_read: u64,
    size: u64,
}

impl UploadReader {
    /// Opens the upload of `import` in `account`'s bucket; `None` when there is no such
    /// (undeleted) object, or no bucket yet.
    pub async fn open(
        jetstream: &jetstream::Context,
        namespace: &Namespace,
        account: &AccountId,
        import: &ImportId,
    ) -> anyhow::Result<Option<Self>> {
        use async_nats::jetstream::context::GetStreamErrorKind;
        use async_nats::jetstream::ErrorCode;
        match jetstream
            .get_stream(namespace.uploads_stream(account))
            .await
        {
            Ok(_) => {}
            Err(error)
                if matches!(error.kind(), GetStreamErrorKind::JetStream(cause)
                    if cause.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
            {
                return Ok(None)
            }
            Err(error) => return Err(anyhow::anyhow!("opening the uploads bucket: {error}")),
        }
        let uploads = jetstream
            .get_object_store(namespace.uploads_bucket(account))
            .await
            .map_err(|error| anyhow::anyhow!("opening the uploads bucket: {error}"))?;
        let info = match uploads.info(import.as_str()).await {
            Ok(info) if !info.deleted => info,
            Ok(_) => return Ok(None),
            Err(error)
                if error.kind() == async_nats::jetstream::object_store::InfoErrorKind::NotFound =>
            {
                return Ok(None)
            }
            Err(error) => return Err(anyhow::anyhow!("reading the upload's description: {error}")),
        };
        let stream = jetstream
            .get_stream_no_info(namespace.uploads_stream(account))
            .await
            .map_err(|error| anyhow::anyhow!("opening the uploads stream: {error}"))?;
        Ok(Some(Self {
            stream,
            chunk_subject: namespace.upload_chunk_subject(account, &info.nuid),
            next_sequence: 1,
            chunks_left: info.chunks,
            bytes_read: 0,
            size: info.size as u64,
        }))
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The next stored chunk of the file, or `None` at its end. A file whose stored chunks do
    /// not add up to its size can never be read whole: its import is refused.
    pub async fn next_block(&mut self) -> Result<Option<Bytes>, SplitError> {
        if self.chunks_left == 0 {
            if self.bytes_read != self.size {
                return Err(SplitError::Rejected(format!(
                    "the upload is incomplete: {} of its {} bytes are stored; upload the file again",
                    self.bytes_read, self.size
                )));
            }
            return Ok(None);
        }
        let message = self
            .stream
            .raw_message_builder()
            .sequence(self.next_sequence)
            .next_by_subject(self.chunk_subject.clone())
            .send()
            .await
            .map_err(|error| {
                anyhow::anyhow!(
                    "reading the upload at sequence {}: {error}",
                    self.next_sequence
                )
            })?;
        self.next_sequence = message.sequence + 1;
        self.chunks_left -= 1;
        self.bytes_read += message.payload.len() as u64;
        Ok(Some(message.payload))
    }
}
