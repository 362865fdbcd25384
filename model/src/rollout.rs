//! Rollout strategies (`tend rollout start --strategy S`) and the batches
//! they cut a target set into: the part of progressive rollouts that is
//! pure arithmetic, so that the server's driver and the CLI's preview agree.
//! Sizes are counts or percentages of the whole target set (as CodeDeploy's
//! `FLEET_PERCENT`); `--by-fact` goes one fact value at a time (CodeDeploy's
//! zonal deployments), and no batch spans two values.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::command::Limit;

/// How the target set is cut into batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    AllAtOnce,
    OneAtATime,
    /// Fixed batches (`batches:5`, `batches:20%`).
    Batches(Limit),
    /// A first batch, a bake, then the rest in batches of `--batch`
    /// (`canary:10%,bake=15m`).
    Canary {
        first: Limit,
        bake: Duration,
    },
    /// The same share more each time, with a wait between batches
    /// (`linear:20%,every=10m`).
    Linear {
        step: Limit,
        every: Duration,
    },
}

fn duration(what: &str, s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|_| format!("{what}={s:?} is not a duration (30s, 15m, 1h)"))
}

/// `key=value` options after the size (`bake=15m`); each must be given.
fn option<'a>(opts: &'a [&'a str], key: &str, strategy: &str) -> Result<&'a str, String> {
    let found: Vec<&str> = opts.iter().filter_map(|o| o.strip_prefix(key)?.strip_prefix('=')).collect();
    match found.as_slice() {
        [v] => Ok(v),
        [] => Err(format!("{strategy} needs {key}= ({strategy}:10%,{key}=15m)")),
        _ => Err(format!("{key}= is given twice")),
    }
}

impl Strategy {
    pub fn parse(s: &str) -> Result<Strategy, String> {
        let s = s.trim();
        let (name, rest) = s.split_once(':').unwrap_or((s, ""));
        let mut parts = rest.split(',').map(str::trim).filter(|p| !p.is_empty());
        let size = parts.next();
        let opts: Vec<&str> = parts.collect();
        let known = |allowed: &[&str]| -> Result<(), String> {
            match opts.iter().find(|o| !allowed.iter().any(|a| o.starts_with(&format!("{a}=")))) {
                Some(o) => Err(format!("{name} takes no option {o:?}")),
                None => Ok(()),
            }
        };
        let positive = |l: Limit| match l {
            Limit::Count(0) | Limit::Percent(0) => Err(format!("{name}: a batch of 0 never finishes")),
            l => Ok(l),
        };
        let size = || -> Result<Limit, String> {
            let v = size.ok_or_else(|| format!("{name} needs a size ({name}:10 or {name}:10%)"))?;
            positive(Limit::parse(v)?)
        };
        match name {
            "all-at-once" | "one-at-a-time" if !rest.is_empty() => Err(format!("{name} takes no size or option")),
            "all-at-once" => Ok(Strategy::AllAtOnce),
            "one-at-a-time" => Ok(Strategy::OneAtATime),
            "batches" => {
                known(&[])?;
                Ok(Strategy::Batches(size()?))
            }
            "canary" => {
                known(&["bake"])?;
                Ok(Strategy::Canary { first: size()?, bake: duration("bake", option(&opts, "bake", name)?)? })
            }
            "linear" => {
                known(&["every"])?;
                Ok(Strategy::Linear { step: size()?, every: duration("every", option(&opts, "every", name)?)? })
            }
            other => Err(format!(
                "unknown strategy {other:?}: all-at-once, one-at-a-time, batches:N|N%, canary:P%,bake=D or linear:P%,every=D"
            )),
        }
    }
}

/// One batch: its nodes, the fact value it belongs to (`--by-fact`), and
/// how long to wait after it succeeds before the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub nodes: Vec<String>,
    pub group: Option<String>,
    pub wait_after: Duration,
}

/// What cuts the batches besides the strategy.
#[derive(Debug, Clone)]
pub struct Cutting {
    /// The batch size after a canary's first batch (`--batch`).
    pub rest: Limit,
    /// Group by this fact's values, one value at a time.
    pub by_fact: bool,
    /// The bake after the last batch (`--bake`).
    pub final_bake: Duration,
}

/// The batches, in order. `nodes`: each node id with its value of the
/// `--by-fact` fact (ignored without `by_fact`); nodes keep their order
/// within a group, groups go by value (nodes without it last).
pub fn batches(nodes: &[(String, Option<String>)], strategy: &Strategy, cut: &Cutting) -> Vec<Batch> {
    let total = nodes.len();
    let mut groups: Vec<(Option<String>, Vec<String>)> = Vec::new();
    if cut.by_fact {
        let mut values: Vec<Option<String>> = nodes.iter().map(|(_, v)| v.clone()).collect();
        values.sort_by(|a, b| match (a, b) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, _) => std::cmp::Ordering::Greater,
            (_, None) => std::cmp::Ordering::Less,
            (Some(a), Some(b)) => a.cmp(b),
        });
        values.dedup();
        for v in values {
            let members = nodes.iter().filter(|(_, x)| *x == v).map(|(n, _)| n.clone()).collect();
            groups.push((v, members));
        }
    } else if total > 0 {
        groups.push((None, nodes.iter().map(|(n, _)| n.clone()).collect()));
    }
    let size = |l: Limit| l.of(total, true);
    let mut out = Vec::new();
    for (g, (value, members)) in groups.into_iter().enumerate() {
        let mut left = members.as_slice();
        let mut first = g == 0;
        while !left.is_empty() {
            let (n, wait) = match strategy {
                Strategy::AllAtOnce => (left.len(), Duration::ZERO),
                Strategy::OneAtATime => (1, Duration::ZERO),
                Strategy::Batches(l) => (size(*l), Duration::ZERO),
                Strategy::Canary { first: c, bake } if first => (size(*c), *bake),
                Strategy::Canary { .. } => (size(cut.rest), Duration::ZERO),
                Strategy::Linear { step, every } => (size(*step), *every),
            };
            first = false;
            let (now, later) = left.split_at(n.min(left.len()));
            out.push(Batch { nodes: now.to_vec(), group: value.clone(), wait_after: wait });
            left = later;
        }
    }
    if let Some(last) = out.last_mut() {
        last.wait_after = cut.final_bake;
    }
    out
}

/// Whether a batch may start: the nodes in it count as unhealthy while they
/// converge (CodeDeploy's minimum healthy hosts), so the healthy nodes left
/// must stay at or above `min_healthy` of the whole target set.
pub fn may_start(total: usize, healthy: usize, batch: usize, min_healthy: Limit) -> Result<(), String> {
    let min = min_healthy.of(total, false);
    let left = healthy.saturating_sub(batch);
    if left >= min {
        return Ok(());
    }
    Err(format!(
        "a batch of {batch} would leave {left} of {total} nodes healthy, below --min-healthy {min}; it was not started"
    ))
}

// --- the API's JSON ---

/// `POST /v1/plans`: what `RECIPE@VERSION` would do on the targets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanCreate {
    /// `RECIPE@VERSION` (a version pushed already).
    pub recipe: String,
    pub targets: Vec<String>,
    /// Seconds each node has to answer (default 120).
    #[serde(default)]
    pub timeout: Option<u64>,
}

/// How a resource would change on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Fail,
    Add,
    Modify,
    Remove,
    Skip,
    Unchanged,
}

/// Hosts on which a resource would change in exactly the same way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeGroup {
    pub effect: Effect,
    pub hosts: Vec<String>,
    /// The changes (property, from, to, diff) or the error, as the agents reported them.
    pub changes: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One resource id across the hosts that answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceChange {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub counts: std::collections::BTreeMap<Effect, usize>,
    /// Changing groups, the smallest (the outliers) first.
    pub groups: Vec<ChangeGroup>,
}

/// A host that did not answer in time, or answered without a report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Silent {
    pub node: String,
    pub hostname: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A stored change set (`cs-…`), aggregated from the hosts' dry-runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeSet {
    pub id: String,
    pub recipe: String,
    pub version: String,
    pub targets: Vec<String>,
    /// `InProgress` while hosts may still answer, then `Complete`.
    pub status: String,
    pub created_at: String,
    pub created_by: String,
    pub command_id: String,
    pub hosts: usize,
    pub answered: usize,
    /// Hosts whose check failed (a compile error, a failed resource).
    pub failed_hosts: Vec<String>,
    pub silent: Vec<Silent>,
    /// Target nodes without an assignment of the recipe (left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_assigned: Vec<String>,
    /// Resources with a change or a failure somewhere, failures first.
    pub resources: Vec<ResourceChange>,
    /// Resources unchanged on every host that answered.
    pub unchanged: usize,
}

/// `POST /v1/rollouts`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RolloutCreate {
    /// `RECIPE@VERSION`.
    pub recipe: String,
    pub targets: Vec<String>,
    pub strategy: String,
    /// The batch size after a canary (default 25%).
    #[serde(default)]
    pub batch: Option<String>,
    #[serde(default)]
    pub by_fact: Option<String>,
    /// `N` or `N%` (default 0).
    #[serde(default)]
    pub min_healthy: Option<String>,
    /// Bake after the last batch (`10m`).
    #[serde(default)]
    pub bake: Option<String>,
    /// How long a batch has to converge and report (default 10m).
    #[serde(default)]
    pub batch_timeout: Option<String>,
    #[serde(default)]
    pub health_document: Option<String>,
    #[serde(default)]
    pub health_params: serde_json::Map<String, serde_json::Value>,
    /// `--health-param k=v` as typed (converted by the document's declared types).
    #[serde(default)]
    pub health_raw_params: Vec<(String, String)>,
    /// Values read from each node's health output (`json: a.b` or `regex: …`),
    /// as automation steps read outputs.
    #[serde(default)]
    pub health_outputs: Vec<crate::automation::Output>,
    /// A condition over `{{outputs.NAME}}` (automation's branch conditions)
    /// that each node's health outputs must meet, besides succeeding.
    #[serde(default)]
    pub health_condition: Option<crate::automation::Condition>,
    #[serde(default)]
    pub no_rollback: bool,
    /// The change set this rollout was planned with (checked: same recipe and version).
    #[serde(default)]
    pub from_plan: Option<String>,
}

/// One gate's verdict on a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateResult {
    pub gate: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolloutNode {
    pub node: String,
    pub hostname: String,
    /// The version it had before, pinned back on rollback.
    pub before: String,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchView {
    pub index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub status: String,
    pub nodes: Vec<RolloutNode>,
    pub gates: Vec<GateResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolloutView {
    pub id: String,
    pub recipe: String,
    pub version: String,
    pub targets: Vec<String>,
    pub strategy: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: String,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub batches: Vec<BatchView>,
}

impl RolloutView {
    /// Nodes that have converged the new version and passed, of all nodes.
    pub fn progress(&self) -> (usize, usize) {
        let all = self.batches.iter().map(|b| b.nodes.len()).sum();
        let done = self.batches.iter().flat_map(|b| &b.nodes).filter(|n| n.state == "Healthy").count();
        (done, all)
    }

    pub fn finished(&self) -> bool {
        self.finished_at.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(n: usize) -> Vec<(String, Option<String>)> {
        (1..=n).map(|i| (format!("n{i:02}"), None)).collect()
    }

    fn cut() -> Cutting {
        Cutting { rest: Limit::Percent(25), by_fact: false, final_bake: Duration::ZERO }
    }

    fn sizes(b: &[Batch]) -> Vec<usize> {
        b.iter().map(|b| b.nodes.len()).collect()
    }

    #[test]
    fn parses_each_strategy_and_refuses_the_rest() {
        assert_eq!(Strategy::parse("all-at-once"), Ok(Strategy::AllAtOnce));
        assert_eq!(Strategy::parse("one-at-a-time"), Ok(Strategy::OneAtATime));
        assert_eq!(Strategy::parse("batches:20%"), Ok(Strategy::Batches(Limit::Percent(20))));
        assert_eq!(
            Strategy::parse("canary:10%,bake=15m"),
            Ok(Strategy::Canary { first: Limit::Percent(10), bake: Duration::from_secs(900) })
        );
        assert_eq!(
            Strategy::parse("linear: 2 , every=30s"),
            Ok(Strategy::Linear { step: Limit::Count(2), every: Duration::from_secs(30) })
        );
        for (bad, why) in [
            ("canary:10%", "needs bake="),
            ("canary:10%,bake=soon", "not a duration"),
            ("canary:10%,bake=1m,bake=2m", "twice"),
            ("linear:10%,bake=1m", "takes no option"),
            ("batches", "needs a size"),
            ("batches:0", "never finishes"),
            ("batches:120%", "not a count or a percentage"),
            ("all-at-once:5", "takes no size"),
            ("blue-green", "unknown strategy"),
        ] {
            let e = Strategy::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn cuts_the_fleet_into_batches() {
        let f = fleet(10);
        assert_eq!(sizes(&batches(&f, &Strategy::AllAtOnce, &cut())), [10]);
        assert_eq!(sizes(&batches(&f, &Strategy::OneAtATime, &cut())), [1; 10]);
        assert_eq!(sizes(&batches(&f, &Strategy::Batches(Limit::Count(4)), &cut())), [4, 4, 2]);
        let canary = Strategy::Canary { first: Limit::Percent(10), bake: Duration::from_secs(60) };
        let b = batches(&f, &canary, &cut());
        assert_eq!(sizes(&b), [1, 2, 2, 2, 2, 1], "10% first, then 25% (2) at a time");
        assert_eq!(b[0].wait_after, Duration::from_secs(60));
        assert_eq!(b[1].wait_after, Duration::ZERO);
        assert_eq!(b[0].nodes, ["n01"]);
        let linear = Strategy::Linear { step: Limit::Percent(30), every: Duration::from_secs(5) };
        let b = batches(&f, &linear, &Cutting { final_bake: Duration::from_secs(99), ..cut() });
        assert_eq!(sizes(&b), [3, 3, 3, 1]);
        assert_eq!(
            b.iter().map(|b| b.wait_after.as_secs()).collect::<Vec<_>>(),
            [5, 5, 5, 99],
            "the last bake is --bake"
        );
        // A percentage under one node is still one node.
        assert_eq!(sizes(&batches(&fleet(3), &Strategy::Batches(Limit::Percent(10)), &cut())), [1, 1, 1]);
        assert!(batches(&[], &Strategy::AllAtOnce, &cut()).is_empty());
    }

    #[test]
    fn by_fact_goes_one_value_at_a_time() {
        let zone = |n: &str, z: Option<&str>| (n.to_string(), z.map(str::to_string));
        let f = vec![
            zone("a1", Some("eu-west-1b")),
            zone("a2", Some("eu-west-1a")),
            zone("a3", Some("eu-west-1b")),
            zone("a4", None),
            zone("a5", Some("eu-west-1a")),
            zone("a6", Some("eu-west-1a")),
        ];
        let by = Cutting { rest: Limit::Count(2), by_fact: true, final_bake: Duration::ZERO };
        let b = batches(&f, &Strategy::Batches(Limit::Count(2)), &by);
        let shown: Vec<(Option<&str>, Vec<&str>)> =
            b.iter().map(|b| (b.group.as_deref(), b.nodes.iter().map(String::as_str).collect())).collect();
        assert_eq!(
            shown,
            [
                (Some("eu-west-1a"), vec!["a2", "a5"]),
                (Some("eu-west-1a"), vec!["a6"]),
                (Some("eu-west-1b"), vec!["a1", "a3"]),
                (None, vec!["a4"]),
            ],
            "no batch spans two zones; nodes without the fact last"
        );
        // The canary comes from the first value only.
        let canary = Strategy::Canary { first: Limit::Count(1), bake: Duration::from_secs(1) };
        assert_eq!(sizes(&batches(&f, &canary, &by)), [1, 2, 2, 1]);
    }

    #[test]
    fn min_healthy_refuses_a_batch_that_goes_below_it() {
        assert!(may_start(10, 10, 2, Limit::Count(8)).is_ok());
        let e = may_start(10, 9, 2, Limit::Count(8)).unwrap_err();
        assert!(e.contains("would leave 7 of 10 nodes healthy, below --min-healthy 8"), "{e}");
        assert!(may_start(10, 10, 5, Limit::Percent(50)).is_ok());
        assert!(may_start(10, 10, 6, Limit::Percent(50)).is_err());
    }
}
