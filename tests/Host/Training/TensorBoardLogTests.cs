using LiteVae.Host.Tests.Support;
using LiteVae.Model.Training;

namespace LiteVae.Host.Tests.Training;

/// <summary>The tb/ writer, read back with the independent reader.</summary>
public sealed class TensorBoardLogTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "litevae-tb-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void Scalars_are_valid_event_records_and_non_finite_values_are_left_out()
    {
        var tb = new TensorBoardLog(_dir, ".train");
        tb.Scalars(7, [new("g/total", 0.25), new("lr/generator", 1e-4), new("g/grad_norm", double.NaN)]);
        tb.Scalars(8, [new("g/total", 0.125)]);
        var points = TensorBoardEvents.Read(_dir);
        Assert.EndsWith(".train", Assert.Single(points.Select(p => p.File).Distinct()));
        Assert.Equal([(7L, "g/total", (float?)0.25f), (7L, "lr/generator", 1e-4f), (8L, "g/total", 0.125f)],
            points.Select(p => (p.Step, p.Tag, p.Scalar)));
    }

    [Fact]
    public void Truncating_after_a_step_cuts_later_points_and_a_torn_record_from_that_suffix_only()
    {
        var train = new TensorBoardLog(_dir, ".train");
        for (int step = 1; step <= 5; step++) train.Scalars(step, [new("g/total", step)]);
        var eval = new TensorBoardLog(_dir, ".eval-4");
        eval.Scalars(4, [new("eval/psnr", 20)]);
        string trainFile = Directory.GetFiles(_dir, "*.train").Single();
        File.AppendAllBytes(trainFile, [1, 2, 3]);   // a writer killed mid-record

        TensorBoardLog.TruncateAfter(_dir, ".train", 3);
        TensorBoardLog.TruncateAfter(_dir, ".train", 3);   // repeating it changes nothing

        var points = TensorBoardEvents.Read(_dir);
        Assert.Equal([1L, 2, 3], TensorBoardEvents.Curve(points, "g/total").Keys);
        Assert.Equal([4L], TensorBoardEvents.Curve(points, "eval/psnr").Keys);
    }

    [Fact]
    public void The_reader_checks_crc32c_against_the_standard_check_value() =>
        Assert.Equal(0xE3069283u, TensorBoardEvents.Crc32C("123456789"u8));
}
