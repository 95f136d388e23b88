//! A node without listeners, for commands that drive it in-process (`keybroker rewrap`): the
//! same driver and runtime as `serve`, its requests fed as connections.
use crate::serve::{self, timer_task, Shared, Smol};
use keybroker_core::Listener;
use keybroker_host::driver::{Action, Host};
use keybroker_host::node;
use smol::channel::{unbounded, Sender};
use std::sync::Arc;
use std::time::Duration;

/// A node without listeners, for commands that drive the broker in-process (`rewrap`): its
/// backend links, cache and timers run on an executor thread; requests go in as connections
/// presenting a keystore certificate.
pub struct Embedded {
    host: Arc<Shared>,
    stop: Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Embedded {
    /// Loads `properties_path` as `serve` does and starts the backend, without binding. Its
    /// audit lines go to `keybroker.audit.file` + `audit_suffix`: a chain of its own, so a
    /// node serving beside it keeps an unbroken one.
    pub fn start(properties_path: &str, audit_suffix: &str) -> Result<Embedded, String> {
        let prepared = node::prepare_with(properties_path, |cfg| {
            if let Some(f) = cfg.settings.audit_file.as_mut() {
                f.push_str(audit_suffix);
            }
        })?;
        let host = Host::new(Smol::default(), prepared);
        let ex = Arc::new(smol::Executor::new());
        host.runtime().set_executor(ex.clone());
        let (stop, stopped) = unbounded::<()>();
        let h = host.clone();
        let thread = std::thread::spawn(move || {
            smol::block_on(ex.run(async {
                let _timer = ex.spawn(timer_task(h.clone()));
                let _ = stopped.recv().await;
            }))
        });
        host.start();
        Ok(Embedded {
            host,
            stop,
            thread: Some(thread),
        })
    }

    /// Sends one HTTP request on a connection of `listener` (for a client: the certificate it
    /// presented) and returns the answer's bytes once `complete` says they hold all of it;
    /// `None` if the connection closed first or `within` passed.
    pub fn request(
        &self,
        listener: Listener,
        request: &[u8],
        within: Duration,
        complete: impl Fn(&[u8]) -> bool,
    ) -> Option<Vec<u8>> {
        let (tx, rx) = unbounded();
        let mut conn = self.host.open_conn(tx, listener);
        conn.received(request);
        let deadline = std::time::Instant::now() + within;
        let mut answer = Vec::new();
        let done = smol::block_on(async {
            loop {
                while let Some(action) = conn.poll_action() {
                    match action {
                        Action::Send(bytes) => {
                            conn.written(bytes.len());
                            answer.extend_from_slice(&bytes);
                        }
                        Action::Close => return complete(&answer),
                    }
                }
                if complete(&answer) {
                    return true;
                }
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match serve::within(left, rx.recv()).await {
                    Some(Ok(m)) => conn.deliver(m),
                    _ => return false,
                }
            }
        });
        drop(conn);
        done.then_some(answer)
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
