use super::*;
use crate::time::Now;

fn now(ms: u64) -> Now {
    Now {
        mono: Instant::from_epoch(Duration::from_millis(ms)),
        unix_secs: 0,
    }
}

fn cfg(redis: bool) -> CacheConfig {
    CacheConfig {
        ttl: Duration::from_secs(10),
        max_entries: 2,
        redis: redis.then(|| RedisTarget::parse("redis://:pw@127.0.0.1:6390/2").unwrap()),
        redis_timeout: Duration::from_millis(100),
    }
}

fn secret(b: &[u8]) -> Secret<Vec<u8>> {
    Secret::new(b.to_vec())
}

#[test]
fn keys_differ_by_key_ciphertext_and_context() {
    let k = cache_key("k", "kb1:x", b"c");
    assert_ne!(k, cache_key("j", "kb1:x", b"c"));
    assert_ne!(k, cache_key("k", "kb1:y", b"c"));
    assert_ne!(k, cache_key("k", "kb1:x", b"d"));
    assert_ne!(cache_key("ab", "c", b""), cache_key("a", "bc", b""));
}

#[test]
fn redis_urls() {
    let t = RedisTarget::parse("redis://:s3cret@10.0.0.1:6380/3").unwrap();
    assert_eq!((t.host.as_str(), t.port, t.db), ("10.0.0.1", 6380, 3));
    assert_eq!(t.password.unwrap().expose(), "s3cret");
    let t = RedisTarget::parse("redis://localhost").unwrap();
    assert_eq!((t.port, t.db, t.password.is_none()), (6379, 0, true));
    assert!(RedisTarget::parse("http://x").is_err());
    assert!(!format!("{:?}", RedisTarget::parse("redis://:s3cret@h").unwrap()).contains("s3cret"));
}

#[test]
fn local_cache_hits_expires_and_is_bounded() {
    let mut c = Cache::new(cfg(false), false, b"");
    let (a, b, d) = (
        cache_key("k", "a", b""),
        cache_key("k", "b", b""),
        cache_key("k", "d", b""),
    );
    assert!(matches!(c.lookup(now(0), 1, || a), Lookup::Miss));
    c.store(now(0), a, &secret(b"A"));
    assert!(matches!(c.lookup(now(1), 2, || a), Lookup::Hit(p) if p.expose() == b"A"));
    c.store(now(2), b, &secret(b"B"));
    c.store(now(3), d, &secret(b"D"));
    assert!(
        matches!(c.lookup(now(4), 3, || a), Lookup::Miss),
        "evicted: max 2 entries"
    );
    assert!(matches!(c.lookup(now(4), 4, || d), Lookup::Hit(_)));
    assert!(
        matches!(c.lookup(now(20_000), 5, || d), Lookup::Miss),
        "expired after ttl"
    );
    assert_eq!(c.stats.hits, 2);
}

#[test]
fn sealing_binds_the_key_and_hides_the_plaintext() {
    let c = Cache::new(cfg(true), true, b"server private key bytes");
    let (a, b) = (cache_key("k", "a", b""), cache_key("k", "b", b""));
    let sealed = c.seal(&a, b"data key bytes").unwrap();
    assert!(!sealed.windows(4).any(|w| w == b"data"));
    assert_eq!(c.unseal(&a, &sealed).unwrap().expose(), b"data key bytes");
    assert!(
        c.unseal(&b, &sealed).is_none(),
        "moved to another key: refused"
    );
    let mut t = sealed.clone();
    t[5] ^= 1;
    assert!(c.unseal(&a, &t).is_none());
    let other = Cache::new(cfg(true), true, b"another keystore");
    assert!(other.unseal(&a, &sealed).is_none());
}

fn outputs(c: &mut Cache) -> Vec<BackendOutput> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

fn connected(pw_db: bool) -> (Cache, LinkId) {
    let mut c = Cache::new(cfg(true), true, b"ikm");
    c.start(now(0));
    let out = outputs(&mut c);
    let BackendOutput::Connect {
        link,
        port,
        security,
        ..
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!((*port, *security), (6390, LinkSecurity::Plain));
    let link = *link;
    c.handle_net(now(1), NetEvent::Connected { link });
    let out = outputs(&mut c);
    if pw_db {
        let BackendOutput::Send { bytes, .. } = &out[0] else {
            panic!()
        };
        assert_eq!(
            bytes,
            &[
                resp::command(&[b"AUTH", b"pw"]),
                resp::command(&[b"SELECT", b"2"])
            ]
            .concat()
        );
        c.handle_net(
            now(2),
            NetEvent::Received {
                link,
                bytes: b"+OK\r\n+OK\r\n".to_vec(),
            },
        );
    }
    (c, link)
}

#[test]
fn distributed_hit_miss_and_store_through_redis() {
    let (mut c, link) = connected(true);
    let k = cache_key("k", "kb1:t", b"");
    assert!(matches!(c.lookup(now(10), 7, || k), Lookup::Pending));
    let out = outputs(&mut c);
    let BackendOutput::Send { bytes, .. } = &out[0] else {
        panic!()
    };
    assert!(bytes.starts_with(b"*2\r\n$3\r\nGET\r\n"));
    c.handle_net(
        now(11),
        NetEvent::Received {
            link,
            bytes: b"$-1\r\n".to_vec(),
        },
    );
    assert!(matches!(c.poll_event(), Some(CacheEvent::Looked(7, None))));

    c.store(now(12), k, &secret(b"plain data key"));
    let out = outputs(&mut c);
    let BackendOutput::Send { bytes, .. } = &out[0] else {
        panic!()
    };
    assert!(
        !bytes.windows(5).any(|w| w == b"plain"),
        "Redis never sees the plaintext"
    );
    assert!(bytes.ends_with(b"$2\r\nPX\r\n$5\r\n10000\r\n"));
    let sealed = c.seal(&k, b"plain data key").unwrap();
    c.handle_net(
        now(13),
        NetEvent::Received {
            link,
            bytes: b"+OK\r\n".to_vec(),
        },
    );

    assert!(matches!(c.lookup(now(14), 8, || k), Lookup::Pending));
    let mut reply = format!("${}\r\n", sealed.len()).into_bytes();
    reply.extend_from_slice(&sealed);
    reply.extend_from_slice(b"\r\n");
    // Arrives in two pieces.
    c.handle_net(
        now(15),
        NetEvent::Received {
            link,
            bytes: reply[..3].to_vec(),
        },
    );
    assert!(c.poll_event().is_none());
    c.handle_net(
        now(15),
        NetEvent::Received {
            link,
            bytes: reply[3..].to_vec(),
        },
    );
    assert!(
        matches!(c.poll_event(), Some(CacheEvent::Looked(8, Some(p))) if p.expose() == b"plain data key")
    );
    assert_eq!((c.stats.hits, c.stats.misses), (1, 1));
}

#[test]
fn slow_redis_is_a_miss_and_a_dead_one_is_retried() {
    let (mut c, link) = connected(false);
    let k = cache_key("k", "kb1:t", b"");
    assert!(matches!(c.lookup(now(10), 1, || k), Lookup::Pending));
    assert_eq!(c.poll_timeout(), Some(now(110).mono));
    c.handle_timeout(now(111));
    assert!(matches!(c.poll_event(), Some(CacheEvent::Looked(1, None))));
    // The late answer is consumed in order and ignored.
    c.handle_net(
        now(120),
        NetEvent::Received {
            link,
            bytes: b"$-1\r\n".to_vec(),
        },
    );
    assert!(c.poll_event().is_none());
    assert_eq!(
        c.poll_warning(),
        None,
        "a single slow answer is not worth a warning"
    );

    assert!(matches!(c.lookup(now(200), 2, || k), Lookup::Pending));
    c.handle_net(
        now(201),
        NetEvent::Closed {
            link,
            reason: "reset".into(),
        },
    );
    assert!(matches!(c.poll_event(), Some(CacheEvent::Looked(2, None))));
    assert!(c.poll_warning().unwrap().contains("Redis connection lost"));
    let _ = outputs(&mut c);
    assert!(
        matches!(c.lookup(now(202), 3, || k), Lookup::Miss),
        "while down: straight to the backend"
    );
    // Reconnects follow the backends' breaker: 1 s after the first failure, then 2 s.
    assert_eq!(c.poll_timeout(), Some(now(1201).mono));
    c.handle_timeout(now(1100));
    assert!(
        outputs(&mut c).is_empty(),
        "no reconnect before the pause ends"
    );
    c.handle_timeout(now(1201));
    let out = outputs(&mut c);
    assert!(
        matches!(out[0], BackendOutput::Connect { link: l, .. } if l != link),
        "reconnects on a new link"
    );
    assert_eq!(c.poll_timeout(), None, "nothing due while connecting");
    // A second failure within a minute is not warned about again.
    let BackendOutput::Connect { link: l2, .. } = out[0] else {
        panic!()
    };
    c.handle_net(
        now(1300),
        NetEvent::Closed {
            link: l2,
            reason: "refused".into(),
        },
    );
    assert_eq!(c.poll_warning(), None);
    let _ = outputs(&mut c);
    assert_eq!(c.poll_timeout(), Some(now(3300).mono), "the pause doubled");
    c.handle_timeout(now(3299));
    assert!(outputs(&mut c).is_empty());
    c.handle_timeout(now(3300));
    let out = outputs(&mut c);
    let BackendOutput::Connect { link: l3, .. } = out[0] else {
        panic!("{out:?}")
    };
    // Once connected, the pause starts again from 1 s.
    c.handle_net(now(3310), NetEvent::Connected { link: l3 });
    let _ = outputs(&mut c);
    c.handle_net(
        now(3400),
        NetEvent::Closed {
            link: l3,
            reason: "reset".into(),
        },
    );
    assert_eq!(c.poll_timeout(), Some(now(4400).mono));
}
