"""The plugin's records, its cheap import, the vocoder hook and the embedded corpus."""

from __future__ import annotations

import subprocess
import sys

import pytest

from polydiff.errors import UnknownNameError
from polydiff_tts.data.digits import DIGITS_ROOT, digit_references, heldout_utterances
from polydiff_tts.data.metadata import read_metadata
from polydiff_tts.plugin import DEMO_PROMPTS


def test_importing_the_plugin_does_not_import_torch():
    code = "import sys, polydiff_tts.plugin; print('torch' in sys.modules, 'torchaudio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_registry_lists_the_tts_components(tts_registry):
    modality = tts_registry.modality("tts")
    assert modality.rank == 1 and modality.default_conditioner == "grad-tts"
    assert set(modality.presets) == {"quick", "full", "pretrained"}
    record = tts_registry.component("pretrained", "tts-spoken-digits")
    assert record.modality == "tts" and (record.load() / "model.safetensors").is_file()
    assert set(tts_registry.names("dataset", modality="tts")) == {"spoken-digits", "ljspeech"}
    for kind, name in [
        ("encoder", "mel-norm"),
        ("conditioner", "grad-tts"),
        ("writer", "wav"),
        ("evaluator", "tts-intelligibility"),
    ]:
        assert tts_registry.component(kind, name).load() is not None


def test_vocoder_hook_is_added_and_griffin_lim_registered(tts_registry):
    hook = tts_registry.manager.hook.polydiff_tts_vocoders
    names = [c.name for result in hook() for c in result]
    assert names == ["griffin-lim"]
    # "vocoder" is a component kind of the registry, like the core's kinds
    assert "vocoder" in tts_registry.kinds() and tts_registry.names("vocoder") == ["griffin-lim"]
    assert tts_registry.component("vocoder", "griffin-lim").plugin == "tts"


class FakeVocoderPlugin:
    """A third-party vocoder plugin, registered like any polydiff plugin."""

    from polydiff import hookimpl

    @staticmethod
    @hookimpl
    def polydiff_tts_vocoders():
        from polydiff import Component

        return [Component("silence", "polydiff_tts.vocoders.base:Vocoder", description="test double")]


def test_a_vocoder_plugin_is_found_by_name(monkeypatch):
    import polydiff_tts.plugin
    from polydiff.plugins import Registry
    from polydiff_tts.vocoders import registry as vocoders

    registry = Registry.from_plugins(("tts", polydiff_tts.plugin), ("fake-vocoder", FakeVocoderPlugin))
    # the vocoders live in the process-wide registry (before: a registry of their own over the manager)
    monkeypatch.setattr("polydiff.plugins.get_registry", lambda: registry)
    found = vocoders.vocoder_components()
    assert set(found) == {"griffin-lim", "silence"} and found["silence"].plugin == "fake-vocoder"
    assert type(vocoders.load_vocoder("silence", "small")).__name__ == "Vocoder"
    with pytest.raises(UnknownNameError, match="unknown vocoder 'hifigan'.*griffin-lim, silence"):
        vocoders.load_vocoder("hifigan", "small")


def test_a_vocoder_name_clash_skips_the_later_plugin_with_one_report():
    """As for every kind: the clash names both plugins and their distributions, and the first
    plugin's vocoder stays (before, looking vocoders up raised for every use)."""
    import polydiff_tts.plugin
    from polydiff import Component, PluginLoadWarning, hookimpl
    from polydiff.plugins import Registry

    class Impostor:
        @hookimpl
        def polydiff_tts_vocoders(self):
            return [Component("griffin-lim", "polydiff_tts.vocoders.base:Vocoder")]

    with pytest.warns(PluginLoadWarning, match="vocoder 'griffin-lim' is provided by two plugins") as caught:
        registry = Registry.from_plugins(("tts", polydiff_tts.plugin), ("impostor", Impostor()))
    assert len(caught) == 1
    [failure] = registry.failures
    assert failure.name == "impostor" and "'tts' from tts" in failure.error
    assert failure.hook == "polydiff_tts_vocoders" and "POLYDIFF_DISABLE_PLUGINS=impostor" in failure.fix
    assert registry.component("vocoder", "griffin-lim").target.endswith("GriffinLimVocoder")


def test_embedded_corpus_is_small_and_holds_out_its_evaluation_sequences():
    size = sum(p.stat().st_size for p in DIGITS_ROOT.rglob("*") if p.is_file())
    assert size <= 3_000_000
    train = {u.normalized_text for u in read_metadata(DIGITS_ROOT / "metadata.csv")}
    held = [u.normalized_text for u in heldout_utterances()]
    assert len(held) >= 20 and not train & set(held)
    assert set(DEMO_PROMPTS) <= set(held)
    words = {w for text in train | set(held) for w in text.split()}
    assert {u.normalized_text for u in digit_references()} == words  # a template for every word
