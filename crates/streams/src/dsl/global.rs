//! `GlobalKTable`: every partition of a topic in a global store on every
//! instance. To be written by the windows helper.

pub struct GlobalKTable<K, V>(std::marker::PhantomData<(K, V)>);
