"""Typed records that plugins return from hooks.

Records are plain dataclasses that name code by import string (``"pkg.module:attr"``)
so that listing plugins (``polydiff plugins``) never imports torch or a plugin's heavy
modules. The code behind a record is imported on first use by :meth:`Component.load`.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polydiff.errors import MissingDependencyError, PluginError

#: The kinds of named components the core defines, one hook each (``polydiff_{kind}s``, but
#: ``polydiff_pretrained``). A new built-in kind is one entry here plus its hook spec in
#: :mod:`polydiff.hookspecs`; a plugin adds a kind of its own with a :class:`ComponentKind`.
COMPONENT_KINDS = (
    "dataset",
    "encoder",
    "conditioner",
    "writer",
    "evaluator",
    "sampler",
    "logger",
    "backbone",
    "pretrained",
)


@dataclass(frozen=True)
class Component:
    """A named, lazily imported piece of code contributed by a plugin.

    Attributes:
        name: Unique name within its kind (``"shapes"``, ``"vae"``, ``"ddim"``).
        target: Import string ``"package.module:attr"`` of a class or factory.
        description: One line shown by ``polydiff plugins``.
        requires: Import names that must be importable before ``target`` is loaded
            (e.g. ``("torchaudio",)``); a missing one gives an error naming ``extra``.
        extra: The pip extra that installs ``requires`` (e.g. ``"polydiff-tts[phonemes]"``).
        modality: For datasets, writers and evaluators: the modality they serve, or None.
        options: Default keyword options passed to the target when it is built.
    """

    name: str
    target: str
    description: str = ""
    requires: tuple[str, ...] = ()
    extra: str | None = None
    modality: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    kind: str = ""  # filled in by the registry
    plugin: str = ""  # distribution that contributed it; filled in by the registry

    def missing_requirements(self) -> list[str]:
        """Import names in ``requires`` that cannot be found (no import is done)."""
        return [r for r in self.requires if importlib.util.find_spec(r.split(".")[0]) is None]

    def load(self) -> Any:
        """Import and return the object named by ``target``."""
        missing = self.missing_requirements()
        if missing:
            hint = f"pip install '{self.extra}'" if self.extra else f"pip install {' '.join(missing)}"
            raise MissingDependencyError(
                f"{self.kind} '{self.name}' (from {self.plugin or 'unknown plugin'}) needs "
                f"{', '.join(missing)}, which is not installed. Fix: {hint}"
            )
        module_name, _, attr = self.target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise PluginError(
                f"{self.kind} '{self.name}' from {self.plugin or 'unknown plugin'} points at "
                f"'{self.target}', which cannot be imported: {exc}"
            ) from exc
        return obj


@dataclass(frozen=True)
class ComponentKind:
    """A kind of named component that a plugin adds for other plugins to contribute to.

    The plugin adds the hook spec (through ``polydiff_addhooks``) and returns this record from
    ``polydiff_component_kinds``; every plugin's ``hook`` then contributes
    :class:`Component` records of the kind, which the registry indexes, checks and reports
    like the built-in kinds: ``registry.build("vocoder", "griffin-lim", mel=...)``.

    Attributes:
        name: The kind (``"vocoder"``): unique among kinds, the built-in ones included.
        hook: The hook that returns its components (``"polydiff_tts_vocoders"``).
        description: One line: what a component of this kind is and how it is called.
    """

    name: str
    hook: str
    description: str = ""
    plugin: str = ""  # distribution that declared it; filled in by the registry


@dataclass(frozen=True)
class Modality:
    """A data modality: what a diffusion model over it needs by default.

    Attributes:
        name: ``"image"``, ``"tts"``, ``"video"``, ...
        rank: Number of spatial dims of the diffusion tensor ``[B, C, *spatial]`` (1, 2 or 3);
            it sets ``unet.dims``. Rank 3 is three spatial axes alike (a volume: full 3-D
            layers); a video modality's presets also set ``unet.spacetime``, which makes the
            first axis time (the space-time UNet).
        description: One line shown by ``polydiff plugins``.
        default_dataset / default_encoder / default_conditioner / writer / evaluator:
            Component names (of their kinds) used when the CLI is not told otherwise.
        presets: ``{"quick": {...}, "full": {...}}``; each maps config sections
            (``"train"``, ``"unet"``, ``"diffusion"``, ``"dataset"``, ``"encoder"``,
            ``"conditioner"``, ``"sample"``) to overrides of their defaults.
        demo: Keyword arguments for ``polydiff demo MODALITY`` (``prompts``, ``preset``, ...).
    """

    name: str
    rank: int
    description: str = ""
    default_dataset: str | None = None
    default_encoder: str = "identity"
    default_conditioner: str = "none"
    writer: str | None = None
    evaluator: str | None = None
    presets: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    demo: dict[str, Any] = field(default_factory=dict)
    plugin: str = ""  # filled in by the registry


@dataclass(frozen=True)
class Pretrained:
    """A trained checkpoint shipped inside a plugin's distribution as package data.

    The directory holds what ``polydiff train`` writes into a checkpoint (``config.json``,
    ``model.safetensors``; fp16 weights load into the fp32 model) plus the model card
    ``README.md`` (see :mod:`polydiff.pretrained`). ``polydiff sample NAME``, ``polydiff
    evaluate NAME`` and ``DiffusionPipeline.from_pretrained(NAME)`` take the name wherever they
    take a run directory.

    Attributes:
        name: Unique name among pretrained models (``"timeseries-sines"``).
        package: Import name of the package that ships the files (``"polydiff_timeseries"``);
            found without importing it.
        path: The checkpoint directory, relative to the package (``"pretrained/timeseries-sines"``).
        description: One line shown by ``polydiff plugins``.
        modality: The modality the model generates.
        experts: Names of other pretrained models sampled together with this one, each in
            the timestep range it was trained on (denoiser experts, ``with_expert``).
        requires / extra: As for :class:`Component`.
    """

    name: str
    package: str
    path: str
    description: str = ""
    modality: str | None = None
    experts: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    extra: str | None = None
    kind: str = ""  # filled in by the registry
    plugin: str = ""  # distribution that contributed it; filled in by the registry

    def missing_requirements(self) -> list[str]:
        """Import names in ``requires`` that cannot be found (no import is done)."""
        return [r for r in self.requires if importlib.util.find_spec(r.split(".")[0]) is None]

    def directory(self, *, missing_ok: bool = False) -> Path:
        """The checkpoint directory inside the installed package (the package is not imported).

        Raises:
            PluginError: the package is not installed, or the directory is not in it (unless
                ``missing_ok``: then where it belongs, for ``make pretrained`` to fill).
        """
        try:
            spec = importlib.util.find_spec(self.package)
        except (ImportError, ValueError):
            spec = None
        roots = list(spec.submodule_search_locations or []) if spec is not None else []
        if not roots:
            raise PluginError(
                f"pretrained '{self.name}' from {self.plugin or 'unknown plugin'} lives in package "
                f"'{self.package}', which is not an installed package. Fix: reinstall {self.plugin or 'it'}"
            )
        for root in roots:
            candidate = Path(root) / self.path
            if candidate.is_dir():
                return candidate
        if missing_ok:
            return Path(roots[0]) / self.path
        raise PluginError(
            f"pretrained '{self.name}' from {self.plugin or 'unknown plugin'}: {Path(roots[0]) / self.path} "
            f"is missing. Fix: reinstall {self.plugin or 'the plugin'} with its package data, "
            f"or retrain it with `make pretrained`"
        )

    def load(self) -> Path:
        """The checkpoint directory (:meth:`directory`), after checking ``requires``."""
        missing = self.missing_requirements()
        if missing:
            hint = f"pip install '{self.extra}'" if self.extra else f"pip install {' '.join(missing)}"
            raise MissingDependencyError(
                f"pretrained '{self.name}' (from {self.plugin or 'unknown plugin'}) needs "
                f"{', '.join(missing)}, which is not installed. Fix: {hint}"
            )
        return self.directory()
