//! Each planted bug (a feature of keybroker-core built only for this test) is found by the
//! simulator within the number of seeds docs/testing.md states. All four are built at once:
//! `cargo test --release -p keybroker-sim --features planted-bugs --test planted`; each hunt
//! runs a backend and cache mode where only its own bug can break the invariant it looks for.
#![allow(dead_code)]
use keybroker_sim::{run, BackendChoice, CacheChoice, Failure, Scenario};

/// The first seed among `0..within` whose failure message contains `needle`.
fn hunt(backend: BackendChoice, cache: CacheChoice, within: u64, needle: &str) -> Failure {
    let f = (0..within)
        .filter_map(|s| run(s, &Scenario::for_seed(s, Some(backend), Some(cache), None)).err())
        .find(|f| f.message.contains(needle))
        .unwrap_or_else(|| {
            panic!("the simulator missed the planted bug ({needle}) in {within} seeds")
        });
    eprintln!("found at seed {}: {f}", f.seed);
    f
}

#[cfg(feature = "planted-bug-ignore-context")]
#[test]
fn the_soft_backend_ignoring_the_context_is_found_within_100_seeds() {
    hunt(
        BackendChoice::Soft,
        CacheChoice::None,
        100,
        "different context",
    );
}

#[cfg(feature = "planted-bug-cache-ignores-context")]
#[test]
fn a_cache_ignoring_the_context_is_found_within_100_seeds_in_both_modes() {
    for cache in [CacheChoice::Local, CacheChoice::Distributed] {
        hunt(BackendChoice::Kmip, cache, 100, "different context");
    }
}

#[cfg(feature = "planted-bug-failover-retry-nonidempotent")]
#[test]
fn kmip_failover_retrying_a_create_is_found_within_1000_seeds() {
    hunt(
        BackendChoice::Kmip,
        CacheChoice::None,
        1000,
        "rotation requests",
    );
}

#[cfg(feature = "planted-bug-renew-after-expiry")]
#[test]
fn renewing_the_vault_token_after_it_expired_is_found_within_100_seeds() {
    hunt(
        BackendChoice::Vault,
        CacheChoice::None,
        100,
        "token expired",
    );
}
