"""The one page that shows a command's pictures, clips and sounds."""

from __future__ import annotations

import re

from polydiff.report_page import ReportPage


def test_page_embeds_pictures_and_sounds_by_relative_path(tmp_path):
    (tmp_path / "image").mkdir()
    png = tmp_path / "image" / "samples.png"
    png.write_bytes(b"\x89PNG")
    wav = tmp_path / "tts" / "a <b>.wav"
    wav.parent.mkdir()
    wav.write_bytes(b"RIFF")
    page = ReportPage("demo & more", "intro")
    page.section("image", [png, tmp_path / "image" / "missing.png"], scores={"all": 0.91234, "note": "x<y"})
    page.section("tts", [wav])
    out = page.write(tmp_path / "index.html")
    text = out.read_text()
    assert "<img src='image/samples.png'" in text
    assert "<audio controls preload='none' src='tts/a &lt;b&gt;.wav'>" in text
    assert "missing.png" not in text  # files that do not exist are left out
    assert "<td class='num'>0.912</td>" in text and "x&lt;y" in text
    assert "<title>demo &amp; more</title>" in text
    assert not re.search(r"https?://", text)  # nothing loaded from the network
    assert not list(tmp_path.glob(".*.tmp"))


def test_demo_writes_index_html(toy_registry, monkeypatch, tmp_path, capsys):
    import polydiff.plugins as plugins
    from polydiff.cli.main import main

    monkeypatch.setattr(plugins, "get_registry", lambda: toy_registry)
    assert main(["demo", "toy", "--out", str(tmp_path), "--steps", "4"]) == 0
    page = tmp_path / "index.html"
    assert f"open {page} in a browser" in capsys.readouterr().out
    text = page.read_text()
    assert "<h2>toy</h2>" in text and "final loss" in text
    linked = re.findall(r"href='([^']+)'", text)
    assert any(s.startswith("toy/samples") for s in linked)
    assert all((tmp_path / s).is_file() for s in linked)
