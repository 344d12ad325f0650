//! Safetensors checkpoints through `metalearn::nn::checkpoint::from_bytes`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = metalearn::nn::checkpoint::from_bytes::<f32>(data, std::path::Path::new("fuzz.st"));
});
