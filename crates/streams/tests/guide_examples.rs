//! The code of docs/streams.md, compiled and run: the guide's word count in
//! the `TopologyTestDriver`, as its "Testing a topology" section shows it.

use std::time::Duration;

use vltava_streams::{
    Consumed, Grouped, KeyValueStore, Materialized, Produced, Serdes, StreamsBuilder, StreamsConfig,
    TopologyTestDriver, ValueAndTimestamp,
};

#[test]
fn the_guides_word_count_runs_in_the_test_driver() -> vltava_streams::Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream("lines", Consumed::with(Serdes::option(Serdes::bytes()), Serdes::string()))?
        .flat_map_values(|_, line: String| line.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>())?
        .group_by(|_, word: &String| word.clone(), Grouped::with(Serdes::string(), Serdes::string()))?
        .count(Materialized::as_store("counts"))?
        .to_stream()?
        .to("counts", Produced::with(Serdes::string(), Serdes::option(Serdes::i64())))?;
    // the guide's configuration parses
    let config = StreamsConfig::from_pairs([
        ("application.id", "wordcount"),
        ("bootstrap.servers", "127.0.0.1:9092"),
        ("processing.guarantee", "exactly_once_v2"),
    ])?;
    assert_eq!(config.commit_interval, Duration::from_millis(100));

    let driver = TopologyTestDriver::new(builder.build()?)?;
    let mut lines = driver.create_input_topic("lines", Serdes::option(Serdes::bytes()), Serdes::string());
    let counts = driver.create_output_topic("counts", Serdes::string(), Serdes::option(Serdes::i64()));
    lines.pipe_value_at("a b A".into(), 1_000)?;
    let latest = counts.read_key_values_to_map()?;
    assert_eq!(latest["a"], Some(2));
    assert_eq!(latest["b"], Some(1));
    let store: KeyValueStore<String, ValueAndTimestamp<i64>> = driver.state_store("counts")?;
    assert_eq!(store.get(&"a".to_string())?.map(|v| v.value), Some(2));
    driver.advance_wall_clock_time(Duration::from_secs(10))?;
    Ok(())
}
