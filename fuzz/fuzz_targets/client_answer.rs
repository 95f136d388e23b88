//! Fuzzes how keybroker-client reads an answer: any status, header value and body give an
//! error with that status and a non-empty code, never a panic.
#![no_main]
use keybroker_client::{Answer, ApiError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
    let split = (data[2] as usize).min(data.len() - 3);
    let (header, body) = data[3..].split_at(split);
    let header = String::from_utf8_lossy(header).into_owned();
    let a = Answer {
        status,
        headers: vec![
            ("retry-after".into(), header.clone()),
            ("x-request-id".into(), header),
        ],
        body: body.to_vec(),
    };
    let _ = a.json();
    let e = ApiError::from_answer(&a);
    assert_eq!(e.status, status);
    assert!(!e.code.is_empty());
    let _ = e.to_string();
});
