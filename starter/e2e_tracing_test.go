package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/schemas"
)

// One trace follows a mission: from the client's start call through the
// Mission workflow and its activities to the MQTT publish of the order, on
// the real stack (spans collected in memory instead of sent to a
// collector).
func TestEndToEndMissionTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	otel.SetTracerProvider(tp)
	defer otel.SetTracerProvider(noop.NewTracerProvider())
	cfg := e2eConfig(t)
	cfg.Sim.Speed = 8
	cfg.Sim.ActionDuration = 200 * time.Millisecond
	cfg.Sim.Robots = "acme/AMR-001"
	cfg.Tracing.Enabled = true
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: "../bin/temporal", Headless: true}, io.Discard)
	require.NoError(t, err)
	defer ls.Stop()
	specs, err := loadMissionDir("../testdata/missions")
	require.NoError(t, err)
	spec := specs[0]
	spec.RequiredCapabilities = nil
	run, err := ops.StartMission(ctx, ls.Worker.Client, ls.Cfg, spec, "test", "")
	require.NoError(t, err)
	var res schemas.MissionResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, schemas.MissionCompleted, res.State)

	var names []string
	var start *tracetest.SpanStub
	spans := exp.GetSpans()
	for i, s := range spans {
		if s.Name == "StartWorkflow:Mission" {
			start = &spans[i]
		}
	}
	require.NotNil(t, start, "no StartWorkflow:Mission span")
	for _, s := range spans {
		if s.SpanContext.TraceID() == start.SpanContext.TraceID() {
			names = append(names, s.Name)
		}
	}
	joined := strings.Join(names, "\n")
	require.Contains(t, joined, "RunWorkflow:Mission", "the workflow run is in the start's trace")
	require.Contains(t, joined, "RunActivity:ReserveRobot", "its activities too")
	require.Contains(t, joined, "mqtt publish uagv/v2/acme/AMR-001/order", "down to the order's publish:\n%s", joined)
}
