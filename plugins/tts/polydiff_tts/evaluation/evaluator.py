"""``tts-intelligibility``: score a TTS checkpoint on held-out digit sequences.

Metrics (all offline, none uses the generator's own networks):

* ``word_accuracy``: 1 - WER of the words a DTW template recogniser hears in the vocoded
  samples (templates: single-digit recordings). ``reference_word_accuracy`` and
  ``resynthesis_word_accuracy`` give its ceiling on the real recordings and on their
  mels passed through the same vocoder.
* ``mcd_mel_db``: MCD computed on the DCT of log-mels with DTW against the reference
  recording of the same sequence ("MCD-mel": not comparable with published MCD).
* ``duration_error_s`` / ``duration_error_rel``: |generated - reference| length.
* ``rtf``: synthesis time (diffusion + vocoder) / audio duration, on the pipeline's device.

A run trained on another corpus (``ljspeech`` layout) is judged by that corpus instead: its held-out
texts, its real recordings and templates cut from its training recordings
(:class:`~polydiff_tts.evaluation.corpus.CorpusEvaluator`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from polydiff.errors import ConfigError
from polydiff.evaluation.base import CheckerEvaluator, Plan
from polydiff.interfaces import Evaluator
from polydiff_tts.audio.config import MelConfig
from polydiff_tts.audio.io import read_audio
from polydiff_tts.audio.mel import LogMelSpectrogram
from polydiff_tts.data.digits import DIGITS_ROOT
from polydiff_tts.data.metadata import read_metadata
from polydiff_tts.evaluation.features import mel_cepstra
from polydiff_tts.evaluation.metrics import mcd_mel, word_accuracy
from polydiff_tts.evaluation.recognizer import TemplateRecognizer
from polydiff_tts.text.normalize import normalize_text
from polydiff_tts.writers.wav import WavWriter

if TYPE_CHECKING:
    from polydiff.pipeline import DiffusionPipeline


class IntelligibilityEvaluator(CheckerEvaluator):
    """Generates the held-out sequences and scores them (the flow is the core's
    :class:`~polydiff.evaluation.base.CheckerEvaluator`).

    Args:
        corpus: Directory with ``heldout.csv`` (sequences + reference recordings) and
            ``references.csv`` (single words); default the embedded digits corpus.
        heldout, references: Their file names.
        max_prompts: Use only the first held-out sequences.
        length_scale: Speaking-rate factor passed to the conditioner.
        temperature: Sampling temperature (default: the checkpoint's ``sample`` section).
        word_penalty: Word-start cost of the recogniser.
        keep_wavs: How many generated WAVs (and one PNG of their mels) to write.
        own_corpus / other options: Options of the
            :class:`~polydiff_tts.evaluation.corpus.CorpusEvaluator` that judges runs on datasets
            other than ``spoken-digits`` (when ``corpus`` is not given), e.g. ``speaker_pattern``.
    """

    name = "tts-intelligibility"
    datasets = ("spoken-digits",)
    own_data_noun = "corpus"
    timed = False

    def __init__(
        self,
        corpus: str | Path | None = None,
        heldout: str = "heldout.csv",
        references: str = "references.csv",
        max_prompts: int | None = None,
        length_scale: float = 1.0,
        temperature: float | None = None,
        word_penalty: float = 0.0,
        keep_wavs: int = 8,
        own_corpus: dict[str, Any] | None = None,
        **corpus_options: Any,
    ):
        self.own_corpus = self.own_data = {**(own_corpus or {}), **corpus_options}
        self.explicit_corpus, self.max_prompts = corpus is not None, max_prompts
        root = Path(corpus) if corpus is not None else DIGITS_ROOT
        self.heldout = read_metadata(root / heldout, root / "wavs")[:max_prompts]
        self.references = read_metadata(root / references, root / "wavs")
        self.length_scale, self.temperature = length_scale, temperature
        self.word_penalty, self.keep_wavs = word_penalty, keep_wavs

    def evaluate(
        self,
        pipeline: DiffusionPipeline,
        out_dir: Path,
        *,
        num_per_prompt: int = 4,
        sampler: str = "ddim",
        steps: int = 50,
        guidance: float = 1.0,
        seed: int = 0,
    ) -> dict[str, Any]:
        """The core's flow (:class:`~polydiff.evaluation.base.CheckerEvaluator`), guidance 1 by default."""
        return super().evaluate(
            pipeline,
            out_dir,
            num_per_prompt=num_per_prompt,
            sampler=sampler,
            steps=steps,
            guidance=guidance,
            seed=seed,
        )

    def handles(self, pipeline: DiffusionPipeline) -> bool:
        return self.explicit_corpus or super().handles(pipeline)

    def fallback(self, pipeline: DiffusionPipeline) -> Evaluator:
        from polydiff_tts.evaluation.corpus import CorpusEvaluator

        options = {
            "length_scale": self.length_scale,
            "temperature": self.temperature,
            "keep_wavs": self.keep_wavs,
            **({"max_prompts": self.max_prompts} if self.max_prompts is not None else {}),
            **self.own_data,
        }
        try:
            return CorpusEvaluator(**options)
        except TypeError as exc:
            raise ConfigError(f"tts-intelligibility option 'own_corpus': {exc}") from exc

    def plan(self, pipeline: DiffusionPipeline) -> Plan:
        writer = pipeline.writer()
        if not isinstance(writer, WavWriter):
            raise ConfigError(
                "tts-intelligibility needs the 'wav' writer (it vocodes with the checkpoint's "
                f"mel settings); the checkpoint uses {type(writer).__name__}"
            )
        recognizer = TemplateRecognizer(self.references, self.word_penalty)
        prompts = [normalize_text(u.normalized_text) for u in self.heldout]
        unknown = {w for p in prompts for w in p.split()} - recognizer.vocabulary
        if unknown:
            raise ConfigError(
                f"held-out words {sorted(unknown)} have no reference recording in references.csv"
            )
        return Plan(
            prompts,
            {"writer": writer, "recognizer": recognizer},
            {"temperature": self.temperature, "length_scale": self.length_scale},
        )

    def header(
        self, pipeline: DiffusionPipeline, num_per_prompt: int, sampling: dict[str, Any]
    ) -> dict[str, Any]:
        return {}

    def score(self, pipeline: DiffusionPipeline, out: Any, plan: Plan) -> dict[str, Any]:
        writer, recognizer = plan.context["writer"], plan.context["recognizer"]
        mel: MelConfig = writer.mel
        vocoder = writer.vocoder
        num_per_prompt = plan.num_per_prompt
        start = time.perf_counter()
        lengths = out.lengths or [out.samples.shape[-1]] * len(out.prompts)
        mels = [m[:, :n] for m, n in zip(out.samples, lengths)]
        audio = [vocoder(m) for m in mels]
        synthesis_s = plan.generation_seconds + time.perf_counter() - start
        audio_s = sum(len(a) for a in audio) / mel.sample_rate
        plan.context["lengths"] = lengths

        to_mel = LogMelSpectrogram(mel)
        ref_mels = {}
        for utt in self.heldout:
            with torch.no_grad():
                ref_mels[utt.id] = to_mel(read_audio(utt.audio_path, mel.sample_rate))
        ref_of = [utt for utt in self.heldout for _ in range(num_per_prompt)]
        words = [p.split() for p in out.prompts]
        heard = [recognizer(a, mel.sample_rate) for a in audio]
        heard_refs = [
            recognizer(read_audio(u.audio_path, mel.sample_rate), mel.sample_rate) for u in self.heldout
        ]
        heard_resynth = [recognizer(vocoder(ref_mels[u.id]), mel.sample_rate) for u in self.heldout]
        mcd = [mcd_mel(mel_cepstra(m), mel_cepstra(ref_mels[u.id])) for m, u in zip(mels, ref_of)]
        frame_s = 1.0 / mel.frames_per_second
        dur_err = [abs(m.shape[-1] - ref_mels[u.id].shape[-1]) * frame_s for m, u in zip(mels, ref_of)]
        dur_rel = [e / (ref_mels[u.id].shape[-1] * frame_s) for e, u in zip(dur_err, ref_of)]

        first_stage = self._first_stage(pipeline, ref_mels, recognizer, vocoder, mel.sample_rate)
        details = [
            {"prompt": p, "heard": " ".join(h), "mcd_mel_db": c, "duration_error_s": d}
            for p, h, c, d in zip(out.prompts, heard, mcd, dur_err)
        ]
        return {
            "word_accuracy": word_accuracy(words, heard),
            "sequence_accuracy": float(np.mean([w == h for w, h in zip(words, heard)])),
            "reference_word_accuracy": word_accuracy(
                [u.normalized_text.split() for u in self.heldout], heard_refs
            ),
            "resynthesis_word_accuracy": word_accuracy(
                [u.normalized_text.split() for u in self.heldout], heard_resynth
            ),
            "mcd_mel_db": float(np.mean(mcd)),
            "duration_error_s": float(np.mean(dur_err)),
            "duration_error_rel": float(np.mean(dur_rel)),
            "rtf": synthesis_s / audio_s,
            "rtf_device": str(pipeline.device),
            "num_prompts": len(plan.prompts),
            "num_samples": len(audio),
            "sampler": plan.sampling["sampler"],
            "steps": plan.sampling["steps"],
            "temperature": self.temperature
            if self.temperature is not None
            else pipeline.config.sample.get("temperature", 1.0),
            "length_scale": self.length_scale,
            "vocoder": writer.vocoder_name,
            **first_stage,
            "_details": {"samples": details},
        }

    def _first_stage(
        self,
        pipeline: DiffusionPipeline,
        ref_mels: dict[str, torch.Tensor],
        recognizer: Any,
        vocoder: Any,
        rate: int,
    ) -> dict[str, float]:
        """The ceiling a learned encoder (``--encoder vae``) sets: the held-out recordings' mels
        ``[n_mels, T]`` encoded, decoded, vocoded and heard (``first_stage_word_accuracy``), and their
        MCD-mel to the originals. Empty for encoders that learn nothing (``identity``)."""
        encoder = pipeline.model.encoder
        if not encoder.trainable:
            return {}
        with torch.no_grad():
            through = {
                key: encoder.decode(encoder.encode(m[None].to(pipeline.device))).float().cpu()[0]
                for key, m in ref_mels.items()
            }
        heard = [recognizer(vocoder(through[u.id]), rate) for u in self.heldout]
        return {
            "first_stage_word_accuracy": word_accuracy(
                [u.normalized_text.split() for u in self.heldout], heard
            ),
            "first_stage_mcd_mel_db": float(
                np.mean([mcd_mel(mel_cepstra(through[k]), mel_cepstra(m)) for k, m in ref_mels.items()])
            ),
        }

    def picture(
        self, pipeline: DiffusionPipeline, out: Any, plan: Plan, metrics: dict[str, Any], out_dir: Path
    ) -> None:
        """The first ``keep_wavs`` WAVs (and a PNG of their mels) with the run's writer."""
        if self.keep_wavs <= 0:
            return  # no WAVs wanted (an empty PNG cannot be drawn)
        keep = slice(0, self.keep_wavs)
        lengths = plan.context["lengths"]
        plan.context["writer"].write_samples(
            out.samples[keep], out.prompts[keep], out_dir / "samples.wav", lengths=lengths[keep]
        )
