//! Windowed aggregations. To be written by the windows helper.

pub struct TimeWindowedKStream<K, V>(std::marker::PhantomData<(K, V)>);
pub struct SessionWindowedKStream<K, V>(std::marker::PhantomData<(K, V)>);
