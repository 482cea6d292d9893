# Served NOTES.md: 2026-12-07 "Does stopping at the first loop change the held-out scores?".
"""The loop stop on against off, run by run: every column of the two evaluations side by side,
the mean and sd over each recipe's seeds, and the paired bootstrap of on against off.

    python bench/campaigns/loop_stop_paired.py RUN RUN ... [--off eval-mt256] [--on eval-mt256-loopstop] \
        [--bootstrap 1000] [--json bench/results/loop_stop_held_out.json]

`make compare` pairs runs, not two evaluations of one run; here each row (base, best, final,
base-completion) of a run's stop-off evaluation is paired with the same row of its stop-on one
(same sentences), with the lab's own test (olelo.scores.compare: sacrebleu's paired bootstrap on
BLEU, chrF++ and TER) and Holm's correction over all of them (olelo.compare.holm; a row whose
outputs another run's folder already had, the base in every seed, is tested and counted once). Both
evaluations must be scored (eval_report.py) with kept outputs; the per-segment statistics are
read from RUNS_DIR/.segment-stats, where scoring left them. Seeds' mean and sd use
olelo.compare.seed_stats (runs whose stamps differ only in -s<N> are one recipe).
"""

from __future__ import annotations

import argparse
import shlex
import sys

import olelo
from olelo import compare, evaluation, header, scores, segment_stats

COLUMNS = {  # name in the table: how to read it from a summary row
    "loops %": lambda r: 100 * r["loop_rate"],
    "8-word repeats %": lambda r: 100 * r["repeat8"],
    "length": lambda r: r["length_ratio"],
    "chrF++": lambda r: r["chrf"],
    "BLEU": lambda r: r["bleu"],
    "TER": lambda r: r.get("ter"),
    "own ref @1 %": lambda r: 100 * r["own_reference"]["accuracy"],
    "own ref MRR %": lambda r: 100 * r["own_reference"]["mrr"],
    "names recall %": lambda r: 100 * r["names"]["recall"],
    "names precision %": lambda r: 100 * r["names"]["precision"],
    "semsim": lambda r: r.get("semsim"),
    "Δ chrF++ vs TM": lambda r: (r.get("beyond_translation_memory") or {}).get("delta"),
    "beyond TM": lambda r: (r.get("beyond_translation_memory") or {}).get("answer"),
}


def load(run: str, eval_name: str) -> tuple[dict, dict]:
    _, path, summary = compare.kept_summary(run, eval_name)
    return summary, evaluation.read_outputs(path.parent, summary["outputs"])


def row_of(summary: dict, name: str) -> dict | None:
    return summary["checkpoints"].get(name) or summary["baselines"].get(name)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run stamps or run folders")
    p.add_argument("--off", default="eval-mt256", help="the stop-off evaluation folder (default: %(default)s)")
    p.add_argument("--on", default="eval-mt256-loopstop", help="the stop-on evaluation folder (default: %(default)s)")
    p.add_argument("--bootstrap", type=int, default=1000, help="paired bootstrap resamples (default: %(default)s)")
    p.add_argument("--seed", type=int, default=12345, help="bootstrap seed (default: %(default)s)")
    p.add_argument("--json", help="write the result here (with the bench header)")
    a = p.parse_args(argv)
    if a.bootstrap < 1 or a.seed < 1:
        raise olelo.UserError(f"--bootstrap {a.bootstrap} / --seed {a.seed}: both must be whole numbers >= 1")
    head = header.start("python bench/campaigns/loop_stop_paired.py " + " ".join(map(shlex.quote, a.runs))
                        + f" --off {shlex.quote(a.off)} --on {shlex.quote(a.on)} --bootstrap {a.bootstrap}")
    tested: dict[tuple, tuple] = {}
    result = {"off": a.off, "on": a.on, "bootstrap": {"samples": a.bootstrap, "seed": a.seed}, "rows": [],
              "seeds": {}}
    lines = ["| run | row | " + " | ".join(f"{c} off → on" for c in COLUMNS) + " | Δ chrF++ (p) | Δ BLEU (p) "
             "| Δ TER (p) |", "|---|---|" + "---|" * (len(COLUMNS) + 3)]
    for run in a.runs:
        run_dir = olelo.resolve_run(run)
        off, off_out = load(run, a.off)
        on, on_out = load(run, a.on)
        if (off["test_sha256"], off["test_data"]) != (on["test_sha256"], on["test_data"]):
            raise olelo.UserError(f"{run_dir}: {a.off} and {a.on} were scored on other test sets: no pairing")
        with segment_stats.using(segment_stats.runs_store(run_dir.parent)):
            for name in [n for n in off_out if n in on_out]:
                ids = [r["id"] for r in off_out[name]]
                if ids != [r["id"] for r in on_out[name]]:
                    raise olelo.UserError(f"{run_dir}: {name} has other sentences in {a.off} and {a.on}")
                refs = [t["target"] for t in evaluation.pairs_of(evaluation.test_records(off["test_data"], ids))]
                pair = (tuple(r["hypothesis"] for r in off_out[name]), tuple(r["hypothesis"] for r in on_out[name]),
                        tuple(refs))
                if pair in tested:  # the same base outputs in every seed's folder: one test, counted once
                    c, same_as = tested[pair]
                else:
                    print(f"{run_dir.name} {name}: on vs off", file=sys.stderr)
                    c = scores.compare(list(pair[0]), list(pair[1]), refs, n_samples=a.bootstrap, seed=a.seed)
                    same_as, tested[pair] = None, (c, f"{run_dir.name} {name}")
                ro, rn = row_of(off, name), row_of(on, name)
                entry = {"run": run_dir.name, "row": name, "iteration": ro.get("iteration"),
                         "off": {k: f(ro) for k, f in COLUMNS.items()}, "on": {k: f(rn) for k, f in COLUMNS.items()},
                         "stopped": (on.get("decoding") or {}).get("loop_stopped", {}).get(name),
                         "paired": {k: {"delta": m["delta"], "p": m["p_value"]} for k, m in c["metrics"].items()}}
                if same_as:
                    entry["same_outputs_as"] = same_as
                result["rows"].append(entry)
    firsts = [e for e in result["rows"] if "same_outputs_as" not in e]
    members = {f"{e['run']} {e['row']}:{k}": m["p"] for e in firsts for k, m in e["paired"].items()}
    adjusted = compare.holm(members)
    for e in result["rows"]:
        for k, m in e["paired"].items():
            m["p_holm"] = adjusted[f"{e.get('same_outputs_as') or e['run'] + ' ' + e['row']}:{k}"]

    def cell(v):
        return "–" if v is None else v if isinstance(v, str) else f"{v:.2f}"

    def p_text(p):
        return "–" if p is None else f"{p:.3f}"

    for e in result["rows"]:
        pair = [f"{m['delta']:+.2f} (p {p_text(m['p'])}; Holm {p_text(m['p_holm'])})"
                for m in (e["paired"][k] for k in ("chrf", "bleu", "ter"))]
        lines.append(f"| {e['run']} | {e['row']} | " + " | ".join(f"{cell(e['off'][k])} → {cell(e['on'][k])}"
                                                                    for k in COLUMNS) + " | " + " | ".join(pair) + " |")
    # the mean and sd over each recipe's seeds, stop off and on
    groups: dict[tuple, list[dict]] = {}
    for e in result["rows"]:
        groups.setdefault((compare.recipe_of(e["run"])[0], e["row"]), []).append(e)
    lines += ["", "| recipe | row | seeds | " + " | ".join(f"{c} off → on (mean ± sd)" for c in COLUMNS
                                                           if c != "beyond TM") + " |",
              "|---|---|---|" + "---|" * (len(COLUMNS) - 1)]
    for (recipe, name), members_ in groups.items():
        if len(members_) < 2:
            continue
        stats = {k: {side: compare.seed_stats([m[side][k] for m in members_]) for side in ("off", "on")}
                 for k in COLUMNS if k != "beyond TM" and all(m[s][k] is not None for m in members_
                                                               for s in ("off", "on"))}
        result["seeds"][f"{recipe} {name}"] = {"runs": [m["run"] for m in members_], **stats}
        lines.append(f"| {recipe} | {name} | {len(members_)} | " + " | ".join(
            "–" if k not in stats else f"{stats[k]['off']['mean']:.2f} ± {stats[k]['off']['sd']:.2f} → "
            f"{stats[k]['on']['mean']:.2f} ± {stats[k]['on']['sd']:.2f}" for k in COLUMNS if k != "beyond TM") + " |")
    result["family_size"] = sum(p is not None for p in members.values())
    result["table"] = "\n".join(lines)
    print(result["table"])
    if a.json:
        header.write(a.json, head, result)
        print(f"wrote {a.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
