//! The shipped demo definitions parse and are internally consistent.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use casewire_domain::CaseDefinition;

#[test]
fn shipped_definitions_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../definitions");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let source = std::fs::read_to_string(&path).unwrap();
            let def = CaseDefinition::parse_yaml(&source).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!def.resolution_codes.is_empty(), "{}", path.display());
            count += 1;
        }
    }
    assert_eq!(count, 3);
}
