//! Links to the Vault nodes and the Azure IMDS: opening, sending a call, reading answers.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Target {
    Vault,
    Imds,
}

pub(super) struct Link {
    pub(super) target: Target,
    /// Index of the Vault node (0 for the IMDS).
    pub(super) ep: usize,
    pub(super) connected: bool,
    pub(super) busy: Option<CallId>,
    /// When the request on it was sent.
    pub(super) sent: Instant,
    pub(super) parser: ResponseParser,
    pub(super) served: u32,
}

impl VaultBackend {
    pub(super) fn headers(&self, target: Target, ep: usize) -> (String, Option<String>) {
        match (target, &self.cfg.auth) {
            (Target::Imds, VaultAuthConfig::Azure(a)) => {
                (format!("{}:{}", a.imds_host, a.imds_port), None)
            }
            _ => (
                self.cfg.endpoints[ep].to_string(),
                self.cfg.namespace.clone(),
            ),
        }
    }

    /// A request unanswered this long makes its node stalled: new requests go elsewhere.
    pub(super) fn stall_after(&self) -> Duration {
        (self.cfg.request_timeout / 2).min(Duration::from_secs(1))
    }

    /// Every link to a Vault node as [`pool`] sees it.
    pub(super) fn phases(&self) -> Vec<(LinkId, usize, pool::Phase)> {
        self.links
            .iter()
            .filter(|(_, l)| l.target == Target::Vault)
            .map(|(id, l)| {
                let phase = match (l.connected, l.busy) {
                    (false, _) => pool::Phase::Connecting,
                    (true, None) => pool::Phase::Idle,
                    (true, Some(_)) => pool::Phase::Busy { sent: l.sent },
                };
                (*id, l.ep, phase)
            })
            .collect()
    }

    pub(super) fn view<'a>(&'a self, links: &'a [(LinkId, usize, pool::Phase)]) -> pool::View<'a> {
        pool::View {
            breakers: &self.breakers,
            links,
            now: self.now.mono,
            stall_after: self.stall_after(),
            pool_size: self.cfg.max_links,
        }
    }

    /// Where the next Vault request goes ([`pool`] chooses among the nodes).
    pub(super) fn pick(&self) -> Pick {
        let links = self.phases();
        self.view(&links).pick()
    }

    pub(super) fn open(&mut self, target: Target, ep: usize) {
        let link = self.next_link;
        self.next_link += 1;
        let (host, port, security) = match (target, &self.cfg.auth) {
            (Target::Imds, VaultAuthConfig::Azure(a)) => {
                (a.imds_host.clone(), a.imds_port, LinkSecurity::Plain)
            }
            _ => {
                let e = &self.cfg.endpoints[ep];
                (e.host.clone(), e.port, self.cfg.security)
            }
        };
        self.links.insert(
            link,
            Link {
                target,
                ep,
                connected: false,
                busy: None,
                sent: self.now.mono,
                parser: ResponseParser::new(),
                served: 0,
            },
        );
        self.outputs.push_back(BackendOutput::Connect {
            link,
            host,
            port,
            security,
            connect_timeout: self.cfg.connect_timeout,
        });
    }

    pub(super) fn send(&mut self, link: LinkId, id: CallId) {
        let ep = self.links[&link].ep;
        let (host, ns) = self.headers(self.calls[&id].target, ep);
        let h = Headers {
            host: &host,
            namespace: ns.as_deref(),
        };
        let call = self.calls.get_mut(&id).expect("queued call exists");
        let bytes = if call.req.auth == Auth::Token {
            let t = self.token.as_ref().expect("checked valid");
            call.req.render(&h, Some(t.token.expose()))
        } else {
            call.req.render(&h, None)
        };
        call.answer_by = Some(self.now.mono + self.cfg.request_timeout);
        call.ep = Some(ep);
        self.queue.retain(|c| *c != id);
        let l = self.links.get_mut(&link).expect("idle link exists");
        l.busy = Some(id);
        l.sent = self.now.mono;
        l.parser.head_request = false;
        self.outputs.push_back(BackendOutput::Send { link, bytes });
    }

    /// Feeds a link event.
    pub fn handle_net(&mut self, now: Now, ev: NetEvent) {
        self.now = now;
        match ev {
            NetEvent::Connected { link } => {
                if let Some(l) = self.links.get_mut(&link) {
                    l.connected = true;
                }
            }
            NetEvent::Received { link, bytes } => {
                let Some(l) = self.links.get_mut(&link) else {
                    return;
                };
                l.parser.push(&bytes);
                while let Some(l) = self.links.get_mut(&link) {
                    match l.parser.next(false) {
                        Ok(Some(resp)) => {
                            l.served += 1;
                            let call = l.busy.take();
                            if resp.closes() || l.target == Target::Imds {
                                self.links.remove(&link);
                                self.outputs.push_back(BackendOutput::Close { link });
                            }
                            if let Some(c) = call {
                                self.complete(c, Ok(resp));
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let call = l.busy.take();
                            let (target, ep) = (l.target, l.ep);
                            self.links.remove(&link);
                            self.outputs.push_back(BackendOutput::Close { link });
                            if target == Target::Vault {
                                self.node_failed(ep, &format!("unreadable answer: {e}"));
                            }
                            if let Some(c) = call {
                                self.complete(c, Err(Failure::Lost(e.to_string())));
                            }
                            break;
                        }
                    }
                }
            }
            NetEvent::Closed { link, reason } => {
                let Some(mut l) = self.links.remove(&link) else {
                    return;
                };
                if let Some(c) = l.busy.take() {
                    match l.parser.next(true) {
                        Ok(Some(resp)) => self.complete(c, Ok(resp)),
                        _ => {
                            // A reused keep-alive link may have been closed by Vault while idle:
                            // send once more on a fresh link.
                            // Vault may have carried the request out before the link broke:
                            // never send a state-changing one twice (a rotation would make
                            // two versions).
                            let retry = l.served > 0
                                && self.calls.get(&c).is_some_and(|c| {
                                    !c.retried
                                        && !matches!(
                                            c.kind,
                                            CallKind::Rotate { .. } | CallKind::CreateKey { .. }
                                        )
                                });
                            if retry {
                                if let Some(call) = self.calls.get_mut(&c) {
                                    call.retried = true;
                                    call.answer_by = None;
                                }
                                self.queue.push_front(c);
                            } else {
                                if l.target == Target::Vault {
                                    self.node_failed(l.ep, &format!("connection lost: {reason}"));
                                }
                                self.complete(
                                    c,
                                    Err(Failure::Lost(format!("connection closed: {reason}"))),
                                );
                            }
                        }
                    }
                } else if !l.connected {
                    self.connect_failed(l.target, l.ep, &reason);
                }
            }
        }
        self.dispatch();
    }

    pub(super) fn connect_failed(&mut self, target: Target, ep: usize, reason: &str) {
        if target == Target::Vault {
            // Queued calls stay queued: the next node takes them, or none is left.
            self.node_failed(ep, &format!("cannot connect: {reason}"));
            return;
        }
        if self
            .links
            .values()
            .any(|l| l.target == target && l.connected)
        {
            return;
        }
        let where_ = "the Azure IMDS";
        self.log(Level::Warn, format!("cannot reach {where_}: {reason}"));
        let ids: Vec<CallId> = self
            .queue
            .iter()
            .copied()
            .filter(|c| self.calls.get(c).is_some_and(|c| c.target == target))
            .collect();
        for c in ids {
            self.queue.retain(|q| *q != c);
            self.complete(
                c,
                Err(Failure::Lost(format!("cannot reach {where_}: {reason}"))),
            );
        }
    }
}
