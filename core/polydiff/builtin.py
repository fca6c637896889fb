"""The core's own plugin: components every modality can use.

Registered first, under the plugin name ``polydiff``, by :class:`polydiff.plugins.PluginManager`.
Like any plugin it names its code by import string, so importing this module imports no torch.
"""

from __future__ import annotations

from polydiff import hookimpl
from polydiff.records import Component


@hookimpl
def polydiff_encoders() -> list[Component]:
    return [
        Component(
            "identity",
            "polydiff.encoders.identity:IdentityEncoder",
            description="diffusion runs on the data itself (no encoding)",
        ),
        Component(
            "vae",
            "polydiff.encoders.vae:VAEEncoder",
            description="KL autoencoder (f=4 per downsampled axis, 4 latent channels) of rank 1-3, "
            "trained as a first stage; latent diffusion",
        ),
    ]


@hookimpl
def polydiff_conditioners() -> list[Component]:
    return [
        Component(
            "none",
            "polydiff.conditioning.none:NullConditioner",
            description="unconditional generation (prompts are ignored)",
        ),
        Component(
            "text",
            "polydiff.conditioning.text:TextConditioner",
            description="captions -> tokens of a small transformer, for cross-attention",
        ),
    ]


@hookimpl
def polydiff_samplers() -> list[Component]:
    return [
        Component(
            "ddpm", "polydiff.samplers.ddpm:DDPMSampler", description="ancestral sampling (Ho et al. 2020)"
        ),
        Component(
            "ddim",
            "polydiff.samplers.ddim:DDIMSampler",
            description="deterministic by default, eta for stochasticity (Song et al. 2021)",
        ),
        Component(
            "dpmpp-2m",
            "polydiff.samplers.dpmpp:DPMSolverPP2MSampler",
            description="second-order multistep DPM-Solver++ (Lu et al. 2022)",
        ),
        Component(
            "euler",
            "polydiff.samplers.karras:EulerKarrasSampler",
            description="Euler steps on the probability-flow ODE, Karras sigmas",
        ),
        Component(
            "heun",
            "polydiff.samplers.karras:HeunKarrasSampler",
            description="Heun (2nd-order) steps on the probability-flow ODE (Karras et al. 2022)",
        ),
    ]


@hookimpl
def polydiff_evaluators() -> list[Component]:
    return [
        Component(
            "own-data",
            "polydiff.evaluation.evaluator:OwnDataEvaluator",
            description="judges built from the run's own real data: caption classifier accuracy, "
            "Frechet distance in its features, nearest-training-item memorisation (any modality)",
        ),
    ]


@hookimpl
def polydiff_backbones() -> list[Component]:
    return [
        Component(
            "unet",
            "polydiff.nn.unet:build_unet",
            description="rank-generic UNet (1D/2D/3D, factorized video); options: the run's unet section",
        ),
        Component(
            "dit",
            "polydiff.nn.dit:build_dit",
            description="rank-generic diffusion transformer: patches, adaLN-zero, cross-attention",
        ),
        Component(
            "diffusers-unet2d",
            "polydiff.bridges.diffusers:DiffusersUNet2D",
            description="a diffusers UNet2DModel directory (safetensors), e.g. google/ddpm-celebahq-256",
            requires=("diffusers",),
            extra="polydiff[diffusers]",
        ),
    ]
