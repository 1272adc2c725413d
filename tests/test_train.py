"""AdaIN decoder training: pytorch-AdaIN's losses, exact resume, signals, NaN stop, data, DDP."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from conftest import write_image

from styletransfer import training as T
from styletransfer.adain import Decoder, load_decoder
from styletransfer.adain.losses import adain_losses
from styletransfer.checkpoint import Checkpoint, list_checkpoints, read_log, resolve_checkpoint
from styletransfer.cli import main
from styletransfer.data import InfiniteSampler, PairSampler
from styletransfer.errors import TrainingError, UsageError
from styletransfer.norms import NORMS
from styletransfer.training.loop import _build_decoder
from styletransfer.weights import encoder_from_state
from tests.helpers.gradient_log import recorded_gradients, summation_bound
from tests.helpers.reference_nets import adain_mean_std, pytorch_adain_decoder, pytorch_adain_vgg, randomize_

ROOT = Path(__file__).resolve().parents[1]
# 32 px crops of 40 px images, batch 2: each step takes a fraction of a second on one core.
TINY = dict(weights="random:0", image_size=40, crop_size=32, batch_size=2, lr=1e-3, workers=0, log_every=1,
            preview_every=0, device="cpu")
TINY_FLAGS = ["--weights", "random:0", "--image-size", "40", "--crop-size", "32", "--batch-size", "2",
              "--lr", "1e-3", "--workers", "0", "--log-every", "1", "--device", "cpu", "--no-progress"]
SUBPROCESS_TIMEOUT = 120
LOSS_KEYS = ("iteration", "content", "style", "total", "lr")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def data(tmp_path):
    """Content images (one in a subfolder), a truncated PNG and a text file named .jpg; styles."""
    content, style = tmp_path / "content", tmp_path / "style"
    (content / "nested").mkdir(parents=True)
    style.mkdir()
    for i in range(3):
        write_image(content / f"c{i}.png", 48, 40, seed=i)
    write_image(content / "nested" / "c3.jpg", 40, 44, seed=3)
    whole = (content / "c0.png").read_bytes()
    (content / "truncated.png").write_bytes(whole[: len(whole) // 2])  # header fine, pixels missing
    (content / "notes.jpg").write_text("not an image")  # image extension, no image
    for i in range(2):
        write_image(style / f"s{i}.png", 44, 48, seed=10 + i)
    return content, style


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def config(data, **changes) -> T.TrainConfig:
    content, style = data
    return T.TrainConfig(content_dir=str(content), style_dir=str(style), **{**TINY, **changes})


def losses_only(records):
    return [{k: r[k] for k in LOSS_KEYS} for r in records]


def subprocess_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def wait_for(predicate, process, what: str, timeout: float = SUBPROCESS_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process.poll() is not None:
            raise AssertionError(f"process ended (rc {process.returncode}) before {what}: {process.stderr.read()}")
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"timed out waiting for {what}")


# -- losses ------------------------------------------------------------------------------------


def test_losses_equal_pytorch_adain_net_forward():
    """Our losses against an independent re-statement of pytorch-AdaIN's Net.forward."""
    vgg = randomize_(pytorch_adain_vgg(), seed=1)
    reference_decoder = randomize_(pytorch_adain_decoder(), seed=2)
    encoder = encoder_from_state(vgg.state_dict(), source="test")
    decoder = Decoder("none")
    decoder.load_state_dict(reference_decoder.state_dict())
    generator = torch.Generator().manual_seed(0)
    content, style = torch.rand(2, 3, 32, 32, generator=generator), torch.rand(2, 3, 32, 32, generator=generator)

    slices = [vgg[:4], vgg[4:11], vgg[11:18], vgg[18:31]]  # relu1_1 … relu4_1, as their net.py

    def intermediate(x):
        features = []
        for block in slices:
            x = block(x)
            features.append(x)
        return features

    style_feats, content_feat = intermediate(style), intermediate(content)[-1]
    s_mean, s_std = adain_mean_std(style_feats[-1])
    c_mean, c_std = adain_mean_std(content_feat)
    t = ((content_feat - c_mean) / c_std * s_std + s_mean).detach()
    g_feats = intermediate(reference_decoder(t))
    loss_c = F.mse_loss(g_feats[-1], t)
    loss_s = sum(F.mse_loss(adain_mean_std(g)[0], adain_mean_std(s)[0]) + F.mse_loss(adain_mean_std(g)[1], adain_mean_std(s)[1])
                 for g, s in zip(g_feats, style_feats))

    ours = adain_losses(encoder, decoder, content, style)
    torch.testing.assert_close(ours.content, loss_c, rtol=1e-5, atol=0)
    torch.testing.assert_close(ours.style, loss_s, rtol=1e-5, atol=0)


def test_evaluate_decoder_averages_pairs_and_restores_mode(encoder):
    generator = torch.Generator().manual_seed(3)
    contents = [torch.rand(3, 40, 48, generator=generator) for _ in range(2)]
    styles = [torch.rand(3, 36, 36, generator=generator)]
    decoder = _build_decoder("batch", seed=0).train()
    both = T.evaluate_decoder(decoder, encoder, contents, styles, size=32, batch_size=1)
    assert decoder.training and both["pairs"] == 2
    single = [T.evaluate_decoder(decoder, encoder, [c], styles, size=32) for c in contents]
    for key in ("content", "style"):
        assert both[key] == pytest.approx(sum(s[key] for s in single) / 2, rel=1e-5)
    assert both["total"] == pytest.approx(both["content"] + 10 * both["style"])


def test_learning_rate_is_pytorch_adain_inverse_decay():
    assert T.learning_rate(1e-4, 5e-5, 0) == 1e-4
    assert T.learning_rate(1e-4, 5e-5, 20_000) == pytest.approx(5e-5)


# -- data --------------------------------------------------------------------------------------


def test_sampler_is_seeded_sharded_and_resumable():
    content, style = InfiniteSampler(5, seed=7, stream="content"), InfiniteSampler(3, seed=7, stream="style")
    epoch = sorted(content.index(p) for p in range(5, 10))
    assert epoch == list(range(5))  # every epoch is a permutation
    assert [content.index(p) for p in range(20)] != [content.index(p) for p in range(5)] * 4  # reshuffled
    assert [content.index(p) for p in range(12)] == [InfiniteSampler(5, 7, "content").index(p) for p in range(12)]
    assert [content.index(p) for p in range(12)] != [InfiniteSampler(5, 8, "content").index(p) for p in range(12)]

    single = PairSampler(content, style, batch_size=4)
    ranks = [PairSampler(content, style, batch_size=4, rank=r, world_size=2) for r in range(2)]
    for iteration in range(4):
        assert ranks[0].samples(iteration) + ranks[1].samples(iteration) == single.samples(iteration)
    resumed = PairSampler(content, style, batch_size=4, start_iteration=2)
    stream, continued = iter(single), iter(resumed)
    whole = [next(stream) for _ in range(16)]
    assert [next(continued) for _ in range(8)] == whole[8:]


def test_empty_or_unreadable_folder_is_an_error_before_any_work(tmp_path, data):
    empty = tmp_path / "empty"
    (empty / "deep").mkdir(parents=True)
    (empty / "deep" / "fake.png").write_text("no")
    (empty / "readme.txt").write_text("no")
    out = tmp_path / "w" / "d.safetensors"
    result = run_cli("train", "--content-dir", empty, "--style-dir", data[1], "--out", out, *TINY_FLAGS)
    assert result.exit_code == 1, result.output
    assert "error: --content-dir" in result.output and "no readable images (1 files with image" in result.output
    assert "random-weight" not in result.output  # stopped before the encoder was built
    assert not (tmp_path / "w").exists()


# -- training runs -----------------------------------------------------------------------------


def test_train_cli_lowers_loss_and_writes_everything(tmp_path, data):
    out = tmp_path / "weights" / "tiny.safetensors"
    result = run_cli("train", "--content-dir", data[0], "--style-dir", data[1], "--out", out, *TINY_FLAGS,
                     "--max-iter", 20, "--save-every", 8, "--keep", 2, "--preview-every", 10, "--seed", 1)
    assert result.exit_code == 0, result.output
    assert "skipped 1 unreadable: 'notes.jpg'" in result.output  # found by the scan
    assert "truncated.png" in result.output and "2 unreadable images skipped" in result.output
    folder = tmp_path / "weights" / "tiny.ckpt"
    assert [c.iteration for c in list_checkpoints(folder)] == [16, 20]  # keep 2 of 8, 16, 20
    assert sorted(p.name for p in (folder / "previews").iterdir()) == ["iter_00000010.png", "iter_00000020.png"]

    log = read_log(folder / "log.jsonl")
    assert [r["iteration"] for r in log] == list(range(1, 21))
    assert all(r["lr"] == pytest.approx(T.learning_rate(1e-3, 5e-5, r["iteration"] - 1)) for r in log)
    first, last = [r["total"] for r in log[:5]], [r["total"] for r in log[-5:]]
    assert sum(last) / 5 < 0.7 * sum(first) / 5, (first, last)

    state = torch.load(folder / "state_00000020.pt", weights_only=True)
    assert state["iteration"] == 20 and state["config"]["max_iter"] == 20 and state["sampler"]["next_position"] == 40
    assert isinstance(state["rng"]["torch"], torch.Tensor) and state["optimizer"]["state"]

    decoder, meta = load_decoder(out)
    assert meta["norm"] == "none" and meta["iterations"] == 20 and meta["training"]["lr"] == 1e-3
    assert meta["encoder"]["source"] == "random:0" and "sha256" in meta["encoder"]
    assert meta["final_losses"]["window"] == 20 and meta["final_losses"]["last_style"] == log[-1]["style"]
    checkpoint_decoder, _ = load_decoder(folder / "decoder_00000020.safetensors")
    for key, tensor in decoder.state_dict().items():
        assert torch.equal(tensor, checkpoint_decoder.state_dict()[key])

    again = run_cli("train", "--content-dir", data[0], "--style-dir", data[1], "--out", tmp_path / "x.safetensors",
                    "--checkpoint-dir", folder, *TINY_FLAGS)
    assert again.exit_code == 2 and "--resume" in again.output  # never mixes two runs in one folder
    exists = run_cli("train", "--content-dir", data[0], "--style-dir", data[1], "--out", out, *TINY_FLAGS)
    assert exists.exit_code == 2 and "already exists" in exists.output


def test_resume_repeats_the_uninterrupted_run_exactly(tmp_path, data, encoder):
    straight = T.train(config(data, max_iter=6, checkpoint_dir=str(tmp_path / "a"), save_every=2, keep=3),
                       encoder=encoder)
    first = T.train(config(data, max_iter=3, checkpoint_dir=str(tmp_path / "b"), save_every=2), encoder=encoder)
    folder = tmp_path / "b"
    # What a killed run leaves: a line logged after the checkpoint, and a temporary file.
    with open(folder / "log.jsonl", "a") as log:
        log.write(json.dumps({"iteration": 4, "content": 9.0, "style": 9.0}) + "\n" + '{"iteration": 5, "con')
    (folder / ".state_00000004.pt.x1y2.tmp").write_bytes(b"partial")
    second = T.train(config(data, max_iter=6), encoder=encoder, resume=folder)

    assert second.start_iteration == 3 and [r["iteration"] for r in second.history] == [4, 5, 6]
    assert losses_only(first.history + second.history) == losses_only(straight.history)  # exactly
    for key, tensor in straight.decoder.state_dict().items():
        assert torch.equal(tensor, second.decoder.state_dict()[key]), key
    assert losses_only(read_log(folder / "log.jsonl")) == losses_only(read_log(tmp_path / "a" / "log.jsonl"))

    # A damaged newest checkpoint (not something our writes leave, but disks fail): the folder
    # falls back to the previous one with a warning; the file itself is refused.
    damaged = Checkpoint(tmp_path / "a", 6).state_path
    damaged.write_bytes(damaged.read_bytes()[:100])
    with pytest.warns(UserWarning, match="skipping checkpoint 6"):
        assert resolve_checkpoint(tmp_path / "a")[0].iteration == 4
    with pytest.raises(TrainingError, match="damaged"):
        resolve_checkpoint(damaged)

    changed = config(data, max_iter=8, lr=5e-4)
    with pytest.raises(UsageError, match="--lr 0.0005 \\(checkpoint: 0.001\\)"):
        T.train(changed, encoder=encoder, resume=folder)


@pytest.mark.parametrize("norm", NORMS.names())
def test_every_norm_trains_and_round_trips(tmp_path, data, encoder, norm):
    result = T.train(config(data, norm=norm, max_iter=2, out=str(tmp_path / f"{norm}.safetensors")), encoder=encoder)
    assert all(math.isfinite(r["total"]) for r in result.history)
    decoder, meta = load_decoder(result.out)
    assert meta["norm"] == norm and decoder.norm == norm and meta["training"]["norm"] == norm


def test_sigint_in_process_saves_and_reports_130(tmp_path, data, encoder):
    def interrupt(record):
        if record["iteration"] == 2:
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN in a background job
    result = T.train(config(data, max_iter=50, save_every=50, checkpoint_dir=str(tmp_path / "c")),
                     encoder=encoder, callback=interrupt)
    # The signal came between steps 2 and 3: the flag travels with step 3's losses, so the run stops after it.
    assert result.interrupted == "SIGINT" and result.exit_code == 130 and result.iteration == 3
    assert [c.iteration for c in list_checkpoints(tmp_path / "c")] == [3]
    assert signal.getsignal(signal.SIGINT) is before  # handler restored


def test_nan_loss_stops_with_one_line_and_keeps_last_good_checkpoint(tmp_path, data, monkeypatch):
    original, calls = adain_losses, []

    def poisoned(*args, **kwargs):
        losses = original(*args, **kwargs)
        calls.append(1)
        if len(calls) == 5:
            losses.style = losses.style * float("nan")
        return losses

    monkeypatch.setattr("styletransfer.training.loop.adain_losses", poisoned)
    out = tmp_path / "n.safetensors"
    result = run_cli("train", "--content-dir", data[0], "--style-dir", data[1], "--out", out, *TINY_FLAGS,
                     "--max-iter", 10, "--save-every", 2)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "style loss is nan at iteration 5" in errors[0]
    assert "state_00000004.pt" in errors[0] and "Traceback" not in result.output
    folder = tmp_path / "n.ckpt"
    assert [c.iteration for c in list_checkpoints(folder)] == [2, 4] and not out.exists()
    checkpoint, state = resolve_checkpoint(folder)
    decoder, _ = load_decoder(checkpoint.decoder_path)
    assert state["iteration"] == 4 and all(torch.isfinite(p).all() for p in decoder.parameters())


# -- crashes and signals in a real process -----------------------------------------------------


def start_training(data, out, *extra):
    command = [sys.executable, "-m", "styletransfer", "train", "--content-dir", str(data[0]), "--style-dir",
               str(data[1]), "--out", str(out), *TINY_FLAGS, *map(str, extra)]
    return subprocess.Popen(command, cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_143(tmp_path, data):
    out = tmp_path / "t.safetensors"
    log = tmp_path / "t.ckpt" / "log.jsonl"
    process = start_training(data, out, "--max-iter", 100_000, "--save-every", 100_000, "--workers", 1)
    wait_for(lambda: len(read_log(log)) >= 2, process, "two logged iterations")
    os.killpg(process.pid, signal.SIGTERM)  # like a job scheduler: the loader worker gets it too
    _, stderr = process.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert process.returncode == 143, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted by SIGTERM at iteration ") and "--resume" in last
    iteration = int(last.split("at iteration ")[1].split(":")[0])
    checkpoint, state = resolve_checkpoint(tmp_path / "t.ckpt")
    assert checkpoint.iteration == iteration == read_log(log)[-1]["iteration"] and not out.exists()


@pytest.mark.slow
def test_a_failing_loader_worker_does_not_keep_the_process_alive(tmp_path, data):
    """Every content file fails to decode in the loader workers: one-line error, exit 1, and the
    process ends (the workers ignore SIGTERM, so a worker left running made it wait forever)."""
    broken = tmp_path / "broken"
    broken.mkdir()
    whole = (data[0] / "c0.png").read_bytes()
    for i in range(4):
        (broken / f"b{i}.png").write_bytes(whole[: len(whole) // 2])  # header fine, pixels missing
    process = start_training((broken, data[1]), tmp_path / "b.safetensors", "--max-iter", 3, "--workers", 2)
    try:
        _, stderr = process.communicate(timeout=SUBPROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("the training process did not exit after its loader workers failed")
    assert process.returncode == 1, stderr
    assert stderr.strip().splitlines()[-1].startswith("error: no image below") and "Traceback" not in stderr


@pytest.mark.slow
def test_sigkill_loses_at_most_one_interval_and_resumes(tmp_path, data):
    out = tmp_path / "k.safetensors"
    folder = tmp_path / "k.ckpt"
    process = start_training(data, out, "--max-iter", 100_000, "--save-every", 2, "--workers", 1)
    def past_a_checkpoint():  # kill between two checkpoints, so the log runs ahead of the newest one
        log = read_log(folder / "log.jsonl")
        return bool(log) and log[-1]["iteration"] >= 5 and log[-1]["iteration"] % 2 == 1

    wait_for(past_a_checkpoint, process, "iteration 5")
    process.kill()
    process.communicate(timeout=SUBPROCESS_TIMEOUT)
    killed_log = read_log(folder / "log.jsonl")
    newest = list_checkpoints(folder)[-1].iteration
    assert newest % 2 == 0 and 0 <= killed_log[-1]["iteration"] - newest <= 2  # at most one interval (--save-every 2) lost

    result = run_cli("train", "--resume", folder, "--max-iter", newest + 2, "--no-progress")
    assert result.exit_code == 0, result.output
    assert f"resuming from {Checkpoint(folder, newest).state_path}" in result.output
    log = read_log(folder / "log.jsonl")
    assert [r["iteration"] for r in log] == list(range(1, newest + 3))
    assert losses_only(log[:newest]) == losses_only(killed_log[:newest])
    # The iterations the killed process (one loader worker) logged after its checkpoint were
    # dropped and redone by the resumed one (no worker) with the same data and the same results.
    redone = {r["iteration"]: r for r in log}
    assert all(losses_only([r]) == losses_only([redone[r["iteration"]]]) for r in killed_log[newest:])
    assert load_decoder(out)[1]["iterations"] == newest + 2


# -- several processes -------------------------------------------------------------------------


@pytest.mark.slow
def test_ddp_two_gloo_processes_agree_with_one_process(tmp_path, data, encoder):
    out = tmp_path / "ddp.safetensors"
    flags = [f for f in TINY_FLAGS if f != "--no-progress"]
    flags[flags.index("--batch-size") + 1] = "4"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(ROOT / "tests" / "helpers" / "ddp_worker.py"), str(tmp_path), "train", "--content-dir", str(data[0]),
               "--style-dir", str(data[1]), "--out", str(out), *flags, "--no-progress", "--max-iter", "2",
               "--save-every", "2"]
    process = subprocess.run(command, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
                             timeout=SUBPROCESS_TIMEOUT)
    assert process.returncode == 0, process.stderr[-3000:]
    folder = tmp_path / "ddp.ckpt"
    assert [c.iteration for c in list_checkpoints(folder)] == [2]
    assert load_decoder(out)[1]["world_size"] == 2
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for key, tensor in ranks[0].items():
        assert torch.equal(tensor, ranks[1][key]), key

    with recorded_gradients() as single_steps:
        single = T.train(config(data, batch_size=4, max_iter=2), encoder=encoder)
    distributed = read_log(folder / "log.jsonl")
    for one, two in zip(single.history, distributed):
        assert two["total"] == pytest.approx(one["total"], rel=1e-5)

    # The two runs differ only in the order of floating-point sums (a batch of 4 against two of 2
    # all-reduced), so compare the first step's gradients, not the weights: Adam's first step is
    # lr·sign(gradient), which turns a rounding difference in a near-zero gradient into 2·lr, and the
    # second step's gradients are taken at those weights. Reordering one sum of n terms changes it by
    # at most γ_n (Higham) relative to the magnitudes summed; a gradient passes through every conv of
    # the encoder (to relu4_1) and the decoder twice (forward, backward), each a sum of at most
    # n = max(batch positions 4·32², input-gradient terms 512·3·3) terms. That first-order worst case
    # holds for any CPU's kernels; a DDP fault (no averaging, a lost shard) is off by O(1).
    ddp_steps = torch.load(tmp_path / "rank0_gradients.pt", weights_only=True)
    assert len(ddp_steps) == len(single_steps) == 2
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in single.decoder.modules()) + 10  # + conv1_1..conv4_1
    bound = 2 * convs * summation_bound(max(4 * 32 * 32, 512 * 3 * 3))
    for name, a, b in zip([n for n, _ in single.decoder.named_parameters()], ddp_steps[0], single_steps[0]):
        error = (a.double() - b.double()).norm() / b.double().norm()
        assert error <= bound, (name, float(error), bound)
    # And the DDP weights are exactly Adam applied to the DDP gradients: nothing else differs.
    run = config(data, batch_size=4)
    replay = _build_decoder(run.norm, run.seed)
    optimizer = torch.optim.Adam(replay.parameters(), lr=run.lr)
    for step, gradients in enumerate(ddp_steps):
        optimizer.param_groups[0]["lr"] = T.learning_rate(run.lr, run.lr_decay, step)
        for parameter, gradient in zip(replay.parameters(), gradients):
            parameter.grad = gradient
        optimizer.step()
    for key, tensor in replay.state_dict().items():
        torch.testing.assert_close(ranks[0][key], tensor, rtol=0, atol=1e-7, msg=key)


def test_bf16_losses_follow_the_fp32_ones_and_keep_float32_weights(encoder):
    """bfloat16 autocast (--precision bf16): the same losses within bfloat16's rounding (8-bit
    mantissa, ~0.4 % per value), float32 statistics, and float32 gradients for the float32 weights."""
    decoder = _build_decoder("none", 0)
    g = torch.Generator().manual_seed(0)
    content, style = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    exact = adain_losses(encoder, decoder, content, style)
    rounded = adain_losses(encoder, decoder, content, style, dtype=torch.bfloat16)
    assert rounded.content.dtype == rounded.style.dtype == torch.float32
    assert float(rounded.content.detach()) == pytest.approx(float(exact.content.detach()), rel=5e-2)
    assert float(rounded.style.detach()) == pytest.approx(float(exact.style.detach()), rel=5e-2)
    rounded.style.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in decoder.parameters())
    assert T.TrainConfig(precision="bf16").validate().precision == "bf16"
    with pytest.raises(UsageError, match="did you mean"):
        T.TrainConfig(precision="bf-16").validate()


# -- reconstruction objective, --init, --manifest -----------------------------------------------


def test_reconstruction_losses_by_hand(encoder):
    from styletransfer.adain.losses import reconstruction_losses

    torch.manual_seed(0)
    content = torch.rand(2, 3, 32, 32)
    decoder = _build_decoder("none", 0)
    both = reconstruction_losses(encoder, decoder, content)
    target = encoder(content, ["relu4_1"])["relu4_1"]
    output = decoder(target)
    assert torch.allclose(both.pixel, ((output - content) ** 2).mean(), rtol=1e-5)
    assert torch.allclose(both.content, ((encoder(output, ["relu4_1"])["relu4_1"] - target) ** 2).mean(), rtol=1e-5)
    assert both.style == 0
    pixel_only = reconstruction_losses(encoder, decoder, content, features=False)
    assert pixel_only.content == 0 and torch.allclose(pixel_only.pixel, both.pixel)


def test_reconstruction_run_lowers_pixel_loss_and_init_starts_from_its_decoder(tmp_path, data, encoder):
    first = T.train(config(data, objective="reconstruction", pixel_weight=1.0, content_weight=0.0, max_iter=30,
                           lr=3e-3, out=str(tmp_path / "recon.safetensors")), encoder=encoder)
    pixel = [r["pixel"] for r in first.history]
    assert all(r["content"] == 0 and r["style"] == 0 and r["total"] == r["pixel"] for r in first.history)
    assert sum(pixel[-5:]) < 0.5 * sum(pixel[:5]), pixel

    manifest = tmp_path / "manifest.csv"
    manifest.write_text("file,package,version,licence\n")
    second = T.train(config(data, init=str(first.out), manifest=str(manifest), max_iter=1,
                            out=str(tmp_path / "adain.safetensors")), encoder=encoder)
    assert second.history[0]["pixel"] == 0 and second.history[0]["style"] > 0  # the AdaIN objective
    # Its first step started from the reconstruction decoder: one Adam step moves each weight by
    # at most about lr, so it is still within 2·lr of the file's.
    started, _ = load_decoder(first.out)
    for key, tensor in second.decoder.state_dict().items():
        assert (tensor - started.state_dict()[key]).abs().max() <= 2e-3, key
    _, meta = load_decoder(second.out)
    from styletransfer.files import sha256_file

    assert meta["init"] == {"file": str(first.out), "sha256": sha256_file(first.out)}
    assert meta["manifest"]["sha256"] == sha256_file(manifest)
    assert meta["training"]["objective"] == "adain" and meta["training"]["init"] == str(first.out)


@pytest.mark.parametrize("flags, message", [
    (["--objective", "reconstruction", "--content-weight", "0"], "needs --pixel-weight or --content-weight"),
    (["--init", "missing.safetensors"], "--init 'missing.safetensors' is not a file"),
    (["--manifest", "missing.csv"], "--manifest 'missing.csv' is not a file"),
])
def test_objective_flags_are_checked_before_any_work(tmp_path, data, flags, message):
    out = tmp_path / "never.safetensors"
    result = run_cli("train", "--content-dir", data[0], "--style-dir", data[1], "--out", out, *TINY_FLAGS,
                     "--max-iter", 1, *flags)
    assert result.exit_code == 2 and message in result.output and not out.exists()
    assert len(result.output.strip().splitlines()) == 1


def test_init_with_another_norm_is_refused(tmp_path, data, encoder):
    path = tmp_path / "instance.safetensors"
    from styletransfer.adain.decoder import save_decoder

    save_decoder(Decoder("instance"), path, {})
    with pytest.raises(UsageError, match="give --norm instance"):
        T.train(config(data, init=str(path), max_iter=1), encoder=encoder)


def test_style_balance_weighs_each_layer_by_relu4_1s_mean_square(encoder):
    from styletransfer.adain.losses import statistics_loss, style_balance

    torch.manual_seed(1)
    content, style = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    features = encoder(style, ["relu1_1", "relu2_1", "relu3_1", "relu4_1"])
    weights = style_balance(encoder, style)
    for layer, value in features.items():
        expected = float((features["relu4_1"].double() ** 2).mean() / (value.double() ** 2).mean())
        assert weights[layer] == pytest.approx(expected, rel=1e-9)
    assert weights["relu4_1"] == 1.0

    decoder = _build_decoder("none", 0)
    weighted = adain_losses(encoder, decoder, content, style, layer_weights=weights)
    output = weighted.output.detach()
    by_hand = sum(weights[layer] * statistics_loss(value, features[layer])
                  for layer, value in encoder(output, list(features)).items())
    assert torch.allclose(weighted.style, by_hand, rtol=1e-5)
    plain = adain_losses(encoder, decoder, content, style)
    assert torch.allclose(plain.style, sum(statistics_loss(value, features[layer])
                                           for layer, value in encoder(output, list(features)).items()), rtol=1e-5)


def test_style_balance_run_records_its_weights(tmp_path, data, encoder):
    result = T.train(config(data, style_balance="rms", max_iter=1, out=str(tmp_path / "b.safetensors")),
                     encoder=encoder)
    _, meta = load_decoder(result.out)
    assert set(meta["style_layer_weights"]) == {"relu1_1", "relu2_1", "relu3_1", "relu4_1"}
    assert meta["style_layer_weights"]["relu4_1"] == 1.0 and meta["training"]["style_balance"] == "rms"


def test_identity_loss_decodes_the_contents_own_features(encoder):
    torch.manual_seed(2)
    content, style = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    decoder = _build_decoder("none", 0)
    with_identity = adain_losses(encoder, decoder, content, style, identity=True)
    plain = adain_losses(encoder, decoder, content, style)
    assert plain.pixel is None
    assert torch.allclose(with_identity.output, plain.output, atol=1e-6)  # one batch, same AdaIN outputs
    assert torch.allclose(with_identity.style, plain.style, rtol=1e-5)
    own = decoder(encoder(content, ["relu4_1"])["relu4_1"])
    assert torch.allclose(with_identity.pixel, ((own - content) ** 2).mean(), rtol=1e-5)
