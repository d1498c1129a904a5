//! Checking operator-supplied values against the manifest, once, when a plugin is
//! configured.

use std::collections::{BTreeMap, HashMap};

use crate::manifest::{FieldType, Manifest};

/// Why a plugin's configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The operator set a key the manifest does not declare.
    #[error("config key `{key}` is not declared by plugin `{plugin}`; declared keys: {declared}")]
    Unknown {
        /// Plugin id.
        plugin: String,
        /// The key.
        key: String,
        /// The keys the manifest declares.
        declared: String,
    },
    /// A required field has no value and no default.
    #[error(
        "config key `{key}` is required by plugin `{plugin}`: set it with --config {key}=VALUE"
    )]
    Missing {
        /// Plugin id.
        plugin: String,
        /// The key.
        key: String,
    },
    /// A value does not fit its declared type.
    #[error("config key `{key}` must be {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// What the type requires.
        expected: &'static str,
    },
}

/// A plugin's configuration after validation, defaults applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedConfig {
    /// Non-secret values.
    pub values: BTreeMap<String, String>,
    /// Secret values, only readable through `config.secret`.
    pub secrets: BTreeMap<String, String>,
}

impl ResolvedConfig {
    /// Validates `given` against the manifest's schema.
    pub fn resolve(
        manifest: &Manifest,
        given: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        for key in given.keys() {
            if manifest.field(key).is_none() {
                let declared: Vec<&str> = manifest.config.iter().map(|f| f.key.as_str()).collect();
                return Err(ConfigError::Unknown {
                    plugin: manifest.id.clone(),
                    key: key.clone(),
                    declared: if declared.is_empty() {
                        "none".into()
                    } else {
                        declared.join(", ")
                    },
                });
            }
        }
        let mut out = Self::default();
        for field in &manifest.config {
            let value = given
                .get(&field.key)
                .cloned()
                .or_else(|| field.default.clone());
            let Some(value) = value else {
                if field.required {
                    return Err(ConfigError::Missing {
                        plugin: manifest.id.clone(),
                        key: field.key.clone(),
                    });
                }
                continue;
            };
            check_type(&field.key, field.field_type, &value)?;
            if field.field_type == FieldType::Secret {
                out.secrets.insert(field.key.clone(), value);
            } else {
                out.values.insert(field.key.clone(), value);
            }
        }
        Ok(out)
    }

    /// Non-secret values as a `HashMap`, for template expansion in egress policies.
    pub fn values_map(&self) -> HashMap<String, String> {
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Non-secret values as the list the role requests carry.
    pub fn values_list(&self) -> Vec<(String, String)> {
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

fn check_type(key: &str, t: FieldType, v: &str) -> Result<(), ConfigError> {
    let wrong = |expected| {
        Err(ConfigError::WrongType {
            key: key.to_owned(),
            expected,
        })
    };
    match t {
        FieldType::String | FieldType::Secret => Ok(()),
        FieldType::Number => {
            if v.trim().parse::<f64>().is_ok_and(f64::is_finite) {
                Ok(())
            } else {
                wrong("a number")
            }
        }
        FieldType::Boolean => {
            if matches!(v, "true" | "false") {
                Ok(())
            } else {
                wrong("`true` or `false`")
            }
        }
        FieldType::Url => match url::Url::parse(v) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
            _ => wrong("an absolute http(s) URL"),
        },
        FieldType::Email => {
            let ok = v
                .split_once('@')
                .is_some_and(|(a, d)| !a.is_empty() && d.contains('.'));
            if ok {
                Ok(())
            } else {
                wrong("an e-mail address")
            }
        }
        FieldType::Json => {
            if serde_json::from_str::<serde_json::Value>(v).is_ok() {
                Ok(())
            } else {
                wrong("valid JSON")
            }
        }
        FieldType::Array => {
            if matches!(
                serde_json::from_str::<serde_json::Value>(v),
                Ok(serde_json::Value::Array(_))
            ) {
                Ok(())
            } else {
                wrong("a JSON array")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Author, ConfigField, ResourceRequest};

    fn manifest() -> Manifest {
        let f = |key: &str, t, required, default: Option<&str>| ConfigField {
            key: key.into(),
            label: key.into(),
            field_type: t,
            description: String::new(),
            required,
            default: default.map(str::to_owned),
        };
        Manifest {
            id: "github".into(),
            name: "GitHub".into(),
            version: "0.1.0".into(),
            description: String::new(),
            author: Author {
                name: "x".into(),
                email: None,
                url: None,
            },
            capabilities: vec![],
            sources: vec![],
            config: vec![
                f(
                    "api-base-url",
                    FieldType::Url,
                    false,
                    Some("https://api.github.com"),
                ),
                f("token", FieldType::Secret, false, None),
                f("per-page", FieldType::Number, false, Some("30")),
                f("user", FieldType::String, true, None),
            ],
            outbound_hosts: vec![],
            min_host_version: "0.1.0".into(),
            resources: ResourceRequest::default(),
            license: None,
            homepage: None,
            webhook: None,
            default_schedules: Vec::new(),
        }
    }

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn defaults_apply_and_secrets_are_kept_apart() {
        let c = ResolvedConfig::resolve(
            &manifest(),
            &given(&[("user", "octocat"), ("token", "t0k")]),
        )
        .unwrap();
        assert_eq!(c.values["api-base-url"], "https://api.github.com");
        assert_eq!(c.values["per-page"], "30");
        assert_eq!(c.secrets["token"], "t0k");
        assert!(!c.values.contains_key("token"));
    }

    #[test]
    fn bad_configuration_names_the_key() {
        let m = manifest();
        let e =
            ResolvedConfig::resolve(&m, &given(&[("user", "x"), ("colour", "red")])).unwrap_err();
        assert!(e.to_string().contains("`colour` is not declared"), "{e}");
        let e = ResolvedConfig::resolve(&m, &given(&[])).unwrap_err();
        assert!(e.to_string().contains("--config user=VALUE"), "{e}");
        let e = ResolvedConfig::resolve(&m, &given(&[("user", "x"), ("per-page", "lots")]))
            .unwrap_err();
        assert!(e.to_string().contains("`per-page` must be a number"), "{e}");
        let e = ResolvedConfig::resolve(
            &m,
            &given(&[("user", "x"), ("api-base-url", "file:///etc")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("http(s) URL"), "{e}");
    }
}
