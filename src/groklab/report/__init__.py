"""Reports: figures and pages that draw what training and the analyses computed. Nothing here computes."""

from groklab.report.plots import plot_curves

__all__ = ["plot_curves"]
