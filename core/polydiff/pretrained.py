"""Pretrained models: a name -> the checkpoint directory a plugin ships, and its model card.

A plugin registers pretrained checkpoints with the ``polydiff_pretrained`` hook
(:class:`~polydiff.Pretrained` records). Each directory holds::

    config.json          the run's RunConfig, as `polydiff train` wrote it
    model.safetensors    the EMA weights (fp16 where that measured no worse; loads into fp32)
    metrics.json         what `polydiff evaluate` measured on these very files
    README.md            the model card: a front matter of `key: value` lines, then prose

The card's front matter records how the model was made (``command``, ``steps``,
``train_wall_s``, ``machine``, ``dtype``, ``metric``, ``score``, ``target``, ...; a model
sampled with denoiser experts lists them in ``experts``, an expert names its model in
``expert_of`` and its ``timesteps``, and both record the pair's score);
:func:`check_card` checks it against ``config.json``, ``metrics.json`` and the weights, and
``scripts/make_pretrained.py`` (``make pretrained``) rebuilds directory and card from scratch.

Nothing here imports torch at module level: resolving a name stays cheap.
"""

from __future__ import annotations

import difflib
import json
import shlex
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polydiff.errors import CheckpointError

if TYPE_CHECKING:
    from polydiff.plugins import Registry
    from polydiff.records import Pretrained

CARD, CONFIG, MODEL, METRICS = "README.md", "config.json", "model.safetensors", "metrics.json"
#: Front-matter keys every card has.
CARD_KEYS = ("name", "modality", "command", "steps", "dtype", "metric", "score")


def records(registry: Registry | None = None) -> dict[str, Pretrained]:
    """Every registered pretrained model by name."""
    from polydiff.plugins import get_registry

    registry = registry or get_registry()
    return {record.name: record for record in registry.components("pretrained")}


def lookup(name: str, registry: Registry | None = None) -> Pretrained | None:
    """The pretrained record called ``name``, or None."""
    return records(registry).get(name)


def resolve(name_or_path: str | Path, registry: Registry | None = None) -> tuple[Path, Pretrained | None]:
    """Where ``name_or_path`` points: an existing path wins, then a registered pretrained name.

    Returns ``(directory, record)``; ``record`` is None for a path.

    Raises:
        CheckpointError: neither; one line naming the argument, the closest pretrained name
            and all known ones.
    """
    path = Path(name_or_path)
    if path.exists():
        return path, None
    known = records(registry)
    name = str(name_or_path)
    if name in known:
        return known[name].load(), known[name]
    close = difflib.get_close_matches(name, list(known), n=1)
    raise CheckpointError(
        f"{name} does not exist and is not a pretrained model name."
        + (f" Did you mean '{close[0]}'?" if close else "")
        + f" Known pretrained models: {', '.join(sorted(known)) or '(none installed)'}."
        " Pass a run directory written by `polydiff train`, one of its checkpoints/step-*, or one of those "
        "names (`polydiff plugins` lists them)"
    )


def run_dir_of(name_or_path: str | Path, record: Pretrained | None) -> Path:
    """Where commands put what they write for this argument: the run directory of a path, and
    ``runs/pretrained/NAME`` for a pretrained name (never the installed package)."""
    if record is not None:
        return Path("runs") / "pretrained" / record.name
    path = Path(name_or_path)
    return path.parent.parent if path.parent.name == "checkpoints" else path


# -- the model card ---------------------------------------------------------------------------


def read_card(directory: str | Path) -> dict[str, str]:
    """The front matter of ``directory/README.md`` (``key: value`` lines between ``---``)."""
    file = Path(directory) / CARD
    try:
        lines = file.read_text().splitlines()
    except OSError as exc:
        raise CheckpointError(
            f"{file} cannot be read ({exc}); every pretrained model needs its card"
        ) from exc
    if not lines or lines[0].strip() != "---" or "---" not in [line.strip() for line in lines[1:]]:
        raise CheckpointError(f"{file} has no front matter (a '---' line, 'key: value' lines, '---')")
    end = [line.strip() for line in lines].index("---", 1)
    card: dict[str, str] = {}
    for line in lines[1:end]:
        key, sep, value = line.partition(":")
        if sep and key.strip():
            card[key.strip()] = value.strip()
    return card


def render_card(fields: dict[str, Any], body: str) -> str:
    """A card: front matter from ``fields`` (one line each), then ``body`` (Markdown)."""
    head = "\n".join(f"{key}: {' '.join(str(value).split())}" for key, value in fields.items())
    return f"---\n{head}\n---\n\n{body.strip()}\n"


def safetensors_dtypes(file: str | Path) -> set[str]:
    """The dtypes (``"F16"``, ``"F32"``, ...) of the tensors in a safetensors file, from its header."""
    with open(file, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    return {entry["dtype"] for key, entry in header.items() if key != "__metadata__"}


def command_options(command: str) -> tuple[str | None, dict[str, str]]:
    """``polydiff train MODALITY --opt value ...`` -> ``(MODALITY, {"--opt": "value"})``."""
    words = shlex.split(command)
    if words[:2] != ["polydiff", "train"] or len(words) < 3:
        return None, {}
    options: dict[str, str] = {}
    i = 3
    while i < len(words):
        if words[i].startswith("--"):
            takes_value = i + 1 < len(words) and not words[i + 1].startswith("--")
            options[words[i]] = words[i + 1] if takes_value else ""
            i += 2 if takes_value else 1
        else:
            i += 1
    return words[2], options


def metric_value(metrics: dict[str, Any], name: str) -> Any:
    """``metrics[name]``; a dotted name (``held_out.all``) reads a nested section. None if absent."""
    if name in metrics:
        return metrics[name]
    value: Any = metrics
    for key in name.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def check_card(directory: str | Path) -> list[str]:
    """What in ``directory``'s card disagrees with its ``config.json``, weights or ``metrics.json``.

    Returns one line per problem; an empty list means the card describes these files.
    """
    directory = Path(directory)
    card = read_card(directory)
    problems = [f"card lacks '{key}'" for key in CARD_KEYS if key not in card]
    config = json.loads((directory / CONFIG).read_text())
    train = config.get("train", {})
    modality, options = command_options(card.get("command", ""))
    if modality is None:
        problems.append(f"card command {card.get('command')!r} is not `polydiff train MODALITY ...`")
    elif modality != config.get("modality"):
        problems.append(
            f"card command trains '{modality}', config.json's modality is {config.get('modality')!r}"
        )
    preset = options.get("--preset", "quick")
    if preset != config.get("preset"):
        problems.append(f"card command's preset {preset!r} != config.json's {config.get('preset')!r}")
    for flag, value in (("--steps", train.get("steps")), ("--seed", train.get("seed"))):
        if flag in options and options[flag] != str(value):
            problems.append(
                f"card command's {flag} {options[flag]} != config.json's train.{flag[2:]} {value}"
            )
    if card.get("steps") != str(train.get("steps")):
        problems.append(f"card steps {card.get('steps')} != config.json's train.steps {train.get('steps')}")
    if card.get("modality") != config.get("modality"):
        problems.append(f"card modality {card.get('modality')} != config.json's {config.get('modality')}")
    if "timesteps" in card:  # a denoiser expert's: the range it was trained on
        lo_hi = train.get("timestep_range")
        trained = f"{lo_hi[0]}..{lo_hi[1] - 1}" if lo_hi else "every timestep"
        if card["timesteps"] != trained:
            problems.append(
                f"card timesteps {card['timesteps']} != config.json's train.timestep_range ({trained})"
            )
    floats = safetensors_dtypes(directory / MODEL) & {"F16", "BF16", "F32", "F64"}
    wanted = {"float16": {"F16"}, "bfloat16": {"BF16"}, "float32": {"F32"}}.get(card.get("dtype", ""))
    if wanted is None or floats != wanted:
        problems.append(f"card dtype {card.get('dtype')} but {MODEL} holds {sorted(floats)}")
    metric = card.get("metric", "")
    try:
        measured = metric_value(json.loads((directory / METRICS).read_text()), metric)
    except (OSError, json.JSONDecodeError) as exc:
        problems.append(f"{METRICS} cannot be read ({exc})")
    else:
        if measured is None or f"{float(measured):.4f}" != card.get("score"):
            problems.append(f"card score {card.get('score')} != {METRICS}'s {metric} {measured}")
    return problems


# -- making one -------------------------------------------------------------------------------


def export_checkpoint(checkpoint: str | Path, dest: str | Path, *, dtype: str = "float16") -> Path:
    """Write a checkpoint's sampling weights into ``dest`` as a shippable pretrained directory.

    The EMA weights (where the checkpoint has them) replace the raw ones; floating tensors are
    cast to ``dtype``; optimizer and trainer state are left out. Writes ``config.json`` and
    ``model.safetensors``; returns ``dest``.
    """
    import torch
    from safetensors.torch import save_file

    from polydiff.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    weights = dict(ckpt.model)
    weights.update({k: v for k, v in (ckpt.ema or {}).items() if k in weights})
    target = getattr(torch, dtype)
    weights = {
        k: (v.to(target) if v.is_floating_point() else v).contiguous() for k, v in sorted(weights.items())
    }
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / CONFIG).write_text((ckpt.path / CONFIG).read_text())
    save_file(weights, str(dest / MODEL), metadata={"format": "polydiff", "dtype": dtype})
    (dest / MODEL).chmod(0o644)  # package data: readable by everyone who installs it
    return dest
