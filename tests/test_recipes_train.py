"""The training engine and ``prime-augment train``: augmentation paths, exact resume, hooks, DDP on gloo."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from recipes_fixtures import class_images, npy_corruptions, numpy_dataset

from prime_augment import PRIME
from prime_augment.recipes.benchmark import train
from prime_augment.recipes.benchmark.data import ArrayDataset, build_data
from prime_augment.recipes.benchmark.engine import (
    Augmentation,
    EpochSampler,
    TrainConfig,
    Trainer,
    build_optimizer,
    build_scheduler,
    seed_everything,
)
from prime_augment.recipes.benchmark.models import build_model, load_model

ROOT = Path(__file__).resolve().parents[1]


def _array_set(n=48, size=16):
    x, y = class_images(n, size, 3, 0)
    return ArrayDataset(x, y)


class _Interrupt(Exception):
    pass


def _fit(out, aug, *, workers=0, interrupt_at=None, resume=False, epochs=2, jsd=False):
    spec = build_data("numpy", numpy_dataset(out.parent / "np", n_train=32, size=12))
    seed_everything(0)
    model = build_model("cifar_resnet8", 3)
    cfg = TrainConfig(epochs=epochs, batch_size=16, lr=0.1, workers=workers, progress=False, seed=3, jsd=jsd)

    def on_step(trainer, epoch, step):
        if interrupt_at == (epoch, step):
            raise _Interrupt

    t = Trainer(
        model,
        spec.train,
        spec.train_transform,
        cfg,
        aug,
        out_dir=out,
        arch="cifar_resnet8",
        num_classes=3,
        on_step=on_step,
    )
    return t.fit(resume=resume)


@pytest.mark.parametrize(
    "kind, placement, workers, jsd",
    [("prime", "device", 0, True), ("prime", "workers", 1, False), ("augmix", "workers", 0, False)],
)
def test_resume_after_interruption_is_exact(tmp_path, kind, placement, workers, jsd):
    def aug():
        prime = PRIME.from_preset("cifar10") if kind == "prime" else None
        return Augmentation(kind, prime=prime, placement=placement)

    full = _fit(tmp_path / "full", aug(), workers=workers, jsd=jsd)
    with pytest.raises(_Interrupt):  # killed in the middle of the second (last) epoch
        _fit(tmp_path / "cut", aug(), workers=workers, interrupt_at=(1, 0), jsd=jsd)
    ckpt = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)
    assert ckpt["epoch"] == 1 and not (tmp_path / "cut" / "model.pt").exists()
    with pytest.raises(FileExistsError, match="--resume"):
        _fit(tmp_path / "cut", aug(), workers=workers, jsd=jsd)
    resumed = _fit(tmp_path / "cut", aug(), workers=workers, resume=True, jsd=jsd)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]
    m1, _ = load_model(tmp_path / "full")
    m2, _ = load_model(tmp_path / "cut")
    x = torch.rand(4, 3, 12, 12)
    assert torch.equal(m1(x), m2(x))


def test_resume_refuses_other_settings(tmp_path):
    _fit(tmp_path / "r", Augmentation("none"), epochs=1)
    with pytest.raises(ValueError, match="epochs: 1 -> 3"):
        _fit(tmp_path / "r", Augmentation("none"), epochs=3, resume=True)


def test_progress_bar_shows_the_smoothed_loss_every_step(tmp_path):
    from prime_augment.recipes.benchmark.engine import SmoothedLoss

    seen = []

    def on_step(trainer, epoch, step):
        seen.append(trainer.bar.postfix)

    t = Trainer(
        build_model("cifar_resnet8", 3),
        _array_set(),
        None,
        TrainConfig(epochs=1, batch_size=8, workers=0, progress=True),
        out_dir=tmp_path / "p",
        arch="cifar_resnet8",
        on_step=on_step,
    )
    res = t.fit()
    assert len(seen) == 6 and all(s and s.startswith("loss=") for s in seen)
    assert len(set(seen)) > 1  # updated at every step on the CPU, not every 20th
    smooth = SmoothedLoss(beta=0.9)
    for loss in (2.0, 1.0, 3.0):
        smooth.update(torch.tensor(loss))
    ema = (0.9 * (0.9 * 0.1 * 2.0 + 0.1 * 1.0) + 0.1 * 3.0) / (1 - 0.9**3)  # bias-corrected
    assert smooth.value() == pytest.approx(ema) and res.history[0]["loss"] > 0


def test_schedules():
    model = torch.nn.Linear(2, 2)
    for sched, first_peak in (("onecycle", 0.2), ("linear", 0.2)):
        cfg = TrainConfig(epochs=2, lr=0.2, schedule=sched, warmup_epochs=0.5 if sched == "linear" else 0.0)
        opt = build_optimizer(model, cfg)
        assert opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9
        s = build_scheduler(opt, cfg, steps_per_epoch=10)
        lrs = []
        for _ in range(20):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            s.step()
        assert max(lrs) == pytest.approx(first_peak, rel=1e-6)
        assert lrs[-1] < 0.1 * first_peak
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(epochs=1, schedule="cosine")


def test_sampler_hook_and_model_selection(tmp_path):
    ds = _array_set()
    zeros = [i for i in range(len(ds)) if ds.labels[i] == 0]
    calls = []

    def only_class_zero(epoch, g):
        calls.append(epoch)
        return [zeros[i] for i in torch.randint(len(zeros), (32,), generator=g).tolist()]

    scores = iter([10.0, 30.0, 20.0])
    t = Trainer(
        build_model("cifar_resnet8", 3),
        ds,
        None,
        TrainConfig(epochs=3, batch_size=16, workers=0, progress=False),
        out_dir=tmp_path / "s",
        arch="cifar_resnet8",
        sampler_fn=only_class_zero,
        validate_fn=lambda m: {"acc": next(scores)},
        select_metric="acc",
    )
    res = t.fit()
    assert res.best == {"epoch": 2, "metric": "acc", "value": 30.0}
    assert [h["val_acc"] for h in res.history] == [10.0, 30.0, 20.0]
    _, meta = load_model(tmp_path / "s" / "best.pt")
    assert meta["selection"]["epoch"] == 2
    assert set(calls) == {0, 1, 2}
    s = EpochSampler(10, 0, rank=1, world_size=3)
    s.set_epoch(4)
    assert len(list(s)) == len(s) == 4 and list(s) == list(s)  # a pure function of (seed, epoch)


def test_augmentation_checks():
    with pytest.raises(ValueError, match="AugMix draws one set"):
        Augmentation("augmix", placement="device")
    with pytest.raises(TypeError, match="PRIME"):
        Augmentation("prime")
    with pytest.raises(ValueError, match="jsd needs"):
        Trainer(torch.nn.Linear(1, 1), _array_set(), None, TrainConfig(epochs=1, jsd=True))
    aug = Augmentation("prime", prime=PRIME.from_preset("cifar10"))
    assert aug.resolve(torch.device("cpu")) == "workers" and aug.resolve(torch.device("cuda")) == "device"
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    views = Augmentation("prime", prime=PRIME.from_preset("cifar10"), placement="device").on_device(
        x, torch.device("cpu"), jsd=True, num_splits=3
    )
    assert views.shape == (12, 3, 8, 8) and torch.equal(views[:4], x.float() / 255)


TRAIN = [
    "--dataset",
    "numpy",
    "--arch",
    "cifar_resnet8",
    "--epochs",
    "1",
    "--batch-size",
    "16",
    "--workers",
    "0",
    "--device",
    "cpu",
    "--no-progress",
]


@pytest.mark.parametrize(
    "extra",
    [
        ["--augment", "none"],
        ["--augment", "augmix", "--jsd"],
        [
            "--augment",
            "prime",
            "--primitives",
            "spectral,spatial",
            "--augment-on",
            "device",
            "--depth-mode",
            "uniform",
        ],
        ["--augment", "prime", "--offline-copies", "2", "--jsd"],
        ["--augment", "prime-public", "--public-fir-tap", "centre", "--threads", "1"],
    ],
    ids=["none", "augmix-jsd", "prime-ablation", "prime-offline-jsd", "prime-public"],
)
def test_train_command(tmp_path, extra):
    data = numpy_dataset(tmp_path / "np")
    x, y = np.load(data / "test_images.npy"), np.load(data / "test_labels.npy")
    cdir = npy_corruptions(tmp_path / "c", x[:8], y[:8])
    out = tmp_path / "run"
    assert (
        train.main(
            [*TRAIN, "--data-dir", str(data), "--out", str(out), "--corruptions-dir", str(cdir), *extra]
        )
        == 0
    )
    for f in ("config.json", "checkpoint.pt", "model.pt", "train.log", "log.jsonl", "eval/results.json"):
        assert (out / f).exists(), f
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["options"]["lr"] == 0.2 and cfg["options"]["weight_decay"] == 5e-4  # CIFAR defaults
    assert cfg["environment"]["device"] == "cpu" and "preprocessing" in cfg
    _, meta = load_model(out)
    assert meta["dataset"]["name"] == "numpy" and meta["arch"] == "cifar_resnet8"
    res = json.loads((out / "eval" / "results.json").read_text())
    assert set(res["per_corruption"]) == {"gaussian_noise", "contrast"}
    assert cfg["options"]["threads"] >= 1  # --threads or its default, as applied
    if "--depth-mode" in extra:
        assert (
            cfg["options"]["depth_mode"] == "uniform"
            and train.make_prime(cfg["options"]).depth_mode == "uniform"
        )
    if "prime-public" in extra:
        assert cfg["options"]["threads"] == 1 and meta["augment"] == "prime-public"
    if "--offline-copies" in extra:
        copies = np.load(out / "offline_k2.npy", mmap_mode="r")
        assert copies.shape == (2, 48, 16, 16, 3) and copies.dtype == np.uint8
        assert not np.array_equal(copies[0], copies[1])
    with pytest.raises(SystemExit, match="--resume"):
        train.main([*TRAIN, "--data-dir", str(data), "--out", str(out), *extra])


def test_train_option_errors(tmp_path, capsys):
    data = numpy_dataset(tmp_path / "np")
    base = [*TRAIN, "--data-dir", str(data), "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit, match="--jsd needs"):
        train.main([*base, "--jsd"])
    with pytest.raises(SystemExit, match="--primitives"):
        train.main([*base, "--augment", "prime", "--primitives", "spectral,blur"])
    with pytest.raises(SystemExit, match="--offline-copies needs"):
        train.main([*base, "--offline-copies", "2"])
    with pytest.raises(SystemExit) as e:  # argparse's error: status 2, the option and the value named
        train.main([*base, "--threads", "0"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "argument --threads: expected an integer >= 1, got '0'" in err
    with pytest.raises(SystemExit, match="--threads must be >= 1"):  # the library function checks too
        train.set_threads(0, torch.device("cpu"), 0)
    with pytest.raises(SystemExit, match="prime-public draws once per batch"):
        train.main([*base, "--augment", "prime-public", "--augment-on", "workers"])
    with pytest.raises(SystemExit, match=r"not found|missing"):
        train.main([*TRAIN, "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])


def test_ddp_two_cpu_processes_on_gloo(tmp_path):
    data = numpy_dataset(tmp_path / "np")
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "prime_augment",
        "train",
        *TRAIN,
        "--epochs",
        "2",
        "--data-dir",
        str(data),
        "--out",
        str(out),
        "--augment",
        "prime",
    ]
    pipe = subprocess.PIPE
    proc = subprocess.Popen(
        cmd, stdout=pipe, stderr=pipe, text=True, env=env, cwd=tmp_path, start_new_session=True
    )
    try:
        _, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and its two workers
        proc.communicate()
        raise
    assert proc.returncode == 0, err[-3000:]
    log = (out / "train.log").read_text()
    assert "2 process(es)" in log and "epoch 2/2" in log
    hist = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in hist] == [1, 2]
    assert hist[0]["images_per_s"] > 0 and hist[0]["loss"] > 0
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2
    assert not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])  # per-process streams
    model, _ = load_model(out)
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, 3)


@pytest.mark.parametrize("command", ["train", "evaluate", "make-corruptions", "strength-sweep"])
def test_commands_are_registered_with_an_example(command, capsys):
    import importlib

    from prime_augment.cli import COMMANDS, main

    module = importlib.import_module(COMMANDS[command][0])
    assert "Example" in module.build_parser().epilog
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0 and "Example" in capsys.readouterr().out


def test_default_threads_leave_the_cores_to_the_workers(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert train.default_threads(torch.device("cpu"), 0) == 8
    assert train.default_threads(torch.device("cpu"), 3) == 2
    assert train.default_threads(torch.device("cpu"), 8) == 1  # never below one thread
    assert train.default_threads(torch.device("cuda"), 4) is None  # torch's default on a GPU box


def test_the_train_config_comes_from_the_options(tmp_path):
    data = numpy_dataset(tmp_path / "np", n_train=8, n_test=4, size=8)
    argv = ["--dataset", "numpy", "--data-dir", str(data), "--epochs", "3", "--out", str(tmp_path / "r")]
    argv += ["--lr", "0.05", "--grad-clip", "0", "--no-amp", "--no-progress", "--adversarial", "l2"]
    args = train.build_parser().parse_args(argv)
    cfg = train.resolve(args, build_data("numpy", data))
    config = train.train_config(cfg)
    assert (config.epochs, config.lr, config.batch_size, config.weight_decay) == (3, 0.05, 128, 5e-4)
    assert (config.grad_clip, config.amp, config.progress, config.channels_last) == (None, False, False, True)
    assert config.adversarial is not None and (config.adversarial.norm, config.adversarial.eps) == ("l2", 0.5)
    # every field is an option of the command (or its --no- switch), except the engine's own four
    options = {a.dest for a in train.build_parser()._actions}
    switches = {"amp", "channels_last", "progress"}
    own = {f.name for f in dataclasses.fields(TrainConfig) if f.name not in options | switches}
    assert own == {"nesterov", "num_splits", "val_every", "drop_last"}
    assert {"no_amp", "no_channels_last", "no_progress"} <= options


def test_a_bad_train_config_value_is_the_users_mistake():
    with pytest.raises(SystemExit, match="pct_start must be in"):
        train.train_config({"epochs": 1, "pct_start": 1.5, "adversarial": "none"})
