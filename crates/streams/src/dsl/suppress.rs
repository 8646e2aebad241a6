//! `suppress(Suppressed::until_window_closes(..))`. To be written by the windows helper.

pub struct Suppressed;
