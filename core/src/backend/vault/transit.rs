//! Transit work: encrypts and decrypts held until the key version is known, sent in batches,
//! and their answers (a rewrap's decrypt becomes an encrypt).

use super::*;

pub(super) type PendingEnc = (Instant, EncItem, Secret<Vec<u8>>);

pub(super) type PendingDec = (Instant, DecItem, String, Vec<u8>);

pub(super) enum Work {
    Encrypt(OpId, Wrap),
    Decrypt(OpId, Unwrap),
    Rotate { op: OpId, key: String },
    Describe { op: OpId, key: String },
}

pub(super) struct EncItem {
    pub(super) op: OpId,
    pub(super) key: String,
    pub(super) version: u32,
    pub(super) context: Vec<u8>,
    pub(super) generated: Option<Secret<Vec<u8>>>,
}

pub(super) struct DecItem {
    pub(super) op: OpId,
    pub(super) key: String,
    pub(super) version: u32,
    pub(super) context: Vec<u8>,
    pub(super) rewrap: bool,
}

impl VaultBackend {
    /// Holds submitted work until the next flush, at most the request timeout.
    pub(super) fn hold(&mut self, work: Work) {
        let until = self.now.mono + self.cfg.request_timeout;
        self.fresh.push_back((until, work));
    }

    /// Turns submitted work into (batched) calls; called before outputs are drained.
    pub(super) fn flush(&mut self) {
        let mut enc: BTreeMap<(String, u32), Vec<PendingEnc>> = BTreeMap::new();
        let mut dec: BTreeMap<String, Vec<PendingDec>> = BTreeMap::new();
        let mut keep = VecDeque::new();
        let fresh = std::mem::take(&mut self.fresh);
        for (until, w) in fresh {
            match w {
                Work::Encrypt(
                    op,
                    Wrap {
                        key,
                        plaintext,
                        context,
                        generated,
                    },
                ) => {
                    let Some(&version) = self.versions.get(&key) else {
                        if until <= self.now.mono {
                            self.replies.push_back((op, Err(BackendError::Timeout)));
                        } else {
                            if !self.reading.contains(&key) {
                                self.read_key(key.clone(), None, false);
                            }
                            keep.push_back((
                                until,
                                Work::Encrypt(
                                    op,
                                    Wrap {
                                        key,
                                        plaintext,
                                        context,
                                        generated,
                                    },
                                ),
                            ));
                        }
                        continue;
                    };
                    let item = EncItem {
                        op,
                        key: key.clone(),
                        version,
                        context,
                        generated: generated.then(|| plaintext.clone()),
                    };
                    enc.entry((key, version))
                        .or_default()
                        .push((until, item, plaintext));
                }
                Work::Decrypt(
                    op,
                    Unwrap {
                        key,
                        envelope,
                        context,
                        rewrap,
                    },
                ) => {
                    if let Some(&min) = self
                        .min_versions
                        .get(&key)
                        .filter(|m| envelope.key_version < **m)
                    {
                        self.replies.push_back((
                            op,
                            Err(BackendError::VersionRetired {
                                key,
                                version: envelope.key_version,
                                min: Some(min),
                            }),
                        ));
                        continue;
                    }
                    let ct = match std::str::from_utf8(&envelope.reference) {
                        Ok(ct) if vault::ciphertext_version(ct) == Some(envelope.key_version) => {
                            ct.to_owned()
                        }
                        _ => {
                            self.replies.push_back((op, Err(bad_ciphertext())));
                            continue;
                        }
                    };
                    let aad =
                        Envelope::aad(BackendKind::Vault, &key, envelope.key_version, &context);
                    dec.entry(key.clone()).or_default().push((
                        until,
                        DecItem {
                            op,
                            key,
                            version: envelope.key_version,
                            context,
                            rewrap,
                        },
                        ct,
                        aad,
                    ));
                }
                Work::Rotate { op, key } => {
                    let req = vault::rotate_key(&self.cfg.mount, &key);
                    self.push_call(req, CallKind::Rotate { key, op }, Target::Vault, false);
                }
                Work::Describe { op, key } => self.read_key(key, Some(op), false),
            }
        }
        self.fresh = keep;
        for ((key, version), items) in enc {
            for chunk in items.chunks(MAX_BATCH) {
                let aads: Vec<Vec<u8>> = chunk
                    .iter()
                    .map(|(_, i, _)| Envelope::aad(BackendKind::Vault, &key, version, &i.context))
                    .collect();
                let reqs: Vec<EncryptItem<'_>> = chunk
                    .iter()
                    .zip(&aads)
                    .map(|((_, _, pt), aad)| EncryptItem {
                        plaintext: pt.expose(),
                        aad,
                    })
                    .collect();
                let req = vault::encrypt(&self.cfg.mount, &key, version, &reqs);
                let until = chunk.iter().map(|c| c.0).min().unwrap_or(self.now.mono);
                let _ = until;
                let kind = CallKind::Encrypt(
                    chunk
                        .iter()
                        .map(|(_, i, _)| EncItem {
                            op: i.op,
                            key: i.key.clone(),
                            version: i.version,
                            context: i.context.clone(),
                            generated: i.generated.clone(),
                        })
                        .collect(),
                );
                self.push_call(req, kind, Target::Vault, false);
            }
        }
        for (key, items) in dec {
            for chunk in items.chunks(MAX_BATCH) {
                let reqs: Vec<DecryptItem<'_>> = chunk
                    .iter()
                    .map(|(_, _, ct, aad)| DecryptItem {
                        ciphertext: ct,
                        aad,
                    })
                    .collect();
                let req = vault::decrypt(&self.cfg.mount, &key, &reqs);
                let kind = CallKind::Decrypt(
                    chunk
                        .iter()
                        .map(|(_, i, _, _)| DecItem {
                            op: i.op,
                            key: i.key.clone(),
                            version: i.version,
                            context: i.context.clone(),
                            rewrap: i.rewrap,
                        })
                        .collect(),
                );
                self.push_call(req, kind, Target::Vault, false);
            }
        }
    }

    /// Encrypts held for `key`'s version cannot proceed: they fail with `e`.
    pub(super) fn fail_held_encrypts(&mut self, key: &str, e: &BackendError) {
        let fresh = std::mem::take(&mut self.fresh);
        for (u, w) in fresh {
            match w {
                Work::Encrypt(op, w) if w.key == key => {
                    self.replies.push_back((op, Err(e.clone())))
                }
                w => self.fresh.push_back((u, w)),
            }
        }
    }

    /// Work held for a key version or a flush past its deadline answers 504.
    pub(super) fn expire_held(&mut self, now: Now) {
        let fresh = std::mem::take(&mut self.fresh);
        for (until, w) in fresh {
            if until <= now.mono {
                let op = match &w {
                    Work::Encrypt(op, _) | Work::Decrypt(op, _) => *op,
                    Work::Rotate { op, .. } | Work::Describe { op, .. } => *op,
                };
                self.replies.push_back((op, Err(BackendError::Timeout)));
            } else {
                self.fresh.push_back((until, w));
            }
        }
    }

    /// Vault answered a batch of encrypts: each item's token, or why not.
    pub(super) fn encrypted(
        &mut self,
        req: &VaultRequest,
        resp: &HttpResponse,
        ok: bool,
        items: Vec<EncItem>,
    ) {
        let key = items.first().map(|i| i.key.clone()).unwrap_or_default();
        if !(ok || partial_batch_failure(resp, items.len())) {
            let e = self.map_error(req, resp, false, &key);
            return self.fail_ops(items.iter().map(|i| i.op).collect(), e);
        }
        match vault::parse_encrypt(&resp.body, items.len()) {
            Err(why) => self.fail_ops(
                items.iter().map(|i| i.op).collect(),
                BackendError::Failed(why),
            ),
            Ok(results) => {
                for (item, r) in items.into_iter().zip(results) {
                    let reply = match r {
                        Ok((ct, v)) if v == item.version => {
                            let token = Envelope {
                                backend: BackendKind::Vault,
                                key_name: item.key.clone(),
                                key_version: v,
                                reference: ct.into_bytes(),
                            }
                            .encode();
                            Ok(wrapped(item.generated, token, v))
                        }
                        Ok((_, v)) => Err(BackendError::Failed(format!(
                            "Vault encrypted with key version {v}, not the requested {}",
                            item.version
                        ))),
                        Err(e) => Err(BackendError::BadRequest(format!(
                            "Vault refused the item: {e}"
                        ))),
                    };
                    self.replies.push_back((item.op, reply));
                }
            }
        }
    }

    /// Vault answered a batch of decrypts: each item's plaintext (or its rewrap), or why not.
    pub(super) fn decrypted(
        &mut self,
        req: &VaultRequest,
        resp: &HttpResponse,
        ok: bool,
        items: Vec<DecItem>,
    ) {
        let key = items.first().map(|i| i.key.clone()).unwrap_or_default();
        if !(ok || partial_batch_failure(resp, items.len())) {
            if resp.status == 400 && vault::is_version_too_old(&vault::errors(&resp.body)) {
                // Vault's min_decryption_version was raised since the key was last read.
                self.read_key(key, None, false);
                for i in items {
                    let e = retired(&i, None);
                    self.replies.push_back((i.op, Err(e)));
                }
                return;
            }
            let e = self.map_error(req, resp, true, &key);
            return self.fail_ops(items.iter().map(|i| i.op).collect(), e);
        }
        match vault::parse_decrypt(&resp.body, items.len()) {
            Err(why) => self.fail_ops(
                items.iter().map(|i| i.op).collect(),
                BackendError::Failed(why),
            ),
            Ok(results) => {
                for (item, r) in items.into_iter().zip(results) {
                    match r {
                        Ok(pt) => match unwrapped(item.key, item.context, item.rewrap, pt) {
                            Ok(reply) => self.replies.push_back((item.op, Ok(reply))),
                            Err(wrap) => self.hold(Work::Encrypt(item.op, wrap)),
                        },
                        Err(e) if vault::is_version_too_old(&e) => {
                            let e = retired(&item, None);
                            self.replies.push_back((item.op, Err(e)));
                        }
                        Err(_) => self.replies.push_back((item.op, Err(bad_ciphertext()))),
                    }
                }
            }
        }
    }

    pub(super) fn fail_ops(&mut self, ops: Vec<OpId>, e: BackendError) {
        for op in ops {
            self.replies.push_back((op, Err(e.clone())));
        }
    }
}
