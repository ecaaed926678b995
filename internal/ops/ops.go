// Package ops is what an operator's tools do against Temporal, shared by
// the starter CLI and the benchmarks (bench/): start missions and rollouts
// with the options fleetflow relies on, follow a rollout's progress, and
// name why a workflow failed. Bad input (a mission or rollout ID that
// exists, an unknown WMS client) is an *InputError.
package ops

import (
	"errors"
	"fmt"
	"strings"
)

// InputError is bad input, not a failure: the command that got it exits 2.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// BadInput marks it for callers that test behaviour, not the type.
func (e *InputError) BadInput() bool { return true }

// InputErrorf is an *InputError with a formatted message.
func InputErrorf(format string, a ...any) error {
	return &InputError{fmt.Errorf(format, a...)}
}

// BadInput tells bad usage or bad input (exit code 2) from a failure: an
// error whose chain holds a BadInput() that is true (InputError,
// localstack.ConfigError, the CLI's own usage errors), or one of cobra's
// usage errors (unknown command, flag or shorthand, wrong argument count,
// missing required flag), which cobra does not type.
func BadInput(err error) bool {
	if err == nil {
		return false
	}
	var bad interface{ BadInput() bool }
	if errors.As(err, &bad) && bad.BadInput() {
		return true
	}
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
