//! Links and failover (link.rs): endpoints that are down, silent, dying or slow.
use super::*;

#[test]
fn black_hole_first_endpoint_fails_over_without_losing_requests() {
    let mut h = H::new(&[Mode::Silent, Mode::Normal], true);
    h.start();
    assert!(h.b.is_ready(), "{:?}", h.logs);
    let (t, _) = token(h.call(enc("k", b"x", b"")));
    assert_eq!(plain(h.call(dec(&t, b""))), b"x");
    // The black hole's connect times out and opens its breaker; requests keep working.
    h.advance(Duration::from_secs(4));
    assert!(
        h.logs
            .iter()
            .any(|l| l.contains("hsm0") && l.contains("connect timed out")),
        "{:?}",
        h.logs
    );
    assert_eq!(plain(h.call(dec(&t, b""))), b"x");
}

#[test]
fn hsm_dying_mid_request_retries_on_the_other_and_breaker_opens() {
    let mut h = H::new(&[Mode::Normal, Mode::Normal], true);
    h.start();
    let (t, _) = token(h.call(enc("k", b"x", b"")));
    h.sim.modes[0] = Mode::Down;
    // The link to hsm0 resets under the request: retried on hsm1, the client sees success.
    assert_eq!(plain(h.call(dec(&t, b""))), b"x");
    assert!(h
        .logs
        .iter()
        .any(|l| l.contains("hsm0") && l.contains("circuit open")));
    for _ in 0..5 {
        assert_eq!(plain(h.call(dec(&t, b""))), b"x");
    }
    // /metrics sees the trip: hsm0 down with its breaker open and one failover, hsm1 up.
    let eps = h.b.endpoints();
    assert_eq!(eps.len(), 2);
    assert!(eps[0].name.starts_with("hsm0:"), "{eps:?}");
    assert!(
        !eps[0].up && eps[0].breaker_open && eps[0].failovers == 1,
        "{eps:?}"
    );
    assert!(
        eps[1].up && !eps[1].breaker_open && eps[1].failovers == 0,
        "{eps:?}"
    );
}

#[test]
fn silent_hsm_times_out_in_flight_and_later_requests_go_elsewhere() {
    let mut h = H::new(&[Mode::Normal, Mode::Normal], true);
    h.start();
    let (t, _) = token(h.call(enc("k", b"x", b"")));
    h.sim.modes[0] = Mode::Silent;
    h.b.submit(h.now, 1, dec(&t, b""), &mut h.rng);
    h.run();
    assert!(h.replies.is_empty(), "in flight on the black hole");
    // After the stall threshold (1 s) new requests avoid hsm0 and succeed at once.
    h.advance(Duration::from_millis(1001));
    assert_eq!(plain(h.call(dec(&t, b""))), b"x");
    // The stuck one fails with a timeout at 5 s, not earlier.
    h.advance(Duration::from_millis(3900));
    assert!(h.replies.iter().all(|r| r.0 != 1));
    h.advance(Duration::from_millis(200));
    let r = h.replies.iter().find(|r| r.0 == 1).expect("timed out");
    assert_eq!(r.1.as_ref().unwrap_err(), &BackendError::Timeout);
    assert_eq!(plain(h.call(dec(&t, b""))), b"x");
}

#[test]
fn all_endpoints_down_is_unavailable_with_retry_after() {
    let mut h = H::new(&[Mode::Down, Mode::Down], true);
    h.start();
    assert!(!h.b.is_ready());
    match h.call(enc("k", b"x", b"")) {
        Err(BackendError::Unavailable { retry_after, .. }) => {
            assert!(retry_after >= Duration::from_secs(1))
        }
        r => panic!("{r:?}"),
    }
    let dbg = format!("{:?}", h.b);
    assert!(!dbg.contains("secret"));
}

#[test]
fn a_slow_single_endpoint_is_waited_for_not_refused() {
    let mut h = H::new(&[Mode::Normal], true);
    h.start();
    let (t, _) = token(h.call(enc("k", b"x", b"")));
    h.sim.modes[0] = Mode::Silent;
    h.b.submit(h.now, 1, dec(&t, b""), &mut h.rng);
    h.run();
    h.advance(Duration::from_millis(1500));
    // The only endpoint is stalled: a new request still goes to it rather than failing 503.
    h.b.submit(h.now, 2, dec(&t, b""), &mut h.rng);
    h.run();
    assert!(h.replies.is_empty(), "{:?}", h.replies);
    h.advance(Duration::from_millis(3600));
    let first = h
        .replies
        .iter()
        .find(|r| r.0 == 1)
        .expect("first timed out");
    assert_eq!(first.1.as_ref().unwrap_err(), &BackendError::Timeout);
    h.advance(Duration::from_secs(5));
    let second = h
        .replies
        .iter()
        .find(|r| r.0 == 2)
        .expect("second answered");
    assert!(
        matches!(
            second.1,
            Err(BackendError::Timeout | BackendError::Unavailable { .. })
        ),
        "{:?}",
        second.1
    );
}
