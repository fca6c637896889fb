"""polydiff.nn: the rank-generic UNet (1D signals, 2D images, 3D volumes; video with SpaceTimeConfig)."""

from polydiff.nn.config import SpaceTimeConfig, UNetConfig
from polydiff.nn.unet import UNet

__all__ = ["SpaceTimeConfig", "UNet", "UNetConfig"]
