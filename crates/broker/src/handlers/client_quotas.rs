//! DescribeClientQuotas and AlterClientQuotas (KIP-546): quotas by entity
//! (`user`, `client-id`, both, or `ip`; a null name is the type's
//! default), kept in the metadata log. See `quotas` for their enforcement.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::{
    alter_client_quotas_response, describe_client_quotas_response, AlterClientQuotasRequest, AlterClientQuotasResponse,
    DescribeClientQuotasRequest, DescribeClientQuotasResponse,
};
use vltava_metadata::{MetadataRecord, QuotaEntity, QuotaValue};
use vltava_protocol::{ResponseError, StrBytes};

use crate::quotas;
use crate::Broker;

const ENTITY_TYPES: [&str; 3] = ["user", "client-id", "ip"];
/// DescribeClientQuotas' match types.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

fn invalid(message: String) -> DescribeClientQuotasResponse {
    DescribeClientQuotasResponse::default()
        .with_error_code(ResponseError::InvalidRequest.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}

pub fn describe(broker: &Arc<Broker>, r: DescribeClientQuotasRequest, _version: i16) -> DescribeClientQuotasResponse {
    let mut wanted: BTreeMap<String, (i8, Option<String>)> = BTreeMap::new();
    for c in &r.components {
        let t = c.entity_type.to_string();
        if !ENTITY_TYPES.contains(&t.as_str()) {
            return invalid(format!("Custom entity type '{t}' not supported"));
        }
        if !matches!(c.match_type, MATCH_EXACT | MATCH_DEFAULT | MATCH_SPECIFIED) {
            return invalid(format!("Unknown match type {}", c.match_type));
        }
        if c.match_type == MATCH_EXACT && c._match.is_none() {
            return invalid(format!("Exact match for entity type '{t}' without a name"));
        }
        if wanted.insert(t.clone(), (c.match_type, c._match.as_ref().map(|m| m.to_string()))).is_some() {
            return invalid(format!("Duplicate filter component for entity type '{t}'"));
        }
    }
    if wanted.contains_key("ip") && wanted.len() > 1 {
        return invalid("Invalid entity filter component combination: ip with other types".into());
    }
    let matches = |entity: &QuotaEntity| {
        let all_wanted = wanted.iter().all(|(t, (how, name))| {
            entity.iter().find(|(et, _)| et == t).is_some_and(|(_, en)| match *how {
                MATCH_EXACT => en == name,
                MATCH_DEFAULT => en.is_none(),
                _ => en.is_some(),
            })
        });
        all_wanted && (!r.strict || entity.iter().all(|(t, _)| wanted.contains_key(t)))
    };
    let image = broker.controller.image();
    let entries = image
        .client_quotas()
        .filter(|(entity, _)| matches(entity))
        .map(|(entity, values)| {
            describe_client_quotas_response::EntryData::default()
                .with_entity(
                    entity
                        .iter()
                        .map(|(t, n)| {
                            describe_client_quotas_response::EntityData::default()
                                .with_entity_type(StrBytes::from_string(t.clone()))
                                .with_entity_name(n.clone().map(StrBytes::from_string))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .iter()
                        .map(|(k, v)| {
                            describe_client_quotas_response::ValueData::default()
                                .with_key(StrBytes::from_string(k.clone()))
                                .with_value(v.get())
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}

/// One entry's records, or why it is refused.
fn entry_records(
    entry: &kafka_protocol::messages::alter_client_quotas_request::EntryData,
) -> Result<Vec<MetadataRecord>, String> {
    let mut entity: QuotaEntity = Vec::new();
    for e in &entry.entity {
        let t = e.entity_type.to_string();
        if !ENTITY_TYPES.contains(&t.as_str()) {
            return Err(format!("Unhandled client quota entity type: {t}"));
        }
        if entity.iter().any(|(et, _)| *et == t) {
            return Err(format!("Duplicate entity type: {t}"));
        }
        if e.entity_name.as_ref().is_some_and(|n| n.is_empty()) {
            return Err(format!("Empty {t} name: use a null name for the default"));
        }
        entity.push((t, e.entity_name.as_ref().map(|n| n.to_string())));
    }
    entity.sort();
    let types: Vec<&str> = entity.iter().map(|(t, _)| t.as_str()).collect();
    if types.is_empty() || (types.contains(&"ip") && types.len() > 1) {
        return Err("Invalid quota entity combination".into());
    }
    if let Some(ip) = entity.iter().find(|(t, _)| t == "ip").and_then(|(_, n)| n.as_ref()) {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("{ip} is not a valid IP address"));
        }
    }
    let mut records = Vec::new();
    for op in &entry.ops {
        let key = op.key.to_string();
        if !quotas::key_allowed(&key, &types) {
            return Err(format!("Invalid configuration key {key} for entity {types:?}"));
        }
        let positive = op.value.is_finite() && op.value > 0.0;
        if !op.remove && !positive {
            return Err(format!("Invalid value {} for {key}: must be positive", op.value));
        }
        let value = (!op.remove).then(|| QuotaValue::new(op.value));
        records.push(MetadataRecord::ClientQuota { entity: entity.clone(), key, value });
    }
    Ok(records)
}

pub fn alter(broker: &Arc<Broker>, r: AlterClientQuotasRequest, _version: i16) -> AlterClientQuotasResponse {
    let mut results = Vec::with_capacity(r.entries.len());
    let mut records = Vec::new();
    let mut accepted = Vec::new();
    for entry in &r.entries {
        let entity = entry
            .entity
            .iter()
            .map(|e| {
                alter_client_quotas_response::EntityData::default()
                    .with_entity_type(e.entity_type.clone())
                    .with_entity_name(e.entity_name.clone())
            })
            .collect();
        let mut result = alter_client_quotas_response::EntryData::default().with_entity(entity);
        match entry_records(entry) {
            Ok(rs) => {
                accepted.push(results.len());
                records.extend(rs);
            }
            Err(message) => {
                result = result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_string(message)));
            }
        }
        results.push(result);
    }
    if !r.validate_only && !records.is_empty() {
        if let Err(e) = broker.controller.alter_client_quotas(records) {
            for i in accepted {
                results[i].error_code = e.error.code();
                results[i].error_message = Some(StrBytes::from_string(e.message.clone()));
            }
        }
    }
    AlterClientQuotasResponse::default().with_entries(results)
}
