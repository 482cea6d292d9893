"""The default of each knob that both make and a script take, in one place.

The Makefile keeps its own `VAR ?= value` lines (GNU Make 3.81 reads them without
Python, and `make help` shows them); the scripts' --help read this table. A test
(tests/test_defaults.py) parses the Makefile's lines, runs `make help` and the scripts'
--help, and fails when any of them disagrees with DEFAULTS: change a default here and
in the Makefile together.
"""

# make variable -> its default, as make writes it (switches such as VAL_LOOP_STOP=0/1 are
# flags without a value on the Python side: off unless given)
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
}

# make variable -> (script, its option): where each default is taken on the Python side
# (a knob several scripts take is listed once per script).
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
}
