"""Generate the embedded ``spoken-digits`` corpus (digit sequences) with espeak-ng.

The result is shipped inside the package (``polydiff_tts/corpora/digits``) in the LJSpeech
layout, so tests, the demo and CI never need espeak-ng::

    metadata.csv     training sequences       id|text|normalized_text  ("d0001|3 1 4|three one four")
    heldout.csv      evaluation sequences     (never spoken in metadata.csv)
    references.csv   one digit per recording  (templates of the intelligibility evaluator)
    wavs/ID.flac     16 kHz mono FLAC, peak-normalised, silence trimmed to 50 ms,
                     quantised to 9 bits (FLAC stores the unused low bits for free)

Re-generate (needs ``apt-get install espeak-ng``; the output is deterministic for a given
espeak-ng version and seed)::

    python plugins/tts/scripts/make_digits_corpus.py --out plugins/tts/polydiff_tts/corpora/digits
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: espeak-ng voices: three accents of a male voice, so the corpus varies but stays learnable.
VOICES = ("en-us", "en-gb-x-rp", "en-029")
RATES = (145, 165, 185)  # words per minute
PITCHES = (40, 50, 60)  # espeak-ng -p (0..99)
SAMPLE_RATE = 16000
BITS = 9
MARGIN_S = 0.05
SILENCE_THRESHOLD = 0.02


@dataclass(frozen=True)
class Utterance:
    id: str
    digits: tuple[int, ...]
    voice: str
    rate: int
    pitch: int

    @property
    def text(self) -> str:
        return " ".join(str(d) for d in self.digits)

    @property
    def normalized_text(self) -> str:
        return " ".join(DIGIT_WORDS[d] for d in self.digits)


def synthesize(utt: Utterance, workdir: Path) -> np.ndarray:
    """Speak ``utt`` with espeak-ng; returns float32 mono audio at :data:`SAMPLE_RATE`."""
    wav = workdir / f"{utt.id}.wav"
    subprocess.run(
        [
            "espeak-ng",
            "-v",
            utt.voice,
            "-s",
            str(utt.rate),
            "-p",
            str(utt.pitch),
            "-w",
            str(wav),
            utt.normalized_text,
        ],
        check=True,
    )
    audio, rate = sf.read(wav, dtype="float64", always_2d=True)
    audio = audio.mean(axis=1)
    audio = resample_poly(audio, SAMPLE_RATE, rate)
    loud = np.nonzero(np.abs(audio) > SILENCE_THRESHOLD * np.abs(audio).max())[0]
    margin = int(MARGIN_S * SAMPLE_RATE)
    audio = audio[max(0, loud[0] - margin) : loud[-1] + margin]
    audio = 0.9 * audio / np.abs(audio).max()
    step = 2.0 ** (BITS - 1)
    return (np.round(audio * step) / step).astype(np.float32)


def random_sequences(
    rng: random.Random, count: int, lengths: tuple[int, ...], exclude: set[tuple[int, ...]]
) -> list[tuple[int, ...]]:
    """``count`` distinct digit sequences with lengths drawn from ``lengths``, none in ``exclude``."""
    out: list[tuple[int, ...]] = []
    seen = set(exclude)
    while len(out) < count:
        seq = tuple(rng.randrange(10) for _ in range(rng.choice(lengths)))
        if seq not in seen:
            seen.add(seq)
            out.append(seq)
    return out


def build_corpus(train_count: int, heldout_count: int, seed: int) -> dict[str, list[Utterance]]:
    """Plan every utterance: held-out sequences first, so training never speaks one of them."""
    rng = random.Random(seed)
    heldout = random_sequences(rng, heldout_count, (3, 4), exclude=set())
    train = random_sequences(rng, train_count, (1, 2, 3, 3, 4, 4), exclude=set(heldout))

    def voiced(prefix: str, seqs: list[tuple[int, ...]], vary: bool) -> list[Utterance]:
        utts = []
        for i, seq in enumerate(seqs):
            voice = VOICES[i % len(VOICES)]
            rate, pitch = (rng.choice(RATES), rng.choice(PITCHES)) if vary else (165, 50)
            utts.append(Utterance(f"{prefix}{i + 1:04d}", seq, voice, rate, pitch))
        return utts

    references = [
        Utterance(f"ref_{DIGIT_WORDS[d]}_{v}", (d,), voice, rate, 50)
        for d in range(10)
        for v, (voice, rate) in enumerate((voice, rate) for voice in VOICES for rate in (145, 185))
    ]
    return {
        "metadata.csv": voiced("train", train, vary=True),
        "heldout.csv": voiced("heldout", heldout, vary=False),
        "references.csv": references,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "polydiff_tts/corpora/digits")
    parser.add_argument("--train", type=int, default=240, help="training sequences")
    parser.add_argument("--heldout", type=int, default=30, help="held-out evaluation sequences")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed: apt-get install espeak-ng")

    corpus = build_corpus(args.train, args.heldout, args.seed)
    if args.out.exists():
        shutil.rmtree(args.out)
    (args.out / "wavs").mkdir(parents=True)
    seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for filename, utts in corpus.items():
            rows = []
            for utt in utts:
                audio = synthesize(utt, Path(tmp))
                seconds += len(audio) / SAMPLE_RATE
                sf.write(
                    args.out / "wavs" / f"{utt.id}.flac", audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16"
                )
                rows.append(f"{utt.id}|{utt.text}|{utt.normalized_text}\n")
            (args.out / filename).write_text("".join(rows))
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    version = version.split("Data at")[0].strip()
    (args.out / "SOURCE.txt").write_text(
        f"Generated by plugins/tts/scripts/make_digits_corpus.py (seed {args.seed}) with {version}.\n"
        f"Voices {', '.join(VOICES)}; rates {RATES} wpm; pitches {PITCHES}; {SAMPLE_RATE} Hz mono, "
        f"{BITS}-bit FLAC.\n"
    )
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(
        f"wrote {sum(map(len, corpus.values()))} utterances, {seconds:.0f} s of audio, "
        f"{size / 1e6:.2f} MB to {args.out}"
    )


if __name__ == "__main__":
    main()
