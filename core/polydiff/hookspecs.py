"""Hook specifications: the contract between polydiff and its plugins.

A plugin is a module (registered under the ``polydiff`` entry-point group) that
implements some of the hooks below, marked with :data:`polydiff.hookimpl`::

    # my_plugin/plugin.py  -- keep this module cheap: no torch import here
    from polydiff import Component, Modality, hookimpl

    @hookimpl
    def polydiff_modalities():
        return [Modality(name="timeseries", rank=1, default_dataset="sines",
                         default_conditioner="text", writer="timeseries-png")]

    @hookimpl
    def polydiff_datasets():
        return [Component("sines", "my_plugin.data:SineDataset", modality="timeseries",
                          description="synthetic sine waves with captions")]

Every hook takes no arguments (unless stated) and returns a list of records. Names
must be unique within their kind across all installed plugins: a clash skips the later
plugin with a report naming both distributions. Code is referenced by import string and imported on first
use, so ``polydiff plugins`` stays fast however many plugins are installed.

What each referenced object must be is stated per hook; the base classes live in
:mod:`polydiff.interfaces`.
"""

from __future__ import annotations

import pluggy

from polydiff.records import Component, ComponentKind, Modality, Pretrained

hookspec = pluggy.HookspecMarker("polydiff")


@hookspec(historic=True)
def polydiff_addhooks(pluginmanager: pluggy.PluginManager) -> None:
    """Add hook specifications from a plugin, for other plugins to implement.

    Called when the plugin is registered. Like ``pytest_addhooks``::

        @hookimpl
        def polydiff_addhooks(pluginmanager):
            from my_plugin import hookspecs
            pluginmanager.add_hookspecs(hookspecs)

    The TTS plugin uses this to let vocoder plugins register themselves.
    """


@hookspec
def polydiff_modalities() -> list[Modality]:
    """Return the modalities this plugin provides.

    A :class:`~polydiff.Modality` names the defaults used by ``polydiff train
    MODALITY``: dataset, encoder, conditioner, writer, evaluator, and presets
    (``quick`` for demos and tests, ``full`` for the figures in docs/benchmarks.md).

    Example::

        @hookimpl
        def polydiff_modalities():
            return [Modality("image", rank=2, default_dataset="shapes",
                             default_encoder="pixels", default_conditioner="text",
                             writer="png", evaluator="image-attributes")]
    """


@hookspec
def polydiff_datasets() -> list[Component]:
    """Return dataset components.

    ``target`` is a class (or factory) called as ``target(split=..., **options)``
    with ``split`` in ``{"train", "eval"}``; it returns a map-style
    :class:`polydiff.interfaces.DiffusionDataset`: ``len(ds)``, ``ds[i]`` is a dict with
    ``"x"`` (a tensor ``[C, *spatial]`` in *data space*, see the modality's encoder) and
    usually ``"text"`` (its caption). Bad files raise :class:`polydiff.DataError` naming
    the file and the fix.

    Example::

        Component("digits", "polydiff_image.datasets.digits:DigitsDataset",
                  modality="image", description="sklearn handwritten digits, 16x16")
    """


@hookspec
def polydiff_encoders() -> list[Component]:
    """Return encoder components: maps between data space and diffusion space.

    ``target(data_shape=..., **options)`` returns a
    :class:`polydiff.interfaces.Encoder` (``encode``, ``decode``, ``latent_shape``).
    Encoders that learn (an autoencoder) implement ``fit`` and are trained as a first
    stage, then frozen; their weights are saved in the checkpoint.
    """


@hookspec
def polydiff_conditioners() -> list[Component]:
    """Return conditioner components: what turns a batch's text/labels into UNet inputs.

    ``target(**options)`` returns a :class:`polydiff.interfaces.Conditioner`, which
    produces a :class:`polydiff.Conditioning` (cross-attention tokens, channel-concatenated
    maps, an offset of the prior mean, a loss mask, auxiliary losses) for training and
    for sampling, where it may also decide the output shape (speech length).
    """


@hookspec
def polydiff_writers() -> list[Component]:
    """Return writer components: how data-space tensors become files people look at.

    ``target(**options)`` returns a :class:`polydiff.interfaces.Writer` that writes
    samples (PNG grid, WAV, GIF), the reverse process (a trajectory of ``x_t`` and
    predicted ``x0``) and the forward process (``polydiff noise``).
    """


@hookspec
def polydiff_evaluators() -> list[Component]:
    """Return evaluator components for ``polydiff evaluate``.

    ``target(**options)`` returns a :class:`polydiff.interfaces.Evaluator` whose
    ``evaluate(pipeline, out_dir, ...)`` generates with a :class:`polydiff.DiffusionPipeline`
    and scores the samples with checkers independent of the generator.
    """


@hookspec
def polydiff_samplers() -> list[Component]:
    """Return sampler components (``ddpm``, ``ddim``, ...).

    ``target(diffusion, num_steps=..., **options)`` returns a
    :class:`polydiff.samplers.Sampler`.
    """


@hookspec
def polydiff_loggers() -> list[Component]:
    """Return metric-logger components (sinks besides the built-in JSONL log).

    ``target(run_dir=..., **options)`` returns an object with
    ``log(step: int, metrics: dict[str, float])`` and ``close()``; the trainer calls it on
    rank 0 only. Select with ``polydiff train ... --logger NAME``.
    """


@hookspec
def polydiff_backbones() -> list[Component]:
    """Return backbone components: the denoising network (the core registers ``unet`` and ``dit``).

    ``target(dims=..., in_channels=..., cond_channels=..., context_dim=..., **options)`` returns
    an ``nn.Module`` called as the UNet is::

        net(x [B, in_channels, *spatial], t [B], context=[B, L, context_dim] | None,
            context_mask=[B, L] bool | None, concat=[B, cond_channels, *spatial] | None)
            -> [B, in_channels, *spatial]   # eps, x0 or v, as the run's diffusion.prediction

    The builder fills ``dims`` from the data's rank and the other three from the encoder and the
    conditioner; ``options`` are the run's ``backbone.options`` (``--set backbone.FIELD=VALUE``),
    and the module's ``config`` (a dataclass) is written back to them, so a checkpoint rebuilds
    it. Sizes the network cannot take should fail in ``forward`` with a one-line ConfigError (the
    UNet and the DiT also offer ``check_input_shape(spatial)``). Weights live in the checkpoint
    under ``unet.*`` whatever the backbone (the model's attribute name).
    Select with ``polydiff train MODALITY --backbone NAME``.

    Example::

        @hookimpl
        def polydiff_backbones():
            return [Component("my-mixer", "my_plugin.nets:MixerDenoiser",
                              description="MLP-mixer over patches")]
    """


@hookspec
def polydiff_pretrained() -> list[Pretrained]:
    """Return pretrained models: trained checkpoints shipped in the plugin's package data.

    Each :class:`~polydiff.Pretrained` names a directory inside an installed package holding
    ``config.json``, ``model.safetensors`` (EMA weights, fp16 where that costs no measured
    quality; they load into the fp32 model) and the model card ``README.md`` (the command
    that trained it, steps, time and machine, and the metrics its evaluator measured; see
    :mod:`polydiff.pretrained`). ``polydiff plugins`` lists them; ``polydiff sample NAME``,
    ``polydiff evaluate NAME`` and ``DiffusionPipeline.from_pretrained(NAME)`` take the name
    wherever they take a run directory (an existing path wins). Ship the directory as package
    data (``[tool.setuptools.package-data]``) and keep it small (a few MB): ``make pretrained``
    retrains it and writes its card.

    Example::

        @hookimpl
        def polydiff_pretrained():
            return [Pretrained("timeseries-sines", package="polydiff_timeseries",
                               path="pretrained/timeseries-sines", modality="timeseries",
                               description="quick preset, 6 captions, caption accuracy 1.00")]

    A model sampled with denoiser experts names them (each one a record of its own)::

        Pretrained("video-moving", package="polydiff_video", path="pretrained/video-moving",
                   modality="video", experts=("video-moving-high-noise",))
    """


@hookspec
def polydiff_component_kinds() -> list[ComponentKind]:
    """Return kinds of components this plugin adds (besides the core's datasets, encoders, ...).

    Each :class:`~polydiff.ComponentKind` names the kind and the hook that returns its
    components; add that hook's spec in ``polydiff_addhooks``. Any plugin may then implement
    the hook, and the registry treats the kind like a built-in one (``registry.names(kind)``,
    ``registry.build(kind, name, ...)``, clashes, ``polydiff plugins``). The TTS plugin's
    vocoders::

        @hookimpl
        def polydiff_component_kinds():
            return [ComponentKind("vocoder", hook="polydiff_tts_vocoders",
                                  description="log-mel -> waveform")]
    """
