# Two entry points: `make demo` trains the default spec, `make test` runs the suite.
# Each creates .venv when it is missing and installs the project into it.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo bytecode test test-slow test-all lint docs bench bench-text bench-diffusion bench-gan bench-gmm bench-bgmm-parity bench-scale bench-startup bench-anomaly bench-impute bench-tstr bench-whole bench-flow-multiscale bench-gan-diffaugment bench-diffusion-solvers bench-vq-vae bench-disentanglement bench-vae-variants bench-vae-iaf-gap bench-diffusion-ode-gap bench-ddim-grid

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Byte-compile the package, as installing a wheel does. An editable install leaves that to
# the first import, which never happens where PYTHONDONTWRITEBYTECODE is set (containers,
# CI images): there every gencompile process compiled its ~150 modules again, 0.3-0.6 s of
# CPU per command and per test subprocess. Quick when nothing changed (stale files are
# redone; Python ignores a stale one anyway).
bytecode: $(STAMP)
	$(PY) -m compileall -q gencompile > /dev/null

demo: $(STAMP)
	$(VENV)/bin/gencompile train specs/vae_digits.yaml

# The default tier stays within minutes; the slow tier (whole processes, every family under
# a strategy) is marked `slow`. CI runs both. Each runs on every core (at most 4 workers,
# each a TensorFlow process), a test file's tests on one worker so that its trained
# fixtures are made once.
PARALLEL = -n auto --maxprocesses 4 --dist loadfile
test: bytecode
	$(PY) -m pytest -q -m "not slow" $(PARALLEL)

test-slow: bytecode
	$(PY) -m pytest -q -m slow $(PARALLEL)

test-all: test test-slow

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	$(PY) -m mypy --strict gencompile/spec gencompile/compiler

# The field tables of docs/spec.md, from the spec models (prose around them is kept).
docs: $(STAMP)
	$(PY) -m gencompile.spec.reference docs/spec.md

bench: $(STAMP)
	$(PY) benchmarks/vae_digits.py
	$(PY) benchmarks/flow_moons.py

# VAE posteriors, objectives and priors on the digits: IWAE NLL of each (60 epochs x 3 seeds).
bench-vae-variants: $(STAMP)
	$(PY) benchmarks/vae_variants.py

# The plain VAE's ELBO/IWAE gap per configuration and its IAF twin's NLL (60 epochs x 2 seeds).
bench-vae-iaf-gap: $(STAMP)
	$(PY) benchmarks/vae_iaf_gap.py

bench-text: $(STAMP)
	$(PY) benchmarks/charlm_text.py

bench-diffusion: $(STAMP)
	$(PY) benchmarks/diffusion_swissroll.py

# Fast samplers (DPM-Solver++, Euler, Heun, DDIM) vs 1000-step DDPM on the same weights.
bench-diffusion-solvers: $(STAMP)
	$(PY) benchmarks/diffusion_solvers.py

# The swiss roll's probability-flow ODE against DDPM, per trained model variant.
bench-diffusion-ode-gap: $(STAMP)
	$(PY) benchmarks/diffusion_ode_gap.py

# DDIM from T - 1 against DDIM from the solvers' clipped start, on cosine-schedule models.
bench-ddim-grid: $(STAMP)
	$(PY) benchmarks/ddim_grid.py

bench-gan: $(STAMP)
	$(PY) benchmarks/gan_toy.py

# The digits DCGAN on 10 % of the digits with and without DiffAugment and ADA (~20 min).
bench-gan-diffaugment: $(STAMP)
	$(PY) benchmarks/gan_diffaugment.py

# One EM iteration of a generated Gaussian mixture vs scikit-learn (n=400000, d=32, k=32);
# each with the machine's cores (--threads 1 for one each); also scikit-learn in float32.
bench-gmm: $(STAMP)
	$(PY) benchmarks/gmm_em.py --sklearn-float32

# The variational mixture's lower bound against scikit-learn's BayesianGaussianMixture.
bench-bgmm-parity: $(STAMP)
	$(PY) benchmarks/bgmm_parity.py

# Peak memory of streamed npy, csv and image-folder data; 1 vs 2 workers (about 15 minutes).
bench-scale: $(STAMP)
	$(PY) benchmarks/streaming_rss.py
	$(PY) benchmarks/csv_streaming_rss.py
	$(PY) benchmarks/images_rss.py
	$(PY) benchmarks/workers.py

# Wall time of each command against `python -c "import tensorflow"` (median of 5 interleaved
# rounds; issue #16's bounds: validate <= 0.15x, sample <= 1.5x).
bench-startup: $(STAMP)
	$(PY) benchmarks/startup.py

# Anomaly scores: VAE, flow, mixture, PixelCNN trained on digits 0-8; ROC AUC of the 9s.
bench-anomaly: $(STAMP)
	$(PY) benchmarks/anomaly_digits.py

# Missing pixels of held-out digits: mixture, VAE, flow imputation against scikit-learn's.
bench-impute: $(STAMP)
	$(PY) benchmarks/impute_digits.py

# Train on synthetic, test on real: conditional VAE, GAN and diffusion on the digits.
bench-tstr: $(STAMP)
	$(PY) benchmarks/tstr_digits.py

# VQ-VAE + PixelCNN prior beside the dense and convolutional VAEs on the digits: fd_digits,
# reconstructions and samples, each spec with its own budget (about 10 minutes).
bench-vq-vae: $(STAMP)
	$(PY) benchmarks/vq_vae_digits.py

# `gencompile train SPEC` against a hand-written Keras script per family, each as one whole
# process, 3 interleaved rounds (about 20 minutes); `--quick` for a smoke run.
bench-whole: $(STAMP)
	$(PY) benchmarks/whole_process.py

# A multi-scale flow (splits with learned priors) against today's digits flow: bits/dim at
# the same budget (50 epochs each: 23 minutes at a load average of 15 on 2 cores).
bench-flow-multiscale: $(STAMP)
	$(PY) benchmarks/flow_multiscale.py

# MIG of a VAE, a beta-VAE and a beta-TCVAE on shapes2d, one budget for all three.
bench-disentanglement: $(STAMP)
	$(PY) benchmarks/disentanglement.py
