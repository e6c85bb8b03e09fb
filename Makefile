# Set-up is two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow test-all docs lint eval eval-graphics sweep video-sweep kernel bench bench-codec soak train clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m hfstream demo --out out/demo

# The fast suite (about 3-5 minutes on 2 cores; still runs the shipped model on small
# inputs), the tests marked slow, or both.
test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

test-all: $(STAMP)
	$(PY) -m pytest -q -m ''

lint: $(STAMP)
	$(VENV)/bin/ruff check hfstream sim tests examples docs
	$(VENV)/bin/ruff format --check hfstream sim tests examples docs

# The API reference from the docstrings (pdoc) in out/docs/; fails on a pdoc warning or a
# broken cross-reference.
docs: $(STAMP)
	$(PY) -W ignore::FutureWarning docs/api_docs.py --out out/docs

DATA ?= ../shared/data/photos
# $(call need_folder,FOLDER,HOW): stop with one line when a photo folder is missing.
need_folder = @test -d $(1) || { echo "make $@: no folder $(1) (photos are not in the \
repository): run make $@ $(2)" >&2; exit 2; }

eval: $(STAMP)
	$(call need_folder,$(DATA)/val,DATA=DIR where DIR/val holds images)
	$(PY) -m hfstream.eval $(DATA)/val --out out/eval

# The graphics set made in code (gradients, shapes, a diagram, text, a UI-like screen),
# scored like the photos, with VMAF.
eval-graphics: $(STAMP)
	$(PY) -m hfstream.media.graphics out/graphics
	$(PY) -m hfstream.eval out/graphics --vmaf --out out/eval-graphics

# Loss sweeps: hfstream against JPEG/WebP/AVIF (photos in IMAGES) and against VP8/H.264
# (a clip), over Bernoulli and Gilbert-Elliott loss. `make sweep IMAGES=dir` for any folder.
IMAGES ?= $(DATA)/val
sweep: $(STAMP)
	$(call need_folder,$(IMAGES),IMAGES=DIR of images)
	$(PY) -m sim.sweep $(IMAGES) --out out/sweep
	$(PY) -m sim.video_sweep --out out/video_sweep

video-sweep: $(STAMP)
	$(PY) -m sim.video_sweep --out out/video_sweep

# Real kernel loss (network namespaces + nftables; needs root, ip and nft).
kernel: $(STAMP)
	$(PY) -m sim.kernel --out out/kernel

# Transport numbers: header overhead, preview and frame latency, aiortc delivery, rate control.
bench: $(STAMP) bench-codec
	$(PY) -m hfstream.apps.bench_transport

# Codec speed: ms per step for a 768x512 frame on 1 and 2 threads, and hfstream's receive
# time over AVIF's and WebP's decode of the same frame (the bundled photo if SPEED_IMAGE
# is absent). Stop other heavy work first: the numbers are wall-clock times.
SPEED_IMAGE ?= $(DATA)/val/kphotoalbum_grand_canyon_1.png
bench-codec: $(STAMP)
	$(PY) -m hfstream.eval.speed $(if $(wildcard $(SPEED_IMAGE)),--image $(SPEED_IMAGE))

# Forged floods beside a keyed stream, then a long stream at 30 % loss, through the real
# receiver: RSS, containers, tasks, CPU per forged datagram (a few minutes; scale with
# SOAK_ARGS="--forged 1000000 --frames 10000").
SOAK_ARGS ?=
soak: $(STAMP)
	$(PY) -m sim.soak $(SOAK_ARGS)

# The default model, stage by stage (each resumes from runs/default/STAGE.ckpt).
train: $(STAMP)
	$(call need_folder,$(DATA)/train,DATA=DIR where DIR/train holds images)
	$(PY) -m hfstream.train continuous --data $(DATA)/train
	$(PY) -m hfstream.train tokenizer --data $(DATA)/train
	$(PY) -m hfstream.train predictor --data $(DATA)/train
	$(PY) -m hfstream.train correction --data $(DATA)/train
	$(PY) -m hfstream.train upsampler --data $(DATA)/train
	$(PY) -m hfstream.train refiner --data $(DATA)/train
	$(PY) -m hfstream.train export --data $(DATA)/train

clean:
	rm -rf out .pytest_cache
