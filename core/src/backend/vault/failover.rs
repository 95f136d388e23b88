//! Calls and failover: which node a call goes to, breakers, sending a call again on the next
//! node, and what becomes of an answer.

use super::*;

pub(super) enum CallKind {
    Encrypt(Vec<EncItem>),
    Decrypt(Vec<DecItem>),
    ReadKey {
        key: String,
        op: Option<OpId>,
        rotated: bool,
    },
    CreateKey {
        key: String,
    },
    Rotate {
        key: String,
        op: OpId,
    },
    Lookup,
    Renew,
    ImdsToken,
    ImdsInstance {
        jwt: Secret<String>,
    },
    Login,
}

impl CallKind {
    pub(super) fn ops(&self) -> Vec<OpId> {
        match self {
            CallKind::Encrypt(i) => i.iter().map(|i| i.op).collect(),
            CallKind::Decrypt(i) => i.iter().map(|i| i.op).collect(),
            CallKind::ReadKey { op, .. } => op.iter().copied().collect(),
            CallKind::Rotate { op, .. } => vec![*op],
            _ => Vec::new(),
        }
    }
}

pub(super) struct Call {
    pub(super) req: VaultRequest,
    pub(super) kind: CallKind,
    pub(super) target: Target,
    /// Give up waiting in the queue at this instant.
    pub(super) wait_until: Instant,
    /// Answer deadline once sent.
    pub(super) answer_by: Option<Instant>,
    pub(super) retried: bool,
    /// The Vault node (index) it was last sent to.
    pub(super) ep: Option<usize>,
    /// Vault nodes that failed it so far.
    pub(super) tries: usize,
}

/// Why a call got no usable answer.
pub(super) enum Failure {
    /// No answer within the deadline.
    Timeout,
    /// The request could not be sent, or its answer was lost or unreadable.
    Lost(String),
}

impl VaultBackend {
    pub(super) fn push_call(
        &mut self,
        req: VaultRequest,
        kind: CallKind,
        target: Target,
        front: bool,
    ) -> CallId {
        let id = self.next_call;
        self.next_call += 1;
        self.calls.insert(
            id,
            Call {
                req,
                kind,
                target,
                wait_until: self.now.mono + self.cfg.request_timeout,
                answer_by: None,
                retried: false,
                ep: None,
                tries: 0,
            },
        );
        if front {
            self.queue.push_front(id);
        } else {
            self.queue.push_back(id);
        }
        id
    }

    /// Sends queued calls on idle links, opening links as needed.
    pub(super) fn dispatch(&mut self) {
        self.flush();
        let mut imds_waiting = false;
        let mut vault_waits = false;
        let queue: Vec<CallId> = self.queue.iter().copied().collect();
        for id in queue {
            let Some(call) = self.calls.get(&id) else {
                continue;
            };
            if !self.may_send(call) {
                continue;
            }
            match call.target {
                Target::Imds => {
                    let idle = self
                        .links
                        .iter()
                        .find(|(_, l)| l.target == Target::Imds && l.connected && l.busy.is_none())
                        .map(|(id, _)| *id);
                    match idle {
                        Some(link) => self.send(link, id),
                        None => imds_waiting = true,
                    }
                }
                Target::Vault if vault_waits => {}
                Target::Vault => match self.pick() {
                    Pick::Send(link) => self.send(link, id),
                    Pick::Connect(ep) => {
                        self.open(Target::Vault, ep);
                        vault_waits = true;
                    }
                    Pick::Wait => vault_waits = true,
                    Pick::Nowhere => self.no_node_left(id),
                },
            }
        }
        if imds_waiting && !self.links.values().any(|l| l.target == Target::Imds) {
            self.open(Target::Imds, 0);
        }
    }

    /// Every Vault node's breaker is open: the call fails now, saying why the last one failed.
    pub(super) fn no_node_left(&mut self, id: CallId) {
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        self.queue.retain(|c| *c != id);
        let retry = self
            .breakers
            .iter()
            .filter_map(|b| b.open_until())
            .min()
            .map_or(RETRY_AFTER, |t| t.saturating_since(self.now.mono))
            .max(Duration::from_secs(1));
        let reason = if self.last_failure.is_empty() {
            "no Vault node can take requests".to_owned()
        } else {
            self.last_failure.clone()
        };
        self.all_down();
        let e = BackendError::Unavailable {
            reason,
            retry_after: retry,
        };
        self.call_failed(call, e);
    }

    /// No Vault node answers: readiness fails and a probe is planned.
    pub(super) fn all_down(&mut self) {
        if self.healthy {
            let why = self.last_failure.clone();
            self.log(Level::Warn, format!("Vault is unavailable: {why}"));
        }
        self.healthy = false;
        if self.probe_at.is_none() {
            self.probe_at = Some(self.now.mono + RETRY_AFTER);
        }
    }

    /// Vault node `ep` failed: its breaker opens, its idle links are dropped, and when no node
    /// is left readiness fails.
    pub(super) fn node_failed(&mut self, ep: usize, why: &str) {
        let pool::Trip {
            pause,
            was_open,
            failures,
        } = self.breakers[ep].trip(self.now.mono);
        let name = self.cfg.endpoints[ep].to_string();
        self.last_failure = format!("{why} (Vault at {name})");
        let idle: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, l)| {
                l.target == Target::Vault && l.ep == ep && l.connected && l.busy.is_none()
            })
            .map(|(id, _)| *id)
            .collect();
        for link in idle {
            self.links.remove(&link);
            self.outputs.push_back(BackendOutput::Close { link });
        }
        if !was_open {
            let others = if self.cfg.endpoints.len() > 1 {
                "; requests go to the next node"
            } else {
                ""
            };
            self.log(
                Level::Warn,
                format!(
                    "Vault at {name} failed ({why}); circuit open for {} ms (failure {failures}){others}",
                    pause.as_millis()
                ),
            );
        }
        if !self.breakers.iter().any(|b| b.closed(self.now.mono)) {
            self.all_down();
        }
    }

    /// Sends `call` again, to the next Vault node, if it may go there; gives it back otherwise.
    pub(super) fn retry_elsewhere(
        &mut self,
        id: CallId,
        mut call: Call,
        not_done: bool,
    ) -> Option<Call> {
        call.tries += 1;
        let may = match call.kind {
            // Not sent twice unless Vault said it did nothing.
            CallKind::Rotate { .. } | CallKind::CreateKey { .. } => not_done,
            _ => true,
        };
        if call.target != Target::Vault || !may || call.tries >= self.cfg.endpoints.len() {
            return Some(call);
        }
        call.answer_by = None;
        self.calls.insert(id, call);
        self.queue.push_front(id);
        None
    }

    pub(super) fn complete(&mut self, id: CallId, result: Result<HttpResponse, Failure>) {
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        self.queue.retain(|c| *c != id);
        let resp = match result {
            Ok(r) => r,
            Err(f) => {
                // A request lost in flight is sent again to the next node (its node already
                // failed); one that timed out is not (the client's deadline has passed).
                let call = match f {
                    Failure::Lost(_) if call.answer_by.is_some() => {
                        match self.retry_elsewhere(id, call, false) {
                            Some(c) => c,
                            None => return,
                        }
                    }
                    _ => call,
                };
                let e = match f {
                    Failure::Timeout => BackendError::Timeout,
                    Failure::Lost(reason) => BackendError::Unavailable {
                        reason,
                        retry_after: RETRY_AFTER,
                    },
                };
                self.call_failed(call, e);
                return;
            }
        };
        // A standby that has not yet seen the latest rotation refuses the new version; another
        // node has it. Only versions keybroker knows exist are sent on, so a forged token with
        // a version from the future is still a plain 400.
        let lagging = resp.status == 400
            && self.cfg.endpoints.len() > 1
            && match &call.kind {
                CallKind::Encrypt(_) => vault::errors(&resp.body)
                    .to_ascii_lowercase()
                    .contains("higher than the latest key version"),
                CallKind::Decrypt(items) => {
                    resp.body.windows(18).any(|w| w == b"version is too new")
                        && items
                            .iter()
                            .all(|i| self.versions.get(&i.key).is_some_and(|v| i.version <= *v))
                }
                _ => false,
            };
        let call = if lagging {
            if let Some(ep) = call.ep {
                self.node_failed(ep, "it has not yet seen the key's latest version");
            }
            match self.retry_elsewhere(id, call, true) {
                Some(c) => c,
                None => return,
            }
        } else {
            call
        };
        let call = match (call.target, call.ep) {
            (Target::Vault, Some(ep)) => match node_failure(&resp) {
                Some((why, not_done)) => {
                    self.node_failed(ep, &why);
                    match self.retry_elsewhere(id, call, not_done) {
                        Some(c) => c,
                        None => return,
                    }
                }
                None => {
                    self.breakers[ep].reset();
                    if !self.healthy && self.token.is_some() {
                        self.log(Level::Info, "Vault answers again".into());
                    }
                    self.healthy = true;
                    call
                }
            },
            _ => call,
        };
        let ok = status_ok(resp.status);
        self.auth_sent = call
            .answer_by
            .map(|a| Instant::from_epoch(a.since_epoch().saturating_sub(self.cfg.request_timeout)));
        match call.kind {
            CallKind::Encrypt(items) => self.encrypted(&call.req, &resp, ok, items),
            CallKind::Decrypt(items) => self.decrypted(&call.req, &resp, ok, items),
            CallKind::ReadKey { key, op, rotated } => {
                self.key_read(&call.req, &resp, ok, key, op, rotated)
            }
            CallKind::CreateKey { key } => self.key_created(&call.req, &resp, ok, key),
            CallKind::Rotate { key, op } => self.rotated(&call.req, &resp, ok, key, op),
            CallKind::Lookup => self.looked_up(&resp, ok),
            CallKind::Renew => self.renewed(&resp, ok),
            CallKind::ImdsToken => self.imds_token_answered(&resp, ok),
            CallKind::ImdsInstance { jwt } => self.imds_instance_answered(&resp, ok, jwt),
            CallKind::Login => self.logged_in(&resp, ok),
        }
    }

    pub(super) fn call_failed(&mut self, call: Call, e: BackendError) {
        match call.kind {
            CallKind::Lookup | CallKind::Renew => {
                self.auth_busy = false;
                if !matches!(call.kind, CallKind::Renew) {
                    self.auth_retry_at = Some(self.now.mono + RETRY_AFTER);
                }
                // A renewal due while this call was out (it waited for it) is tried again
                // later too: left in the past, no timeout would act on it and the shell's
                // timer would spin.
                let now = self.now.mono;
                if let Some(t) = self.token.as_mut() {
                    if matches!(call.kind, CallKind::Renew) || t.renew_at.is_some_and(|r| r <= now)
                    {
                        t.renew_at = Some(now + RETRY_AFTER);
                    }
                }
            }
            CallKind::ImdsToken | CallKind::ImdsInstance { .. } | CallKind::Login => {
                let why = match &e {
                    BackendError::Unavailable { reason, .. } => reason.clone(),
                    e => e.to_string(),
                };
                self.auth_failed(&why)
            }
            CallKind::ReadKey { key, op: None, .. } => {
                self.reading.retain(|k| *k != key);
                self.fail_held_encrypts(&key, &e);
            }
            CallKind::CreateKey { .. } => {}
            kind => self.fail_ops(kind.ops(), e),
        }
    }
}
