import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic_threads():
    # Small models train faster on one thread here, and a fixed count keeps float reductions reproducible.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def strip_time(rows):
    """Metric rows without the wall-clock column, which legitimately differs between runs."""
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]
