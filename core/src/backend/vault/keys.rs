//! The served transit keys: reading their configuration (latest and minimum decryption version),
//! creating a missing one, rotation.

use super::*;

impl VaultBackend {
    pub(super) fn read_key(&mut self, key: String, op: Option<OpId>, rotated: bool) {
        if op.is_none() {
            if self.reading.contains(&key) {
                return;
            }
            self.reading.push(key.clone());
        }
        let req = vault::read_key(&self.cfg.mount, &key);
        self.push_call(
            req,
            CallKind::ReadKey { key, op, rotated },
            Target::Vault,
            false,
        );
    }

    /// Takes in what Vault says of `key`; returns the latest version now used for encrypt.
    ///
    /// Versions only grow: an answer from a standby that has not yet seen a rotation (raft
    /// followers lag the leader) does not take the latest version back.
    pub(super) fn learn_key(&mut self, key: &str, info: &vault::KeyInfo) -> u32 {
        let before = self.versions.get(key).copied();
        let latest = before.map_or(info.latest, |b| b.max(info.latest));
        self.versions.insert(key.to_owned(), latest);
        if before.is_some_and(|b| b != latest) {
            self.log(
                Level::Info,
                format!(
                    "Vault transit key {key:?}: latest version is now {latest} (was {}); new ciphertexts use it",
                    before.unwrap_or(0)
                ),
            );
        }
        let min_before = self
            .min_versions
            .insert(key.to_owned(), info.min_decryption);
        if min_before.unwrap_or(1) != info.min_decryption {
            self.log(
                Level::Info,
                format!(
                    "Vault transit key {key:?}: min_decryption_version is {}; older ciphertexts answer 400 key_version_retired",
                    info.min_decryption
                ),
            );
        }
        latest
    }

    /// Vault answered a read of `key`'s configuration (start, refresh, describe, or after a rotation).
    pub(super) fn key_read(
        &mut self,
        req: &VaultRequest,
        resp: &HttpResponse,
        ok: bool,
        key: String,
        op: Option<OpId>,
        rotated: bool,
    ) {
        if op.is_none() {
            self.reading.retain(|k| *k != key);
        }
        if ok {
            match vault::parse_key(&resp.body) {
                Ok(info) => {
                    if !info.aead && op.is_none() {
                        self.log(Level::Error, format!("Vault transit key {key:?} is not an AES-GCM/ChaCha20 key: associated data (context binding) needs one"));
                    }
                    let latest = self.learn_key(&key, &info);
                    if let Some(op) = op {
                        let reply = if rotated {
                            Reply::Rotated {
                                key_version: latest,
                            }
                        } else {
                            Reply::Described {
                                backend: BackendKind::Vault,
                                latest_version: latest,
                                versions: info.versions,
                            }
                        };
                        self.replies.push_back((op, Ok(reply)));
                    }
                }
                Err(why) => self.fail_ops(op.into_iter().collect(), BackendError::Failed(why)),
            }
        } else if resp.status == 404 && op.is_none() && self.cfg.auto_create {
            self.log(
                Level::Info,
                format!(
                    "creating Vault transit key {key:?} (keybroker.vault.key.auto-create=true)"
                ),
            );
            let req = vault::create_key(&self.cfg.mount, &key);
            self.push_call(req, CallKind::CreateKey { key }, Target::Vault, true);
        } else {
            let e = self.map_error(req, resp, false, &key);
            if op.is_none() {
                self.log(Level::Error, format!("Vault transit key {key:?}: {e}"));
                self.fail_held_encrypts(&key, &e);
            }
            self.fail_ops(op.into_iter().collect(), e);
        }
    }

    /// Vault answered the creation of a missing `key`.
    pub(super) fn key_created(
        &mut self,
        req: &VaultRequest,
        resp: &HttpResponse,
        ok: bool,
        key: String,
    ) {
        if ok {
            self.read_key(key, None, false);
        } else {
            let e = self.map_error(req, resp, false, &key);
            self.log(
                Level::Error,
                format!("cannot create Vault transit key {key:?}: {e}"),
            );
        }
    }

    /// Vault answered a rotation of `key`.
    pub(super) fn rotated(
        &mut self,
        req: &VaultRequest,
        resp: &HttpResponse,
        ok: bool,
        key: String,
        op: OpId,
    ) {
        if ok {
            // Vault answers a rotate with the key's configuration; an older one answers
            // 204, and the key is read.
            match vault::parse_key(&resp.body) {
                Ok(info) => {
                    let key_version = self.learn_key(&key, &info);
                    self.replies
                        .push_back((op, Ok(Reply::Rotated { key_version })));
                }
                Err(_) => self.read_key(key, Some(op), true),
            }
        } else {
            let e = self.map_error(req, resp, false, &key);
            self.fail_ops(vec![op], e);
        }
    }
}
