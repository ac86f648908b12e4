using LiteVae.Actors.Distributed;
using LiteVae.Host.Config;
using LiteVae.Model.Distributed;

namespace LiteVae.Host.Tests.Distributed;

public class DistributedSettingsBinderTests
{
    private static (GroupSettings Group, CollectiveSettings Collectives) Bind(string hocon) =>
        DistributedSettingsBinder.Bind(HoconFile.Parse(hocon, "node.conf"));

    [Fact]
    public void AbsentSectionMeansOneTrainerAndAutoBackend()
    {
        var (group, s) = Bind("litevae.node.name = a");
        Assert.Equal(1, group.Trainers);
        Assert.Equal("nccl", s.BackendFor("cuda:0"));
        Assert.Equal("tcp", s.BackendFor("cpu"));
    }

    [Fact]
    public void BindsEveryKey()
    {
        var (group, s) = Bind("""
            litevae.distributed {
              backend = tcp, trainers = 8, min-trainers = 7, settle-s = 2.5, tcp-address = "10.0.0.5",
              join-timeout-s = 60, operation-timeout-s = 90, check-weights-every = 50, bucket-mb = 25
            }
            """);
        Assert.Equal("tcp", s.BackendFor("cuda:0"));
        Assert.Equal((8, 7), (group.Trainers, group.MinTrainers));
        Assert.Equal(TimeSpan.FromSeconds(2.5), group.Settle);
        Assert.Equal("10.0.0.5", s.TcpAddress.ToString());
        Assert.Equal(TimeSpan.FromSeconds(90), s.OperationTimeout);
        Assert.Equal(50, s.CheckWeightsEvery);
        Assert.Equal(25, s.BucketMb);
        Assert.Equal(8, Bind("litevae.distributed.trainers = 8").Group.MinTrainers);   // min defaults to all
    }

    [Theory]
    [InlineData("litevae.distributed.backend = mpi", "backend")]
    [InlineData("litevae.distributed.trainers = 0", "trainers")]
    [InlineData("litevae.distributed { trainers = 2, min-trainers = 3 }", "min-trainers")]
    [InlineData("litevae.distributed.tcp-address = my-host", "tcp-address")]
    [InlineData("litevae.distributed.nccl-library = /nope/libnccl.so.2", "nccl-library")]
    [InlineData("litevae.distributed.trainer = 2", "trainer")]
    public void BadValuesNameTheFileAndKey(string hocon, string key)
    {
        var e = Assert.Throws<ConfigException>(() => Bind(hocon));
        Assert.Contains("node.conf", e.Message);
        Assert.Contains(key, e.Message);
    }
}
