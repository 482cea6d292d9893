"""Fuse one checkpoint of a training run into its base model with the notes' command,
and check that the fused model generates what base + adapter generates.

    python scripts/fuse.py --run runs/<stamp> [--ckpt best|final|N] [--dequantize]
                           [--out fused/<stamp>-<ckpt>]

--run takes a run folder, a stamp under --runs-dir, or `latest`. --ckpt picks the
adapters: `best` (chosen on validation by the run's SELECT; the default), `final` (adapters.safetensors) or a
numbered checkpoint (400, 0000400 or ckpt-0000400), which gets an adapter folder of its
own, adapters/<stamp>/ckpt-0000400/ (hard links, by olelo.checkpoint_adapter), because
mlx_lm.fuse reads a folder. Then it runs, as a subprocess of this venv,

    mlx_lm.fuse --model <the run's model> --adapter-path <folder> --save-path <out> [--dequantize]

into a temporary folder beside <out>; generates greedily from the first few prompts
of the run's test split with base + adapter and with the fused model and compares the
token ids; writes <out>/olelo_fuse.json (command, checkpoint, iteration, val loss,
sha256 of adapter and base, verification, and the name, size and sha256 of every file
it wrote: upload sends only those, unchanged); and renames the folder into place.
<out>/../latest then points at it (scripts/upload.py's default), unless a `latest` there
is not a link this script made (then it is left alone). An existing <out> that is not a
fused folder (no olelo_fuse.json) is refused, never replaced. A second fuse of the
same adapters into the same base with the same command is a no-op ("up to date"), while
the folder still holds every file as fuse wrote it (else it is fused again).
A run whose model is no longer the one it was trained from is refused.

Run (from the repository root; ~10 s on the tiny model):
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 \\
    .venv/bin/python scripts/fuse.py --run latest --ckpt best
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import olelo
from olelo.defaults import DEFAULTS
from olelo import fused as fused_files
from olelo import records
from olelo import identity


def shown(path) -> str:
    """A path as the user would type it: relative to the working folder when inside it."""
    path = Path(os.path.abspath(path))
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def iteration_and_val_loss(run_dir: Path, manifest: dict, adapter_dir: Path, name: str):
    """Updates behind a checkpoint, and the val loss measured right then (None when no validation ran then)."""
    rows = records.read_metrics(run_dir)
    if name == "best":
        info = json.loads((adapter_dir / "best" / "best.json").read_text())
        return info["iteration"], info["val_loss"]
    if name == "final":
        # A finished run ends at `iters`; an early stop saves the state of its last validation.
        vals = [r["iteration"] for r in rows if r["type"] == "val"]
        iteration = {"finished": manifest.get("iters"),
                     "stopped-early": vals[-1] if vals else None}.get(manifest.get("status"))
    else:
        iteration = int(name.removeprefix("ckpt-"))
    losses = [r["val_loss"] for r in rows if r["type"] == "val" and r["iteration"] == iteration]
    return iteration, (losses[-1] if losses else None)


def fingerprint(model: str) -> dict | None:
    """sha256 of a local model's config and weights (a rebuilt base makes the fused model stale)."""
    folder = Path(model)
    if not folder.is_dir():
        return None  # a Hub id: mlx-lm's cache decides what it is
    files = [folder / "config.json", *sorted(folder.glob("*.safetensors"))]
    return {f.name: olelo.sha256_file(f) for f in files if f.is_file()}


# ---------------------------------------------------------------- verification

def verification_prompts(data_dir: str, n: int) -> list[dict]:
    test = Path(data_dir) / "test.jsonl"
    if not test.is_file():
        raise olelo.UserError(f"{test}: the run's test split is gone; rebuild the data or pass --verify-prompts 0")
    rows = olelo.read_jsonl(test)[:n]
    return [{"id": r.get("id"), "direction": r["direction"], "source": olelo.record_source_target(r)[0]} for r in rows]


def greedy_tokens(model_path: str, adapter_path: str | None, prompts: list[dict], max_tokens: int):
    """Per prompt: greedy token ids (stop token included) and the first step's log-probs;
    and the model's quantization ({bits, group_size}) or None."""
    import mlx.core as mx
    import mlx.nn as nn
    from mlx_lm.generate import generate_step

    model, tokenizer = olelo.load_model(model_path, adapter_path=adapter_path)
    quantized = next((m for _, m in model.named_modules() if isinstance(m, nn.QuantizedLinear)), None)
    quantization = {"bits": quantized.bits, "group_size": quantized.group_size} if quantized else None
    outs = []
    for p in prompts:
        # The same tokens as training: mlx-lm's chat dataset applies the chat template too.
        ids = tokenizer.apply_chat_template(olelo.prompt_messages(p["source"], p["direction"]),
                                            add_generation_prompt=True)
        tokens, first = [], None
        for token, logprobs in generate_step(mx.array(ids), model, max_tokens=max_tokens):  # argmax
            first = logprobs if first is None else first
            tokens.append(int(token))
            if tokens[-1] in tokenizer.eos_token_ids:
                break
        outs.append((tokens, first))
    del model
    mx.clear_cache()
    return outs, quantization


def explanation(quantization: dict | None, dequantize: bool) -> str:
    if quantization and not dequantize:
        return (f"the base is {quantization['bits']}-bit quantized (group size {quantization['group_size']}): "
                f"mlx_lm.fuse dequantizes each LoRA layer's weight, adds the low-rank update and quantizes "
                f"the sum again, so the fused weights are rounded to the quantization grid while base + "
                f"adapter adds the update in full precision; small logit differences can change a greedy pick "
                f"(--dequantize keeps the fused weights unquantized)")
    if quantization:
        return ("--dequantize: the fused model adds the update to the dequantized weights and keeps them "
                "unquantized, while base + adapter runs the quantized kernels; the rounding differs slightly")
    return ("float base: the fused model computes x(W + s*AB) while base + adapter computes xW + s*(xA)B; "
            "the float rounding differs slightly, which can flip a near-tie between two tokens")


def verify(model: str, adapter_folder: Path, fused: Path, prompts: list[dict], max_tokens: int,
           dequantize: bool) -> dict:
    import mlx.core as mx

    if not prompts:
        return {"status": "skipped", "identical": None, "reason": "--verify-prompts 0"}
    ref, quantization = greedy_tokens(model, str(adapter_folder), prompts, max_tokens)
    got, _ = greedy_tokens(str(fused), None, prompts, max_tokens)
    rows = []
    for p, (a, la), (b, lb) in zip(prompts, ref, got):
        diff = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
        if diff is None and len(a) != len(b):
            diff = min(len(a), len(b))
        rows.append({"id": p["id"], "direction": p["direction"], "identical": diff is None,
                     "first_difference": diff, "base_adapter_tokens": a, "fused_tokens": b,
                     "first_step_max_abs_logprob_diff": float(mx.abs(la - lb).max())})
    identical = all(r["identical"] for r in rows)
    logprob_diff = max(r["first_step_max_abs_logprob_diff"] for r in rows)
    record = {"status": "identical" if identical else "different", "identical": identical,
              "method": f"greedy decoding, max_tokens {max_tokens}, prompts from the first {len(prompts)} records "
                        f"of the run's test split built with olelo.prompt_messages and the chat template",
              "max_first_step_logprob_diff": logprob_diff, "base_quantization": quantization, "prompts": rows}
    if not identical or logprob_diff > 1e-3:  # float rounding alone stays near 1e-6
        record["explanation"] = explanation(quantization, dequantize)
    return record


# ---------------------------------------------------------------- fuse

def fuse_command(model: str, adapter_folder: str, save_path: str, dequantize: bool) -> list[str]:
    """The notes' command."""
    return (["mlx_lm.fuse", "--model", model, "--adapter-path", adapter_folder, "--save-path", save_path]
            + (["--dequantize"] if dequantize else []))


def runnable(command: list[str]) -> list[str]:
    """`command` (first item 'mlx_lm.fuse') through this venv's mlx_lm.fuse entry point."""
    exe = Path(sys.executable).parent / "mlx_lm.fuse"
    if exe.is_file():
        return [str(exe), *command[1:]]
    return [sys.executable, "-m", "mlx_lm", "fuse", *command[1:]]


def point_latest(out: Path) -> None:
    """<out>/../latest -> out, the record of the model fused last; a `latest` fuse did not
    make (a file, a folder, a link to something else than a fused model) is kept."""
    def made_by_fuse(link: Path) -> bool:
        return link.is_symlink() and (not link.exists() or (link / "olelo_fuse.json").is_file())

    if not olelo.runs.point_latest(out.parent / "latest", out.name, made_by_fuse):
        print(f"note: left {out.parent / 'latest'} alone (not a link made by fuse); the fused model is {out}",
              file=sys.stderr)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="latest", help="run folder, stamp under --runs-dir, or latest (default)")
    p.add_argument("--ckpt", default=DEFAULTS["FUSE_CKPT"],
                   help="best, final, or a checkpoint's iteration (400, 0000400, ckpt-0000400) (default: %(default)s)")
    p.add_argument("--dequantize", action="store_true", help="write an unquantized model (mlx_lm.fuse --dequantize)")
    p.add_argument("--out", help="the fused model's folder (default: fused/<stamp>-<ckpt>[-dq])")
    p.add_argument("--runs-dir", default=olelo.runs.RUNS_DIR, help="where stamps and latest are looked up (default: runs)")
    p.add_argument("--adapters-dir", help="folder holding <stamp>/ (default: the adapter folder the run recorded)")
    p.add_argument("--verify-prompts", type=int, default=3, help="test prompts to compare fused vs base+adapter on (0: skip)")
    p.add_argument("--max-tokens", type=int, default=16, help="greedy tokens generated per verification prompt")
    args = p.parse_args(argv)

    run_dir = Path(shown(olelo.resolve_run(args.run, args.runs_dir)))
    manifest = olelo.run_manifest(run_dir)
    stamp = manifest["stamp"]
    records.require_finished(run_dir, manifest, "fuse")
    cmd = manifest["mlx_lm_command"]
    model = manifest.get("model") or cmd[cmd.index("--model") + 1]
    identity.require_unchanged({**manifest, "model": model}, "be fused", splits=(), remedy=(
        "Fuse into the model it was trained from (restore it), or train a new run on this model (FORCE=1)"))
    data_dir = manifest.get("data_dir") or manifest["data"]["path"]
    adapter_dir = Path(f"{args.adapters_dir}/{stamp}" if args.adapters_dir else manifest.get("adapter_dir", f"adapters/{stamp}"))
    name = olelo.runs.ckpt_name(args.ckpt)
    folder = olelo.checkpoint_adapter(adapter_dir, name)
    iteration, val_loss = iteration_and_val_loss(run_dir, manifest, adapter_dir, name)

    out = Path(args.out or olelo.runs.fused_folder(stamp, name, args.dequantize))
    if out.name in ("", ".", "..", "latest"):
        raise olelo.UserError(f"--out {out}: name the fused model's own folder (e.g. fused/{stamp}-{name})")
    if out.exists() and not (out / "olelo_fuse.json").is_file():
        raise olelo.UserError(f"--out {out} exists and is not a model made by fuse (no olelo_fuse.json); "
                              f"pick a new folder (FUSED=...) or remove it yourself")
    command = fuse_command(model, shown(folder), shown(out), args.dequantize)
    adapter_sha = olelo.sha256_file(folder / "adapters.safetensors")
    base_sha = fingerprint(model)
    record_path = out / "olelo_fuse.json"
    if record_path.is_file():
        old = olelo.read_json(record_path, "fuse record")
        if (old.get("command"), old.get("adapter_sha256"), old.get("base_model_sha256")) == (command, adapter_sha, base_sha):
            changed = fused_files.problems(out, old["files"]) if isinstance(old.get("files"), dict) else [
                f"{record_path} does not list the files fuse wrote (fused by an older fuse.py)"]
            if not changed:
                point_latest(out)
                print(f"{out}: up to date (run {stamp}, checkpoint {name})")
                return 0
            print(f"note: {changed[0]}{f' (and {len(changed) - 1} more)' if len(changed) > 1 else ''}; fusing again",
                  file=sys.stderr)

    prompts = verification_prompts(data_dir, args.verify_prompts) if args.verify_prompts > 0 else []
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    stale = out.parent / f".{out.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        # The recorded command names the final folder; it runs into tmp, renamed below.
        print("+ " + shlex.join(command), flush=True)
        r = subprocess.run(runnable(fuse_command(model, shown(folder), str(tmp), args.dequantize)))
        if r.returncode != 0:
            raise olelo.UserError(f"mlx_lm.fuse failed (exit status {r.returncode}); see its output above")
        verification = verify(model, folder, tmp, prompts, args.max_tokens, args.dequantize)
        olelo.atomic_write_json(tmp / "olelo_fuse.json", {
            "run": stamp,
            "run_dir": shown(run_dir),
            "checkpoint": name,
            "iteration": iteration,
            "val_loss": val_loss,
            "adapter_path": shown(folder),
            "adapter_sha256": adapter_sha,
            "base_model": model,
            "base_model_sha256": base_sha,
            "dequantize": args.dequantize,
            "command": command,
            "fused_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "packages": {k: metadata.version(k) for k in ("mlx", "mlx-lm")},
            "verification": verification,
            "files": fused_files.inventory(tmp),
        })
        if out.exists():
            os.replace(out, stale)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(stale, ignore_errors=True)
    point_latest(out)
    result = verification["status"]
    if result == "different":
        result += " (first differing token per prompt: " + ", ".join(
            str(r["first_difference"]) for r in verification["prompts"]) + "; see olelo_fuse.json)"
    if prompts:
        result += f", first-token log-probs within {verification['max_first_step_logprob_diff']:.2g}"
    print(f"[olelo] fused run {stamp} checkpoint {name} (iteration {iteration}) into {out}; "
          f"fused vs base+adapter, greedy on {len(prompts)} test prompts: {result}")
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
