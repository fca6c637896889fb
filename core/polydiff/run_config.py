"""RunConfig: everything needed to rebuild a run, saved as a checkpoint's ``config.json``."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polydiff.diffusion.config import DiffusionConfig
from polydiff.errors import CheckpointError, ConfigError
from polydiff.nn.config import LEGACY_SPACETIME_FIELDS, UNetConfig, upgrade_legacy_unet
from polydiff.training.config import TrainConfig
from polydiff.validation import check_sampling

if TYPE_CHECKING:
    from polydiff.plugins import Registry

FORMAT_VERSION = 1

#: Sampling defaults; a modality's preset section ``sample`` overrides them.
DEFAULT_SAMPLE: dict[str, Any] = {
    "sampler": "ddim",
    "steps": 50,
    "guidance": 3.0,
    "temperature": 1.0,
    "clip_denoised": False,
}


@dataclass
class ComponentRef:
    """A component by name, with the options that build it.

    Attributes:
        name: The component's registry name (``polydiff plugins`` lists them by kind).
        options: Keyword options of the component's target, over the registry's defaults
            (``--set dataset.size=32`` sets one). The encoder's and conditioner's are completed
            when the model is built (``encoder.config()``, ``conditioner.config()``: a fitted
            vocabulary, say), so a checkpoint rebuilds them as they were trained.
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunConfig:
    """The whole configuration of a run (one ``config.json``).

    Attributes:
        modality: The modality's name (``image``, ``tts``, ``video``, ...).
        dataset: The dataset component and its options (``--dataset``, ``--set dataset.X=...``).
        encoder: The encoder between data and diffusion space (``--encoder``; ``identity``: none).
        conditioner: What turns captions into the UNet's context (``--conditioner``).
        writer: The writer of samples (the modality's); None for none.
        evaluator: The evaluator of ``polydiff evaluate`` (the modality's); None for none.
        unet: The UNet's architecture: :class:`~polydiff.nn.config.UNetConfig`.
        backbone: The denoising network by name (``--backbone``; ``unet``, ``dit``,
            ``diffusers-unet2d`` or a plugin's). ``unet`` reads the ``unet`` section; other
            backbones take ``backbone.options`` (``--set backbone.FIELD=VALUE``). Configs written
            before backbones existed have no such field: they mean the UNet.
        diffusion: The forward process and loss: :class:`~polydiff.diffusion.config.DiffusionConfig`.
        train: Optimisation and bookkeeping: :class:`~polydiff.training.config.TrainConfig`.
        sample: Sampling defaults of the run (see :data:`SAMPLE_FIELDS`); ``polydiff sample``
            options override them.
        data_shape: ``[C, *spatial]`` of one data item. Filled in from the dataset when
            training starts.
        latent_shape: ``[C, *spatial]`` of the diffusion tensor. Filled in from the encoder when
            the model is built.
        preset: The modality preset the run started from (``quick``, ``full``, ...).
        format_version: Version of this file's layout; a newer one than polydiff knows is refused.
        polydiff_version: The polydiff version that wrote it.
    """

    modality: str
    dataset: ComponentRef
    encoder: ComponentRef
    conditioner: ComponentRef
    writer: ComponentRef | None = None
    evaluator: ComponentRef | None = None
    unet: UNetConfig = field(default_factory=UNetConfig)
    backbone: ComponentRef = field(default_factory=lambda: ComponentRef("unet"))
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SAMPLE))
    data_shape: list[int] | None = None
    latent_shape: list[int] | None = None
    preset: str | None = None
    format_version: int = FORMAT_VERSION
    polydiff_version: str = ""

    # ------------------------------------------------------------------ building
    @classmethod
    def for_modality(
        cls,
        modality: str,
        *,
        preset: str = "quick",
        dataset: str | None = None,
        encoder: str | None = None,
        conditioner: str | None = None,
        backbone: str | None = None,
        overrides: dict[str, dict[str, Any]] | None = None,
        registry: Registry | None = None,
    ) -> RunConfig:
        """Defaults of ``modality`` with its ``preset``, then ``overrides`` ({section: {field: value}})."""
        from polydiff import __version__
        from polydiff.plugins import get_registry

        registry = registry or get_registry()
        mod = registry.modality(modality)
        if preset not in mod.presets and mod.presets:
            close = difflib.get_close_matches(preset, list(mod.presets), n=1)
            raise ConfigError(
                f"modality '{modality}' has no preset '{preset}'; "
                f"known presets: {', '.join(sorted(mod.presets))}"
                + (f". Did you mean '{close[0]}'?" if close else "")
            )
        p = copy.deepcopy(mod.presets.get(preset, {}))
        names = {
            "dataset": dataset or mod.default_dataset,
            "encoder": encoder or mod.default_encoder,
            "conditioner": conditioner or mod.default_conditioner,
        }
        if names["dataset"] is None:
            raise ConfigError(
                f"modality '{modality}' has no default dataset; pass --dataset "
                f"({', '.join(registry.names('dataset', modality=modality))})"
            )
        for kind, name in names.items():
            _check_modality_of(registry, kind, name, modality)  # unknown names fail here too
        sections = {k: v for k, v in p.items() if k != "by_encoder"}
        for extra in (p.get("by_encoder", {}).get(names["encoder"], {}), overrides or {}):
            for section, values in extra.items():
                sections.setdefault(section, {}).update(values)

        def options(kind: str, default: str | None) -> dict[str, Any]:
            section = sections.get(kind, {})
            name = names[kind]
            if isinstance(section.get(name), dict):
                return dict(section[name])
            flat = {k: v for k, v in section.items() if not isinstance(v, dict)}
            return flat if name == default else {}

        unet = _replace_fields(UNetConfig(dims=mod.rank), sections.get("unet", {}), "unet")
        cfg = cls(
            modality=modality,
            dataset=ComponentRef(names["dataset"], options("dataset", mod.default_dataset)),
            encoder=ComponentRef(names["encoder"], options("encoder", mod.default_encoder)),
            conditioner=ComponentRef(names["conditioner"], options("conditioner", mod.default_conditioner)),
            writer=ComponentRef(mod.writer) if mod.writer else None,
            evaluator=ComponentRef(mod.evaluator) if mod.evaluator else None,
            unet=unet,
            backbone=ComponentRef(backbone or "unet", dict(sections.get("backbone", {}))),
            diffusion=_replace_fields(DiffusionConfig(), sections.get("diffusion", {}), "diffusion"),
            train=_replace_fields(TrainConfig(), sections.get("train", {}), "train"),
            sample={**DEFAULT_SAMPLE, **sections.get("sample", {})},
            preset=preset,
            polydiff_version=__version__,
        )
        if cfg.unet.dims != mod.rank:
            raise ConfigError(
                f"preset '{preset}' of '{modality}' sets unet.dims={cfg.unet.dims}, "
                f"but the modality has rank {mod.rank}"
            )
        cfg.registry = registry  # what later checks (apply_overrides) look names up in
        cfg.validate(registry)
        return cfg

    def apply_overrides(self, assignments: list[str], registry: Registry | None = None) -> None:
        """Apply ``section.field=value`` strings (``--set train.lr=1e-4``); values are JSON or str.

        Each value is checked against its field's type and range, and the whole config against
        ``registry`` (:meth:`validate`) afterwards."""
        for item in assignments:
            key, sep, raw = item.partition("=")
            section, dot, name = key.partition(".")
            if not sep or not dot:
                raise ConfigError(f"--set expects SECTION.FIELD=VALUE (e.g. train.lr=1e-4), got '{item}'")
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
            target = getattr(self, section, None)
            if isinstance(target, ComponentRef):
                target.options[name] = value
            elif isinstance(target, dict):
                target[name] = value
            elif dataclasses.is_dataclass(target):
                setattr(self, section, _replace_nested(target, name, value, section))
            else:
                raise ConfigError(
                    f"--set: unknown section '{section}' in '{item}'; known sections: "
                    "train, unet, backbone, diffusion, sample, dataset, encoder, conditioner"
                )
        if assignments:
            self.validate(registry)

    def validate(self, registry: Registry | None = None) -> None:
        """What the sections cannot check alone: every named component exists and serves this
        modality, ``unet.dims`` equals the modality's rank, and the ``sample`` section's values.

        Raises:
            ConfigError / UnknownNameError: one line naming the option, the value and the fix.
        """
        from polydiff.plugins import get_registry

        for section in (self.unet, self.diffusion, self.train):
            section.validate()  # again: fields may have been assigned since construction
        registry = registry or getattr(self, "registry", None) or get_registry()
        mod = registry.modality(self.modality)
        for kind in ("dataset", "encoder", "conditioner", "writer", "evaluator"):
            ref = getattr(self, kind)
            if ref is not None:
                _check_modality_of(registry, kind, ref.name, self.modality)
        if self.unet.dims != mod.rank:
            raise ConfigError(
                f"unet.dims={self.unet.dims} does not fit modality '{self.modality}', whose data have "
                f"rank {mod.rank}; drop the override or use unet.dims={mod.rank}"
            )
        check_sample_section(self.sample, registry)
        registry.component("backbone", self.backbone.name)  # unknown names list the known ones
        if self.backbone.name == "unet" and self.backbone.options:
            raise ConfigError(
                f"backbone 'unet' takes its options from the unet section, not backbone.options "
                f"{sorted(self.backbone.options)}; use --set unet.FIELD=VALUE"
            )
        if self.backbone.name == "dit":  # the core's own: its options are checked here, before any data
            from polydiff.nn.dit_config import DiTConfig

            _replace_fields(DiTConfig(dims=mod.rank), self.backbone.options, "backbone")

    # ------------------------------------------------------------------ (de)serialising
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> RunConfig:
        version = data.get("format_version")
        if version is None or "modality" not in data:
            raise CheckpointError(
                f"{source} is not a polydiff run config (no 'format_version'/'modality'); "
                "point at a directory written by `polydiff train`"
            )
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"{source} has format_version {version}, newer than this polydiff "
                f"understands ({FORMAT_VERSION}); upgrade polydiff"
            )
        d = dict(data)
        try:
            for key in ("dataset", "encoder", "conditioner", "writer", "evaluator", "backbone"):
                if d.get(key) is not None:
                    d[key] = ComponentRef(**d[key])
            d["unet"] = _replace_fields(UNetConfig(), upgrade_legacy_unet(d.get("unet", {})), "unet")
            d["diffusion"] = _replace_fields(DiffusionConfig(), d.get("diffusion", {}), "diffusion")
            train = dict(d.get("train", {}))
            train["loggers"] = tuple(train.get("loggers", ()))
            if train.get("timestep_range") is not None:
                train["timestep_range"] = tuple(train["timestep_range"])
            d["train"] = _replace_fields(TrainConfig(), train, "train")
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = set(d) - known
            if unknown:
                raise ConfigError(f"unknown field(s) {sorted(unknown)}")
            return cls(**d)
        except (TypeError, ConfigError) as exc:
            raise CheckpointError(f"{source}: {exc}") from exc

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise CheckpointError(f"{path} does not exist; is this a checkpoint directory?") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{path} is not valid JSON ({exc}); the checkpoint is corrupt") from exc
        if not isinstance(data, dict):
            raise CheckpointError(f"{path} holds a {type(data).__name__}, not a polydiff run config")
        return cls.from_dict(data, source=str(path))


def _replace_fields(obj: Any, values: dict[str, Any], section: str) -> Any:
    """dataclasses.replace with an error that names the section, the field and the known fields."""
    known = {f.name for f in dataclasses.fields(obj)}
    bad = sorted(set(values) - known)
    moved = [name for name in bad if section == "unet" and name in LEGACY_SPACETIME_FIELDS]
    if moved:
        raise ConfigError(
            f"unet.{moved[0]} is now part of the space-time UNet's own section unet.spacetime "
            "(set by the video presets; null = full 3-D layers over three spatial axes); "
            + (
                "use --set unet.spacetime=true for it, --set unet.spacetime=null for full 3-D layers"
                if moved[0] == "factorized"
                else f"use --set unet.spacetime.{moved[0]}=..."
            )
        )
    if bad:
        close = [m for name in bad for m in difflib.get_close_matches(name, known, n=1)]
        hint = f" Did you mean {', '.join(repr(m) for m in close)}?" if close else ""
        raise ConfigError(f"unknown {section} field(s) {bad}.{hint} Known: {', '.join(sorted(known))}.")
    return dataclasses.replace(obj, **values)


def _replace_nested(obj: Any, name: str, value: Any, section: str) -> Any:
    """``obj`` with the field ``name`` set, where ``name`` may be a dotted path into a nested
    config section (``spacetime.frame_norm``); the nested section must be set already."""
    head, dot, rest = name.partition(".")
    if not dot:
        return _replace_fields(obj, {name: value}, section)
    _replace_fields(obj, {head: getattr(obj, head, None)}, section)  # unknown heads fail here
    inner = getattr(obj, head)
    if not dataclasses.is_dataclass(inner):
        raise ConfigError(
            f"--set {section}.{name}: {section}.{head} is {json.dumps(inner, default=str)}, "
            f"not a section with fields; set it first "
            f"(e.g. --set {section}.{head}=true --set {section}.{name}=...)"
        )
    return _replace_fields(obj, {head: _replace_nested(inner, rest, value, f"{section}.{head}")}, section)


#: What each key of a run's ``sample`` section means (what the pipeline reads from it).
SAMPLE_FIELDS: dict[str, str] = {
    "sampler": "Sampler by registry name: ``ddpm``, ``ddim``, ``dpmpp-2m``, ``euler``, ``heun`` "
    "or a plugin's (``polydiff plugins``).",
    "steps": "Sampling steps (Heun makes ``2 * steps - 1`` network evaluations, the others one each).",
    "guidance": "Classifier-free guidance scale: 1 = the conditional prediction only, 0 = unconditional.",
    "temperature": "The initial noise is ``N(0, I / temperature)`` (around the conditioner's prior "
    "mean, if any): above 1, samples nearer the mean.",
    "clip_denoised": "Clamp each predicted x0 to ``[-1, 1]`` (true) or ``[-b, b]`` (a number b); "
    "false = no clamp.",
    "dynamic_threshold": "Imagen's dynamic thresholding of predicted x0 at this percentile of "
    "``|x0|`` (e.g. 0.995); unset = off.",
    "spacing": "Which timesteps a few-step sampler visits: ``leading``, ``trailing`` or "
    "``linspace`` (not the Karras samplers, which use Karras noise levels).",
    "eta": "DDIM's stochasticity: 0 = deterministic, 1 = DDPM-like.",
}
#: Keys a run's ``sample`` section may hold.
SAMPLE_KEYS = tuple(SAMPLE_FIELDS)


def check_sample_section(sample: dict[str, Any], registry: Registry) -> None:
    """Check the values of a run's ``sample`` section (``--set sample.steps=...``)."""
    for key, value in sample.items():
        if key not in SAMPLE_KEYS:
            raise ConfigError(f"unknown sample field '{key}' (= {value!r}); known: {', '.join(SAMPLE_KEYS)}")
        check_sampling(key, value, f"sample.{key}")
    if "sampler" in sample:
        registry.component("sampler", sample["sampler"])


def _check_modality_of(registry: Registry, kind: str, name: str, modality: str) -> None:
    """Refuse a component registered for another modality, listing this modality's own."""
    component = registry.component(kind, name)  # unknown names fail here, listing the known ones
    if component.modality not in (None, modality):
        own = registry.names(kind, modality=modality)
        raise ConfigError(
            f"{kind} '{name}' is for modality '{component.modality}', not '{modality}'; "
            f"{modality}'s {kind}s: {', '.join(own) or '(none)'}"
        )
