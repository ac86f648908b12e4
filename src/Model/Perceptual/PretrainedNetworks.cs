using LiteVae.Model.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Perceptual;

/// <summary>
/// Builds the frozen perceptual networks from the official weight files, or says why it cannot. No
/// exception escapes for a missing, corrupt or mismatched file: the result is "unavailable" with a
/// reason naming the file. Networks are built on the CPU and moved to <c>device</c> after loading.
/// </summary>
public static class PretrainedNetworks
{
    public static Availability<Lpips> LoadLpips(WeightFiles files, LpipsNet net, Device? device = null)
    {
        string name = net == LpipsNet.Vgg ? "LPIPS (VGG)" : "LPIPS (AlexNet)";
        var backbone = WeightFiles.Info(net == LpipsNet.Vgg ? PretrainedFile.Vgg16 : PretrainedFile.AlexNet);
        var heads = WeightFiles.Info(net == LpipsNet.Vgg ? PretrainedFile.LpipsVggHeads : PretrainedFile.LpipsAlexHeads);
        var backbonePath = files.Find(backbone.Id);
        var headsPath = files.Find(heads.Id);
        if (!backbonePath.IsAvailable || !headsPath.IsAvailable)
            return Availability<Lpips>.Unavailable($"{name}: " + string.Join(" Also: ", new[] { backbonePath.Reason, headsPath.Reason }.Where(r => r is not null)));

        var tensors = new Dictionary<string, Tensor>();
        Lpips? model = null;
        try
        {
            // torchvision's file also holds the classifier, which LPIPS does not use.
            foreach (var (k, t) in WeightFiles.LoadTensors(backbone, backbonePath.Value!, k => k.StartsWith("features.", StringComparison.Ordinal)))
                tensors["net." + k] = t;
            foreach (var (k, t) in WeightFiles.LoadTensors(heads, headsPath.Value!))
                tensors[k] = t;
            model = new Lpips(net);
            StateDict.Load(model, tensors, $"{backbonePath.Value} + {headsPath.Value}");
            if (device is not null) model.to(device);
            return Availability<Lpips>.Available(model);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or StateDictMismatchException or UnauthorizedAccessException)
        {
            model?.Dispose();
            return Availability<Lpips>.Unavailable($"{name}: {e.Message}");
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    public static Availability<FidInceptionV3> LoadFidInception(WeightFiles files, Device? device = null)
    {
        const string name = "rFID (Inception-v3)";
        var info = WeightFiles.Info(PretrainedFile.FidInception);
        var path = files.Find(info.Id);
        if (!path.IsAvailable) return Availability<FidInceptionV3>.Unavailable($"{name}: {path.Reason}");
        Dictionary<string, Tensor>? tensors = null;
        FidInceptionV3? model = null;
        try
        {
            // The file's 1008-way classifier (fc.*) is not part of the feature extractor.
            tensors = WeightFiles.LoadTensors(info, path.Value!, k => !k.StartsWith("fc.", StringComparison.Ordinal));
            model = new FidInceptionV3();
            // BatchNorm step counters are bookkeeping for training; older files do not have them.
            foreach (var (k, t) in model.state_dict())
                if (k.EndsWith(".num_batches_tracked", StringComparison.Ordinal) && !tensors.ContainsKey(k))
                    tensors[k] = zeros_like(t);
            StateDict.Load(model, tensors, path.Value!);
            if (device is not null) model.to(device);
            return Availability<FidInceptionV3>.Available(model);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or StateDictMismatchException or UnauthorizedAccessException)
        {
            model?.Dispose();
            return Availability<FidInceptionV3>.Unavailable($"{name}: {e.Message}");
        }
        finally
        {
            if (tensors is not null) foreach (var t in tensors.Values) t.Dispose();
        }
    }
}
