//! Replays every public KMIP TTLV vector through the decoder, encoder and text form.

use std::collections::HashSet;

use keybroker_core::kmip::text;
use keybroker_core::kmip::ttlv::{self, Limits};
use keybroker_testvectors::kmip::{vectors, Expect, Vector};

fn find(name: &str) -> Vector {
    vectors()
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
}

#[test]
fn vector_files_are_well_formed() {
    let all = vectors();
    assert!(all.len() > 300, "only {} vectors", all.len());
    let mut names = HashSet::new();
    for v in &all {
        assert!(!v.name.is_empty() && !v.source.is_empty(), "{v:?}");
        assert!(!v.bytes.is_empty(), "{}: no bytes", v.name);
        assert!(names.insert(v.name.clone()), "duplicate name {}", v.name);
    }
}

#[test]
fn valid_vectors_round_trip_bytes_and_text() {
    let mut n = 0;
    for v in vectors().iter().filter(|v| v.expect == Expect::Ok) {
        let item =
            ttlv::decode(&v.bytes).unwrap_or_else(|e| panic!("{} ({}): {e}", v.name, v.source));
        assert_eq!(item.encode(), v.bytes, "{}: re-encoding differs", v.name);
        assert_eq!(
            ttlv::frame_len(&v.bytes, &Limits::DEFAULT),
            Ok(Some(v.bytes.len())),
            "{}",
            v.name
        );
        let rendered = text::render(&item);
        let parsed =
            text::parse(&rendered).unwrap_or_else(|e| panic!("{}: {e}\n{rendered}", v.name));
        assert_eq!(parsed, item, "{}: text round trip", v.name);
        assert_eq!(text::encode(&rendered).unwrap(), v.bytes, "{}", v.name);
        n += 1;
    }
    assert!(n > 300, "{n}");
}

#[test]
fn malformed_vectors_fail_at_the_named_offset() {
    let mut n = 0;
    for v in vectors() {
        let Expect::Error { offset } = v.expect else {
            continue;
        };
        let e = ttlv::decode(&v.bytes).expect_err(&v.name);
        assert_eq!(e.offset, offset, "{}: {e}", v.name);
        assert!(
            e.to_string()
                .starts_with(&format!("offset {offset:#04x}: ")),
            "{}: {e}",
            v.name
        );
        n += 1;
    }
    assert!(n >= 15, "{n}");
}

#[test]
fn truncated_valid_vectors_fail_without_panicking() {
    for v in vectors().iter().filter(|v| v.expect == Expect::Ok) {
        for cut in [1, 7, 8, v.bytes.len() / 2, v.bytes.len() - 1] {
            if cut < v.bytes.len() {
                assert!(
                    ttlv::decode(&v.bytes[..cut]).is_err(),
                    "{} cut {cut}",
                    v.name
                );
            }
        }
    }
}

#[test]
fn error_messages_say_why() {
    let e = ttlv::decode(&find("kmip-ttlv.wrong_value_length").bytes).unwrap_err();
    assert_eq!(e.to_string(), "offset 0x08: length 5 of Integer must be 4");
    let e = ttlv::decode(&find("kmip-ttlv.wrong_boolean_value").bytes).unwrap_err();
    assert_eq!(
        e.to_string(),
        "offset 0x10: Boolean value 0x2 must be 0 or 1"
    );
    let e = ttlv::decode(&find("kmip-ttlv.invalid_root_type").bytes).unwrap_err();
    assert_eq!(e.to_string(), "offset 0x00: unknown item type 0x00");
    let e = ttlv::decode(&find("edge.depth_33").bytes).unwrap_err();
    assert_eq!(
        e.to_string(),
        "offset 0x100: Structures nested deeper than 32"
    );
}

macro_rules! snapshot {
    ($fn:ident, $vector:expr) => {
        #[test]
        fn $fn() {
            let v = find($vector);
            let item = ttlv::decode(&v.bytes).unwrap();
            insta::assert_snapshot!(text::render(&item));
        }
    };
}

snapshot!(
    text_discover_versions_request_kmip11,
    "kmip_11_test_case_16_1_discover_versions.kmip_1_1_testcase_16_1_time_0_discover_versions_no_versions_provided_request"
);
snapshot!(
    text_discover_versions_response_kmip11,
    "kmip_11_test_case_16_1_discover_versions.kmip_1_1_testcase_16_1_time_0_discover_versions_v11_v10_response"
);
snapshot!(text_all_types, "edge.all_types");
snapshot!(text_nonzero_padding, "edge.nonzero_padding_text");
snapshot!(text_unknown_tags, "edge.unknown_tag_and_extension_range");
snapshot!(
    text_create_symmetric_key_request_kmip10,
    "kmip_10_use_case_3_1_basic_functionality.kmip_1_0_usecase_3_1_2_step_2_create_symmetric_key_request"
);
snapshot!(
    text_query_failed_response_kmip10,
    "kmip_10_use_case_12_1_query.kmip_1_0_usecase_12_1_step_1_query_operation_failed_response_too_large_response"
);

#[test]
fn public_response_messages_parse() {
    use keybroker_core::kmip::messages::{parse_response, status, ProtocolVersion};
    use keybroker_core::kmip::tags::tag;
    let mut n = 0;
    for v in vectors().iter().filter(|v| v.expect == Expect::Ok) {
        let item = ttlv::decode(&v.bytes).unwrap();
        if item.tag != tag::RESPONSE_MESSAGE {
            continue;
        }
        let r = parse_response(&item).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert!(!r.items.is_empty(), "{}", v.name);
        n += 1;
    }
    assert!(n >= 30, "{n}");
    let r = parse_response(
        &ttlv::decode(&find("kmip_11_test_case_16_1_discover_versions.kmip_1_1_testcase_16_1_time_0_discover_versions_v11_v10_response").bytes).unwrap(),
    )
    .unwrap();
    assert_eq!(
        r.items[0].protocol_versions(),
        vec![ProtocolVersion::V1_1, ProtocolVersion::V1_0]
    );
    let failed = parse_response(
        &ttlv::decode(&find("kmip_10_use_case_12_1_query.kmip_1_0_usecase_12_1_step_1_query_operation_failed_response_too_large_response").bytes).unwrap(),
    )
    .unwrap();
    assert_eq!(failed.items[0].status, status::OPERATION_FAILED);
    assert_eq!(
        failed.items[0].describe(),
        "OperationFailed/ResponseTooLarge: Response size: 568, Maximum Response Size indicated in request: 256"
    );
    let created = parse_response(
        &ttlv::decode(&find("kmip_10_use_case_3_1_basic_functionality.kmip_1_0_usecase_3_1_2_step_2_create_symmetric_key_response").bytes).unwrap(),
    )
    .unwrap();
    assert!(created.items[0].is_success());
    assert!(created.items[0].unique_identifier().is_some());
}
