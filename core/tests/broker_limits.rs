//! What one connection can make the broker hold, and how refused, revoked and slow clients
//! and shutdown are treated, driven through the public sans-IO API.
use keybroker_core::backend::soft::{SoftBackend, SoftKeys};
use keybroker_core::backend::Backend;
use keybroker_core::config::keystore::{Entry, EntryKind, Format, Keystore};
use keybroker_core::config::{properties, Settings};
use keybroker_core::drbg::Drbg;
use keybroker_core::{
    Broker, ConnOutput, Effect, Input, Instant, Listener, Now, Output, Secret, READ_CHUNK,
};
use proptest::prelude::*;
use std::time::Duration;

const BACKEND: &[u8] = include_bytes!("../../shell-mock/fixtures/cmxBackend.der");
const STRANGER: &[u8] = include_bytes!("../../shell-mock/fixtures/stranger.der");
const DESCRIBE: &[u8] = b"GET /v1/keys/default HTTP/1.1\r\nhost: x\r\n\r\n";
const ROTATE: &[u8] =
    b"POST /v1/keys/default/rotate HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}";

fn keystore(with_backend: bool) -> Keystore {
    let mut entries = Vec::new();
    if with_backend {
        entries.push(Entry {
            alias: "cmxBackend".into(),
            kind: EntryKind::TrustedCert {
                cert: BACKEND.to_vec(),
            },
        });
    }
    Keystore {
        format: Format::Pem,
        entries,
    }
}

/// A test double of a shell: it keeps what the broker asked it to write and close.
struct Shell {
    b: Broker,
    t: Duration,
    /// Bytes of the Send being written, per connection 1 (the only one used).
    in_flight: usize,
    sent: Vec<u8>,
    closed: bool,
    persists: Vec<u64>,
}

impl Shell {
    fn new(extra: &str) -> Shell {
        let props = format!(
            "kms.keystore.file=none\nkms.keystore.password=pw\nkms.hsm.protocol=soft\n{extra}\n"
        );
        let settings = Settings::from_properties(&properties::parse(props.as_bytes()).unwrap())
            .unwrap()
            .0;
        let mut rng = Drbg::new();
        rng.reseed(&[7; 32]);
        let keys = SoftKeys::generate(&["keybroker-master"], &mut rng).unwrap();
        let backend = Backend::Soft(Box::new(SoftBackend::new(
            keys,
            Secret::new(b"pw".to_vec()),
        )));
        let start = Now {
            mono: Instant::from_epoch(Duration::from_secs(1)),
            unix_secs: 1_800_000_001,
        };
        let mut s = Shell {
            b: Broker::new(start, settings.broker(), &keystore(true), backend, &[9; 32]),
            t: Duration::from_secs(1),
            in_flight: 0,
            sent: Vec::new(),
            closed: false,
            persists: Vec::new(),
        };
        s.drain();
        s
    }
    fn now(&self) -> Now {
        Now {
            mono: Instant::from_epoch(self.t),
            unix_secs: 1_800_000_000 + self.t.as_secs() as i64,
        }
    }
    fn input(&mut self, i: Input<'_>) {
        let now = self.now();
        self.b.handle_input(now, i);
        self.drain();
    }
    fn drain(&mut self) {
        while let Some(o) = self.b.poll_output() {
            match o {
                Output::Conn(ConnOutput::Send { conn: 1, bytes }) => {
                    assert_eq!(self.in_flight, 0, "one Send at a time");
                    self.in_flight = bytes.len();
                    self.sent.extend_from_slice(&bytes);
                }
                Output::Conn(ConnOutput::Close { conn: 1 }) => self.closed = true,
                Output::Local(Effect::PersistSoftKeys(p)) => self.persists.push(p.id),
                _ => {}
            }
        }
    }
    fn open(&mut self, cert: &[u8]) {
        self.input(Input::Accepted {
            conn: 1,
            listener: Listener::Client {
                peer_cert: Some(cert.to_vec()),
            },
        });
    }
    /// Reports `n` bytes of the outstanding Send written.
    fn write(&mut self, n: usize) {
        let n = n.min(self.in_flight);
        self.in_flight -= n;
        self.input(Input::Written { conn: 1, bytes: n });
    }
    fn write_all(&mut self) {
        for _ in 0..10_000 {
            if self.in_flight == 0 {
                return;
            }
            self.write(self.in_flight);
        }
    }
    fn answers(&self) -> Vec<u16> {
        let text = String::from_utf8_lossy(&self.sent);
        text.split("HTTP/1.1 ")
            .skip(1)
            .filter_map(|a| a.get(..3)?.parse().ok())
            .collect()
    }
}

#[test]
fn a_refused_client_gets_one_answer_then_close_without_recursion() {
    let mut s = Shell::new("");
    s.open(STRANGER);
    let many = DESCRIBE.repeat(READ_CHUNK / DESCRIBE.len());
    s.input(Input::Received {
        conn: 1,
        bytes: &many,
    });
    s.write_all();
    assert_eq!(s.answers(), vec![403]);
    assert!(s.closed);
    assert!(String::from_utf8_lossy(&s.sent).contains("unknown_client"));
}

#[test]
fn unwritten_answers_stop_reading_and_writing_resumes_it() {
    let mut s = Shell::new("keybroker.http.max-body=4096");
    s.open(BACKEND);
    let chunk = DESCRIBE.repeat(READ_CHUNK / DESCRIBE.len());
    let mut reads = 0;
    while s.b.wants_read(1) && reads < 10_000 {
        s.input(Input::Received {
            conn: 1,
            bytes: &chunk,
        });
        reads += 1;
    }
    assert!(reads < 10_000, "reading stopped");
    let limit = s.b.settings().max_connection_bytes;
    assert!(s.b.held_bytes(1) <= limit);
    assert!(s.in_flight > 0 && s.in_flight <= 64 * 1024 + 512);
    s.write_all();
    assert!(s.b.wants_read(1), "writing frees room to read again");
}

#[test]
fn a_client_that_does_not_read_is_closed_at_the_write_deadline() {
    let mut s = Shell::new("keybroker.http.write-timeout=3");
    s.open(BACKEND);
    s.input(Input::Received {
        conn: 1,
        bytes: DESCRIBE,
    });
    assert!(s.in_flight > 0);
    s.t += Duration::from_secs(2);
    s.input(Input::Timeout);
    assert!(!s.closed);
    s.t += Duration::from_secs(2);
    s.input(Input::Timeout);
    assert!(s.closed);
}

#[test]
fn a_reload_revokes_an_open_connection() {
    let mut s = Shell::new("");
    s.open(BACKEND);
    s.input(Input::Received {
        conn: 1,
        bytes: DESCRIBE,
    });
    s.write_all();
    s.b.set_keystore(&keystore(false));
    s.input(Input::Received {
        conn: 1,
        bytes: DESCRIBE,
    });
    s.write_all();
    assert_eq!(s.answers(), vec![200, 403]);
    assert!(s.closed);
}

#[test]
fn rotation_answers_after_the_file_is_stored() {
    let mut s = Shell::new("");
    s.open(BACKEND);
    s.input(Input::Received {
        conn: 1,
        bytes: ROTATE,
    });
    assert!(s.sent.is_empty(), "no answer before the write");
    let id = s.persists[0];
    s.input(Input::Persisted {
        id,
        result: Err("disk full".into()),
    });
    s.write_all();
    assert_eq!(s.answers(), vec![500]);
    assert!(String::from_utf8_lossy(&s.sent).contains("persist_failed"));
    s.input(Input::Received {
        conn: 1,
        bytes: ROTATE,
    });
    let id = s.persists[1];
    s.input(Input::Persisted { id, result: Ok(()) });
    s.write_all();
    assert_eq!(s.answers(), vec![500, 200]);
    assert!(String::from_utf8_lossy(&s.sent).contains("\"key_version\":2"));
}

/// While a rotation waits for its file to be stored, other connections are answered: the
/// shell stores it off the broker (`Effect::PersistSoftKeys`), and nothing else waits for it.
#[test]
fn other_clients_are_answered_while_a_rotation_is_being_stored() {
    let mut s = Shell::new("");
    s.open(BACKEND);
    s.input(Input::Received {
        conn: 1,
        bytes: ROTATE,
    });
    assert_eq!(
        s.persists.len(),
        1,
        "the rotation asked for the file to be stored"
    );
    let now = s.now();
    s.b.handle_input(
        now,
        Input::Accepted {
            conn: 2,
            listener: Listener::Client {
                peer_cert: Some(BACKEND.to_vec()),
            },
        },
    );
    s.b.handle_input(
        now,
        Input::Received {
            conn: 2,
            bytes: b"POST /v1/keys/default/encrypt HTTP/1.1\r\nhost: x\r\ncontent-length: 20\r\n\r\n{\"plaintext\":\"eA==\"}",
        },
    );
    let mut other = Vec::new();
    while let Some(o) = s.b.poll_output() {
        if let Output::Conn(ConnOutput::Send { conn: 2, bytes }) = o {
            other.extend_from_slice(&bytes);
        }
    }
    let text = String::from_utf8_lossy(&other);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert!(text.contains("\"key_version\":1"), "{text}");
    assert!(s.sent.is_empty(), "the rotation is still unanswered");
    let id = s.persists[0];
    s.input(Input::Persisted { id, result: Ok(()) });
    s.write_all();
    assert_eq!(s.answers(), vec![200]);
}

#[test]
fn shutdown_answers_a_request_that_arrives_in_the_linger() {
    let mut s = Shell::new("");
    s.open(BACKEND);
    s.input(Input::Shutdown);
    assert!(!s.closed);
    s.input(Input::Received {
        conn: 1,
        bytes: DESCRIBE,
    });
    s.write_all();
    assert_eq!(s.answers(), vec![200]);
    assert!(String::from_utf8_lossy(&s.sent).contains("connection: close"));
    assert!(s.closed);
    assert!(s.b.is_drained());
}

#[derive(Debug, Clone)]
enum Step {
    /// The client sends this many bytes of its pipelined stream (if the broker reads).
    Send(usize),
    /// The shell writes this many bytes of the outstanding Send.
    Write(usize),
    /// Time passes (seconds).
    Wait(u64),
}

fn stream_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => Just(DESCRIBE.to_vec()),
        2 => Just(ROTATE.to_vec()),
        4 => Just(b"POST /v1/keys/default/encrypt HTTP/1.1\r\nhost: x\r\ncontent-length: 20\r\n\r\n{\"plaintext\":\"eA==\"}".to_vec()),
        2 => Just(b"GET /v1/keys/nope HTTP/1.1\r\nhost: x\r\n\r\n".to_vec()),
        // Junk ends the stream with a 400 and a close.
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn held_bytes_never_exceed_the_limit(
        pieces in prop::collection::vec(stream_piece(), 1..40),
        repeat in 1usize..400,
        steps in prop::collection::vec(prop_oneof![
            12 => (1usize..=READ_CHUNK).prop_map(Step::Send),
            2 => (0usize..8_000).prop_map(Step::Write),
            1 => (0u64..3).prop_map(Step::Wait),
        ], 1..200),
    ) {
        let mut s = Shell::new("keybroker.http.max-body=4096");
        let limit = s.b.settings().max_connection_bytes;
        s.open(BACKEND);
        let stream: Vec<u8> = pieces.concat().repeat(repeat);
        let mut at = 0;
        for step in steps {
            match step {
                Step::Send(n) => {
                    if s.b.wants_read(1) && at < stream.len() {
                        let end = (at + n).min(stream.len());
                        let bytes = stream[at..end].to_vec();
                        at = end;
                        s.input(Input::Received { conn: 1, bytes: &bytes });
                    }
                }
                Step::Write(n) => s.write(n),
                Step::Wait(secs) => {
                    s.t += Duration::from_secs(secs);
                    s.input(Input::Timeout);
                }
            }
            // Persist every rotation at once (the soft backend waits for it).
            while let Some(id) = s.persists.pop() {
                s.input(Input::Persisted { id, result: Ok(()) });
            }
            prop_assert!(s.b.held_bytes(1) <= limit, "held {} > {limit}", s.b.held_bytes(1));
            if s.closed {
                break;
            }
        }
    }
}
