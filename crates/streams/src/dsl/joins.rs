//! Stream-stream (windowed), stream-table and stream-global-table joins. To
//! be written by the windows helper.
