"""Upload a fused model (scripts/fuse.py) to the Hugging Face Hub with a model card.

    python scripts/upload.py --repo <user>/<name> [--run RUN --ckpt CKPT [--dequantize] | --fused DIR]
                             [--dry-run] [--public]

What goes up is exactly what was named: --run/--ckpt upload the fused folder of that
checkpoint (fused/<stamp>-<ckpt>, made by `make fuse RUN=... FUSE_CKPT=...`), --fused a
folder; with neither, the model fused last (fused/latest). It never fuses: a checkpoint
not fused yet, or a fused folder whose record names another run or checkpoint, or
whose adapters differ from the run's now, is refused.

The card (README.md) is generated from the fused folder's olelo_fuse.json and the
run's records: front matter (base model, languages, license, tags), the training
command and config.yaml, data provenance and split checksums, evaluation scores with
sacrebleu signatures and p-values (when `make eval` has run), the fuse check, and
the limitations. Only the fused folder's own model files go up, by an allow-list
(weights, JSON configs, tokenizer files, chat template, README.md); nothing from
data/, runs/ or .env, no hidden files, no links, no subfolders. And each of them must
be a file fuse wrote, as it wrote it: olelo_fuse.json lists every file's size and
sha256, and a file not listed there (a stray secrets.json), changed, truncated or gone
is refused by name before anything is sent (dry runs included).

--preflight checks only the arguments (the repo id; a token unless --dry-run) and
exits: `make fuse upload` runs it before fusing, so a bad HF_REPO costs no fuse.

--gguf TYPE (make upload GGUF=1) also sends the GGUF that `make gguf` wrote beside the
fused folder (<fused>.<TYPE>.gguf), with an Ollama Modelfile (the model's chat template in
Ollama's words, the run's system prompt, greedy decoding); the card gets a GGUF section with
llama.cpp's check. A GGUF written unchecked (GGUF_CHECK=0), or from other adapters than the
fused folder's, is refused.

--dry-run prints the file list with sizes and the card, and does nothing else: no
network, no writes. A real upload needs an explicit --repo owner/name and a token
(HF_TOKEN, or `hf auth login`); the token is never printed or written. The repo is
created private unless --public.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import olelo
from olelo.upload import (check_files, check_record, check_repo_id, fused_record, gguf_of, model_card, modelfile,
                          named_fused, read_json, upload_files)


def hf_token() -> str:
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise olelo.UserError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (nothing was uploaded)")
    return token


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fused", help="fused model folder (default: the --run/--ckpt one, else fused/latest)")
    p.add_argument("--run", help="upload this run's fused checkpoint (stamp, folder or latest)")
    p.add_argument("--ckpt", help="with --run: the fused checkpoint (best, final, N); default best")
    p.add_argument("--dequantize", action="store_true", help="with --run: the checkpoint fused with --dequantize")
    p.add_argument("--runs-dir", default=olelo.runs.RUNS_DIR, help="where run stamps are looked up (default: runs)")
    p.add_argument("--repo", help="Hugging Face repo id, owner/name (required)")
    p.add_argument("--dry-run", action="store_true", help="print the file list and the card; no network, no writes")
    p.add_argument("--public", action="store_true", help="create the repo public (default: private)")
    p.add_argument("--preflight", action="store_true",
                   help="check the arguments only (repo id; a token unless --dry-run), before any fuse work")
    p.add_argument("--gguf", choices=["f16", "bf16", "q8_0"],
                   help="also upload the checked GGUF of this type (make gguf) and an Ollama Modelfile")
    args = p.parse_args(argv)

    repo = check_repo_id(args.repo)
    if args.fused and (args.run or args.ckpt):
        raise olelo.UserError("name the model once: --fused DIR, or --run/--ckpt (FUSED, or RUN/FUSE_CKPT)")
    if args.preflight:
        if not args.dry_run:
            hf_token()
        return 0
    fused = named_fused(args)
    rec = fused_record(fused)
    check_record(fused, rec, args)
    gguf = gguf_of(fused, rec, args.gguf) if args.gguf else None
    files = upload_files(fused)
    check_files(fused, rec, files)
    card = model_card(fused, repo, gguf)
    size = {f: len(card.encode("utf-8")) if f.name == "README.md" else f.stat().st_size for f in files}
    extra = {}  # name in the repo -> a file beside the folder, or generated text
    if gguf:
        data_manifest = read_json(Path((read_json(Path(rec["run_dir"]) / "manifest.json") or {}).get("data_dir", "")) /
                                  "manifest.json") or {}
        extra = {gguf[0].name: gguf[0], "Modelfile": modelfile(fused, gguf[0], data_manifest.get("directions")
                                                                or ["haw-en"])}
    visibility = "public" if args.public else "private"

    if args.dry_run:
        print(f"dry run: would upload {len(files)} files ({sum(size.values()):,} bytes) from {fused} "
              f"to {visibility} repo {repo}:")
        for f in files:
            print(f"{size[f]:>14,}  {f.name}{'  (generated card, below)' if f.name == 'README.md' else ''}")
        for name, what in extra.items():
            print(f"{(what.stat().st_size if isinstance(what, Path) else len(what.encode())):>14,}  {name}"
                  f"{'  (beside the folder)' if isinstance(what, Path) else '  (generated, below)'}")
        print("\n--- README.md ---")
        sys.stdout.write(card)
        if "Modelfile" in extra:
            print("\n--- Modelfile ---")
            sys.stdout.write(extra["Modelfile"])
        return 0

    from huggingface_hub import HfApi

    token = hf_token()
    olelo.atomic_write_text(fused / "README.md", card)
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo, private=not args.public, exist_ok=True)
        api.upload_folder(repo_id=repo, folder_path=fused, allow_patterns=[f.name for f in files],
                          commit_message=f"olelo-mlx: {fused.name}")
        for name, what in extra.items():
            api.upload_file(path_or_fileobj=str(what) if isinstance(what, Path) else what.encode("utf-8"),
                            path_in_repo=name, repo_id=repo, commit_message=f"olelo-mlx: {name}")
    except Exception as e:  # network, auth, permissions: one line, never the token
        why = f"{type(e).__name__}: {e}".replace(token, "<token>").splitlines()[0]
        raise olelo.UserError(f"upload to {repo} failed ({why}). Check the network, and that the token "
                              f"may write to {repo.split('/')[0]}.") from None
    print(f"uploaded {len(files) + len(extra)} files to {url} ({visibility})")
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
