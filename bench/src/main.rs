fn main() { eprintln!("sfu-bench: not yet implemented (issue 3)"); std::process::exit(2); }
