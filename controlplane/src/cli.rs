//! Command line of the `sfud` binary.
//!
//! `sfud [--config PATH] [COMMAND]`, where running the server is the default
//! command. New commands (`token create`, `tune`) are added as variants of
//! `Command`; `--config` is global so every command sees the same
//! configuration.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::config::{self, Config, ConfigError};

const AFTER_HELP: &str = "\
Run `sfud --help` for configuration and default ports; every key is described in docs/configuration.md.";

const AFTER_LONG_HELP: &str = "\
CONFIGURATION
  sfud runs with built-in defaults and no file at all. Settings apply in this
  order, later ones winning:
    1. built-in defaults;
    2. a TOML file: --config PATH (or SFUD_CONFIG=PATH), which must exist,
       else /etc/sfud/sfud.toml when it exists;
    3. environment variables SFUD_<SECTION>__<KEY> (two underscores between
       section and key). A value is read as a TOML value, or as a plain string
       when it is not one:
         SFUD_DATAPLANE__SHARDS=2
         SFUD_RTC__NAT_1TO1='[\"203.0.113.7\"]'
         SFUD_LOG__LEVEL=info,dataplane=debug
  Unknown keys and values of the wrong type are errors naming the key and
  where it came from, e.g.
    dataplane.shards: invalid type: string \"x\", expected usize (from environment variable SFUD_DATAPLANE__SHARDS)
  `sfud config check` validates the configuration; `sfud config print` shows
  the effective configuration as TOML.

DEFAULT PORTS
  HTTP/WebSocket (WHIP, WHEP, API)   7880/tcp   http.listen
  ICE-TCP                            7881/tcp   rtc.tcp_port
  media (ICE, DTLS, SRTP)            7882/udp   rtc.udp_port
  TURN/STUN (when turn.enabled)      3478/udp   turn.udp_port
  metrics (Prometheus /metrics)      6789/tcp   metrics.listen

Every key, its type, default and meaning: docs/configuration.md";

/// Exit status of a configuration error, for `config check` and friends.
pub const EXIT_CONFIG_ERROR: u8 = 2;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "sfud",
    version,
    about = "sfud: a WebRTC SFU with a sharded, core-pinned media plane",
    after_help = AFTER_HELP,
    after_long_help = AFTER_LONG_HELP
)]
pub struct Cli {
    /// TOML config file; it must exist. Without it /etc/sfud/sfud.toml is
    /// read if present, else built-in defaults apply
    #[arg(
        short = 'c',
        long,
        value_name = "PATH",
        env = "SFUD_CONFIG",
        global = true
    )]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run the server (the default when no command is given)
    Run,
    /// Check or print the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Access tokens (JWT HS256 signed with a key from [auth] keys)
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print a core plan for this host: shard CPUs, controlplane CPUs, NIC IRQs, sysctls
    Tune {
        /// The NIC that carries media (its NUMA node and IRQs); default: all non-loopback
        #[arg(long, value_name = "IF")]
        interface: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum TokenCommand {
    /// Print a token for one identity in one room
    Create {
        /// Room the token is for
        #[arg(long)]
        room: String,
        /// Participant identity (JWT `sub`)
        #[arg(long)]
        identity: String,
        /// Grant canPublish (WHIP, publishing in rooms)
        #[arg(long)]
        publish: bool,
        /// Grant canSubscribe (WHEP, subscribing in rooms)
        #[arg(long)]
        subscribe: bool,
        /// Grant roomAdmin for the room (admin API)
        #[arg(long)]
        admin: bool,
        /// Lifetime in seconds
        #[arg(long, default_value_t = 21600)]
        ttl_secs: u64,
        /// Which [auth] keys entry signs it; default: the first
        #[arg(long)]
        api_key: Option<String>,
        /// Confine the token to this namespace (the `ns` claim, docs/cluster.md)
        #[arg(long)]
        namespace: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration; print "ok" or the error (exit status 2)
    Check,
    /// Print the effective configuration as TOML, environment overrides applied
    Print,
}

/// Parses the process arguments; exits with usage on error, as clap does.
pub fn parse() -> Cli {
    Cli::parse()
}

impl Cli {
    /// The command to run: the one given, else `run`.
    pub fn effective_command(&self) -> Command {
        self.command.clone().unwrap_or(Command::Run)
    }

    /// Loads the configuration this invocation selects, with the process
    /// environment's overrides, and validates it.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        let config = config::load(self.config.as_deref(), config::env_vars())?;
        config.validate()?;
        Ok(config)
    }
}

/// Runs a `config` subcommand, writing to `out`/`err`, and returns the exit
/// status (0, or `EXIT_CONFIG_ERROR`). Taking the environment and writers as
/// arguments keeps it testable.
pub fn run_config_command(
    command: &ConfigCommand,
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let loaded = config::load(path, env);
    // Write failures (a closed pipe) leave nothing useful to report to.
    match (command, loaded) {
        (_, Err(e)) => {
            let _ = writeln!(err, "error: {e}");
            EXIT_CONFIG_ERROR
        }
        (ConfigCommand::Check, Ok(c)) => match c.validate() {
            Ok(()) => {
                let _ = writeln!(out, "ok");
                0
            }
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                EXIT_CONFIG_ERROR
            }
        },
        (ConfigCommand::Print, Ok(c)) => {
            let _ = write!(out, "{}", c.to_toml());
            match c.validate() {
                Ok(()) => 0,
                Err(e) => {
                    let _ = writeln!(err, "error: {e}");
                    EXIT_CONFIG_ERROR
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse_args(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("sfud").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_is_default() {
        let cli = parse_args(&[]).unwrap();
        assert_eq!(cli.effective_command(), Command::Run);
        let cli = parse_args(&["run"]).unwrap();
        assert_eq!(cli.effective_command(), Command::Run);
    }

    #[test]
    fn config_subcommands_and_global_flag() {
        let cli = parse_args(&["config", "check", "--config", "/x.toml"]).unwrap();
        assert_eq!(
            cli.effective_command(),
            Command::Config(ConfigCommand::Check)
        );
        assert_eq!(cli.config.as_deref(), Some(Path::new("/x.toml")));
        let cli = parse_args(&["-c", "/y.toml", "config", "print"]).unwrap();
        assert_eq!(
            cli.effective_command(),
            Command::Config(ConfigCommand::Print)
        );
        assert_eq!(cli.config.as_deref(), Some(Path::new("/y.toml")));
        assert!(parse_args(&["config"]).is_err());
        assert!(parse_args(&["bogus"]).is_err());
    }

    #[test]
    fn long_help_explains_config_and_ports() {
        let help = Cli::command().render_long_help().to_string();
        for needle in [
            "/etc/sfud/sfud.toml",
            "--config",
            "SFUD_DATAPLANE__SHARDS=2",
            "SFUD_<SECTION>__<KEY>",
            "7880",
            "7881",
            "7882",
            "3478",
            "6789",
            "docs/configuration.md",
        ] {
            assert!(help.contains(needle), "help lacks {needle}:\n{help}");
        }
    }

    fn run(cmd: ConfigCommand, env: &[(&str, &str)]) -> (u8, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // An explicit path keeps the machine's /etc out of the test.
        let dir = std::env::temp_dir().join(format!("sfud-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.toml");
        std::fs::write(&path, "").unwrap();
        let code = run_config_command(&cmd, Some(&path), env, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn config_check_reports_ok_and_errors() {
        assert_eq!(
            run(ConfigCommand::Check, &[]),
            (0, "ok\n".into(), String::new())
        );
        let (code, out, err) = run(ConfigCommand::Check, &[("SFUD_DATAPLANE__SHARDS", "x")]);
        assert_eq!(code, EXIT_CONFIG_ERROR);
        assert!(out.is_empty());
        assert!(err.contains("dataplane.shards"), "{err}");
        let (code, _, err) = run(ConfigCommand::Check, &[("SFUD_DATAPLANE__SHARDS", "1000")]);
        assert_eq!(code, EXIT_CONFIG_ERROR);
        assert!(err.contains("dataplane.shards"), "{err}");
    }

    #[test]
    fn config_print_applies_env() {
        let (code, out, err) = run(ConfigCommand::Print, &[("SFUD_DATAPLANE__SHARDS", "3")]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("[dataplane]"), "{out}");
        assert!(out.contains("shards = 3"), "{out}");
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_config_command(
            &ConfigCommand::Check,
            Some(Path::new("/nonexistent/sfud.toml")),
            Vec::new(),
            &mut out,
            &mut err,
        );
        assert_eq!(code, EXIT_CONFIG_ERROR);
        assert!(String::from_utf8(err).unwrap().contains("not found"));
    }
}
