//! The `soft` backend: AES-256-GCM master keys kept in a local file sealed under a passphrase.
//!
//! For demos, development and tests only; the shell warns at start. The sealed file is JSON:
//! `{"format":"keybroker-soft-keys/1","kdf":"pbkdf2-sha256","iterations":N,"salt":b64,
//! "nonce":b64,"sealed":b64}`; `sealed` is AES-256-GCM (key from PBKDF2 of the passphrase)
//! over `{"keys":{"name":[b64 key v1, v2, …]}}`.
#[cfg(test)]
use super::Op;
use super::{bad_ciphertext, no_entropy, wrapped, KeyBackend, Unwrap, Wrap};
use super::{BackendError, BackendOutput, OpId, Persist, PersistId, Reply, ReplyQueue};
use crate::drbg::Drbg;
use crate::envelope::{BackendKind, Envelope};
use crate::secret::Secret;
use crate::time::Now;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

const FORMAT: &str = "keybroker-soft-keys/1";
/// PBKDF2 iterations for newly sealed files.
pub const DEFAULT_ITERATIONS: u32 = 100_000;
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Master keys by name, each a list of versions (version n at index n-1).
#[derive(Default, Clone)]
pub struct SoftKeys {
    keys: BTreeMap<String, Vec<Secret<Vec<u8>>>>,
}

impl fmt::Debug for SoftKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let versions: BTreeMap<_, _> = self.keys.iter().map(|(k, v)| (k, v.len())).collect();
        f.debug_struct("SoftKeys")
            .field("versions", &versions)
            .finish()
    }
}

/// A soft-key file to seal (PBKDF2, then AES-256-GCM) and write: the shell runs [`SealJob::seal`]
/// off the request path, writes the file atomically and durably, then reports
/// [`crate::Input::Persisted`]. Its `Debug` shows no key material.
pub struct SealJob {
    keys: SoftKeys,
    passphrase: Secret<Vec<u8>>,
    salt: [u8; 16],
    nonce: [u8; IV_LEN],
    iterations: u32,
}

impl SealJob {
    /// The sealed file's bytes (slow: PBKDF2 with the job's iteration count).
    pub fn seal(&self) -> Vec<u8> {
        self.keys.seal_parts(
            self.passphrase.expose(),
            self.salt,
            self.nonce,
            self.iterations,
        )
    }
}

impl fmt::Debug for SealJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealJob")
            .field("keys", &self.keys)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl PartialEq for SealJob {
    fn eq(&self, other: &Self) -> bool {
        self.salt == other.salt && self.nonce == other.nonce
    }
}

impl Eq for SealJob {}

/// Why a soft-key file could not be opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SoftKeyError {
    /// Not a keybroker soft-key file, or damaged.
    Malformed(String),
    /// The passphrase does not open it.
    WrongPassphrase,
    /// No entropy has been supplied yet.
    NoEntropy,
}

impl fmt::Display for SoftKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SoftKeyError::Malformed(why) => write!(f, "soft key file is malformed: {why}"),
            SoftKeyError::WrongPassphrase => f.write_str(
                "soft key file does not open with kms.keystore.password (wrong password or damaged file)",
            ),
            SoftKeyError::NoEntropy => f.write_str("no entropy supplied for key generation"),
        }
    }
}

impl std::error::Error for SoftKeyError {}

fn derive(passphrase: &[u8], salt: &[u8], iterations: u32) -> Secret<Vec<u8>> {
    let mut key = vec![0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(passphrase, salt, iterations, &mut key);
    Secret::new(key)
}

impl SoftKeys {
    /// Fresh keys: one random version 1 for each name.
    pub fn generate(names: &[&str], rng: &mut Drbg) -> Result<SoftKeys, SoftKeyError> {
        let mut keys = SoftKeys::default();
        for name in names {
            keys.add_version(name, rng)?;
        }
        Ok(keys)
    }

    /// Adds a random new version to `name` (creating it), returning the new version number.
    pub fn add_version(&mut self, name: &str, rng: &mut Drbg) -> Result<u32, SoftKeyError> {
        let mut k = vec![0u8; 32];
        if !rng.fill(&mut k) {
            return Err(SoftKeyError::NoEntropy);
        }
        let versions = self.keys.entry(name.to_owned()).or_default();
        versions.push(Secret::new(k));
        Ok(versions.len() as u32)
    }

    /// Key names held.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Latest version of `name`, if held.
    pub fn latest(&self, name: &str) -> Option<u32> {
        self.keys.get(name).map(|v| v.len() as u32)
    }

    fn key(&self, name: &str, version: u32) -> Option<&Secret<Vec<u8>>> {
        let idx = usize::try_from(version).ok()?.checked_sub(1)?;
        self.keys.get(name)?.get(idx)
    }

    /// Seals the keys under `passphrase` into the file format.
    pub fn seal(&self, passphrase: &[u8], rng: &mut Drbg) -> Result<Vec<u8>, SoftKeyError> {
        self.seal_with(passphrase, rng, DEFAULT_ITERATIONS)
    }

    /// Seals with an explicit PBKDF2 iteration count.
    pub fn seal_with(
        &self,
        passphrase: &[u8],
        rng: &mut Drbg,
        iterations: u32,
    ) -> Result<Vec<u8>, SoftKeyError> {
        Ok(self.seal_job(passphrase, rng, iterations)?.seal())
    }

    /// Draws the salt and nonce now; the slow part (PBKDF2) runs when the job does.
    fn seal_job(
        &self,
        passphrase: &[u8],
        rng: &mut Drbg,
        iterations: u32,
    ) -> Result<SealJob, SoftKeyError> {
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; IV_LEN];
        if !rng.fill(&mut salt) || !rng.fill(&mut nonce) {
            return Err(SoftKeyError::NoEntropy);
        }
        Ok(SealJob {
            keys: self.clone(),
            passphrase: Secret::new(passphrase.to_vec()),
            salt,
            nonce,
            iterations,
        })
    }

    fn seal_parts(
        &self,
        passphrase: &[u8],
        salt: [u8; 16],
        nonce: [u8; IV_LEN],
        iterations: u32,
    ) -> Vec<u8> {
        let inner: BTreeMap<&str, Vec<String>> = self
            .keys
            .iter()
            .map(|(n, vs)| {
                (
                    n.as_str(),
                    vs.iter().map(|k| B64.encode(k.expose())).collect(),
                )
            })
            .collect();
        let plain = Secret::new(
            serde_json::to_vec(&serde_json::json!({ "keys": inner })).expect("json of strings"),
        );
        let kek = derive(passphrase, &salt, iterations);
        let cipher = Aes256Gcm::new_from_slice(kek.expose()).expect("32-byte key");
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain.expose(),
                    aad: FORMAT.as_bytes(),
                },
            )
            .expect("in-memory encryption");
        let file = serde_json::json!({
            "format": FORMAT,
            "kdf": "pbkdf2-sha256",
            "iterations": iterations,
            "salt": B64.encode(salt),
            "nonce": B64.encode(nonce),
            "sealed": B64.encode(sealed),
        });
        let mut out = serde_json::to_vec_pretty(&file).expect("json");
        out.push(b'\n');
        out
    }

    /// Opens a sealed file.
    pub fn open(file: &[u8], passphrase: &[u8]) -> Result<SoftKeys, SoftKeyError> {
        let bad = |why: &str| SoftKeyError::Malformed(why.to_owned());
        let v: serde_json::Value = serde_json::from_slice(file).map_err(|_| bad("not JSON"))?;
        if v["format"] != FORMAT {
            return Err(bad("format is not keybroker-soft-keys/1"));
        }
        if v["kdf"] != "pbkdf2-sha256" {
            return Err(bad("unknown kdf"));
        }
        let iterations = v["iterations"]
            .as_u64()
            .filter(|i| (1_000..=10_000_000).contains(i))
            .ok_or_else(|| bad("iterations out of range"))? as u32;
        let field = |name: &str| {
            v[name]
                .as_str()
                .and_then(|s| B64.decode(s).ok())
                .ok_or_else(|| bad(&format!("{name} missing or not base64")))
        };
        let (salt, nonce, sealed) = (field("salt")?, field("nonce")?, field("sealed")?);
        if nonce.len() != IV_LEN {
            return Err(bad("nonce must be 12 bytes"));
        }
        let kek = derive(passphrase, &salt, iterations);
        let cipher = Aes256Gcm::new_from_slice(kek.expose()).expect("32-byte key");
        let plain = Secret::new(
            cipher
                .decrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: &sealed,
                        aad: FORMAT.as_bytes(),
                    },
                )
                .map_err(|_| SoftKeyError::WrongPassphrase)?,
        );
        let inner: serde_json::Value =
            serde_json::from_slice(plain.expose()).map_err(|_| bad("sealed content"))?;
        let mut keys = SoftKeys::default();
        for (name, versions) in inner["keys"]
            .as_object()
            .ok_or_else(|| bad("sealed content"))?
        {
            let list = versions.as_array().ok_or_else(|| bad("sealed content"))?;
            let mut out = Vec::with_capacity(list.len());
            for k in list {
                let k = k
                    .as_str()
                    .and_then(|s| B64.decode(s).ok())
                    .filter(|k| k.len() == 32)
                    .ok_or_else(|| bad("key is not 32 bytes of base64"))?;
                out.push(Secret::new(k));
            }
            if out.is_empty() {
                return Err(bad("key without versions"));
            }
            keys.keys.insert(name.clone(), out);
        }
        Ok(keys)
    }
}

/// The soft backend: keys in memory, persisted through the shell on rotation.
#[derive(Debug)]
pub struct SoftBackend {
    keys: SoftKeys,
    passphrase: Secret<Vec<u8>>,
    pub(crate) replies: ReplyQueue,
    pub(crate) outputs: VecDeque<BackendOutput>,
    /// The rotation whose file is being written: its op, persist id, keys and new version.
    pending: Option<(OpId, PersistId, SoftKeys, u32)>,
    /// Rotations waiting for the one being written.
    queued: VecDeque<(OpId, String)>,
    next_persist: PersistId,
    /// Encrypts and decrypts prepared for whoever runs them.
    pub(crate) jobs: VecDeque<(OpId, SoftJob)>,
}

/// The key, version and IV one AES-256-GCM seal uses, chosen under the endpoint's lock.
struct SealPrep {
    key: String,
    version: u32,
    master: Secret<Vec<u8>>,
    iv: [u8; IV_LEN],
}

impl SealPrep {
    /// The token of `plaintext` bound to `context`.
    fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<String, BackendError> {
        // The simulator's test that it has teeth builds core with this planted bug.
        let context: &[u8] = if cfg!(feature = "planted-bug-ignore-context") {
            &[]
        } else {
            context
        };
        let aad = Envelope::aad(BackendKind::Soft, &self.key, self.version, context);
        let cipher = Aes256Gcm::new_from_slice(self.master.expose()).expect("32-byte key");
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&self.iv),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| BackendError::BadRequest("plaintext too large".into()))?;
        let mut reference = self.iv.to_vec();
        reference.extend_from_slice(&ct);
        let env = Envelope {
            backend: BackendKind::Soft,
            key_name: self.key.clone(),
            key_version: self.version,
            reference,
        };
        Ok(env.encode())
    }
}

enum Step {
    Seal {
        prep: SealPrep,
        plaintext: Secret<Vec<u8>>,
        context: Vec<u8>,
        generated: bool,
    },
    Open {
        envelope: Envelope,
        context: Vec<u8>,
        master: Secret<Vec<u8>>,
        /// A rewrap: the seal that follows.
        rewrap: Option<SealPrep>,
    },
}

/// One soft-backend encrypt or decrypt, prepared under the endpoint's lock (key version
/// chosen, key copied, IVs drawn from its DRBG, so a run stays deterministic) and run by the
/// connection that asked, on its own task: AES-256-GCM needs nothing shared. Its `Debug` shows
/// no key material.
pub struct SoftJob {
    step: Step,
}

impl fmt::Debug for SoftJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.step {
            Step::Seal { .. } => "SoftJob(seal)",
            Step::Open { rewrap: None, .. } => "SoftJob(open)",
            Step::Open { .. } => "SoftJob(open, seal)",
        })
    }
}

impl SoftJob {
    /// The operation's answer.
    pub fn run(self) -> Result<Reply, BackendError> {
        match self.step {
            Step::Seal {
                prep,
                plaintext,
                context,
                generated,
            } => {
                let token = prep.seal(plaintext.expose(), &context)?;
                Ok(wrapped(generated.then_some(plaintext), token, prep.version))
            }
            Step::Open {
                envelope,
                context,
                master,
                rewrap,
            } => {
                let plain = open_with(&master, &envelope, &context)?;
                match rewrap {
                    None => Ok(Reply::Plaintext(plain)),
                    Some(prep) => Ok(Reply::Ciphertext {
                        token: prep.seal(plain.expose(), &context)?,
                        key_version: prep.version,
                    }),
                }
            }
        }
    }
}

/// Opens a soft token whose kind and key name were checked, under its version's `master` key.
fn open_with(
    master: &Secret<Vec<u8>>,
    env: &Envelope,
    context: &[u8],
) -> Result<Secret<Vec<u8>>, BackendError> {
    if env.reference.len() < IV_LEN + TAG_LEN {
        return Err(bad_ciphertext());
    }
    let (iv, ct) = env.reference.split_at(IV_LEN);
    let context: &[u8] = if cfg!(feature = "planted-bug-ignore-context") {
        &[]
    } else {
        context
    };
    let aad = Envelope::aad(BackendKind::Soft, &env.key_name, env.key_version, context);
    let cipher = Aes256Gcm::new_from_slice(master.expose()).expect("32-byte key");
    cipher
        .decrypt(Nonce::from_slice(iv), Payload { msg: ct, aad: &aad })
        .map(Secret::new)
        .map_err(|_| bad_ciphertext())
}

impl SoftBackend {
    /// A backend over opened keys; `passphrase` re-seals the file after rotation.
    pub fn new(keys: SoftKeys, passphrase: Secret<Vec<u8>>) -> Self {
        SoftBackend {
            keys,
            passphrase,
            replies: VecDeque::new(),
            outputs: VecDeque::new(),
            pending: None,
            queued: VecDeque::new(),
            next_persist: 1,
            jobs: VecDeque::new(),
        }
    }

    /// Starts the next queued rotation unless one is being written. The new version is used
    /// only once its file is durable; until then encrypts keep the previous latest version.
    fn next_rotation(&mut self, rng: &mut Drbg) {
        while self.pending.is_none() {
            let Some((id, key)) = self.queued.pop_front() else {
                return;
            };
            if self.keys.latest(&key).is_none() {
                self.replies
                    .push_back((id, Err(BackendError::UnknownKey(key))));
                continue;
            }
            let mut next = self.keys.clone();
            let job = next.add_version(&key, rng).and_then(|v| {
                next.seal_job(self.passphrase.expose(), rng, DEFAULT_ITERATIONS)
                    .map(|j| (v, j))
            });
            match job {
                Ok((version, job)) => {
                    let pid = self.next_persist;
                    self.next_persist += 1;
                    self.pending = Some((id, pid, next, version));
                    self.outputs
                        .push_back(BackendOutput::PersistSoftKeys(Persist { id: pid, job }));
                }
                Err(_) => self.replies.push_back((id, Err(no_entropy()))),
            }
        }
    }

    /// Runs one operation at once, as the engine does for everything but a rotation.
    #[cfg(test)]
    fn run(&mut self, op: Op, rng: &mut Drbg) -> Result<Reply, BackendError> {
        KeyBackend::submit(self, Now::default(), 0, op, rng);
        match self.jobs.pop_back() {
            Some((_, job)) => job.run(),
            None => self.replies.pop_back().expect("answered at once").1,
        }
    }

    /// The key, version and IV a seal under `key`'s latest version uses.
    fn prep_seal(&self, key: &str, rng: &mut Drbg) -> Result<SealPrep, BackendError> {
        let version = self
            .keys
            .latest(key)
            .ok_or_else(|| BackendError::UnknownKey(key.to_owned()))?;
        let master = self.keys.key(key, version).expect("latest exists").clone();
        let mut iv = [0u8; IV_LEN];
        if !rng.fill(&mut iv) {
            return Err(no_entropy());
        }
        Ok(SealPrep {
            key: key.to_owned(),
            version,
            master,
            iv,
        })
    }

    /// An encrypt, ready to run.
    fn prepare_wrap(&self, w: Wrap, rng: &mut Drbg) -> Result<SoftJob, BackendError> {
        Ok(SoftJob {
            step: Step::Seal {
                prep: self.prep_seal(&w.key, rng)?,
                plaintext: w.plaintext,
                context: w.context,
                generated: w.generated,
            },
        })
    }

    /// A decrypt (and for a rewrap the encrypt after it), ready to run.
    fn prepare_unwrap(&self, u: Unwrap, rng: &mut Drbg) -> Result<SoftJob, BackendError> {
        u.check_envelope(BackendKind::Soft)?;
        let master = self
            .keys
            .key(&u.key, u.envelope.key_version)
            .ok_or_else(bad_ciphertext)?
            .clone();
        let rewrap = if u.rewrap {
            Some(self.prep_seal(&u.key, rng)?)
        } else {
            None
        };
        Ok(SoftJob {
            step: Step::Open {
                envelope: u.envelope,
                context: u.context,
                master,
                rewrap,
            },
        })
    }
}

impl KeyBackend for SoftBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Soft
    }
    fn clock(&mut self, _now: Now) {}
    fn replies(&mut self) -> &mut ReplyQueue {
        &mut self.replies
    }
    fn encrypt(&mut self, id: OpId, wrap: Wrap, rng: &mut Drbg) {
        match self.prepare_wrap(wrap, rng) {
            Ok(job) => self.jobs.push_back((id, job)),
            Err(e) => self.replies.push_back((id, Err(e))),
        }
    }
    fn decrypt(&mut self, id: OpId, unwrap: Unwrap, rng: &mut Drbg) {
        match self.prepare_unwrap(unwrap, rng) {
            Ok(job) => self.jobs.push_back((id, job)),
            Err(e) => self.replies.push_back((id, Err(e))),
        }
    }
    fn rotate(&mut self, id: OpId, key: String, rng: &mut Drbg) {
        self.queued.push_back((id, key));
        self.next_rotation(rng);
    }
    fn describe(&mut self, id: OpId, key: String, _rng: &mut Drbg) {
        let result = match self.keys.latest(&key) {
            Some(latest) => Ok(Reply::Described {
                backend: BackendKind::Soft,
                latest_version: latest,
                versions: (1..=latest).collect(),
            }),
            None => Err(BackendError::UnknownKey(key)),
        };
        self.replies.push_back((id, result));
    }
    fn poll_output(&mut self) -> Option<BackendOutput> {
        self.outputs.pop_front()
    }
    /// The shell wrote (or failed to write) the file of persist job `id`.
    fn persisted(&mut self, id: PersistId, result: Result<(), String>, rng: &mut Drbg) {
        if !matches!(&self.pending, Some((_, pid, _, _)) if *pid == id) {
            return;
        }
        let (op, _, next, key_version) = self.pending.take().expect("matched");
        let reply = match result {
            Ok(()) => {
                self.keys = next;
                Ok(Reply::Rotated { key_version })
            }
            Err(why) => Err(BackendError::NotPersisted(why)),
        };
        self.replies.push_back((op, reply));
        self.next_rotation(rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rng() -> Drbg {
        let mut d = Drbg::new();
        d.reseed(&[1; 32]);
        d
    }

    #[test]
    fn seal_open_round_trip_and_wrong_passphrase() {
        let mut r = rng();
        let keys = SoftKeys::generate(&["a", "b"], &mut r).unwrap();
        let file = keys.seal_with(b"pw", &mut r, 1_000).unwrap();
        let text = String::from_utf8(file.clone()).unwrap();
        let opened = SoftKeys::open(&file, b"pw").unwrap();
        assert_eq!(opened.latest("a"), Some(1));
        assert_eq!(opened.key("b", 1).unwrap(), keys.key("b", 1).unwrap());
        assert!(!text.contains(&B64.encode(keys.key("a", 1).unwrap().expose())));
        assert_eq!(
            SoftKeys::open(&file, b"nope").unwrap_err(),
            SoftKeyError::WrongPassphrase
        );
        assert!(matches!(
            SoftKeys::open(b"{}", b"pw"),
            Err(SoftKeyError::Malformed(_))
        ));
    }

    #[test]
    fn rotation_that_cannot_be_stored_changes_nothing() {
        let (mut b, mut r) = backend();
        b.submit(Now::default(), 1, Op::Rotate { key: "k".into() }, &mut r);
        b.submit(Now::default(), 2, Op::Rotate { key: "k".into() }, &mut r);
        let Some(BackendOutput::PersistSoftKeys(first)) = b.outputs.pop_front() else {
            panic!()
        };
        assert!(b.outputs.is_empty(), "one write at a time");
        b.persisted(first.id, Err("disk full".into()), &mut r);
        let (1, Err(BackendError::NotPersisted(_))) = b.replies.pop_front().unwrap() else {
            panic!()
        };
        assert_eq!(b.keys.latest("k"), Some(1));
        let Some(BackendOutput::PersistSoftKeys(second)) = b.outputs.pop_front() else {
            panic!()
        };
        b.persisted(second.id, Ok(()), &mut r);
        let (2, Ok(Reply::Rotated { key_version: 2 })) = b.replies.pop_front().unwrap() else {
            panic!()
        };
    }

    fn backend() -> (SoftBackend, Drbg) {
        let mut r = rng();
        let keys = SoftKeys::generate(&["k"], &mut r).unwrap();
        (SoftBackend::new(keys, Secret::new(b"pw".to_vec())), r)
    }

    fn run(b: &mut SoftBackend, op: Op, r: &mut Drbg) -> Result<Reply, BackendError> {
        b.run(op, r)
    }

    #[test]
    fn rotation_keeps_old_versions_decryptable() {
        let (mut b, mut r) = backend();
        let Reply::Ciphertext {
            token,
            key_version: 1,
        } = run(
            &mut b,
            Op::Encrypt {
                key: "k".into(),
                plaintext: Secret::new(b"hi".to_vec()),
                context: vec![],
            },
            &mut r,
        )
        .unwrap()
        else {
            panic!()
        };
        b.submit(Now::default(), 7, Op::Rotate { key: "k".into() }, &mut r);
        assert!(b.replies.is_empty(), "no answer before the file is written");
        let Some(BackendOutput::PersistSoftKeys(job)) = b.outputs.pop_front() else {
            panic!()
        };
        assert!(!format!("{job:?}").contains("pw"));
        let file = job.job.seal();
        assert_eq!(SoftKeys::open(&file, b"pw").unwrap().latest("k"), Some(2));
        b.persisted(job.id, Ok(()), &mut r);
        let Some((7, Ok(Reply::Rotated { key_version: 2 }))) = b.replies.pop_front() else {
            panic!()
        };
        let env = Envelope::decode(&token).unwrap();
        let Reply::Plaintext(p) = run(
            &mut b,
            Op::Decrypt {
                key: "k".into(),
                envelope: env.clone(),
                context: vec![],
            },
            &mut r,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(p.expose(), b"hi");
        let Reply::Ciphertext {
            token: t2,
            key_version: 2,
        } = run(
            &mut b,
            Op::Rewrap {
                key: "k".into(),
                envelope: env,
                context: vec![],
            },
            &mut r,
        )
        .unwrap()
        else {
            panic!()
        };
        assert_eq!(Envelope::decode(&t2).unwrap().key_version, 2);
    }

    proptest! {
        /// Flipping any single bit of a kb1 token is refused (400), never other plaintext.
        #[test]
        fn any_bit_flip_of_a_token_is_refused(pt in proptest::collection::vec(any::<u8>(), 0..64), ctx in proptest::collection::vec(any::<u8>(), 0..8), pos in any::<proptest::sample::Index>(), bit in 0u8..8) {
            let (mut b, mut r) = backend();
            let Reply::Ciphertext { token, .. } = run(&mut b, Op::Encrypt { key: "k".into(), plaintext: Secret::new(pt), context: ctx.clone() }, &mut r).unwrap() else { panic!() };
            let mut bytes = token.into_bytes();
            let i = pos.index(bytes.len());
            bytes[i] ^= 1 << bit;
            // Not UTF-8: the JSON layer refuses it (400) before it is a token at all.
            let Ok(flipped) = String::from_utf8(bytes) else { return Ok(()) };
            let api_error = match Envelope::decode(&flipped) {
                Err(_) => crate::api::ApiError::bad("bad_ciphertext", "malformed"),
                Ok(env) => match run(&mut b, Op::Decrypt { key: "k".into(), envelope: env, context: ctx }, &mut r) {
                    Ok(_) => panic!("a flipped token decrypted: byte {i} bit {bit}"),
                    Err(e) => crate::api::ApiError::from(e),
                },
            };
            prop_assert_eq!(api_error.status, 400);
        }

        #[test]
        fn decrypt_encrypt_identity_and_context_binding(pt in proptest::collection::vec(any::<u8>(), 0..200), ctx in proptest::collection::vec(any::<u8>(), 0..20)) {
            let (mut b, mut r) = backend();
            let Reply::Ciphertext { token, .. } = run(&mut b, Op::Encrypt { key: "k".into(), plaintext: Secret::new(pt.clone()), context: ctx.clone() }, &mut r).unwrap() else { panic!() };
            let env = Envelope::decode(&token).unwrap();
            let Reply::Plaintext(p) = run(&mut b, Op::Decrypt { key: "k".into(), envelope: env.clone(), context: ctx.clone() }, &mut r).unwrap() else { panic!() };
            prop_assert_eq!(p.expose(), &pt);
            let mut other = ctx.clone();
            other.push(0);
            let wrong = run(&mut b, Op::Decrypt { key: "k".into(), envelope: env, context: other }, &mut r);
            prop_assert!(matches!(wrong, Err(BackendError::BadCiphertext(_))));
        }
    }
}
