// Package schemas is fleetflow's contract: what the workflows, the
// activities, the bridge, the virtual robot, the REST ingress and the CLI
// agree on, in one leaf package that every side imports and that imports
// no other fleetflow package but internal ones for validation and the
// VDA 5050 types.
//
//   - names.go: task queues, workflow types, signals, updates, queries,
//     activities and search attributes; errors.go: application error types;
//     ids.go: workflow IDs with their inverses and the owner of an order.
//   - <workflow>_workflow.go: each workflow's input, result, states,
//     status and update and signal arguments.
//   - messages.go, ota.go, charge.go, maintenance.go: activity inputs and
//     results; softwareupdate.go: the softwareUpdate instant action's
//     protocol (parameters, phases, refusal kinds).
//   - The JSON Schemas of mission and rollout specs (mission.schema.json,
//     rollout.schema.json), update and signal arguments (updates/,
//     signals/), artifact manifests and WMS events, with their parsers;
//     the REST ingress's OpenAPI document; the registry's SQL migrations.
package schemas
