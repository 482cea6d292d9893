"""Comparisons across runs, from their kept outputs (scripts/compare.py, `make compare`).

Every run named is read at its evaluation's headline row (the checkpoint chosen on
validation) on one test set. Then:
  - recipes: runs whose stamps differ only in the seed (`-s<N>`, an attempt `-a<N>` aside)
    are one recipe; two or more seeds give a mean, a standard deviation and a 95 % interval
    of the mean (Student's t);
  - run against seeds: a run of another recipe tested as one more draw of a recipe's seeds
    (prediction: t = (x - mean) / (sd * sqrt(1 + 1/n)), n - 1 degrees of freedom); this
    counts training's randomness, which a test on sentences does not;
  - run against run: sacrebleu's paired bootstrap on the same sentences (chrF++, BLEU);
  - the family: every p-value of one comparison is a member, and Holm's step-down
    correction gives each an adjusted p (a lead picked out of many tries is not a finding).
"""

from __future__ import annotations

import math
import re
from itertools import combinations

import olelo
from olelo import evaluation, records, scores

SEED_RE = re.compile(r"-s(\d+)(-a\d+)?$")
ALPHA = 0.05


# ---------------------------------------------------------------- Student's t (no scipy here)

def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def t_two_sided_p(t: float, df: int) -> float:
    """P(|T| >= |t|) for Student's t with df degrees of freedom."""
    return incomplete_beta(df / 2, 0.5, df / (df + t * t))


def t_quantile(p_two_sided: float, df: int) -> float:
    """The t with P(|T| >= t) = p_two_sided (bisection)."""
    lo, hi = 0.0, 1e6
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_two_sided_p(mid, df) > p_two_sided:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def holm(p_values: dict) -> dict:
    """Holm's step-down adjusted p-values of a family ({name: p}; None stays None)."""
    tested = sorted((p, k) for k, p in p_values.items() if p is not None)
    m, running, out = len(tested), 0.0, {k: None for k in p_values}
    for i, (p, k) in enumerate(tested):
        running = max(running, min(1.0, (m - i) * p))
        out[k] = running
    return out


def two_recipes(a, b) -> dict:
    """Student's two-sample t-test (pooled variance) of two recipes' seed runs' corpus chrF++
    (numpy arrays: bench/campaigns/compare_runs.py's --recipe)."""
    na, nb = len(a), len(b)
    pooled = ((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2)
    t = (b.mean() - a.mean()) / math.sqrt(pooled * (1 / na + 1 / nb))
    return {"delta_of_means": float(b.mean() - a.mean()), "t": float(t), "df": na + nb - 2,
            "p": t_two_sided_p(t, na + nb - 2)}


# ---------------------------------------------------------------- runs

def recipe_of(stamp: str) -> tuple[str, int | None]:
    """(recipe, seed): the stamp without its seed (and attempt), and the seed."""
    m = SEED_RE.search(stamp)
    return (stamp[: m.start()], int(m[1])) if m else (stamp, None)


def seed_stats(values: list[float]) -> dict:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(ALPHA, n - 1) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "ci95": [mean - half, mean + half]}


def kept_summary(run: str, eval_name: str):
    """(run folder, summary path, summary) of a run's evaluation that kept its outputs."""
    run_dir = olelo.resolve_run(run)
    path = run_dir / eval_name / "summary.json"
    if not path.is_file():
        raise olelo.UserError(f"{path}: no such evaluation (make eval RUN={run_dir.name}; EVAL_NAME names "
                              f"its folder, e.g. eval-mt256)")
    summary = olelo.read_json(path, "evaluation summary")
    if "outputs" not in summary:
        raise olelo.UserError(f"{path} kept no outputs (scored before outputs were kept): evaluate it again "
                              f"(delete {path.parent} and make eval RUN={run_dir.name})")
    return run_dir, path, summary


def load(run: str, eval_name: str) -> dict:
    """A run's headline row: {stamp, summary path, row name, chrf, bleu, hyps, ids, test sha256}."""
    run_dir, path, summary = kept_summary(run, eval_name)
    head = (summary.get("headline") or {}).get("checkpoint")
    if not head:
        raise olelo.UserError(f"{path}: no headline checkpoint (evaluate best or final)")
    stale = records.stale_reason(run_dir, olelo.run_manifest(run_dir), summary)
    if stale:
        raise olelo.UserError(f"{path} is stale, not run {run_dir.name}'s result: {stale}. make eval "
                              f"RUN={run_dir.name} scores it again")
    outputs = evaluation.read_outputs(path.parent, summary["outputs"])
    row = summary["checkpoints"][head]
    return {"stamp": run_dir.name, "summary": str(path), "row": head, "chrf": row["chrf"], "bleu": row["bleu"],
            "hyps": [r["hypothesis"] for r in outputs[head]], "ids": [r["id"] for r in outputs[head]],
            "test_data": summary["test_data"], "test_sha256": summary.get("test_sha256"),
            "test_set": summary.get("test_set", "test")}


def compare(runs: list[str], eval_name: str, family: str, bootstrap: int, seed: int, progress=print) -> dict:
    loaded = [load(r, eval_name) for r in runs]
    stamps = [r["stamp"] for r in loaded]
    if len(set(stamps)) != len(stamps):
        raise olelo.UserError(f"a run is named twice: {' '.join(stamps)}")
    first = loaded[0]
    sentences = {}  # test file -> its (id, direction, source, reference) of the scored sentences
    for r in loaded:
        if r["ids"] != first["ids"]:
            raise olelo.UserError(f"{r['summary']} and {first['summary']} were not scored on the same test "
                                  f"sentences: no paired comparison")
        if r["test_sha256"] and olelo.sha256_file(r["test_data"]) != r["test_sha256"]:
            raise olelo.UserError(f"{r['test_data']} is not the file {r['summary']} was scored on (sha256 "
                                  f"differs): rebuild that split (make data)")
        if r["test_data"] not in sentences:
            sentences[r["test_data"]] = [(t["id"], t["direction"], t["source"], t["target"]) for t in
                                         evaluation.pairs_of(evaluation.test_records(r["test_data"], r["ids"]))]
        # Test files may differ in their prompts only (DATA=rag carries retrieved pairs): the pairing
        # is by sentence, so sources and references must be the same too, in the same order.
        if sentences[r["test_data"]] != sentences[first["test_data"]]:
            raise olelo.UserError(f"{r['summary']} and {first['summary']} were not scored on the same test "
                                  f"sentences: no paired comparison")
    refs = [sentence[3] for sentence in sentences[first["test_data"]]]
    recipes: dict[str, list[dict]] = {}
    for r in loaded:
        recipes.setdefault(recipe_of(r["stamp"])[0], []).append(r)
    report = {"family": family, "eval": eval_name, "test_data": first["test_data"], "test_set": first["test_set"],
              "test_sha256": first["test_sha256"], "test_files": sorted(sentences), "n": len(refs),
              "bootstrap": {"samples": bootstrap, "seed": seed},
              "runs": {r["stamp"]: {"row": r["row"], "chrf": r["chrf"], "bleu": r["bleu"]} for r in loaded},
              "recipes": {}, "vs_seeds": [], "pairs": []}
    for name, members in recipes.items():
        if len(members) >= 2:
            report["recipes"][name] = {"runs": [m["stamp"] for m in members],
                                       "chrf": seed_stats([m["chrf"] for m in members]),
                                       "bleu": seed_stats([m["bleu"] for m in members])}
    for name, stats in report["recipes"].items():
        s = stats["chrf"]
        for r in loaded:
            if recipe_of(r["stamp"])[0] == name:
                continue
            t = (r["chrf"] - s["mean"]) / (s["sd"] * math.sqrt(1 + 1 / s["n"])) if s["sd"] > 0 else None
            report["vs_seeds"].append({"run": r["stamp"], "recipe": name, "delta": r["chrf"] - s["mean"], "t": t,
                                       "p": None if t is None else t_two_sided_p(t, s["n"] - 1)})
    for a, b in combinations(loaded, 2):
        progress(f"{a['stamp']} vs {b['stamp']}")
        c = scores.compare(a["hyps"], b["hyps"], refs, n_samples=bootstrap, seed=seed, metrics=("chrf", "bleu"))
        m = c["metrics"]
        report["pairs"].append({"a": a["stamp"], "b": b["stamp"], **{
            k: {"delta": m[k]["delta"], "p": m[k]["p_value"]} for k in ("chrf", "bleu")}})
    members = {f"vs_seeds:{v['run']}~{v['recipe']}": v["p"] for v in report["vs_seeds"]}
    members.update({f"pair:{p['b']}-{p['a']}:{k}": p[k]["p"] for p in report["pairs"] for k in ("chrf", "bleu")})
    adjusted = holm(members)
    for v in report["vs_seeds"]:
        v["p_holm"] = adjusted[f"vs_seeds:{v['run']}~{v['recipe']}"]
    for p in report["pairs"]:
        for k in ("chrf", "bleu"):
            p[k]["p_holm"] = adjusted[f"pair:{p['b']}-{p['a']}:{k}"]
    report["family_size"] = sum(p is not None for p in members.values())
    return report


def _p(p, called: bool = True) -> str:
    return "–" if p is None else f"{p:.3f}" + ("*" if called and p < ALPHA else "")


def markdown(report: dict) -> str:
    lines = [f"# Comparison: {report['family']}", "",
             f"{len(report['runs'])} runs, headline rows of `{report['eval']}` on "
             f"{' and '.join(report.get('test_files') or [report['test_data']])}"
             f"{' (the same sentences and references, other prompts)' if len(report.get('test_files', [])) > 1 else ''} "
             f"({report['n']} sentences{', the SEALED test' if report['test_set'] == 'sealed' else ''}); "
             f"family of {report['family_size']} tests, Holm-adjusted p beside each raw p; * p < 0.05.", "",
             "| run | row | chrF++ | BLEU |", "|---|---|---|---|"]
    lines += [f"| {s} | {r['row']} | {r['chrf']:.2f} | {r['bleu']:.2f} |" for s, r in report["runs"].items()]
    if report["recipes"]:
        lines += ["", "Recipes (runs that differ only in the seed): mean ± sd, 95 % interval of the mean (t).", "",
                  "| recipe | seeds | chrF++ | 95 % CI | BLEU |", "|---|---|---|---|---|"]
        for name, r in report["recipes"].items():
            c, b = r["chrf"], r["bleu"]
            lines.append(f"| {name} | {c['n']} | {c['mean']:.2f} ± {c['sd']:.2f} | {c['ci95'][0]:.2f} … "
                         f"{c['ci95'][1]:.2f} | {b['mean']:.2f} ± {b['sd']:.2f} |")
    if report["vs_seeds"]:
        lines += ["", "A run as one more draw of a recipe's seeds (prediction t):", "",
                  "| run | recipe | Δ chrF++ vs its mean | t | p | p (Holm) |", "|---|---|---|---|---|---|"]
        lines += [f"| {v['run']} | {v['recipe']} | {v['delta']:+.2f} | "
                  f"{'–' if v['t'] is None else format(v['t'], '.2f')} | {_p(v['p'])} | {_p(v['p_holm'])} |"
                  for v in report["vs_seeds"]]
    small = scores.too_small(report["n"], report["bootstrap"]["samples"])
    lines += ["", "Run against run, on the same sentences (paired bootstrap, b − a):", ""]
    if small:
        lines += [f"No * here: {small}.", ""]
    lines += ["| a | b | Δ chrF++ | p | p (Holm) | Δ BLEU | p | p (Holm) |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {p['a']} | {p['b']} | {p['chrf']['delta']:+.2f} | {_p(p['chrf']['p'], not small)} | "
              f"{_p(p['chrf']['p_holm'], not small)} | {p['bleu']['delta']:+.2f} | {_p(p['bleu']['p'], not small)} | "
              f"{_p(p['bleu']['p_holm'], not small)} |" for p in report["pairs"]]
    return "\n".join(lines) + "\n"


