//! The engine against the PyTorch float64 reference vectors: the full folder
//! (`$METALEARN_REFERENCE` or `<crate root>/../shared/reference`) and the subset bundled in
//! `tests/reference` (three cases, always present). Without the full folder the full-set
//! tests say so and pass, except under `CI=true`, where a missing folder is a failure.

mod common;

use metalearn::cli::reference::{
    verify_reference_dir, verify_reference_files, ReferenceError, VerifyDtype,
};
use std::path::PathBuf;

/// The subset shipped with the repository.
fn bundled_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/reference")
}

/// The full reference folder, or `None` (with a note) when it is absent outside CI.
fn full_dir() -> Option<PathBuf> {
    let file = common::reference_case("conv4_maml_omniglot")?;
    file.parent().map(PathBuf::from)
}

fn run(dir: &std::path::Path, dtype: VerifyDtype) -> metalearn::cli::reference::VerifyReport {
    let report = verify_reference_dir(dir, dtype).unwrap_or_else(|e| panic!("{e}"));
    println!("{report}");
    report
}

#[test]
fn bundled_subset_passes_in_f64_and_f32() {
    for dtype in [VerifyDtype::F64, VerifyDtype::F32] {
        let report = run(&bundled_dir(), dtype);
        assert_eq!(report.cases.len(), 3, "{report}");
        assert!(report.all_passed(), "{}", report.summary_table());
    }
}

#[test]
fn reference_f64_all_cases_pass() {
    let Some(dir) = full_dir() else { return };
    let report = run(&dir, VerifyDtype::F64);
    for case in [
        "mlp_maml_sinusoid",
        "conv4_maml_omniglot",
        "protonet_episode",
        "mtl_seed_mnist",
        "ops_double_backward",
    ] {
        assert!(
            report.cases.iter().any(|c| c == case),
            "case {case} not found"
        );
    }
    // Every expected tensor of every file is checked.
    let mut expected = 0;
    for case in &report.cases {
        let file = metalearn::nn::checkpoint::read_safetensors_f64(
            dir.join(format!("{case}.safetensors")),
        )
        .unwrap();
        expected += file
            .tensors
            .keys()
            .filter(|k| k.starts_with("expected/"))
            .count();
    }
    assert!(expected >= 300, "only {expected} expected tensors found");
    assert_eq!(report.checks.len(), expected);
    assert!(
        report.all_passed(),
        "f64 reference check failed:\n{}",
        report.summary_table()
    );
}

#[test]
fn reference_f32_all_cases_pass() {
    let Some(dir) = full_dir() else { return };
    let report = run(&dir, VerifyDtype::F32);
    assert!(
        report.all_passed(),
        "f32 reference check failed:\n{}",
        report.summary_table()
    );
}

#[test]
fn second_order_meta_gradient_differs_from_first_order() {
    let dir = bundled_dir();
    let files = vec![dir.join("mlp_maml_sinusoid.safetensors")];
    let report =
        verify_reference_files(&dir, &files, VerifyDtype::F64).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.all_passed(), "{}", report.summary_table());
    let gaps: Vec<_> = report
        .second_order
        .iter()
        .filter(|g| g.case == "mlp_maml_sinusoid")
        .collect();
    assert_eq!(gaps.len(), 2, "steps1 and steps3 expected: {gaps:?}");
    for g in gaps {
        println!(
            "{} {}: computed {:.4e}, reference {:.4e}",
            g.case, g.variant, g.computed, g.reference
        );
        assert!(
            g.computed > 1e-3,
            "{}: second-order terms vanish ({:e})",
            g.variant,
            g.computed
        );
        assert!(
            (g.computed - g.reference).abs() <= 1e-6 * g.reference,
            "{}: gap {} differs from the reference's {}",
            g.variant,
            g.computed,
            g.reference
        );
    }
}

#[test]
fn truncated_reference_file_is_a_clear_error() {
    let src = bundled_dir().join("mlp_maml_sinusoid.safetensors");
    let bytes = std::fs::read(&src).unwrap();
    let dir = std::env::temp_dir().join(format!("metalearn_ref_trunc_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dst = dir.join("mlp_maml_sinusoid.safetensors");
    std::fs::write(&dst, &bytes[..bytes.len() / 2]).unwrap();
    let result = verify_reference_dir(&dir, VerifyDtype::F64);
    let err = match result {
        Err(e) => e,
        Ok(r) => panic!("a truncated file was accepted:\n{r}"),
    };
    let msg = err.to_string();
    println!("{msg}");
    assert!(matches!(err, ReferenceError::File { .. }), "{err:?}");
    assert!(msg.contains("mlp_maml_sinusoid.safetensors"), "{msg}");
    assert!(msg.contains("truncated"), "{msg}");

    // A header cut short is reported too.
    std::fs::write(&dst, &bytes[..5]).unwrap();
    let msg = verify_reference_dir(&dir, VerifyDtype::F64)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("corrupt or truncated"), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_case_is_reported_not_skipped() {
    let src = bundled_dir().join("mlp_maml_sinusoid.safetensors");
    let dir = std::env::temp_dir().join(format!("metalearn_ref_unknown_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&src, dir.join("some_new_case.safetensors")).unwrap();
    let report = verify_reference_dir(&dir, VerifyDtype::F64).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!report.all_passed());
    assert_eq!(report.errors.len(), 1, "{report}");
    assert!(
        report.errors[0].message.contains("unknown reference case"),
        "{:?}",
        report.errors
    );
}

#[test]
fn missing_folder_is_a_clear_error() {
    let err = verify_reference_dir(
        std::path::Path::new("/nonexistent/reference/dir"),
        VerifyDtype::F64,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/reference/dir"),
        "{err}"
    );
}

/// Writes a reference file back (F64 and I64 tensors), as the generator does.
fn write_raw(path: &std::path::Path, file: &metalearn::nn::checkpoint::RawFile) {
    use metalearn::nn::checkpoint::RawData;
    let owned: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = file
        .tensors
        .iter()
        .map(|(n, t)| match &t.data {
            RawData::F64(v) => (
                n.clone(),
                safetensors::Dtype::F64,
                t.shape.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            RawData::I64(v) => (
                n.clone(),
                safetensors::Dtype::I64,
                t.shape.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = owned
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, &None).unwrap()).unwrap();
}

#[test]
fn verifier_detects_wrong_and_unproduced_values() {
    use metalearn::nn::checkpoint::{read_safetensors_f64, RawData, RawTensor};
    let src = bundled_dir();
    let mut file = read_safetensors_f64(src.join("mlp_maml_sinusoid.safetensors")).unwrap();
    // A relative perturbation of 1e-6 in one meta-gradient entry must fail in f64 ...
    let name = "expected/steps3/meta_grad/l1.weight";
    if let RawData::F64(v) = &mut file.tensors.get_mut(name).unwrap().data {
        v[7] *= 1.0 + 1e-6;
    }
    // ... and an expected tensor the verifier does not produce is a failure, not a skip.
    file.tensors.insert(
        "expected/steps1/something_new".into(),
        RawTensor {
            shape: vec![2],
            dtype: "F64".into(),
            data: RawData::F64(vec![1.0, 2.0]),
        },
    );
    let dir = std::env::temp_dir().join(format!("metalearn_ref_mut_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dst = dir.join("mlp_maml_sinusoid.safetensors");
    write_raw(&dst, &file);
    std::fs::copy(
        src.join("mlp_maml_sinusoid.json"),
        dir.join("mlp_maml_sinusoid.json"),
    )
    .unwrap();
    let report = verify_reference_dir(&dir, VerifyDtype::F64).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let failed: Vec<&str> = report
        .failures()
        .iter()
        .map(|r| r.tensor.as_str())
        .collect();
    assert_eq!(
        failed,
        ["steps1/something_new", "steps3/meta_grad/l1.weight"],
        "{report}"
    );
    let row = report
        .check("mlp_maml_sinusoid", "steps1/something_new")
        .unwrap();
    assert!(
        row.note.as_deref().unwrap_or("").contains("not computed"),
        "{row:?}"
    );
    assert!(!report.all_passed());
}
