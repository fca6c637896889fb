"""Reference of every config field, generated from the config dataclasses' docstrings.

``python -m polydiff.config_reference > docs/config-reference.md`` writes
docs/config-reference.md; a test checks that the file is current. Each field's type and
default come from the dataclass, its text from the ``Attributes:`` section of the class
docstring (a field without one is an error here, so none goes undocumented).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import typing
from typing import Any

from polydiff.diffusion.config import DiffusionConfig
from polydiff.errors import ConfigError
from polydiff.nn.config import SpaceTimeConfig, UNetConfig
from polydiff.nn.dit_config import DiTConfig
from polydiff.run_config import DEFAULT_SAMPLE, SAMPLE_FIELDS, ComponentRef, RunConfig
from polydiff.training.config import RESUMABLE_FIELDS, TrainConfig
from polydiff.validation import SAMPLING

#: ``(section as written in --set, dataclass, one line on the section)``, in page order.
SECTIONS: tuple[tuple[str, type, str], ...] = (
    ("unet", UNetConfig, "The network (`UNetConfig`, `polydiff/nn/config.py`)."),
    (
        "unet.spacetime",
        SpaceTimeConfig,
        "The space-time UNet for video (`SpaceTimeConfig`, `polydiff/nn/config.py`); "
        "null unless a preset or `--set unet.spacetime=true` sets it.",
    ),
    (
        "backbone.options",
        DiTConfig,
        "The diffusion transformer's options with `--backbone dit` (`DiTConfig`, "
        "`polydiff/nn/dit_config.py`); `dims`, channels and `context_dim` are filled in as for the UNet.",
    ),
    ("diffusion", DiffusionConfig, "The forward process and the loss (`DiffusionConfig`)."),
    ("train", TrainConfig, "Optimisation and bookkeeping (`TrainConfig`)."),
)

HEADER = """\
# Config reference

Every field of a run's configuration: what `config.json` holds, what a modality's presets
override, and what `polydiff train ... --set SECTION.FIELD=VALUE` sets (values are JSON:
`--set unet.channel_mult=[1,2,2]`, `--set diffusion.min_snr_gamma=null`; nested sections take a
dotted path: `--set unet.spacetime.frame_norm=false`). Every value is checked where it enters:
a wrong type or range is one line naming the field, the value and a sound example.

Generated from the config dataclasses' docstrings by `python -m polydiff.config_reference >
docs/config-reference.md`; `tests/core/test_config_reference.py` checks that this page is current.

**Filled in, not chosen:** `unet.in_channels` (from the encoder's latent shape),
`unet.cond_channels` and `unet.context_dim` (from the conditioner) are set when the model is
built (`polydiff.builder.build_model`), as are `data_shape` (from the dataset, when training
starts) and `latent_shape` (from the encoder); a preset leaves them out. `unet.dims` is the
modality's rank. The options of the encoder and conditioner are completed by them at that
point too (a fitted vocabulary, say), so a checkpoint rebuilds them as they were trained.
"""


def attribute_docs(cls: type) -> dict[str, str]:
    """``{field: text}`` from the ``Attributes:`` section of ``cls``'s docstring.

    An entry is ``name: text`` (or ``a, b: text`` for several fields) indented under the
    heading; deeper-indented lines continue it. Text is joined into one paragraph.
    """
    doc = inspect.cleandoc(cls.__doc__ or "")
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return {}
    docs: dict[str, str] = {}
    names: list[str] = []
    indent = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        width = len(line) - len(line.lstrip())
        if width == 0:
            break
        if indent is None:
            indent = width
        match = re.match(r"^([\w, /*]+):\s*(.*)$", line.strip()) if width == indent else None
        if match:
            names = [n.strip() for n in re.split(r"[,/]", match.group(1)) if n.strip()]
            for name in names:
                docs[name] = match.group(2)
        elif width > indent and names:
            for name in names:
                docs[name] = f"{docs[name]} {line.strip()}".strip()
        else:
            break
    return docs


def _type(tp: Any) -> str:
    """``int | None``, ``tuple[int, ...]``, ``SpaceTimeConfig | None``: without module paths."""
    plain = isinstance(tp, type) and typing.get_origin(tp) is None
    text = tp.__name__ if plain else str(tp)
    return re.sub(r"\b(?:[a-z_]\w*\.)+([A-Za-z_]\w*)", r"\1", text).replace("NoneType", "None")


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "(required)"
    if dataclasses.is_dataclass(value) or (isinstance(value, dict) and value):
        return "(section)"
    if value == "":
        return '`""`'
    if isinstance(value, bool) or value is None:
        return f"`{'null' if value is None else str(value).lower()}`"
    if isinstance(value, tuple):
        return "`[" + ",".join(str(v) for v in value) + "]`"
    return f"`{value}`"


def _cell(text: str) -> str:
    """Docstring text as a Markdown table cell: reST roles and literals as Markdown code."""
    text = re.sub(r":(?:class|func|meth|data|attr|mod):`~?([^`]+)`", lambda m: f"`{m.group(1)}`", text)
    text = text.replace("``", "`")
    return text.replace("|", "\\|")


def dataclass_table(section: str, cls: type, *, notes: dict[str, str] | None = None) -> str:
    """A Markdown table of ``cls``'s fields: name, type, default, text (errors if one lacks text)."""
    docs = attribute_docs(cls)
    hints = typing.get_type_hints(cls)
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for field in dataclasses.fields(cls):
        if field.name not in docs:
            raise ConfigError(
                f"{cls.__name__}.{field.name} has no entry in the class docstring's Attributes section; "
                "document it there (the config reference is generated from it)"
            )
        text = _cell(docs[field.name])
        if notes and field.name in notes:
            text += f" {notes[field.name]}"
        name = f"`{section}.{field.name}`" if section else f"`{field.name}`"
        rows.append(f"| {name} | `{_cell(_type(hints[field.name]))}` | {_default(field)} | {text} |")
    return "\n".join(rows)


def sample_table() -> str:
    """The ``sample`` section: each key's type, default and meaning."""
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for key, text in SAMPLE_FIELDS.items():
        tp, rule, example = SAMPLING[key]
        default = DEFAULT_SAMPLE.get(key)
        shown = (
            "unset"
            if key not in DEFAULT_SAMPLE
            else f"`{str(default).lower() if isinstance(default, bool) else default}`"
        )
        allowed = f" Allowed: {rule.describe()}." if rule is not None and rule.describe() else ""
        rows.append(
            f"| `sample.{key}` | `{_type(tp)}` | {shown} | {_cell(text)}{allowed} e.g. `{example}`. |"
        )
    return "\n".join(rows)


def render() -> str:
    """The whole page (Markdown)."""
    resumable = {name: "May change on `--resume`." for name in RESUMABLE_FIELDS}
    parts = [HEADER]
    parts += [
        "## The run (`config.json`'s top level)\n",
        "The sections below are fields of `RunConfig` (`polydiff/run_config.py`); the component "
        "fields (`dataset`, `encoder`, `conditioner`, `writer`, `evaluator`) hold a name and its "
        "options.\n",
        dataclass_table("", RunConfig),
        "",
        "A component (`dataset`, `encoder`, `conditioner`, `writer`, `evaluator`):\n",
        dataclass_table("", ComponentRef),
        "",
        "The options of a component are its target's keyword arguments: `polydiff plugins -v` "
        "names each component's target, and each plugin's README lists its options.\n",
    ]
    for section, cls, line in SECTIONS:
        parts += [f"## `{section}`\n", line + "\n", ""]
        parts[-1] = dataclass_table(section, cls, notes=resumable if cls is TrainConfig else None) + "\n"
    parts += [
        "## `sample`\n",
        "The run's sampling defaults (a modality's preset sets them; `polydiff sample` and "
        "`polydiff evaluate` options override them, e.g. `--steps`, `--guidance`). Other sampler "
        "options (`rho`, `sigma_max`, ...) are keyword arguments of `DiffusionPipeline.__call__`.\n",
        sample_table(),
        "",
    ]
    return "\n".join(parts).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the page (``python -m polydiff.config_reference > docs/config-reference.md``)."""
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
