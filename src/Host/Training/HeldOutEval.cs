using System.Globalization;
using System.Text.Json;
using LiteVae.Data.Config;
using LiteVae.Data.Imaging;
using LiteVae.Data.Pipeline;
using LiteVae.Host.Config;
using LiteVae.Model.Metrics;
using LiteVae.Model.Training;
using static TorchSharp.torch;

namespace LiteVae.Host.Training;

/// <summary>Held-out PSNR at one step.</summary>
internal sealed record EvalResult(long Step, int Images, double MeanPsnr, double MinPsnr, double MaxPsnr, string GridPath);

/// <summary>
/// The held-out images a run is scored on: read once from the eval-data shards (evaluation transform,
/// fixed order) and kept as uint8 bytes, so every evaluation sees the same images. Scores the
/// posterior-mode reconstruction by PSNR on 8-bit pixels (data range 255, as scikit-image) and
/// writes eval/step-N.json and a grid PNG (originals above reconstructions).
/// </summary>
internal sealed class HeldOutEval
{
    private readonly byte[] _pixels;
    private readonly int _count;
    private readonly int _height;
    private readonly int _width;
    private readonly int _chunk;
    private readonly EvalSettings _settings;

    private HeldOutEval(byte[] pixels, int count, int height, int width, int chunk, EvalSettings settings)
    {
        _pixels = pixels;
        _count = count;
        _height = height;
        _width = width;
        _chunk = chunk;
        _settings = settings;
    }

    public int Count => _count;

    public static HeldOutEval? Load(Config.ExperimentConfig config)
    {
        if (config.EvalData is null || config.Eval.Images == 0) return null;
        var options = config.EvalData.CreatePipelineOptions(DataUse.Eval);
        var images = new List<byte[]>();
        int h = 0, w = 0;
        var pipeline = DataPipeline.Start(options);
        try
        {
            foreach (var batch in ReadAll(pipeline))
                using (batch)
                {
                    h = batch.Height;
                    w = batch.Width;
                    for (int i = 0; i < batch.Count && images.Count < config.Eval.Images; i++)
                        images.Add(batch.Sample(i).ToArray());
                    if (images.Count >= config.Eval.Images) break;
                }
        }
        finally
        {
            pipeline.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        if (images.Count == 0)
            throw new InvalidDataException($"eval-data: no images could be read from {string.Join(", ", config.EvalData.Source)}.");
        var all = new byte[images.Count * images[0].Length];
        for (int i = 0; i < images.Count; i++)
            images[i].CopyTo(all, i * images[0].Length);
        return new HeldOutEval(all, images.Count, h, w, Math.Max(1, config.EvalData.BatchSize), config.Eval);
    }

    private static IEnumerable<Batch> ReadAll(DataPipeline pipeline)
    {
        var reader = pipeline.Batches;
        while (true)
        {
            if (!reader.TryRead(out var batch))
            {
                if (!reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
                {
                    pipeline.Completion.GetAwaiter().GetResult(); // rethrows a pipeline failure
                    yield break;
                }
                continue;
            }
            yield return batch;
        }
    }

    /// <summary>Reconstructs every held-out image, scores it, and writes the JSON and the grid.</summary>
    public EvalResult Run(LiteVaeTrainer trainer, RunDirectory run, long step)
    {
        int sampleBytes = 3 * _height * _width;
        var psnr = new List<double>();
        var reconstructions = new byte[_pixels.Length];
        for (int start = 0; start < _count; start += _chunk)
        {
            int n = Math.Min(_chunk, _count - start);
            var span = _pixels.AsSpan(start * sampleBytes, n * sampleBytes);
            long[] shape = [n, 3, _height, _width];
            using var scope = NewDisposeScope();
            var rec = trainer.Reconstruct(span, shape, _settings.UseEma);
            var orig = tensor(span.ToArray(), shape);
            psnr.AddRange(Psnr.PerImage(orig, rec).data<double>().ToArray());
            rec.bytes.CopyTo(reconstructions.AsSpan(start * sampleBytes, n * sampleBytes));
        }
        string grid = run.EvalPng(step);
        WriteGrid(grid, reconstructions, Math.Min(_settings.GridImages, _count));
        var result = new EvalResult(step, _count, psnr.Average(), psnr.Min(), psnr.Max(), grid);
        File.WriteAllText(run.EvalJson(step), JsonSerializer.Serialize(new
        {
            step,
            images = _count,
            psnr_db = new { mean = result.MeanPsnr, min = result.MinPsnr, max = result.MaxPsnr, per_image = psnr },
            weights = _settings.UseEma ? "ema" : "raw",
            reconstruction = "posterior mode",
        }, new JsonSerializerOptions { WriteIndented = true }));
        return result;
    }

    /// <summary>Originals in the top row, their reconstructions below, 4 px gaps.</summary>
    private void WriteGrid(string path, byte[] reconstructions, int columns)
    {
        columns = Math.Max(1, columns);
        const int gap = 4;
        int width = columns * _width + (columns - 1) * gap, height = 2 * _height + gap;
        var image = RgbImage.Create(width, height);
        int plane = _height * _width;
        for (int row = 0; row < 2; row++)
        {
            var source = row == 0 ? _pixels : reconstructions;
            for (int c = 0; c < columns && c < _count; c++)
            {
                int baseOffset = c * 3 * plane;
                for (int y = 0; y < _height; y++)
                    for (int x = 0; x < _width; x++)
                    {
                        int dst = (((row * (_height + gap)) + y) * width + c * (_width + gap) + x) * 3;
                        int src = baseOffset + y * _width + x;
                        image.Pixels[dst] = source[src];
                        image.Pixels[dst + 1] = source[src + plane];
                        image.Pixels[dst + 2] = source[src + 2 * plane];
                    }
            }
        }
        ImageFile.WritePng(path, image);
    }

    public static string Describe(EvalResult r) =>
        string.Create(CultureInfo.InvariantCulture, $"eval step {r.Step}: held-out PSNR {r.MeanPsnr:0.00} dB over {r.Images} images (min {r.MinPsnr:0.00}, max {r.MaxPsnr:0.00}); grid {r.GridPath}");
}
