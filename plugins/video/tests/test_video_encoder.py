"""The video-pixels encoder."""

from __future__ import annotations

import pytest
import torch

from polydiff.errors import ConfigError
from polydiff_video.encoder import VideoPixelEncoder


def test_encode_maps_to_unit_range_and_decode_inverts():
    enc = VideoPixelEncoder(data_shape=(3, 4, 8, 8))
    x = torch.randint(0, 256, (2, 3, 4, 8, 8)).float()
    z = enc.encode(x)
    assert z.min() >= -1 and z.max() <= 1
    assert torch.equal(enc.encode(torch.tensor([0.0, 255.0])), torch.tensor([-1.0, 1.0]))
    assert torch.allclose(enc.decode(z), x, atol=1e-4)
    assert enc.decode(torch.tensor([-3.0, 3.0])).tolist() == [0.0, 255.0]  # clamped
    assert enc.latent_shape((3, 4, 8, 8)) == (3, 4, 8, 8)


def test_rejects_non_video_shapes():
    with pytest.raises(ConfigError, match="video-pixels"):
        VideoPixelEncoder(data_shape=(3, 32, 32))
