"""Behaviour of the rank-generic UNet: shapes, conditioning paths, frame mixing, errors, learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from polydiff.errors import ConfigError
from polydiff.nn import SpaceTimeConfig, UNet, UNetConfig
from polydiff.nn.embeddings import timestep_embedding
from polydiff.nn.layers import num_groups

CTX_DIM = 8


def tiny(**overrides) -> UNetConfig:
    """A UNet small enough for fast tests (two levels, attention at the second).

    The tests of rank 3 here are of video: ``dims=3`` gets the space-time UNet
    (``spacetime=SpaceTimeConfig(frame_embedding=..., frame_modulation=..., frame_norm=...)``
    from those keywords) unless ``factorized=False`` asks for full 3-D layers."""
    flags = {
        k: overrides.pop(k) for k in ("frame_embedding", "frame_modulation", "frame_norm") if k in overrides
    }
    if overrides.get("dims") == 3 and overrides.pop("factorized", True):
        overrides["spacetime"] = SpaceTimeConfig(**flags)
    elif flags:
        overrides["spacetime"] = SpaceTimeConfig(**flags)  # on another rank: refused by UNetConfig
    kwargs = dict(
        in_channels=2,
        model_channels=16,
        channel_mult=(1, 2),
        num_res_blocks=1,
        attention_levels=(1,),
        head_dim=8,
        norm_groups=8,
    )
    kwargs.update(overrides)
    return UNetConfig(**kwargs)


def perturb_(model: torch.nn.Module, std: float = 0.05, only=lambda name: True) -> None:
    """Add noise to (selected) parameters so that zero-initialised paths contribute to the output."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if only(name):
                p.add_(std * torch.randn(p.shape, generator=gen))


def inputs(cfg: UNetConfig, spatial: tuple[int, ...], batch: int = 2, tokens: int = 4) -> dict:
    """Seeded keyword arguments of UNet.forward for ``cfg``: x, t and the conditioning it needs."""
    gen = torch.Generator().manual_seed(0)
    kw = {
        "x": torch.randn(batch, cfg.in_channels, *spatial, generator=gen),
        "t": torch.randint(0, 1000, (batch,), generator=gen),
    }
    if cfg.context_dim:
        kw["context"] = torch.randn(batch, tokens, cfg.context_dim, generator=gen)
    if cfg.cond_channels:
        kw["concat"] = torch.randn(batch, cfg.cond_channels, *spatial, generator=gen)
    return kw


@pytest.mark.parametrize(
    ("dims", "spatial", "extra"),
    [
        (1, (12,), {}),
        (1, (12,), {"context_dim": CTX_DIM, "cond_channels": 3}),
        (2, (8, 12), {}),
        (2, (8, 12), {"context_dim": CTX_DIM}),
        (2, (8, 12), {"cond_channels": 1, "out_channels": 4}),
        (3, (5, 4, 6), {"context_dim": CTX_DIM, "cond_channels": 2}),  # factorized: odd frame count is fine
        (3, (4, 4, 6), {"factorized": False}),
        (3, (4, 4, 6), {"factorized": False, "context_dim": CTX_DIM, "cond_channels": 1}),
    ],
)
def test_output_has_input_shape_and_every_path_is_used(dims, spatial, extra):
    cfg = tiny(dims=dims, **extra)
    model = UNet(cfg)
    perturb_(model)
    kw = inputs(cfg, spatial)
    out = model(**kw)
    assert out.shape == (2, cfg.out_channels or cfg.in_channels, *spatial)
    assert torch.isfinite(out).all()
    for name in ("context", "concat"):  # each conditioning input changes the prediction
        if name in kw:
            changed = dict(kw, **{name: kw[name] + 1.0})
            assert not torch.allclose(model(**changed), out, atol=1e-5), name


def test_fresh_unet_predicts_zeros():
    cfg = tiny(dims=2, context_dim=CTX_DIM)
    out = UNet(cfg)(**inputs(cfg, (8, 8)))
    assert torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize(
    "cfg", [tiny(dims=2, context_dim=CTX_DIM, cond_channels=1), tiny(dims=3, context_dim=CTX_DIM)]
)
def test_every_parameter_gets_gradient_after_a_few_steps(cfg):
    # Zero-initialised output layers block gradients to the layers behind them at first; after
    # a few optimizer steps every parameter must influence the loss.
    torch.manual_seed(0)
    model = UNet(cfg)
    spatial = (4, 8, 8)[-cfg.dims :]
    kw = inputs(cfg, spatial)
    target = torch.randn(2, cfg.in_channels, *spatial)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(4):
        opt.zero_grad()
        F.mse_loss(model(**kw), target).backward()
        opt.step()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().max() == 0]
    assert not no_grad


def test_context_mask_hides_padding_tokens():
    cfg = tiny(dims=2, context_dim=CTX_DIM)
    model = UNet(cfg).eval()
    perturb_(model)
    kw = inputs(cfg, (8, 8), tokens=5)
    mask = torch.tensor([[True, True, True, False, False], [True, True, True, True, True]])
    out = model(**kw, context_mask=mask)

    padded = kw["context"].clone()
    padded[0, 3:] = 100.0  # masked-out tokens of sample 0
    assert torch.allclose(model(**dict(kw, context=padded), context_mask=mask), out, atol=1e-6)

    real = kw["context"].clone()
    real[0, 1] += 1.0  # a real token of sample 0
    changed = model(**dict(kw, context=real), context_mask=mask)
    assert not torch.allclose(changed[0], out[0], atol=1e-4)
    assert torch.allclose(changed[1], out[1], atol=1e-6)  # samples stay independent


def _frame_influence(model: UNet, kw: dict) -> torch.Tensor:
    """Max change of the output per frame when only frame 0 of the input changes: ``[T]``."""
    out = model(**kw)
    x = kw["x"].clone()
    x[:, :, 0] += 1.0
    return (model(**dict(kw, x=x)) - out).abs().amax(dim=(0, 1, 3, 4))


def test_factorized_video_mixes_frames_only_through_temporal_layers():
    cfg = tiny(dims=3, context_dim=CTX_DIM)
    model = UNet(cfg).eval()
    kw = inputs(cfg, (5, 8, 8))

    # Temporal layers start as identities: the UNet is an image model applied per frame.
    perturb_(model, only=lambda name: "temporal" not in name)
    influence = _frame_influence(model, kw)
    assert influence[0] > 1e-3
    assert influence[1:].max() < 1e-6

    perturb_(model, only=lambda name: "temporal" in name)
    assert _frame_influence(model, kw)[2] > 1e-3


def test_full_3d_mixes_frames_and_downsamples_time():
    cfg = tiny(dims=3, factorized=False)
    model = UNet(cfg).eval()
    perturb_(model)
    assert _frame_influence(model, inputs(cfg, (4, 4, 4)))[2] > 1e-3
    # rank 3 without the space-time section is three spatial axes: the first is "depth" (was "frames")
    with pytest.raises(ConfigError, match="depth 5 is not a multiple of 2"):
        model.check_input_shape((5, 4, 4))
    UNet(tiny(dims=3)).check_input_shape((5, 4, 4))  # factorized: any frame count
    assert model.downsample_factor == 2


def test_float_timesteps_match_integers_and_interpolate():
    cfg = tiny(dims=1)
    model = UNet(cfg).eval()
    perturb_(model)
    x = torch.randn(3, 2, 8)
    t_int = torch.tensor([0, 17, 999])
    assert torch.equal(model(x, t_int), model(x, t_int.float()))
    assert torch.equal(model(x, 17), model(x, torch.tensor([17, 17, 17])))  # one t for the whole batch
    lo, mid, hi = (model(x[:1], torch.tensor([v])) for v in (17.0, 17.5, 18.0))
    assert torch.isfinite(mid).all()
    assert not torch.allclose(mid, lo) and not torch.allclose(mid, hi)


def test_timestep_embedding_is_cos_sin_of_scaled_time():
    t = torch.tensor([0.0, 2.5])
    emb = timestep_embedding(t, 7, max_period=100.0)
    assert emb.shape == (2, 7)
    freqs = 100.0 ** (-torch.arange(3) / 3)
    assert torch.allclose(emb[1, :3], torch.cos(2.5 * freqs))
    assert torch.allclose(emb[1, 3:6], torch.sin(2.5 * freqs))
    assert torch.equal(emb[0, :6], torch.tensor([1.0, 1, 1, 0, 0, 0]))
    assert torch.equal(emb[:, 6], torch.zeros(2))  # odd width is zero-padded


@pytest.mark.parametrize(
    ("dims", "spatial", "message"),
    [
        (2, (30, 32), "height 30 is not a multiple of 4 (2 downsamplings); use 28 or 32"),
        (2, (32, 2), "width 2 is not a multiple of 4 (2 downsamplings); use 4"),
        (1, (50,), "length 50 is not a multiple of 4 (2 downsamplings); use 48 or 52"),
    ],
)
def test_sizes_that_cannot_be_downsampled_raise_with_working_sizes(dims, spatial, message):
    model = UNet(tiny(dims=dims, channel_mult=(1, 1, 2)))
    with pytest.raises(ConfigError) as err:
        model.check_input_shape(spatial)
    assert message in str(err.value)
    with pytest.raises(ConfigError, match="is not a multiple of 4"):
        model(torch.randn(1, 2, *spatial), torch.tensor([1]))


def test_inconsistent_inputs_raise_config_error():
    ctx_model = UNet(tiny(dims=2, context_dim=CTX_DIM))
    plain = UNet(tiny(dims=2))
    concat_model = UNet(tiny(dims=2, cond_channels=1))
    x, t = torch.randn(2, 2, 8, 8), torch.tensor([1, 2])
    ctx = torch.randn(2, 3, CTX_DIM)
    cases = [
        (lambda: ctx_model(x, t), "context_dim=8 but forward\\(\\) got no context"),
        (lambda: plain(x, t, context=ctx), "context_dim is None"),
        (lambda: ctx_model(x, t, context=torch.randn(2, 3, 5)), "context must have shape"),
        (
            lambda: ctx_model(x, t, context=ctx, context_mask=torch.ones(2, 4, dtype=torch.bool)),
            "context_mask",
        ),
        (lambda: concat_model(x, t), "cond_channels=1 but forward\\(\\) got no concat"),
        (lambda: plain(x, t, concat=torch.randn(2, 1, 8, 8)), "cond_channels is 0"),
        (lambda: concat_model(x, t, concat=torch.randn(2, 1, 4, 4)), "concat must have shape"),
        (lambda: plain(torch.randn(2, 3, 8, 8), t), "in_channels=2"),
        (lambda: plain(torch.randn(2, 2, 8), t), "dims=2"),
        (lambda: plain(x, torch.tensor([1, 2, 3])), r"t must have shape \[B\] = \[2\]"),
    ]
    for call, message in cases:
        with pytest.raises(ConfigError, match=message):
            call()


def test_invalid_config_raises_config_error():
    with pytest.raises(ConfigError, match="attention_levels \\[2\\] out of range"):
        UNet(tiny(attention_levels=(2,)))
    with pytest.raises(ConfigError, match="dims must be 1, 2 or 3"):
        UNet(tiny(dims=4))


def test_norm_groups_are_clamped_to_divide_channels():
    assert num_groups(48, 32) == 24
    assert num_groups(16, 32) == 16
    assert num_groups(7, 4) == 1
    model = UNet(tiny(dims=2, model_channels=12, norm_groups=32, head_dim=4))
    assert model(torch.randn(1, 2, 4, 4), torch.tensor([3])).shape == (1, 2, 4, 4)


def test_num_parameters_counts_all_and_trainable():
    model = UNet(tiny(dims=1))
    total = sum(p.numel() for p in model.parameters())
    assert model.num_parameters() == total
    model.time_embed.requires_grad_(False)
    frozen = sum(p.numel() for p in model.time_embed.parameters())
    assert model.num_parameters(trainable_only=True) == total - frozen


def test_channels_last_and_gradient_checkpointing_give_the_same_result():
    cfg = tiny(dims=2, context_dim=CTX_DIM)
    model = UNet(cfg)
    perturb_(model)
    kw = inputs(cfg, (8, 8))
    out = model(**kw)
    out.square().mean().backward()
    grads = [p.grad.clone() for p in model.parameters()]

    cl = dict(kw, x=kw["x"].to(memory_format=torch.channels_last))
    assert torch.allclose(model.to(memory_format=torch.channels_last)(**cl), out, atol=1e-5)

    model.zero_grad()
    model.config.gradient_checkpointing = True
    model(**kw).square().mean().backward()
    for g, p in zip(grads, model.parameters()):
        assert torch.allclose(p.grad, g, atol=1e-6)


def test_traces_into_one_graph_for_torch_compile():
    cfg = tiny(dims=3, context_dim=CTX_DIM, attention_levels=())  # factorized video: the most reshapes
    model = UNet(cfg).eval()
    perturb_(model)
    kw = inputs(cfg, (3, 4, 4))
    compiled = torch.compile(model, backend="eager", fullgraph=True)  # fullgraph: fails on any graph break
    assert torch.allclose(compiled(**kw), model(**kw), atol=1e-6)


def test_tiny_unet_overfits_one_batch():
    torch.manual_seed(0)
    cfg = tiny(dims=2, in_channels=1, model_channels=16, channel_mult=(1, 2), num_res_blocks=1)
    model = UNet(cfg)
    x0 = torch.randn(8, 1, 8, 8)
    noise = torch.randn_like(x0)
    t = torch.linspace(50, 950, 8)
    alpha_bar = torch.cos(t / 1000 * torch.pi / 2)[:, None, None, None] ** 2
    x_t = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(50):
        opt.zero_grad()
        loss = F.mse_loss(model(x_t, t), noise)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


@pytest.mark.parametrize("spatial", [(5,), (3, 4), (2, 3, 4)])
def test_coordinates_span_minus_one_to_one_along_each_axis(spatial):
    from polydiff.nn.unet import coordinates

    grid = coordinates(2, spatial, torch.zeros(1))
    assert grid.shape == (2, len(spatial), *spatial)
    for axis, n in enumerate(spatial):
        line = grid[0, axis].movedim(axis, 0).reshape(n, -1)
        assert torch.allclose(line[:, 0], torch.linspace(-1, 1, n))
        assert torch.equal(line, line[:, :1].expand_as(line))  # constant along the other axes


@pytest.mark.parametrize("dims, spatial", [(1, (16,)), (2, (8, 8)), (3, (4, 8, 8))])
def test_coord_channels_widen_the_input_conv(dims, spatial):
    cfg = UNetConfig(
        dims=dims,
        in_channels=2,
        model_channels=16,
        channel_mult=(1, 2),
        num_res_blocks=1,
        attention_levels=(),
        norm_groups=4,
        coord_channels=True,
    )
    net = UNet(cfg)
    first_weight = next(p for p in net.input_blocks[0].parameters() if p.dim() > 2)
    assert first_weight.shape[1] == 2 + dims
    x = torch.randn(2, 2, *spatial)
    assert net(x, torch.tensor([10, 20])).shape == x.shape


@pytest.mark.parametrize("coords", [False, True])
def test_only_coord_channels_tell_the_interior_where_it_is(coords):
    """A constant signal far from the borders: without coordinates the output there is constant
    (translation equivariance), with them it varies along the axis."""
    torch.manual_seed(0)
    cfg = UNetConfig(
        dims=1,
        in_channels=1,
        model_channels=8,
        channel_mult=(1,),
        num_res_blocks=1,
        attention_levels=(),
        norm_groups=4,
        coord_channels=coords,
    )
    net = UNet(cfg)
    torch.nn.init.normal_(net.out[-1].weight)  # the zero-initialised output layer would hide everything
    y = net(torch.ones(1, 1, 96), torch.tensor([10]))[0, 0, 32:64]
    assert (y.std() > 1e-3) == coords, y.std()


def test_pooled_context_needs_context_tokens():
    with pytest.raises(ConfigError, match="pooled_context"):
        UNet(tiny(pooled_context=True))


def test_pooled_mean_ignores_padding_tokens():
    from polydiff.nn.unet import pooled

    context = torch.randn(2, 4, CTX_DIM)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    out = pooled(context, mask)
    assert torch.allclose(out[0], context[0, :2].mean(0))
    assert torch.allclose(out[1], context[1].mean(0))
    assert torch.allclose(pooled(context, None), context.mean(1))


@pytest.mark.parametrize(
    "flag, new_keys",
    [
        ("pooled_context", "context_embed."),
        ("frame_embedding", ".frame_embed."),
        ("frame_modulation", "frame_modulation."),
    ],
)
def test_fresh_conditioning_paths_start_as_the_plain_unet(flag, new_keys):
    """The added path's last layer starts at zero: the plain UNet's weights, the same output."""
    torch.manual_seed(0)
    plain = UNet(tiny(dims=3, context_dim=CTX_DIM))
    perturb_(plain)
    extended = UNet(tiny(dims=3, context_dim=CTX_DIM, **{flag: True}))
    missing, unexpected = extended.load_state_dict(plain.state_dict(), strict=False)
    assert unexpected == [] and missing and all(new_keys in k for k in missing)
    x, t, ctx = torch.randn(2, 2, 3, 8, 8), torch.tensor([5, 500]), torch.randn(2, 3, CTX_DIM)
    assert torch.allclose(extended(x, t, ctx), plain(x, t, ctx), atol=1e-6)


def test_pooled_context_modulates_every_resblock_and_skips_padding():
    """Without attention anywhere but the middle, a trained pooled path still lets the prompt reach
    the first level's ResBlocks; padded tokens (mask False) change nothing."""
    torch.manual_seed(0)
    net = UNet(tiny(context_dim=CTX_DIM, pooled_context=True, attention_levels=()))
    perturb_(net)
    captured = []
    net.input_blocks[1].register_forward_hook(lambda m, i, o: captured.append(o))
    x, t = torch.randn(1, 2, 8, 8).expand(2, -1, -1, -1), torch.tensor([7, 7])
    ctx = torch.randn(2, 3, CTX_DIM)
    net(x, t, ctx)
    assert (captured[0][0] - captured[0][1]).abs().max() > 1e-4  # level 0 sees the prompt
    mask = torch.tensor([[True, True, False]] * 2)
    padded = ctx.clone()
    padded[:, 2] = 100.0
    assert torch.allclose(net(x, t, ctx, mask), net(x, t, padded, mask), atol=1e-5)


@pytest.mark.parametrize("frame_embedding", [False, True])
def test_frame_embedding_tells_each_frame_its_index(frame_embedding):
    """Identical frames through a UNet whose temporal layers are still identities: the frames come
    out identical, unless a trained frame embedding tells each frame which one it is."""
    torch.manual_seed(0)
    model = UNet(tiny(dims=3, context_dim=CTX_DIM, frame_embedding=frame_embedding)).eval()
    perturb_(model, only=lambda name: "temporal" not in name)  # frame_embed included
    frame = torch.randn(2, 2, 1, 8, 8)
    out = model(frame.expand(-1, -1, 5, -1, -1), torch.tensor([3, 300]), torch.randn(2, 3, CTX_DIM))
    spread = (out - out[:, :, :1]).abs().amax().item()
    assert (spread > 1e-3) == frame_embedding, spread


@pytest.mark.parametrize("flag", ["frame_embedding", "frame_modulation"])
def test_frame_conditioning_needs_factorized_video(flag):
    """The frame options live in the space-time section, which only rank-3 data may set (they
    cannot be given to full 3-D layers at all any more)."""
    with pytest.raises(ConfigError, match=r"unet.spacetime .*needs rank-3 data, got unet.dims=2"):
        tiny(dims=2, **{flag: True})
    with pytest.raises(ConfigError, match=rf"unet.spacetime.{flag} must be true or false"):
        SpaceTimeConfig(**{flag: "yes"})


def test_rank_3_without_spacetime_is_three_spatial_axes():
    """A static 3-D modality (volumes): full 3x3x3 layers, every axis downsampled and named as a
    spatial axis; the space-time UNet is what ``unet.spacetime`` asks for."""
    volume = UNet(
        UNetConfig(
            dims=3,
            in_channels=2,
            model_channels=16,
            channel_mult=(1, 2),
            num_res_blocks=1,
            attention_levels=(1,),
            head_dim=8,
            norm_groups=8,
        )
    )
    assert not volume.factorized and volume.axis_names == ("depth", "height", "width")
    kernels = {m.kernel_size for m in volume.modules() if isinstance(m, torch.nn.Conv3d)}
    assert (3, 3, 3) in kernels and not kernels & {(1, 3, 3), (3, 1, 1)}, kernels
    with pytest.raises(ConfigError, match=r"depth 5 is not a multiple of 2"):
        volume.check_input_shape((5, 4, 4))
    video = UNet(tiny(dims=3))
    assert video.factorized and video.axis_names[0] == "frames"
    kernels = {m.kernel_size for m in video.modules() if isinstance(m, torch.nn.Conv3d)}
    assert {(1, 3, 3), (3, 1, 1)} <= kernels and (3, 3, 3) not in kernels, kernels
    video.check_input_shape((5, 4, 4))


@pytest.mark.parametrize("frame_modulation", [False, True])
def test_frame_modulation_reaches_each_frames_resblocks(frame_modulation):
    """Identical frames, temporal layers at identity, no attention but the middle block's (which has
    no frame embedding): frames differ after the first ResBlock only with a trained frame modulation."""
    torch.manual_seed(0)
    model = UNet(tiny(dims=3, attention_levels=(), frame_modulation=frame_modulation)).eval()
    perturb_(model, only=lambda name: "temporal" not in name)
    captured = []
    model.input_blocks[1].register_forward_hook(lambda m, i, o: captured.append(o))
    frame = torch.randn(2, 2, 1, 8, 8)
    model(frame.expand(-1, -1, 5, -1, -1), torch.tensor([3, 300]))
    spread = (captured[0] - captured[0][:, :, :1]).abs().amax().item()
    assert (spread > 1e-3) == frame_modulation, spread


def test_frame_modulation_mixes_frame_index_and_prompt():
    """What frame t is told beyond frame 0 depends on the prompt (not a sum of the two), has one row
    per frame for any number of frames, and is zero when fresh."""
    from polydiff.nn.embeddings import FrameModulation

    torch.manual_seed(0)
    module = FrameModulation(16, 32, CTX_DIM)
    prompts = torch.randn(2, CTX_DIM)
    assert module(6, prompts).abs().max() == 0
    perturb_(module, std=0.5)
    out = module(6, prompts)
    assert out.shape == (2, 6, 32) and module(11, prompts).shape == (2, 11, 32)
    relative = out - out[:, :1]  # [B, T, E]: frame t against frame 0
    assert (relative[0] - relative[1]).abs().max() > 1e-3
    assert FrameModulation(16, 32)(4).shape == (1, 4, 32)


@pytest.mark.parametrize("frame_norm", [True, False])
def test_clip_norm_shares_statistics_across_frames(frame_norm):
    """Temporal layers still identities: frame 0 reaches the other frames only through GroupNorm
    statistics taken over the whole clip (frame_norm=False)."""
    cfg = tiny(dims=3, context_dim=CTX_DIM, frame_norm=frame_norm)
    model = UNet(cfg).eval()
    perturb_(model, only=lambda name: "temporal" not in name)
    influence = _frame_influence(model, inputs(cfg, (5, 8, 8)))
    assert influence[0] > 1e-3
    assert (influence[1:].max() > 1e-4) == (not frame_norm), influence
