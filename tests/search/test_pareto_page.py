"""Issue 20, item 5: the Pareto page in a real browser (headless Chromium, Debian's `chromium`; `.ci/run` installs it
where it runs as root). Skipped with the reason where no browser is installed."""

import shutil
import subprocess

import pytest

from kunlun.search.cli import main

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=10000", "--window-size=1200,800"]


def _browser(tmp_path, page, *args):
    return subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=120)


def test_page_loads_plotly_from_one_shared_file_and_says_what_it_plots(tmp_path, hand_study, capsys):
    hand_study(tmp_path / "all" / "a")
    hand_study(tmp_path / "all" / "b")
    assert main(["pareto", str(tmp_path / "all"), "--format", "json"]) == 0
    page = (tmp_path / "all" / "pareto.html").read_text()
    assert len(page) < 100_000 and '<script charset="utf-8" src="plotly.min.js"></script>' in page
    assert (tmp_path / "all" / "plotly.min.js").stat().st_size > 1_000_000  # one copy for the folder's pages
    for hover in ("NE 0.97000", "AUC 0.7000", "predicted B200", "training FLOPs", "seq share 50.0 %",
                  "schedule none", "windows click=full, impression=4", "worse than the base rate"):
        assert hover in page, hover
    assert "budget 4e+06 per example; time predicted on B200" in page  # the title
    assert '"orientation":"h"' in page  # the legend under the plot, the colorbar beside it


@pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (apt-get install chromium; .ci/run does as root)")
def test_page_renders_offline_in_headless_chromium(tmp_path, hand_study):
    from PIL import Image

    study = hand_study(tmp_path / "s")
    assert main(["pareto", str(study)]) == 0
    page = study / "pareto.html"
    dom = _browser(tmp_path, page, "--dump-dom").stdout
    assert 'class="main-svg"' in dom and dom.count('class="point"') >= 4  # plotly drew both traces' points
    assert "colorbar" in dom and 'class="legend"' in dom
    shot = tmp_path / "shot.png"
    _browser(tmp_path, page, f"--screenshot={shot}")
    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 50  # not a blank page
    # plotly's plot background (#E5ECF6) fills a good part of the shot: the plot area was drawn
    plot_bg = sum(n for n, c in colours if c == (229, 236, 246))
    assert plot_bg > 0.1 * image.width * image.height
