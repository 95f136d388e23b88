//! What each answer may be: the roles of docs/api.md restated independently of the core's
//! authorization, the plaintext every genuine token must give back, and the shape of errors
//! (a 4xx, or a 5xx with `Retry-After`). Answers are framed by the core's own HTTP response
//! parser, the one its backend links use.
use crate::workload::{Expect, Role};
use crate::{Failure, World};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use keybroker_core::vault::http::HttpResponse;
use keybroker_core::ConnId;

impl World {
    /// Takes every whole answer the client `id` has received and judges it.
    pub(crate) fn parse_answers(&mut self, id: ConnId) -> Result<(), Failure> {
        loop {
            let c = self.conns.get_mut(&id).expect("live");
            let resp = match c.inbox.next(false) {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.fail(format!("connection {id}: {e}"))),
            };
            if matches!(c.role, Role::Stranger | Role::NoCert) {
                c.refused_answered = true;
            }
            self.answers += 1;
            self.check_answer(id, &resp)?;
        }
    }

    fn check_answer(&mut self, id: ConnId, resp: &HttpResponse) -> Result<(), Failure> {
        let status = resp.status;
        let rid = resp.header("x-request-id").unwrap_or("").to_owned();
        let body = &resp.body;
        if status >= 500 && resp.header("retry-after").is_none() {
            return Err(self.fail(format!(
                "connection {id}: {status} without Retry-After (request {rid:?})"
            )));
        }
        if !(200..600).contains(&status) || (300..400).contains(&status) || status == 201 {
            return Err(self.fail(format!("connection {id}: status {status}")));
        }
        let now = self.now;
        let c = self.conns.get_mut(&id).expect("live");
        let role = c.role;
        let front_matches = c.pending.front().is_some_and(|p| p.rid == rid);
        if !front_matches {
            // An answer to no request we sent in order: only an error on a broken stream or
            // for a request that never fully arrived (408).
            let partial = c.pending.front().is_some_and(|p| p.accepted.is_none());
            // Duplicated bytes make a broken stream repeat requests: anything goes there.
            if c.chaos || (status >= 400 && (partial || c.pending.is_empty())) {
                return Ok(());
            }
            let expected = c.pending.front().map(|p| p.rid.clone());
            return Err(self.fail(format!(
                "connection {id}: answer {status} for request id {rid:?}, expected {expected:?} (out of order or unasked)"
            )));
        }
        let chaos = c.chaos;
        let p = c.pending.pop_front().expect("front");
        if status != 200 {
            let must_succeed = match &p.expect {
                Expect::Encrypt { .. } | Expect::Generate { .. } => {
                    matches!(role, Role::Backend | Role::Device)
                }
                Expect::Unwrap {
                    truth: Some((_, tctx)),
                    ctx,
                    rewrap,
                } => (role == Role::Backend || (role == Role::Device && !rewrap)) && tctx == ctx,
                _ => false,
            };
            if !must_succeed || chaos {
                return Ok(());
            }
            let what = format!(
                "connection {id}: well-formed {} by {role:?} answered {status} ({})",
                p.expect.name(),
                String::from_utf8_lossy(body)
            );
            // The backend may be unavailable (5xx with Retry-After), never wrong about the
            // request (4xx) — unless a peer answered with errors around that time.
            if status < 500 && !self.peers.errors_since(p.accepted.unwrap_or(now)) {
                return Err(self.fail(what));
            }
            if status >= 500 {
                if let Some(why) = crate::checker::failover_required(self, p.accepted, now) {
                    return Err(self.fail(format!("{what}: {why}")));
                }
            }
            return Ok(());
        }
        if chaos {
            // Duplicated bytes can splice one request's headers onto another's body (a
            // request id with someone else's ciphertext): a success there cannot be
            // attributed, so it is neither judged nor remembered.
            return Ok(());
        }
        // The roles of docs/api.md's table, restated independently of core's authz.
        let allowed = matches!(
            (&p.expect, role),
            (_, Role::Backend)
                | (
                    Expect::Encrypt { .. }
                        | Expect::Generate { .. }
                        | Expect::Untracked
                        | Expect::Unwrap { rewrap: false, .. },
                    Role::Device,
                )
        );
        if !allowed {
            return Err(self.fail(format!(
                "connection {id}: 200 for {} by role {role:?}",
                p.expect.name()
            )));
        }
        let v: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| self.fail(format!("connection {id}: 200 with a non-JSON body: {e}")))?;
        let b64 = |v: &serde_json::Value| {
            v.as_str()
                .and_then(|s| B64.decode(s).ok())
                .unwrap_or_default()
        };
        match p.expect {
            Expect::Encrypt { pt, ctx } => {
                let t = v["ciphertext"].as_str().unwrap_or_default().to_owned();
                self.tokens.insert(t, (pt, ctx));
            }
            Expect::Generate { ctx } => {
                let t = v["ciphertext"].as_str().unwrap_or_default().to_owned();
                self.tokens.insert(t, (b64(&v["plaintext"]), ctx));
            }
            Expect::Unwrap { rewrap, ctx, truth } => {
                let Some((tpt, tctx)) = truth else {
                    return Err(self.fail(format!(
                        "connection {id}: a forged ciphertext was accepted (200)"
                    )));
                };
                if tctx != ctx {
                    return Err(self.fail(format!(
                        "connection {id}: {} succeeded under a different context than encryption's",
                        if rewrap { "rewrap" } else { "decrypt" }
                    )));
                }
                if rewrap {
                    let t = v["ciphertext"].as_str().unwrap_or_default().to_owned();
                    self.tokens.insert(t, (tpt, tctx));
                } else if b64(&v["plaintext"]) != tpt {
                    return Err(self.fail(format!(
                        "connection {id}: decrypt returned other bytes than were encrypted"
                    )));
                }
            }
            Expect::Rotate | Expect::Describe | Expect::Untracked => {}
        }
        Ok(())
    }
}

impl Expect {
    /// The operation's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Expect::Encrypt { .. } => "encrypt",
            Expect::Generate { .. } => "generate",
            Expect::Unwrap { rewrap: true, .. } => "rewrap",
            Expect::Unwrap { .. } => "decrypt",
            Expect::Rotate => "rotate",
            Expect::Describe => "describe",
            Expect::Untracked => "encrypt (other key)",
        }
    }
}
