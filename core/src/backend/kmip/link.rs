//! Links to the HSM endpoints: connecting, framing answers, timeouts, breakers, and which link
//! a job goes on.
use super::*;
use crate::backend::pool;

#[derive(Debug)]
pub(super) enum LinkState {
    Connecting { since: Instant },
    Idle,
    Busy { job: JobId, sent: Instant },
}

pub(super) struct Link {
    pub(super) ep: usize,
    pub(super) state: LinkState,
    pub(super) buf: Vec<u8>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

impl KmipBackend {
    pub(super) fn stall_after(&self) -> Duration {
        (self.cfg.request_timeout / 2).min(Duration::from_secs(1))
    }

    pub(super) fn connect(&mut self, ep: usize) -> LinkId {
        let link = self.next_link;
        self.next_link += 1;
        self.links.insert(
            link,
            Link {
                ep,
                state: LinkState::Connecting { since: self.now },
                buf: Vec::new(),
            },
        );
        let e = &self.cfg.endpoints[ep];
        self.outputs.push_back(BackendOutput::Connect {
            link,
            host: e.host.clone(),
            port: e.port,
            security: LinkSecurity::KmipTls,
            connect_timeout: self.cfg.connect_timeout,
        });
        link
    }

    /// Feeds an event on one of the backend's links.
    pub fn handle_net(&mut self, now: Now, event: NetEvent, rng: &mut Drbg) {
        self.now = self.now.max(now.mono);
        match event {
            NetEvent::Connected { link } => {
                if let Some(l) = self.links.get_mut(&link) {
                    if matches!(l.state, LinkState::Connecting { .. }) {
                        l.state = LinkState::Idle;
                    }
                }
            }
            NetEvent::Closed { link, reason } => self.link_lost(link, &reason),
            NetEvent::Received { link, bytes } => self.received(link, bytes, rng),
        }
        self.pump(rng);
    }

    pub(super) fn endpoint_failed(&mut self, ep: usize, why: &str) {
        let pool::Trip {
            pause,
            was_open,
            failures,
        } = self.eps[ep].trip(self.now);
        // Idle links of a failing endpoint are not trusted either: a new connection probes it.
        let idle: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, l)| l.ep == ep && matches!(l.state, LinkState::Idle))
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            self.links.remove(&id);
            self.outputs.push_back(BackendOutput::Close { link: id });
        }
        if !was_open {
            let ep_name = self.cfg.endpoints[ep].to_string();
            self.log(
                Level::Warn,
                format!(
                    "kmip: HSM {ep_name} failed ({why}); circuit open for {} ms (failure {failures})",
                    pause.as_millis()
                ),
            );
        }
    }

    pub(super) fn link_lost(&mut self, link: LinkId, reason: &str) {
        let Some(l) = self.links.remove(&link) else {
            return;
        };
        let ep = l.ep;
        match l.state {
            LinkState::Idle => {}
            LinkState::Connecting { .. } => {
                self.endpoint_failed(ep, &format!("connect: {reason}"));
            }
            LinkState::Busy { job, .. } => {
                self.endpoint_failed(ep, &format!("link lost: {reason}"));
                self.job_link_failed(job, &format!("connection to HSM lost ({reason})"));
            }
        }
    }

    /// A job's request was lost with its link: retry idempotent work once, else fail it.
    pub(super) fn job_link_failed(&mut self, id: JobId, why: &str) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let limit = if job.owner.is_some() {
            1
        } else {
            INTERNAL_RETRIES
        };
        if job.idempotent() && job.retries < limit {
            job.retries += 1;
            job.sent = None;
            if job.owner.is_some() {
                self.queue.push_front(id);
            } else {
                self.control.push_front(id);
            }
            return;
        }
        self.fail_job(id, unavailable(why.to_owned(), BREAKER_BASE));
    }

    pub(super) fn received(&mut self, link: LinkId, bytes: Vec<u8>, rng: &mut Drbg) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        l.buf.extend_from_slice(&bytes);
        let mut bytes = bytes;
        bytes.zeroize();
        loop {
            let l = self.links.get_mut(&link).expect("link");
            let n = match ttlv::frame_len(&l.buf, &Limits::DEFAULT) {
                Ok(Some(n)) if l.buf.len() >= n => n,
                Ok(_) => return,
                Err(e) => {
                    self.protocol_error(link, &format!("malformed TTLV from the HSM: {e}"));
                    return;
                }
            };
            let mut frame: Vec<u8> = l.buf.drain(..n).collect();
            let parsed = ttlv::decode_with(&frame, &Limits::DEFAULT);
            frame.zeroize();
            let item = match parsed {
                Ok(i) => i,
                Err(e) => {
                    self.protocol_error(link, &format!("malformed TTLV from the HSM: {e}"));
                    return;
                }
            };
            let LinkState::Busy { job, .. } = l.state else {
                self.protocol_error(link, "the HSM sent a message nobody asked for");
                return;
            };
            let resp = match messages::parse_response(&item) {
                Ok(r) => r,
                Err(e) => {
                    self.protocol_error(link, &e.to_string());
                    return;
                }
            };
            l.state = LinkState::Idle;
            let ep = l.ep;
            let Some(first) = resp.items.into_iter().next() else {
                self.fail_job(
                    job,
                    BackendError::Failed("the HSM answered with no batch item".into()),
                );
                continue;
            };
            if first.is_success() {
                self.eps[ep].reset();
            }
            self.advance(job, first, rng);
        }
    }

    pub(super) fn protocol_error(&mut self, link: LinkId, why: &str) {
        if let Some(l) = self.links.remove(&link) {
            self.outputs.push_back(BackendOutput::Close { link });
            self.endpoint_failed(l.ep, why);
            if let LinkState::Busy { job, .. } = l.state {
                self.fail_job(job, BackendError::Failed(why.to_owned()));
            }
        }
    }

    /// Lets deadlines up to `now` fire.
    pub fn handle_timeout(&mut self, now: Now, rng: &mut Drbg) {
        self.now = self.now.max(now.mono);
        let t = self.now;
        let rt = self.cfg.request_timeout;
        let ct = self.cfg.connect_timeout + Duration::from_secs(1);
        let expired: Vec<(LinkId, Option<JobId>)> = self
            .links
            .iter()
            .filter_map(|(id, l)| match l.state {
                LinkState::Busy { job, sent } if sent + rt <= t => Some((*id, Some(job))),
                LinkState::Connecting { since } if since + ct <= t => Some((*id, None)),
                _ => None,
            })
            .collect();
        for (id, job) in expired {
            let l = self.links.remove(&id).expect("link");
            self.outputs.push_back(BackendOutput::Close { link: id });
            match job {
                Some(job) => {
                    self.endpoint_failed(l.ep, "request timed out");
                    if self.jobs.get(&job).is_some_and(|j| j.owner.is_none()) {
                        self.job_link_failed(job, "HSM request timed out");
                    } else {
                        self.fail_job(job, BackendError::Timeout);
                    }
                }
                None => self.endpoint_failed(l.ep, "connect timed out"),
            }
        }
        let late: Vec<JobId> = self
            .queue
            .iter()
            .copied()
            .filter(|id| self.jobs.get(id).is_some_and(|j| j.queued_at + rt <= t))
            .collect();
        for id in late {
            self.queue.retain(|j| *j != id);
            self.fail_job(
                id,
                unavailable(
                    "no HSM link became free within the request timeout",
                    BREAKER_BASE,
                ),
            );
        }
        if let Phase::NotReady { retry_at, .. } = self.phase {
            if retry_at <= t {
                self.begin_start();
            }
        }
        if self.phase == Phase::Ready && self.refresh_at.is_some_and(|r| r <= t) {
            self.refresh_at = Some(t + REFRESH_EVERY);
            for key in self.cfg.keys.clone() {
                self.add_job(None, Task::Refresh { key }, true);
            }
        }
        self.pump(rng);
    }

    /// When the backend next needs [`KmipBackend::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        let now = self.now;
        let stall = self.stall_after();
        let mut times: Vec<Instant> = Vec::new();
        for l in self.links.values() {
            match l.state {
                LinkState::Busy { sent, .. } => {
                    times.push(sent + stall);
                    times.push(sent + self.cfg.request_timeout);
                }
                LinkState::Connecting { since } => {
                    times.push(since + self.cfg.connect_timeout + Duration::from_secs(1))
                }
                LinkState::Idle => {}
            }
        }
        times.extend(self.eps.iter().filter_map(|e| e.open_until()));
        times.extend(
            self.queue
                .iter()
                .filter_map(|id| self.jobs.get(id))
                .map(|j| j.queued_at + self.cfg.request_timeout),
        );
        if let Phase::NotReady { retry_at, .. } = self.phase {
            times.push(retry_at);
        }
        if self.phase == Phase::Ready {
            times.extend(self.refresh_at);
        }
        times.into_iter().filter(|t| *t > now).min()
    }

    /// Every link as [`pool`] sees it.
    pub(super) fn phases(&self) -> Vec<(LinkId, usize, pool::Phase)> {
        self.links
            .iter()
            .map(|(id, l)| {
                let phase = match l.state {
                    LinkState::Connecting { .. } => pool::Phase::Connecting,
                    LinkState::Idle => pool::Phase::Idle,
                    LinkState::Busy { sent, .. } => pool::Phase::Busy { sent },
                };
                (*id, l.ep, phase)
            })
            .collect()
    }

    pub(super) fn view<'a>(&'a self, links: &'a [(LinkId, usize, pool::Phase)]) -> pool::View<'a> {
        pool::View {
            breakers: &self.eps,
            links,
            now: self.now,
            stall_after: self.stall_after(),
            pool_size: self.cfg.pool_size,
        }
    }

    /// An idle link to send on; `Err(true)` to wait (a link is coming), `Err(false)` if none can
    /// ([`pool`] chooses).
    pub(super) fn pick_link(&mut self) -> Result<LinkId, bool> {
        let links = self.phases();
        let pick = self.view(&links).pick();
        match pick {
            Pick::Send(id) => Ok(id),
            Pick::Connect(ep) => {
                self.connect(ep);
                Err(true)
            }
            Pick::Wait => Err(true),
            Pick::Nowhere => Err(false),
        }
    }

    pub(super) fn pump(&mut self, rng: &mut Drbg) {
        loop {
            let from_control = !self.control.is_empty();
            if !from_control && (self.phase != Phase::Ready || self.queue.is_empty()) {
                return;
            }
            match self.pick_link() {
                Ok(link) => {
                    let id = if from_control {
                        self.control.pop_front()
                    } else {
                        self.queue.pop_front()
                    }
                    .expect("non-empty");
                    self.dispatch(id, link, rng);
                }
                Err(true) => return,
                Err(false) => {
                    let retry = self
                        .eps
                        .iter()
                        .filter_map(|e| e.open_until())
                        .min()
                        .map_or(BREAKER_BASE, |t| t.saturating_since(self.now));
                    if from_control && self.phase == Phase::Ready {
                        // A refresh with nowhere to go: skip it, the next one will run.
                        for id in self.control.drain(..).collect::<Vec<_>>() {
                            self.jobs.remove(&id);
                        }
                    } else if from_control {
                        self.start_failed("no HSM endpoint reachable".into());
                    }
                    let waiting: Vec<JobId> = self.queue.drain(..).collect();
                    for id in waiting {
                        self.fail_job(id, unavailable("no HSM endpoint reachable", retry));
                    }
                    return;
                }
            }
        }
    }

    pub(super) fn dispatch(&mut self, id: JobId, link: LinkId, rng: &mut Drbg) {
        let mut req = match self.build(id, rng) {
            Ok(r) => r,
            Err(e) => {
                self.fail_job(id, e);
                return;
            }
        };
        let l = self.links.get_mut(&link).expect("idle link");
        l.state = LinkState::Busy {
            job: id,
            sent: self.now,
        };
        req.credential = self.cfg.credential.clone();
        self.outputs.push_back(BackendOutput::Send {
            link,
            bytes: req.encode(),
        });
    }
}
