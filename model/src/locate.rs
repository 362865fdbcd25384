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

/// Positions of every node of one document, as a tree of path segments:
/// each node stores its own segment once (a key string is kept once, not in
/// every descendant's path), so the memory is linear in the document.
#[derive(Debug, Default)]
pub struct Locations {
    /// Node 0 is the root.
    nodes: Vec<NodePos>,
    children: HashMap<(u32, Seg), u32>,
}

#[derive(Debug, Default, Clone, Copy)]
struct NodePos {
    value: Option<(u32, u32)>,
    key: Option<(u32, u32)>,
}

enum Frame {
    Seq { node: u32, next: usize },
    Map { node: u32, pending_key: Option<String> },
}

fn pos32((l, c): (usize, usize)) -> (u32, u32) {
    (u32::try_from(l).unwrap_or(u32::MAX), u32::try_from(c).unwrap_or(u32::MAX))
}

impl Locations {
    /// Parses `text` and records where each node starts. A syntax error stops
    /// the walk; positions found so far are kept.
    pub fn of(text: &str) -> Self {
        let mut out = Locations { nodes: vec![NodePos::default()], children: HashMap::new() };
        let mut stack: Vec<Frame> = Vec::new();
        let mut root_seen = false;
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let pos = pos32((span.start.line(), span.start.col() + 1));
            // Where does this node live?
            let is_node = matches!(
                event,
                Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..) | Event::Alias(..)
            );
            let mut node = None;
            if is_node {
                match stack.last_mut() {
                    None if !root_seen => {
                        root_seen = true;
                        node = Some(0);
                    }
                    None => {}
                    Some(Frame::Seq { node: parent, next }) => {
                        let (parent, i) = (*parent, *next);
                        *next += 1;
                        node = Some(out.child(parent, Seg::Index(i)));
                    }
                    Some(Frame::Map { node: parent, pending_key }) => {
                        let parent = *parent;
                        match pending_key.take() {
                            Some(k) => node = Some(out.child(parent, Seg::Key(k))),
                            None => {
                                // This node is a key.
                                if let Event::Scalar(v, ..) = &event {
                                    let key = v.to_string();
                                    let id = out.child(parent, Seg::Key(key.clone()));
                                    out.nodes[id as usize].key = Some(pos);
                                    *pending_key = Some(key);
                                } else {
                                    *pending_key = Some(String::from("?"));
                                }
                                if !matches!(event, Event::Scalar(..) | Event::Alias(..)) {
                                    // A complex key: skip its contents by pushing a throwaway frame.
                                    let id = out.child(parent, Seg::Key("?".into()));
                                    stack.push(match event {
                                        Event::SequenceStart(..) => Frame::Seq { node: id, next: 0 },
                                        _ => Frame::Map { node: id, pending_key: None },
                                    });
                                }
                                continue;
                            }
                        }
                    }
                }
            }
            match event {
                Event::SequenceStart(..) | Event::MappingStart(..) => {
                    let id = node.unwrap_or(0);
                    out.nodes[id as usize].value = Some(pos);
                    stack.push(match event {
                        Event::SequenceStart(..) => Frame::Seq { node: id, next: 0 },
                        _ => Frame::Map { node: id, pending_key: None },
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    stack.pop();
                }
                Event::Scalar(..) | Event::Alias(..) => {
                    if let Some(id) = node {
                        out.nodes[id as usize].value = Some(pos);
                    }
                }
                _ => {}
            }
        }
        out
    }

    fn child(&mut self, parent: u32, seg: Seg) -> u32 {
        let next = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
        let id = *self.children.entry((parent, seg)).or_insert(next);
        if id == next {
            self.nodes.push(NodePos::default());
        }
        id
    }

    /// The nodes along `path` that exist, from the root down.
    fn walk(&self, path: &YamlPath) -> Vec<u32> {
        let mut ids = vec![0];
        let mut id = 0;
        for seg in &path.0 {
            match self.children.get(&(id, seg.clone())) {
                Some(&c) => {
                    id = c;
                    ids.push(c);
                }
                None => break,
            }
        }
        ids
    }

    /// Where the value at `path` starts, or the nearest ancestor's position.
    pub fn value(&self, path: &YamlPath) -> (usize, usize) {
        self.walk(path)
            .iter()
            .rev()
            .find_map(|&id| {
                let n = self.nodes[id as usize];
                n.value.or(n.key)
            })
            .map_or((0, 0), |(l, c)| (l as usize, c as usize))
    }

    /// Where the key of the mapping entry at `path` starts (falls back to the value).
    pub fn key(&self, path: &YamlPath) -> (usize, usize) {
        let ids = self.walk(path);
        if ids.len() == path.0.len() + 1
            && let Some(&id) = ids.last()
            && let Some((l, c)) = self.nodes[id as usize].key
        {
            return (l as usize, c as usize);
        }
        self.value(path)
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
        // A path below what exists falls back to its nearest ancestor.
        assert_eq!(loc.value(&r1.key("mode").key("x").index(3)), (4, 11));
        assert_eq!(loc.value(&YamlPath::root().key("nope")), (1, 1));
    }

    #[test]
    fn memory_is_linear_in_long_keys_and_long_lists() {
        // One 100,000-character key above a 10,000-item list: each item must
        // not carry its own copy of the key.
        // (An explicit key: YAML caps implicit keys at 1,024 characters.)
        let text = format!("? {}\n:\n{}", "k".repeat(100_000), "  - x\n".repeat(10_000));
        let loc = Locations::of(&text);
        let stored: usize = loc.children.keys().map(|(_, s)| if let Seg::Key(k) = s { k.len() } else { 0 }).sum();
        assert!(stored <= 100_000, "key text stored {stored} bytes");
        let p = YamlPath::root().key("k".repeat(100_000)).index(9_999);
        assert_eq!(loc.value(&p), (10_002, 5));
    }
}
