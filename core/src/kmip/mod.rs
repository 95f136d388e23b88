//! KMIP: TTLV encoding and decoding, and the messages keybroker sends to an HSM.
