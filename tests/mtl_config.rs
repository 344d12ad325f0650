//! The `[weighting]` table: one method per table with its own options, tagged by `method`;
//! options of another method, unknown methods and out-of-range values are errors naming the
//! key; the `--method` override; a config written back out parses to the same config.

mod common;

use metalearn::mtl::weighting::{
    CaGradConfig, Convention, ConventionConfig, DwaConfig, GradNormConfig, PcGradConfig,
    SeedConfig, UncertaintyConfig, WeightingConfig,
};
use metalearn::mtl::{MtlConfig, MtlOverrides, METHODS};

use common::MTL_BASE as BASE;

fn weighting(table: &str) -> Result<WeightingConfig, String> {
    MtlConfig::from_toml(&format!("{BASE}\n[weighting]\n{table}\n"))
        .map(|c| c.weighting)
        .map_err(|e| e.to_string())
}

fn error(table: &str) -> String {
    weighting(table).expect_err(table)
}

#[test]
fn every_method_parses_with_its_options() {
    let cases = [
        ("method = \"equal\"", WeightingConfig::Equal),
        (
            "method = \"uncertainty\"\nweight_lr = 0.01",
            WeightingConfig::Uncertainty(UncertaintyConfig { weight_lr: 0.01 }),
        ),
        (
            "method = \"dwa\"\ntemperature = 3.0",
            WeightingConfig::Dwa(DwaConfig { temperature: 3.0 }),
        ),
        (
            "method = \"rlw\"\nseed = 7",
            WeightingConfig::Rlw(SeedConfig { seed: 7 }),
        ),
        (
            "method = \"gradnorm\"\nalpha = 0.5\nweight_lr = 0.1",
            WeightingConfig::GradNorm(GradNormConfig {
                alpha: 0.5,
                weight_lr: 0.1,
            }),
        ),
        (
            "method = \"pcgrad\"\nseed = 3",
            WeightingConfig::PcGrad(PcGradConfig {
                seed: 3,
                convention: Convention::Paper,
            }),
        ),
        (
            "method = \"mgda\"",
            WeightingConfig::Mgda(ConventionConfig::default()),
        ),
        (
            "method = \"cagrad\"\nc = 0.4",
            WeightingConfig::CaGrad(CaGradConfig {
                c: 0.4,
                convention: Convention::Paper,
            }),
        ),
        (
            "method = \"nash\"\nconvention = \"torchjd\"",
            WeightingConfig::Nash(ConventionConfig {
                convention: Convention::Torchjd,
            }),
        ),
    ];
    for (table, want) in cases {
        assert_eq!(weighting(table).unwrap(), want, "{table}");
    }
    // Options left out take their defaults; no method is `equal`, and so is no table.
    assert_eq!(
        weighting("method = \"cagrad\"").unwrap(),
        WeightingConfig::CaGrad(CaGradConfig::default())
    );
    assert_eq!(
        weighting("method = \"gradnorm\"\nalpha = 2.0").unwrap(),
        WeightingConfig::GradNorm(GradNormConfig {
            alpha: 2.0,
            weight_lr: 0.025
        })
    );
    assert_eq!(weighting("").unwrap(), WeightingConfig::Equal);
    assert_eq!(
        MtlConfig::from_toml(BASE).unwrap().weighting,
        WeightingConfig::Equal
    );
}

/// Asserts that each `[weighting]` table is an error whose message contains every needle.
fn assert_errors_contain(cases: &[(&str, &[&str])]) {
    for (table, needles) in cases {
        let err = error(table);
        assert!(needles.iter().all(|n| err.contains(n)), "{table}: {err}");
    }
}

#[test]
fn an_option_of_another_method_is_an_error_naming_the_key() {
    assert_errors_contain(&[
        (
            "method = \"upgrad\"\nc = 0.4",
            &["weighting.c", "\"upgrad\"", "takes none"],
        ),
        (
            "method = \"cagrad\"\ntemperature = 2.0",
            &["weighting.temperature", "it takes c"],
        ),
        (
            "method = \"dwa\"\ntemprature = 2.0",
            &["weighting.temprature"],
        ),
        // Without `method`, the table is `equal`'s, which takes no option.
        ("seed = 1", &["weighting.seed", "\"equal\""]),
    ]);
}

#[test]
fn unknown_methods_and_bad_values_name_the_key() {
    assert_errors_contain(&[
        (
            "method = \"fancy\"",
            &["weighting.method", "fancy", "cagrad"],
        ),
        ("method = 3", &["weighting.method"]),
        ("method = \"cagrad\"\nc = \"big\"", &["weighting", "cagrad"]),
        // The range checks name the dotted key, the value and the range.
        (
            "method = \"cagrad\"\nc = -1.0",
            &["weighting.c", "out of range"],
        ),
        (
            "method = \"cagrad\"\nc = 1e7",
            &["weighting.c", "out of range"],
        ),
        (
            "method = \"dwa\"\ntemperature = 0.0",
            &["weighting.temperature", "out of range"],
        ),
        (
            "method = \"gradnorm\"\nalpha = -1.0",
            &["weighting.alpha", "out of range"],
        ),
        (
            "method = \"gradnorm\"\nweight_lr = 0.0",
            &["weighting.weight_lr", "out of range"],
        ),
        (
            "method = \"uncertainty\"\nweight_lr = 1e3",
            &["weighting.weight_lr", "out of range"],
        ),
    ]);
}

#[test]
fn the_method_override_keeps_or_resets_the_options() {
    let mut cfg = MtlConfig::from_toml(&format!(
        "{BASE}\n[weighting]\nmethod = \"cagrad\"\nc = 0.7\n"
    ))
    .unwrap();
    let to = |m: &str| MtlOverrides {
        method: Some(m.into()),
        ..MtlOverrides::default()
    };
    cfg.apply(&to("cagrad")).unwrap();
    assert_eq!(
        cfg.weighting,
        WeightingConfig::CaGrad(CaGradConfig {
            c: 0.7,
            convention: Convention::Paper,
        })
    );
    cfg.apply(&to("dwa")).unwrap();
    assert_eq!(cfg.weighting, WeightingConfig::Dwa(DwaConfig::default()));
    let err = cfg.apply(&to("no_such_method")).unwrap_err().to_string();
    assert!(
        err.contains("weighting.method") && err.contains("no_such_method"),
        "{err}"
    );
}

#[test]
fn configs_written_back_parse_to_the_same_config() {
    for m in METHODS {
        let mut cfg = MtlConfig::from_toml(BASE).unwrap();
        cfg.weighting = WeightingConfig::named(m).unwrap();
        let text = toml::to_string(&cfg).unwrap();
        let back = match MtlConfig::from_toml(&text) {
            Ok(back) => back,
            // trimmed_mean and krum need more than BASE's two tasks.
            Err(e) if e.to_string().contains("needs at least") => continue,
            Err(e) => panic!("{m}: {e}"),
        };
        assert_eq!(back.weighting, cfg.weighting, "{text}");
        // The written table holds `method` and exactly the method's option keys.
        let table: toml::Table = toml::from_str(&text).unwrap();
        let mut keys: Vec<&str> = table["weighting"]
            .as_table()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort_unstable();
        let mut want = vec!["method"];
        want.extend(cfg.weighting.option_keys());
        want.sort_unstable();
        assert_eq!(keys, want, "{m}");
    }
}
