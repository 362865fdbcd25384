//! The scheduler's transitions, driven directly against a store on a
//! temporary SQLite file: a slot fires once, its run ends as its command
//! does and records compliance, a refusal ends the run, and stored data
//! that does not parse is an error.

use tend_model::command::InvocationStatus;

use super::engine::{command_request, fire, tick};
use super::{AssociationRow, Compliance, RunStatus, Service};
use crate::commands::CommandStatus;
use crate::commands::testkit::{Kit, kit};
use crate::leader::Leader;
use crate::store::{now, now_ms};

fn service(k: &Kit) -> Service {
    Service::new(k.commands.clone(), std::sync::Arc::new(Leader::default()), std::time::Duration::from_secs(60))
}

fn association(id: &str, targets: &str) -> AssociationRow {
    AssociationRow {
        id: id.into(),
        document: Some("RunShellScript".into()),
        targets: targets.into(),
        // Far from now: the test fires slots itself.
        schedule: "rate(30 days)".into(),
        params: r#"{"commands":"true"}"#.into(),
        raw_params: "[]".into(),
        token_id: "tok-test".into(),
        token_name: "tester".into(),
        role: "operator".into(),
        created_at: now(),
        created_ms: now_ms(),
        last_slot_ms: Some(now_ms()),
        ..AssociationRow::default()
    }
}

#[tokio::test]
async fn a_slot_fires_once_and_its_run_ends_with_its_command_and_records_compliance() {
    let k = kit().await;
    k.node("n-web1", &[("role", "web")]).await;
    let s = service(&k);
    let a = association("asc-web", r#"["tag:role=web"]"#);
    s.store.create_association(&a).await.expect("create");

    assert!(fire(&s, &a, 1_000, "schedule", 0).await.expect("fire"), "the first fire of a slot runs");
    assert!(!fire(&s, &a, 1_000, "schedule", 0).await.expect("fire"), "the same slot never runs twice");
    let runs = s.store.runs("asc-web", 10).await.expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].command_id.as_str(), &runs[0].status), ("cmd-web-1000", &RunStatus::Pending));

    // Still running: a tick leaves it be.
    tick(&s, &a).await.expect("tick");
    assert_eq!(s.store.runs("asc-web", 1).await.expect("runs")[0].status, RunStatus::Pending);

    k.agent_reports("cmd-web-1000", "n-web1", InvocationStatus::Success, "").await;
    tick(&s, &a).await.expect("tick");
    let run = s.store.runs("asc-web", 1).await.expect("runs").remove(0);
    assert_eq!(run.status, RunStatus::Ended(CommandStatus::Success));
    assert!(run.finished_at.is_some());
    let compliance = s.store.compliance(Some("asc-web"), None).await.expect("compliance");
    assert_eq!(
        compliance.iter().map(|c| (c.node_id.as_str(), c.status)).collect::<Vec<_>>(),
        [("n-web1", Compliance::Compliant)]
    );
}

#[tokio::test]
async fn a_refused_command_ends_the_run_as_refused() {
    let k = kit().await;
    let s = service(&k);
    let a = association("asc-none", r#"["tag:role=none"]"#);
    s.store.create_association(&a).await.expect("create");
    assert!(fire(&s, &a, 2_000, "run-now", 0).await.expect("fire"));
    let run = s.store.runs("asc-none", 1).await.expect("runs").remove(0);
    match run.status {
        RunStatus::Refused(why) => assert!(why.contains("no registered node matches"), "{why}"),
        other => panic!("{other:?}"),
    }
    // The stored form reads back the same.
    assert_eq!("Refused: x".parse::<RunStatus>().expect("parse"), RunStatus::Refused("x".into()));
}

#[tokio::test]
async fn stored_targets_that_do_not_parse_are_an_error_not_an_empty_list() {
    let k = kit().await;
    let s = service(&k);
    let a = association("asc-bad", "not json");
    let err = command_request(&a, &s.secrets).expect_err("corrupt").to_string();
    assert!(err.contains("corrupt") && err.contains("association targets"), "{err}");
}
