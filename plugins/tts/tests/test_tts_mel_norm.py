"""The mel-norm encoder: standardised channels, exact inverse, statistics saved in the config."""

from __future__ import annotations

import torch

from polydiff_tts.encoders.mel_norm import MelNormEncoder


def test_fit_standardises_every_channel_and_round_trips(digits_train):
    encoder = MelNormEncoder(data_shape=(40, 80))
    assert not encoder.is_fitted
    encoder.fit(digits_train)
    assert encoder.is_fitted
    frames = torch.cat([digits_train[i]["x"] for i in range(len(digits_train))], dim=-1)[None]
    z = encoder.encode(frames)
    assert torch.allclose(z.mean(-1), torch.zeros(1, 40), atol=1e-4)
    assert torch.allclose(z.std(-1), torch.ones(1, 40), atol=1e-3)
    assert torch.allclose(encoder.decode(z), frames, atol=1e-4)
    rebuilt = MelNormEncoder(data_shape=(40, 80), **encoder.config())
    assert rebuilt.is_fitted and torch.allclose(rebuilt.encode(frames), z)
