"""Deep supervision (J-Net): per-scale targets, soft-target loss, the supervision modes and their recipe switch."""
from pathlib import Path

import pytest
import torch

from edgeseg.errors import EdgesegError
from edgeseg.models import create_model
from edgeseg.train.losses import one_hot, segmentation_loss, soft_target_loss
from edgeseg.train.supervision import (deep_supervision_loss, nearest_downsample, resolve_supervision, scale_targets,
                                       supervision_loss)


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors; the machine's cores are shared
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def test_base_target_is_the_centre_sample_and_intermediate_targets_are_soft():
    label = torch.tensor([[[0, 1, 2, 2], [1, 1, 2, 0], [0, 0, 0, 0], [2, 2, 1, 1]]])  # (1, 4, 4)
    base, mid, full = scale_targets(label, [(1, 1), (2, 2), (4, 4)], 3)
    assert base.tolist() == [[[label[0, 2, 2].item()]]]  # factor 4: offset 2
    assert torch.equal(full, label)
    # x2 linear (half-pixel) downscale of the one-hot = the mean of each 2x2 block, computed by hand:
    # top-left block {0,1,1,1} -> (1/4, 3/4, 0); top-right {2,2,2,0} -> (1/4, 0, 3/4)
    assert mid.shape == (1, 3, 2, 2)
    assert torch.allclose(mid[0, :, 0, 0], torch.tensor([0.25, 0.75, 0.0]))
    assert torch.allclose(mid[0, :, 0, 1], torch.tensor([0.25, 0.0, 0.75]))
    assert torch.allclose(mid.sum(1), torch.ones(1, 2, 2))  # probabilities


def test_nearest_downsample_offsets():
    x = torch.arange(64).reshape(1, 8, 8)
    assert nearest_downsample(x, 8).tolist() == [[[x[0, 4, 4].item()]]]
    assert torch.equal(nearest_downsample(x, 1), x)


def test_soft_target_loss_equals_the_hard_loss_on_one_hot_targets():
    logits, label = torch.randn(2, 3, 6, 6), torch.randint(0, 3, (2, 6, 6))
    hard = segmentation_loss(logits, label, 0.7)
    soft = soft_target_loss(logits, one_hot(label, 3), 0.7)
    assert abs(hard.item() - soft.item()) < 1e-6  # same maths, float32


def test_deep_loss_is_the_unweighted_sum_over_scales():
    label = torch.randint(0, 3, (2, 8, 8))
    outs = [torch.randn(2, 3, s, s) for s in (2, 4, 8)]
    t = scale_targets(label, [(2, 2), (4, 4), (8, 8)], 3)
    expected = segmentation_loss(outs[0], t[0]) + soft_target_loss(outs[1], t[1]) + segmentation_loss(outs[2], t[2])
    assert abs(deep_supervision_loss(outs, label).item() - expected.item()) < 1e-5


def test_last_output_must_be_at_label_resolution():
    with pytest.raises(ValueError, match="label's resolution"):
        scale_targets(torch.zeros(1, 8, 8, dtype=torch.long), [(2, 2), (4, 4)], 3)


def test_modes_resolve_and_compute():
    jnet = create_model("unet", 1, 3, 4, head="jnet", width=2)
    plain = create_model("unet", 1, 3, 4, sr_head=False, width=2)
    assert resolve_supervision("auto", jnet) == "deep"
    assert resolve_supervision("auto", create_model("unet", 1, 3, 4, width=2)) == "final"  # pixelshuffle
    assert resolve_supervision("auto", plain) == "final"
    with pytest.raises(EdgesegError, match=r"unknown mode 'dep' \(did you mean 'deep'\?\)"):
        resolve_supervision("dep", jnet)
    with pytest.raises(EdgesegError, match="sr_head = false"):
        resolve_supervision("base", jnet)
    x, y = torch.randn(2, 1, 8, 8), torch.randint(0, 3, (2, 32, 32))
    # "base": the 1x logits against the nearest-sampled label, nothing else
    base = supervision_loss("base")(plain, x, y, 1.0)
    assert abs(base.item() - segmentation_loss(plain.backbone_logits(x), y[:, 2::4, 2::4]).item()) < 1e-6
    final = supervision_loss("final")(plain, x, y, 1.0)
    assert abs(final.item() - segmentation_loss(plain(x), y).item()) < 1e-6
    deep = supervision_loss("deep")(jnet, x, y, 1.0)
    assert abs(deep.item() - deep_supervision_loss(jnet.pyramid(x), y).item()) < 1e-6


def test_recipe_keys_head_and_supervision(tmp_path):
    from edgeseg.train.checkpoint import build_model
    from edgeseg.train.recipe import load_recipe

    path = tmp_path / "r.toml"
    path.write_text('[model]\nname = "unet"\nscale = 8\nhead = "jnet"\nwidth = 2\n[train]\nsupervision = "deep"\n')
    recipe = load_recipe(path)
    assert (recipe.model.head, recipe.train.supervision) == ("jnet", "deep")
    assert build_model(recipe, 3).head_parameters() == 183
    path.write_text('[model]\nhead = "pixelshufle"\n')
    with pytest.raises(EdgesegError, match="did you mean 'pixelshuffle'"):
        build_model(load_recipe(path), 3)


def test_default_recipe_keeps_the_pixelshuffle_head_and_final_loss():
    from edgeseg.train.recipe import load_recipe

    recipe = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "unet-s2-brain.toml")
    assert recipe.model.head == "pixelshuffle"
    model = create_model("unet", 1, 3, 2, head=recipe.model.head, width=2)
    assert resolve_supervision(recipe.train.supervision, model) == "final"


def test_one_deep_supervision_step_lowers_the_loss():
    model = create_model("unet", 1, 3, 8, head="jnet", width=2).train()
    x, y = torch.randn(2, 1, 2, 2), torch.randint(0, 3, (2, 16, 16))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = supervision_loss("deep")
    first = loss_fn(model, x, y, 1.0)
    for _ in range(3):
        opt.zero_grad()
        loss_fn(model, x, y, 1.0).backward()
        opt.step()
    assert loss_fn(model, x, y, 1.0).item() < first.item()
