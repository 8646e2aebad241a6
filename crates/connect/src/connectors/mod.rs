//! The built-in connectors, found by class name or alias.

pub mod file;
pub mod http;
pub mod object_store;
pub mod postgres;

use crate::connector::Plugin;

/// Every built-in connector.
pub fn plugins() -> Vec<&'static dyn Plugin> {
    vec![
        &file::FileStreamSource,
        &file::FileStreamSink,
        &http::HttpSink,
        &object_store::S3_SINK,
        &object_store::OBJECT_STORE_SINK,
        &postgres::JdbcSource,
        &postgres::JdbcSink,
    ]
}

/// The connector `connector.class` names: its class name, an alias, or a
/// class name's last part (`FileStreamSource`, `FileStreamSourceConnector`).
pub fn find(class: &str) -> Option<&'static dyn Plugin> {
    plugins().into_iter().find(|p| {
        p.class() == class
            || p.aliases().contains(&class)
            || p.class().rsplit('.').next() == Some(class)
            || p.class().rsplit('.').next().and_then(|c| c.strip_suffix("Connector")) == Some(class)
    })
}
