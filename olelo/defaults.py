"""The default of each knob that both make and a script take, in one place.

The Makefile keeps its own `VAR ?= value` lines (GNU Make 3.81 reads them without
Python, and `make help` shows them); the scripts take their argparse defaults, and so
their --help, from this table. A test (tests/test_defaults.py) parses the Makefile's
lines, runs `make help` and the scripts' --help, and fails when any of them disagrees
with DEFAULTS, or when a script's --help does not change with the table (its default
written in the script): change a default here and in the Makefile together.
"""

# make variable -> its default, as make writes it
DEFAULTS = {
    "LR_SCHEDULE": "none",
    "PATIENCE": 0,
    "VAL_GEN": 64,
    "VAL_GEN_CAP": "longest",
    "KEEP": "all",
    "LOSS": "auto",
    "QMATMUL": "auto",
    "COMPUTE_DTYPE": "auto",
    "RUNS_DIR": "runs",
    "ADAPTERS_DIR": "adapters",
    "NPROC": 1,
    "DIST_BACKEND": "ring",
    "VAL_LOOP_STOP": 0,
    # data
    "DIRECTION": "haw-en",
    "SPLIT_SEED": 0,
    "BLOCK_SIZE": 50,
    "MIX_K": 3,
    "SHORT_N": 64,
    "RAG_K": 2,
    "TINY_SEED": 0,
    # evaluation
    "SEED": 0,
    "EVAL_BATCH": 32,
    "BOOTSTRAP": 1000,
    "LOOP_STOP": 0,
    "SHOTS": 4,
    "EVAL_NAME": "eval",
    # memory, fuse, GGUF, benchmarks
    "PROFILE_BATCHES": "1,2,4",
    "PROFILE_MAX_SEQS": "128,512",
    "PROFILE_ITERS": 6,
    "FUSE_CKPT": "best",
    "GGUF_TYPE": "f16",
    "LLAMA_RUNTIME": ".llama-runtime",
    "BENCH_N": 16,
    "BENCH_LABEL": "after",
}

# Switches: make passes the flag for 1 and nothing for 0, and the scripts' flag takes no
# value (off unless given), so a switch's default can only be 0: on by default, it would
# need a --no-... option that make passes for 0 (tests/test_defaults.py checks both).
SWITCHES = ("VAL_LOOP_STOP", "LOOP_STOP")

# make variable -> (script, its option): where each default is taken on the Python side
# (a knob several scripts take is listed once per script; a bare name is in scripts/).
OPTIONS = {
    "LR_SCHEDULE": [("train.py", "--lr-schedule")],
    "PATIENCE": [("train.py", "--patience")],
    "VAL_GEN": [("train.py", "--val-gen")],
    "VAL_GEN_CAP": [("train.py", "--val-gen-cap")],
    "KEEP": [("train.py", "--keep")],
    "LOSS": [("train.py", "--loss"), ("auto_batch.py", "--loss"), ("mem_profile.py", "--loss"),
             ("memory_guidelines.py", "--loss")],
    "QMATMUL": [("train.py", "--quantized-matmul"), ("auto_batch.py", "--quantized-matmul"),
                ("mem_profile.py", "--quantized-matmul"), ("memory_guidelines.py", "--quantized-matmul")],
    "COMPUTE_DTYPE": [("train.py", "--compute-dtype")],
    "RUNS_DIR": [("train.py", "--runs-dir")],
    "ADAPTERS_DIR": [("train.py", "--adapters-dir")],
    "NPROC": [("launch.py", "--nproc")],
    "DIST_BACKEND": [("launch.py", "--backend")],
    "VAL_LOOP_STOP": [("train.py", "--val-gen-loop-stop")],
    "DIRECTION": [("convert_fornander.py", "--direction")],
    "SPLIT_SEED": [("split.py", "--seed"), ("mix_data.py", "--seed")],
    "BLOCK_SIZE": [("split.py", "--block-size")],
    "MIX_K": [("mix_data.py", "--repeat")],
    "SHORT_N": [("short_data.py", "--train")],
    "RAG_K": [("retrieval_data.py", "--k")],
    "TINY_SEED": [("build_tiny_model.py", "--seed")],
    "SEED": [("translate.py", "--shots-seed")],
    "EVAL_BATCH": [("translate.py", "--batch-size"), ("translate_text.py", "--batch-size"),
                   ("bench/eval_end_to_end.py", "--batch-size"), ("bench/eval_speed.py", "--batch-size")],
    "BOOTSTRAP": [("eval_report.py", "--bootstrap"), ("baselines.py", "--bootstrap"), ("compare.py", "--bootstrap"),
                  ("score.py", "--bootstrap"), ("bench/eval_end_to_end.py", "--bootstrap"),
                  ("bench/score_speed.py", "--bootstrap")],
    "LOOP_STOP": [("translate.py", "--loop-stop"), ("translate_text.py", "--loop-stop"),
                  ("bench/score_speed.py", "--loop-stop")],
    "SHOTS": [("translate.py", "--shots")],
    "EVAL_NAME": [("compare.py", "--eval")],
    "PROFILE_BATCHES": [("mem_profile.py", "--batch-sizes")],
    "PROFILE_MAX_SEQS": [("mem_profile.py", "--max-seqs")],
    "PROFILE_ITERS": [("mem_profile.py", "--iters")],
    "FUSE_CKPT": [("fuse.py", "--ckpt"), ("export_gguf.py", "--ckpt"), ("translate_text.py", "--ckpt")],
    "GGUF_TYPE": [("export_gguf.py", "--type")],
    "LLAMA_RUNTIME": [("install_llama_runtime.py", "--dir")],
    "BENCH_N": [("bench/eval_end_to_end.py", "--n"), ("bench/eval_speed.py", "--n")],
    "BENCH_LABEL": [("bench/score_speed.py", "--label")],
}
