//! Each planted bug (a feature of keybroker-core built only for this test) is found by the
//! simulator within the number of seeds docs/testing.md states. Run with, e.g.,
//! `cargo test --release -p keybroker-sim --features planted-bug-ignore-context --test planted`.
#![allow(dead_code)]
use keybroker_sim::{run, BackendChoice, CacheChoice, Failure, Scenario};

/// The first failing seed among `0..within` for `backend` and `cache`.
fn hunt(backend: BackendChoice, cache: CacheChoice, within: u64) -> Failure {
    (0..within)
        .find_map(|s| run(s, &Scenario::for_seed(s, Some(backend), Some(cache), None)).err())
        .unwrap_or_else(|| panic!("the simulator missed the planted bug in {within} seeds"))
}

#[cfg(feature = "planted-bug-ignore-context")]
#[test]
fn the_soft_backend_ignoring_the_context_is_found() {
    let f = hunt(BackendChoice::Soft, CacheChoice::None, 200);
    eprintln!("found at seed {}: {}", f.seed, f.message);
    assert!(f.message.contains("context"), "{f}");
}

#[cfg(feature = "planted-bug-cache-ignores-context")]
#[test]
fn a_cache_ignoring_the_context_is_found_in_both_modes() {
    for (backend, cache) in [
        (BackendChoice::Soft, CacheChoice::Local),
        (BackendChoice::Kmip, CacheChoice::Distributed),
    ] {
        let f = hunt(backend, cache, 200);
        eprintln!("found at seed {}: {}", f.seed, f.message);
        assert!(f.message.contains("different context"), "{f}");
    }
}

#[cfg(feature = "planted-bug-failover-retry-nonidempotent")]
#[test]
fn kmip_failover_retrying_a_create_is_found() {
    let f = hunt(BackendChoice::Kmip, CacheChoice::None, 1000);
    eprintln!("found at seed {}: {}", f.seed, f.message);
    assert!(f.message.contains("rotation"), "{f}");
}

#[cfg(feature = "planted-bug-renew-after-expiry")]
#[test]
fn renewing_the_vault_token_after_it_expired_is_found() {
    let f = hunt(BackendChoice::Vault, CacheChoice::None, 200);
    eprintln!("found at seed {}: {}", f.seed, f.message);
    assert!(f.message.contains("expired"), "{f}");
}
