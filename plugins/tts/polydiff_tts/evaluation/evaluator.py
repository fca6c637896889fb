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

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from polydiff.errors import ConfigError
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


class IntelligibilityEvaluator(Evaluator):
    """Generates the held-out sequences and scores them.

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
        self.own_corpus = {**(own_corpus or {}), **corpus_options}
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
        if not self.explicit_corpus and pipeline.config.dataset.name != "spoken-digits":
            from polydiff_tts.evaluation.corpus import CorpusEvaluator

            options = {
                "length_scale": self.length_scale,
                "temperature": self.temperature,
                "keep_wavs": self.keep_wavs,
                **({"max_prompts": self.max_prompts} if self.max_prompts is not None else {}),
                **self.own_corpus,
            }
            try:
                judge = CorpusEvaluator(**options)
            except TypeError as exc:
                raise ConfigError(f"tts-intelligibility option 'own_corpus': {exc}") from exc
            return judge.evaluate(
                pipeline,
                out_dir,
                num_per_prompt=num_per_prompt,
                sampler=sampler,
                steps=steps,
                guidance=guidance,
                seed=seed,
            )
        if self.own_corpus:
            raise ConfigError(
                f"tts-intelligibility options {sorted(self.own_corpus)} apply to runs on your own corpus; "
                "this run is judged on the digit sequences, which take none of them"
            )
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        writer = pipeline.writer()
        if not isinstance(writer, WavWriter):
            raise ConfigError(
                "tts-intelligibility needs the 'wav' writer (it vocodes with the checkpoint's "
                f"mel settings); the checkpoint uses {type(writer).__name__}"
            )
        mel: MelConfig = writer.mel
        vocoder = writer.vocoder
        recognizer = TemplateRecognizer(self.references, self.word_penalty)
        prompts = [normalize_text(u.normalized_text) for u in self.heldout]
        unknown = {w for p in prompts for w in p.split()} - recognizer.vocabulary
        if unknown:
            raise ConfigError(
                f"held-out words {sorted(unknown)} have no reference recording in references.csv"
            )

        start = time.perf_counter()
        out = pipeline(
            prompts,
            num_per_prompt=num_per_prompt,
            sampler=sampler,
            steps=steps,
            guidance=guidance,
            seed=seed,
            temperature=self.temperature,
            length_scale=self.length_scale,
        )
        lengths = out.lengths or [out.samples.shape[-1]] * len(out.prompts)
        mels = [m[:, :n] for m, n in zip(out.samples, lengths)]
        audio = [vocoder(m) for m in mels]
        synthesis_s = time.perf_counter() - start
        audio_s = sum(len(a) for a in audio) / mel.sample_rate

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

        metrics: dict[str, Any] = {
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
            "num_prompts": len(prompts),
            "num_samples": len(audio),
            "sampler": sampler,
            "steps": steps,
            "temperature": self.temperature
            if self.temperature is not None
            else pipeline.config.sample.get("temperature", 1.0),
            "length_scale": self.length_scale,
            "vocoder": writer.vocoder_name,
        }
        keep = slice(0, self.keep_wavs)
        writer.write_samples(
            out.samples[keep], out.prompts[keep], out_dir / "samples.wav", lengths=lengths[keep]
        )
        details = [
            {"prompt": p, "heard": " ".join(h), "mcd_mel_db": c, "duration_error_s": d}
            for p, h, c, d in zip(out.prompts, heard, mcd, dur_err)
        ]
        (out_dir / "metrics.json").write_text(json.dumps({**metrics, "samples": details}, indent=2) + "\n")
        return metrics
