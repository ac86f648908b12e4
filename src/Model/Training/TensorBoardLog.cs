using static TorchSharp.torch;

namespace LiteVae.Model.Training;

/// <summary>
/// TensorBoard event files in the run's <c>tb/</c> folder, written by TorchSharp's SummaryWriter
/// (TFRecord framing with masked CRC32C, <c>Event</c> protobufs): scalars (losses, lr, grad norm,
/// img/s) and reconstruction grids. Called once per log window from the training thread; each call
/// appends and closes the file, so a killed run leaves a readable file.
/// </summary>
public sealed class TensorBoardLog
{
    private readonly TorchSharp.Modules.SummaryWriter _writer;

    public TensorBoardLog(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        _writer = utils.tensorboard.SummaryWriter(directory);
        Directory = directory;
    }

    public string Directory { get; }

    public void Scalars(long step, IEnumerable<KeyValuePair<string, double>> values)
    {
        foreach (var (tag, v) in values)
            _writer.add_scalar(tag, (float)v, checked((int)step));
    }

    /// <summary>Adds an image from a PNG file (the reconstruction grid saved under eval/).</summary>
    public void ImageFile(string tag, string pngPath, long step) => _writer.add_img(tag, pngPath, checked((int)step));
}
