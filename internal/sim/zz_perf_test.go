package sim

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetflow/fleetflow/internal/vda5050"
)

func rss() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS") || strings.HasPrefix(l, "VmHWM") {
			fmt.Print(l, "  ")
		}
	}
	fmt.Println()
	return ""
}

func TestPerfMemory(t *testing.T) {
	if os.Getenv("SIMPERF") == "" {
		t.Skip()
	}
	n := 1000
	sfx := suffix()
	var cfgs []RobotConfig
	for i := 0; i < n; i++ {
		cfgs = append(cfgs, RobotConfig{Manufacturer: "perf", SerialNumber: fmt.Sprintf("P%d-%s", i, sfx), StartNode: "A", MapID: testMap})
	}
	f := NewFleet(Options{BrokerURL: brokerURL, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, cfgs)
	t0 := time.Now()
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	fmt.Println("started", n, "in", time.Since(t0), "goroutines", runtime.NumGoroutine())
	runtime.GC()
	rss()
	time.Sleep(3 * time.Second)
	rss()
	t0 = time.Now()
	f.Stop()
	fmt.Println("stopped in", time.Since(t0))
}

func TestPerfMissions(t *testing.T) {
	if os.Getenv("SIMPERF") == "" {
		t.Skip()
	}
	n, missions := 200, 2000
	sfx := suffix()
	var cfgs []RobotConfig
	for i := 0; i < n; i++ {
		cfgs = append(cfgs, RobotConfig{Manufacturer: "perf", SerialNumber: fmt.Sprintf("M%d-%s", i, sfx), StartNode: "A", MapID: testMap})
	}
	f := NewFleet(Options{BrokerURL: brokerURL, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, cfgs)
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	c := newClient(t)
	var mu sync.Mutex
	done := map[string]chan struct{}{}
	var states atomic.Int64
	c.Subscribe("uagv/v2/perf/+/state", 0, func(_ mqtt.Client, m mqtt.Message) {
		states.Add(1)
		var s vda5050.State
		if err := vda5050.Decode(vda5050.TopicState, m.Payload(), &s); err != nil {
			t.Error(err)
			return
		}
		if s.OrderID != "" && len(s.NodeStates) == 0 && !s.Driving && status(s, s.OrderID+"-drop") == vda5050.ActionFinished {
			mu.Lock()
			if ch, ok := done[s.OrderID]; ok {
				close(ch)
				delete(done, s.OrderID)
			}
			mu.Unlock()
		}
	}).WaitTimeout(5 * time.Second)
	var hc vda5050.HeaderCounter
	t0 := time.Now()
	var wg sync.WaitGroup
	for r := 0; r < n; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := vda5050.RobotKey{Manufacturer: "perf", SerialNumber: cfgs[r].SerialNumber}
			at := 0.0
			for m := 0; m < missions/n; m++ {
				id := fmt.Sprintf("m-%d-%d", r, m)
				ch := make(chan struct{})
				mu.Lock()
				done[id] = ch
				mu.Unlock()
				o := order(id, 0, 0, 0, pt{id: "A", x: at}, pt{id: "B", x: at + 1, actions: []vda5050.Action{act("pick", id+"-pick")}}, pt{id: "C", x: at + 2, actions: []vda5050.Action{act("drop", id+"-drop")}})
				at += 2
				o.Header = hc.Next(vda5050.TopicFor(k, vda5050.TopicOrder), k, time.Now())
				raw, err := vda5050.Encode(vda5050.TopicOrder, o)
				if err != nil {
					t.Error(err)
					return
				}
				c.Publish(vda5050.TopicFor(k, vda5050.TopicOrder), 0, false, raw).WaitTimeout(5 * time.Second)
				select {
				case <-ch:
				case <-time.After(20 * time.Second):
					t.Errorf("mission %s timed out", id)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	fmt.Printf("%d missions on %d robots in %s (%.0f/s), %d states\n", missions, n, el, float64(missions)/el.Seconds(), states.Load())
	rss()
}
