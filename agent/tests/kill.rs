//! A run killed at any moment leaves every managed file either as it was or
//! complete: never partially written.

mod common;

use std::time::Duration;

use common::Scratch;

#[test]
fn killed_runs_leave_no_partial_file() {
    let s = Scratch::new();
    // 300 files of 256 KiB each, copied from one source file: big enough that
    // a kill lands mid-run.
    let block: String = (0..4096).map(|i| format!("{i:063}\n")).collect();
    std::fs::write(s.path().join("big.txt"), &block).unwrap();
    let mut y = String::from("name: big\nparameters: {root: {type: string}}\nresources:\n");
    for i in 0..300 {
        y.push_str(&format!("  - file: \"{{{{params.root}}}}/srv/f{i:03}\"\n    source: big.txt\n"));
    }
    let recipe = s.recipe("big.yaml", &y);
    let old = "old content\n";
    for i in 0..300 {
        std::fs::write(s.root().join(format!("srv/f{i:03}")), old).unwrap();
    }

    let mut kills = 0;
    for delay_ms in [5u64, 20, 40, 80, 120, 160, 240] {
        let mut child = s
            .agent()
            .arg("apply")
            .arg(&recipe)
            .arg("--param")
            .arg(format!("root={}", s.root().display()))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            kills += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        for i in 0..300 {
            let p = s.root().join(format!("srv/f{i:03}"));
            let got = std::fs::read_to_string(&p).unwrap();
            assert!(
                got == old || got == block,
                "{} is partial after a kill at {delay_ms} ms ({} bytes)",
                p.display(),
                got.len()
            );
        }
        // Put the old content back so that the next kill has work to interrupt.
        for i in 0..300 {
            std::fs::write(s.root().join(format!("srv/f{i:03}")), old).unwrap();
        }
    }
    assert!(kills >= 3, "only {kills} runs were still going when killed; make the workload bigger");

    // A clean run afterwards converges everything, and the next is a no-op.
    assert_eq!(s.apply(&recipe, &[]).status.code(), Some(2));
    assert_eq!(s.apply(&recipe, &[]).status.code(), Some(0));
}
