//! Every configuration key keybroker reads is documented, with its default, in
//! docs/configuration.md: a key added to the settings without a line there fails here.
use keybroker_core::config::settings::KNOWN_KEYS;

#[test]
fn every_known_key_has_a_row_in_the_configuration_reference() {
    let doc = include_str!("../../docs/configuration.md");
    let missing: Vec<&str> = KNOWN_KEYS
        .iter()
        .copied()
        .filter(|k| !doc.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "keys read by keybroker but not in docs/configuration.md: {missing:?}"
    );
}
