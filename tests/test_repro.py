"""regimebench-repro passes on an unchanged code base and names the runs a planted change moves."""

import pytest

from benchmarks.repro import main
from benchmarks.run import execute


@pytest.fixture
def sweep(compose_cfg, tmp_path):
    for regime in ("scratch", "linear_probe"):
        execute(compose_cfg(f"regime={regime}", "budget.per_class=2"), tmp_path / "s" / regime)
    return tmp_path / "s"


def test_unchanged_code_reproduces_bit_for_bit(sweep, capsys):
    assert main([str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "2 runs reproduced within 0.0" in out
    assert "\n  test/acc " in out  # metric rows sit under the header, below their run's folder


def test_planted_change_fails_and_names_the_run(sweep, capsys, monkeypatch):
    import lightning_modules.classifier as classifier

    # a "bug" in target training: the augmentation rotates three times as far
    original = classifier.random_affine
    monkeypatch.setattr(classifier, "random_affine", lambda x, gen: original(x, gen, rotate=0.75))
    assert main([str(sweep)]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out
    assert "1 of 2 runs differ" in out
    assert str(sweep / "scratch") in out  # the probe never trains, so it still reproduces


def test_empty_folder_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no readable record.json" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args", [["--runs", "0"], ["--runs", "-1"], ["--tolerance", "-1"], ["--tolerance", "nan"]]
)
def test_nonsense_options_stop_at_parse_time(args, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path), *args])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "is not" in err[-1]
    assert "Traceback" not in "\n".join(err)
