"""edgeseg.io.publish_folder: the one folder publisher of the export and the runner (issue #15 item 3)."""
import pytest

from edgeseg.io import FolderTaken, publish_folder


def staged(tmp_path, name, text):
    d = tmp_path / f".{name}.partial"
    d.mkdir()
    (d / "f.txt").write_text(text)
    return d


def test_new_name_is_published(tmp_path):
    out = publish_folder(staged(tmp_path, "a", "new"), tmp_path / "a", lambda p: False)
    assert (out / "f.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_replaceable_folder_is_replaced_and_nothing_is_left_aside(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "old.txt").write_text("old")
    publish_folder(staged(tmp_path, "a", "new"), tmp_path / "a", lambda p: True)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["f.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # no .old-* folder survives


def test_refused_folder_is_left_untouched(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "mine.txt").write_text("user data")
    tmp = staged(tmp_path, "a", "new")
    with pytest.raises(FolderTaken) as info:
        publish_folder(tmp, tmp_path / "a", lambda p: False)
    assert info.value.path == tmp_path / "a"
    assert (tmp_path / "a" / "mine.txt").read_text() == "user data"
    assert (tmp / "f.txt").exists()  # the caller decides what to do with its staged folder
