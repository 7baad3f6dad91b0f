import pytest
import torch

from lightning_modules.domains import DomainError, build_domain


def test_fixed_stratified_split_of_all_digits():
    d = build_domain("digits", "digits", None, "none", 8)
    assert len(d.y_train) + len(d.y_test) == 1797
    assert abs(len(d.y_test) / 1797 - 0.3) < 0.01
    # stratified: every class has ~30% of its images in the test split
    frac = torch.bincount(d.y_test) / (torch.bincount(d.y_test) + torch.bincount(d.y_train))
    assert frac.min() > 0.27 and frac.max() < 0.33
    assert d.x_train.shape[1:] == (1, 8, 8) and d.x_train.min() >= 0 and d.x_train.max() <= 1


def test_class_subset_is_relabelled_and_disjoint():
    src = build_domain("digits_0to4", "digits", (0, 1, 2, 3, 4), "none", 8)
    tgt = build_domain("digits_5to9", "digits", (5, 6, 7, 8, 9), "none", 8)
    assert tgt.class_names == ("5", "6", "7", "8", "9")
    assert set(tgt.y_train.tolist()) == {0, 1, 2, 3, 4}
    assert len(src.y_train) + len(tgt.y_train) == len(
        build_domain("d", "digits", None, "none", 8).y_train
    )


def test_transforms_are_deterministic_shifts():
    plain = build_domain("a", "digits", None, "none", 8).x_train
    rot = build_domain("b", "digits", None, "rot90", 8).x_train
    inv = build_domain("c", "digits", None, "invert", 8).x_train
    perm = build_domain("d", "digits", None, "permute", 8).x_train
    assert torch.equal(rot, torch.rot90(plain, 1, dims=(2, 3)))
    assert torch.allclose(inv, 1 - plain)
    assert torch.equal(perm.flatten(1).sort(1).values, plain.flatten(1).sort(1).values)
    assert not torch.equal(perm, plain)


def test_resize_to_model_input():
    assert build_domain("a", "digits", None, "none", 16).x_test.shape[1:] == (1, 16, 16)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"dataset": "mnist"}, "data.dataset='mnist'"),
        ({"transform": "flip"}, "data.transform='flip'"),
        ({"classes": (3, 11)}, "data.classes"),
    ],
)
def test_bad_domain_is_named(kw, match):
    args = {"name": "x", "dataset": "digits", "classes": None, "transform": "none", "image_size": 8}
    args.update(kw)
    with pytest.raises(DomainError, match=match):
        build_domain(**args)
