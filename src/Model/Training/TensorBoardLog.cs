using System.Buffers.Binary;
using static TorchSharp.torch;

namespace LiteVae.Model.Training;

/// <summary>
/// TensorBoard event files in the run's <c>tb/</c> folder, written by TorchSharp's SummaryWriter
/// (TFRecord framing with masked CRC32C, <c>Event</c> protobufs): scalars (losses, lr, grad norm,
/// img/s) and reconstruction grids. Each call appends and closes the file, so a killed run leaves a
/// readable file. Every writer of a run's tb/ (training curves, each evaluation) names its files with its
/// own suffix: two writers opened in the same second would otherwise append to one file.
/// </summary>
public sealed class TensorBoardLog
{
    private readonly TorchSharp.Modules.SummaryWriter _writer;

    public TensorBoardLog(string directory, string fileSuffix = "")
    {
        System.IO.Directory.CreateDirectory(directory);
        _writer = utils.tensorboard.SummaryWriter(directory, fileSuffix);
        Directory = directory;
    }

    public string Directory { get; }

    /// <summary>Scalars at <paramref name="step"/>; non-finite values are left out (TensorBoard would draw them as gaps anyway).</summary>
    public void Scalars(long step, IEnumerable<KeyValuePair<string, double>> values)
    {
        foreach (var (tag, v) in values)
            if (double.IsFinite(v))
                _writer.add_scalar(tag, (float)v, checked((int)step));
    }

    /// <summary>Adds an image from a PNG file (the reconstruction grid saved under eval/).</summary>
    public void ImageFile(string tag, string pngPath, long step) => _writer.add_img(tag, pngPath, checked((int)step));

    /// <summary>
    /// Cuts the event files of <paramref name="directory"/> whose names end with <paramref name="fileSuffix"/>
    /// just before their first event past <paramref name="step"/>: a run resumed from the checkpoint at
    /// <paramref name="step"/> trains the later steps again, and without the cut TensorBoard would show two
    /// points at each of them (the Rust loader keeps both; only the legacy one purges). A writer's events
    /// are in step order, so everything after the cut is later. A torn last record (a killed writer) is cut
    /// too. Safe to repeat after a crash in the middle.
    /// </summary>
    public static void TruncateAfter(string directory, string fileSuffix, long step)
    {
        if (!System.IO.Directory.Exists(directory)) return;
        foreach (var file in System.IO.Directory.EnumerateFiles(directory, "events.out.tfevents.*" + fileSuffix))
        {
            long keep = 0;
            using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
            var header = new byte[12];
            while (true)
            {
                if (stream.ReadAtLeast(header, 12, throwOnEndOfStream: false) < 12) break;
                long length = (long)BinaryPrimitives.ReadUInt64LittleEndian(header);
                if (length < 0 || length > stream.Length - stream.Position - 4) break;
                var payload = new byte[length];
                stream.ReadExactly(payload);
                stream.Seek(4, SeekOrigin.Current);   // the payload's CRC
                if (Tensorboard.Event.Parser.ParseFrom(payload) is { Summary: not null } e && e.Step > step) break;
                keep = stream.Position;
            }
            if (keep < stream.Length) stream.SetLength(keep);
        }
    }
}
