"""BATCH=auto: the largest batch size (and whether to checkpoint gradients) that fits the
memory available now, for one model and dataset. scripts/auto_batch.py is its front door
(its --help says how the pick is made); scripts/launch.py calls pick() for make's BATCH=auto.

    a = auto_batch.parse_args(["--model", M, "--data", D])   # the options, resolved (LOSS=auto ...)
    choice = auto_batch.pick(a)      # {"batch_size": 4, "grad_checkpoint": False, "reason": "...", ...}
    auto_batch.flags(choice)         # ["--batch-size", "4"] for mlx_lm.lora
    auto_batch.check(a)              # --check-batch N: the pre-flight line (warning or ok)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import olelo
from olelo import memory
from olelo.config import LOSSES, QUANTIZED_MATMULS
from olelo.defaults import DEFAULTS

CANDIDATES = (1, 2, 4, 8, 16, 32, 64)
RESULTS_DIR = "runs/mem-profile"


def parse_args(argv, description: str | None = None) -> argparse.Namespace:
    """scripts/auto_batch.py's options (launch.py passes the same list), with LOSS and
    QMATMUL auto resolved as train.py resolves them on this machine."""
    p = argparse.ArgumentParser(prog="auto_batch.py", description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model folder or Hub id")
    p.add_argument("--data", required=True, help="folder with train.jsonl")
    p.add_argument("--max-seq", type=int, default=2048, help="mlx_lm.lora --max-seq-length (default: %(default)s)")
    p.add_argument("--margin", type=float, default=0.2, help="fraction of available memory kept free (default: %(default)s)")
    p.add_argument("--grad-checkpoint", choices=["auto", "on", "off"], default="auto",
                   help="auto: choose; on/off: only consider that mode (default: %(default)s)")
    p.add_argument("--candidates", default=",".join(map(str, CANDIDATES)),
                   help="batch sizes to choose from (default: %(default)s)")
    p.add_argument("--results-dir", default=RESULTS_DIR, help="where mem_profile.py results are (default: %(default)s)")
    p.add_argument("--loss", choices=LOSSES, default=DEFAULTS["LOSS"],
                   help="the training loss the run will use: only profiles made with it count (auto: chunked on a CPU, default on a GPU, as train.py; default: %(default)s)")
    p.add_argument("--quantized-matmul", choices=QUANTIZED_MATMULS, default=DEFAULTS["QMATMUL"],
                   help="the run's --quantized-matmul: only profiles made with it count (auto: dense on CUDA, "
                        "as train.py; default: %(default)s)")
    p.add_argument("--memory-limit-gb", type=float,
                   help="the run's MEM_LIMIT: the batch is chosen by what each setting needs (a profile measured at "
                        "the need, e.g. make mem-profile MEM_LIMIT=0.001), within this limit and the available memory")
    p.add_argument("--fine-tune-type", choices=["lora", "dora", "full"], default="lora",
                   help="the run's mlx_lm.lora --fine-tune-type: LOSS=auto never picks the chunked loss for full")
    p.add_argument("--available", type=float, help="available memory in bytes (default: read from the system)")
    p.add_argument("--num-layers", type=int, default=16, help="LoRA layers, for the probe (default: %(default)s)")
    p.add_argument("--no-probe", action="store_true", help="fail instead of probing when no profile exists")
    p.add_argument("--check-batch", type=int, help="only warn if this batch size is predicted not to fit")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the choice as JSON")
    out.add_argument("--flags", action="store_true", help="print mlx_lm.lora flags (the one-line reason goes to stderr)")
    p.add_argument("--record", help="also write the JSON to this file")
    a = p.parse_args(argv)
    from olelo import dequant
    from olelo.lean_loss import resolve
    a.loss = resolve(a.loss, a.fine_tune_type)  # auto: as train.py on this machine
    a.quantized_matmul = dequant.resolve(a.quantized_matmul)
    memory.check_memory_limit(a.memory_limit_gb)
    return a


def choose(fit: dict, width: int, budget: float, modes: list[bool], candidates=CANDIDATES) -> dict:
    """The largest candidate batch (over `modes`) whose predicted peak fits `budget`;
    at equal batch the mode listed first wins. batch_size 0: nothing fits."""
    best = {"batch_size": 0, "grad_checkpoint": modes[-1],
            "predicted_peak_bytes": memory.predict_peak(fit, min(candidates), width, modes[-1])}
    per_mode = {}
    for gc in modes:
        entry = {"largest": 0}
        for b in sorted(candidates):
            peak = memory.predict_peak(fit, b, width, gc)
            if peak > budget:
                entry.update(next=b, next_peak_bytes=peak)
                break
            entry.update(largest=b, peak_bytes=peak)
        per_mode[memory.GC_MODES[gc]] = entry
        if entry["largest"] > best["batch_size"]:
            best = {"batch_size": entry["largest"], "grad_checkpoint": gc, "predicted_peak_bytes": entry["peak_bytes"]}
    return {**best, "per_mode": per_mode}


def probe(model: str, data: str, max_seq: int, modes: list[bool], num_layers: int = 16,
          loss: str = "default", quantized_matmul: str = "quantized",
          memory_limit_gb: float | None = None) -> tuple[dict, list[dict]]:
    """Fit from short measured runs of worst-case batches (batch 1 and 2, longest examples)."""
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        for gc in modes:
            for b in (1, 2):
                point = {"model": model, "data": data, "batch": b, "grad_checkpoint": gc, "max_seq": max_seq,
                         "iters": 2, "warmup": 1, "num_layers": num_layers, "seed": 0, "longest_only": True,
                         "loss": loss, "quantized_matmul": quantized_matmul, "memory_limit_gb": memory_limit_gb}
                print(f"probe: batch {b}, grad checkpoint {memory.GC_MODES[gc]} ...", file=sys.stderr, flush=True)
                r = memory.measure(point, Path(tmp) / f"probe-{b}-{int(gc)}.log", timeout=900)
                if r["status"] != "ok":
                    raise olelo.UserError(f"probe at batch {b} failed: {r['status']}; even batch 1 may not fit")
                points.append(r)
    return memory.fit_peak(points), [{k: p[k] for k in ("batch", "grad_checkpoint", "width", "peak_bytes")} for p in points]


class _Inputs:
    """What a pick and a pre-flight check both start from: the longest training sequence,
    the memory available, the checkpoint modes in play and the newest matching profile."""

    def __init__(self, a):
        if not 0 <= a.margin < 1:
            raise olelo.UserError("--margin is a fraction of available memory, 0 <= margin < 1")
        train_file = Path(a.data) / "train.jsonl"
        if not train_file.is_file():
            raise olelo.UserError(f"{train_file} not found (make data, or pass --data)")
        _, self.lengths = memory.token_lengths(a.model, train_file)
        self.longest = max(self.lengths)
        self.width = memory.padded_width(self.longest, a.max_seq)
        self.available = a.available if a.available is not None else memory.available_memory_bytes()
        self.modes = {"auto": [False, True], "off": [False], "on": [True]}[a.grad_checkpoint]
        # Under MEM_LIMIT the peak stays near the limit unless a step needs more: what counts
        # is each setting's need, from a profile measured at the need (or a probe made so).
        self.at_need = a.memory_limit_gb is not None
        gc_modes = tuple(memory.GC_MODES[m] for m in self.modes)

        def find(wanted):
            return memory.newest_profile(a.results_dir, a.model, a.loss, quantized_matmul=a.quantized_matmul,
                                         at_need=self.at_need, gc_modes=wanted)

        profile = find(gc_modes)
        if not profile and len(gc_modes) > 1:  # one profile per checkpoint mode (GRAD_CKPT=0, then 1) serves too
            per_mode = {m: find((m,)) for m in gc_modes}
            if all(per_mode.values()):
                profile = {"fit": memory.combine_fits({m: p["fit"] for m, p in per_mode.items()}),
                           "path": " and ".join(f"{p['path']} (gc {m})" for m, p in per_mode.items())}
        self.profile = profile
        self.kind = " measured at the need" if self.at_need else ""
        self.remedy = f"make mem-profile MODEL={a.model} LOSS={a.loss}" + (" MEM_LIMIT=0.001" if self.at_need else "")

    def fit(self, a) -> tuple[dict, str, list | None]:
        """(fit, where it comes from, probe points or None): the profile's, else a probe's."""
        if self.profile:
            return self.profile["fit"], f"fit of {self.profile['path']}", None
        if a.no_probe:
            raise olelo.UserError(f"no mem-profile results{self.kind} for {memory.model_name(a.model)} with "
                                  f"LOSS={a.loss} in {a.results_dir} (run: {self.remedy})")
        fit, points = probe(a.model, a.data, a.max_seq, self.modes, a.num_layers, a.loss, a.quantized_matmul,
                            0.001 if self.at_need else None)
        return fit, (f"probe of batches 1 and 2 of the longest examples (LOSS={a.loss}"
                     f"{', at the need' if self.at_need else ''})"), points


def check(a) -> str:
    """--check-batch: one line, a warning when batch a.check_batch is predicted not to fit,
    else "ok: ..."; without a profile, a note that the check is skipped (no probe: a probe
    before every training would cost more than it saves)."""
    got = _Inputs(a)
    if not got.profile:
        return (f"note: no mem-profile{got.kind} for {memory.model_name(a.model)} with LOSS={a.loss} in "
                f"{a.results_dir}; pre-flight memory check skipped ({got.remedy})")
    fit, source, _ = got.fit(a)
    warning = memory.preflight_warning(fit, got.longest, a.check_batch, a.grad_checkpoint == "on", a.max_seq,
                                       got.available)
    return warning or f"ok: batch {a.check_batch} predicted to fit in {memory.gb(got.available)} ({source})"


def pick(a) -> dict:
    """The choice for options `a` (parse_args): batch_size (0: nothing fits), grad_checkpoint,
    reason (one line) and how it was made; written to a.record too when given."""
    got = _Inputs(a)
    fit, source, probe_points = got.fit(a)
    longest, width, available, at_need = got.longest, got.width, got.available, got.at_need
    budget = available * (1 - a.margin)
    if at_need:
        budget = min(budget, a.memory_limit_gb * 1e9)
    # mlx-lm refuses a batch larger than any split it iterates (train, and valid during training).
    valid_file = Path(a.data) / "valid.jsonl"
    most = min(len(got.lengths), len(olelo.read_jsonl(valid_file)) if valid_file.is_file() else len(got.lengths))
    candidates = sorted({int(x) for x in a.candidates.split(",")} & set(range(1, most + 1)))
    choice = choose(fit, width, budget, got.modes, candidates)
    gc_text = " --grad-checkpoint" if choice["grad_checkpoint"] else ""
    if choice["batch_size"]:
        others = "; ".join(f"gc {m}: largest {v['largest']}" + (f" (batch {v['next']} needs {memory.gb(v['next_peak_bytes'])})"
                                                                 if "next" in v else "")
                           for m, v in choice["per_mode"].items())
        reason = (f"auto_batch: --batch-size {choice['batch_size']}{gc_text}: predicted {'need' if at_need else 'peak'} "
                  f"{memory.gb(choice['predicted_peak_bytes'])} <= budget {memory.gb(budget)} "
                  f"({memory.gb(available)} available - {a.margin:.0%}"
                  f"{f', at most MEM_LIMIT={a.memory_limit_gb:g}' if at_need else ''}) for the longest sequence "
                  f"({longest} tokens, padded {width}) with LOSS={a.loss}; {others}; {source}")
    else:
        reason = (f"auto_batch: nothing fits: batch {min(candidates)}{gc_text} needs "
                  f"{memory.gb(choice['predicted_peak_bytes'])} for the longest sequence ({longest} tokens, padded "
                  f"{width}) with LOSS={a.loss} but the budget is {memory.gb(budget)}; lower --max-seq or use a smaller "
                  f"model; {source}")
    record = {**choice, "reason": reason, "model": a.model, "data": a.data, "loss": a.loss, "max_seq": a.max_seq,
              "memory_limit_gb": a.memory_limit_gb, "quantized_matmul": a.quantized_matmul,
              "longest_tokens": longest, "width": width, "available_bytes": available, "margin": a.margin,
              "budget_bytes": budget, "source": source, "fit": fit, "probe_points": probe_points}
    if a.record:
        olelo.atomic_write_json(a.record, record)
    return record


def flags(choice: dict) -> list[str]:
    """The mlx_lm.lora flags of a choice (empty when nothing fits)."""
    if not choice["batch_size"]:
        return []
    return ["--batch-size", str(choice["batch_size"]), *(["--grad-checkpoint"] if choice["grad_checkpoint"] else [])]
