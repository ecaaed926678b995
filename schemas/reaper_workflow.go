package schemas

import "time"

// The Reaper workflow's input.

// ReaperInput starts one sweep.
type ReaperInput struct {
	// MinAge: leases younger than this are not checked (default 1 min).
	MinAge time.Duration `json:"minAge,omitempty"`
}
