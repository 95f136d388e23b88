//! keybroker: the production server and its operator commands.
use keybroker::commands::{self, USAGE};
use keybroker::demo::{self, DemoOptions};

fn usage_error(msg: &str) -> i32 {
    eprintln!("keybroker: {msg}\n{USAGE}");
    2
}

fn value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn run(args: Vec<String>) -> i32 {
    let known = |allowed: &[&str]| -> Result<(), String> {
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if a.starts_with("--") {
                if !allowed.contains(&a.as_str()) {
                    return Err(format!("unknown option {a}"));
                }
                if !matches!(a.as_str(), "--self-test" | "--probe") {
                    i += 1;
                    if i >= args.len() {
                        return Err(format!("{a} needs a value"));
                    }
                }
            }
            i += 1;
        }
        Ok(())
    };
    match args.first().map(String::as_str) {
        Some("--help") | Some("-h") | Some("help") => {
            println!("{USAGE}");
            0
        }
        Some("--version") => {
            println!("keybroker {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Some("demo") => {
            if let Err(e) = known(&["--dir", "--port", "--self-test"]) {
                return usage_error(&e);
            }
            let port = match value(&args, "--port").map(|p| p.parse::<u16>()) {
                None => 8443,
                Some(Ok(p)) => p,
                Some(Err(_)) => return usage_error("--port takes a port number"),
            };
            demo::run(DemoOptions {
                dir: value(&args, "--dir").unwrap_or_else(|| "keybroker-demo".into()),
                port,
                self_test: args.iter().any(|a| a == "--self-test"),
            })
        }
        Some("serve") => match (known(&["--config"]), value(&args, "--config")) {
            (Ok(()), Some(c)) => commands::serve(&c),
            (Err(e), _) => usage_error(&e),
            (_, None) => usage_error("serve needs --config PATH"),
        },
        Some("check-config") => match (known(&["--config", "--probe"]), value(&args, "--config")) {
            (Ok(()), Some(c)) => commands::check_config(&c, args.iter().any(|a| a == "--probe")),
            (Err(e), _) => usage_error(&e),
            (_, None) => usage_error("check-config needs --config PATH"),
        },
        Some("keystore") => match (
            args.get(1).map(String::as_str),
            known(&["--config"]),
            value(&args, "--config"),
        ) {
            (Some("list"), Ok(()), Some(c)) => commands::keystore_list(&c),
            (_, Err(e), _) => usage_error(&e),
            _ => usage_error("keystore list needs --config PATH"),
        },
        Some("ttlv") => match (args.get(1).map(String::as_str), known(&["--hex"])) {
            (_, Err(e)) => usage_error(&e),
            (Some("decode"), Ok(())) => commands::ttlv_decode(value(&args, "--hex")),
            (Some("encode"), Ok(())) if args.len() == 2 => commands::ttlv_encode(),
            _ => usage_error("ttlv decode [--hex HEX] | ttlv encode"),
        },
        Some("audit") => {
            if args.get(1).map(String::as_str) != Some("verify") {
                return usage_error("audit verify --config PATH FILE...");
            }
            let mut config = None;
            let mut files = Vec::new();
            let mut rest = args[2..].iter();
            while let Some(a) = rest.next() {
                match a.as_str() {
                    "--config" => match rest.next() {
                        Some(c) => config = Some(c.clone()),
                        None => return usage_error("--config needs a value"),
                    },
                    o if o.starts_with("--") => return usage_error(&format!("unknown option {o}")),
                    f => files.push(f.to_owned()),
                }
            }
            match config {
                None => usage_error(
                    "audit verify needs --config PATH (the audit key comes from its keystore)",
                ),
                Some(_) if files.is_empty() => usage_error("audit verify needs at least one FILE"),
                Some(c) => commands::audit_verify(&c, &files),
            }
        }
        Some(other) => usage_error(&format!("unknown command {other}")),
        None => usage_error("no command"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(run(args));
}
