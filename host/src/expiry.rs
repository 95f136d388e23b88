//! Certificate expiry warnings while serving: the keystore's certificates are checked at
//! start, once a day and after each reload; what to say is decided by
//! [`keybroker_core::expiry`].
use crate::node::log_as;
use keybroker_core::config::load::NodeConfig;
use keybroker_core::expiry::{ExpiryWatch, Level, Watched};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const DAILY: Duration = Duration::from_secs(24 * 60 * 60);

struct State {
    watch: ExpiryWatch,
    certs: Vec<Watched>,
}

/// The expiry watch of a running node.
#[derive(Clone)]
pub struct Expiry(Arc<Mutex<State>>);

/// Every certificate of the keystore with what it is for the node.
pub fn certificates(cfg: &NodeConfig) -> Vec<Watched> {
    crate::commands::rows(cfg)
        .into_iter()
        .filter_map(|r| {
            let info = r.info?;
            Some(Watched {
                server_own: r.alias.eq_ignore_ascii_case(&cfg.settings.server_alias),
                alias: r.alias,
                role: r.role,
                not_after: info.not_after,
            })
        })
        .collect()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Expiry {
    /// Checks `cfg`'s certificates now and starts the daily check.
    pub fn start(cfg: &NodeConfig) -> Expiry {
        let e = Expiry(Arc::new(Mutex::new(State {
            watch: ExpiryWatch::new(),
            certs: certificates(cfg),
        })));
        e.check();
        let daily = e.clone();
        let spawned = std::thread::Builder::new()
            .name("expiry".into())
            .spawn(move || loop {
                std::thread::sleep(DAILY);
                daily.check();
            });
        if let Err(e) = spawned {
            log_as(
                "expiry",
                "warn",
                &format!("no daily certificate check: cannot start a thread: {e}"),
            );
        }
        e
    }

    /// After a reload: watch the new keystore's certificates and check them now.
    pub fn update(&self, cfg: &NodeConfig) {
        self.0.lock().expect("expiry").certs = certificates(cfg);
        self.check();
    }

    fn check(&self) {
        let mut s = self.0.lock().expect("expiry");
        let State { watch, certs } = &mut *s;
        for n in watch.check(certs, unix_now()) {
            let level = match n.level {
                Level::Warn => "warn",
                Level::Error => "error",
            };
            log_as("expiry", level, &n.message);
        }
    }
}
