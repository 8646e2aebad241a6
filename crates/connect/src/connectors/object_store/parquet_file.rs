//! The object-store sink's `ParquetFormat`: a file of struct records
//! written with the `parquet` crate's low-level writer (no Arrow), one row
//! group, the Parquet schema made from the records' Connect schema. Flat
//! structs only: fields of Connect's primitive types (with the Timestamp,
//! Date and Time logical types); nested structs, arrays and maps are refused
//! with a data error, as are schemaless records (Confluent's ParquetFormat
//! also needs a schema).

use std::sync::Arc;

use ::parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as Physical};
use ::parquet::column::writer::ColumnWriter;
use ::parquet::data_type::ByteArray;
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::writer::SerializedFileWriter;
use ::parquet::schema::types::Type;

use crate::data::{logical, Schema, SchemaType, Value};

/// Why records cannot be written as Parquet.
pub(super) type Error = String;

/// The name of the Parquet message: the struct schema's name, or Connect's default.
fn message_name(schema: &Schema) -> String {
    let name = schema.name.as_deref().and_then(|n| n.rsplit('.').next()).unwrap_or("ConnectDefault");
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if clean.is_empty() {
        "ConnectDefault".into()
    } else {
        clean
    }
}

/// The Parquet column of a Connect field.
fn column(name: &str, schema: &Schema) -> Result<Type, Error> {
    let (physical, logical_type) = match schema.ty {
        SchemaType::Boolean => (Physical::BOOLEAN, None),
        SchemaType::Int8 => (Physical::INT32, Some(LogicalType::integer(8, true))),
        SchemaType::Int16 => (Physical::INT32, Some(LogicalType::integer(16, true))),
        SchemaType::Int32 => match schema.name.as_deref() {
            Some(logical::DATE) => (Physical::INT32, Some(LogicalType::Date)),
            Some(logical::TIME) => (Physical::INT32, Some(LogicalType::time(true, TimeUnit::MILLIS))),
            _ => (Physical::INT32, None),
        },
        SchemaType::Int64 => match schema.name.as_deref() {
            Some(logical::TIMESTAMP) => (Physical::INT64, Some(LogicalType::timestamp(true, TimeUnit::MILLIS))),
            _ => (Physical::INT64, None),
        },
        SchemaType::Float32 => (Physical::FLOAT, None),
        SchemaType::Float64 => (Physical::DOUBLE, None),
        SchemaType::String => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
        SchemaType::Bytes => (Physical::BYTE_ARRAY, None),
        other => {
            return Err(format!(
                "field {name}: ParquetFormat writes flat structs; a {} field is not supported",
                other.name()
            ))
        }
    };
    let repetition = if schema.optional { Repetition::OPTIONAL } else { Repetition::REQUIRED };
    Type::primitive_type_builder(name, physical)
        .with_repetition(repetition)
        .with_logical_type(logical_type)
        .build()
        .map_err(|e| format!("field {name}: {e}"))
}

/// Whether records of `schema` can be written (before they are buffered).
pub(super) fn check_schema(schema: Option<&Schema>) -> Result<(), Error> {
    let schema = schema.ok_or("ParquetFormat needs records with a schema (a schemaless value cannot be written)")?;
    if schema.ty != SchemaType::Struct {
        return Err(format!("ParquetFormat writes struct records, not {}", schema.ty.name()));
    }
    for f in &schema.fields {
        column(&f.name, &f.schema)?;
    }
    Ok(())
}

/// Whether a field's value has the type its schema says (null only in an optional field).
fn fits(schema: &Schema, value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => schema.optional,
        Some(v) => matches!(
            (schema.ty, v),
            (SchemaType::Boolean, Value::Boolean(_))
                | (SchemaType::Float32, Value::Float32(_))
                | (SchemaType::Float64, Value::Float64(_) | Value::Float32(_))
                | (SchemaType::String, Value::String(_))
                | (SchemaType::Bytes, Value::Bytes(_))
                | (SchemaType::Int64, Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_))
                | (
                    SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32,
                    Value::Int8(_) | Value::Int16(_) | Value::Int32(_)
                )
        ),
    }
}

/// Whether `row` can be written with `schema` (checked as a record is buffered).
pub(super) fn check_row(schema: &Schema, row: &Value) -> Result<(), Error> {
    if !matches!(row, Value::Struct(_) | Value::Map(_)) {
        return Err(format!("ParquetFormat writes struct records, not {row:?}"));
    }
    for f in &schema.fields {
        if !fits(&f.schema, row.get(&f.name)) {
            return Err(format!(
                "field {}: {:?} does not fit its schema ({})",
                f.name,
                row.get(&f.name),
                f.schema.ty.name()
            ));
        }
    }
    Ok(())
}

/// One column's values, with the definition levels of an optional one.
struct Column<T> {
    values: Vec<T>,
    levels: Vec<i16>,
}

impl<T> Column<T> {
    fn new(rows: usize) -> Column<T> {
        Column { values: Vec::with_capacity(rows), levels: Vec::with_capacity(rows) }
    }
}

/// Gathers one field of every row with `get`, which answers `None` for a
/// value of the wrong type.
fn gather<T>(
    name: &str,
    schema: &Schema,
    rows: &[Value],
    get: impl Fn(&Value) -> Option<T>,
) -> Result<Column<T>, Error> {
    let mut col = Column::new(rows.len());
    for row in rows {
        match row.get(name) {
            None | Some(Value::Null) if schema.optional => col.levels.push(0),
            None | Some(Value::Null) => return Err(format!("field {name} is required but a record has none")),
            Some(v) => {
                let value = get(v).ok_or_else(|| format!("field {name}: {v:?} is not a {}", schema.ty.name()))?;
                col.values.push(value);
                col.levels.push(1);
            }
        }
    }
    Ok(col)
}

/// A Parquet file of `rows` (struct values of `schema`).
pub(super) fn write(schema: &Schema, rows: &[Value], compression: Compression) -> Result<Vec<u8>, Error> {
    check_schema(Some(schema))?;
    let fields =
        schema.fields.iter().map(|f| column(&f.name, &f.schema).map(Arc::new)).collect::<Result<Vec<_>, _>>()?;
    let message =
        Type::group_type_builder(&message_name(schema)).with_fields(fields).build().map_err(|e| e.to_string())?;
    let props = WriterProperties::builder()
        .set_compression(compression)
        .set_created_by(format!("vltava connect {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut writer =
        SerializedFileWriter::new(Vec::new(), Arc::new(message), Arc::new(props)).map_err(|e| e.to_string())?;
    let mut group = writer.next_row_group().map_err(|e| e.to_string())?;
    let mut fields = schema.fields.iter();
    while let Some(mut col) = group.next_column().map_err(|e| e.to_string())? {
        let field = fields.next().ok_or("more Parquet columns than fields")?;
        let (name, fs) = (field.name.as_str(), &field.schema);
        let optional = fs.optional;
        let levels = |l: &Vec<i16>| if optional { Some(l.clone()) } else { None };
        let written = match col.untyped() {
            ColumnWriter::BoolColumnWriter(w) => {
                let c = gather(name, fs, rows, |v| if let Value::Boolean(b) = v { Some(*b) } else { None })?;
                w.write_batch(&c.values, levels(&c.levels).as_deref(), None)
            }
            ColumnWriter::Int32ColumnWriter(w) => {
                let c = gather(name, fs, rows, |v| v.as_i64().and_then(|i| i32::try_from(i).ok()))?;
                w.write_batch(&c.values, levels(&c.levels).as_deref(), None)
            }
            ColumnWriter::Int64ColumnWriter(w) => {
                let c = gather(name, fs, rows, Value::as_i64)?;
                w.write_batch(&c.values, levels(&c.levels).as_deref(), None)
            }
            ColumnWriter::FloatColumnWriter(w) => {
                let c = gather(name, fs, rows, |v| if let Value::Float32(f) = v { Some(*f) } else { None })?;
                w.write_batch(&c.values, levels(&c.levels).as_deref(), None)
            }
            ColumnWriter::DoubleColumnWriter(w) => {
                let c = gather(name, fs, rows, |v| match v {
                    Value::Float64(f) => Some(*f),
                    Value::Float32(f) => Some(f64::from(*f)),
                    _ => None,
                })?;
                w.write_batch(&c.values, levels(&c.levels).as_deref(), None)
            }
            ColumnWriter::ByteArrayColumnWriter(w) => {
                let c = gather(name, fs, rows, |v| match v {
                    Value::String(s) if fs.ty == SchemaType::String => Some(ByteArray::from(s.as_bytes().to_vec())),
                    Value::Bytes(b) if fs.ty == SchemaType::Bytes => Some(ByteArray::from(b.clone())),
                    _ => None,
                })?;
                w.write_batch(&c.values, levels(&c.levels).as_deref(), None)
            }
            _ => return Err(format!("field {name}: unexpected Parquet column type")),
        };
        written.map_err(|e| format!("field {name}: {e}"))?;
        col.close().map_err(|e| e.to_string())?;
    }
    group.close().map_err(|e| e.to_string())?;
    writer.into_inner().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use ::parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;
    use crate::data::Field;

    #[test]
    fn struct_records_round_trip_through_the_parquet_reader() {
        let schema = Schema::structure(
            Some("com.example.Order"),
            vec![
                Field::new("id", Schema::of(SchemaType::Int64)),
                Field::new("name", Schema::of(SchemaType::String).optional()),
                Field::new("qty", Schema::of(SchemaType::Int16)),
                Field::new("price", Schema::of(SchemaType::Float64)),
                Field::new("ok", Schema::of(SchemaType::Boolean).optional()),
                Field::new("at", Schema::of(SchemaType::Int64).named(logical::TIMESTAMP)),
            ],
        );
        let rows: Vec<Value> = (0..3)
            .map(|i| {
                Value::Struct(vec![
                    ("id".into(), Value::Int64(i)),
                    ("name".into(), if i == 1 { Value::Null } else { Value::String(format!("n{i}")) }),
                    ("qty".into(), Value::Int16(i as i16 * 2)),
                    ("price".into(), Value::Float64(i as f64 + 0.5)),
                    ("ok".into(), Value::Boolean(i % 2 == 0)),
                    ("at".into(), Value::Int64(1_700_000_000_000 + i)),
                ])
            })
            .collect();
        let bytes = write(&schema, &rows, Compression::SNAPPY).unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 3);
        assert_eq!(reader.metadata().file_metadata().schema().name(), "Order");
        let read: Vec<String> = reader.get_row_iter(None).unwrap().map(|r| r.unwrap().to_string()).collect();
        assert_eq!(read[1], "{id: 1, name: null, qty: 2, price: 1.5, ok: false, at: 2023-11-14 22:13:20.001 +00:00}");
    }

    #[test]
    fn what_cannot_be_written_is_an_error() {
        assert!(check_schema(None).is_err());
        assert!(check_schema(Some(&Schema::of(SchemaType::String))).is_err());
        let nested = Schema::structure(None, vec![Field::new("inner", Schema::structure(None, vec![]))]);
        assert!(check_schema(Some(&nested)).is_err());
        let schema = Schema::structure(None, vec![Field::new("id", Schema::of(SchemaType::Int32))]);
        let bad = vec![Value::Struct(vec![("id".into(), Value::String("x".into()))])];
        assert!(write(&schema, &bad, Compression::UNCOMPRESSED).unwrap_err().contains("id"));
        let missing = vec![Value::Struct(vec![])];
        assert!(write(&schema, &missing, Compression::UNCOMPRESSED).unwrap_err().contains("required"));
    }
}
