//! The engine's transitions, driven directly against a store on a
//! temporary SQLite file: no server, no HTTP, no agent processes.

use tend_model::automation::Automation;
use tend_model::command::InvocationStatus;

use super::engine::advance;
use super::{Approval, ExecutionRow, ExecutionStatus, Service, Verdict};
use crate::commands::testkit::{Kit, kit};
use crate::leader::Leader;
use crate::store::now;

fn service(k: &Kit) -> Service {
    Service::new(k.commands.clone(), std::sync::Arc::new(Leader::default()))
}

/// Stores an execution of `yaml` (as `POST /v1/automations` does) and advances it once.
async fn start(s: &Service, id: &str, yaml: &str, params: &str) {
    let doc = Automation::parse("test.yaml", yaml).expect("document");
    let row = ExecutionRow {
        id: id.into(),
        document: format!("{}@1", doc.name),
        body: serde_json::to_string(&doc).expect("json"),
        params: params.into(),
        params_shown: params.into(),
        status: ExecutionStatus::InProgress,
        token_id: "tok-test".into(),
        token_name: "tester".into(),
        role: "operator".into(),
        scope: None,
        cancel_requested: false,
        error: None,
        created_at: now(),
        finished_at: None,
    };
    s.store.create_execution(&row).await.expect("create");
    advance(s, id).await.expect("advance");
}

/// The execution's status, error and its path as `step:Status`.
async fn state(s: &Service, id: &str) -> (ExecutionStatus, Option<String>, Vec<String>) {
    let e = s.store.execution(id).await.expect("read").expect("execution");
    let steps = s.store.steps(id).await.expect("steps");
    (e.status, e.error, steps.iter().map(|st| format!("{}:{}", st.name, st.status)).collect())
}

async fn decide(s: &Service, id: &str, token: &str, decision: Verdict) {
    let mut steps = s.store.steps(id).await.expect("steps");
    let cur = steps.last_mut().expect("a step");
    cur.approvals.push(Approval { token: token.into(), decision, comment: Some("ok".into()), at: now() });
    s.store.update_step(id, cur).await.expect("update");
    advance(s, id).await.expect("advance");
}

#[tokio::test]
async fn sleep_branch_and_pause_run_through_and_resume() {
    let k = kit().await;
    let s = service(&k);
    let doc = "name: Flow\nkind: Automation\nparameters:\n  color: { type: string }\nsteps:\n  - name: nap\n    action: sleep\n    inputs: { duration: 0s }\n  - name: pick\n    action: branch\n    inputs:\n      choices:\n        - nextStep: hold\n          condition: { variable: \"{{params.color}}\", equals: red }\n      default: never\n  - name: never\n    action: sleep\n    inputs: { duration: 0s }\n    isEnd: true\n  - name: hold\n    action: pause\n";
    start(&s, "exe-flow", doc, r#"{"color":"red"}"#).await;
    let (status, _, path) = state(&s, "exe-flow").await;
    assert_eq!(status, ExecutionStatus::Waiting, "{path:?}");
    assert_eq!(path, ["nap:Success", "pick:Success", "hold:Waiting"]);
    // Advancing again changes nothing while it waits.
    advance(&s, "exe-flow").await.expect("advance");
    assert_eq!(state(&s, "exe-flow").await.2.len(), 3);

    let mut steps = s.store.steps("exe-flow").await.expect("steps");
    let cur = steps.last_mut().expect("step");
    cur.resumed = true;
    s.store.update_step("exe-flow", cur).await.expect("update");
    advance(&s, "exe-flow").await.expect("advance");
    let (status, _, path) = state(&s, "exe-flow").await;
    assert_eq!((status, path.last().map(String::as_str)), (ExecutionStatus::Success, Some("hold:Success")));
}

#[tokio::test]
async fn approvals_count_up_to_the_minimum_and_one_rejection_fails() {
    let k = kit().await;
    let s = service(&k);
    let doc = "name: Ask\nkind: Automation\nsteps:\n  - name: ask\n    action: approve\n    inputs: { approvers: [alice, bob], minRequired: 2 }\n";
    start(&s, "exe-yes", doc, "{}").await;
    decide(&s, "exe-yes", "alice", Verdict::Approve).await;
    assert_eq!(state(&s, "exe-yes").await.0, ExecutionStatus::Waiting, "one of two approvals");
    decide(&s, "exe-yes", "bob", Verdict::Approve).await;
    assert_eq!(state(&s, "exe-yes").await.2, ["ask:Success"]);
    assert_eq!(state(&s, "exe-yes").await.0, ExecutionStatus::Success);

    start(&s, "exe-no", doc, "{}").await;
    decide(&s, "exe-no", "bob", Verdict::Reject).await;
    let (status, error, path) = state(&s, "exe-no").await;
    assert_eq!((status, path), (ExecutionStatus::Failed, vec!["ask:Failed".to_string()]));
    assert!(error.unwrap_or_default().contains("rejected by bob: ok"));
}

#[tokio::test]
async fn a_command_step_creates_its_command_once_and_ends_as_it_does() {
    let k = kit().await;
    k.node("n-web1", &[("role", "web")]).await;
    let s = service(&k);
    let doc = "name: Run\nkind: Automation\nsteps:\n  - name: run\n    action: runCommand\n    inputs: { document: RunShellScript, targets: [\"tag:role=web\"], params: { commands: \"echo hi\" } }\n    outputs:\n      - { name: word, regex: 'say (\\w+)' }\n";
    start(&s, "exe-run", doc, "{}").await;
    advance(&s, "exe-run").await.expect("advance again");
    let commands = k.store().list_commands(10).await.expect("commands");
    assert_eq!(commands.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["cmd-run-0"], "exactly one command");
    assert_eq!(state(&s, "exe-run").await.2, ["run:InProgress"]);

    k.agent_reports("cmd-run-0", "n-web1", InvocationStatus::Success, "say hello\n").await;
    advance(&s, "exe-run").await.expect("advance");
    let (status, _, path) = state(&s, "exe-run").await;
    assert_eq!((status, path), (ExecutionStatus::Success, vec!["run:Success".to_string()]));
    let step = s.store.steps("exe-run").await.expect("steps").pop().expect("step");
    let outputs = &step.outputs;
    assert_eq!((outputs["commandId"].as_str(), outputs["word"].as_str()), (Some("cmd-run-0"), Some("hello")));
}

#[tokio::test]
async fn a_refused_command_is_retried_then_aborts_and_a_cancel_ends_a_wait() {
    let k = kit().await;
    let s = service(&k);
    let doc = "name: Bad\nkind: Automation\nsteps:\n  - name: run\n    action: runCommand\n    maxAttempts: 2\n    inputs: { document: Missing, targets: [\"tag:role=web\"] }\n  - name: after\n    action: pause\n";
    start(&s, "exe-bad", doc, "{}").await;
    let (status, error, path) = state(&s, "exe-bad").await;
    assert_eq!(path, ["run:Failed", "run:Failed"], "two attempts, then abort");
    assert_eq!(status, ExecutionStatus::Failed);
    assert!(error.unwrap_or_default().contains("no document Missing"));

    let doc = "name: Wait\nkind: Automation\nsteps:\n  - name: hold\n    action: pause\n";
    start(&s, "exe-wait", doc, "{}").await;
    s.store.request_execution_cancel("exe-wait").await.expect("cancel");
    advance(&s, "exe-wait").await.expect("advance");
    let (status, _, path) = state(&s, "exe-wait").await;
    assert_eq!((status, path), (ExecutionStatus::Cancelled, vec!["hold:Cancelled".to_string()]));
}

#[tokio::test]
async fn a_step_status_that_is_not_one_is_corrupt_data() {
    let k = kit().await;
    let s = service(&k);
    start(&s, "exe-c", "name: C\nkind: Automation\nsteps:\n  - name: hold\n    action: pause\n", "{}").await;
    sqlx::query("UPDATE execution_steps SET status = 'Sideways'").execute(&k.store().pool).await.expect("tamper");
    let err = advance(&s, "exe-c").await.expect_err("refused").to_string();
    assert!(err.contains("corrupt") && err.contains("Sideways"), "{err}");
}

#[tokio::test]
async fn step_outputs_that_do_not_parse_are_an_error_not_empty() {
    let k = kit().await;
    let s = service(&k);
    start(&s, "exe-o", "name: O\nkind: Automation\nsteps:\n  - name: hold\n    action: pause\n", "{}").await;
    sqlx::query("UPDATE execution_steps SET outputs = 'not json'").execute(&k.store().pool).await.expect("tamper");
    let err = advance(&s, "exe-o").await.expect_err("refused").to_string();
    assert!(err.contains("corrupt") && err.contains("step outputs"), "{err}");
}
