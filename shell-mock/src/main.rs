//! keybroker-sim: `--seeds N` runs seeds 0..N; `--seed S [--faults LIST]` replays one.
use keybroker_sim::{run, Faults};
use std::time::Instant;

const USAGE: &str = "usage: keybroker-sim --seeds N [--faults LIST] | --seed S [--faults LIST]
  LIST: all | none | comma-separated of split,delay,duplicate,reset,clock,shutdown,malformed,slow
  (default: each seed picks its own faults)";

fn usage(msg: &str) -> i32 {
    eprintln!("keybroker-sim: {msg}\n{USAGE}");
    2
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(cli(&args));
}

fn cli(args: &[String]) -> i32 {
    let mut seeds = None;
    let mut seed = None;
    let mut faults = None;
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1);
        match (args[i].as_str(), v) {
            ("--seeds", Some(v)) => match v.parse::<u64>() {
                Ok(n) => seeds = Some(n),
                Err(_) => return usage("--seeds takes a number"),
            },
            ("--seed", Some(v)) => match v.parse::<u64>() {
                Ok(n) => seed = Some(n),
                Err(_) => return usage("--seed takes a number"),
            },
            ("--faults", Some(v)) => match Faults::parse(v) {
                Ok(f) => faults = Some(f),
                Err(e) => return usage(&e),
            },
            ("--help" | "-h", _) => {
                println!("{USAGE}");
                return 0;
            }
            (a, _) => return usage(&format!("unexpected argument {a}")),
        }
        i += 2;
    }
    let range = match (seeds, seed) {
        (Some(n), None) => 0..n,
        (None, Some(s)) => s..s + 1,
        _ => return usage("give --seeds N or --seed S"),
    };
    let single = seed.is_some();
    let start = Instant::now();
    let (mut ok, mut answers) = (0u64, 0u64);
    for s in range {
        let f = faults.unwrap_or_else(|| Faults::from_seed(s));
        match run(s, f) {
            Ok(o) => {
                ok += 1;
                answers += o.answers;
                if single {
                    println!(
                        "seed {s} faults {f}: ok, {} steps, {} answers, trace {}",
                        o.steps, o.answers, o.trace_hash
                    );
                }
            }
            Err(fail) => {
                println!("seed {s} faults {f}: {fail}");
                return 1;
            }
        }
    }
    if !single {
        println!(
            "{ok} seeds ok, {answers} answers checked, {:.1}s",
            start.elapsed().as_secs_f64()
        );
    }
    0
}
