"""docs/config-reference.md is generated from the config dataclasses and kept current."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from polydiff import config_reference
from polydiff.diffusion.config import DiffusionConfig
from polydiff.errors import ConfigError
from polydiff.nn.config import SpaceTimeConfig, UNetConfig
from polydiff.run_config import SAMPLE_KEYS, RunConfig
from polydiff.training.config import TrainConfig

PAGE = Path(__file__).resolve().parents[2] / "docs" / "config-reference.md"


def test_the_page_is_current():
    assert PAGE.read_text() == config_reference.render(), (
        "docs/config-reference.md is stale: python -m polydiff.config_reference > docs/config-reference.md"
    )


@pytest.mark.parametrize("cls", [RunConfig, UNetConfig, SpaceTimeConfig, DiffusionConfig, TrainConfig])
def test_every_field_is_on_the_page_with_its_text(cls):
    docs = config_reference.attribute_docs(cls)
    page = PAGE.read_text()
    prefix = {UNetConfig: "unet.", SpaceTimeConfig: "unet.spacetime.", DiffusionConfig: "diffusion."}
    prefix[TrainConfig] = "train."
    for field in dataclasses.fields(cls):
        assert docs[field.name], f"{cls.__name__}.{field.name} has no text"
        assert f"| `{prefix.get(cls, '')}{field.name}` |" in page
    assert all(f"| `sample.{key}` |" in page for key in SAMPLE_KEYS)


def test_grouped_entries_and_continuation_lines_are_read():
    docs = config_reference.attribute_docs(DiffusionConfig)
    assert docs["beta_start"] == docs["beta_end"] and "scaled by ``1000 / T``" in docs["beta_start"]
    assert docs["prediction"] == 'Network target: ``"eps"``, ``"x0"`` or ``"v"``.'


def test_an_undocumented_field_is_an_error():
    @dataclasses.dataclass
    class Half:
        """Half documented.

        Attributes:
            a: Documented.
        """

        a: int = 1
        b: int = 2

    with pytest.raises(ConfigError, match=r"Half.b has no entry in the class docstring's Attributes"):
        config_reference.dataclass_table("half", Half)
