//! A definition whose SLA goals pass in seconds, for the scheduler's
//! tests. Self-contained: the `casewire` package's process tests include
//! this file too.

/// The demo complaint on every hour (no calendar), its normal priority's
/// first and next response in 8 s, warning at 50 % (4 s).
pub fn fast_complaint() -> String {
    let yaml = casewire::DEMO_DEFINITIONS[0]
        .1
        .replace("  calendar: office          # definitions/calendars/office.yaml\n", "")
        .replace("warnAt: 80%", "warnAt: 50%")
        .replace(
            "{ id: normal, name: Normal, firstResponse: 10h, nextResponse: 10h, resolution: 50h }",
            "{ id: normal, name: Normal, firstResponse: 8s, nextResponse: 8s, resolution: 50h }",
        );
    assert!(
        yaml.contains("firstResponse: 8s") && !yaml.contains("calendar: office"),
        "the demo complaint changed: update this fixture"
    );
    yaml
}
