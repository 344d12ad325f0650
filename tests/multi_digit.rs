//! MultiMNIST-style composites ([`metalearn::data::multi_digit`]): determinism per seed,
//! labels and pixels on hand-checkable sources, shapes, and bad input naming the option.

use metalearn::data::multi_digit::{compose, Placement};
use metalearn::data::{build_multi, ImageDataset, MultiDigitOptions};

/// A source of `n` 28x28 images: image `i` has class `i % 10` and every pixel `(i + 1) / 100`.
fn flat_source(n: usize) -> ImageDataset {
    let mut images = Vec::new();
    for i in 0..n {
        images.extend(std::iter::repeat_n((i + 1) as f32 / 100.0, 28 * 28));
    }
    let names = (0..10).map(|c| c.to_string()).collect();
    ImageDataset::new(
        images,
        [n, 1, 28, 28],
        (0..n).map(|i| i % 10).collect(),
        names,
    )
    .unwrap()
}

/// A source of `n` blank 28x28 images of class 0.
fn zero_source(n: usize) -> ImageDataset {
    let names = (0..10).map(|c| c.to_string()).collect();
    ImageDataset::new(vec![0.0; n * 784], [n, 1, 28, 28], vec![0; n], names).unwrap()
}

/// A one-image source of class `class` whose only lit pixel (value 1) is `(r, c)`.
fn dot_source(class: usize, r: usize, c: usize) -> ImageDataset {
    let mut img = vec![0f32; 28 * 28];
    img[r * 28 + c] = 1.0;
    let names = (0..10).map(|c| c.to_string()).collect();
    ImageDataset::new(img, [1, 1, 28, 28], vec![class], names).unwrap()
}

#[test]
fn the_same_seed_gives_the_same_set_and_another_seed_another() {
    let src = flat_source(50);
    let opts = MultiDigitOptions::default();
    let a = build_multi(&src, &src, 40, &opts).unwrap();
    let b = build_multi(&src, &src, 40, &opts).unwrap();
    assert_eq!(a, b);
    let c = build_multi(&src, &src, 40, &MultiDigitOptions { seed: 1, ..opts }).unwrap();
    assert_ne!(a.top_left, c.top_left);
}

#[test]
fn shapes_follow_the_options() {
    let src = flat_source(20);
    let s = build_multi(&src, &src, 7, &MultiDigitOptions::default()).unwrap();
    assert_eq!((s.n, s.size), (7, 28));
    assert_eq!(s.images.len(), 7 * 28 * 28);
    assert_eq!((s.top_left.len(), s.bottom_right.len()), (7, 7));
    let big = MultiDigitOptions {
        out_size: 36,
        ..Default::default()
    };
    assert_eq!(
        build_multi(&src, &src, 3, &big).unwrap().images.len(),
        3 * 36 * 36
    );
}

#[test]
fn labels_are_the_classes_of_the_items_at_each_corner() {
    // Task 1 comes from the first source (class 3), task 2 from the second (class 7).
    let (first, second) = (dot_source(3, 0, 0), dot_source(7, 27, 27));
    let s = build_multi(&first, &second, 5, &MultiDigitOptions::default()).unwrap();
    assert_eq!(s.top_left, vec![3; 5]);
    assert_eq!(s.bottom_right, vec![7; 5]);
    // With one flat source and one blank one, the middle of the output shows the value, so the
    // index, of the item drawn from the flat source: its class must be the label.
    let (flat, blank) = (flat_source(30), zero_source(4));
    let tl = build_multi(&flat, &blank, 20, &MultiDigitOptions::default()).unwrap();
    let br = build_multi(&blank, &flat, 20, &MultiDigitOptions::default()).unwrap();
    for (s, labels, other) in [
        (&tl, &tl.top_left, &tl.bottom_right),
        (&br, &br.bottom_right, &br.top_left),
    ] {
        assert!(other.iter().all(|&c| c == 0));
        assert_eq!(labels.len(), s.n);
        for (i, (img, &label)) in s.images.chunks_exact(784).zip(labels.iter()).enumerate() {
            // Output pixel (14, 14) averages canvas pixels 18.0..19.3 on each axis: inside both
            // items wherever they are shifted.
            let v = img[14 * 28 + 14];
            let k = (v * 100.0).round() as usize - 1;
            assert_eq!(label, k % 10, "image {i}: pixel {v}");
        }
    }
}

#[test]
fn unshifted_items_land_on_the_canvas_corners() {
    // Hand-checked: an item pixel (r, c) lands at (r + r0, c + c0) of the canvas.
    let mut first = vec![0f32; 28 * 28];
    first[0] = 1.0; // (0, 0)
    let mut second = vec![0f32; 28 * 28];
    second[27 * 28 + 27] = 0.5; // (27, 27)
    let placement = Placement {
        top_left: (2, 3),
        bottom_right: (8, 6),
    };
    let canvas = compose(&first, &second, 28, 36, placement);
    assert_eq!(canvas[2 * 36 + 3], 1.0);
    assert_eq!(canvas[35 * 36 + 33], 0.5);
    assert_eq!(canvas.iter().filter(|&&p| p != 0.0).count(), 2);
    // Without shifts and without resizing, the dots sit on the corners themselves.
    let opts = MultiDigitOptions {
        max_shift: 0,
        out_size: 36,
        ..Default::default()
    };
    let s = build_multi(&dot_source(1, 0, 0), &dot_source(2, 27, 27), 1, &opts).unwrap();
    assert_eq!(s.images[0], 1.0);
    assert_eq!(s.images[36 * 36 - 1], 1.0);
    assert_eq!(s.images.iter().sum::<f32>(), 2.0);
}

#[test]
fn overlaps_take_the_maximum_and_a_constant_canvas_resizes_to_itself() {
    // Both items flat at 0.4 and 0.9: the overlap holds 0.9. Items as large as the canvas
    // cover it all, and a constant canvas shrinks (28 -> 14) to that constant.
    let src = flat_source(1);
    let opts = MultiDigitOptions {
        canvas: 28,
        max_shift: 0,
        out_size: 14,
        seed: 0,
    };
    let s = build_multi(&src, &src, 1, &opts).unwrap();
    assert_eq!(s.images.len(), 14 * 14);
    assert!(s.images.iter().all(|&p| (p - 0.01).abs() < 1e-6));
    let placement = Placement {
        top_left: (0, 0),
        bottom_right: (8, 8),
    };
    let c = compose(&[0.4; 784], &[0.9; 784], 28, 36, placement);
    assert_eq!(c[10 * 36 + 10], 0.9);
    assert_eq!(c[0], 0.4);
    assert_eq!(c[35 * 36 + 35], 0.9);
    assert_eq!(c[35], 0.0); // the top-right corner: covered by neither
}

#[test]
fn bad_input_names_the_option() {
    let src = flat_source(5);
    let err = |opts: MultiDigitOptions, n: usize| {
        build_multi(&src, &src, n, &opts).unwrap_err().to_string()
    };
    let e = err(
        MultiDigitOptions {
            max_shift: 9,
            ..Default::default()
        },
        3,
    );
    assert!(e.contains("max_shift"), "{e}");
    let e = err(
        MultiDigitOptions {
            canvas: 20,
            ..Default::default()
        },
        3,
    );
    assert!(e.contains("canvas"), "{e}");
    let e = err(
        MultiDigitOptions {
            out_size: 0,
            ..Default::default()
        },
        3,
    );
    assert!(e.contains("out_size"), "{e}");
    let e = err(MultiDigitOptions::default(), 0);
    assert!(e.contains("n:"), "{e}");
    let names = (0..10).map(|c| c.to_string()).collect();
    let small = ImageDataset::new(vec![0.0; 16], [1, 1, 4, 4], vec![0], names).unwrap();
    let e = build_multi(&src, &small, 3, &MultiDigitOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("second (bottom-right) source"), "{e}");
}
