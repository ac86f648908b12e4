using Akka.Actor;
using Akka.Event;
using LiteVae.Actors.Protocol;
using static LiteVae.Actors.Protocol.DataProtocol;
using static LiteVae.Actors.Protocol.TrainerProtocol;

namespace LiteVae.Actors.Coordination;

/// <summary>
/// The Coordinator's data side: the plan every data node works on (the experiment, where to send batches, the
/// sample order they must agree on), batch leases from the trainer's position on (<see cref="BatchLedger"/>),
/// and what happens when a data node is lost.
/// </summary>
public sealed partial class Coordinator
{
    private sealed record DataNodeInfo(string Node, DataNodeHeartbeat Last) : INoSerializationVerificationNeeded;

    private readonly BatchLedger _ledger;
    private readonly Dictionary<IActorRef, DataNodeInfo> _dataNodes = new();
    private readonly HashSet<IActorRef> _parked = [];   // data nodes that asked for a lease the trainer did not need yet
    private long _planVersion;
    private bool _planActive;

    private static string Key(IActorRef worker) => worker.Path.ToSerializationFormat();

    /// <summary>A new plan from sample <paramref name="next"/>: every earlier lease is void.</summary>
    private void OpenPlan(long next, int intakeBatches)
    {
        _ledger.Start(next, intakeBatches, DateTime.UtcNow);
        _parked.Clear();
        _planVersion++;
        _planActive = true;
        BroadcastPlan();
    }

    private void ClosePlan()
    {
        _planActive = false;
        _parked.Clear();
        _planVersion++;
        BroadcastPlan();
    }

    private DataPlan CurrentPlan() =>
        new(_id, _planVersion, _plan.ExperimentHocon, _planActive ? _trainer?.Intake : null, _plan.OrderFingerprint, RunTrace);

    private void BroadcastPlan()
    {
        var plan = CurrentPlan();
        foreach (var w in _dataNodes.Keys) w.Tell(plan);
    }

    private void HandleDataHeartbeat(DataNodeHeartbeat hb)
    {
        if (!_dataNodes.ContainsKey(hb.Worker))
        {
            _log.Info("data node {0} joined ({1} leases)", hb.Node, hb.MaxLeases);
            Context.Watch(hb.Worker);
        }
        if (hb.Error is not null && _dataNodes.GetValueOrDefault(hb.Worker)?.Last.Error != hb.Error)
            _log.Error("data node {0} cannot work on the run: {1}", hb.Node, hb.Error);
        _dataNodes[hb.Worker] = new DataNodeInfo(hb.Node, hb);
        if (hb.CoordinatorId != _id || hb.PlanVersion != _planVersion)
            hb.Worker.Tell(CurrentPlan());
    }

    private void HandleRequestLease(RequestLease r)
    {
        if (r.CoordinatorId != _id || r.PlanVersion != _planVersion)
        {
            r.Worker.Tell(CurrentPlan());
            r.Worker.Tell(new NoLeaseAvailable(_id, _planVersion, "plan changed"));
            return;
        }
        if (!_planActive || _state is not (RunTraining or RunPaused or RunStopping))
        {
            r.Worker.Tell(new NoLeaseAvailable(_id, _planVersion, $"run is {_state}"));
            return;
        }
        if (!TryGrant(r.Worker))
        {
            // The trainer has enough ahead of it; this node gets the next batch it needs (GrantParked).
            _parked.Add(r.Worker);
            r.Worker.Tell(new NoLeaseAvailable(_id, _planVersion, "the trainer has enough batches ahead"));
        }
    }

    private bool TryGrant(IActorRef worker)
    {
        if (_ledger.Next(Key(worker), DateTime.UtcNow) is not { } lease) return false;
        worker.Tell(new BatchLeased(_id, _planVersion, lease.Id, lease.Start, lease.Size, RunTrace));
        return true;
    }

    /// <summary>The trainer moved on or a batch must be made again: waiting data nodes get leases.</summary>
    private void GrantParked()
    {
        foreach (var w in _parked.ToList())
        {
            if (!_dataNodes.ContainsKey(w)) { _parked.Remove(w); continue; }
            if (!TryGrant(w)) return;
            _parked.Remove(w);
        }
    }

    private void HandleBatchTrained(BatchTrained m)
    {
        if (m.CoordinatorId != _id) return;
        _step = Math.Max(_step, m.Step);
        _ledger.Trained(m.NextSample, DateTime.UtcNow);
        GrantParked();
    }

    private void HandleStreamBroken(DataStreamBroken b)
    {
        if (b.CoordinatorId != "" && b.CoordinatorId != _id) return;
        DataNodeLost(b.Worker, b.Worker.Path.Address.ToString(), b.Reason);
    }

    /// <summary>Its batches not yet trained go to other data nodes; the trainer never trains a span twice, so a
    /// batch of the lost node still in flight is dropped if it arrives after the new one.</summary>
    private void DataNodeLost(IActorRef worker, string node, string why)
    {
        _parked.Remove(worker);
        int n = _ledger.WorkerLost(Key(worker));
        _log.Warning("data node {0}: {1}; leasing its {2} outstanding batch(es) again", node, why, n);
        GrantParked();
    }
}
