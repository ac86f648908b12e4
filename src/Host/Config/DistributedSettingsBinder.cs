using System.Globalization;
using System.Net;
using LiteVae.Actors.Distributed;

namespace LiteVae.Host.Config;

/// <summary>The validated <c>litevae.distributed</c> section of a node preset (data-parallel training).</summary>
/// <param name="Backend">auto (NCCL on CUDA devices, TCP on CPU), nccl or tcp.</param>
/// <param name="Group">How many trainers form the group (read by the coordinator).</param>
/// <param name="NcclLibrary">An explicit libnccl.so.2; null = the installed PyTorch's copy.</param>
/// <param name="TcpAddress">Interface the TCP collective listens on and advertises.</param>
/// <param name="CheckWeightsEvery">Steps between cross-rank weight checksums (0 = never).</param>
/// <param name="BucketMb">Gradient all-reduce bucket size; 0 = the whole flat buffer in one call.</param>
public sealed record DistributedSettings(
    string Backend, GroupSettings Group, string? NcclLibrary, IPAddress TcpAddress, TimeSpan JoinTimeout,
    TimeSpan OperationTimeout, int CheckWeightsEvery, double BucketMb)
{
    public static readonly DistributedSettings Default = new("auto", GroupSettings.Single, null, IPAddress.Loopback,
        TimeSpan.FromSeconds(300), TimeSpan.FromSeconds(300), 100, 0);

    /// <summary>The backend for a trainer on <paramref name="device"/> ("cpu", "cuda:0", …).</summary>
    public string BackendFor(string device) =>
        Backend != "auto" ? Backend : device.StartsWith("cuda", StringComparison.Ordinal) ? "nccl" : "tcp";
}

/// <summary>
/// Binds <c>litevae.distributed { backend, trainers, min-trainers, settle-s, nccl-library, tcp-address,
/// join-timeout-s, operation-timeout-s, check-weights-every, bucket-mb }</c>. Every key is optional (the
/// defaults are one trainer, so a plain run is unchanged); unknown keys are errors naming the file.
/// </summary>
public static class DistributedSettingsBinder
{
    public const string SectionName = "litevae.distributed";

    private static readonly string[] Known =
        ["backend", "trainers", "min-trainers", "settle-s", "nccl-library", "tcp-address", "join-timeout-s", "operation-timeout-s", "check-weights-every", "bucket-mb"];

    public static DistributedSettings Bind(HoconFile file)
    {
        if (!file.Has(SectionName))
            return DistributedSettings.Default;
        var d = file.Section(SectionName);
        foreach (string key in d.Raw.Root.GetObject().Items.Keys)
            if (!Known.Contains(key))
                throw new ConfigException($"{file.Source}: key '{SectionName}.{key}' is unknown; known keys: {string.Join(", ", Known)}.");
        int trainers = d.Int("trainers", 1, min: 1, max: 4096);
        int minTrainers = d.Int("min-trainers", trainers, min: 1, max: trainers);
        var group = new GroupSettings(trainers, minTrainers, TimeSpan.FromSeconds(d.Double("settle-s", 5, min: 0)));
        string address = d.String("tcp-address", "127.0.0.1");
        if (!IPAddress.TryParse(address, out var ip))
            throw new ConfigException($"{d.Source}: key 'tcp-address' = '{address}' is not an IP address (use this node's interface, e.g. 10.0.0.5, or 127.0.0.1 on one machine).");
        string nccl = d.String("nccl-library", "");
        if (nccl.Length > 0 && !File.Exists(nccl))
            throw new ConfigException($"{d.Source}: key 'nccl-library' = '{nccl}' does not exist; leave it empty to use the installed PyTorch's nvidia/nccl/lib/libnccl.so.2.");
        return new DistributedSettings(
            d.Choice("backend", ["auto", "nccl", "tcp"], "auto"),
            group,
            nccl.Length > 0 ? nccl : null,
            ip,
            TimeSpan.FromSeconds(d.Double("join-timeout-s", 300, min: 1)),
            TimeSpan.FromSeconds(d.Double("operation-timeout-s", 300, min: 1)),
            d.Int("check-weights-every", 100, min: 0),
            d.Double("bucket-mb", 0, min: 0));
    }

    public static string Describe(DistributedSettings s) => string.Create(CultureInfo.InvariantCulture,
        $"backend {s.Backend}, {s.Group.Trainers} trainer(s) (min {s.Group.MinTrainers}), weights checked every {s.CheckWeightsEvery} steps");
}
