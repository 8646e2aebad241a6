//! The files a schema imports without a reference besides protobuf's own
//! well-known types: Confluent's `confluent/meta.proto`,
//! `confluent/type/{decimal,variant}.proto` (and the legacy
//! `confluent/types/decimal.proto`) and Google's `google/type/*.proto`
//! (serialized descriptors in `known/`, see its README). confluent-kafka's
//! clients send no reference for any of them.

use protox::file::{File, FileResolver};

/// (import path, serialized `FileDescriptorProto`).
const KNOWN_FILES: &[(&str, &[u8])] = &[
    ("confluent/meta.proto", include_bytes!("known/confluent__meta.pb")),
    ("confluent/type/decimal.proto", include_bytes!("known/confluent__type__decimal.pb")),
    ("confluent/type/variant.proto", include_bytes!("known/confluent__type__variant.pb")),
    // The legacy path of confluent.type.Decimal: publicly imports the above.
    ("confluent/types/decimal.proto", include_bytes!("known/confluent__types__decimal.pb")),
    ("google/type/calendar_period.proto", include_bytes!("known/google__type__calendar_period.pb")),
    ("google/type/color.proto", include_bytes!("known/google__type__color.pb")),
    ("google/type/date.proto", include_bytes!("known/google__type__date.pb")),
    ("google/type/datetime.proto", include_bytes!("known/google__type__datetime.pb")),
    ("google/type/dayofweek.proto", include_bytes!("known/google__type__dayofweek.pb")),
    ("google/type/decimal.proto", include_bytes!("known/google__type__decimal.pb")),
    ("google/type/expr.proto", include_bytes!("known/google__type__expr.pb")),
    ("google/type/fraction.proto", include_bytes!("known/google__type__fraction.pb")),
    ("google/type/interval.proto", include_bytes!("known/google__type__interval.pb")),
    ("google/type/latlng.proto", include_bytes!("known/google__type__latlng.pb")),
    ("google/type/localized_text.proto", include_bytes!("known/google__type__localized_text.pb")),
    ("google/type/money.proto", include_bytes!("known/google__type__money.pb")),
    ("google/type/month.proto", include_bytes!("known/google__type__month.pb")),
    ("google/type/phone_number.proto", include_bytes!("known/google__type__phone_number.pb")),
    ("google/type/postal_address.proto", include_bytes!("known/google__type__postal_address.pb")),
    ("google/type/quaternion.proto", include_bytes!("known/google__type__quaternion.pb")),
    ("google/type/timeofday.proto", include_bytes!("known/google__type__timeofday.pb")),
];

pub(super) struct KnownFileResolver;

impl FileResolver for KnownFileResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match KNOWN_FILES.iter().find(|(path, _)| *path == name) {
            Some((_, bytes)) => File::decode_file_descriptor_proto(*bytes).map_err(protox::Error::new),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}
