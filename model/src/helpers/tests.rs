//! Each helper through the real renderer (strict, unescaped), with its
//! errors; the golden files in tests/fixtures/templates cover the same
//! ground as whole templates.

use serde_json::{Value, json};

use crate::render::Renderer;

fn ctx() -> Value {
    json!({
        "facts": {"hostname": "web-1", "os": {"family": "debian"}, "openssl": "3.0.11-1~deb12u2"},
        "params": {
            "users": {"bob": {"shell": "/bin/zsh"}, "alice": {"shell": "/bin/bash"}},
            "admins": ["carol", "alice", "bob", "alice"],
            "ports": [443, 80, 8080, 80],
            "name": "  Web Server ",
            "empty": "",
            "none": null,
            "zero": 0,
            "text": "a\nb\n\nc",
            "site": "example.org",
            "mixed": ["a", 1],
        }
    })
}

fn render(t: &str) -> Result<String, String> {
    Renderer::default().render(t, &ctx()).map_err(|e| e.message)
}

fn ok(t: &str) -> String {
    render(t).unwrap_or_else(|e| panic!("{t}: {e}"))
}

fn err(t: &str) -> String {
    match render(t) {
        Ok(out) => panic!("{t} rendered {out:?} but must fail"),
        Err(e) => e,
    }
}

#[test]
fn join_sort_unique_keys_values() {
    assert_eq!(ok(r#"{{join (sort (keys params.users)) ", "}}"#), "alice, bob");
    assert_eq!(ok(r#"{{join (unique params.admins) ","}}"#), "carol,alice,bob");
    assert_eq!(ok(r#"{{join (sort (unique params.ports)) " "}}"#), "80 443 8080");
    assert_eq!(ok(r#"{{#each (values params.users)}}{{this.shell}};{{/each}}"#), "/bin/bash;/bin/zsh;");
    assert_eq!(ok(r#"[{{join (split "" ",") "|"}}]"#), "[]");
    assert_eq!(ok(r#"{{join params.ports "-"}}"#), "443-80-8080-80");
    assert!(err(r#"{{join params.site ","}}"#).contains("join: expects a list as LIST, got a string (`params.site`)"));
    assert!(err(r#"{{join params.admins}}"#).contains("join: expects 2 arguments, got 1 (usage: join LIST SEPARATOR)"));
    assert!(err(r#"{{join (values params.users) ","}}"#).contains("item 0 of LIST is a mapping"));
    assert!(err(r#"{{sort params.mixed}}"#).contains("item 1 is a number"));
    assert!(err(r#"{{keys params.admins}}"#).contains("keys: expects a mapping as MAPPING, got a list"));
    assert!(err(r#"{{join params.nope ","}}"#).contains("template references `params.nope`, which has no value"));
}

#[test]
fn default_sees_missing_values() {
    assert_eq!(ok(r#"{{default params.nope "x"}}"#), "x");
    assert_eq!(ok(r#"{{default params.users.carol.shell "/bin/sh"}}"#), "/bin/sh");
    assert_eq!(ok(r#"{{default params.none "x"}}|{{default params.empty "y"}}|{{default params.zero 1}}"#), "x|y|0");
    assert_eq!(ok(r#"{{default params.site "x"}}"#), "example.org");
    assert_eq!(ok(r#"{{#each params.admins}}{{default this.nope @index}}{{/each}}"#), "0123");
    assert!(err(r#"{{default params.nope params.nada}}"#).contains("`params.nada`"));
    assert!(err(r#"{{default params.site params.nada}}"#).contains("`params.nada`"), "even when unused");
}

#[test]
fn string_helpers() {
    assert_eq!(ok("{{upper facts.hostname}} {{lower \"MiXeD\"}} [{{trim params.name}}]"), "WEB-1 mixed [Web Server]");
    assert_eq!(ok(r#"{{replace params.site "." "_"}}"#), "example_org");
    assert_eq!(ok(r#"{{join (split params.site ".") "/"}}"#), "example/org");
    assert_eq!(ok(r#"{{upper 42}}"#), "42");
    assert!(
        err(r#"{{upper params.admins}}"#).contains("upper: expects a string as STRING, got a list (`params.admins`)")
    );
    assert!(err(r#"{{replace params.site "" "x"}}"#).contains("FROM is empty"));
    assert!(err(r#"{{split params.site ""}}"#).contains("SEPARATOR is empty"));
    assert!(err(r#"{{upper params.none}}"#).contains("got nothing (null) (`params.none`)"));
}

#[test]
fn indent_follows_jinja() {
    assert_eq!(ok("{{indent params.text 2}}"), "a\n  b\n\n  c");
    assert_eq!(ok("{{indent params.text 2 first=true}}"), "  a\n  b\n\n  c");
    assert_eq!(ok("{{indent params.text 2 blank=true}}"), "a\n  b\n  \n  c");
    assert_eq!(ok(r#"{{indent params.text "> "}}"#), "a\n> b\n\n> c");
    assert_eq!(ok(r#"{{indent "x\n" 4}}"#), "x\n");
    assert!(err("{{indent params.text -1}}").contains("WIDTH must be a whole number"));
    assert!(err("{{indent params.text 2 frist=true}}").contains("unknown option `frist`"));
    assert!(err("{{indent params.text 2 first=1}}").contains("expects true or false as first"));
    let e = err("{{indent params.text 1000000000}}");
    assert!(e.contains("indent: the result would be") && e.contains("template.max_bytes"), "{e}");
    let e = err("{{indent params.text 18446744073709551615}}");
    assert!(e.contains("template.max_bytes"), "{e}");
}

#[test]
fn contains_lists_strings_and_mappings() {
    assert_eq!(ok(r#"{{#if (contains params.admins "bob")}}y{{else}}n{{/if}}"#), "y");
    assert_eq!(ok(r#"{{contains params.ports 80}} {{contains params.ports "80"}}"#), "true false");
    assert_eq!(
        ok(r#"{{contains params.site "ample"}} {{contains params.users "bob"}} {{contains params.users "eve"}}"#),
        "true true false"
    );
    assert!(err(r#"{{contains params.zero 1}}"#).contains("expects a list, a string or a mapping"));
}

#[test]
fn serializers() {
    assert_eq!(ok("{{to_json params.ports}}"), "[443,80,8080,80]");
    assert_eq!(ok("{{to_json params.users.bob pretty=true}}"), "{\n  \"shell\": \"/bin/zsh\"\n}");
    assert_eq!(ok("{{to_yaml params.users}}"), "alice:\n  shell: /bin/bash\nbob:\n  shell: /bin/zsh");
    assert_eq!(ok("{{to_json params.site}}"), "\"example.org\"");
    assert_eq!(ok("{{to_json params.none}}"), "null");
}

#[test]
fn version_compare() {
    assert_eq!(ok(r#"{{version_compare "1.10" ">" "1.9"}}"#), "true");
    assert_eq!(ok(r#"{{version_compare facts.openssl "ge" "3.0.11"}}"#), "true");
    assert_eq!(ok(r#"{{version_compare facts.openssl "<" "3.0.11-1"}}"#), "true");
    assert_eq!(ok(r#"{{version_compare "1.0-1" "==" "1.0"}}"#), "false", "Debian host: dpkg's order");
    assert_eq!(ok(r#"{{version_compare "1.0-1" "==" "1.0" scheme="rpm"}}"#), "true");
    assert_eq!(ok(r#"{{#if (version_compare "7.4p1" "<" "7.9p1")}}old{{/if}}"#), "old");
    assert_eq!(ok(r#"{{version_compare 12 ">" "9"}}"#), "true");
    assert!(err(r#"{{version_compare 1.10 ">" "1.9"}}"#).contains("A is the number 1.1; write versions as strings"));
    assert!(err(r#"{{version_compare "1" "=>" "2"}}"#).contains("unknown operator \"=>\""));
    assert!(err(r#"{{version_compare "1" "<" "2" scheme="dpkg"}}"#).contains("unknown scheme \"dpkg\""));
}

#[test]
fn regex_replace() {
    assert_eq!(ok(r#"{{regex_replace params.site "^(\\w+)\\.(\\w+)$" "$2.$1"}}"#), "org.example");
    assert_eq!(ok(r#"{{regex_replace "a1b22" "[0-9]+" "<$0>"}}"#), "a<1>b<22>");
    assert_eq!(ok(r#"{{regex_replace "ab" "(?P<x>a)" "${x}${x}$$"}}"#), "aa$b");
    assert_eq!(ok(r#"{{regex_replace "ab" "a" "$9"}}"#), "b", "a missing group is empty");
    let e = err(r#"{{regex_replace "x" "(" ""}}"#);
    assert!(e.contains("regex_replace: invalid regular expression \"(\""), "{e}");
    let long = format!(r#"{{{{regex_replace "x" "{}" ""}}}}"#, "a".repeat(2000));
    assert!(err(&long).contains("the pattern is 2000 bytes; the limit is 1024"));
}

#[test]
fn results_are_bounded_before_allocation() {
    // 1 MiB of text, multiplied by a large replacement or width.
    let big = "x".repeat(1 << 20);
    let ctx = json!({"s": big, "l": vec!["y"; 1 << 10]});
    let r = Renderer::default();
    let run = |t: &str| r.render(t, &ctx).map(|o| o.len()).map_err(|e| e.message);
    let e = run(r#"{{replace s "x" "yyyyy"}}"#).unwrap_err();
    assert!(e.contains("replace: the result would be 5242880 bytes"), "{e}");
    assert!(run(r#"{{regex_replace s "x" "$0$0$0$0$0"}}"#).unwrap_err().contains("template.max_bytes"));
    assert!(run(r#"{{regex_replace s "" "yyyyyyyy"}}"#).unwrap_err().contains("template.max_bytes"));
    assert!(run(r#"{{join l s}}"#).unwrap_err().contains("join: the result would be"));
    assert_eq!(run(r#"{{len (split s "x")}}"#), Ok(7), "1 Mi + 1 empty pieces: 3 MiB as JSON");
    assert!(run(r#"{{split (replace s "x" "xx") "x"}}"#).unwrap_err().contains("split: the result would be"));
    assert!(run(r#"{{to_json (split (replace s "x" "x,") ",")}}"#).is_err());
    assert_eq!(run(r#"{{indent s 3}}"#), Ok(1 << 20), "one line: nothing to indent");
    assert!(run(r#"{{indent s 4194304 first=true}}"#).unwrap_err().contains("indent: the result would be"));
    assert_eq!(run(r#"{{replace s "x" "yyy"}}"#), Ok(3 << 20));
    let huge = json!({"v": vec!["z".repeat(1 << 10); 5 << 10]});
    let e = r.render("{{to_json v pretty=true}}", &huge).unwrap_err().message;
    assert!(e.contains("to_json: the result would be over the limit of 4194304 bytes"), "{e}");
    assert!(r.render("{{to_yaml v}}", &huge).is_err());
}

#[test]
fn every_helper_is_registered() {
    let r = Renderer::default();
    for name in super::names() {
        // Each refuses to run with no arguments, with its own name in the message.
        let e = r.render(&format!("{{{{{name}}}}}"), &ctx()).unwrap_err().message;
        assert!(e.contains(&format!("{name}: expects")), "{name}: {e}");
    }
}

#[test]
fn no_arguments_make_a_helper_panic() {
    // Every helper with up to 2 arguments (3 for the helpers that take 3)
    // drawn from values of every type, missing ones, awkward literals and a
    // subexpression, with its options set to odd values: each render must
    // return. The fuzz target goes further.
    let pool = [
        "params.s",
        "params.n",
        "params.b",
        "params.l",
        "params.m",
        "params.nope",
        "null",
        "\"\"",
        "\"(\"",
        "-1",
        "1.5",
        "18446744073709551615",
        "(split \"a,b\" \",\")",
    ];
    let mut calls: Vec<Vec<&str>> = vec![vec![]];
    for _ in 0..3 {
        let longer: Vec<Vec<&str>> = calls
            .iter()
            .filter(|c| c.len() < 3)
            .flat_map(|c| pool.iter().map(move |p| c.iter().copied().chain([*p]).collect()))
            .collect();
        calls.extend(longer);
        calls.sort();
        calls.dedup();
    }
    for name in super::names() {
        let arity = if matches!(name, "replace" | "regex_replace" | "version_compare") { 3 } else { 2 };
        let options: &[&str] = match name {
            "indent" => &["", " first=true blank=true", " first=params.nope", " blank=1"],
            "to_json" => &["", " pretty=true", " pretty=\"yes\""],
            "version_compare" => &["", " scheme=\"rpm\"", " scheme=params.nope", " scheme=1"],
            _ => &["", " x=1"],
        };
        for args in calls.iter().filter(|c| c.len() <= arity) {
            for opt in options {
                let call = format!("{name} {}{opt}", args.join(" "));
                crate::fuzzing::template(&format!("{{{{{call}}}}}"));
            }
        }
    }
}
