"""DiffusionPipeline: a trained checkpoint -> samples in data space (and their trajectory)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from polydiff import plugins
from polydiff.builder import build_model
from polydiff.compiling import compile_module, eager_on_failure
from polydiff.devices import resolve_device
from polydiff.errors import ConfigError
from polydiff.interfaces import Conditioning, SamplingPlan, Writer
from polydiff.model import DiffusionModel
from polydiff.plugins import Registry
from polydiff.run_config import RunConfig
from polydiff.samplers.guidance import cfg_model_fn
from polydiff.training.checkpoint import check_finite, load_checkpoint, load_state_strict
from polydiff.validation import check_sampling

#: Options of :meth:`Sampler.sample` itself, which every sampler takes.
RUN_OPTIONS = ("clip_denoised", "dynamic_threshold")


@dataclass
class PipelineOutput:
    """Samples and, when asked for, the reverse process that produced them.

    Attributes:
        samples: ``[N, C, *spatial]`` in data space, on the CPU.
        prompts: The prompt of each sample (repeated ``num_per_prompt`` times).
        lengths: Valid length of each sample along its last axis, when the conditioner
            decided lengths (speech), else None.
        trajectory_steps: Timesteps recorded (decreasing).
        trajectory_xt / trajectory_x0: ``[S, N, C, *spatial]`` x_t and predicted x0 at those
            steps, decoded to data space; None when no trajectory was asked for.
        nonfinite: How many samples hold a NaN or infinite value (0 for a sound model).
    """

    samples: Tensor
    prompts: list[str]
    lengths: list[int] | None = None
    trajectory_steps: list[int] = field(default_factory=list)
    trajectory_xt: Tensor | None = None
    trajectory_x0: Tensor | None = None
    nonfinite: int = 0


class DiffusionPipeline:
    """Text (or nothing) in, data out, for any modality.

    >>> pipe = DiffusionPipeline.from_checkpoint("runs/image")          # doctest: +SKIP
    >>> out = pipe(["a red circle at the top left"], sampler="ddim", steps=50)  # doctest: +SKIP
    >>> pipe.writer().write_samples(out.samples, out.prompts, Path("grid.png"))  # doctest: +SKIP
    """

    def __init__(
        self, model: DiffusionModel, config: RunConfig, registry: Registry, device: str | torch.device = "cpu"
    ):
        self.model, self.config, self.registry = model.eval(), config, registry
        self.device = resolve_device(device)
        #: Progress bars of calls that pass no ``progress`` (``polydiff evaluate`` turns it on,
        #: so every evaluator's sampling shows its steps).
        self.progress = False
        self.model.to(self.device)
        self.experts: list[tuple[int, int, DiffusionPipeline]] = []
        #: The :class:`~polydiff.Pretrained` record it was loaded from (``from_pretrained``), or None.
        self.pretrained: Any = None
        self._compile_pending = False  # compiled and not yet called: the first call may fall back

    def compile(self, mode: str = "default") -> bool:
        """Compile the denoiser (and each expert's) with ``torch.compile`` in place.

        Compilation happens at the first sampling step (seconds to minutes); later calls of the
        same shapes reuse it. Where inductor cannot run here (no C++ compiler for the CPU, no
        triton for CUDA) one line says so and sampling stays eager; a failure at the first call
        falls back to eager in one line too. ``mode``: ``default``, ``reduce-overhead`` (CUDA
        graphs; CUDA only) or ``max-autotune``. Returns whether the networks are compiled.
        """
        done = compile_module(self.model.unet, self.device, mode)
        for _, _, expert in self.experts:
            done = expert.compile(mode) and done
        self._compile_pending = done
        return done

    def _networks(self) -> list[torch.nn.Module]:
        return [self.model.unet, *(net for _, _, e in self.experts for net in e._networks())]

    def with_expert(self, expert: DiffusionPipeline) -> DiffusionPipeline:
        """Sample with ``expert`` in place of this model at the timesteps it was trained on.

        ``expert`` is a run trained with ``train.timestep_range = [lo, hi]`` (a denoiser expert,
        eDiff-I): at every sampling step with ``lo <= t < hi`` its network, with its own
        conditioner and guidance, predicts instead of this one's. High-noise experts are where
        a prompt's layout and motion are decided. Returns ``self``.

        Raises:
            ConfigError: ``expert`` has no timestep range, or a different diffusion process
                (any field but the loss weighting ``min_snr_gamma``), data shape or modality.
        """
        lo_hi = expert.config.train.timestep_range
        name = getattr(expert, "checkpoint_path", "the expert")
        if lo_hi is None:
            raise ConfigError(
                f"{name} was trained on every timestep, so it is not an expert; train one with "
                f"--set train.timestep_range=[LO,HI] (e.g. [800,1000] for the noisiest fifth)."
            )
        mine, theirs = self.config, expert.config
        # The loss weighting (min_snr_gamma) is the one diffusion field that sampling never reads.
        sampled = [f.name for f in fields(mine.diffusion) if f.name != "min_snr_gamma"]
        for what, a, b in (
            ("modality", mine.modality, theirs.modality),
            *((f"diffusion.{f}", getattr(mine.diffusion, f), getattr(theirs.diffusion, f)) for f in sampled),
            ("latent_shape", list(mine.latent_shape or []), list(theirs.latent_shape or [])),
        ):
            if a != b:
                raise ConfigError(
                    f"{name} cannot serve as an expert: its {what} is {b!r}, this model's is {a!r}; "
                    f"train the expert with this model's {what}."
                )
        lo, hi = (int(v) for v in lo_hi)
        if any(lo < other_hi and other_lo < hi for other_lo, other_hi, _ in self.experts):
            raise ConfigError(f"{name}'s timesteps [{lo}, {hi}) overlap another expert's.")
        expert.model.to(self.device)
        expert.device = self.device
        self.experts.append((lo, hi, expert))
        return self

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        *,
        registry: Registry | None = None,
        device: str | torch.device | None = None,
        use_ema: bool = True,
    ) -> DiffusionPipeline:
        """Rebuild the model a checkpoint's ``config.json`` describes and load its weights.

        ``path`` is a checkpoint directory or a run directory (the checkpoint its ``latest``
        names; never another). With ``use_ema`` the EMA weights are used where the checkpoint
        has them. Non-finite weights are refused with a CheckpointError naming the file.
        """
        registry = registry or plugins.get_registry()
        device = resolve_device(device)  # before any loading: a missing GPU is one line
        ckpt = load_checkpoint(path)
        check_finite(ckpt.model, ckpt.path / "model.safetensors")  # a diverged run's weights
        if use_ema and ckpt.ema is not None:
            check_finite(ckpt.ema, ckpt.path / "ema.safetensors")
        config = ckpt.config
        registry.modality(config.modality)  # a clear error if the plugin is not installed
        model = build_model(config, registry)
        load_state_strict(model, ckpt.model, ckpt.path / "model.safetensors")
        if use_ema and ckpt.ema is not None:
            params = dict(model.named_parameters())
            with torch.no_grad():
                for name, value in ckpt.ema.items():
                    if name in params:
                        params[name].copy_(value)
        pipe = cls(model, config, registry, device)
        pipe.checkpoint_path = ckpt.path
        return pipe

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        registry: Registry | None = None,
        device: str | torch.device | None = None,
        use_ema: bool = True,
    ) -> DiffusionPipeline:
        """A pipeline from a pretrained model's name (``polydiff plugins`` lists them) or a path.

        An existing path wins and is loaded as by :meth:`from_checkpoint`; otherwise the name
        of a model a plugin ships (``polydiff_pretrained``), with the experts its record names
        attached (:meth:`with_expert`). fp16 weights load into the fp32 model.
        ``pipe.pretrained`` is the record (None for a path).

        >>> pipe = DiffusionPipeline.from_pretrained("timeseries-sines")  # doctest: +SKIP

        Raises:
            CheckpointError: neither an existing path nor a known name (one line listing the
                known names and the closest match).
        """
        from polydiff.bridges.diffusers import is_diffusers_dir
        from polydiff.pretrained import resolve

        registry = registry or plugins.get_registry()
        if is_diffusers_dir(name_or_path):
            return cls.from_diffusers(name_or_path, registry=registry, device=device)
        path, record = resolve(name_or_path, registry)
        pipe = cls.from_checkpoint(path, registry=registry, device=device, use_ema=use_ema)
        pipe.pretrained = record
        for expert in record.experts if record is not None else ():
            pipe.with_expert(
                cls.from_pretrained(expert, registry=registry, device=pipe.device, use_ema=use_ema)
            )
        return pipe

    @classmethod
    def from_diffusers(
        cls,
        path: str | Path,
        *,
        registry: Registry | None = None,
        device: str | torch.device | None = None,
    ) -> DiffusionPipeline:
        """A pipeline around a diffusers ``UNet2DModel`` directory and its scheduler config.

        ``path`` holds ``model_index.json`` + ``unet/`` + ``scheduler/`` (what ``save_pretrained``
        and the Hub write) or is the ``unet/`` folder itself; see :mod:`polydiff.bridges.diffusers`.
        The model samples with any polydiff sampler; its ``sample`` defaults come from the scheduler
        (``clip_sample``, ``timestep_spacing``). :meth:`from_pretrained` and ``polydiff sample``
        recognise such directories. Needs ``pip install 'polydiff[diffusers]'``.

        >>> pipe = DiffusionPipeline.from_diffusers("ddpm-celebahq-256")  # doctest: +SKIP
        >>> out = pipe(num_per_prompt=4, sampler="ddpm", steps=1000)  # doctest: +SKIP
        """
        from polydiff.bridges.diffusers import run_config_for

        registry = registry or plugins.get_registry()
        device = resolve_device(device)
        config = run_config_for(path, registry)
        pipe = cls(build_model(config, registry), config, registry, device)
        pipe.checkpoint_path = Path(path)
        return pipe

    def writer(self) -> Writer:
        """The modality's writer, with the options stored at training time."""
        if self.config.writer is None:
            raise ConfigError(f"modality '{self.config.modality}' has no writer")
        return self.registry.build("writer", self.config.writer.name, **self.config.writer.options)

    def make_sampler(self, name: str, steps: int, **options: Any) -> Any:
        return self.registry.build(
            "sampler", name, diffusion=self.model.diffusion, num_steps=steps, **options
        )

    @torch.no_grad()
    def __call__(
        self,
        prompts: Sequence[str] | None = None,
        *,
        num_per_prompt: int = 1,
        sampler: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int = 0,
        temperature: float | None = None,
        trajectory_steps: Sequence[int] | None = None,
        batch_size: int = 64,
        progress: bool | None = None,
        callback: Callable[[int, Tensor, Tensor, Tensor], None] | None = None,
        **options: Any,
    ) -> PipelineOutput:
        """Generate ``num_per_prompt`` samples per prompt.

        Args:
            prompts: Texts (ignored by unconditional models; None = one empty prompt).
            sampler, steps, guidance, temperature: Default to the run's ``sample`` section.
                ``guidance`` is the classifier-free guidance scale (1 = conditional only);
                ``temperature`` scales the initial noise as ``N(0, I / temperature)``.
            seed: Seeds a CPU generator, so results do not depend on the device.
            trajectory_steps: Timesteps at which to keep x_t and the predicted x0 (the nearest
                steps the sampler visits are used).
            progress: Show the sampler's tqdm bar (default: ``self.progress``).
            options: The sampler's own options (its constructor's keywords: ``eta``, ``spacing``,
                ``rho``, ...), ``clip_denoised`` / ``dynamic_threshold``, or the conditioner's
                ``plan`` options (e.g. ``length_scale``); any other name is an error.

        Returns:
            The samples; ``nonfinite`` counts those that hold NaN or inf.

        Raises:
            ConfigError: an option of the wrong type, out of range, or that neither the sampler
                nor the conditioner declares (one line naming it and what is accepted).
        """
        defaults = self.config.sample
        sampler = check_sampling("sampler", defaults.get("sampler", "ddim") if sampler is None else sampler)
        steps = check_sampling("steps", defaults.get("steps", 50) if steps is None else steps)
        guidance = check_sampling("guidance", defaults.get("guidance", 1.0) if guidance is None else guidance)
        temperature = check_sampling(
            "temperature", defaults.get("temperature", 1.0) if temperature is None else temperature
        )
        num_per_prompt = check_sampling("num_per_prompt", num_per_prompt)
        batch_size = check_sampling("batch_size", batch_size)
        seed = check_sampling("seed", seed)
        sampler_opts, run_opts, plan_opts = self._split_options(sampler, options)
        if "spacing" in defaults and _takes_spacing(self.registry, sampler):  # not Karras' samplers
            sampler_opts.setdefault("spacing", defaults["spacing"])
        if "eta" in defaults and _sampler_parameter(self.registry, sampler, "eta") is not None:  # DDIM's
            sampler_opts.setdefault("eta", defaults["eta"])
        run_opts.setdefault("clip_denoised", defaults.get("clip_denoised", False))
        if "dynamic_threshold" in defaults:
            run_opts.setdefault("dynamic_threshold", defaults["dynamic_threshold"])
        progress = self.progress if progress is None else progress
        all_prompts = [p for p in (prompts or [""]) for _ in range(num_per_prompt)]
        gen = torch.Generator().manual_seed(seed)
        chunks = [all_prompts[i : i + batch_size] for i in range(0, len(all_prompts), batch_size)]
        outs = []
        for c in chunks:
            args = (sampler, steps, guidance, temperature, gen, trajectory_steps, progress, callback)
            run = functools.partial(self._sample_batch, c, *args, sampler_opts, run_opts, plan_opts)
            if self._compile_pending:  # compilation happens here: a failure falls back to eager
                self._compile_pending = False
                state = gen.get_state()
                outs.append(eager_on_failure(self._networks(), _rerun(gen, state, run), "sampling call"))
            else:
                outs.append(run())
        out = _concat(outs)
        out.nonfinite = int((~torch.isfinite(out.samples.flatten(1))).any(1).sum()) if len(out.samples) else 0
        return out

    def _split_options(self, sampler: str, options: dict[str, Any]) -> tuple[dict, dict, dict]:
        """``options`` as ``(sampler's, Sampler.sample's, conditioner plan's)``; a name none of
        them declares is a :class:`ConfigError` listing what each takes."""
        takes = sampler_option_names(self.registry, sampler)
        plans = plan_option_names(self.model.conditioner)
        sampler_opts, run_opts, plan_opts = {}, {}, {}
        for key, value in options.items():
            if key in SAMPLING_CHECKED:
                value = check_sampling(key, value)
            if key in RUN_OPTIONS:
                run_opts[key] = value
            elif key in takes:
                sampler_opts[key] = value
            elif key in plans:
                plan_opts[key] = value
            else:
                raise ConfigError(
                    f"unknown sampling option '{key}' (= {value!r}); sampler '{sampler}' takes: "
                    f"{', '.join([*takes, *RUN_OPTIONS])}; conditioner '{self.config.conditioner.name}' "
                    f"takes: {', '.join(plans) or '(nothing)'}"
                )
        return sampler_opts, run_opts, plan_opts

    def _sample_batch(
        self,
        prompts: list[str],
        sampler_name: str,
        steps: int,
        guidance: float,
        temperature: float,
        gen: torch.Generator,
        trajectory_steps: Sequence[int] | None,
        progress: bool,
        callback: Callable | None,
        sampler_opts: dict,
        run_opts: dict,
        plan_opts: dict,
    ) -> PipelineOutput:
        model = self.model
        plan, cond, model_fn = self._guided(prompts, guidance, plan_opts)
        if self.experts:
            model_fn = self._route_to_experts(model_fn, prompts, guidance, plan_opts)
        sampler = self.make_sampler(sampler_name, steps, **sampler_opts)
        wanted = sorted(set(trajectory_steps or []), reverse=True)
        keep: dict[int, tuple[int, Tensor, Tensor]] = {}

        def record(i: int, t: Tensor, x_t: Tensor, x0: Tensor) -> None:
            tt = int(t.flatten()[0]) if isinstance(t, Tensor) else int(t)
            for w in wanted:  # keep the visited step closest to each wanted one
                if w not in keep or abs(tt - w) < abs(keep[w][0] - w):
                    keep[w] = (tt, x_t.detach().cpu(), x0.detach().cpu())
            if callback is not None:
                callback(i, t, x_t, x0)

        x = sampler.sample(
            model_fn,
            (len(prompts), *plan.shape),
            generator=gen,
            noise_scale=temperature**-0.5,
            callback=record,
            device=self.device,
            progress=progress,
            **run_opts,
        )
        offset = cond.offset.cpu() if cond.offset is not None else None

        def decode(z: Tensor) -> Tensor:
            z = z.to(self.device)
            if offset is not None:
                z = z + offset.to(self.device)
            x = model.encoder.decode(z).float().cpu()
            # a learned decoder (vae) sees across frames: decode each sample's own frames too, so
            # the latents past its length (padding, never trained on) do not leak into its last ones
            for i, n in enumerate(plan.lengths or []):
                if n < z.shape[-1]:
                    own = model.encoder.decode(z[i : i + 1, ..., :n]).float().cpu()[0]
                    x[i, ..., : own.shape[-1]] = own
            return x

        out = PipelineOutput(samples=decode(x), prompts=list(prompts), lengths=plan.lengths)
        if wanted:
            picked = list({keep[w][0]: keep[w] for w in wanted if w in keep}.values())  # one per step
            out.trajectory_steps = [p[0] for p in picked]
            out.trajectory_xt = torch.stack([decode(p[1]) for p in picked])
            out.trajectory_x0 = torch.stack([decode(p[2]) for p in picked])
        return out

    def _guided(
        self, prompts: list[str], guidance: float, plan_opts: dict
    ) -> tuple[SamplingPlan, Conditioning, Callable[[Tensor, Tensor], Tensor]]:
        """This model's conditioning plan for ``prompts``, its condition on the device, and its
        classifier-free-guided ``(x_t, t) -> prediction``."""
        shape = tuple(self.config.latent_shape or ())
        takes = plan_option_names(self.model.conditioner)  # an expert's may declare fewer
        plan = self.model.conditioner.plan(
            prompts, shape, **{k: v for k, v in plan_opts.items() if k in takes}
        )
        cond = _to(plan.cond, self.device)
        uncond = _to(plan.uncond, self.device) if plan.uncond is not None and guidance != 1.0 else None
        return plan, cond, cfg_model_fn(self.model.unet, cond, uncond, guidance)

    def _route_to_experts(
        self, model_fn: Callable, prompts: list[str], guidance: float, plan_opts: dict
    ) -> Callable[[Tensor, Tensor], Tensor]:
        """``model_fn`` with each expert's guided network in its timestep range (by the batch's first t)."""
        routes = [
            (lo, hi, expert._guided(prompts, guidance, plan_opts)[2]) for lo, hi, expert in self.experts
        ]

        def routed(x: Tensor, t: Tensor) -> Tensor:
            step = float(torch.as_tensor(t).flatten()[0])
            for lo, hi, fn in routes:
                if lo <= step < hi:
                    return fn(x, t)
            return model_fn(x, t)

        return routed


#: Options whose type and range :func:`check_sampling` knows, checked before any sampling.
SAMPLING_CHECKED = ("eta", "length_scale", "clip_denoised", "dynamic_threshold", "spacing")


def _rerun(gen: torch.Generator, state: Tensor, run: Callable[[], PipelineOutput]) -> Callable:
    """``run`` from the generator state ``state`` (so that a repeated call draws the same noise)."""

    def call() -> PipelineOutput:
        gen.set_state(state)
        return run()

    return call


def sampler_option_names(registry: Registry, sampler: str) -> list[str]:
    """The keyword options ``sampler``'s constructor declares, besides ``diffusion`` and ``num_steps``."""
    target = registry.component("sampler", sampler).load()
    names = getattr(target, "option_names", None)
    if callable(names):
        return list(names())
    return _keywords(target, skip=("diffusion", "num_steps"))


def plan_option_names(conditioner: Any) -> list[str]:
    """The keyword options ``conditioner.plan`` declares, besides ``prompts`` and ``shape``."""
    return _keywords(conditioner.plan, skip=("prompts", "shape"))


def _keywords(fn: Callable[..., Any], skip: Sequence[str]) -> list[str]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in params if p.kind in kinds and p.name not in (*skip, "self")]


def _takes_spacing(registry: Registry, sampler: str) -> bool:
    """Whether the run's default timestep spacing applies to ``sampler``: not where its ``spacing``
    defaults to None (the Karras samplers place their own noise levels and refuse a spacing)."""
    param = _sampler_parameter(registry, sampler, "spacing")
    return param is not None and param.default is not None


def _sampler_parameter(registry: Registry, sampler: str, option: str) -> inspect.Parameter | None:
    """The keyword ``option`` of ``sampler``'s constructor, or None if it takes no such option."""
    return inspect.signature(registry.component("sampler", sampler).load()).parameters.get(option)


def _to(cond: Conditioning, device: torch.device) -> Conditioning:
    moved = {
        k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in vars(cond).items() if k != "aux_losses"
    }
    return Conditioning(**moved)


def _concat(outs: list[PipelineOutput]) -> PipelineOutput:
    if len(outs) == 1:
        return outs[0]
    samples = _pad_cat([o.samples for o in outs], dim=0)
    lengths = None if outs[0].lengths is None else [n for o in outs for n in (o.lengths or [])]
    res = PipelineOutput(
        samples=samples,
        prompts=[p for o in outs for p in o.prompts],
        lengths=lengths,
        trajectory_steps=outs[0].trajectory_steps,
    )
    if outs[0].trajectory_xt is not None:
        res.trajectory_xt = _pad_cat([o.trajectory_xt for o in outs], dim=1)
        res.trajectory_x0 = _pad_cat([o.trajectory_x0 for o in outs], dim=1)
    return res


def _pad_cat(tensors: list[Tensor], dim: int) -> Tensor:
    """Concatenate, zero-padding the last axis when lengths differ (speech)."""
    longest = max(t.shape[-1] for t in tensors)
    padded = [torch.nn.functional.pad(t, (0, longest - t.shape[-1])) for t in tensors]
    return torch.cat(padded, dim=dim)
