"""ddim_grid: DDIM and strided DDPM from T - 1 against the solvers' clipped start (cosine).

On the same trained weights and the same x_T, DDIM (eta 0) and DDPM with fewer steps than
timesteps on their old grid (from t = 999, where the cosine schedule's alpha_bar is ~5e-5)
against the grid the runtime builds today (from the noisiest timestep with lambda >=
LAMBDA_MIN, t = 995):

- swiss roll: `specs/diffusion_swissroll.yaml` with `model.schedule={type: cosine}` (the
  `cosine` model of `diffusion_ode_gap.py`), DDIM 50 steps and DDPM 20 and 50 steps, with
  DDPM through every timestep as the reference; energy distance, 5 draws of 2000 samples;
- digits: `specs/diffusion_digits.yaml` (cosine, U-Net), DDIM 20 and 50 steps; `fd_digits`,
  2 draws of 500 samples (DDPM's 1000 U-Net calls per sample are left to
  `diffusion_solvers.py`, whose draws these repeat: same seeds, same x_T).

Both models are trained once or reused from `--work` (the run folders of those scripts).
Lower is better. Writes `benchmarks/results/ddim_grid.md`.

    python benchmarks/ddim_grid.py --work DIR
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import harness
import numpy as np
from diffusion_ode_gap import SWISS_ROLL, VARIANTS
from diffusion_solvers import DATASETS, DataSet, Scorer, mean_sd, train_once

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "ddim_grid.md"
COSINE = next(v for v in VARIANTS if v.key == "cosine")
DIGITS = next(d for d in DATASETS if d.spec == "diffusion_digits.yaml")


def ddim(steps: int) -> dict[str, Any]:
    return {"type": "ddim", "steps": steps, "eta": 0.0}


def ddpm(steps: int) -> dict[str, Any]:
    return {"type": "ddpm", "steps": steps}


def old_grid(model: Any, config: dict[str, Any]) -> Any:
    """The sampler `config` (DDIM or strided DDPM) over the model's denoiser on the grid
    from T - 1, as it was before (rebuilt here: the runtime no longer makes it)."""
    from gencompile.runtime import diffusion

    base = model.sampler
    old = diffusion.Sampler(
        base.denoise, base.schedule, config, base.prediction, base.data_shape, base.clip_range
    )
    old.timesteps = diffusion.sampling_timesteps(base.schedule.timesteps, config["steps"])
    return old


def draw_all(
    dataset: DataSet, model: Any, module: Any, samplers: dict[str, Any]
) -> dict[str, list[float]]:
    """Each sampler's score per seed; seed s draws x_T as `model.sample(n, seed=s)` does."""
    from gencompile.runtime import diffusion
    from gencompile.runtime.data import load_data

    data = load_data(module.DATA, seed=module.SEED)
    scorer = Scorer(dataset, data)
    scores: dict[str, list[float]] = {label: [] for label in samplers}
    for seed in range(dataset.seeds):
        for label, sampler in samplers.items():
            drawn = np.asarray(sampler.sample(dataset.samples, diffusion.sampling_seed(seed, None)))
            scores[label].append(scorer(data.preprocessor.inverse(drawn)))
            print(f"{dataset.title}: seed {seed}: {label}: {scores[label][-1]:.4f}", flush=True)
    return scores


def table(scores: dict[str, list[float]], reference: str) -> str:
    rows = [
        [label, mean_sd(values), harness.listed(harness.ratios(values, scores[reference]), 2)]
        for label, values in scores.items()
    ]
    columns = ["sampler", "score", f"/ {reference} (per seed)"]
    return harness.render_table(rows, columns, "lrr")


def main() -> None:
    harness.forget_script_folder()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="train into (or reuse) DIR")
    args = parser.parse_args()
    command = "python benchmarks/ddim_grid.py" + (f" --work {args.work}" if args.work else "")

    with tempfile.TemporaryDirectory(prefix="ddim-grid-") as folder:
        work = args.work or Path(folder)
        model, module, _ = train_once(SWISS_ROLL, work, None, COSINE.overrides, COSINE.key)
        swiss_samplers = {"DDPM 1000": model.sampler.with_config({"type": "ddpm"})}
        for config in (ddim(50), ddpm(20), ddpm(50)):
            label = f"{config['type'].upper()} {config['steps']}"
            today = model.sampler.with_config(config)
            swiss_samplers[f"{label} from t = 999 (before)"] = old_grid(model, config)
            swiss_samplers[f"{label} from t = {today.timesteps[0]} (today)"] = today
        swiss = draw_all(SWISS_ROLL, model, module, swiss_samplers)
        model, module, _ = train_once(DIGITS, work, None)
        digits_samplers = {}
        for steps in (20, 50):
            digits_samplers[f"DDIM {steps} from t = 999 (before)"] = old_grid(model, ddim(steps))
            today = model.sampler.with_config(ddim(steps))
            digits_samplers[f"DDIM {steps} from t = {today.timesteps[0]} (today)"] = today
        digits = draw_all(DIGITS, model, module, digits_samplers)

    text = "\n".join(
        [
            "# ddim_grid: where DDIM and strided DDPM start on the cosine schedule",
            "",
            f"`{command}` ({harness.utc_stamp()})",
            "",
            "Same weights, same x_T per seed for every sampler of a model (seeds "
            "0..n - 1, drawn as `model.sample(n, seed=s)` draws them); lower is better.",
            "",
            f"## swiss roll, cosine schedule: energy distance, {SWISS_ROLL.seeds} draws of "
            f"{SWISS_ROLL.samples}",
            "",
            f"`specs/diffusion_swissroll.yaml` with `{' '.join(COSINE.overrides)}`.",
            "",
            table(swiss, "DDPM 1000"),
            "",
            f"## digits: `fd_digits`, {DIGITS.seeds} draws of {DIGITS.samples}",
            "",
            "`specs/diffusion_digits.yaml` (x_0 estimates clipped to the data's range).",
            "",
            table(digits, "DDIM 50 from t = 999 (before)"),
            "",
            f"- {harness.machine_line()}; load average {harness.load_average()} at the end "
            "(a shared machine).",
        ]
    )
    harness.write_result(RESULT, text)


if __name__ == "__main__":
    main()
