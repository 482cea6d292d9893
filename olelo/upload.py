"""What scripts/upload.py sends to the Hugging Face Hub, and the model card it writes: the
fused folder named (run, checkpoint), its files checked against fuse's record and the
allow-list, the checked GGUF beside it, and README.md built from the run's records.

    upload.model_card(Path("fused/<stamp>-best"), "owner/name")   # the card's Markdown
    upload.upload_files(fused)                                     # the files that go up
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import sys
from pathlib import Path

import olelo
from olelo import fused as fused_files

ALLOWED = ("*.safetensors", "*.json", "tokenizer.model", "*.tiktoken", "merges.txt", "vocab.txt", "*.jinja",
           "README.md")
SOURCE_REPO = "PurpleMaia/KumuBot-L1-Translation"
SOURCE_COMMIT = "f07f14542a7e88898f8614536ff8edbb0319cce7"
SOURCE_TEXT = "Fornander Collection of Hawaiian Antiquities and Folk-Lore (Bishop Museum, 1916–1920)"
EXAMPLE = {"haw-en": "Aloha kakou.", "en-haw": "Greetings to all of you."}
REPO_ID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?/[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")


def check_repo_id(repo: str | None) -> str:
    if not repo:
        raise olelo.UserError("give the repository to upload to: --repo <user>/<name> (make upload HF_REPO=user/name)")
    if not REPO_ID.match(repo) or "--" in repo or ".." in repo:
        raise olelo.UserError(f"--repo {repo!r} is not a Hugging Face repo id of the form owner/name "
                              f"(letters, digits, '-', '_', '.')")
    return repo


def fused_record(fused: Path) -> dict:
    record = fused / "olelo_fuse.json"
    if not record.is_file() or not (fused / "config.json").is_file() or not any(fused.glob("*.safetensors")):
        raise olelo.UserError(f"{fused}: no fused model here (config.json, *.safetensors and olelo_fuse.json "
                              f"are made by `make fuse`)")
    return olelo.read_json(record, "fuse record")


def named_fused(args) -> Path:
    """The fused folder the user named: --fused, or the one of --run/--ckpt, or fused/latest."""
    if args.fused:
        fused = Path(args.fused)
    elif args.run or args.ckpt:
        run_dir = olelo.resolve_run(args.run or "latest", args.runs_dir)
        stamp = olelo.run_manifest(run_dir)["stamp"]
        fused = Path(olelo.runs.fused_folder(stamp, args.ckpt or "best", args.dequantize))
        if not fused.exists():
            raise olelo.UserError(f"{fused}: checkpoint {args.ckpt or 'best'} of run {stamp} is not fused yet; "
                                  f"fuse it first: make fuse RUN={stamp} FUSE_CKPT={args.ckpt or 'best'}"
                                  f"{' DEQUANTIZE=1' if args.dequantize else ''}")
    else:
        fused = Path("fused/latest")
        if not fused.exists():
            raise olelo.UserError("nothing fused yet: make fuse RUN=<stamp> FUSE_CKPT=<ckpt> first (or name --fused)")
    if fused.is_symlink():  # fused/latest -> <name>, written by fuse.py
        fused = fused.parent / os.readlink(fused)
    return fused


def check_record(fused: Path, rec: dict, args) -> None:
    """The fused folder is the checkpoint named, fused from the adapters the run has now."""
    if args.run or args.ckpt:
        run_dir = olelo.resolve_run(args.run or "latest", args.runs_dir)
        stamp = olelo.run_manifest(run_dir)["stamp"]
        want = olelo.runs.ckpt_name(args.ckpt or "best")
        if (rec.get("run"), rec.get("checkpoint")) != (stamp, want):
            raise olelo.UserError(f"{fused} holds run {rec.get('run')} checkpoint {rec.get('checkpoint')}, not "
                                  f"run {stamp} checkpoint {want}; fuse that one (make fuse RUN={stamp} FUSE_CKPT={want})")
    adapter = Path(rec.get("adapter_path", "")) / "adapters.safetensors"
    if adapter.is_file() and olelo.sha256_file(adapter) != rec.get("adapter_sha256"):
        raise olelo.UserError(f"{fused} was fused from other adapters than {adapter} holds now; fuse again "
                              f"(make fuse RUN={rec.get('run')} FUSE_CKPT={rec.get('checkpoint')})")


def check_files(fused: Path, rec: dict, files: list[Path]) -> None:
    """Every file to send (but the card and the record) is one fuse wrote, unchanged, and
    every file fuse wrote that the allow-list sends is there."""
    recorded = rec.get("files")
    again = f"make fuse RUN={rec.get('run')} FUSE_CKPT={rec.get('checkpoint')}"
    if not isinstance(recorded, dict):
        raise olelo.UserError(f"{fused / fused_files.RECORD} does not list the files fuse wrote (fused by an older "
                              f"fuse.py): nothing is sent unchecked; fuse again ({again})")
    names = [f.name for f in files if f.name not in fused_files.NOT_RECORDED]
    names += [n for n in sorted(recorded) if n not in names and allowed(n)]
    size = sum(f.stat().st_size for f in files if f.name in recorded and f.is_file())
    print(f"checking {len(names)} files ({size / 1e9:.2f} GB) against {fused_files.RECORD}", file=sys.stderr)
    problems = fused_files.problems(fused, recorded, names)
    if problems:
        raise olelo.UserError("nothing was uploaded: these files are not what fuse wrote:\n  " + "\n  ".join(problems)
                              + f"\nremove what fuse did not write, or fuse again ({again})")


def allowed(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pat) for pat in ALLOWED)


def upload_files(fused: Path) -> list[Path]:
    """The files that go up: top-level plain files on the allow-list (README.md always)."""
    files = [f for f in sorted(fused.iterdir())
             if not f.name.startswith(".") and f.is_file() and not f.is_symlink()
             and allowed(f.name)]
    return files if fused / "README.md" in files else [*files, fused / "README.md"]


# ---------------------------------------------------------------- GGUF

def gguf_of(fused: Path, rec: dict, kind: str) -> tuple[Path, dict]:
    """The checked GGUF beside the fused folder and its record (export_gguf.py's)."""
    gguf = fused.with_name(f"{fused.name}.{kind}.gguf")
    record_path = gguf.with_name(gguf.name + ".json")
    if not gguf.is_file() or not record_path.is_file():
        raise olelo.UserError(f"{gguf}: no GGUF of this fused model: make gguf RUN={rec['run']} "
                              f"FUSE_CKPT={rec['checkpoint']} GGUF_TYPE={kind}")
    record = olelo.read_json(record_path, "GGUF record")
    if not isinstance(record.get("check"), dict) or record["check"].get("passed") is not True:
        raise olelo.UserError(f"{gguf}: written without llama.cpp's check (GGUF_CHECK=0); make gguf again "
                              f"with the check (make llama-runtime first) before uploading it")
    if (record.get("identity") or {}).get("adapter_sha256") != rec["adapter_sha256"]:
        raise olelo.UserError(f"{gguf}: made from other adapters than {fused}'s (olelo_fuse.json); "
                              f"make gguf again for this checkpoint")
    return gguf, record


def modelfile(fused: Path, gguf: Path, directions: list[str]) -> str:
    from olelo import gguf_export

    note = ("" if len(directions) == 1 else
            f"\n# trained on {', '.join(directions)}: SYSTEM is {directions[0]}'s; for the other, "
            f"use olelo.prompt.system_prompt of it")
    return gguf_export.ollama_modelfile(gguf.name, gguf_export.chat_template(fused),
                                        olelo.system_prompt(directions[0]), note)


def gguf_section(gguf: Path, record: dict, repo: str) -> list[str]:
    c = record["check"]
    name = repo.split("/")[-1].lower()
    return ["## GGUF (llama.cpp, Ollama, LM Studio)", "",
            f"`{gguf.name}`: the same weights as {record['type']} GGUF ({record['architecture']}), written by "
            f"olelo-mlx's scripts/export_gguf.py; its metadata names the run (`olelo.run`, `olelo.checkpoint`, "
            f"`olelo.adapter_sha256`).",
            "",
            f"Checked by llama.cpp {c.get('runtime')} itself against the fused MLX model (float32), on "
            f"{len(c['prompts'])} test prompts, same token ids: largest next-token log-probability difference "
            f"{c['max_abs_logprob_diff']:.3g} (tolerance {c['tolerance']}), top token the same on "
            f"{c['top_token_agreement']:.0%}, greedy text on {c['greedy_agreement']:.0%}, llama.cpp's tokenizer "
            f"gave the same ids on {c['tokenizer_agreement']:.0%}.", "",
            "```bash", f"ollama create {name} -f Modelfile", f'ollama run {name} "{EXAMPLE["haw-en"]}"', "```", "",
            "The Modelfile carries the chat template and the system prompt the model was trained with; "
            "other runtimes need the same system prompt.", ""]


# ---------------------------------------------------------------- the card

def base_card_metadata(model: str) -> dict:
    """Front matter of the base model's own card, from its folder or the Hub cache (no network)."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.repocard import metadata_load

    card = Path(model) / "README.md"
    if not card.is_file() and not Path(model).exists():
        cached = try_to_load_from_cache(model, "README.md")
        card = Path(cached) if isinstance(cached, str) else card
    return (metadata_load(card) or {}) if card.is_file() else {}


def is_random_tiny(model: str) -> bool:
    card = Path(model) / "README.md"
    return card.is_file() and "random weights" in card.read_text(encoding="utf-8")


def license_of(model: str, base_meta: dict) -> tuple[str, str]:
    """(license id, sentence for the card)."""
    if is_random_tiny(model):
        return "other", f"The base `{model}` is the lab's own random-init model; it has no upstream license."
    if base_meta.get("license"):
        return base_meta["license"], f"The base model's license: `{base_meta['license']}` (from its model card)."
    if "gemma" in model.lower():
        return "gemma", ("Gemma is provided under the Gemma Terms of Use "
                         "(https://ai.google.dev/gemma/terms); this derivative is subject to them.")
    return "other", f"The base model's license is not known here: check the license of `{model}` before use."


def fmt(loss) -> str:
    return f"{loss:.4f}" if isinstance(loss, (int, float)) else "not measured"


def front_matter(meta: dict) -> str:
    import yaml

    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def eval_summary(run_dir: Path):
    """(path, summary) of the run's evaluation: eval/ (the whole test set) first, else the newest eval-*/."""
    found = sorted(run_dir.glob("eval*/summary.json"), key=lambda p: (p.parent.name != "eval", -p.stat().st_mtime))
    return (found[0], read_json(found[0])) if found else (None, None)


def evaluation_section(run_dir: Path, ckpt: str) -> list[str]:
    path, summary = eval_summary(run_dir)
    if summary is None:
        return ["Not evaluated yet: the run has no `eval*/summary.json` "
                f"(`make eval RUN={run_dir.name}` writes one)."]
    ckpts = summary["checkpoints"]
    n = next(iter(ckpts.values())).get("n")
    boot = summary.get("bootstrap", {})
    lines = [f"From `{path}`: {n} test segments, "
             f"paired bootstrap vs base ({boot.get('samples')} samples, seed {boot.get('seed')}).", "",
             "| row | iteration | BLEU | chrF++ | TER | semsim | test ppl | own ref. @1 % | names recall % |",
             "|---|---|---|---|---|---|---|---|---|"]
    if summary.get("test_set") == "sealed":
        lines[0] += f" The sealed test set ({summary.get('sealed_looks')} looks when this was scored)."

    def cell(c, key):
        if c.get(key) is None:
            return "–"
        from olelo import scores

        return f"{c[key]:.2f}" + scores.p_note(c.get("vs_base", {}).get("metrics", {}).get(key))

    for name, c in {**(summary.get("baselines") or {}), **ckpts}.items():
        label = f"**{name} (this model)**" if name == ckpt else name
        extra = [f"{c[k]:{f}}" if c.get(k) is not None else "–" for k, f in (("semsim", ".3f"), ("test_ppl", ".1f"))]
        extra += [f"{100 * v:.1f}" if v is not None else "–"
                  for v in ((c.get("own_reference") or {}).get("accuracy"), (c.get("names") or {}).get("recall"))]
        lines.append(f"| {label} | {c.get('iteration') if c.get('iteration') is not None else '–'} | {cell(c, 'bleu')} | "
                     f"{cell(c, 'chrf')} | {cell(c, 'ter')} | {' | '.join(extra)} |")
    lines += ["", "p: two-sided paired bootstrap resampling against the base model (sacrebleu); * p < 0.05. "
              "`make eval` scores base + adapter, not this fused folder: the fuse check below says how "
              "closely the two agree.", "",
              "sacrebleu signatures:", ""]
    sigs = next(iter(ckpts.values())).get("signatures", {})
    lines += [f"- {k}: `{v}`" for k, v in sigs.items()]
    if ckpt not in ckpts:
        lines += ["", f"The fused checkpoint `{ckpt}` was not among the evaluated checkpoints."]
    elif ckpts[ckpt].get("vs_base"):
        lines += ["", "This checkpoint against the base: " + "; ".join(ckpts[ckpt]["vs_base"]["verdicts"]) + "."]
    beyond = ckpts.get(ckpt, {}).get("beyond_translation_memory")
    if beyond:
        p = "identical scores" if beyond["p_value"] is None else f"p={beyond['p_value']:.3f}"
        lines += ["", f"Translates beyond translation memory (the English of the nearest training pair): "
                      f"**{beyond['answer']}** (chrF++ Δ {beyond['delta']:+.2f}, {p}). Own ref. @1: how often an "
                      f"output is closer to its own reference than to any other test reference (chance 1/n)."]
    return lines


def verification_section(v: dict) -> list[str]:
    if v.get("status") == "skipped":
        return [f"Not checked ({v.get('reason')})."]
    rows = v["prompts"]
    lines = [f"This fused model against base + adapter: **{v['status']}** token ids ({v['method']}); "
             f"the log-probabilities of the first generated token differ by at most "
             f"{v['max_first_step_logprob_diff']:.2g}."]
    if not v["identical"]:
        differ = [str(r["first_difference"]) for r in rows if not r["identical"]]
        lines += ["", f"{len(differ)} of {len(rows)} prompts differ (first differing token: {', '.join(differ)})."]
    if v.get("explanation"):
        lines += ["", f"Why: {v['explanation']}."]
    return lines


def model_card(fused: Path, repo: str, gguf: tuple[Path, dict] | None = None) -> str:
    rec = fused_record(fused)
    run_dir = Path(rec["run_dir"])
    manifest = read_json(run_dir / "manifest.json") or {}
    model = rec["base_model"]
    base_meta = base_card_metadata(model)
    license_id, license_note = license_of(model, base_meta)
    tiny = is_random_tiny(model)
    data_dir = manifest.get("data_dir") or manifest.get("data", {}).get("path", "")
    data_manifest = read_json(Path(data_dir) / "manifest.json") or {}
    quantized = (read_json(fused / "config.json") or {}).get("quantization")

    meta = {} if Path(model).exists() else {"base_model": model}
    meta.update({"language": ["haw", "en"], "library_name": "mlx", "pipeline_tag": "text-generation",
                 "license": license_id, "tags": ["mlx", "lora", "hawaiian", "translation"]})

    best = manifest.get("best") or {}
    git = manifest.get("git") or {}
    packages = manifest.get("environment", {}).get("packages", {})
    directions = data_manifest.get("directions") or ["haw-en"]
    config_yaml = run_dir / "config.yaml"

    L = [front_matter(meta), f"# {repo}", ""]
    if tiny:
        L += [f"> **Random weights: a pipeline test, not a translator.** The base, `{model}`, is the lab's tiny "
              "random-init model, so this model's output is gibberish.", ""]
    L += [f"`{model}` fine-tuned with LoRA for Hawaiian ↔ English translation ({', '.join(directions)}), "
          f"with the adapters fused into the weights by `mlx_lm.fuse`. Made with olelo-mlx and "
          f"[mlx-lm](https://github.com/ml-explore/mlx-lm): run `{rec['run']}`, checkpoint `{rec['checkpoint']}`.", "",
          "## Use", "", "```python", "from mlx_lm import load, generate", "",
          f'model, tokenizer = load("{repo}")', "messages = [",
          f'    {{"role": "system", "content": {json.dumps(olelo.system_prompt(directions[0]), ensure_ascii=False)}}},',
          f'    {{"role": "user", "content": "{EXAMPLE[directions[0]]}"}},', "]",
          "prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True)",
          "print(generate(model, tokenizer, prompt=prompt, max_tokens=256))", "```", "",
          "Training used exactly this system prompt (olelo.prompt_messages); keep it.", "",
          "## Training", "",
          "| | |", "|---|---|",
          f"| run | `{rec['run']}` ({manifest.get('status', '?')}, {manifest.get('iters', '?')} iterations planned) |",
          f"| fused checkpoint | `{rec['checkpoint']}`: iteration {rec.get('iteration')}, val loss {fmt(rec.get('val_loss'))} |",
          f"| best checkpoint (by {best.get('criterion', 'val_loss')}, on validation) | iteration {best.get('iteration')}: "
          f"val loss {fmt(best.get('val_loss'))}"
          + (f", val chrF++ {fmt(best['val_chrf'])}" if "val_chrf" in best else "") + " |",
          f"| git commit | `{git.get('commit') or 'unknown'}`{' (uncommitted changes)' if git.get('dirty') else ''} |",
          f"| packages | {', '.join(f'{k} {v}' for k, v in packages.items())} |", "",
          "Training command (the lab adds `-c config.yaml --adapter-path adapters/<stamp>`):", "",
          "```bash", shlex.join(manifest.get("mlx_lm_command", [])), "```", ""]
    if config_yaml.is_file():
        L += ["config.yaml:", "", "```yaml", config_yaml.read_text(encoding="utf-8").rstrip(), "```", ""]
    L += ["Fused with:", "", "```bash", shlex.join(rec["command"]), "```", "",
          f"Adapter sha256 `{rec['adapter_sha256']}`.", "",
          "## Data", "",
          f"Parallel Hawaiian–English text of the {SOURCE_TEXT}, from the public repository "
          f"[{SOURCE_REPO}](https://github.com/{SOURCE_REPO}/tree/{SOURCE_COMMIT}) at commit `{SOURCE_COMMIT}`. "
          f"Dataset `{manifest.get('dataset', '?')}`"
          + (f", split with seed {data_manifest['seed']}" if "seed" in data_manifest else "") + ":", "",
          "| split | records | sha256 |", "|---|---|---|"]
    counts = {s: c["records"] for s, c in data_manifest.get("counts", {}).items()}
    for split in ("train", "valid", "test"):
        if split not in counts and (Path(data_dir) / f"{split}.jsonl").is_file():
            counts[split] = len(olelo.read_jsonl(Path(data_dir) / f"{split}.jsonl"))
        L.append(f"| {split} | {counts.get(split, '?')} | `{manifest.get('data', {}).get(f'{split}_sha256')}` |")
    if data_manifest.get("input"):
        L += ["", f"Converted from `{data_manifest['input']['path']}` (sha256 `{data_manifest['input']['sha256']}`) "
              f"by the lab's convert and split steps; every split's sha256 was recorded when training started."]
    L += ["", "## Evaluation", "", *evaluation_section(run_dir, rec["checkpoint"]), "",
          "## Fuse check", "", *verification_section(rec["verification"]), "",
          *(gguf_section(*gguf, repo) if gguf else []),
          "## Limitations", "",
          "- The Hawaiian of the training text is in the old orthography of 1916–1920 (no ʻokina, no kahakō; "
          "’ marks an elided vowel), and the English follows those translators' style. Modern Hawaiian "
          "spelling and other registers are outside what it was trained on.",
          f"- Small data: {counts.get('train', 'few')} training records from one source; "
          "scores come from one reference translation per segment.",
          "- Translations can be fluent and wrong. Have a Hawaiian speaker review anything that matters."]
    if quantized:
        L.append(f"- {quantized.get('bits')}-bit quantized weights: the fused weights were quantized again after "
                 "adding the LoRA update (see the fuse check).")
    if tiny:
        L.append("- Random-weight base: this model exists to test the pipeline.")
    L += ["", "## License", "", license_note, "",
          f"<sub>Card generated by olelo-mlx scripts/upload.py from `{fused.name}/olelo_fuse.json` "
          f"and `{run_dir}`.</sub>", ""]
    return "\n".join(L)


# ---------------------------------------------------------------- upload
