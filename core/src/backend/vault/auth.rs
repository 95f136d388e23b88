//! The Vault token: lookup, renewal before expiry, and the Azure managed-identity login.

use super::*;

pub(super) struct Token {
    pub(super) token: Secret<String>,
    /// lookup-self or a login confirmed it.
    pub(super) verified: bool,
    /// `None`: never expires.
    pub(super) expires: Option<Instant>,
    pub(super) renew_at: Option<Instant>,
    pub(super) can_renew: bool,
}

impl VaultBackend {
    pub(super) fn token_valid(&self) -> bool {
        self.token
            .as_ref()
            .is_some_and(|t| t.verified && t.expires.is_none_or(|e| self.now.mono < e))
    }

    pub(super) fn may_send(&self, call: &Call) -> bool {
        match call.req.auth {
            Auth::Token if matches!(call.kind, CallKind::Lookup) => self
                .token
                .as_ref()
                .is_some_and(|t| !t.verified || t.expires.is_none_or(|e| self.now.mono < e)),
            // The simulator's test that it has teeth builds core with this planted bug.
            Auth::Token
                if cfg!(feature = "planted-bug-renew-after-expiry")
                    && matches!(call.kind, CallKind::Renew) =>
            {
                true
            }
            Auth::Token => self.token_valid(),
            _ => true,
        }
    }

    /// Time left on the token held (`None`: no token, or one that never expires).
    pub fn token_expires_in(&self) -> Option<Duration> {
        let expires = self.token.as_ref()?.expires?;
        Some(expires.saturating_since(self.now.mono))
    }

    pub(super) fn begin_auth(&mut self) {
        if self.auth_busy {
            return;
        }
        self.auth_busy = true;
        match &self.cfg.auth {
            VaultAuthConfig::Token(t) => {
                if self.token.is_none() {
                    self.token = Some(Token {
                        token: t.clone(),
                        verified: false,
                        expires: None,
                        renew_at: None,
                        can_renew: false,
                    });
                }
                self.push_call(vault::lookup_self(), CallKind::Lookup, Target::Vault, true);
            }
            VaultAuthConfig::Azure(a) => {
                let req = vault::imds_token(&a.resource);
                self.push_call(req, CallKind::ImdsToken, Target::Imds, false);
            }
        }
    }

    /// The token life cycle: a new login, a renewal or the expiry warning, when due.
    pub(super) fn token_due(&mut self, now: Now) {
        if let Some(t) = &self.token {
            if !self.auth_busy {
                if let Some(e) = t.expires {
                    if now.mono >= e
                        && t.renew_at.is_none()
                        && !matches!(self.cfg.auth, VaultAuthConfig::Token(_))
                    {
                        // Azure token ran out: log in again.
                        self.token = None;
                        self.begin_auth();
                    }
                }
            }
        }
        if let Some(t) = &self.token {
            if t.renew_at.is_some_and(|r| r <= now.mono) && !self.auth_busy && t.can_renew {
                if let Some(t) = self.token.as_mut() {
                    t.renew_at = None;
                }
                self.auth_busy = true;
                self.push_call(vault::renew_self(), CallKind::Renew, Target::Vault, true);
            }
        }
        if let Some(t) = &self.token {
            if let Some(e) = t.expires {
                if !t.can_renew
                    && now.mono + self.cfg.renew_before >= e
                    && !self.warned_expiry
                    && self.healthy
                {
                    self.warned_expiry = true;
                    let left = e.saturating_since(now.mono).as_secs();
                    self.log(Level::Error, format!("VAULT TOKEN EXPIRES IN {left}s AND CANNOT BE RENEWED: readiness now fails; give keybroker a new token (VAULT_TOKEN/BAO_TOKEN or keybroker.vault.token-file) and restart"));
                }
            }
        }
        if self.auth_retry_at.is_some_and(|r| r <= now.mono) {
            self.auth_retry_at = None;
            if matches!(self.cfg.auth, VaultAuthConfig::Azure(_)) && self.token.is_none() {
                self.begin_auth();
            } else if !self.auth_busy {
                self.auth_busy = true;
                self.push_call(vault::lookup_self(), CallKind::Lookup, Target::Vault, true);
            }
        }
    }

    pub(super) fn set_token(&mut self, token: Secret<String>, lease_secs: u64, renewable: bool) {
        // The lease runs from when Vault answered, which is no later than when the request
        // went out: counting from the answer's arrival would stretch the token past its
        // real expiry by the round trip (seconds, with a slow Vault).
        let now = self.auth_sent.take().unwrap_or(self.now.mono);
        let expires = (lease_secs > 0).then(|| now + Duration::from_secs(lease_secs));
        let renew_at = match (expires, renewable) {
            (Some(_), true) => {
                let lease = Duration::from_secs(lease_secs);
                let before = self.cfg.renew_before;
                Some(if cfg!(feature = "planted-bug-renew-after-expiry") {
                    now + lease
                } else if before < lease {
                    now + (lease - before)
                } else {
                    now + lease / 2
                })
            }
            _ => None,
        };
        self.token = Some(Token {
            token,
            verified: true,
            expires,
            renew_at,
            can_renew: renewable && expires.is_some(),
        });
    }

    pub(super) fn no_longer_renewable(&mut self, why: &str) {
        match &self.cfg.auth {
            VaultAuthConfig::Azure(_) => {
                self.log(
                    Level::Warn,
                    format!("Vault token cannot be renewed ({why}): logging in again"),
                );
                self.begin_auth();
            }
            VaultAuthConfig::Token(_) => {
                let left = self
                    .token
                    .as_ref()
                    .and_then(|t| t.expires)
                    .map(|e| e.saturating_since(self.now.mono).as_secs())
                    .unwrap_or(0);
                self.log(Level::Error, format!("VAULT TOKEN CANNOT BE RENEWED ({why}); it expires in {left}s, and readiness fails {}s before that", self.cfg.renew_before.as_secs()));
                if let Some(t) = self.token.as_mut() {
                    t.can_renew = false;
                    t.renew_at = None;
                }
            }
        }
    }

    /// Vault answered the token's lookup-self.
    pub(super) fn looked_up(&mut self, resp: &HttpResponse, ok: bool) {
        self.auth_busy = false;
        if ok {
            match vault::parse_lookup(&resp.body) {
                Ok((ttl, renewable)) => {
                    let tok = self.token.as_ref().map(|t| t.token.clone());
                    if let Some(tok) = tok {
                        let first = self.token.as_ref().is_some_and(|t| !t.verified);
                        self.set_token(tok, ttl, renewable);
                        if first {
                            self.log(
                                Level::Info,
                                format!(
                                    "Vault token accepted: ttl {}, renewable {renewable}",
                                    if ttl == 0 {
                                        "none".to_string()
                                    } else {
                                        format!("{ttl}s")
                                    }
                                ),
                            );
                        }
                        if ttl > 0 && !renewable && first {
                            self.no_longer_renewable("it is not renewable");
                        }
                    }
                }
                Err(why) => self.log(Level::Error, format!("Vault token lookup: {why}")),
            }
        } else if resp.status == 403 {
            self.log(Level::Error, "VAULT TOKEN REJECTED: auth/token/lookup-self answered permission denied (token invalid, expired or revoked); readiness fails".into());
            self.token = None;
        } else {
            self.auth_retry_at = Some(self.now.mono + RETRY_AFTER);
        }
    }

    /// Vault answered the token's renewal.
    pub(super) fn renewed(&mut self, resp: &HttpResponse, ok: bool) {
        self.auth_busy = false;
        if ok {
            match vault::parse_auth(&resp.body) {
                Ok(g)
                    if g.lease_secs == 0
                        && self.token.as_ref().is_some_and(|t| t.expires.is_some()) =>
                {
                    // A renewal that grants no time (the max TTL is used up) is not a
                    // token that never expires: it still ends when it did.
                    self.no_longer_renewable("its max TTL is reached");
                }
                Ok(g) => {
                    let prev = self.token.as_ref().and_then(|t| t.expires);
                    self.set_token(g.token, g.lease_secs, g.renewable);
                    let new = self.token.as_ref().and_then(|t| t.expires);
                    if g.lease_secs > 0
                        && (g.lease_secs <= self.cfg.renew_before.as_secs() || new <= prev)
                    {
                        self.no_longer_renewable("its max TTL is reached");
                    }
                }
                Err(why) => self.no_longer_renewable(&why),
            }
        } else if resp.status == 503 || resp.status == 429 {
            if let Some(t) = self.token.as_mut() {
                t.renew_at = Some(self.now.mono + RETRY_AFTER);
            }
        } else {
            let why = vault::errors(&resp.body);
            self.no_longer_renewable(&why);
        }
    }

    /// The Azure IMDS answered the managed-identity token request.
    pub(super) fn imds_token_answered(&mut self, resp: &HttpResponse, ok: bool) {
        if ok {
            match vault::parse_imds_token(&resp.body) {
                Ok((jwt, _)) => {
                    self.push_call(
                        vault::imds_instance(),
                        CallKind::ImdsInstance { jwt },
                        Target::Imds,
                        true,
                    );
                }
                Err(why) => self.auth_failed(&why),
            }
        } else {
            let why = format!("IMDS token request answered {}", resp.status);
            self.auth_failed(&why);
        }
    }

    /// The Azure IMDS answered the instance metadata request.
    pub(super) fn imds_instance_answered(
        &mut self,
        resp: &HttpResponse,
        ok: bool,
        jwt: Secret<String>,
    ) {
        let meta = if ok {
            vault::parse_imds_instance(&resp.body)
        } else {
            Err(format!("IMDS instance request answered {}", resp.status))
        };
        match (meta, &self.cfg.auth) {
            (Ok(meta), VaultAuthConfig::Azure(a)) => {
                let req = vault::azure_login(&a.path, &a.role, jwt.expose(), &meta);
                self.push_call(req, CallKind::Login, Target::Vault, true);
            }
            (Err(why), _) => self.auth_failed(&why),
            _ => {}
        }
    }

    /// Vault answered the Azure login.
    pub(super) fn logged_in(&mut self, resp: &HttpResponse, ok: bool) {
        self.auth_busy = false;
        let grant = if ok {
            vault::parse_auth(&resp.body)
        } else {
            Err(format!("{} {}", resp.status, vault::errors(&resp.body)))
        };
        match grant {
            Ok(g) => {
                let lease = g.lease_secs;
                self.set_token(g.token, lease, g.renewable);
                self.log(
                    Level::Info,
                    format!("logged in to Vault with Azure managed identity: lease {lease}s"),
                );
            }
            Err(why) => {
                self.auth_busy = true;
                self.auth_failed(&format!("Vault login refused: {why}"));
            }
        }
    }

    pub(super) fn auth_failed(&mut self, why: &str) {
        self.auth_busy = false;
        self.log(
            Level::Error,
            format!(
                "Azure login to Vault failed: {why}; retrying in {}s",
                RETRY_AFTER.as_secs()
            ),
        );
        self.auth_retry_at = Some(self.now.mono + RETRY_AFTER);
        if !self.token_valid() {
            self.token = None;
        }
    }
}
