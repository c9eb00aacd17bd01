"""A user's mistake is one line, ``prime-augment COMMAND: message``, exit status 2, never a traceback.

Each case runs the command as a user does (a subprocess of ``python -m prime_augment``) on tiny numpy
datasets; the help-text and numeric-option checks walk every command's parser in-process.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from recipes_fixtures import npy_corruptions, numpy_dataset

from prime_augment.cli import COMMANDS
from prime_augment.cli import main as cli_main
from prime_augment.recipes.benchmark import train

ROOT = Path(__file__).resolve().parents[1]
TRAIN = [
    "train", "--dataset", "numpy", "--arch", "cifar_resnet8", "--epochs", "1", "--batch-size", "16",
    "--workers", "0", "--threads", "1", "--device", "cpu", "--no-progress",
]  # fmt: skip
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "prime_augment", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=cwd, timeout=120)


def one_line(proc: subprocess.CompletedProcess, status: int, command: str, *words: str) -> str:
    """The last stderr line, after checking the status, the absence of a traceback and the words."""
    assert proc.returncode == status, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"prime-augment {command}: "), line
    assert line.count(f"prime-augment {command}: ") == 1, line
    for w in words:
        assert w in line, (w, line)
    return line


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return numpy_dataset(tmp_path_factory.mktemp("cli") / "np")


@pytest.fixture(scope="module")
def finished(data) -> Path:
    """A finished one-epoch run (trained in this process: no interpreter start)."""
    out = data.parent / "done"
    assert train.main([*TRAIN[1:], "--data-dir", str(data), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize(
    "option, value",
    [("--batch-size", "0"), ("--strength", "-1"), ("--lr", "nan")],
)
def test_train_numeric_option_out_of_range(data, option, value):
    proc = cli(*TRAIN, "--data-dir", str(data), "--out", "o", "--augment", "prime", option, value, cwd=data)
    line = one_line(proc, 2, "train", f"argument {option}", repr(value))
    assert "expected" in line and not (data / "o").exists()


def test_resume_with_other_settings(finished):
    record = (finished / "config.json").read_text()
    args = [*TRAIN, "--data-dir", str(finished.parent / "np"), "--out", str(finished), "--resume"]
    one_line(cli(*args, "--epochs", "3", cwd=finished.parent), 2, "train", "--resume", "epochs: 1 -> 3")
    assert (finished / "config.json").read_text() == record  # the refused options are not recorded


def test_resume_on_a_finished_run_says_it_is_complete(finished):
    stamp = (finished / "model.pt").stat().st_mtime_ns, (finished / "config.json").read_text()
    args = [*TRAIN, "--data-dir", str(finished.parent / "np"), "--out", str(finished), "--resume"]
    one_line(cli(*args, cwd=finished.parent), 0, "train", "complete", "nothing to do")
    assert ((finished / "model.pt").stat().st_mtime_ns, (finished / "config.json").read_text()) == stamp


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_resume_from_a_damaged_checkpoint(finished, tmp_path, damage):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / "model.pt").unlink()
    ckpt = run / "checkpoint.pt"
    ckpt.write_bytes(b"not a checkpoint\n" if damage == "garbage" else ckpt.read_bytes()[:2000])
    args = [*TRAIN, "--data-dir", str(finished.parent / "np"), "--out", str(run), "--resume"]
    one_line(cli(*args, cwd=tmp_path), 2, "train", "cannot read the checkpoint", str(ckpt))


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_evaluate_a_damaged_model_file(finished, tmp_path, damage):
    model = tmp_path / "model.pt"
    good = (finished / "model.pt").read_bytes()
    model.write_bytes(b"\x00garbage" * 8 if damage == "garbage" else good[: len(good) // 2])
    data = finished.parent / "np"
    cdir = npy_corruptions(tmp_path / "c", np.load(data / "test_images.npy")[:4], np.zeros(4, np.int64))
    args = ["evaluate", "--run", str(model), "--corruptions-dir", str(cdir), "--out", str(tmp_path / "e")]
    proc = cli(*args, "--device", "cpu", "--workers", "0", "--no-progress", cwd=tmp_path)
    one_line(proc, 2, "evaluate", "cannot read the model file", str(model))


def test_a_negative_label(tmp_path):
    data = numpy_dataset(tmp_path / "np")
    labels = np.load(data / "train_labels.npy")
    labels[7] = -1
    np.save(data / "train_labels.npy", labels)
    proc = cli(*TRAIN, "--data-dir", str(data), "--out", "o", cwd=tmp_path)
    one_line(proc, 2, "train", "labels must be class indices >= 0", "-1 at index 7")


def test_zero_training_images(tmp_path):
    data = numpy_dataset(tmp_path / "np")
    np.save(data / "train_images.npy", np.zeros((0, 16, 16, 3), np.uint8))
    np.save(data / "train_labels.npy", np.zeros(0, np.int64))
    proc = cli(*TRAIN, "--data-dir", str(data), "--out", "o", cwd=tmp_path)
    one_line(proc, 2, "train", "train_images.npy holds no images")


def test_ctrl_c_keeps_the_checkpoint_and_prints_the_resume_command(data, tmp_path):
    out = tmp_path / "run"
    argv = [*TRAIN[1:], "--epochs", "300", "--data-dir", str(data), "--out", str(out)]
    cmd = [sys.executable, "-m", "prime_augment", "train", *argv]
    pipe = subprocess.PIPE
    proc = subprocess.Popen(cmd, stdout=pipe, stderr=pipe, text=True, env=ENV, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 90
        log = out / "train.log"
        while not (log.exists() and "epoch 1/300" in log.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, "no epoch in the log"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    line = one_line(subprocess.CompletedProcess(cmd, proc.returncode, "", err), 130, "train", "interrupted")
    kept = re.search(r"kept (\S+) after epoch (\d+)/300; continue with: (.+)$", line)
    assert kept, line
    assert Path(kept[1]) == out / "checkpoint.pt"
    assert torch.load(out / "checkpoint.pt", weights_only=False)["epoch"] == int(kept[2])
    assert shlex.split(kept[3]) == ["prime-augment", "train", *argv, "--resume"]


# ---------------------------------------------------------------------------------------------- parsers
#: commands whose modules belong to other work in progress: their options (help lines, numeric types)
#: and, for the ones that do not parse through _common.parse_with_config, their help text
OPTIONS_ELSEWHERE: set[str] = set()
HELP_ELSEWHERE: set[str] = set()


def _parsers(command: str) -> list[argparse.ArgumentParser]:
    parser = importlib.import_module(COMMANDS[command][0]).build_parser()
    found, stack = [], [parser]
    while stack:
        p = stack.pop()
        found.append(p)
        stack += [
            c for a in p._actions if isinstance(a, argparse._SubParsersAction) for c in a.choices.values()
        ]
    return found


def _options(command: str):
    for p in _parsers(command):
        for a in p._actions:
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
                yield p, a


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - OPTIONS_ELSEWHERE))
def test_every_option_has_a_help_line_and_numbers_are_checked(command):
    for p, a in _options(command):
        assert a.help, f"{p.prog} {a.option_strings or a.dest}: no help line"
        assert a.type not in (int, float), f"{p.prog} {a.option_strings}: type={a.type.__name__} takes nan/-1"
        if getattr(a.type, "__name__", "") in ("int", "float"):  # the checked types of _common.number
            with pytest.raises(argparse.ArgumentTypeError, match="expected"):
                a.type("nan")


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - HELP_ELSEWHERE))
def test_help_is_plain_text(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main([command, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for markup in ("``", ":func:`", ":mod:`", ":class:`", ":meth:`", "**"):
        assert markup not in text, (markup, text[max(0, text.find(markup) - 200) : text.find(markup) + 50])
    for p in _parsers(command)[1:]:  # sub-commands
        assert "``" not in p.format_help()


def test_a_genuine_bug_keeps_its_traceback(monkeypatch):
    from prime_augment.recipes.studies import sweep

    def broken(argv):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(sweep, "main", broken)
    with pytest.raises(ZeroDivisionError):
        cli_main(["strength-sweep"])
