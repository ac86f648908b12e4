using LiteVae.Model.Analysis;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace LiteVae.Model.Discriminators;

/// <summary>GroupNorm computed in fp32 whatever the input dtype (keys weight, bias; eps 1e-5).</summary>
public sealed class Fp32GroupNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private readonly long _groups;

    public Fp32GroupNorm(long groups, long channels) : base(nameof(Fp32GroupNorm))
    {
        _groups = groups;
        // Set explicitly: TorchSharp's own GroupNorm leaves these uninitialised.
        weight = LayerInit.Ones(channels);
        bias = LayerInit.Zeros(channels);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = F.group_norm(x.to(float32), _groups, weight.to(float32), bias.to(float32), 1e-5);
        return scope.MoveToOuter(y.to(x.dtype));
    }
}

/// <summary>LayerNorm over the last dimension, computed in fp32 (keys weight, bias; eps 1e-5).</summary>
public sealed class Fp32LayerNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private readonly long _dim;

    public Fp32LayerNorm(long dim) : base(nameof(Fp32LayerNorm))
    {
        _dim = dim;
        weight = LayerInit.Ones(dim);
        bias = LayerInit.Zeros(dim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = F.layer_norm(x.to(float32), [_dim], weight.to(float32), bias.to(float32), 1e-5);
        return scope.MoveToOuter(y.to(x.dtype));
    }
}

/// <summary>
/// Attention with L2-distance logits and tied query/key (GigaGAN): q = to_q(x), k = q, v = to_v(x);
/// logits_ij = -|q_i - q_j|^2 / sqrt(d_head), computed in fp32; softmax over j; to_out.
/// Keys to_q.*, to_v.*, to_out.0.*. Counts its own MACs (projections and both matmuls).
/// </summary>
public sealed class L2Attention : nn.Module<Tensor, Tensor>, IMacCounted
{
    private readonly Linear to_q;
    private readonly Linear to_v;
    private readonly Sequential to_out;
    private readonly long _heads, _dHead;

    public L2Attention(long dim, long heads, long dHead) : base(nameof(L2Attention))
    {
        _heads = heads;
        _dHead = dHead;
        long inner = heads * dHead;
        to_q = nn.Linear(dim, inner);
        to_v = nn.Linear(dim, inner);
        to_out = nn.Sequential(nn.Linear(inner, dim), nn.Identity());
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], n = x.shape[1];
        var q = SplitHeads(to_q.call(x), b, n);
        var v = SplitHeads(to_v.call(x), b, n);
        var q32 = q.to(float32);
        var ab = matmul(q32, q32.transpose(-1, -2));
        var aa = q32.square().sum(-1, keepdim: true);
        var sim = -(aa - 2 * ab + aa.transpose(-1, -2)) * (1.0 / Math.Sqrt(_dHead));
        var attn = sim.softmax(-1).to(v.dtype);
        var o = matmul(attn, v).reshape(b, _heads, n, _dHead).permute(0, 2, 1, 3).reshape(b, n, _heads * _dHead);
        return scope.MoveToOuter(to_out.call(o));
    }

    private Tensor SplitHeads(Tensor t, long b, long n) =>
        t.reshape(b, n, _heads, _dHead).permute(0, 2, 1, 3).reshape(b * _heads, n, _dHead);

    public long CountMacs(Tensor input, Tensor output)
    {
        long b = input.shape[0], n = input.shape[1], dim = input.shape[2], inner = _heads * _dHead;
        long projections = b * n * dim * inner * 3;
        long matmuls = 2 * b * _heads * n * n * _dHead;
        return projections + matmuls;
    }
}

/// <summary>GEGLU: proj to 2 x inner, value * GELU(gate). Key proj.*.</summary>
public sealed class Geglu : nn.Module<Tensor, Tensor>
{
    private readonly Linear proj;

    public Geglu(long dimIn, long dimOut) : base(nameof(Geglu))
    {
        proj = nn.Linear(dimIn, dimOut * 2);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var parts = proj.call(x).chunk(2, -1);
        return scope.MoveToOuter(parts[0] * F.gelu(parts[1]));
    }
}

/// <summary>Gated feed-forward, keys net.0.proj.* (GEGLU to 4 x dim) and net.2.* (back to dim).</summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    private readonly Sequential net;

    public FeedForward(long dim, long mult = 4) : base(nameof(FeedForward))
    {
        net = nn.Sequential(new Geglu(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => net.call(x);
}

/// <summary>
/// The discriminator's transformer block: self-attention is disabled and the "cross" attention,
/// given no context, attends to the block's own input. x += attn2(ca_norm(x)); x += ff(ff_norm(x)).
/// </summary>
public sealed class TransformerBlock : nn.Module<Tensor, Tensor>
{
    private readonly Fp32LayerNorm ca_norm;
    private readonly L2Attention attn2;
    private readonly Fp32LayerNorm ff_norm;
    private readonly FeedForward ff;

    public TransformerBlock(long dim, long heads, long dHead) : base(nameof(TransformerBlock))
    {
        ca_norm = new Fp32LayerNorm(dim);
        attn2 = new L2Attention(dim, heads, dHead);
        ff_norm = new Fp32LayerNorm(dim);
        ff = new FeedForward(dim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x + attn2.call(ca_norm.call(x));
        h = h + ff.call(ff_norm.call(h));
        return scope.MoveToOuter(h);
    }
}

/// <summary>
/// SpatialTransformer (GigaGAN discriminator, linear projections): GroupNorm(32) in fp32, flatten to
/// tokens, proj_in, depth transformer blocks, zero-initialised proj_out, back to N x C x H x W,
/// then out + res_gain * input. Keys norm.*, proj_in.*, transformer_blocks.{d}.*, proj_out.*.
/// </summary>
public sealed class SpatialTransformer : nn.Module<Tensor, Tensor>
{
    private readonly Fp32GroupNorm norm;
    private readonly Linear proj_in;
    private readonly ModuleList<TransformerBlock> transformer_blocks;
    private readonly Linear proj_out;
    private readonly double _resGain;

    public SpatialTransformer(long channels, long heads, long dHead, int depth, double resGain) : base(nameof(SpatialTransformer))
    {
        long inner = heads * dHead;
        if (inner != channels)
            throw new ArgumentException($"spatial transformer: heads x d_head ({inner}) must equal the channel count ({channels}).");
        _resGain = resGain;
        norm = new Fp32GroupNorm(32, channels);
        proj_in = nn.Linear(channels, inner);
        transformer_blocks = new ModuleList<TransformerBlock>([.. Enumerable.Range(0, depth).Select(_ => new TransformerBlock(inner, heads, dHead))]);
        proj_out = nn.Linear(channels, inner);
        using (no_grad())
        {
            proj_out.weight!.zero_();
            proj_out.bias!.zero_();
        }
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        var tokens = norm.call(x).permute(0, 2, 3, 1).reshape(b, h * w, c);
        tokens = proj_in.call(tokens);
        foreach (var block in transformer_blocks)
            tokens = block.call(tokens);
        tokens = proj_out.call(tokens);
        var y = tokens.reshape(b, h, w, c).permute(0, 3, 1, 2);
        return scope.MoveToOuter(y + x * _resGain);
    }
}
