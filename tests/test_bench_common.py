"""The bench harness notes its own clean-up, so a run started soon after another says it may start slow."""

import json
import time

from bench import common


def test_a_run_after_a_large_clean_up_is_warned_and_recorded(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LPR_BENCH_DIR", str(tmp_path))
    assert common.recent_deletion() is None  # no earlier run here
    with common.scratch_folder("lpr-test-") as folder:
        for i in range(1200):
            (folder / f"{i}.jpg").write_bytes(b"x")
    assert not folder.exists()
    assert common.recent_deletion() == {"seconds_ago": 0, "files": 1200}
    assert "removed 1200 files" in capsys.readouterr().err
    assert common.machine()["recent_deletion"]["files"] == 1200

    with common.scratch_folder("lpr-test-") as folder:  # a second clean-up soon after adds up
        (folder / "one.jpg").write_bytes(b"x")
    assert common.recent_deletion()["files"] == 1201
    marks = json.loads((tmp_path / common.CLEANUP_MARK).read_text())
    marks[0]["at"] -= common.FRESH_INODE_SECONDS  # the large one is now old: only the small one counts
    (tmp_path / common.CLEANUP_MARK).write_text(json.dumps(marks))
    assert common.recent_deletion() is None


def test_a_small_or_old_clean_up_is_not_warned(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LPR_BENCH_DIR", str(tmp_path))
    with common.scratch_folder("lpr-test-") as folder:
        (folder / "one.jpg").write_bytes(b"x")
    assert common.recent_deletion() is None
    mark = tmp_path / common.CLEANUP_MARK
    mark.write_text(json.dumps([{"at": time.time() - common.FRESH_INODE_SECONDS - 1, "files": 50_000}]))
    assert common.recent_deletion() is None
    mark.write_text("not json")
    assert common.recent_deletion() is None
    assert capsys.readouterr().err == ""
