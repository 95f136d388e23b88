//! Configuration: `kms.properties`, keystores, and the typed settings built from them.
pub mod keystore;
pub mod properties;
