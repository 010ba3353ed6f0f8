"""The reviewer's report (issue 8): its content from a real build, its refusal to report on
missing or stale builds, and a headless-Chromium test of the page as a reader sees it."""

import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
import urllib.request

import nbformat
import pytest
from markupsafe import escape
from nbformat.v4 import new_output

from dmf_utils import pipeline
from dmf_utils.pipeline import REPO_ROOT, Entry
from dmf_utils.report import CheckLine, ReportError, build_report, check_lines
from test_pipeline import FIGURE_BODY, make_notebook

def esc(text) -> str:
    """As the page's template (jinja2 autoescape) writes ``text``."""
    return str(escape(text))


SCREENSHOTS = REPO_ROOT / "build" / "browser-test"
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import""", re.I)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every notebook built with its smoke parameters, and the report of that build."""
    tmp = tmp_path_factory.mktemp("report")
    figures, build = tmp / "figs", tmp / "b"
    cli = [sys.executable, "-m", "dmf_utils"]
    done = subprocess.run(cli + ["build", "--smoke", "--jobs", "2", "--out", str(figures), "--build", str(build)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    made = subprocess.run(cli + ["report", "--figures", str(figures), "--out", str(tmp / "report")],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    return tmp / "report", made.stdout


def test_check_lines_are_read_from_stdout_with_their_verdict():
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [new_output("stream", name="stdout", text="noise\nbound A: checked 12 cases, held in 12\n"
                                                             "bound B: checked 3 runs, held in 2\n"),
                    new_output("stream", name="stderr", text="bound C: checked 1 run, held in 1\n")]
    found = check_lines(nbformat.v4.new_notebook(cells=[cell]))
    assert found == [CheckLine("bound A", 12, "cases", 12), CheckLine("bound B", 3, "runs", 2)]
    assert [c.ok for c in found] == [True, False]


def test_the_report_lists_every_claim_figure_check_and_provenance(built):
    out, stdout = built
    page = (out / "index.html").read_text()
    entries = pipeline.load_manifest()
    assert "checks failed" not in page and "every check held" in page
    assert f"{len(entries)} of {len(entries)} built with smoke parameters" in page
    for entry in entries.values():
        section = page.split(f'<section id="{entry.id}">')[1].split("</section>")[0]
        record = json.loads((out / "provenance" / f"{entry.id}.json").read_text())
        executed = nbformat.read(REPO_ROOT / record["executed_notebook"]["path"], as_version=4)
        checks = check_lines(executed)
        assert checks and f"{len(checks)}/{len(checks)} checks held" in section and "✗" not in section
        assert esc(entry.claim) in section and "smoke parameters" in section
        for check in checks:
            assert (f"<tr><td>{esc(check.name)}</td><td class=\"num\">{check.held}</td>"
                    f"<td class=\"num\">{check.checked} {esc(check.unit)}</td>") in section
        for name, value in record["parameters"].items():
            shown = f'<th class="mono">{name}</th><td class="mono">{esc(repr(value))}'
            assert shown in section, name
        assert section.count("override</span>") == len(record["overrides"]) > 0
        assert record["git"]["commit"] in section and record["built_at"] in section
        assert record["environment"]["versions"]["numpy"] in section
        for link in (f"figures/{entry.id}.png", f"notebooks/{entry.id}.html", f"source/{entry.id}.ipynb",
                     f"source/{entry.id}.py", f"provenance/{entry.id}.json"):
            assert f'"{link}"' in section and (out / link).is_file(), link
        assert (out / "source" / f"{entry.id}.py").read_text() == entry.notebook.with_suffix(".py").read_text()
        assert f"{entry.id}: {len(checks)}/{len(checks)} checks held" in stdout


def test_every_page_of_the_report_opens_without_network(built):
    out, _ = built
    pages = sorted(out.rglob("*.html"))
    assert len(pages) == 1 + len(pipeline.load_manifest())
    for page in pages:
        assert not EXTERNAL.search(page.read_text()), page.name


def tiny_report_entry(tmp_path, body):
    nb = make_notebook(tmp_path / "tiny.ipynb", "scale = 1.0\ndepths = [2, 3]\nlabel = 'x'", body)
    nb.with_suffix(".py").write_text("# twin\n")
    return Entry("tiny", "a tiny claim", ("tiny.pdf", "tiny.png"), nb, {})


def test_failed_or_missing_check_lines_and_overrides_are_shown(tmp_path):
    entry = tiny_report_entry(tmp_path, FIGURE_BODY + ["print('made up: checked 3 runs, held in 2')"])
    pipeline.run_entry(entry, {"scale": "2.5"}, out_dir=tmp_path / "figs", build_dir=tmp_path / "b")
    page = build_report([entry], figures_dir=tmp_path / "figs", out_dir=tmp_path / "r").read_text()
    assert "checks failed or missing" in page and "0/1 checks held" in page and '<td class="fail">✗</td>' in page
    assert "1 of 1 built with overridden parameters" in page and "(override)" in page
    assert '<th class="mono">scale</th><td class="mono">2.5 <span class="badge note">override</span>' in page
    silent = tiny_report_entry(tmp_path, FIGURE_BODY)
    pipeline.run_entry(silent, out_dir=tmp_path / "figs", build_dir=tmp_path / "b")
    page = build_report([silent], figures_dir=tmp_path / "figs", out_dir=tmp_path / "r").read_text()
    assert "no check lines found" in page and "checks failed or missing" in page


def test_no_report_from_a_missing_or_stale_build_and_the_old_one_survives(tmp_path):
    entry = tiny_report_entry(tmp_path, FIGURE_BODY + ["print('fine: checked 1 run, held in 1')"])
    figs, out = tmp_path / "figs", tmp_path / "r"
    with pytest.raises(ReportError, match=rf"no provenance record .* run `dmf-repro build --out {figs} --force tiny` \(with --smoke if"):
        build_report([entry], figures_dir=figs, out_dir=out)
    assert not out.exists()
    pipeline.run_entry(entry, out_dir=figs, build_dir=tmp_path / "b")
    index = build_report([entry], figures_dir=figs, out_dir=out)
    before = index.read_text()
    (tmp_path / "b" / "tiny.ipynb").write_text("{}")
    with pytest.raises(ReportError, match=rf"executed notebook .* has changed; run `dmf-repro build --out {figs} --force tiny`"):
        build_report([entry], figures_dir=figs, out_dir=out)
    (figs / "tiny.png").write_bytes(b"other")
    with pytest.raises(ReportError, match="tiny.png is missing or is not the file its record describes"):
        build_report([entry], figures_dir=figs, out_dir=out)
    assert index.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".r-")) == []


def test_the_report_is_refused_when_the_notebook_changed_since_its_figure(tmp_path):
    entry = tiny_report_entry(tmp_path, FIGURE_BODY + ["print('fine: checked 1 run, held in 1')"])
    figs = tmp_path / "figs"
    pipeline.run_entry(entry, out_dir=figs, build_dir=tmp_path / "b")
    nb = nbformat.read(entry.notebook, as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace("scale = 1.0", "scale = 4.0")
    nbformat.write(nb, entry.notebook)
    with pytest.raises(ReportError, match=rf"tiny.ipynb has changed since its figure was built.*--out {figs} --force tiny"):
        build_report([entry], figures_dir=figs, out_dir=tmp_path / "r")


def test_the_report_replaces_only_an_earlier_report_and_is_readable_by_all(tmp_path):
    entry = tiny_report_entry(tmp_path, FIGURE_BODY + ["print('fine: checked 1 run, held in 1')"])
    pipeline.run_entry(entry, out_dir=tmp_path / "figs", build_dir=tmp_path / "b")
    mine = tmp_path / "mydocs"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(ReportError, match="is not a report written by `dmf-repro report`"):
        build_report([entry], figures_dir=tmp_path / "figs", out_dir=mine)
    assert (mine / "thesis.tex").read_text() == "precious"
    with pytest.raises(ReportError, match="thesis.tex is a file; the report needs a directory"):
        build_report([entry], figures_dir=tmp_path / "figs", out_dir=mine / "thesis.tex")
    out = tmp_path / "r"
    for _ in range(2):  # the second run replaces the first report
        build_report([entry], figures_dir=tmp_path / "figs", out_dir=out)
    assert (out / "index.html").is_file() and (out / ".dmf-report").is_file()
    assert out.stat().st_mode & 0o755 == 0o755
    (tmp_path / ".r-staging-left").mkdir()  # as an interrupted run leaves it
    build_report([entry], figures_dir=tmp_path / "figs", out_dir=out)
    assert not (tmp_path / ".r-staging-left").exists()


@pytest.fixture(scope="module")
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("Chromium is not installed: `make test` installs Debian's chromium and chromium-driver "
                    "when it runs as root with apt-get (see build/chromium-install.log)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1280,1800"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.set_page_load_timeout(60)
    yield chrome
    chrome.quit()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(built):
    """The report on a loopback HTTP server: ``(base URL, report directory)``."""
    out, _ = built
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/", out
    server.shutdown()
    server.server_close()


IMAGES = "return Array.from(document.images).map(i => [i.currentSrc.slice(0, 120), i.complete, i.naturalWidth]);"
RESOURCES = "return performance.getEntriesByType('resource').map(r => r.name);"


def test_the_page_in_headless_chromium(browser, served):
    """Acceptance: every figure image loads, every link resolves, a screenshot under build/."""
    base, out = served
    browser.get(base + "index.html")
    assert browser.title.startswith("Reviewer's report")
    images = browser.execute_script(IMAGES)
    assert len(images) == len(pipeline.load_manifest())
    assert all(complete and width > 0 for _, complete, width in images), images
    links = browser.execute_script("return Array.from(document.links).map(a => a.href);")
    targets = sorted({link.split("#")[0] for link in links} - {base + "index.html"})
    assert len(targets) == 5 * len(pipeline.load_manifest())  # pdf, html, ipynb, py, json per entry
    for url in targets:
        assert url.startswith(base), url
        with urllib.request.urlopen(url) as response:
            assert response.status == 200 and len(response.read()) > 0, url
    fragments = [link.split("#")[1] for link in links if "#" in link]
    assert fragments and all(browser.find_elements("id", f) for f in fragments)
    assert all(name.startswith(base) or name.startswith("data:") for name in browser.execute_script(RESOURCES))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOTS / "report.png"))  # the first screen
    height = browser.execute_script("return document.documentElement.scrollHeight;")
    browser.set_window_size(1280, min(height, 30000))
    assert browser.save_screenshot(str(SCREENSHOTS / "report-full.png"))
    browser.set_window_size(1280, 1800)

    for url in (t for t in targets if t.endswith(".html")):
        browser.get(url)
        images = browser.execute_script(IMAGES)
        assert images and all(complete and width > 0 for _, complete, width in images), url
        assert all(name.startswith(base) or name.startswith("data:") for name in browser.execute_script(RESOURCES))
        assert browser.find_elements("css selector", ".jp-Cell"), url
    browser.get(base + "notebooks/fig_denoising.html")
    assert browser.save_screenshot(str(SCREENSHOTS / "notebook-fig_denoising.png"))
