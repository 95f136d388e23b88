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

/// Seeds that found real bugs in the Vault backend after the failover work was merged, replayed
/// exactly as their failures printed them: a renewal granting no time made the token eternal
/// (74, 2695); a renewal due while a lookup was out stayed in the past (17695).
#[cfg(not(any(
    feature = "planted-bug-ignore-context",
    feature = "planted-bug-cache-ignores-context",
    feature = "planted-bug-failover-retry-nonidempotent",
    feature = "planted-bug-renew-after-expiry",
    feature = "planted-bugs"
)))]
#[test]
fn seeds_that_found_real_bugs_stay_fixed() {
    for (seed, cache, faults) in [
        (
            74,
            "local",
            "split,delay,reset,clock,shutdown,partial,black-hole,slow-peer,peer-errors",
        ),
        (
            2695,
            "none",
            "delay,duplicate,reset,clock,slow,latency,link-reset,black-hole,partition,peer-errors",
        ),
        (
            17695,
            "none",
            "reset,clock,malformed,partial,partition,slow-peer,peer-errors",
        ),
    ] {
        let sc = Scenario::for_seed(
            seed,
            Some(BackendChoice::Vault),
            Some(CacheChoice::parse(cache).unwrap()),
            Some(Faults::parse(faults).unwrap()),
        );
        if let Err(e) = run(seed, &sc) {
            panic!("seed {seed}: {e}");
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
