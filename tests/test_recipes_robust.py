"""Issue 9's training systems on tiny data: adversarial training in the engine (exact resume), ``train`` /
``filling-level`` with ``--adversarial``, PGD accuracy in ``evaluate``, extra training folders
(DeepAugment-style union) and the pre-processing baselines (train and eval)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from recipes_fixtures import class_images, npy_corruptions, numpy_dataset, write_pngs
from torch.utils.data import ConcatDataset

from prime_augment import PRIME
from prime_augment.analysis import dct2, dct_low_pass
from prime_augment.recipes.benchmark import evaluate, train
from prime_augment.recipes.benchmark.data import ArrayDataset, build_data, union_train_set
from prime_augment.recipes.benchmark.engine import (
    Adversarial,
    Augmentation,
    TrainConfig,
    Trainer,
    seed_everything,
)
from prime_augment.recipes.benchmark.models import (
    CIFAR_MEAN,
    CIFAR_STD,
    DCTLowPass,
    GrayRepeat,
    build_model,
    load_model,
    parse_preprocess,
)
from prime_augment.recipes.studies import filling_level, filling_level_sweep
from prime_augment.recipes.studies.containers import make_containers

TRAIN = [
    "--dataset", "numpy", "--arch", "cifar_resnet8", "--epochs", "1", "--batch-size", "16", "--workers",
    "0", "--device", "cpu", "--no-progress",
]  # fmt: skip


class _Interrupt(Exception):
    pass


# ---------------------------------------------------------------------------------------------- engine
def _fit(out: Path, adversarial, *, interrupt_at=None, resume=False):
    spec = build_data("numpy", numpy_dataset(out.parent / "np", n_train=32, size=12))
    seed_everything(0)

    def on_step(trainer, epoch, step):
        if interrupt_at == (epoch, step):
            raise _Interrupt

    cfg = TrainConfig(
        epochs=2, batch_size=16, lr=0.1, workers=0, progress=False, seed=3, adversarial=adversarial
    )
    t = Trainer(
        build_model("cifar_resnet8", 3), spec.train, spec.train_transform, cfg, Augmentation("none"),
        out_dir=out, arch="cifar_resnet8", num_classes=3, on_step=on_step,
    )  # fmt: skip
    return t.fit(resume=resume)


def test_adversarial_training_attacks_and_resumes_exactly(tmp_path):
    adv = Adversarial("l2", 0.5, steps=2)
    full = _fit(tmp_path / "full", adv)
    with pytest.raises(_Interrupt):
        _fit(tmp_path / "cut", adv, interrupt_at=(1, 0))
    resumed = _fit(tmp_path / "cut", adv, resume=True)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]
    assert "adversarial: PGD-2 l2 eps 0.5" in (tmp_path / "full" / "train.log").read_text()
    plain = _fit(tmp_path / "plain", None)
    assert full.history[0]["loss"] > plain.history[0]["loss"]  # the same weights see harder batches
    with pytest.raises(ValueError, match="other settings"):  # the attack is part of the run's settings
        _fit(tmp_path / "full", Adversarial("l2", 0.25, steps=2), resume=True)


def test_adversarial_config_checks():
    with pytest.raises(ValueError, match="norm must be one of"):
        Adversarial("l1")
    with pytest.raises(ValueError, match="eps must be a positive"):
        Adversarial("linf", 0.0)
    with pytest.raises(ValueError, match="pixel units"):
        Adversarial("linf", 8.0)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        Adversarial("linf", 0.1, steps=0)
    with pytest.raises(ValueError, match="cannot be combined"):
        TrainConfig(epochs=1, jsd=True, adversarial=Adversarial())
    with pytest.raises(TypeError, match="an Adversarial"):
        TrainConfig(epochs=1, adversarial={"norm": "linf"})


def test_adversarial_training_under_ddp(tmp_path):
    # the attack runs on the bare module: DDP's reducer must not wait for gradients it never gets
    data = numpy_dataset(tmp_path / "np")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
        "prime_augment", "train", *TRAIN, "--epochs", "2", "--data-dir", str(data), "--out",
        str(tmp_path / "ddp"), "--adversarial", "linf", "--adv-steps", "1",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        start_new_session=True,
    )  # fmt: skip
    try:
        _, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:  # timed out: torchrun and its workers
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    log = (tmp_path / "ddp" / "train.log").read_text()
    assert "2 process(es)" in log and "adversarial: PGD-1 linf" in log and "epoch 2/2" in log


# ---------------------------------------------------------------------------------------------- preprocessing
def test_preprocessing_modules_and_models():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 12, 10, generator=g)
    assert torch.allclose(DCTLowPass(4)(x), dct_low_pass(x, 4), atol=1e-6)
    assert torch.allclose(DCTLowPass(50)(x), x, atol=1e-5)  # K above the size: everything kept
    gray = GrayRepeat()(x)
    want = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    assert torch.allclose(gray, want[:, None].expand_as(x)) and torch.equal(x, x.clone())
    for spec, op in (("gray", GrayRepeat()), ("lowpass:3", DCTLowPass(3))):
        m = build_model("cifar_resnet8", 3, preprocess=spec).eval()
        assert m.preprocess == spec
        with torch.no_grad():  # idempotent projections: the model only sees the pre-processed image
            assert torch.allclose(m(x), m(op(x)), atol=1e-5)
            assert not torch.allclose(m(x), m[1]((x - m[0].mean) / m[0].std), atol=1e-3)
    for bad in ("lowpass:0", "lowpass", "blur", "lowpass:x"):
        with pytest.raises(ValueError, match="--preprocess"):
            parse_preprocess(bad)
    assert parse_preprocess("none") is None and parse_preprocess("GRAY") == "gray"


@pytest.mark.parametrize("spec", ["gray", "lowpass:3"])
def test_preprocessing_applies_after_the_augmentation_in_training(tmp_path, spec):
    spec_data = build_data("numpy", numpy_dataset(tmp_path / "np", n_train=32, size=12))
    model = build_model("cifar_resnet8", 3, preprocess=spec)
    seen = []
    model.net.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].detach().clone()))
    aug = Augmentation("prime", prime=PRIME.from_preset("cifar10"), placement="device")
    cfg = TrainConfig(epochs=1, batch_size=16, workers=0, progress=False, adversarial=Adversarial(steps=1))
    Trainer(model, spec_data.train, spec_data.train_transform, cfg, aug).fit()
    mean, std = torch.tensor(CIFAR_MEAN).view(3, 1, 1), torch.tensor(CIFAR_STD).view(3, 1, 1)
    assert seen
    for z in seen:  # what the network received, back in image units
        img = z * std + mean
        if spec == "gray":
            assert torch.allclose(img, img[:, :1].expand_as(img), atol=1e-5)
        else:
            c = dct2(img.double())
            assert c[..., 3:, :].abs().max() < 1e-4 and c[..., :, 3:].abs().max() < 1e-4


# ---------------------------------------------------------------------------------------------- extra folders
def _extra_npy(folder: Path, n: int, size: int, n_classes: int = 3, labels=None, classes=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    x, y = class_images(n, size, n_classes, 9)
    np.save(folder / "images.npy", x)
    np.save(folder / "labels.npy", y if labels is None else np.asarray(labels))
    if classes is not None:
        (folder / "classes.txt").write_text("\n".join(classes) + "\n")
    return folder


def test_extra_train_dirs_union_and_errors(tmp_path):
    spec = build_data("numpy", numpy_dataset(tmp_path / "np", n_train=12, size=16))
    a = _extra_npy(tmp_path / "a", 6, 16, classes=["0", "1", "2"])
    u = union_train_set(spec, [a])
    assert isinstance(u, ArrayDataset) and len(u) == 18
    assert np.array_equal(u.labels[12:], np.load(a / "labels.npy"))
    assert np.array_equal(u.images[:12], spec.train.images)
    xf, yf = class_images(4, 16, 3, 4)
    write_pngs(tmp_path / "f", xf, yf, ["0", "1", "2"])
    u2 = union_train_set(spec, [a, tmp_path / "f"])
    assert isinstance(u2, ConcatDataset) and len(u2) == 22
    labels = sorted(int(u2[i][1]) for i in range(18, 22))
    assert labels == sorted(yf.tolist()) and tuple(u2[20][0].size) == (16, 16)
    # class names: an error naming the folder, what is missing and what is unknown
    write_pngs(tmp_path / "g", xf, np.array([0, 1, 1, 0]), ["0", "1"])
    write_pngs(tmp_path / "g", xf[:1], np.array([0]), ["cat"])
    with pytest.raises(ValueError, match=r"--extra-train-dir .*g: its classes do not match.*missing \['2'\], "
                       r"unknown \['cat'\]"):  # fmt: skip
        union_train_set(spec, [tmp_path / "g"])
    cases = [
        (_extra_npy(tmp_path / "b", 4, 16, labels=[0, 1, 3, 0]), r"labels must be in \[0, 3\)"),
        (_extra_npy(tmp_path / "c", 4, 12), "images of 12x12 px, the training images are 16x16"),
        (_extra_npy(tmp_path / "d", 4, 16, classes=["0", "1", "x"]), r"missing \['2'\], unknown \['x'\]"),
        (_extra_npy(tmp_path / "e", 4, 16, classes=["1", "0", "2"]), "in another order"),
    ]
    for folder, match in cases:
        with pytest.raises(ValueError, match=match):
            union_train_set(spec, [folder])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="found neither"):
        union_train_set(spec, [tmp_path / "empty"])
    with pytest.raises(FileNotFoundError, match="no such folder"):
        union_train_set(spec, [tmp_path / "nowhere"])


# ---------------------------------------------------------------------------------------------- commands
@pytest.fixture(scope="module")
def robust_run(tmp_path_factory):
    """One train command with every new option: AT (l-inf), low-pass pre-processing, PRIME, two extra
    folders (PNG class folders and arrays)."""
    tmp = tmp_path_factory.mktemp("robust")
    data = numpy_dataset(tmp / "np")
    xf, yf = class_images(6, 16, 3, 4)
    write_pngs(tmp / "extra_png", xf, yf, ["0", "1", "2"])
    npy = _extra_npy(tmp / "extra_npy", 10, 16)
    out = tmp / "run"
    argv = [
        *TRAIN, "--data-dir", str(data), "--out", str(out), "--augment", "prime", "--adversarial", "linf",
        "--adv-eps", "8/255", "--adv-steps", "2", "--preprocess", "lowpass:8", "--extra-train-dir",
        str(tmp / "extra_png"), str(npy),
    ]  # fmt: skip
    assert train.main(argv) == 0
    return tmp, data, out, argv


def test_train_command_with_adversarial_preprocess_and_extra_dirs(robust_run):
    _, _, out, argv = robust_run
    cfg = json.loads((out / "config.json").read_text())
    opts = cfg["options"]
    assert opts["adv_eps"] == pytest.approx(8 / 255) and opts["adv_steps"] == 2 and opts["adv_bn"] == "train"
    assert opts["preprocess"] == "lowpass:8" and len(opts["extra_train_dir"]) == 2
    assert "DCT low-pass" in cfg["preprocessing"]["model_input"]
    log = (out / "train.log").read_text()
    assert "on 64 images" in log and "adversarial: PGD-2 linf" in log  # 48 + 6 PNG + 10 arrays
    model, meta = load_model(out)
    assert meta["preprocess"] == "lowpass:8" and model.preprocess == "lowpass:8"
    assert meta["adversarial"].startswith("PGD-2 linf") and len(meta["dataset"]["extra_train_dirs"]) == 2
    with pytest.raises(SystemExit, match=r"other options \(preprocess: 'lowpass:8' -> 'gray'"):
        train.main([*argv, "--resume", "--preprocess", "gray"])


def test_evaluate_pgd_and_preprocessing_record(robust_run, capsys):
    tmp, data, run, _ = robust_run
    x, y = np.load(data / "test_images.npy"), np.load(data / "test_labels.npy")
    cdir = npy_corruptions(tmp / "c", x[:6], y[:6], names=("contrast",))
    out = tmp / "ev"
    argv = [
        "--run", str(run), "--out", str(out), "--workers", "0", "--no-progress", "--pgd-eps", "0", "8/255",
        "0.5", "--pgd-steps", "3", "--pgd-images", "16",
    ]  # fmt: skip
    assert evaluate.main([*argv, "--corruptions-dir", str(cdir), "--corruptions", "contrast"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert "DCT low-pass" in res["preprocessing"]["model_input"]
    rob = json.loads((out / "robust.json").read_text())
    accs = [r["accuracy"] for r in rob["robust"]]
    assert rob["n"] == 16 and [r["eps"] for r in rob["robust"]] == pytest.approx([0, 8 / 255, 0.5])
    assert accs[0] == pytest.approx(rob["clean_accuracy"]) and accs[2] <= accs[1] <= accs[0]
    assert rob["attack"]["steps"] == 3 and rob["robust"][1]["step_size"] == pytest.approx(2.5 * 8 / 255 / 3)
    assert "| eps (linf) | step size | accuracy (%) |" in (out / "robust.md").read_text()
    assert evaluate.main([*argv[:-6], "--pgd-eps", "8/255", "--pgd-steps", "3", "--pgd-images", "16"]) == 0
    again = json.loads((out / "robust.json").read_text())  # seeded: the same images, the same starts
    assert again["robust"][0]["accuracy"] == rob["robust"][1]["accuracy"]
    with pytest.raises(SystemExit, match="--corruptions-dir, --pgd-eps, or both"):
        evaluate.main(["--run", str(run), "--out", str(out)])
    with pytest.raises(SystemExit):  # argparse: the option, the bound and the value, status 2
        evaluate.main([*argv[:-2], "--pgd-images", "-3"])
    assert "argument --pgd-images: expected an integer >= 0, got '-3'" in capsys.readouterr().err


def test_train_option_errors(tmp_path):
    data = numpy_dataset(tmp_path / "np")
    base = [*TRAIN, "--data-dir", str(data), "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit, match="--adv-eps needs --adversarial"):
        train.main([*base, "--adv-eps", "0.1"])
    with pytest.raises(SystemExit, match="--adversarial and --jsd"):
        train.main([*base, "--augment", "prime", "--jsd", "--adversarial", "l2"])
    with pytest.raises(SystemExit, match="eps must be a positive"):
        train.main([*base, "--adversarial", "l2", "--adv-eps", "0"])
    with pytest.raises(SystemExit, match="--preprocess 'sepia'"):
        train.main([*base, "--preprocess", "sepia"])
    with pytest.raises(SystemExit):  # argparse: not a number
        train.main([*base, "--adversarial", "linf", "--adv-eps", "8/x"])
    with pytest.raises(SystemExit, match=r"--extra-train-dir .*no such folder"):
        train.main([*base, "--extra-train-dir", str(tmp_path / "nowhere")])
    png = tmp_path / "png"
    write_pngs(png, *class_images(3, 16, 3, 0), ["0", "1", "2"])
    with pytest.raises(SystemExit, match="--offline-copies needs array images"):
        train.main([*base, "--augment", "prime", "--offline-copies", "1", "--extra-train-dir", str(png)])


def test_filling_level_adversarial_and_at_to_da_prime(tmp_path, robust_run):
    manifest = make_containers(
        tmp_path / "c", size=16, per_level=1, shapes=("tumbler", "bottle"), colours=("clear", "red"),
        test_shapes=("bottle",), test_colours=("red",), progress=False,
    )  # fmt: skip
    run = [
        "--manifest", str(manifest), "--split", "S1", "--epochs", "1", "--batch-size", "4", "--arch",
        "cifar_resnet8", "--device", "cpu", "--workers", "0", "--no-progress", "--val-fraction", "0",
    ]  # fmt: skip
    at = tmp_path / "at"
    assert filling_level.main([*run, "--out", str(at), "--augment", "none", "--adversarial", "l2"]) == 0
    res = json.loads((at / "results.json").read_text())
    assert res["config"]["adv_eps"] == 0.5 and res["config"]["adv_steps"] == 7
    assert "adversarial: PGD-7 l2 eps 0.5" in (at / "train.log").read_text()
    # AT -> DA_PRIME from a robust model of another task (3 classes: the classifier is re-initialised)
    _, _, robust, _ = robust_run
    ft = tmp_path / "ft"
    assert filling_level.main([*run, "--out", str(ft), "--weights", str(robust / "model.pt")]) == 0
    assert json.loads((ft / "results.json").read_text())["config"]["lr"] == filling_level.LR_FINETUNE
    with pytest.raises(SystemExit, match="--adv-steps needs --adversarial"):
        filling_level.main([*run, "--out", str(tmp_path / "x"), "--adv-steps", "3"])
    # sweeps: runs without AT keep their folders; AT runs are labelled
    key = ["--manifest", str(manifest), "--split", "S1", "--epochs", "1", "--out", "x"]
    name, k = filling_level_sweep.run_key([*key, "--augment", "none"])
    assert name.startswith("plain-") and "adversarial" not in k
    name, k = filling_level_sweep.run_key([*key, "--augment", "none", "--adversarial", "l2"])
    assert name.startswith("at-l20.5_plain-") and k["adv_steps"] == 7


def test_robust_accuracy_at_a_radius_does_not_depend_on_the_other_radii():
    # the random starts of a radius are seeded by its value, not by its position in the list
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
    g = torch.Generator().manual_seed(1)
    x = torch.rand(40, 3, 8, 8, generator=g)
    y = model(x).argmax(1)  # every image classified correctly at eps 0
    data = list(zip(x, y, strict=True))
    kw = {"norm": "linf", "steps": 1, "step_size": 1e-4, "random_start": True, "batch_size": 16}
    alone = [evaluate.robust_accuracy(model, data, [e], **kw)["robust"][0]["accuracy"] for e in (0.05, 0.1)]
    listed = evaluate.robust_accuracy(model, data, [0.0, 0.1, 0.05], **kw)["robust"]
    assert [listed[2]["accuracy"], listed[1]["accuracy"]] == alone
    assert listed[0]["accuracy"] == 100.0
    assert alone[1] < 100.0  # the starts matter: the comparison is not vacuous
