using LiteVae.Model.Analysis;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Discriminators;

/// <summary>
/// Test-side MAC counter with the profiler's rules: built-in Conv2d and Linear are counted from
/// their shapes, modules implementing IMacCounted by their own method, and nothing below an
/// IMacCounted module is counted again.
/// </summary>
internal static class MacCounter
{
    public static long Count(nn.Module<Tensor, Tensor> model, Tensor input)
    {
        long total = 0;
        var removers = new List<Action>();
        var counted = model.named_modules().Where(m => m.module is IMacCounted).Select(m => m.name).ToList();
        foreach (var (name, module) in model.named_modules())
        {
            if (counted.Any(c => name.StartsWith(c + ".", StringComparison.Ordinal)))
                continue;
            if (module is not nn.Module<Tensor, Tensor> m)
                continue;
            Func<Tensor, Tensor, long>? rule = module switch
            {
                IMacCounted custom => custom.CountMacs,
                Conv2d c => (_, o) => o.numel() * c.weight!.shape[1] * c.weight.shape[2] * c.weight.shape[3],
                Linear l => (_, o) => o.numel() * l.weight!.shape[1],
                _ => null,
            };
            if (rule is null)
                continue;
            var hook = m.register_forward_hook((_, i, o) => { total += rule(i, o); return null!; });
            removers.Add(hook.remove);
        }
        using (no_grad())
        using (var output = model.call(input)) { }
        foreach (var r in removers)
            r();
        return total;
    }

    public static long Parameters(nn.Module module) => module.parameters().Sum(p => p.numel());
}
