//! The `tidings` binary: parse arguments, start logging, run the command, and
//! map the outcome to an exit code: 0 success, 1 a failure explained in one
//! line on stderr, 2 bad usage.

use std::process::ExitCode;

use clap::Parser;
use tidings::cli::{self, Cli, UsageError};

fn main() -> ExitCode {
    let args = Cli::parse();
    tidings::telemetry::init(args.log_format);
    // reqwest is built without a default TLS provider; ring is the one chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(e) if e.is::<UsageError>() => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {}", one_line(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Keep the message on one line, whatever a nested error put in it.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
