"""The report states its setup, shows per-class results and prints to a PDF a reader can use."""

import base64
import io
import os
import shutil
import subprocess

import pytest
import torch
from helpers import as_records, synthetic_record, write_dict
from PIL import Image

from benchmarks.samples import pick, png_strip
from lightning_modules.metrics import confusion_matrix
from reports.build import build_report
from reports.setup import headers

DIGITS = [str(i) for i in range(10)]


def _domain(name, classes, dataset="digits", transform="none", n_train=1257, n_test=540):
    return {
        "name": name,
        "dataset": dataset,
        "classes": classes,
        "n_train": n_train,
        "n_test": n_test,
        "n_unlabeled": 0,
        "transform": transform,
        "native_size": [8, 8],
        "native_channels": 1,
        "used_size": [16, 16],
        "used_channels": 1,
    }


def _records(source_transform="none", **extra):
    out = []
    strip = png_strip(torch.rand(8, 1, 16, 16))
    domains = {
        "source": _domain("digits", DIGITS, transform=source_transform),
        "target": _domain("digits_5to9", DIGITS[5:], n_train=630, n_test=270),
    }
    for regime in ("scratch", "finetune"):
        for k in (1, 5):
            for seed in (0, 1, 2):
                acc = 0.5 + 0.1 * (regime == "finetune") + 0.02 * seed
                confusion = [[10 if i == j else 1 for j in range(5)] for i in range(5)]
                confusion[4] = [0, 0, 0, 0, 20 + seed]  # class 9: every example right
                rec = synthetic_record(
                    regime,
                    k,
                    seed,
                    acc,
                    domains=domains,
                    samples={"source": {"name": "digits", "png": strip}},
                    confusion=confusion,
                    config={"pretrain": {"objective": "simclr", "steps": 200, "batch_size": 256}},
                    info={"pretrain_hash": "abc"} if regime == "finetune" else {},
                    **extra,
                )
                out.append(rec)
    return out


def test_header_lists_the_setup_of_a_tiny_sweep():
    [head] = headers(as_records(_records()))
    target = next(d for d in head["domains"] if d["role"] == "target")
    assert target["classes"] == "5: 5, 6, 7, 8, 9"
    assert (target["n_train"], target["n_test"], target["n_unlabeled"]) == ("630", "270", "0")
    assert (
        target["native"] == "8\u00d78, 1 channel(s)"
        and target["used"] == "16\u00d716, 1 channel(s)"
    )
    assert head["budgets"] == "1 per class (5 labelled), 5 per class (25 labelled)"
    assert head["seeds"] == "3 seed(s): 0, 1, 2"
    assert head["pretraining"] == [
        "simclr: steps 200, batch 256, on the source digits (train split, labels unused)"
        " \u2014 used by finetune"
    ]
    # digits (all classes, same transform) contains the target's digits 5-9
    [warning] = head["warnings"]
    assert warning.startswith("The source contains target images: both are digits")
    assert head["samples"][0]["uri"].startswith("data:image/png;base64,")


def test_no_warning_when_the_source_images_are_transformed():
    [head] = headers(as_records(_records(source_transform="rot90")))
    assert head["warnings"] == []
    assert "different transforms" in head["overlap"][0]


def test_image_folder_source_with_the_targets_root_warns():
    config = {"root": "/data/photos", "dataset": "imagefolder"}
    recs = _records()
    for r in recs:
        r["domains"] = {
            "source": _domain("mine", ["cat", "dog"], "imagefolder"),
            "target": _domain("mine", ["cat", "dog"], "imagefolder"),
        }
        r["config"] |= {"source": config, "data": config}
    [head] = headers(as_records(recs))
    assert "both read the image folder /data/photos" in head["warnings"][0]


def test_old_records_fall_back_to_classes_and_config():
    rec = synthetic_record("scratch", 1, 0, 0.5)
    [head] = headers(as_records([rec]))
    target = next(d for d in head["domains"] if d["role"] == "target")
    assert target["classes"] == "5: 5, 6, 7, 8, 9" and target["n_test"] == "not recorded"


def _need(tool):
    if shutil.which(tool) is None:
        if os.environ.get("REGIMEBENCH_REQUIRE_BROWSER") == "1":  # CI installs poppler-utils
            pytest.fail(f"{tool} is not installed (.ci/run installs poppler-utils)")
        pytest.skip(f"{tool} (poppler-utils) is not installed")


def _pdf_text(path):
    _need("pdftotext")
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout


def _pages(path):
    _need("pdfinfo")
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


@pytest.mark.parametrize("renderer", ["default", "matplotlib"])
def test_pdf_is_the_report_with_findings_and_tables(tmp_path, monkeypatch, renderer):
    if renderer == "matplotlib":
        monkeypatch.setenv("REGIMEBENCH_PDF", "matplotlib")
    for i, rec in enumerate(_records()):
        write_dict(tmp_path / "s" / str(i) / "record.json", rec)
    index = build_report([tmp_path / "s"], tmp_path / "r")
    pdf = index.parent / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF") and _pages(pdf) > 1
    text = " ".join(_pdf_text(pdf).split())
    assert "finetune - scratch, AULC" in text and "+0.100" in text  # the findings
    assert "0.620" in text and "[0.570, 0.670] n=3" in text  # finetune, 1: 0.62 ± t(2) 0.02/√3
    assert "The source contains target images" in text
    page = index.read_text()
    assert "report.pdf: " + ("matplotlib" if renderer == "matplotlib" else "") in page


def test_per_class_accuracy_and_confusion_from_records(tmp_path):
    for i, rec in enumerate(_records()):
        write_dict(tmp_path / "s" / str(i) / "record.json", rec)
    index = build_report([tmp_path / "s"], tmp_path / "r", confusion_budgets=["5"])
    page = index.read_text()
    assert "At 5 per class" in page and "At 1 per class" not in page
    assert "0.714" in page  # 10 of 14 right in classes 5-8; class 9 always right (1.0)
    assert (index.parent / "figures" / "confusion_5.png").stat().st_size > 0
    assert (index.parent / "figures" / "samples_0_source.png").stat().st_size > 0


def test_sample_strip_and_confusion_helpers():
    y = torch.tensor([1, 1, 0, 2, 0, 2, 1])
    assert pick(y, 4).tolist() == [0, 2, 3, 1]  # the first of each class, then the next
    image = Image.open(io.BytesIO(base64.b64decode(png_strip(torch.rand(3, 3, 5, 4)))))
    assert image.size == (3 * 5 - 1, 5) and image.mode == "RGB"
    big = Image.open(io.BytesIO(base64.b64decode(png_strip(torch.rand(2, 1, 128, 128)))))
    assert big.size == (2 * 65 - 1, 64) and big.mode == "L"  # shrunk to 64 px for the record
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    assert confusion_matrix(logits, torch.tensor([0, 1, 1])) == [[1, 0], [1, 1]]


def test_samples_of_a_streamed_domain_equal_the_in_memory_ones():
    from benchmarks.samples import domain_samples, record_samples
    from lightning_modules.domains import Domain
    from lightning_modules.streaming import StreamedImages, TensorImages

    x, y = torch.rand(20, 3, 8, 8), torch.arange(20) % 4
    memory = Domain("d", x, y, x[:4], y[:4], ("a", "b", "c", "d"))
    streamed = Domain(
        "d", StreamedImages(TensorImages(x), tuple(x.shape), 0), y, x, y, memory.class_names
    )
    assert domain_samples(streamed) == domain_samples(memory)
    strips = record_samples(memory, streamed)
    assert strips["target"]["shape"] == [3, 8, 8] and strips["target"]["n"] == 8
    assert len(strips["source"]["png"]) < 4000  # a record stays small (noise: the worst case)
