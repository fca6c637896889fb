"""The modality-blind Gaussian diffusion process: schedules, forward process, loss, spacing."""

from polydiff.diffusion.config import DiffusionConfig
from polydiff.diffusion.gaussian import GaussianDiffusion, expand_to
from polydiff.diffusion.schedules import make_beta_schedule, rescale_zero_terminal_snr, shift_snr
from polydiff.diffusion.timesteps import previous_timesteps, spaced_timesteps

__all__ = [
    "DiffusionConfig",
    "GaussianDiffusion",
    "expand_to",
    "make_beta_schedule",
    "previous_timesteps",
    "rescale_zero_terminal_snr",
    "shift_snr",
    "spaced_timesteps",
]
