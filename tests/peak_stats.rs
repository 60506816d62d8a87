//! PeakStats as Bluesky computes it: the expected numbers below were
//! produced by Bluesky 1.15.1's `bluesky.callbacks.fitting.PeakStats` on
//! the same data (`PeakStats._calc_stats(x, y, fields)`), so these tests
//! compare against Bluesky without needing it installed. Then: a known
//! Gaussian, the library subscriber on a real scan, and the command's output.

mod process;

use process::skyrun;
use skyrun::callbacks::{peak_stats, Peak, PeakSummary};
use skyrun::plans;
use skyrun::RunEngine;
use skyrun_actors::sim::{SynAxis, SynGauss};
use skyrun_actors::DeviceHandle;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

/// What Bluesky's PeakStats says.
struct Expected {
    max: (f64, f64),
    min: (f64, f64),
    com: f64,
    cen: f64,
    fwhm: f64,
    crossings: &'static [f64],
}

#[track_caller]
fn assert_peak(p: &Peak, e: &Expected, tol: f64) {
    let ok = close(p.max.0, e.max.0, tol)
        && close(p.max.1, e.max.1, tol)
        && close(p.min.0, e.min.0, tol)
        && close(p.min.1, e.min.1, tol)
        && close(p.com, e.com, tol)
        && close(p.cen.unwrap(), e.cen, tol)
        && close(p.fwhm.unwrap(), e.fwhm, tol)
        && p.crossings.len() == e.crossings.len()
        && p.crossings
            .iter()
            .zip(e.crossings)
            .all(|(a, b)| close(*a, *b, tol));
    assert!(
        ok,
        "got {p:?}, Bluesky says max {:?} min {:?} com {} cen {} fwhm {} crossings {:?}",
        e.max, e.min, e.com, e.cen, e.fwhm, e.crossings
    );
}

/// `scan(det2, motor, -2, 2, 21)` of examples/beamline.toml's det2:
/// 10·exp(-(x+0.5)²/(2·0.5²)).
fn det2_data() -> (Vec<f64>, Vec<f64>) {
    let x: Vec<f64> = (0..21).map(|i| -2.0 + i as f64 * (4.0 / 20.0)).collect();
    let y = x
        .iter()
        .map(|x| 10.0 * (-(x + 0.5_f64).powi(2) / (2.0 * 0.25)).exp())
        .collect();
    (x, y)
}

const DET2: Expected = Expected {
    max: (-0.5999999999999999, 9.801986733067555),
    min: (2.0, 3.726653172078671e-05),
    com: -0.4988791676624911,
    cen: -0.5,
    fwhm: 1.20141801030847,
    crossings: &[-1.100709005154235, 0.10070900515423492],
};

#[test]
fn the_numbers_are_bluesky_s_on_the_same_data() {
    let (x, y) = det2_data();
    assert_peak(&peak_stats(&x, &y).unwrap(), &DET2, 1e-12);

    // Uneven steps and four crossings: cen is their mean, fwhm first to last.
    let x = [0.0, 0.5, 1.2, 2.0, 2.5, 3.1, 4.0, 5.0];
    let y = [1.0, 3.0, 2.0, 8.0, 9.0, 4.0, 5.0, 0.5];
    assert_peak(
        &peak_stats(&x, &y).unwrap(),
        &Expected {
            max: (2.5, 9.0),
            min: (5.0, 0.5),
            com: 2.353846153846154,
            cen: 3.1018055555555555,
            fwhm: 2.488888888888889,
            crossings: &[
                1.5666666666666667,
                3.0100000000000002,
                3.775,
                4.055555555555555,
            ],
        },
        1e-12,
    );

    // A Gaussian on a sloped, negative background, 101 points.
    let x: Vec<f64> = (0..101).map(|i| -5.0 + i as f64 * 0.1).collect();
    let y: Vec<f64> = x
        .iter()
        .map(|x| 100.0 * (-(x - 1.3_f64).powi(2) / (2.0 * 0.7 * 0.7)).exp() - 3.0 + 0.1 * x)
        .collect();
    assert_peak(
        &peak_stats(&x, &y).unwrap(),
        &Expected {
            max: (1.3000000000000007, 97.13),
            min: (-5.0, -3.4999999999999996),
            com: 1.6304881457995384,
            cen: 1.3009995422266423,
            fwhm: 1.6569488120038907,
            crossings: &[0.47252513622469694, 2.1294739482285876],
        },
        1e-12,
    );
}

#[test]
fn a_known_gaussian_has_its_centre_and_width() {
    let (center, sigma) = (0.3, 1.0);
    let x: Vec<f64> = (0..201).map(|i| -6.0 + i as f64 * 0.06).collect();
    let y: Vec<f64> = x
        .iter()
        .map(|x| 50.0 * (-(x - center).powi(2) / (2.0 * sigma * sigma)).exp())
        .collect();
    let p = peak_stats(&x, &y).unwrap();
    assert!((p.max.0 - center).abs() <= 0.03, "{p:?}");
    assert!((p.max.1 - 50.0).abs() < 0.1, "{p:?}");
    assert!((p.com - center).abs() < 1e-3, "{p:?}");
    assert!((p.cen.unwrap() - center).abs() < 1e-3, "{p:?}");
    let fwhm = 2.0 * (2.0 * 2f64.ln()).sqrt() * sigma;
    assert!(
        (p.fwhm.unwrap() - fwhm).abs() < 0.005 * fwhm,
        "{p:?} vs {fwhm}"
    );
}

#[test]
fn the_subscriber_summarises_a_scan_along_its_motor_and_skips_a_count() {
    actix::System::new().block_on(async {
        let re = RunEngine::new();
        let motor = SynAxis::new("motor").with_velocity(1000.0);
        let det2 = SynGauss::new("det2", motor.probe(), -0.5, 10.0, 0.5);
        let (motor, det2) = (DeviceHandle::spawn(motor), DeviceHandle::spawn(det2));
        let summary = PeakSummary::subscribe(&re);
        re.run(plans::scan(vec![det2.clone()], &motor, -2.0, 2.0, 21))
            .await
            .unwrap();
        re.run(plans::count(vec![det2], 3, 0.0)).await.unwrap();
        let runs = summary.lock().runs().to_vec();
        assert_eq!(runs.len(), 1, "a count has no motor to find a peak along");
        assert_eq!(runs[0].motor, "motor");
        assert_eq!(
            runs[0].peaks.keys().collect::<Vec<_>>(),
            ["det2"],
            "the motor is x, not a detector"
        );
        assert_peak(&runs[0].peaks["det2"], &DET2, 1e-9);
        let table = runs[0].to_string();
        assert!(table.starts_with("detector"), "{table}");
        assert!(
            table.contains("-0.498879")
                && table.contains("1.20142")
                && table.contains("9.80199 at -0.6"),
            "{table}"
        );
    });
}

#[test]
fn skyrun_run_prints_where_the_peak_is() {
    let out = skyrun(&["run", "examples/scan.toml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("peaks along motor (Bluesky's PeakStats"),
        "{text}"
    );
    let det2 = text
        .lines()
        .find(|l| l.starts_with("det2 "))
        .unwrap_or_else(|| panic!("{text}"));
    let cells: Vec<&str> = det2.split_whitespace().collect();
    assert_eq!(
        cells[..4],
        ["det2", "-0.498879", "-0.5", "1.20142"],
        "{det2}"
    );
    assert!(det2.contains("9.80199 at -0.6"), "{det2}");
    // det has Poisson noise: its row is there, with its centre near the true 0.5.
    let det = text.lines().find(|l| l.starts_with("det ")).unwrap();
    let cen: f64 = det.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!((cen - 0.5).abs() < 0.3, "{det}");

    let quiet = skyrun(&["run", "examples/scan.toml", "-q"]);
    assert!(quiet.status.success());
    assert!(!String::from_utf8_lossy(&quiet.stdout).contains("peaks"));
}
