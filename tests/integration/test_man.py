"""The man pages (docs/man/*.scd, rendered by scdoc into BUILD/man) cover
every option each program prints in --help, and every arborctl command's
options in that command's own entry: the pages cannot drift from the
programs unnoticed."""

import os
import re
import subprocess

from harness import BIN, SRC, check, main

MAN_DIR = os.path.join(os.path.dirname(os.path.abspath(BIN)), "man")
LONG = re.compile(r"(?<![\w-])--[a-z][a-z-]*[a-z](?![\w*-])")


def page(name):
    """The rendered page's roff, its font escapes removed."""
    path = os.path.join(MAN_DIR, name)
    check(os.path.exists(path), "no man page %s (is scdoc installed? scripts/bootstrap.sh)" % path)
    with open(path) as f:
        text = f.read()
    return re.sub(r"\\f[BIRP]|\\&|\\\(..", "", text).replace("\\-", "-")


def help_of(*argv):
    r = subprocess.run([os.path.join(BIN, argv[0])] + list(argv[1:]) + ["--help"],
                       capture_output=True, text=True, timeout=10)
    check(r.returncode == 0, "%s --help: exit %d" % (" ".join(argv), r.returncode))
    return r.stdout


def options(text):
    """The long options a --help text defines: those of its usage lines, and
    those that begin an indented line (before the two spaces that start the
    description), not the ones its descriptions mention."""
    found = set()
    for line in text.splitlines():
        if line.startswith("usage:") or line.startswith("       arborctl"):
            found.update(LONG.findall(line))
        elif line.startswith(" ") and line.strip().startswith("-"):
            found.update(LONG.findall(line.strip().split("  ")[0]))
    return sorted(found)


def missing(opts, text):
    return [o for o in opts if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), text)]


def test_daemons(run):
    for prog, name in (("arbor-broker", "arbor-broker.8"), ("arbor-supervisor", "arbor-supervisor.8"),
                       ("arbor-forkserver", "arbor-supervisor.8")):
        opts = options(help_of(prog))
        check("--version" in opts, "%s --help does not list --version" % prog)
        gone = missing(opts, page(name))
        check(not gone, "%s: options of --help missing from %s: %s" % (prog, name, gone))


def exit_codes(help_text):
    """The exit codes a --help lists after "Exit codes:" ("0 stopped; 1 ...")."""
    text = " ".join(help_text.split("Exit codes:", 1)[1].split())
    return re.findall(r"(?:^|; )(\d+) ", text)


def test_daemon_exit_codes(run):
    """Every exit code a daemon's --help lists has its entry in its page's
    EXIT STATUS."""
    for prog, name in (("arbor-broker", "arbor-broker.8"),
                       ("arbor-supervisor", "arbor-supervisor.8")):
        codes = exit_codes(help_of(prog))
        check(codes[:3] == ["0", "1", "2"], "%s --help exit codes: %r" % (prog, codes))
        section = page(name).split(".SH EXIT STATUS", 1)[1].split("\n.SH ", 1)[0]
        gone = [c for c in codes if not re.search(r"(?m)^%s$" % c, section)]
        check(not gone, "%s: exit codes of --help missing from %s EXIT STATUS: %s" %
              (prog, name, gone))


def commands():
    out = help_of("arborctl")
    block = out.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in block.splitlines() if line.strip()]


def entries(text):
    """{command: its entry} from the COMMANDS section of arborctl.1."""
    section = text.split(".SH COMMANDS", 1)[1].split("\n.SH ", 1)[0]
    found, cur = {}, None
    for line in section.splitlines():
        m = re.match(r"([a-z]+)( |$)", line)
        if m and not line.startswith("."):
            cur = m.group(1)
        if cur:
            found[cur] = found.get(cur, "") + line + "\n"
    return found


def test_arborctl(run):
    text = page("arborctl.1")
    gone = missing(options(help_of("arborctl")), text)
    check(not gone, "arborctl --help options missing from arborctl.1: %s" % gone)
    ents = entries(text)
    for cmd in commands():
        check(cmd in ents, "command %s has no entry in arborctl.1 COMMANDS" % cmd)
        opts = [o for o in options(help_of("arborctl", cmd)) if o != "--broker"]
        gone = missing(opts, ents[cmd])
        check(not gone, "arborctl %s --help options missing from its arborctl.1 entry: %s" %
              (cmd, gone))


def test_pages_render(run):
    """Every page is there, gzipped for installation, and names itself."""
    for name in ("arborctl.1", "arbor-broker.8", "arbor-supervisor.8", "arbor-tree-spec.5",
                 "arbor-worker.3"):
        text = page(name)
        check(os.path.exists(os.path.join(MAN_DIR, name + ".gz")), "no %s.gz" % name)
        title = name.rsplit(".", 1)
        check('.TH "%s" "%s"' % (title[0], title[1]) in text, "%s: no .TH header" % name)


def synopsis_lines(text, cmd):
    """The lines of a ``` block that show arborctl CMD."""
    return "\n".join(line for line in text.splitlines()
                     if re.match(r"arborctl (\[--broker EP\] )?%s\b" % cmd, line))


def test_cli_md_and_readme(run):
    """docs/CLI.md (the command's section and its SYNOPSIS line) and the
    README's arborctl synopsis show every option of each command's --help."""
    with open(os.path.join(SRC, "docs", "CLI.md")) as f:
        cli = f.read()
    with open(os.path.join(SRC, "README.md")) as f:
        readme = f.read()
    cli_syn = cli.split("## SYNOPSIS", 1)[1].split("```", 2)[1]
    readme_syn = readme.split("## arborctl\n", 1)[1].split("```", 2)[1]
    sections = {}
    for part in re.split(r"^### ", cli.split("## COMMANDS", 1)[1].split("\n## ", 1)[0], flags=re.M)[1:]:
        for name in part.split("\n", 1)[0].split(", "):
            sections[name.strip()] = part
    for cmd in commands():
        opts = [o for o in options(help_of("arborctl", cmd)) if o not in ("--broker", "--help")]
        check(cmd in sections, "command %s has no section in docs/CLI.md" % cmd)
        for where, text in (("its docs/CLI.md section", sections[cmd]),
                            ("docs/CLI.md SYNOPSIS", synopsis_lines(cli_syn, cmd)),
                            ("the README's arborctl synopsis", synopsis_lines(readme_syn, cmd))):
            gone = missing(opts, text)
            check(not gone, "arborctl %s --help options missing from %s: %s" % (cmd, where, gone))


def test_worker_page_covers_the_header(run):
    """arbor-worker.3 names every function and event of worker/arbor_worker.h."""
    with open(os.path.join(SRC, "worker", "arbor_worker.h")) as f:
        header = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)  # declarations, not comments
    names = set(re.findall(r"\b(arbor_\w+)\s*\(", header)) | set(re.findall(r"\b(ARBOR_EV_\w+)\b", header))
    check(len(names) > 10, "arbor_worker.h: only %r found" % sorted(names))
    text = page("arbor-worker.3")
    gone = sorted(n for n in names if not re.search(r"(?<!\w)%s(?!\w)" % n, text))
    check(not gone, "arbor_worker.h declares what arbor-worker.3 does not name: %s" % gone)


if __name__ == "__main__":
    main([test_daemons, test_daemon_exit_codes, test_arborctl, test_pages_render,
          test_cli_md_and_readme, test_worker_page_covers_the_header])
