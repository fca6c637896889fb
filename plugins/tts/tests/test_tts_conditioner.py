"""The grad-tts conditioner: training conditioning, losses, and sample lengths from durations."""

from __future__ import annotations

import math

import pytest
import torch

from polydiff.builder import build_dataset, build_model
from polydiff.errors import ConfigError
from polydiff.pipeline import DiffusionPipeline
from polydiff_tts.conditioner import GradTTSConditioner
from polydiff_tts.data.digits import DigitsDataset


def fixed_duration(conditioner: GradTTSConditioner, frames_per_token: float) -> None:
    """Make the duration predictor output ``log(frames_per_token)`` for every token."""
    proj = conditioner.encoder.duration.proj
    torch.nn.init.zeros_(proj.weight)
    torch.nn.init.constant_(proj.bias, math.log(frames_per_token))


def small_conditioner(**options) -> GradTTSConditioner:
    torch.manual_seed(0)
    return GradTTSConditioner(
        n_mels=8,
        hidden=16,
        layers=1,
        heads=2,
        ffn_mult=2,
        duration_hidden=16,
        dropout=0.0,
        pad_multiple=16,
        **options,
    ).eval()


@pytest.mark.parametrize("length_scale", [1.0, 2.0, 0.5])
def test_plan_length_follows_durations_and_length_scale(length_scale):
    cond = small_conditioner()
    fixed_duration(cond, 2.4)
    prompts = ["one two", "seven"]
    tokens = [2 * len(p) + 1 for p in prompts]  # characters with blanks in between and around
    plan = cond.plan(prompts, (8, 64), length_scale=length_scale)
    assert plan.lengths == [round(2.4 * length_scale * n) for n in tokens]
    assert plan.shape == (8, -(-max(plan.lengths) // 16) * 16)
    assert plan.uncond is None
    mu = plan.cond.concat
    assert mu.shape == (2, *plan.shape) and torch.equal(plan.cond.offset, mu)
    assert torch.all(mu[1, :, plan.lengths[1] :] == 0)
    mask = plan.cond.loss_mask[:, 0]
    assert mask.sum(1).tolist() == plan.lengths


def test_durations_are_rounded_cumulatively():
    """Token boundaries at round(cumsum(w)): the total is unbiased, not +0.5 frame per token."""
    cond = small_conditioner(add_blank=False)
    fixed_duration(cond, 1.4)
    _, durations, frames = cond.predict_durations(["abcde"])
    assert durations[0].tolist() == [1, 2, 1, 2, 1]  # boundaries 1.4, 2.8, 4.2, 5.6, 7.0 rounded
    assert frames.tolist() == [7]


def test_plan_rejects_nonpositive_length_scale():
    with pytest.raises(ConfigError, match="length_scale must be > 0"):
        small_conditioner().plan(["one"], (8, 16), length_scale=0)


def test_forward_aligns_and_returns_both_auxiliary_losses():
    cond = small_conditioner()
    x0 = torch.randn(2, 8, 48)
    lengths = torch.tensor([48, 30])
    out = cond({"text": ["three one", "four"], "mel_lengths": lengths}, x0)
    assert out.concat.shape == x0.shape and out.loss_mask.shape == (2, 1, 48)
    assert out.loss_mask[:, 0].sum(1).tolist() == lengths.tolist()
    assert torch.all(out.concat[1, :, 30:] == 0)
    # diffusion target x0 - offset: x0 - mu on real frames, exactly 0 on padding
    assert torch.equal(out.offset[1, :, 30:], x0[1, :, 30:])
    assert torch.equal(out.offset[:, :, :30], out.concat[:, :, :30])
    assert set(out.aux_losses) == {"duration", "prior"}
    prior = out.aux_losses["prior"]
    assert prior > 0.5 * math.log(2 * math.pi)  # the Gaussian NLL's constant part
    (prior + out.aux_losses["duration"]).backward()
    assert cond.encoder.proj_mu.weight.grad is not None
    assert cond.encoder.duration.proj.weight.grad is not None


def test_fit_takes_mel_bands_and_padding_from_the_dataset(digits_train):
    cond = GradTTSConditioner(hidden=16, layers=1)
    cond.fit(digits_train)
    assert cond.concat_channels == 40 and cond.config()["n_mels"] == 40
    assert cond.config()["pad_multiple"] == digits_train.pad_multiple
    with pytest.raises(ConfigError, match="n_mels=80 but the dataset's mels have 40"):
        GradTTSConditioner(n_mels=80).fit(digits_train)


def test_pipeline_sample_lengths_follow_predicted_durations(tiny_config, tts_registry):
    build_dataset(tiny_config, tts_registry)
    model = build_model(tiny_config, tts_registry, DigitsDataset("train", max_items=8))
    fixed_duration(model.conditioner, 1.3)
    pipe = DiffusionPipeline(model, tiny_config, tts_registry)
    prompts = ["nine", "one two three"]
    tokens = [2 * len(p) + 1 for p in prompts]
    normal = pipe(prompts, steps=2, seed=0)
    slow = pipe(prompts, steps=2, seed=0, length_scale=2.0)
    assert normal.lengths == [round(1.3 * n) for n in tokens]
    assert slow.lengths == [round(2.6 * n) for n in tokens]
    assert slow.samples.shape[:2] == (2, 40)
    assert slow.samples.shape[-1] >= max(slow.lengths) and slow.samples.shape[-1] % 4 == 0


def test_text_encoder_output_does_not_depend_on_padding():
    """A text's prior and durations are the same alone and padded beside a longer text (DDP ranks and
    batches pad to their own longest text)."""
    import torch

    from polydiff_tts.model.text_encoder import TextEncoder

    torch.manual_seed(0)
    enc = TextEncoder(vocab_size=20, out_channels=8, hidden=32, layers=2, heads=2, dropout=0.0).eval()
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        mu, logd, _ = enc(ids, torch.tensor([3]))
        padded = torch.cat([ids, torch.zeros(1, 9, dtype=torch.long)], dim=1)
        mu_p, logd_p, mask = enc(padded, torch.tensor([3]))
    torch.testing.assert_close(mu_p[..., :3], mu, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logd_p[:, :3], logd, atol=1e-5, rtol=1e-5)
    assert mask[0, 0].tolist() == [1.0] * 3 + [0.0] * 9
