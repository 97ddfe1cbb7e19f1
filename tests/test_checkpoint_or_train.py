"""train.checkpoint.checkpoint_or_train: the one train-if-missing rule of export and compression (issue #15)."""
import pytest

from edgeseg.errors import EdgesegError
from edgeseg.train.checkpoint import checkpoint_or_train
from edgeseg.train.recipe import Recipe


@pytest.fixture
def trained(monkeypatch):
    calls = []

    def fake_train(recipe, out_dir, show_progress=True):  # the real loop is tested in test_train.py
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "model.pt").write_bytes(b"x")
        calls.append(out_dir)

    monkeypatch.setattr("edgeseg.train.trainer.train", fake_train)
    return calls


def test_existing_checkpoint_is_used_as_is(tmp_path, trained):
    ckpt = tmp_path / "any-name.pt"
    ckpt.write_bytes(b"x")
    assert checkpoint_or_train(ckpt, Recipe()) == ckpt and trained == []


def test_missing_model_pt_is_trained_into_its_folder(tmp_path, trained):
    ckpt = tmp_path / "run" / "model.pt"
    assert checkpoint_or_train(ckpt, Recipe()) == ckpt and trained == [tmp_path / "run"]


def test_no_path_trains_into_out_dir(tmp_path, trained):
    assert checkpoint_or_train(None, Recipe(), tmp_path / "t") == tmp_path / "t" / "model.pt"


def test_missing_other_name_is_refused_before_training(tmp_path, trained):
    with pytest.raises(EdgesegError, match=r"best\.pt: missing; to train it here name it model\.pt"):
        checkpoint_or_train(tmp_path / "best.pt", Recipe())
    assert trained == []


def test_missing_without_recipe_is_left_to_the_loader(tmp_path, trained):
    assert checkpoint_or_train(tmp_path / "model.pt", None) == tmp_path / "model.pt" and trained == []
    with pytest.raises(EdgesegError, match="no checkpoint"):
        checkpoint_or_train(None, None)
