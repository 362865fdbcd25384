use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;
use crate::resources::support::accounts_testkit::{Host, change, me, props as names};

fn user(yaml: &str) -> Spec {
    Spec::User(serde_yaml::from_str(yaml).expect("user props"))
}

fn group(yaml: &str) -> Spec {
    Spec::Group(serde_yaml::from_str(yaml).expect("group props"))
}

fn argv(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| s.to_string()).collect())
}

const PASSWD: &str = "alice:x:1001:1001:Alice:/home/alice:/bin/bash\n\
                      bob:x:1002:100::/home/bob:/bin/sh\n";
const GROUP: &str = "alice:x:1001:\nusers:x:100:\nadm:x:4:alice\nsudo:x:27:\ndocker:x:999:bob,alice\n";
const SHADOW: &str = "alice:$6$old$oldhash:19000:0:99999:7:::\nbob:!:19000:0:99999:7:::\n";

fn db() -> AccountsDb {
    AccountsDb::from_text(PASSWD, GROUP, Ok(SHADOW))
}

/// The diff of one user against the default database and an empty plan.
fn diff_of(name: &str, yaml: &str) -> Result<Diff> {
    let Spec::User(p) = user(yaml) else { unreachable!() };
    diff(name, &p, &db(), &Plan::default(), 0)
}

#[test]
fn useradd_carries_only_what_is_set() {
    let d = diff_of(
        "carol",
        "{system: true, uid: 2001, group: users, groups: [adm, docker, adm], home: /srv/carol, \
         shell: /bin/zsh, comment: Carol C, password: $6$salt$hash}",
    )
    .expect("diff");
    assert_eq!(
        d.argv,
        argv(&[
            "useradd",
            "-r",
            "-u",
            "2001",
            "-g",
            "users",
            "-G",
            "adm,docker",
            "-d",
            "/srv/carol",
            "-m",
            "-s",
            "/bin/zsh",
            "-c",
            "Carol C",
            "carol"
        ])
    );
    assert_eq!(names(&d.changes), ["ensure", "uid", "group", "groups", "home", "shell", "comment", "password"]);
    assert_eq!(change(&d.changes, "ensure").to.as_deref(), Some("present"));
    assert_eq!(change(&d.changes, "groups").to.as_deref(), Some("adm,docker"));
    let pw = change(&d.changes, "password");
    assert_eq!((pw.from.as_deref(), pw.to.as_deref()), (None, Some("(sensitive)")));
    assert_eq!(d.keys, KeysAt::NewUser);

    assert_eq!(diff_of("carol", "{}").expect("diff").argv, argv(&["useradd", "-m", "carol"]));
    assert_eq!(
        diff_of("carol", "{manage_home: false, groups: []}").expect("diff").argv,
        argv(&["useradd", "-M", "carol"])
    );
    // A primary group given as a gid is passed as it is.
    assert_eq!(diff_of("carol", "{group: '999'}").expect("diff").argv, argv(&["useradd", "-g", "999", "-m", "carol"]));
}

#[test]
fn an_account_that_matches_has_no_changes() {
    let d = diff_of(
        "alice",
        "{uid: 1001, group: alice, groups: [docker, adm], home: /home/alice, shell: /bin/bash, \
         comment: Alice, password: $6$old$oldhash}",
    )
    .expect("diff");
    assert!(d.changes.is_empty(), "{:?}", d.changes);
    assert_eq!(d.argv, None);
    // The primary group as a gid matches too.
    assert!(diff_of("bob", "{group: '100'}").expect("diff").changes.is_empty());
}

#[test]
fn usermod_carries_only_what_differs_in_one_call() {
    let d = diff_of("alice", "{groups: [sudo, docker], shell: /bin/zsh, comment: Alice A, home: /home/alice}")
        .expect("diff");
    assert_eq!(d.argv, argv(&["usermod", "-G", "sudo,docker", "-s", "/bin/zsh", "-c", "Alice A", "alice"]));
    assert_eq!(names(&d.changes), ["groups", "shell", "comment"]);
    let g = change(&d.changes, "groups");
    assert_eq!((g.from.as_deref(), g.to.as_deref()), (Some("adm,docker"), Some("docker,sudo")));
    let sh = change(&d.changes, "shell");
    assert_eq!((sh.from.as_deref(), sh.to.as_deref()), (Some("/bin/bash"), Some("/bin/zsh")));

    let d = diff_of("alice", "{uid: 3000, group: users}").expect("diff");
    assert_eq!(d.argv, argv(&["usermod", "-u", "3000", "-g", "users", "alice"]));
    let g = change(&d.changes, "group");
    assert_eq!((g.from.as_deref(), g.to.as_deref()), (Some("alice"), Some("users")));

    // No supplementary groups at all.
    let d = diff_of("alice", "{groups: []}").expect("diff");
    assert_eq!(d.argv, argv(&["usermod", "-G", "", "alice"]));
    assert_eq!(change(&d.changes, "groups").to.as_deref(), Some("(none)"));
}

#[test]
fn append_only_adds_the_missing_groups() {
    let d = diff_of("alice", "{groups: [docker, sudo], append: true}").expect("diff");
    assert_eq!(d.argv, argv(&["usermod", "-a", "-G", "sudo", "alice"]));
    let g = change(&d.changes, "groups");
    assert_eq!((g.from.as_deref(), g.to.as_deref()), (Some("adm,docker"), Some("adm,docker,sudo")));
    // adm is extra but stays: nothing to do.
    assert!(diff_of("alice", "{groups: [docker], append: true}").expect("diff").changes.is_empty());
}

#[test]
fn home_is_moved_only_when_managed() {
    let d = diff_of("alice", "{home: /srv/alice}").expect("diff");
    assert_eq!(d.argv, argv(&["usermod", "-d", "/srv/alice", "-m", "alice"]));
    let KeysAt::Home(t) = &d.keys else { panic!("{:?}", d.keys) };
    assert_eq!(t.home, Path::new("/home/alice"), "the keys move with the home");
    let d = diff_of("alice", "{home: /srv/alice, manage_home: false}").expect("diff");
    assert_eq!(d.argv, argv(&["usermod", "-d", "/srv/alice", "alice"]));
    let KeysAt::Home(t) = &d.keys else { panic!("{:?}", d.keys) };
    assert_eq!(t.home, Path::new("/srv/alice"));
}

#[test]
fn the_password_is_compared_but_never_shown() {
    let d = diff_of("alice", "{password: $6$new$newhash}").expect("diff");
    // Only a chpasswd on standard input sets it: no argument carries it.
    assert_eq!(d.argv, None);
    assert_eq!(d.password.as_deref(), Some("$6$new$newhash"));
    let c = change(&d.changes, "password");
    assert_eq!((c.from.as_deref(), c.to.as_deref()), (Some("(sensitive)"), Some("(sensitive)")));
    assert!(!format!("{:?}", d.changes).contains("newhash"));
    assert!(diff_of("bob", "{password: '!'}").expect("diff").changes.is_empty());
    // Without a readable shadow, a managed password is an error; other
    // properties still work.
    let db = AccountsDb::from_text(PASSWD, GROUP, Err("cannot read /etc/shadow: Permission denied".into()));
    let Spec::User(p) = user("{password: $6$new$newhash}") else { unreachable!() };
    let e = diff("alice", &p, &db, &Plan::default(), 0).expect_err("no shadow").to_string();
    assert!(e.contains("/etc/shadow") && !e.contains("newhash"), "{e}");
    let Spec::User(p) = user("{shell: /bin/bash}") else { unreachable!() };
    assert!(diff("alice", &p, &db, &Plan::default(), 0).expect("diff").changes.is_empty());
    let e = diff_of("alice", "{password: \"$6$a$b:c\"}").expect_err("colon").to_string();
    assert_eq!(e, "password must not contain ':' or a newline");
}

#[test]
fn userdel_removes_the_home_only_when_asked() {
    let d = diff_of("alice", "{state: absent}").expect("diff");
    assert_eq!(d.argv, argv(&["userdel", "alice"]));
    let e = change(&d.changes, "ensure");
    assert_eq!((e.from.as_deref(), e.to.as_deref()), (Some("present"), Some("absent")));
    assert_eq!(
        diff_of("alice", "{state: absent, remove_home: true}").expect("diff").argv,
        argv(&["userdel", "-r", "alice"])
    );
    let d = diff_of("nobody", "{state: absent, ssh_authorized_keys: []}").expect("diff");
    assert!(d.changes.is_empty() && d.argv.is_none() && d.keys == KeysAt::Nowhere);
}

#[test]
fn missing_groups_are_errors_naming_them_unless_the_plan_declares_them() {
    let e = diff_of("carol", "{group: nosuchgroup, groups: [adm, other, '4242']}").expect_err("missing").to_string();
    assert!(e.contains("`nosuchgroup`, `other`, `4242`"), "{e}");
    let e = diff_of("alice", "{groups: [nosuchgroup]}").expect_err("missing").to_string();
    assert!(e.contains("group `nosuchgroup` does not exist"), "{e}");

    let mut plan = Plan::default();
    let Spec::Group(g) = group("{}") else { unreachable!() };
    let mut declared = crate::resources::support::accounts_testkit::resource("declared", Spec::Group(g.clone()));
    plan.resources.push(declared.clone());
    let Spec::User(p) = user("{group: declared, groups: [declared, adm]}") else { unreachable!() };
    let d = diff("dave", &p, &db(), &plan, 1).expect("declared");
    assert_eq!(d.argv, argv(&["useradd", "-g", "declared", "-G", "declared,adm", "-m", "dave"]));
    // An existing user moving to a declared group that does not exist yet (dry-run).
    let Spec::User(p) = user("{group: declared}") else { unreachable!() };
    let d = diff("alice", &p, &db(), &plan, 1).expect("declared");
    assert_eq!(d.argv, argv(&["usermod", "-g", "declared", "alice"]));
    // A disabled or absent group resource declares nothing.
    declared.enabled = false;
    plan.resources[0] = declared.clone();
    assert!(diff("dave", &p, &db(), &plan, 1).is_err());
    plan.resources[0] = crate::resources::support::accounts_testkit::resource("declared", group("{state: absent}"));
    assert!(diff("dave", &p, &db(), &plan, 1).is_err());
}

#[test]
fn a_uid_used_by_another_user_is_an_error() {
    let e = diff_of("alice", "{uid: 1002}").expect_err("taken").to_string();
    assert!(e.contains("uid 1002 is already used by user `bob`"), "{e}");
    assert!(diff_of("alice", "{uid: 1001}").expect("own uid").changes.is_empty());
}

#[test]
fn groups_that_list_the_user_in_the_plan_are_kept_and_added_at_creation() {
    let mut plan = Plan::default();
    for (name, yaml) in [("adm", "{members: [alice, carol]}"), ("wheel", "{members: [carol]}")] {
        plan.resources.push(crate::resources::support::accounts_testkit::resource(name, group(yaml)));
    }
    // alice is in adm (exact list without it): kept, because group:adm lists her.
    let Spec::User(p) = user("{groups: [docker]}") else { unreachable!() };
    assert!(diff("alice", &p, &db(), &plan, 2).expect("diff").changes.is_empty());
    // carol, created after both groups (which could not add her): useradd adds her.
    let Spec::User(p) = user("{group: wheel}") else { unreachable!() };
    let d = diff("carol", &p, &db(), &plan, 2).expect("diff");
    assert_eq!(d.argv, argv(&["useradd", "-g", "wheel", "-G", "adm,wheel", "-m", "carol"]));
    // Ordered before them: the groups add her themselves.
    let d = diff("carol", &p, &db(), &plan, 0).expect("diff");
    assert_eq!(d.argv, argv(&["useradd", "-g", "wheel", "-m", "carol"]));
}

const KEY_A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIaaaa a@example";
const KEY_B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIbbbb b@example";

fn host() -> Host {
    Host::new(
        "alice:x:{uid}:{gid}:Alice:{home}/alice:/bin/bash\n",
        "alice:x:{gid}:\nadm:x:4:\n",
        "alice:!:19000:0:99999:7:::\n",
    )
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).map(|m| m.mode() & 0o7777).unwrap_or(0)
}

#[test]
fn a_new_user_converges_and_a_second_check_finds_nothing() {
    let mut h = host();
    let home = h.home("carol").display().to_string();
    h.declare(vec![(
        "carol",
        user(&format!(
            "{{groups: [adm], home: {home}, shell: /bin/bash, password: $6$s$h, ssh_authorized_keys: [{KEY_A:?}, {KEY_B:?}]}}"
        )),
    )]);

    // Dry-run: reported, nothing run or written.
    let dry = h.check(0, true).expect("dry-run");
    assert_eq!(names(&dry), ["ensure", "groups", "home", "shell", "password", "ssh_authorized_keys"]);
    assert_eq!(change(&dry, "ssh_authorized_keys").to.as_deref(), Some("2 keys"));
    assert!(h.take_calls().is_empty());
    assert!(!h.home("carol").exists());

    let changes = h.converge(0).expect("converge");
    assert_eq!(names(&changes), names(&dry));
    assert_eq!(
        h.take_calls(),
        [format!("useradd -G adm -d {home} -m -s /bin/bash carol"), "chpasswd -e carol:$6$s$h\n".to_string()],
        "one useradd and the password on stdin; verify re-read the files"
    );
    let keys = h.home("carol").join(".ssh/authorized_keys");
    assert_eq!(std::fs::read_to_string(&keys).expect("keys"), format!("{KEY_A}\n{KEY_B}\n"));
    assert_eq!((mode(&h.home("carol").join(".ssh")), mode(&keys)), (0o700, 0o600));
    let md = std::fs::metadata(&keys).expect("stat");
    assert_eq!((md.uid(), md.gid()), me());
    // No temporary file left behind.
    let left: Vec<_> = std::fs::read_dir(h.home("carol").join(".ssh")).expect("ls").flatten().collect();
    assert_eq!(left.len(), 1);

    assert_eq!(h.check(0, false).expect("again"), vec![]);
    assert!(h.take_calls().is_empty());
}

#[test]
fn keys_are_rewritten_when_content_or_mode_differs_and_symlinks_are_not_followed() {
    let mut h = host();
    h.declare(vec![("alice", user(&format!("{{ssh_authorized_keys: [{KEY_A:?}]}}")))]);
    let ssh = h.home("alice").join(".ssh");
    // No home at all: a clear error.
    let e = h.check(0, false).expect_err("no home").to_string();
    assert!(e.contains("home directory") && e.contains("does not exist"), "{e}");

    std::fs::create_dir_all(&ssh).expect("mkdir");
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(ssh.join("authorized_keys"), format!("{KEY_B}\n")).expect("write");
    std::fs::set_permissions(ssh.join("authorized_keys"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let c = h.check(0, false).expect("check");
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].from.as_deref(), Some("1 key, ~/.ssh mode 0755, file mode 0644"));
    assert!(c[0].diff.as_deref().is_some_and(|d| d.contains(&format!("-{KEY_B}"))), "{c:?}");
    h.converge(0).expect("converge");
    assert_eq!(mode(&ssh), 0o700);
    assert_eq!(h.check(0, false).expect("again"), vec![]);

    // Same content, wrong mode: only the mode is repaired.
    std::fs::set_permissions(ssh.join("authorized_keys"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let c = h.check(0, false).expect("check");
    assert_eq!(c[0].from.as_deref(), Some("file mode 0644"));
    h.converge(0).expect("converge");

    // A symlink is replaced, its target left alone.
    let target = h.dir.path().join("elsewhere");
    std::fs::write(&target, "do not touch\n").expect("write");
    std::fs::remove_file(ssh.join("authorized_keys")).expect("rm");
    std::os::unix::fs::symlink(&target, ssh.join("authorized_keys")).expect("symlink");
    assert_eq!(h.check(0, false).expect("check")[0].from.as_deref(), Some("not a regular file"));
    h.converge(0).expect("converge");
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "do not touch\n");
    assert!(std::fs::symlink_metadata(ssh.join("authorized_keys")).expect("stat").is_file());

    // ~/.ssh itself a symlink: refused.
    std::fs::remove_dir_all(&ssh).expect("rm");
    std::os::unix::fs::symlink(h.dir.path(), &ssh).expect("symlink");
    let e = h.check(0, false).expect_err("symlinked .ssh").to_string();
    assert!(e.contains(".ssh is not a directory"), "{e}");
    assert!(!h.dir.path().join("authorized_keys").exists());
    assert!(h.take_calls().is_empty(), "keys alone need no command");
}

#[test]
fn an_empty_key_list_writes_an_empty_file() {
    let mut h = host();
    std::fs::create_dir_all(h.home("alice")).expect("mkdir");
    h.declare(vec![("alice", user("{ssh_authorized_keys: []}"))]);
    let c = h.converge(0).expect("converge");
    assert_eq!((c[0].from.as_deref(), c[0].to.as_deref()), (None, Some("0 keys")));
    assert_eq!(std::fs::read(h.home("alice").join(".ssh/authorized_keys")).expect("read"), b"");
    assert_eq!(h.check(0, false).expect("again"), vec![]);
}

#[test]
fn changes_to_an_existing_user_converge_with_one_usermod() {
    let mut h = host();
    h.declare(vec![("alice", user("{groups: [adm], shell: /bin/zsh, comment: Alice A, password: $6$s$h}"))]);
    let c = h.converge(0).expect("converge");
    assert_eq!(names(&c), ["groups", "shell", "comment", "password"]);
    assert_eq!(h.take_calls(), ["usermod -G adm -s /bin/zsh -c Alice A alice", "chpasswd -e alice:$6$s$h\n"]);
    assert!(h.file("shadow").contains("alice:$6$s$h:"), "{}", h.file("shadow"));
    assert!(h.file("passwd").contains(":Alice A:") && h.file("group").contains("adm:x:4:alice"));
    assert_eq!(h.check(0, false).expect("again"), vec![]);
}

#[test]
fn a_failing_tool_reports_its_message_without_the_hash() {
    let mut h = host();
    h.declare(vec![("carol", user("{password: $6$salt$topsecret}"))]);
    *h.runner.fail.borrow_mut() = Some(("chpasswd".into(), 1, "chpasswd: line 1: bad hash $6$salt$topsecret".into()));
    let c = h.check(0, false).expect("check");
    let r = h.plan.resources[0].clone();
    let e = UserType.apply(&r, &c, &mut h.ctx(0, false)).expect_err("fails").to_string();
    assert!(e.contains("chpasswd: line 1: bad hash (sensitive)") && e.contains("exit code 1"), "{e}");
    assert!(!e.contains("topsecret"), "{e}");
    // No argument of any command carried the hash.
    assert!(h.take_calls().iter().all(|c| !c.split(' ').any(|a| a == "$6$salt$topsecret")));
}

#[test]
fn a_user_in_a_group_declared_earlier_is_reported_in_dry_run_and_created_for_real() {
    let mut h = host();
    h.declare(vec![("ops", group("{gid: 2001}")), ("dave", user("{group: ops, groups: [ops, adm]}"))]);
    // Dry-run: the group does not exist yet; the user says what it would do.
    let dry = h.check(1, true).expect("dry-run");
    assert_eq!(names(&dry), ["ensure", "group", "groups"]);
    assert!(h.take_calls().is_empty());
    h.converge(0).expect("group");
    h.converge(1).expect("user");
    assert_eq!(h.take_calls(), ["groupadd -g 2001 ops", "useradd -g ops -G ops,adm -m dave"]);
    assert_eq!(h.check(0, false).expect("group again"), vec![]);
    assert_eq!(h.check(1, false).expect("user again"), vec![]);
    // Removing it.
    h.plan.resources[1] = crate::resources::support::accounts_testkit::resource("dave", user("{state: absent}"));
    h.converge(1).expect("remove");
    assert_eq!(h.take_calls(), ["userdel dave"]);
    assert!(!h.file("passwd").contains("dave"));
}
