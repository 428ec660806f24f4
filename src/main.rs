//! The `tidings` binary: parse arguments, start logging, run the command.

fn main() {}
