"""Build datasets and models from a RunConfig through the plugin registry."""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from polydiff.diffusion.gaussian import GaussianDiffusion
from polydiff.errors import DataError
from polydiff.interfaces import DiffusionDataset, default_collate
from polydiff.model import DiffusionModel
from polydiff.plugins import Registry
from polydiff.run_config import RunConfig


def build_dataset(config: RunConfig, registry: Registry, split: str = "train") -> DiffusionDataset:
    """The run's dataset for ``split``; fills ``config.data_shape`` when it is unset."""
    ds = registry.build("dataset", config.dataset.name, split=split, **config.dataset.options)
    if len(ds) == 0:
        raise DataError(
            f"dataset '{config.dataset.name}' ({split} split, options {config.dataset.options}) "
            "is empty; check its path/options"
        )
    if config.data_shape is None:
        shape = getattr(ds, "data_shape", None) or tuple(ds[0]["x"].shape)
        config.data_shape = [int(s) for s in shape]
    else:
        conform_dataset(ds, config.data_shape)
    return ds


def conform_dataset(ds: DiffusionDataset, data_shape: Any) -> None:
    """Let a dataset whose shape follows from its files (an image folder with ``channels="auto"``)
    give the items a run was trained on: calls its optional ``conform(data_shape)``."""
    conform = getattr(ds, "conform", None)
    if data_shape is not None and callable(conform):
        conform(tuple(int(s) for s in data_shape))


def collate_fn(dataset: DiffusionDataset) -> Any:
    return getattr(dataset, "collate", default_collate)


def build_model(
    config: RunConfig, registry: Registry, dataset: DiffusionDataset | None = None
) -> DiffusionModel:
    """Encoder, conditioner and backbone (UNet by default) for ``config``.

    The conditioner is told the diffusion-space (latent) shape first
    (:meth:`~polydiff.interfaces.Conditioner.set_latent_shape`). With ``dataset`` (training), it
    is fitted on it (vocabulary) and the options that rebuild it are written back to ``config``;
    the UNet's channel and context sizes are completed from the encoder and conditioner.
    """
    if config.data_shape is None:
        raise DataError("config.data_shape is unset; build the dataset first")
    encoder = registry.build(
        "encoder", config.encoder.name, data_shape=tuple(config.data_shape), **config.encoder.options
    )
    latent_shape = list(encoder.latent_shape(config.data_shape))
    config.latent_shape = latent_shape
    conditioner = registry.build("conditioner", config.conditioner.name, **config.conditioner.options)
    conditioner.set_latent_shape(tuple(latent_shape))
    if dataset is not None:
        conditioner.fit(dataset)
        config.conditioner.options = conditioner.config()
        config.encoder.options = encoder.config()
    net = build_backbone(config, registry, latent_shape, conditioner)
    return DiffusionModel(net, conditioner, encoder, GaussianDiffusion(config.diffusion))


def build_backbone(
    config: RunConfig, registry: Registry, latent_shape: list[int], conditioner: Any
) -> nn.Module:
    """The run's denoising network (``config.backbone``), its sizes completed from the latent
    shape and the conditioner and written back to ``config`` (``unet`` section or backbone options)."""
    filled = {
        "in_channels": latent_shape[0],
        "cond_channels": conditioner.concat_channels,
        "context_dim": conditioner.context_dim,
    }
    if config.backbone.name == "unet":
        config.unet = dataclasses.replace(config.unet, **filled)
        return registry.build("backbone", "unet", **dataclasses.asdict(config.unet))
    options = {**config.backbone.options, "dims": len(latent_shape) - 1, **filled}
    net = registry.build("backbone", config.backbone.name, **options)
    if dataclasses.is_dataclass(getattr(net, "config", None)):
        config.backbone.options = dataclasses.asdict(net.config)
    return net
