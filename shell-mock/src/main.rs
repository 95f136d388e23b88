//! keybroker-sim: `--seeds N` runs seeds 0..N; `--seed S [--faults LIST]` replays one.
use clap::Parser;
use keybroker_sim::{run, Faults};
use std::time::Instant;

/// keybroker-sim: the deterministic simulator. Each seed drives clients, a broker and its
/// backends on a virtual clock with injected faults and checks the invariants.
#[derive(Parser, Debug)]
#[command(
    name = "keybroker-sim",
    version,
    arg_required_else_help = true,
    after_help = "Examples:\n  keybroker-sim --seeds 1000\n  keybroker-sim --seed 42 --faults split,reset\n\nExit codes: 0 every seed ok, 1 a seed failed (printed with its replay line), 2 usage error."
)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["seeds", "seed"])))]
struct Cli {
    /// Run seeds 0 to N-1 and print a summary
    #[arg(long, value_name = "N")]
    seeds: Option<u64>,
    /// Replay one seed and print its trace hash
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// all, none, or a comma-separated list of split, delay, duplicate, reset, clock, shutdown,
    /// malformed, slow (default: each seed picks its own)
    #[arg(long, value_name = "LIST", value_parser = Faults::parse)]
    faults: Option<Faults>,
}

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        if e.use_stderr() && !e.render().to_string().contains("Usage:") {
            eprint!("{}", e.render());
            eprintln!("\n{}", cmd.render_usage());
            std::process::exit(2);
        }
        e.exit()
    });
    std::process::exit(run_cli(cli));
}

fn run_cli(cli: Cli) -> i32 {
    let Cli {
        seeds,
        seed,
        faults,
    } = cli;
    let range = match (seeds, seed) {
        (Some(n), _) => 0..n,
        (None, Some(s)) => s..s + 1,
        (None, None) => unreachable!("clap requires one"),
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
