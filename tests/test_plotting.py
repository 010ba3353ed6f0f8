import hashlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dmf_utils.plotting import (  # noqa: E402
    EmptyFigureError,
    apply_theme,
    check_figure,
    depth_color,
    figures_dir,
    noise_color,
    save_figure,
    shade_intervals,
)


@pytest.fixture
def out(tmp_path, monkeypatch):
    monkeypatch.setenv("DMF_FIGURES_DIR", str(tmp_path))
    apply_theme()
    yield tmp_path
    plt.close("all")


def _figure(y=(1.0, 2.0, 3.0)):
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], y, label="a")
    ax.set_xlabel("iteration k")
    return fig


def test_figures_dir_follows_environment(out):
    assert figures_dir() == out


def test_save_writes_pdf_and_png_byte_reproducibly(out):
    paths = save_figure(_figure(), "demo")
    assert [p.name for p in paths] == ["demo.pdf", "demo.png"]
    first = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    save_figure(_figure(), "demo")
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths] == first
    pdf = paths[0].read_bytes()
    assert b"/CreationDate" not in pdf and b"/FontFile2" in pdf  # no timestamp, TrueType fonts
    assert not list(out.glob(".*.tmp"))


def test_empty_or_nan_figures_are_refused_and_nothing_is_written(out):
    fig, _ = plt.subplots()
    with pytest.raises(EmptyFigureError, match="draws no data"):
        save_figure(fig, "empty")
    with pytest.raises(EmptyFigureError, match="NaN or inf"):
        save_figure(_figure((1.0, np.nan, 2.0)), "nan")
    assert not list(out.iterdir())


def test_failed_save_keeps_the_previous_figure(out, monkeypatch):
    save_figure(_figure(), "keep")
    before = (out / "keep.png").read_bytes()
    fig = _figure((3.0, 2.0, 1.0))
    real = fig.savefig

    def broken(path, **kwargs):
        real(path, **kwargs)  # writes the temporary file, then fails
        raise KeyboardInterrupt

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(KeyboardInterrupt):
        save_figure(fig, "keep")
    assert (out / "keep.png").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["keep.pdf", "keep.png"]


def test_failed_png_keeps_both_previous_files(out, monkeypatch):
    save_figure(_figure(), "pair")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    fig = _figure((3.0, 2.0, 1.0))
    real = fig.savefig

    def png_fails(path, format=None, **kwargs):
        if format == "png":
            raise OSError("disk full")
        real(path, format=format, **kwargs)

    monkeypatch.setattr(fig, "savefig", png_fails)
    with pytest.raises(OSError, match="disk full"):
        save_figure(fig, "pair")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the PDF was not replaced alone


def test_log_axis_without_positive_data_is_refused(out):
    fig = _figure((0.0, -1.0, -2.0))
    with pytest.warns(UserWarning, match="no positive values"):
        fig.axes[0].set_yscale("log")
    with pytest.raises(EmptyFigureError, match="log axis but no positive data"):
        save_figure(fig, "log")


def test_check_figure_accepts_images_and_shaded_intervals(out):
    fig, (a, b) = plt.subplots(1, 2)
    a.imshow(np.arange(4.0).reshape(2, 2))
    b.plot([1, 2], [1, 2])
    shade_intervals(b, [1, -1], [2, 3], ["C0", "C1"])
    check_figure(fig)
    assert len(b.patches) == 1  # the skipped (start < 0) interval draws nothing
    with pytest.raises(ValueError, match="same length"):
        shade_intervals(b, [1], [2, 3], ["C0"])


def test_colours_are_fixed_and_validated():
    assert depth_color(3) == depth_color(3) != depth_color(4)
    assert noise_color(0.2) != noise_color(0.4)
    with pytest.raises(ValueError, match="depth=9 has no assigned colour"):
        depth_color(9)
    with pytest.raises(ValueError, match="delta=1.5 has no assigned colour"):
        noise_color(1.5)
