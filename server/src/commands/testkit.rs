//! For the engines' unit tests: a commands service over a store on a
//! temporary SQLite file (no HTTP, no agents), an operator, and nodes.

use std::sync::Arc;

use tend_model::command::{InvocationResult, InvocationStatus};
use tend_model::wire::{Role, Tags};

use super::{Dispatcher, Service};
use crate::auth::Operator;
use crate::secrets::Secrets;
use crate::store::{NewNode, Store, TokenRecord};

pub struct Kit {
    pub commands: Service,
    pub dir: tempfile::TempDir,
}

pub async fn kit() -> Kit {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_sqlite(dir.path()).await.expect("store");
    let secrets = Arc::new(Secrets::load_or_create(dir.path()).expect("secrets"));
    let dispatcher = Dispatcher::new(store.clone(), std::time::Duration::from_secs(86_400));
    Kit { commands: Service { store, dispatcher, secrets, output_cap: 24_000 }, dir }
}

pub fn operator() -> Operator {
    Operator(TokenRecord {
        id: "tok-test".into(),
        name: "tester".into(),
        role: Role::Operator,
        scope: None,
        revoked: false,
    })
}

impl Kit {
    pub fn store(&self) -> &Store {
        &self.commands.store
    }

    /// Registers a node with these tags (through an activation, as an agent would).
    pub async fn node(&self, id: &str, tags: &[(&str, &str)]) {
        let tags: Tags = tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let act = format!("act-{id}");
        self.store()
            .create_activation(&act, "code", &tags, 1, "2999-01-01T00:00:00Z", "test")
            .await
            .expect("activation");
        let new = NewNode {
            id: id.into(),
            hostname: format!("{id}.test"),
            tags: tags.clone(),
            key_fingerprint: format!("key-{id}"),
            cert_fingerprint: format!("cert-{id}"),
        };
        self.store().register(&act, "code", &new).await.expect("register").expect("registered");
    }
}

impl Kit {
    /// What an agent does with a delivered invocation: takes it, runs it,
    /// reports `status` with `stdout`; then the dispatcher sums it up.
    pub async fn agent_reports(&self, command: &str, node: &str, status: InvocationStatus, stdout: &str) {
        self.store().ack_invocation(command, node).await.expect("ack");
        let res = InvocationResult {
            status,
            exit_code: Some(if status == InvocationStatus::Success { 0 } else { 1 }),
            stdout: stdout.into(),
            stderr: String::new(),
            started_at: Some(crate::store::now()),
            ended_at: Some(crate::store::now()),
            duration_ms: Some(1),
            reason: None,
            reboot: false,
            report: None,
        };
        assert!(self.store().finish_invocation(command, node, &res, 1 << 20).await.expect("result"), "stored");
        self.commands.dispatcher.advance(command).await.expect("advance");
    }
}
