"""The sweeps' and the benchmark's command lines: bad arguments are one line and exit 2,
said in the parent process before any worker starts."""

import pytest

from hfstream.eval.__main__ import main as evaluate
from sim.sweep import main as sweep
from sim.video_sweep import main as video_sweep


@pytest.mark.parametrize(
    "argv, message",
    [
        (["{missing}"], 'no folder "{missing}": a folder of images (.bmp'),
        (["{empty}"], "No images"),
        (["{empty}", "--loss-models", "bernouli"], "invalid choice: 'bernouli'"),
        (["{empty}", "--rates", "20"], "--rates: must be at least 0 and below 1, got 20"),
        (["{empty}", "--methods", "jpg"], "invalid choice: 'jpg'"),
    ],
)
def test_sweep_arguments_fail_in_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    names = {"missing": str(tmp_path / "missing"), "empty": str(tmp_path / "empty")}
    with pytest.raises(SystemExit) as e:
        sweep([x.format(**names) for x in argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message.format(**names) in err and err.count("\n") == 1, err


def test_video_sweep_arguments_fail_in_one_line(tmp_path, capsys):
    for argv, message in (
        (["--loss-models", "bernouli"], "invalid choice: 'bernouli'"),
        (["--rates", "20"], "--rates: must be at least 0 and below 1, got 20"),
        (["--image", str(tmp_path / "no.png")], "no file"),
    ):
        with pytest.raises(SystemExit) as e:
            video_sweep([*argv, "--out", str(tmp_path / "out")])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_sweep_help_shows_defaults_methods_and_loss_models(capsys):
    with pytest.raises(SystemExit):
        sweep(["--help"])
    out = capsys.readouterr().out
    assert "(default: 0.05)" in out and "bernoulli, gilbert" in out and "webp-fec" in out


def test_eval_without_its_folder_says_which_folder_in_one_line(tmp_path, capsys):
    assert evaluate([str(tmp_path / "val")]) == 2
    err = capsys.readouterr().err
    assert f'no folder "{tmp_path / "val"}": a folder of images' in err
    assert err.count("\n") == 1 and err.startswith("python -m hfstream.eval: error:")


def test_eval_refuses_a_budget_outside_the_range_in_one_line(tmp_path, capsys):
    assert evaluate([str(tmp_path), "--budgets", "0.05", "-1"]) == 2
    err = capsys.readouterr().err
    assert "--budgets must lie in (0, 8] bpp" in err and err.count("\n") == 1
