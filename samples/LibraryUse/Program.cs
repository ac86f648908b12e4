using LiteVae.Data.Imaging;
using LiteVae.Model;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Configs;
using LiteVae.Model.Imaging;
using static TorchSharp.torch;

// Uses LiteVae as a library from another C# program: builds a LiteVAE preset (S/B/M/L encoder with the reference
// decoder), loads weights from a safetensors file (a training checkpoint's model.safetensors, or `litevae convert`
// output), encodes one photo to its latent, decodes it back and prints the PSNR.
//   dotnet run --project samples/LibraryUse -c Release -- <photo.jpg> [weights.safetensors [preset b [embed_dim 12]]]
// Without weights the model keeps its random initialisation (the API works the same; the picture will not).
if (args.Length is < 1 or > 4)
{
    Console.Error.WriteLine("usage: LibraryUse <photo.jpg|png|webp> [weights.safetensors [s|b|m|l [embed_dim]]]");
    return 2;
}

var config = AutoencoderConfig.Preset(args.Length > 2 ? args[2] : "b", embedDim: args.Length > 3 ? int.Parse(args[3]) : 12);
using var model = new LiteAutoencoder(config);
if (args.Length >= 2)
    CheckpointGuard.LoadInto(model, args[1], owns: key => ModelPart.Both.Owns(key));   // strict for encoder.*/decoder.*, other keys ignored
model.eval();

var photo = ImageFile.Read(args[0]);
int side = Math.Min(Math.Min(photo.Width, photo.Height), 256) / 8 * 8;   // the model needs sides divisible by 8
int x0 = (photo.Width - side) / 2, y0 = (photo.Height - side) / 2;
using var _ = NewDisposeScope();
var pixels = tensor(photo.Pixels, [1, photo.Height, photo.Width, 3], ScalarType.Byte)[.., y0..(y0 + side), x0..(x0 + side), ..];
var input = PixelConversion.ToModelInput(pixels.contiguous());
using (no_grad())
{
    var posterior = model.Encode(input);
    var latent = posterior.Mode();
    var reconstruction = model.Decode(latent).clamp(-1, 1);
    double mse = (reconstruction - input).div(2).pow(2).mean().item<float>();   // on [0, 1] pixels
    Console.WriteLine($"{args[0]}: {side}x{side} crop -> latent [{string.Join(", ", latent.shape)}], " +
                      $"mean {latent.mean().item<float>():F3}, std {latent.std().item<float>():F3}; reconstruction PSNR {10 * Math.Log10(1 / mse):F2} dB" +
                      (args.Length >= 2 ? "" : " (random weights)"));
}
return 0;
