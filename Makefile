# Set-up is two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-all lint eval sweep bench train clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m hfstream demo --out out/demo

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ''

lint: $(STAMP)
	$(VENV)/bin/ruff check hfstream sim tests examples
	$(VENV)/bin/ruff format --check hfstream sim tests examples

DATA ?= ../shared/data/photos
eval: $(STAMP)
	$(PY) -m hfstream.eval $(DATA)/val --out out/eval

# Loss sweep: hfstream against JPEG/WebP/AVIF over Bernoulli and Gilbert-Elliott loss.
sweep: $(STAMP)
	$(PY) -m sim.sweep $(DATA)/val --out out/sweep

# Transport numbers: header overhead, preview and frame latency, aiortc delivery, rate control.
bench: $(STAMP)
	$(PY) -m hfstream.bench_transport

# The default model, stage by stage (each resumes from runs/default/STAGE.ckpt).
train: $(STAMP)
	$(PY) -m hfstream.train continuous --data $(DATA)/train
	$(PY) -m hfstream.train tokenizer --data $(DATA)/train
	$(PY) -m hfstream.train correction --data $(DATA)/train
	$(PY) -m hfstream.train predictor --data $(DATA)/train
	$(PY) -m hfstream.train export --data $(DATA)/train

clean:
	rm -rf out .pytest_cache
