//! The `sfud` binary: parse the command line, load the config, run.

use std::process::ExitCode;

use controlplane::cli::{self, Command};
use controlplane::config;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = cli::parse();
    if let Command::Config(cmd) = cli.effective_command() {
        let code = cli::run_config_command(
            &cmd,
            cli.config.as_deref(),
            config::env_vars(),
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        );
        return ExitCode::from(code);
    }
    let cfg = match cli.load_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sfud: invalid configuration: {e}");
            return ExitCode::from(cli::EXIT_CONFIG_ERROR);
        }
    };
    let filter = EnvFilter::try_from_env("RUST_LOG").or_else(|_| EnvFilter::try_new(&cfg.log.level));
    let filter = match filter {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sfud: invalid configuration: log.level: {e}");
            return ExitCode::from(2);
        }
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cfg.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    match controlplane::app::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("sfud: {e:#}");
            ExitCode::FAILURE
        }
    }
}
