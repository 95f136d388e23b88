//! Jobs: the KMIP request each stage of an operation sends, and what each answer does.
use super::*;

pub(super) type JobId = u64;

pub(super) enum LookupStage {
    Locate,
    Create,
    Activate(String),
}

pub(super) enum RotateStage {
    Create,
    Activate(String),
    Locate(String),
}

/// The work a job does; each stage is one KMIP request.
pub(super) enum Task {
    Negotiate {
        stage: u8,
    },
    Lookup {
        name: String,
        stage: LookupStage,
    },
    Encrypt(Wrap),
    Decrypt(Unwrap),
    Rotate {
        key: String,
        stage: RotateStage,
    },
    Describe {
        key: String,
    },
    /// Periodic Locate while ready, to learn versions other nodes rotated in.
    Refresh {
        key: String,
    },
}

/// What an Encrypt request was built with, to make the token from the answer.
pub(super) struct Sent {
    pub(super) uid: String,
    pub(super) version: u32,
    pub(super) iv: Vec<u8>,
    pub(super) gcm: bool,
}

pub(super) struct Job {
    pub(super) owner: Option<OpId>,
    pub(super) task: Task,
    pub(super) queued_at: Instant,
    pub(super) retries: u32,
    pub(super) sent: Option<Sent>,
}

impl Job {
    pub(super) fn idempotent(&self) -> bool {
        // The simulator's test that it has teeth builds core with this planted bug.
        if cfg!(feature = "planted-bug-failover-retry-nonidempotent") {
            return true;
        }
        match &self.task {
            Task::Negotiate { .. } | Task::Encrypt(_) | Task::Decrypt(_) => true,
            Task::Describe { .. } | Task::Refresh { .. } => true,
            Task::Lookup { stage, .. } => matches!(stage, LookupStage::Locate),
            Task::Rotate { stage, .. } => matches!(stage, RotateStage::Locate(_)),
        }
    }
    pub(super) fn op_name(&self) -> &'static str {
        match &self.task {
            Task::Negotiate { .. } => "DiscoverVersions",
            Task::Lookup { stage, .. } => match stage {
                LookupStage::Locate => "Locate",
                LookupStage::Create => "Create",
                LookupStage::Activate(_) => "Activate",
            },
            Task::Rotate { stage, .. } => match stage {
                RotateStage::Create => "Create",
                RotateStage::Activate(_) => "Activate",
                RotateStage::Locate(_) => "Locate",
            },
            Task::Encrypt(_) => "Encrypt",
            Task::Decrypt(_) => "Decrypt",
            Task::Describe { .. } | Task::Refresh { .. } => "Locate",
        }
    }
}

pub(super) enum Next {
    /// The job has another request to send (built at dispatch).
    Again,
    /// An internal job is done.
    Finished,
    Done(Result<Reply, BackendError>),
}

impl KmipBackend {
    pub(super) fn add_job(&mut self, owner: Option<OpId>, task: Task, control: bool) -> JobId {
        let id = self.next_job;
        self.next_job += 1;
        self.jobs.insert(
            id,
            Job {
                owner,
                task,
                queued_at: self.now,
                retries: 0,
                sent: None,
            },
        );
        if control {
            self.control.push_back(id);
        } else {
            self.queue.push_back(id);
        }
        id
    }

    pub(super) fn fail_job(&mut self, id: JobId, e: BackendError) {
        let Some(job) = self.jobs.remove(&id) else {
            return;
        };
        match job.owner {
            Some(op) => self.replies.push_back((op, Err(e))),
            None => self.start_failed(e.to_string()),
        }
    }

    pub(super) fn build(&mut self, id: JobId, rng: &mut Drbg) -> Result<Request, BackendError> {
        let v = self.version();
        let gcm_ok = v >= ProtocolVersion::V1_4;
        let latest = |keys: &BTreeMap<String, Vec<String>>, k: &str| {
            keys.get(k)
                .and_then(|u| u.last().map(|uid| (uid.clone(), u.len() as u32)))
        };
        let latest_of = match &self.jobs[&id].task {
            Task::Encrypt(Wrap { key, .. }) => {
                Some(latest(&self.keys, key).ok_or_else(|| BackendError::UnknownKey(key.clone()))?)
            }
            _ => None,
        };
        let job = self.jobs.get_mut(&id).expect("job");
        let item = match &job.task {
            Task::Negotiate { stage: 0 } => {
                return Ok(Request::single(
                    ProtocolVersion::V1_1,
                    messages::discover_versions(&self.offered()),
                ))
            }
            Task::Negotiate { stage } => {
                let pv = if *stage == 1 {
                    ProtocolVersion::V1_2
                } else {
                    ProtocolVersion::V1_0
                };
                return Ok(Request::single(
                    pv,
                    messages::query(&[messages::query_fn::OPERATIONS]),
                ));
            }
            Task::Lookup { name, stage } => match stage {
                LookupStage::Locate => messages::locate_by_name(v, name),
                LookupStage::Create => messages::create_aes256(v, Some(name)),
                LookupStage::Activate(uid) => messages::activate(uid),
            },
            Task::Rotate { key, stage } => match stage {
                RotateStage::Create => messages::create_aes256(v, Some(key)),
                RotateStage::Activate(uid) => messages::activate(uid),
                RotateStage::Locate(_) => messages::locate_by_name(v, key),
            },
            Task::Describe { key } | Task::Refresh { key } => messages::locate_by_name(v, key),
            Task::Encrypt(Wrap {
                key,
                plaintext,
                context,
                ..
            }) => {
                let (uid, version) = latest_of.expect("encrypt has a key");
                let aad = Envelope::aad(BackendKind::Kmip, key, version, context);
                let mut iv = vec![0u8; if gcm_ok { GCM_IV } else { CBC_IV }];
                if !rng.fill(&mut iv) {
                    return Err(no_entropy());
                }
                let item = if gcm_ok {
                    messages::encrypt(&uid, CryptoParams::GCM, plaintext.expose(), &iv, Some(&aad))
                } else {
                    let mut data = Secret::new(plaintext.expose().clone());
                    let mut h = Sha256::new();
                    h.update(&aad);
                    h.update(plaintext.expose());
                    data.expose_mut().extend_from_slice(&h.finalize());
                    messages::encrypt(&uid, CryptoParams::CBC_PKCS5, data.expose(), &iv, None)
                };
                job.sent = Some(Sent {
                    uid,
                    version,
                    iv,
                    gcm: gcm_ok,
                });
                item
            }
            Task::Decrypt(u) => {
                u.check_envelope(BackendKind::Kmip)?;
                let Unwrap {
                    key,
                    envelope,
                    context,
                    ..
                } = u;
                let r = decode_reference(&envelope.reference).ok_or_else(bad_ciphertext)?;
                let aad = Envelope::aad(BackendKind::Kmip, key, envelope.key_version, context);
                if r.gcm {
                    if !gcm_ok {
                        return Err(BackendError::Failed(format!(
                            "this ciphertext uses AES-GCM but the HSM now speaks KMIP {v} (< 1.4), which cannot check GCM tags"
                        )));
                    }
                    messages::decrypt(
                        r.uid,
                        CryptoParams::GCM,
                        r.ct,
                        r.iv,
                        Some(&aad),
                        Some(r.tag),
                    )
                } else {
                    messages::decrypt(r.uid, CryptoParams::CBC_PKCS5, r.ct, r.iv, None, None)
                }
            }
        };
        Ok(Request::single(v, item))
    }

    pub(super) fn advance(&mut self, id: JobId, r: BatchResult, rng: &mut Drbg) {
        let Some(mut job) = self.jobs.remove(&id) else {
            return;
        };
        let op = job.op_name();
        match self.step(&mut job, r, op) {
            Next::Again => {
                let owner = job.owner;
                self.jobs.insert(id, job);
                if owner.is_some() {
                    self.queue.push_front(id);
                } else {
                    self.control.push_front(id);
                }
            }
            Next::Finished => {}
            Next::Done(result) => {
                if let Some(owner) = job.owner {
                    self.replies.push_back((owner, result));
                }
            }
        }
        let _ = rng;
    }

    /// Applies one answer to a job: the next request, the final reply, or internal progress.
    pub(super) fn step(&mut self, job: &mut Job, r: BatchResult, op: &'static str) -> Next {
        let v = self.version();
        match &mut job.task {
            Task::Negotiate { stage } => {
                if r.reason == Some(R_AUTHENTICATION) {
                    self.start_failed(hsm_error(op, &r, self.cfg.credential.is_some()).to_string());
                    return Next::Finished;
                }
                let chosen = if !r.is_success() {
                    None
                } else if *stage == 0 {
                    r.protocol_versions()
                        .into_iter()
                        .find(|p| self.offered().contains(p))
                } else if *stage == 1 {
                    Some(ProtocolVersion::V1_2)
                } else {
                    Some(ProtocolVersion::V1_0)
                };
                match chosen {
                    Some(pv) => {
                        self.version = Some(pv);
                        let mode = if pv >= ProtocolVersion::V1_4 {
                            "AES-GCM"
                        } else {
                            "AES-CBC/PKCS5 + SHA-256 check"
                        };
                        self.log(Level::Info, format!("kmip: negotiated KMIP {pv} ({mode})"));
                        let names = self.cfg.keys.clone();
                        self.lookups_pending = names.len();
                        for name in names {
                            self.add_job(
                                None,
                                Task::Lookup {
                                    name,
                                    stage: LookupStage::Locate,
                                },
                                true,
                            );
                        }
                        Next::Finished
                    }
                    None if *stage < 2 => {
                        *stage += 1;
                        if self.cfg.max_version < ProtocolVersion::V1_2 {
                            *stage = 2;
                        }
                        Next::Again
                    }
                    None => {
                        self.start_failed(format!(
                            "the HSM speaks none of KMIP 1.0-1.4 ({})",
                            r.describe()
                        ));
                        Next::Finished
                    }
                }
            }
            Task::Lookup { name, stage } => {
                if !r.is_success() {
                    self.start_failed(format!(
                        "key {name:?}: {}",
                        hsm_error(op, &r, self.cfg.credential.is_some())
                    ));
                    return Next::Finished;
                }
                match stage {
                    LookupStage::Locate => {
                        let mut uids: Vec<String> = r
                            .unique_identifiers()
                            .into_iter()
                            .map(str::to_owned)
                            .collect();
                        if uids.is_empty() {
                            if self.cfg.auto_create {
                                *stage = LookupStage::Create;
                                return Next::Again;
                            }
                            self.missing.push(name.clone());
                        } else {
                            uids.reverse();
                            self.keys.insert(name.clone(), uids);
                        }
                    }
                    LookupStage::Create => match r.unique_identifier() {
                        Some(uid) => {
                            *stage = LookupStage::Activate(uid.to_owned());
                            return Next::Again;
                        }
                        None => {
                            self.start_failed(format!("key {name:?}: Create answered no id"));
                            return Next::Finished;
                        }
                    },
                    LookupStage::Activate(uid) => {
                        self.log(
                            Level::Warn,
                            format!("kmip: created and activated AES-256 key {name:?} (id {uid}) because keybroker.hsm.key.auto-create=true"),
                        );
                        self.keys.insert(name.clone(), vec![uid.clone()]);
                    }
                }
                self.lookups_pending = self.lookups_pending.saturating_sub(1);
                if self.lookups_pending == 0 && self.phase == Phase::Starting {
                    if self.missing.is_empty() {
                        self.phase = Phase::Ready;
                        self.refresh_at = Some(self.now + REFRESH_EVERY);
                        let summary: Vec<String> = self
                            .keys
                            .iter()
                            .map(|(k, u)| format!("{k} ({} versions)", u.len()))
                            .collect();
                        let eps: Vec<String> =
                            self.cfg.endpoints.iter().map(|e| e.to_string()).collect();
                        self.log(
                            Level::Info,
                            format!(
                                "kmip: ready: KMIP {v}, keys {}, endpoints {}",
                                summary.join(", "),
                                eps.join(", ")
                            ),
                        );
                    } else {
                        let m = self.missing.join(", ");
                        self.start_failed(format!(
                            "master key {m} not found on the HSM (Locate by Name) and keybroker.hsm.key.auto-create=false: create it on the HSM or set keybroker.hsm.key.auto-create=true"
                        ));
                    }
                }
                Next::Finished
            }
            Task::Refresh { key } => {
                let mut uids: Vec<String> = r
                    .unique_identifiers()
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                uids.reverse();
                let known = self.keys.get(key.as_str()).map_or(0, Vec::len);
                // Only ever learn more versions: a failed or partial answer changes nothing.
                if r.is_success() && uids.len() > known {
                    let (name, n) = (key.clone(), uids.len());
                    self.keys.insert(name.clone(), uids);
                    self.log(
                        Level::Info,
                        format!("kmip: key {name:?} now has {n} versions (rotated elsewhere)"),
                    );
                }
                Next::Finished
            }
            Task::Encrypt(Wrap { key, .. })
                if matches!(
                    r.reason,
                    Some(R_ITEM_NOT_FOUND | R_PERMISSION_DENIED | R_WRONG_KEY_LIFECYCLE_STATE)
                ) =>
            {
                // The latest version may be a key a rotation created but never activated (its
                // Activate, or Create's answer, was lost; Locate lists it anyway): encrypt under
                // the version before it. A later Locate lists it again, costing one round trip.
                let uid = job.sent.take().map(|s| s.uid);
                match (uid, self.keys.get_mut(key.as_str())) {
                    (Some(uid), Some(uids)) if uids.len() > 1 && uids.last() == Some(&uid) => {
                        uids.pop();
                        let name = key.clone();
                        self.log(
                            Level::Warn,
                            format!("kmip: key {name:?}: the newest object (id {uid}) is not usable ({}); encrypting under the version before it", r.describe()),
                        );
                        Next::Again
                    }
                    // A rotation finished meanwhile: its new version is the latest now.
                    (Some(uid), Some(uids)) if uids.last().is_some_and(|l| *l != uid) => {
                        Next::Again
                    }
                    _ => Next::Done(Err(hsm_error(op, &r, self.cfg.credential.is_some()))),
                }
            }
            _ if !r.is_success() => {
                Next::Done(Err(hsm_error(op, &r, self.cfg.credential.is_some())))
            }
            Task::Describe { key } => {
                let mut uids: Vec<String> = r
                    .unique_identifiers()
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                if uids.is_empty() {
                    return Next::Done(Err(BackendError::UnknownKey(key.clone())));
                }
                uids.reverse();
                let n = uids.len() as u32;
                self.keys.insert(key.clone(), uids);
                Next::Done(Ok(Reply::Described {
                    backend: BackendKind::Kmip,
                    latest_version: n,
                    versions: (1..=n).collect(),
                }))
            }
            Task::Rotate { key, stage } => match stage {
                RotateStage::Create => match r.unique_identifier() {
                    Some(uid) => {
                        *stage = RotateStage::Activate(uid.to_owned());
                        Next::Again
                    }
                    None => Next::Done(Err(BackendError::Failed("Create answered no id".into()))),
                },
                RotateStage::Activate(uid) => {
                    *stage = RotateStage::Locate(uid.clone());
                    Next::Again
                }
                RotateStage::Locate(new) => {
                    let mut uids: Vec<String> = r
                        .unique_identifiers()
                        .into_iter()
                        .map(str::to_owned)
                        .collect();
                    uids.reverse();
                    if !uids.contains(new) {
                        uids.push(new.clone());
                    }
                    let pos = uids.iter().position(|u| u == new).expect("present") as u32 + 1;
                    // The new key must be the latest: keep the HSM's order but put it last.
                    let n = uids.len() as u32;
                    let key_version = if pos == n {
                        n
                    } else {
                        let u = uids.remove(pos as usize - 1);
                        uids.push(u);
                        n
                    };
                    let name = key.clone();
                    self.log(
                        Level::Info,
                        format!("kmip: rotated key {name:?}: version {key_version} (id {new})"),
                    );
                    self.keys.insert(name, uids);
                    Next::Done(Ok(Reply::Rotated { key_version }))
                }
            },
            Task::Encrypt(Wrap {
                key,
                plaintext,
                generated,
                ..
            }) => {
                let Some(sent) = job.sent.take() else {
                    return Next::Done(Err(BackendError::Failed("internal: no request".into())));
                };
                let Some(ct) = r.bytes(crate::kmip::tags::tag::DATA) else {
                    return Next::Done(Err(BackendError::Failed(
                        "the HSM's Encrypt answer has no Data".into(),
                    )));
                };
                let iv = r
                    .bytes(crate::kmip::tags::tag::IV_COUNTER_NONCE)
                    .unwrap_or(&sent.iv);
                let tag: &[u8] = if sent.gcm {
                    match r.bytes(crate::kmip::tags::tag::AUTHENTICATED_ENCRYPTION_TAG) {
                        Some(t) if t.len() == GCM_TAG => t,
                        _ => {
                            return Next::Done(Err(BackendError::Failed(
                                "the HSM's GCM Encrypt answer has no 16-byte tag".into(),
                            )))
                        }
                    }
                } else {
                    &[]
                };
                if iv.len() != if sent.gcm { GCM_IV } else { CBC_IV } {
                    return Next::Done(Err(BackendError::Failed(
                        "the HSM's Encrypt answer has an IV of an unexpected length".into(),
                    )));
                }
                let env = Envelope {
                    backend: BackendKind::Kmip,
                    key_name: key.clone(),
                    key_version: sent.version,
                    reference: encode_reference(sent.gcm, &sent.uid, iv, tag, ct),
                };
                let generated =
                    generated.then(|| std::mem::replace(plaintext, Secret::new(Vec::new())));
                Next::Done(Ok(wrapped(generated, env.encode(), sent.version)))
            }
            Task::Decrypt(u) => {
                let Unwrap {
                    key,
                    envelope,
                    context,
                    ..
                } = &*u;
                let Some(data) = r.bytes(crate::kmip::tags::tag::DATA) else {
                    return Next::Done(Err(bad_ciphertext()));
                };
                let gcm = envelope.reference.first() == Some(&MODE_GCM);
                let plain = if gcm {
                    Secret::new(data.to_vec())
                } else {
                    if data.len() < DIGEST {
                        return Next::Done(Err(bad_ciphertext()));
                    }
                    let (p, d) = data.split_at(data.len() - DIGEST);
                    let aad = Envelope::aad(BackendKind::Kmip, key, envelope.key_version, context);
                    let mut h = Sha256::new();
                    h.update(&aad);
                    h.update(p);
                    if !ct_eq(&h.finalize(), d) {
                        return Next::Done(Err(bad_ciphertext()));
                    }
                    Secret::new(p.to_vec())
                };
                match u.then(plain) {
                    Ok(reply) => Next::Done(Ok(reply)),
                    Err(wrap) => {
                        job.task = Task::Encrypt(wrap);
                        job.retries = 0;
                        Next::Again
                    }
                }
            }
        }
    }
}
