//! `java.util.Properties.load` semantics: the Javadoc's examples, edge cases, round trips
//! through a Java-compatible escaper, and a differential test against the real JVM.
#![allow(clippy::disallowed_methods)]

#[path = "common/tmp.rs"]
mod tmp;
use keybroker_core::config::properties::parse;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn kv(s: &str) -> Vec<(String, String)> {
    parse(s.as_bytes())
        .unwrap()
        .into_iter()
        .map(|p| (p.key, p.value))
        .collect()
}

fn one(k: &str, v: &str) -> Vec<(String, String)> {
    vec![(k.to_string(), v.to_string())]
}

#[test]
fn javadoc_truth_beauty() {
    assert_eq!(kv("Truth = Beauty"), one("Truth", "Beauty"));
    assert_eq!(kv(" Truth:Beauty"), one("Truth", "Beauty"));
    assert_eq!(
        kv("Truth                    :Beauty"),
        one("Truth", "Beauty")
    );
}

#[test]
fn javadoc_fruits_continuation() {
    let text = "fruits                           apple, banana, pear, \\\n\
                \x20                                cantaloupe, watermelon, \\\n\
                \x20                                kiwi, mango\n";
    assert_eq!(
        kv(text),
        one(
            "fruits",
            "apple, banana, pear, cantaloupe, watermelon, kiwi, mango"
        )
    );
}

#[test]
fn javadoc_cheeses_and_escaped_separators() {
    assert_eq!(kv("cheeses\n"), one("cheeses", ""));
    assert_eq!(kv("\\:\\="), one(":=", ""));
    assert_eq!(kv("key\\ with\\ spaces = v"), one("key with spaces", "v"));
}

#[test]
fn comments_blank_lines_and_line_numbers() {
    let ps = parse(b"# comment\n! also\n\n  a=1\r\nb = 2 \\\n   3\nc\\\n\n#x\nd=4").unwrap();
    let got: Vec<(&str, &str, usize)> = ps
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str(), p.line))
        .collect();
    assert_eq!(
        got,
        vec![("a", "1", 4), ("b", "2 3", 5), ("c", "", 7), ("d", "4", 10)]
    );
}

#[test]
fn escapes_and_latin1() {
    assert_eq!(
        kv("k=\\t\\n\\r\\f\\\\\\u00e9\\q"),
        one("k", "\t\n\r\u{c}\\éq")
    );
    assert_eq!(parse(b"k=caf\xe9").unwrap()[0].value, "café");
    assert_eq!(kv("k=\\uD83D\\uDE00"), one("k", "😀"));
    assert_eq!(
        kv("k=v   "),
        one("k", "v   "),
        "trailing whitespace is kept"
    );
    assert_eq!(kv("k=a=b:c"), one("k", "a=b:c"));
    assert_eq!(
        kv("k  =  = v"),
        one("k", "= v"),
        "only one separator is skipped"
    );
    assert_eq!(
        kv("k\\"),
        one("k", ""),
        "a backslash at end of file is dropped"
    );
}

#[test]
fn comment_after_continuation_is_a_comment() {
    // Java 9+ LineReader: an empty logical line so far, then '#', is a comment.
    assert_eq!(kv("\\\n#x\nk=v"), one("k", "v"));
    // ...and a comment line does not continue.
    assert_eq!(kv("# a \\\nk=v"), one("k", "v"));
}

#[test]
fn malformed_unicode_escape_is_an_error_with_line() {
    let err = parse(b"a=1\nb=\\u12G4\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(parse(b"a=\\u12").is_err());
    assert_eq!(parse(b"x=1\n\n  bad\\u=\\\n  1").unwrap_err().line, 3);
}

#[test]
fn duplicates_are_all_returned_in_order() {
    assert_eq!(
        kv("a=1\na=2"),
        vec![("a".into(), "1".into()), ("a".into(), "2".into())]
    );
}

/// `Properties.saveConvert` (escUnicode = true): what `Properties.store` writes.
fn java_escape(s: &str, escape_space: bool) -> String {
    let mut out = String::new();
    for (i, u) in s.encode_utf16().enumerate() {
        match u {
            0x20 if i == 0 || escape_space => out.push_str("\\ "),
            0x5c => out.push_str("\\\\"),
            0x09 => out.push_str("\\t"),
            0x0a => out.push_str("\\n"),
            0x0d => out.push_str("\\r"),
            0x0c => out.push_str("\\f"),
            0x3d | 0x3a | 0x23 | 0x21 => {
                out.push('\\');
                out.push(u as u8 as char);
            }
            0x20..=0x7e => out.push(u as u8 as char),
            _ => out.push_str(&format!("\\u{u:04X}")),
        }
    }
    out
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn escaped_pairs_round_trip(pairs in proptest::collection::vec((any::<String>(), any::<String>()), 0..8)) {
        let mut text = String::from("#comment\n");
        for (k, v) in &pairs {
            text.push_str(&java_escape(k, true));
            text.push('=');
            text.push_str(&java_escape(v, false));
            text.push('\n');
        }
        let got: Vec<(String, String)> =
            parse(text.as_bytes()).unwrap().into_iter().map(|p| (p.key, p.value)).collect();
        prop_assert_eq!(got, pairs);
    }
}

/// A tiny Java program printing, per file, the loaded properties (UTF-16 units in hex,
/// lone surrogates as FFFD as our String conversion does) or ERROR.
const DUMP_JAVA: &str = r#"
import java.io.*;
import java.util.*;
public class Dump {
  static String hex(String s) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
        b.append(String.format("%04x%04x", (int) c, (int) s.charAt(i + 1))); i++;
      } else if (Character.isSurrogate(c)) { b.append("fffd"); }
      else { b.append(String.format("%04x", (int) c)); }
    }
    return b.toString();
  }
  public static void main(String[] args) throws Exception {
    for (String f : args) {
      Properties p = new Properties();
      try (InputStream in = new FileInputStream(f)) {
        p.load(in);
      } catch (IllegalArgumentException e) { System.out.println("ERROR"); continue; }
      TreeMap<String, String> m = new TreeMap<>();
      for (String k : p.stringPropertyNames()) m.put(hex(k), hex(p.getProperty(k)));
      StringBuilder b = new StringBuilder("OK");
      for (Map.Entry<String, String> e : m.entrySet()) b.append(' ').append(e.getKey()).append('=').append(e.getValue());
      System.out.println(b);
    }
  }
}
"#;

fn hex(s: &str) -> String {
    s.encode_utf16().map(|u| format!("{u:04x}")).collect()
}

fn ours(bytes: &[u8]) -> String {
    match parse(bytes) {
        Err(_) => "ERROR".into(),
        Ok(ps) => {
            let mut m = BTreeMap::new();
            for p in ps {
                m.insert(hex(&p.key), hex(&p.value));
            }
            let mut s = String::from("OK");
            for (k, v) in m {
                s.push_str(&format!(" {k}={v}"));
            }
            s
        }
    }
}

#[test]
fn differential_against_java() {
    let dir = tmp::dir("props-diff");
    std::fs::write(dir.join("Dump.java"), DUMP_JAVA).unwrap();
    // Deterministic xorshift so a failure reproduces.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const ALPHABET: &[u8] = b"  \t\x0c==::\\\\\\\\##!!\n\n\n\r\r\rabcxyzu0123456789aAfF\xe9\xff";
    let mut files = Vec::new();
    let mut inputs = Vec::new();
    for i in 0..400 {
        let len = (next() % 80) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
            .collect();
        let path = dir.join(format!("{i}.properties"));
        std::fs::write(&path, &bytes).unwrap();
        files.push(path);
        inputs.push(bytes);
    }
    let out = std::process::Command::new("java")
        .arg(dir.join("Dump.java"))
        .args(&files)
        .output()
        .expect("java is required for the differential test (install default-jdk-headless)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let java = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = java.lines().collect();
    assert_eq!(lines.len(), inputs.len());
    let mut errors = 0;
    for (i, (input, want)) in inputs.iter().zip(&lines).enumerate() {
        assert_eq!(
            &ours(input),
            want,
            "file {i}: {:?}",
            String::from_utf8_lossy(input)
        );
        errors += usize::from(*want == "ERROR");
    }
    // The alphabet makes both outcomes common.
    assert!(errors > 5 && errors < 395, "{errors} errors");
    std::fs::remove_dir_all(&dir).unwrap();
}
