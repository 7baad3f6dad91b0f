"""Checks of a composed config that its types alone cannot make, before anything is written.

The schema (:mod:`benchmarks.schema`) says which keys exist and their types; here each value a
run cannot use is refused with one line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import timm
from omegaconf import DictConfig, OmegaConf

from benchmarks.baseline_config import problem
from lightning_modules import shifts
from lightning_modules.budgets import BudgetError, parse_per_class
from lightning_modules.datasets import TEXT_DATASETS
from lightning_modules.domains import DATASETS
from lightning_modules.language_models import ARCHITECTURES, HUB, hub_parts, lm_kind, positions
from lightning_modules.pretrain import OBJECTIVES, PUBLISHED, SCHEDULES


class ConfigError(ValueError):
    """A config value that cannot run; the message names the key, the value and what is allowed."""


HEAD_INITS = ("random", "probe")
# Regimes whose name says how the head starts: a config that contradicts the name is refused.
HEAD_INIT_OF = {"finetune": "random", "lp_ft": "probe", "wise_ft": "probe"}
GRADIENT_NODES = ("pretrain", "continued_pretrain", "train")  # steps, batch_size, warmup
PENALISED = ("l2sp", "ewc")  # regimes whose loss the built-in ClassifierModule adds a penalty to
MITIGATIONS = ("wise_ft", *PENALISED)  # each reads the config node of its own name


# Continued pretraining on the target is only "incremental" when the target differs from the
# source; on the same images it is just longer pretraining, and its comparison is meaningless.
NEEDS_DISTINCT_SOURCE = ("incremental_pretrain", "task_pretrain", "domain_then_task_pretrain")
# TAPT's data is the target's passages without its domain corpus: with no corpus it is DAPT.
NEEDS_DOMAIN_CORPUS = ("task_pretrain", "domain_then_task_pretrain")
EVALUATE_ON = ("test", "validation")
# The regimes built for text so far; the others refuse a language model in one line.
TEXT_REGIMES = (
    "scratch", "finetune", "lp_ft", "linear_probe", "incremental_pretrain", "longer_pretrain",
    "unrelated_pretrain", "task_pretrain", "domain_then_task_pretrain", "continual_pretrain",
    "tfidf",
)  # fmt: skip


def _folders(dom: DictConfig) -> tuple[str | None, ...]:
    return tuple(
        str(Path(dom[k]).expanduser().resolve())
        if not OmegaConf.is_missing(dom, k) and dom[k]
        else None
        for k in ("root", "test_root")
    )


def _same_images(dom: DictConfig) -> tuple[Any, ...]:
    """What decides a domain's images and labels (its name does not; its folder does)."""
    classes = tuple(dom.classes) if dom.classes is not None else None
    split = (dom.test_fraction, dom.split_seed, dom.evaluate_on, dom.validation_fraction)
    text = json.dumps(OmegaConf.to_container(dom.text), sort_keys=True) if dom.text else None
    return (dom.dataset, classes, dom.transform, *split, _folders(dom), text)


def _origin(dom: DictConfig) -> tuple[Any, ...]:
    """Where a domain's examples come from, however they are split or cut into passages.

    A text corpus is its dataset (other topics or packages of it are the same text); an image
    domain its dataset, classes, transform and folders.
    """
    if dom.dataset == "hf_text":  # your own text: which dataset, configuration and files
        hub = dom.text.hub
        return (dom.dataset, hub.path, hub.name, json.dumps(OmegaConf.to_container(hub.data_files)
                if OmegaConf.is_config(hub.data_files) else hub.data_files))  # fmt: skip
    if dom.dataset in TEXT_DATASETS:
        return (dom.dataset,)
    classes = tuple(dom.classes) if dom.classes is not None else None
    return (dom.dataset, classes, dom.transform, _folders(dom))


def _check(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is invalid; allowed: {allowed}")


def _check_domain(prefix: str, dom: DictConfig) -> None:
    _check(dom.dataset in DATASETS, f"{prefix}.dataset", dom.dataset, ", ".join(DATASETS))
    if dom.dataset not in ("digits", "fractaldb", *TEXT_DATASETS):
        _check(
            not OmegaConf.is_missing(dom, "root") and dom.root is not None,
            f"{prefix}.root",
            "unset",
            f"the folder that holds the {dom.dataset} files ({prefix}.root=/path)",
        )
    _check(
        dom.in_memory or dom.dataset == "imagefolder",
        f"{prefix}.in_memory",
        False,
        f"true for {dom.dataset} (streaming from files is built for imagefolder trees)",
    )
    _check(dom.workers >= 0, f"{prefix}.workers", dom.workers, "an int >= 0")
    try:
        shifts.parse(OmegaConf.to_container(dom, resolve=True)["transform"])
    except shifts.ShiftError as err:
        raise ConfigError(str(err).replace("data.", f"{prefix}.", 1)) from None
    if dom.dataset == "fractaldb":
        _check(dom.fractal is not None, f"{prefix}.fractal", None, "generation settings")
        f = dom.fractal
        _check(1 <= f.instances <= 100, f"{prefix}.fractal.instances", f.instances, "1..100")
        _check(0 < f.threshold < 1, f"{prefix}.fractal.threshold", f.threshold, "0 < t < 1")
    _check(0 < dom.test_fraction < 1, f"{prefix}.test_fraction", dom.test_fraction, "0 < f < 1")
    allowed = ", ".join(EVALUATE_ON)
    _check(dom.evaluate_on in EVALUATE_ON, f"{prefix}.evaluate_on", dom.evaluate_on, allowed)
    _check(
        0 < dom.validation_fraction < 1,
        f"{prefix}.validation_fraction",
        dom.validation_fraction,
        "0 < f < 1",
    )


def _check_modality(prefix: str, dom: DictConfig, text: bool) -> None:
    """A domain beside the target (a stream stage, the control) is of the target's modality."""
    _check((dom.dataset in TEXT_DATASETS) == text, f"{prefix}.dataset", dom.dataset,
           f"a{' text' if text else 'n image'} dataset, as the target")  # fmt: skip


def _check_length(prefix: str, dom: DictConfig, data: DictConfig) -> None:
    """The target's passage length: stages that mix or chain corpora feed one model one shape."""
    length = data.text.passage_bytes
    _check(dom.text.passage_bytes == length, f"{prefix}.text.passage_bytes",
           dom.text.passage_bytes, f"data.text.passage_bytes ({length})")  # fmt: skip


def _check_stream(cfg: DictConfig) -> None:
    """A stream has domains, and its last one is the run's target."""
    _check(len(cfg.stream) >= 1, "stream", "{}", "one or more domains (data@stream.<key>=<data>)")
    text = cfg.data.dataset in TEXT_DATASETS
    for key, dom in cfg.stream.items():
        _check_domain(f"stream.{key}", dom)
        _check_modality(f"stream.{key}", dom, text)
    last = list(cfg.stream.values())[-1]
    _check(
        _same_images(cfg.data) == _same_images(last),
        "data",
        cfg.data.name,
        f"the stream's last domain ({last.name}) for {cfg.regime.name}",
    )


def _check_comparisons(comp: DictConfig, reads: dict[str, tuple[str, ...]]) -> None:
    """Every regime named by the declared comparisons exists; a pair has two of them."""
    allowed = ", ".join(sorted(reads))
    for key in ("references", "pretrained"):
        for name in comp[key]:
            _check(name in reads, f"comparisons.{key}", name, allowed)
    for pair in comp.pairs:
        _check(len(pair) == 2, "comparisons.pairs", list(pair), "pairs [a, b] of regime names")
        for name in pair:
            _check(name in reads, "comparisons.pairs", name, allowed)


def _check_tracking(cfg: DictConfig) -> None:
    """``train.track_every`` scores the fit in this process, through the built-in module."""
    every = cfg.train.track_every
    if every is None:
        return
    _check(every >= 1, "train.track_every", every, "null or an int >= 1")
    strategy = str(cfg.trainer.strategy)
    _check(
        "ddp" not in strategy,
        "trainer.strategy",
        strategy,
        "a single-process strategy with train.track_every (its callback scores in this process)",
    )
    _check(
        cfg.train.module is None,
        "train.module",
        cfg.train.module,
        "null with train.track_every (it scores the built-in module's backbone)",
    )


def _check_wise_ft(cfg: DictConfig) -> None:
    """``wise_ft``'s curve, its BatchNorm handling, and an alpha the protocol can choose."""
    n = cfg.wise_ft
    alphas = list(n.alphas)
    _check(
        bool(alphas) and all(0 <= a <= 1 for a in alphas),
        "wise_ft.alphas",
        alphas,
        "a non-empty list of numbers in [0, 1]",
    )
    allowed = ("interpolate", "recompute")
    _check(n.batchnorm in allowed, "wise_ft.batchnorm", n.batchnorm, ", ".join(allowed))
    protocol = cfg.selection.protocol
    _check(
        protocol != "cv",
        "selection.protocol",
        protocol,
        "fixed, holdout or oracle for wise_ft (a cv choice of alpha would need a curve per "
        "fold, which is not built)",
    )
    if n.alpha is None:
        _check(
            protocol in ("holdout", "oracle"),
            "wise_ft.alpha",
            None,
            "a number in [0, 1] under selection=fixed (null chooses on a holdout or oracle)",
        )
    else:
        _check(0 <= n.alpha <= 1, "wise_ft.alpha", n.alpha, "null or a number in [0, 1]")


def _check_mitigation(cfg: DictConfig, node: str) -> None:
    """The node of ``wise_ft``, ``l2sp`` or ``ewc`` (benchmarks/interpolating.py, anchoring.py)."""
    _check(
        cfg.train.module is None,
        "train.module",
        cfg.train.module,
        f"null for {node} (it reads the built-in ClassifierModule: its backbone and its loss)",
    )
    if node == "wise_ft":
        _check_wise_ft(cfg)
        return
    n = cfg[node]
    _check(n.strength >= 0, f"{node}.strength", n.strength, "a number >= 0")
    if node == "ewc":
        samples = n.fisher_samples
        _check(
            samples is None or samples >= 1, "ewc.fisher_samples", samples, "null or an int >= 1"
        )


def _check_image_model(cfg: DictConfig) -> None:
    size = cfg.model.image_size
    _check(size is not None and size >= 8, "model.image_size", size, "an int >= 8")
    _check(
        cfg.model.factory is not None or timm.is_model(cfg.model.name),  # a factory: a label
        "model.name",
        cfg.model.name,
        "a timm model name (timm.list_models()), e.g. test_resnet, resnet18",
    )
    _check(cfg.regime.name != "tfidf", "regime.name", "tfidf", "a text regime for text data")
    _check(cfg.pretrain.objective != "hf", "pretrain.objective", "hf",
           "timm for an image model's published weights (hf is model=hf_lm's)")  # fmt: skip


def _check_passages(prefix: str, dom: DictConfig, model: DictConfig) -> None:
    """A text domain the language model can take: its passages' settings and what reads them."""
    t, name, texts = model.text, model.name, ", ".join(TEXT_DATASETS)
    _check(dom.dataset in TEXT_DATASETS, f"{prefix}.dataset", dom.dataset,
           f"a text dataset for the language model {name}: {texts}")  # fmt: skip
    _check(dom.text is not None, f"{prefix}.text", None, "the passages' settings")
    length = dom.text.passage_bytes
    if t.architecture != HUB:
        _check(2 <= length <= t.max_length, f"{prefix}.text.passage_bytes", length,
               f"2..{t.max_length} (model.text.max_length: the positions {name} has)")  # fmt: skip
    else:  # a passage of n bytes is at most n tokens, plus the special tokens its tokenizer adds
        room, specials = _hub_room(model)
        _check(2 <= length <= room - specials, f"{prefix}.text.passage_bytes", length,
               f"2..{room - specials} (the {room} positions of {name}, less the {specials} special "
               "tokens its tokenizer adds)")  # fmt: skip
    _check(dom.text.min_examples >= 2, f"{prefix}.text.min_examples", dom.text.min_examples,
           "an int >= 2 (a class needs a train and a test passage)")  # fmt: skip
    _check(dom.text.unlabeled_passages >= 0, f"{prefix}.text.unlabeled_passages",
           dom.text.unlabeled_passages, "an int >= 0")  # fmt: skip
    hub = dom.dataset == "hf_text"
    _check(hub == (dom.text.hub is not None), f"{prefix}.text.hub", dom.text.hub,
           "set for hf_text (text.hub.path=...), and only there")  # fmt: skip
    if hub:
        allowed = "a hub dataset name, or csv | json | parquet | text with data_files"
        _check(not OmegaConf.is_missing(dom.text.hub, "path"), f"{prefix}.text.hub.path",
               "unset", allowed)  # fmt: skip
    code = dom.dataset == "python_code"
    _check(code or dom.text.packages is None, f"{prefix}.text.packages", dom.text.packages,
           "null: only python_code reads them")  # fmt: skip
    corpus = code or (hub and dom.text.hub.unlabeled_split is not None)
    _check(corpus or dom.text.unlabeled_passages == 0, f"{prefix}.text.unlabeled_passages",
           dom.text.unlabeled_passages,
           "0 here: python_code, or hf_text with text.hub.unlabeled_split, reads it")  # fmt: skip


BPE_MIN = 258  # a byte-level BPE's alphabet and its two special tokens
SIZES = ("width", "layers", "heads", "max_length", "activation", "dropout")  # model.text's


def _hub_room(model: DictConfig) -> tuple[int, int]:
    """A checkpoint's positions and the special tokens its tokenizer adds to a passage."""
    try:
        config, tokenizer = hub_parts(str(model.name))
    except ValueError as err:
        raise ConfigError(f"model.name={model.name} {err}") from None
    return positions(config), tokenizer.num_special_tokens_to_add()


def _check_text(cfg: DictConfig, read: tuple[str, ...]) -> None:
    """A language model, text domains it can take, and the regimes and objectives built for it."""
    t, name = cfg.model.text, cfg.model.name
    texts = ", ".join(TEXT_DATASETS)
    _check(t is not None, "model", name, f"a language model (model=gpt2_tiny) for {texts}")
    _check(t.architecture in (*ARCHITECTURES, HUB), "model.text.architecture", t.architecture,
           ", ".join((*ARCHITECTURES, HUB)))  # fmt: skip
    hub = t.architecture == HUB
    if hub:  # the checkpoint's config says what it is: sizes set here would be ignored
        for key in SIZES:
            _check(t[key] is None, f"model.text.{key}", t[key], f"null: {name}'s config sets it")
        _hub_room(cfg.model)  # it loads, and its tokenizer is its own
        _check(t.bpe_vocab is None, "model.text.bpe_vocab", t.bpe_vocab,
               f"null: {name} has its own tokenizer")  # fmt: skip
    else:
        for key in ("width", "layers", "heads", "max_length"):
            _check(t[key] is not None and t[key] >= 1, f"model.text.{key}", t[key], "an int >= 1")
        _check(t.width % t.heads == 0, "model.text.heads", t.heads, f"a divisor of width {t.width}")
        for key in ("activation", "dropout"):
            _check(t[key] is not None, f"model.text.{key}", None, "set (conf/model/gpt2_tiny.yaml)")
        vocab = t.bpe_vocab
        allowed = f"null (bytes) or an int >= {BPE_MIN} (256 bytes, PAD and MASK, then merges)"
        _check(vocab is None or vocab >= BPE_MIN, "model.text.bpe_vocab", vocab, allowed)
    for prefix in ("data", "source"):
        _check_passages(prefix, cfg[prefix], cfg.model)
    # one passage length for both: continued pretraining with replay mixes their passages
    _check_length("source", cfg.source, cfg.data)
    if "stream" in read:  # and every stream domain's too, for the same reason
        for key, dom in cfg.stream.items():
            _check_passages(f"stream.{key}", dom, cfg.model)
            _check_length(f"stream.{key}", dom, cfg.data)
    _check(cfg.regime.name in TEXT_REGIMES, "regime.name", cfg.regime.name,
           f"a regime built for text: {', '.join(TEXT_REGIMES)}")  # fmt: skip
    kind = lm_kind(str(name), t.architecture)
    objective = {"causal": "clm", "masked": "mlm"}[kind]
    if hub:
        _check(cfg.pretrain.objective in (objective, "hf"), "pretrain.objective",
               cfg.pretrain.objective, f"hf ({name}'s own weights) or {objective} (the suite's "
               f"own pretraining of its {kind} LM from random weights)")  # fmt: skip
    else:
        _check(cfg.pretrain.objective == objective, "pretrain.objective", cfg.pretrain.objective,
               f"{objective} for a {t.architecture} model (pretrain={objective}; pretrain=hf is "
               "for a checkpoint: model=hf_lm)")  # fmt: skip
    share = cfg.pretrain.mask_share
    if kind == "masked":
        _check(share is not None and 0 < share < 1, "pretrain.mask_share", share, "0 < s < 1")
    if "train" in read:
        _check(not cfg.train.augment, "train.augment", True, "false for text (no augmentation)")
    _check(not str(cfg.trainer.strategy).startswith("ddp"), "trainer.strategy",
           cfg.trainer.strategy, "a single-process strategy for text (auto)")  # fmt: skip


def _check_control(cfg: DictConfig) -> None:
    """An unrelated corpus: set, of the target's modality and passage length, and neither domain.

    "Neither" is by origin (``_origin``), not by spec: the source's text or the target's images
    re-split (another ``split_seed`` or ``test_fraction``) are still the same examples.
    """
    name = cfg.regime.name
    _check(cfg.control is not None, "control", None,
           f"a domain for {name}'s continued stage (data@control=kjv)")  # fmt: skip
    _check_domain("control", cfg.control)
    text = cfg.data.dataset in TEXT_DATASETS
    _check_modality("control", cfg.control, text)
    if text:
        _check_passages("control", cfg.control, cfg.model)
        _check_length("control", cfg.control, cfg.data)
    for other in ("source", "data"):
        _check(_origin(cfg.control) != _origin(cfg[other]), "control", cfg.control.name,
               f"a corpus other than {other} ({cfg[other].name}) or a re-split of it")  # fmt: skip


def validate(cfg: DictConfig, reads: dict[str, tuple[str, ...]]) -> None:
    """Reject values the schema's types allow but a run cannot use, before anything is written.

    ``reads`` maps each regime name to the stage nodes it uses (``pretrain``, ``train``,
    ``continued_pretrain``); those must be complete, the others are not looked at.
    """
    _check(cfg.regime.name in reads, "regime.name", cfg.regime.name, ", ".join(sorted(reads)))
    _check(cfg.threads >= 1, "threads", cfg.threads, "an int >= 1")
    for key in ("seed", "subset_seed", "train_seed"):  # numpy rejects negative seeds
        _check(cfg[key] >= 0, key, cfg[key], "an int >= 0")
    # a text source or target makes a text run: both domains and the model must then be text
    if cfg.model.text is not None or {cfg.data.dataset, cfg.source.dataset} & set(TEXT_DATASETS):
        _check_text(cfg, reads[cfg.regime.name])
    else:
        _check_image_model(cfg)
    trained = set(reads[cfg.regime.name]) - {"stream", "control"}

    if cfg.pretrain.objective in PUBLISHED:  # published weights: no pretraining stage to check
        trained.discard("pretrain")
    for node in sorted(trained):
        missing = [k for k in cfg[node] if OmegaConf.is_missing(cfg[node], k)]
        if missing:
            raise ConfigError(
                f"{node}.{missing[0]} is not set; regime {cfg.regime.name} reads it "
                f"(set it in conf/regime/{cfg.regime.name}.yaml or as an override)"
            )
        if node in MITIGATIONS:
            _check_mitigation(cfg, node)
            continue
        if node not in GRADIENT_NODES:  # a baseline's node: svm, knn, label_spreading
            if (bad := problem(node, cfg[node])) is not None:
                _check(False, *bad)
            continue
        for key in ("steps", "batch_size"):
            _check(cfg[node][key] >= 1, f"{node}.{key}", cfg[node][key], "an int >= 1")
        warmup = cfg[node].warmup_fraction
        _check(0 <= warmup < 1, f"{node}.warmup_fraction", warmup, "0 <= fraction < 1")
    if "train" in reads[cfg.regime.name]:
        _check_tracking(cfg)
        name = cfg.regime.name
        allowed = HEAD_INIT_OF.get(name)
        _check(
            cfg.train.head_init in ((allowed,) if allowed else HEAD_INITS),
            "train.head_init",
            cfg.train.head_init,
            f"{allowed} for {name}" if allowed else ", ".join(HEAD_INITS),
        )
    if "continued_pretrain" in reads[cfg.regime.name]:
        c = cfg.continued_pretrain
        _check(0 <= c.replay < 1, "continued_pretrain.replay", c.replay, "0 <= fraction < 1")
        _check(
            c.schedule in SCHEDULES, "continued_pretrain.schedule", c.schedule, ", ".join(SCHEDULES)
        )
    if "stream" in reads[cfg.regime.name]:
        _check_stream(cfg)
    if "pretrain" in reads[cfg.regime.name]:
        p = cfg.pretrain
        objectives = (*OBJECTIVES, *PUBLISHED)
        _check(p.objective in objectives, "pretrain.objective", p.objective, ", ".join(objectives))
        if p.objective == "simclr":
            _check(
                p.temperature is not None and p.temperature > 0,
                "pretrain.temperature",
                p.temperature,
                "a float > 0",
            )
    _check_comparisons(cfg.comparisons, reads)
    p = cfg.probe
    _check(p.max_iter >= 1, "probe.max_iter", p.max_iter, "an int >= 1")
    _check(p.default_l2 > 0, "probe.default_l2", p.default_l2, "a float > 0")
    _check(all(v > 0 for v in p.l2_grid), "probe.l2_grid", list(p.l2_grid), "floats > 0")
    if "control" in reads[cfg.regime.name] and cfg.control is not None:
        # data/imagefolder.yaml also sets the source (own_images): as a control it swapped it,
        # so this comes before the source's own checks, which would name the wrong key
        _check(cfg.control.dataset != "imagefolder", "control.dataset", "imagefolder",
               "a dataset whose config leaves the source alone")  # fmt: skip
    _check_domain("data", cfg.data)  # first: own_images reads its root from data.root
    _check_domain("source", cfg.source)
    if cfg.regime.name in NEEDS_DISTINCT_SOURCE:
        _check(
            _same_images(cfg.source) != _same_images(cfg.data),
            "data",
            cfg.data.name,
            f"a target domain other than the source ({cfg.source.name}) for {cfg.regime.name}",
        )
    if cfg.regime.name in NEEDS_DOMAIN_CORPUS:
        corpus = cfg.data.text.unlabeled_passages if cfg.data.text is not None else None
        _check(bool(corpus), "data.text.unlabeled_passages", corpus,
               f"> 0, a text target with a domain corpus ({cfg.regime.name} continues on the "
               "task's passages without it; with none it is incremental_pretrain)")  # fmt: skip
    if "control" in reads[cfg.regime.name]:
        _check_control(cfg)
    try:
        parse_per_class(cfg.budget.per_class)
    except BudgetError as err:
        raise ConfigError(str(err)) from None
