//! Experiment files: a YAML document naming a spec, parameter overrides, a duration, seeds
//! (one run each, traces in sub-directories), extra records and the output directory.
//!
//! ```yaml
//! spec: specs/cuba.ng          # relative to this file
//! duration: 2 s
//! seeds: [1, 2, 3]
//! set: { we: 1.7 mV, LIF.taum: 18 ms }
//! record: ["E.v[0..5] every 1 ms"]
//! out: traces/cuba-sweep       # relative to this file; one seed-N sub-directory per seed
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub spec: PathBuf,
    #[serde(default)]
    pub set: BTreeMap<String, serde_yaml_ng::Value>,
    pub duration: Option<String>,
    #[serde(default)]
    pub seeds: Vec<u64>,
    #[serde(default)]
    pub record: Vec<String>,
    pub out: Option<PathBuf>,
}

impl Experiment {
    /// Read an experiment file; paths in it become relative to the current directory.
    pub fn load(path: &Path) -> Result<Experiment, crate::Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| crate::Error::Run(format!("cannot read {}: {e}", path.display())))?;
        let mut exp: Experiment = serde_yaml_ng::from_str(&text).map_err(|e| {
            crate::Error::Value(match e.location() {
                Some(l) => format!("{}:{}:{}: {e}", path.display(), l.line(), l.column()),
                None => format!("{}: {e}", path.display()),
            })
        })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        exp.spec = dir.join(&exp.spec);
        exp.out = exp.out.map(|o| dir.join(o));
        Ok(exp)
    }

    /// `name=value` strings for the overrides, in name order.
    pub fn sets(&self) -> Result<Vec<String>, crate::Error> {
        self.set
            .iter()
            .map(|(k, v)| match v {
                serde_yaml_ng::Value::String(s) => Ok(format!("{k}={s}")),
                serde_yaml_ng::Value::Number(n) => Ok(format!("{k}={n}")),
                other => Err(crate::Error::Value(format!(
                    "set.{k}: expected a value such as `15 ms`, found {other:?}"
                ))),
            })
            .collect()
    }
}
