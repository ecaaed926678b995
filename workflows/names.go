// Package workflows holds fleetflow's deterministic workflow code: the
// Mission and its parts, WMSEvents, the Reaper, Maintenance,
// MaintenanceRound, Charge, Rollout and RobotUpdate. The names they answer
// to (task queues, workflow types, signals, updates, queries, activities),
// their workflow IDs and their activities' inputs and results are in
// package schemas. It never imports an I/O package: no MQTT, no database,
// no HTTP, no clock or randomness outside the workflow API.
package workflows

// ActivityNames lists every activity a worker must register: the names
// of ActivityContracts (acts.go).
var ActivityNames = func() []string {
	names := make([]string, len(ActivityContracts))
	for i, c := range ActivityContracts {
		names[i] = c.Name
	}
	return names
}()
