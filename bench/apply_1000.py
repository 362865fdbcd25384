#!/usr/bin/env python3
"""Benchmark: tend-agent applying a generated recipe of 1,000 file resources.

Measures, as whole processes (what an admin waits for):
  - the first run (every file created), on a fresh tree each time;
  - the no-op re-run (nothing to change);
  - peak RSS of each (ru_maxrss from wait4).

Usage:
  python3 bench/apply_1000.py [--runs N] [--files N] [--bin PATH] [--peers]

--bin defaults to target/release/tend-agent (build it with
`cargo build --release -p tend-agent`). --peers also measures CFEngine
(`cf-agent`) and Puppet (`puppet apply`) on the same workload when they are
installed (`apt-get install cfengine3 puppet-agent`).
Only temporary directories are touched.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


GNU_TIME = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None


def peak_rss_mib(cmd, env):
    """Peak RSS of cmd alone, through GNU time. (wait4's ru_maxrss from Python
    would count the Python process forked before exec, not the program.)"""
    if not GNU_TIME:
        return float("nan")
    with tempfile.NamedTemporaryFile("r") as out:
        subprocess.run([GNU_TIME, "-f", "%M", "-o", out.name] + cmd, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return int(out.read().strip().splitlines()[-1]) / 1024.0


def run(cmd, env=None, rss=False):
    """Runs cmd; returns (wall seconds, peak RSS in MiB or nan, exit code)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, _ = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    return wall, float("nan"), code


def summarize(name, samples, rss):
    walls = sorted(s[0] * 1000 for s in samples)
    p90 = walls[min(len(walls) - 1, int(len(walls) * 0.9))]
    print(f"{name:<28} median {statistics.median(walls):8.1f} ms   p90 {p90:8.1f} ms   "
          f"min {walls[0]:8.1f} ms   peak RSS {rss:6.1f} MiB   ({len(walls)} runs)")
    return statistics.median(walls), rss


def tend_recipe(path, n):
    with open(path, "w") as f:
        f.write("name: bench\nparameters:\n  root: { type: string }\nresources:\n")
        f.write('  - directory: "{{params.root}}/files"\n    mode: "0755"\n')
        for i in range(n):
            f.write(f'  - file: "{{{{params.root}}}}/files/f{i:04d}.conf"\n'
                    f'    content: "# managed file {i}\\nkey = value-{i}\\n"\n'
                    f'    owner: root\n    group: root\n    mode: "0644"\n')


def baseline(args, work):
    """What the filesystem itself costs: creating, renaming and re-reading N
    small files from Python, with no configuration management at all."""
    d = os.path.join(work, "baseline")
    creates, reads = [], []
    for _ in range(3):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        t = time.perf_counter()
        for i in range(args.files):
            fd = os.open(f"{d}/.f{i:04d}.tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, b"# managed file\nkey = value\n")
            os.close(fd)
            os.rename(f"{d}/.f{i:04d}.tmp", f"{d}/f{i:04d}.conf")
        creates.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        for i in range(args.files):
            os.lstat(f"{d}/f{i:04d}.conf")
            with open(f"{d}/f{i:04d}.conf", "rb") as f:
                f.read()
        reads.append((time.perf_counter() - t) * 1000)
    shutil.rmtree(d, ignore_errors=True)
    print(f"filesystem baseline in {work} (Python, {args.files} files): create+rename median "
          f"{statistics.median(creates):.1f} ms, stat+read median {statistics.median(reads):.1f} ms")


def bench_tend(args, work):
    recipe = os.path.join(work, "bench.yaml")
    tend_recipe(recipe, args.files)
    env = dict(os.environ, TEND_EC2="off", TEND_FACTS_DIR=os.path.join(work, "facts.d"))
    root = os.path.join(work, "root")
    state = os.path.join(work, "state")

    def cmd():
        return [args.bin, "apply", recipe, "--param", f"root={root}", "--state-dir", state]

    first = []
    for _ in range(args.runs):
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
        os.makedirs(root)
        subprocess.run(["sync"])
        w = run(cmd(), env)
        if w[2] != 2:
            sys.exit(f"first run exited {w[2]}, expected 2 (changes)")
        first.append(w)
    noop = []
    for _ in range(args.runs * 2):
        w = run(cmd(), env)
        if w[2] != 0:
            sys.exit(f"no-op run exited {w[2]}, expected 0 (no changes)")
        noop.append(w)
    noop_rss = peak_rss_mib(cmd(), env)
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)
    os.makedirs(root)
    first_rss = peak_rss_mib(cmd(), env)
    print(f"tend-agent {args.files} files ({args.bin})")
    f = summarize("  first run", first, first_rss)
    n = summarize("  no-op re-run", noop, noop_rss)
    return f, n


def bench_cfengine(args, work):
    if not shutil.which("cf-agent"):
        print("cf-agent not installed: skipped")
        return
    root = os.path.join(work, "cf-root")
    policy = os.path.join(work, "bench.cf")
    with open(policy, "w") as f:
        # Self-contained (no masterfiles or stdlib needed).
        f.write('body common control { bundlesequence => { "bench" }; }\n')
        f.write('body edit_defaults empty { empty_file_before_editing => "true"; edit_backup => "false"; }\n')
        f.write('body perms m644 { mode => "0644"; owners => { "root" }; groups => { "root" }; rxdirs => "false"; }\n')
        f.write('bundle edit_line lines(s) { insert_lines: "$(s)"; }\n')
        f.write('bundle agent bench {\nfiles:\n')
        for i in range(args.files):
            f.write(f'  "{root}/files/f{i:04d}.conf" create => "true", edit_defaults => empty, '
                    f'edit_line => lines("# managed file {i}$(const.n)key = value-{i}"), perms => m644;\n')
        f.write('}\n')
    cmd = ["cf-agent", "-K", "-f", policy]
    first = []
    for _ in range(args.runs):
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(os.path.join(root, "files"))
        first.append(run(cmd))
    noop = [run(cmd) for _ in range(args.runs)]
    made = len([n for n in os.listdir(os.path.join(root, "files")) if n.endswith(".conf")])
    if made != args.files:
        sys.exit(f"CFEngine made {made} of {args.files} files: its policy failed")
    print(f"CFEngine cf-agent {args.files} files")
    summarize("  first run", first, float("nan"))
    summarize("  no-op re-run", noop, peak_rss_mib(cmd, None))


def bench_puppet(args, work):
    puppet = shutil.which("puppet") or ("/usr/bin/puppet" if os.path.exists("/usr/bin/puppet") else None)
    if not puppet:
        print("puppet not installed: skipped")
        return
    root = os.path.join(work, "pp-root")
    manifest = os.path.join(work, "bench.pp")
    with open(manifest, "w") as f:
        f.write(f'file {{ "{root}/files": ensure => directory, mode => "0755" }}\n')
        for i in range(args.files):
            f.write(f'file {{ "{root}/files/f{i:04d}.conf": ensure => file, '
                    f'content => "# managed file {i}\\nkey = value-{i}\\n", owner => "root", group => "root", mode => "0644" }}\n')
    cmd = [puppet, "apply", "--color=false", manifest]
    first = []
    runs = max(1, min(args.runs, 5))
    for _ in range(runs):
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        first.append(run(cmd))
    noop = [run(cmd) for _ in range(runs)]
    made = len([n for n in os.listdir(os.path.join(root, "files")) if n.endswith(".conf")])
    if made != args.files:
        sys.exit(f"Puppet made {made} of {args.files} files: its manifest failed")
    print(f"Puppet {args.files} files")
    summarize("  first run", first, float("nan"))
    summarize("  no-op re-run", noop, peak_rss_mib(cmd, None))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--bin", default=os.path.join(ROOT, "target/release/tend-agent"))
    p.add_argument("--peers", action="store_true")
    p.add_argument("--workdir", default="/var/tmp",
                   help="where the scratch tree goes (default /var/tmp; see the note on /tmp in the README)")
    args = p.parse_args()
    if not os.path.exists(args.bin):
        sys.exit(f"{args.bin} not found: run `cargo build --release -p tend-agent` first")
    print(f"machine: {os.cpu_count()} cores, {os.uname().release}")
    with tempfile.TemporaryDirectory(prefix="tend-bench-", dir=args.workdir) as work:
        baseline(args, work)
        bench_tend(args, work)
        if args.peers:
            bench_cfengine(args, work)
            bench_puppet(args, work)


if __name__ == "__main__":
    main()
