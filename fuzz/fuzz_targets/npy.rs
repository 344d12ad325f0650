//! `.npy` arrays and `.npz` archives through `parse_npy` / `parse_npz`, and zips through the
//! Omniglot npz loader `load_omniglot_npz` (which takes a path: the bytes go to a temp file).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = metalearn::data::parse_npy(data, "fuzz.npy") {
        let _ = a.to_f64_vec();
        let _ = a.to_i64_vec("fuzz.npy");
    }
    let _ = metalearn::data::parse_npz(data, "fuzz.npz");
    if data.starts_with(b"PK") {
        let path = std::env::temp_dir().join(format!("metalearn-fuzz-{}.npz", std::process::id()));
        if std::fs::write(&path, data).is_ok() {
            let _ = metalearn::data::load_omniglot_npz(&path, 8);
        }
    }
});
