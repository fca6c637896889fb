"""The LJSpeech-layout reader: quoted text, missing files, bad rows; items and batches."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from polydiff.errors import ConfigError, DataError
from polydiff_tts.data.ljspeech import LJSpeechDataset
from polydiff_tts.data.metadata import read_metadata


def make_corpus(root, rows, audio_ids=None, rate=22050, seconds=0.3):
    (root / "wavs").mkdir(parents=True, exist_ok=True)
    (root / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    rng = np.random.default_rng(0)
    for uid in audio_ids if audio_ids is not None else [r.split("|")[0] for r in rows]:
        sf.write(root / "wavs" / f"{uid}.wav", 0.1 * rng.standard_normal(int(rate * seconds)), rate)
    return root


def test_quotes_are_kept_literally(tmp_path):
    make_corpus(
        tmp_path,
        [
            # fields are never quoted: a '|' inside quotes still separates
            'LJ001-0001|He said "stop|here" twice.|He said "stop here" twice.',
            'LJ001-0002|"Printing," he wrote|"printing," he wrote',
            "LJ001-0003|Only two fields",
        ],
    )
    with pytest.raises(DataError, match=r"line 1: expected 'id\|text\|normalized_text' .* got 4 fields"):
        read_metadata(tmp_path / "metadata.csv")
    make_corpus(
        tmp_path, ['LJ001-0002|"Printing," he wrote|"printing," he wrote', "LJ001-0003|Only two fields"]
    )
    rows = read_metadata(tmp_path / "metadata.csv")
    assert rows[0].text == '"Printing," he wrote' and rows[0].normalized_text == '"printing," he wrote'
    assert rows[1].normalized_text == "Only two fields"
    assert rows[1].line == 2 and rows[1].audio_path.name == "LJ001-0003.wav"


def test_missing_audio_names_the_row_and_the_files(tmp_path):
    make_corpus(tmp_path, ["a|one|one", "b|two|two"], audio_ids=["a"])
    with pytest.raises(
        DataError, match=r"metadata.csv, line 2: no audio for id 'b': looked for .*b.wav and .*b.flac"
    ):
        read_metadata(tmp_path / "metadata.csv")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a|one|one|extra", "got 4 fields"),
        ("a", "got 1 fields"),
        ("|text|text", "must not be empty"),
        ("b|one|one", "id 'b' repeats line 1"),
    ],
)
def test_bad_rows_are_reported_with_their_line(tmp_path, row, message):
    make_corpus(tmp_path, ["b|one|one", row], audio_ids=["a", "b"])
    with pytest.raises(DataError, match=f"line 2: .*{message}"):
        read_metadata(tmp_path / "metadata.csv")


def test_missing_metadata_and_corpus(tmp_path):
    with pytest.raises(DataError, match="metadata file .* does not exist"):
        read_metadata(tmp_path / "metadata.csv")
    with pytest.raises(DataError, match="does not exist"):
        LJSpeechDataset(path=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="--data-path"):
        LJSpeechDataset()


def test_dataset_items_splits_and_collate(tmp_path):
    make_corpus(tmp_path, [f"id{i}|Text {i}.|text {i}." for i in range(5)])
    (tmp_path / "wavs" / "id4.wav").unlink()
    sf.write(tmp_path / "wavs" / "id4.flac", np.zeros(8000), 16000)  # FLAC at another rate
    train = LJSpeechDataset("train", path=tmp_path, eval_size=2, mel="small", pad_multiple=8)
    held = LJSpeechDataset("eval", path=tmp_path, eval_size=2, mel="small")
    assert [u.id for u in train.utterances] == ["id0", "id1", "id2"]
    assert held.eval_prompts == train.eval_prompts == ["text 3.", "text 4."]
    item = train[0]
    assert item["x"].shape == (40, 4800 // 256 + 1)  # 0.3 s resampled from 22.05 kHz to the preset's 16 kHz
    assert item["text"] == "text 0." and item["id"] == "id0"
    assert held[1]["x"].shape == (40, 8000 // 256 + 1)
    assert train.collate([train[0], train[1]])["x"].shape == (
        2,
        40,
        24,
    )  # 19 frames padded to a multiple of 8
    batch = train.collate([train[0], held[1]])
    assert batch["x"].shape == (2, 40, 32)
    assert batch["mel_lengths"].tolist() == [19, 32]
    assert torch.equal(batch["mask"][:, 0].sum(1), batch["mel_lengths"].float())
    assert torch.all(batch["x"][0, :, 19:] == train.mel_config.log_min)  # padded with silence
    assert train.writer_options()["mel"]["n_mels"] == 40
