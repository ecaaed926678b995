package worker

import (
	"context"
	"reflect"
	"testing"

	"github.com/fleetflow/fleetflow/activities"
	"github.com/fleetflow/fleetflow/workflows"
)

// The workflows call activities by name (they may not import the I/O
// package); every name must be a method of activities.Activities.
func TestEveryActivityNameIsRegistered(t *testing.T) {
	typ := reflect.TypeOf(&activities.Activities{})
	for _, name := range workflows.ActivityNames {
		m, ok := typ.MethodByName(name)
		if !ok {
			t.Errorf("activity %s has no activities.Activities method", name)
			continue
		}
		if m.Type.NumIn() != 3 {
			t.Errorf("%s takes %d arguments, want (ctx, input)", name, m.Type.NumIn()-1)
		}
	}
}

// Each activity takes the input and returns the result its workflow-side
// handle (workflows/acts.go) declares: a workflow that passes the wrong
// type does not compile, and an activity that changes its types fails
// here instead of in a running workflow.
func TestActivityContracts(t *testing.T) {
	typ := reflect.TypeOf(&activities.Activities{})
	ctxType := reflect.TypeFor[context.Context]()
	errType := reflect.TypeFor[error]()
	for _, c := range workflows.ActivityContracts {
		m, ok := typ.MethodByName(c.Name)
		if !ok {
			t.Errorf("%s: no activities.Activities method", c.Name)
			continue
		}
		ft := m.Type // receiver first
		if ft.NumIn() != 3 || ft.In(1) != ctxType || ft.In(2) != c.In {
			t.Errorf("%s: method %s, want func(context.Context, %s)", c.Name, ft, c.In)
		}
		switch {
		case c.Out == nil && (ft.NumOut() != 1 || ft.Out(0) != errType):
			t.Errorf("%s: method %s, want it to return only error", c.Name, ft)
		case c.Out != nil && (ft.NumOut() != 2 || ft.Out(0) != c.Out || ft.Out(1) != errType):
			t.Errorf("%s: method %s, want it to return (%s, error)", c.Name, ft, c.Out)
		}
	}
}
