"""Provenance, incremental and parallel builds, parameter files, kernel pre-flight,
determinism and figure regression (issue 5)."""

import hashlib
import json
import subprocess
import sys

import nbformat
import numpy as np
import pytest
from PIL import Image

from dmf_utils import baselines, pipeline, provenance
from dmf_utils.parameters import load_parameter_file
from dmf_utils.pipeline import Entry, NotebookFailed
from test_pipeline import FIGURE_BODY, make_notebook

PARAMS = "scale = 1.0\ndepths = [2, 3]\nlabel = 'x'\nflag = False\nnote = None"


def tiny_entry(tmp_path, name="tiny", body=FIGURE_BODY, params=PARAMS):
    nb = make_notebook(tmp_path / f"{name}.ipynb", params,
                       [b.replace("'tiny'", f"'{name}'") for b in body])
    return Entry(name, f"the {name} claim", (f"{name}.pdf", f"{name}.png"), nb, {"scale": 2})


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_provenance_record_holds_effective_parameters_code_and_versions(tmp_path):
    entry = tiny_entry(tmp_path)
    out = tmp_path / "figs"
    pipeline.run_entry(entry, {"scale": "3"}, out_dir=out, build_dir=tmp_path / "b")
    record = json.loads((out / "tiny.json").read_text())
    assert record["parameters"] == {"scale": 3.0, "depths": [2, 3], "label": "x", "flag": False, "note": None}
    assert record["overrides"] == {"scale": 3.0}
    assert record["notebook"]["sha256"] == provenance.notebook_source_hash(entry.notebook)
    assert record["dmf_utils_sha256"] == provenance.tree_hash(pipeline.PACKAGE_DIR)
    assert set(record["git"]) == {"commit", "dirty"}
    assert {"python", "numpy", "matplotlib", "seaborn", "papermill"} <= set(record["environment"]["versions"])
    assert record["environment"]["blas"], "the BLAS in use is recorded"
    assert record["outputs"] == {n: digest(out / n) for n in entry.outputs}
    assert record["wall_time_s"] > 0
    text = provenance.format_record(record)
    assert "scale  = 3.0  (override)" in text
    assert "git commit" in text and "numpy" in text and "tiny.png" in text


def test_notebook_source_hash_ignores_outputs(tmp_path):
    entry = tiny_entry(tmp_path)
    before = provenance.notebook_source_hash(entry.notebook)
    pipeline.run_entry(entry, out_dir=tmp_path / "f", build_dir=tmp_path / "b", store=True)
    assert provenance.notebook_source_hash(entry.notebook) == before  # outputs stored
    nb = nbformat.read(entry.notebook, as_version=4)
    nb.cells[-1].source += "\n"
    nbformat.write(nb, entry.notebook)
    assert provenance.notebook_source_hash(entry.notebook) != before  # a source edit


def test_incremental_build_skips_unchanged_and_rebuilds_changed(tmp_path):
    entry = tiny_entry(tmp_path)
    kw = dict(out_dir=tmp_path / "figs", build_dir=tmp_path / "b")
    lines = []
    assert [r.status for r in pipeline.build([entry], **kw, log=lines.append)] == ["done"]
    assert [r.status for r in pipeline.build([entry], **kw, log=lines.append)] == ["skipped"]
    assert "tiny: skipped (inputs unchanged)" in lines
    assert [r.status for r in pipeline.build([entry], **kw, force=True)] == ["done"]
    (tmp_path / "figs" / "tiny.png").write_bytes(b"damaged")  # an output no longer matches its record
    assert [r.status for r in pipeline.build([entry], **kw)] == ["done"]
    (tmp_path / "b" / "tiny.ipynb").unlink()  # the executed notebook the record vouches for is gone
    assert [r.status for r in pipeline.build([entry], **kw)] == ["done"]
    assert [r.status for r in pipeline.build([entry], **kw)] == ["skipped"]
    changed = tiny_entry(tmp_path, params=PARAMS.replace("scale = 1.0", "scale = 1.5"))
    assert [r.status for r in pipeline.build([changed], **kw)] == ["done"]


def test_parallel_build_and_keep_going(tmp_path):
    good = tiny_entry(tmp_path, "good")
    bad = tiny_entry(tmp_path, "bad", body=FIGURE_BODY + ["raise ValueError('broken on purpose')"])
    kw = dict(out_dir=tmp_path / "figs", build_dir=tmp_path / "b", jobs=2)
    with pytest.raises(NotebookFailed, match="1 of 2 notebooks failed: bad: cell .* broken on purpose"):
        pipeline.build([bad, good], **kw, keep_going=True)
    assert (tmp_path / "figs" / "good.png").is_file() and not (tmp_path / "figs" / "bad.png").exists()
    results = pipeline.build([good], **kw, force=True)
    assert [r.status for r in results] == ["done"]


def test_parameter_file_and_command_line_give_the_same_types(tmp_path):
    entry = tiny_entry(tmp_path)
    path = tmp_path / "p.yaml"
    path.write_text("scale: 1e-3\ndepths: [4, 5]\nlabel: 'x y'\nflag: true\nnote: null\n")
    from_file = pipeline.resolve_parameters(entry, file_values=load_parameter_file(path))
    from_cli = pipeline.resolve_parameters(
        entry, {"scale": "1e-3", "depths": "[4, 5]", "label": "x y", "flag": "true", "note": "None"})
    assert from_file == from_cli == {"scale": 0.001, "depths": [4, 5], "label": "x y", "flag": True, "note": None}
    assert [type(v) for v in from_file.values()] == [type(v) for v in from_cli.values()]
    assert pipeline.resolve_parameters(entry, {"scale": "2"}, file_values={"scale": 1.0}) == {"scale": 2.0}
    path.write_text("label: 007\n")  # an int in YAML: a string parameter wants it quoted
    with pytest.raises(pipeline.ParameterError, match="quote it in YAML"):
        pipeline.resolve_parameters(entry, file_values=load_parameter_file(path))
    path.write_text("- 1\n- 2\n")
    with pytest.raises(pipeline.ParameterError, match="mapping of parameter names"):
        load_parameter_file(path)


def test_preflight_names_the_fix_when_the_kernel_cannot_start(monkeypatch):
    import ipykernel.kernelspec

    pipeline.preflight_kernel()  # the real kernel starts
    broken = {"argv": ["/nonexistent/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
              "display_name": "broken", "language": "python"}
    monkeypatch.setattr(ipykernel.kernelspec, "get_kernel_dict", lambda *a, **k: broken)
    with pytest.raises(pipeline.KernelUnavailable) as info:
        pipeline.preflight_kernel(timeout=10)
    assert f"fix: {sys.executable} -m pip install --force-reinstall -r {pipeline.LOCK_FILE}" in str(info.value)


def _cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "dmf_utils", *args], capture_output=True, text=True, **kwargs)


QUICK = ["thm_b_perturbed_convergence", "fig_denoising"]


def test_two_forced_builds_are_byte_identical(tmp_path):
    """Acceptance: consecutive `build --force` runs give byte-identical figure files."""
    hashes = []
    for run in range(2):
        out = tmp_path / f"out{run}"
        proc = _cli("build", *QUICK, "--smoke", "--force", "--out", str(out), "--build", str(tmp_path / "b"))
        assert proc.returncode == 0, proc.stderr
        hashes.append({p.name: digest(p) for p in sorted(out.iterdir()) if p.suffix in (".pdf", ".png")})
    assert len(hashes[0]) == 2 * len(QUICK) and hashes[0] == hashes[1]


def test_provenance_command_prints_parameters_commit_and_versions(tmp_path):
    proc = _cli("run", "fig_denoising", "--smoke", "--out", str(tmp_path), "--build", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    shown = _cli("provenance", "fig_denoising", "--out", str(tmp_path))
    assert shown.returncode == 0
    for text in ("effective parameters (smoke set)", "n             = 40  (override)", "git commit",
                 "numpy", "openblas", "fig_denoising.png  sha256", "built at       20", "executed       "):
        assert text in shown.stdout, text
    missing = _cli("provenance", "fig_depth", "--out", str(tmp_path))
    assert missing.returncode == 1 and "no provenance record" in missing.stderr


def test_changed_figure_fails_regression_and_names_a_diff_image(tmp_path):
    entry = pipeline.load_manifest()["fig_denoising"]
    changed = tmp_path / "changed.png"
    image = np.array(Image.open(baselines.baseline_path(entry)).convert("RGB"))
    image[100:140, :, :] = [214, 39, 40]  # a red band across the figure: a changed colour/line
    Image.fromarray(image).save(changed)
    problem = baselines.compare_with_baseline(entry, changed)
    assert problem and "differs from its baseline" in problem and "failed-diff.png" in problem
    diff = problem.split("diff image: ")[1].split(";")[0]
    assert Image.open(diff).size == Image.open(changed).size
    assert baselines.compare_with_baseline(entry, baselines.baseline_path(entry)) is None


@pytest.mark.parametrize("how", ["SIGINT to the process group", "SIGTERM to dmf-repro"])
def test_interrupted_parallel_build_keeps_previous_figures(tmp_path, how):
    """Acceptance: killing a build mid-way leaves every previously built figure intact, and
    nothing runs after the signal (three notebooks on two jobs: one is still queued)."""
    import os
    import signal
    import time

    ids = ["thm_a_spectral_conditions", "fig_beyond_theory", "fig_step_init"]
    out = tmp_path / "figs"
    out.mkdir()
    for name in ids:
        (out / f"{name}.png").write_bytes(b"good figure")
    cmd = [sys.executable, "-m", "dmf_utils", "build", *ids, "--jobs", "2", "--force", "--out", str(out),
           "--build", str(tmp_path / "b")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for _ in range(600):
        if len(list(out.glob(".staging-*"))) == 2:
            break
        time.sleep(0.05)
    time.sleep(1.0)
    if how.startswith("SIGINT"):
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    else:
        proc.send_signal(signal.SIGTERM)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "done in" not in stdout, stdout  # no notebook finished after the signal
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.png" for name in ids)
    assert all(p.read_bytes() == b"good figure" for p in out.iterdir())


def test_notebook_lint():
    """Every notebook: one literal `parameters` cell, a complete kernelspec, and stored
    outputs that are deterministic text (nothing volatile the sanitizer does not cover)."""
    sanitizer = (pipeline.REPO_ROOT / "tests" / "nbval_sanitize.cfg").read_text()
    covered = [line[len("regex: "):] for line in sanitizer.splitlines() if line.startswith("regex: ")]
    volatile = [r"0x[0-9a-fA-F]{6,}", r"\d{4}-\d\d-\d\dT\d\d:\d\d", r"\d+(\.\d+)?\s?(s|ms|sec)\b(?! )",
                r"\d+it/s", r"ipykernel_\d+", r"/tmp/"]
    import re

    for entry in pipeline.load_manifest().values():
        nb = nbformat.read(entry.notebook, as_version=4)
        pipeline.notebook_parameters(entry.notebook)  # exactly one cell, literals only
        spec = nb.metadata.get("kernelspec", {})
        assert spec.get("name") and spec.get("display_name") and spec.get("language") == "python", entry.id
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                assert out.output_type in ("stream", "display_data"), f"{entry.id}: {out.output_type} output"
                if out.output_type == "stream":
                    assert out.name == "stdout", f"{entry.id}: stderr output (a warning?) in a stored notebook"
                    text = out.text
                else:
                    assert set(out.data) <= {"image/png", "text/plain"}, f"{entry.id}: {set(out.data)}"
                    text = out.data["text/plain"]
                for pattern in volatile:
                    for match in re.finditer(pattern, text):
                        assert any(re.search(c, match.group(0)) for c in covered), (
                            f"{entry.id}: volatile output {match.group(0)!r} not covered by the sanitizer")


def test_preflight_reports_a_missing_ipykernel(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ipykernel" else real(name, *a))
    with pytest.raises(pipeline.KernelUnavailable, match="ipykernel is not installed .* fix: .*--force-reinstall"):
        pipeline.preflight_kernel()
