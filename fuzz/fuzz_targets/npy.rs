//! `.npy` arrays and `.npz` archives through `parse_npy` / `parse_npz`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = metalearn::data::parse_npy(data, "fuzz.npy") {
        let _ = a.to_f64_vec();
        let _ = a.to_i64_vec("fuzz.npy");
    }
    let _ = metalearn::data::parse_npz(data, "fuzz.npz");
});
