import pytest
import torch
from helpers import digits_domain, domain_spec

from lightning_modules.domains import DomainError, build_domain


def test_fixed_stratified_split_of_all_digits():
    d = digits_domain("digits", None, "none", 8)
    assert len(d.y_train) + len(d.y_test) == 1797
    assert abs(len(d.y_test) / 1797 - 0.3) < 0.01
    # stratified: every class has ~30% of its images in the test split
    frac = torch.bincount(d.y_test) / (torch.bincount(d.y_test) + torch.bincount(d.y_train))
    assert frac.min() > 0.27 and frac.max() < 0.33
    assert d.x_train.shape[1:] == (1, 8, 8) and d.x_train.min() >= 0 and d.x_train.max() <= 1


def test_class_subset_is_relabelled_and_disjoint():
    src = digits_domain("digits_0to4", (0, 1, 2, 3, 4), "none", 8)
    tgt = digits_domain("digits_5to9", (5, 6, 7, 8, 9), "none", 8)
    assert tgt.class_names == ("5", "6", "7", "8", "9")
    assert set(tgt.y_train.tolist()) == {0, 1, 2, 3, 4}
    assert len(src.y_train) + len(tgt.y_train) == len(digits_domain("d", None, "none", 8).y_train)


def test_transforms_are_deterministic_shifts():
    plain = digits_domain("a", None, "none", 8).x_train
    rot = digits_domain("b", None, "rot90", 8).x_train
    inv = digits_domain("c", None, "invert", 8).x_train
    perm = digits_domain("d", None, "permute", 8).x_train
    assert torch.equal(rot, torch.rot90(plain, 1, dims=(2, 3)))
    assert torch.allclose(inv, 1 - plain)
    assert torch.equal(perm.flatten(1).sort(1).values, plain.flatten(1).sort(1).values)
    assert not torch.equal(perm, plain)


def test_resize_to_model_input():
    assert digits_domain("a", None, "none", 16).x_test.shape[1:] == (1, 16, 16)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"dataset": "mnist_v9"}, "data.dataset='mnist_v9'"),
        ({"transform": "flip"}, "data.transform='flip'"),
        ({"transform": ["rot90", "rotate:x"]}, "'x' is not a number"),
        ({"classes": [3, 11]}, "data.classes"),
        ({"dataset": "mnist", "root": "/no/such/dir"}, "no usable files under data.root=/no/such"),
        ({"dataset": "cifar10"}, "data.root is not set"),
        ({"dataset": "imagefolder", "root": "/no/such/tree"}, "data.root=/no/such/tree is not a"),
    ],
)
def test_bad_domain_is_named(kw, match, tmp_path):
    spec = domain_spec(**kw)
    with pytest.raises(DomainError, match=match):
        build_domain("x", spec, 8, 1, str(tmp_path))


def test_shifts_compose_in_order_and_convert_channels():
    plain = digits_domain("a", None, "none", 8).x_train
    both = digits_domain("b", None, ["rot90", "invert"], 8).x_train
    assert torch.allclose(both, 1 - torch.rot90(plain, 1, dims=(2, 3)))
    noisy = digits_domain("c", None, ["noise:0.2"], 8).x_train
    assert torch.equal(noisy, digits_domain("c2", None, ["noise:0.2"], 8).x_train)  # fixed
    low = digits_domain("d", None, "contrast:0.5", 8).x_train
    assert low.std() < plain.std()
    rgb = digits_domain("e", None, "none", 8, in_chans=3).x_train
    assert rgb.shape[1] == 3 and torch.equal(rgb[:, 0], plain[:, 0])
