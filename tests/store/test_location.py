"""The default store lives in the user's data folder (platformdirs; XDG_DATA_HOME on Linux)."""

import sys

import pytest

from neurolysis.store import default_store_location, open_store
from neurolysis.store.location import store_url


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG_DATA_HOME is the Linux data folder")
def test_default_location_is_the_user_data_folder_and_is_created(tmp_path, monkeypatch):
    monkeypatch.delenv("NEUROLYSIS_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_store_location() == f"sqlite:///{tmp_path}/data/neurolysis/cases.db"
    with open_store() as store:
        assert store.list() == []
    assert (tmp_path / "data" / "neurolysis" / "cases.db").is_file()


def test_the_environment_variable_wins_and_a_missing_folder_is_not_created(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROLYSIS_STORE", str(tmp_path / "nowhere" / "cases.db"))
    assert default_store_location() == str(tmp_path / "nowhere" / "cases.db")
    with pytest.raises(Exception, match="does not exist"):
        store_url()
    assert not (tmp_path / "nowhere").exists()
