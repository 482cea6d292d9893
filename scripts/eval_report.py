"""Score a run's evaluated checkpoints against baselines and write what a person reads.

    python scripts/eval_report.py --run runs/<stamp> --eval-dir runs/<stamp>/eval

Reads <eval-dir>/<name>/hyps.jsonl (and ppl.json) of every folder there and scores
two kinds of rows on the same test sentences:
  baselines    base               the base model, zero-shot, the training prompt
               copy-source        the source sentence itself as the translation
                                  (names and shared words score; a fine-tuned model
                                  that does not beat it has not learned to translate)
               base-fewshot<k>-s<seed>  the base model with k train examples first
                                  (translate.py --prompt fewshot; when evaluated)
  checkpoints  best               adapters/<stamp>/best: chosen on VALIDATION during
                                  training. This is the headline row.
               final, ckpt-NNNNNNN  the rest of the sweep
Each row: BLEU, chrF++, TER (sacrebleu signatures), loop rate and length ratio
(defined in score.py), semantic similarity, test loss/ppl, and a paired bootstrap
vs base (p, 95 % CI). Each checkpoint is also tested against every other baseline
on chrF++ and BLEU (TER is left out there: it takes minutes on long paragraphs).

"test_posthoc" names, per metric, the checkpoint that scored highest on the TEST
set. It is a post-hoc view: choosing on the test set flatters the chosen one, so it
is never the result to report; "best" alone always means the validation choice.

Writes into <eval-dir>: summary.json, summary.md, ab.md / ab.csv (base vs the
headline checkpoint, sentence by sentence, biggest chrF++ differences first),
loss.png (training curves) and scores.png (the checkpoint sweep with CIs).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import olelo
from olelo.defaults import DEFAULTS
from olelo import records
from olelo import plots
from olelo import identity
from olelo import scores
from olelo import segment_stats
from olelo import semsim
from olelo import evaluation
from olelo import ledger
from olelo import summaries

HIGHER_BETTER = {"bleu": True, "chrf": True, "ter": False, "semsim": True, "test_ppl": False}
POSTHOC_NOTE = ("highest on the TEST set among the fine-tuned checkpoints: a post-hoc view (selection on test "
                "flatters it), never the result to report; the headline is the checkpoint chosen on validation")
SECONDARY = ("chrf", "bleu")  # metrics of the comparisons against copy-source and few-shot


def ckpt_iteration(name: str, metrics: list[dict], manifest: dict, adapter_dir: Path):
    if name == "base" or name.startswith("base-"):
        return 0
    if name == "best":
        best = adapter_dir / "best" / "best.json"
        return json.loads(best.read_text())["iteration"] if best.is_file() else None
    if name == "final":  # the iteration of the weights final holds, not the newest report's
        return records.final_iteration(manifest, metrics)
    return int(name.removeprefix("ckpt-"))


def evaluate(eval_dir: Path, metrics: list[dict], manifest: dict, test_file: Path, bootstrap: int, seed: int):
    """(baselines, checkpoints, scored, outputs): rows by name, evaluation.score_systems's
    result, and the model systems' output rows (kept beside the summary)."""
    names = sorted(d.name for d in eval_dir.iterdir() if (d / "hyps.jsonl").is_file())
    if "base" not in names:
        raise olelo.UserError(f"{eval_dir}/base/hyps.jsonl missing: the base model is what every checkpoint is compared with")
    rows = {n: olelo.read_jsonl(eval_dir / n / "hyps.jsonl") for n in names}
    ids = [r["id"] for r in rows["base"]]
    for n in names:
        if [r["id"] for r in rows[n]] != ids:
            raise olelo.UserError(f"{eval_dir}/{n}/hyps.jsonl covers other test ids than base; delete it and rerun")
    test = evaluation.pairs_of(evaluation.test_records(test_file, ids))
    train_file = Path(manifest["data_dir"]) / "train.jsonl"
    if not train_file.is_file():
        raise olelo.UserError(f"{train_file}: no such file; the reference baselines (translation memory, "
                              f"length-matched) answer from the run's training split: rebuild the data (make data)")
    train = evaluation.pairs_of(olelo.read_jsonl(train_file))
    model_baselines = ["base"] + [n for n in names if n.startswith("base-")]
    order = model_baselines + [n for n in names if n not in model_baselines]
    systems = {n: [r["hypothesis"] for r in rows[n]] for n in order}
    scored = evaluation.score_systems(test, train, systems, bootstrap=bootstrap, seed=seed,
                                      semsim_ok=semsim.unavailable_reason() is None,
                                      progress=lambda m: print(m, file=sys.stderr))
    adapter_dir = Path(manifest["adapter_dir"])
    out = {}
    for n, scores_of_n in scored["rows"].items():
        row = {"iteration": ckpt_iteration(n, metrics, manifest, adapter_dir) if n in systems else None,
               **scores_of_n}
        ppl = eval_dir / n / "ppl.json"
        if ppl.is_file():
            row.update({k: json.loads(ppl.read_text())[k] for k in ("test_loss", "test_ppl")})
        prompt = eval_dir / n / "prompt.json"
        if prompt.is_file():
            row["prompt"] = json.loads(prompt.read_text())
        out[n] = row
    baseline_names = model_baselines + list(evaluation.REFERENCE_BASELINES)
    baselines = {n: out[n] for n in baseline_names}
    return baselines, {n: r for n, r in out.items() if n not in baselines}, scored, {n: rows[n] for n in order}


def choose_headline(ckpts: dict, adapter_dir: Path) -> dict | None:
    """The row to report: the checkpoint chosen on validation (best/), else final."""
    best_json = adapter_dir / "best" / "best.json"
    chosen = json.loads(best_json.read_text()) if best_json.is_file() else None
    if "best" in ckpts:
        name = "best"
    elif chosen and olelo.runs.ckpt_name(str(chosen["iteration"])) in ckpts:
        name = olelo.runs.ckpt_name(str(chosen["iteration"]))
    elif "final" in ckpts:
        return {"checkpoint": "final", "iteration": ckpts["final"]["iteration"],
                "selected_on": "none: no validation choice was evaluated (EVAL_CKPTS lacks best)"}
    else:
        return None
    # best.json names its criterion (val_loss or val_chrf); records from before it existed chose on val loss.
    criterion = (chosen or {}).get("criterion", "val_loss")
    return {"checkpoint": name, "iteration": ckpts[name]["iteration"], "selected_on": f"validation ({criterion})",
            "selection": chosen}


def test_posthoc(ckpts: dict) -> dict:
    by = {}
    for metric, higher in HIGHER_BETTER.items():
        have = {n: c[metric] for n, c in ckpts.items() if c.get(metric) is not None}
        if have:
            by[metric] = (max if higher else min)(have, key=have.get)
    return by


def _num(x, fmt):
    return "–" if x is None else fmt.format(x)


def summary_markdown(summary: dict, ckpts_all: dict) -> str:
    baselines, ckpts = summary["baselines"], summary["checkpoints"]
    head = summary["headline"]
    posthoc = summary["test_posthoc"]["by_metric"]

    def cell(n, metric, fmt):
        c = ckpts_all[n]
        if c.get(metric) is None:
            return "–"
        text = fmt.format(c[metric])
        vs = (c.get("vs_base") or {}).get("metrics", {}).get(metric)
        ci = summaries.base_ci(summary) if n == "base" else summaries.chrf_ci(c)
        if metric == "chrf" and ci:
            text += f" ±{ci:.2f}"
        text += scores.p_note(vs)  # none beside identical scores
        return text + (" †" if posthoc.get(metric) == n else "")

    def label(n):
        if head and n == head["checkpoint"]:
            how = "chosen on validation" if head["selected_on"].startswith("validation") else "no validation choice"
            return f"**{n}** ({how})"
        return n

    order = list(baselines) + ([head["checkpoint"]] if head else []) + \
        sorted((n for n in ckpts if not head or n != head["checkpoint"]), key=lambda n: (ckpts[n]["iteration"] or 0, n))
    lines = [f"# Evaluation of {summary['run']}", "", test_set_line(summary), ""]
    if significance_line(summary):
        lines += [significance_line(summary), ""]
    if head:
        h = ckpts[head["checkpoint"]]
        lines.append(f"Headline: **{head['checkpoint']}** (iteration {head['iteration']}; selected on "
                     f"{head['selected_on']}) — {headline_sentence(h, baselines)}")
        lines.append("")
    lines += ["| row | iteration | BLEU | chrF++ ±95% CI | TER | loops | length | semsim | test ppl |",
              "|---|---|---|---|---|---|---|---|---|"]
    for n in order:
        c = ckpts_all[n]
        lines.append(f"| {label(n)} | {_num(c['iteration'], '{}')} | {cell(n, 'bleu', '{:.2f}')} | "
                     f"{cell(n, 'chrf', '{:.2f}')} | {cell(n, 'ter', '{:.2f}')} | {c['loop_rate']:.3f} | "
                     f"{_num(c['length_ratio'], '{:.2f}')} | {cell(n, 'semsim', '{:.3f}')} | "
                     f"{cell(n, 'test_ppl', '{:.1f}')} |")
    d = summary["definitions"]
    lines += ["", "p: paired bootstrap vs base (sacrebleu, two-sided); * marks p < 0.05. "
              "copy-source: the source sentence as the translation.",
              f"† {POSTHOC_NOTE}.",
              f"loops: {d['loop_rate']} (references: {summary['reference']['loop_rate']:.3f}). "
              f"length: {d['length_ratio']}.", "", "Signatures:", ""]
    lines += [f"- {k}: `{v}`" for k, v in next(iter(baselines.values()))["signatures"].items()]
    lines += ["", "## Does it translate?", "",
              "Reference baselines need no model: translation memory answers with the nearest training pair's "
              "target, length-matched with unrelated in-domain text of the right length. Own reference: is the "
              "output closest to its own reference among all test references? Names: are the source's names "
              "carried over?", ""]
    lines += evaluation.rows_markdown(summary, order, with_scores=False)
    lines += [""] + evaluation.verdict_lines(ckpts_all, [n for n in order if ckpts_all[n].get("beyond_translation_memory")])
    lm = summary["reference_baselines"]["length-matched"]
    lines += ["", f"length-matched over {len(lm['draws'])} draws: chrF++ {lm['chrf_mean']:.2f} ± {lm['chrf_sd']:.2f} (sd)."]
    lines += ["", "Verdicts:", ""]
    for n in order:
        c = ckpts_all[n]
        for b, vs in [("base", c.get("vs_base"))] + list((c.get("vs_baselines") or {}).items()):
            if vs:  # compare() calls the two sides "base" and "system": name them
                named = [v.replace("system", "\0").replace("base", b).replace("\0", n) for v in vs["verdicts"]]
                lines.append(f"- {n} vs {b}: " + "; ".join(named))
    return "\n".join(lines) + "\n"


def decoding_summary(eval_dir: Path, outputs: dict) -> dict | None:
    """The decoding settings (base/decode.json; every system is decoded alike) and, with the
    loop stop, how many outputs of each system it stopped."""
    decode = eval_dir / "base" / "decode.json"
    decoding = json.loads(decode.read_text()).get("decoding") if decode.is_file() else None
    if decoding and decoding.get("loop_stop"):
        decoding = {**decoding, "loop_stopped": {n: sum(bool(r.get("loop_stopped")) for r in rows)
                                                 for n, rows in outputs.items()}}
    return decoding


def test_set_line(summary: dict) -> str:
    n = next(iter(summary["baselines"].values()))["n"]
    line = f"Test set: {summary['test_data']} ({n} sentences)"
    if summary.get("test_set") == "sealed":
        line += f", the SEALED test: look {summary.get('sealed_looks', '?')} in the ledger ({ledger.LEDGER_NAME})"
    caps = summary.get("lengths")
    if caps:
        line += (f". Generation cap {caps['max_tokens']} tokens ({caps['set_by']}): {caps['references_over_cap']} "
                 f"of {caps['references']} references are longer")
    decoding = summary.get("decoding")
    if decoding:
        line += ". Decoding: greedy"
        if decoding.get("loop_stop"):
            stopped = ", ".join(f"{n} {k}" for n, k in (decoding.get("loop_stopped") or {}).items())
            line += f", loop stop on (outputs stopped when they started to loop: {stopped or 'none'})"
            if decoding.get("replay"):
                line += f", replayed: {decoding['replay']}"
        if decoding.get("repetition_penalty") is not None:
            line += (f", repetition penalty {decoding['repetition_penalty']} over "
                     f"{decoding['repetition_context_size']} tokens")
    return line + "."


def called(m: dict, vs: dict) -> str:
    if m["significant"]:
        return ", significant"
    below = m["p_value"] is not None and m["p_value"] < scores.ALPHA
    return ", not called: too small a sample" if below and vs.get("too_small") else ""


def significance_line(summary: dict) -> str:
    """Why no p-value here is called significant ('' where one may be)."""
    why = summary.get("too_small")
    return f"**Too small to call a difference.** {why[0].upper()}{why[1:]}." if why else ""


def headline_sentence(h: dict, baselines: dict) -> str:
    parts = [f"chrF++ {h['chrf']:.2f}"]
    for b, vs in [("base", h.get("vs_base"))] + list((h.get("vs_baselines") or {}).items()):
        m = (vs or {}).get("metrics", {}).get("chrf")
        if m:
            p = f"p={m['p_value']:.3f}{called(m, vs)}" if scores.p_note(m) else "identical"
            parts.append(f"vs {b} {baselines[b]['chrf']:.2f}: Δ {m['delta']:+.2f} ({p})")
    return "; ".join(parts)


def ab_rows(base_rows, ft_rows, base_chrf, ft_chrf):
    rows = []
    for b, f, cb, cf in zip(base_rows, ft_rows, base_chrf, ft_chrf):
        rows.append({"id": b["id"], "source": b["source"], "reference": b["reference"], "base": b["hypothesis"],
                     "fine_tuned": f["hypothesis"], "chrf_base": round(cb, 2), "chrf_fine_tuned": round(cf, 2),
                     "delta": round(cf - cb, 2)})
    return sorted(rows, key=lambda r: -abs(r["delta"]))


def ab_markdown(rows, ft_name: str) -> str:
    def esc(s):
        return s.replace("|", "\\|").replace("\n", " ")

    lines = [f"# A/B: base vs {ft_name}", "", "Sorted by |chrF++ delta|: the biggest wins (+) and losses (−) first.", "",
             "| delta | id | source | reference | base | fine-tuned |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['delta']:+.2f} | {r['id']} | {esc(r['source'])} | {esc(r['reference'])} | "
                     f"{esc(r['base'])} | {esc(r['fine_tuned'])} |")
    return "\n".join(lines) + "\n"


def write_ab(eval_dir: Path, rows_all: dict, ft: str) -> None:
    base_rows = olelo.read_jsonl(eval_dir / "base" / "hyps.jsonl")
    ft_rows = olelo.read_jsonl(eval_dir / ft / "hyps.jsonl")
    rows = ab_rows(base_rows, ft_rows, rows_all["base"]["chrf_sentences"], rows_all[ft]["chrf_sentences"])
    olelo.atomic_write_text(eval_dir / "ab.md", ab_markdown(rows, f"{ft} (the headline checkpoint)"))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    olelo.atomic_write_text(eval_dir / "ab.csv", buf.getvalue())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True)
    p.add_argument("--eval-dir", required=True)
    p.add_argument("--bootstrap", type=int, default=DEFAULTS["BOOTSTRAP"],
                   help="paired bootstrap samples (default: %(default)s)")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--sealed", action="store_true",
                   help="score the SEALED test set (make eval SEALED=1): one look, recorded in <runs>/sealed-ledger.tsv")
    a = p.parse_args()
    if a.bootstrap < 1:
        raise olelo.UserError(f"--bootstrap (BOOTSTRAP)={a.bootstrap}: must be a whole number >= 1")
    if a.seed < 1:
        raise olelo.UserError(f"--seed={a.seed}: must be a whole number >= 1 (sacrebleu runs unseeded at 0)")
    run_dir = olelo.resolve_run(a.run)
    eval_dir = Path(a.eval_dir)
    manifest = olelo.run_manifest(run_dir)
    split = "sealed" if a.sealed else "test"
    data = manifest.get("data") or {}
    if a.sealed and not data.get("sealed_sha256"):
        raise olelo.UserError(f"run {manifest['stamp']} was trained on {manifest['data_dir']}, which has no sealed "
                              f"test set (a story split, make data SPLIT=stories, has one)")
    records.require_finished(run_dir, manifest, "score")
    # The test set must be the run's; the model need not be here: scoring reads outputs that
    # translate.py made (and checked against the run's model) wherever the model was, e.g. a
    # 4-bit run's translations made on the GPU machine, whose quantized weights differ from this one's.
    identity.require_unchanged(manifest, "be scored", splits=(split,), model_too=False, remedy=(
        f"Score it on the test set it was trained with (rebuild that data: {identity.rebuild_hint(manifest)}), "
        f"or train a new run (FORCE=1)"))
    test_file = Path(manifest["data_dir"]) / f"{split}.jsonl"
    metrics = records.read_metrics(run_dir)
    # per-segment statistics cached beside the runs (RUNS_DIR/.segment-stats): a report written again,
    # and every evaluation of the same test set, extracts only what it has not seen (copy-source, base...)
    with segment_stats.using(segment_stats.runs_store(run_dir.parent)):
        baselines, ckpts, scored, outputs = evaluate(eval_dir, metrics, manifest, test_file, a.bootstrap, a.seed)
    rows_all = {**baselines, **ckpts}

    def strip(rows):
        return {n: {k: v for k, v in c.items() if k != "chrf_sentences"} for n, c in rows.items()}

    decode = eval_dir / "base" / "decode.json"
    summary = {
        "run": manifest["stamp"], "model": manifest["model"], "test_data": str(test_file), "test_set": split,
        "run_record": records.run_record(manifest),  # the run as scored: stale once it moves on
        "bootstrap": {"samples": a.bootstrap, "seed": a.seed},
        "too_small": scores.too_small(next(iter(baselines.values()))["n"], a.bootstrap),
        "test_sha256": data.get(f"{split}_sha256"),
        "headline": choose_headline(ckpts, Path(manifest["adapter_dir"])),
        "test_posthoc": {"note": POSTHOC_NOTE, "by_metric": test_posthoc(ckpts)},
        "definitions": evaluation.DEFINITIONS,
        "reference": scored["reference"],
        "reference_baselines": scored["reference_baselines"],
        "lengths": json.loads(decode.read_text()) if decode.is_file() else None,
        "decoding": decoding_summary(eval_dir, outputs),
        "semsim_unavailable": semsim.unavailable_reason(),
        "baselines": strip(baselines), "checkpoints": strip(ckpts),
        "outputs": evaluation.write_outputs(eval_dir, outputs),
    }
    # summary.json is make's target: written last, so an interrupted report is redone whole.
    (eval_dir / "summary.json").unlink(missing_ok=True)
    if a.sealed:  # scored: the look is recorded before any sealed number is written
        summary["sealed_looks"] = ledger.record_look(run_dir.parent, manifest["stamp"], eval_dir.name, list(outputs),
                                                     str(test_file), summary["test_sha256"])
    olelo.atomic_write_text(eval_dir / "summary.md", summary_markdown(summary, rows_all))
    if summary["headline"]:
        write_ab(eval_dir, rows_all, summary["headline"]["checkpoint"])
    for name, fig in (("loss.png", plots.loss_figure(metrics, run_dir.name)),
                      ("scores.png", plots.sweep_figure(summary, f"{run_dir.name}: {eval_dir.name}"))):
        olelo.atomic_write_bytes(eval_dir / name, plots.png_bytes(fig, dpi=120))
    olelo.atomic_write_json(eval_dir / "summary.json", summary)
    print(f"wrote {eval_dir}/summary.json, summary.md, ab.md, ab.csv, loss.png, scores.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
