use clap::Parser;

/// transformer
#[derive(Debug, Parser)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
}
