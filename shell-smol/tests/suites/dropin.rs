// Drop-in for a Connected-KMS site: certificates and `kmsKeystore.jks` made by the Connected-KMS
// installation guide's own openssl and keytool commands (scripts/seed-site), a `kms.properties`
// as that guide writes it, then check-config, serve, every identity, live reload with keytool,
// and a corrupted keystore.
//
// One suite, two shells: `include!`d by shell-smol/tests/dropin.rs (BIN = keybroker) and
// shell-blocking/tests/dropin.rs (BIN = keybroker-lite), each declaring `mod common` and `BIN`.

use common::Node;
use keybroker_client::{Client, Identity};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One site (made by scripts/seed-site) per test binary: every certificate and all keystore variants.
fn seed() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = common::seed_site("seed-site");
        // A stranger: signed by the same root, never imported. An expired device certificate.
        sh(&dir, "openssl genrsa -out stranger.key 2048 2>/dev/null && \
            openssl req -new -sha256 -key stranger.key -subj '/O=AcmeXYZ/CN=stranger.AcmeXYZ.com' -out stranger.csr && \
            openssl x509 -req -in stranger.csr -CA rootCA.crt -CAkey rootCA.key -CAcreateserial -days 825 -sha256 -extfile leaf.ext -out stranger.crt 2>/dev/null");
        let pki = keybroker::demo::Pki::new().unwrap();
        let old = pki.issue("cmxDeviceOld.AcmeXYZ.com", keybroker::demo::Usage::Client, -1).unwrap();
        std::fs::write(dir.join("cmxDeviceOld.crt"), old.cert_pem).unwrap();
        std::fs::write(dir.join("cmxDeviceOld.key"), old.key_pem).unwrap();
        dir
    })
}

struct SeedSite {
    dir: PathBuf,
}

impl SeedSite {
    /// A site directory with the `variant` keystore (pkcs12 or jks) and a Connected-KMS-style
    /// kms.properties.
    fn new(variant: &str) -> SeedSite {
        let dir = common::tmp::dir(&format!("dropin-{variant}"));
        std::fs::copy(
            seed().join(variant).join("kmsKeystore.jks"),
            dir.join("kmsKeystore.jks"),
        )
        .unwrap();
        std::fs::write(
            dir.join("kms.properties"),
            "# kms.properties as the Connected-KMS installation guide writes it\n\
             kms.keystore.file=kmsKeystore.jks\n\
             kms.keystore.password=kmsKeystorePwd\n\
             kms.keystore.alias=kmsClient\n\
             kms.hsm.server.url=https://kmshsm.myCorp.com\n\
             kms.hsm.server.port=5696\n\
             kms.cache.type=none\n\
             kms.distributed.cache.config.file=/usr/share/kms/conf/jgroups.xml\n\
             # until the KMIP backend lands, the master key is a local soft key\n\
             kms.hsm.protocol=soft\n\
             keybroker.listen=127.0.0.1:0\n\
             keybroker.admin.listen=127.0.0.1:0\n",
        )
        .unwrap();
        SeedSite { dir }
    }

    fn props(&self) -> String {
        self.dir
            .join("kms.properties")
            .to_string_lossy()
            .into_owned()
    }

    /// Replaces `from` by `to` in kms.properties.
    fn edit(&self, from: &str, to: &str) {
        let p = std::fs::read_to_string(self.props()).unwrap();
        assert!(p.contains(from), "{from} in {p}");
        std::fs::write(self.props(), p.replace(from, to)).unwrap();
    }

    fn keytool(&self, args: &str) {
        sh(&self.dir, &format!("keytool {args} -keystore kmsKeystore.jks -storepass kmsKeystorePwd -noprompt >/dev/null 2>&1"));
    }

    fn connect(&self, node: &Node, who: &str) -> Client {
        let read = |f: String| std::fs::read(seed().join(f)).unwrap();
        Client::builder()
            .url(node.url())
            .ca_pem(&read("rootCA.crt".into()))
            .unwrap()
            .identity(
                Identity::from_pem(&read(format!("{who}.crt")), &read(format!("{who}.key")))
                    .unwrap(),
            )
            .max_retries(0)
            .build()
            .unwrap()
    }

    fn status(&self, node: &Node, who: &str) -> (u16, String) {
        let c = self.connect(node, who);
        let a = c
            .request(
                "POST",
                "/v1/keys/default/encrypt",
                Some(&json!({"plaintext": "aGk="})),
            )
            .unwrap();
        (
            a.status,
            a.json()["error"]["code"].as_str().unwrap_or("").to_owned(),
        )
    }
}

impl Drop for SeedSite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn keybroker(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(BIN).args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn site_node(site: &SeedSite) -> Node {
    Node::start_with(BIN, &site.dir.join("kms.properties"))
}

#[test]
fn seed_keystores_work_unchanged() {
    for variant in ["pkcs12", "jks"] {
        let site = SeedSite::new(variant);
        let (code, out, err) = keybroker(&["check-config", "--config", &site.props()]);
        assert_eq!(code, 0, "{variant}: {out}{err}");
        for alias in [
            "kmsserver",
            "kmsclient",
            "kmipsigningca",
            "cmxbackend",
            "cmxdevice",
            "cmxdevice20190512",
        ] {
            assert!(
                out.to_lowercase().contains(alias),
                "{variant}: {alias} listed in {out}"
            );
        }
        assert!(
            out.contains("kms.distributed.cache.config.file is accepted but not needed"),
            "{out}"
        );
        let (code, out, _) = keybroker(&["keystore", "list", "--config", &site.props()]);
        assert_eq!(code, 0);
        assert!(
            out.contains(if variant == "jks" {
                "Keystore type: Jks"
            } else {
                "Keystore type: Pkcs12"
            }),
            "{out}"
        );

        let old = seed().join("cmxDeviceOld.crt");
        site.keytool(&format!(
            "-import -alias cmxDeviceOld -file {}",
            old.display()
        ));
        let (code, out, _) = keybroker(&["check-config", "--config", &site.props()]);
        assert_eq!(code, 1, "an expired identity is an error: {out}");
        assert!(
            out.contains("cmxDeviceOld") || out.contains("cmxdeviceold"),
            "{out}"
        );

        let node = site_node(&site);
        for who in ["cmxBackend", "cmxDevice", "cmxDevice20190512"] {
            assert_eq!(site.status(&node, who).0, 200, "{variant} {who}");
        }
        for (who, code) in [
            ("stranger", "unknown_client"),
            ("cmxDeviceOld", "certificate_expired"),
            ("kmsServer", "server_identity"),
            ("kmsClient", "server_identity"),
        ] {
            assert_eq!(
                site.status(&node, who),
                (403, code.to_string()),
                "{variant} {who}"
            );
        }
    }
}

#[test]
fn keytool_import_and_sighup_take_effect_without_restart() {
    let site = SeedSite::new("pkcs12");
    site.keytool("-delete -alias cmxDevice20190512");
    let node = site_node(&site);
    // One exact connection, open across the reload.
    let read = |f: &str| std::fs::read(seed().join(f)).unwrap();
    let tls = common::raw::config(
        &read("rootCA.crt"),
        Some((&read("cmxBackend.crt"), &read("cmxBackend.key"))),
    )
    .unwrap();
    let mut kept = common::raw::Conn::connect(&node.client.to_string(), "localhost", tls).unwrap();
    assert_eq!(
        site.status(&node, "cmxDevice20190512"),
        (403, "unknown_client".into())
    );

    // The Connected-KMS guide's "Replace Connected device client certificate": import under a
    // dated alias.
    let crt = seed().join("cmxDevice20190512.crt");
    site.keytool(&format!(
        "-import -alias cmxDevice20190512 -file {}",
        crt.display()
    ));
    node.signal("HUP");
    assert!(
        node.wait_log("reloaded", Duration::from_secs(10)),
        "{:?}",
        node.log.lock().unwrap()
    );
    assert_eq!(site.status(&node, "cmxDevice20190512").0, 200);
    let a = kept.request("GET", "/v1/keys/default", None).unwrap();
    assert_eq!(a.status, 200, "an open connection survives the reload");

    // A broken keystore: the old one keeps serving, and the log says why.
    std::fs::write(site.dir.join("kmsKeystore.jks"), b"this is not a keystore").unwrap();
    node.signal("HUP");
    assert!(node.wait_log(
        "reload failed, still serving the previous keystore",
        Duration::from_secs(10)
    ));
    assert_eq!(site.status(&node, "cmxDevice20190512").0, 200);
    assert_eq!(site.status(&node, "cmxBackend").0, 200);
}

#[test]
fn a_changed_keystore_file_is_picked_up_without_a_signal() {
    let site = SeedSite::new("jks");
    site.keytool("-delete -alias cmxDevice20190512");
    let node = site_node(&site);
    assert_eq!(site.status(&node, "cmxDevice20190512").0, 403);
    let crt = seed().join("cmxDevice20190512.crt");
    site.keytool(&format!(
        "-import -alias cmxDevice20190512 -file {}",
        crt.display()
    ));
    assert!(
        node.wait_log("changed on disk", Duration::from_secs(10)),
        "{:?}",
        node.log.lock().unwrap()
    );
    assert!(node.wait_log("reloaded", Duration::from_secs(5)));
    assert_eq!(site.status(&node, "cmxDevice20190512").0, 200);
}

#[test]
fn a_wrong_password_names_the_problem() {
    let site = SeedSite::new("jks");
    site.edit("kmsKeystorePwd", "NotThePassword1");
    let (code, _, err) = keybroker(&["serve", "--config", &site.props()]);
    assert_eq!(code, 1);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("kmsKeystore.jks") && err.contains("password is wrong"),
        "{err}"
    );
    assert!(!err.contains("NotThePassword1"));
}

/// Under `keybroker.tls.profile=cnsa`, check-config names every certificate of the guide-made
/// keystore (RSA-2048 keys, SHA-256 signatures) as not fitting, and fails.
#[test]
fn check_config_names_certificates_that_do_not_fit_cnsa() {
    let site = SeedSite::new("pkcs12");
    let props = std::fs::read_to_string(site.props()).unwrap();
    std::fs::write(site.props(), props + "keybroker.tls.profile=cnsa\n").unwrap();
    let (code, out, err) = keybroker(&["check-config", "--config", &site.props()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("TLS profile cnsa: TLS 1.2+, suites TLS13_AES_256_GCM_SHA384"),
        "{out}"
    );
    for alias in [
        "kmsserver",
        "kmsclient",
        "kmipsigningca",
        "cmxbackend",
        "cmxdevice",
        "cmxdevice20190512",
    ] {
        let prefix = format!("error: alias {alias}");
        assert!(
            out.lines().any(|l| l.to_lowercase().starts_with(&prefix)
                && l.contains("an RSA 2048-bit key")
                && l.contains("does not fit keybroker.tls.profile=cnsa")),
            "{alias} flagged in {out}"
        );
    }
    // Leaf certificates are also flagged for their SHA-256 signature; the self-signed
    // root's own signature does not count.
    assert!(
        out.contains("an RSA 2048-bit key and a sha256WithRSAEncryption signature"),
        "{out}"
    );
    assert!(
        !out.lines().any(
            |l| l.to_lowercase().starts_with("error: alias kmipsigningca")
                && l.contains("sha256WithRSAEncryption")
        ),
        "{out}"
    );
}

#[test]
fn a_multi_node_file_without_redis_serves_with_the_local_cache_and_says_what_to_add() {
    let site = SeedSite::new("pkcs12");
    // The guide's multi-node file: the distributed cache, configured by a JGroups file only.
    site.edit("kms.cache.type=none", "kms.cache.type=distributed");
    let key = "keybroker.cache.redis.url";

    let (code, out, err) = keybroker(&["check-config", "--config", &site.props()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("warning:") && l.contains(key) && l.contains("local")),
        "{out}"
    );

    let node = site_node(&site);
    let warned = |log: &[String]| {
        log.iter()
            .filter(|l| l.contains("kms.cache.type=distributed") && l.contains(key))
            .count()
    };
    let log = node.log.lock().unwrap().clone();
    assert_eq!(warned(&log), 1, "{log:?}");

    // It serves, and decrypts of one token are answered from the node's own cache.
    let c = site.connect(&node, "cmxBackend");
    let a = c
        .request(
            "POST",
            "/v1/keys/default/encrypt",
            Some(&json!({"plaintext": "aGk="})),
        )
        .unwrap();
    assert_eq!(a.status, 200, "{:?}", a.json());
    let token = a.json()["ciphertext"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        let d = c
            .request(
                "POST",
                "/v1/keys/default/decrypt",
                Some(&json!({"ciphertext": token})),
            )
            .unwrap();
        assert_eq!(d.status, 200, "{:?}", d.json());
        assert_eq!(d.json()["plaintext"], "aGk=");
    }
    let (_, m) = node.admin_get("/metrics");
    let hits: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("keybroker_cache_total{result=\"hit\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{m}"));
    assert_eq!(
        hits, 2,
        "the second and third decrypt hit the local cache: {m}"
    );

    // A reload re-reads the file but does not repeat the start-up warning.
    node.signal("HUP");
    assert!(node.wait_log("reloaded", Duration::from_secs(10)));
    assert_eq!(warned(&node.log.lock().unwrap()), 1);
}
