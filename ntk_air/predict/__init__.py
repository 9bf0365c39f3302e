"""neural-tangents' `predict` on ntk_air's spectral core: same names, arguments and numbers.

Infinite ensembles trained on the MSE, NNGP/NTK GP inference, function-space gradient descent on
any loss, and matrix-free variants (kernel operators, conjugate gradients) for n beyond memory.
Solves run in float64 by default on one eigendecomposition; a kernel that is not PSD is refused
(`NotPositiveSemidefiniteError`), a singular one gets the pseudo-inverse.

Reference: Lee et al. arXiv 1902.06720; Novak et al. arXiv 1912.02803; docs/science/predict.md.
"""

from ._matfree import (
    CGSolution,
    MatfreeMean,
    MatfreeTrajectory,
    ensemble_mean_matfree,
    gp_mean_matfree,
    posterior_variance_matfree,
    ridge_solve,
)
from ._mse import Gaussian, gp_inference, gradient_descent_mse, gradient_descent_mse_ensemble
from ._ode import ODEState, gradient_descent, max_learning_rate
from ._spectral import KernelDiagnostics, NotPositiveSemidefiniteError

__all__ = [
    "Gaussian",
    "KernelDiagnostics",
    "MatfreeMean",
    "MatfreeTrajectory",
    "NotPositiveSemidefiniteError",
    "ODEState",
    "ensemble_mean_matfree",
    "gp_inference",
    "gp_mean_matfree",
    "gradient_descent",
    "gradient_descent_mse",
    "gradient_descent_mse_ensemble",
    "max_learning_rate",
    "posterior_variance_matfree",
    "ridge_solve",
    "CGSolution",
]
