"""Bash completion for arborctl (completion/arborctl): sourced into bash and
called as bash calls it (COMP_WORDS, COMP_CWORD); commands and every flag
each command's --help defines, values of flags, and tree ids and node paths
from the real daemons."""

import json
import os
import subprocess

from harness import BIN, SRC, check, main, SLOW
from test_man import commands, help_of, options

SCRIPT = os.path.join(SRC, "completion", "arborctl")
ARBORCTL = os.path.join(BIN, "arborctl")


def complete(*words, env=None):
    """COMPREPLY for the command line words (the last one is completed)."""
    # As bash sets them: the line up to the cursor, and COMP_WORDS split also
    # at COMP_WORDBREAKS (":" cuts "ipc:///x" in three), which the
    # completion must not trust.
    prog = 'source "$1"; shift; COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; ' \
           'COMP_WORDS=(${COMP_LINE//:/ : }); ' \
           '[[ $COMP_LINE == *" " ]] && COMP_WORDS+=(""); ' \
           'COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); ' \
           '_arborctl; printf "%s\\n" "${COMPREPLY[@]}"'
    env = dict(env or os.environ, ARBOR_COMPLETION_TIMEOUT="%g" % (2 * SLOW))  # loaded CI
    r = subprocess.run(["bash", "-c", prog, "bash", SCRIPT, ARBORCTL] + list(words),
                       capture_output=True, text=True, timeout=20 * SLOW, env=env)
    check(r.returncode == 0, "completion of %r: exit %d: %s" % (words, r.returncode, r.stderr))
    return [w for w in r.stdout.splitlines() if w]


def test_commands_and_flags(run):
    cmds = commands()
    got = complete("")
    check(sorted(got) == sorted(cmds), "commands: %r, --help lists %r" % (got, cmds))
    check(complete("st") == ["status", "stats"] or sorted(complete("st")) == ["stats", "status"],
          "st -> %r" % complete("st"))
    glob = options(help_of("arborctl"))
    got = complete("--")
    check(set(glob) <= set(got), "global flags missing: %s" % sorted(set(glob) - set(got)))
    for cmd in cmds:
        want = set(options(help_of("arborctl", cmd)))
        got = set(complete(cmd, "--"))
        check(want <= got, "arborctl %s: flags missing from completion: %s" %
              (cmd, sorted(want - got)))
    got = set(complete("--broker", "ipc:///nowhere", "watch", "--"))  # after global options
    check(set(options(help_of("arborctl", "watch"))) <= got, "after --broker EP: %r" % got)
    check(complete("keygen", "k", "--role", "") == ["client", "supervisor", "broker"],
          "--role values: %r" % complete("keygen", "k", "--role", ""))
    check(complete("help", "can") == ["cancel"], "help COMMAND")
    # a flag's value is not taken for the command
    check(complete("--broker", "") == ["ipc:///run/arbor/broker.sock", "tcp://"],
          "--broker values: %r" % complete("--broker", ""))
    # the word after the last ':' is what bash replaces
    check(complete("--broker", "ipc:///run/ar") == ["///run/arbor/broker.sock"],
          "--broker ipc:... : %r" % complete("--broker", "ipc:///run/ar"))


def test_trees_and_paths(run):
    run.broker()
    run.supervisor("sup1")
    spec = {"name": "root", "children": [{"name": "a", "run": "sleep"},
                                         {"name": "b", "children": [{"name": "c", "run": "sleep"}]}]}
    tree = run.ctl("spawn", "-", input=json.dumps(spec)).stdout.strip()
    check(tree, "spawn failed")
    env = dict(run.env)
    for cmd in ("status", "cancel", "watch", "trace"):
        got = complete(cmd, "", env=env)
        check(tree in got, "%s: tree id %s not offered: %r" % (cmd, tree, got))
    got = complete("--broker", run.broker_ep, "status", tree[:4], env=dict(env, ARBOR_BROKER=""))
    check(got == [tree], "--broker EP status PREFIX: %r" % got)
    got = complete("cancel", tree + "/", env=env)
    want = [tree + "/" + p for p in ("root", "root/a", "root/b", "root/b/c")]
    check(sorted(got) == want, "node paths: %r, want %r" % (got, want))
    got = complete("status", tree + "/root/b", env=env)
    check(sorted(got) == want[2:], "paths under root/b: %r" % got)
    check(complete("spawn", "--supervisor", "", env=env) == ["sup1"], "supervisor names: %r" %
          complete("spawn", "--supervisor", "", env=env))
    # spawn --under TREE/PATH: a running node, not a file
    got = complete("spawn", "--under", "", env=env)
    check(tree in got, "spawn --under: tree id %s not offered: %r" % (tree, got))
    got = complete("spawn", "--under", tree + "/root/b", env=env)
    check(sorted(got) == want[2:], "spawn --under paths under root/b: %r" % got)
    run.ctl("cancel", "--wait", tree)


def test_no_broker_is_quick(run):
    """Tab with no broker: nothing offered, no error."""
    env = dict(run.env, ARBOR_BROKER="ipc://%s/none.sock" % run.dir)
    check(complete("status", "", env=env) == [], "trees offered without a broker")


if __name__ == "__main__":
    main([test_commands_and_flags, test_trees_and_paths, test_no_broker_is_quick])
