using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;

namespace LiteVae.Model.Perceptual;

/// <summary>
/// The FID Inception-v3 of pytorch-fid (the port of TensorFlow's 2015-12-05 graph whose weights are
/// <c>pt_inception-2015-12-05-6726825d.pth</c>): torchvision's Inception3 layout and key names
/// (<c>Conv2d_1a_3x3.conv.weight</c>, <c>Mixed_5b.branch1x1.bn.running_mean</c>, ...) with the
/// TensorFlow quirks of pytorch-fid's FIDInceptionA/C/E blocks: average pools that do not count the
/// zero padding, and a max pool (not an average pool) in the pool branch of the last block.
/// Input: N x 3 x H x W in [-1, 1], any size; it is resized to 299 x 299 (bilinear, no corner
/// alignment) as pytorch-fid does. Output: the 2048-d pool3 features, N x 2048. The 1008-way
/// classifier of the weight file (<c>fc.*</c>) is not part of this module.
/// </summary>
public sealed class FidInceptionV3 : Module<Tensor, Tensor>
{
    public const int FeatureDim = 2048;
    public const string WeightFileStem = "pt_inception-2015-12-05-6726825d";

    private readonly BasicConv2d Conv2d_1a_3x3;
    private readonly BasicConv2d Conv2d_2a_3x3;
    private readonly BasicConv2d Conv2d_2b_3x3;
    private readonly BasicConv2d Conv2d_3b_1x1;
    private readonly BasicConv2d Conv2d_4a_3x3;
    private readonly FidInceptionA Mixed_5b;
    private readonly FidInceptionA Mixed_5c;
    private readonly FidInceptionA Mixed_5d;
    private readonly InceptionB Mixed_6a;
    private readonly FidInceptionC Mixed_6b;
    private readonly FidInceptionC Mixed_6c;
    private readonly FidInceptionC Mixed_6d;
    private readonly FidInceptionC Mixed_6e;
    private readonly InceptionD Mixed_7a;
    private readonly FidInceptionE Mixed_7b;
    private readonly FidInceptionE Mixed_7c;

    public FidInceptionV3() : base(nameof(FidInceptionV3))
    {
        Conv2d_1a_3x3 = new BasicConv2d(3, 32, (3, 3), stride: (2, 2));
        Conv2d_2a_3x3 = new BasicConv2d(32, 32, (3, 3));
        Conv2d_2b_3x3 = new BasicConv2d(32, 64, (3, 3), padding: (1, 1));
        Conv2d_3b_1x1 = new BasicConv2d(64, 80, (1, 1));
        Conv2d_4a_3x3 = new BasicConv2d(80, 192, (3, 3));
        Mixed_5b = new FidInceptionA(192, 32);
        Mixed_5c = new FidInceptionA(256, 64);
        Mixed_5d = new FidInceptionA(288, 64);
        Mixed_6a = new InceptionB(288);
        Mixed_6b = new FidInceptionC(768, 128);
        Mixed_6c = new FidInceptionC(768, 160);
        Mixed_6d = new FidInceptionC(768, 160);
        Mixed_6e = new FidInceptionC(768, 192);
        Mixed_7a = new InceptionD(768);
        Mixed_7b = new FidInceptionE(1280, maxPoolBranch: false);
        Mixed_7c = new FidInceptionE(2048, maxPoolBranch: true);
        RegisterComponents();
        foreach (var p in parameters()) p.requires_grad = false;
        eval();
    }

    public override Tensor forward(Tensor x)
    {
        if (x.ndim != 4 || x.shape[1] != 3)
            throw new ArgumentException($"FID Inception needs N x 3 x H x W images, got [{string.Join(", ", x.shape)}].");
        using var scope = NewDisposeScope();
        // pytorch-fid resizes [0,1] images and then maps them to [-1,1]; bilinear resizing is affine-
        // equivariant, so resizing [-1,1] images directly gives the same input.
        var h = x.shape[2] == 299 && x.shape[3] == 299 ? x
            : F.interpolate(x, size: [299, 299], mode: InterpolationMode.Bilinear, align_corners: false);
        h = Conv2d_1a_3x3.call(h);
        h = Conv2d_2a_3x3.call(h);
        h = Conv2d_2b_3x3.call(h);
        h = F.max_pool2d(h, [3, 3], [2, 2]);
        h = Conv2d_3b_1x1.call(h);
        h = Conv2d_4a_3x3.call(h);
        h = F.max_pool2d(h, [3, 3], [2, 2]);
        h = Mixed_5b.call(h);
        h = Mixed_5c.call(h);
        h = Mixed_5d.call(h);
        h = Mixed_6a.call(h);
        h = Mixed_6b.call(h);
        h = Mixed_6c.call(h);
        h = Mixed_6d.call(h);
        h = Mixed_6e.call(h);
        h = Mixed_7a.call(h);
        h = Mixed_7b.call(h);
        h = Mixed_7c.call(h);
        return scope.MoveToOuter(h.mean([2, 3]));
    }

    /// <summary>
    /// Always stays in eval mode: a parent's <c>train()</c> (e.g. the loss module that owns this
    /// network) must not switch on dropout or BatchNorm batch statistics in a frozen network.
    /// </summary>
    public override void train(bool train = true) => base.train(false);

    /// <summary>3x3 stride-1 average pool that, like TensorFlow, divides by the number of real pixels.</summary>
    internal static Tensor TfAvgPool(Tensor x) =>
        F.avg_pool2d(x, [3, 3], [1, 1], [1, 1], count_include_pad: false);
}

/// <summary>torchvision's BasicConv2d: conv (no bias) → BatchNorm (eps 0.001) → ReLU.</summary>
internal sealed class BasicConv2d : Module<Tensor, Tensor>
{
    private readonly Conv2d conv;
    private readonly BatchNorm2d bn;

    public BasicConv2d(long inChannels, long outChannels, (long, long) kernel, (long, long)? stride = null, (long, long)? padding = null)
        : base(nameof(BasicConv2d))
    {
        conv = Conv2d(inChannels, outChannels, kernel, stride: stride ?? (1, 1), padding: padding ?? (0, 0), bias: false);
        bn = BatchNorm2d(outChannels, eps: 0.001);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var y = conv.call(x);
        return F.relu(bn.call(y), inplace: true);
    }
}

/// <summary>InceptionA with pytorch-fid's padding-excluding average pool (Mixed_5b/5c/5d).</summary>
internal sealed class FidInceptionA : Module<Tensor, Tensor>
{
    private readonly BasicConv2d branch1x1;
    private readonly BasicConv2d branch5x5_1;
    private readonly BasicConv2d branch5x5_2;
    private readonly BasicConv2d branch3x3dbl_1;
    private readonly BasicConv2d branch3x3dbl_2;
    private readonly BasicConv2d branch3x3dbl_3;
    private readonly BasicConv2d branch_pool;

    public FidInceptionA(long inChannels, long poolFeatures) : base(nameof(FidInceptionA))
    {
        branch1x1 = new BasicConv2d(inChannels, 64, (1, 1));
        branch5x5_1 = new BasicConv2d(inChannels, 48, (1, 1));
        branch5x5_2 = new BasicConv2d(48, 64, (5, 5), padding: (2, 2));
        branch3x3dbl_1 = new BasicConv2d(inChannels, 64, (1, 1));
        branch3x3dbl_2 = new BasicConv2d(64, 96, (3, 3), padding: (1, 1));
        branch3x3dbl_3 = new BasicConv2d(96, 96, (3, 3), padding: (1, 1));
        branch_pool = new BasicConv2d(inChannels, poolFeatures, (1, 1));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var b1 = branch1x1.call(x);
        var b5 = branch5x5_2.call(branch5x5_1.call(x));
        var b3 = branch3x3dbl_3.call(branch3x3dbl_2.call(branch3x3dbl_1.call(x)));
        var bp = branch_pool.call(FidInceptionV3.TfAvgPool(x));
        return scope.MoveToOuter(cat([b1, b5, b3, bp], 1));
    }
}

/// <summary>torchvision's InceptionB (Mixed_6a), unchanged in pytorch-fid.</summary>
internal sealed class InceptionB : Module<Tensor, Tensor>
{
    private readonly BasicConv2d branch3x3;
    private readonly BasicConv2d branch3x3dbl_1;
    private readonly BasicConv2d branch3x3dbl_2;
    private readonly BasicConv2d branch3x3dbl_3;

    public InceptionB(long inChannels) : base(nameof(InceptionB))
    {
        branch3x3 = new BasicConv2d(inChannels, 384, (3, 3), stride: (2, 2));
        branch3x3dbl_1 = new BasicConv2d(inChannels, 64, (1, 1));
        branch3x3dbl_2 = new BasicConv2d(64, 96, (3, 3), padding: (1, 1));
        branch3x3dbl_3 = new BasicConv2d(96, 96, (3, 3), stride: (2, 2));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var b3 = branch3x3.call(x);
        var bd = branch3x3dbl_3.call(branch3x3dbl_2.call(branch3x3dbl_1.call(x)));
        var bp = F.max_pool2d(x, [3, 3], [2, 2]);
        return scope.MoveToOuter(cat([b3, bd, bp], 1));
    }
}

/// <summary>InceptionC with the padding-excluding average pool (Mixed_6b..6e).</summary>
internal sealed class FidInceptionC : Module<Tensor, Tensor>
{
    private readonly BasicConv2d branch1x1;
    private readonly BasicConv2d branch7x7_1;
    private readonly BasicConv2d branch7x7_2;
    private readonly BasicConv2d branch7x7_3;
    private readonly BasicConv2d branch7x7dbl_1;
    private readonly BasicConv2d branch7x7dbl_2;
    private readonly BasicConv2d branch7x7dbl_3;
    private readonly BasicConv2d branch7x7dbl_4;
    private readonly BasicConv2d branch7x7dbl_5;
    private readonly BasicConv2d branch_pool;

    public FidInceptionC(long inChannels, long c7) : base(nameof(FidInceptionC))
    {
        branch1x1 = new BasicConv2d(inChannels, 192, (1, 1));
        branch7x7_1 = new BasicConv2d(inChannels, c7, (1, 1));
        branch7x7_2 = new BasicConv2d(c7, c7, (1, 7), padding: (0, 3));
        branch7x7_3 = new BasicConv2d(c7, 192, (7, 1), padding: (3, 0));
        branch7x7dbl_1 = new BasicConv2d(inChannels, c7, (1, 1));
        branch7x7dbl_2 = new BasicConv2d(c7, c7, (7, 1), padding: (3, 0));
        branch7x7dbl_3 = new BasicConv2d(c7, c7, (1, 7), padding: (0, 3));
        branch7x7dbl_4 = new BasicConv2d(c7, c7, (7, 1), padding: (3, 0));
        branch7x7dbl_5 = new BasicConv2d(c7, 192, (1, 7), padding: (0, 3));
        branch_pool = new BasicConv2d(inChannels, 192, (1, 1));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var b1 = branch1x1.call(x);
        var b7 = branch7x7_3.call(branch7x7_2.call(branch7x7_1.call(x)));
        var bd = branch7x7dbl_5.call(branch7x7dbl_4.call(branch7x7dbl_3.call(branch7x7dbl_2.call(branch7x7dbl_1.call(x)))));
        var bp = branch_pool.call(FidInceptionV3.TfAvgPool(x));
        return scope.MoveToOuter(cat([b1, b7, bd, bp], 1));
    }
}

/// <summary>torchvision's InceptionD (Mixed_7a), unchanged in pytorch-fid.</summary>
internal sealed class InceptionD : Module<Tensor, Tensor>
{
    private readonly BasicConv2d branch3x3_1;
    private readonly BasicConv2d branch3x3_2;
    private readonly BasicConv2d branch7x7x3_1;
    private readonly BasicConv2d branch7x7x3_2;
    private readonly BasicConv2d branch7x7x3_3;
    private readonly BasicConv2d branch7x7x3_4;

    public InceptionD(long inChannels) : base(nameof(InceptionD))
    {
        branch3x3_1 = new BasicConv2d(inChannels, 192, (1, 1));
        branch3x3_2 = new BasicConv2d(192, 320, (3, 3), stride: (2, 2));
        branch7x7x3_1 = new BasicConv2d(inChannels, 192, (1, 1));
        branch7x7x3_2 = new BasicConv2d(192, 192, (1, 7), padding: (0, 3));
        branch7x7x3_3 = new BasicConv2d(192, 192, (7, 1), padding: (3, 0));
        branch7x7x3_4 = new BasicConv2d(192, 192, (3, 3), stride: (2, 2));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var b3 = branch3x3_2.call(branch3x3_1.call(x));
        var b7 = branch7x7x3_4.call(branch7x7x3_3.call(branch7x7x3_2.call(branch7x7x3_1.call(x))));
        var bp = F.max_pool2d(x, [3, 3], [2, 2]);
        return scope.MoveToOuter(cat([b3, b7, bp], 1));
    }
}

/// <summary>
/// InceptionE as pytorch-fid's FIDInceptionE_1 (Mixed_7b: padding-excluding average pool) or
/// FIDInceptionE_2 (Mixed_7c: 3x3 max pool, a bug of the TensorFlow graph that FID keeps).
/// </summary>
internal sealed class FidInceptionE : Module<Tensor, Tensor>
{
    private readonly bool _maxPoolBranch;
    private readonly BasicConv2d branch1x1;
    private readonly BasicConv2d branch3x3_1;
    private readonly BasicConv2d branch3x3_2a;
    private readonly BasicConv2d branch3x3_2b;
    private readonly BasicConv2d branch3x3dbl_1;
    private readonly BasicConv2d branch3x3dbl_2;
    private readonly BasicConv2d branch3x3dbl_3a;
    private readonly BasicConv2d branch3x3dbl_3b;
    private readonly BasicConv2d branch_pool;

    public FidInceptionE(long inChannels, bool maxPoolBranch) : base(nameof(FidInceptionE))
    {
        _maxPoolBranch = maxPoolBranch;
        branch1x1 = new BasicConv2d(inChannels, 320, (1, 1));
        branch3x3_1 = new BasicConv2d(inChannels, 384, (1, 1));
        branch3x3_2a = new BasicConv2d(384, 384, (1, 3), padding: (0, 1));
        branch3x3_2b = new BasicConv2d(384, 384, (3, 1), padding: (1, 0));
        branch3x3dbl_1 = new BasicConv2d(inChannels, 448, (1, 1));
        branch3x3dbl_2 = new BasicConv2d(448, 384, (3, 3), padding: (1, 1));
        branch3x3dbl_3a = new BasicConv2d(384, 384, (1, 3), padding: (0, 1));
        branch3x3dbl_3b = new BasicConv2d(384, 384, (3, 1), padding: (1, 0));
        branch_pool = new BasicConv2d(inChannels, 192, (1, 1));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var b1 = branch1x1.call(x);
        var t = branch3x3_1.call(x);
        var b3 = cat([branch3x3_2a.call(t), branch3x3_2b.call(t)], 1);
        var d = branch3x3dbl_2.call(branch3x3dbl_1.call(x));
        var bd = cat([branch3x3dbl_3a.call(d), branch3x3dbl_3b.call(d)], 1);
        var pooled = _maxPoolBranch ? F.max_pool2d(x, [3, 3], [1, 1], [1, 1]) : FidInceptionV3.TfAvgPool(x);
        var bp = branch_pool.call(pooled);
        return scope.MoveToOuter(cat([b1, b3, bd, bp], 1));
    }
}
