"""The paper's Figure 1 ("Interplay of Redundant Samples and Weights") on Runge's function f(x) = 1/(1+25x^2).

Data, all panels: 2n equispaced x on [-1, 1]; the even positions hold clean values f(x) (the coreset), the
odd positions f(x) + N(0, noise^2) (the noisy samples).

(a), (b) pruning: n = 5, so 10 points. Degree-10 least-squares fits in the monomial basis to the full set
(a) and to the coreset (b); with 11 coefficients and 10 (or 5) points the system is underdetermined and
numpy's lstsq returns the minimum-norm interpolant. Pruning zeroes the 3 coefficients of smallest magnitude
(Han et al.). Loss: mean squared error against f on an equispaced grid over [-1, 1].

(c) selection difficulty, Eq. (2): I(D, D^) = sup_theta |L(theta) - L^(theta)| / L(theta) with L the mean
squared error on D, the noisy samples, and L^ on D^, the clean coreset, for degrees 1..20; n = 25 so that
every degree has fewer coefficients than D has points (L > 0 everywhere, so the supremum is finite).
D^ is not a subset of D here on purpose: for D^ inside D with plain means, L^ <= (|D|/|D^|) L, hence
|L - L^|/L <= max(1, |D|/|D^| - 1) for every theta, and I could never grow past that bound. The paper's
reason for the growth, "L vanishes due to the overfitting of the noisy data", needs L on the noisy data.

Two estimators of I, both in the Legendre basis (the supremum over all theta is the same in any basis of
the degree-k polynomials; the Legendre basis keeps the numbers well conditioned):
- ``search``, the paper's "we optimized the problem in Eq. (2)": multi-start L-BFGS-B (scipy) maximising
  log|L - L^| - log L with its analytic gradient, every coefficient bounded to [-bound, bound]; starts: the
  least-squares fit to D (clipped to the box) and ``starts`` uniform points of the box. A lower bound of I.
- ``exact``: with z = (theta, 1), L = |A z|^2/|D| and L^ = |A^ z|^2/|D^| for A = [V, -y], A^ = [V^, -y^].
  Over all z != 0 the ratio L^/L spans the extreme generalised eigenvalues lambda of (A^'A^/|D^|, A'A/|D|),
  and the z with last coordinate 1 are dense in the directions, so I = max(lambda_max - 1, 1 - lambda_min).
  Computed from the singular values of A^ R^-1 (A = QR). Infinite when L can reach 0 (rank-deficient A).

Randomness: numpy SeedSequence(seed) spawns three streams: the noise of (a)/(b), the noise of (c), and the
search starts. Everything else is deterministic.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.polynomial import legendre, polynomial
from scipy.linalg import solve_triangular
from scipy.optimize import minimize


@dataclass(frozen=True)
class RungeSetup:
    seed: int = 0
    noise: float = 0.1  # standard deviation of the Gaussian noise
    fit_points: int = 5  # clean points = noisy points in (a)/(b)
    fit_degree: int = 10
    pruned: int = 3  # coefficients set to zero
    grid: int = 2001  # points of the loss grid over [-1, 1]
    difficulty_points: int = 25  # clean points = noisy points in (c)
    degrees: tuple[int, ...] = tuple(range(1, 21))
    bound: float = 100.0  # box of the search, per Legendre coefficient
    starts: int = 8  # random starts of the search, besides the least-squares start
    robustness_seeds: int = 50  # (a)/(b) repeated on seeds 0..N-1 to report how often the claim holds


def runge(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + 25.0 * x**2)


@dataclass(frozen=True)
class Samples:
    x_clean: np.ndarray
    y_clean: np.ndarray
    x_noisy: np.ndarray
    y_noisy: np.ndarray

    @property
    def x(self) -> np.ndarray:
        return np.concatenate([self.x_clean, self.x_noisy])

    @property
    def y(self) -> np.ndarray:
        return np.concatenate([self.y_clean, self.y_noisy])


def interleaved(n: int, noise: float, rng: np.random.Generator) -> Samples:
    """2n equispaced points on [-1, 1]: clean at the even positions, noisy at the odd ones."""
    x = np.linspace(-1.0, 1.0, 2 * n)
    x_clean, x_noisy = x[0::2], x[1::2]
    return Samples(x_clean, runge(x_clean), x_noisy, runge(x_noisy) + rng.normal(0.0, noise, n))


# --- (a), (b): pruning a fit -------------------------------------------------------------------------------
def fit(x: np.ndarray, y: np.ndarray, degree: int) -> np.ndarray:
    """Least-squares monomial coefficients (minimum norm when underdetermined), lowest degree first."""
    return np.linalg.lstsq(polynomial.polyvander(x, degree), y, rcond=None)[0]


def prune_smallest(coefficients: np.ndarray, count: int) -> np.ndarray:
    pruned = coefficients.copy()
    pruned[np.argsort(np.abs(coefficients), kind="stable")[:count]] = 0.0
    return pruned


def true_loss(coefficients: np.ndarray, grid: np.ndarray) -> float:
    """Mean squared error against Runge's function over the grid."""
    return float(np.mean((polynomial.polyval(grid, coefficients) - runge(grid)) ** 2))


def pruning_experiment(samples: Samples, setup: RungeSetup) -> dict[str, dict[str, Any]]:
    grid = np.linspace(-1.0, 1.0, setup.grid)
    out = {}
    for name, (x, y) in {"full": (samples.x, samples.y), "coreset": (samples.x_clean, samples.y_clean)}.items():
        before = fit(x, y, setup.fit_degree)
        after = prune_smallest(before, setup.pruned)
        out[name] = {
            "points": len(x),
            "coefficients": before.tolist(),
            "pruned_coefficients": after.tolist(),
            "loss_before_pruning": true_loss(before, grid),
            "loss_after_pruning": true_loss(after, grid),
        }
    return out


def pruning_claim_holds(result: dict[str, dict[str, Any]]) -> bool:
    """The paper's claim (a) vs (b): after pruning, the fit to the noisy full set is worse than the fit to
    the clean coreset."""
    return bool(result["full"]["loss_after_pruning"] > result["coreset"]["loss_after_pruning"])


# --- (c): selection difficulty -----------------------------------------------------------------------------
def difficulty_exact(x: np.ndarray, y: np.ndarray, x_hat: np.ndarray, y_hat: np.ndarray, degree: int) -> float:
    """sup over theta of |L - L^| / L, from the generalised eigenvalues (see the module docstring)."""
    a = np.column_stack([legendre.legvander(x, degree), -y])
    a_hat = np.column_stack([legendre.legvander(x_hat, degree), -y_hat])
    if a.shape[0] < a.shape[1]:
        return float("inf")  # degree + 2 > |D|: some theta makes L = 0 while L^ > 0
    r = np.linalg.qr(a, mode="r")
    singular = np.linalg.svd(solve_triangular(r, a_hat.T, trans="T").T, compute_uv=False)
    scale = len(x) / len(x_hat)
    lam_max = scale * singular.max() ** 2
    lam_min = scale * singular.min() ** 2 if a_hat.shape[0] >= a_hat.shape[1] else 0.0
    return float(max(lam_max - 1.0, 1.0 - lam_min))


def difficulty_search(x: np.ndarray, y: np.ndarray, x_hat: np.ndarray, y_hat: np.ndarray, degree: int,
                      bound: float, starts: int, rng: np.random.Generator) -> float:
    """Best |L - L^| / L found by multi-start L-BFGS-B inside the box (a lower bound of the supremum)."""
    v, v_hat = legendre.legvander(x, degree), legendre.legvander(x_hat, degree)

    def negative_log_ratio(theta: np.ndarray) -> tuple[float, np.ndarray]:
        r, r_hat = v @ theta - y, v_hat @ theta - y_hat
        loss, loss_hat = r @ r / len(r), r_hat @ r_hat / len(r_hat)
        grad, grad_hat = 2.0 * v.T @ r / len(r), 2.0 * v_hat.T @ r_hat / len(r_hat)
        gap = loss - loss_hat
        value = np.log(abs(gap) + 1e-300) - np.log(loss)
        gradient = np.sign(gap) * (grad - grad_hat) / (abs(gap) + 1e-300) - grad / loss
        return -value, -gradient

    box = [(-bound, bound)] * (degree + 1)
    first = np.clip(np.linalg.lstsq(v, y, rcond=None)[0], -bound, bound)
    candidates = [first, *(rng.uniform(-bound, bound, degree + 1) for _ in range(starts))]
    best = min(minimize(negative_log_ratio, x0, jac=True, method="L-BFGS-B", bounds=box).fun for x0 in candidates)
    return float(np.exp(-best))


def difficulty_curve(samples: Samples, setup: RungeSetup, rng: np.random.Generator) -> dict[str, list[float]]:
    args = (samples.x_noisy, samples.y_noisy, samples.x_clean, samples.y_clean)
    return {
        "degrees": list(setup.degrees),
        "exact": [difficulty_exact(*args, k) for k in setup.degrees],
        "search": [difficulty_search(*args, k, setup.bound, setup.starts, rng) for k in setup.degrees],
    }


# --- the experiment ----------------------------------------------------------------------------------------
@dataclass
class RungeResult:
    setup: RungeSetup
    fit_samples: Samples
    pruning: dict[str, dict[str, Any]]
    difficulty: dict[str, list[float]]
    robustness: dict[str, int] = field(default_factory=dict)  # (a)/(b) claim over seeds 0..N-1


def streams(seed: int) -> list[np.random.Generator]:
    """Independent generators for the (a)/(b) noise, the (c) noise and the (c) search starts."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)]


def run_runge(setup: RungeSetup) -> RungeResult:
    fit_rng, difficulty_rng, search_rng = streams(setup.seed)
    fit_samples = interleaved(setup.fit_points, setup.noise, fit_rng)
    pruning = pruning_experiment(fit_samples, setup)
    difficulty = difficulty_curve(interleaved(setup.difficulty_points, setup.noise, difficulty_rng), setup, search_rng)
    holds = sum(
        pruning_claim_holds(pruning_experiment(interleaved(setup.fit_points, setup.noise, streams(seed)[0]), setup))
        for seed in range(setup.robustness_seeds)
    )
    return RungeResult(setup, fit_samples, pruning, difficulty, {"seeds": setup.robustness_seeds, "claim_holds": holds})


def draw(result: RungeResult) -> Figure:
    fig = Figure(figsize=(15, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    grid = np.linspace(-1.0, 1.0, result.setup.grid)
    samples = result.fit_samples
    colors = matplotlib.colormaps["tab10"]
    titles = {"full": "(a) fit to the full set (5 clean + 5 noisy)", "coreset": "(b) fit to the coreset (5 clean)"}
    for ax, (name, part) in zip(axes[:2], result.pruning.items()):
        ax.plot(grid, runge(grid), color=colors(0), label="Runge's function")
        ax.plot(grid, polynomial.polyval(grid, part["coefficients"]), color=colors(2), linestyle="--",
                label=f"degree-{result.setup.fit_degree} fit, loss {part['loss_before_pruning']:.3g}")
        ax.plot(grid, polynomial.polyval(grid, part["pruned_coefficients"]), color=colors(1),
                label=f"{result.setup.pruned} smallest pruned, loss {part['loss_after_pruning']:.3g}")
        ax.scatter(samples.x_clean, samples.y_clean, color="black", zorder=3, label="clean samples (coreset)")
        if name == "full":
            ax.scatter(samples.x_noisy, samples.y_noisy, color="red", marker="x", zorder=3, label="noisy samples")
        ax.set(title=titles[name], xlabel="x", ylim=(-1.0, 2.0))
        ax.legend(fontsize="small", loc="upper left")
    degrees, difficulty = result.difficulty["degrees"], result.difficulty
    ax = axes[2]
    ax.plot(degrees, difficulty["exact"], color=colors(0), label="exact supremum")
    ax.plot(degrees, difficulty["search"], linestyle="none", marker="o", color=colors(1),
            label=f"multi-start L-BFGS-B (box ±{result.setup.bound:g})")
    ax.set(yscale="log", title=r"(c) selection difficulty $\mathcal{I}(\mathcal{D}, \hat{\mathcal{D}})$, Eq. (2)",
           xlabel="polynomial degree", ylabel=r"$\sup_\theta |\mathcal{L} - \hat{\mathcal{L}}| / \mathcal{L}$")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize="small")
    return fig


def write_runge(out_dir: Path, seed: int = 0) -> list[Path]:
    """runge.png (3 panels) and runge.json (every number in it, with the setup)."""
    result = run_runge(RungeSetup(seed=seed))
    out_dir.mkdir(parents=True, exist_ok=True)
    png, numbers = out_dir / "runge.png", out_dir / "runge.json"
    draw(result).savefig(png, dpi=120)
    samples = result.fit_samples
    numbers.write_text(json.dumps({
        "setup": asdict(result.setup),
        "fit_samples": {k: getattr(samples, k).tolist() for k in ("x_clean", "y_clean", "x_noisy", "y_noisy")},
        "pruning": result.pruning,
        "pruning_claim_holds": pruning_claim_holds(result.pruning),
        "pruning_claim_over_seeds": result.robustness,
        "difficulty": result.difficulty,
    }, indent=2))
    return [png, numbers]
