"""The named protocols are YAML files (semscale_lib/training/presets/): each loads, validates, explains itself, and
the paper's Table 1 protocol holds the values the paper states."""
from __future__ import annotations

import pytest

from semscale_lib.training import PRESETS, make_config
from semscale_lib.training.config import PRESETS_DIR


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_file_validates_and_says_why(name):
    text = (PRESETS_DIR / f"{name}.yaml").read_text()
    assert text.startswith("# ")                              # its choices explained, before its settings
    config = make_config(name)
    assert config.preset == name
    flat = config.to_dict()
    assert all(flat[key] == value for key, value in PRESETS[name].items() if not key.startswith("dsb_"))


def test_the_papers_table1_protocol():
    # Sec. 3.4.1 / Table 1: Adam, lr 0.01 decayed by 0.98 per epoch, batch 64, no augmentation, CIFAR-10-LT IF 200
    config = make_config("paper-table1")
    optim, data = config.optim, config.data
    assert (optim.optimizer, optim.lr, optim.schedule, optim.lr_gamma, optim.batch_size, data.augment, data.dataset,
            data.imbalance_factor) == ("adam", 0.01, "exp", 0.98, 64, False, "cifar10-lt", 200.0)
    assert make_config("cifar-lt").optim.milestones == (0.8, 0.9)    # lists in YAML, tuples in the config
    assert make_config("cpu-quick").weighting.dsb.stage_epochs == 2
