//! `FileStreamSourceConnector` (lines of a file to a topic, resuming at the
//! byte position in its offsets) and `FileStreamSinkConnector` (record
//! values to a file, one per line, synced before offsets are committed), as
//! Kafka's own file connectors.

use std::io::SeekFrom;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::config::{ConfigDef, ConfigKey, ConfigType, Props, PropsExt};
use crate::connector::{ConnectorKind, Plugin, SinkTask, SinkTaskContext, SourceTask, SourceTaskContext};
use crate::data::{JsonMap, Record, Schema, SchemaType, Value};
use crate::error::{ConnectError, Result};

/// How long a source poll waits for new lines before answering empty.
const POLL_WAIT: Duration = Duration::from_millis(200);
/// The most bytes a source poll reads.
const READ_CHUNK_BYTES: usize = 1 << 20;

pub struct FileStreamSource;
pub struct FileStreamSink;

#[async_trait]
impl Plugin for FileStreamSource {
    fn class(&self) -> &'static str {
        "org.apache.kafka.connect.file.FileStreamSourceConnector"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Source
    }
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new(vec![
            ConfigKey::required("file", ConfigType::String, "Source filename."),
            ConfigKey::required("topic", ConfigType::List, "The topic to publish data to"),
            ConfigKey::optional(
                "batch.size",
                ConfigType::Int,
                "2000",
                "The maximum number of records the source task can read from the file each time it is polled",
            ),
        ])
    }
    async fn validate(&self, props: &Props) -> crate::config::ConfigErrors {
        let mut errors = self.config_def().validate(props);
        if props.list("topic").len() > 1 {
            errors.add(
                "topic",
                "'topic' in FileStreamSourceConnector configuration requires definition of a single topic.",
            );
        }
        errors
    }
    async fn task_configs(&self, props: &Props, _max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![props.clone()])
    }
    fn source_task(&self) -> Option<Box<dyn SourceTask>> {
        Some(Box::new(FileSourceTask::default()))
    }
}

#[async_trait]
impl Plugin for FileStreamSink {
    fn class(&self) -> &'static str {
        "org.apache.kafka.connect.file.FileStreamSinkConnector"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Sink
    }
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new(vec![ConfigKey::required("file", ConfigType::String, "Destination filename.")])
    }
    async fn task_configs(&self, props: &Props, max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![props.clone(); max_tasks.max(1)])
    }
    fn sink_task(&self) -> Option<Box<dyn SinkTask>> {
        Some(Box::new(FileSinkTask::default()))
    }
}

#[derive(Default)]
struct FileSourceTask {
    path: String,
    topic: String,
    batch_size: usize,
    /// Byte position after the last line handed out.
    position: u64,
    /// Bytes read past `position` that do not yet end a line.
    pending: Vec<u8>,
    file: Option<tokio::fs::File>,
}

impl FileSourceTask {
    fn partition(&self) -> JsonMap {
        json!({ "filename": self.path }).as_object().cloned().unwrap_or_default()
    }
}

#[async_trait]
impl SourceTask for FileSourceTask {
    async fn start(&mut self, props: &Props, ctx: SourceTaskContext) -> Result<()> {
        self.path = props.required("file")?.to_string();
        self.topic = props.list("topic").into_iter().next().ok_or_else(|| ConnectError::config("topic is required"))?;
        self.batch_size = props.int_or("batch.size", 2000)?.max(1) as usize;
        let committed = ctx.offsets.offset(&self.partition()).await?;
        self.position = committed.and_then(|o| o.get("position").and_then(|p| p.as_u64())).unwrap_or(0);
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<Record>> {
        if self.file.is_none() {
            match tokio::fs::File::open(&self.path).await {
                Ok(mut f) => {
                    let start = self.position + self.pending.len() as u64;
                    f.seek(SeekFrom::Start(start))
                        .await
                        .map_err(|e| ConnectError::retriable(format!("{}: {e}", self.path)))?;
                    self.file = Some(f);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tokio::time::sleep(POLL_WAIT).await;
                    return Ok(Vec::new());
                }
                Err(e) => return Err(ConnectError::retriable(format!("{}: {e}", self.path))),
            }
        }
        let Some(file) = self.file.as_mut() else { return Ok(Vec::new()) };
        // read more while less than a chunk is buffered (or no whole line is: a long line)
        let mut n = 0;
        if self.pending.len() < READ_CHUNK_BYTES || !self.pending.contains(&b'\n') {
            let mut buf = vec![0u8; READ_CHUNK_BYTES];
            n = file.read(&mut buf).await.map_err(|e| ConnectError::retriable(format!("{}: {e}", self.path)))?;
            self.pending.extend_from_slice(&buf[..n]);
        }
        if n == 0 && !self.pending.contains(&b'\n') {
            tokio::time::sleep(POLL_WAIT).await;
            return Ok(Vec::new());
        }
        let mut records = Vec::new();
        let mut cursor = 0;
        while records.len() < self.batch_size {
            let Some(len) = self.pending[cursor..].iter().position(|&b| b == b'\n') else { break };
            let line = &self.pending[cursor..cursor + len];
            cursor += len + 1;
            self.position += len as u64 + 1;
            let text = String::from_utf8_lossy(line).trim_end_matches('\r').to_string();
            let offset = json!({ "position": self.position }).as_object().cloned().unwrap_or_default();
            records.push(Record::source(
                &self.topic,
                self.partition(),
                offset,
                Some(Schema::of(SchemaType::String)),
                Value::String(text),
            ));
        }
        self.pending.drain(..cursor);
        Ok(records)
    }
}

#[derive(Default)]
struct FileSinkTask {
    path: String,
    file: Option<tokio::io::BufWriter<tokio::fs::File>>,
}

#[async_trait]
impl SinkTask for FileSinkTask {
    async fn start(&mut self, props: &Props, _ctx: SinkTaskContext) -> Result<()> {
        self.path = props.required("file")?.to_string();
        let file = tokio::fs::OpenOptions::new().create(true).append(true).open(&self.path).await.map_err(|e| {
            ConnectError::fatal(format!("Couldn't find or create file '{}' for FileStreamSinkTask: {e}", self.path))
        })?;
        self.file = Some(tokio::io::BufWriter::new(file));
        Ok(())
    }

    async fn put(&mut self, records: Vec<Record>) -> Result<()> {
        let file = self.file.as_mut().ok_or_else(|| ConnectError::fatal("not started"))?;
        for r in records {
            let mut line = crate::converter::display(&r.value).into_bytes();
            line.push(b'\n');
            file.write_all(&line).await.map_err(|e| ConnectError::retriable(format!("{}: {e}", self.path)))?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let file = self.file.as_mut().ok_or_else(|| ConnectError::fatal("not started"))?;
        file.flush().await.map_err(|e| ConnectError::retriable(format!("{}: {e}", self.path)))?;
        file.get_ref().sync_data().await.map_err(|e| ConnectError::retriable(format!("{}: {e}", self.path)))?;
        Ok(())
    }

    async fn stop(&mut self) {
        let _ = self.flush().await;
    }
}
