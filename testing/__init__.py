"""Contract checks for plug-in authors, as scikit-learn ships ``check_estimator``.

``check_detector(MyDetector, **params)`` and ``check_generator(MyGenerator, **params)`` build
the plug-in with ``params`` and run every contract check on it; the first that fails raises an
``AssertionError`` that names the check. Call them from a test::

    from facebench.testing import check_detector

    def test_my_detector_keeps_the_contract():
        check_detector(MyDetector, scale=2.0)
"""

from .detector import DETECTOR_CHECKS, check_detector, synthetic_sample
from .generator import GENERATOR_CHECKS, check_generator

__all__ = ["DETECTOR_CHECKS", "GENERATOR_CHECKS", "check_detector", "check_generator", "synthetic_sample"]
