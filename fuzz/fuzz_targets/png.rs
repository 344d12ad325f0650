//! PNG decoding as the image-folder loader does it: decode, convert to gray and RGB, resize.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = metalearn::data::decode_png(data, "fuzz.png") {
        let gray = p.to_gray();
        let _ = p.to_rgb_planar();
        if let Ok(r) = metalearn::data::BoxResizer::new(p.height, p.width, 8, 8) {
            if gray.len() == p.height * p.width {
                let _ = r.resize(&gray);
            }
        }
    }
});
