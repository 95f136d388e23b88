//! Snapshots of every request keybroker sends to Vault or the Azure IMDS (token masked), and
//! the exact Azure login body from the vault-plugin-auth-azure API docs.
use keybroker_core::vault::{self, DecryptItem, EncryptItem, Headers, InstanceMeta};

const H: Headers<'static> = Headers {
    host: "vault.example.com:8200",
    namespace: Some("engineering"),
};

fn snap(name: &str, req: &vault::VaultRequest) {
    insta::assert_snapshot!(name, req.render_masked(&H));
}

#[test]
fn transit_requests() {
    snap(
        "encrypt_single",
        &vault::encrypt(
            "transit",
            "kms",
            2,
            &[EncryptItem {
                plaintext: b"data key",
                aad: b"aad-1",
            }],
        ),
    );
    snap(
        "encrypt_batch",
        &vault::encrypt(
            "transit",
            "kms",
            2,
            &[
                EncryptItem {
                    plaintext: b"one",
                    aad: b"a1",
                },
                EncryptItem {
                    plaintext: b"two",
                    aad: b"a2",
                },
            ],
        ),
    );
    snap(
        "decrypt_single",
        &vault::decrypt(
            "transit",
            "kms",
            &[DecryptItem {
                ciphertext: "vault:v1:AAAA",
                aad: b"aad-1",
            }],
        ),
    );
    snap(
        "decrypt_batch",
        &vault::decrypt(
            "transit",
            "kms",
            &[
                DecryptItem {
                    ciphertext: "vault:v1:AAAA",
                    aad: b"a1",
                },
                DecryptItem {
                    ciphertext: "vault:v2:BBBB",
                    aad: b"a2",
                },
            ],
        ),
    );
    snap("read_key", &vault::read_key("transit", "kms"));
    snap("create_key", &vault::create_key("transit", "kms"));
    snap("rotate_key", &vault::rotate_key("transit", "kms"));
}

#[test]
fn token_requests() {
    snap("lookup_self", &vault::lookup_self());
    snap("renew_self", &vault::renew_self());
}

#[test]
fn azure_requests() {
    let meta = InstanceMeta {
        subscription_id: "11111111-2222-3333-4444-555555555555".into(),
        resource_group_name: "kms-rg".into(),
        vm_name: "kms-vm-1".into(),
        vmss_name: String::new(),
    };
    snap(
        "azure_login_vm",
        &vault::azure_login("/v1/auth/azure/login", "kms", "eyJ.jwt.sig", &meta),
    );
    let vmss = InstanceMeta {
        vmss_name: "kms-vmss".into(),
        ..meta
    };
    snap(
        "azure_login_vmss",
        &vault::azure_login("/v1/auth/azure/login", "kms", "eyJ.jwt.sig", &vmss),
    );
    snap(
        "imds_token",
        &vault::imds_token("https://vault.hashicorp.com/"),
    );
    snap("imds_instance", &vault::imds_instance());
}

/// The body is exactly the documented login payload: role, jwt, subscription_id,
/// resource_group_name and vm_name (or vmss_name), nothing else.
#[test]
fn azure_login_body_is_the_documented_one() {
    let meta = InstanceMeta {
        subscription_id: "sub".into(),
        resource_group_name: "rg".into(),
        vm_name: "vm".into(),
        vmss_name: String::new(),
    };
    let r = vault::azure_login("/v1/auth/azure/login", "dev-role", "JWT", &meta);
    let bytes = r.render(
        &Headers {
            host: "h",
            namespace: None,
        },
        None,
    );
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("POST /v1/auth/azure/login HTTP/1.1\r\n"));
    assert!(
        !text.to_ascii_lowercase().contains("x-vault-token"),
        "login carries no token"
    );
    let body: serde_json::Value =
        serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"role":"dev-role","jwt":"JWT","subscription_id":"sub","resource_group_name":"rg","vm_name":"vm"})
    );
}

#[test]
fn token_goes_on_the_wire_but_never_in_the_masked_form() {
    let r = vault::lookup_self();
    let wire = String::from_utf8(r.render(&H, Some("s.SECRET"))).unwrap();
    assert!(wire.contains("x-vault-token: s.SECRET\r\n"));
    assert!(wire.contains("x-vault-namespace: engineering\r\n"));
    assert!(!r.render_masked(&H).contains("SECRET"));
    assert!(!format!("{r:?}").contains("SECRET"));
}

#[test]
fn parses_vault_answers() {
    let enc = br#"{"data":{"ciphertext":"vault:v3:abc","key_version":3}}"#;
    assert_eq!(
        vault::parse_encrypt(enc, 1).unwrap()[0].as_ref().unwrap(),
        &("vault:v3:abc".to_string(), 3)
    );
    let batch = br#"{"data":{"batch_results":[{"plaintext":"aGk="},{"plaintext":"","error":"cipher: message authentication failed"}]}}"#;
    let r = vault::parse_decrypt(batch, 2).unwrap();
    assert_eq!(r[0].as_ref().unwrap().expose(), b"hi");
    assert!(r[1].is_err());
    assert!(
        vault::parse_decrypt(batch, 3).is_err(),
        "count mismatch is an error"
    );
    assert_eq!(
        vault::errors(br#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#),
        "1 error occurred:; permission denied"
    );
    assert_eq!(vault::ciphertext_version("vault:v12:x"), Some(12));
    assert_eq!(vault::ciphertext_version("vault:v0:x"), None);
    assert_eq!(vault::ciphertext_version("vault:v1:"), None);
    let key = br#"{"data":{"keys":{"1":1,"2":2,"3":3},"latest_version":3,"min_decryption_version":2,"type":"aes256-gcm96"}}"#;
    let k = vault::parse_key(key).unwrap();
    assert_eq!(
        (k.latest, k.versions.clone(), k.aead),
        (3, vec![2, 3], true)
    );
    let imds = br#"{"access_token":"eyJ0eXAi","client_id":"c","expires_in":"86399","expires_on":"1506484173","ext_expires_in":"86399","not_before":"1506480273","resource":"https://vault.hashicorp.com/","token_type":"Bearer"}"#;
    let (t, e) = vault::parse_imds_token(imds).unwrap();
    assert_eq!((t.expose().as_str(), e), ("eyJ0eXAi", 86399));
}
