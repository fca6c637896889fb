"""polydiff: multi-modality diffusion with one rank-blind core and modalities as plugins.

The public API is re-exported here. Heavy names (anything that imports torch) are
imported lazily on first access, so ``polydiff plugins`` and ``--help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import pluggy

from polydiff.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    MissingDependencyError,
    PluginError,
    PolydiffError,
    TrainingDiverged,
    UnknownNameError,
)
from polydiff.records import Component, ComponentKind, Modality, Pretrained

__version__ = "0.1.0"

#: Marker for plugin hook implementations: ``@polydiff.hookimpl``.
hookimpl = pluggy.HookimplMarker("polydiff")

_LAZY: dict[str, str] = {
    # diffusion
    "DiffusionConfig": "polydiff.diffusion.config",
    "GaussianDiffusion": "polydiff.diffusion.gaussian",
    "make_beta_schedule": "polydiff.diffusion.schedules",
    "rescale_zero_terminal_snr": "polydiff.diffusion.schedules",
    "shift_snr": "polydiff.diffusion.schedules",
    "spaced_timesteps": "polydiff.diffusion.timesteps",
    # samplers
    "Sampler": "polydiff.samplers.base",
    "DDPMSampler": "polydiff.samplers.ddpm",
    "DDIMSampler": "polydiff.samplers.ddim",
    "DPMSolverPP2MSampler": "polydiff.samplers.dpmpp",
    "EulerKarrasSampler": "polydiff.samplers.karras",
    "HeunKarrasSampler": "polydiff.samplers.karras",
    "cfg_model_fn": "polydiff.samplers.guidance",
    # networks
    "UNetConfig": "polydiff.nn.config",
    "SpaceTimeConfig": "polydiff.nn.config",
    "UNet": "polydiff.nn.unet",
    "DiTConfig": "polydiff.nn.dit_config",
    "DiT": "polydiff.nn.dit",
    # component interfaces
    "Conditioning": "polydiff.interfaces",
    "SamplingPlan": "polydiff.interfaces",
    "Encoder": "polydiff.interfaces",
    "Conditioner": "polydiff.interfaces",
    "Writer": "polydiff.interfaces",
    "Evaluator": "polydiff.interfaces",
    "DiffusionDataset": "polydiff.interfaces",
    "default_collate": "polydiff.interfaces",
    "IdentityEncoder": "polydiff.encoders.identity",
    "TextConditioner": "polydiff.conditioning.text",
    "NullConditioner": "polydiff.conditioning.none",
    # plugins
    "PluginManager": "polydiff.plugins",
    "Registry": "polydiff.plugins",
    "get_registry": "polydiff.plugins",
    "get_plugin_manager": "polydiff.plugins",
    "reset_registry": "polydiff.plugins",
    "PluginFailure": "polydiff.plugins",
    "PluginLoadWarning": "polydiff.plugins",
    # training and inference
    "TrainConfig": "polydiff.training.config",
    "Trainer": "polydiff.training.trainer",
    "TrainResult": "polydiff.training.trainer",
    "RunConfig": "polydiff.run_config",
    "DiffusionPipeline": "polydiff.pipeline",
    "PipelineOutput": "polydiff.pipeline",
    "ReportPage": "polydiff.report_page",
    "load_checkpoint": "polydiff.training.checkpoint",
    "save_checkpoint": "polydiff.training.checkpoint",
    "configure_cpu_allocator": "polydiff.allocator",
}

__all__ = [
    "CheckpointError",
    "Component",
    "ComponentKind",
    "ConfigError",
    "DataError",
    "MissingDependencyError",
    "Modality",
    "PluginError",
    "PolydiffError",
    "Pretrained",
    "TrainingDiverged",
    "UnknownNameError",
    "hookimpl",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'polydiff' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from polydiff.allocator import configure_cpu_allocator
    from polydiff.conditioning.none import NullConditioner
    from polydiff.conditioning.text import TextConditioner
    from polydiff.diffusion.config import DiffusionConfig
    from polydiff.diffusion.gaussian import GaussianDiffusion
    from polydiff.diffusion.schedules import make_beta_schedule, rescale_zero_terminal_snr, shift_snr
    from polydiff.diffusion.timesteps import spaced_timesteps
    from polydiff.encoders.identity import IdentityEncoder
    from polydiff.interfaces import (
        Conditioner,
        Conditioning,
        DiffusionDataset,
        Encoder,
        Evaluator,
        SamplingPlan,
        Writer,
        default_collate,
    )
    from polydiff.nn.config import SpaceTimeConfig, UNetConfig
    from polydiff.nn.dit import DiT
    from polydiff.nn.dit_config import DiTConfig
    from polydiff.nn.unet import UNet
    from polydiff.pipeline import DiffusionPipeline, PipelineOutput
    from polydiff.plugins import (
        PluginFailure,
        PluginLoadWarning,
        PluginManager,
        Registry,
        get_plugin_manager,
        get_registry,
        reset_registry,
    )
    from polydiff.report_page import ReportPage
    from polydiff.run_config import RunConfig
    from polydiff.samplers.base import Sampler
    from polydiff.samplers.ddim import DDIMSampler
    from polydiff.samplers.ddpm import DDPMSampler
    from polydiff.samplers.dpmpp import DPMSolverPP2MSampler
    from polydiff.samplers.guidance import cfg_model_fn
    from polydiff.samplers.karras import EulerKarrasSampler, HeunKarrasSampler
    from polydiff.training.checkpoint import load_checkpoint, save_checkpoint
    from polydiff.training.config import TrainConfig
    from polydiff.training.trainer import Trainer, TrainResult
