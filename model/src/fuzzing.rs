//! The entry points the fuzz targets (`fuzz/`) drive, shared with the
//! regression test that replays their saved inputs
//! (`model/tests/fuzz_corpus.rs`), so that both exercise exactly the same
//! code. Each takes untrusted input and must return, never panic, hang or
//! exhaust memory.

use std::collections::BTreeMap;

use crate::automation::{self, Automation};
use crate::bundle::Bundle;
use crate::document::Document;

/// A recipe file, validated as `tend-agent validate` and the server do.
pub fn recipe(text: &str) -> Result<crate::Plan, crate::Diagnostics> {
    let files = BTreeMap::from([
        ("r.yaml".to_string(), text.to_string()),
        ("t.hbs".to_string(), "{{facts.hostname}} {{#each params}}{{@key}}{{/each}}\n".to_string()),
        // A component and a data level the input can reach (`use: c`, `data: {hierarchy: [d.yaml]}`).
        (
            "components/c.yaml".to_string(),
            "kind: Component\nname: c\nparameters:\n  p: { type: string, default: x }\nresources:\n  - file: \"/tmp/c/{{name}}\"\n    content: \"{{params.p}}\"\n".to_string(),
        ),
        ("d.yaml".to_string(), "p: 1\nq: [a, b]\n".to_string()),
    ]);
    let bundle = Bundle { name: "fuzz".into(), root: "r.yaml".into(), files, signature: None };
    bundle.validate(&crate::facts::skeleton())
}

/// A template, rendered against the fact skeleton and a few parameters.
pub fn template(text: &str) {
    use std::sync::OnceLock;
    static CTX: OnceLock<serde_json::Value> = OnceLock::new();
    static RENDERER: OnceLock<crate::render::Renderer> = OnceLock::new();
    let ctx = CTX.get_or_init(|| {
        serde_json::json!({
            "facts": crate::facts::skeleton(),
            "params": { "s": "x", "n": 3, "b": true, "l": [1, 2], "m": { "k": "v" } },
        })
    });
    let _ = RENDERER.get_or_init(Default::default).render(text, ctx);
}

/// A command or automation document.
pub fn document(text: &str) {
    if automation::is_automation(text) {
        let _ = Automation::parse("doc.yaml", text);
    } else {
        let _ = Document::parse("doc.yaml", text);
    }
}

/// A bundle as pushed (JSON), then validated.
pub fn bundle(bytes: &[u8]) {
    if let Ok(b) = serde_json::from_slice::<Bundle>(bytes) {
        let _ = b.validate(&crate::facts::skeleton());
    }
}

/// One of the server's request bodies: the first byte picks which.
pub fn api_body(bytes: &[u8]) {
    let Some((which, body)) = bytes.split_first() else { return };
    use crate::wire::*;
    fn parse<T: serde::de::DeserializeOwned>(b: &[u8]) -> Option<T> {
        serde_json::from_slice(b).ok()
    }
    match which % 10 {
        0 => {
            if let Some(r) = parse::<RegisterRequest>(body) {
                let _ = crate::names::hostname(&r.hostname);
                let _ = crate::names::tags(&r.tags);
            }
        }
        1 => {
            if let Some(a) = parse::<ActivationCreate>(body) {
                let _ = crate::names::tags(&a.tags);
            }
        }
        2 => {
            if let Some(t) = parse::<TokenCreate>(body) {
                let _ = crate::names::object_name("token", &t.name);
            }
        }
        3 => {
            if let Some(a) = parse::<AssignmentCreate>(body) {
                let _ = matches_targets(&a.targets, "n-1", &BTreeMap::from([("role".into(), "web".into())]));
            }
        }
        4 => {
            let _ = parse::<crate::command::CommandCreate>(body);
        }
        5 => {
            let _ = parse::<crate::association::AssociationCreate>(body);
        }
        6 => {
            let _ = parse::<crate::automation::ExecutionStart>(body);
        }
        7 => {
            let _ = parse::<crate::automation::Decision>(body);
        }
        8 => {
            let _ = parse::<crate::command::InvocationResult>(body);
        }
        _ => {
            let _ = parse::<serde_json::Value>(body);
        }
    }
}
