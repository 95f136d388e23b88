//! Public wire vectors and the tests that replay them through keybroker-core.
//!
//! KMIP TTLV vectors live in `testvectors/kmip/*.txt`, one block per vector:
//!
//! ```text
//! name: kmip_11_test_case_16_1_discover_versions.kmip_1_1_testcase_16_1_time_0_..._request
//! source: NLnetLabs/kmip-protocol src/tests/... fn ... (where the bytes were published)
//! expect: ok | error offset 0x18 (why)
//! hex: 4200780100000060...
//! hex: ...continued
//! ```
//!
//! Lines starting with `#` are comments; blocks are separated by blank lines.

/// KMIP TTLV vectors and their loader.
pub mod kmip {
    /// The vector files, as `(file name, contents)`.
    pub const FILES: &[(&str, &str)] = &[
        (
            "kmip-protocol.txt",
            include_str!("../kmip/kmip-protocol.txt"),
        ),
        ("kmip-ttlv.txt", include_str!("../kmip/kmip-ttlv.txt")),
        ("pykmip.txt", include_str!("../kmip/pykmip.txt")),
        ("handmade.txt", include_str!("../kmip/handmade.txt")),
    ];

    /// What decoding a vector must give.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Expect {
        /// Decodes, and re-encodes to the same bytes.
        Ok,
        /// Fails with an error at this byte offset.
        Error {
            /// Byte offset the error must name.
            offset: usize,
        },
    }

    /// One KMIP TTLV vector.
    #[derive(Clone, Debug)]
    pub struct Vector {
        /// File it was read from.
        pub file: &'static str,
        /// Unique name.
        pub name: String,
        /// Where the bytes were published.
        pub source: String,
        /// Expected decoding outcome.
        pub expect: Expect,
        /// The TTLV bytes.
        pub bytes: Vec<u8>,
    }

    /// All KMIP vectors from [`FILES`]; panics with file and line on a malformed vector file.
    pub fn vectors() -> Vec<Vector> {
        let mut out = Vec::new();
        for &(file, text) in FILES {
            parse_file(file, text, &mut out);
        }
        out
    }

    fn parse_file(file: &'static str, text: &str, out: &mut Vec<Vector>) {
        let mut cur: Option<(Vector, String)> = None;
        let finish = |cur: &mut Option<(Vector, String)>, out: &mut Vec<Vector>| {
            if let Some((mut v, hex)) = cur.take() {
                v.bytes = keybroker_core::kmip::text::hex_to_bytes(&hex)
                    .unwrap_or_else(|e| panic!("{file}: vector {}: {e}", v.name));
                out.push(v);
            }
        };
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            if line.is_empty() {
                finish(&mut cur, out);
                continue;
            }
            let (key, val) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("{file}:{}: expected `key: value`", i + 1));
            let val = val.trim();
            let (v, hex) = cur.get_or_insert_with(|| {
                (
                    Vector {
                        file,
                        name: String::new(),
                        source: String::new(),
                        expect: Expect::Ok,
                        bytes: Vec::new(),
                    },
                    String::new(),
                )
            });
            match key {
                "name" => v.name = val.to_owned(),
                "source" => v.source = val.to_owned(),
                "hex" => hex.push_str(val),
                "expect" if val == "ok" => v.expect = Expect::Ok,
                "expect" => {
                    let off = val
                        .strip_prefix("error offset 0x")
                        .and_then(|r| r.split_whitespace().next())
                        .and_then(|h| usize::from_str_radix(h, 16).ok())
                        .unwrap_or_else(|| panic!("{file}:{}: bad expect {val:?}", i + 1));
                    v.expect = Expect::Error { offset: off };
                }
                _ => panic!("{file}:{}: unknown key {key:?}", i + 1),
            }
        }
        finish(&mut cur, out);
    }
}
