//! Layering defaults, the TOML file and `SFUD_SECTION__KEY` overrides, with
//! errors that name the key and its origin.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeOwned, Visitor};

use super::{
    ClusterConfig, Config, ConfigError, DataplaneConfig, AuthConfig, WebhookConfig, NodeConfig, DtlsConfig, HttpConfig, LogConfig, MetricsConfig, Origin,
    RoomConfig, LimitsConfig, RtcConfig, TurnConfig, DEFAULT_CONFIG_PATH, ENV_PREFIX, ENV_SEPARATOR,
};

/// The file `load` reads: the explicit path, else the default path if it
/// exists, else none. Useful to log which file is in effect.
pub fn resolve_path(explicit: Option<&Path>) -> Option<PathBuf> {
    resolve_with_default(explicit, Path::new(DEFAULT_CONFIG_PATH))
}

fn resolve_with_default(explicit: Option<&Path>, default: &Path) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None if default.exists() => Some(default.to_path_buf()),
        None => None,
    }
}

/// The process environment as `(name, value)` pairs, skipping variables
/// that are not valid UTF-8 (`std::env::vars` would panic on them).
pub fn env_vars() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}

/// Builds the configuration: defaults, then the file (`path`, which must
/// exist, or `/etc/sfud/sfud.toml` if it exists), then `SFUD_SECTION__KEY`
/// variables from `env`. Does not run `Config::validate`.
pub fn load(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    load_with_default(path, Path::new(DEFAULT_CONFIG_PATH), env)
}

fn load_with_default(
    path: Option<&Path>,
    default: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let mut entries = Entries::default();
    if let Some(file) = resolve_with_default(path, default) {
        let text = std::fs::read_to_string(&file).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ConfigError::NotFound { path: file.clone() }
            } else {
                ConfigError::Read {
                    path: file.clone(),
                    source,
                }
            }
        })?;
        entries.add_file(&file, &text)?;
    }
    // Sorted so that errors, when several variables are wrong, are reported
    // in a stable order.
    let mut env: Vec<(String, String)> = env.into_iter().collect();
    env.sort();
    for (name, value) in env {
        entries.add_env(&name, &value)?;
    }
    entries.build()
}

/// One section's schema: its name, its field names, and a per-key type check.
struct Section {
    name: &'static str,
    fields: fn() -> &'static [&'static str],
    check: fn(&str, &toml::Value) -> Result<(), String>,
}

macro_rules! section {
    ($name:literal, $ty:ty) => {
        Section {
            name: $name,
            fields: field_names::<$ty>,
            check: check_key::<$ty>,
        }
    };
}

const SECTIONS: &[Section] = &[
    section!("http", HttpConfig),
    section!("rtc", RtcConfig),
    section!("turn", TurnConfig),
    section!("dataplane", DataplaneConfig),
    section!("dtls", DtlsConfig),
    section!("metrics", MetricsConfig),
    section!("room", RoomConfig),
    section!("limits", LimitsConfig),
    section!("log", LogConfig),
    section!("auth", AuthConfig),
    section!("webhook", WebhookConfig),
    section!("node", NodeConfig),
    section!("cluster", ClusterConfig),
];

fn find_section(name: &str) -> Option<&'static Section> {
    SECTIONS.iter().find(|s| s.name == name)
}

/// Checking a key alone, as a one-entry table against its section type,
/// lets the error name exactly that key; serde's own messages from the
/// whole document do not carry the path.
fn check_key<T: DeserializeOwned>(key: &str, value: &toml::Value) -> Result<(), String> {
    let mut table = toml::Table::new();
    table.insert(key.to_string(), value.clone());
    toml::Value::Table(table)
        .try_into::<T>()
        .map(|_| ())
        .map_err(|e| {
            // toml appends "in `key`" on its own line; the key is already
            // named by our message, so keep the text to one line.
            let text = e.to_string();
            let text = text.trim();
            let own = format!("in `{key}`");
            text.strip_suffix(own.as_str())
                .unwrap_or(text)
                .trim()
                .replace('\n', "; ")
        })
}

/// The field names serde derived for `T`, read through a deserializer that
/// only records what `deserialize_struct` is told; this keeps the list of
/// known keys from drifting away from the structs.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut found = None;
    let _ = T::deserialize(FieldProbe { found: &mut found });
    found.unwrap_or(&[])
}

struct FieldProbe<'a> {
    found: &'a mut Option<&'static [&'static str]>,
}

impl<'de> de::Deserializer<'de> for FieldProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("field probe"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.found = Some(fields);
        Err(de::Error::custom("field probe"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

struct Entry {
    value: toml::Value,
    origin: Origin,
    /// The raw text of an environment override, kept so a value that parsed
    /// as some other TOML type can still be taken as a plain string.
    raw: Option<String>,
}

#[derive(Default)]
struct Entries {
    sections: BTreeMap<String, BTreeMap<String, Entry>>,
}

impl Entries {
    fn add_file(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim().to_string(),
        })?;
        let origin = Origin::File(path.to_path_buf());
        for (section, value) in table {
            let Some(schema) = find_section(&section) else {
                return Err(ConfigError::UnknownKey {
                    key: section,
                    origin,
                });
            };
            let toml::Value::Table(keys) = value else {
                return Err(ConfigError::InvalidValue {
                    key: section,
                    message: format!(
                        "expected a table of keys (one of: {})",
                        (schema.fields)().join(", ")
                    ),
                    origin,
                });
            };
            let slot = self.sections.entry(section).or_default();
            for (key, value) in keys {
                slot.insert(
                    key,
                    Entry {
                        value,
                        origin: origin.clone(),
                        raw: None,
                    },
                );
            }
        }
        Ok(())
    }

    fn add_env(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            return Ok(());
        };
        let Some((section, key)) = rest.split_once(ENV_SEPARATOR) else {
            // Other SFUD_ variables (SFUD_CONFIG, test knobs) are not ours,
            // but a single underscore where two belong is a likely typo.
            return match single_underscore_hint(rest) {
                Some(hint) => Err(ConfigError::BadEnvVar {
                    var: name.to_string(),
                    message: format!(
                        "not a config override; did you mean {hint}? \
                         (overrides are SFUD_<SECTION>__<KEY>, two underscores)"
                    ),
                }),
                None => Ok(()),
            };
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        if section.is_empty() || key.is_empty() {
            return Err(ConfigError::BadEnvVar {
                var: name.to_string(),
                message: "expected SFUD_<SECTION>__<KEY>, e.g. SFUD_DATAPLANE__SHARDS".into(),
            });
        }
        self.sections.entry(section).or_default().insert(
            key,
            Entry {
                value: parse_env_value(value),
                origin: Origin::Env(name.to_string()),
                raw: Some(value.to_string()),
            },
        );
        Ok(())
    }

    fn build(mut self) -> Result<Config, ConfigError> {
        for (section, keys) in self.sections.iter_mut() {
            for (key, entry) in keys.iter_mut() {
                let dotted = format!("{section}.{key}");
                let schema = find_section(section).filter(|s| (s.fields)().contains(&key.as_str()));
                let Some(schema) = schema else {
                    return Err(ConfigError::UnknownKey {
                        key: dotted,
                        origin: entry.origin.clone(),
                    });
                };
                if let Err(message) = (schema.check)(key, &entry.value) {
                    let as_string = match (&entry.raw, &entry.value) {
                        (Some(raw), v) if !v.is_str() => Some(toml::Value::String(raw.clone())),
                        _ => None,
                    };
                    match as_string {
                        Some(s) if (schema.check)(key, &s).is_ok() => entry.value = s,
                        _ => {
                            let hint =
                                if entry.raw.is_some() && message.contains("expected a sequence") {
                                    "; write a TOML array, e.g. '[\"a\", \"b\"]'"
                                } else {
                                    ""
                                };
                            return Err(ConfigError::InvalidValue {
                                key: dotted,
                                message: format!("{message}{hint}"),
                                origin: entry.origin.clone(),
                            });
                        }
                    }
                }
            }
        }
        let mut root = toml::Table::new();
        for (section, keys) in self.sections {
            let table: toml::Table = keys.into_iter().map(|(k, e)| (k, e.value)).collect();
            root.insert(section, toml::Value::Table(table));
        }
        // Every key was checked above, so this only fails on a bug here.
        toml::Value::Table(root)
            .try_into::<Config>()
            .map_err(|e| ConfigError::Invalid {
                key: "config".into(),
                message: e.to_string().trim().to_string(),
            })
    }
}

/// `SFUD_DATAPLANE_SHARDS` -> `Some("SFUD_DATAPLANE__SHARDS")`.
fn single_underscore_hint(rest: &str) -> Option<String> {
    let lower = rest.to_ascii_lowercase();
    SECTIONS.iter().find_map(|s| {
        let key = lower.strip_prefix(s.name)?.strip_prefix('_')?;
        (s.fields)().contains(&key).then(|| {
            format!(
                "{ENV_PREFIX}{}{ENV_SEPARATOR}{}",
                s.name.to_ascii_uppercase(),
                key.to_ascii_uppercase()
            )
        })
    })
}

/// An override's value as a TOML value (`2`, `true`, `["a"]`, `"quoted"`),
/// or the plain string when it is not one (`info`, `0.0.0.0:7880`).
fn parse_env_value(raw: &str) -> toml::Value {
    // Parsed as the right-hand side of a one-key document; more than one key
    // means the text smuggled in a newline, so it is taken literally.
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) if t.len() == 1 => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        _ => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MAX_SHARDS;
    use std::net::IpAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn temp_file(contents: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sfud-config-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sfud.toml");
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn no_default() -> &'static Path {
        Path::new("/nonexistent/sfud-test/sfud.toml")
    }

    fn load_text(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let path = temp_file(text);
        let result = load_with_default(Some(&path), no_default(), env(vars));
        if let Some(dir) = path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
        result
    }

    #[test]
    fn no_file_gives_defaults_that_validate() {
        let c = load_with_default(None, no_default(), env(&[])).unwrap();
        assert_eq!(c, Config::default());
        c.validate().unwrap();
        assert_eq!(c.http.listen.port(), 7880);
        assert_eq!(c.rtc.tcp_port, 7881);
        assert_eq!(c.rtc.udp_port, 7882);
        assert_eq!(c.turn.udp_port, 3478);
        assert_eq!(c.metrics.listen.port(), 6789);
    }

    #[test]
    fn default_path_used_when_present() {
        let path = temp_file("[room]\nmax_participants = 7\n");
        let c = load_with_default(None, &path, env(&[])).unwrap();
        assert_eq!(c.room.max_participants, 7);
        assert_eq!(resolve_with_default(None, &path), Some(path.clone()));
        assert_eq!(resolve_with_default(None, no_default()), None);
    }

    #[test]
    fn explicit_path_must_exist() {
        let err = load_with_default(Some(no_default()), no_default(), env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("not found"));
    }

    #[test]
    fn file_values_apply() {
        let c = load_text(
            r#"
            [http]
            listen = "127.0.0.1:9000"
            [rtc]
            nat_1to1 = ["203.0.113.7"]
            interfaces = ["eth0"]
            [dataplane]
            shards = 2
            cores = [0, 1]
            [dtls]
            cert_file = "/tmp/c.pem"
            "#,
            &[],
        )
        .unwrap();
        assert_eq!(c.http.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(
            c.rtc.nat_1to1,
            vec!["203.0.113.7".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(c.rtc.interfaces, vec!["eth0".to_string()]);
        assert_eq!(c.dataplane.shards, 2);
        assert_eq!(c.dataplane.cores, vec![0, 1]);
        assert_eq!(c.dtls.cert_file, Some(PathBuf::from("/tmp/c.pem")));
        // Untouched keys keep defaults.
        assert_eq!(c.rtc.udp_port, 7882);
        assert_eq!(c.http.max_body_bytes, 65536);
    }

    #[test]
    fn env_overrides_file_and_parses_toml_values() {
        let c = load_text(
            "[dataplane]\nshards = 4\n",
            &[
                ("SFUD_DATAPLANE__SHARDS", "2"),
                ("SFUD_RTC__NAT_1TO1", r#"["203.0.113.7", "2001:db8::1"]"#),
                ("SFUD_LOG__LEVEL", "info,dataplane=debug"),
                ("SFUD_HTTP__LISTEN", "127.0.0.1:8080"),
                ("SFUD_RTC__BIND_ADDRESS", "10.1.2.3"),
                ("SFUD_DATAPLANE__BUSY_POLL", "true"),
                ("SFUD_LOG__FORMAT", "\"json\""),
                ("SFUD_CONFIG", "/ignored"),
                ("PATH", "/usr/bin"),
            ],
        )
        .unwrap();
        assert_eq!(c.dataplane.shards, 2);
        assert_eq!(c.rtc.nat_1to1.len(), 2);
        assert_eq!(c.log.level, "info,dataplane=debug");
        assert_eq!(c.http.listen.port(), 8080);
        assert_eq!(c.rtc.bind_address, "10.1.2.3".parse::<IpAddr>().unwrap());
        assert!(c.dataplane.busy_poll);
        assert_eq!(c.log.format, "json");
    }

    #[test]
    fn env_value_of_other_type_falls_back_to_string_for_string_keys() {
        let c = load_with_default(
            None,
            no_default(),
            env(&[("SFUD_TURN__REALM", "42"), ("SFUD_DTLS__CERT_FILE", "true")]),
        )
        .unwrap();
        assert_eq!(c.turn.realm, "42");
        assert_eq!(c.dtls.cert_file, Some(PathBuf::from("true")));
    }

    #[test]
    fn wrong_type_in_file_names_key_and_file() {
        let err = load_text("[dataplane]\nshards = \"x\"\n", &[]).unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.key(), Some("dataplane.shards"));
        assert!(
            msg.starts_with("dataplane.shards: invalid type: string \"x\", expected usize"),
            "{msg}"
        );
        assert!(msg.contains("in file "), "{msg}");
    }

    #[test]
    fn wrong_type_in_env_names_key_and_variable() {
        let err = load_with_default(None, no_default(), env(&[("SFUD_DATAPLANE__SHARDS", "x")]))
            .unwrap_err();
        let msg = err.to_string();
        assert_eq!(
            msg,
            "dataplane.shards: invalid type: string \"x\", expected usize \
             (from environment variable SFUD_DATAPLANE__SHARDS)"
        );
        let err = load_with_default(None, no_default(), env(&[("SFUD_RTC__UDP_PORT", "70000")]))
            .unwrap_err();
        assert_eq!(err.key(), Some("rtc.udp_port"), "{err}");
        let err = load_with_default(
            None,
            no_default(),
            env(&[("SFUD_RTC__NAT_1TO1", "[\"nope\"]")]),
        )
        .unwrap_err();
        assert_eq!(err.key(), Some("rtc.nat_1to1"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = load_text("[rtc]\nudp_prot = 1\n", &[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown key rtc.udp_prot (in file "),
            "{err}"
        );
        let err = load_text("[rtcc]\nudp_port = 1\n", &[]).unwrap_err();
        assert_eq!(err.key(), Some("rtcc"), "{err}");
        let err = load_text("shards = 1\n", &[]).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err}");
        let err = load_text("rtc = 1\n", &[]).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidValue { .. }), "{err}");
        let err =
            load_with_default(None, no_default(), env(&[("SFUD_RTC__UDP_PROT", "1")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key rtc.udp_prot (from environment variable SFUD_RTC__UDP_PROT)"
        );
    }

    #[test]
    fn single_underscore_override_gets_a_hint() {
        let err = load_with_default(None, no_default(), env(&[("SFUD_DATAPLANE_SHARDS", "2")]))
            .unwrap_err();
        assert!(err.to_string().contains("SFUD_DATAPLANE__SHARDS"), "{err}");
        // Unrelated SFUD_ variables are left alone.
        load_with_default(None, no_default(), env(&[("SFUD_SOMETHING", "2")])).unwrap();
    }

    #[test]
    fn syntax_error_names_file() {
        let err = load_text("[dataplane\nshards = 1", &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    }

    #[test]
    fn toml_round_trip() {
        let mut c = Config::default();
        c.dtls.cert_file = Some("/a".into());
        c.dtls.key_file = Some("/b".into());
        c.rtc.nat_1to1 = vec!["203.0.113.7".parse().unwrap()];
        for config in [Config::default(), c] {
            let text = config.to_toml();
            let path = temp_file(&text);
            let back = load_with_default(Some(&path), no_default(), env(&[])).unwrap();
            assert_eq!(back, config, "{text}");
        }
    }

    /// docs/configuration.md documents every key, and its sample file is
    /// exactly the defaults.
    #[test]
    fn docs_follow_the_code() {
        let doc = include_str!("../../../docs/configuration.md");
        for s in SECTIONS {
            let heading = format!("### `[{}]`", s.name);
            let start = doc.find(&heading).unwrap_or_else(|| panic!("docs lack {heading}"));
            let body = &doc[start + heading.len()..];
            let body = &body[..body.find("\n### ").unwrap_or(body.len())];
            for key in (s.fields)() {
                assert!(
                    body.contains(&format!("| `{key}` |")),
                    "docs lack {}.{key}",
                    s.name
                );
            }
        }
        let sample = doc.split("```toml\n").nth(1).expect("docs lack a toml sample");
        let sample = &sample[..sample.find("```").expect("unterminated sample")];
        let mut entries = Entries::default();
        entries.add_file(Path::new("docs/configuration.md"), sample).unwrap();
        assert_eq!(entries.build().unwrap(), Config::default());
    }

    #[test]
    fn sections_cover_config() {
        let top = field_names::<Config>();
        assert_eq!(top.len(), SECTIONS.len());
        for s in SECTIONS {
            assert!(top.contains(&s.name), "{}", s.name);
            assert!(!(s.fields)().is_empty(), "{}", s.name);
        }
        assert_eq!(field_names::<DtlsConfig>(), &["cert_file", "key_file"][..]);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_file_text_never_panics(text in "\\PC{0,200}") {
                let mut entries = Entries::default();
                if entries.add_file(Path::new("t.toml"), &text).is_ok() {
                    let _ = entries.build();
                }
            }

            #[test]
            fn arbitrary_section_tables_never_panic(
                section in "(http|rtc|turn|dataplane|dtls|metrics|room|log)",
                key in "(shards|cores|udp_port|listen|level|nat_1to1|enabled|io_memory|cert_file|[a-z_0-9]{1,8})",
                value in "(\"[a-z0-9.:]{0,10}\"|-?[0-9]{1,22}|true|\\[[0-9, ]{0,10}\\]|[0-9.]{1,8})",
            ) {
                let text = format!("[{section}]\n{key} = {value}\n");
                let mut entries = Entries::default();
                if entries.add_file(Path::new("t.toml"), &text).is_ok() {
                    if let Ok(c) = entries.build() {
                        let _ = c.validate();
                    }
                }
            }

            #[test]
            fn arbitrary_env_never_panics(
                section in "[A-Z_]{0,12}", key in "[A-Z0-9_]{0,12}", value in "\\PC{0,60}"
            ) {
                let name = format!("SFUD_{section}__{key}");
                if let Ok(c) = load_with_default(None, no_default(), vec![(name, value)]) {
                    let _ = c.validate();
                    let _ = c.to_toml();
                }
            }

            #[test]
            fn shards_override_round_trips(n in 0usize..100_000) {
                let c = load_with_default(
                    None, no_default(),
                    vec![("SFUD_DATAPLANE__SHARDS".to_string(), n.to_string())],
                ).unwrap();
                prop_assert_eq!(c.dataplane.shards, n);
                prop_assert_eq!(c.validate().is_ok(), n <= MAX_SHARDS);
            }
        }
    }
}
