"""Cache keys: built from the values a build actually used, not config fields left ``null``.

``model.in_chans: null`` means "the target's channels": a key that hashed the config alone gave
an RGB image-folder run and a gray digits run the same pretrained backbone, and the second run
crashed loading it (``size mismatch for conv1``). So keys hold the resolved channels and image
size, each domain's resolved spec (absolute paths) together with what was loaded from it (class
names, split sizes, native and used shapes), the settings of the stage, the seed, threads, the
determinism flag, the device and the cache version (:func:`common.cache.versioned`).
:func:`shared_key` builds the part every run-dependent key shares, so the keys cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from benchmarks.config import numeric_trainer
from common.cache import versioned
from lightning_modules.language_models import HUB, located

if TYPE_CHECKING:
    from benchmarks.inputs import RunContext
    from lightning_modules.domains import Domain


def _container(node: DictConfig) -> Any:
    return OmegaConf.to_container(node, resolve=True)


def domain_key(node: DictConfig, dom: Domain) -> dict[str, Any]:
    """A domain as used: its resolved spec and what was loaded from it.

    Relative and ``~`` paths are made absolute (``./data`` is another folder from another
    directory); the loaded facts catch what the spec cannot say, such as an image folder whose
    files were replaced (gray for RGB) under the same path. The name only labels the domain.
    """
    spec = _container(node)
    for field in ("root", "test_root"):
        if spec.get(field):
            spec[field] = str(Path(spec[field]).expanduser().resolve())
    spec.pop("name", None)
    if spec.get("text", 0) is None:  # an image domain's key, as before text domains existed
        spec.pop("text")
    facts = dom.facts()
    facts.pop("name")
    return {"spec": spec, "loaded": facts}


def shared_key(ctx: RunContext, kind: str) -> dict[str, Any]:
    """What every key of a run shares: the model as built, the train seed and how fits ran.

    ``train_seed``, not ``subset_seed``: every labelled subset of a train seed shares one
    pretraining; a key that depends on the labelled subset adds ``subset_seed`` itself.

    The channels are the target domain's as converted (the resolved ``model.in_chans``), the
    side length the model's; threads, the determinism flag, the device and the trainer settings
    change the numbers a fit produces.
    """
    cfg = ctx.cfg
    trainer = numeric_trainer(_container(cfg.trainer))
    if cfg.model.text is not None:  # a language model: its node says what is built
        model: dict[str, Any] = {"name": cfg.model.name, "text": _container(cfg.model.text)}
        if model["text"].get("bpe_vocab", 0) is None:  # bytes: the key it had before BPE
            model["text"].pop("bpe_vocab")
        where = located(str(cfg.model.name)) if cfg.model.text.architecture == HUB else None
        if where is not None and Path(where).is_dir():  # a re-saved checkpoint rebuilds
            model["files"] = _files(Path(where))
    else:
        model = {
            "name": cfg.model.name,
            "image_size": int(cfg.model.image_size),
            "in_chans": int(ctx.target.x_train.shape[1]),
            "drop_rate": cfg.model.drop_rate,
        }
    if cfg.model.factory is not None:  # a user's backbone: its node, not model.name, says what
        model["factory"] = _container(cfg.model.factory)
    return versioned(
        kind,
        model=model,
        train_seed=int(cfg.train_seed),
        threads=int(cfg.threads),
        deterministic=bool(cfg.deterministic),
        device=ctx.device.type,
        trainer=trainer,
    )


def _files(folder: Path) -> list[list[Any]]:
    """Name, size and mtime of each file of a checkpoint directory (reading GBs to hash is slow)."""
    found = sorted(p for p in folder.rglob("*") if p.is_file())
    return [[str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns] for p in found]


def pretrain(ctx: RunContext) -> dict[str, Any]:
    """The source-pretrained backbone (and its source probe, whose numbers the entry keeps)."""
    cfg = ctx.cfg
    stage = _container(cfg.pretrain)
    if stage.get("mask_share", 0) is None:  # not a masked LM: the key it had before text
        stage.pop("mask_share")
    key = shared_key(ctx, "pretrain") | {
        "pretrain": stage,
        "source": domain_key(cfg.source, ctx.source),
        # the cached source accuracy is this probe's: the declared one, not a trial's
        "probe": _container(ctx.source_probe),
    }
    checkpoint = cfg.model.checkpoint
    if cfg.pretrain.objective == "timm" and checkpoint:
        path = Path(str(checkpoint)).expanduser().resolve()
        key["checkpoint"] = str(path)
        if path.exists():  # edits rebuild
            key["checkpoint_file"] = [path.stat().st_size, path.stat().st_mtime_ns]
    return key


def continued(
    ctx: RunContext, base: dict[str, Any], node: DictConfig, dom: Domain, earlier: int
) -> dict[str, Any]:
    """One continued-pretraining stage, chained to the key of the stage before (``base``).

    ``earlier`` is how many domains replay may draw from (incremental pretraining and a stream's
    first stage: the source), so stages that replay from different pools never share an entry.
    """
    return {
        "base": base,
        "target": domain_key(node, dom),
        "continued": _container(ctx.cfg.continued_pretrain),
        "earlier": int(earlier),
    }


def features(ctx: RunContext, backbone_hash: str) -> dict[str, Any]:
    """The frozen backbone's target train/test features."""
    return shared_key(ctx, "features") | {
        "backbone": backbone_hash,
        "target": domain_key(ctx.cfg.data, ctx.target),
    }


def bits(ctx: RunContext, backbone_hash: str, node: DictConfig, dom: Domain) -> dict[str, Any]:
    """A cached language model's bits per byte on one domain's test passages.

    The mask share is the pretraining objective's (a masked LM's bits are at that share), which
    the backbone's key holds too; it is stated so the entry says what it scored.
    """
    return shared_key(ctx, "bits") | {
        "backbone": backbone_hash,
        "domain": domain_key(node, dom),
        "mask_share": ctx.cfg.pretrain.mask_share,
    }


def stream_start(ctx: RunContext, backbone_hash: str, domains: list[Domain]) -> dict[str, Any]:
    """Row 0 of a stream's accuracy matrix and its random-init baselines.

    ``domains`` are the stream's (after the source, which the backbone's key holds); the
    labelled subsets follow from the budget and ``subset_seed``.
    """
    cfg = ctx.cfg
    nodes = [cfg.stream[name] for name in cfg.stream]
    return shared_key(ctx, "stream_start") | {
        "backbone": backbone_hash,
        "stream": [domain_key(n, d) for n, d in zip(nodes, domains, strict=True)],
        "probe": _container(cfg.probe),
        "budget": str(cfg.budget.per_class),
        "subset_seed": int(cfg.subset_seed),  # the per-domain labelled subsets
    }


def fisher(ctx: RunContext, backbone_hash: str, likelihood: str) -> dict[str, Any]:
    """EWC's diagonal Fisher of the pretrained backbone on the source (benchmarks/anchoring.py).

    ``likelihood`` says whose ``p(y|x)`` it is (the supervised stage's head or the source probe,
    whose penalty the pretrained entry fixes); the images are ``ewc.fisher_samples`` of the
    source's train split, drawn with the train seed the shared key holds.
    """
    return shared_key(ctx, "fisher") | {
        "backbone": backbone_hash,
        "likelihood": likelihood,
        "fisher_samples": ctx.cfg.ewc.fisher_samples,
    }
