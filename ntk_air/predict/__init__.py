"""neural-tangents' `predict`, on ntk_air's spectral core: same names, arguments and numbers.

Infinite ensembles of wide networks trained on the MSE, GP inference with the NNGP and the NTK,
function-space gradient descent on any loss and the largest stable learning rate, with
neural-tangents 0.6.5's conventions (loss ½‖f − y‖²/y.size, time in units of the learning rate,
`diag_reg` relative to tr(K)/n unless `diag_reg_absolute_scale`, t = None the end of training).
Where neural-tangents returned NaN: solves run in float64 by default; the train kernel is
decomposed once by `eigen.eigensystem` (no Cholesky); a kernel that is not PSD is refused with
its smallest eigenvalue and a `diag_reg` that fixes it (`NotPositiveSemidefiniteError`); a
singular one gets the pseudo-inverse; `predict_fn.diagnostics(get)` gives the condition number.
Matrix-free (n beyond memory, through kernel operators): `ensemble_mean_matfree`,
`gp_mean_matfree`, `posterior_variance_matfree` and their conjugate-gradient solve `ridge_solve`.

Reference: Lee et al. arXiv 1902.06720; Novak et al. arXiv 1912.02803 (neural-tangents);
docs/science/predict.md.
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
from ._spectral import KernelDiagnostics, NotPositiveSemidefiniteError, TrainKernel, train_kernel

__all__ = [
    "Gaussian",
    "KernelDiagnostics",
    "MatfreeMean",
    "MatfreeTrajectory",
    "NotPositiveSemidefiniteError",
    "ODEState",
    "TrainKernel",
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
    "train_kernel",
]
