"""Isolated-word recognition by the DTW-nearest template cut from a corpus's own recordings."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from polydiff_tts.audio.io import read_audio
from polydiff_tts.data.metadata import Utterance
from polydiff_tts.evaluation.dtw import pairwise_distances
from polydiff_tts.evaluation.features import FEATURE_RATE, CepstralFeatures


def dtw_cost(query: np.ndarray, template: np.ndarray) -> float:
    """Mean local distance along the best alignment of ``query [N, D]`` to ``template [M, D]``:
    each query frame advances the template by 0, 1 or 2 frames (rows vectorised); taken in both
    directions (the lower), so either may be up to twice as long as the other."""
    return min(_one_way(query, template), _one_way(template, query))


def _one_way(a: np.ndarray, b: np.ndarray) -> float:
    cost = pairwise_distances(a, b)
    acc = np.full(len(b), np.inf)
    acc[0] = cost[0, 0]
    for i in range(1, len(a)):
        prev = acc
        best = prev.copy()
        best[1:] = np.minimum(best[1:], prev[:-1])
        best[2:] = np.minimum(best[2:], prev[:-2])
        acc = best + cost[i]
    return float(acc[-1] / len(a))


def is_word_list(texts: Sequence[str], max_vocabulary: int = 50) -> bool:
    """True when every text is one word and there are at most ``max_vocabulary`` distinct ones."""
    words = [t.strip().lower() for t in texts]
    return all(w and len(w.split()) == 1 for w in words) and len(set(words)) <= max_vocabulary


def speaker_of(uid: str, pattern: str | None) -> str | None:
    """The speaker named by ``pattern``'s first group in the id (None: no pattern or no match)."""
    if pattern is None:
        return None
    match = re.search(pattern, uid)
    return match.group(1) if match and match.groups() else None


@dataclass
class Template:
    word: str
    speaker: str | None
    features: np.ndarray


class WordTemplates:
    """Templates of each word cut from training recordings (at most ``per_word`` per word, spread
    over speakers) and the DTW-nearest one as recogniser.

    Args:
        utterances: Training recordings of single words.
        per_word: Templates kept per word.
        speaker_pattern: Regular expression whose first group is the speaker in an utterance id;
            with it, :meth:`recognise` can leave out the speaker being recognised.
    """

    def __init__(
        self, utterances: Sequence[Utterance], per_word: int = 6, speaker_pattern: str | None = None
    ):
        self.features = CepstralFeatures()
        by_word: dict[str, list[Utterance]] = {}
        for u in utterances:
            by_word.setdefault(u.normalized_text.strip().lower(), []).append(u)
        self.templates: list[Template] = []
        for word, utts in sorted(by_word.items()):
            # round-robin over speakers so the templates cover as many voices as possible
            groups: dict[str | None, list[Utterance]] = {}
            for u in utts:
                groups.setdefault(speaker_of(u.id, speaker_pattern), []).append(u)
            chosen: list[Utterance] = []
            queues = list(groups.values())
            while len(chosen) < per_word and any(queues):
                for q in queues:
                    if q and len(chosen) < per_word:
                        chosen.append(q.pop(0))
            for u in chosen:
                feats = self.features(read_audio(u.audio_path, FEATURE_RATE), FEATURE_RATE)
                self.templates.append(Template(word, speaker_of(u.id, speaker_pattern), feats))
        self.vocabulary = sorted(by_word)

    def recognise(self, audio, sample_rate: int, exclude_speaker: str | None = None) -> str:
        """The word of the nearest template (leaving out ``exclude_speaker``'s templates)."""
        feats = self.features(audio, sample_rate)
        if len(feats) < 2:
            return ""
        pool = [t for t in self.templates if exclude_speaker is None or t.speaker != exclude_speaker]
        costs = [dtw_cost(feats, t.features) for t in pool]
        return pool[int(np.argmin(costs))].word if costs else ""
