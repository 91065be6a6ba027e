//! The reference client of the contact-import NATS contract: upload a file, start an import,
//! follow its events, and read status, row errors, attributes and contacts. The
//! `contact-import` CLI, the web page, the tests and the benchmark all go through it.

mod digest;
pub mod error_file;
mod follow;
mod preflight;

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use contact_contract::api::{self, ops, CallError, Operation};
use contact_contract::{
    AccountId, AddAttributeRequest, ContactsPage, Empty, ErrorsPage, ErrorsRequest,
    ExportContactsRequest, ExportedContact, ImportEvent, ImportId, ImportOptions,
    ImportOptionsReply, ImportRequest, ImportStatus, ImportSubjectKind, Namespace,
    RemoveAttributeRequest, SetAttributeRequest, StatusRequest, TRACEPARENT_HEADER,
};
use contact_contract::{
    AttributeDef, ContactFilter, ImportState, ImportsCursor, ImportsListRequest, ImportsPage,
    Preview, RowError, UndoConflict, UndoConflictsPage, UndoConflictsRequest, UndoReport,
    UndoRequest,
};
use contact_contract::{
    CancelRequest, FailedRowReport, FailedRowsPage, FailedRowsRequest, NatsSettings,
    PrepareUploadRequest, PreviewRequest, TemplateReply, UploadTarget, PREVIEW_SAMPLE_BYTES,
};
use tokio::io::AsyncReadExt;

pub use preflight::{preflight, PreflightError};

/// What went wrong for a client; each variant is something its user can act on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach NATS at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error(transparent)]
    Api(#[from] CallError),
    #[error("cannot read {path}: {detail}")]
    File { path: String, detail: String },
    #[error("{0}")]
    Nats(String),
}

fn nats_error(context: &str, error: impl std::fmt::Display) -> ClientError {
    ClientError::Nats(format!("{context}: {error}"))
}

/// How long following an import's events survives NATS being away (a restart, a cluster
/// electing a new leader) before it gives up.
const FAILOVER_PATIENCE: Duration = Duration::from_secs(30);

/// How long "no contact-writer is answering" is asked again before it is believed.
const NO_RESPONDER_PATIENCE: Duration = Duration::from_secs(5);

/// A connection to one account of a contact-import deployment.
#[derive(Clone)]
pub struct Client {
    nats: async_nats::Client,
    jetstream: jetstream::Context,
    namespace: Namespace,
    account: AccountId,
    /// The last permissions violation the server reported on this connection: a refused
    /// publish is otherwise only a request that never gets an answer.
    refusals: tokio::sync::watch::Receiver<Option<String>>,
    /// Counts the times the connection came back after NATS was away: a follower reads what
    /// was published meanwhile.
    connections: tokio::sync::watch::Receiver<u64>,
}

/// What [`Client::failed_rows`] hands out: the header first, then the rows.
#[derive(Debug, Clone)]
pub enum FailedRowsItem {
    Header(Vec<String>),
    Row(FailedRowReport),
}

/// What a follower sees while an import runs.
#[derive(Debug, Clone)]
pub enum FollowUpdate {
    Event(Box<ImportEvent>),
    /// No event for a while (the import may be queued with no service running).
    Quiet {
        waited: Duration,
    },
}

impl Client {
    /// Connects once with the settings' credentials, failing fast with a message that names
    /// the URL (without its user info) when NATS is not there. Replies come to the account's
    /// own inbox prefix, where a tenant's permissions let only it read.
    pub async fn connect(
        settings: &NatsSettings,
        namespace: Namespace,
        account: AccountId,
    ) -> Result<Self, ClientError> {
        let unreachable = |detail: String| ClientError::Unreachable {
            url: settings.display_url(),
            detail,
        };
        let (refused, refusals) = tokio::sync::watch::channel(None);
        let (connected, connections) = tokio::sync::watch::channel(0);
        let nats = settings
            .connect_options("contact-import", Some(&Namespace::inbox_prefix(&account)))
            .await
            .map_err(|error| unreachable(format!("{error:#}")))?
            .event_callback(move |event| {
                let (refused, connected) = (refused.clone(), connected.clone());
                async move {
                    match event {
                        async_nats::Event::ServerError(async_nats::ServerError::Other(text))
                            if text.to_ascii_lowercase().contains("permissions violation") =>
                        {
                            refused.send_replace(Some(text));
                        }
                        async_nats::Event::Connected => {
                            connected.send_modify(|times| *times += 1);
                        }
                        _ => {}
                    }
                }
            })
            .connection_timeout(Duration::from_secs(5))
            .connect(settings.servers())
            .await
            .map_err(|error| unreachable(error.to_string()))?;
        // With credentials she is in the secure deployment, in an account of her own, where
        // only what the services' account lends her exists: its JetStream requests on her
        // uploads bucket, under her prefix.
        let jetstream = if settings.creds.is_some() {
            jetstream::with_prefix(nats.clone(), &Namespace::tenant_jetstream_api(&account))
        } else {
            jetstream::new(nats.clone())
        };
        Ok(Self {
            jetstream,
            nats,
            namespace,
            account,
            refusals,
            connections,
        })
    }

    pub fn account(&self) -> &AccountId {
        &self.account
    }

    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// A fresh import id, chosen by the client as the contract asks.
    pub fn new_import_id() -> ImportId {
        ImportId::new(uuid::Uuid::new_v4().to_string()).expect("a UUID is a valid import id")
    }

    /// Streams the file into the uploads bucket and publishes the start request. The request
    /// is durable: it waits in JetStream until an ingest replica takes it.
    pub async fn start_import(
        &self,
        path: &Path,
        options: ImportOptions,
    ) -> Result<ImportId, ClientError> {
        let import_id = Self::new_import_id();
        let request = self.upload(&import_id, path, options).await?;
        self.publish_request(&request).await?;
        Ok(import_id)
    }

    /// Uploads the file for `import_id` into the account's uploads bucket (which the writer
    /// names, creating it on first use) and returns the request that would start it.
    pub async fn upload(
        &self,
        import_id: &ImportId,
        path: &Path,
        options: ImportOptions,
    ) -> Result<ImportRequest, ClientError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|error| ClientError::File {
                path: path.display().to_string(),
                detail: error.to_string(),
            })?;
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        let size = file.metadata().await.ok().map(|metadata| metadata.len());
        self.upload_from(import_id, file, size, file_name, options)
            .await
    }

    /// Uploads a file read from `source` (a browser's upload, say) for `import_id`, as
    /// [`Client::upload`] does: what is read is written on at once, so memory does not grow
    /// with the file. `size`, when known, lets the writer refuse a file over the limits
    /// before it is sent.
    pub async fn upload_from(
        &self,
        import_id: &ImportId,
        source: impl tokio::io::AsyncRead + Unpin,
        size: Option<u64>,
        file_name: Option<String>,
        options: ImportOptions,
    ) -> Result<ImportRequest, ClientError> {
        // The digest names earlier imports of the same content (`repeat_of`).
        let mut source = digest::HashingReader::new(source);
        let target: UploadTarget = self
            .call::<ops::PrepareUpload>(&PrepareUploadRequest {
                import_id: import_id.clone(),
                size,
            })
            .await?;
        let uploads = self
            .jetstream
            .get_object_store(&target.bucket)
            .await
            .map_err(|error| nats_error("opening the uploads bucket", error))?;
        uploads
            .put(target.object.as_str(), &mut source)
            .await
            .map_err(|error| nats_error("uploading the file", error))?;
        Ok(ImportRequest {
            file_sha256: Some(source.hex_digest()),
            schema: options.schema(),
            account: self.account.clone(),
            import_id: import_id.clone(),
            object_name: Some(target.object),
            file_name,
            options,
        })
    }

    /// Deletes an uploaded file that will not be imported (one that was refused, or whose
    /// upload broke off halfway).
    pub async fn discard_upload(&self, object_name: &str) -> Result<(), ClientError> {
        let uploads = self
            .jetstream
            .get_object_store(self.namespace.uploads_bucket(&self.account))
            .await
            .map_err(|error| nats_error("opening the uploads bucket", error))?;
        uploads
            .delete(object_name)
            .await
            .map_err(|error| nats_error("deleting the uploaded file", error))
    }

    /// The first bytes of an uploaded file, at most `max`, and whether they are all of it.
    pub async fn uploaded_start(
        &self,
        object_name: &str,
        max: usize,
    ) -> Result<(Vec<u8>, bool), ClientError> {
        let uploads = self
            .jetstream
            .get_object_store(self.namespace.uploads_bucket(&self.account))
            .await
            .map_err(|error| nats_error("opening the uploads bucket", error))?;
        let object = uploads
            .info(object_name)
            .await
            .map_err(|error| nats_error("reading the uploaded file", error))?;
        // What `get` would refuse: a file deleted since (discarded, or past its retention)
        // has no chunks left, and a link names another object.
        if object.deleted {
            return Err(nats_error("reading the uploaded file", "it was deleted"));
        }
        if object
            .options
            .as_ref()
            .is_some_and(|options| options.link.is_some())
        {
            return Err(nats_error("reading the uploaded file", "it is a link"));
        }
        // Its chunks one by one through `STREAM.MSG.GET`, not through the ordered consumer
        // that `ObjectStore::get` creates nor by direct get: a consumer delivers to whatever
        // subject its creator names and a direct get answers with the bytes as they are on
        // any reply subject, and the server checks no permission of hers there (nats-server
        // issue 8274), so a tenant may do neither.
        let stream = self
            .jetstream
            .get_stream(self.namespace.uploads_stream(&self.account))
            .await
            .map_err(|error| nats_error("opening the uploads bucket", error))?;
        let chunks_subject = self
            .namespace
            .upload_chunk_subject(&self.account, &object.nuid);
        let mut start = Vec::with_capacity(max.min(PREVIEW_SAMPLE_BYTES));
        let (mut next, mut chunks_read) = (1, 0);
        while start.len() <= max && chunks_read < object.chunks {
            let chunk = stream
                .raw_message_builder()
                .sequence(next)
                .next_by_subject(chunks_subject.as_str())
                .send()
                .await
                .map_err(|error| nats_error("reading the uploaded file", error))?;
            start.extend_from_slice(&chunk.payload);
            next = chunk.sequence + 1;
            chunks_read += 1;
        }
        let whole = start.len() <= max && chunks_read == object.chunks;
        start.truncate(max);
        Ok((start, whole))
    }

    /// Publishes a start request, starting the import's trace: every message of the import
    /// carries it on (`traceparent`), so its log lines can be found in every service; returns
    /// the trace id. Publishing the same request again starts nothing new: the writer knows
    /// the import by its id. (No `Nats-Msg-Id`: the requests stream is shared by every tenant,
    /// so a tenant must not be able to claim an id another's request would use.)
    pub async fn publish_request(&self, request: &ImportRequest) -> Result<String, ClientError> {
        let subject = self.namespace.import_subject(
            ImportSubjectKind::Start,
            &request.account,
            &request.import_id,
        );
        let body = serde_json::to_vec(request)
            .map_err(|error| nats_error("encoding the request", error))?;
        let trace =
            contact_contract::trace::current().unwrap_or_else(contact_contract::trace::new_root);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(TRACEPARENT_HEADER, trace.to_string().as_str());
        self.jetstream
            .publish_with_headers(subject, headers, body.into())
            .await
            .map_err(|error| nats_error("publishing the import request", error))?
            .await
            .map_err(|error| nats_error("storing the import request", error))?;
        Ok(trace.trace_id())
    }

    pub async fn status(&self, import_id: &ImportId) -> Result<ImportStatus, ClientError> {
        Ok(self
            .call::<ops::Status>(&StatusRequest {
                import_id: import_id.clone(),
            })
            .await?)
    }

    /// What the import was started with: its file's name and its options.
    pub async fn import_options(
        &self,
        import_id: &ImportId,
    ) -> Result<ImportOptionsReply, ClientError> {
        Ok(self
            .call::<ops::Options>(&StatusRequest {
                import_id: import_id.clone(),
            })
            .await?)
    }

    /// Every row error of the import, in file order, page by page.
    pub async fn errors(
        &self,
        import_id: &ImportId,
        mut each: impl FnMut(RowError),
    ) -> Result<(), ClientError> {
        self.each_page::<ops::Errors, _>(
            |after| ErrorsRequest {
                import_id: import_id.clone(),
                after,
                limit: None,
            },
            |page: ErrorsPage, _| {
                page.errors.into_iter().for_each(&mut each);
                page.next
            },
        )
        .await
    }

    /// The file's header, then every failed row of the import as it stood in the file with
    /// its errors, in file order.
    pub async fn failed_rows(
        &self,
        import_id: &ImportId,
        mut each: impl FnMut(FailedRowsItem),
    ) -> Result<(), ClientError> {
        self.each_page::<ops::FailedRows, _>(
            |after| FailedRowsRequest {
                import_id: import_id.clone(),
                after,
                limit: None,
            },
            |page: FailedRowsPage, first| {
                if first {
                    each(FailedRowsItem::Header(page.header));
                }
                page.rows
                    .into_iter()
                    .map(FailedRowsItem::Row)
                    .for_each(&mut each);
                page.next
            },
        )
        .await
    }

    /// Stops a running or queued import; returns its final state.
    pub async fn cancel(&self, import_id: &ImportId) -> Result<ImportStatus, ClientError> {
        Ok(self
            .call::<ops::Cancel>(&CancelRequest {
                import_id: import_id.clone(),
            })
            .await?)
    }

    /// The account's sample file.
    pub async fn template(&self) -> Result<TemplateReply, ClientError> {
        Ok(self.call::<ops::Template>(&Empty {}).await?)
    }

    /// How the service will read the file (encoding, delimiter, header, first rows) and the
    /// mapping it suggests. Sends only the start of the file.
    pub async fn preview(
        &self,
        path: &Path,
        options: &ImportOptions,
    ) -> Result<Preview, ClientError> {
        let file_error = |error: std::io::Error| ClientError::File {
            path: path.display().to_string(),
            detail: error.to_string(),
        };
        let file = tokio::fs::File::open(path).await.map_err(file_error)?;
        let (sample, whole_file) = start_of(file, PREVIEW_SAMPLE_BYTES)
            .await
            .map_err(file_error)?;
        self.preview_sample(sample, whole_file, options).await
    }

    /// The preview of a file from its first bytes (`whole_file` when they are all of it).
    pub async fn preview_sample(
        &self,
        sample: Vec<u8>,
        whole_file: bool,
        options: &ImportOptions,
    ) -> Result<Preview, ClientError> {
        let request = PreviewRequest {
            sample,
            whole_file,
            encoding: options.encoding.clone(),
            delimiter: options.delimiter.clone(),
            mappings: options.mappings.clone(),
            value_mappings: options.value_mappings.clone(),
        };
        Ok(self.call::<ops::Preview>(&request).await?)
    }

    pub async fn attributes(&self) -> Result<Vec<AttributeDef>, ClientError> {
        Ok(self.call::<ops::AttributesList>(&Empty {}).await?)
    }

    pub async fn add_attribute(
        &self,
        attribute: AttributeDef,
    ) -> Result<AttributeDef, ClientError> {
        Ok(self
            .call::<ops::AttributesAdd>(&AddAttributeRequest { attribute })
            .await?)
    }

    pub async fn set_attribute(
        &self,
        request: SetAttributeRequest,
    ) -> Result<AttributeDef, ClientError> {
        Ok(self.call::<ops::AttributesSet>(&request).await?)
    }

    /// Removes an attribute and its values from every contact; refused while an import uses it.
    pub async fn remove_attribute(&self, key: String) -> Result<(), ClientError> {
        let _: RemoveAttributeRequest = self
            .call::<ops::AttributesRemove>(&RemoveAttributeRequest { key })
            .await?;
        Ok(())
    }

    /// One page of the account's contacts that pass `filter`, after contact `after_id`, oldest
    /// first (the service bounds `limit`).
    pub async fn contacts_page(
        &self,
        filter: &ContactFilter,
        after_id: Option<i64>,
        limit: Option<u32>,
    ) -> Result<ContactsPage, ClientError> {
        Ok(self
            .call::<ops::ContactsExport>(&ExportContactsRequest {
                after_id,
                limit,
                filter: filter.clone(),
            })
            .await?)
    }

    /// One page of the import's failed rows after line `after`, with the file's header.
    pub async fn failed_rows_page(
        &self,
        import_id: &ImportId,
        after: Option<u64>,
        limit: Option<u32>,
    ) -> Result<FailedRowsPage, ClientError> {
        Ok(self
            .call::<ops::FailedRows>(&FailedRowsRequest {
                import_id: import_id.clone(),
                after,
                limit,
            })
            .await?)
    }

    /// One page of the account's imports, newest first, before the cursor `before`.
    pub async fn imports_page(
        &self,
        status: Option<ImportState>,
        before: Option<ImportsCursor>,
        limit: Option<u32>,
    ) -> Result<ImportsPage, ClientError> {
        Ok(self
            .call::<ops::ImportsList>(&ImportsListRequest {
                status,
                file_sha256: None,
                before,
                limit,
            })
            .await?)
    }

    /// Every contact of the account, oldest first, page by page.
    pub async fn export_contacts(
        &self,
        each: impl FnMut(ExportedContact),
    ) -> Result<(), ClientError> {
        self.export_filtered(&ContactFilter::default(), each).await
    }

    /// The account's contacts that pass every filter given, oldest first, page by page.
    pub async fn export_filtered(
        &self,
        filter: &ContactFilter,
        mut each: impl FnMut(ExportedContact),
    ) -> Result<(), ClientError> {
        self.each_page::<ops::ContactsExport, _>(
            |after_id| ExportContactsRequest {
                after_id,
                limit: None,
                filter: filter.clone(),
            },
            |page: ContactsPage, _| {
                page.contacts.into_iter().for_each(&mut each);
                page.next_after_id
            },
        )
        .await
    }

    /// The account's imports, newest first, up to `limit` of them (only those in `status`,
    /// when given).
    pub async fn imports(
        &self,
        status: Option<ImportState>,
        limit: usize,
    ) -> Result<Vec<ImportStatus>, ClientError> {
        self.imports_where(status, None, limit).await
    }

    /// The latest import (not a dry run) of a file with this SHA-256 into the account, if any.
    pub async fn latest_import_of_file(
        &self,
        file_sha256: &str,
    ) -> Result<Option<ImportStatus>, ClientError> {
        let imports = self
            .imports_where(None, Some(file_sha256.to_string()), 100)
            .await?;
        Ok(imports.into_iter().find(|import| !import.dry_run))
    }

    async fn imports_where(
        &self,
        status: Option<ImportState>,
        file_sha256: Option<String>,
        limit: usize,
    ) -> Result<Vec<ImportStatus>, ClientError> {
        let mut imports = Vec::new();
        let mut before = None;
        while imports.len() < limit {
            let page: ImportsPage = self
                .call::<ops::ImportsList>(&ImportsListRequest {
                    status,
                    file_sha256: file_sha256.clone(),
                    before,
                    limit: Some((limit - imports.len()).min(1000) as u32),
                })
                .await?;
            imports.extend(page.imports);
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        imports.truncate(limit);
        Ok(imports)
    }

    /// One `import.undo` call: starts or resumes the undo and reports where it is (`undoing`
    /// while batches remain).
    pub async fn undo_step(&self, import_id: &ImportId) -> Result<UndoReport, ClientError> {
        Ok(self
            .call::<ops::Undo>(&UndoRequest {
                import_id: import_id.clone(),
            })
            .await?)
    }

    /// Undoes an import to the end: calls `import.undo` while it reports `undoing` (each call
    /// does a bounded amount of work and at least one batch), then returns the final report.
    pub async fn undo(
        &self,
        import_id: &ImportId,
        mut on_progress: impl FnMut(&UndoReport),
    ) -> Result<UndoReport, ClientError> {
        loop {
            let report = self.undo_step(import_id).await?;
            if report.status != ImportState::Undoing {
                return Ok(report);
            }
            on_progress(&report);
        }
    }

    /// Every field (or contact) the undo of an import left as it was, by contact.
    pub async fn undo_conflicts(
        &self,
        import_id: &ImportId,
        mut each: impl FnMut(UndoConflict),
    ) -> Result<(), ClientError> {
        self.each_page::<ops::UndoConflicts, _>(
            |after| UndoConflictsRequest {
                import_id: import_id.clone(),
                after,
                limit: None,
            },
            |page: UndoConflictsPage, _| {
                page.conflicts.into_iter().for_each(&mut each);
                page.next
            },
        )
        .await
    }

    /// Walks a paged operation: `request` asks for the page after a cursor (none for the
    /// first), `take` consumes a page (told whether it is the first) and returns the cursor of
    /// the next one, or none at the end.
    async fn each_page<O: Operation, Cursor>(
        &self,
        mut request: impl FnMut(Option<Cursor>) -> O::Request,
        mut take: impl FnMut(O::Reply, bool) -> Option<Cursor>,
    ) -> Result<(), ClientError> {
        let mut after = None;
        let mut first = true;
        loop {
            let page = self.call::<O>(&request(after)).await?;
            after = take(page, first);
            first = false;
            if after.is_none() {
                return Ok(());
            }
        }
    }

    async fn call<O: Operation>(&self, request: &O::Request) -> Result<O::Reply, CallError> {
        let subject = self.namespace.api_subject(&self.account, O::OPERATION);
        let calling = async {
            // Right after NATS restarts, the writers take a moment to subscribe again: "no
            // responders" is asked again for a few seconds before it is believed.
            let mut wait = Duration::from_millis(100);
            let mut waited = Duration::ZERO;
            loop {
                let result =
                    api::call::<O>(&self.nats, &self.namespace, &self.account, request).await;
                match result {
                    Err(CallError::NoResponder { .. }) if waited < NO_RESPONDER_PATIENCE => {
                        tokio::time::sleep(wait).await;
                        waited += wait;
                        wait = (wait * 2).min(Duration::from_secs(1));
                    }
                    result => return result,
                }
            }
        };
        self.unless_refused(&subject, calling).await
    }

    /// Runs `work` unless the server refuses `subject` to these credentials meanwhile.
    async fn unless_refused<T>(
        &self,
        subject: &str,
        work: impl std::future::Future<Output = Result<T, CallError>>,
    ) -> Result<T, CallError> {
        let mut refusals = self.refusals.clone();
        let quoted = format!("\"{subject}\"");
        tokio::select! {
            result = work => result,
            refusal = refusals.wait_for(|text| text.as_deref().is_some_and(|text| text.contains(&quoted))) => {
                let detail = refusal
                    .ok()
                    .and_then(|text| text.clone())
                    .unwrap_or_else(|| "permissions violation".to_string());
                Err(CallError::Refused { subject: subject.to_string(), detail })
            }
        }
    }
}

/// The first bytes of `source`, at most `max`, and whether they are all of it.
async fn start_of(
    source: impl tokio::io::AsyncRead + Unpin,
    max: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut start = Vec::with_capacity(max.min(PREVIEW_SAMPLE_BYTES));
    source.take(max as u64 + 1).read_to_end(&mut start).await?;
    let whole = start.len() <= max;
    start.truncate(max);
    Ok((start, whole))
}
