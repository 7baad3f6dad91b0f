"""The HTML report opened the way people open it: headless Chromium renders it and its DOM.

A harness page next to ``index.html`` loads the report in an iframe (``--allow-file-access-from-
files`` lets it read the frame) and writes what the browser saw: each image's decoded size, the
tables, the findings and every resource the page fetched. Chromium is Debian's ``chromium``
package, which ``.ci/run`` installs; without it the test is skipped locally, and fails where
``REGIMEBENCH_REQUIRE_BROWSER=1`` (as in CI).
"""

import json
import os
import re
import subprocess

import pytest
from helpers import synthetic_record, write_dict

from reports.build import build_report
from reports.pdf import HEADLESS, browser

CHROMIUM = browser()
HARNESS = """<!DOCTYPE html><html><body><iframe id="f" src="index.html"></iframe><script>
document.getElementById("f").onload = () => {
  const d = document.getElementById("f").contentDocument;
  const out = {
    images: [...d.images].map(i => [i.alt, i.naturalWidth, i.naturalHeight]),
    tables: d.querySelectorAll("table").length,
    findings: [...d.querySelectorAll("#findings + ul li")].map(li => li.textContent),
    fetched: d.defaultView.performance.getEntriesByType("resource").map(e => e.name),
  };
  const pre = document.createElement("pre");
  pre.id = "result";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
};
</script></body></html>"""


@pytest.fixture
def report(tmp_path):
    """A report built by the real code from records with known values."""
    accs = {("scratch", 1): [0.5, 0.55, 0.6], ("finetune", 1): [0.8, 0.85, 0.9]}
    accs |= {("scratch", 5): [0.8, 0.82, 0.84], ("finetune", 5): [0.9, 0.91, 0.92]}
    for (regime, k), values in accs.items():
        for seed, acc in enumerate(values):
            forgetting = 0.02 if regime == "finetune" else None
            record = synthetic_record(regime, k, seed, acc, forgetting=forgetting)
            write_dict(tmp_path / "sweep" / f"{regime}{k}{seed}" / "record.json", record)
    return build_report([tmp_path / "sweep"], tmp_path / "report").parent


def _chromium(args, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("REGIMEBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed")
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
    cmd = [CHROMIUM, *HEADLESS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_report_renders_in_headless_chromium(report, tmp_path):
    (report / "harness.html").write_text(HARNESS)
    proc = _chromium(
        [
            "--allow-file-access-from-files",
            "--virtual-time-budget=10000",
            "--dump-dom",
            (report / "harness.html").as_uri(),
        ],
        tmp_path,
    )
    found = re.search(r'<pre id="result">(.*?)</pre>', proc.stdout, re.S)
    assert found, proc.stdout[-2000:] + proc.stderr[-2000:]
    seen = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert len(seen["images"]) == len(list((report / "figures").glob("*.png"))) >= 2
    assert all(w > 0 and h > 0 for _, w, h in seen["images"]), seen["images"]  # all decoded
    assert seen["tables"] >= 4
    # the primary endpoint first: per-seed AULC (0.2, 0.195, 0.19) - the mean is 0.195
    assert seen["findings"][0].startswith("finetune - scratch, AULC")
    assert "+0.195 [" in seen["findings"][0] and "finetune is higher" in seen["findings"][0]
    assert seen["fetched"] == []  # plots are embedded; the page loads nothing
    page = (report / "index.html").read_text()
    assert not re.search(r'(src|href)="https?://', page)

    shot = tmp_path / "report.png"
    _chromium(
        [
            "--hide-scrollbars",
            "--window-size=1200,2400",
            f"--screenshot={shot}",
            (report / "index.html").as_uri(),
        ],
        tmp_path,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
