"""Score a run's evaluated checkpoints and write what a person reads.

    python scripts/eval_report.py --run runs/<stamp> --eval-dir runs/<stamp>/eval

Reads <eval-dir>/<ckpt>/hyps.jsonl and ppl.json for every checkpoint there
(base, final, best, ckpt-NNNNNNN), and writes into <eval-dir>:
  summary.json  per checkpoint BLEU, chrF++, TER (with sacrebleu signatures),
                semantic similarity, test loss/ppl, paired bootstrap vs base
                (p-values, 95 % CI), and the best checkpoint by each metric
  summary.md    the same as a table
  ab.md, ab.csv base vs the best fine-tuned checkpoint (by chrF++), sentence by
                sentence, biggest chrF++ differences first
  scores.png    val loss and chrF++ against iteration; loss.png train/val curves
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import olelo
import score
import semsim

HIGHER_BETTER = {"bleu": True, "chrf": True, "ter": False, "semsim": True, "test_ppl": False}


def ckpt_iteration(name: str, manifest: dict, adapter_dir: Path):
    if name == "base":
        return 0
    if name == "best":
        best = adapter_dir / "best" / "best.json"
        return json.loads(best.read_text())["iteration"] if best.is_file() else None
    if name == "final":
        metrics = Path(manifest["run_dir"]) / "metrics.jsonl"
        its = [json.loads(line)["iteration"] for line in metrics.read_text().splitlines() if line.strip()]
        return max(its, default=manifest["iters"])
    return int(name.removeprefix("ckpt-"))


def evaluate_checkpoints(eval_dir: Path, manifest: dict, bootstrap: int, seed: int) -> dict:
    names = sorted((d.name for d in eval_dir.iterdir() if (d / "hyps.jsonl").is_file()),
                   key=lambda n: (n != "base", n))
    if "base" not in names:
        raise olelo.UserError(f"{eval_dir}/base/hyps.jsonl missing: the base model is what every checkpoint is compared with")
    rows = {n: olelo.read_jsonl(eval_dir / n / "hyps.jsonl") for n in names}
    refs = [r["reference"] for r in rows["base"]]
    base_hyps = [r["hypothesis"] for r in rows["base"]]
    semsim_ok = semsim.unavailable_reason() is None
    out = {}
    for n in names:
        hyps = [r["hypothesis"] for r in rows[n]]
        if [r["id"] for r in rows[n]] != [r["id"] for r in rows["base"]]:
            raise olelo.UserError(f"{eval_dir}/{n}/hyps.jsonl covers other test ids than base; delete it and rerun")
        s = score.score_corpus(hyps, refs)
        entry = {
            "iteration": ckpt_iteration(n, manifest, Path(manifest["adapter_dir"])),
            "bleu": s["bleu"]["score"], "chrf": s["chrf"]["score"], "ter": s["ter"]["score"],
            "signatures": {k: s[k]["signature"] for k in ("bleu", "chrf", "ter")},
            "chrf_sentences": s["chrf_sentences"],
            "n": len(hyps),
        }
        if semsim_ok:
            entry["semsim"] = semsim.mean_cosine(hyps, refs)
        ppl = eval_dir / n / "ppl.json"
        if ppl.is_file():
            entry.update({k: json.loads(ppl.read_text())[k] for k in ("test_loss", "test_ppl")})
        if n != "base":
            entry["vs_base"] = score.compare(base_hyps, hyps, refs, n_samples=bootstrap, seed=seed)
        out[n] = entry
    return out


def best_by(ckpts: dict) -> dict:
    best = {}
    for metric, higher in HIGHER_BETTER.items():
        have = {n: c[metric] for n, c in ckpts.items() if c.get(metric) is not None}
        if have:
            best[metric] = (max if higher else min)(have, key=have.get)
    return best


def summary_markdown(stamp: str, ckpts: dict, best: dict) -> str:
    def cell(n, metric, fmt):
        c = ckpts[n]
        if c.get(metric) is None:
            return "–"
        text = fmt.format(c[metric])
        vs = c.get("vs_base", {}).get("metrics", {}).get(metric)
        if vs:
            text += f" (p={vs['p_value']:.3f}{'*' if vs['significant'] else ''})"
        return f"**{text}**" if best.get(metric) == n else text

    lines = [f"# Evaluation of {stamp}", "",
             "| checkpoint | iteration | BLEU | chrF++ | TER | semsim | test ppl |", "|---|---|---|---|---|---|---|"]
    for n in ckpts:
        lines.append(f"| {n} | {ckpts[n]['iteration']} | {cell(n, 'bleu', '{:.2f}')} | {cell(n, 'chrf', '{:.2f}')} | "
                     f"{cell(n, 'ter', '{:.2f}')} | {cell(n, 'semsim', '{:.3f}')} | {cell(n, 'test_ppl', '{:.1f}')} |")
    sig = next(iter(ckpts.values()))["signatures"]
    lines += ["", "Bold: best checkpoint by that metric. p: paired bootstrap vs base "
              "(sacrebleu, two-sided); * marks p < 0.05.", "", "Signatures:", ""]
    lines += [f"- {k}: `{v}`" for k, v in sig.items()]
    lines += ["", "Verdicts (each checkpoint vs base):", ""]
    for n, c in ckpts.items():
        if "vs_base" in c:
            lines.append(f"- {n}: " + "; ".join(c["vs_base"]["verdicts"]))
    return "\n".join(lines) + "\n"


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


def plot(run_dir: Path, eval_dir: Path, ckpts: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    fig, ax = plt.subplots(figsize=(7, 4))
    for kind, key in (("train", "train_loss"), ("val", "val_loss")):
        pts = [(m["iteration"], m[key]) for m in metrics if m["type"] == kind]
        if pts:
            ax.plot(*zip(*pts), marker="o", ms=3, label=f"{kind} loss")
    ax.set(xlabel="iteration", ylabel="loss", title=run_dir.name)
    ax.legend()
    fig.tight_layout()
    fig.savefig(eval_dir / "loss.png", dpi=120)
    plt.close(fig)

    fig, ax1 = plt.subplots(figsize=(7, 4))
    vals = [(m["iteration"], m["val_loss"]) for m in metrics if m["type"] == "val"]
    if vals:
        ax1.plot(*zip(*vals), color="tab:blue", marker="o", ms=3, label="val loss")
    ax1.set(xlabel="iteration", ylabel="val loss")
    ax2 = ax1.twinx()
    pts = sorted((c["iteration"], c["chrf"]) for c in ckpts.values() if c["iteration"] is not None)
    ax2.plot(*zip(*pts), color="tab:red", marker="s", ls="--", label="chrF++ (test)")
    ax2.set_ylabel("chrF++")
    handles = ax1.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax1.legend(handles=handles, loc="best")
    ax1.set_title(f"{run_dir.name}: val loss and test chrF++")
    fig.tight_layout()
    fig.savefig(eval_dir / "scores.png", dpi=120)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True)
    p.add_argument("--eval-dir", required=True)
    p.add_argument("--bootstrap", type=int, default=1000, help="paired bootstrap samples")
    p.add_argument("--seed", type=int, default=12345)
    a = p.parse_args()
    run_dir = olelo.resolve_run(a.run)
    eval_dir = Path(a.eval_dir)
    manifest = {**olelo.run_manifest(run_dir), "run_dir": str(run_dir)}
    ckpts = evaluate_checkpoints(eval_dir, manifest, a.bootstrap, a.seed)
    best = best_by(ckpts)
    summary = {"run": manifest["stamp"], "model": manifest["model"], "test_data": manifest["data_dir"] + "/test.jsonl",
               "bootstrap": {"samples": a.bootstrap, "seed": a.seed}, "best_by": best,
               "semsim_unavailable": semsim.unavailable_reason(),
               "checkpoints": {n: {k: v for k, v in c.items() if k != "chrf_sentences"} for n, c in ckpts.items()}}
    olelo.atomic_write_json(eval_dir / "summary.json", summary)
    olelo.atomic_write_text(eval_dir / "summary.md", summary_markdown(manifest["stamp"], ckpts, best))

    tuned = {n: c for n, c in ckpts.items() if n != "base"}
    if tuned:
        ft = max(tuned, key=lambda n: tuned[n]["chrf"])
        base_rows = olelo.read_jsonl(eval_dir / "base" / "hyps.jsonl")
        ft_rows = olelo.read_jsonl(eval_dir / ft / "hyps.jsonl")
        rows = ab_rows(base_rows, ft_rows, ckpts["base"]["chrf_sentences"], ckpts[ft]["chrf_sentences"])
        olelo.atomic_write_text(eval_dir / "ab.md", ab_markdown(rows, ft))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
        olelo.atomic_write_text(eval_dir / "ab.csv", buf.getvalue())
    plot(run_dir, eval_dir, ckpts)
    print(f"wrote {eval_dir}/summary.json, summary.md, ab.md, ab.csv, loss.png, scores.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
