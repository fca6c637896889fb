"""One trainer for every modality: dataset -> encoder -> conditioner -> diffusion loss."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from polydiff import plugins
from polydiff.builder import build_dataset, build_model, collate_fn
from polydiff.compiling import compile_module, eager_on_failure, is_compiled
from polydiff.data_check import check_dataset
from polydiff.devices import resolve_device
from polydiff.errors import CheckpointError, ConfigError, PolydiffError, TrainingDiverged
from polydiff.plugins import Registry
from polydiff.run_config import RunConfig
from polydiff.threads import governor
from polydiff.training import distributed as D
from polydiff.training.batching import StepBatchSampler, resolve_workers, step_loader
from polydiff.training.checkpoint import (
    CONFIG,
    MODEL,
    STATE,
    check_finite,
    first_non_finite,
    load_checkpoint,
    load_state_strict,
    resolve_checkpoint,
    save_checkpoint,
)
from polydiff.training.checkpoint import EMA as EMA_FILE
from polydiff.training.ema import EMA
from polydiff.training.optimizer import load_adamw_state, make_adamw
from polydiff.training.resume import reconcile
from polydiff.training.run_dir import (
    METRICS_FILE,
    RunLock,
    check_fresh,
    check_is_directory,
    remove_previous_run,
    remove_temporaries,
    resume_point,
)
from polydiff.training.timestep_bias import draw_timesteps, timestep_weights_of


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` leaves behind."""

    run_dir: Path
    checkpoint: Path | None
    history: list[dict[str, float]] = field(default_factory=list)
    step: int = 0
    interrupted: bool = False
    outputs: list[Path] = field(default_factory=list)
    #: Seconds of this leg's first step (compilation included under ``train.compile``).
    first_step_s: float | None = None
    #: Steps per second after the first step (None when the leg ran fewer than two steps).
    steps_per_s: float | None = None
    #: Whether the backbone ran compiled (False when compilation was unavailable or failed).
    compiled: bool = False


def _slice_batch(batch: dict[str, Any], sl: slice) -> dict[str, Any]:
    return {k: v[sl] for k, v in batch.items()}


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()
    }


class Trainer:
    """Trains a :class:`~polydiff.model.DiffusionModel` described by a :class:`RunConfig`.

    Under ``torchrun`` it runs DistributedDataParallel (gloo on CPU, nccl on GPU); only
    rank 0 writes checkpoints, logs and pictures, and every rank stops at the same step when any
    of them gets SIGINT/SIGTERM. Everything random (parameters, data order, timesteps, noise,
    condition dropout) is a function of ``config.train.seed`` and the step, so an interrupted and
    resumed run ends bit-identical to an uninterrupted one on the CPU.

    A run directory has one owner: :meth:`fit` holds ``RUN_DIR/train.lock`` (a second training
    into it is refused, naming the first one's pid), and refuses a fresh run into a directory
    that holds an earlier run's checkpoints, ``latest`` or metrics unless ``resume`` or
    ``overwrite``. A checkpoint is written only when every weight, EMA and optimizer tensor is
    finite; otherwise :class:`~polydiff.errors.TrainingDiverged` names the last good one.

    Args:
        config: The run; ``config.train`` holds the optimisation settings. With ``resume`` it is
            compared with the checkpoint's config: the fields of
            :data:`~polydiff.training.config.RESUMABLE_FIELDS` (lr, steps, grad_clip, ...) and the
            ``sample`` defaults take the new values (each change is printed), any other change is
            refused with a ConfigError; None means the checkpoint's config unchanged.
        run_dir: Where checkpoints (``checkpoints/step-*``, ``latest``), ``metrics.jsonl`` and
            pictures go.
        registry: Plugin registry (default: the installed plugins).
        resume: Continue from the checkpoint ``run_dir/latest`` names.
        overwrite: Start afresh in a ``run_dir`` that holds an earlier run: its checkpoints,
            ``latest``, metrics and the trainer's pictures are removed once the lock is held.
        device: ``"cpu"``, ``"cuda"``, ...; default CUDA when available.
        progress: Show a tqdm bar (rank 0).
    """

    def __init__(
        self,
        config: RunConfig | None,
        run_dir: str | Path,
        *,
        registry: Registry | None = None,
        resume: bool = False,
        overwrite: bool = False,
        device: str | None = None,
        progress: bool = True,
    ):
        self.run_dir = Path(run_dir)
        self.registry = registry or plugins.get_registry()
        self.resume, self.overwrite, self.progress = resume, overwrite, progress
        self.resume_changes: list[str] = []
        self._resume_from: Path | None = None
        check_is_directory(self.run_dir)
        if resume and overwrite:
            raise ConfigError("--resume continues the run and --overwrite replaces it: pass one of them")
        if resume:
            self._resume_from = resume_point(self.run_dir)
            ckpt_config = RunConfig.load(self._resume_from / CONFIG)
            step = self._resume_step(self._resume_from)
            if config is None:
                config = ckpt_config
            else:
                config, self.resume_changes = reconcile(ckpt_config, config, self.run_dir, step)
        elif config is None:
            raise ConfigError("Trainer needs a RunConfig unless it resumes a run (resume=True)")
        resolve_device(device)  # one line naming --device if it does not exist here
        config.validate(self.registry)  # fields assigned after construction are checked too
        self.config = config
        self.dist = D.init_distributed(device)
        self._stop_signal: int | None = None
        self._lock: RunLock | None = None
        tc = config.train
        if tc.precision not in ("fp32", "bf16", "fp16"):
            raise ConfigError(f"train.precision must be fp32, bf16 or fp16, not '{tc.precision}'")
        if tc.precision == "fp16" and self.dist.device.type != "cuda":
            raise ConfigError(
                "fp16 training needs a CUDA GPU (it relies on a gradient scaler); "
                "on the CPU use --precision bf16 or fp32"
            )
        if tc.keep_checkpoints < 0:
            raise ConfigError(
                f"train.keep_checkpoints must be 0 (keep all) or more, not {tc.keep_checkpoints}"
            )
        timestep_weights_of(tc, config.diffusion.num_timesteps)  # a clear error before any data or model
        if self.dist.device.type == "cuda":
            torch.set_float32_matmul_precision("high")  # TF32 matmuls in fp32 training (convs already are)

    @staticmethod
    def _resume_step(path: Path) -> int:
        try:
            return int(json.loads((path / STATE).read_text())["step"])
        except FileNotFoundError:
            raise CheckpointError(
                f"{path / STATE} is missing, so {path} cannot be resumed (no training state); "
                "sample it as it is, or start a new run with another --out"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(
                f"{path / STATE} is unreadable ({exc}); resume from another checkpoint"
            ) from exc

    # ------------------------------------------------------------------ the run directory
    def _take_run_dir(self) -> None:
        """Lock ``run_dir`` (rank 0), then check who owns it; every rank fails when rank 0 does."""
        error: PolydiffError | None = None
        if self.dist.is_main:
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                self._lock = RunLock(self.run_dir).acquire()
                removed = remove_temporaries(self.run_dir)
                if removed:
                    tqdm.write(
                        f"removed {len(removed)} half-written checkpoint(s) a killed run left: "
                        f"{', '.join(p.name for p in removed)}",
                        file=sys.stderr,
                    )
                if self.resume:
                    now = resolve_checkpoint(self.run_dir)
                    if now != self._resume_from:
                        raise CheckpointError(
                            f"{self.run_dir}/latest changed from {self._resume_from.name} to {now.name} "
                            "while this run started; start it again"
                        )
                elif self.overwrite:
                    remove_previous_run(self.run_dir)
                else:
                    check_fresh(self.run_dir)
            except PolydiffError as exc:
                error = exc
        if D.any_rank(error is not None, self.dist):
            self._release()
            D.cleanup(self.dist)
            raise error or ConfigError(f"rank 0 could not take {self.run_dir}; see its message")

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # ------------------------------------------------------------------ set-up
    def _setup(self) -> None:
        cfg, info = self.config, self.dist
        ckpt = None
        self.history_checkpoints: list[Path] = []
        if self.resume:
            ckpt = load_checkpoint(self._resume_from or resume_point(self.run_dir), training_state=True)
            for tensors, file in ((ckpt.model, MODEL), (ckpt.ema or {}, EMA_FILE)):
                check_finite(tensors, ckpt.path / file)
            start = int(ckpt.state["step"])
            for p in (self.run_dir / "checkpoints").glob("step-*"):
                if p.is_dir() and p.name <= ckpt.path.name:
                    self.history_checkpoints.append(p)
            self.history_checkpoints.sort()
            if info.is_main:
                for change in self.resume_changes:
                    tqdm.write(f"resume: {change}", file=sys.stderr)
        torch.manual_seed(cfg.train.seed)
        self.timestep_weights = timestep_weights_of(cfg.train, cfg.diffusion.num_timesteps)
        self.dataset = build_dataset(cfg, self.registry, "train")
        check_dataset(self.dataset, progress=self.progress and info.is_main, raise_errors=True)
        self.model = build_model(cfg, self.registry, dataset=None if ckpt else self.dataset)
        self.start_step = 0
        if ckpt is not None:
            load_state_strict(self.model, ckpt.model, ckpt.path / "model.safetensors")
            self.start_step = start
            self.last_checkpoint = ckpt.path
        elif self.model.encoder.trainable and not self.model.encoder.is_fitted:
            if info.is_main:
                tqdm.write(
                    f"fitting the first stage ({cfg.encoder.name}, up to {cfg.train.encoder_steps} steps)",
                    file=sys.stderr,
                )
            self.model.encoder.to(info.device)  # fit the first stage where the diffusion model trains
            self.model.encoder.fit(
                self.dataset,
                steps=cfg.train.encoder_steps,
                batch_size=cfg.train.batch_size,
                seed=cfg.train.seed,
                out_dir=self.run_dir if info.is_main else None,
            )
            cfg.encoder.options = self.model.encoder.config()
        self.model.freeze_encoder()
        self.model.to(info.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = make_adamw(self.params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        self.ema = EMA(self.model, cfg.train.ema_decay) if cfg.train.ema_decay > 0 else None
        if ckpt is not None:
            load_adamw_state(self.optimizer, ckpt.optimizer)
            if self.ema is not None and ckpt.ema is not None:
                self.ema.load_state_dict(ckpt.ema)
                self.ema.num_updates = int(ckpt.state.get("ema_updates", self.start_step))
        self.forward = self.model
        if cfg.train.compile:
            # the UNet alone, in place (its parameter names, hence checkpoints, unchanged): the
            # conditioner tokenises on the CPU and the loss indexes schedule buffers, which would
            # pull CPU kernels into the graph (a C++ build on the GPU machine failed on them)
            compile_module(self.model.unet, info.device, cfg.train.compile_mode)
        if info.enabled:
            self.forward = DistributedDataParallel(
                self.forward, device_ids=[info.device.index] if info.device.type == "cuda" else None
            )
        self.scaler = torch.amp.GradScaler("cuda") if cfg.train.precision == "fp16" else None
        if self.scaler is not None and ckpt is not None and ckpt.state.get("grad_scaler"):
            self.scaler.load_state_dict(ckpt.state["grad_scaler"])
        sampler = StepBatchSampler(
            len(self.dataset),
            cfg.train.batch_size,
            cfg.train.seed,
            self.start_step,
            info.rank,
            info.world_size,
        )
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", info.world_size))
        self.num_workers = resolve_workers(cfg.train.num_workers, self.dataset, local_world)
        self.loader = step_loader(
            self.dataset,
            sampler,
            collate_fn(self.dataset),
            self.num_workers,
            pin_memory=info.device.type == "cuda",  # with _to_device's non_blocking copies
        )
        self.writer = None
        if cfg.writer is not None:
            options = dict(getattr(self.dataset, "writer_options", dict)())
            cfg.writer.options = {**options, **cfg.writer.options}
        self.loggers = (
            [self.registry.build("logger", name, run_dir=self.run_dir) for name in cfg.train.loggers]
            if info.is_main
            else []
        )

    # ------------------------------------------------------------------ one step
    def _step_noise(self, step: int, x0: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Timesteps, noise and condition drops of ``step``'s global batch; this rank's share."""
        cfg, info = self.config.train, self.dist
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        share = x0.shape[0]
        total = share * info.world_size
        t = draw_timesteps(self.timestep_weights, total, gen)
        noise = torch.randn((total, *x0.shape[1:]), generator=gen)
        drop = torch.rand(total, generator=gen) < cfg.cond_drop_prob
        sl = slice(info.rank * share, (info.rank + 1) * share)
        dev = x0.device
        return t[sl].to(dev), noise[sl].to(dev, x0.dtype), drop[sl].to(dev)

    def _autocast(self) -> contextlib.AbstractContextManager:
        p = self.config.train.precision
        if p == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if p == "bf16" else torch.float16
        return torch.autocast(self.dist.device.type, dtype=dtype)

    def _train_step(self, step: int, batch: dict[str, Any]) -> dict[str, float]:
        cfg = self.config.train
        torch.manual_seed(cfg.seed * 1_000_003 + step * 65_537 + self.dist.rank)  # dropout etc.
        lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = _to_device(batch, self.dist.device)
        if cfg.compile and cfg.compile_mode == "reduce-overhead" and self.dist.device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()  # CUDA graphs: the last step's outputs are done with
        with torch.no_grad():
            x0 = self.model.encoder.encode(batch["x"])
        t, noise, drop = self._step_noise(step, x0)
        n, accum = x0.shape[0], max(1, cfg.grad_accum)
        if n % accum:
            raise ConfigError(f"the per-process batch {n} is not divisible by grad_accum={accum}")
        micro = n // accum
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, torch.Tensor] = {}
        for i in range(accum):
            sl = slice(i * micro, (i + 1) * micro)
            sync = i == accum - 1 or not isinstance(self.forward, DistributedDataParallel)
            ctx = contextlib.nullcontext() if sync else self.forward.no_sync()
            with ctx, self._autocast(), D.global_loss_counts(self.dist):
                terms = self.forward(_slice_batch(batch, sl), x0[sl], t[sl], noise[sl], drop[sl])
                loss = terms["loss"] / accum
            (self.scaler.scale(loss) if self.scaler else loss).backward()
            for k, v in terms.items():
                totals[k] = totals.get(k, 0.0) + v.detach().float() / accum
        keys = sorted(totals)
        # the stop flag rides along the metrics' all-reduce: every rank stops when any rank got a
        # signal, at the same step (ranks that disagreed would hang in mismatched collectives)
        flags = torch.tensor([float(self._stop_signal is not None)], device=totals[keys[0]].device)
        values = D.all_reduce_mean(torch.cat([torch.stack([totals[k] for k in keys]), flags]), self.dist)
        self._stop_agreed = bool(values[-1] > 0)
        metrics = dict(zip(keys, values[:-1].tolist()))
        if not all(math.isfinite(v) for v in metrics.values()):
            bad = ", ".join(f"{k}={v}" for k, v in metrics.items() if not math.isfinite(v))
            raise self._diverged(step + 1, bad)
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if cfg.grad_clip > 0:
            metrics["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip))
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        metrics["lr"] = lr
        return metrics

    # ------------------------------------------------------------------ bookkeeping
    def _diverged(self, step: int, what: str) -> TrainingDiverged:
        """The error for a divergence at ``step``: the last good checkpoint and how to go on."""
        cfg, last = self.config, self.last_checkpoint
        if last is None:
            advice = (
                "there is no good checkpoint of this run: start it again with a lower --lr (and "
                f"--overwrite to reuse {self.run_dir})"
            )
        else:
            advice = (
                f"the last good checkpoint is {last}: continue from it with a lower --lr "
                f"(polydiff train {cfg.modality} --resume --out {self.run_dir} --lr X, X below "
                f"{cfg.train.lr:g})"
            )
        return TrainingDiverged(
            f"training diverged at step {step}: {what}. Nothing was written; {advice}, or try "
            "--precision fp32 or stronger grad clipping (--set train.grad_clip=0.5)"
        )

    def _save(self, step: int) -> Path | None:
        ema = self.ema.state_dict() if self.ema is not None else None
        model, optimizer = self.model.state_dict(), self.optimizer.state_dict()
        # every rank holds the same weights, so every rank reaches the same verdict
        for what, tensors in (
            ("weights", model),
            ("EMA weights", ema or {}),
            (
                "optimizer state",
                {f"{i}.{k}": v for i, st in optimizer["state"].items() for k, v in st.items()},
            ),
        ):
            bad = first_non_finite(tensors)
            if bad is not None:
                raise self._diverged(step, f"the {what} after it are not finite (e.g. {bad})")
        if self.dist.is_main:
            self.last_checkpoint = save_checkpoint(
                self.run_dir,
                step,
                self.config,
                model,
                ema=ema,
                optimizer=optimizer,
                state={
                    "ema_updates": self.ema.num_updates if self.ema else 0,
                    "world_size": self.dist.world_size,
                },
                keep=self.config.train.keep_checkpoints,
                history=self.history_checkpoints,
                scaler=self.scaler.state_dict() if self.scaler is not None else None,
            )
            if self.last_checkpoint not in self.history_checkpoints:
                self.history_checkpoints.append(self.last_checkpoint)
            self.history_checkpoints = [p for p in self.history_checkpoints if p.is_dir()]
        D.barrier(self.dist)
        return self.last_checkpoint

    def _open_log(self) -> Any:
        path = self.run_dir / METRICS_FILE
        if self.resume and path.exists():  # drop lines past the resumed step
            lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
            kept = [ln for ln in lines if json.loads(ln).get("step", 0) <= self.start_step]
            path.write_text("".join(k + "\n" for k in kept))
        return path.open("a")

    def _install_signal_handlers(self) -> list[tuple[int, Any]]:
        previous = []
        if not self._is_main_thread():
            return previous
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous.append((sig, signal.signal(sig, self._on_signal)))
        return previous

    @staticmethod
    def _is_main_thread() -> bool:
        import threading

        return threading.current_thread() is threading.main_thread()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._stop_signal = signum

    # ------------------------------------------------------------------ the loop
    def fit(self) -> TrainResult:
        """Train up to ``config.train.steps``; checkpoints as it goes; returns where things are."""
        self.last_checkpoint: Path | None = None
        self._stop_agreed = False
        self._take_run_dir()
        try:
            return self._fit()
        finally:
            self._release()

    def _fit(self) -> TrainResult:
        try:
            self._setup()
        except BaseException:
            D.cleanup(self.dist)
            raise
        cfg, info = self.config, self.dist
        history: list[dict[str, float]] = []
        log = self._open_log() if info.is_main else None
        previous = self._install_signal_handlers()
        step = self.start_step
        bar = tqdm(
            total=cfg.train.steps,
            initial=step,
            desc=f"train {cfg.modality}",
            unit="step",
            disable=not (self.progress and info.is_main),
            dynamic_ncols=True,
            file=sys.stderr,
        )
        batches: Iterator[dict[str, Any]] = iter(self.loader)
        threads = governor()  # --threads auto: fewer threads while other processes share the CPUs
        self.model.train()
        t0 = time.perf_counter()
        first_s: float | None = None
        t_first = t0
        try:
            while step < cfg.train.steps:
                batch = next(batches)
                if first_s is None:  # compilation happens here; a failure falls back to eager
                    start = time.perf_counter()
                    metrics = eager_on_failure(
                        [self.model.unet], functools.partial(self._train_step, step, batch), "training step"
                    )
                    t_first = time.perf_counter()
                    first_s = t_first - start
                else:
                    metrics = self._train_step(step, batch)
                step += 1
                if threads is not None:
                    threads.tick()
                bar.update(1)
                if step % cfg.train.log_every == 0 or step == cfg.train.steps:
                    record = {"step": step, **metrics, "time": round(time.perf_counter() - t0, 3)}
                    history.append(record)
                    bar.set_postfix(loss=f"{metrics['loss']:.4f}")
                    if log is not None:
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                    for logger in self.loggers:
                        logger.log(step, metrics)
                stop = self._stop_agreed
                if step % cfg.train.checkpoint_every == 0 or step == cfg.train.steps or stop:
                    self._save(step)
                if stop:
                    name = (
                        signal.Signals(self._stop_signal).name
                        if self._stop_signal is not None
                        else "a stop signal (on another rank)"
                    )
                    tqdm.write(
                        f"{name} received: saved step {step} to {self.last_checkpoint}; "
                        f"continue with --resume",
                        file=sys.stderr,
                    )
                    break
        finally:
            t_end = time.perf_counter()
            bar.close()
            for sig, handler in previous:
                signal.signal(sig, handler)
            if log is not None:
                log.close()
            for logger in self.loggers:
                logger.close()
            D.cleanup(info)
        outputs = self._write_loss_curve() if info.is_main else []
        later = step - self.start_step - 1
        return TrainResult(
            self.run_dir,
            self.last_checkpoint,
            history,
            step,
            interrupted=self._stop_agreed,
            outputs=outputs,
            first_step_s=first_s,
            steps_per_s=later / (t_end - t_first) if later > 0 else None,
            compiled=is_compiled(self.model.unet),
        )

    def _write_loss_curve(self) -> list[Path]:
        cfg = self.config
        if cfg.writer is None:
            return []
        path = self.run_dir / METRICS_FILE
        history = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
        writer = self.registry.build("writer", cfg.writer.name, **cfg.writer.options)
        return list(writer.write_loss_curve(history, self.run_dir / "loss.png"))
