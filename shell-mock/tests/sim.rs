//! The simulator is deterministic, passes on the real core for every backend and cache mode,
//! and has teeth (tests/planted.rs).
use keybroker_sim::{run, BackendChoice, CacheChoice, Faults, Scenario};

const BACKENDS: [BackendChoice; 3] = [
    BackendChoice::Soft,
    BackendChoice::Kmip,
    BackendChoice::Vault,
];
#[allow(dead_code)] // unused when a planted bug is built in
const CACHES: [CacheChoice; 3] = [
    CacheChoice::None,
    CacheChoice::Local,
    CacheChoice::Distributed,
];

fn hash(seed: u64, sc: &Scenario) -> String {
    run(seed, sc)
        .map(|o| o.trace_hash)
        .unwrap_or_else(|e| e.trace_hash)
}

#[test]
fn one_seed_replays_to_the_same_trace() {
    for backend in BACKENDS {
        for seed in [0, 7, 42] {
            let sc = Scenario::for_seed(seed, Some(backend), None, Some(Faults::ALL));
            assert_eq!(
                hash(seed, &sc),
                hash(seed, &sc),
                "seed {seed} {backend:?} is not deterministic"
            );
        }
        let a = Scenario::for_seed(1, Some(backend), None, Some(Faults::ALL));
        let b = Scenario::for_seed(2, Some(backend), None, Some(Faults::ALL));
        assert_ne!(
            hash(1, &a),
            hash(2, &b),
            "different seeds, different traces"
        );
    }
}

#[cfg(not(any(
    feature = "planted-bug-ignore-context",
    feature = "planted-bug-cache-ignores-context",
    feature = "planted-bug-failover-retry-nonidempotent",
    feature = "planted-bug-renew-after-expiry",
    feature = "planted-bugs"
)))]
#[test]
fn the_real_core_keeps_every_invariant_with_every_backend_and_cache() {
    for backend in BACKENDS {
        for cache in CACHES {
            for seed in 0..30 {
                let sc = Scenario::for_seed(seed, Some(backend), Some(cache), None);
                if let Err(e) = run(seed, &sc) {
                    panic!("seed {seed}: {e}");
                }
            }
        }
    }
}

#[test]
fn a_failure_names_the_command_that_replays_it() {
    let sc = Scenario::for_seed(
        9,
        Some(BackendChoice::Kmip),
        Some(CacheChoice::Local),
        Faults::parse("latency,black-hole").ok(),
    );
    assert_eq!(
        sc.replay(9),
        "keybroker-sim --seed 9 --backend kmip --cache local --faults latency,black-hole"
    );
    assert_eq!(Faults::parse(&Faults::ALL.to_string()), Ok(Faults::ALL));
    assert!(Faults::parse("latency,nonsense").is_err());
}
