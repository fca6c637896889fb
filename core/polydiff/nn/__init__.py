"""polydiff.nn: the rank-generic UNet (1D signals, 2D images, 3D video) and its blocks."""

from polydiff.nn.config import UNetConfig
from polydiff.nn.unet import UNet

__all__ = ["UNet", "UNetConfig"]
