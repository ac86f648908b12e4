using System.Globalization;
using System.Net;
using LiteVae.Actors.Distributed;
using LiteVae.Model.Distributed;

namespace LiteVae.Host.Config;

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

    /// <summary>The group size (read by the coordinator) and the collectives (read by trainers).</summary>
    public static (GroupSettings Group, CollectiveSettings Collectives) Bind(HoconFile file)
    {
        var search = LibrarySearch();
        if (!file.Has(SectionName))
            return (GroupSettings.Single, CollectiveSettings.Default with { LibrarySearch = search });
        var d = file.Section(SectionName);
        d.RejectUnknown(Known, SectionName + ".");
        int trainers = d.Int("trainers", 1, min: 1, max: 4096);
        int minTrainers = d.Int("min-trainers", trainers, min: 1, max: trainers);
        var group = new GroupSettings(trainers, minTrainers, TimeSpan.FromSeconds(d.Double("settle-s", 5, min: 0)));
        string address = d.String("tcp-address", "127.0.0.1");
        if (!IPAddress.TryParse(address, out var ip))
            throw new ConfigException($"{d.Source}: key 'tcp-address' = '{address}' is not an IP address (use this node's interface, e.g. 10.0.0.5, or 127.0.0.1 on one machine).");
        string nccl = d.String("nccl-library", "");
        if (nccl.Length > 0 && !File.Exists(nccl))
            throw new ConfigException($"{d.Source}: key 'nccl-library' = '{nccl}' does not exist; leave it empty to use the installed PyTorch's nvidia/nccl/lib/libnccl.so.2.");
        return (group, new CollectiveSettings(
            d.Choice("backend", ["auto", "nccl", "tcp"], "auto"),
            nccl.Length > 0 ? nccl : null,
            search,
            ip,
            TimeSpan.FromSeconds(d.Double("join-timeout-s", 300, min: 1)),
            TimeSpan.FromSeconds(d.Double("operation-timeout-s", 300, min: 1)),
            d.Int("check-weights-every", 100, min: 0),
            d.Double("bucket-mb", 0, min: 0)));
    }

    /// <summary>LD_LIBRARY_PATH's folders: extra places to look for NCCL and the CUDA runtime (the loaded libtorch's own
    /// PyTorch install is searched first).</summary>
    private static IReadOnlyList<string> LibrarySearch() =>
        (Environment.GetEnvironmentVariable("LD_LIBRARY_PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries);
}
