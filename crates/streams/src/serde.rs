//! Serdes: keys and values to bytes and back, in the formats of Kafka's
//! `Serdes` (so a Java or librdkafka application reads what we write):
//! strings as UTF-8, integers and longs as 4 and 8 big-endian bytes, doubles
//! as IEEE-754 big-endian, JSON through serde, Avro through a schema registry
//! ([`crate::serde::avro`]). Null bytes are `None`: a serde of `T` refuses
//! them unless it is an [`OptionSerde`] (tables read a null value as a
//! delete before any serde sees it).

use std::marker::PhantomData;
use std::sync::Arc;

use crate::error::{Result, StreamsError};

pub mod avro;

/// Turns `T` into bytes and back. `topic` is the topic the bytes are written
/// to or read from (schema-registry serdes name their subject after it).
pub trait Serde<T>: Send + Sync + 'static {
    fn serialize(&self, topic: &str, value: &T) -> Result<Option<Vec<u8>>>;
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<T>;
}

/// A serde shared by the nodes and tasks that use it.
pub type SerdeRef<T> = Arc<dyn Serde<T>>;

/// Constructors of the built-in serdes (Kafka's `Serdes`).
pub struct Serdes;

impl Serdes {
    pub fn string() -> SerdeRef<String> {
        Arc::new(StringSerde)
    }
    pub fn bytes() -> SerdeRef<Vec<u8>> {
        Arc::new(BytesSerde)
    }
    pub fn i32() -> SerdeRef<i32> {
        Arc::new(I32Serde)
    }
    pub fn i64() -> SerdeRef<i64> {
        Arc::new(I64Serde)
    }
    pub fn f64() -> SerdeRef<f64> {
        Arc::new(F64Serde)
    }
    /// Always null bytes (Kafka's `Serdes.Void()`): for keys a stream does not have.
    pub fn unit() -> SerdeRef<()> {
        Arc::new(UnitSerde)
    }
    /// JSON through serde.
    pub fn json<T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static>() -> SerdeRef<T> {
        Arc::new(JsonSerde::<T>(PhantomData))
    }
    /// `None` <-> null bytes, `Some(v)` through `inner`.
    pub fn option<T: 'static>(inner: SerdeRef<T>) -> SerdeRef<Option<T>> {
        Arc::new(OptionSerde(inner))
    }
}

fn required<'a>(topic: &str, data: Option<&'a [u8]>, what: &str) -> Result<&'a [u8]> {
    data.ok_or_else(|| StreamsError::serde(topic, format!("null bytes for a {what} (use Serdes::option)")))
}

fn fixed<const N: usize>(topic: &str, data: Option<&[u8]>, what: &str) -> Result<[u8; N]> {
    let data = required(topic, data, what)?;
    data.try_into().map_err(|_| StreamsError::serde(topic, format!("a {what} needs {N} bytes, got {}", data.len())))
}

pub struct StringSerde;
impl Serde<String> for StringSerde {
    fn serialize(&self, _topic: &str, value: &String) -> Result<Option<Vec<u8>>> {
        Ok(Some(value.as_bytes().to_vec()))
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<String> {
        String::from_utf8(required(topic, data, "string")?.to_vec()).map_err(|e| StreamsError::serde(topic, e))
    }
}

pub struct BytesSerde;
impl Serde<Vec<u8>> for BytesSerde {
    fn serialize(&self, _topic: &str, value: &Vec<u8>) -> Result<Option<Vec<u8>>> {
        Ok(Some(value.clone()))
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Vec<u8>> {
        Ok(required(topic, data, "byte array")?.to_vec())
    }
}

pub struct I32Serde;
impl Serde<i32> for I32Serde {
    fn serialize(&self, _topic: &str, value: &i32) -> Result<Option<Vec<u8>>> {
        Ok(Some(value.to_be_bytes().to_vec()))
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<i32> {
        Ok(i32::from_be_bytes(fixed(topic, data, "32-bit integer")?))
    }
}

pub struct I64Serde;
impl Serde<i64> for I64Serde {
    fn serialize(&self, _topic: &str, value: &i64) -> Result<Option<Vec<u8>>> {
        Ok(Some(value.to_be_bytes().to_vec()))
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<i64> {
        Ok(i64::from_be_bytes(fixed(topic, data, "64-bit integer")?))
    }
}

pub struct F64Serde;
impl Serde<f64> for F64Serde {
    fn serialize(&self, _topic: &str, value: &f64) -> Result<Option<Vec<u8>>> {
        Ok(Some(value.to_be_bytes().to_vec()))
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<f64> {
        Ok(f64::from_be_bytes(fixed(topic, data, "double")?))
    }
}

pub struct UnitSerde;
impl Serde<()> for UnitSerde {
    fn serialize(&self, _topic: &str, _value: &()) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn deserialize(&self, _topic: &str, _data: Option<&[u8]>) -> Result<()> {
        Ok(())
    }
}

pub struct JsonSerde<T>(PhantomData<fn() -> T>);
impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static> Serde<T> for JsonSerde<T> {
    fn serialize(&self, topic: &str, value: &T) -> Result<Option<Vec<u8>>> {
        serde_json::to_vec(value).map(Some).map_err(|e| StreamsError::serde(topic, e))
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<T> {
        serde_json::from_slice(required(topic, data, "JSON value")?).map_err(|e| StreamsError::serde(topic, e))
    }
}

pub struct OptionSerde<T>(pub SerdeRef<T>);
impl<T: 'static> Serde<Option<T>> for OptionSerde<T> {
    fn serialize(&self, topic: &str, value: &Option<T>) -> Result<Option<Vec<u8>>> {
        match value {
            Some(v) => self.0.serialize(topic, v),
            None => Ok(None),
        }
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Option<T>> {
        match data {
            Some(d) => self.0.deserialize(topic, Some(d)).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_serdes_use_kafkas_encodings() {
        assert_eq!(Serdes::i64().serialize("t", &1).unwrap().unwrap(), vec![0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(Serdes::i32().deserialize("t", Some(&[0, 0, 1, 0])).unwrap(), 256);
        assert_eq!(Serdes::string().serialize("t", &"é".to_string()).unwrap().unwrap(), "é".as_bytes());
        assert!(Serdes::string().deserialize("t", None).is_err());
        assert!(Serdes::i64().deserialize("t", Some(&[1, 2])).is_err());
        let opt = Serdes::option(Serdes::string());
        assert_eq!(opt.deserialize("t", None).unwrap(), None);
        assert_eq!(opt.serialize("t", &None).unwrap(), None);
    }
}
