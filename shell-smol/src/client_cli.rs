//! `keybroker client generate|encrypt|decrypt|rewrap|describe`: the API from the command line,
//! through [`keybroker_client`] (docs/cli.md). Data goes through stdin and stdout; errors print
//! the server's code and request id to stderr and exit 1.
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use keybroker_client::{Client, Error, Identity, Secret};
use keybroker_host::cli::{ClientCall, ClientCommand, ClientConnection, ClientContext};
use serde_json::json;
use std::io::{IsTerminal, Read, Write};

/// The environment variable the keystore password may come from.
pub const PASSWORD_ENV: &str = "KEYBROKER_KEYSTORE_PASSWORD";

/// Runs one `client` command; returns the exit code.
pub fn run(cmd: ClientCommand) -> i32 {
    match execute(cmd) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("keybroker client: {}", describe_error(&e));
            1
        }
    }
}

/// The one line an operator sees: status, code and request id first when the server answered.
fn describe_error(e: &Error) -> String {
    match e {
        Error::Api(a) => format!(
            "server refused: {} {} (request_id {}): {}",
            a.status,
            a.code,
            a.request_id.as_deref().unwrap_or("-"),
            a.message
        ),
        other => other.to_string(),
    }
}

fn execute(cmd: ClientCommand) -> Result<(), Error> {
    match cmd {
        ClientCommand::Generate {
            call,
            context,
            bytes,
        } => {
            let (c, key) = connect(&call)?;
            let ctx = context_bytes(&context)?;
            let d = c.generate(&key, bytes, &ctx)?;
            let line = Secret::new(
                json!({
                    "plaintext": B64.encode(d.plaintext.expose()),
                    "ciphertext": d.ciphertext,
                    "key_version": d.key_version,
                })
                .to_string(),
            );
            emit(format!("{}\n", line.expose()).as_bytes())
        }
        ClientCommand::Encrypt {
            call,
            context,
            base64,
        } => {
            let ctx = context_bytes(&context)?;
            let input = Secret::new(stdin()?);
            let plaintext = if base64 {
                Secret::new(decode_b64(input.expose(), "stdin")?)
            } else {
                input
            };
            let (c, key) = connect(&call)?;
            let s = c.encrypt(&key, plaintext.expose(), &ctx)?;
            emit(format!("{}\n", s.ciphertext).as_bytes())
        }
        ClientCommand::Decrypt {
            call,
            context,
            base64,
        } => {
            let ctx = context_bytes(&context)?;
            let token = token_from_stdin()?;
            let (c, key) = connect(&call)?;
            let p = c.decrypt(&key, &token, &ctx)?;
            if base64 {
                let text = Secret::new(format!("{}\n", B64.encode(p.expose())));
                emit(text.expose().as_bytes())
            } else {
                emit(p.expose())
            }
        }
        ClientCommand::Rewrap { call, context } => {
            let ctx = context_bytes(&context)?;
            let token = token_from_stdin()?;
            let (c, key) = connect(&call)?;
            let s = c.rewrap(&key, &token, &ctx)?;
            emit(format!("{}\n", s.ciphertext).as_bytes())
        }
        ClientCommand::Describe { call } => {
            let (c, key) = connect(&call)?;
            let k = c.describe(&key)?;
            let v = json!({
                "name": k.name,
                "backend": k.backend,
                "latest_version": k.latest_version,
                "versions": k.versions,
            });
            emit(format!("{v}\n").as_bytes())
        }
    }
}

fn emit(bytes: &[u8]) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::Config(format!("stdout: {e}")))
}

fn stdin() -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| Error::Config(format!("stdin: {e}")))?;
    Ok(buf)
}

fn token_from_stdin() -> Result<String, Error> {
    let raw = stdin()?;
    let t = String::from_utf8_lossy(&raw).trim().to_owned();
    if t.is_empty() {
        return Err(Error::Config("stdin holds no kb1: token".into()));
    }
    Ok(t)
}

fn decode_b64(text: &[u8], what: &str) -> Result<Vec<u8>, Error> {
    let compact: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    B64.decode(compact)
        .map_err(|_| Error::Config(format!("{what} is not standard base64")))
}

fn context_bytes(c: &ClientContext) -> Result<Vec<u8>, Error> {
    match (&c.context, &c.context_base64) {
        (Some(t), _) => Ok(t.as_bytes().to_vec()),
        (None, Some(b)) => decode_b64(b.as_bytes(), "--context-base64"),
        (None, None) => Ok(Vec::new()),
    }
}

fn read(path: &str, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::Config(format!("{what} {path}: {e}")))
}

/// PKCS12 and JKS files are binary and need a password; a PEM keystore is text and has none.
fn needs_password(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x30) || bytes.starts_with(&[0xFE, 0xED, 0xFE, 0xED])
}

/// The keystore password: `--password-file`, else the environment, else a terminal prompt.
fn password(conn: &ClientConnection, keystore: &str) -> Result<Secret<String>, Error> {
    if let Some(f) = &conn.password_file {
        let text = Secret::new(
            String::from_utf8(read(f, "password file")?)
                .map_err(|_| Error::Config(format!("password file {f} is not UTF-8")))?,
        );
        return Ok(Secret::new(
            text.expose().lines().next().unwrap_or("").to_owned(),
        ));
    }
    if let Ok(p) = std::env::var(PASSWORD_ENV) {
        return Ok(Secret::new(p));
    }
    if std::io::stderr().is_terminal() {
        if let Ok(p) = rpassword::prompt_password(format!("Password for keystore {keystore}: ")) {
            return Ok(Secret::new(p));
        }
    }
    Err(Error::Config(format!(
        "keystore {keystore} needs a password: give --password-file FILE or set {PASSWORD_ENV}"
    )))
}

fn identity(conn: &ClientConnection) -> Result<Identity, Error> {
    match (&conn.cert, &conn.key_file, &conn.keystore) {
        (Some(cert), Some(key), _) => Identity::from_pem(
            &read(cert, "certificate")?,
            &Secret::new(read(key, "key")?).expose().clone(),
        ),
        (_, _, Some(ks)) => {
            let bytes = read(ks, "keystore")?;
            let pw = if needs_password(&bytes) {
                password(conn, ks)?
            } else {
                Secret::new(String::new())
            };
            Identity::from_keystore(&bytes, pw.expose(), conn.alias.as_deref())
                .map_err(|e| Error::Config(format!("{ks}: {e}")))
        }
        // clap's argument group makes one of the two required.
        _ => Err(Error::Config(
            "give --cert FILE --key FILE or --keystore FILE".into(),
        )),
    }
}

/// A client for `call`'s servers and the key it names.
fn connect(call: &ClientCall) -> Result<(Client, String), Error> {
    let conn = &call.conn;
    let mut b = Client::builder().ca_pem(&read(&conn.ca, "CA file")?)?;
    for u in &conn.urls {
        b = b.url(u.clone());
    }
    if let Some(id) = &conn.request_id {
        b = b.request_id(id.clone());
    }
    Ok((b.identity(identity(conn)?).build()?, call.key.clone()))
}
