use clap::Parser;

/// worker
#[derive(Debug, Parser)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
}
