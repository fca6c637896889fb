"""``polydiff evaluate`` for a TTS run on its own corpus (``ljspeech`` layout): the held-out texts
as prompts, the real held-out recordings as references, templates cut from the training recordings.

Numbers (each explained in ``metrics.json``):

* ``mcd_mel_db``, ``duration_error_s`` / ``_rel``: against the real recording of the same text;
* ``prosody``: F0 (through the run's vocoder, for generated and for real mels alike, and from the
  real audio) and frame-energy statistics;
* ``intelligibility`` (a small vocabulary of isolated words only): the DTW-nearest word template;
* the own-data judges of the core on fixed-length mels: caption classifier, Frechet distance,
  memorisation.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from polydiff.errors import ConfigError
from polydiff.evaluation.evaluator import OwnDataEvaluator
from polydiff.evaluation.judge import OwnDataJudge
from polydiff.evaluation.report import grey_image, write_report
from polydiff_tts.audio.io import read_audio
from polydiff_tts.data.metadata import Utterance
from polydiff_tts.evaluation.features import mel_cepstra
from polydiff_tts.evaluation.metrics import mcd_mel
from polydiff_tts.evaluation.prosody import energy_stats, f0_stats, f0_track
from polydiff_tts.evaluation.words import WordTemplates, is_word_list, speaker_of

if TYPE_CHECKING:
    from polydiff.pipeline import DiffusionPipeline

SPEECH_EXPLANATIONS = {
    "mcd_mel_db": (
        "MCD-mel in dB: the DCT of generated log-mels against the real held-out recording of the same "
        "text, aligned by DTW (frames of silence included). 'samples' for generated speech; "
        "'real_other_recording' between two real recordings of one text where the corpus has them "
        "(another take, possibly another speaker: how far apart real speech of a text lies); lower is "
        "closer. Not comparable with published MCD (mel-cepstra of a vocoder analysis)."
    ),
    "duration": (
        "|generated - real| length of each sample against the real recording of its text, in "
        "seconds and relative to the real length; 'real_other_recording_error_s' the same between two "
        "real recordings of one text."
    ),
    "prosody": (
        "F0 (autocorrelation pitch over voiced frames: mean, spread in Hz and voiced share) and frame "
        "energy (dB from the log-mel power: mean, spread, dynamic range) of generated and real speech. "
        "'real_vocoded' passes the real mels through the run's vocoder as the samples are, so its "
        "F0 is the one to compare with; 'real_audio' is the recording itself."
    ),
    "intelligibility": (
        "Isolated-word recognition: each utterance is read as the word of its nearest template "
        "(DTW on cepstra) among recordings cut from the corpus's own training split. 'samples' is the "
        "share of generated samples read as their prompt, 'real_held_out' the same for the real "
        "held-out recordings, recognised with templates of other speakers only when speakers are "
        "known (option speaker_pattern): the ceiling. Generated samples have no speaker and are read "
        "with all templates. 'chance' is 1 / vocabulary."
    ),
}


class CorpusEvaluator(OwnDataEvaluator):
    """Judges a TTS run by its own corpus (see the module docstring).

    Args:
        max_prompts: Held-out utterances used as prompts (their recordings are the references).
        length_scale, temperature: Passed to the pipeline (temperature default: the run's).
        templates_per_word: Word templates per word for the intelligibility check.
        speaker_pattern: Regular expression whose first group is the speaker in an utterance id
            (e.g. ``'^[0-9]+_([a-z]+)_'`` for ``3_jackson_12``); without it speakers are unknown.
        max_vocabulary: Largest vocabulary of isolated words the template check accepts.
        max_real_words: Real held-out recordings read for the intelligibility ceiling.
        frames: Mel frames of the judges' fixed-length items (default: the 90th percentile of the
            training lengths).
        keep_wavs: Generated WAVs written next to ``metrics.json``.
        judge options: Those of :class:`~polydiff.evaluation.evaluator.OwnDataEvaluator`
            (``classifier_steps`` defaults to 1500 here).
    """

    name = "tts-intelligibility (own corpus)"

    def __init__(
        self,
        max_prompts: int = 24,
        length_scale: float = 1.0,
        temperature: float | None = None,
        templates_per_word: int = 6,
        speaker_pattern: str | None = None,
        max_vocabulary: int = 50,
        max_real_words: int = 200,
        frames: int | None = None,
        keep_wavs: int = 8,
        **judge_options: Any,
    ) -> None:
        # mels are harder to read than pictures: the classifier trains longer by default (measured on
        # spoken digits: 400 steps read 65% of real held-out words, 1500 steps 84%)
        judge_options.setdefault("classifier_steps", 1500)
        super().__init__(max_prompts=max_prompts, write_samples=0, **judge_options)
        self.length_scale, self.temperature = length_scale, temperature
        self.templates_per_word, self.speaker_pattern = templates_per_word, speaker_pattern
        self.max_vocabulary, self.frames, self.keep_wavs = max_vocabulary, frames, keep_wavs
        self.max_real_words = max_real_words
        self.pad_value = 0.0

    def item_tensor(self, x: Tensor, length: int | None = None) -> Tensor:
        """A log-mel ``[n_mels, T]`` (valid up to ``length``) -> ``[n_mels, frames]``: the start,
        padded with the mel floor."""
        x = x.detach().float().cpu()[:, : length or x.shape[-1]]
        frames = self.frames or x.shape[-1]
        if x.shape[-1] >= frames:
            return x[:, :frames]
        return torch.nn.functional.pad(x, (0, frames - x.shape[-1]), value=self.pad_value)

    def to_image(self, x: Tensor) -> Tensor:
        return grey_image(x.flip(0))  # low frequencies at the bottom

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
        from polydiff_tts.writers.wav import WavWriter

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        cfg = pipeline.config
        writer = pipeline.writer()
        if not isinstance(writer, WavWriter):
            raise ConfigError(
                f"the corpus evaluator needs the 'wav' writer (it vocodes with the run's mel settings); "
                f"this run uses {type(writer).__name__}"
            )
        build = pipeline.registry.build
        train_set = build("dataset", cfg.dataset.name, split="train", **cfg.dataset.options)
        eval_set = build("dataset", cfg.dataset.name, split="eval", **cfg.dataset.options)
        mel_cfg = writer.mel
        self.pad_value = float(mel_cfg.log_min)
        count = min(self.max_prompts, len(eval_set)) if self.max_prompts else len(eval_set)
        refs = [eval_set[i] for i in range(count)]
        prompts = [r["text"] for r in refs]

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
        mels = [m[:, :n].float().cpu() for m, n in zip(out.samples, lengths)]
        ref_of = [refs[i // num_per_prompt] for i in range(len(mels))]
        fps = mel_cfg.frames_per_second

        metrics: dict[str, Any] = {
            "evaluator": self.name,
            "dataset": cfg.dataset.name,
            "held_out": f"the corpus's eval split: {count} of {len(eval_set)} utterances as prompts",
            "num_per_prompt": num_per_prompt,
            "sampler": sampler,
            "steps": steps,
            "guidance": guidance,
            "seed": seed,
            "num_samples": len(mels),
        }
        metrics.update(self._references(mels, ref_of, refs, fps))
        vocoder = writer.vocoder
        gen_audio = [vocoder(m) for m in mels]
        real_mels = [r["x"].float() for r in refs]
        metrics["prosody"] = {
            "samples": {
                **f0_stats([f0_track(a, mel_cfg.sample_rate) for a in gen_audio]),
                **energy_stats(mels),
            },
            "real_vocoded": {
                **f0_stats([f0_track(vocoder(m), mel_cfg.sample_rate) for m in real_mels]),
                **energy_stats(real_mels),
            },
            "real_audio": f0_stats(
                [f0_track(read_audio(r["wav_path"], mel_cfg.sample_rate), mel_cfg.sample_rate) for r in refs]
            ),
        }
        notes: list[str] = []
        train_texts = train_set.captions
        if is_word_list(train_texts + prompts, self.max_vocabulary):
            metrics["intelligibility"] = self._intelligibility(
                train_set, eval_set.utterances[: self.max_real_words], gen_audio, out.prompts, mel_cfg
            )
            if self.speaker_pattern is None:
                notes.append(
                    "speakers are unknown (no speaker_pattern): the real held-out recordings were "
                    "recognised with templates that may include their own speaker, so their ceiling "
                    "may be optimistic"
                )
        else:
            vocabulary = len({w for t in train_texts for w in t.lower().split()})
            notes.append(
                f"intelligibility not measured: the corpus is not a small vocabulary of isolated words "
                f"({len(set(train_texts))} distinct training texts, {vocabulary} words); judging what "
                "is said needs a speech recogniser, which polydiff does not download"
            )

        # the core's judges on fixed-length mels
        self.frames = self.frames or int(
            np.percentile([train_set[i]["x"].shape[-1] for i in self.item_indices(len(train_set))], 90)
        )
        train = self._items(train_set)
        held = self._items(eval_set)
        judge = OwnDataJudge(
            train,
            held,
            steps=self.classifier_steps,
            width=self.classifier_width,
            shift=self.shift,
            seed=self.seed,
            device=getattr(pipeline, "device", "cpu"),
        )
        samples = torch.stack([self.item_tensor(m) for m in mels])
        judged = judge.score(samples, list(out.prompts), pairs=self.pairs)
        judged.pop("num_samples", None)
        metrics.update(judged)
        metrics["judge_frames"] = self.frames
        if not judge.conditional:
            notes.append(
                "no caption accuracy: no caption set or words a classifier could learn; the Frechet "
                "distance uses the features of a flip classifier"
            )
        self.pictures(judge, samples, list(out.prompts), judged.get("_pairs", []), out_dir)
        keep = slice(0, self.keep_wavs)
        if self.keep_wavs:
            writer.write_samples(
                out.samples[keep], out.prompts[keep], out_dir / "samples.wav", lengths=lengths[keep]
            )
        metrics["seconds"] = round(time.perf_counter() - start, 1)
        metrics["explanations"] = {
            k: v for k, v in SPEECH_EXPLANATIONS.items() if k in metrics or k == "duration"
        }
        return write_report(metrics, out_dir, notes)

    def _references(
        self, mels: list[Tensor], ref_of: list[dict[str, Any]], refs: list[dict[str, Any]], fps: float
    ) -> dict[str, Any]:
        """MCD-mel and duration error of each sample against the real recording of its text, and
        the same between two real takes of one text where the corpus has them."""
        mcd = [mcd_mel(mel_cepstra(m), mel_cepstra(r["x"])) for m, r in zip(mels, ref_of)]
        dur = [abs(m.shape[-1] - r["x"].shape[-1]) / fps for m, r in zip(mels, ref_of)]
        rel = [d / (r["x"].shape[-1] / fps) for d, r in zip(dur, ref_of)]
        out: dict[str, Any] = {
            "mcd_mel_db": {"samples": float(np.mean(mcd))},
            "duration": {"error_s": float(np.mean(dur)), "error_rel": float(np.mean(rel))},
        }
        by_text: dict[str, list[dict[str, Any]]] = {}
        for r in refs:
            by_text.setdefault(r["text"], []).append(r)
        takes = [(a, b) for group in by_text.values() for a, b in zip(group, group[1:])]
        if takes:
            out["mcd_mel_db"]["real_other_recording"] = float(
                np.mean([mcd_mel(mel_cepstra(a["x"]), mel_cepstra(b["x"])) for a, b in takes])
            )
            out["duration"]["real_other_recording_error_s"] = float(
                np.mean([abs(a["x"].shape[-1] - b["x"].shape[-1]) / fps for a, b in takes])
            )
        return out

    def _intelligibility(
        self,
        train_set: Any,
        refs: list[Utterance],
        audio: list[Tensor],
        prompts: list[str],
        mel_cfg: Any,
    ) -> dict[str, Any]:
        templates = WordTemplates(train_set.utterances, self.templates_per_word, self.speaker_pattern)
        rate = mel_cfg.sample_rate
        heard = [templates.recognise(a, rate) for a in audio]
        heard_real = [
            templates.recognise(read_audio(u.audio_path, rate), rate, speaker_of(u.id, self.speaker_pattern))
            for u in refs
        ]
        wanted = [p.strip().lower() for p in prompts]
        return {
            "samples": float(np.mean([h == w for h, w in zip(heard, wanted)])),
            "real_held_out": float(
                np.mean([h == u.normalized_text.strip().lower() for h, u in zip(heard_real, refs)])
            ),
            "num_real_held_out": len(refs),
            "chance": 1.0 / max(1, len(templates.vocabulary)),
            "vocabulary": len(templates.vocabulary),
            "templates": len(templates.templates),
            "heard": [{"prompt": p, "heard": h} for p, h in zip(prompts, heard)][:32],
        }
