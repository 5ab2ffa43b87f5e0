"""Probabilistic customer-base models: BG/NBD, Pareto/NBD, Gamma-Gamma and customer lifetime value.

All are fitted by maximum likelihood with analytic gradients and follow the scikit-learn estimator
contract: hyperparameters in __init__, fit() returns self and sets params_, standard_errors_,
log_likelihood_ and converged_, or raises ConvergenceError.
"""

from patron.analytics.models.bgnbd import BGNBD
from patron.analytics.models.clv import customer_lifetime_value
from patron.analytics.models.gamma_gamma import GammaGamma
from patron.analytics.models.pareto_nbd import ParetoNBD
from patron.errors import ConvergenceError

__all__ = ["BGNBD", "ConvergenceError", "GammaGamma", "ParetoNBD", "customer_lifetime_value"]
