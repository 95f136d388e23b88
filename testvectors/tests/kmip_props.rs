//! Property tests: random TTLV trees survive encode → decode and the text form; arbitrary
//! bytes never make the decoder or the framing function panic.

use keybroker_core::kmip::text;
use keybroker_core::kmip::ttlv::{self, Item, ItemType, Limits, Value};
use proptest::prelude::*;

fn tag() -> impl Strategy<Value = u32> {
    prop_oneof![0x420001u32..0x420170, 0u32..0x100_0000]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i32>().prop_map(Value::Integer),
        any::<i64>().prop_map(Value::LongInteger),
        (0usize..4)
            .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n * 8))
            .prop_map(Value::BigInteger),
        any::<u32>().prop_map(Value::Enumeration),
        any::<bool>().prop_map(Value::Boolean),
        ".{0,20}".prop_map(Value::TextString),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::ByteString),
        any::<i64>().prop_map(Value::DateTime),
        any::<u32>().prop_map(Value::Interval),
        any::<i64>().prop_map(Value::DateTimeExtended),
    ]
}

/// Padding that is either canonical (empty) or the exact nonzero bytes the decoder would keep.
fn with_padding(tag: u32, value: Value, pad_seed: Vec<u8>) -> Item {
    let want = value.item_type().padding_len(value.value_len());
    let mut padding: Vec<u8> = pad_seed.into_iter().take(want).collect();
    padding.resize(want, 0);
    if padding.iter().all(|&b| b == 0) {
        padding.clear();
    }
    Item {
        tag,
        value,
        padding,
    }
}

fn item() -> impl Strategy<Value = Item> {
    let leaf_item = (
        tag(),
        leaf(),
        prop_oneof![Just(vec![]), proptest::collection::vec(any::<u8>(), 7)],
    )
        .prop_map(|(t, v, p)| with_padding(t, v, p));
    leaf_item.prop_recursive(6, 64, 8, |inner| {
        (tag(), proptest::collection::vec(inner, 0..8)).prop_map(|(t, c)| Item::structure(t, c))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_decode_identical(it in item()) {
        let bytes = it.encode();
        prop_assert_eq!(bytes.len(), it.encoded_len());
        prop_assert_eq!(ttlv::frame_len(&bytes, &Limits::DEFAULT), Ok(Some(bytes.len())));
        let back = ttlv::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &it);
        let rendered = text::render(&back);
        prop_assert_eq!(text::parse(&rendered).unwrap(), it);
        prop_assert_eq!(text::encode(&rendered).unwrap(), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = ttlv::frame_len(&bytes, &Limits::DEFAULT);
        if let Ok(item) = ttlv::decode(&bytes) {
            prop_assert_eq!(item.encode(), bytes);
        }
    }

    #[test]
    fn mutated_valid_messages_never_panic(it in item(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut bytes = it.encode();
        for (i, b) in flips {
            let n = bytes.len();
            bytes[i % n] ^= b;
        }
        match ttlv::decode(&bytes) {
            Ok(item) => prop_assert_eq!(item.encode(), bytes),
            Err(e) => prop_assert!(e.offset <= bytes.len(), "{}", e),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(s in "[ -~\n]{0,200}") {
        if let Ok(item) = text::parse(&s) {
            let _ = item.encode();
        }
    }

    #[test]
    fn header_type_bytes(ty in any::<u8>()) {
        prop_assert_eq!(ItemType::from_byte(ty).map(ItemType::byte), (1..=11).contains(&ty).then_some(ty));
    }
}
