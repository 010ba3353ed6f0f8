import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import papermill
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from dmf_utils import baselines, cli, pipeline
from dmf_utils.pipeline import Entry, NotebookFailed, ParameterError

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def make_notebook(path: Path, params_source, body, *, kernel=KERNELSPEC, extra_params=0) -> Path:
    cells = []
    for source in [params_source] * (1 + extra_params) if params_source is not None else []:
        cell = new_code_cell(source)
        cell.metadata["tags"] = ["parameters"]
        cells.append(cell)
    cells += [new_code_cell(src) for src in body]
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i}"
    nb = new_notebook(cells=cells, metadata={"kernelspec": kernel})
    nbformat.write(nb, path)
    return path


FIGURE_BODY = [
    "import matplotlib.pyplot as plt\nfrom dmf_utils.plotting import save_figure",
    "fig, ax = plt.subplots()\nax.plot([0, 1], [scale, 2 * scale])\nsave_figure(fig, 'tiny')\nplt.close(fig)",
    "print(type(scale).__name__, type(depths).__name__, label)",
]


@pytest.fixture
def tiny(tmp_path):
    nb = make_notebook(tmp_path / "tiny.ipynb", "scale = 1.0\ndepths = [2, 3]\nlabel = 'x'", FIGURE_BODY)
    return Entry("tiny", "a tiny notebook", ("tiny.pdf", "tiny.png"), nb, {"scale": 2})


def test_manifest_entries_are_complete_and_valid():
    entries = pipeline.load_manifest()
    assert {"fig_eigenvalue_dynamics", "fig_effective_rank"} <= set(entries)
    for entry in entries.values():
        assert entry.notebook.is_file() and entry.claim
        assert set(entry.outputs) == {f"{entry.id}.pdf", f"{entry.id}.png"}
        assert entry.smoke, f"{entry.id} has no smoke parameters"
        pipeline.resolve_parameters(entry, {}, smoke=True)  # raises if the smoke set is invalid
        # papermill's own parser must agree (it warns about "unknown" parameters otherwise)
        assert set(papermill.inspect_notebook(str(entry.notebook))) == set(
            pipeline.notebook_parameters(entry.notebook)), entry.id


def test_committed_notebooks_carry_the_outputs_nbval_compares():
    """nbval compares nothing in an unexecuted notebook: every code cell must have run and
    the last cell must print the notebook's check lines."""
    for entry in pipeline.load_manifest().values():
        nb = nbformat.read(entry.notebook, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count is not None for c in code), entry.id
        text = "".join(o.get("text", "") for o in code[-1].outputs if o.output_type == "stream")
        assert "held in" in text, entry.id
        assert nb.metadata.get("papermill", {}).get("parameters") == {}, f"{entry.id}: not a default run"


def test_notebook_parameters_reads_literals(tiny):
    assert pipeline.notebook_parameters(tiny.notebook) == {"scale": 1.0, "depths": [2, 3], "label": "x"}


@pytest.mark.parametrize(
    "params, extra, match",
    [
        (None, 0, "0 cells are tagged 'parameters'"),
        ("a = 1", 1, "2 cells are tagged 'parameters'"),
        ("a = 1\nb = a + 1", 0, "only assign literals to names; line 2"),
        ("import os", 0, "only assign literals to names; line 1"),
    ],
)
def test_malformed_parameters_cells_are_refused(tmp_path, params, extra, match):
    nb = make_notebook(tmp_path / "bad.ipynb", params, ["print(1)"], extra_params=extra)
    with pytest.raises(ParameterError, match=match):
        pipeline.notebook_parameters(nb)


@pytest.mark.parametrize(
    "raw, default, expected",
    [
        ("4", 3, 4),
        ("010", 3, 10),  # YAML 1.2: decimal, not octal
        ("4", 0.5, 4.0),
        ("1e-3", 0.5, 0.001),
        ("true", False, True),
        ("False", True, False),
        ("[2, 3]", [4], [2, 3]),
        ("[0, 0.5]", [0.1], [0.0, 0.5]),
        ("007", "seed", "007"),
        ("yes", "seed", "yes"),
        ("None", None, None),
        ("null", None, None),
        ("hello", None, "hello"),
    ],
)
def test_parse_value_types_by_default(raw, default, expected):
    value = pipeline.parse_value(raw, default)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("raw, default", [("3.5", 3), ("x", 3), ("1", True), ("yes", True), ("[1.5]", [2]),
                                          ("2", [2]), ("[1, 2", [2])])
def test_parse_value_rejects_wrong_types(raw, default):
    with pytest.raises(TypeError):
        pipeline.parse_value(raw, default)


def test_resolve_parameters_names_valid_parameters(tiny):
    assert pipeline.resolve_parameters(tiny, {"scale": "3"}) == {"scale": 3.0}
    assert pipeline.resolve_parameters(tiny, {}, smoke=True) == {"scale": 2.0}
    with pytest.raises(ParameterError) as info:
        pipeline.resolve_parameters(tiny, {"sclae": "3"})
    assert "unknown parameter 'sclae'" in str(info.value)
    assert "scale (float, default 1.0), depths (list, default [2, 3]), label (str" in str(info.value)
    with pytest.raises(ParameterError, match="'depths' expects list"):
        pipeline.resolve_parameters(tiny, {"depths": "3"})


def test_run_delivers_outputs_and_types_parameters(tiny, tmp_path):
    out, build = tmp_path / "figs", tmp_path / "build"
    result = pipeline.run_entry(tiny, {"scale": "3", "depths": "[4]"}, out_dir=out, build_dir=build)
    assert sorted(p.name for p in out.iterdir()) == ["tiny.json", "tiny.pdf", "tiny.png"]
    assert result.executed == build / "tiny.ipynb"
    assert result.parameters == {"scale": 3.0, "depths": [4], "label": "x"}  # effective: defaults too
    nb = nbformat.read(result.executed, as_version=4)
    assert nb.cells[-1].outputs[0]["text"] == "float list x\n"
    assert "start_time" not in nb.metadata.papermill and "execution" not in nb.cells[-1].metadata


def test_failed_notebook_keeps_previous_figures(tiny, tmp_path):
    out, build = tmp_path / "figs", tmp_path / "build"
    pipeline.run_entry(tiny, out_dir=out, build_dir=build)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    broken = make_notebook(tmp_path / "tiny.ipynb", "scale = 1.0\ndepths = [2]\nlabel = 'x'",
                           FIGURE_BODY + ["raise RuntimeError('boom')"])
    entry = Entry("tiny", "", tiny.outputs, broken)
    with pytest.raises(NotebookFailed, match=r"cell 5 raised RuntimeError: boom; see .*tiny.ipynb"):
        pipeline.run_entry(entry, {"scale": "5"}, out_dir=out, build_dir=build)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no staging left either


def test_missing_declared_output_is_a_failure(tiny, tmp_path):
    entry = Entry("tiny", "", tiny.outputs + ("tiny.json",), tiny.notebook)
    with pytest.raises(NotebookFailed, match="finished without writing tiny.json"):
        pipeline.run_entry(entry, out_dir=tmp_path / "figs", build_dir=tmp_path / "build")
    assert not list((tmp_path / "figs").iterdir())


def test_store_is_byte_identical_on_rerun(tiny, tmp_path):
    kwargs = dict(out_dir=tmp_path / "figs", build_dir=tmp_path / "build", store=True)
    pipeline.run_entry(tiny, **kwargs)
    first = tiny.notebook.read_bytes()
    pipeline.run_entry(tiny, **kwargs)
    assert tiny.notebook.read_bytes() == first
    nb = nbformat.read(tiny.notebook, as_version=4)
    assert nb.cells[-1].outputs and nb.cells[-1].execution_count is not None
    with pytest.raises(ParameterError, match="--store keeps default-parameter runs only"):
        pipeline.run_entry(tiny, {"scale": "2"}, **kwargs)


def _snapshot(*dirs):
    return {str(p): p.stat().st_mtime_ns for d in dirs if d.exists() for p in d.rglob("*")}


def test_cli_misspelled_parameter_exits_2_and_writes_nothing(capsys):
    """Acceptance: `dmf-repro run fig_effective_rank -p detph=3`."""
    dirs = (pipeline.FIGURES_DIR, pipeline.BUILD_DIR)
    before = _snapshot(*dirs)
    assert cli.main(["run", "fig_effective_rank", "-p", "detph=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter 'detph'" in err and "depth (int, default 3)" in err
    assert _snapshot(*dirs) == before


@pytest.mark.parametrize(
    "argv, match",
    [
        (["run", "fig_nope"], "unknown notebook 'fig_nope'"),
        (["run", "fig_effective_rank", "-p", "depth=3.5"], "'depth' expects int"),
        (["run", "fig_effective_rank", "-p", "depth"], "-p expects name=value"),
        (["params", "fig_nope"], "unknown notebook"),
    ],
)
def test_cli_usage_errors_exit_2(argv, match, capsys):
    assert cli.main(argv) == 2
    assert match in capsys.readouterr().err


def test_cli_list_and_params(capsys):
    assert cli.main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "fig_eigenvalue_dynamics" in listing and "staircase" in listing
    assert cli.main(["params", "fig_effective_rank"]) == 0
    params = capsys.readouterr().out
    assert "depth" in params and "int" in params and "default 3" in params and "smoke" in params


def _clean_shell_env(tmp_path):
    """A shell with nothing activated, no python on PATH and a stale user kernel that would win."""
    home = tmp_path / "home"
    spec = home / ".local/share/jupyter/kernels/python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        '{"argv": ["/nonexistent/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],'
        ' "display_name": "stale", "language": "python"}'
    )
    return {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "JUPYTER_PREFER_ENV_PATH": "0"}


def test_notebooks_run_on_the_venv_kernel_from_a_clean_shell(tmp_path):
    """The 'No such kernel' / stale-kernel trap: the run must use this interpreter's kernel."""
    env = _clean_shell_env(tmp_path)
    bindir = Path(sys.executable).parent
    stale = subprocess.run(
        [sys.executable, "-c", "from jupyter_client.kernelspec import KernelSpecManager as K;"
         "print(K().get_kernel_spec('python3').argv[0])"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert stale == "/nonexistent/python"  # plain Jupyter would pick the stale kernel here
    out, build = tmp_path / "figs", tmp_path / "build"
    proc = subprocess.run(
        [str(bindir / "dmf-repro"), "run", "fig_eigenvalue_dynamics", "--smoke", "--out", str(out),
         "--build", str(build)],
        env=env, capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "fig_eigenvalue_dynamics.json", "fig_eigenvalue_dynamics.pdf", "fig_eigenvalue_dynamics.png"]


def test_divergent_step_size_fails_without_writing_a_figure(tmp_path):
    """Acceptance 4: η = 3 / (N λ_1^{2−2/N}) (step_fraction = 3) names η and the limit."""
    out, build = tmp_path / "figs", tmp_path / "build"
    proc = subprocess.run(
        [sys.executable, "-m", "dmf_utils", "run", "fig_eigenvalue_dynamics", "--smoke",
         "-p", "step_fraction=3", "--out", str(out), "--build", str(build)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1
    assert "DivergenceError" in proc.stderr and "stability limit" in proc.stderr and "eta=" in proc.stderr
    assert not list(out.iterdir())


def test_smoke_runs_go_to_build_smoke_not_figures(tiny, tmp_path):
    result = pipeline.run_entry(tiny, smoke=True, build_dir=tmp_path / "build")
    assert result.executed == tmp_path / "build" / "smoke" / "tiny.ipynb"
    assert {p.parent for p in result.outputs} == {tmp_path / "build" / "smoke"}


def test_orphaned_staging_directories_are_removed(tiny, tmp_path):
    out = tmp_path / "figs"
    dead = out / ".staging-999999999-abc"  # no such process
    dead.mkdir(parents=True)
    live = out / f".staging-{os.getpid()}-abc"  # this process: a run in progress
    live.mkdir()
    pipeline.run_entry(tiny, out_dir=out, build_dir=tmp_path / "build")
    assert not dead.exists() and live.exists()


def test_sigterm_leaves_no_staging_and_good_figures(tmp_path):
    out, build = tmp_path / "figs", tmp_path / "build"
    cmd = [sys.executable, "-m", "dmf_utils", "run", "thm_a_spectral_conditions", "--out", str(out),
           "--build", str(build)]
    out.mkdir()
    (out / "thm_a_spectral_conditions.png").write_bytes(b"good")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(300):  # wait until the notebook is executing
        if list(out.glob(".staging-*")):
            break
        time.sleep(0.05)
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert sorted(p.name for p in out.iterdir()) == ["thm_a_spectral_conditions.png"]
    assert (out / "thm_a_spectral_conditions.png").read_bytes() == b"good"


@pytest.mark.parametrize("notebook_id", list(pipeline.load_manifest()))
def test_every_smoke_set_runs_and_matches_its_baseline(notebook_id, tmp_path):
    """The quick parameters of every notebook pass its own checks (`make smoke`), and the
    figure they draw matches the committed baseline (figure regression)."""
    entry = pipeline.load_manifest()[notebook_id]
    result = pipeline.run_entry(entry, smoke=True, out_dir=tmp_path, build_dir=tmp_path)
    assert sorted(p.name for p in result.outputs) == sorted(entry.outputs)
    png = next(p for p in result.outputs if p.suffix == ".png")
    problem = baselines.compare_with_baseline(entry, png)
    assert problem is None, problem


def test_readme_lists_every_notebook():
    readme = (pipeline.REPO_ROOT / "README.md").read_text()
    for notebook_id in pipeline.load_manifest():
        assert f"`{notebook_id}`" in readme, notebook_id
