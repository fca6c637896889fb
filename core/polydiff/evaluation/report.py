"""What each own-data number means, and the files ``polydiff evaluate`` writes for it."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw
from torch import Tensor

#: One paragraph per number, written next to the numbers (``metrics.json`` and ``report.md``).
EXPLANATIONS = {
    "caption_accuracy": (
        "A small classifier, trained here on the run's real training items only (never on generated "
        "ones), reads what each sample shows. 'classes': which of the finite set of captions (share "
        "read as the prompt). 'words': which caption words it shows (balanced accuracy per "
        "word: items with the word read as having it and items without it read as not, averaged over "
        "the words that vary among the prompts; chance 0.5; words the data cannot show keep it low). "
        "'samples' is its score on the generated samples, 'real_held_out' the same classifier on "
        "real items it never saw: the ceiling a perfect generator reaches. Samples near 'chance' "
        "do not follow their prompt."
    ),
    "frechet": (
        "Frechet distance between Gaussians fitted to the classifier's features: of the samples "
        "against the real training items ('samples'), and of as many real held-out items against "
        "the same training items ('real_held_out'), the value a perfect generator gets at this "
        "'sample_size' (the distance is biased upwards at small sizes, so compare the two, not the "
        "number alone). Lower is closer to the real data; a generator far above the reference makes "
        "items the classifier's features tell apart from real ones. Without captions the features "
        "come from a classifier trained on the real items to tell which flip was applied to them."
    ),
    "memorisation": (
        "RMS distance, in standardised data units, from each item to its nearest real training item. "
        "'sample_nn_distance_median' for generated samples, 'real_nn_distance_median' for real "
        "held-out items (new data from the same source). 'ratio' about 1: samples are as far from "
        "the training set as new real data; well below 1: samples sit on training items (copies); "
        "well above 1: samples are off the data (noisy or unlike it). 'copies': share of samples closer "
        "to a training item than 95% of real held-out items are (about 0.05 without copying). The "
        "picture closest_pairs.png shows the closest sample / training-item pairs."
    ),
}


def write_report(metrics: dict[str, Any], out_dir: Path, notes: Sequence[str] = ()) -> dict[str, Any]:
    """Add ``explanations`` (and ``notes``) to ``metrics``, write ``metrics.json`` and ``report.md``
    to ``out_dir`` and return the metrics as written."""
    metrics = {k: v for k, v in metrics.items() if not k.startswith("_")}
    explained = {k: v for k, v in EXPLANATIONS.items() if k in metrics}
    explained.update(metrics.pop("explanations", {}))
    metrics["explanations"] = explained
    if notes:
        metrics["notes"] = list(notes)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n")
    lines = ["# Evaluation report", ""]
    for key, text in explained.items():
        lines += [
            f"## {key}",
            "",
            "```",
            json.dumps(metrics.get(key), indent=2, default=str),
            "```",
            "",
            text,
            "",
        ]
    if notes:
        lines += ["## notes", ""] + [f"- {n}" for n in notes] + [""]
    (out_dir / "report.md").write_text("\n".join(lines))
    return metrics


def pairs_picture(
    pairs: Sequence[tuple[Tensor, Tensor, str]],
    to_image: Callable[[Tensor], Tensor],
    path: Path,
    *,
    scale: int = 0,
) -> Path:
    """Draw rows ``sample | nearest training item`` with a caption each.

    Args:
        pairs: ``(sample, training item, label)`` per row.
        to_image: An item -> uint8 ``[3, H, W]`` picture (the modality's view of it).
        scale: Integer magnification (0: enough for about 96 pixels of height).
    """
    rows = [(to_image(a), to_image(b), label) for a, b, label in pairs]
    h = max(max(a.shape[1], b.shape[1]) for a, b, _ in rows)
    w = max(max(a.shape[2], b.shape[2]) for a, b, _ in rows)
    k = scale or max(1, 96 // h)
    pad, text_h = 4, 14
    canvas = Image.new("RGB", (2 * w * k + 3 * pad, len(rows) * (h * k + text_h + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (a, b, label) in enumerate(rows):
        top = pad + r * (h * k + text_h + pad)
        draw.text((pad, top), label[:80], fill="black")
        for c, img in enumerate((a, b)):
            pic = Image.fromarray(img.permute(1, 2, 0).to(torch.uint8).numpy())
            pic = pic.resize((img.shape[2] * k, img.shape[1] * k), Image.Resampling.NEAREST)
            canvas.paste(pic, (pad + c * (w * k + pad), top + text_h))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def grey_image(x: Tensor) -> Tensor:
    """Any 2-D ``[H, W]`` array -> uint8 ``[3, H, W]``, min-max stretched (mels, single frames)."""
    x = x.detach().float().cpu()
    lo, hi = x.min(), x.max()
    g = ((x - lo) / (hi - lo).clamp(min=1e-6) * 255).round().to(torch.uint8)
    return g[None].expand(3, -1, -1).contiguous()
