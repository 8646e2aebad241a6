//! Avro values through a Confluent-compatible schema registry
//! (`schema.registry.url`): the wire format `[0][schema id: 4 bytes BE][Avro
//! binary]`, subjects named `<topic>-key` / `<topic>-value`
//! (TopicNameStrategy). Owned by the stores/serdes helper: to be written.
