"""RESULTS.md, built from the run folders (scripts/notes_tables.py writes it, `make notes`):
the runs, the evaluations and the no-model baselines, real models first, then the tiny
random-weight stand-in; the memory guidelines section is kept as it is.

    text = results_tables.build(Path("runs"), old_text)   # the whole new RESULTS.md
    rows = results_tables.evaluation_rows(Path("runs"), stand_in=False)   # Markdown table rows
"""

from __future__ import annotations

import sys
from pathlib import Path

import olelo
from olelo import ledger
from olelo import notes
from olelo import records
from olelo import scores
from olelo import summaries

HEADER = """# olelo-mlx results (generated)

Generated from the committed run records by `make notes` (runs, evaluations) and
`make mem-profile` (memory guidelines); do not edit by hand. What the numbers answer,
and what was concluded from them, is in the lab notebook, [NOTES.md](NOTES.md).
"""

STAND_IN = """## Tiny random-weight model: pipeline checks only

`models/tiny-*` are random-weight stand-ins built by `make tiny-model`. Their numbers
show that each step runs, and how fast on the machine named in the run record; they
say nothing about translation. Scores near zero are expected.
"""

NO_MEMORY = (f"{notes.MEMORY_BEGIN}\n## Memory guidelines\n\n"
             f"No profile yet: `make mem-profile MODEL=...` writes this section.\n{notes.MEMORY_END}")


def evaluation_rows(runs_dir: Path, stand_in: bool) -> list[str]:
    rows = []
    for summary_path in sorted(runs_dir.glob("*/eval*/summary.json")):
        run_dir = summary_path.parent.parent
        if run_dir.is_symlink():  # runs/latest
            continue
        try:
            manifest = olelo.run_manifest(run_dir)
            s = olelo.read_json(summary_path, "evaluation summary")
            baselines, tuned, head, posthoc = summaries.normalize(s)
        except (olelo.UserError, KeyError, TypeError, ValueError) as e:
            print(f"warning: skipped {summary_path}: {e}", file=sys.stderr)
            continue
        if records.is_stand_in(manifest.get("model", "")) != stand_in:
            continue
        status = records.status_of(run_dir, manifest)
        if status not in records.DONE:  # a failed or stopped run's checkpoints are not results
            print(f"note: {summary_path} left out: its run is {status}", file=sys.stderr)
            continue
        stale = records.stale_reason(run_dir, manifest, s)
        if stale:  # the run moved on since: these rows are not its result
            print(f"note: {summary_path} left out, stale: {stale}; make eval RUN={run_dir.name} scores it again",
                  file=sys.stderr)
            continue
        if not tuned:
            continue
        shown = [(n, n, c) for n, c in baselines.items() if n != "empty"]  # (the empty output: TER's scale only)
        if head:
            how = "chosen on validation" if head["selected_on"].startswith("validation") else "no validation choice"
            shown.append((head["checkpoint"], f"{head['checkpoint']} ({how})", tuned[head["checkpoint"]]))
        top = posthoc.get("chrf") or max(tuned, key=lambda n: tuned[n]["chrf"])
        if not head or top != head["checkpoint"]:
            shown.append((top, f"{top}: top chrF++ on test (post hoc)", tuned[top]))
        where = summary_path.parent.name
        if s.get("test_set") == "sealed":  # how many looks the sealed set has had, now
            where += f" (sealed test: {ledger.looks_phrase(runs_dir, s.get('test_sha256'))})"
        for name, label, c in shown:
            ci = summaries.base_ci(s) if name == "base" else summaries.chrf_ci(c)
            cells = [s["run"], where, c["n"], label, _num(c["iteration"], "{}"), _num(c["bleu"]),
                     _num(c["chrf"]) + (f" ±{ci:.2f}" if ci else ""), _num(c["ter"]), _num(c.get("semsim"), "{:.3f}"),
                     _num(c.get("loop_rate"), "{:.3f}"), _num(c.get("length_ratio")), _num(c.get("test_ppl"), "{:.1f}"),
                     _pct((c.get("own_reference") or {}).get("accuracy")), _pct((c.get("names") or {}).get("recall")),
                     _delta(summaries.chrf_vs(c, "base")),
                     "" if name in baselines else _delta(summaries.chrf_vs(c, "copy-source")),
                     _delta(summaries.chrf_vs(c, "translation-memory"))]
            rows.append("| " + " | ".join(str(x) for x in cells) + " |")
    return rows


def _num(x, fmt="{:.2f}") -> str:
    return "–" if x is None else fmt.format(x)


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def baseline_rows(runs_dir: Path) -> list[str]:
    """The no-model tables of runs/baselines/*/summary.json (make baselines), one line a row."""
    rows = []
    for summary_path in sorted((runs_dir / "baselines").glob("*/summary.json")):
        try:
            s = olelo.read_json(summary_path, "baselines summary")
            within = (s["split"].get("within_story") or {}).get(s["test_set"])
            where = f"{s['test_data']}" + (f" (sealed test: {ledger.looks_phrase(runs_dir, s['test_sha256'])})"
                                           if s["test_set"] == "sealed" else "")
            share = f"{100 * within['share']:.1f} %" if within else "–"
            for name, c in s["baselines"].items():
                rows.append("| " + " | ".join(str(x) for x in (
                    where, s["split"]["by"], share, c["n"], name, _num(c["bleu"]), _num(c["chrf"]), _num(c["ter"]),
                    _num(c["length_ratio"]), _pct(c["own_reference"]["accuracy"]), _pct(c["own_reference"]["mrr"]),
                    _pct(c["names"]["recall"]))) + " |")
        except (olelo.UserError, KeyError, TypeError, AttributeError) as e:
            print(f"warning: skipped {summary_path}: {e}", file=sys.stderr)
    return rows


def _delta(m) -> str:
    if not m:
        return ""
    # No p-value beside identical scores (scores.p_note says when one belongs).
    return f"{m['delta']:+.2f} (p={m['p_value']:.3f})" if scores.p_note(m) else f"{m['delta']:+.2f}"


def tables(runs_dir: Path, stand_in: bool) -> str:
    runs = [r for r in records.rows(runs_dir) if records.is_stand_in(r["model"]) == stand_in]
    out = ["Runs (`make runs` shows the same):", ""]
    out.append(records.markdown(runs).rstrip() if runs else "None yet.")
    evals = evaluation_rows(runs_dir, stand_in)
    out += ["", "Evaluations on the common test set. Baselines: base (zero-shot), copy-source (the source sentence "
            "as the translation: a model that does not beat it has not learned to translate), base-fewshot (when "
            "evaluated). \"best\" is the checkpoint chosen on validation, the headline; the \"top chrF++ on test\" "
            "row is a post-hoc view (selected on the test set itself, so it flatters). chrF++ ± its 95 % bootstrap "
            "interval; p: sacrebleu's paired bootstrap; loops and length as defined in scripts/score.py.", ""]
    if evals:
        out += ["| run | eval | n | checkpoint | iter | BLEU | chrF++ | TER | semsim | loops | length | test ppl "
                "| own ref. @1 % | names recall % | Δ chrF++ vs base (p) | Δ chrF++ vs copy-source (p) "
                "| Δ chrF++ vs translation memory (p) |",
                "|" + "---|" * 17, *evals]
    else:
        out.append("None yet.")
    if not stand_in:
        out += ["", "Reference baselines with no model (`make baselines`): what each test set gives away. "
                "within story: held-out pairs with a training pair next to them in the source file. Own ref. "
                "@1 / MRR: is an output's own reference the closest of all test references (chance: 1/n); "
                "names recall: the source's proper names found in the output (README, evaluation).", ""]
        baselines = baseline_rows(runs_dir)
        out += (["| test set | split | within story | n | baseline | BLEU | chrF++ | TER | length | own ref. @1 % "
                 "| own ref. MRR % | names recall % |", "|" + "---|" * 12, *baselines] if baselines else ["None yet."])
    return "\n".join(out) + "\n"


def memory_section(old: str) -> str:
    return notes.section(old) or NO_MEMORY


def build(runs_dir: Path, old: str = "") -> str:
    # The guidelines sit with the model they were measured on: a stand-in's never
    # where a reader expects the real model's (memory_guidelines.py's heading says which).
    memory = memory_section(old)
    lines = memory.splitlines()
    stand_in = len(lines) > 1 and "random-weight stand-in" in lines[1]
    real_part = [HEADER, "## Real models\n", tables(runs_dir, False)] + ([] if stand_in else [memory + "\n"])
    return "\n".join(real_part + [STAND_IN, tables(runs_dir, True)] + ([memory] if stand_in else []) + [""])
