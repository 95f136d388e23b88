//! KMIP: TTLV encoding and decoding, and the messages keybroker sends to an HSM.
//!
//! - [`ttlv`]: the binary codec (decoder with limits and offset-naming errors, encoder);
//! - [`tags`]: names of KMIP tags and enumeration values (KMIP 1.0–2.0);
//! - [`text`]: the `keybroker ttlv decode/encode` text form, an exact inverse of the codec.
//! - [`messages`]: the requests keybroker sends and the parser of responses.

pub mod messages;
pub mod tags;
pub mod text;
pub mod ttlv;

pub use ttlv::{decode, frame_len, DecodeError, Item, ItemType, Limits, Value};
