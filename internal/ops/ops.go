// Package ops is what an operator's tools do against Temporal, shared by
// the starter CLI and the benchmarks (bench/): start missions and rollouts
// with the options fleetflow relies on, follow a rollout's progress, and
// name why a workflow failed. Bad input (a mission or rollout ID that
// exists, an unknown WMS client) is an *InputError.
package ops

import "fmt"

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
