"""bench/campaigns/ and the docs in step with the code: the GPU passes as lists of commands run by one
script (gpu_pass.sh), no scattered machine paths, every campaign file naming the NOTES.md entry it
served, every file under docs/ and bench/results/ with its provenance, README's module map whole."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from olelo import header

REPO = Path(__file__).resolve().parents[1]
CAMPAIGNS = REPO / "bench" / "campaigns"
PASS = CAMPAIGNS / "gpu_pass.sh"
PASSES = ["gpu_perf_270m", "gpu_perf_pass3", "gpu_runahead", "gpu_perf_pass5", "gpu_perf_pass7", "gpu_perf_pass8"]
# The lead's GPU campaign uses these as they are (their machine paths included).
AS_THEY_ARE = {"campaign_gemma270m.sh", "campaign_pass2.sh", "gpu_venv.sh", "gpu_lab_targets.sh"}


def gpu_pass(*args, env=None, cwd=REPO):
    return subprocess.run(["bash", str(PASS), *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd)


@pytest.mark.parametrize("name", PASSES)
def test_each_removed_pass_script_left_its_commands_in_its_results_header(name):
    head = json.loads((REPO / "bench" / "results" / f"{name}.json").read_text())["header"]
    assert not (CAMPAIGNS / f"{name}.sh").exists()
    commands = head["commands"]
    assert commands and all(isinstance(c, str) and c.strip() and "\n" not in c for c in commands)
    assert f"gpu_pass.sh bench/results/{name}.json" in head["reproduce"]
    for c in commands:  # the lent machine's paths come from gpu_pass.sh's variables, set once
        assert not re.search(r"/root|/tmp", c), c
    out = gpu_pass("--dry-run", f"bench/results/{name}.json", "/some tok")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"# O=/root/lab/out/{name} ") and "TOK=/some tok" in lines[0]
    assert lines[1:] == commands


def test_gpu_pass_runs_every_command_in_order_past_a_failure(tmp_path):
    stub = tmp_path / "venv.sh"  # in place of gpu_venv.sh, which writes the lent machine's /tmp/v
    stub.write_text("V=/nowhere/v\n")
    listing = tmp_path / "my pass.txt"
    listing.write_text('# a comment\n\necho "first $O|$TOK|$Q4"\nfalse\nread x || echo "no stdin"\necho last\n')
    env = {"PATH": "/usr/bin:/bin", "GPU_PASS_VENV": str(stub), "LAB_ROOT": str(tmp_path / "lab"),
           "GPU_HOME": "/home/gpu"}
    out = gpu_pass(listing, "/t k", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    o = tmp_path / "lab" / "out" / "my pass"
    log = (tmp_path / "lab" / "out" / "my pass.log").read_text().splitlines()
    assert log[0] == '= echo "first $O|$TOK|$Q4"' and log[1] == f"first {o}|/t k|/home/gpu/m4b"
    assert re.fullmatch(r"= rc 0 in \d+ s", log[2])
    assert log[3] == "= false" and re.fullmatch(r"= rc 1 in \d+ s", log[4])
    assert "no stdin" in log and log[-2] == "last"  # a command does not eat the list
    assert o.is_dir() and Path(f"{o}.done").exists()
    assert "4 commands run" in out.stdout


def test_gpu_pass_reads_a_console_and_refuses_what_it_cannot_run(tmp_path):
    out = gpu_pass("--dry-run", "bench/results/gpu_perf_pass6.log")
    commands = out.stdout.splitlines()[1:]
    assert out.returncode == 0 and len(commands) == 4
    assert commands[0].startswith("python3 bench/campaigns/gpu_build_model.py") and not any("rc" == c[:2] for c in commands)
    missing = gpu_pass(tmp_path / "nope.txt")
    assert missing.returncode == 2 and "nope.txt: no such file" in missing.stderr
    no_list = gpu_pass("--dry-run", "bench/results/eval_speed.json")
    assert no_list.returncode == 2 and "eval_speed.json: no header.commands list" in no_list.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    assert "no commands" in gpu_pass("--dry-run", empty).stderr
    needs_tok = gpu_pass("bench/results/gpu_perf_pass8.json")  # refused before anything is set up
    assert needs_tok.returncode == 2 and "give TOKENIZER_DIR" in needs_tok.stderr
    assert gpu_pass("--help").stdout.startswith("One GPU performance pass")


def test_campaign_shell_scripts_set_machine_paths_once_as_variables():
    for p in sorted(CAMPAIGNS.glob("*.sh")):
        subprocess.run(["bash", "-n", str(p)], check=True)
        if p.name in AS_THEY_ARE:
            continue
        for n, line in enumerate(p.read_text().splitlines(), 1):
            if re.search(r"/root|/tmp", line):
                assert re.match(r"\s*[A-Z_0-9]+=\$\{[A-Z_0-9]+:-/(root|tmp)[^}]*\}\s*$", line), f"{p.name}:{n}: {line}"


def test_every_campaign_file_names_the_notes_entries_it_served():
    headings = [l[4:] for l in (REPO / "NOTES.md").read_text().splitlines() if l.startswith("### ")]
    for p in sorted(q for q in CAMPAIGNS.iterdir() if q.suffix in (".py", ".sh")):
        head = " ".join(l.lstrip("#").strip() for l in p.read_text().splitlines()[:12])
        assert "Served NOTES.md" in head, f"{p.name}: its head names no NOTES.md entry"
        if p.name == "gpu_pass.sh":
            continue
        served = re.findall(r'(\d{4}-\d\d-\d\d(?: \([^)]*\))?) "([^"]+)"', head.split("Served NOTES.md", 1)[1])
        assert served, p.name
        for date, phrase in served:
            phrase = phrase.rstrip(" …")
            assert any(h.startswith(date + " — ") and phrase in h for h in headings), f"{p.name}: {date} {phrase}"


def test_every_file_under_docs_says_where_it_came_from():
    readme = (REPO / "docs" / "README.md").read_text()
    for p in sorted((REPO / "docs").rglob("*")):
        if not p.is_file() or p.name == "README.md":
            continue
        rel = p.relative_to(REPO / "docs").as_posix()
        if p.suffix == ".json":
            head = json.loads(p.read_text())["header"]
            assert set(header.FIELDS) <= set(head) and head["command"] and head["reproduce"], rel
            if None in (head["commit"], head["date"], head["load"]):
                assert "not recorded" in head["note"], rel
        elif p.with_suffix(".json").exists():
            continue  # make compare's FAMILY.md: its FAMILY.json's header
        else:
            assert f"`{rel}`" in readme, f"docs/{rel}: docs/README.md does not say where it came from"


def test_every_console_log_in_bench_results_names_its_provenance():
    for p in sorted((REPO / "bench" / "results").glob("*.log")):
        first = p.read_text().splitlines()[0]
        if p.with_suffix(".json").exists():
            assert first == f'### provenance: the "header" of bench/results/{p.stem}.json (command, reproduce, ' \
                            'commit, date, machine, load).', p.name
        else:
            head = [l for l in p.read_text().splitlines() if l.startswith("### ")]
            for field in header.FIELDS[:-2] + ("machine", "load"):
                if field != "dirty":
                    assert any(l.startswith(f"### {field}: ") for l in head), f"{p.name}: no {field}"


def test_readme_layout_maps_every_olelo_module():
    readme = (REPO / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1]
    assert "olelo.py" not in readme and "olelo/" in layout
    for p in sorted((REPO / "olelo").glob("*.py")):
        if p.name != "__init__.py":
            assert re.search(rf"^{re.escape(p.name)}\s+\S", layout, re.M), f"README's module map lacks {p.name}"
