//! Feature CSVs (raw or gzip) and scikit-learn digits through `parse_feature_csv` / `parse_digits`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use metalearn::data::{parse_digits, parse_feature_csv, CsvOptions};

fuzz_target!(|data: &[u8]| {
    let _ = parse_feature_csv(data, "fuzz.csv", &CsvOptions::default());
    let header = CsvOptions {
        has_header: true,
        ..CsvOptions::default()
    };
    if let Ok(ds) = parse_feature_csv(data, "fuzz.csv", &header) {
        for name in ds.label_names.clone() {
            let _ = ds.class_counts(&name);
        }
    }
    let _ = parse_digits(data, "fuzz.csv");
});
