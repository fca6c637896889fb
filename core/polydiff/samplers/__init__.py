"""Samplers of the reverse process; all share :class:`Sampler`'s contract."""

from polydiff.samplers.base import Callback, Sampler, SamplingContext, dynamic_threshold_x0
from polydiff.samplers.ddim import DDIMSampler
from polydiff.samplers.ddpm import DDPMSampler
from polydiff.samplers.dpmpp import DPMSolverPP2MSampler
from polydiff.samplers.guidance import cfg_model_fn
from polydiff.samplers.karras import EulerKarrasSampler, HeunKarrasSampler, karras_sigmas

# The samplers by registry name are the registry's: ``get_registry().names("sampler")`` (the core's
# are registered by polydiff.builtin, plugins may add more).

__all__ = [
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
