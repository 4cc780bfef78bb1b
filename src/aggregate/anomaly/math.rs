//! Tail probabilities the detector works in, as `-log10 p` (so they never
//! underflow to zero, and an astronomically unlikely window still gets a
//! finite, ordered score).

/// `ln 10`.
const LN10: f64 = std::f64::consts::LN_10;
/// `log10(sqrt(2 pi))`.
const LOG10_SQRT_2PI: f64 = 0.399_089_934_179_782_4;

/// `-log10 Q(z)`, where `Q(z) = P(Z >= z)` for a standard normal `Z`. `erfc`
/// below 20, the asymptotic series beyond it (relative error below 1e-6).
pub(super) fn log10_sf(z: f64) -> f64 {
    if z < 20.0 {
        return -(0.5 * libm::erfc(z / std::f64::consts::SQRT_2)).log10();
    }
    let z2 = z * z;
    // ln Q(z) = -z^2/2 - ln z - ln sqrt(2 pi) + ln(1 - 1/z^2 + 3/z^4 - 15/z^6)
    let series = 1.0 - 1.0 / z2 + 3.0 / (z2 * z2) - 15.0 / (z2 * z2 * z2);
    0.5 * z2 / LN10 + z.log10() + LOG10_SQRT_2PI - series.log10()
}

/// `-log10 P(X >= x)` for `X ~ Gamma` with mean `mean` and variance `var`,
/// by the Wilson-Hilferty cube-root normal approximation; 0 at or below the
/// mean.
pub(super) fn log10_gamma_sf(x: f64, mean: f64, var: f64) -> f64 {
    if x <= mean {
        return 0.0;
    }
    let k = mean * mean / var;
    let c = 1.0 / (9.0 * k);
    let w = ((x / mean).cbrt() - (1.0 - c)) / c.sqrt();
    log10_sf(w)
}

/// The signed root of the negative-binomial deviance of count `k` given
/// mean `mu` and size `r` (`r = inf`: Poisson). About standard normal when
/// the model holds, for any mean, so sparse and dense counts score alike.
pub(super) fn nb_deviance_z(k: f64, mu: f64, r: f64) -> f64 {
    let a = if k > 0.0 { k * (k / mu).ln() } else { 0.0 };
    let d = if r.is_infinite() {
        2.0 * (a - (k - mu))
    } else {
        2.0 * (a - (k + r) * ((k - mu) / (mu + r)).ln_1p())
    };
    let z = d.max(0.0).sqrt();
    if k >= mu {
        z
    } else {
        -z
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tail_matches_known_values_and_never_overflows() {
        // Q(0) = 0.5, Q(1.96) = 0.025, Q(5) = 2.8665e-7.
        assert!((log10_sf(0.0) - 0.5f64.log10().abs()).abs() < 1e-12);
        assert!((log10_sf(1.959_964) - 1.602_06).abs() < 1e-4);
        assert!((log10_sf(5.0) - 6.542_66).abs() < 1e-4);
        // Continuous across the switch to the series, and finite far out.
        assert!((log10_sf(19.999_999) - log10_sf(20.0)).abs() < 1e-4);
        assert!(log10_sf(1e6).is_finite() && log10_sf(1e6) > 1e11);
        assert!(log10_sf(-5.0) < 1e-6);
    }

    #[test]
    fn deviance_is_signed_and_zero_at_the_mean() {
        assert_eq!(nb_deviance_z(3.0, 3.0, f64::INFINITY), 0.0);
        assert!(nb_deviance_z(10.0, 3.0, f64::INFINITY) > 2.0);
        assert!(nb_deviance_z(0.0, 3.0, f64::INFINITY) < -2.0);
        // Over-dispersion (small r) makes the same count less surprising.
        assert!(nb_deviance_z(10.0, 3.0, 1.0) < nb_deviance_z(10.0, 3.0, f64::INFINITY));
        assert!(log10_gamma_sf(0.3, 0.43, 0.01) == 0.0);
        assert!(log10_gamma_sf(2.0, 0.43, 0.01) > 3.0);
    }
}
