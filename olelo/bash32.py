"""What breaks or hides failures under GNU Make 3.81 and bash 3.2 (a stock Mac), found in a
Makefile or a shell script; scripts/check_bash32.py is the front door and its docstring
lists the kinds of findings.

    bash32.check([Path("Makefile"), Path("x.sh")])   # ["Makefile:12: ...; instead: ..."]
    bash32.default_files(repo)                        # the repo's Makefile, *.sh, bash-shebang files
"""

from __future__ import annotations

import re
from pathlib import Path

# (pattern, what it is, what to write instead). Patterns run on shell text with
# quoted strings blanked out, so they do not fire on echo messages.
BASH4 = [
    (r"\b(declare|typeset|local)\s+-[a-zA-Z]*A", "associative array (bash 4)", "two plain arrays or a case statement"),
    (r"\b(declare|typeset|local)\s+-[a-zA-Z]*n\b", "nameref (bash 4.3)", "eval or pass the value"),
    (r"\b(declare|typeset|local)\s+-[a-zA-Z]*[lu]\b", "case-converting attribute (bash 4)", "tr '[:upper:]' '[:lower:]'"),
    (r"\$\{[#!]?\w+(\[[^]]*\])?(,,?|\^\^?)", "case conversion ${x,,} / ${x^^} (bash 4)",
     "$(printf %s \"$x\" | tr '[:upper:]' '[:lower:]')"),
    (r"\$\{\w+(\[[^]]*\])?@[QEPAaUuLKk]\}", "parameter transformation ${x@Q} (bash 4.4)", "printf %q"),
    (r"\b(mapfile|readarray)\b", "mapfile/readarray (bash 4)", "a while read loop"),
    (r"\|&", "|& (bash 4)", "2>&1 |"),
    (r";;&|(?<!;);&", "case fall-through ;& / ;;& (bash 4)", "repeat the commands or use an if"),
    (r"\bcoproc\b", "coproc (bash 4)", "a named pipe (mkfifo)"),
    (r"\bshopt\s+-s\s+(globstar|lastpipe|autocd|checkjobs|dirspell|direxpand|globasciiranges|inherit_errexit"
     r"|localvar_inherit|localvar_unset|assoc_expand_once|patsub_replacement)\b", "shopt option newer than bash 3.2",
     "find or an explicit loop"),
    (r"(^|[\s=/])\*\*/", "globstar ** (bash 4)", "find"),
    (r"\$\{\w+\[-\d+\]\}|\b\w+\[-\d+\]=", "negative array index (bash 4.3)", "${a[${#a[@]}-1]}"),
    (r"&>>", "&>> (bash 4)", ">>file 2>&1"),
    (r"\{-?\d+\.\.-?\d+\.\.-?\d+\}", "brace range with a step (bash 4)", "seq"),
    (r"\{0\d+\.\.\d+\}", "zero-padded brace range (bash 4)", "printf %02d in a loop"),
    (r"\bwait\s+-[a-zA-Z]*n\b", "wait -n (bash 4.3)", "wait PID"),
    (r"\[\[\s+-v\s|\btest\s+-v\s|\[\s+-v\s", "-v VAR test (bash 4.2)", "[ -n \"${VAR+set}\" ]"),
    (r"(^|\s|exec\s)\{[A-Za-z_]\w*\}[<>]", "{fd}> automatic file descriptor (bash 4.1)", "a fixed descriptor number"),
    (r"\$\{?(BASHPID|EPOCHSECONDS|EPOCHREALTIME|SRANDOM|BASH_ARGV0)\b", "variable newer than bash 3.2", "$$ / date"),
    (r"\bread\s+(-[a-zA-Z]*\s+)*-[a-zA-Z]*[iN]\b", "read -i / -N (bash 4)", "read -n"),
]

MAKE4 = [
    (r"^[^\t#=]*[^\s#]\s*&:", "grouped targets &: (Make 4.3)", "a pattern rule whose targets share the stem"),
    (r"^\.ONESHELL\s*:", ".ONESHELL (Make 3.82)", "one recipe line joined with ; \\ and set -e"),
    (r"\$[({]file\s", "$(file ...) (Make 4.0)", "a recipe that writes the file"),
    (r"^[^\t#]*\w\s*!=", "!= assignment (Make 4.0)", "$(shell ...)"),
    (r"^[^\t#]*\w\s*::=", "::= assignment (Make 4.0)", ":="),
    (r"^\s*(override\s+)?undefine\b", "undefine (Make 3.82)", "VAR :="),
    (r"^[^\t#]*:\s*private\s|^\s*private\s+\w", "private (Make 3.82)", "a plainly named variable"),
    (r"^\s*define\s+\S+\s*(:?=|\+=|\?=)\s*$", "define with an operator (Make 3.82)", "define NAME"),
    (r"^\s*\.RECIPEPREFIX\b", ".RECIPEPREFIX (Make 3.82)", "tabs"),
    (r"^\s*-?load\s", "load (Make 4.0)", "a script"),
    (r"\$[({](guile|let|intcmp)\s", "function newer than Make 3.81", "$(shell ...) or plain variables"),
    (r"^\s*\.(EXTRA_PREREQS|NOTINTERMEDIATE|NOTPARALLEL:\s*\S)", "special target newer than Make 3.81",
     "plain prerequisites"),
]

OPT_OUT = "# bash32: ok"
SHELL_WORDS_AFTER_SEMI = {"then", "do", "else", "elif", "fi", "done", "esac", "}", ")", ";", ""}


def blank_quotes(text: str) -> str:
    """The text with the literal insides of '...' and "..." replaced by spaces, so
    that messages do not match; ${...} and $(...) inside "..." are expansions and
    stay (shell rules, simplified)."""
    out, i, quote = [], 0, None
    while i < len(text):
        c = text[i]
        if quote is None:
            if c == "\\" and i + 1 < len(text):
                out.append(c + text[i + 1])
                i += 2
                continue
            if c in "'\"":
                quote = c
            out.append(c)
        elif c == quote:
            quote = None
            out.append(c)
        elif quote == '"' and c == "$" and text[i + 1:i + 2] in ("{", "("):
            end = _matching(text, i + 1)
            out.append(text[i:end + 1])
            i = end + 1
            continue
        elif quote == '"' and c == "\\" and i + 1 < len(text):
            out.append("  ")
            i += 2
            continue
        else:
            out.append(" ")
        i += 1
    return "".join(out)


def _matching(text: str, open_at: int) -> int:
    """Index of the bracket closing the one at open_at (or the last index)."""
    opener = text[open_at]
    closer = ")" if opener == "(" else "}"
    depth = 0
    for j in range(open_at, len(text)):
        if text[j] == opener:
            depth += 1
        elif text[j] == closer:
            depth -= 1
            if depth == 0:
                return j
    return len(text) - 1


def make_to_shell(line: str) -> str:
    """A Makefile line as the shell will see it, near enough: `$$` -> `$`, make
    references $(X) / ${X} -> a placeholder word."""
    line = line.replace("$$", "\0")
    out, i = [], 0
    while i < len(line):
        if line[i] == "$" and i + 1 < len(line) and line[i + 1] in "({":
            out.append("MAKEVAR")
            i = _matching(line, i + 1) + 1
        elif line[i] == "$" and i + 1 < len(line):
            out.append("MAKEVAR")
            i += 2
        else:
            out.append(line[i])
            i += 1
    return "".join(out).replace("\0", "$")


def pipes_and_chains(shell: str) -> tuple[bool, bool]:
    """(has a pipe, chains commands with `;` so that a failure goes unnoticed).
    `;` before then/do/else/fi/... is syntax, and `;` inside { ... } is taken to be
    an error handler (`|| { echo ...; exit 2; }`)."""
    text = blank_quotes(shell)
    pipe = bool(re.search(r"(?<![|>])\|(?![|&])", text))
    chain, braces = False, 0
    for m in re.finditer(r"(?:(?<=\s)|^)[{}](?=\s|$|;)|;;?", text):
        token = m.group()
        if token == "{":
            braces += 1
        elif token == "}":
            braces = max(0, braces - 1)
        elif token == ";" and braces == 0:
            after = text[m.end():].split()
            nxt = after[0].rstrip(";") if after else ""
            if nxt not in SHELL_WORDS_AFTER_SEMI and not nxt.startswith(("fi;", "done;")):
                chain = True
    return pipe, chain


def logical_lines(path: Path):
    """(first line number, text) with backslash continuations joined."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        start, text = i + 1, lines[i]
        while text.endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text[:-1] + " " + lines[i].lstrip("\t")
        yield start, text
        i += 1


def is_comment(text: str) -> bool:
    return text.lstrip().startswith("#")


# Format strings are literal text, so this one looks inside quotes too.
PRINTF_TIME = (r"\bprintf\b.*%\([^)]*\)T", "printf %(...)T (bash 4.2)", "date")


def check_shell_text(shell: str) -> list[tuple[str, str]]:
    blanked = blank_quotes(shell)
    found = [(what, instead) for pattern, what, instead in BASH4 if re.search(pattern, blanked)]
    if re.search(PRINTF_TIME[0], shell):
        found.append(PRINTF_TIME[1:])
    return found


def check_makefile(path: Path) -> list[str]:
    findings = []
    in_define = False
    for lineno, text in logical_lines(path):
        where = f"{path}:{lineno}"
        if OPT_OUT in text or (is_comment(text) and not text.startswith("\t")):
            continue
        stripped = text.strip()
        if re.match(r"define\s", stripped):
            in_define = True
        elif stripped == "endef":
            in_define = False
        for pattern, what, instead in MAKE4:
            if re.search(pattern, text):
                findings.append(f"{where}: {what}; instead: {instead}")
        shell = make_to_shell(text.lstrip("\t").lstrip("@-+") if text.startswith("\t") else text)
        for what, instead in check_shell_text(shell):
            findings.append(f"{where}: {what}; instead: {instead}")
        if text.startswith("\t") or in_define:
            pipe, chain = pipes_and_chains(shell)
            head = shell.lstrip()
            if pipe and not re.match(r"set\s+(-\w+\s+)*-o\s+pipefail\b|set\s+-\w*o\s+pipefail\b", head):
                findings.append(f"{where}: recipe line pipes but Make 3.81 gives no pipefail; "
                                "instead: start it with `set -e -o pipefail;`")
            elif chain and not re.match(r"set\s+-\w*e", head):
                findings.append(f"{where}: recipe line chains commands with ; but Make 3.81 gives no -e; "
                                "instead: start it with `set -e;` (or join them with &&)")
    return findings


def check_shell_script(path: Path) -> list[str]:
    findings = []
    for lineno, text in logical_lines(path):
        if OPT_OUT in text or is_comment(text):
            continue
        for what, instead in check_shell_text(text):
            findings.append(f"{path}:{lineno}: {what}; instead: {instead}")
    return findings


def default_files(root: Path) -> list[Path]:
    files = [root / "Makefile"]
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if not path.is_file() or parts[0] in (".venv", ".git", "data", "models", "adapters", "fused", "runs"):
            continue
        if path.suffix == ".sh" or (path.suffix == "" and _bash_shebang(path)):
            files.append(path)
    return files


def _bash_shebang(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            first = f.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and (b"bash" in first or first.rstrip().endswith(b"/sh"))


def check(paths) -> list[str]:
    findings = []
    for path in paths:
        path = Path(path)
        if path.name == "Makefile" or path.suffix == ".mk":
            findings += check_makefile(path)
        else:
            findings += check_shell_script(path)
    return findings
