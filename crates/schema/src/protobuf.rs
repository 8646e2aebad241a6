//! Protobuf schemas (interface stub: implemented on a branch).

use crate::{Resolved, SchemaError};

#[derive(Debug, Clone)]
pub struct ProtobufSchema {
    text: String,
}

impl ProtobufSchema {
    pub fn parse(text: &str, _resolved: &[Resolved]) -> Result<Self, SchemaError> {
        Ok(Self { text: text.to_string() })
    }
    pub fn canonical(&self) -> String {
        self.text.clone()
    }
    pub fn normalized(&self) -> String {
        self.text.clone()
    }
    pub fn record_name(&self) -> Option<String> {
        None
    }
    pub fn validate_payload(&self, _payload: &[u8]) -> Result<(), String> {
        Ok(())
    }
    /// Why a reader with this schema cannot read data written with `writer`.
    pub fn can_read(&self, _writer: &Self) -> Vec<String> {
        Vec::new()
    }
}
