//! `group`: local groups, through groupadd, groupmod, gpasswd and groupdel.
//!
//! Reads the databases that `user` reads (shared, once per run) and re-reads
//! them after each command.

use tend_model::resources::Presence;
use tend_model::resources::group::GroupProps;
use tend_model::{CompiledResource, Plan, Spec};

use super::support::accounts_db::{AccountsDb, declared_user, dedup, run_cmd, show_list};
use super::{Applied, Ctx, Error, ResourceType, Result, mismatch};
use crate::report::Change;

pub struct GroupType;

fn props(r: &CompiledResource) -> Result<&GroupProps> {
    match &r.spec {
        Spec::Group(p) => Ok(p),
        _ => Err(mismatch(r)),
    }
}

impl ResourceType for GroupType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let p = props(r)?;
        Ok(diff(&r.id.name, p, ctx.run.accounts.db()?, ctx.plan, false)?.changes)
    }

    fn apply(&self, r: &CompiledResource, _changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let p = props(r)?;
        let d = diff(&r.id.name, p, ctx.run.accounts.db()?, ctx.plan, false)?;
        for argv in &d.commands {
            let result = run_cmd(ctx.runner, argv);
            ctx.run.accounts.invalidate();
            result?;
        }
        Ok(Applied::Done)
    }

    /// As `check`, except for members that are not users yet: their own
    /// `user` resource, later in the plan, adds them (it names this group).
    fn verify(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let p = props(r)?;
        Ok(diff(&r.id.name, p, ctx.run.accounts.db()?, ctx.plan, true)?.changes)
    }
}

/// What differs for one group, and the commands that make it so.
#[derive(Debug)]
struct Diff {
    changes: Vec<Change>,
    commands: Vec<Vec<String>>,
}

fn s(v: &str) -> String {
    v.to_string()
}

/// Users of the plan that name this group among their supplementary groups.
fn plan_users_naming(plan: &Plan, group: &str) -> Vec<String> {
    plan.resources
        .iter()
        .filter(|r| r.enabled)
        .filter_map(|r| match &r.spec {
            Spec::User(u) if u.state == Presence::Present && u.groups.iter().flatten().any(|g| g == group) => {
                Some(r.id.name.clone())
            }
            _ => None,
        })
        .collect()
}

/// Computes the changes and commands for group `name`. Members that do not
/// exist yet but that a `user` resource of the plan declares are "pending":
/// reported, but left out of the commands (gpasswd would refuse them) and,
/// with `verify`, out of the comparison.
fn diff(name: &str, p: &GroupProps, db: &AccountsDb, plan: &Plan, verify: bool) -> Result<Diff> {
    let current = db.group(name);
    let mut d = Diff { changes: Vec::new(), commands: Vec::new() };
    if p.state == Presence::Absent {
        if current.is_some() {
            d.changes.push(Change::new("ensure", Some(s("present")), Some(s("absent"))));
            d.commands.push(vec![s("groupdel"), s(name)]);
        }
        return Ok(d);
    }
    if let Some(gid) = p.gid {
        if let Some(other) = db.group_by_gid(gid).filter(|g| g.name != name) {
            return Err(Error::Failed(format!("gid {gid} is already used by group `{}`", other.name)));
        }
    }
    // Members must be users, or be declared by the plan.
    let mut pending = Vec::new();
    let mut missing = Vec::new();
    let members: Option<Vec<String>> = p.members.as_ref().map(|ms| dedup(ms.iter().cloned()));
    for m in members.iter().flatten() {
        if db.user(m).is_none() {
            if declared_user(plan, m).is_some() {
                pending.push(m.clone());
            } else {
                missing.push(m.clone());
            }
        }
    }
    if !missing.is_empty() {
        let names = missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ");
        let (what, verb) = if missing.len() == 1 { ("user", "does") } else { ("users", "do") };
        return Err(Error::Failed(format!(
            "member {what} {names} {verb} not exist (create it first or declare it with a user resource)"
        )));
    }
    let members = members.map(|ms| if verify { ms.into_iter().filter(|m| !pending.contains(m)).collect() } else { ms });
    let real = |ms: &[String]| -> Vec<String> { ms.iter().filter(|m| !pending.contains(m)).cloned().collect() };

    let Some(cur) = current else {
        d.changes.push(Change::new("ensure", Some(s("absent")), Some(s("present"))));
        let mut add = vec![s("groupadd")];
        if let Some(gid) = p.gid {
            d.changes.push(Change::new("gid", None, Some(gid.to_string())));
            add.extend([s("-g"), gid.to_string()]);
        }
        if p.system {
            add.push(s("-r"));
        }
        add.push(s(name));
        d.commands.push(add);
        if let Some(ms) = members.filter(|ms| !ms.is_empty()) {
            d.changes.push(Change::new("members", None, Some(show_list(&ms))));
            d.commands.extend(member_commands(name, &real(&ms), &[], p.append));
        }
        return Ok(d);
    };

    if let Some(gid) = p.gid.filter(|g| *g != cur.gid) {
        d.changes.push(Change::new("gid", Some(cur.gid.to_string()), Some(gid.to_string())));
        d.commands.push(vec![s("groupmod"), s("-g"), gid.to_string(), s(name)]);
    }
    if let Some(ms) = members {
        let have = &cur.members;
        let want = if p.append {
            dedup(have.iter().chain(&ms).cloned())
        } else {
            // Exactly these, but never remove a member whose user resource
            // in this plan names this group (they would fight).
            let keep = plan_users_naming(plan, name).into_iter().filter(|u| have.contains(u));
            dedup(ms.iter().cloned().chain(keep))
        };
        if !same_set(&want, have) {
            let (mut from, mut to) = (have.clone(), want.clone());
            if !p.append {
                from.sort();
                to.sort();
            }
            d.changes.push(Change::new("members", Some(show_list(&from)), Some(show_list(&to))));
            d.commands.extend(member_commands(name, &real(&want), have, p.append));
        }
    }
    Ok(d)
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
}

/// `gpasswd -M` with the whole list, or (append) `gpasswd -a` for each
/// member not there yet. Nothing when the group already has them.
fn member_commands(group: &str, want: &[String], have: &[String], append: bool) -> Vec<Vec<String>> {
    if append {
        return want
            .iter()
            .filter(|m| !have.contains(m))
            .map(|m| vec![s("gpasswd"), s("-a"), m.clone(), s(group)])
            .collect();
    }
    if same_set(want, have) {
        return Vec::new();
    }
    vec![vec![s("gpasswd"), s("-M"), want.join(","), s(group)]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::support::accounts_testkit::{Host, change, props as names, resource};

    fn group(yaml: &str) -> Spec {
        Spec::Group(serde_yaml::from_str(yaml).expect("group props"))
    }

    fn user(yaml: &str) -> Spec {
        Spec::User(serde_yaml::from_str(yaml).expect("user props"))
    }

    const PASSWD: &str = "alice:x:1001:1001::/home/alice:/bin/bash\nbob:x:1002:1002::/home/bob:/bin/sh\n\
                          carol:x:1003:1003::/home/carol:/bin/sh\n";
    const GROUP: &str = "alice:x:1001:\nbob:x:1002:\nsudo:x:27:bob,alice\nops:x:2001:\n";

    fn db() -> AccountsDb {
        AccountsDb::from_text(PASSWD, GROUP, Ok(""))
    }

    fn diff_in(name: &str, yaml: &str, plan: &Plan, verify: bool) -> Result<Diff> {
        let Spec::Group(p) = group(yaml) else { unreachable!() };
        diff(name, &p, &db(), plan, verify)
    }

    fn diff_of(name: &str, yaml: &str) -> Result<Diff> {
        diff_in(name, yaml, &Plan::default(), false)
    }

    fn cmds(d: &Diff) -> Vec<String> {
        d.commands.iter().map(|a| a.join(" ")).collect()
    }

    #[test]
    fn groupadd_carries_only_what_is_set_then_the_members() {
        let d = diff_of("web", "{gid: 3000, members: [carol, alice]}").expect("diff");
        assert_eq!(cmds(&d), ["groupadd -g 3000 web", "gpasswd -M carol,alice web"]);
        assert_eq!(names(&d.changes), ["ensure", "gid", "members"]);
        assert_eq!(change(&d.changes, "members").to.as_deref(), Some("carol,alice"));
        assert_eq!(cmds(&diff_of("deploy", "{system: true}").expect("diff")), ["groupadd -r deploy"]);
        assert_eq!(cmds(&diff_of("deploy", "{members: []}").expect("diff")), ["groupadd deploy"]);
        let d = diff_of("web", "{members: [alice, bob], append: true}").expect("diff");
        assert_eq!(cmds(&d), ["groupadd web", "gpasswd -a alice web", "gpasswd -a bob web"]);
    }

    #[test]
    fn a_group_that_matches_has_no_changes() {
        let d = diff_of("sudo", "{gid: 27, members: [alice, bob]}").expect("diff");
        assert!(d.changes.is_empty() && d.commands.is_empty(), "{d:?}");
        assert!(diff_of("sudo", "{members: [bob], append: true}").expect("diff").changes.is_empty());
        assert!(diff_of("ops", "{}").expect("diff").changes.is_empty());
    }

    #[test]
    fn gid_and_members_changes() {
        let d = diff_of("ops", "{gid: 2002}").expect("diff");
        assert_eq!(cmds(&d), ["groupmod -g 2002 ops"]);
        let c = change(&d.changes, "gid");
        assert_eq!((c.from.as_deref(), c.to.as_deref()), (Some("2001"), Some("2002")));

        let d = diff_of("sudo", "{members: [carol, alice]}").expect("diff");
        assert_eq!(cmds(&d), ["gpasswd -M carol,alice sudo"]);
        let c = change(&d.changes, "members");
        assert_eq!((c.from.as_deref(), c.to.as_deref()), (Some("alice,bob"), Some("alice,carol")));

        let d = diff_of("sudo", "{members: []}").expect("diff");
        assert_eq!(cmds(&d), ["gpasswd -M  sudo"]);
        assert_eq!(change(&d.changes, "members").to.as_deref(), Some("(none)"));

        let d = diff_of("sudo", "{members: [carol, bob], append: true}").expect("diff");
        assert_eq!(cmds(&d), ["gpasswd -a carol sudo"]);
        let c = change(&d.changes, "members");
        assert_eq!((c.from.as_deref(), c.to.as_deref()), (Some("bob,alice"), Some("bob,alice,carol")));
    }

    #[test]
    fn groupdel_only_when_the_group_exists() {
        let d = diff_of("ops", "{state: absent, members: [nobody]}").expect("diff");
        assert_eq!(cmds(&d), ["groupdel ops"]);
        assert_eq!(change(&d.changes, "ensure").to.as_deref(), Some("absent"));
        assert!(diff_of("nosuch", "{state: absent}").expect("diff").changes.is_empty());
    }

    #[test]
    fn bad_inputs_are_errors_naming_them() {
        let e = diff_of("ops", "{gid: 27}").expect_err("taken").to_string();
        assert!(e.contains("gid 27 is already used by group `sudo`"), "{e}");
        let e = diff_of("ops", "{members: [alice, ghost, phantom]}").expect_err("missing").to_string();
        assert!(e.contains("users `ghost`, `phantom` do not exist"), "{e}");
        let e = diff_of("new", "{members: [ghost], append: true}").expect_err("missing").to_string();
        assert!(e.contains("user `ghost` does not exist"), "{e}");
    }

    #[test]
    fn members_declared_by_the_plan_are_reported_but_left_to_their_user() {
        let mut plan = Plan::default();
        plan.resources.push(resource("dave", user("{groups: [ops]}")));
        let d = diff_in("ops", "{members: [alice, dave]}", &plan, false).expect("diff");
        assert_eq!(change(&d.changes, "members").to.as_deref(), Some("alice,dave"));
        assert_eq!(cmds(&d), ["gpasswd -M alice ops"], "gpasswd would refuse dave");
        // After apply, dave (not created yet) is not held against the group.
        let db = AccountsDb::from_text(PASSWD, "ops:x:2001:alice\n", Ok(""));
        let Spec::Group(p) = group("{members: [alice, dave]}") else { unreachable!() };
        assert!(diff("ops", &p, &db, &plan, true).expect("verify").changes.is_empty());
        // Only dave missing: reported, nothing to run.
        let d = diff("ops", &p, &db, &plan, false).expect("check");
        assert_eq!(names(&d.changes), ["members"]);
        assert!(d.commands.is_empty());
        // A user resource naming the group keeps its membership in an exact list.
        plan.resources.push(resource("bob", user("{groups: [sudo]}")));
        assert!(diff_in("sudo", "{members: [alice]}", &plan, false).expect("diff").changes.is_empty());
    }

    #[test]
    fn the_system_recipe_accounts_converge_and_stay_converged() {
        let mut h = Host::new("root:x:0:0:root:/root:/bin/bash\n", "root:x:0:\n", "root:*:19000:0:99999:7:::\n");
        let home = h.home("alice").display().to_string();
        h.declare(vec![
            ("ops", group("{gid: 2001}")),
            ("deploy", group("{system: true, members: [alice]}")),
            (
                "alice",
                user(&format!(
                    "{{uid: 2001, group: ops, groups: [deploy], home: {home}, shell: /bin/bash, comment: Alice Admin, \
                     password: $6$s$h, ssh_authorized_keys: ['ssh-ed25519 AAAA admin@example']}}"
                )),
            ),
            ("web", group("{members: [alice], append: true}")),
        ]);
        for i in 0..4 {
            let dry = h.check(i, true).expect("dry-run");
            assert!(!dry.is_empty(), "{i}");
        }
        assert!(h.take_calls().is_empty(), "dry-run runs nothing");
        for i in 0..4 {
            h.converge(i).expect("converge");
        }
        assert_eq!(
            h.take_calls(),
            [
                "groupadd -g 2001 ops".to_string(),
                "groupadd -r deploy".to_string(),
                format!("useradd -u 2001 -g ops -G deploy -d {home} -m -s /bin/bash -c Alice Admin alice"),
                "chpasswd -e alice:$6$s$h\n".to_string(),
                "groupadd web".to_string(),
                "gpasswd -a alice web".to_string(),
            ]
        );
        assert!(h.file("passwd").contains(&format!("alice:x:2001:2001:Alice Admin:{home}:/bin/bash")));
        assert!(h.file("group").contains(":alice\n"));
        for i in 0..4 {
            assert_eq!(h.check(i, false).expect("again"), vec![], "{i}");
        }
        // Drift: alice removed from deploy and web by hand.
        let text = h.file("group").replace(":alice\n", ":\n");
        std::fs::write(h.dir.path().join("group"), text).expect("write");
        h.state.accounts.invalidate();
        assert_eq!(names(&h.converge(1).expect("repair")), ["members"]);
        // alice's exact groups neither add nor remove web: group:web lists her, and adds her.
        assert!(h.converge(2).expect("repair").is_empty());
        assert_eq!(names(&h.converge(3).expect("repair")), ["members"]);
        assert_eq!(h.take_calls(), ["gpasswd -M alice deploy", "gpasswd -a alice web"]);
        assert_eq!(h.check(2, false).expect("again"), vec![]);
        assert_eq!(h.check(3, false).expect("again"), vec![]);
        // Removing a group.
        h.plan.resources[3] = resource("web", group("{state: absent}"));
        assert_eq!(names(&h.converge(3).expect("remove")), ["ensure"]);
        assert_eq!(h.take_calls(), ["groupdel web"]);
    }

    #[test]
    fn a_group_listing_users_created_after_it_converges_in_one_run() {
        let mut h = Host::new("root:x:0:0:root:/root:/bin/bash\n", "root:x:0:\n", "");
        // The users name the groups, so the groups come first and cannot
        // add them yet: useradd does, and nothing is left for a second run.
        h.declare(vec![
            ("docker", group("{members: [dave, root]}")),
            ("ops", group("{members: [erin]}")),
            ("dave", user("{groups: [docker]}")),
            ("erin", user("{group: ops}")),
        ]);
        let dry = h.check(0, true).expect("dry-run");
        assert_eq!(change(&dry, "members").to.as_deref(), Some("dave,root"));
        for i in 0..4 {
            h.converge(i).expect("converge");
        }
        assert_eq!(
            h.take_calls(),
            [
                "groupadd docker",
                "gpasswd -M root docker",
                "groupadd ops",
                "useradd -G docker -m dave",
                "useradd -g ops -G ops -m erin"
            ]
        );
        for i in 0..4 {
            assert_eq!(h.check(i, false).expect("again"), vec![], "{i}");
        }
    }
}
