use clap::Parser;

/// simulator
#[derive(Debug, Parser)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
}
