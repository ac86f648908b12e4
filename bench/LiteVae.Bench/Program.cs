namespace LiteVae.Bench;

/// <summary>
/// Benchmarks: `litevae-bench &lt;name&gt; [options]`. Each writes its results (with the machine, date
/// and any peer numbers measured in the same run) under bench/results/.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var all = BenchCatalog.All().ToDictionary(b => b.Name);
        if (args.Length == 0 || !all.TryGetValue(args[0], out var bench))
        {
            Console.Error.WriteLine("usage: litevae-bench <name> [options]\n\nbenchmarks:");
            foreach (var b in all.Values)
                Console.Error.WriteLine($"  {b.Name,-16} {b.Description}");
            return args.Length == 0 || args[0] is "--help" or "-h" ? 0 : 2;
        }
        if (args.Skip(1).Any(a => a is "--help" or "-h"))
        {
            // Never start a benchmark when asked for help (a soak runs for an hour).
            Console.WriteLine($"litevae-bench {bench.Name}: {bench.Description}\n\n{bench.Usage}");
            return 0;
        }
        try
        {
            return bench.Run(args[1..]);
        }
        catch (ArgumentException e)
        {
            // The benchmarks' option errors name the option and what it takes; no stack trace for a typo.
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }
}

public interface IBenchmark
{
    string Name { get; }
    string Description { get; }
    /// <summary>The options, for --help.</summary>
    string Usage { get; }
    int Run(string[] args);
}

/// <summary>The one list of benchmarks; each lives in its own file.</summary>
internal static class BenchCatalog
{
    public static IEnumerable<IBenchmark> All()
    {
        yield return new DiscriminatorStepBench();
        yield return new TracingOverheadBench();
        yield return new EvalMetricsBench();
        yield return new EvalJobBench();
        yield return new PipelineBench();
        yield return new ModelInferenceBench();
        yield return new TrainStepBench();
        yield return new DataDecodeBench();
        yield return new DataParallelBench();
        yield return new Soak.SoakBench();
    }
}
