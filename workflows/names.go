// Package workflows holds fleetflow's deterministic workflow code: the
// Mission and its parts, WMSEvents, the Reaper, Maintenance,
// MaintenanceRound, Charge, Rollout and RobotUpdate. Their contract is in
// package schemas: the names they answer to (task queues, workflow types,
// signals, updates, queries, activities), their workflow IDs, their inputs,
// results, states, statuses and update arguments, and their activities'
// inputs and results. It never imports an I/O package: no MQTT, no database,
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
