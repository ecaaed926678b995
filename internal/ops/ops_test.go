package ops

import (
	"errors"
	"fmt"
	"testing"
)

func TestBadInput(t *testing.T) {
	cases := map[string]struct {
		err  error
		want bool
	}{
		"nil":                         {nil, false},
		"a failure":                   {errors.New("connection refused"), false},
		"an InputError":               {InputErrorf("mission m-1 already exists"), true},
		"an InputError, wrapped":      {fmt.Errorf("start: %w", InputErrorf("no WMS client %q", "x")), true},
		"cobra: unknown flag":         {errors.New("unknown flag: --robtos"), true},
		"cobra: wrong argument count": {errors.New("accepts 1 arg(s), received 2"), true},
	}
	for name, c := range cases {
		if got := BadInput(c.err); got != c.want {
			t.Errorf("%s: BadInput(%v) = %v, want %v", name, c.err, got, c.want)
		}
	}
}
