//! IDX files (raw or gzip) through `metalearn::data::parse_idx`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = metalearn::data::parse_idx(data, "fuzz.idx") {
        let _ = a.to_f64_vec();
    }
});
