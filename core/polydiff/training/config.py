"""Configuration of a training run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from polydiff.errors import ConfigError
from polydiff.validation import Rule, check_dataclass

POSITIVE_INT = Rule(lo=1)
NON_NEGATIVE = Rule(lo=0)


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping of :class:`polydiff.Trainer`.

    Attributes:
        steps: Optimizer steps in total (a resumed run continues up to this number).
        batch_size: Global batch size (split over processes under torchrun).
        lr: AdamW learning rate after warm-up; ``warmup_steps`` ramps it linearly.
        warmup_steps: Steps over which the learning rate ramps linearly from 0 to ``lr``.
        weight_decay: AdamW weight decay.
        grad_clip: Max global gradient norm (0 = off).
        grad_accum: Micro-batches per optimizer step.
        ema_decay: Decay of the exponential moving average of the weights (0 = off).
        cond_drop_prob: Probability of dropping the condition (classifier-free guidance).
        timestep_bias: Which timesteps to draw more often: ``"none"`` (uniform), ``"later"``
            (the noisiest: where the layout of an image and the motion of a clip are decided)
            or ``"earlier"`` (fine detail); see
            :func:`~polydiff.training.timestep_bias.timestep_weights`.
        timestep_bias_portion: Fraction of the timesteps the bias applies to.
        timestep_bias_multiplier: How much more often those timesteps are drawn.
        timestep_range: ``[lo, hi]``: train only on ``lo <= t < hi``, making this run a
            denoiser expert for that interval (eDiff-I) that
            :meth:`~polydiff.DiffusionPipeline.with_expert` (``--expert``) samples with in
            place of the main model there; None = every timestep.
        seed: Seeds parameters, data order and noise; the same seed gives the same run.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast; fp16 needs CUDA).
        compile: Compile the backbone with ``torch.compile`` (inductor: a C++ compiler on the
            CPU, triton on CUDA; where it is missing the run says so and trains eagerly).
        compile_mode: ``torch.compile`` mode with ``compile``: ``"default"``,
            ``"reduce-overhead"`` (CUDA graphs: fewer kernel launches for small models on a GPU;
            on the CPU the same as default) or ``"max-autotune"``.
        checkpoint_every: Steps between checkpoints (the last step always writes one).
        keep_checkpoints: How many of the run's newest checkpoints to keep (0 = all); the one
            ``latest`` names and the one just written are never removed.
        log_every: Steps between progress-bar / JSONL metric updates.
        encoder_steps: First-stage (autoencoder) training steps when the encoder learns.
        num_workers: DataLoader worker processes, or ``"auto"``: the dataset's
            ``loader_workers`` hint (0 without one; a folder of images too large for its memory
            cache wants 4), capped by the CPUs each process of the node may use, less one; see
            :func:`~polydiff.training.batching.resolve_workers`. Workers change no batch.
        loggers: Extra metric sinks by name (``polydiff_loggers``), besides JSONL.

    ``--resume`` may change the fields in :data:`RESUMABLE_FIELDS` between legs of a run; any
    other field changes what was trained and is refused.
    """

    steps: int = 2000
    batch_size: int = 32
    lr: float = 2e-4
    warmup_steps: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    grad_accum: int = 1
    ema_decay: float = 0.999
    cond_drop_prob: float = 0.1
    timestep_bias: str = "none"
    timestep_bias_portion: float = 0.25
    timestep_bias_multiplier: float = 1.0
    timestep_range: tuple[int, int] | None = None
    seed: int = 0
    precision: str = "fp32"
    compile: bool = False
    compile_mode: str = "default"
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 10
    encoder_steps: int = 2000
    num_workers: int | str = "auto"
    loggers: tuple[str, ...] = ()

    #: Range of each checked field (types come from the annotations).
    RULES: ClassVar[dict[str, Rule]] = {
        "steps": POSITIVE_INT,
        "batch_size": POSITIVE_INT,
        # AdamW divides lr by 1 - beta1 in float32: a larger lr overflows there
        "lr": Rule(lo=0, hi=1e36, lo_open=True, text="> 0 and at most 1e36"),
        "warmup_steps": NON_NEGATIVE,
        "weight_decay": NON_NEGATIVE,
        "grad_clip": NON_NEGATIVE,
        "grad_accum": POSITIVE_INT,
        "ema_decay": Rule(lo=0, hi=1, hi_open=True),
        "cond_drop_prob": Rule(lo=0, hi=1),
        "timestep_bias_portion": Rule(lo=0, hi=1, lo_open=True),
        "timestep_bias_multiplier": Rule(lo=0, lo_open=True),
        "timestep_range": NON_NEGATIVE,
        "precision": Rule(choices=("fp32", "bf16", "fp16")),
        "compile_mode": Rule(choices=("default", "reduce-overhead", "max-autotune")),
        "checkpoint_every": POSITIVE_INT,
        "log_every": POSITIVE_INT,
        "encoder_steps": NON_NEGATIVE,
        "keep_checkpoints": NON_NEGATIVE,
    }
    #: The ``polydiff train`` flag of a field, named in errors.
    FLAGS: ClassVar[dict[str, str]] = {
        "steps": "--steps",
        "batch_size": "--batch-size",
        "lr": "--lr",
        "seed": "--seed",
        "precision": "--precision",
        "grad_accum": "--grad-accum",
        "compile_mode": "--compile-mode",
    }

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field's type and range (raises ConfigError naming the field and the fix)."""
        check_dataclass(self, "train", self.RULES, self.FLAGS)
        workers = self.num_workers
        if workers != "auto" and (isinstance(workers, str) or workers < 0):
            raise ConfigError(
                f"train.num_workers must be 'auto' or an integer >= 0, got {workers!r}; "
                "e.g. --set train.num_workers=2 (or auto, the default: what the dataset asks for)"
            )
        if self.timestep_range is not None and not self.timestep_range[0] < self.timestep_range[1]:
            lo, hi = self.timestep_range
            raise ConfigError(
                f"train.timestep_range must be [LO, HI] with LO < HI, got [{lo}, {hi}]; "
                "e.g. --set train.timestep_range=[800,1000]"
            )


#: TrainConfig fields a resumed run may change (how to go on, not what was trained).
RESUMABLE_FIELDS = frozenset(
    {
        "steps",
        "lr",
        "warmup_steps",
        "grad_clip",
        "precision",
        "compile",
        "compile_mode",
        "grad_accum",
        "checkpoint_every",
        "log_every",
        "loggers",
        "ema_decay",
        "keep_checkpoints",
        "num_workers",
    }
)
