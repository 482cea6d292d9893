"""olelo: the lab's library. Each concept lives in one module; the command-line
scripts in scripts/ parse arguments and call these.

    olelo.prompt   the translation prompt (training data and evaluation share it)
    olelo.cli      UserError and run_main: one-line errors, exit status 2
    olelo.files    atomic writes, JSON/JSONL reading with file/line errors, checksums
    olelo.models   loading a model with a useful message
    olelo.runs     stamp, run folder, manifest, checkpoints, `latest`, git/environment record
    olelo.data     pairs and splits: pair identity, leaks, reading split folders
    olelo.retrieval  DATA=rag: each record's nearest training pairs for its prompt
    olelo.identity a run's data/model identity and its lock
    olelo.checks   checks of knobs and data before any folder is made
    olelo.generate translation with a model (eval and validation chrF++)
    olelo.scores     scores: chrF++/BLEU/TER, bootstrap comparison, output health
    olelo.semsim   semantic similarity (MLX all-MiniLM-L6-v2)
    olelo.summaries, olelo.plots  evaluation summaries and their figures
    olelo.trainer  the training loop; olelo.lean_loss the chunked loss
    olelo.memory   the peak-memory model (fit, predict, profiles)
    olelo.gguf_arch  what scripts/convert_gguf.py knows of each GGUF base model and architecture
    The logic of a script that is more than its command line lives in a module of its own,
    which its tests import (scripts/x.py runs as a subprocess there): olelo.launch,
    olelo.splits, olelo.report_page, olelo.results_tables, olelo.demo, olelo.upload,
    olelo.gguf_convert, olelo.elf, olelo.mem_profile, olelo.memory_guidelines, olelo.bash32,
    olelo.tiny_tokenizer, olelo.summary_diff, olelo.grad_checkpoint (bench/campaigns').

Installed editable in .venv (`make setup`: pip install --no-deps -e .), so
`import olelo` works from any script, test or bench file.
"""

# The names every script uses, at the top level (`olelo.read_jsonl`, `olelo.UserError`).
from olelo.cli import EXPECTED_OS_ERRORS, UserError, os_error_message, run_main, write_failure  # noqa: F401
from olelo.files import (  # noqa: F401
    atomic_dir, atomic_write_bytes, atomic_write_json, atomic_write_jsonl, atomic_write_text, decode_utf8,
    read_json, read_jsonl, replace_folder, sha256_file, utf16_kind)
from olelo.models import check_model_folder, load_model, model_unavailable_message  # noqa: F401
from olelo.prompt import (  # noqa: F401
    DIRECTIONS, GEMMA3_CHAT_TEMPLATE, LANGUAGES, chat_record, fewshot_messages, prompt_messages, record_source_target,
    system_prompt)
from olelo.runs import checkpoint_adapter, resolve_run, run_manifest, run_stamp  # noqa: F401
