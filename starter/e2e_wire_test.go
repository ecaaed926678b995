package main

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/internal/testbroker"
	"github.com/fleetflow/fleetflow/schemas"
)

// No order lost on the wire, end to end on the real stack with a Mosquitto
// of the test's own, so it can be stopped under fleetflow:
//
//   - an order published while the broker is down is retried until the
//     broker is back, and the mission completes;
//   - an order the robot never shows in its state (lost on the way) is sent
//     again, the configured number of times, then the mission fails
//     cleanly as RobotUnresponsive and its robot is free for the next one.
func logSink() io.Writer {
	if os.Getenv("E2E_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}

func TestEndToEndNoOrderLostOnTheWire(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	broker := testbroker.Start(t)
	cfg := e2eConfig(t)
	cfg.MQTT.URL = broker.URL
	cfg.Sim.Speed, cfg.Sim.ActionDuration = 0, 100*time.Millisecond // teleporting robots: the wire is what is tested
	cfg.Robots.OrderAckTimeout, cfg.Robots.OrderResends = time.Second, 2
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: "../bin/temporal", Headless: true}, logSink())
	require.NoError(t, err)
	defer ls.Stop()
	c := ls.Worker.Client
	specs, err := loadMissionDir("../testdata/missions")
	require.NoError(t, err)

	// The broker goes down; a mission starts meanwhile; the broker comes
	// back 3 s later.
	broker.Stop()
	down := specs[0]
	down.MissionID = "wire-broker-down"
	t0 := time.Now()
	run, err := ops.StartMission(ctx, c, ls.Cfg, down, "e2e", "")
	require.NoError(t, err)
	t.Logf("started with the broker down in %s", time.Since(t0))
	time.Sleep(3 * time.Second)
	st, err := queryStatus(ctx, c, down.MissionID)
	require.NoError(t, err)
	require.False(t, st.Terminal(), "the mission waits for the broker: %+v", st)
	require.NoError(t, broker.Resume())
	var res schemas.MissionResult
	require.NoError(t, run.Get(ctx, &res), "the order went out once the broker was back")
	require.Equal(t, schemas.MissionCompleted, res.State)
	st, err = queryStatus(ctx, c, down.MissionID)
	require.NoError(t, err)
	t.Logf("broker down 3 s: the order went out %d time(s), the mission completed", st.OrderSends)

	// Every robot loses its orders: the mission resends, then gives up.
	for _, r := range ls.Fleet.Robots() {
		r.LoseOrders(true)
	}
	lost := specs[1]
	lost.MissionID = "wire-order-lost"
	t0 = time.Now()
	run, err = ops.StartMission(ctx, c, ls.Cfg, lost, "e2e", "")
	require.NoError(t, err)
	t.Logf("started in %s", time.Since(t0))
	err = run.Get(ctx, &res)
	t.Logf("ended in %s: %v", time.Since(t0), err)
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae), "%v", err)
	require.Equal(t, schemas.ErrRobotUnresponsive, ae.Type(), "%v", err)
	require.Contains(t, err.Error(), "sent 3 times")
	st, err = queryStatus(ctx, c, lost.MissionID)
	require.NoError(t, err)
	require.Equal(t, 1+cfg.Robots.OrderResends, st.OrderSends)
	_, held, err := ls.Worker.Store.ReservationOf(ctx, lost.MissionID)
	require.NoError(t, err)
	require.False(t, held, "the robot is released")
	robot := ls.Fleet.Robot(strings.SplitN(st.RobotID, "/", 2)[1])
	require.NotEqual(t, schemas.MissionWorkflowID(lost.MissionID), robot.Snapshot().OrderID, "the robot never had the order")

	// The orders get through again: the same robot takes the next mission.
	for _, r := range ls.Fleet.Robots() {
		r.LoseOrders(false)
	}
	again := lost
	again.MissionID = "wire-after-lost"
	t0 = time.Now()
	run, err = ops.StartMission(ctx, c, ls.Cfg, again, "e2e", "")
	require.NoError(t, err)
	require.NoError(t, run.Get(ctx, &res))
	t.Logf("next mission in %s", time.Since(t0))
	require.Equal(t, schemas.MissionCompleted, res.State)
}
