"""A bridge to diffusers: its ``UNet2DModel`` checkpoints as a polydiff backbone.

A diffusers directory is a pipeline (``model_index.json``, ``unet/``, ``scheduler/``, as
``save_pretrained`` and the Hub write it, e.g. ``google/ddpm-celebahq-256``) or a bare UNet
directory (``config.json`` + ``diffusion_pytorch_model.safetensors``) whose parent holds
``scheduler/scheduler_config.json``. :func:`run_config_for` turns it into a polydiff
:class:`~polydiff.run_config.RunConfig` (image modality, ``pixels`` encoder, no conditioner,
the scheduler's betas and target as :class:`~polydiff.diffusion.config.DiffusionConfig`), so it
samples through polydiff's samplers, trajectories and writers::

    polydiff sample ddpm-celebahq-256 --sampler ddpm --steps 1000 --out faces.png

Only this module's :class:`DiffusersUNet2D` imports diffusers (``pip install 'polydiff[diffusers]'``);
finding and reading a directory does not. Weights load from safetensors only: pickled ``.bin``
files are refused, as loading them can run arbitrary code.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from polydiff.diffusion.config import DiffusionConfig
from polydiff.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from polydiff.plugins import Registry
    from polydiff.run_config import RunConfig

WEIGHTS = "diffusion_pytorch_model.safetensors"
PICKLED = "diffusion_pytorch_model.bin"
SCHEDULER = Path("scheduler") / "scheduler_config.json"
#: diffusers' ``prediction_type`` -> polydiff's ``DiffusionConfig.prediction``.
PREDICTIONS = {"epsilon": "eps", "sample": "x0", "v_prediction": "v"}
#: diffusers' ``beta_schedule`` -> polydiff's ``DiffusionConfig.schedule``.
SCHEDULES = {
    "linear": "linear",
    "scaled_linear": "scaled_linear",
    "squaredcos_cap_v2": "cosine",
    "sigmoid": "sigmoid",
}
SPACINGS = ("leading", "trailing", "linspace")


def is_diffusers_dir(path: str | Path) -> bool:
    """Whether ``path`` is a diffusers pipeline or UNet directory (and not a polydiff run)."""
    path = Path(path)
    if not path.is_dir():
        return False
    if (path / "model_index.json").is_file() or (path / "unet" / "config.json").is_file():
        return True
    return _is_unet_dir(path)


def _is_unet_dir(path: Path) -> bool:
    config = path / "config.json"
    if not config.is_file() or not ((path / WEIGHTS).exists() or (path / PICKLED).exists()):
        return False
    try:
        return "_diffusers_version" in json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


def locate(path: str | Path) -> tuple[Path, Path | None]:
    """``(unet directory, scheduler_config.json or None)`` of a diffusers directory."""
    path = Path(path)
    unet = path / "unet" if (path / "unet" / "config.json").is_file() else path
    if not (unet / "config.json").is_file():
        raise CheckpointError(
            f"{path} is not a diffusers UNet directory: no unet/config.json or config.json; point at a "
            "directory written by diffusers' save_pretrained"
        )
    for scheduler in (path / SCHEDULER, unet.parent / SCHEDULER):
        if scheduler.is_file():
            return unet, scheduler
    return unet, None


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"{path} is not readable JSON ({exc}); the diffusers directory is corrupt"
        ) from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} holds a {type(data).__name__}, not a diffusers config")
    return data


def diffusion_from_scheduler(
    config: dict[str, Any], source: str = "scheduler"
) -> tuple[DiffusionConfig, dict]:
    """A diffusers scheduler config as ``(DiffusionConfig, sample section)``.

    Reads ``num_train_timesteps``, ``beta_schedule``, ``beta_start``, ``beta_end``,
    ``prediction_type``, ``rescale_betas_zero_snr``, ``clip_sample`` (+ ``clip_sample_range``),
    ``thresholding`` (+ ``dynamic_thresholding_ratio``), ``timestep_spacing`` and
    ``steps_offset``, with diffusers' defaults for those absent. polydiff quotes linear betas for
    T = 1000 and scales them by 1000 / T, so diffusers' (unscaled) ends are stored times T / 1000.

    Raises:
        ConfigError: a schedule, target or spacing polydiff has no equivalent for (one line).
    """

    def get(key: str, default: Any) -> Any:
        value = config.get(key)
        return default if value is None else value

    if config.get("trained_betas") is not None:
        raise ConfigError(
            f"{source}: trained_betas (an explicit beta list) are not supported; polydiff "
            "needs one of the schedules " + ", ".join(SCHEDULES)
        )
    schedule = get("beta_schedule", "linear")
    prediction = get("prediction_type", "epsilon")
    spacing = get("timestep_spacing", "leading")
    for what, value, known in (
        ("beta_schedule", schedule, SCHEDULES),
        ("prediction_type", prediction, PREDICTIONS),
        ("timestep_spacing", spacing, SPACINGS),
    ):
        if value not in known:
            raise ConfigError(
                f"{source}: {what} '{value}' has no polydiff equivalent; supported: {', '.join(known)}"
            )
    T = int(get("num_train_timesteps", 1000))
    start, end = float(get("beta_start", 0.0001)), float(get("beta_end", 0.02))
    if schedule in ("linear", "scaled_linear"):
        start, end = start * T / 1000, end * T / 1000  # polydiff scales them back by 1000 / T
    diffusion = DiffusionConfig(
        num_timesteps=T,
        schedule=SCHEDULES[schedule],
        beta_start=None if schedule == "squaredcos_cap_v2" else start,
        beta_end=None if schedule == "squaredcos_cap_v2" else end,
        prediction=PREDICTIONS[prediction],
        rescale_zero_terminal_snr=bool(get("rescale_betas_zero_snr", False)),
    )
    sample: dict[str, Any] = {"sampler": "ddim", "steps": 50, "guidance": 1.0, "spacing": spacing}
    clip = bool(get("clip_sample", True))
    bound = float(get("clip_sample_range", 1.0))
    sample["clip_denoised"] = (True if bound == 1.0 else bound) if clip else False
    if get("thresholding", False):
        sample["dynamic_threshold"] = float(get("dynamic_thresholding_ratio", 0.995))
    if int(get("steps_offset", 0)):
        warnings.warn(
            f"{source}: steps_offset={config['steps_offset']} is ignored (polydiff's '{spacing}' "
            "spacing visits the timesteps without an offset)",
            stacklevel=2,
        )
    return diffusion, sample


def run_config_for(path: str | Path, registry: Registry) -> RunConfig:
    """The polydiff run config of a diffusers directory (see the module docstring).

    Raises:
        CheckpointError: not a diffusers directory, or one without a scheduler config.
        ConfigError: a scheduler setting polydiff cannot represent.
    """
    from polydiff import __version__
    from polydiff.nn.config import UNetConfig
    from polydiff.run_config import ComponentRef, RunConfig

    unet_dir, scheduler = locate(path)
    if scheduler is None:
        raise CheckpointError(
            f"{path}: no {SCHEDULER} next to the UNet, so its noise schedule is unknown; point at the "
            "pipeline directory that holds unet/ and scheduler/"
        )
    net = read_json(unet_dir / "config.json")
    if net.get("_class_name", "UNet2DModel") != "UNet2DModel":
        raise CheckpointError(
            f"{unet_dir / 'config.json'} describes a {net['_class_name']}; the diffusers bridge loads "
            "UNet2DModel (unconditional pixel-space) checkpoints only"
        )
    size = net.get("sample_size") or 32
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    channels = int(net.get("in_channels", 3))
    diffusion, sample = diffusion_from_scheduler(read_json(scheduler), str(scheduler))
    mod = registry.modality("image")  # the png writer and pixels encoder are the image plugin's
    config = RunConfig(
        modality="image",
        dataset=ComponentRef(mod.default_dataset or "shapes"),
        encoder=ComponentRef("pixels"),
        conditioner=ComponentRef("none"),
        writer=ComponentRef(mod.writer) if mod.writer else None,
        evaluator=None,
        unet=UNetConfig(dims=2),
        backbone=ComponentRef("diffusers-unet2d", {"path": str(unet_dir.resolve())}),
        diffusion=diffusion,
        sample=sample,
        data_shape=[channels, height, width],
        latent_shape=[channels, height, width],
        preset=None,
        polydiff_version=__version__,
    )
    config.validate(registry)
    return config


class DiffusersUNet2D(nn.Module):
    """A diffusers ``UNet2DModel`` behind polydiff's backbone call.

    ``forward(x [B, C, H, W], t [B], context=None, context_mask=None, concat=None)`` returns
    ``UNet2DModel(x, t).sample``. The model takes no conditioning: a context or concat input
    is an error at build time (the run's conditioner must be ``none``).

    Args:
        path: The UNet directory (``config.json`` + ``diffusion_pytorch_model.safetensors``) or a
            pipeline directory holding ``unet/``.
        dims, in_channels, cond_channels, context_dim: Filled in by the builder; checked.
    """

    def __init__(
        self,
        path: str,
        dims: int = 2,
        in_channels: int | None = None,
        cond_channels: int = 0,
        context_dim: int | None = None,
    ) -> None:
        super().__init__()
        from diffusers import UNet2DModel

        unet_dir, _ = locate(path)
        if not (unet_dir / WEIGHTS).is_file():
            pickled = unet_dir / PICKLED
            if pickled.exists():
                raise CheckpointError(
                    f"{pickled} is a pickle, which can run code when loaded; polydiff loads safetensors "
                    f"only: convert it with diffusers' save_pretrained(..., safe_serialization=True)"
                )
            raise CheckpointError(f"{unet_dir} has no {WEIGHTS}; point at a diffusers UNet2DModel directory")
        if dims != 2 or cond_channels or context_dim is not None:
            raise ConfigError(
                f"backbone 'diffusers-unet2d' is an unconditional image UNet; it cannot take dims={dims}, "
                f"cond_channels={cond_channels}, context_dim={context_dim}: use conditioner 'none'"
            )
        self.model = UNet2DModel.from_pretrained(str(unet_dir), use_safetensors=True, low_cpu_mem_usage=False)
        self.path = str(unet_dir)
        c = self.model.config
        if in_channels is not None and in_channels != c.in_channels:
            raise ConfigError(
                f"{unet_dir} takes {c.in_channels} channels, but the data have {in_channels}; "
                "use an encoder whose latents have that many"
            )
        if c.out_channels != c.in_channels:
            raise ConfigError(
                f"{unet_dir}: out_channels {c.out_channels} != in_channels {c.in_channels} (a learned "
                "variance?); polydiff's samplers take the prediction alone"
            )
        self.dims = 2

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.model.config.block_out_channels) - 1)

    def check_input_shape(self, spatial: Sequence[int]) -> None:
        """Raise ConfigError unless ``(H, W)`` are multiples of the UNet's downsampling."""
        f = self.downsample_factor
        if len(spatial) != 2 or any(int(s) % f for s in spatial):
            raise ConfigError(f"input size {tuple(spatial)} does not fit {self.path}: use multiples of {f}")

    def forward(
        self,
        x: Tensor,
        t: Tensor | float,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        concat: Tensor | None = None,
    ) -> Tensor:
        """``x: [B, C, H, W]``, ``t: [B]`` (int or float) -> the model's prediction, like ``x``."""
        if context is not None or concat is not None:
            raise ConfigError("a diffusers UNet2DModel takes no context or concat input")
        self.check_input_shape(x.shape[2:])
        return self.model(x, t).sample
