"""Exceptions with messages that name the thing and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PolydiffError(Exception):
    """Base class of every error polydiff raises on purpose."""


class PluginError(PolydiffError):
    """A plugin could not be loaded or contributes something invalid."""


class MissingDependencyError(PolydiffError, ImportError):
    """An optional dependency of a component is not installed."""


class UnknownNameError(PolydiffError, KeyError):
    """A name (modality, dataset, sampler, ...) that no installed plugin provides."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ConfigError(PolydiffError, ValueError):
    """A configuration value or file that cannot be used."""


class CheckpointError(PolydiffError):
    """A checkpoint directory that is missing, truncated, foreign or too new."""


class DataError(PolydiffError, ValueError):
    """A data file or dataset that cannot be read."""


class SamplingError(PolydiffError):
    """Sampling produced something unusable (samples that are NaN or infinite)."""


class TrainingDiverged(PolydiffError, FloatingPointError):
    """The loss became NaN or infinite."""


def unknown_name(kind: str, name: str, known: Iterable[str], hint: str = "") -> UnknownNameError:
    """Build an :class:`UnknownNameError` that lists the known names and the closest match."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    msg = f"unknown {kind} '{name}'."
    if close:
        msg += f" Did you mean '{close[0]}'?"
    plural = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"  # modality -> modalities
    msg += f" Known {plural}: {', '.join(known) if known else '(none installed)'}."
    if hint:
        msg += f" {hint}"
    return UnknownNameError(msg)
