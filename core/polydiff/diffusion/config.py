"""Configuration of the Gaussian diffusion process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from polydiff.validation import Rule, check_dataclass


@dataclass
class DiffusionConfig:
    """How data is noised and what the network predicts.

    Attributes:
        num_timesteps: ``T``, the number of discrete noise levels.
        schedule: ``"linear"`` (DDPM, ``beta_start..beta_end``), ``"scaled_linear"``
            (Stable Diffusion), ``"cosine"`` (Nichol & Dhariwal, betas capped at 0.999) or
            ``"sigmoid"`` (Jabri et al.'s continuous-time one; GeoDiff's when the betas are set).
        beta_start, beta_end: Ends of the linear-type schedules, quoted for ``T = 1000`` and
            scaled by ``1000 / T``; None (default) = the schedule's own: 1e-4..0.02 for
            ``linear``, 0.00085..0.012 for ``scaled_linear`` (see
            :func:`~polydiff.diffusion.schedules.make_beta_schedule`). Checkpoints store the
            values they were trained with.
        snr_shift: Divide every step's SNR by ``snr_shift ** 2`` (simple diffusion's shifted
            schedule, SD3's shift; see :func:`~polydiff.diffusion.schedules.shift_snr`): for
            large or redundant data (high resolutions, volumes, video clips). 1 = the schedule as it is.
        rescale_zero_terminal_snr: Rescale so that ``abar_T = 0`` (Lin et al. 2023), after
            the shift.
        prediction: Network target: ``"eps"``, ``"x0"`` or ``"v"``.
        min_snr_gamma: If set, weight the loss by ``min(SNR, gamma) / SNR`` expressed for
            the prediction target (Hang et al. 2023); None for plain MSE.
    """

    num_timesteps: int = 1000
    schedule: str = "linear"
    beta_start: float | None = None
    beta_end: float | None = None
    snr_shift: float = 1.0
    rescale_zero_terminal_snr: bool = False
    prediction: str = "eps"
    min_snr_gamma: float | None = None

    RULES: ClassVar[dict[str, Rule]] = {
        "num_timesteps": Rule(lo=1),
        "beta_start": Rule(lo=0, lo_open=True),
        "beta_end": Rule(lo=0, lo_open=True),
        "snr_shift": Rule(lo=0, lo_open=True),
        "prediction": Rule(choices=("eps", "x0", "v")),
        "min_snr_gamma": Rule(lo=0, lo_open=True),
    }

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field's type and range (raises ConfigError naming the field and the fix)."""
        check_dataclass(self, "diffusion", self.RULES)
