"""Analyses: pure functions over tensors, models and run directories. Nothing here trains or plots.

    grokking         crossing steps, grokking gap, phases (Liu et al.), two-stage dynamics, forgetting
    fourier          spectra over Z_p (the DFT convention is stated there), key frequencies, Gini
    ipr              inverse participation ratio of neurons (Doshi et al.)
    pruning          remove neurons by IPR and measure accuracies
    progress         restricted / excluded loss, Σw² (Nanda et al.)
    representations  PCA, t-SNE, representation quality index (Liu et al.)
    sharpness        top Hessian eigenvalue by power iteration
    ntk              empirical NTK, kernel distance, kernel-target alignment (lazy → rich; Kumar et al.)
    htsr             power-law exponent of weight spectra, MP spikes, correlation traps (Martin & Mahoney)
    llc              local learning coefficient by devinterp's SGLD (`groklab[llc]`; imported on use)
    driver           run_analysis(run_dir, what): the steps in STEPS over every checkpoint, tables into RUN/analysis/
                     (the figures: groklab.report.analysis_plots.draw_analysis)
"""

from groklab.analysis.driver import WHAT, grokking_over_runs, run_analysis
from groklab.analysis.fourier import (
    AnalysisError,
    dominant_frequencies,
    embedding_matrix,
    explained_fraction,
    fourier_basis,
    frequency_power,
    gini,
    key_frequencies,
    key_gap,
    neuron_inputs,
    neuron_spectra,
    power_spectrum,
)
from groklab.analysis.grokking import classify_phase, crossing_step, forgetting, grokking_summary, seeds_summary, two_stage
from groklab.analysis.ipr import expected_gaussian_ipr, ipr, neuron_table
from groklab.analysis.progress import progress_measures, split_logits, sum_squared_weights, table_logits
from groklab.analysis.pruning import prune, pruning_curve
from groklab.analysis.representations import parallelograms, pca, representation_matrix, rqi, tsne
from groklab.analysis.sharpness import hvp, power_iteration, top_hessian_eigenvalue
from groklab.analysis.htsr import fit_power_law, layer_htsr, model_htsr
from groklab.analysis.ntk import empirical_ntk, kernel_distance, target_alignment

__all__ = [
    "WHAT", "grokking_over_runs", "run_analysis", "AnalysisError", "dominant_frequencies", "embedding_matrix", "explained_fraction",
    "fourier_basis", "frequency_power", "gini", "key_frequencies", "key_gap", "neuron_inputs", "neuron_spectra", "power_spectrum",
    "classify_phase", "crossing_step", "forgetting", "grokking_summary", "seeds_summary", "two_stage",
    "expected_gaussian_ipr", "ipr", "neuron_table", "progress_measures", "split_logits", "sum_squared_weights",
    "table_logits", "prune", "pruning_curve", "parallelograms", "pca", "representation_matrix", "rqi", "tsne",
    "hvp", "power_iteration", "top_hessian_eigenvalue", "fit_power_law", "layer_htsr", "model_htsr", "empirical_ntk",
    "kernel_distance", "target_alignment",
]
