# polydiff: `make demo` and `make test` are all anyone needs on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.polydiff-installed
TORCH  := torch==2.14.1 torchvision==0.29.1 torchaudio==2.11.0
PROJECTS := pyproject.toml plugins/image/pyproject.toml plugins/tts/pyproject.toml \
            plugins/video/pyproject.toml examples/third_party_plugin/pyproject.toml

.PHONY: all demo test lint format bench pretrained clean

all: test

$(STAMP): $(PROJECTS) Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e '.[dev]' -e plugins/image -e plugins/tts -e 'plugins/video[mp4]' \
		-e examples/third_party_plugin
	@touch $(STAMP)

# Train small models on embedded data for every modality; prints where the outputs are.
demo: $(STAMP)
	$(VENV)/bin/polydiff demo all

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(PY) bench/run_all.py

# Retrain every shipped pretrained model from scratch with the command in its card, evaluate it,
# keep fp16 when it scores no lower, copy it into its plugin's package and rewrite its card.
# One model: $(PY) scripts/make_pretrained.py NAME. Scratch files in runs/pretrained-build.
# On a shared machine: OMP_NUM_THREADS=1 nice -n 5 make pretrained.
pretrained: $(STAMP)
	$(PY) scripts/make_pretrained.py

clean:
	rm -rf $(VENV) runs .pytest_cache
