//! W5 throughput (ignored by default: `cargo test --release --test mtl_bench -- --ignored --nocapture`).

use metalearn::cli::bench::mtl::bench_w5_with;

#[test]
fn w5_small_runs() {
    let (r, sps) = bench_w5_with(640, 2);
    assert_eq!(r.iters, 10);
    assert!(sps > 0.0);
}

#[test]
#[ignore]
fn w5_full_epoch() {
    let (r, sps) = bench_w5_with(60000, 20);
    println!("{r}");
    println!("W5 samples/s: {sps:.0}");
}
