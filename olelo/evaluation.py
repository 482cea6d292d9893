"""An evaluation's scores: the systems' rows, the reference baselines, the adequacy probes,
the outputs kept for rescoring. scripts/eval_report.py (a run), scripts/baselines.py (no
model) and scripts/rescore.py (committed evaluations) all score through `score_systems`,
so a rescore recomputes exactly what was written.

Reference baselines, scored like the systems on the same sentences (training split only):
  copy-source         the source sentence itself
  translation-memory  the target of the training pair whose source is nearest to the test
                      source (yardstick.translation_memory: sentence chrF++)
  length-matched      a training target whose source length is near the test source's,
                      content unrelated (seeded; LENGTH_DRAWS draws, the row is draw 0)
  empty               an empty output: TER's scale (an empty output's TER beats a long one)
A system that does not beat translation memory has not shown that it translates beyond
looking up the nearest training pair; one that sits near length-matched writes in-domain
English without using the source much. The probes (yardstick) ask the same of each output:
is its own reference the closest of all references, and are the source's names carried over.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import re
from pathlib import Path

import olelo
from olelo import scores, segment_stats, yardstick

REFERENCE_BASELINES = ("copy-source", "translation-memory", "length-matched", "empty")
# What each system is paired with by bootstrap on chrF++ and BLEU (TER against base only: it is slow).
COMPARED_BASELINES = ("copy-source", "translation-memory")
SECONDARY = ("chrf", "bleu")
# sacrebleu's TER takes ~1.7 s a paragraph on these (480 s for the 280 of the dev test, 2 CPU cores):
# they are scored without it. The empty output gives TER's scale.
NO_TER = ("translation-memory", "length-matched")
LENGTH_DRAWS = 5
LENGTH_K = 10
REPEAT_WORDS = 8
OUTPUTS_FILE = "outputs.jsonl.gz"
DEFINITIONS = {
    "loop_rate": scores.LOOP_DEFINITION,
    "length_ratio": scores.LENGTH_DEFINITION,
    "copy-source": "the source sentence as the translation",
    "translation-memory": "the target of the training pair whose source is nearest to the test source: "
                          + yardstick.TM_SIMILARITY,
    "length-matched": f"the target of a training pair drawn among the {LENGTH_K} whose source length (characters) "
                      f"is nearest to the test source's: fluent in-domain text, content unrelated "
                      f"({LENGTH_DRAWS} seeded draws; the row is draw 0)",
    "empty": "an empty output: TER's scale (it scores TER 100, better than any output that needs more edits "
             "than its reference has words)",
    "repeat8": f"share of outputs in which some sequence of {REPEAT_WORDS} words occurs twice or more",
    "own_reference": "rank of each output's own reference among all test references by sentence chrF++: "
                     "accuracy at rank 1 and mean reciprocal rank (ties share the mid rank; unrelated text "
                     "sits at chance)",
    "names": "proper names of the source (capitalised words in both source and reference, not also lowercase "
             "there) carried into the output: recall, and precision of the output's capitalised words "
             "that come from the source",
    "beyond_translation_memory": "yes when the system's chrF++ is above translation memory's with p < 0.05 "
                                 "(paired bootstrap)",
}


# ---------------------------------------------------------------- inputs

def test_records(test_file, ids: list[str]) -> list[dict]:
    """The test records the outputs were translated from, in their order: the first len(ids)
    records of the file, refused when their ids differ (another test set, or another order)."""
    records = olelo.read_jsonl(test_file)[: len(ids)]
    have = [r.get("id", str(i)) for i, r in enumerate(records)]
    if have != ids:
        raise olelo.UserError(f"the outputs were not translated from {test_file} (other ids or order); "
                              f"delete the evaluation folder and evaluate again")
    return records


def pairs_of(records: list[dict]) -> list[dict]:
    out = []
    for i, r in enumerate(records):
        source, target = olelo.record_source_target(r)
        out.append({"id": r.get("id", str(i)), "direction": r.get("direction", "haw-en"),
                    "source": source, "target": target})
    return out


# ---------------------------------------------------------------- reference baselines

def _by_direction(test: list[dict], train: list[dict]):
    """(direction, test positions, train positions) for each direction of the test set: a
    baseline answers a sentence with training targets of the same direction only."""
    for direction in sorted({t["direction"] for t in test}):
        tpos = [i for i, t in enumerate(test) if t["direction"] == direction]
        rpos = [i for i, r in enumerate(train) if r["direction"] == direction]
        if not rpos:
            raise olelo.UserError(f"the training split has no {direction} pair: no reference baseline for it")
        yield direction, tpos, rpos


def reference_baselines(test: list[dict], train: list[dict], seed: int) -> tuple[dict, dict]:
    """({name: hypotheses}, record): the reference baselines for `test` drawn from `train`
    (pairs_of records). The record names the training pairs chosen (ids, no text), so a
    rescore can check it chose the same."""
    n = len(test)
    tm_idx, tm_sim = [None] * n, [None] * n
    draws = [[None] * n for _ in range(LENGTH_DRAWS)]
    for _, tpos, rpos in _by_direction(test, train):
        sources = [train[j]["source"] for j in rpos]
        targets = [train[j]["target"] for j in rpos]
        tm = yardstick.translation_memory([test[i]["source"] for i in tpos], sources, targets)
        for i, j, s in zip(tpos, tm["index"], tm["similarity"]):
            tm_idx[i], tm_sim[i] = rpos[j], float(s)
        for d in range(LENGTH_DRAWS):
            lm = yardstick.length_matched([test[i]["source"] for i in tpos], sources, targets, seed=seed, draw=d,
                                          k=LENGTH_K)
            for i, j in zip(tpos, lm["index"]):
                draws[d][i] = rpos[j]
    hyps = {
        "copy-source": [t["source"] for t in test],
        "translation-memory": [train[j]["target"] for j in tm_idx],
        "length-matched": [train[j]["target"] for j in draws[0]],
        "empty": [""] * n,
    }
    record = {
        "translation-memory": {"similarity": yardstick.TM_SIMILARITY, "train_ids": [train[j]["id"] for j in tm_idx],
                               "mean_similarity": sum(tm_sim) / n},
        "length-matched": {"k": LENGTH_K, "seed": seed,
                           "draws": [{"train_ids": [train[j]["id"] for j in d]} for d in draws]},
    }
    for d, idx in zip(record["length-matched"]["draws"], draws):
        s = scores.score_corpus([train[j]["target"] for j in idx], [t["target"] for t in test], metrics=SECONDARY)
        d.update(chrf=s["chrf"]["score"], bleu=s["bleu"]["score"])
    chrf = [d["chrf"] for d in record["length-matched"]["draws"]]
    mean = sum(chrf) / len(chrf)
    record["length-matched"]["chrf_mean"] = mean
    record["length-matched"]["chrf_sd"] = (sum((c - mean) ** 2 for c in chrf) / max(1, len(chrf) - 1)) ** 0.5
    return hyps, record


# ---------------------------------------------------------------- rows

def score_row(hyps: list[str], refs: list[str], sources: list[str], semsim_ok: bool, bootstrap: int,
              seed: int, metrics=tuple(scores.METRICS)) -> dict:
    """Every score of one system that does not depend on another system; its semantic similarity
    is left None, in its place, for score_systems to fill in once the embeddings are made."""
    s = scores.score_corpus(hyps, refs, metrics=metrics)
    repeat = yardstick.repetition_rate(hyps, REPEAT_WORDS)
    own = yardstick.own_reference(hyps, refs, n_boot=bootstrap, seed=seed)
    names = yardstick.name_transfer(sources, refs, hyps, n_boot=bootstrap, seed=seed)
    row = {"bleu": s["bleu"]["score"], "chrf": s["chrf"]["score"], "ter": s["ter"]["score"] if "ter" in s else None,
           "loop_rate": s["loop_rate"], "loops": s["loops"], "length_ratio": s["length_ratio"],
           "repeat8": repeat["rate"],
           "own_reference": {k: v for k, v in own.items() if k not in ("ranks", "definition")},
           "names": {k: v for k, v in names.items() if k not in ("per_sentence", "definition")},
           "signatures": {k: s[k]["signature"] for k in metrics},
           "chrf_sentences": s["chrf_sentences"], "n": len(hyps)}
    if semsim_ok and any(h.strip() for h in hyps):
        row["semsim"] = None
    return row


def beyond_translation_memory(row: dict) -> dict | None:
    m = ((row.get("vs_baselines") or {}).get("translation-memory") or {}).get("metrics", {}).get("chrf")
    if not m:
        return None
    yes = m["significant"] and m["delta"] > 0
    return {"answer": "yes" if yes else "no", "metric": "chrF++", "delta": m["delta"], "p_value": m["p_value"]}


def score_systems(test: list[dict], train: list[dict], systems: dict[str, list[str]], *, bootstrap: int, seed: int,
                  semsim_ok: bool, baseline_seed: int = 0, progress=print) -> dict:
    """The scores of an evaluation: `systems` are the model rows (base first when there is
    one), in order; the reference baselines are added. Returns
    {"rows": {name: row}, "reference_baselines": record, "reference": {...}}, where rows
    hold only what the outputs and the data determine (a rescore recomputes all of it)."""
    refs = [t["target"] for t in test]
    sources = [t["source"] for t in test]
    base_hyps, record = reference_baselines(test, train, baseline_seed)
    model_baselines = [n for n in systems if n == "base" or n.startswith("base-")]
    names = model_baselines + list(base_hyps) + [n for n in systems if n not in model_baselines]
    hyps = {**systems, **base_hyps}
    compared = list(COMPARED_BASELINES) + [n for n in model_baselines if n != "base"]
    # Semantic similarity, the slowest part, first: on a CPU the rows' embeddings are made in
    # processes of their own while everything else is scored (olelo/semsim.py), and filled in after.
    # Every system's per-segment statistics next, all together over the cores; every score and
    # paired bootstrap below reads them back (olelo/segment_stats.py).
    rows = {}
    with _semsim_started(semsim_ok, [(hyps[n], refs) for n in names if any(h.strip() for h in hyps[n])], progress):
        progress(f"per-segment statistics of {len(names)} rows ({segment_stats.active().jobs} processes)")
        segment_stats.active().prefetch([(k, hyps[n]) for n in names
                                         for k in (SECONDARY if n in NO_TER else scores.METRICS)], refs)
        for n in names:
            progress(f"scoring {n}")
            row = score_row(hyps[n], refs, sources, semsim_ok, bootstrap, seed,
                            metrics=SECONDARY if n in NO_TER else tuple(scores.METRICS))
            if n != "base" and "base" in hyps and n != "empty":
                row["vs_base"] = scores.compare(hyps["base"], hyps[n], refs, n_samples=bootstrap, seed=seed,
                                                metrics=tuple(scores.METRICS) if n in systems else SECONDARY)
            if n in systems:
                row["vs_baselines"] = {b: scores.compare(hyps[b], hyps[n], refs, n_samples=bootstrap, seed=seed,
                                                         metrics=SECONDARY) for b in compared if b != n}
                row["beyond_translation_memory"] = beyond_translation_memory(row)
            rows[n] = row
        progress("waiting for semantic similarity" if semsim_ok else "scored")
    for n, row in rows.items():
        if "semsim" in row:  # its place was kept
            from olelo import semsim

            row["semsim"] = semsim.mean_cosine(hyps[n], refs)
    reference = {"loop_rate": scores.output_health(refs, refs)["loop_rate"],
                 "repeat8": yardstick.repetition_rate(refs, REPEAT_WORDS)["rate"]}
    return {"rows": rows, "reference_baselines": record, "reference": reference}


def _semsim_started(semsim_ok: bool, pairs, progress):
    if not semsim_ok:
        return contextlib.nullcontext()
    from olelo import semsim

    progress(f"semantic similarity of {len(pairs)} rows")
    return semsim.started(pairs, jobs=segment_stats.active().jobs)


def verdict_lines(rows: dict, systems) -> list[str]:
    """One line per system: does it translate beyond translation memory?"""
    lines = []
    for n in systems:
        b = rows[n].get("beyond_translation_memory")
        if b:
            p = "identical" if b["p_value"] is None else f"p={b['p_value']:.3f}"
            lines.append(f"- {n}: translates beyond translation memory: **{b['answer']}** "
                         f"(chrF++ Δ {b['delta']:+.2f}, {p})")
    return lines


# ---------------------------------------------------------------- outputs kept

def outputs_bytes(systems: dict[str, list[dict]]) -> bytes:
    """The model systems' outputs as gzipped JSONL (system, id, hypothesis, tokens; no
    source or reference text), byte for byte the same for the same outputs."""
    lines = "".join(json.dumps({"system": n, "id": r["id"], "hypothesis": r["hypothesis"],
                                "tokens": r.get("tokens")}, ensure_ascii=False) + "\n"
                    for n, rows in systems.items() for r in rows)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as f:
        f.write(lines.encode("utf-8"))
    return buf.getvalue()


def write_outputs(eval_dir, systems: dict[str, list[dict]]) -> dict:
    data = outputs_bytes(systems)
    olelo.atomic_write_bytes(Path(eval_dir) / OUTPUTS_FILE, data)
    return {"file": OUTPUTS_FILE, "sha256": hashlib.sha256(data).hexdigest(), "systems": list(systems)}


def read_outputs(eval_dir, recorded: dict) -> dict[str, list[dict]]:
    """{system: rows} from the kept outputs, refused when their sha256 is not the recorded one."""
    path = Path(eval_dir) / recorded["file"]
    if not path.is_file():
        raise olelo.UserError(f"{path} is missing: the evaluation's outputs are gone (git checkout {path})")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != recorded["sha256"]:
        raise olelo.UserError(f"{path}: sha256 differs from the one its summary.json records: the outputs were "
                              f"changed after scoring")
    out: dict[str, list[dict]] = {}
    for n, line in enumerate(gzip.decompress(data).decode("utf-8").splitlines(), 1):
        row = json.loads(line)
        out.setdefault(row["system"], []).append(row)
    return out


# ---------------------------------------------------------------- tables

def _num(x) -> str:
    return "–" if x is None else f"{x:.2f}"


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _with_ci(block: dict, key: str) -> str:
    value, ci = block.get(key), block.get(f"{key}_ci")
    if value is None:
        return "–"
    return _pct(value) + (f" [{_pct(ci[0])}, {_pct(ci[1])}]" if ci else "")


def rows_markdown(summary: dict, order: list[str], with_scores: bool = True) -> list[str]:
    """The adequacy table (percentages with 95 % bootstrap intervals), with the corpus scores
    when `with_scores` (the baselines-only page has no other table)."""
    rows = {**summary.get("baselines", {}), **summary.get("checkpoints", {})}
    head = "| row | " + ("BLEU | chrF++ | TER | length | " if with_scores else "") + \
        "own ref. @1 % | own ref. MRR % | names recall % | names precision % | 8-word repeats % | loops % | beyond TM |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for n in order:
        r = rows[n]
        own, names = r.get("own_reference") or {}, r.get("names") or {}
        beyond = (r.get("beyond_translation_memory") or {}).get("answer", "")
        scores_cells = " | ".join(_num(r.get(k)) for k in ("bleu", "chrf", "ter", "length_ratio")) + " | " \
            if with_scores else ""
        lines.append(f"| {n} | {scores_cells}{_with_ci(own, 'accuracy')} | {_with_ci(own, 'mrr')} | "
                     f"{_with_ci(names, 'recall')} | {_with_ci(names, 'precision')} | {_pct(r.get('repeat8'))} | "
                     f"{_pct(r.get('loop_rate'))} | {beyond} |")
    some = next((rows[n].get("own_reference") for n in order if rows[n].get("own_reference")), None) or {}
    ref = summary.get("reference") or {}
    lines += ["", f"Chance for own reference (N = {some.get('n', '?')} references): @1 {_pct(some.get('chance_accuracy'))} %, "
              f"MRR {_pct(some.get('chance_mrr'))} %. References themselves: 8-word repeats {_pct(ref.get('repeat8'))} %, "
              f"loops {_pct(ref.get('loop_rate'))} %. TER: lower is better, but an empty output scores "
              f"{rows['empty']['ter']:.2f} here (length ratio 0): read TER beside the length ratio, never alone "
              f"(translation memory and length-matched are scored without TER: it is slow on them)."
              if "empty" in rows else ""]
    return lines


# The line `mlx_lm.lora --test` ends with (scripts/perplexity.py reads it).
TEST_LOSS_RE = re.compile(r"Test loss ([-+0-9.eE]+|nan|inf), Test ppl ([-+0-9.eE]+|nan|inf)\.")


def parse_test_loss(output: str) -> tuple[float, float]:
    """(test loss, test perplexity) from mlx_lm.lora --test's output."""
    m = TEST_LOSS_RE.search(output)
    if not m:
        raise olelo.UserError("mlx_lm.lora --test printed no 'Test loss …, Test ppl ….' line (see its output above)")
    return float(m[1]), float(m[2])
