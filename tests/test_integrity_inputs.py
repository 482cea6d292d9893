"""The lab record never lies (issue 11), second half: make variables reach the shell
safely, well-formed but wrong data is refused, an expected failure is one line and no
traceback, and no p-value sits beside identical scores. The first half (run identity,
atomic outputs, validation, locks, fuse/upload) is test_integrity.py."""


import csv
import json
import shutil
import subprocess

import pytest

from olelo import checks
from olelo import identity
import olelo
from olelo import records
from olelo import results_tables
from olelo import scores
from conftest import PY, REPO, SCRIPTS, TINY_PAIRS, latest, one_line_error, script, write_csv


# ================================================================ 6. make variables reach the shell safely

@pytest.mark.parametrize("run", ["a;touch {pwn}", "a b", "x:y", "$(shell touch {pwn})", "a'b", "a|b", "`touch {pwn}`"])
def test_a_run_name_with_shell_characters_is_one_clear_error(run_make, tmp_path, run):
    pwn = tmp_path / "pwned"
    out = run_make("eval", f"RUN={run.format(pwn=pwn)}", check=False)
    assert out.returncode != 0 and not pwn.exists()
    assert "RUN=" in out.stderr and "no spaces, quotes or shell characters" in out.stderr
    assert "target pattern" not in out.stderr and "No rule" not in out.stderr


@pytest.mark.parametrize("repo", ["x'; touch {pwn}; '", 'x"; touch {pwn}; "', "a/b' --dry-run '", "a/b$(touch {pwn})"])
def test_hf_repo_with_a_quote_never_runs_commands_nor_uploads(run_make, fused_final, tmp_path, repo):
    pwn = tmp_path / "pwned"
    out = run_make("upload", f"HF_REPO={repo.format(pwn=pwn)}", "DRY_RUN=1", f"FUSED={fused_final}", check=False)
    assert not pwn.exists()
    assert out.returncode != 0 and "is not a Hugging Face repo id" in out.stderr
    assert "uploaded" not in out.stdout


def test_make_quotes_paths_with_spaces_and_unicode(run_make, tmp_path):
    out = run_make("-n", "train-large", "MODEL=/tmp/my models/ʻōlelo 'x'", "HOSTFILE=", check=True)
    line = next(l for l in out.stdout.splitlines() if "mlx_lm.lora" in l)
    import shlex

    words = shlex.split(line)
    assert words[words.index("--model") + 1] == "/tmp/my models/ʻōlelo 'x'"


def test_data_src_with_a_space_works_end_to_end(run_make, shared_data, tmp_path):
    src = tmp_path / "my data ʻōlelo"
    for name in ("fornander/fornander_pairs.csv", "koa/koa_pairs.csv"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / name, src / name)
    raw = tmp_path / "raw"
    run_make("data", f"DATA_SRC={src}", f"RAW_FORNANDER={raw}/fornander/fornander_pairs.csv",
             f"RAW_KOA={raw}/koa/koa_pairs.csv", f"INTERIM={tmp_path}/interim", f"SPLITS={tmp_path}/ft")
    assert json.loads((tmp_path / "ft" / "large" / "manifest.json").read_text())["counts"]["test"]["records"] > 0


@pytest.mark.parametrize("var,value", [("RUNS_DIR", "my runs"), ("DATA", "x;y"), ("SEED", "1;id"), ("DIRECTION", "haw;en"),
                                       ("EVAL_CKPTS", "final 4;id"), ("BOOTSTRAP", "-1"),
                                       ("SEED", "1 2"), ("SPLIT_SEED", "1 2"), ("SPLIT_SEED", "x"), ("LIMIT", "3 4")])
def test_other_variables_make_uses_in_names_are_checked(run_make, var, value):
    out = run_make("-n", "eval", f"{var}={value}", check=False)
    assert out.returncode != 0 and f"{var}=" in out.stderr and "Traceback" not in out.stderr


# ================================================================ 7. data sanity beyond syntax

def mojibake(text: str) -> str:
    return text.encode("utf-8").decode("cp1252", errors="replace")


@pytest.mark.parametrize("bad,needle", [
    (mojibake("Ua hele ke aliʻi i ka moku."), "mojibake"),
    ("Ua hele ke ali\ufffdi i ka moku.", "U+FFFD"),
    ("Ua hele ke ali?i i ka moku.", "'?' in place of an ʻokina"),
    ("Noho ana ka makuak?ne ma ka hale.", "'?' in place"),
])
def test_convert_refuses_damaged_text_with_its_line(tmp_path, bad, needle):
    rows = list(TINY_PAIRS)
    rows[3] = (bad, rows[3][1])
    src = write_csv(tmp_path / "in.csv", rows)
    out = script("convert_fornander.py", src, "-o", tmp_path / "out.jsonl")
    one_line_error(out, f"{src}:5", needle)
    assert not (tmp_path / "out.jsonl").exists()


def test_convert_refuses_mojibake_in_the_english_column_too(tmp_path):
    rows = list(TINY_PAIRS)
    rows[0] = (rows[0][0], "The chiefâ€™s house.")
    out = script("convert_fornander.py", write_csv(tmp_path / "in.csv", rows), "-o", tmp_path / "o.jsonl")
    one_line_error(out, ":2", "English: mojibake")


# Real accented text has the shape of mojibake (a Latin-1 letter before a cp1252 punctuation
# mark: "é’" is E9 92), but is not one whole UTF-8 sequence misread (issue 33).
REAL_TEXT = ["Pelé’s house.", "The café’s door.", "José’s canoe.", "CAFÉ’S SIGN…", "NOËL’S “SONG”.",
             "Señor Müller’s «naïve» façade — São Paulo’s Łódź.", "ÉLAN… CAFÉ”",
             "Ua ʻike ʻo ia i ka ʻāina, nā kāne, ʻēkolu, ʻīlio, ʻōlelo, ʻūlili.", "Ā Ē Ī Ō Ū ʻ ’ ‘"]


@pytest.mark.parametrize("text", REAL_TEXT)
def test_real_accented_text_is_not_mojibake(text):
    assert checks.find_mojibake(text) is None
    assert checks.text_problems(text, hawaiian=False) == []


@pytest.mark.parametrize("meant", ["café", "don’t", "aliʻi", "kāne", "ʻōlelo", "ūlili", "ēkolu", "ʻīlio", "Āina",
                                   "“quoted”", "€5", "e\u0304 (a decomposed kahakō)", "\ufeffAloha", "ḥ"])
@pytest.mark.parametrize("reader", ["cp1252", "latin-1"])
def test_mojibake_is_still_found(meant, reader):
    misread = meant.encode("utf-8").decode(reader, errors="replace")
    found = checks.find_mojibake(misread)
    if found is None:  # cp1252 has no character for 0x81/0x8D/0x9D: those bytes become U+FFFD
        assert "\ufffd" in misread and any("U+FFFD" in p for p in checks.text_problems(misread, False))
    else:
        assert found.encode("latin-1" if reader == "latin-1" else "cp1252").decode("utf-8") in meant


def test_convert_keeps_accented_english_before_a_typographic_quote(tmp_path):
    rows = list(TINY_PAIRS)
    rows[0] = (rows[0][0], "Pelé’s house, the café’s door and José’s canoe.")
    rows[1] = ("Ua ʻike ʻo Pelé i ka hale o José.", "Pelé saw José’s house.")
    out = script("convert_fornander.py", write_csv(tmp_path / "in.csv", rows), "-o", tmp_path / "o.jsonl", check=True)
    assert "mojibake" not in out.stderr
    assert "José’s canoe" in (tmp_path / "o.jsonl").read_text(encoding="utf-8")


def test_convert_refuses_swapped_language_columns(tmp_path):
    rows = [(en, haw) for haw, en in TINY_PAIRS]
    out = script("convert_fornander.py", write_csv(tmp_path / "in.csv", rows), "-o", tmp_path / "o.jsonl")
    one_line_error(out, "does not read as Hawaiian", "swapped")


def test_convert_flags_an_english_cell_in_the_hawaiian_column(tmp_path):
    rows = list(TINY_PAIRS)
    rows[5] = ("All the people wept bitterly that night.", rows[5][1])
    out = script("convert_fornander.py", write_csv(tmp_path / "in.csv", rows), "-o", tmp_path / "o.jsonl",
                 "--report", tmp_path / "r.json", check=True)
    assert "read as another language" in out.stderr and "line(s) 7" in out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert [d["where"].rsplit(":", 1)[1] for d in report["not_hawaiian"]] == ["7"]
    assert report["counts"]["flagged_not_hawaiian"] == 1


def test_real_and_sample_data_pass_the_text_checks(shared_data):
    for path in (shared_data / "fornander" / "fornander_pairs.csv", shared_data / "koa" / "koa_pairs.csv",
                 REPO / "data" / "sample" / "sample_pairs.csv"):
        rows = list(csv.DictReader(open(path, encoding="utf-8-sig")))
        pairs = [(str(i), r["L1 Hawaiian_Text"], r["Reference_Translation"]) for i, r in enumerate(rows)]
        damaged, odd = checks.check_pairs(pairs, str(path))
        assert damaged == [] and odd == [], path


@pytest.mark.parametrize("flag", ["-o", "--report"])
def test_convert_refuses_to_write_over_its_input(tmp_path, flag):
    src = write_csv(tmp_path / "in.csv", TINY_PAIRS)
    before = src.read_bytes()
    args = [src, "-o", tmp_path / "o.jsonl", "--report", tmp_path / "r.json"]
    args[args.index(flag) + 1] = tmp_path / "." / "in.csv"  # the same file by another spelling
    one_line_error(script("convert_fornander.py", *args), "is the input")
    assert src.read_bytes() == before


def test_split_refuses_damaged_records_and_an_input_it_would_replace(lab, tmp_path):
    records = olelo.read_jsonl(lab["root"] / "pairs.jsonl")
    records[2]["messages"][1]["content"] = mojibake("Maikaʻi nō au, mahalo.")
    olelo.atomic_write_jsonl(tmp_path / "bad.jsonl", records)
    out = script("split.py", "--out", tmp_path / "ft", f"x={tmp_path / 'bad.jsonl'}")
    one_line_error(out, "record 3", "mojibake")
    inside = tmp_path / "ft" / "x" / "in.jsonl"
    olelo.atomic_write_jsonl(inside, olelo.read_jsonl(lab["root"] / "pairs.jsonl"))
    out = script("split.py", "--out", tmp_path / "ft", f"x={inside}")
    one_line_error(out, "inside", "which this split replaces")
    assert inside.is_file()


# ================================================================ 8. no traceback for an expected failure

@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB file system (tmpfs), or skip where mounting is not allowed."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", str(mnt)], capture_output=True)


def test_full_disk_is_one_line(small_disk, tmp_path):
    src = write_csv(tmp_path / "in.csv", [(f"{h} {i}", f"{e} {i}") for i in range(200) for h, e in TINY_PAIRS])
    (small_disk / "filler").write_bytes(b"\0" * 60_000)
    out = script("convert_fornander.py", src, "-o", small_disk / "out.jsonl")
    one_line_error(out, "disk is full")
    assert not (small_disk / "out.jsonl").exists()


def test_disk_full_during_training_is_one_line_and_recorded(lab, small_disk):
    cmd = lab["command"]("--save-every", "1", iters=40)
    cmd[cmd.index("--adapters-dir") + 1] = str(small_disk / "adapters")
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    one_line_error(out, "disk is full", "run the same command again")
    manifest = json.loads((latest(lab) / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "write" in manifest["error"]
    assert records.status_of(latest(lab), manifest) == "failed"


def test_read_only_disk_is_one_line(small_disk, tmp_path):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    src = write_csv(tmp_path / "in.csv", TINY_PAIRS)
    one_line_error(script("convert_fornander.py", src, "-o", small_disk / "out.jsonl"), "read-only")


def test_output_path_that_is_a_folder(tmp_path):
    src = write_csv(tmp_path / "in.csv", TINY_PAIRS)
    (tmp_path / "out").mkdir()
    one_line_error(script("convert_fornander.py", src, "-o", tmp_path / "out"), "is a folder")


@pytest.mark.parametrize("encoding,needle", [("utf-16", "UTF-16 LE"), ("utf-16-be", "UTF-16 BE"),
                                             ("cp1252", "not UTF-8")])
def test_wrong_encodings_are_named(tmp_path, encoding, needle):
    text = "L1 Hawaiian_Text,Reference_Translation\n" + "".join(f"{h},{e}\n" for h, e in TINY_PAIRS[:3] if "," not in h + e)
    text = text.replace("ʻ", "'") if encoding == "cp1252" else text
    (tmp_path / "in.csv").write_bytes(("Aloha kakou é\n" if encoding == "cp1252" else "").encode(encoding) +
                                      text.encode(encoding, errors="replace"))
    out = script("convert_fornander.py", tmp_path / "in.csv", "-o", tmp_path / "o.jsonl")
    line = one_line_error(out, needle)
    assert "binary" not in line
    (tmp_path / "in.jsonl").write_bytes(json.dumps({"a": "kākou é"}, ensure_ascii=False).encode(encoding, errors="replace") + b"\n")
    line = one_line_error(script("split.py", "--out", tmp_path / "ft", f"x={tmp_path / 'in.jsonl'}"), needle)


def test_a_model_folder_without_config_json(lab, tmp_path, scratch_copy):
    _, model = scratch_copy
    (model / "config.json").unlink()
    runs = lab["root"] / "runs"
    before = sorted(p.name for p in runs.iterdir())
    out = lab["train"](model_dir=model, check=False)
    one_line_error(out, "no config.json")
    assert sorted(p.name for p in runs.iterdir()) == before


def test_a_corrupt_manifest_is_skipped_by_listings_and_named_by_the_rest(lab, trained, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(trained["run_dir"], runs / trained["stamp"])
    bad = runs / "broken-run"
    bad.mkdir()
    (bad / "manifest.json").write_text('{"stamp": "broken-run", "status": "fini')
    proc = subprocess.run([PY, str(SCRIPTS / "runs_table.py"), "--runs-dir", str(runs)], capture_output=True, text=True)
    assert proc.returncode == 0 and trained["stamp"] in proc.stdout and "broken-run" not in proc.stdout
    assert "warning: skipped" in proc.stderr and "Traceback" not in proc.stderr
    from olelo import report_page

    assert [r["manifest"]["stamp"] for r in report_page.collect_runs(runs)] == [trained["stamp"]]
    one_line_error(script("translate.py", "--run", bad, "-o", tmp_path / "h.jsonl"), "damaged run record")
    one_line_error(script("fuse.py", "--run", bad), "damaged run record")


def test_a_corrupt_manifest_of_the_same_stamp_says_force(lab, trained):
    path = trained["run_dir"] / "manifest.json"
    good = path.read_bytes()
    path.write_text("{not json")
    try:
        one_line_error(lab["train"](check=False), "FORCE=1")
    finally:
        path.write_bytes(good)


def test_run_paths_are_not_doubled(tmp_path):
    with pytest.raises(olelo.UserError) as e:
        olelo.resolve_run("runs/x", tmp_path / "runs")
    assert "runs/runs" not in str(e.value) and "runs/x/manifest.json" in str(e.value)


def test_missing_checkpoint_and_deleted_adapters_are_one_line(run_make, lab, trained, tmp_path):
    common = [f"RUNS_DIR={lab['root'] / 'runs'}", f"ADAPTERS_DIR={lab['root'] / 'adapters'}", f"RUN={trained['stamp']}",
              "LIMIT=2", "MAX_TOKENS=4"]
    out = run_make("eval", *common, "EVAL_CKPTS=7", check=False)
    assert out.returncode != 0 and "No rule to make target" not in out.stderr
    assert "no checkpoint at iteration 0000007" in out.stderr
    moved = tmp_path / "adapters-away"
    shutil.move(trained["adapters"], moved)
    try:
        out = run_make("eval", *common, "EVAL_CKPTS=final", check=False)
        assert out.returncode != 0 and "No rule to make target" not in out.stderr
        assert "adapters were deleted" in out.stderr
        one_line_error(script("fuse.py", "--run", trained["run_dir"], "--ckpt", "final", cwd=tmp_path), "not found")
    finally:
        shutil.move(moved, trained["adapters"])


def test_unknown_data_is_one_line(run_make):
    out = run_make("train-small", "DATA=no-such-set", check=False)
    assert out.returncode != 0 and "No rule" not in out.stderr
    assert "DATA=no-such-set: no dataset" in out.stderr


# ================================================================ 10. score tables

REFS = ["The chief went to the ship.", "All the people wept.", "They will sail to Tahiti.", "I am fine, thank you."]


def finished_run_with_outputs(tmp_path, hyps, **manifest):
    """A finished run (manifest, metrics) whose base and final translated the test set as `hyps`."""
    test = [olelo.chat_record(f"haw {i}", ref, "haw-en", f"p{i}") for i, ref in enumerate(REFS)]
    olelo.atomic_write_jsonl(tmp_path / "data" / "test.jsonl", test)
    olelo.atomic_write_jsonl(tmp_path / "data" / "train.jsonl", [
        olelo.chat_record(f"haw t{i}", f"Train sentence {i}.", "haw-en", f"t{i}") for i in range(3)])
    run = tmp_path / "runs" / "r"
    olelo.atomic_write_json(run / "manifest.json", {
        "stamp": "r", "status": "finished", "model": "m", "iters": 4, "data_dir": str(tmp_path / "data"),
        "adapter_dir": str(tmp_path / "adapters" / "r"),
        "data": {"test_sha256": olelo.sha256_file(tmp_path / "data" / "test.jsonl")}, **manifest})
    (run / "metrics.jsonl").write_text('{"type": "val", "iteration": 4, "val_loss": 1.0}\n')
    for ckpt in ("base", "final"):
        olelo.atomic_write_jsonl(run / "eval" / ckpt / "hyps.jsonl", [
            {"id": t["id"], "source": f"haw {i}", "reference": REFS[i], "hypothesis": h, "tokens": 3, "time": 0.1}
            for i, (t, h) in enumerate(zip(test, hyps))])
    return run


def test_identical_scores_show_no_p_value_anywhere(tmp_path):
    # A run whose fine-tuned checkpoint translates exactly as the base does (as a tiny
    # model after a few steps can): the report must not print p-values beside equal scores.
    hyps = ["The chief went to ship.", "The people wept.", "They sail to Tahiti.", "I am fine."]
    run = finished_run_with_outputs(tmp_path, hyps)
    script("eval_report.py", "--run", run, "--eval-dir", run / "eval", "--bootstrap", "50", check=True)
    md = (run / "eval" / "summary.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| **final**") or line.startswith("| final"))
    verdict = next(line for line in md.splitlines() if line.startswith("- final vs base:"))
    assert "p=" not in row and "p=" not in verdict and "no significant difference" not in verdict
    assert "identical BLEU scores" in verdict and "identical chrF++ scores" in verdict
    # (against copy-source the scores differ, and there a p-value belongs)
    assert "p=" in next(line for line in md.splitlines() if line.startswith("- final vs copy-source:"))
    final = json.loads((run / "eval" / "summary.json").read_text())["checkpoints"]["final"]
    assert all(m["p_value"] is None for m in final["vs_base"]["metrics"].values())


def test_verdict_words_match_the_numbers():
    systems = [["The chief went to the ship.", "All the people wept.", "They sail to Tahiti.", "I am fine."],
               ["A dog.", "A cat.", "A bird.", "A fish."], REFS]
    base = ["The chief went to ship.", "The people wept.", "They sail to Tahiti.", "I am fine, thanks."]
    for hyps in systems:
        cmp = scores.compare(base, hyps, REFS, n_samples=200, seed=5)
        for verdict, m in zip(cmp["verdicts"], cmp["metrics"].values()):
            p = m["p_value"]
            if verdict.startswith("no significant difference"):
                assert p is not None and p >= 0.05 and m["delta"] != 0
            elif " beats " in verdict:
                assert p < 0.05 and m["delta"] != 0
            elif verdict.startswith("not called"):  # 4 sentences: too few for a call either way
                assert cmp["too_small"] and p is not None and m["delta"] != 0 and not m["significant"]
            else:
                assert verdict.startswith("identical") and m["delta"] == 0 and p is None


def test_notes_table_has_no_p_beside_equal_scores(tmp_path):
    runs = tmp_path / "runs"
    vs = {"chrf": {"delta": 0.0, "p_value": 0.001, "significant": False,
                   "base": {"score": 12.0, "ci": 1.0}, "system": {"score": 12.0, "ci": 1.0}}}
    entry = {"bleu": 1.0, "chrf": 12.0, "ter": 90.0, "n": 3, "iteration": 4}
    olelo.atomic_write_json(runs / "r" / "manifest.json", {"stamp": "r", "status": "finished"})
    olelo.atomic_write_json(runs / "r" / "eval" / "summary.json", {"run": "r", "checkpoints": {
        "base": {**entry, "iteration": 0}, "final": {**entry, "vs_base": {"metrics": vs}}}})
    table = "\n".join(results_tables.evaluation_rows(runs, stand_in=False))
    assert "+0.00" in table and "p=" not in table


def test_outputs_made_elsewhere_are_scored_though_the_model_here_differs(tmp_path):
    # A 4-bit run trained and translated on the GPU machine: the model folder of the same
    # name here holds other quantized weights. Translating would be refused (another model);
    # scoring reads the outputs already made there, so only the test set must be the run's.
    model = tmp_path / "models" / "m"
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"model_type": "x"}')
    (model / "model.safetensors").write_bytes(b"weights made here")
    recorded = identity.model_identity(str(model))
    (model / "model.safetensors").write_bytes(b"weights made on the GPU machine")
    hyps = ["The chief went to ship.", "The people wept.", "They sail to Tahiti.", "I am fine."]
    run = finished_run_with_outputs(tmp_path, hyps, model=str(model), model_identity=recorded)
    manifest = json.loads((run / "manifest.json").read_text())
    assert any("weights" in c for c in identity.changes(manifest, splits=("test",)))  # the model did change
    script("eval_report.py", "--run", run, "--eval-dir", run / "eval", "--bootstrap", "50", check=True)
    assert (run / "eval" / "summary.json").is_file()
    # ...while a changed test set still stops it
    test = tmp_path / "data" / "test.jsonl"
    olelo.atomic_write_jsonl(test, olelo.read_jsonl(test)[:3])
    out = script("eval_report.py", "--run", run, "--eval-dir", run / "eval", "--bootstrap", "50")
    one_line_error(out, "cannot be scored", str(test))
