//! Maps a path inside a YAML document (`resources[3].mode`) to its line and
//! column. Only used when there is something to report, so the fast path
//! (a valid recipe) never pays for a second parse.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

/// One step of a path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path into a YAML document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct YamlPath(pub Vec<Seg>);

impl YamlPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    pub fn key(&self, k: impl Into<String>) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.into()));
        p
    }

    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

impl std::fmt::Display for YamlPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if n == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// Positions of every node of one document, by path.
#[derive(Debug, Default)]
pub struct Locations {
    values: HashMap<YamlPath, (usize, usize)>,
    keys: HashMap<YamlPath, (usize, usize)>,
}

enum Frame {
    Seq { path: YamlPath, next: usize },
    Map { path: YamlPath, pending_key: Option<String> },
}

impl Locations {
    /// Parses `text` and records where each node starts. A syntax error stops
    /// the walk; positions found so far are kept.
    pub fn of(text: &str) -> Self {
        let mut out = Locations::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut root_seen = false;
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let pos = (span.start.line(), span.start.col() + 1);
            // Where does this node live?
            let is_node = matches!(
                event,
                Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..) | Event::Alias(..)
            );
            let mut node_path = None;
            if is_node {
                match stack.last_mut() {
                    None if !root_seen => {
                        root_seen = true;
                        node_path = Some(YamlPath::root());
                    }
                    None => {}
                    Some(Frame::Seq { path, next }) => {
                        node_path = Some(path.index(*next));
                        *next += 1;
                    }
                    Some(Frame::Map { path, pending_key }) => match pending_key.take() {
                        Some(k) => node_path = Some(path.key(k)),
                        None => {
                            // This node is a key.
                            if let Event::Scalar(v, ..) = &event {
                                let key = v.to_string();
                                out.keys.insert(path.key(key.clone()), pos);
                                *pending_key = Some(key);
                            } else {
                                *pending_key = Some(String::from("?"));
                            }
                            if !matches!(event, Event::Scalar(..) | Event::Alias(..)) {
                                // A complex key: skip its contents by pushing a throwaway frame.
                                let p = path.key("?");
                                stack.push(match event {
                                    Event::SequenceStart(..) => Frame::Seq { path: p, next: 0 },
                                    _ => Frame::Map { path: p, pending_key: None },
                                });
                            }
                            continue;
                        }
                    },
                }
            }
            match event {
                Event::SequenceStart(..) => {
                    let path = node_path.unwrap_or_default();
                    out.values.insert(path.clone(), pos);
                    stack.push(Frame::Seq { path, next: 0 });
                }
                Event::MappingStart(..) => {
                    let path = node_path.unwrap_or_default();
                    out.values.insert(path.clone(), pos);
                    stack.push(Frame::Map { path, pending_key: None });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    stack.pop();
                }
                Event::Scalar(..) | Event::Alias(..) => {
                    if let Some(p) = node_path {
                        out.values.insert(p, pos);
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Where the value at `path` starts, or the nearest ancestor's position.
    pub fn value(&self, path: &YamlPath) -> (usize, usize) {
        self.nearest(path, &self.values)
    }

    /// Where the key of the mapping entry at `path` starts (falls back to the value).
    pub fn key(&self, path: &YamlPath) -> (usize, usize) {
        self.keys.get(path).copied().unwrap_or_else(|| self.value(path))
    }

    fn nearest(&self, path: &YamlPath, map: &HashMap<YamlPath, (usize, usize)>) -> (usize, usize) {
        let mut p = path.clone();
        loop {
            if let Some(pos) = map.get(&p).or_else(|| self.keys.get(&p)) {
                return *pos;
            }
            if p.0.pop().is_none() {
                return (0, 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_positions() {
        let text = "name: web\nresources:\n  - file: /etc/motd\n    mode: 644\n  - exec: x\n";
        let loc = Locations::of(text);
        let r1 = YamlPath::root().key("resources").index(0);
        assert_eq!(loc.key(&r1.key("mode")), (4, 5));
        assert_eq!(loc.value(&r1.key("mode")), (4, 11));
        assert_eq!(loc.value(&YamlPath::root().key("resources").index(1)), (5, 5));
        assert_eq!(loc.key(&YamlPath::root().key("name")), (1, 1));
    }
}
