package worker

import (
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
			t.Errorf("workflows.%s has no activities.Activities method", name)
			continue
		}
		if m.Type.NumIn() != 3 {
			t.Errorf("%s takes %d arguments, want (ctx, input)", name, m.Type.NumIn()-1)
		}
	}
}
