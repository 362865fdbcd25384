//! Custom facts from `*.yaml` files in the facts directory, merged in name
//! order under `facts.custom`.

use std::path::Path;

use serde_json::{Map, Value};

pub fn load(dir: &Path) -> Value {
    let mut out = Map::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Value::Object(out);
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    for f in files {
        let parsed = std::fs::read_to_string(&f).map_err(|e| e.to_string()).and_then(|t| {
            tend_model::yaml::parse::<Value>(&t, &tend_model::yaml::YamlLimits::CONFIG).map_err(|e| e.to_string())
        });
        match parsed {
            Ok(Value::Object(m)) => out.extend(m),
            Ok(Value::Null) => {}
            Ok(_) => {
                tracing::warn!(file = %f.display(), "custom facts file is not a mapping; ignored")
            }
            Err(e) => {
                tracing::warn!(file = %f.display(), error = %e, "custom facts file is invalid; ignored")
            }
        }
    }
    Value::Object(out)
}
