"""The lab's one-page HTML report (scripts/report.py writes it, `make report`): runs, loss
curves, evaluations, data quality, with every record value escaped and figures inlined.

    page = report_page.build_page(Path("runs"), Path("data"), with_text=True)   # the whole page
    report_page.collect_runs(Path("runs"))   # one dict per run folder (manifest, metrics, evals)
    report_page.esc(value)                   # a record value as HTML text, never markup
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import olelo
from olelo import ledger
from olelo import plots
from olelo import records
from olelo import scores
from olelo.summaries import base_ci, chrf_ci, chrf_vs, normalize

AB_ROWS = 12
STATUS_CLASS = {"finished": "ok", "stopped-early": "ok", "failed": "bad", "stopped": "bad", "running": "busy",
                "training": "busy"}
STATUS_NOTE = {"stopped": "process gone (killed or crashed): run the same command to resume",
               "failed": "see the run's train.log"}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #ddd;margin-top:2em} h3{margin-bottom:.3em}
nav a{margin-right:1em} .meta{color:#666} table{border-collapse:collapse;margin:.6em 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top} th{background:#f3f3f3}
table.sortable th{cursor:pointer} table.sortable th[data-dir=asc]::after{content:" \\25B2"}
table.sortable th[data-dir=desc]::after{content:" \\25BC"} td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{padding:1px 7px;border-radius:9px;font-size:12px;color:#fff;white-space:nowrap}
.badge.ok{background:#2a7d3b} .badge.bad{background:#b3261e} .badge.busy{background:#1f5fa8}
.badge.other{background:#777} tr.bad{background:#fdecea} tr.busy{background:#eaf1fb}
tr.headline{background:#fff6d6;font-weight:600} img{max-width:100%;height:auto} .pair{display:flex;flex-wrap:wrap;gap:1em}
.pair img{max-width:49%} .pos{color:#2a7d3b} .neg{color:#b3261e} details{margin:.5em 0} summary{cursor:pointer}
section.run,section.eval{border-left:4px solid #eee;padding-left:1em;margin:1.2em 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:0 1.5em}
section.run h3{font-size:14px;word-break:break-all}
"""


# Sorting: click a header; a #sort=KEY or #sort=-KEY link sorts on load.
JS = """
function cellKey(td){var v=td.getAttribute('data-sort');if(v===null)v=td.textContent.trim();
 var n=parseFloat(v);return isNaN(n)||!/^[-+0-9.eE]+$/.test(v)?[1,v.toLowerCase()]:[0,n];}
function sortTable(t,i,asc){var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows);
 rows.sort(function(x,y){var a=cellKey(x.cells[i]),c=cellKey(y.cells[i]);
  var r=a[0]-c[0]||(a[1]<c[1]?-1:a[1]>c[1]?1:0);return asc?r:-r;});
 rows.forEach(function(r){b.appendChild(r);});
 Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,j){
  if(j===i)th.setAttribute('data-dir',asc?'asc':'desc');else th.removeAttribute('data-dir');});}
Array.prototype.forEach.call(document.querySelectorAll('table.sortable'),function(t){
 Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){th.addEventListener('click',function(){
  sortTable(t,i,th.getAttribute('data-dir')!=='asc');});});});
var m=/sort=(-?)([\\w-]+)/.exec(location.hash),t=document.getElementById('runs-table');
if(m&&t){Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){
 if(th.getAttribute('data-key')===m[2])sortTable(t,i,m[1]!=='-');});}
document.body.setAttribute('data-ready','1');
"""

# The browser itself refuses any load from outside the page: it opens with no network. It
# runs one script, the one above, named by its hash: markup that got past esc() could run
# none (no other <script>, no onerror=).
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-"
       + base64.b64encode(hashlib.sha256(JS.encode("utf-8")).digest()).decode("ascii") + "'")


# Every value read from a record reaches the page through esc(), and only through it: as
# text, never markup (a record is data someone may have crafted). Numbers are formatted by
# num()/pct(), which refuse what is not a number and escape what they write; a record
# holding a value of the wrong kind raises Damaged and is skipped with a warning, as a
# manifest that is not JSON is.
class Damaged(ValueError):
    """A record value of the wrong kind (an iteration that is not a whole number...)."""


# What makes one record unreadable; skip() turns it into a warning and leaves the record out.
UNREADABLE = (olelo.UserError, Damaged, KeyError, TypeError, ValueError, AttributeError, IndexError)


def esc(x) -> str:
    """The one escaping function: any value, as HTML text (quotes too: safe in attributes)."""
    return html.escape("" if x is None else str(x), quote=True)


def number(x, what: str = "value"):
    if x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)):
        return x
    raise Damaged(f"{what} {x!r:.80} is not a number")


def whole(x, what: str = "iteration"):
    if x is None or (isinstance(x, int) and not isinstance(x, bool)):
        return x
    raise Damaged(f"{what} {x!r:.80} is not a whole number")


def pct(x, what: str = "share") -> str:
    x = number(x, what)
    return "–" if x is None else esc(f"{100 * x:.1f}")


def num(x, fmt="{:.2f}", what: str = "value") -> str:
    x = number(x, what)
    return "–" if x is None else esc(fmt.format(x))


def skip(path, render, *args) -> str:
    """render(*args), or "" and a warning naming path when its record is damaged."""
    try:
        return render(*args)
    except UNREADABLE as e:
        print(f"warning: skipped {path}: {e}", file=sys.stderr)
        return ""


def img(fig, alt: str) -> str:
    data = base64.b64encode(plots.png_bytes(fig)).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise olelo.UserError(f"{path}:{e.lineno}: not valid JSON ({e.msg}); fix or delete it") from None


def badge(status: str) -> str:
    cls = STATUS_CLASS.get(status, "other")
    return f'<span class="badge {cls}" title="{esc(STATUS_NOTE.get(status, ""))}">{esc(status)}</span>'


def table(headers, rows, cls="", table_id="") -> str:
    """headers: [(key, label)]; rows: [(tr_class, [(html, sort_value | None, numeric)])]."""
    out = [f'<table class="{esc(cls)}"' + (f' id="{esc(table_id)}"' if table_id else "") + "><thead><tr>"]
    out += [f'<th data-key="{esc(k)}">{esc(label)}</th>' for k, label in headers]
    out.append("</tr></thead><tbody>")
    for tr_cls, cells in rows:
        out.append(f'<tr class="{esc(tr_cls)}">')
        for text, sort, numeric in cells:
            attrs = (' class="num"' if numeric else "") + (f' data-sort="{esc(sort)}"' if sort is not None else "")
            out.append(f"<td{attrs}>{text}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


# ---------------------------------------------------------------- runs


def collect_runs(runs_dir: Path) -> list[dict]:
    runs = []
    for manifest_path in sorted(runs_dir.glob("*/manifest.json")):
        run_dir = manifest_path.parent
        if run_dir.is_symlink():  # runs/latest
            continue
        try:  # one damaged record must not hide every other run
            manifest = read_json(manifest_path)
            row = records.run_row(run_dir)
            metrics = records.read_metrics(run_dir)
            evals = [p.parent for p in sorted(run_dir.glob("eval*/summary.json"))]
            r = {"dir": run_dir, "manifest": manifest, "metrics": metrics, "row": row,
                 "status": row["status"], "evals": evals}
            r["cells"], r["detail"] = run_cells(r), run_detail(r)
        except UNREADABLE as e:
            print(f"warning: skipped {run_dir}: {e}", file=sys.stderr)
            continue
        runs.append(r)
    return runs


def runs_section(runs: list[dict]) -> str:
    headers = [("stamp", "run"), ("status", "status"), ("iters", "iterations"), ("min_val_loss", "lowest val loss"),
               ("min_val_at", "at"), ("best", "best/"), ("val_chrf", "top val chrF++"), ("tok_per_s", "tok/s"),
               ("peak_mem_gb", "peak GB"), ("commit", "commit"), ("started", "started"), ("evals", "evaluations")]
    rows = [(STATUS_CLASS.get(r["status"], "other"), r["cells"]) for r in runs]
    if not rows:
        return '<h2 id="runs">Runs</h2><p>No runs yet: <code>make train-small</code> or <code>make demo</code>.</p>'
    return ('<h2 id="runs">Runs</h2><p class="meta">Click a header to sort. Red rows failed or were stopped '
            "(a run left 'running' by a process that is gone); blue rows are running.</p>"
            + table(headers, rows, "sortable", "runs-table"))


def run_cells(r: dict) -> list:
    row, stamp = r["row"], r["manifest"]["stamp"]
    for m in r["metrics"]:  # drawn and compared by iteration
        whole(m.get("iteration"), "metrics.jsonl: iteration")
        number(m.get("val_chrf"), "metrics.jsonl: val_chrf")
    chrf = [m for m in r["metrics"] if m.get("val_chrf") is not None]
    top = max(chrf, key=lambda m: m["val_chrf"], default=None)
    started = str((r["manifest"].get("segments") or [{}])[0].get("started", ""))
    done = row["iters"].split("/")[0]
    links = " ".join(f'<a href="#eval-{esc(stamp)}-{esc(e.name)}">{esc(e.name)}</a>' for e in r["evals"])
    return [
        (f'<a href="#run-{esc(stamp)}">{esc(stamp)}</a>', None, False),
        (badge(r["status"]), r["status"], False),
        (esc(row["iters"]), done, True),
        (esc(row["min_val_loss"]), row["min_val_loss"], True),
        (esc(row["min_val_at"]), row["min_val_at"], True),
        (esc(row["best"]), row["best"], False),
        (num(top and top["val_chrf"]) + (f' @{esc(top["iteration"])}' if top else ""),
         top["val_chrf"] if top else "", True),
        (esc(row["tok_per_s"]), row["tok_per_s"], True),
        (esc(row["peak_mem_gb"]), row["peak_mem_gb"], True),
        (f"<code>{esc(row['commit'])}</code>", None, False),
        (esc(started[:16].replace("T", " ")), started, False),
        (links or "–", len(r["evals"]), False),
    ]


def run_detail(r: dict) -> str:
    m, stamp = r["manifest"], r["manifest"]["stamp"]
    facts = [f"model <code>{esc(m.get('model'))}</code>", f"data <code>{esc(m.get('data_dir'))}</code>",
             f"{esc(r['row']['iters'])} iterations"]
    if m.get("best"):
        whole(m["best"].get("iteration"), "manifest best/ iteration")
        facts.append(f"best/ at iteration {esc(m['best'].get('iteration'))} (chosen on validation by "
                     f"{esc(m['best'].get('criterion', 'val_loss'))})")
    error = f'<p class="neg">error: {esc(m["error"])}</p>' if m.get("error") else ""
    return (f'<section class="run" id="run-{esc(stamp)}"><h3>{esc(stamp)} {badge(r["status"])}</h3>'
            f'<p class="meta">{"; ".join(facts)}</p>{error}'
            f'{img(plots.loss_figure(r["metrics"], stamp), "loss curves of " + stamp)}</section>')


# ---------------------------------------------------------------- evaluations


def p_cell(row: dict, against: str) -> str:
    m = chrf_vs(row, against)
    if not m:
        return ""
    delta = number(m["delta"], f"Δ chrF++ vs {against}")
    cls = "pos" if delta > 0 else "neg" if delta < 0 else ""
    star = "*" if m["significant"] else ""
    p = scores.p_note(m)  # none where the scores are identical
    return (f'<span class="{cls}">{num(delta, "{:+.2f}")}</span>'
            + (f' (p={num(m["p_value"], "{:.3f}", "p")}{esc(star)})' if p else ""))


def eval_section(run_dir: Path, eval_dir: Path, with_text: bool) -> str:
    summary = read_json(eval_dir / "summary.json")
    baselines, ckpts, head, posthoc = normalize(summary)
    head_name = head["checkpoint"] if head else None
    for n, c in {**baselines, **ckpts}.items():  # sorted and drawn by iteration: a string there is damage
        whole(c.get("iteration"), f"row {n!r}: iteration")
        number(c["chrf"], f"row {n!r}: chrF++")
    if head:
        whole(head.get("iteration"), "headline iteration")
    anchor = f"eval-{run_dir.name}-{eval_dir.name}"
    rows_all = {**baselines, **ckpts}
    others = [b for b in baselines if b != "base" and any(b in (r.get("vs_baselines") or {}) for r in rows_all.values())]
    headers = [("row", "row"), ("iter", "iteration"), ("chrf", "chrF++ ±95% CI"), ("d_base", "Δ vs base (p)")]
    headers += [(f"d_{b}", f"Δ vs {b} (p)") for b in others]
    headers += [("bleu", "BLEU"), ("ter", "TER"), ("loops", "loop rate"), ("len", "length ratio"),
                ("semsim", "semsim"), ("ppl", "test ppl"), ("own", "own ref. @1 %"), ("names", "names recall %"),
                ("rep", "8-word repeats %"), ("tm", "beyond translation memory")]
    order = list(baselines) + ([head_name] if head_name in ckpts else []) + sorted(
        (n for n in ckpts if n != head_name), key=lambda n: (ckpts[n]["iteration"] or 0, n))
    rows = []
    for n in order:
        c = {**baselines, **ckpts}[n]
        ci = chrf_ci(c) if n != "base" else base_ci(summary)
        marks = " †" if posthoc.get("chrf") == n else ""
        label = f"<b>{esc(n)}</b> (headline: chosen on validation)" if n == head_name else esc(n)
        cells = [(label + marks, None, False), (num(c.get("iteration"), "{}"), None, True),
                 (num(c["chrf"]) + (" ±" + num(ci) if ci else ""), None, True), (p_cell(c, "base"), None, True)]
        cells += [(p_cell(c, b), None, True) for b in others]
        cells += [(num(c.get("bleu")), None, True), (num(c.get("ter")), None, True),
                  (num(c.get("loop_rate"), "{:.3f}"), None, True), (num(c.get("length_ratio")), None, True),
                  (num(c.get("semsim"), "{:.3f}"), None, True), (num(c.get("test_ppl"), "{:.1f}"), None, True),
                  (pct((c.get("own_reference") or {}).get("accuracy")), None, True),
                  (pct((c.get("names") or {}).get("recall")), None, True), (pct(c.get("repeat8")), None, True),
                  (esc((c.get("beyond_translation_memory") or {}).get("answer", "")), None, False)]
        rows.append(("headline" if n == head_name else "", cells))
    if head_name in ckpts:
        h = ckpts[head_name]
        intro = (f"<p>Headline: <b>{esc(head_name)}</b>, iteration {esc(head.get('iteration'))}, selected on "
                 f"{esc(head.get('selected_on'))}; chrF++ {num(h['chrf'])} vs base {num(baselines['base']['chrf'])}"
                 + (f", vs copy-source {num(baselines['copy-source']['chrf'])}" if "copy-source" in baselines else "")
                 + ".</p>")
    else:
        intro = ('<p class="neg">No headline row: this summary predates validation-chosen headlines '
                 "(re-run <code>make eval</code> to rescore).</p>")
    stale = stale_note(run_dir, summary)
    if stale:
        intro = f'<p class="neg"><b>Stale, not a result:</b> {esc(stale)}.</p>' + intro
    notes = ("<p class='meta'>p: paired bootstrap (sacrebleu, two-sided), * p &lt; 0.05. "
             + (f"† chrF++: {esc(summary['test_posthoc']['note'])}. " if "test_posthoc" in summary else
                "† chrF++: highest on the test set, a post-hoc view (selection on test). ")
             + ("loop rate: " + esc(summary["definitions"]["loop_rate"]) + "." if "definitions" in summary else "")
             + "</p>")
    figs = f'<div class="pair">{img(plots.sweep_figure(summary, f"{run_dir.name}: {eval_dir.name}"), "sweep")}</div>'
    return (f'<section class="eval" id="{esc(anchor)}"><h3>{esc(run_dir.name)} / {esc(eval_dir.name)}</h3>'
            f'<p class="meta">{esc(summary.get("model"))}, {esc(next(iter(baselines.values()))["n"])} test sentences '
            f'({esc(summary.get("test_data"))}), {esc(summary["bootstrap"]["samples"])} bootstrap samples'
            + (f', <b>the sealed test: {esc(ledger.looks_phrase(run_dir.parent, summary.get("test_sha256")))}</b>'
               if summary.get("test_set") == "sealed" else "") + '</p>'
            + (f'<p class="neg">{esc(summary["too_small"])}.</p>' if summary.get("too_small") else "")
            + intro + table(headers, rows) + notes + figs + ab_block(eval_dir, with_text) + "</section>")


def stale_note(run_dir: Path, summary: dict) -> str | None:
    """Why an evaluation is not its run's result: the run has not finished, or moved on since."""
    manifest = olelo.run_manifest(run_dir)
    status = records.status_of(run_dir, manifest)
    if status not in records.DONE:
        return f"its run is {status}; make eval scores a run once it has finished"
    stale = records.stale_reason(run_dir, manifest, summary)
    return stale and f"{stale}; make eval RUN={run_dir.name} scores it again"


def ab_block(eval_dir: Path, with_text: bool) -> str:
    path = eval_dir / "ab.csv"
    if not path.is_file():
        return ("<p class='meta'>No A/B examples here (ab.csv is a local, git-ignored file of the machine "
                "that evaluated).</p>")
    if not with_text:
        return "<p class='meta'>A/B examples left out (--no-text).</p>"
    with open(path, encoding="utf-8", newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: -abs(float(r["delta"])))
    title = (eval_dir / "ab.md").read_text(encoding="utf-8").splitlines()[0].lstrip("# ") \
        if (eval_dir / "ab.md").is_file() else "A/B"
    body = [("", [(f'<span class="{"pos" if float(r["delta"]) > 0 else "neg"}">{num(float(r["delta"]), "{:+.2f}")}</span>',
                   None, True), (esc(r["id"]), None, False), (esc(r["source"]), None, False),
                  (esc(r["reference"]), None, False), (esc(r["base"]), None, False),
                  (esc(r["fine_tuned"]), None, False)]) for r in rows[:AB_ROWS]]
    headers = [("delta", "Δ chrF++"), ("id", "id"), ("source", "source"), ("reference", "reference"),
               ("base", "base"), ("ft", "fine-tuned")]
    return (f"<details><summary>{esc(title)}: the {min(AB_ROWS, len(rows))} largest of {len(rows)} differences"
            f"</summary>{table(headers, body)}</details>")


# ---------------------------------------------------------------- data quality


def data_section(data_dir: Path, with_text: bool) -> str:
    out = ['<h2 id="data">Data quality</h2>']
    reports = sorted((data_dir / "interim").rglob("*.report.json")) if (data_dir / "interim").is_dir() else []
    manifests = sorted((data_dir / "finetuning").rglob("manifest.json")) if (data_dir / "finetuning").is_dir() else []
    if not reports and not manifests:
        return out[0] + f"<p>No data under {esc(data_dir)}/ yet: <code>make data</code>.</p>"
    out += [skip(path, data_report, path, with_text) for path in reports]
    if manifests:
        headers = [("split", "dataset"), ("train", "train"), ("valid", "valid"), ("test", "test"), ("seed", "seed"),
                   ("common", "common test from"), ("sha", "test sha256"), ("order", "train order")]
        rows = [row for path in manifests for row in [skip(path, split_row, path)] if row]
        out.append("<h3>Splits</h3>" + table(headers, rows))
    return "".join(out)


def data_report(path: Path, with_text: bool) -> str:
    out = []
    r = read_json(path)
    c = r.get("counts", {})
    drop = ", ".join(f"{k} {v}" for k, v in (c.get("dropped_by_reason") or {}).items())
    out.append(f"<h3>{esc(path)}</h3><p>{esc(c.get('rows'))} rows → {esc(c.get('pairs'))} pairs → "
               f"{esc(c.get('records'))} records; dropped: {esc(drop)}; flagged misaligned "
               f"{esc(c.get('flagged_misaligned'))} (ratio {esc(r.get('ratio'))} outside "
               f"{esc(r.get('options', {}).get('min_ratio'))}–{esc(r.get('options', {}).get('max_ratio'))}); "
               f"repaired {esc(c.get('repaired'))}.</p>")
    findings = [("flagged", f) for f in r.get("flagged", [])] + [("dropped", f) for f in r.get("dropped", [])] \
        + [("repaired", f) for f in r.get("repaired", [])]
    if findings:
        headers = [("kind", "finding"), ("line", "CSV line"), ("id", "pair id"), ("what", "details")]
        if with_text:
            headers.append(("excerpt", "excerpt"))
        rows = []
        for kind, f in findings:
            what = f.get("reason") or f.get("note") or (f"ratio {f.get('ratio')} ({f.get('haw_chars')} haw / "
                                                        f"{f.get('en_chars')} en chars)")
            cells = [(esc(kind), None, False), (esc(f.get("line")), None, True),
                     (esc(f.get("pair_id", "")), None, False), (esc(what), None, False)]
            if with_text:
                cells.append((esc(f.get("excerpt", "")), None, False))
            rows.append(("bad" if kind == "dropped" else "", cells))
        out.append(table(headers, rows))
    return "".join(out)


def split_row(path: Path):
    m = read_json(path)
    counts = m.get("counts", {})
    # split.py counts {"records", "pairs"} per split; mix_data.py counts records (its
    # small pairs repeat)
    return ("", [(esc(path.parent), None, False)] + [
        (esc(c.get("pairs") if isinstance(c, dict) else c), None, True)
        for c in (counts.get(s) for s in ("train", "valid", "test"))] + [
        (esc(m.get("seed")), None, True), (esc(m.get("common_test_from")), None, False),
        (f"<code>{esc(str(m.get('common_test_sha256') or '')[:12])}</code>", None, False),
        (esc(m.get("train_order", "")), None, False)])


# ---------------------------------------------------------------- page


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def build_page(runs_dir: Path, data_dir: Path, with_text: bool) -> str:
    runs = collect_runs(runs_dir)
    evals = [section for r in runs for e in r["evals"]
             for section in [skip(e / "summary.json", eval_section, r["dir"], e, with_text)] if section]
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>olelo-mlx lab report</title><style>{CSS}</style></head><body>",
        f"<h1>olelo-mlx lab report</h1><p class='meta'>{len(runs)} runs and {len(evals)} evaluations in "
        f"{esc(runs_dir)}/, built {now} at commit <code>{esc(git_commit())}</code> by "
        f"<code>make report</code>.{'' if with_text else ' Quoted text left out (--no-text).'}</p>",
        '<nav><a href="#runs">Runs</a><a href="#curves">Training curves</a>'
        '<a href="#evals">Evaluations</a><a href="#data">Data quality</a></nav>',
        runs_section(runs),
        '<h2 id="curves">Training curves</h2><div class="grid">' + "".join(r["detail"] for r in runs) + "</div>",
        '<h2 id="evals">Evaluations</h2>' + ("".join(evals) or "<p>No evaluations yet: <code>make eval</code>.</p>"),
        data_section(data_dir, with_text),
        f"<script>{JS}</script></body></html>",
    ]
    return "\n".join(parts)
