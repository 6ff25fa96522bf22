"""The wang2024 recipe's checks (Wang et al. 2024, knowledge composition) as pure functions of metric rows: each
passes on the paper's curve shape and fails when the effect is absent (unit tier, no training)."""

from groklab.presets.recipes.wang2024 import check_late_generalization, check_memorization_first, check_ood_fails


def rows(train, id_, ood, every=100):
    return [{"step": i * every, "train_acc": t, "val_acc": v, "val_ood_acc": o} for i, (t, v, o) in enumerate(zip(train, id_, ood))]


# memorized at step 300 (ID 0.12), ID ≥ 90% from step 900 on, OOD flat
GROKS = rows([0.1, 0.6, 0.9, 0.995, 0.97, 1.0, 0.99, 1.0, 1.0, 1.0, 1.0],
             [0.02, 0.1, 0.12, 0.12, 0.2, 0.35, 0.5, 0.7, 0.85, 0.93, 0.97],
             [0.02, 0.01, 0.02, 0.02, 0.03, 0.02, 0.01, 0.03, 0.02, 0.02, 0.03])


def test_checks_pass_on_memorization_then_late_id_generalization_with_ood_failing():
    assert check_memorization_first(GROKS)[0]
    ok, detail = check_late_generalization(GROKS)
    assert ok and "step 300" in detail and "step 900" in detail
    assert check_ood_fails(GROKS)[0]


def test_checks_fail_when_id_never_generalizes():
    never = rows([0.1, 0.6, 0.995, 1.0, 1.0, 1.0], [0.02, 0.03, 0.04, 0.05, 0.04, 0.05], [0.02] * 6)
    assert check_memorization_first(never)[0]  # memorization alone is there
    assert not check_late_generalization(never)[0]
    assert not check_ood_fails(never)[0]  # ID never reached 90%


def test_checks_fail_when_id_generalizes_together_with_memorization():
    together = rows([0.1, 0.5, 0.8, 0.995, 1.0, 1.0], [0.05, 0.4, 0.7, 0.92, 0.95, 0.97], [0.02] * 6)
    assert not check_memorization_first(together)[0]
    assert not check_late_generalization(together)[0]  # 90% at 1.0× the memorization step


def test_checks_fail_when_training_never_fits_or_ood_generalizes():
    unfit = rows([0.1, 0.5, 0.9, 0.95], [0.02, 0.03, 0.04, 0.05], [0.02] * 4)
    ok, detail = check_memorization_first(unfit)
    assert not ok and "never" in detail
    assert not check_late_generalization(unfit)[0]
    ood = rows([t for t in (r["train_acc"] for r in GROKS)], [r["val_acc"] for r in GROKS],
               [0.02, 0.02, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.8, 0.9])
    assert check_late_generalization(ood)[0] and not check_ood_fails(ood)[0]
