#!/usr/bin/env python3
"""PyTorch peer of `litevae-bench train-step` (and of `model-inference` with --inference).

Times the same LiteVAE training step as src/Model/Training/LiteVaeTrainer.cs, in PyTorch, so the C#
numbers can be compared against PyTorch on the same card in the same device call:

  LiteVAE-B encoder (nz 12) + reference decoder + PatchGAN (ndf 64, 3 layers, BatchNorm) + VGG16-LPIPS,
  batch 16 at 256 px by default. One step = upload uint8 pixels -> [-1, 1];
  generator step (D frozen by requires_grad): encode, sample the posterior, decode, loss
    = 1.0 L1 + 1.0 LPIPS + 1.0 wavelet (Charbonnier, eps 1e-3, level-1 Haar detail bands)
      + 0.5 Gaussian high-pass L1 (5x5, sigma 1, reflect padding) + 0.01 KL (per-element mean)
      + 0.1 hinge generator term (-mean D(x_hat)),
    backward, Adam(lr 1e-4, betas (0.5, 0.9));
  discriminator step on the SAME reconstruction, detached: hinge loss on D(x) and D(x_hat) in two
    separate calls (BatchNorm sees each batch alone), backward, Adam.
  L1, wavelet, Gaussian and KL run in fp32 whatever the compute dtype (as LiteVaeLoss.cs does).

The models are NOT the open-litevae code: they are the repository's independent PyTorch
implementations written from shared/design/litevae-spec.md for the parity fixtures
(tests/fixtures/tools/make_parity_fixtures.py: encoder/decoder; make_disc_fixtures.py: PatchGAN;
make_perceptual_fixtures.py: LPIPS constants and the torchvision VGG16 it uses). The platform README's
"peer numbers to beat" were measured with open-litevae; this script is the in-call peer. Weights are
random (LPIPS too: timing only).

Variants (--variants, comma-separated):
  fp32          fp32 weights and activations; TF32 convolutions (PyTorch's default, and libtorch's for C#)
  fp32-cl       the same, channels_last
  bf16          fp32 weights, bf16 autocast
  bf16-cl       bf16 autocast + channels_last
  bf16-pure     models converted to bf16 (fp32 master weights + Adam state), NCHW
  bf16-pure-cl  the same, channels_last (what TorchSharp does: it has no autocast)
  compile       bf16 autocast + channels_last + torch.compile (minutes of warm-up; not default)

GPU (C# `litevae-bench train-step` runs fp32, fp32+CL, bf16, bf16+CL where its bf16 is pure bf16 with
fp32 masters; the one-to-one peers are fp32, fp32-cl, bf16-pure, bf16-pure-cl):
      python3 bench/peers/torch_train_step.py --device cuda --variants fp32,fp32-cl,bf16-pure,bf16-pure-cl,bf16,bf16-cl --json $OUT/torch-train-step.json
      python3 bench/peers/torch_train_step.py --device cuda --inference --json $OUT/torch-inference.json
      python3 bench/peers/torch_train_step.py --device cuda --variants compile --warmup 3 --json $OUT/torch-compile.json  (~5 min)
The open-litevae numbers in shared/platform/README.md come from a D step that re-runs the autoencoder
(spec 9.1); --d-input fresh does the same here, the default (same) is what the C# trainer does.
CPU smoke (torch 1.13):
      /usr/bin/python3 bench/peers/torch_train_step.py --device cpu --resolution 32 --batch 2 --steps 2 --warmup 1 --variants fp32
"""
import argparse
import contextlib
import copy
import gc
import json
import os
import platform
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True  # importing the fixture tools must not leave __pycache__ in the checkout
REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "fixtures", "tools"))

from make_parity_fixtures import Autoencoder, LITEVAE_B_F8C12, haar_one_level  # noqa: E402
from make_disc_fixtures import patchgan  # noqa: E402

IMPLEMENTATION = ("independent PyTorch re-implementation from the spec (tests/fixtures/tools/*), "
                  "NOT the open-litevae code; random weights")

TRAIN_VARIANTS = {
    # name: (precision, channels_last, compile)
    "fp32": ("fp32", False, False),
    "fp32-cl": ("fp32", True, False),
    "bf16": ("autocast", False, False),
    "bf16-cl": ("autocast", True, False),
    "bf16-pure": ("pure", False, False),
    "bf16-pure-cl": ("pure", True, False),
    "compile": ("autocast", True, True),
}
LABELS = {
    "fp32": "fp32 (TF32 convs)", "fp32-cl": "fp32 (TF32 convs) + channels_last", "bf16": "bf16 autocast",
    "bf16-cl": "bf16 autocast + channels_last", "bf16-pure": "pure bf16 (fp32 master)",
    "bf16-pure-cl": "pure bf16 (fp32 master) + channels_last", "compile": "bf16 autocast + CL + torch.compile",
}
DEFAULT_TRAIN = "fp32,bf16,bf16-cl,bf16-pure-cl"
DEFAULT_INFERENCE = "fp32,fp32-cl,bf16,bf16-pure,bf16-pure-cl"

# Loss weights: LossConfig.cs defaults (spec 8.3 / 13).
L1_WEIGHT, LPIPS_WEIGHT, WAVELET_WEIGHT, GAUSSIAN_WEIGHT, KL_WEIGHT, ADV_WEIGHT, DISC_FACTOR = 1.0, 1.0, 1.0, 0.5, 0.01, 0.1, 1.0
CHARBONNIER_EPS, GAUSSIAN_KERNEL, GAUSSIAN_SIGMA = 1e-3, 5, 1.0
LR, BETAS = 1e-4, (0.5, 0.9)


# ------------------------------------------------------------------ LPIPS (VGG16), frozen
def vgg16_parts():
    """LPIPS constants and VGG16 features from make_perceptual_fixtures.py (torchvision's VGG16); if
    torchvision (or numpy) is missing, the same layer list written out here with torch alone."""
    try:
        from make_perceptual_fixtures import SHIFT, SCALE, VGG_TAPS, CHANNELS
        import torchvision
        return torchvision.models.vgg16().features, SHIFT, SCALE, VGG_TAPS, CHANNELS["vgg"], "torchvision vgg16"
    except ImportError:
        layers, c = [], 3
        for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        shift = torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1)
        scale = torch.tensor([.458, .448, .450]).view(1, 3, 1, 1)
        return nn.Sequential(*layers), shift, scale, [3, 8, 15, 22, 29], [64, 128, 256, 512, 512], "local vgg16 (no torchvision)"


class LpipsVgg(nn.Module):
    """LPIPS v0.1 as Lpips.cs computes it: scaling layer, five VGG16 taps, per-pixel channel unit
    normalisation (+1e-10), squared difference, 1x1 head (no bias), spatial mean, sum over taps.
    Target taps under no_grad; returns one distance per image."""

    def __init__(self):
        super().__init__()
        features, shift, scale, taps, channels, self.source = vgg16_parts()
        self.register_buffer("shift", shift.clone().reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", scale.clone().reshape(1, 3, 1, 1), persistent=False)
        self.net = nn.Sequential(*list(features.children())[: taps[-1] + 1])
        self.taps = set(taps)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in channels)
        with torch.no_grad():
            for p in self.parameters():  # the C# bench's "random LPIPS" (no weight files)
                p.normal_(0, 0.02)
                p.requires_grad_(False)
        self.eval()

    def train(self, mode=True):
        return super().train(False)

    def features(self, x):
        out, h = [], (x - self.shift.to(x.dtype)) / self.scale.to(x.dtype)
        for i, layer in enumerate(self.net):
            h = layer(h)  # in-place ReLUs: each tap is followed by a max-pool, so no copy is needed
            if i in self.taps:
                out.append(h)
        return out

    def forward(self, x, target):
        with torch.no_grad():
            ft = self.features(target)
        fx = self.features(x)
        total = 0
        for a, b, lin in zip(fx, ft, self.lins):
            na = a / (a.square().sum(1, keepdim=True).sqrt() + 1e-10)
            nb = b / (b.square().sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + lin((na - nb).square()).mean([2, 3]).reshape(-1)
        return total


# ------------------------------------------------------------------ high-frequency terms (fp32)
class HighFrequency(nn.Module):
    """Wavelet (Charbonnier on level-1 Haar detail bands) and Gaussian high-pass L1, as HighFrequencyLosses.cs."""

    def __init__(self):
        super().__init__()
        r = GAUSSIAN_KERNEL // 2
        g = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float64) ** 2 / (2 * GAUSSIAN_SIGMA ** 2))
        g = g / g.sum()
        self.register_buffer("gauss", torch.outer(g, g).float().expand(3, 1, GAUSSIAN_KERNEL, GAUSSIAN_KERNEL).contiguous())

    @staticmethod
    def detail(x):
        return haar_one_level(x)[0][:, 3:]  # bands are [LL, diff W, diff H, diagonal] x channels: drop LL

    def high_pass(self, x):
        p = GAUSSIAN_KERNEL // 2
        return x - F.conv2d(F.pad(x, [p, p, p, p], mode="reflect"), self.gauss, groups=3)

    def wavelet(self, rec32, x32):
        with torch.no_grad():
            t = self.detail(x32)
        d = self.detail(rec32) - t
        return (d.square() + CHARBONNIER_EPS ** 2).sqrt().mean()

    def gaussian(self, rec32, x32):
        with torch.no_grad():
            t = self.high_pass(x32)
        return (self.high_pass(rec32) - t).abs().mean()


# ------------------------------------------------------------------ optimizer with the guard's work
def foreach_copy(dst, src):
    if hasattr(torch, "_foreach_copy_"):
        torch._foreach_copy_(dst, src)
    else:
        for d, s in zip(dst, src):
            d.copy_(s)


class Updater:
    """Adam on fp32 weights. For a bf16 model: fp32 master copies (grads gathered by one cast copy,
    weights published back by another), as MasterWeights/FusedAdam do in C#. Also computes the global
    grad norm and a finite flag on the device each step (the C# GradientGuard's work; nothing is
    skipped here and nothing is read back)."""

    def __init__(self, module, master, fused):
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.master = None
        target = self.params
        if master:
            self.master = [p.detach().float().clone() for p in self.params]  # clone keeps channels_last
            for m in self.master:
                m.grad = torch.zeros_like(m)
            target = self.master
        kwargs = {"lr": LR, "betas": BETAS}
        self.kind = "default"
        if fused:
            try:
                self.opt = torch.optim.Adam(target, fused=True, **kwargs)
                self.kind = "fused"
            except (TypeError, RuntimeError, ValueError):
                self.opt = torch.optim.Adam(target, **kwargs)
        else:
            self.opt = torch.optim.Adam(target, **kwargs)
        self.norm = None
        self.ok = None

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        if self.master is not None:
            pairs = [(m.grad, p.grad) for m, p in zip(self.master, self.params) if p.grad is not None]
            foreach_copy([d for d, _ in pairs], [g for _, g in pairs])
            grads = [d for d, _ in pairs]
        else:
            grads = [p.grad for p in self.params if p.grad is not None]
        norms = torch._foreach_norm(grads) if hasattr(torch, "_foreach_norm") else [g.norm() for g in grads]
        self.norm = torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))
        self.ok = torch.isfinite(self.norm)
        self.opt.step()
        if self.master is not None:
            foreach_copy(self.params, self.master)


# ------------------------------------------------------------------ building
def build_autoencoder(nz):
    cfg = copy.deepcopy(LITEVAE_B_F8C12)
    cfg["embed_dim"] = nz
    return Autoencoder(cfg)


def prepare(module, device, dtype, channels_last):
    module.to(device)
    if dtype is not None:
        module.to(dtype)
    if channels_last:
        module.to(memory_format=torch.channels_last)
    return module


def cast_extractor_inputs(ae, dtype, channels_last):
    """Pure bf16: the DWT runs on fp32 images (as in C#); its levels are cast to the weights' dtype."""
    fmt = torch.channels_last if channels_last else torch.preserve_format

    def hook(_module, args):
        return (args[0].to(dtype=dtype, memory_format=fmt),)

    for net in ae.encoder.extractors:
        net.register_forward_pre_hook(hook)


def autocast_ctx(device, on):
    if not on:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def no_autocast(device):
    return torch.autocast(device_type=device.type, enabled=False)


def compile_fn(fn):
    if not hasattr(torch, "compile"):
        raise SystemExit(f"error: the compile variant needs torch.compile (PyTorch >= 2.0); this is torch {torch.__version__}.")
    return torch.compile(fn)


# ------------------------------------------------------------------ training step
def run_train_variant(name, args, device):
    precision, channels_last, use_compile = TRAIN_VARIANTS[name]
    pure = precision == "pure"
    autocast_on = precision == "autocast"
    dtype = torch.bfloat16 if pure else None
    cuda = device.type == "cuda"
    mem0 = begin_memory(device)

    torch.manual_seed(1)
    ae = prepare(build_autoencoder(args.nz), device, dtype, channels_last).train()
    disc = prepare(patchgan(args.ndf, 3), device, dtype, channels_last).train()
    lpips = prepare(LpipsVgg(), device, dtype, channels_last)
    hf = HighFrequency().to(device)
    if pure:
        cast_extractor_inputs(ae, torch.bfloat16, channels_last)
    fused = cuda and args.adam == "fused"
    g_opt = Updater(ae, master=pure, fused=fused)
    d_opt = Updater(disc, master=pure, fused=fused)
    d_params = list(disc.parameters())

    def g_loss(x32, xc):
        with autocast_ctx(device, autocast_on):
            moments = ae.moments(x32)
            mean, logvar = moments.chunk(2, dim=1)
            logvar = logvar.clamp(-30.0, 20.0)
            z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
            rec = ae.decode(z)
            p = lpips(rec, xc).float().mean()
            adv = -disc.main(rec).float().mean()
        with no_autocast(device):
            rec32 = rec.float()
            l1 = (rec32 - x32).abs().mean()
            wav = hf.wavelet(rec32, x32)
            gau = hf.gaussian(rec32, x32)
            m32, lv32 = mean.float(), logvar.float()
            kl = (0.5 * (m32.square() + lv32.exp() - 1.0 - lv32)).mean()
            total = (L1_WEIGHT * l1 + LPIPS_WEIGHT * p + WAVELET_WEIGHT * wav + GAUSSIAN_WEIGHT * gau
                     + KL_WEIGHT * kl + ADV_WEIGHT * adv)
        return total, rec

    def d_loss(xc, fake):
        with autocast_ctx(device, autocast_on):
            real_logits = disc.main(xc)
            fake_logits = disc.main(fake)
        d = 0.5 * (F.relu(1.0 - real_logits.float()).mean() + F.relu(1.0 + fake_logits.float()).mean())
        return DISC_FACTOR * d

    def fresh_fake(x32):
        # --d-input fresh: the reference's D step re-runs the autoencoder under no_grad (new sample).
        with torch.no_grad(), autocast_ctx(device, autocast_on):
            mean, logvar = ae.moments(x32).chunk(2, dim=1)
            return ae.decode(mean + torch.exp(0.5 * logvar.clamp(-30.0, 20.0)) * torch.randn_like(mean))

    if use_compile:
        g_loss, d_loss = compile_fn(g_loss), compile_fn(d_loss)

    gen = torch.Generator().manual_seed(5)
    host = [torch.randint(0, 256, (args.batch, 3, args.resolution, args.resolution), dtype=torch.uint8, generator=gen)
            for _ in range(2)]
    if cuda:
        host = [h.pin_memory() for h in host]
    last = {}

    def step(i):
        u8 = host[i % 2].to(device, non_blocking=True)
        x32 = u8.float().div_(127.5).sub_(1.0)
        if channels_last:
            x32 = x32.contiguous(memory_format=torch.channels_last)
        xc = x32.to(torch.bfloat16) if pure else x32
        # generator step, D frozen
        for p in d_params:
            p.requires_grad_(False)
        g_opt.zero_grad()
        total, rec = g_loss(x32, xc)
        total.backward()
        g_opt.step()
        # discriminator step on the same reconstruction (or a fresh one, --d-input fresh)
        for p in d_params:
            p.requires_grad_(True)
        d_opt.zero_grad()
        fake = rec.detach() if args.d_input == "same" else fresh_fake(x32)
        d = d_loss(xc, fake)
        d.backward()
        d_opt.step()
        last["g"], last["d"] = total.detach(), d.detach()

    t = time.perf_counter()
    step(0)
    sync(device)
    first_s = time.perf_counter() - t
    for i in range(1, args.warmup):
        step(i)
    sync(device)
    t = time.perf_counter()
    for i in range(args.steps):
        step(i)
    sync(device)
    seconds = time.perf_counter() - t
    g_val, d_val = float(last["g"]), float(last["d"])
    result = {
        "variant": name, "label": LABELS[name], "ms_per_step": 1000 * seconds / args.steps,
        "img_per_s": args.batch * args.steps / seconds, "first_step_s": first_s,
        "g_loss": g_val, "d_loss": d_val, "adam": g_opt.kind,
        "generator_params": sum(p.numel() for p in ae.parameters()),
        "discriminator_params": sum(p.numel() for p in disc.parameters()),
    }
    result.update(end_memory(device, mem0))
    return result


# ------------------------------------------------------------------ inference
def run_inference_variant(name, args, device):
    precision, channels_last, use_compile = TRAIN_VARIANTS[name]
    pure = precision == "pure"
    autocast_on = precision == "autocast"
    dtype = torch.bfloat16 if pure else torch.float32
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(1)
    ae = prepare(build_autoencoder(args.nz), device, torch.bfloat16 if pure else None, channels_last).eval()
    if pure:
        cast_extractor_inputs(ae, torch.bfloat16, channels_last)
    encoder, decoder = ae.encoder, ae.decoder
    if use_compile:
        encoder, decoder = compile_fn(encoder), compile_fn(decoder)
    latent = args.resolution // 8
    x = (torch.rand(args.batch, 3, args.resolution, args.resolution, device=device) * 2 - 1).contiguous(memory_format=fmt)
    z = torch.randn(args.batch, args.nz, latent, latent, device=device, dtype=dtype).contiguous(memory_format=fmt)
    rows = []
    for part, module, inp in (("encoder", encoder, x), ("decoder", decoder, z)):
        mem0 = begin_memory(device)

        def once():
            with torch.no_grad(), autocast_ctx(device, autocast_on):
                module(inp)

        t = time.perf_counter()
        once()
        sync(device)
        first_s = time.perf_counter() - t
        for _ in range(1, args.warmup):
            once()
        sync(device)
        t = time.perf_counter()
        for _ in range(args.steps):
            once()
        sync(device)
        seconds = time.perf_counter() - t
        row = {"variant": name, "label": LABELS[name].replace(" (fp32 master)", ""), "part": part, "ms_per_batch": 1000 * seconds / args.steps,
               "img_per_s": args.batch * args.steps / seconds, "first_call_s": first_s}
        row.update(end_memory(device, mem0))
        rows.append(row)
    return rows


# ------------------------------------------------------------------ device helpers
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def begin_memory(device):
    gc.collect()
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    free, total = torch.cuda.mem_get_info(device)
    return {"allocated": torch.cuda.memory_allocated(device), "used": total - free}


def end_memory(device, mem0):
    if mem0 is None:
        return {"peak_allocated_gib": None, "peak_reserved_gib": None, "device_used_gib": None}
    gib = 1024.0 ** 3
    free, total = torch.cuda.mem_get_info(device)
    return {
        # torch.cuda.max_memory_allocated: live tensors at the peak (what the platform README quotes)
        "peak_allocated_gib": (torch.cuda.max_memory_allocated(device) - mem0["allocated"]) / gib,
        "peak_reserved_gib": torch.cuda.max_memory_reserved(device) / gib,
        # total - free growth since the variant began: what the C# bench reports as "memory"
        "device_used_gib": (total - free - mem0["used"]) / gib,
    }


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} torch threads"


def set_numerics(args, device):
    # TF32 flags are left at PyTorch's defaults (cuDNN convolutions in TF32, matmuls in full fp32), which
    # are libtorch's and so the C# bench's too; this model's work is all convolutions. Not touching them
    # also avoids PyTorch >= 2.9's error on mixed legacy/new TF32 APIs inside torch.compile.
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = args.cudnn_benchmark == "on"


def tf32_state():
    try:
        return {"cudnn_conv": bool(torch.backends.cudnn.allow_tf32), "matmul": bool(torch.backends.cuda.matmul.allow_tf32)}
    except RuntimeError as e:  # newer PyTorch refuses legacy reads in some flag combinations
        return {"error": str(e).split(".")[0]}


# ------------------------------------------------------------------ driver
def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def markdown(results, args, info):
    cudnn = f"cudnn.benchmark {args.cudnn_benchmark}, TF32 {info['tf32']}, " if args.device.startswith("cuda") else ""
    lines = [f"PyTorch peer ({IMPLEMENTATION})",
             f"torch {info['torch']}, {info['device_name']}, {cudnn}"
             f"{'inference, no_grad' if args.inference else 'train step: G then D on ' + args.d_input + ' reconstruction'}, "
             f"batch {args.batch} at {args.resolution}px, {args.warmup} warm-up + {args.steps} timed"
             f"{'' if args.inference else ', LPIPS: ' + info['lpips']}", ""]
    if args.inference:
        lines += ["| part | variant | ms/batch | img/s | peak alloc GiB | device used GiB | first call s |",
                  "|---|---|---|---|---|---|---|"]
        for r in results:
            lines.append(f"| {r['part']} | {r['label']} | {r['ms_per_batch']:.2f} | {r['img_per_s']:.1f} | "
                         f"{fmt(r['peak_allocated_gib'], '.2f')} | {fmt(r['device_used_gib'], '.2f')} | {r['first_call_s']:.1f} |")
    else:
        lines += ["| variant | ms/step | img/s | peak alloc GiB | peak reserved GiB | device used GiB | first step s |",
                  "|---|---|---|---|---|---|---|"]
        for r in results:
            lines.append(f"| {r['label']} | {r['ms_per_step']:.1f} | {r['img_per_s']:.1f} | {fmt(r['peak_allocated_gib'], '.2f')} | "
                         f"{fmt(r['peak_reserved_gib'], '.2f')} | {fmt(r['device_used_gib'], '.2f')} | {r['first_step_s']:.1f} |")
    lines += ["", "peak alloc = torch.cuda.max_memory_allocated (the platform README's column); device used = growth "
              "of total-free memory over the variant (what the C# train-step bench reports)."]
    return "\n".join(lines)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--batch", type=int, default=None, help="default 16 (train) / 64 (--inference)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps (iterations with --inference)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps, the first included (at least 1)")
    ap.add_argument("--variants", default=None, help=f"comma list of {', '.join(TRAIN_VARIANTS)}; default "
                    f"{DEFAULT_TRAIN} (train) / {DEFAULT_INFERENCE} (--inference)")
    ap.add_argument("--inference", action="store_true", help="encoder and decoder forward img/s instead of the train step")
    ap.add_argument("--nz", type=int, default=12)
    ap.add_argument("--ndf", type=int, default=64)
    ap.add_argument("--d-input", choices=["same", "fresh"], default="same",
                    help="D step on the G step's reconstruction (C#) or on a fresh no_grad AE pass (open-litevae)")
    ap.add_argument("--adam", choices=["fused", "default"], default="fused", help="fused Adam on CUDA (C# uses a fused Adam)")
    ap.add_argument("--cudnn-benchmark", choices=["on", "off"], default="on", help="default on, as the C# bench")
    ap.add_argument("--isolate", choices=["on", "off"], default="on",
                    help="each variant in its own process (as the C# bench), so memory numbers stand alone")
    ap.add_argument("--json", default=None, help="write results as JSON to this path")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.batch is None:
        args.batch = 64 if args.inference else 16
    if args.variants is None:
        args.variants = DEFAULT_INFERENCE if args.inference else DEFAULT_TRAIN
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in names if v not in TRAIN_VARIANTS]
    if bad or not names:
        ap.error(f"--variants: unknown {bad}; choose from {', '.join(TRAIN_VARIANTS)}")
    args.variant_list = names
    if args.resolution % 8 != 0 or args.resolution < 32:
        ap.error(f"--resolution {args.resolution}: must be a multiple of 8 and at least 32 (PatchGAN needs room)")
    if args.batch < 1 or args.steps < 1 or args.warmup < 1:
        ap.error("--batch, --steps and --warmup must be at least 1")
    if not args.device.startswith("cuda") and any(TRAIN_VARIANTS[v][0] == "autocast" for v in names):
        ap.error(f"--variants {args.variants}: the autocast variants (bf16, bf16-cl, compile) are for CUDA; CPU "
                 "autocast does not cover GroupNorm with bf16 inputs (torch 1.13). On the CPU use fp32, fp32-cl, bf16-pure(-cl).")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")
    return args


def run_one(name, args, device):
    if args.inference:
        return run_inference_variant(name, args, device)
    return [run_train_variant(name, args, device)]


def run_isolated(name, args):
    """Runs one variant in a child process (fresh CUDA context and allocator); returns its rows."""
    argv = [sys.executable, os.path.abspath(__file__), "--child", "--variants", name, "--device", args.device,
            "--resolution", str(args.resolution), "--batch", str(args.batch), "--steps", str(args.steps),
            "--warmup", str(args.warmup), "--nz", str(args.nz), "--ndf", str(args.ndf), "--d-input", args.d_input,
            "--adam", args.adam, "--cudnn-benchmark", args.cudnn_benchmark]
    if args.inference:
        argv.append("--inference")
    proc = subprocess.run(argv, stdout=subprocess.PIPE, text=True)
    rows = None
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            rows = json.loads(line[7:])
        else:
            print("    | " + line, flush=True)
    if proc.returncode != 0 or rows is None:
        raise SystemExit(f"error: variant {name} failed (exit code {proc.returncode}); its output is above.")
    return rows


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    set_numerics(args, device)
    if args.child:
        rows = run_one(args.variant_list[0], args, device)
        print("RESULT " + json.dumps(rows), flush=True)
        return 0
    info = {"torch": torch.__version__, "python": platform.python_version(), "device_name": device_name(device),
            "lpips": None if args.inference else vgg16_parts()[5] + ", random weights",
            "tf32": tf32_state() if device.type == "cuda" else None}
    what = "inference (encoder, decoder)" if args.inference else "train step"
    print(f"torch_train_step.py: {what}, LiteVAE-B nz {args.nz} + decoder"
          f"{'' if args.inference else f' + PatchGAN ndf {args.ndf} + VGG16-LPIPS'}, batch {args.batch} at "
          f"{args.resolution}px on {info['device_name']}; {IMPLEMENTATION}", flush=True)
    results = []
    isolate = args.isolate == "on" and len(args.variant_list) > 1
    for name in args.variant_list:
        rows = run_isolated(name, args) if isolate else run_one(name, args, device)
        results += rows
        for r in rows:
            if args.inference:
                print(f"  {r['part']:8} {r['label']:42} {r['ms_per_batch']:9.2f} ms/batch {r['img_per_s']:9.1f} img/s", flush=True)
            else:
                print(f"  {r['label']:42} {r['ms_per_step']:9.1f} ms/step {r['img_per_s']:8.2f} img/s  peak "
                      f"{fmt(r['peak_allocated_gib'], '.2f')} GiB  first step {r['first_step_s']:.1f} s  "
                      f"(g {r['g_loss']:.4f}, d {r['d_loss']:.4f})", flush=True)
    print()
    print(markdown(results, args, info))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        settings = {k: v for k, v in vars(args).items() if k not in ("child", "json")}
        with open(args.json, "w") as f:
            json.dump({"benchmark": "torch-peer-" + ("inference" if args.inference else "train-step"),
                       "implementation": IMPLEMENTATION, "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "command": " ".join([os.path.basename(sys.executable)] + sys.argv), "info": info,
                       "settings": settings, "results": results}, f, indent=2)
        print(f"\nresults: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
