"""The console entry point: help on every subcommand, one-line errors with a non-zero exit."""
import pytest

from edgeseg.cli import build_parser, main


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_core_subcommands_exist():
    assert {"train", "evaluate", "models", "bench"} <= set(_subcommands())


@pytest.mark.parametrize("name", _subcommands())
def test_help_on_each_subcommand(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert "usage: edgeseg" in capsys.readouterr().out


def test_evaluate_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "none.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "none.pt" in err and "not found" in err


def test_train_bad_recipe_is_one_line(tmp_path, capsys):
    recipe = tmp_path / "bad.toml"
    recipe.write_text("[model]\nname = 'unet'\n[trian]\nepochs = 1\n")
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "trian" in err and "did you mean 'train'" in err
    assert not (tmp_path / "runs").exists()


def test_models_lists_registry(capsys):
    assert main(["models"]) == 0
    assert "unet" in capsys.readouterr().out


def test_cli_parser_needs_no_heavy_packages():
    """The base install (no torch/onnx/nibabel/rich) must still give `edgeseg run`."""
    import subprocess
    import sys

    code = ("import sys\n"
            "for m in ['torch', 'onnx', 'onnxsim', 'nibabel', 'matplotlib', 'rich', 'scipy']: sys.modules[m] = None\n"
            "from edgeseg.cli import main\n"
            "try:\n    main(['run', '--help'])\nexcept SystemExit as e:\n    sys.exit(e.code)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "MODEL" in result.stdout or "model" in result.stdout


@pytest.mark.parametrize("content, expected", [
    (None, "recipe file not found"),
    ('[scheme]\nname = "quantum"\n', "unknown compression scheme 'quantum'"),
    ('[shceme]\nname = "tucker"\n', "did you mean 'scheme'"),
])
def test_compress_bad_recipe_is_one_line(tmp_path, capsys, content, expected):
    recipe = tmp_path / "c.toml"
    if content is not None:
        recipe.write_text(f'out_dir = "{tmp_path / "out"}"\n' + content)
    assert main(["compress", str(recipe)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err
    assert not (tmp_path / "out").exists()  # nothing written for a rejected recipe
