"""Write a fused model as a GGUF file (for llama.cpp, Ollama, LM Studio) and check it with
llama.cpp itself. `make gguf` is its front door (it fuses first).

    python scripts/export_gguf.py (--fused fused/<stamp>-<ckpt> | --run <stamp> [--ckpt best] [--dequantize])
        [--type f16|bf16|q8_0] [-o OUT.gguf] [--check-prompts 3 | --no-check] [--max-tokens 8]

The fused folder (made by scripts/fuse.py; a 4-bit base must be fused with --dequantize) is
written by olelo.gguf_export with the `gguf` package's writer: Gemma 3 or Llama tensor names
and metadata, llama.cpp's conventions (Gemma's norms store 1 + w, Llama's q/k rows are
permuted), the tokenizer (the base's own GGUF vocabulary when the lab converted it from one,
else a byte-level BPE tokenizer.json), the chat template, and the run's identity (olelo.run,
olelo.checkpoint, olelo.adapter_sha256, ...). The default output is beside the folder,
fused/<stamp>-<ckpt>.<type>.gguf, written under a temporary name and renamed when whole.

Then llama.cpp (scripts/install_llama_runtime.py; OLELO_LLAMA_RUNTIME names its folder)
loads the file, and on --check-prompts prompts from the run's test split (a fixed sentence
without one) the next-token log-probabilities of llama.cpp and of the fused MLX model (in
float32) are compared over the whole vocabulary, and greedy continuations of both are
printed side by side. The file is refused (removed, exit status 2) when a top token
differs or a log-probability differs by more than --tolerance: it is checked under a
temporary name and never takes OUT's place then (a file that passed before stays); its
record goes to OUT.refused.json. A file that passes is renamed to OUT, its record to
OUT.json. --no-check writes the file unchecked and says so.

Run (from the repository root):
    .venv/bin/python scripts/export_gguf.py --run latest --ckpt best --type f16
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

import olelo
from olelo.defaults import DEFAULTS
from olelo import gguf_export
from olelo.runs import RUNS_DIR, fused_folder

FALLBACK_PROMPTS = ["Translate into English: Aloha kākou.", "Ua hele ke aliʻi i ka moku."]
# Measured on Gemma 3 270M exported as f16 (NOTES.md): 0.04. bf16 and q8_0 round the
# weights further; the check uses one tolerance and records what it saw.
TOLERANCE = {"f16": 0.25, "bf16": 0.5, "q8_0": 0.5}


def fused_of(a) -> Path:
    if a.fused:
        folder = Path(a.fused)
    else:
        run_dir = olelo.resolve_run(a.run, a.runs_dir)
        stamp = olelo.run_manifest(run_dir).get("stamp", run_dir.name)
        folder = Path(fused_folder(stamp, a.ckpt, a.dequantize))
        if not folder.is_dir():
            raise olelo.UserError(f"{folder}: not fused yet: make fuse RUN={stamp} FUSE_CKPT={a.ckpt}"
                                  f"{' DEQUANTIZE=1' if a.dequantize else ''} (make gguf fuses first)")
    if not (folder / "config.json").is_file():
        raise olelo.UserError(f"{folder}: no config.json: give a fused model folder (fused/<stamp>-<ckpt>)")
    return folder


def identity_of(folder: Path) -> dict:
    record = folder / "olelo_fuse.json"
    fuse = olelo.read_json(record, "fuse record") if record.is_file() else {}
    base = Path(fuse["base_model"]) if fuse.get("base_model") else None
    license_ = None
    for where in (folder, base):
        if where is not None and (where / "conversion.json").is_file():
            spec = gguf_export.BASES.get(olelo.read_json(where / "conversion.json", "conversion record").get("base"))
            license_ = spec and spec["license"]
            break
    return {"name": f"olelo {fuse['run']} {fuse['checkpoint']}" if fuse else folder.name,
            "license": license_, "run": fuse.get("run"), "checkpoint": fuse.get("checkpoint"),
            "iteration": fuse.get("iteration"), "adapter_sha256": fuse.get("adapter_sha256"),
            "base_model": fuse.get("base_model"), "base_model_sha256": fuse.get("base_model_sha256"),
            "fused_folder": folder.name, "git_commit": olelo.runs.git_info().get("commit")}


def check_prompts(folder: Path, n: int) -> list[str]:
    """The first n sources of the run's test split (what the model was made for), else fixed ones."""
    record = folder / "olelo_fuse.json"
    if record.is_file():
        run_dir = Path(olelo.read_json(record, "fuse record").get("run_dir", ""))
        manifest = run_dir / "manifest.json"
        if manifest.is_file():
            data = Path(olelo.read_json(manifest, "run record").get("data_dir", ""))
            if (data / "test.jsonl").is_file():
                sources = [olelo.record_source_target(r)[0] for r in olelo.read_jsonl(data / "test.jsonl")[:n]]
                if sources:
                    return sources
    return FALLBACK_PROMPTS[:n]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--fused", help="a fused model folder (scripts/fuse.py's)")
    src.add_argument("--run", help="a run stamp, folder or latest: its fused folder fused/<stamp>-<ckpt>")
    p.add_argument("--ckpt", default=DEFAULTS["FUSE_CKPT"], help="with --run: best, final or an iteration (default: %(default)s)")
    p.add_argument("--dequantize", action="store_true", help="with --run: the -dq fused folder (a 4-bit base)")
    p.add_argument("--runs-dir", default=RUNS_DIR, help="where run stamps are looked up (default: %(default)s)")
    p.add_argument("--type", default=DEFAULTS["GGUF_TYPE"], choices=gguf_export.TYPES, help="tensor type (default: %(default)s)")
    p.add_argument("-o", "--output", help="the GGUF file (default: beside the folder, <folder>.<type>.gguf)")
    p.add_argument("--check-prompts", type=int, default=3, help="prompts llama.cpp is checked on (default: %(default)s)")
    p.add_argument("--max-tokens", type=int, default=8, help="greedy tokens shown per prompt (default: %(default)s)")
    p.add_argument("--tolerance", type=float, help="largest |log-prob difference| accepted "
                                                   "(default: f16 0.25, bf16 and q8_0 0.5)")
    p.add_argument("--no-check", action="store_true", help="write the file without loading it in llama.cpp")
    a = p.parse_args(argv)
    for flag, value in (("--check-prompts", a.check_prompts), ("--max-tokens", a.max_tokens)):
        if value < 1:
            raise olelo.UserError(f"{flag}={value}: must be a whole number >= 1")

    folder = fused_of(a)
    out = Path(a.output or f"{folder}.{a.type}.gguf")
    if out.suffix != ".gguf":
        raise olelo.UserError(f"-o {out}: give a file name ending in .gguf")
    if out.is_dir():
        raise olelo.UserError(f"-o {out}: is a folder; give a file name ending in .gguf")
    if not a.no_check:
        from olelo import llama_check

        llama_check.load_runtime()  # refuse before writing hundreds of MB when it is missing
    identity = identity_of(folder)
    # Checked under another name and renamed only when it passes: a refused export never
    # takes the place of a file that passed before.
    staged = out if a.no_check else out.with_name(f".{out.name}.unchecked-{os.getpid()}")
    try:
        written = gguf_export.write_gguf(folder, staged, a.type, identity, log=lambda m: print(m, flush=True))
        record = {"gguf": str(out), "fused_folder": str(folder), **written, "identity": identity,
                  "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        if a.no_check:
            record["check"] = "not checked (--no-check)"
            olelo.atomic_write_json(out.with_name(out.name + ".json"), record)
            print(f"{out}: written, NOT checked by llama.cpp (--no-check)")
            return 0

        from olelo import llama_check

        tolerance = a.tolerance if a.tolerance is not None else TOLERANCE[a.type]
        prompts = check_prompts(folder, a.check_prompts)
        print(f"llama.cpp vs the fused MLX model (float32, the file's rounding) on {len(prompts)} prompts:",
              flush=True)
        result = llama_check.compare(folder, staged, prompts, a.max_tokens, kind=a.type)
        runtime = olelo.read_json(llama_check.runtime_dir() / "olelo_runtime.json", "runtime record")
        passed = result["max_abs_logprob_diff"] <= tolerance and result["top_token_agreement"] == 1
        result.update({"tolerance": tolerance, "runtime": runtime["llama_cpp"], "passed": passed})
        record["check"] = result
        summary = (f"max |log-prob diff| {result['max_abs_logprob_diff']:.3g} (tolerance {tolerance}), top token "
                   f"agrees on {result['top_token_agreement']:.0%}, greedy text on {result['greedy_agreement']:.0%}, "
                   f"llama.cpp's tokenizer on {result['tokenizer_agreement']:.0%} of the prompts")
        if not passed:
            refused = out.with_name(out.name + ".refused.json")
            olelo.atomic_write_json(refused, record)
            kept = f"; {out} from before is left as it was" if out.exists() else ""
            raise olelo.UserError(f"{out}: llama.cpp does not compute the fused model: {summary}; not written "
                                  f"(record: {refused}){kept}")
        os.replace(staged, out)
        olelo.atomic_write_json(out.with_name(out.name + ".json"), record)
    finally:
        if staged != out:
            staged.unlink(missing_ok=True)
    print(f"{out}: checked by llama.cpp {result['runtime']}: {summary}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
