//! The simulator is deterministic, passes on the real core, and has teeth.
use keybroker_sim::{run, Faults};

#[test]
fn one_seed_replays_to_the_same_trace() {
    for seed in [0, 7, 42] {
        let f = Faults::ALL;
        let a = run(seed, f)
            .map(|o| o.trace_hash)
            .unwrap_or_else(|e| e.trace_hash);
        let b = run(seed, f)
            .map(|o| o.trace_hash)
            .unwrap_or_else(|e| e.trace_hash);
        assert_eq!(a, b, "seed {seed} is not deterministic");
    }
    let x = run(1, Faults::ALL)
        .map(|o| o.trace_hash)
        .unwrap_or_default();
    let y = run(2, Faults::ALL)
        .map(|o| o.trace_hash)
        .unwrap_or_default();
    assert_ne!(x, y, "different seeds, different traces");
}

#[cfg(not(feature = "planted-bug-ignore-context"))]
#[test]
fn the_real_core_keeps_every_invariant() {
    for seed in 0..100 {
        if let Err(e) = run(seed, Faults::from_seed(seed)) {
            panic!("seed {seed}: {e}");
        }
    }
}

/// Run with `cargo test -p keybroker-sim --features planted-bug-ignore-context`.
#[cfg(feature = "planted-bug-ignore-context")]
#[test]
fn the_planted_bug_is_found_within_1000_seeds() {
    let found = (0..1000).find_map(|s| run(s, Faults::from_seed(s)).err());
    let f = found.expect("the simulator missed the planted bug in 1000 seeds");
    eprintln!("found at seed {}: {}", f.seed, f.message);
    assert!(f.message.contains("context"), "{f}");
}
