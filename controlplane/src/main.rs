//! The `sfud` binary: parse the command line, load the config, run.

use std::process::ExitCode;
use std::time::Duration;

use controlplane::auth::{Authenticator, Grants};
use controlplane::cli::{self, Command, TokenCommand};
use controlplane::config::{self, Config};
use dataplane::topology::Topology;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter};

fn main() -> ExitCode {
    let cli = cli::parse();
    let command = cli.effective_command();
    if let Command::Config(cmd) = &command {
        let code = cli::run_config_command(
            cmd,
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
    match command {
        Command::Token(TokenCommand::Create { room, identity, publish, subscribe, admin, ttl_secs, api_key, namespace }) => {
            token_create(&cfg, room, identity, publish, subscribe, admin, ttl_secs, api_key, namespace)
        }
        Command::Tune { interface } => {
            let plan = controlplane::tune::plan_interface(&Topology::detect(), &cfg, interface.as_deref());
            print!("{plan}");
            if plan.error.is_some() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Command::Config(_) | Command::Run => run(cli, cfg),
    }
}

#[allow(clippy::too_many_arguments)]
fn token_create(
    cfg: &Config,
    room: String,
    identity: String,
    publish: bool,
    subscribe: bool,
    admin: bool,
    ttl_secs: u64,
    api_key: Option<String>,
    namespace: Option<String>,
) -> ExitCode {
    if let Some(ns) = namespace.as_deref().filter(|ns| !controlplane::cluster::valid_namespace(ns)) {
        eprintln!("sfud: --namespace {ns:?}: 1-64 characters of A-Z, a-z, 0-9, '-', '_' or '.'");
        return ExitCode::from(cli::EXIT_CONFIG_ERROR);
    }
    let auth = Authenticator::new(&cfg.auth);
    let grants = Grants {
        room: Some(room),
        room_join: true,
        can_publish: publish,
        can_subscribe: subscribe,
        room_admin: admin,
        ..Default::default()
    };
    match auth.create_token_in(api_key.as_deref(), &identity, grants, Duration::from_secs(ttl_secs), namespace.as_deref()) {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sfud: cannot create a token: {e}");
            ExitCode::from(cli::EXIT_CONFIG_ERROR)
        }
    }
}

fn run(cli: cli::Cli, cfg: Config) -> ExitCode {
    let filter = EnvFilter::try_from_env("RUST_LOG").or_else(|_| EnvFilter::try_new(&cfg.log.level));
    let filter = match filter {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sfud: invalid configuration: log.level: {e}");
            return ExitCode::from(cli::EXIT_CONFIG_ERROR);
        }
    };
    // The filter sits behind a reload handle so SIGHUP can change log.level.
    let (filter, log_handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    if cfg.log.format == "json" {
        registry.with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr)).init();
    } else {
        registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)).init();
    }
    let reload = controlplane::app::Reload {
        config_path: cli.config.clone(),
        set_log_level: Box::new(move |level: &str| {
            let f = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
            log_handle.reload(f).map_err(|e| e.to_string())
        }),
    };
    match controlplane::app::run(cfg, reload) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("sfud: {e:#}");
            ExitCode::FAILURE
        }
    }
}
