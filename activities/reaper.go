package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// NewLeasesFreedCounter is the Reaper's metric, by lease kind
// (reservation, queue); register it with the workers' registry and set it
// as Activities.LeasesFreed.
func NewLeasesFreedCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fleetflow_leases_freed_total",
		Help: "Reservations and queue rows the Reaper freed because the workflow holding them had closed, by kind.",
	}, []string{"kind"})
}

// SweepLeases frees every lease (robot reservation or queue row) whose
// workflow has closed — terminated, timed out, failed before it could
// release, or unknown to Temporal — so no robot stays reserved by a
// workflow that is gone. For each it writes an audit row (kind
// lease.freed, actor "reaper"), wakes the missions waiting at the site,
// and, when the robot's stored state shows it still working on the closed
// workflow's order, sends cancelOrder (the robot would drive on: VDA 5050
// §4.1). At an edge site (EdgeQueues) it cannot reach the robot: such a
// reservation is not freed but handed to the Reaper workflow
// (SweepLeasesResult.EdgeStops), which cancels the order through the
// site's robot I/O queue and then frees it (FreeLease); the same closed
// workflow's charger waits for the next sweep. Leases younger than
// in.MinAge are not checked. Then it sends
// charging every idle robot in service below the charge threshold (its
// Charge workflow's start after its mission may have been lost), and
// starts the maintenances that robots' condition counters call for
// (startDueMaintenances). It is idempotent:
// a lease freed twice is a no-op the second time.
//
// Errors: registry and Temporal errors that can pass are returned as they
// are (the activity is retried); a lease whose holder cannot be described
// is left for the next sweep.
func (a *Activities) SweepLeases(ctx context.Context, in schemas.SweepLeasesInput) (schemas.SweepLeasesResult, error) {
	minAge := in.MinAge
	if minAge <= 0 {
		minAge = time.Minute
	}
	leases, err := a.Store.Leases(ctx, time.Now().Add(-minAge))
	if err != nil {
		return schemas.SweepLeasesResult{}, storeError(err)
	}
	res := schemas.SweepLeasesResult{Checked: len(leases)}
	status := map[string]string{} // workflow ID → status, "" = running
	// Robot reservations first: a closed Charge whose robot is handed to
	// the Reaper workflow (EdgeStops) keeps its charger until the next
	// sweep, so no other robot is sent to a charger the orphaned robot may
	// still be driving to.
	slices.SortStableFunc(leases, func(a, b store.Lease) int {
		return cmp.Compare(leaseOrder(a.Kind), leaseOrder(b.Kind))
	})
	handedOver := map[string]bool{} // workflow IDs with an edge stop
	for _, l := range leases {
		st, seen := status[l.WorkflowID]
		if !seen {
			if st, err = a.holderStatus(ctx, l.WorkflowID); err != nil {
				activity.GetLogger(ctx).Warn("reaper: cannot describe lease holder; left for the next sweep", "workflowId", l.WorkflowID, "error", err)
				continue
			}
			status[l.WorkflowID] = st
		}
		if st == "" {
			continue // still running: its lease is its own
		}
		freed := schemas.FreedLease{Kind: l.Kind, MissionID: l.MissionID, WorkflowID: l.WorkflowID, RobotID: l.RobotID, WorkflowStatus: st,
			Site: l.Site, HeldSince: l.Since}
		stop := func() bool { return a.stopOrphanedOrder(ctx, l) }
		if q := a.EdgeQueues[l.Site]; q != "" {
			// An edge site: only its edge worker reaches the robot. The
			// Reaper workflow sends cancelOrder through its queue while the
			// lease still stands, then frees it (FreeLease), so the cancel
			// cannot reach the robot's next holder.
			if l.Kind == store.LeaseReservation && a.worksOnOrphanedOrder(ctx, l) {
				freed.RobotIOQueue = q
				res.EdgeStops = append(res.EdgeStops, freed)
				handedOver[l.WorkflowID] = true
				continue
			}
			if handedOver[l.WorkflowID] {
				continue // its charger: next sweep, after the robot is stopped
			}
			stop = func() bool { return false } // this worker does not reach the site's broker
		}
		if freed.OrderCancelled, err = a.freeLease(ctx, l, st, stop); err != nil {
			return res, err
		}
		res.Freed = append(res.Freed, freed)
	}
	res.OrphansStopped = a.stopUnreservedOrphans(ctx, status)
	res.ChargesStarted = a.chargeIdleLowRobots(ctx)
	res.MaintenancesStarted = a.startDueMaintenances(ctx)
	return res, nil
}

// orphanResendAfter: a robot that still shows an orphaned order this long
// after its cancelOrder gets another.
const orphanResendAfter = time.Minute

// stopUnreservedOrphans sends cancelOrder to every robot that is reserved
// by nobody yet still works on the order of a closed workflow: that
// workflow ended without the robot confirming a stop (its deadline, a
// cancellation the robot did not confirm, a failure while the robot was
// unreachable) and released it. The registry never hands such a robot out
// (it is not idle), but it would drive on with its released base (VDA 5050
// §4.1). Each is audited (order.orphan_stopped) and sent again only after
// orphanResendAfter. Robots of edge sites are not reached from here (only
// their site's edge worker speaks to their broker): not covered yet.
// status caches the holders' statuses of this sweep. It returns "robotId
// orderId" of each robot sent cancelOrder; errors are logged, not
// returned (the next sweep looks again).
func (a *Activities) stopUnreservedOrphans(ctx context.Context, status map[string]string) []string {
	if a.Link == nil {
		return nil
	}
	robots, err := a.Store.UnreservedAtWork(ctx)
	if err != nil {
		activity.GetLogger(ctx).Warn("reaper: cannot list unreserved robots at work", "error", err)
		return nil
	}
	var stopped []string
	for _, r := range robots {
		owner := schemas.OwnerWorkflowID(r.State.OrderID) // "<workflowID>#h<n>" after a handover
		if a.EdgeQueues[r.Site] != "" || !schemas.IsOwnerWorkflowID(owner) {
			continue // an edge site's robot (not reachable here), or an order fleetflow did not send
		}
		st, seen := status[owner]
		if !seen {
			if st, err = a.holderStatus(ctx, owner); err != nil {
				continue
			}
			status[owner] = st
		}
		if st == "" {
			continue // its workflow runs: the robot is its business
		}
		key := r.ID + "\x00" + r.State.OrderID
		if !a.orphanDue(key) {
			continue
		}
		k, err := vda5050.ParseRobotID(r.ID)
		if err != nil {
			continue
		}
		id := fmt.Sprintf("%s%sreaper-cancel-%d", owner, schemas.InstantActionSeparator, time.Now().UnixMilli())
		sent, err := a.Store.StopUnreserved(ctx, r.Site, r.ID, r.State.OrderID, func() error {
			_, err := a.Link.SendInstantActions(ctx, k, []vda5050.Action{{ActionType: vda5050.ActionCancelOrder, ActionID: id, BlockingType: vda5050.BlockingHard}})
			return err
		})
		if err != nil || !sent {
			if err != nil {
				activity.GetLogger(ctx).Warn("reaper: cancelOrder to a robot on an orphaned order failed", "robot", r.ID, "order", r.State.OrderID, "error", err)
			}
			a.orphanForget(key)
			continue
		}
		if err := a.Store.Audit(ctx, "reaper", "order.orphan_stopped", owner, map[string]any{
			"robotId": r.ID, "orderId": r.State.OrderID, "workflowStatus": st, "actionId": id,
		}); err != nil {
			activity.GetLogger(ctx).Warn("reaper: audit failed", "error", err)
		}
		activity.GetLogger(ctx).Info("reaper: stopped a robot working on the order of a closed workflow", "robot", r.ID, "order", r.State.OrderID, "workflowStatus", st)
		stopped = append(stopped, r.ID+" "+r.State.OrderID)
	}
	return stopped
}

// orphanDue reports whether key's robot may be sent cancelOrder now, and
// notes that it is.
func (a *Activities) orphanDue(key string) bool {
	a.orphanMu.Lock()
	defer a.orphanMu.Unlock()
	if a.orphanSent == nil {
		a.orphanSent = map[string]time.Time{}
	}
	now := time.Now()
	for k, at := range a.orphanSent {
		if now.Sub(at) > orphanResendAfter {
			delete(a.orphanSent, k)
		}
	}
	if _, recent := a.orphanSent[key]; recent {
		return false
	}
	a.orphanSent[key] = now
	return true
}

func (a *Activities) orphanForget(key string) {
	a.orphanMu.Lock()
	defer a.orphanMu.Unlock()
	delete(a.orphanSent, key)
}

// FreeLease frees one robot reservation of a closed workflow that the
// Reaper workflow has stopped the order of first (SweepLeasesResult.EdgeStops):
// release, wake the site's waiting missions, audit lease.freed, count.
// Idempotent: a lease already freed is a no-op (no audit row then).
func (a *Activities) FreeLease(ctx context.Context, in schemas.FreedLease) error {
	holder, held, err := a.Store.ReservationHolder(ctx, in.RobotID)
	if err != nil {
		return storeError(err)
	}
	if !held || holder != in.MissionID {
		return nil
	}
	l := store.Lease{Kind: store.LeaseReservation, MissionID: in.MissionID, WorkflowID: in.WorkflowID, RobotID: in.RobotID, Site: in.Site, Since: in.HeldSince}
	_, err = a.freeLease(ctx, l, in.WorkflowStatus, func() bool { return in.OrderCancelled })
	return err
}

// freeLease frees l (its holder closed with status st): stop runs between
// reading and releasing a reservation and says whether cancelOrder went
// to the robot. Audited and counted.
func (a *Activities) freeLease(ctx context.Context, l store.Lease, st string, stop func() bool) (cancelled bool, err error) {
	switch l.Kind {
	case store.LeaseReservation:
		cancelled = stop()
		next, err := a.Store.Release(ctx, l.RobotID, l.MissionID)
		if err != nil {
			return cancelled, storeError(err)
		}
		a.wake(ctx, next)
	case store.LeaseQueue:
		if err := a.Store.CancelQueued(ctx, l.MissionID); err != nil {
			return false, storeError(err)
		}
	case store.LeaseStation, store.LeaseStationQueue:
		next, err := a.Store.ReleaseStation(ctx, l.Site, l.WorkflowID)
		if err != nil {
			return false, storeError(err)
		}
		a.signalAll(ctx, next, schemas.SignalChargerAvailable, nil)
	}
	if err := a.Store.Audit(ctx, "reaper", "lease.freed", l.MissionID, map[string]any{
		"kind": l.Kind, "robotId": l.RobotID, "workflowId": l.WorkflowID, "workflowStatus": st,
		"heldSince": l.Since, "orderCancelled": cancelled,
	}); err != nil {
		return cancelled, storeError(err)
	}
	if a.LeasesFreed != nil {
		a.LeasesFreed.WithLabelValues(l.Kind).Inc()
	}
	activity.GetLogger(ctx).Info("reaper: freed a lease of a closed workflow", "kind", l.Kind, "mission", l.MissionID, "robot", l.RobotID, "workflowStatus", st)
	return cancelled, nil
}

// leaseOrder sorts robot reservations before the other leases.
func leaseOrder(kind string) int {
	if kind == store.LeaseReservation {
		return 0
	}
	return 1
}

// worksOnOrphanedOrder: the robot's stored state shows it still working on
// the order of l's closed workflow (the orderId names the workflow).
func (a *Activities) worksOnOrphanedOrder(ctx context.Context, l store.Lease) bool {
	st, err := a.Store.RobotState(ctx, l.RobotID)
	owner := schemas.OwnerWorkflowID(st.OrderID) // "<workflowID>#h<n>" after a handover
	return err == nil && owner == l.WorkflowID && (st.NodeStatesRemaining > 0 || st.Driving || st.ActionsUnderway())
}

// holderStatus returns "" while workflowID runs, else its close status
// (COMPLETED, FAILED, TERMINATED, …) or NOT_FOUND.
func (a *Activities) holderStatus(ctx context.Context, workflowID string) (string, error) {
	d, err := a.Temporal.DescribeWorkflowExecution(ctx, workflowID, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return "NOT_FOUND", nil
	}
	if err != nil {
		return "", err
	}
	s := d.GetWorkflowExecutionInfo().GetStatus()
	if s == enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return "", nil
	}
	return strings.ToUpper(strings.TrimPrefix(s.String(), "WORKFLOW_EXECUTION_STATUS_")), nil
}

// stopOrphanedOrder sends cancelOrder when the robot's stored state shows
// it still working on the order of the closed workflow (the orderId names
// the workflow). It reports whether it sent one.
func (a *Activities) stopOrphanedOrder(ctx context.Context, l store.Lease) bool {
	if a.Link == nil || !a.worksOnOrphanedOrder(ctx, l) {
		return false
	}
	k, err := vda5050.ParseRobotID(l.RobotID)
	if err != nil {
		return false
	}
	id := fmt.Sprintf("%s#reaper-cancel-%d", l.WorkflowID, time.Now().UnixMilli())
	if _, err := a.Link.SendInstantActions(ctx, k, []vda5050.Action{{ActionType: vda5050.ActionCancelOrder, ActionID: id, BlockingType: vda5050.BlockingHard}}); err != nil {
		activity.GetLogger(ctx).Warn("reaper: cancelOrder to a robot of a closed workflow failed", "robot", l.RobotID, "error", err)
		return false
	}
	return true
}
