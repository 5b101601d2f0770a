"""common/secrets.py: URL passwords masked in messages we do not word ourselves (argparse's errors)."""
from __future__ import annotations

import pytest

from common.secrets import mask_urls
from tests.conftest import call_cli


def test_mask_urls_masks_every_password_in_a_text():
    assert mask_urls("a postgresql://u:p@ss@h/db and mysql://x:y@z/w, sqlite:///f.db") == \
        "a postgresql://u:***@h/db and mysql://x:***@z/w, sqlite:///f.db"


@pytest.mark.parametrize("command", ["tuning.optuna", "tuning.grid", "model.train"])
def test_a_misspelt_flag_does_not_echo_a_storage_password(tmp_path, command):
    # Rule: argparse repeats an unknown flag's value: the password in it is masked, exit 2.
    r = call_cli(command, "--strage", "postgresql://u:s3cr/et@127.0.0.1:1/db", "--results-dir", str(tmp_path))
    assert r.returncode == 2 and "s3cr" not in r.stdout + r.stderr
    assert "unrecognized arguments: --strage postgresql://u:***@127.0.0.1:1/db" in r.stderr
    assert list(tmp_path.iterdir()) == []
