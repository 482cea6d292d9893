# Served NOTES.md: 2026-11-26 (GPU) "Is MLX (CUDA) LoRA training as fast as transformers + …"; 2026-11-27 (2
#   GPUs) "Issue 14, fourth pass".
# Sourced on the GPU machine after `source .gpu-b/install.sh`: a stand-in for the
# .venv the Makefile wants. MLX and mlx-lm come from /tmp/site (the carried wheels),
# everything else from the machine's python3. Afterwards pass VENV=$V to make.
# The lab's package olelo/ is found through PYTHONPATH (the repository root): the
# machine is offline and its python3 need not have the setuptools an editable
# install (make setup's pip install -e .) builds with.
# A wrapper, not a symlink: python3 there is itself a venv's, found by its own path.
V=/tmp/v
mkdir -p $V/bin
PY3=$(command -v python3)
# Written beside and renamed into place: streams started together source this while others
# already run $V/bin/python (a rewrite in place made one fail with "Permission denied"), and
# a rename replaces an old symlink instead of writing through it.
put() { printf '%s\n' "$2" > "$1.tmp.$$" && chmod +x "$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"; }
put $V/bin/python "#!/bin/sh
exec $PY3 \"\$@\""
put $V/bin/mlx.launch "#!/bin/sh
exec $PY3 -c \"import sys; sys.argv[0] = 'mlx.launch'; from mlx._distributed_utils.launch import main; main()\" \"\$@\""
touch $V/.installed
# run CMD ...: CMD's output goes to $LOG (set by the campaign script), between its command
# line and its exit status and seconds.
run() { echo "= $*" >>"$LOG"; local t0=$SECONDS; "$@" >>"$LOG" 2>&1; echo "= rc $? in $((SECONDS - t0)) s" >>"$LOG"; }
# scripts/perplexity.py runs the mlx_lm.lora console script found beside sys.executable;
# `pip install --target /tmp/site` put the console scripts in /tmp/site/bin instead.
for f in /tmp/site/bin/mlx_lm*; do
  [ -e "$f" ] && [ ! -e "$(dirname "$PY3")/$(basename "$f")" ] && ln -s "$f" "$(dirname "$PY3")/"
done
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PYTHONPATH=$REPO_ROOT:/tmp/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
