using LiteVae.Host.Tests.Support;

namespace LiteVae.Host.Tests.Security;

/// <summary>The CLI's --weights goes through the checkpoint guard: pickles are one clear line, never loaded.</summary>
[Collection(CliCollection.Name)]
public sealed class SafeWeightsCliTests : IDisposable
{
    private readonly TempDir _dir = new();

    [Theory]
    [InlineData("evil.pth")]
    [InlineData("renamed.safetensors")]
    public void Encode_refuses_a_pickle_passed_as_weights(string name)
    {
        string conf = _dir.File("tiny.conf");
        File.WriteAllText(conf, """
            model {
              embed_dim = 4
              encoder { extractor_channels = 8, extractor_mult = [1, 2], extractor_resblocks = 1,
                        aggregate_channels = 8, aggregate_mult = [1, 2], aggregate_resblocks = 1 }
              decoder { channels = 8, channel_mult = [1, 1, 2, 2], num_res_blocks = 0 }
            }
            """);
        string weights = _dir.File(name);
        // The fixture's pickle calls os.system when unpickled by Python (tests/fixtures/tools/make_pth_fixtures.py).
        File.Copy(Path.Combine(RepoPaths.Root, "tests", "fixtures", "pth", "evil.pth"), weights);
        Directory.CreateDirectory(_dir.File("in"));
        LiteVae.Data.Imaging.ImageFile.WritePng(_dir.File("in/a.png"), LiteVae.Data.Imaging.RgbImage.Create(32, 32));
        var r = CliRunner.Run("encode", "--model", conf, "--weights", weights, "--device", "cpu", "--input", _dir.File("in"), "--output", _dir.File("out.safetensors"));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Single(r.ErrorLines);
        Assert.True(r.ErrorLines[0].Contains(weights), r.Error);
        Assert.Contains("can run arbitrary code", r.ErrorLines[0]);
        Assert.Contains("litevae weights convert", r.ErrorLines[0]);
        Assert.Contains("litevae convert in.ckpt", r.ErrorLines[0]);
        Assert.False(File.Exists(_dir.File("out.safetensors")));
    }

    public void Dispose() => _dir.Dispose();
}
