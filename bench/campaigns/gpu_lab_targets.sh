#!/usr/bin/env bash
# Served NOTES.md: 2026-11-26 (GPU) "Is MLX (CUDA) LoRA training as fast as transformers + …".
# The lab's own Make targets on the GPU machine (MLX CUDA), as a user would run them:
# data -> train-large -> eval -> fuse, each under a time limit, each logged; a JSON
# summary of what worked goes to $OUT/lab_targets.json.
#
#   source .gpu-b/install.sh && bash bench/campaigns/gpu_lab_targets.sh MODEL_DIR DATA_SRC
#
# MLX, mlx-lm (and their CUDA libraries) come from /tmp/site (the carried wheels,
# installed by .gpu-b/install.sh); everything else from the machine's python3. The
# venv the Makefile wants is faked: VENV/bin/python runs that python3 and
# VENV/.installed is touched, so `make` installs nothing. Runs and adapters go to
# LAB_DIR (runs/gpu)/runs and /adapters. Environment knobs: ITERS (20), LIMIT (8),
# MAX_TOKENS (32), T_TRAIN / T_EVAL / T_FUSE (seconds allowed per target).
set -u
MODEL_DIR=${1:?model folder}
DATA_SRC=${2:?folder with fornander/ and koa/ CSVs}
OUTD=${OUT:-/tmp/lab-out}
mkdir -p "$OUTD"
source "$(dirname "$0")/gpu_venv.sh"  # the stand-in .venv: VENV=$V
LAB=${LAB_DIR:-runs/gpu}
COMMON=(VENV=$V RUNS_DIR=$LAB/runs ADAPTERS_DIR=$LAB/adapters)
STEPS=()

step() {  # step NAME SECONDS make-args...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS rc
  echo "=== $name: make $*"
  timeout "$limit" make --no-print-directory "$@" >"$OUTD/lab_$name.log" 2>&1
  rc=$?
  STEPS+=("$name|$rc|$((SECONDS - t0))|make $*")
  tail -n 4 "$OUTD/lab_$name.log" | cut -c1-300
  echo "=== $name: rc $rc in $((SECONDS - t0)) s"
}

step data 120 data "${COMMON[@]}" DATA_SRC="$DATA_SRC"
step train "${T_TRAIN:-400}" train-large "${COMMON[@]}" MODEL="$MODEL_DIR" ITERS="${ITERS:-20}" STEPS_PER_EVAL=10 SAVE_EVERY=10 VAL_BATCHES=5
step eval "${T_EVAL:-300}" eval "${COMMON[@]}" RUN=latest LIMIT="${LIMIT:-8}" MAX_TOKENS="${MAX_TOKENS:-32}" BOOTSTRAP=200
step fuse "${T_FUSE:-200}" fuse "${COMMON[@]}" RUN=latest FUSE_CKPT=best FUSED="$LAB/fused/best"

printf '%s\n' "${STEPS[@]}" > "$OUTD/lab_steps.txt"
python3 - "$OUTD" "$LAB" <<'PY'
import glob, json, os, sys
out = sys.argv[1]
steps = []
for line in open(os.path.join(out, "lab_steps.txt")):
    name, rc, s, cmd = line.rstrip("\n").split("|", 3)
    log = open(os.path.join(out, f"lab_{name}.log"), errors="replace").read()
    steps.append({"target": name, "command": cmd, "rc": int(rc), "seconds": int(s),
                  "status": "ok" if rc == "0" else ("timed out" if rc == "124" else "failed"),
                  "log_tail": log[-1500:]})
res = {"steps": steps}
run = os.path.realpath(os.path.join(sys.argv[2], "runs", "latest"))
for f in ("manifest.json",):
    p = os.path.join(run, f)
    if os.path.isfile(p):
        m = json.load(open(p))
        res["run"] = {k: m.get(k) for k in ("stamp", "status", "model", "iters", "environment", "best")}
p = os.path.join(run, "metrics.jsonl")
if os.path.isfile(p):
    res["metrics"] = [json.loads(l) for l in open(p) if l.strip()]
for d in sorted(glob.glob(os.path.join(run, "eval*"))):
    e = {"dir": os.path.relpath(d)}
    s = os.path.join(d, "summary.json")
    if os.path.isfile(s):
        e["summary"] = json.load(open(s))
    for ck in sorted(glob.glob(os.path.join(d, "*", "ppl.json"))):
        e.setdefault("ppl", {})[os.path.basename(os.path.dirname(ck))] = json.load(open(ck))
    for h in sorted(glob.glob(os.path.join(d, "*", "hyps.jsonl"))):
        rows = [json.loads(l) for l in open(h) if l.strip()]
        e.setdefault("hyps", {})[os.path.basename(os.path.dirname(h))] = {
            "n": len(rows), "seconds": round(sum(r.get("time", 0) for r in rows), 2),
            "tokens": sum(r.get("tokens", 0) for r in rows)}
    res.setdefault("eval", []).append(e)
for f in sorted({os.path.realpath(f) for f in glob.glob(os.path.join(sys.argv[2], "fused", "*", "olelo_fuse.json"))}):
    res.setdefault("fuse", []).append({"path": f, **json.load(open(f))})
json.dump(res, open(os.path.join(out, "lab_targets.json"), "w"), indent=2, default=str)
print(json.dumps([{k: s[k] for k in ("target", "status", "seconds")} for s in steps]))
PY
