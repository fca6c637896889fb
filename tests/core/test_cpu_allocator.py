"""``polydiff.allocator``: ``keep`` stops glibc from handing a step's freed memory back to the
system (the page faults of the next step), ``system`` leaves it, bad values fail in one line.

The setting is process-wide and cannot be undone, so each measurement runs in its own
interpreter.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from polydiff import allocator, configure_cpu_allocator
from polydiff.errors import ConfigError

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's"
)

# Five "steps" that allocate 30 activations of 4 MiB, touch every page and free them all: what a
# training step does to the heap. Prints the minor page faults of the last eight steps.
STEPS = """
import resource, sys, torch
from polydiff.allocator import configure_cpu_allocator
print(configure_cpu_allocator(sys.argv[1]), file=sys.stderr)
def step():
    xs = [torch.empty(1 << 20).fill_(1.0) for _ in range(30)]
    del xs
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", STEPS, mode], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    return int(out.stdout.strip()), out.stderr.strip().splitlines()[-1]


@glibc
def test_keep_reuses_freed_memory_where_system_faults_it_in_again() -> None:
    kept, kept_mode = _faults("keep")
    system, system_mode = _faults("system")
    assert (kept_mode, system_mode) == ("keep", "system")
    step = 30 * (4 << 20) // 4096  # pages of one step's activations
    assert system > 0.9 * step, system  # glibc trimmed the heap: at least a step's pages came back
    # kept: eight steps fault in under half a step's pages (measured 1-9 of the 4 MiB activations,
    # as the heap shifts around the interpreter's own allocations; trimmed: 1-8 whole steps)
    assert kept < step // 2, kept


def test_mode_comes_from_the_argument_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(allocator.ENV, raising=False)
    assert allocator.parse(None) == "keep"
    monkeypatch.setenv(allocator.ENV, " System ")
    assert allocator.parse(None) == "system"
    assert allocator.parse("keep") == "keep"


def test_a_bad_mode_is_one_line_naming_the_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(allocator.ENV, "jemalloc")
    with pytest.raises(ConfigError) as err:
        configure_cpu_allocator()
    message = str(err.value)
    assert "POLYDIFF_CPU_ALLOCATOR='jemalloc'" in message and "keep, system" in message
    assert "\n" not in message
    with pytest.raises(ConfigError, match="'off' is not a mode"):
        configure_cpu_allocator("off")


def test_the_cli_applies_it_and_rejects_a_bad_value_in_one_line(tmp_path) -> None:  # noqa: ANN001
    env = dict(os.environ, POLYDIFF_CPU_ALLOCATOR="nope")
    out = subprocess.run(
        [sys.executable, "-m", "polydiff", "train", "image", "--steps", "2", "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and "POLYDIFF_CPU_ALLOCATOR='nope' is not a mode; use one of keep, system" in lines[0]
    )
    assert not (tmp_path / "r").exists()  # nothing started


def test_model_commands_configure_it_and_others_do_not(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    from polydiff.cli.main import main

    calls: list[object] = []
    monkeypatch.setattr(
        allocator, "configure_cpu_allocator", lambda value=None: calls.append(value) or "keep"
    )
    assert main(["plugins"]) == 0
    assert calls == []
    assert main(["train", "image", "--steps", "0", "--out", str(tmp_path / "r")]) == 2  # refused after set-up
    assert calls == [None]  # from POLYDIFF_CPU_ALLOCATOR, default keep
