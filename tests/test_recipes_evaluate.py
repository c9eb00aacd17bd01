"""``prime-augment evaluate``: metrics, mCE normalisations, BN adaptation (Eq. 5.7), outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from recipes_fixtures import class_images, image_folder, npy_corruptions, numpy_dataset, write_pngs
from torch import nn

from prime_augment.recipes.benchmark import evaluate, train
from prime_augment.recipes.benchmark.corruptions import make_corruption_set
from prime_augment.recipes.benchmark.data import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS, ArrayDataset
from prime_augment.recipes.benchmark.evaluate import (
    ALEXNET_CLEAN_ERROR,
    ALEXNET_ERRORS,
    MixedStatsBatchNorm,
    adapt_bn,
    corruption_metrics,
)


def test_unnormalised_mce():
    m = corruption_metrics(90.0, {"a": [80.0, 70.0], "b": [60.0, 50.0]})
    assert m["corruption_accuracy"] == 65.0 and m["mce"] == 35.0
    assert m["per_severity"] == [70.0, 60.0] and m["ce"] == {"a": 25.0, "b": 45.0}


def test_alexnet_and_baseline_mce():
    per = {c: [100 * (1 - e)] * 5 for c, e in ALEXNET_ERRORS.items()}  # AlexNet's own errors
    m = corruption_metrics(100 * (1 - ALEXNET_CLEAN_ERROR), per, mode="alexnet")
    assert m["mce"] == pytest.approx(100.0) and m["relative_mce"] == pytest.approx(100.0)
    assert len(ALEXNET_ERRORS) == 15 and ALEXNET_ERRORS["gaussian_noise"] == 0.886428
    half = {c: [100 - 50 * e] * 5 for c, e in ALEXNET_ERRORS.items()}  # half of AlexNet's error
    assert corruption_metrics(80.0, half, mode="alexnet")["mce"] == pytest.approx(50.0)
    base = {"clean_accuracy": 90.0, "per_corruption": {"fog": [80.0, 60.0]}}
    m = corruption_metrics(95.0, {"fog": [90.0, 80.0]}, mode="baseline", baseline=base)
    assert m["ce"]["fog"] == pytest.approx(100 * 30 / 60)  # (10 + 20) / (20 + 40)
    assert m["relative_ce"]["fog"] == pytest.approx(100 * (5 + 15) / (10 + 30))
    with pytest.raises(ValueError, match="lack the corruptions"):
        corruption_metrics(95.0, {"snow": [1.0, 2.0]}, mode="baseline", baseline=base)


def _bn_net():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2)
    )
    net.train()
    for _ in range(5):
        net(torch.rand(8, 3, 6, 6))
    return net.eval()


def test_mixed_stats_batchnorm_eq_5_7():
    bn = _bn_net()[1]
    x = torch.randn(5, 4, 6, 6) * 3 + 2
    big = MixedStatsBatchNorm(bn, prior=1e12, per_sample=False)
    assert torch.allclose(big(x), bn(x), atol=1e-4)  # N >> n: the source statistics
    zero = MixedStatsBatchNorm(bn, prior=0.0, per_sample=False)
    ref = nn.functional.batch_norm(x, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)
    assert torch.allclose(zero(x), ref, atol=1e-4)  # N = 0: the target batch statistics
    single = MixedStatsBatchNorm(bn, prior=3.0, per_sample=True)
    var_t, mu_t = torch.var_mean(x[1], dim=(1, 2), correction=0)
    mu = (3 * bn.running_mean + mu_t) / 4
    var = (3 * bn.running_var + var_t) / 4
    want = (x[1] - mu[:, None, None]) / torch.sqrt(var[:, None, None] + bn.eps) * bn.weight[:, None, None]
    assert torch.allclose(single(x)[1], want + bn.bias[:, None, None], atol=1e-4)
    assert torch.allclose(single(x)[1:2], single(x[1:2]), atol=1e-5)  # per image: independent of the batch


def test_adapt_bn_modes_leave_the_model_alone():
    net = _bn_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(10, 3, 6, 6) + 1.0
    target = torch.utils.data.TensorDataset(x, torch.zeros(10, dtype=torch.long))
    full = adapt_bn(net, "full", prior=0.0, target=target, batch_size=10)
    conv_out = net[0](x)
    assert torch.allclose(full[1].running_mean, conv_out.mean((0, 2, 3)), atol=1e-5)
    mixed = adapt_bn(net, "full", prior=10.0, target=target, batch_size=10)  # N = n = 10: the midpoint
    assert torch.allclose(
        mixed[1].running_mean, (net[1].running_mean + conv_out.mean((0, 2, 3))) / 2, atol=1e-5
    )
    assert isinstance(adapt_bn(net, "partial")[1], MixedStatsBatchNorm)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with pytest.raises(ValueError, match="--bn-adapt"):
        adapt_bn(net, "online")
    with pytest.raises(ValueError, match="no BatchNorm2d"):
        adapt_bn(nn.Linear(2, 2), "single")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    data = numpy_dataset(tmp / "np")
    x, y = np.load(data / "test_images.npy"), np.load(data / "test_labels.npy")
    cdir = npy_corruptions(tmp / "c", x[:10], y[:10], names=BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS)
    out = tmp / "run"
    train.main(
        [
            "--dataset",
            "numpy",
            "--data-dir",
            str(data),
            "--arch",
            "cifar_resnet8",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--workers",
            "0",
            "--device",
            "cpu",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    return tmp, out, cdir


def test_evaluate_command_outputs(trained_run):
    tmp, run, cdir = trained_run
    out = tmp / "ev"
    res = _eval(run, cdir, out)
    for key in (
        "clean_accuracy",
        "corruption_accuracy",
        "mce",
        "per_corruption",
        "per_severity",
        "preprocessing",
        "environment",
        "corruption_set",
    ):
        assert key in res
    # the release layout: 19 files; the headline is the 15 benchmark corruptions, the 4 extra apart
    assert set(res["per_corruption"]) == set(BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS)
    assert res["headline_corruptions"] == list(BENCHMARK_CORRUPTIONS) and set(res["ce"]) == set(
        BENCHMARK_CORRUPTIONS
    )
    assert res["extra_corruptions"]["corruptions"] == list(EXTRA_CORRUPTIONS)
    assert all(len(v) == 5 and all(0 <= a <= 100 for a in v) for v in res["per_corruption"].values())
    assert (
        res["mce"] == pytest.approx(100 - res["corruption_accuracy"])
        and res["mce_normalisation"] == "unnormalised"
    )
    flat = [a for c in BENCHMARK_CORRUPTIONS for a in res["per_corruption"][c]]
    assert res["corruption_accuracy"] == pytest.approx(np.mean(flat))
    extra = [a for c in EXTRA_CORRUPTIONS for a in res["per_corruption"][c]]
    assert res["extra_corruptions"]["corruption_accuracy"] == pytest.approx(np.mean(extra))
    assert "clean_accuracy_same_images" not in res  # the set does not record its source
    md = (out / "results.md").read_text()
    assert "| corruption | s1 | s2 | s3 | s4 | s5 | mean | CE |" in md and "per severity" in md
    assert "15 benchmark corruptions" in md and "## Extra corruptions (not in the headline)" in md
    for png in ("per_corruption.png", "accuracy_vs_severity.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    # normalised by a baseline (the IN-100 protocol): the model against itself is 100
    out2 = tmp / "ev2"
    evaluate.main(
        [
            "--run",
            str(run),
            "--corruptions-dir",
            str(cdir),
            "--out",
            str(out2),
            "--workers",
            "0",
            "--no-progress",
            "--baseline",
            str(out / "results.json"),
            "--bn-adapt",
            "partial",
            "--bn-batch",
            "4",
        ]
    )
    res2 = json.loads((out2 / "results.json").read_text())
    assert res2["mce_normalisation"] == "baseline" and res2["bn_adaptation"]["n"] == 4
    assert "clean_accuracy_adapted" in res2


def test_evaluate_errors_and_single_full(trained_run):
    tmp, run, cdir = trained_run
    with pytest.raises(SystemExit, match="no model file"):
        evaluate.main(["--run", str(tmp / "nope"), "--corruptions-dir", str(cdir), "--out", str(tmp / "x")])
    bad = tmp / "bad"
    bad.mkdir()
    (bad / "labels.npy").write_bytes(b"garbage")
    (bad / "contrast.npy").symlink_to(cdir / "contrast.npy")
    with pytest.raises(SystemExit, match=r"labels.npy"):
        evaluate.main(
            ["--run", str(run), "--corruptions-dir", str(bad), "--out", str(tmp / "x"), "--workers", "0",
             "--corruptions", "contrast"]
        )  # fmt: skip
    for mode in ("single", "full"):
        out = tmp / f"ev_{mode}"
        res = _eval(run, cdir, out, "--bn-adapt", mode, "--corruptions", "contrast")
        assert list(res["per_corruption"]) == ["contrast"] and res["bn_adaptation"]["mode"] == mode


def test_evaluate_imagenet_c_layout_folder_dataset(tmp_path):
    data = image_folder(tmp_path / "f", size=16)
    run = tmp_path / "run"
    train.main(
        [
            "--dataset",
            "folder",
            "--data-dir",
            str(data),
            "--arch",
            "cifar_resnet8",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--workers",
            "0",
            "--device",
            "cpu",
            "--no-progress",
            "--out",
            str(run),
        ]
    )
    x, y = class_images(4, 16, 2, 9)
    for c in ("fog", "snow"):
        for s in range(1, 6):
            write_pngs(tmp_path / "c" / c / str(s), x, y, ["cat", "dog"])
    evaluate.main(
        [
            "--run",
            str(run),
            "--corruptions-dir",
            str(tmp_path / "c"),
            "--out",
            str(tmp_path / "ev"),
            "--workers",
            "0",
            "--no-progress",
            "--corruptions",
            "fog,snow",
        ]
    )
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert res["corruptions"] == ["snow", "fog"] and res["severities"] == [1, 2, 3, 4, 5]
    # identical images at every severity: identical accuracies
    assert len(set(res["per_corruption"]["fog"])) == 1


def _eval(run, cdir, out, *extra):
    args = ["--run", str(run), "--corruptions-dir", str(cdir), "--out", str(out), "--workers", "0"]
    assert evaluate.main([*args, "--no-progress", *extra]) == 0
    return json.loads((out / "results.json").read_text())


def test_missing_or_mis_sized_corruption_files_are_errors(trained_run, tmp_path):
    _, run, cdir = trained_run
    part = tmp_path / "part"
    part.mkdir()
    for f in cdir.iterdir():
        if f.name != "fog.npy":
            (part / f.name).symlink_to(f)
    with pytest.raises(SystemExit, match=r"lacks 1 of the 15 benchmark corruptions: fog.npy") as e:
        evaluate.main(["--run", str(run), "--corruptions-dir", str(part), "--out", str(tmp_path / "o")])
    assert "\n" not in str(e.value)  # one line
    res = _eval(run, part, tmp_path / "sub", "--corruptions", "snow,gaussian_noise")  # a subset: allowed
    assert res["headline_corruptions"] == ["gaussian_noise", "snow"] and "extra_corruptions" not in res
    with pytest.raises(SystemExit, match=r"--corruptions fog: not in the corruption set"):
        evaluate.main(["--run", str(run), "--corruptions-dir", str(part), "--out", str(tmp_path / "o"),
                       "--corruptions", "fog"])  # fmt: skip
    # an extra corruption named in --corruptions joins the headline
    res = _eval(run, cdir, tmp_path / "ex", "--corruptions", "spatter,fog")
    assert res["headline_corruptions"] == ["fog", "spatter"]
    assert res["corruption_accuracy"] == pytest.approx(
        np.mean(res["per_corruption"]["fog"] + res["per_corruption"]["spatter"])
    )
    # the library default (train's end-of-training evaluation): the benchmark ones present, labelled
    res = evaluate.evaluate_run(run, evaluate.build_data("numpy", str(cdir.parent / "np")), part,
                                tmp_path / "lib", workers=0, progress=False)  # fmt: skip
    assert res["missing_benchmark_corruptions"] == ["fog"] and len(res["headline_corruptions"]) == 14
    # corrupted images of another size than the clean test set (16x16)
    x8 = np.zeros((4, 8, 8, 3), np.uint8)
    small = npy_corruptions(tmp_path / "small", x8, np.zeros(4, np.int64), names=("contrast",))
    with pytest.raises(SystemExit, match=r"images of 8x8, the clean numpy images are 16x16"):
        evaluate.main(["--run", str(run), "--corruptions-dir", str(small), "--out", str(tmp_path / "o"),
                       "--corruptions", "contrast"])  # fmt: skip


def test_clean_accuracy_on_the_corrupted_images(trained_run, tmp_path):
    tmp, run, _ = trained_run
    data = tmp / "np"
    x, y = np.load(data / "test_images.npy"), np.load(data / "test_labels.npy")
    idx = [1, 4, 5, 9, 13, 20]
    cdir = tmp_path / "c"
    make_corruption_set(
        x[idx], y[idx], cdir, corruptions=["contrast", "jpeg_compression"], backend="builtin", progress=False,
        indices=idx, source=f"array {data / 'test_images.npy'}",
    )  # fmt: skip
    res = _eval(run, cdir, tmp_path / "ev", "--corruptions", "contrast,jpeg_compression")
    assert "clean" not in res["per_corruption"]  # clean.npy is not a corruption
    model, _ = evaluate.load_model(run)
    subset = ArrayDataset(x[idx], y[idx])
    want = evaluate.accuracy(model, subset)
    assert res["clean_accuracy_same_images"] == pytest.approx(want)
    assert res["clean_same_images"]["n"] == 6 and res["clean_same_images"]["from"] == "clean.npy"
    md = (tmp_path / "ev" / "results.md").read_text()
    assert "clean accuracy on the 6 corrupted images (%)" in md
    (cdir / "clean.npy").unlink()  # only the indices in meta.json: the same images of the clean set
    res2 = _eval(run, cdir, tmp_path / "ev2", "--corruptions", "contrast,jpeg_compression")
    assert res2["clean_accuracy_same_images"] == pytest.approx(want)
    assert res2["clean_same_images"]["from"] == "meta.json indices"


def test_alexnet_errors_are_the_distributed_ones():
    """The raw AlexNet errors of google-research/augmix ``imagenet.py`` (``ALEXNET_ERR``, "taken from
    https://github.com/hendrycks/robustness"), in its order (the 15 benchmark corruptions)."""
    augmix = [
        0.886428, 0.894468, 0.922640, 0.819880, 0.826268, 0.785948, 0.798360, 0.866816, 0.826572, 0.819324,
        0.564592, 0.853204, 0.646056, 0.717840, 0.606500,
    ]  # fmt: skip
    assert tuple(ALEXNET_ERRORS) == BENCHMARK_CORRUPTIONS
    assert list(ALEXNET_ERRORS.values()) == augmix


def test_interrupted_evaluation_reuses_finished_corruptions(trained_run):
    tmp, run, cdir = trained_run
    out = tmp / "ev_resume"
    args = ["--run", str(run), "--corruptions-dir", str(cdir), "--out", str(out), "--workers", "0"]
    args.append("--no-progress")
    evaluate.main(args)
    first = json.loads((out / "results.json").read_text())
    assert not (out / ".partial_results.json").exists()  # removed once the results are written
    # an interrupted run left 'contrast' done (a marker value) with the same model and set: it is reused
    from prime_augment.recipes._common import write_json

    (out / "results.json").unlink()
    key = {
        "model": str((run / "model.pt").resolve()),
        "model_mtime": (run / "model.pt").stat().st_mtime_ns,
        "corruptions": str(cdir.resolve()),
        "bn": ["none", 16.0, 64],
        "clean": 24,
    }
    write_json(out / ".partial_results.json", {"key": key, "per_corruption": {"contrast": [1.0] * 5}})
    evaluate.main(args)
    res = json.loads((out / "results.json").read_text())
    assert res["per_corruption"]["contrast"] == [1.0] * 5
    assert res["per_corruption"]["gaussian_noise"] == first["per_corruption"]["gaussian_noise"]
