//! Configuration: `kms.properties`, keystores, and the typed settings built from them.
pub mod endpoint;
pub mod keystore;
pub mod load;
pub mod properties;
pub mod settings;

pub use settings::{
    AuditFsync, BrokerSettings, CacheType, LogFormat, LogLevel, Protocol, Settings, SettingsError,
    VaultAuth, Warning,
};
