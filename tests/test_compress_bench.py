"""`edgeseg bench compression --quick` end to end on a tiny checkpoint and the bundled data; the verdicts and the cell cache."""
import json
import math
import re
from types import SimpleNamespace

import pytest

from edgeseg.bench.compression_ternary import summarise


def _rows(ternary, binary, fp32=(0.90, 0.91, 0.92)):
    rows = []
    for arm, values, kb in (("float", fp32, 1900.0), ("ternarynet", ternary, 130.0), ("binarynet", binary, 70.0)):
        rows += [{"arm": arm, "seed": i, "dice": v, "kb": kb, "params": 1} for i, v in enumerate(values)]
    return rows


def test_verdicts_mean_sd_and_memory():
    s = summarise(_rows((0.89, 0.90, 0.88), (0.80, 0.82, 0.84)))
    assert s["arms"]["ternarynet"]["mean"] == pytest.approx(0.89, abs=1e-12)
    assert s["arms"]["binarynet"]["sd"] == pytest.approx(0.02, abs=1e-12)  # sample sd
    assert s["gap_fp32_points"] == pytest.approx(-2.0, abs=1e-9) and s["within_3_points"]
    assert s["gap_binary_points"] == pytest.approx(7.0, abs=1e-9) and s["max_sd_points"] == pytest.approx(2.0, abs=1e-9)
    assert s["beats_binary"] and s["memory_ratio"] == pytest.approx(1900 / 130) and s["memory_ok"]
    s = summarise(_rows((0.85, 0.88, 0.82), (0.84, 0.80, 0.82)))  # 3 points apart but sd 3: not "clearly better"
    assert not s["within_3_points"] and not s["beats_binary"]
    one = summarise([r for r in _rows((0.9,), (0.8,), (0.9,))])
    assert math.isnan(one["arms"]["float"]["sd"]) and not one["beats_binary"]  # one seed proves nothing


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from edgeseg.train.checkpoint import build_model, save_checkpoint
    from edgeseg.train.recipe import load_recipe, with_width

    recipe = with_width(load_recipe("recipes/unet-s2-brain.toml"), 2)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, build_model(recipe, 3), recipe, ("background", "gm", "wm"), "tiny-test", {})
    return path


def test_quick_bench_writes_the_section_and_reuses_cells(tmp_path, tiny_checkpoint):
    import argparse

    from edgeseg.bench import compression

    p = argparse.ArgumentParser()
    compression.add_arguments(p)
    args = p.parse_args(["--quick", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "out"),
                         "--docs", str(tmp_path / "B.md"), "--plot", str(tmp_path / "c.png")])
    assert compression.run(args) == 0
    md = (tmp_path / "B.md").read_text()
    for heading in ("### Fixed point", "### TernaryNet vs binary vs FP32", "### Tucker-2"):
        assert heading in md
    assert "Perone Q-format | W4A6" in md and "(≈ Weber's 3-D DF 0.3 cut)" not in md  # quick grid: DF 0.5 only
    assert "1 seed, no sd" in md and (tmp_path / "c.png").stat().st_size > 1000
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {r["arm"] for r in result["scratch"]} == {"float", "ternarynet", "binarynet"}
    tern = next(r for r in result["scratch"] if r["arm"] == "ternarynet")
    assert tern["ort_diff"] <= 0.005 and tern["epochs"] == 1 and tern["width"] == 4
    assert set(result["latency"]) == {"original", "original int8", "DF 0.5", "DF 0.5 int8"}
    cells = sorted(f.name for f in (tmp_path / "out" / "cells").iterdir())
    assert "scratch-ternarynet-seed0.json" in cells and "tucker-df0.5-scratch.json" in cells
    marker = tmp_path / "out" / "cells" / "tucker-df0.5.json"
    stored = json.loads(marker.read_text())
    stored["result"]["dice"] = 0.123456  # a reused cell is read back, not recomputed
    marker.write_text(json.dumps(stored))
    args = p.parse_args(["--quick", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "out"),
                         "--docs", str(tmp_path / "B.md"), "--plot", str(tmp_path / "c.png")])
    assert compression.run(args) == 0
    assert "| 0.1235 |" in (tmp_path / "B.md").read_text()


def test_only_tucker_writes_its_own_section_with_variants_and_widths(tmp_path, tiny_checkpoint):
    import argparse

    from edgeseg.bench import compression

    p = argparse.ArgumentParser()
    compression.add_arguments(p)
    docs = tmp_path / "B.md"
    docs.write_text("<!-- bench:compression -->\nkept\n<!-- /bench:compression -->\n")
    args = p.parse_args(["--quick", "--only", "tucker", "--no-control", "--tucker-variants", "rank_multiple=1", "--tucker-widths", "4",
                         "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "out"), "--docs", str(docs),
                         "--plot", str(tmp_path / "c.png")])
    assert compression.run(args) == 0
    md = docs.read_text()
    assert "<!-- bench:compression -->\nkept\n" in md and "<!-- bench:compression-tucker -->" in md  # the full section untouched
    assert "### Tucker-2" in md and "### Fixed point" not in md and "### TernaryNet" not in md and not (tmp_path / "c.png").exists()
    result = json.loads((tmp_path / "out" / "results-compression-tucker.json").read_text())
    rows = {t["key"]: t for t in result["tucker"]}
    assert set(rows) == {"DF 0.5", "DF 0.5, rank_multiple=1"} and result["controls"] == []
    # width-2 convs (2-16 channels): rounded up to 8, ranks reach C and nothing saves parameters; Weber's rule decomposes
    assert rows["DF 0.5"]["decomposed"] < rows["DF 0.5, rank_multiple=1"]["decomposed"]
    assert {(r["width"], r["df"]) for r in result["tucker_widths"]} == {(4, None), (4, 0.5)}
    assert "| 0.5, rank_multiple=1 |" in md and "#### Wider backbones" in md
    assert set(result["latency"]["original"]["ops_ms"]) == {"head", "conv", "reorder", "other"}


@pytest.mark.parametrize("variant, words", [("rank_multiple", "expected KEY=VALUE"),
                                            ("rank_multiple=abc", "DF 0.3, rank_multiple=abc"),
                                            ("bogus=3", "unknown key 'bogus'")])
def test_bad_tucker_variants_are_refused_before_any_training(variant, words):
    from types import SimpleNamespace

    from edgeseg.bench.compression_tucker import check_grid
    from edgeseg.compress.recipe import load_compress_recipe
    from edgeseg.errors import EdgesegError

    args = SimpleNamespace(tucker_variants=[variant], tucker_df=[0.3], tucker_epochs=None)
    with pytest.raises(EdgesegError, match=re.escape(words)):
        check_grid(load_compress_recipe("recipes/compress-tucker.toml"), args)


def test_base_width_gets_its_own_section_and_a_checkpoint_of_another_width_is_refused(tmp_path, tiny_checkpoint):
    import argparse

    from edgeseg.bench import compression
    from edgeseg.errors import EdgesegError

    p = argparse.ArgumentParser()
    compression.add_arguments(p)
    docs = tmp_path / "B.md"
    docs.write_text("<!-- bench:compression-tucker -->\nkept\n<!-- /bench:compression-tucker -->\n")
    common = ["--quick", "--only", "tucker", "--no-control", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "out"),
              "--docs", str(docs), "--plot", str(tmp_path / "c.png")]
    with pytest.raises(EdgesegError, match=r"model\.pt: a width-2 model, not the width 3 asked for"):
        compression.run(p.parse_args(common + ["--base-width", "3"]))
    assert compression.run(p.parse_args(common + ["--base-width", "2"])) == 0
    md = docs.read_text()
    assert "<!-- bench:compression-tucker -->\nkept\n" in md and "<!-- bench:compression-tucker-w2 -->" in md
    assert (tmp_path / "out" / "results-compression-tucker-w2.json").is_file() and not (tmp_path / "c.png").exists()
    cell = json.loads(next((tmp_path / "out" / "cells").glob("tucker-df0.5.json")).read_text())
    assert '"width": 2' in json.dumps(cell)  # the width is part of every cell's key


def test_base_width_names_its_own_checkpoint():
    import argparse

    from edgeseg.bench import compression

    p = argparse.ArgumentParser()
    compression.add_arguments(p)
    assert compression.base_checkpoint(p.parse_args(["--base-width", "16"])) == "runs/unet-s2-brain-w16/model.pt"
    assert compression.base_checkpoint(p.parse_args([])) == compression.DEFAULT_CHECKPOINT
    from edgeseg.errors import EdgesegError

    with pytest.raises(EdgesegError, match=r"--base-width -3: must be a positive backbone width"):
        compression.base_checkpoint(p.parse_args(["--base-width", "-3"]))
    assert compression.base_checkpoint(p.parse_args(["--base-width", "16", "--checkpoint", "x/model.pt"])) == "x/model.pt"


def test_a_run_off_the_defaults_names_its_section_so_ablations_keep_the_default_tables():
    import argparse

    from edgeseg.bench import compression

    p = argparse.ArgumentParser()
    compression.add_arguments(p)
    name = lambda *a: compression.section_name(p.parse_args(list(a)))  # noqa: E731
    assert name() == "compression" and name("--only", "tucker", "fixedpoint") == "compression-tucker-fixedpoint"
    assert name("--only", "ternary") == "compression-ternary"
    assert name("--only", "ternary", "--ternary-epochs", "90", "--ternary-scale", "2") == "compression-ternary-e90-s2"
    assert name("--ternary-width", "32") == "compression-tw32"
    assert name("--only", "tucker", "--ternary-epochs", "90", "--base-width", "16") == "compression-tucker-w16"  # not a ternary run
    assert name("--only", "ternary", "--ternary-recipe", "recipes/compress-ternarynet-float-last.toml") == \
        "compression-ternary-float-last"  # another recipe: its own section, named by the recipe
    assert name("--only", "ternary", "--ternary-recipe", "x/mine.toml", "--ternary-epochs", "90") == "compression-ternary-e90-mine"
    args = p.parse_args(["--quick", "--only", "ternary"])
    compression.quick(args)
    assert compression.section_name(args) == "compression-ternary"


def test_the_printed_command_names_a_non_default_recipe():
    import argparse

    from edgeseg.bench import compression
    from edgeseg.bench.compression_report import command

    p = argparse.ArgumentParser()
    compression.add_arguments(p)
    assert "--ternary-recipe" not in command(p.parse_args(["--only", "ternary"]))
    cmd = command(p.parse_args(["--only", "ternary", "--ternary-recipe", "recipes/compress-ternarynet-weights-only.toml"]))
    assert "--ternary-recipe recipes/compress-ternarynet-weights-only.toml" in cmd


def _tucker_result(tucker, matched, controls):
    ops = {"head": 1.0, "conv": 2.0, "reorder": 0.1, "other": 0.3}
    rows = [{"key": "DF 0.3", "df": 0.3, "seed": s, "dice": d, "ptq_dice": 0.5, "int8_dice": d, "params": 20, "macs": 1e6,
             "decomposed": 3, "epochs": 2, "lr": 1e-3} for s, d in enumerate(tucker)]
    return {"rows": [{"dice": 0.90, "params": 100, "macs": 4e6}], "tucker": rows, "tucker_fp32_ft": [
            {"seed": s, "dice": d} for s, d in enumerate(matched)], "controls": [
            {"key": "DF 0.3", "df": 0.3, "seed": s, "dice": d, "lr": 2.5e-3} for s, d in enumerate(controls)],
            "tucker_finetune": {"lr": 1e-3}, "tucker_scheme": {"name": "tucker", "rank_multiple": 8},
            "latency": {"original": {"ort_ms": 10.0, "nano_ms": 5.0, "nano_precision": "fp16", "ops_ms": ops},
                        "DF 0.3": {"ort_ms": 5.0, "nano_ms": 5.0, "ops_ms": ops}}}


def test_tucker_points_lost_are_paired_by_seed_against_the_budget_matched_fp32():
    from edgeseg.bench.compression_report import tucker
    from edgeseg.bench.compression_tucker import summarise

    # fine-tuned beats the untouched base by 3-5 points, but loses 1 / 3 / 5 points to the FP32 fine-tuned alike
    result = _tucker_result((0.93, 0.94, 0.95), (0.94, 0.97, 1.00), (0.92, 0.92, 0.92))
    s = summarise(result)
    r = s["rows"]["DF 0.3"]
    assert r["vs_fp32"][0] == pytest.approx(4.0) and r["vs_matched"] == pytest.approx((-3.0, 2.0))
    assert r["vs_control"] == pytest.approx((2.0, 1.0)) and s["matched"][0] == pytest.approx(0.97) and s["seeds"] == [0, 1, 2]
    md = "\n".join(tucker(result, SimpleNamespace(repeats=3)))
    assert "| FP32 fine-tuned 2 ep (budget-matched) |" in md and "| -3.00 ± 2.00 |" in md and "| +4.00 ± 1.00 |" in md
    assert "DF 0.3: 80 % fewer, -3.00 ± 2.00 points vs the budget-matched FP32 (+4.00 ± 1.00 vs the base), 2.00x ORT: NOT met (points)" in md
    assert "Per seed (0 / 1 / 2): FP32 fine-tuned 0.9400 / 0.9700 / 1.0000; DF 0.3 fine-tuned 0.9300 / 0.9400 / 0.9500, " \
           "control 0.9200 / 0.9200 / 0.9200." in md
    one = _tucker_result((0.93,), (0.94,), (0.92,))
    md = "\n".join(tucker(one, SimpleNamespace(repeats=3)))  # one seed: plain figures, no sd, no per-seed line
    assert "| -1.00 |" in md and "Per seed" not in md and "2.00x ORT: met" in md
    assert not any("±" in line for line in md.splitlines() if line.startswith("|"))


def test_tucker_seeds_name_their_cells_and_seed_every_arm(tmp_path, tiny_checkpoint):
    import argparse

    from edgeseg.bench import compression

    p = argparse.ArgumentParser()
    compression.add_arguments(p)
    assert p.parse_args([]).tucker_seeds == [0]
    args = p.parse_args(["--quick", "--only", "tucker", "--tucker-seeds", "0", "3", "--checkpoint", str(tiny_checkpoint),
                         "--out", str(tmp_path / "out"), "--docs", str(tmp_path / "B.md"), "--plot", str(tmp_path / "c.png")])
    assert compression.run(args) == 0
    cells = tmp_path / "out" / "cells"
    names = {f.stem for f in cells.iterdir()}
    assert names == {"tucker-df0.5", "tucker-df0.5-scratch", "tucker-fp32-ft",
                     "tucker-df0.5-seed3", "tucker-df0.5-seed3-scratch", "tucker-fp32-ft-seed3"}
    seed_of = lambda name: json.loads((cells / f"{name}.json").read_text())["settings"]["finetune"]["seed"]  # noqa: E731
    assert [seed_of(n) for n in ("tucker-df0.5", "tucker-df0.5-seed3", "tucker-df0.5-seed3-scratch", "tucker-fp32-ft-seed3")] == [0, 3, 3, 3]
    result = json.loads((tmp_path / "out" / "results-compression-tucker.json").read_text())
    assert [m["seed"] for m in result["tucker_fp32_ft"]] == [0, 3] and [t["seed"] for t in result["tucker"]] == [0, 3]
    assert set(result["latency"]) == {"original", "original int8", "DF 0.5", "DF 0.5 int8"}  # one export timed per DF
    md = (tmp_path / "B.md").read_text()
    assert "--tucker-seeds 0 3" in md and "(budget-matched)" in md and "Per seed (0 / 3)" in md and " ± " in md


@pytest.mark.parametrize("scale, words", [(2, "input x2 (canvas 224x192 -> 112x96) + SR head"),
                                          (1, "input x1 (canvas 224x192 -> 224x192) (full resolution: no SR head)")])
def test_ternary_table_says_whether_the_arms_had_an_sr_head(scale, words):
    from edgeseg.bench.compression_report import ternary

    rows = [dict(r, width=8, scale=scale, epochs=30, ort_diff=None) for r in _rows((0.89, 0.90, 0.88), (0.80, 0.82, 0.84))]
    result = {"scratch": rows, "scratch_summary": summarise(rows),
              "scratch_protocol": {"lr": 2.5e-3, "lr_decay": 0.9, "bn_freeze_epochs": 3}}
    text = "\n".join(ternary(result, SimpleNamespace()))
    assert words in text and ("+ SR head" in text) == (scale > 1)


def test_ternary_arms_run_alone_name_their_section_and_merge_through_the_cell_cache(tmp_path, tiny_checkpoint):
    import argparse

    from edgeseg.bench import compression
    from edgeseg.bench.compression_report import command

    p = argparse.ArgumentParser()
    compression.add_arguments(p)
    partial = ["--only", "ternary", "--ternary-arms", "binarynet", "float", "--ternary-epochs", "540"]
    assert compression.section_name(p.parse_args(partial)) == "compression-ternary-e540-arms-float-binarynet"
    assert "--ternary-arms binarynet float" in command(p.parse_args(partial))
    assert compression.section_name(p.parse_args(partial[:2] + ["--ternary-arms", "float", "ternarynet", "binarynet"])) == \
        "compression-ternary"  # all three named: the whole table
    with pytest.raises(SystemExit):
        p.parse_args(["--ternary-arms", "fp16"])
    common = ["--quick", "--only", "ternary", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "out"),
              "--docs", str(tmp_path / "B.md"), "--plot", str(tmp_path / "c.png")]
    assert compression.run(p.parse_args(common + ["--ternary-arms", "float"])) == 0
    assert sorted(f.name for f in (tmp_path / "out" / "cells").iterdir()) == ["scratch-float-seed0.json"]
    result = json.loads((tmp_path / "out" / "results-compression-ternary.json").read_text())
    assert [r["arm"] for r in result["scratch"]] == ["float"] and "within_3_points" not in result["scratch_summary"]
    stored = json.loads((tmp_path / "out" / "cells" / "scratch-float-seed0.json").read_text())
    assert compression.run(p.parse_args(common)) == 0  # the other arms now, the float cell reused
    result = json.loads((tmp_path / "out" / "results-compression-ternary.json").read_text())
    assert [r["arm"] for r in result["scratch"]] == ["float", "ternarynet", "binarynet"]
    assert result["scratch"][0]["dice"] == stored["result"]["dice"] and "within_3_points" in result["scratch_summary"]
