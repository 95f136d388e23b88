//! keybroker-sim: `--seeds N` runs seeds 0..N; `--seed S` replays one (command line in
//! keybroker-host's `cli::SimCli`).
use clap::{CommandFactory, Parser};
use keybroker_host::cli::{exit_with, SimCli};
use keybroker_sim::{run, BackendChoice, CacheChoice, Faults, Scenario};
use std::time::Instant;

fn main() {
    let cli = SimCli::try_parse().unwrap_or_else(|e| exit_with(e, &mut SimCli::command()));
    let faults = match cli.faults.as_deref().map(Faults::parse).transpose() {
        Ok(f) => f,
        Err(msg) => {
            let e = SimCli::command().error(clap::error::ErrorKind::ValueValidation, msg);
            exit_with(e, &mut SimCli::command())
        }
    };
    let backend = cli
        .backend
        .as_deref()
        .map(|b| BackendChoice::parse(b).expect("clap checked"));
    let cache = cli
        .cache
        .as_deref()
        .map(|c| CacheChoice::parse(c).expect("clap checked"));
    let range = match (cli.seeds, cli.seed) {
        (Some(n), _) => cli.from..cli.from.saturating_add(n),
        (None, Some(s)) => s..s + 1,
        (None, None) => unreachable!("clap requires one"),
    };
    let single = cli.seed.is_some();
    let start = Instant::now();
    let (mut ok, mut answers) = (0u64, 0u64);
    for s in range {
        let sc = Scenario::for_seed(s, backend, cache, faults);
        match run(s, &sc) {
            Ok(o) => {
                ok += 1;
                answers += o.answers;
                if single {
                    println!(
                        "seed {s} backend {} cache {} faults {}: ok, {} steps, {} answers, trace {}",
                        sc.backend.name(),
                        sc.cache.name(),
                        sc.faults,
                        o.steps,
                        o.answers,
                        o.trace_hash
                    );
                }
            }
            Err(fail) => {
                println!("seed {s}: {fail}");
                std::process::exit(1);
            }
        }
    }
    if !single {
        println!(
            "{ok} seeds ok, {answers} answers checked, {:.1}s",
            start.elapsed().as_secs_f64()
        );
    }
}
