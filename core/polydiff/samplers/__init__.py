"""Samplers of the reverse process; all share :class:`Sampler`'s contract."""

from polydiff.samplers.base import Callback, Sampler, SamplingContext, dynamic_threshold_x0
from polydiff.samplers.ddim import DDIMSampler
from polydiff.samplers.ddpm import DDPMSampler
from polydiff.samplers.dpmpp import DPMSolverPP2MSampler
from polydiff.samplers.guidance import cfg_model_fn
from polydiff.samplers.karras import EulerKarrasSampler, HeunKarrasSampler, karras_sigmas

#: The core's samplers by registry name (what ``polydiff.builtin`` registers).
BUILTIN_SAMPLERS: dict[str, type[Sampler]] = {
    cls.name: cls
    for cls in (DDPMSampler, DDIMSampler, DPMSolverPP2MSampler, EulerKarrasSampler, HeunKarrasSampler)
}

__all__ = [
    "BUILTIN_SAMPLERS",
    "Callback",
    "DDIMSampler",
    "DDPMSampler",
    "DPMSolverPP2MSampler",
    "EulerKarrasSampler",
    "HeunKarrasSampler",
    "Sampler",
    "SamplingContext",
    "cfg_model_fn",
    "dynamic_threshold_x0",
    "karras_sigmas",
]
